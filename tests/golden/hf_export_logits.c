/* hf_export_logits.c — herd's logits for a fixed batch, from a one-file F32 export
 * (`herd ckpt export CKPT X.safetensors`), for the Hugging Face export test
 * (tests/golden/hf_export.sh compares them with transformers' on the HF export).
 *
 *   build/tests/hf_export_logits WEIGHTS.safetensors OUT.safetensors \
 *       n_layers d_model n_heads n_kv_heads ffn_dim vocab_size rope_theta norm_eps
 *
 * OUT holds "tokens" [B, T] (I32, one document per row) and "logits" [B*T, V]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "checkpoint/safetensors.h"
#include "src/base/rng.h"
#include "src/model/model.h"
#include "src/model/weights.h"

enum { B = 2, T = 16 };

int main(int argc, char **argv)
{
    if (argc != 11) {
        fprintf(stderr, "usage: hf_export_logits WEIGHTS OUT n_layers d_model n_heads n_kv_heads ffn_dim "
                "vocab_size rope_theta norm_eps\n");
        return 2;
    }
    herd_model_dims d = {.n_layers = atoi(argv[3]), .d_model = atoi(argv[4]),
                         .n_heads = atoi(argv[5]), .n_kv_heads = atoi(argv[6]),
                         .ffn_dim = atoi(argv[7]), .vocab_size = atoi(argv[8]),
                         .max_seq_len = T, .rope_theta = atof(argv[9]), .norm_eps = atof(argv[10]),
                         .init_std = 0.02};
    d.head_dim = d.n_heads > 0 ? d.d_model / d.n_heads : 0;
    herd_model m;
    if (herd_model_create(&m, &d, herd_backend_cpu(), 1)) return 1;
    if (herd_weights_load(&m, argv[1])) return 1;
    int32_t tok[B * T], tgt[B * T], doc[B * T];
    for (int i = 0; i < B * T; i++) {
        tok[i] = (int32_t)(herd_splitmix64(300 + i) % (uint64_t)d.vocab_size);
        tgt[i] = (int32_t)(herd_splitmix64(400 + i) % (uint64_t)d.vocab_size);
        doc[i] = 0;
    }
    int64_t nv;
    herd_model_forward(&m, tok, tgt, doc, B, T, &nv);
    herd_st_tensor out[2] = {{"tokens", "I32", 2, {B, T}, tok},
                             {"logits", "F32", 2, {B * T, d.vocab_size}, m.logits}};
    int rc = herd_safetensors_write(argv[2], out, 2, NULL, 0);
    herd_model_destroy(&m);
    return rc ? 1 : 0;
}
