/* cuda_common.h — error checks and the shared cuBLAS handle of the CUDA backend.
 * Every CUDA and cuBLAS call is checked; a failure names the file and line and
 * exits (a rank that cannot compute must not go on silently). */
#ifndef HERD_CUDA_COMMON_H
#define HERD_CUDA_COMMON_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

#define CUDA_CHECK(call) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) { \
    fprintf(stderr, "herd: %s:%d: CUDA error %s: %s\n", __FILE__, __LINE__, \
            cudaGetErrorName(e_), cudaGetErrorString(e_)); exit(1); } } while (0)

#define CUBLAS_CHECK(call) do { cublasStatus_t s_ = (call); if (s_ != CUBLAS_STATUS_SUCCESS) { \
    fprintf(stderr, "herd: %s:%d: cuBLAS error %d\n", __FILE__, __LINE__, (int)s_); \
    exit(1); } } while (0)

#define CUDA_LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())

cublasHandle_t herd_cuda_blas(void);

static inline unsigned herd_cuda_blocks(size_t n, unsigned threads)
{
    size_t b = (n + threads - 1) / threads;
    return (unsigned)(b > 65535u * 16u ? 65535u * 16u : b);
}

#endif
