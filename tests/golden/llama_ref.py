"""An independent Llama 3 reference in PyTorch (float64), checked against herd.

    /usr/bin/python3 tests/golden/llama_ref.py DIR

DIR holds weights.safetensors and out.safetensors from build/tests/golden_dump.
Written from the math, not from herd's code: embedding, RMSNorm, RoPE (rotate
half, theta from the file), grouped-query attention with a causal mask AND a
document mask, SwiGLU, final norm, untied output projection, cross-entropy
with ignore_index=-1. Forward and backward run in float64; herd runs in
float32, so the comparison is of herd against the exact answer.

Error metric per tensor: max|herd - ref| / max|ref| (elementwise relative
error is meaningless where the reference is ~0). Threshold 1e-4.
Two negative controls prove the comparison can fail: the wrong theta and a
missing document mask must both move the logits by more than 1e-3.
"""
import json
import struct
import sys

import numpy as np
import torch

TOL = 1e-4


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    dtypes = {"F32": np.float32, "I32": np.int32}
    out = {}
    for name, t in header.items():
        a, b = t["data_offsets"]
        arr = np.frombuffer(raw[base + a:base + b], dtype=dtypes[t["dtype"]])
        out[name] = arr.reshape(t["shape"]).copy()
    return out, meta


def rope(x, pos, theta):
    # x [B, T, heads, hd]; pairs (i, i + hd/2) rotated by pos * theta^(-2i/hd)
    hd = x.shape[-1]
    inv = theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    ang = pos[:, None].double() * inv[None, :]           # [T, hd/2]
    cos = torch.cat([ang.cos(), ang.cos()], -1)[None, :, None, :]
    sin = torch.cat([ang.sin(), ang.sin()], -1)[None, :, None, :]
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    rot = torch.cat([-x2, x1], -1)
    return x * cos + rot * sin


def rmsnorm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def forward(P, tokens, targets, doc, dims, theta=None, doc_mask=True):
    L, d, H, KV, F, V = dims["n_layers"], dims["d_model"], dims["n_heads"], \
        dims["n_kv_heads"], dims["ffn_dim"], dims["vocab_size"]
    theta = dims["rope_theta"] if theta is None else theta
    eps = dims["norm_eps"]
    B, T = tokens.shape
    hd = d // H
    pos = torch.arange(T)
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    same_doc = doc[:, :, None] == doc[:, None, :] if doc_mask else torch.ones(B, T, T, dtype=torch.bool)
    allowed = (causal[None] & same_doc)[:, None]            # [B, 1, T, T]
    x = P["model.embed_tokens.weight"][tokens]              # [B, T, d]
    for i in range(L):
        p = lambda s: P[f"model.layers.{i}.{s}"]
        h = rmsnorm(x, p("input_layernorm.weight"), eps)
        q = (h @ p("self_attn.q_proj.weight").T).view(B, T, H, hd)
        k = (h @ p("self_attn.k_proj.weight").T).view(B, T, KV, hd)
        v = (h @ p("self_attn.v_proj.weight").T).view(B, T, KV, hd)
        q, k = rope(q, pos, theta), rope(k, pos, theta)
        k = k.repeat_interleave(H // KV, dim=2)              # head h uses kv head h // (H/KV)
        v = v.repeat_interleave(H // KV, dim=2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))     # [B, H, T, hd]
        s = (q @ k.transpose(-1, -2)) / hd ** 0.5
        s = s.masked_fill(~allowed, float("-inf"))
        o = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, H * hd)
        x = x + o @ p("self_attn.o_proj.weight").T
        h = rmsnorm(x, p("post_attention_layernorm.weight"), eps)
        g = h @ p("mlp.gate_proj.weight").T
        u = h @ p("mlp.up_proj.weight").T
        x = x + (torch.nn.functional.silu(g) * u) @ p("mlp.down_proj.weight").T
    x = rmsnorm(x, P["model.norm.weight"], eps)
    logits = (x @ P["lm_head.weight"].T).reshape(B * T, V)
    loss = torch.nn.functional.cross_entropy(logits, targets.reshape(-1), ignore_index=-1)
    return logits, loss


def rel_err(a, ref):
    a, ref = np.asarray(a, np.float64), np.asarray(ref, np.float64)
    return float(np.abs(a - ref).max() / max(np.abs(ref).max(), 1e-30))


def main(d):
    W, meta = read_safetensors(f"{d}/weights.safetensors")
    O, _ = read_safetensors(f"{d}/out.safetensors")
    vals = meta["dims"].split()
    names = meta["dims_order"].split()
    dims = {n: (float(v) if n in ("rope_theta", "norm_eps") else int(v)) for n, v in zip(names, vals)}
    tokens = torch.from_numpy(W.pop("input.tokens")).long()
    targets = torch.from_numpy(W.pop("input.targets")).long()
    doc = torch.from_numpy(W.pop("input.doc")).long()
    P = {n: torch.from_numpy(a).double().requires_grad_(True) for n, a in W.items()}

    logits, loss = forward(P, tokens, targets, doc, dims)
    loss.backward()
    fails = 0
    worst = {}

    def check(name, herd, ref):
        nonlocal fails
        e = rel_err(herd, ref)
        kind = name.split(".")[0]
        worst[kind] = max(worst.get(kind, 0.0), e)
        ok = e <= TOL
        fails += not ok
        print(f"{'PASS' if ok else 'FAIL'} golden_{name} (rel err {e:.2e})")

    check("logits", O["logits"], logits.detach().numpy())
    check("loss", O["loss"], np.array([loss.item()]))
    for n, p in P.items():
        check(f"grad.{n}", O[f"grad.{n}"], p.grad.numpy())

    # negative controls: the comparison must be able to fail
    with torch.no_grad():
        wrong_theta, _ = forward(P, tokens, targets, doc, dims, theta=500000.0)
        no_mask, _ = forward(P, tokens, targets, doc, dims, doc_mask=False)
    for name, other in (("theta_matters", wrong_theta), ("doc_mask_matters", no_mask)):
        e = rel_err(O["logits"], other.numpy())
        ok = e > 1e-3
        fails += not ok
        print(f"{'PASS' if ok else 'FAIL'} golden_control_{name} (herd vs altered reference: {e:.2e} > 1e-3)")
    print("max relative error: " + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()), file=sys.stderr)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
