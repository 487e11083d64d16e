#!/usr/bin/env python3
"""hf_make_fixtures.py — tiny Hugging Face Llama checkpoints made by transformers,
with transformers' own logits and loss on a fixed batch, for herd's import check.

    python3 tests/golden/hf_make_fixtures.py OUT_ROOT      (default tests/fixtures/hf)

Each OUT_ROOT/NAME/ is a save_pretrained() directory plus expected.safetensors:
input.tokens [B, T] I32, logits [B*T, V] F32, loss [1] F32 (next-token loss with
labels = input_ids, as LlamaForCausalLM computes it), and train_loss [1] F32:
transformers' loss on the whole of train.bin, a herd token shard (docs/data-format.md)
of four windows of T + 1 tokens (eot_id V-1, which the stream never holds, so no
document mask applies) -- the loss of the first step of `herd train` on it with
batch_tokens 4*T, seq_len T, whichever order the sampler takes the windows in.
Needs torch, transformers and safetensors (made with transformers 4.49 on torch 1.13: transformers 5
needs torch >= 2.6); the weights are random with a fixed seed. The fixtures cover
GQA (4 query heads over 2 KV heads), untied and tied output, Llama 3.1 rope
scaling with an original context (8) shorter than the batch (16 tokens), a
sharded save (model.safetensors.index.json) and BF16 tensors.
"""
import os
import struct
import sys

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

B, T, V = 2, 16, 96
LLAMA3_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                  "high_freq_factor": 4.0, "original_max_position_embeddings": 8}

# name: (tied, rope_scaling, dtype, max_shard_size or None, seed)
FIXTURES = {
    "gqa_untied": (False, None, torch.float32, None, 1),
    "gqa_tied": (True, None, torch.float32, None, 2),
    "llama31_sharded": (False, LLAMA3_SCALING, torch.float32, "40KB", 3),
    "llama31_bf16_tied": (True, LLAMA3_SCALING, torch.bfloat16, None, 4),
}


def write_shard(path, ids, eot):
    """A herd token shard, version 1, uint16 ids (docs/data-format.md)."""
    head = b"HERDTOK\0" + struct.pack("<IIIIQQ", 1, 2, V, eot, len(ids), ids.count(eot))
    with open(path, "wb") as f:
        f.write(head + bytes(24) + struct.pack(f"<{len(ids)}H", *ids))


def make(root, name, tied, scaling, dtype, shard, seed):
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=tied,
                      rope_scaling=scaling, bos_token_id=1, eos_token_id=2, pad_token_id=None)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # non-trivial norm weights, so their use is checked
        for n, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
    model = model.to(dtype)
    out = os.path.join(root, name)
    os.makedirs(out, exist_ok=True)
    kw = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(out, safe_serialization=True, **kw)
    # the reference runs in fp32 on the stored weights (BF16 ones widened exactly)
    ref = LlamaForCausalLM.from_pretrained(out, torch_dtype=torch.float32).eval()
    g = torch.Generator().manual_seed(100 + seed)
    tokens = torch.randint(0, V, (B, T), generator=g)
    stream = torch.randint(0, V - 1, (4 * T + 1,), generator=g)
    windows = torch.stack([stream[k * T:k * T + T + 1] for k in range(4)])
    with torch.no_grad():
        res = ref(input_ids=tokens, labels=tokens)
        train = ref(input_ids=windows, labels=windows)
    save_file({"input.tokens": tokens.to(torch.int32).contiguous(),
               "logits": res.logits.reshape(B * T, V).float().contiguous(),
               "loss": res.loss.reshape(1).float().contiguous(),
               "train_loss": train.loss.reshape(1).float().contiguous()},
              os.path.join(out, "expected.safetensors"))
    write_shard(os.path.join(out, "train.bin"), stream.tolist(), V - 1)
    print(f"{name}: loss {res.loss.item():.6f}", file=sys.stderr)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "fixtures", "hf")
    for name, spec in FIXTURES.items():
        make(root, name, *spec)


if __name__ == "__main__":
    main()
