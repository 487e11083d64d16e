#!/usr/bin/env python3
"""Compare two herd runs: the loss of every step (metrics.jsonl) and the final
parameters (--dump-params safetensors), by max relative error.

    compare_runs.py REF_DIR REF.safetensors RUN_DIR RUN.safetensors TOL [--bitwise]

Relative error of a tensor: ||a - b|| / ||b|| (Frobenius, b the reference);
of a loss: |a - b| / |b|. The element-wise max|a - b| / max|b| is printed too
but not judged: AdamW's m / sqrt(v) turns the fp32 rounding noise of a
near-zero (cancelling) gradient element into a step of order lr, so single
elements of a layout that sums in another order differ by ~lr * noise while
the tensor as a whole agrees (docs/parallelism.md has the numbers). Prints one line per quantity that fails and a summary; exits 1
if anything exceeds TOL (with --bitwise: if anything differs at all)."""
import json
import struct
import sys

import numpy as np


def load_st(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=np.float32).reshape(meta["shape"])
    return out


def losses(run_dir):
    """The loss of each step; a resumed run appends the steps after its
    checkpoint again (the lost work stays in the file), the last one counts."""
    by_step = {}
    with open(run_dir + "/metrics.jsonl") as f:
        for line in f:
            if '"loss"' in line:
                r = json.loads(line)
                by_step[r["step"]] = r["loss"]
    return [by_step[k] for k in sorted(by_step)]


def main():
    ref_dir, ref_st, run_dir, run_st, tol = sys.argv[1:6]
    tol = float(tol)
    bitwise = "--bitwise" in sys.argv
    bad = 0
    lr, lo = losses(ref_dir), losses(run_dir)
    if len(lr) != len(lo) or not lr:
        print(f"steps differ: {len(lr)} vs {len(lo)}")
        return 1
    worst_loss = max(abs(a - b) / abs(b) for a, b in zip(lo, lr))
    if (bitwise and lo != lr) or worst_loss > tol:
        print(f"loss: max relative error {worst_loss:.3e} (ref {lr}, run {lo})")
        bad += 1
    A, R = load_st(run_st), load_st(ref_st)
    if set(A) != set(R):
        print("tensor names differ:", sorted(set(A) ^ set(R))[:5])
        return 1
    worst = worst_elem = 0.0
    for name in R:
        if A[name].shape != R[name].shape:
            print(f"{name}: shape {A[name].shape} vs {R[name].shape}")
            bad += 1
            continue
        if bitwise and not np.array_equal(A[name], R[name]):
            print(f"{name}: not bitwise equal")
            bad += 1
        diff = A[name].astype(np.float64) - R[name]
        e = float(np.linalg.norm(diff) / max(np.linalg.norm(R[name].astype(np.float64)), 1e-30))
        worst_elem = max(worst_elem, float(np.max(np.abs(diff)) / max(np.max(np.abs(R[name])), 1e-30)))
        worst = max(worst, e)
        if e > tol:
            print(f"{name}: max relative error {e:.3e} > {tol:g}")
            bad += 1
    print(f"steps {len(lr)}, loss max rel err {worst_loss:.3e}, params max rel err {worst:.3e}"
          f" (element-wise {worst_elem:.3e})"
          f" over {len(R)} tensors{' (bitwise)' if bitwise else ''}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
