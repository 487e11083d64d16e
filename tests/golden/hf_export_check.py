#!/usr/bin/python3
"""Checks of `herd ckpt export --format hf` (tests/golden/hf_export.sh).

    hf_export_check.py tie SRC_STEP DST_STEP
        a copy of a herd checkpoint whose lm_head is its embedding (a tied
        model), shard checksum and MANIFEST re-sealed
    hf_export_check.py bf16 ONE.safetensors OUT.safetensors
        the one-file F32 export with every value rounded to BF16 (nearest even)
    hf_export_check.py check NAME HF_DIR ONE.safetensors HERD_LOGITS MAX_SHARD TIED DTYPE FIXTURE_DIR [regen]
        the export's structure and values, then transformers' logits on the
        export (live when transformers imports, else FIXTURE_DIR/NAME.safetensors)
        against herd's logits HERD_LOGITS; regen writes that fixture

    hf_export_check.py tok HF_DIR TEXTS_DIR HERD_IDS FIXTURE_DIR [regen]
        transformers' AutoTokenizer on the export against `herd data encode`
        (--special) of every TEXTS_DIR/*.txt; live, else the export's
        tokenizer.json must equal FIXTURE_DIR/tokenizer.json, whose ids
        FIXTURE_DIR/tok_ids.json were transformers'
    hf_export_check.py yaml HF_DIR OUT_DIR
        a herd config (YAML, stdout) for `herd ckpt import HF_DIR` of that model
    hf_export_check.py roundtrip NAME SRC_HF_DIR DST_HF_DIR
        the export of an imported model: the same tensors bit for bit (names,
        dtypes, values), the same tie and rope_scaling; live, transformers' logits
    hf_export_check.py diff BF16_LOGITS F32_LOGITS TOL
        how far rounding the weights to BF16 moves herd's logits

Logit difference: max |hf - herd| / max |herd| over the batch.
"""
import json
import os
import shutil
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli"))
from manifest_reseal import xxh64  # noqa: E402

TOL = 1e-4


def st_read(path):
    """{name: np.ndarray (F32; BF16 widened exactly)}, metadata"""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    meta = hdr.pop("__metadata__", {})
    out = {}
    for k, e in hdr.items():
        a, b = e["data_offsets"]
        buf = raw[8 + n + a:8 + n + b]
        if e["dtype"] == "BF16":
            v = (np.frombuffer(buf, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            v = np.frombuffer(buf, {"F32": "<f4", "I32": "<i4"}[e["dtype"]])
        out[k] = (v.reshape(e["shape"]), e["dtype"])
    return out, meta


def st_write(path, tensors):
    hdr, off, blobs = {}, 0, []
    for k, v in tensors.items():
        b = np.ascontiguousarray(v, "<f4").tobytes()
        hdr[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def bf16_round(x):
    u = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return (u.astype(np.uint32) << 16).view(np.float32)


def cmd_tie(src, dst):
    import h5py
    shutil.copytree(src, dst)
    shard = os.path.join(dst, "shard_00000.h5")
    with h5py.File(shard, "r+") as f:
        f["param/lm_head.weight/0_0"][...] = f["param/model.embed_tokens.weight/0_0"][...]
    data = open(shard, "rb").read()
    man = os.path.join(dst, "MANIFEST")
    lines = open(man).read().splitlines()
    body = ""
    for l in lines:
        if l.startswith("shard 0 "):
            l = "shard 0 shard_00000.h5 %d %016x" % (len(data), xxh64(data))
        if not l.startswith("end "):
            body += l + "\n"
    open(man, "w").write(body + "end %016x\n" % xxh64(body.encode()))


def structure(d, one, max_shard, tied, dtype):
    """every failed check's message"""
    bad = []
    cfg = json.load(open(os.path.join(d, "config.json")))
    want = {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "tie_word_embeddings": tied, "torch_dtype": {"f32": "float32", "bf16": "bfloat16"}[dtype]}
    for k, v in want.items():
        if cfg.get(k) != v:
            bad.append("config.json %s: %r, expected %r" % (k, cfg.get(k), v))
    for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "rope_theta", "rms_norm_eps", "vocab_size",
              "max_position_embeddings"):
        if k not in cfg:
            bad.append("config.json: %s missing" % k)
    # HF_BOS_EOS: "BOS EOS" (from the run's token shard) or "none" (no shard to read)
    want_ids = os.environ.get("HF_BOS_EOS", "none")
    got_ids = "%s %s" % (cfg.get("bos_token_id"), cfg.get("eos_token_id"))
    if got_ids != ("None None" if want_ids == "none" else want_ids):
        bad.append("config.json bos/eos %s, expected %s" % (got_ids, want_ids))
    emb = one["model.embed_tokens.weight"][0]
    if cfg.get("vocab_size") != emb.shape[0] or cfg.get("hidden_size") != emb.shape[1]:
        bad.append("config.json vocab_size/hidden_size do not match the embedding %s" % (emb.shape,))
    idx = json.load(open(os.path.join(d, "model.safetensors.index.json")))
    wm = idx["weight_map"]
    expect = set(one) - ({"lm_head.weight"} if tied else set())
    if set(wm) != expect:
        bad.append("index: tensors %s, expected %s" % (sorted(set(wm) ^ expect), "the checkpoint's"))
    seen, total = {}, 0
    files = sorted(set(wm.values()))
    n = len(files)
    for i, fn in enumerate(files):
        if fn != "model-%05d-of-%05d.safetensors" % (i + 1, n):
            bad.append("shard name %s" % fn)
        t, meta = st_read(os.path.join(d, fn))
        if meta.get("format") != "pt":
            bad.append("%s: metadata format %r" % (fn, meta.get("format")))
        size = sum(v.size * (2 if dt == "BF16" else 4) for v, dt in t.values())
        total += size
        if size > max_shard and len(t) > 1:
            bad.append("%s: %d tensor bytes > --max-shard-size %d" % (fn, size, max_shard))
        for k, (v, dt) in t.items():
            if k in seen:
                bad.append("%s in %s and %s" % (k, seen[k], fn))
            seen[k] = fn
            if wm.get(k) != fn:
                bad.append("%s: in %s, the index says %s" % (k, fn, wm.get(k)))
            if dt != {"f32": "F32", "bf16": "BF16"}[dtype]:
                bad.append("%s: dtype %s" % (k, dt))
            ref = one[k][0] if dtype == "f32" else bf16_round(one[k][0])
            if v.shape != ref.shape or not np.array_equal(v, ref):
                bad.append("%s: values differ from the one-file export" % k)
    if total != idx["metadata"]["total_size"]:
        bad.append("index total_size %d, shards hold %d" % (idx["metadata"]["total_size"], total))
    return bad, n


def hf_logits(d, tokens):
    import torch
    import transformers
    from transformers import LlamaForCausalLM
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    m = LlamaForCausalLM.from_pretrained(d, torch_dtype=torch.float32, attn_implementation="eager")
    with torch.no_grad():
        out = m(torch.from_numpy(tokens.astype(np.int64))).logits
    return out.reshape(-1, out.shape[-1]).numpy()


def cmd_check(name, d, one_path, herd_path, max_shard, tied, dtype, fixdir, regen):
    one, _ = st_read(one_path)
    bad, n = structure(d, one, int(max_shard), tied == "1", dtype)
    for b in bad:
        print("  " + b)
    print("%s hf_export_%s_structure (%d shards)" % ("FAIL" if bad else "PASS", name, n))
    herd, _ = st_read(herd_path)
    tokens, ref = herd["tokens"][0], herd["logits"][0]
    fix = os.path.join(fixdir, name + ".safetensors")
    try:
        import transformers  # noqa: F401
        got, how = hf_logits(d, tokens), "live transformers"
        if regen:
            st_write(fix, {"logits": got})
    except ImportError:
        if not os.path.exists(fix):
            print("SKIP hf_export_%s_logits: transformers is not importable and there is no fixture"
                  % name)
            return 1 if bad else 0
        got, how = st_read(fix)[0]["logits"][0], "fixture " + os.path.relpath(fix)
    rel = float(np.abs(got - ref).max() / np.abs(ref).max())
    ok = rel <= TOL
    print("%s hf_export_%s_logits (%s: max rel diff %.2e, tolerance %.0e)" %
          ("PASS" if ok else "FAIL", name, how, rel, TOL))
    return 0 if ok and not bad else 1


def cmd_tok(d, texts, herd_ids, fixdir, regen):
    names = sorted(f for f in os.listdir(texts) if f.endswith(".txt"))
    herd = [list(map(int, l.split())) for l in open(herd_ids).read().splitlines()]
    fix_ids = os.path.join(fixdir, "tok_ids.json")
    fix_json = os.path.join(fixdir, "tokenizer.json")
    try:
        import transformers
        transformers.utils.logging.set_verbosity_error()
        tok = transformers.AutoTokenizer.from_pretrained(d)
        got = [tok(open(os.path.join(texts, f), "rb").read().decode(), add_special_tokens=False)
               ["input_ids"] for f in names]
        how = "live transformers"
        if regen:
            json.dump(got, open(fix_ids, "w"))
            shutil.copy(os.path.join(d, "tokenizer.json"), fix_json)
    except ImportError:
        got, how = json.load(open(fix_ids)), "fixture " + os.path.relpath(fix_ids)
        same = open(os.path.join(d, "tokenizer.json"), "rb").read() == open(fix_json, "rb").read()
        print("%s hf_export_tokenizer_json (equals %s)" % ("PASS" if same else "FAIL",
                                                          os.path.relpath(fix_json)))
        if not same:
            return 1
    bad = [f for f, a, b in zip(names, got, herd) if a != b]
    ok = not bad and len(got) == len(herd) == len(names)
    print("%s hf_export_tokenizer_ids (%s: %d texts, %d ids%s)" %
          ("PASS" if ok else "FAIL", how, len(names), sum(map(len, herd)),
           "; differ: " + " ".join(bad) if bad else ""))
    return 0 if ok else 1


def hf_tensors(d):
    if os.path.exists(os.path.join(d, "model.safetensors")):
        return st_read(os.path.join(d, "model.safetensors"))[0]
    out = {}
    for f in set(json.load(open(os.path.join(d, "model.safetensors.index.json")))["weight_map"].values()):
        out.update(st_read(os.path.join(d, f))[0])
    return out


def cmd_yaml(d, out):
    c = json.load(open(os.path.join(d, "config.json")))
    r = c.get("rope_scaling") or {}
    print("model: {n_layers: %d, d_model: %d, n_heads: %d, n_kv_heads: %d, ffn_dim: %d, vocab_size: %d,"
          % (c["num_hidden_layers"], c["hidden_size"], c["num_attention_heads"],
             c["num_key_value_heads"], c["intermediate_size"], c["vocab_size"]))
    print("        max_seq_len: %d, rope_theta: %r, norm_eps: %r" %
          (c["max_position_embeddings"], c["rope_theta"], c["rms_norm_eps"]), end="")
    if r:
        print(", rope_scale_factor: %r, rope_low_freq_factor: %r, rope_high_freq_factor: %r, "
              "rope_original_max_pos: %d" % (r["factor"], r["low_freq_factor"], r["high_freq_factor"],
                                             r["original_max_position_embeddings"]), end="")
    print("}\nbatch: {micro_batch: 1, ramp: [{after_tokens: 0, batch_tokens: 16, seq_len: 16}]}")
    print("train: {max_steps: 1, threads: 1, out_dir: %s}\ndata: {path: %s/train.bin}" % (out, d))


def cmd_roundtrip(name, src, dst):
    a, b = hf_tensors(src), hf_tensors(dst)
    ca, cb = (json.load(open(os.path.join(x, "config.json"))) for x in (src, dst))
    bad = [k for k in a if k not in b or a[k][1] != b[k][1] or not np.array_equal(a[k][0], b[k][0])]
    bad += [k for k in b if k not in a]
    for k in ("tie_word_embeddings", "rope_scaling", "rope_theta", "rms_norm_eps", "vocab_size",
              "num_key_value_heads", "torch_dtype"):
        if ca.get(k) != cb.get(k):
            bad.append("config.json %s: %r, was %r" % (k, cb.get(k), ca.get(k)))
    print("%s hf_roundtrip_%s (HF -> herd ckpt import -> export: %d tensors bit for bit, config%s)" %
          ("FAIL" if bad else "PASS", name, len(a), "; differ: " + ", ".join(bad) if bad else ""))
    try:
        import transformers  # noqa: F401
    except ImportError:
        return 1 if bad else 0
    tok = (np.arange(32).reshape(2, 16) * 7) % ca["vocab_size"]
    x, y = hf_logits(src, tok), hf_logits(dst, tok)
    rel = float(np.abs(x - y).max() / np.abs(x).max())
    print("%s hf_roundtrip_%s_logits (live transformers: max rel diff %.2e, tolerance %.0e)" %
          ("PASS" if rel <= TOL else "FAIL", name, rel, TOL))
    return 1 if bad or rel > TOL else 0


def main():
    a = sys.argv[1:]
    if a[:1] == ["tie"] and len(a) == 3:
        return cmd_tie(a[1], a[2])
    if a[:1] == ["bf16"] and len(a) == 3:
        t, _ = st_read(a[1])
        return st_write(a[2], {k: bf16_round(v) for k, (v, _) in t.items()})
    if a[:1] == ["diff"] and len(a) == 4:  # the BF16 model against the F32 one
        x, y = st_read(a[1])[0]["logits"][0], st_read(a[2])[0]["logits"][0]
        rel = float(np.abs(x - y).max() / np.abs(y).max())
        ok = rel <= float(a[3])
        print("%s hf_export_bf16_vs_f32 (herd's logits: max rel diff %.2e, tolerance %s)" %
              ("PASS" if ok else "FAIL", rel, a[3]))
        return 0 if ok else 1
    if a[:1] == ["yaml"] and len(a) == 3:
        return cmd_yaml(a[1], a[2])
    if a[:1] == ["roundtrip"] and len(a) == 4:
        return cmd_roundtrip(*a[1:4])
    if a[:1] == ["tok"] and len(a) in (5, 6):
        return cmd_tok(*a[1:5], regen=len(a) == 6)
    if a[:1] == ["check"] and len(a) in (9, 10):
        return cmd_check(*a[1:9], regen=len(a) == 10)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main() or 0)
