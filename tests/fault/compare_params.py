#!/usr/bin/python3
"""compare_params.py A.safetensors B.safetensors TOL — every tensor of A and B
has the same name, shape and dtype, and max |a - b| <= TOL. Prints the largest
difference; exit 1 otherwise. Reads safetensors by hand (8-byte header length,
JSON header, raw little-endian data): numpy only."""
import json, struct, sys
import numpy as np

DT = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64, "I32": np.int32}

def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(data[a:b], dtype=DT[v["dtype"]]).reshape(v["shape"])
    return out

a, b, tol = load(sys.argv[1]), load(sys.argv[2]), float(sys.argv[3])
if sorted(a) != sorted(b):
    sys.exit(f"tensor names differ: {sorted(set(a) ^ set(b))}")
worst, name = 0.0, ""
for k in a:
    if a[k].shape != b[k].shape:
        sys.exit(f"{k}: shape {a[k].shape} vs {b[k].shape}")
    d = float(np.max(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)))) if a[k].size else 0.0
    if d > worst:
        worst, name = d, k
print(f"max |diff| {worst:.3g} ({name or 'all equal'}), tolerance {tol:g}, {len(a)} tensors")
sys.exit(0 if worst <= tol else 1)
