/* matmul.c — linear layers through CBLAS (OpenBLAS). Row-major throughout. */
#include <cblas.h>
#include "kernels/cpu/cpu_ops.h"

/* out[M,N] (+)= a[M,K] @ w[N,K]^T */
void cpu_matmul_fwd(float *out, const float *a, const float *w, int M, int N, int K, int accumulate)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K,
                1.0f, a, K, w, K, accumulate ? 1.0f : 0.0f, out, N);
}

/* da[M,K] (+)= dout[M,N] @ w[N,K];  dw[N,K] += dout[M,N]^T @ a[M,K] */
void cpu_matmul_bwd(float *da, float *dw, const float *dout, const float *a, const float *w,
                    int M, int N, int K, int accumulate_da)
{
    if (da)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, K, N,
                    1.0f, dout, N, w, K, accumulate_da ? 1.0f : 0.0f, da, K);
    if (dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, K, M,
                    1.0f, dout, N, a, K, 1.0f, dw, K);
}
