/* golden_dump.c — run herd's model once and dump everything PyTorch needs to
 * check it: weights + inputs (weights.safetensors), then logits, loss and every
 * parameter gradient (out.safetensors). tests/golden/llama_ref.py compares.
 *
 *   build/tests/golden_dump OUTDIR
 *
 * The model exercises the parts most easily got wrong: GQA (6 query heads over
 * 2 kv heads), a non-default RoPE theta (10000), several documents per
 * sequence (the document mask) and ignored targets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/model/model.h"
#include "src/base/rng.h"
#include "checkpoint/safetensors.h"
#include "src/base/safetensors.h"

enum { B = 2, T = 24 };

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: golden_dump OUTDIR\n");
        return 2;
    }
    herd_model_dims d = {.n_layers = 2, .d_model = 48, .n_heads = 6, .n_kv_heads = 2,
                         .head_dim = 8, .ffn_dim = 80, .vocab_size = 67, .max_seq_len = 32,
                         .rope_theta = 10000.0, .norm_eps = 1e-5, .init_std = 0.1};
    herd_model m;
    if (herd_model_create(&m, &d, herd_backend_cpu(), 2024)) return 1;
    /* the norm weights start at 1; make them non-trivial so their use is checked */
    for (int i = 0; i < m.n_tensors; i++)
        if (m.tensors[i].ndim == 1)
            for (int64_t j = 0; j < m.tensors[i].numel; j++)
                m.params[m.tensors[i].offset + j] = 1.0f + 0.2f * (float)herd_rng_normal(5, i, j);

    int32_t tok[B * T], tgt[B * T], doc[B * T];
    const int doc_len[B][3] = {{8, 10, 6}, {15, 9, 0}};
    for (int b = 0; b < B; b++) {
        int t = 0;
        for (int k = 0; k < 3; k++)
            for (int j = 0; j < doc_len[b][k]; j++, t++) doc[b * T + t] = k;
    }
    for (int i = 0; i < B * T; i++) {
        tok[i] = (int32_t)(herd_splitmix64(100 + i) % 67);
        tgt[i] = (int32_t)(herd_splitmix64(200 + i) % 67);
    }
    tgt[5] = tgt[30] = -1;

    char path[4096];
    int n = m.n_tensors;
    herd_st_tensor *ts = calloc(n + 3, sizeof *ts);
    for (int i = 0; i < n; i++) {
        const herd_tensor *t = &m.tensors[i];
        ts[i] = (herd_st_tensor){t->name, "F32", t->ndim, {t->shape[0], t->shape[1]},
                                 m.params + t->offset};
    }
    ts[n] = (herd_st_tensor){"input.tokens", "I32", 2, {B, T}, tok};
    ts[n + 1] = (herd_st_tensor){"input.targets", "I32", 2, {B, T}, tgt};
    ts[n + 2] = (herd_st_tensor){"input.doc", "I32", 2, {B, T}, doc};
    char dims[512];
    snprintf(dims, sizeof dims, "%d %d %d %d %d %d %.17g %.17g", d.n_layers, d.d_model,
             d.n_heads, d.n_kv_heads, d.ffn_dim, d.vocab_size, d.rope_theta, d.norm_eps);
    const char *meta[] = {"dims", dims, "dims_order",
                          "n_layers d_model n_heads n_kv_heads ffn_dim vocab_size rope_theta norm_eps"};
    snprintf(path, sizeof path, "%s/weights.safetensors", argv[1]);
    if (herd_safetensors_write(path, ts, n + 3, meta, 2)) return 1;

    int64_t nv;
    herd_model_zero_grad(&m);
    double loss_sum = herd_model_forward(&m, tok, tgt, doc, B, T, &nv);
    float loss = (float)(loss_sum / nv);
    float *logits = malloc(sizeof(float) * B * T * d.vocab_size);
    memcpy(logits, m.logits, sizeof(float) * B * T * d.vocab_size); /* before the backward */
    herd_model_backward(&m, 1.0f / nv);

    herd_st_tensor *out = calloc(n + 2, sizeof *out);
    char (*names)[80] = calloc(n, sizeof *names);
    out[0] = (herd_st_tensor){"logits", "F32", 2, {B * T, d.vocab_size}, logits};
    out[1] = (herd_st_tensor){"loss", "F32", 1, {1}, &loss};
    for (int i = 0; i < n; i++) {
        const herd_tensor *t = &m.tensors[i];
        snprintf(names[i], sizeof names[i], "grad.%s", t->name);
        out[i + 2] = (herd_st_tensor){names[i], "F32", t->ndim, {t->shape[0], t->shape[1]},
                                      m.grads + t->offset};
    }
    snprintf(path, sizeof path, "%s/out.safetensors", argv[1]);
    int rc = herd_safetensors_write(path, out, n + 2, NULL, 0);
    printf("golden_dump: %d tensors, %lld valid targets, loss %.6f\n", n, (long long)nv, loss);
    free(ts); free(out); free(names); free(logits);
    herd_model_destroy(&m);
    return rc ? 1 : 0;
}
