"""check_mean.py MEAN A B...: MEAN.safetensors is the element-wise mean of the
others (max |diff| < 1e-6), which are not all equal. Exit 1 with the reason."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "golden"))
import numpy as np
from llama_ref import read_safetensors

mean, _ = read_safetensors(sys.argv[1])
ins = [read_safetensors(f)[0] for f in sys.argv[2:]]
assert len(ins) >= 2 and all(set(t) == set(mean) for t in ins) and len(mean) > 5, "tensor names differ"
assert any(np.abs(ins[0][k] - t[k]).max() > 0 for t in ins[1:] for k in mean), "the inputs are equal"
err = max(np.abs(mean[k] - sum(t[k] for t in ins) / len(ins)).max() for k in mean)
assert err < 1e-6, f"max |mean - average of inputs| = {err}"
print(f"element-wise mean of {len(ins)} models: max |diff| {err:.1e}")
