#!/usr/bin/env python3
"""torch_llama.py — the PyTorch side of benchmarks/mfu: training throughput and MFU
of transformers' LlamaForCausalLM at the same shapes as herd's side.

    python3 benchmarks/mfu/torch_llama.py --layers 4 --d-model 4096 --ffn 14336 \
        --heads 32 --kv-heads 8 --vocab 128256 --seq 8192 --batch 1
    python3 benchmarks/mfu/torch_llama.py --device cpu --tiny      # a check without a GPU

The model: LlamaForCausalLM from the config numbers (untied output projection,
RoPE theta 500,000, GQA), SDPA attention (plain causal: SDPA has no document
mask, herd masks documents; the FLOP count is the same formula for both),
torch.compile, fused AdamW (torch.optim.AdamW(fused=True) on CUDA).
Precision as the issue asks of herd: fp32 master weights, AdamW moments in fp32,
BF16 compute under torch.autocast. --pure-bf16 keeps weights in bf16 instead.

One training step = forward + backward + AdamW step on random tokens. N steps are
timed after W warm-up steps (the warm-up includes torch.compile's compilation).
MFU is DESIGN.md's formula, its inputs printed:
    flops_per_token = 6 * P_matmul + 6 * n_layers * seq_len * d_model
    MFU = tokens_per_second * flops_per_token / peak
--attention-only: scaled_dot_product_attention alone (is_causal, GQA), forward +
backward, TFLOP/s with the formula's attention term 6 B H T^2 hd (as bench_mfu).

P_matmul: every weight matrix of a matmul (q, k, v, o, gate, up, down per layer and
the output projection), embedding and norms excluded. The last line is JSON.
"""
import argparse
import json
import sys
import time


def p_matmul(a):
    hd = a.d_model // a.heads
    per_layer = (a.d_model * a.heads * hd          # q
                 + 2 * a.d_model * a.kv_heads * hd  # k, v
                 + a.heads * hd * a.d_model         # o
                 + 3 * a.d_model * a.ffn)           # gate, up, down
    return a.layers * per_layer + a.vocab * a.d_model


def flops_per_token(a):
    return 6 * p_matmul(a) + 6 * a.layers * a.seq * a.d_model


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=4096)
    ap.add_argument("--ffn", type=int, default=14336)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=128256)
    ap.add_argument("--seq", type=int, default=8192)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10, help="timed steps")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    ap.add_argument("--pure-bf16", action="store_true", help="bf16 weights, no fp32 master")
    ap.add_argument("--peak-tflops", type=float, default=989.4,
                    help="dense peak of the datatype (H100/H200 BF16: 989.4)")
    ap.add_argument("--label", default="", help="a name for the table row")
    ap.add_argument("--attention-only", action="store_true",
                    help="time SDPA forward + backward alone")
    ap.add_argument("--attn-dtype", default="bf16", choices=["bf16", "fp32"],
                    help="--attention-only: the dtype of q, k, v")
    ap.add_argument("--backend", default="", help="ignored (herd's flag)")
    ap.add_argument("--tiny", action="store_true",
                    help="herd's tiny preset (2 layers, d 64, ffn 192, 4 heads, 2 kv, vocab 512, "
                         "seq 128), batch 2, 2 steps after 1 warm-up")
    a = ap.parse_args()
    if a.tiny:
        a.layers, a.d_model, a.ffn, a.heads, a.kv_heads, a.vocab, a.seq = 2, 64, 192, 4, 2, 512, 128
        a.batch, a.steps, a.warmup = 2, 2, 1
    if a.d_model % a.heads or a.heads % a.kv_heads:
        ap.error("--heads must divide --d-model and --kv-heads must divide --heads")
    if a.steps < 1 or a.warmup < 0:
        ap.error("--steps must be >= 1 and --warmup >= 0")
    return a


def bench_attention(a, torch, dev):
    import torch.nn.functional as F
    cuda = dev.type == "cuda"
    hd = a.d_model // a.heads
    dt_ = torch.bfloat16 if a.attn_dtype == "bf16" else torch.float32
    g = torch.Generator(device="cpu").manual_seed(2)

    def rnd(*shape):
        return torch.randn(*shape, generator=g).to(device=dev, dtype=dt_).requires_grad_()
    q, k, v = rnd(a.batch, a.heads, a.seq, hd), rnd(a.batch, a.kv_heads, a.seq, hd), \
        rnd(a.batch, a.kv_heads, a.seq, hd)
    dout = torch.randn(a.batch, a.heads, a.seq, hd, generator=g).to(device=dev, dtype=dt_)

    def step():
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           enable_gqa=a.kv_heads != a.heads)
        o.backward(dout)

    def sync():
        if cuda:
            torch.cuda.synchronize()
    for _ in range(a.warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    sync()
    dt = (time.perf_counter() - t0) / a.steps
    tflops = 6.0 * a.batch * a.heads * a.seq * a.seq * hd / dt / 1e12
    print(f"torch SDPA attention ({a.attn_dtype}) B {a.batch} T {a.seq} H {a.heads} KV "
          f"{a.kv_heads} hd {hd}: fwd+bwd {dt * 1e3:.3f} ms, {tflops:.2f} TFLOP/s")
    print(json.dumps({"bench": "attention", "impl": "torch_sdpa", "label": a.label,
                      "precision": a.attn_dtype, "batch": a.batch, "seq": a.seq,
                      "heads": a.heads, "kv_heads": a.kv_heads, "head_dim": hd,
                      "ms": dt * 1e3, "tflops": tflops}))
    return 0


def main():
    a = parse()
    try:
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM
    except ImportError as e:
        print(f"torch_llama.py: needs torch and transformers ({e})", file=sys.stderr)
        return 2
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    if cuda and not torch.cuda.is_available():
        print("torch_llama.py: --device cuda but torch sees no CUDA device", file=sys.stderr)
        return 2
    if a.attention_only:
        return bench_attention(a, torch, dev)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=a.vocab, hidden_size=a.d_model, intermediate_size=a.ffn,
                      num_hidden_layers=a.layers, num_attention_heads=a.heads,
                      num_key_value_heads=a.kv_heads, max_position_embeddings=a.seq,
                      rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
                      attention_bias=False, mlp_bias=False, use_cache=False)
    cfg._attn_implementation = "sdpa"
    wdtype = torch.bfloat16 if a.pure_bf16 else torch.float32
    model = LlamaForCausalLM(cfg).to(device=dev, dtype=wdtype)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1,
                            fused=cuda)
    step_model = model if a.no_compile else torch.compile(model)

    g = torch.Generator(device="cpu").manual_seed(1)
    ids = torch.randint(0, a.vocab, (a.batch, a.seq), generator=g).to(dev)

    def step():
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16):
            loss = step_model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    def sync():
        if cuda:
            torch.cuda.synchronize()

    t_c = time.perf_counter()
    for _ in range(a.warmup):
        loss = step()
    sync()
    warm_s = time.perf_counter() - t_c
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    sync()
    dt = time.perf_counter() - t0
    loss = float(loss.detach())

    tokens = a.batch * a.seq * a.steps
    tps = tokens / dt
    fpt = flops_per_token(a)
    tflops = tps * fpt / 1e12
    mfu = tflops / a.peak_tflops
    peak_gib = torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0
    dev_name = torch.cuda.get_device_name() if cuda else "cpu"
    print(f"torch {torch.__version__} on {dev_name}: layers {a.layers} d {a.d_model} ffn {a.ffn} "
          f"heads {a.heads}/{a.kv_heads} vocab {a.vocab} seq {a.seq} batch {a.batch}; "
          f"params {n_params / 1e6:.1f}M, P_matmul {p_matmul(a) / 1e6:.1f}M")
    print(f"  flops/token = 6*{p_matmul(a)} + 6*{a.layers}*{a.seq}*{a.d_model} = {fpt:.4e}")
    print(f"  {a.steps} steps in {dt:.3f} s (warm-up {a.warmup} steps {warm_s:.1f} s): "
          f"{tps:.0f} tokens/s, {tflops:.1f} TFLOP/s, MFU {100 * mfu:.2f}% of {a.peak_tflops} "
          f"TFLOP/s; loss {loss:.4f}; peak memory {peak_gib:.1f} GiB")
    print(json.dumps({"bench": "mfu", "impl": "torch", "label": a.label, "device": dev_name,
                      "torch": torch.__version__, "compile": not a.no_compile,
                      "weights": "bf16" if a.pure_bf16 else "fp32+autocast_bf16",
                      "layers": a.layers, "d_model": a.d_model, "ffn": a.ffn, "heads": a.heads,
                      "kv_heads": a.kv_heads, "vocab": a.vocab, "seq": a.seq, "batch": a.batch,
                      "steps": a.steps, "seconds": dt, "tokens_per_second": tps,
                      "p_matmul": p_matmul(a), "flops_per_token": fpt, "tflops": tflops,
                      "peak_tflops": a.peak_tflops, "mfu": mfu, "loss": loss,
                      "peak_mem_gib": peak_gib}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
