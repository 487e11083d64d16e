/* post_dump.c — run herd's DPO and reward-model losses once on a small model
 * and dump what PyTorch needs to check them (tests/golden/post_ref.py):
 *   DIR/post_in.safetensors   policy weights, "ref."-prefixed reference weights,
 *                             the DPO batch (dpo.*) and the RM batch (rm.*)
 *   DIR/post_out.safetensors  both losses and every parameter gradient
 *
 *   build/tests/post_dump DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/post/dpo.h"
#include "src/model/model.h"
#include "src/post/reward.h"
#include "src/base/rng.h"
#include "checkpoint/safetensors.h"
#include "src/base/safetensors.h"

enum { P = 2, T = 16, RB = 5, V = 67, HEAD = 3 };

static void nontrivial_norms(herd_model *m, uint64_t seed)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].ndim == 1)
            for (int64_t j = 0; j < m->tensors[i].numel; j++)
                m->params[m->tensors[i].offset + j] = 1.0f + 0.2f * (float)herd_rng_normal(seed, i, j);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: post_dump DIR\n");
        return 2;
    }
    herd_model_dims d = {.n_layers = 2, .d_model = 48, .n_heads = 6, .n_kv_heads = 2,
                         .head_dim = 8, .ffn_dim = 80, .vocab_size = V, .max_seq_len = 32,
                         .rope_theta = 10000.0, .norm_eps = 1e-5, .init_std = 0.1};
    herd_model pol, ref;
    if (herd_model_create(&pol, &d, herd_backend_cpu(), 2024) ||
        herd_model_create(&ref, &d, herd_backend_cpu(), 2025))
        return 1;
    nontrivial_norms(&pol, 5);
    nontrivial_norms(&ref, 6);

    /* DPO: rows chosen 0, chosen 1, rejected 0, rejected 1; pair p shares its prompt */
    int32_t tok[2 * P * T], tgt[2 * P * T], doc[2 * P * T];
    const int plen[P] = {5, 7}, end[2 * P] = {12, 16, 9, 14};
    for (int r = 0; r < 2 * P; r++)
        for (int t = 0; t < T; t++) {
            int i = r * T + t, p = r % P;
            tok[i] = t < plen[p] ? (int32_t)(herd_splitmix64(300 + p * T + t) % V)
                                 : (int32_t)(herd_splitmix64(400 + i) % V);
            doc[i] = t < end[r] ? 0 : 1;
            tgt[i] = t >= plen[p] - 1 && t < end[r] - 1 ? tok[i + 1] : -1;
        }
    tgt[1 * T + 10] = -1; /* a masked formatting token inside a response */
    double ref_lp[2 * P];
    herd_dpo_opts o = {0.1, 0.2};
    herd_dpo_stats st;
    if (herd_dpo_reference(&ref, tok, tgt, doc, P, T, ref_lp)) return 1;
    herd_model_zero_grad(&pol);
    if (herd_dpo_step(&pol, tok, tgt, doc, P, T, ref_lp, &o, 1, &st)) return 1;
    int n = pol.n_tensors;
    float *dgrad = malloc(sizeof(float) * (size_t)pol.n_params);
    memcpy(dgrad, pol.grads, sizeof(float) * (size_t)pol.n_params);
    float dloss = (float)st.loss;

    /* RM: prompt 0 with three ranked responses, prompt 1 with two */
    int32_t rtok[RB * T], rdoc[RB * T];
    int last[RB] = {9, 13, 6, 15, 11}, group[RB] = {0, 0, 0, 1, 1}, rank[RB] = {0, 1, 2, 0, 1};
    for (int i = 0; i < RB * T; i++) {
        rtok[i] = (int32_t)(herd_splitmix64(700 + i) % V);
        rdoc[i] = i % T <= last[i / T] ? 0 : 1;
    }
    herd_rm_stats rs;
    herd_model_zero_grad(&pol);
    if (herd_rm_step(&pol, rtok, rdoc, RB, T, last, group, rank, HEAD, 1, &rs)) return 1;
    float rloss = (float)rs.loss;

    herd_st_tensor *ts = calloc(2 * n + 8, sizeof *ts);
    char (*names)[96] = calloc(2 * n, sizeof *names);
    int k = 0;
    for (int i = 0; i < n; i++) {
        const herd_tensor *t = &pol.tensors[i];
        ts[k++] = (herd_st_tensor){t->name, "F32", t->ndim, {t->shape[0], t->shape[1]},
                                   pol.params + t->offset};
        snprintf(names[i], sizeof names[i], "ref.%s", t->name);
        ts[k++] = (herd_st_tensor){names[i], "F32", t->ndim, {t->shape[0], t->shape[1]},
                                   ref.params + t->offset};
    }
    ts[k++] = (herd_st_tensor){"dpo.tokens", "I32", 2, {2 * P, T}, tok};
    ts[k++] = (herd_st_tensor){"dpo.targets", "I32", 2, {2 * P, T}, tgt};
    ts[k++] = (herd_st_tensor){"dpo.doc", "I32", 2, {2 * P, T}, doc};
    ts[k++] = (herd_st_tensor){"rm.tokens", "I32", 2, {RB, T}, rtok};
    ts[k++] = (herd_st_tensor){"rm.doc", "I32", 2, {RB, T}, rdoc};
    ts[k++] = (herd_st_tensor){"rm.last", "I32", 1, {RB}, last};
    ts[k++] = (herd_st_tensor){"rm.group", "I32", 1, {RB}, group};
    ts[k++] = (herd_st_tensor){"rm.rank", "I32", 1, {RB}, rank};
    char dims[512], path[4096];
    snprintf(dims, sizeof dims, "%d %d %d %d %d %d %.17g %.17g", d.n_layers, d.d_model,
             d.n_heads, d.n_kv_heads, d.ffn_dim, d.vocab_size, d.rope_theta, d.norm_eps);
    char post[128];
    snprintf(post, sizeof post, "%.17g %.17g %d", o.beta, o.nll_coef, HEAD);
    const char *meta[] = {"dims", dims, "dims_order",
                          "n_layers d_model n_heads n_kv_heads ffn_dim vocab_size rope_theta norm_eps",
                          "post", post};
    snprintf(path, sizeof path, "%s/post_in.safetensors", argv[1]);
    if (herd_safetensors_write(path, ts, k, meta, 3)) return 1;

    k = 0;
    ts[k++] = (herd_st_tensor){"dpo.loss", "F32", 1, {1}, &dloss};
    ts[k++] = (herd_st_tensor){"rm.loss", "F32", 1, {1}, &rloss};
    for (int i = 0; i < n; i++) {
        const herd_tensor *t = &pol.tensors[i];
        snprintf(names[i], sizeof names[i], "dpo.grad.%s", t->name);
        ts[k++] = (herd_st_tensor){names[i], "F32", t->ndim, {t->shape[0], t->shape[1]},
                                   dgrad + t->offset};
        snprintf(names[n + i], sizeof names[n + i], "rm.grad.%s", t->name);
        ts[k++] = (herd_st_tensor){names[n + i], "F32", t->ndim, {t->shape[0], t->shape[1]},
                                   pol.grads + t->offset};
    }
    snprintf(path, sizeof path, "%s/post_out.safetensors", argv[1]);
    int rc = herd_safetensors_write(path, ts, k, NULL, 0);
    printf("post_dump: dpo loss %.6f (margin %.4f), rm loss %.6f over %d pairs\n", st.loss,
           st.margin, rs.loss, rs.pairs);
    free(ts);
    free(names);
    free(dgrad);
    herd_model_destroy(&pol);
    herd_model_destroy(&ref);
    return rc ? 1 : 0;
}
