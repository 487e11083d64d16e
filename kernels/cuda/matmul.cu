// matmul.cu — linear layers through cuBLAS (fp32). Row-major buffers are
// column-major transposes, so each row-major product C = A op B is issued as
// the column-major C^T = op(B)^T A^T.
#include "kernels/cuda/cuda_common.h"
extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

// out[M,N] (+)= a[M,K] @ w[N,K]^T   <=>  out^T = w a^T
extern "C" void cuda_matmul_fwd(float *out, const float *a, const float *w, int M, int N, int K,
                                int accumulate)
{
    const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    CUBLAS_CHECK(cublasSgemm(herd_cuda_blas(), CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, w, K, a, K,
                             &beta, out, N));
}

// da[M,K] (+)= dout[M,N] @ w[N,K];  dw[N,K] += dout^T @ a
extern "C" void cuda_matmul_bwd(float *da, float *dw, const float *dout, const float *a,
                                const float *w, int M, int N, int K, int accumulate_da)
{
    const float one = 1.0f, beta = accumulate_da ? 1.0f : 0.0f;
    if (da)
        CUBLAS_CHECK(cublasSgemm(herd_cuda_blas(), CUBLAS_OP_N, CUBLAS_OP_N, K, M, N, &one, w, K,
                                 dout, N, &beta, da, K));
    if (dw)
        CUBLAS_CHECK(cublasSgemm(herd_cuda_blas(), CUBLAS_OP_N, CUBLAS_OP_T, K, N, M, &one, a, K,
                                 dout, N, &one, dw, K));
}
