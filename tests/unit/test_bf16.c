/* test_bf16.c — BF16 compute on the CPU backend (train.precision bf16): the
 * rounding to bfloat16 and the matmul ops in bf16 mode, the oracle of the
 * CUDA backend's cuBLASLt path (tests/unit/test_cuda_ops.c compares them).
 *
 * bf16 keeps fp32's exponent and 7 of its 23 mantissa bits; rounding is to
 * nearest, ties to even. In bf16 mode matmul_fwd / matmul_bwd must equal the
 * fp32 ops applied to rounded copies of every input, bit for bit (the sums
 * stay fp32), and the fp32 mode must come back untouched. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/backend.h"
#include "kernels/cpu/cpu_ops.h"
#include "src/base/rng.h"
#include "tests/unit/test.h"

static const herd_backend *be;

static float bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

TEST(bf16_rounding)
{
    float ulp = ldexpf(1.0f, -7);  /* bf16 spacing in [1, 2) */
    CHECK(cpu_round_bf16(1.0f) == 1.0f);
    CHECK(cpu_round_bf16(1.0f + ulp) == 1.0f + ulp);                      /* representable */
    CHECK(cpu_round_bf16(1.0f + ulp / 2) == 1.0f);                        /* tie -> even (1.0) */
    CHECK(cpu_round_bf16(1.0f + 3 * ulp / 2) == 1.0f + 2 * ulp);          /* tie -> even (1+2ulp) */
    CHECK(cpu_round_bf16(1.0f + ulp / 2 + ldexpf(1, -20)) == 1.0f + ulp); /* above the tie */
    CHECK(cpu_round_bf16(1.0f + ulp / 2 - ldexpf(1, -20)) == 1.0f);       /* below it */
    CHECK(cpu_round_bf16(-(1.0f + 3 * ulp / 2)) == -(1.0f + 2 * ulp));    /* symmetric */
    CHECK(cpu_round_bf16(2.0f - ulp / 4) == 2.0f);                        /* carries into the exponent */
    CHECK(isinf(cpu_round_bf16(INFINITY)) && cpu_round_bf16(-INFINITY) < 0);
    CHECK(isnan(cpu_round_bf16(NAN)));
    CHECK(isnan(cpu_round_bf16(bits_float(0x7f800001u)))); /* a NaN whose payload is in the dropped bits */
    CHECK(isinf(cpu_round_bf16(3.4e38f)));                 /* beyond bf16's largest finite: inf */
    CHECK(cpu_round_bf16(ldexpf(1, -130)) == ldexpf(1, -130)); /* subnormal, representable */
    /* on random values: the low 16 bits are zero and the error is at most half an ulp */
    for (uint64_t i = 0; i < 100000; i++) {
        float x = (float)herd_rng_normal(5, 1, i) * ldexpf(1, (int)(herd_splitmix64(i) % 40) - 20);
        float r = cpu_round_bf16(x);
        uint32_t u;
        memcpy(&u, &r, sizeof u);
        int e;
        frexpf(x, &e);
        if ((u & 0xffffu) || fabsf(r - x) > ldexpf(1, e - 9)) {
            fprintf(stderr, "  round(%.9g) = %.9g\n", x, r);
            CHECK(0);
            break;
        }
    }
}

static float *randn(size_t n, uint64_t stream)
{
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)herd_rng_normal(7, stream, i);
    return x;
}

static float *rounded(const float *x, size_t n)
{
    float *r = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) r[i] = cpu_round_bf16(x[i]);
    return r;
}

static int same(const float *a, const float *b, size_t n) { return !memcmp(a, b, n * sizeof(float)); }

TEST(bf16_matmul_is_fp32_sums_of_rounded_inputs)
{
    int M = 37, N = 29, K = 41;
    size_t mk = (size_t)M * K, nk = (size_t)N * K, mn = (size_t)M * N;
    float *a = randn(mk, 1), *w = randn(nk, 2), *dout = randn(mn, 3);
    float *a16 = rounded(a, mk), *w16 = rounded(w, nk), *d16 = rounded(dout, mn);
    float *out = randn(mn, 4), *ref = malloc(mn * sizeof(float));
    memcpy(ref, out, mn * sizeof(float));
    float *da = calloc(mk, sizeof(float)), *dw = randn(nk, 5), *da_ref = calloc(mk, sizeof(float)),
          *dw_ref = malloc(nk * sizeof(float));
    memcpy(dw_ref, dw, nk * sizeof(float));

    be->set_matmul_bf16(be, 0); /* the reference: fp32 ops on rounded inputs */
    be->matmul_fwd(be, ref, a16, w16, M, N, K, 1);
    be->matmul_bwd(be, da_ref, dw_ref, d16, a16, w16, M, N, K, 0);
    be->set_matmul_bf16(be, 1);
    be->matmul_fwd(be, out, a, w, M, N, K, 1);
    be->matmul_bwd(be, da, dw, dout, a, w, M, N, K, 0);
    CHECK(same(out, ref, mn));
    CHECK(same(da, da_ref, mk));
    CHECK(same(dw, dw_ref, nk));
    /* the inputs are not touched */
    float *a_again = randn(mk, 1);
    CHECK(same(a, a_again, mk));
    /* and fp32 mode is fp32 again: not the bf16 result */
    be->set_matmul_bf16(be, 0);
    be->matmul_fwd(be, out, a, w, M, N, K, 0);
    be->matmul_fwd(be, ref, a16, w16, M, N, K, 0);
    double diff = 0, mx = 0;
    for (size_t i = 0; i < mn; i++) {
        diff = fmax(diff, fabs(out[i] - ref[i]));
        mx = fmax(mx, fabs(ref[i]));
    }
    /* rounding K terms of unit size: differences of order sqrt(K) * 2^-8 */
    CHECK(diff > 1e-4 * mx && diff < 5e-2 * mx);
    free(a); free(w); free(dout); free(a16); free(w16); free(d16); free(out); free(ref);
    free(da); free(dw); free(da_ref); free(dw_ref); free(a_again);
}

/* weights_bf16_begin/end: inside the bracket a GEMM input that lies in the
 * step's parameters is read from the copy rounded at begin, bit for bit the
 * per-call rounding; shown to be that copy by changing the parameters after
 * begin (which the trainer never does): the results do not move until end. */
TEST(bf16_weights_rounded_once_per_step)
{
    int M = 23, N = 19, K = 31;
    size_t mk = (size_t)M * K, nk = (size_t)N * K, mn = (size_t)M * N, np = 3 * nk + 5;
    float *params = randn(np, 6), *w = params + nk + 5; /* a weight inside the parameters */
    float *a = randn(mk, 7), *dout = randn(mn, 8);
    float *ref = malloc(mn * sizeof(float)), *out = malloc(mn * sizeof(float));
    float *da_ref = calloc(mk, sizeof(float)), *da = calloc(mk, sizeof(float));
    be->set_matmul_bf16(be, 1);
    be->matmul_fwd(be, ref, a, w, M, N, K, 0);
    be->matmul_bwd(be, da_ref, NULL, dout, a, w, M, N, K, 0);
    CHECK(be->weights_bf16_begin != NULL && be->weights_bf16_begin(be, params, np) == 0);
    be->matmul_fwd(be, out, a, w, M, N, K, 0);
    be->matmul_bwd(be, da, NULL, dout, a, w, M, N, K, 0);
    CHECK(same(out, ref, mn));
    CHECK(same(da, da_ref, mk));
    for (size_t i = 0; i < nk; i++) w[i] += 1.0f; /* behind the copy's back */
    be->matmul_fwd(be, out, a, w, M, N, K, 0);
    CHECK(same(out, ref, mn)); /* the copy, not w */
    /* an input outside the parameters is rounded per call as before */
    float *a2 = randn(mk, 9), *ref2 = malloc(mn * sizeof(float));
    be->matmul_fwd(be, out, a2, w, M, N, K, 0);
    be->weights_bf16_end(be);
    be->matmul_fwd(be, ref2, a2, w, M, N, K, 0); /* after end: the changed w */
    CHECK(!same(out, ref2, mn));
    be->weights_bf16_begin(be, params, np); /* a new step copies the current values */
    be->matmul_fwd(be, out, a2, w, M, N, K, 0);
    be->weights_bf16_end(be);
    be->matmul_fwd(be, ref2, a2, w, M, N, K, 0);
    CHECK(same(out, ref2, mn));
    be->set_matmul_bf16(be, 0);
    free(params); free(a); free(dout); free(ref); free(out); free(da_ref); free(da); free(a2);
    free(ref2);
}

int main(void)
{
    be = herd_backend_cpu();
    RUN(bf16_rounding);
    RUN(bf16_matmul_is_fp32_sums_of_rounded_inputs);
    RUN(bf16_weights_rounded_once_per_step);
    return test_summary();
}
