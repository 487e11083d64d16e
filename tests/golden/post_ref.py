"""DPO and reward-model losses and gradients of herd against PyTorch (float64).

    /usr/bin/python3 tests/golden/post_ref.py DIR

DIR holds post_in.safetensors and post_out.safetensors from build/tests/post_dump.
The model is llama_ref.py's independent reference; the losses are written here
from their definitions (docs/post-training.md):

  DPO: (1/P) sum_p -logsigmoid(beta((pi_c - rho_c) - (pi_r - rho_r))) + nll_coef * (-pi_c / n_c)
  RM:  mean over ranked pairs (i better than j, same prompt) of -logsigmoid(r_i - r_j),
       r = final hidden state of the last token . lm_head[head_id]

Threshold 1e-4 on max|herd - ref| / max|ref| per tensor, as the model's golden test.
Negative controls: beta 0.2 instead of 0.1, and the reward read one token early,
must both move the result by more than 1e-3.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as Fn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_ref import forward, read_safetensors, rel_err  # noqa: E402

TOL = 1e-4


def seq_logps(logits, targets):
    # logits [R*T, V], targets [R, T] (-1 ignored) -> summed log p per row, counts
    R, T = targets.shape
    lp = Fn.log_softmax(logits, -1).view(R, T, -1)
    t = targets.clamp(min=0)
    picked = lp.gather(-1, t[..., None])[..., 0] * (targets >= 0)
    return picked.sum(-1), (targets >= 0).sum(-1)


def dpo_loss(P, R_, tok, tgt, doc, dims, beta, alpha):
    logits, _ = forward(P, tok, tgt, doc, dims)
    with torch.no_grad():
        rlogits, _ = forward(R_, tok, tgt, doc, dims)
    pi, n = seq_logps(logits, tgt)
    rho, _ = seq_logps(rlogits, tgt)
    half = tok.shape[0] // 2
    z = beta * ((pi[:half] - rho[:half]) - (pi[half:] - rho[half:]))
    return (-Fn.logsigmoid(z) + alpha * (-pi[:half] / n[:half])).mean()


def rm_loss(P, tok, doc, last, group, rank, head, dims):
    B, T = tok.shape
    tgt = torch.full_like(tok, -1)
    logits, _ = forward(P, tok, tgt, doc, dims)
    r = logits.view(B, T, -1)[torch.arange(B), last, head]
    terms = [-Fn.logsigmoid(r[i] - r[j]) for i in range(B) for j in range(B)
             if group[i] == group[j] and rank[i] < rank[j]]
    return torch.stack(terms).mean()


def main(d):
    W, meta = read_safetensors(f"{d}/post_in.safetensors")
    O, _ = read_safetensors(f"{d}/post_out.safetensors")
    names = meta["dims_order"].split()
    dims = {n: (float(v) if n in ("rope_theta", "norm_eps") else int(v))
            for n, v in zip(names, meta["dims"].split())}
    beta, alpha, head = meta["post"].split()
    beta, alpha, head = float(beta), float(alpha), int(head)
    I = {k: torch.from_numpy(W.pop(k)).long() for k in list(W) if k.startswith(("dpo.", "rm."))}
    R_ = {k[4:]: torch.from_numpy(W.pop(k)).double() for k in list(W) if k.startswith("ref.")}
    fails = 0

    def check(name, herd, ref):
        nonlocal fails
        e = rel_err(herd, ref)
        ok = e <= TOL
        fails += not ok
        print(f"{'PASS' if ok else 'FAIL'} post_{name} (rel err {e:.2e})")

    for kind in ("dpo", "rm"):
        P = {n: torch.from_numpy(a).double().requires_grad_(True) for n, a in W.items()}
        if kind == "dpo":
            loss = dpo_loss(P, R_, I["dpo.tokens"], I["dpo.targets"], I["dpo.doc"], dims, beta, alpha)
        else:
            loss = rm_loss(P, I["rm.tokens"], I["rm.doc"], I["rm.last"], I["rm.group"], I["rm.rank"],
                           head, dims)
        loss.backward()
        check(f"{kind}_loss", O[f"{kind}.loss"], np.array([loss.item()]))
        worst = max(rel_err(O[f"{kind}.grad.{n}"], p.grad.numpy()) for n, p in P.items())
        ok = worst <= TOL
        fails += not ok
        print(f"{'PASS' if ok else 'FAIL'} post_{kind}_grads (every tensor, worst rel err {worst:.2e})")

    # negative controls: the comparison must be able to fail
    with torch.no_grad():
        P = {n: torch.from_numpy(a).double() for n, a in W.items()}
        wrong_beta = dpo_loss(P, R_, I["dpo.tokens"], I["dpo.targets"], I["dpo.doc"], dims, 0.2, alpha)
        wrong_last = rm_loss(P, I["rm.tokens"], I["rm.doc"], I["rm.last"] - 1, I["rm.group"],
                             I["rm.rank"], head, dims)
    for name, herd, other in (("beta_matters", O["dpo.loss"], wrong_beta),
                              ("last_token_matters", O["rm.loss"], wrong_last)):
        e = rel_err(herd, np.array([other.item()]))
        ok = e > 1e-3
        fails += not ok
        print(f"{'PASS' if ok else 'FAIL'} post_control_{name} (herd vs altered reference: {e:.2e} > 1e-3)")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
