/* matmul.c — linear layers through CBLAS (OpenBLAS). Row-major throughout.
 *
 * BF16 compute (cpu_matmul.bf16, set_matmul_bf16, train.precision bf16): the GEMM
 * inputs are rounded to bfloat16 (round to nearest even) and the products
 * summed in fp32 into an fp32 output, the numerics of a BF16 tensor-core GEMM
 * with fp32 accumulation. The CPU has no bf16 GEMM, so it rounds copies of the
 * inputs and runs sgemm on them: the oracle of the CUDA backend's cuBLASLt
 * path, not a fast path. */
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/cpu/cpu_ops.h"

float cpu_round_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7f800000u) == 0x7f800000u) { /* inf stays, NaN stays NaN (quiet) */
        if (u & 0x007fffffu) u |= 0x00400000u;
    } else {
        u += 0x7fffu + ((u >> 16) & 1u); /* to nearest, ties to even; may carry into the exponent */
    }
    u &= 0xffff0000u;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* The step's rounded weights (cpu_weights_bf16_begin .. end): an input inside
 * [w_base, w_base + w_n) is read from w_round at the same offset. */
int cpu_weights_bf16_begin(cpu_matmul *mm, const float *params, size_t n)
{
    if (n > mm->w_cap) {
        free(mm->w_round);
        mm->w_cap = 0;
        mm->w_round = malloc((n ? n : 1) * sizeof(float));
        if (!mm->w_round) {
            fprintf(stderr, "herd: cpu matmul: out of memory for the bf16 weights (%zu elements)\n",
                    n);
            return -1;
        }
        mm->w_cap = n;
    }
    float *r = mm->w_round;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) r[i] = cpu_round_bf16(params[i]);
    mm->w_base = params;
    mm->w_n = n;
    return 0;
}

void cpu_weights_bf16_end(cpu_matmul *mm)
{
    mm->w_base = NULL;
    mm->w_n = 0;
}

/* the rounded weights of x[n], when x lies inside the step's weights; NULL otherwise */
static const float *rounded_weights(const cpu_matmul *mm, const float *x, size_t n)
{
    uintptr_t b = (uintptr_t)mm->w_base, p = (uintptr_t)x;
    if (!mm->w_base || p < b || p + n * sizeof(float) > b + mm->w_n * sizeof(float)) return NULL;
    return mm->w_round + (x - mm->w_base);
}

/* x rounded to bf16 in a new buffer (x itself in fp32 mode; the step's rounded
 * weights when x is a weight); NULL: out of memory */
static const float *inputs(const cpu_matmul *mm, const float *x, size_t n, float **owned)
{
    *owned = NULL;
    if (!mm->bf16) return x;
    const float *w = rounded_weights(mm, x, n);
    if (w) return w;
    float *r = malloc(n * sizeof(float));
    if (!r) {
        fprintf(stderr, "herd: cpu matmul: out of memory for the bf16 copy of %zu elements\n", n);
        abort();
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) r[i] = cpu_round_bf16(x[i]);
    return *owned = r;
}

/* out[M,N] (+)= a[M,K] @ w[N,K]^T */
void cpu_matmul_fwd(const cpu_matmul *mm, float *out, const float *a, const float *w, int M, int N,
                    int K, int accumulate)
{
    float *a16, *w16;
    const float *A = inputs(mm, a, (size_t)M * K, &a16), *W = inputs(mm, w, (size_t)N * K, &w16);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K,
                1.0f, A, K, W, K, accumulate ? 1.0f : 0.0f, out, N);
    free(a16);
    free(w16);
}

/* da[M,K] (+)= dout[M,N] @ w[N,K];  dw[N,K] += dout[M,N]^T @ a[M,K] */
void cpu_matmul_bwd(const cpu_matmul *mm, float *da, float *dw, const float *dout, const float *a,
                    const float *w, int M, int N, int K, int accumulate_da)
{
    float *d16, *x16;
    const float *D = inputs(mm, dout, (size_t)M * N, &d16);
    if (da) {
        const float *W = inputs(mm, w, (size_t)N * K, &x16);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, K, N,
                    1.0f, D, N, W, K, accumulate_da ? 1.0f : 0.0f, da, K);
        free(x16);
    }
    if (dw) {
        const float *A = inputs(mm, a, (size_t)M * K, &x16);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, K, M,
                    1.0f, D, N, A, K, 1.0f, dw, K);
        free(x16);
    }
    free(d16);
}
