// matmul.cu — linear layers through cuBLAS sgemm (fp32). cuBLAS is
// column-major: a row-major X[r,c] is the column-major X^T[c,r] with the same
// leading dimension c, so each row-major product C = A B is issued as the
// column-major C^T = B^T A^T. "Accumulate" is beta = 1.
#include "kernels/cuda/cuda_common.h"
extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

// out[M,N] (+)= a[M,K] @ w[N,K]^T   <=>   out^T[N,M] (+)= w[N,K] a^T[K,M]
extern "C" void cuda_matmul_fwd(float *out, const float *a, const float *w, int M, int N, int K,
                                int accumulate)
{
    if (M <= 0 || N <= 0) return;
    const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    CUBLAS_CHECK(cublasSgemm(herd_cuda_blas(), CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, w, K, a, K,
                             &beta, out, N));
}

// da[M,K] (+)= dout[M,N] @ w[N,K]   <=>   da^T[K,M] (+)= w^T[K,N] dout^T[N,M]
// dw[N,K]  += dout[M,N]^T @ a[M,K]  <=>   dw^T[K,N]  += a^T[K,M] dout[M,N]
extern "C" void cuda_matmul_bwd(float *da, float *dw, const float *dout, const float *a,
                                const float *w, int M, int N, int K, int accumulate_da)
{
    if (K <= 0) return;
    const float one = 1.0f, beta = accumulate_da ? 1.0f : 0.0f;
    if (da && M > 0)
        CUBLAS_CHECK(cublasSgemm(herd_cuda_blas(), CUBLAS_OP_N, CUBLAS_OP_N, K, M, N, &one, w, K,
                                 dout, N, &beta, da, K));
    if (dw && N > 0)
        CUBLAS_CHECK(cublasSgemm(herd_cuda_blas(), CUBLAS_OP_N, CUBLAS_OP_T, K, N, M, &one, a, K,
                                 dout, N, &one, dw, K));
}
