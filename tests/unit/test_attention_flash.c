/* test_attention_flash.c — the CPU flash-attention pair (kernels/cpu/attention_flash.c,
 * the oracle of the GPU kernel) against the materialized CPU attention: the same
 * outputs and gradients; lse equal to the log of the softmax denominator recomputed
 * here in double; whole key tiles skipped without changing the result (documents
 * that change inside a tile, ids that are not increasing, T not a multiple of
 * the tiles, GQA and MQA). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/backend.h"
#include "src/base/rng.h"
#include "tests/unit/test.h"

static const herd_backend *cpu;

static float *randn(size_t n, uint64_t stream)
{
    float *x = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)herd_rng_normal(5, stream, i);
    return x;
}

/* max |a - b| relative to max |b| */
static double rel_err(const float *a, const float *b, size_t n)
{
    double e = 0, m = 1e-30;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return e / m;
}

enum { DOCS_RUNS, DOCS_ONE, DOCS_UNSORTED, DOCS_EACH };

static void make_docs(int32_t *doc, int B, int T, int kind)
{
    for (int b = 0; b < B; b++)
        for (int i = 0; i < T; i++) {
            int32_t *d = &doc[b * T + i];
            switch (kind) {
            case DOCS_RUNS: *d = b % 2 ? (i < T / 2 + 1 ? 0 : 1) : (i < 40 ? 4 : i < 70 ? 5 : 9); break;
            case DOCS_ONE: *d = 7; break;
            case DOCS_UNSORTED: *d = i < T / 3 ? 9 : i < 2 * T / 3 ? 2 : 5; break;
            default: *d = i; /* every token its own document: only the diagonal */
            }
        }
}

static int flash_case(int B, int T, int H, int KV, int hd, int docs)
{
    size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KV * hd;
    int32_t *doc = malloc(sizeof(int32_t) * B * T);
    make_docs(doc, B, T, docs);
    float *q = randn(nq, 1), *k = randn(nk, 2), *v = randn(nk, 3), *dout = randn(nq, 4);
    float *o = calloc(nq, 4), *att = calloc((size_t)B * H * T * T, 4), *scr = calloc((size_t)T * T, 4),
          *dq = calloc(nq, 4), *dk = calloc(nk, 4), *dv = calloc(nk, 4);
    float *fo = calloc(nq, 4), *lse = calloc((size_t)B * H * T, 4);
    /* the flash outputs start as garbage: the ops overwrite them */
    float *fdq = randn(nq, 7), *fdk = randn(nk, 8), *fdv = randn(nk, 9);
    cpu->attention_fwd(cpu, o, att, q, k, v, doc, B, T, H, KV, hd);
    cpu->attention_flash_fwd(cpu, fo, lse, q, k, v, doc, B, T, H, KV, hd);
    cpu->attention_bwd(cpu, dq, dk, dv, scr, dout, att, q, k, v, doc, B, T, H, KV, hd);
    cpu->attention_flash_bwd(cpu, fdq, fdk, fdv, dout, fo, lse, q, k, v, doc, B, T, H, KV, hd);
    /* lse against the denominator in double */
    double lse_err = 0, scale = 1.0 / sqrt((double)hd);
    int group = H / KV;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++) {
                const float *qi = q + (((size_t)b * T + i) * H + h) * hd;
                double mx = -INFINITY, s[4096];
                for (int j = 0; j <= i; j++) {
                    s[j] = -INFINITY;
                    if (doc[b * T + j] != doc[b * T + i]) continue;
                    const float *kj = k + (((size_t)b * T + j) * KV + h / group) * hd;
                    double d = 0;
                    for (int e = 0; e < hd; e++) d += (double)qi[e] * kj[e];
                    s[j] = d * scale;
                    mx = fmax(mx, s[j]);
                }
                double sum = 0;
                for (int j = 0; j <= i; j++) sum += exp(s[j] - mx);
                lse_err = fmax(lse_err, fabs(lse[((size_t)b * H + h) * T + i] - (mx + log(sum))));
            }
    double e[4] = {rel_err(fo, o, nq), rel_err(fdq, dq, nq), rel_err(fdk, dk, nk),
                   rel_err(fdv, dv, nk)};
    int ok = e[0] < 1e-5 && e[1] < 1e-4 && e[2] < 1e-4 && e[3] < 1e-4 && lse_err < 1e-5;
    if (!ok)
        fprintf(stderr, "  B%d T%d H%d KV%d hd%d docs %d: out %.3g dq %.3g dk %.3g dv %.3g lse %.3g\n",
                B, T, H, KV, hd, docs, e[0], e[1], e[2], e[3], lse_err);
    free(doc); free(q); free(k); free(v); free(dout); free(o); free(att); free(scr); free(dq);
    free(dk); free(dv); free(fo); free(lse); free(fdq); free(fdk); free(fdv);
    return ok;
}

TEST(flash_cpu_matches_materialized)
{
    CHECK(cpu->attention_flash_fwd && cpu->attention_flash_bwd);
    if (!cpu->attention_flash_fwd) return;
    CHECK(flash_case(2, 19, 4, 2, 8, DOCS_RUNS));      /* shorter than one tile */
    CHECK(flash_case(2, 150, 4, 2, 16, DOCS_RUNS));    /* several tiles, documents change mid-tile */
    CHECK(flash_case(1, 97, 6, 1, 8, DOCS_ONE));       /* MQA, plain causal */
    CHECK(flash_case(1, 130, 2, 2, 4, DOCS_UNSORTED)); /* ids not increasing */
    CHECK(flash_case(1, 70, 4, 4, 8, DOCS_EACH));      /* only the diagonal: most tiles empty */
}

/* the CPU table offers the flash pair as an oracle; the model keeps the materialized path */
TEST(flash_cpu_not_preferred)
{
    CHECK(cpu->prefer_flash == 0);
}

int main(void)
{
    cpu = herd_backend_cpu();
    RUN(flash_cpu_matches_materialized);
    RUN(flash_cpu_not_preferred);
    return test_summary();
}
