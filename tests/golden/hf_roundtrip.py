#!/usr/bin/env python3
"""hf_roundtrip.py — transformers' side of tests/golden/hf_roundtrip.sh.

    hf_roundtrip.py loss HF_DIR BATCH.safetensors [LOGITS_OUT]
        LlamaForCausalLM.from_pretrained(HF_DIR) in F32, its next-token loss
        (labels = input_ids) on BATCH's input.tokens, printed with 9 digits;
        LOGITS_OUT gets its "logits" [B*T, V] F32.
    hf_roundtrip.py cmp A.safetensors B.safetensors
        max |A - B| / max |B| over their "logits"
    hf_roundtrip.py get FIXTURE.json KEY       print one committed value
    hf_roundtrip.py put FIXTURE.json KEY VALUE record one (the regeneration)
    hf_roundtrip.py noscale HF_DIR             drop config.json's rope_scaling
    hf_roundtrip.py rel A B                    |A - B| / |B|

loss needs torch and transformers; the others only the standard library.
"""
import json
import os
import struct
import sys


def read(path, name, fmt):
    """name's values (struct format letter fmt, 4 bytes each) and shape"""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        e = json.loads(f.read(n))[name]
        a, b = e["data_offsets"]
        f.seek(8 + n + a)
        raw = f.read(b - a)
    return struct.unpack(f"<{(b - a) // 4}{fmt}", raw), e["shape"]


def loss(hf_dir, batch, logits_out=None):
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaForCausalLM
    model = LlamaForCausalLM.from_pretrained(hf_dir, torch_dtype=torch.float32).eval()
    ids, shape = read(batch, "input.tokens", "i")
    tokens = torch.tensor(ids, dtype=torch.long).reshape(shape)
    with torch.no_grad():
        res = model(input_ids=tokens, labels=tokens)
    print(f"{res.loss.item():.9g}")
    if logits_out:
        save_file({"logits": res.logits.reshape(-1, res.logits.shape[-1]).float().contiguous()},
                  logits_out)


def cmp(a_path, b_path):
    a, sa = read(a_path, "logits", "f")
    b, sb = read(b_path, "logits", "f")
    if sa != sb:
        sys.exit(f"hf_roundtrip.py: logits shapes {sa} and {sb} differ")
    print(f"{max(abs(x - y) for x, y in zip(a, b)) / max(abs(y) for y in b):.3g}")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "loss":
        loss(*args)
    elif cmd == "cmp":
        cmp(*args)
    elif cmd == "get":
        print(json.load(open(args[0]))[args[1]])
    elif cmd == "put":
        d = json.load(open(args[0])) if os.path.exists(args[0]) else {}
        try:
            d[args[1]] = float(args[2])
        except ValueError:
            d[args[1]] = args[2]
        with open(args[0], "w") as f:
            json.dump(d, f, indent=1, sort_keys=True)
            f.write("\n")
    elif cmd == "noscale":
        p = os.path.join(args[0], "config.json")
        c = json.load(open(p))
        c["rope_scaling"] = None
        with open(p, "w") as f:
            json.dump(c, f, indent=2)
    elif cmd == "rel":
        a, b = float(args[0]), float(args[1])
        print(f"{abs(a - b) / abs(b):.3g}")
    else:
        sys.exit(f"hf_roundtrip.py: unknown command {cmd}")


if __name__ == "__main__":
    main()
