// matmul_lt.cu — linear layers in BF16 through cuBLASLt: bf16 inputs, fp32
// accumulation and fp32 output (the issue's precision: bf16 compute, fp32
// everything else), and the fp32 <-> bf16 conversions that make the inputs.
// matmul.cu uses it when the backend's matmul precision is bf16
// (set_matmul_bf16, train.precision); test_cuda_ops checks it against the CPU
// backend in the same mode (bf16-rounded inputs, fp32 sums).
//
// Row-major as in kernels/backend.h: out[M,N] (+)= a[M,K] @ w[N,K]^T. cuBLASLt
// is column-major, so this is out^T[N,M] = op_T(w as col-major [K,N]) x a as
// col-major [K,M], as in matmul.cu.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include "kernels/cuda/cuda_common.h"
extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

#define LT_WORKSPACE (32u << 20)  // cuBLASLt's recommended workspace on Hopper

static cublasLtHandle_t lt_handle(void)
{
    static cublasLtHandle_t h;
    if (!h) CUBLAS_CHECK(cublasLtCreate(&h));
    return h;
}

__global__ void f32_to_bf16_kernel(__nv_bfloat16 *dst, const float *src, size_t n)
{
    HERD_GRID_STRIDE(i, n) dst[i] = __float2bfloat16_rn(src[i]);
}

__global__ void bf16_to_f32_kernel(float *dst, const __nv_bfloat16 *src, size_t n)
{
    HERD_GRID_STRIDE(i, n) dst[i] = __bfloat162float(src[i]);
}

extern "C" void cuda_f32_to_bf16(void *dst, const float *src, size_t n)
{
    if (!n) return;
    f32_to_bf16_kernel<<<herd_cuda_blocks(n, 256), 256>>>((__nv_bfloat16 *)dst, src, n);
    CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_bf16_to_f32(float *dst, const void *src, size_t n)
{
    if (!n) return;
    bf16_to_f32_kernel<<<herd_cuda_blocks(n, 256), 256>>>(dst, (const __nv_bfloat16 *)src, n);
    CUDA_LAUNCH_CHECK();
}

// Column-major, as cublasSgemm: C[m,n] = alpha op(A) op(B) + beta C with A, B
// bf16 and C fp32, fp32 accumulation (CUBLAS_COMPUTE_32F). A layout describes
// the matrix as stored: op N -> [m,k] (lda), op T -> [k,m].
extern "C" void cuda_lt_gemm_bf16(const herd_backend *be, int transa, int transb, int m, int n,
                                  int k, const void *A, int lda, const void *B, int ldb, float beta,
                                  float *C, int ldc)
{
    const float one = 1.0f;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasOperation_t ta = transa ? CUBLAS_OP_T : CUBLAS_OP_N, tb = transb ? CUBLAS_OP_T : CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, transa ? k : m, transa ? m : k, lda));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, transb ? n : k, transb ? k : n, ldb));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, m, n, ldc));

    size_t ws_bytes = LT_WORKSPACE;
    void *ws = herd_cuda_scratch(be, HERD_SCRATCH_LT, ws_bytes);
    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes, sizeof ws_bytes));
    cublasLtMatmulHeuristicResult_t heur;
    int found = 0;
    CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(lt_handle(), op, la, lb, lc, lc, pref, 1, &heur,
                                                &found));
    if (!found) {
        fprintf(stderr, "herd: %s:%d: cuBLASLt: no bf16 algorithm for m %d n %d k %d\n", __FILE__,
                __LINE__, m, n, k);
        exit(1);
    }
    CUBLAS_CHECK(cublasLtMatmul(lt_handle(), op, &one, A, la, B, lb, &beta, C, lc, C, lc,
                                &heur.algo, ws, ws_bytes, 0));
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(lc);
    cublasLtMatmulDescDestroy(op);
}

// out[M,N] fp32 (+)= a[M,K] bf16 @ w[N,K]^T bf16, fp32 accumulation
// (out^T[N,M] = w^T-op x a^T as in matmul.cu)
extern "C" void cuda_matmul_bf16_fwd(const herd_backend *be, float *out, const void *a,
                                     const void *w, int M, int N, int K, int accumulate)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {  // an empty sum
        if (!accumulate) CUDA_CHECK(cudaMemset(out, 0, sizeof(float) * (size_t)M * N));
        return;
    }
    cuda_lt_gemm_bf16(be, 1, 0, N, M, K, w, K, a, K, accumulate ? 1.0f : 0.0f, out, N);
}
