/* test_attention_flash_bf16.c — the CPU oracle of the tensor-core flash attention
 * (kernels/cpu/attention_flash_bf16.c) against the fp32 CPU flash pair
 * (kernels/cpu/attention_flash.c, itself tested against the materialized
 * attention): within bf16's tolerance of it, not equal to it (the roundings
 * happen), within half a bf16 ulp of it where only P is rounded, and exact
 * where the math allows (one token per document). Documents that change inside
 * a tile, T not a multiple of the tiles, GQA, hd 64 and 128. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/cpu/attention_flash_bf16.h"
#include "kernels/cpu/cpu_ops.h"
#include "src/base/rng.h"
#include "tests/unit/test.h"

static float *randn(size_t n, uint64_t stream)
{
    float *x = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)herd_rng_normal(11, stream, i);
    return x;
}

static void round_all(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = cpu_round_bf16(x[i]);
}

/* max |a - b| / max |b| */
static double rel_err(const float *a, const float *b, size_t n)
{
    double e = 0, m = 1e-30;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return e / m;
}

static double max_abs(const float *a, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i]));
    return m;
}

/* 0: three documents, the boundaries inside tiles; 1: every token its own document */
static void make_docs(int32_t *doc, int B, int T, int each)
{
    for (int b = 0; b < B; b++)
        for (int i = 0; i < T; i++)
            doc[b * T + i] = each ? i : b % 2 ? (i < T / 2 + 1 ? 0 : 1)
                                              : (i < 40 ? 4 : i < 101 ? 5 : 9);
}

typedef struct {
    float *q, *k, *v, *dout, *o, *lse, *dq, *dk, *dv; /* the bf16 oracle's outputs */
    float *fo, *flse, *fdq, *fdk, *fdv;              /* the fp32 flash pair's */
    size_t nq, nk, nl;
} run_t;

/* both pairs on the same inputs; pre_round: inputs already bf16 values */
static void run(run_t *r, int B, int T, int H, int KV, int hd, int each, int pre_round)
{
    r->nq = (size_t)B * T * H * hd;
    r->nk = (size_t)B * T * KV * hd;
    r->nl = (size_t)B * H * T;
    int32_t *doc = malloc(sizeof(int32_t) * B * T);
    make_docs(doc, B, T, each);
    r->q = randn(r->nq, 1); r->k = randn(r->nk, 2); r->v = randn(r->nk, 3);
    r->dout = randn(r->nq, 4);
    if (pre_round) {
        round_all(r->q, r->nq); round_all(r->k, r->nk); round_all(r->v, r->nk);
        round_all(r->dout, r->nq);
    }
    /* outputs start as garbage: the ops overwrite them */
    r->o = randn(r->nq, 5); r->lse = randn(r->nl, 6); r->dq = randn(r->nq, 7);
    r->dk = randn(r->nk, 8); r->dv = randn(r->nk, 9);
    r->fo = calloc(r->nq, 4); r->flse = calloc(r->nl, 4); r->fdq = calloc(r->nq, 4);
    r->fdk = calloc(r->nk, 4); r->fdv = calloc(r->nk, 4);
    cpu_attention_flash_bf16_fwd(r->o, r->lse, r->q, r->k, r->v, doc, B, T, H, KV, hd);
    cpu_attention_flash_bf16_bwd(r->dq, r->dk, r->dv, r->dout, r->o, r->lse, r->q, r->k, r->v,
                                 doc, B, T, H, KV, hd);
    cpu_attention_flash_fwd(r->fo, r->flse, r->q, r->k, r->v, doc, B, T, H, KV, hd);
    cpu_attention_flash_bwd(r->fdq, r->fdk, r->fdv, r->dout, r->fo, r->flse, r->q, r->k, r->v,
                            doc, B, T, H, KV, hd);
    free(doc);
}

static void run_free(run_t *r)
{
    free(r->q); free(r->k); free(r->v); free(r->dout); free(r->o); free(r->lse); free(r->dq);
    free(r->dk); free(r->dv); free(r->fo); free(r->flse); free(r->fdq); free(r->fdk);
    free(r->fdv);
}

/* Against fp32 on fp32 inputs (unit normal q, k, v, dO): the measured worst
 * errors (max |diff| / max |fp32|) are printed; the bounds are bf16's tolerance,
 * 2e-2 of the largest element (as test_cuda_ops' bf16 matmul), 1e-2 for lse
 * (an fp32 softmax of slightly moved scores). And they must differ: more than
 * 1e-4, the fp32 tolerance, in every output, or a rounding was skipped. */
static int vs_fp32(int B, int T, int H, int KV, int hd)
{
    run_t r;
    run(&r, B, T, H, KV, hd, 0, 0);
    double e[5] = {rel_err(r.o, r.fo, r.nq), rel_err(r.lse, r.flse, r.nl),
                   rel_err(r.dq, r.fdq, r.nq), rel_err(r.dk, r.fdk, r.nk),
                   rel_err(r.dv, r.fdv, r.nk)};
    printf("  B %d T %d H %d KV %d hd %d: rel err out %.2e lse %.2e dq %.2e dk %.2e dv %.2e\n", B,
           T, H, KV, hd, e[0], e[1], e[2], e[3], e[4]);
    int ok = e[0] < 2e-2 && e[1] < 1e-2 && e[2] < 2e-2 && e[3] < 2e-2 && e[4] < 2e-2;
    for (int t = 0; t < 5; t++) ok &= e[t] > 1e-4;
    run_free(&r);
    return ok;
}

TEST(flash_bf16_close_to_fp32)
{
    CHECK(vs_fp32(2, 150, 4, 2, 64));   /* GQA, documents change inside tiles */
    CHECK(vs_fp32(1, 200, 4, 2, 128));  /* Llama 3 head_dim, T not a multiple of 64 */
    CHECK(vs_fp32(1, 70, 4, 1, 16));    /* MQA, smallest head_dim */
}

/* Inputs already bf16: the only rounding left in the forward is P's, by at most
 * half a bf16 ulp (2^-9 relative) of each p, so |out - out_fp32| <=
 * 2^-9 max|v| (o is a convex combination of v rows), plus fp32 noise (1e-5);
 * lse is fp32 on both sides (l sums the unrounded p): 1e-5. */
TEST(flash_bf16_only_p_rounded)
{
    run_t r;
    run(&r, 2, 150, 4, 2, 64, 0, 1);
    double bound = ldexp(1.0, -9) * max_abs(r.v, r.nk) + 1e-5, worst = 0, wl = 0;
    for (size_t i = 0; i < r.nq; i++) worst = fmax(worst, fabs((double)r.o[i] - r.fo[i]));
    for (size_t i = 0; i < r.nl; i++) wl = fmax(wl, fabs((double)r.lse[i] - r.flse[i]));
    printf("  out %.2e (bound %.2e), lse %.2e\n", worst, bound, wl);
    CHECK(worst <= bound);
    CHECK(worst > 0); /* P was rounded */
    CHECK(wl <= 1e-5);
    run_free(&r);
}

/* One token per document: p_ii = 1, so out = v_i, lse = s_ii; with bf16 inputs
 * D = dO . v = dP exactly (same sum), so dS = 0: dq = dk = 0 and dv = dO,
 * all bit for bit. */
TEST(flash_bf16_diagonal_exact)
{
    int B = 1, T = 70, H = 4, KV = 2, hd = 64, group = H / KV;
    run_t r;
    run(&r, B, T, H, KV, hd, 1, 1);
    int ok = 1;
    for (int i = 0; i < T; i++)
        for (int h = 0; h < H; h++)
            for (int d = 0; d < hd; d++) {
                size_t qo = ((size_t)i * H + h) * hd + d, ko = ((size_t)i * KV + h / group) * hd + d;
                ok &= r.o[qo] == r.v[ko] && r.dq[qo] == 0.0f && r.dk[ko] == 0.0f;
            }
    CHECK(ok);
    /* dv_j sums dO over the group's heads in head order */
    int okv = 1;
    for (int i = 0; i < T; i++)
        for (int g = 0; g < KV; g++)
            for (int d = 0; d < hd; d++) {
                float s = 0.0f;
                for (int h = g * group; h < (g + 1) * group; h++)
                    s += r.dout[((size_t)i * H + h) * hd + d];
                okv &= r.dv[((size_t)i * KV + g) * hd + d] == s;
            }
    CHECK(okv);
    run_free(&r);
}

int main(void)
{
    RUN(flash_bf16_close_to_fp32);
    RUN(flash_bf16_only_p_rounded);
    RUN(flash_bf16_diagonal_exact);
    return test_summary();
}
