#!/usr/bin/python3
"""Checks of a finished tiny recipe run (tests/cli/recipe_chain.sh).

usage: check_chain.py CONFIG_DIR RUN_DIR SAFETENSORS_DIR MARGIN

Prints PASS/FAIL lines; exits with the number of failures.
"""
import glob, json, math, os, re, struct, sys

import numpy as np

cdir, run, stdir, margin = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
fails = 0


def result(name, ok, why=""):
    global fails
    print(("PASS %s" % name) if ok else ("FAIL %s: %s" % (name, why)))
    fails += 0 if ok else 1


def resolved(path):
    """The resolved config herd train saved (2-space YAML of sections): {section.key: text}, ramp."""
    out, ramp, sec = {}, [], None
    for line in open(path):
        if re.match(r"^[a-z]", line):
            sec = line.split(":")[0]
        m = re.match(r"^  ([a-z_]+):\s*(.*?)\s*(#.*)?$", line)
        if m and sec:
            out["%s.%s" % (sec, m.group(1))] = m.group(2).strip('"')
        m = re.search(r"after_tokens: (\d+), batch_tokens: (\d+), seq_len: (\d+)", line)
        if m and sec == "batch":
            ramp.append(tuple(int(x) for x in m.groups()))
    return out, ramp


def lr_of(c, step, tokens):  # src/model/schedule.c
    lr0, lo = float(c["optim.lr"]), float(c["optim.min_lr"])
    w, d = int(c["schedule.warmup_steps"]), int(c["schedule.decay_steps"])
    if step < w:
        lr = lr0 * (step + 1) / w
    else:
        p = min((step - w) / (d - w), 1.0) if d > w else 1.0
        lr = lo + 0.5 * (lr0 - lo) * (1 + math.cos(math.pi * p))
    a, mt = int(c["schedule.anneal_tokens"]), int(c["train.max_tokens"])
    if a > 0 and mt > 0:
        left = (mt - tokens) / a
        if left < 1.0:
            lr *= max(left, 0.0)
    return lr


def newest(d):
    steps = sorted(glob.glob(os.path.join(d, "checkpoints", "step_*")))
    return steps[-1] if steps else None


stages = sorted(f[:-5] for f in os.listdir(cdir) if f.endswith(".yaml"))
prev_last = None
for s in stages:
    c, ramp = resolved(os.path.join(run, s, "config.yaml"))
    rows = [json.loads(l) for l in open(os.path.join(run, s, "metrics.jsonl")) if l.startswith('{"step"')]
    steps = [r for r in rows if "loss" in r and "lr" in r]
    # starts where the previous stage ended
    first = steps[0]["step"]
    if prev_last is not None:
        p = newest(os.path.join(run, stages[stages.index(s) - 1]))
        pstep = int(os.path.basename(p)[5:])
        result("recipe_%s_resumes_previous_step" % s, first == pstep + 1 == prev_last + 1,
               "first step %d, previous stage's last step %d, its newest checkpoint %d" % (first, prev_last, pstep))
    # seq_len and lr per step follow the config
    bad = []
    for r in steps:
        before = r["tokens_seen"] - r["batch_tokens"]
        st = [x for x in ramp if before >= x[0]][-1]
        want_lr = lr_of(c, r["step"] - 1, before)
        if r["seq_len"] != st[2] or r["batch_tokens"] != st[1] or abs(r["lr"] - want_lr) > 1e-9 + 1e-6 * want_lr:
            bad.append("step %d: seq %d batch %d lr %.6g, config says seq %d batch %d lr %.6g"
                       % (r["step"], r["seq_len"], r["batch_tokens"], r["lr"], st[2], st[1], want_lr))
    result("recipe_%s_seq_len_and_lr_follow_config (%d steps, seq %s)" % (s, len(steps), sorted({r["seq_len"] for r in steps})),
           not bad and steps[-1]["tokens_seen"] == int(c["train.max_tokens"]),
           "; ".join(bad[:3]) or "ended at %d tokens, max_tokens %s" % (steps[-1]["tokens_seen"], c["train.max_tokens"]))
    prev_last = steps[-1]["step"]
last_stage = steps
result("recipe_anneal_lr_reaches_0 (last lr %.3g)" % last_stage[-1]["lr"],
       last_stage[-1]["lr"] < 0.1 * max(r["lr"] for r in last_stage) and lr_of(c, last_stage[-1]["step"], last_stage[-1]["tokens_seen"]) == 0.0,
       "lr of the last annealing steps: %s" % [r["lr"] for r in last_stage[-3:]])


def safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32", (path, k, v["dtype"])
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=np.float32).reshape(v["shape"])
    return out


avg = json.load(open(os.path.join(run, "final", "average.json")))
parts = [safetensors(os.path.join(stdir, os.path.basename(d) + ".safetensors")) for d in avg["checkpoints"]]
final = safetensors(avg["safetensors"])
worst, names_ok = 0.0, set(final) == set(parts[0]) and len(final) > 0
for k in final:
    mean = np.mean(np.stack([p[k].astype(np.float64) for p in parts]), axis=0)
    worst = max(worst, float(np.max(np.abs(final[k] - mean))))
spread = max(float(np.max(np.abs(parts[0][k] - parts[-1][k]))) for k in final)
result("recipe_final_is_mean_of_%d_anneal_checkpoints (max |diff| %.2e, checkpoints differ by up to %.2e)"
       % (len(parts), worst, spread), names_ok and len(parts) >= 3 and worst <= 1e-6 and spread > 1e-4,
       "tensors match %s, %d checkpoints, max |diff| %g, spread %g" % (names_ok, len(parts), worst, spread))

# short-context validation before and after the long-context stages
ev = {s: json.load(open(os.path.join(run, s, "eval.json"))) for s in stages}
before = ev[stages[0]]
long_stages = [s for s in stages if "long_context" in s]
after = ev[long_stages[-1]]
diffs = {k: after["val"][k]["loss"] - before["val"][k]["loss"] for k in before["val"]}
txt = ", ".join("%s %.3f -> %.3f" % (k, before["val"][k]["loss"], after["val"][k]["loss"]) for k in before["val"])
result("recipe_short_context_val_kept (seq %d, %s vs %s: %s; margin +%.2f)"
       % (after["seq_len"], stages[0], long_stages[-1], txt, margin),
       len(diffs) == 4 and before["seq_len"] == after["seq_len"] and all(d <= margin for d in diffs.values()),
       "loss rose by %s" % diffs)
# passkey retrieval: the grid's shape (the test runs the stages scaled down, too
# short to learn retrieval, docs/recipe.md): 4 lengths x 5 depths, >= 50 trials per length
bad = []
for s in stages:
    pk = json.load(open(os.path.join(run, s, "passkey.json")))
    ls = pk["lengths"]
    if sorted(int(k) for k in ls) != [128, 256, 512, 1024] or pk["trials"] < 50 or any(
            v["skipped"] != 0 or not 0 <= v["accuracy"] <= 1 or v["correct"] > pk["trials"]
            or len(v["by_depth"]) != len(pk["depths"])
            or sum(c["correct"] for c in v["by_depth"].values()) != v["correct"] for v in ls.values()):
        bad.append("%s: %s" % (s, ls))
result("recipe_passkey_json_per_stage (4 lengths x %d trials; accuracy after anneal %s)"
       % (pk["trials"], {k: v["accuracy"] for k, v in ls.items()}), not bad, "; ".join(bad))
sys.exit(fails)
