/* test_xent_chunk.c — the output projection fused with the cross-entropy in
 * vocabulary chunks (train.xent_chunk, src/model/model.c xent_forward_chunked):
 *  - the backend op xent_chunk_update, folded chunk after chunk, against a
 *    direct double-precision max / sum of exp / picked logit of the whole row;
 *  - a model step with chunks against the stored-logits path: the loss and
 *    every gradient within 1e-5 relative. Not bitwise: the online softmax sums
 *    the exponentials per chunk against a running max and rescales the float
 *    running sum when the max moves, so the rounding of the sum differs (the
 *    GEMMs of a chunk are the same rows of lm_head, but BLAS may block a
 *    narrower GEMM differently too);
 *  - the chunked model keeps no [N, V] logits (m->logits NULL, no slot logits). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/backend.h"
#include "src/model/model.h"
#include "src/base/rng.h"
#include "tests/unit/test.h"

static const herd_backend *be;

static float *randn(size_t n, uint64_t stream, float std)
{
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)(std * herd_rng_normal(5, stream, i));
    return x;
}

/* This "rank" holds ids [vs, vs + V); chunks of Vc (the last one short). */
TEST(chunk_update_matches_double)
{
    enum { n = 9, V = 50, vs = 100 };
    int chunks[] = {7, 1, 49, 50};
    float *logits = randn((size_t)n * V, 1, 3);
    /* row 0 rises along the row: the max moves in every chunk (the rescale
     * path); row 1 falls: the first chunk holds it */
    for (int j = 0; j < V; j++) logits[j] = 0.25f * j, logits[V + j] = -0.25f * j;
    int32_t tg[n] = {vs + 49, vs, -1, vs - 1, vs + V, vs + 13, vs + 7, vs + 6, vs + 21};
    for (size_t k = 0; k < sizeof chunks / sizeof chunks[0]; k++) {
        int Vc = chunks[k];
        float mx[n], se[n], pk[n];
        for (int i = 0; i < n; i++) mx[i] = -INFINITY, se[i] = 0.0f, pk[i] = 0.0f;
        float *buf = malloc(sizeof(float) * n * Vc);
        for (int v = 0; v < V; v += Vc) {
            int w = V - v < Vc ? V - v : Vc;
            for (int i = 0; i < n; i++) /* the chunk as its own [n, w] matrix, as the GEMM writes it */
                memcpy(buf + (size_t)i * w, logits + (size_t)i * V + v, sizeof(float) * w);
            be->xent_chunk_update(be, mx, se, pk, buf, tg, vs + v, n, w);
        }
        free(buf);
        for (int i = 0; i < n; i++) {
            const float *row = logits + (size_t)i * V;
            double m = row[0];
            for (int j = 1; j < V; j++) m = row[j] > m ? row[j] : m;
            double s = 0.0;
            for (int j = 0; j < V; j++) s += exp((double)row[j] - m);
            int t = tg[i] - vs;
            double p = tg[i] >= 0 && t >= 0 && t < V ? row[t] : 0.0;
            CHECK(mx[i] == (float)m);                     /* a max is exact */
            CHECK_NEAR(se[i], s, 1e-6 * s);
            CHECK(pk[i] == (float)p);                      /* a copy is exact */
            CHECK_NEAR(mx[i] + log(se[i]), m + log(s), 1e-6 * fabs(m + log(s)) + 1e-6);
        }
    }
    free(logits);
}

/* ---- a model step ---------------------------------------------------------- */

enum { B = 2, T = 12, VOCAB = 19 };
static const herd_model_dims dims = {.n_layers = 2, .d_model = 16, .n_heads = 4, .n_kv_heads = 2,
                                     .head_dim = 4, .ffn_dim = 24, .vocab_size = VOCAB,
                                     .max_seq_len = 16, .rope_theta = 500000.0, .norm_eps = 1e-5,
                                     .init_std = 0.3};
static int32_t tok[B * T], tgt[B * T], doc[B * T];

/* Two micro-batches (the second with other targets) accumulated, as the
 * trainer does: the loss sum of each and the gradients. */
static int step(herd_model *m, int xent_chunk, double loss[2])
{
    herd_model_parallel par = {0};
    par.xent_chunk = xent_chunk;
    if (herd_model_create_parallel(m, &dims, be, 77, &par)) return -1;
    herd_model_zero_grad(m);
    for (int k = 0; k < 2; k++) {
        int32_t t2[B * T];
        for (int i = 0; i < B * T; i++) t2[i] = k && tgt[i] >= 0 ? (tgt[i] + 5) % VOCAB : tgt[i];
        int64_t nv;
        loss[k] = herd_model_forward(m, tok, t2, doc, B, T, &nv);
        if (isnan(loss[k]) || nv != 22) return -1;
        if ((m->logits == NULL) != (xent_chunk > 0 && xent_chunk < VOCAB)) return -1;
        herd_model_backward(m, 1.0f / (float)nv);
    }
    return 0;
}

/* |a - b| <= rel * max|b| over each tensor (elementwise relative is
 * meaningless for gradients that are near 0 by chance) */
static int grads_close(const herd_model *a, const herd_model *b, double rel)
{
    int ok = 1;
    for (int i = 0; i < b->n_tensors; i++) {
        const herd_tensor *t = &b->tensors[i];
        const float *ga = a->grads + t->offset, *gb = b->grads + t->offset;
        double mx = 0.0, worst = 0.0;
        for (int64_t j = 0; j < t->numel; j++) {
            mx = fmax(mx, fabs(gb[j]));
            worst = fmax(worst, fabs((double)ga[j] - gb[j]));
        }
        if (!(mx > 0.0) || worst > rel * mx) {
            fprintf(stderr, "  %s: max |diff| %.3g, max |grad| %.3g\n", t->name, worst, mx);
            ok = 0;
        }
    }
    return ok;
}

TEST(model_chunked_matches_whole)
{
    for (int i = 0; i < B * T; i++) {
        tok[i] = (int32_t)(herd_splitmix64(i) % VOCAB);
        tgt[i] = i % T == T - 1 ? -1 : (int32_t)(herd_splitmix64(i + 1) % VOCAB);
        doc[i] = (i % T) / 5;
    }
    herd_model ref;
    double lref[2];
    CHECK(step(&ref, 0, lref) == 0);
    /* 7: chunks 7, 7, 5 (the last one short); 1: a column at a time; 18: 18 + 1;
     * 19 = the vocabulary: one chunk, which is the stored-logits path itself */
    int chunks[] = {7, 1, 18, VOCAB};
    for (size_t k = 0; k < sizeof chunks / sizeof chunks[0]; k++) {
        herd_model m;
        double l[2];
        CHECK(step(&m, chunks[k], l) == 0);
        for (int j = 0; j < 2; j++) CHECK_NEAR(l[j], lref[j], 1e-5 * fabs(lref[j]));
        if (!grads_close(&m, &ref, 1e-5)) {
            fprintf(stderr, "  xent_chunk %d: gradients differ\n", chunks[k]);
            CHECK(0);
        }
        if (chunks[k] < VOCAB) { /* the head stored one chunk, never [N, V] */
            CHECK(m.xent_scratch != NULL);
            for (int s = 0; s < m.n_slots; s++) CHECK(m.slots[s].logits == NULL);
        } else {
            CHECK(m.xent_scratch == NULL);
        }
        herd_model_destroy(&m);
    }
    herd_model_destroy(&ref);
}

TEST(negative_chunk_refused)
{
    herd_model m;
    herd_model_parallel par = {0};
    par.xent_chunk = -3;
    fprintf(stderr, "  (an error message naming train.xent_chunk is expected next)\n");
    CHECK(herd_model_create_parallel(&m, &dims, be, 1, &par) == -1);
}

/* ---- the memory it saves ------------------------------------------------------
 * The bytes the last stage allocates for its activations (herd_model_reserve's
 * shared scratch + one slot), counted at the backend's alloc, at the Llama 3
 * vocabulary (128256) and 8192 tokens a micro-batch, with and without chunks of
 * 4096. The model is narrow (d_model 8: the d-wide buffers do not change with
 * chunking); the CPU backend's calloc leaves the untouched pages unmapped, so
 * the 4.2 GB of logits cost no memory here. */
static size_t counted;
static void *count_alloc(const herd_backend *be, size_t bytes)
{
    counted += bytes;
    return herd_backend_cpu()->alloc(be, bytes);
}

static size_t head_bytes(int xent_chunk)
{
    herd_backend cnt = *herd_backend_cpu();
    cnt.alloc = count_alloc;
    herd_model_dims d = {.n_layers = 1, .d_model = 8, .n_heads = 2, .n_kv_heads = 1,
                         .head_dim = 4, .ffn_dim = 8, .vocab_size = 128256,
                         .max_seq_len = 8192, .rope_theta = 500000.0, .norm_eps = 1e-5,
                         .init_std = 0.02};
    herd_model m;
    herd_model_parallel par = {0};
    par.xent_chunk = xent_chunk;
    if (herd_model_create_parallel(&m, &d, &cnt, 1, &par)) return 0;
    counted = 0;
    size_t got = herd_model_reserve(&m, 1, 8192) == 0 && herd_model_slot_acquire(&m, 0) == 0
                     ? counted : 0;
    herd_model_destroy(&m);
    return got;
}

TEST(head_bytes_at_8b_vocabulary)
{
    size_t whole = head_bytes(0), chunked = head_bytes(4096);
    printf("# activations allocated, 1 layer of d_model 8, vocab 128256, 8192 tokens: "
           "xent_chunk 0 %zu bytes, xent_chunk 4096 %zu bytes, saved %zu\n", whole, chunked,
           whole - chunked);
    CHECK(whole > 0 && chunked > 0);
    /* logits [8192, 128256] fp32 out, one chunk [8192, 4096] in */
    CHECK(whole - chunked == (size_t)8192 * (128256 - 4096) * 4);
}

int main(void)
{
    be = herd_backend_cpu();
    RUN(chunk_update_matches_double);
    RUN(model_chunked_matches_whole);
    RUN(negative_chunk_refused);
    RUN(head_bytes_at_8b_vocabulary);
    return test_summary();
}
