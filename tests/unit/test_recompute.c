/* test_recompute.c — activation recomputation (train.recompute) and the
 * backends' memory ledger (kernels/memstat.h).
 *
 * Recomputation reruns the same ops on the same inputs, so the loss and every
 * gradient must equal the run that keeps everything bit for bit, and the
 * memory it saves is exactly what the dropped tensors weigh: L - 1 layers of
 * them (one layer's scratch stays), less the rerun layer's output buffer
 * (FULL). Shapes: N = B*T tokens, d, q = H*hd, kv = KV*hd, f, att = B*H*T*T
 * (the CPU keeps the materialized probabilities). */
#include <stdlib.h>
#include <string.h>
#include "kernels/backend.h"
#include "kernels/memstat.h"
#include "src/model/model.h"
#include "src/base/rng.h"
#include "tests/unit/test.h"

enum { B = 2, T = 12, L = 3 };
static const herd_model_dims dims = {.n_layers = L, .d_model = 16, .n_heads = 4, .n_kv_heads = 2,
                                     .head_dim = 4, .ffn_dim = 24, .vocab_size = 19,
                                     .max_seq_len = 16, .rope_theta = 500000.0, .norm_eps = 1e-5,
                                     .init_std = 0.3};
static int32_t tok[B * T], tgt[B * T], doc[B * T];

typedef struct {
    double loss;
    float *grads;
    size_t grown;  /* backend bytes the forward and backward added to the model's */
} step_result;

/* One forward and backward of a fresh model with the mode; 0 on success. */
static int step(int mode, step_result *r)
{
    const herd_backend *be = herd_backend_cpu();
    herd_model m;
    if (herd_model_create(&m, &dims, be, 99)) return -1;
    if (herd_model_set_recompute(&m, mode)) return -1;
    size_t before = be->mem_allocated(be);
    be->mem_peak(be, 1);
    int64_t nv;
    herd_model_zero_grad(&m);
    r->loss = herd_model_forward(&m, tok, tgt, doc, B, T, &nv);
    herd_model_backward(&m, 1.0f / (float)nv);
    r->grown = be->mem_peak(be, 0) - before;
    r->grads = malloc(sizeof(float) * m.n_params);
    memcpy(r->grads, m.grads, sizeof(float) * m.n_params);
    int64_t n = m.n_params;
    herd_model_destroy(&m);
    return n == herd_model_dims_total_params(&dims) ? 0 : -1;
}

TEST(recompute_gradients_bitwise)
{
    step_result ref, rc;
    CHECK(step(HERD_RECOMPUTE_NONE, &ref) == 0);
    size_t n = (size_t)herd_model_dims_total_params(&dims);
    for (int mode = HERD_RECOMPUTE_SELECTIVE; mode <= HERD_RECOMPUTE_FULL; mode++) {
        CHECK(step(mode, &rc) == 0);
        CHECK(rc.loss == ref.loss);
        size_t differ = 0;
        for (size_t i = 0; i < n; i++) differ += memcmp(&rc.grads[i], &ref.grads[i], sizeof(float)) != 0;
        if (differ) fprintf(stderr, "  mode %d: %zu of %zu gradients differ\n", mode, differ, n);
        CHECK(differ == 0);
        free(rc.grads);
    }
    free(ref.grads);
}

TEST(recompute_saves_the_dropped_tensors)
{
    step_result none, sel, full;
    CHECK(step(HERD_RECOMPUTE_NONE, &none) == 0);
    CHECK(step(HERD_RECOMPUTE_SELECTIVE, &sel) == 0);
    CHECK(step(HERD_RECOMPUTE_FULL, &full) == 0);
    size_t N = B * T, d = dims.d_model, q = dims.n_heads * dims.head_dim,
           kv = dims.n_kv_heads * dims.head_dim, f = dims.ffn_dim,
           att = (size_t)B * dims.n_heads * T * T;
    /* SELECTIVE drops h1, h2 [N, d] and act [N, f] */
    size_t sel_layer = (2 * N * d + N * f) * sizeof(float);
    /* FULL keeps x_in only: h1, rstd1, q, k, v, att, o, x_mid, h2, rstd2, gate, up, act */
    size_t full_layer = (N * d + N + N * q + 2 * N * kv + att + N * q + N * d + N * d + N + 3 * N * f) *
                        sizeof(float);
    size_t rc_out = N * d * sizeof(float);
    fprintf(stderr, "  activation bytes: none %zu, selective %zu, full %zu\n", none.grown, sel.grown,
            full.grown);
    CHECK(none.grown - sel.grown == (L - 1) * sel_layer);
    CHECK(none.grown - full.grown == (L - 1) * full_layer - rc_out);
    free(none.grads);
    free(sel.grads);
    free(full.grads);
}

TEST(recompute_mode_checked)
{
    herd_model m;
    CHECK(herd_model_create(&m, &dims, herd_backend_cpu(), 1) == 0);
    CHECK(herd_model_set_recompute(&m, 3) == -1);
    CHECK(herd_model_set_recompute(&m, -1) == -1);
    CHECK(herd_model_set_recompute(&m, HERD_RECOMPUTE_FULL) == 0);
    herd_model_destroy(&m);
}

TEST(memstat_counts_peaks_and_resets)
{
    herd_memstat *s = herd_memstat_create();
    CHECK(s != NULL);
    /* many live pointers (the table grows) and churn (tombstones must not leak) */
    enum { LIVE = 1000, CHURN = 100000 };
    static char blocks[LIVE];
    for (int i = 0; i < LIVE; i++) CHECK(herd_memstat_add(s, &blocks[i], (size_t)i + 1) == 0);
    size_t total = (size_t)LIVE * (LIVE + 1) / 2;
    CHECK(herd_memstat_current(s) == total);
    CHECK(herd_memstat_peak(s, 0) == total);
    for (int i = 0; i < LIVE; i += 2) CHECK(herd_memstat_remove(s, &blocks[i]) == (size_t)i + 1);
    size_t half = 0;
    for (int i = 1; i < LIVE; i += 2) half += (size_t)i + 1;
    CHECK(herd_memstat_current(s) == half);
    CHECK(herd_memstat_peak(s, 1) == total);  /* read, then restart from the current bytes */
    CHECK(herd_memstat_peak(s, 0) == half);
    CHECK(herd_memstat_remove(s, &blocks[0]) == 0);  /* already gone */
    CHECK(herd_memstat_remove(s, NULL) == 0);
    for (int k = 0; k < CHURN; k++) {
        void *p = &blocks[2 * (k % (LIVE / 2))];
        CHECK(herd_memstat_add(s, p, 7) == 0);
        CHECK(herd_memstat_remove(s, p) == 7);
    }
    CHECK(herd_memstat_current(s) == half);
    CHECK(herd_memstat_peak(s, 0) == half + 7);
}

int main(void)
{
    for (int i = 0; i < B * T; i++) {
        tok[i] = (int32_t)(herd_splitmix64(i) % 19);
        tgt[i] = i % T == T - 1 ? -1 : (int32_t)(herd_splitmix64(i + 1) % 19);
        doc[i] = (i % T) / 5;  /* three documents per sequence */
    }
    RUN(recompute_gradients_bitwise);
    RUN(recompute_saves_the_dropped_tensors);
    RUN(recompute_mode_checked);
    RUN(memstat_counts_peaks_and_resets);
    return test_summary();
}
