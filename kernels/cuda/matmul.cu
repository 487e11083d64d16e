// matmul.cu — linear layers through cuBLAS sgemm (fp32), or, with the
// backend's matmul precision set to bf16 (train.precision), through cuBLASLt
// with bf16 copies of the inputs and fp32 accumulation (matmul_lt.cu). cuBLAS is
// column-major: a row-major X[r,c] is the column-major X^T[c,r] with the same
// leading dimension c, so each row-major product C = A B is issued as the
// column-major C^T = B^T A^T. "Accumulate" is beta = 1.
#include "kernels/cuda/cuda_common.h"
extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

extern "C" void cuda_set_matmul_bf16(const herd_backend *be, int on)
{
    herd_cuda_state_of(be)->bf16 = on != 0;
}

extern "C" int cuda_get_matmul_bf16(const herd_backend *be) { return herd_cuda_state_of(be)->bf16; }

// x[n] as bf16 in scratch slot `slot` (the GEMM's input copy, rewritten each
// call), or in the step's bf16 weights when x is a weight (weights_bf16.cu)
static const void *to_bf16(const herd_backend *be, int slot, const float *x, size_t n)
{
    if (const void *w = cuda_weights_bf16_find(be, x, n)) return w;
    void *d = herd_cuda_scratch(be, slot, n * 2);
    cuda_f32_to_bf16(d, x, n);
    return d;
}

// the column-major GEMM of the current precision: C[m,n] = op(A) op(B) + beta C,
// A holding na and B nb elements (the bf16 copies)
static void gemm(const herd_backend *be, int ta, int tb, int m, int n, int k, const float *A,
                 int lda, size_t na, const float *B, int ldb, size_t nb, float beta, float *C,
                 int ldc)
{
    if (herd_cuda_state_of(be)->bf16) {
        cuda_lt_gemm_bf16(be, ta, tb, m, n, k, to_bf16(be, HERD_SCRATCH_BF16_A, A, na), lda,
                          to_bf16(be, HERD_SCRATCH_BF16_B, B, nb), ldb, beta, C, ldc);
        return;
    }
    const float one = 1.0f;
    CUBLAS_CHECK(cublasSgemm(herd_cuda_blas(), ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                             tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &one, A, lda, B, ldb, &beta,
                             C, ldc));
}

// out[M,N] (+)= a[M,K] @ w[N,K]^T   <=>   out^T[N,M] (+)= w[N,K] a^T[K,M]
extern "C" void cuda_matmul_fwd(const herd_backend *be, float *out, const float *a, const float *w,
                                int M, int N, int K, int accumulate)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {  // an empty sum
        if (!accumulate) CUDA_CHECK(cudaMemset(out, 0, sizeof(float) * (size_t)M * N));
        return;
    }
    gemm(be, 1, 0, N, M, K, w, K, (size_t)N * K, a, K, (size_t)M * K, accumulate ? 1.0f : 0.0f, out,
         N);
}

// da[M,K] (+)= dout[M,N] @ w[N,K]   <=>   da^T[K,M] (+)= w^T[K,N] dout^T[N,M]
// dw[N,K]  += dout[M,N]^T @ a[M,K]  <=>   dw^T[K,N]  += a^T[K,M] dout[M,N]
extern "C" void cuda_matmul_bwd(const herd_backend *be, float *da, float *dw, const float *dout,
                                const float *a, const float *w, int M, int N, int K,
                                int accumulate_da)
{
    if (K <= 0) return;
    if (da && M > 0 && N > 0)
        gemm(be, 0, 0, K, M, N, w, K, (size_t)N * K, dout, N, (size_t)M * N,
             accumulate_da ? 1.0f : 0.0f, da, K);
    if (dw && N > 0 && M > 0)
        gemm(be, 0, 1, K, N, M, a, K, (size_t)M * K, dout, N, (size_t)M * N, 1.0f, dw, K);
}
