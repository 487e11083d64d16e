/* cuda_common.h — shared by the .cu files of the CUDA backend (C++ only):
 * error checks, the cuBLAS handle, an instance's state and device scratch,
 * launch sizes and the deterministic block reductions.
 *
 * Every CUDA and cuBLAS call is checked; a failure names the file and line and
 * exits (a rank that cannot compute must not go on silently). */
#ifndef HERD_CUDA_COMMON_H
#define HERD_CUDA_COMMON_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
extern "C" {
#include "kernels/backend.h"
#include "kernels/memstat.h"
}

#define CUDA_CHECK(call) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) { \
    fprintf(stderr, "herd: %s:%d: CUDA error %s: %s\n", __FILE__, __LINE__, \
            cudaGetErrorName(e_), cudaGetErrorString(e_)); exit(1); } } while (0)

#define CUBLAS_CHECK(call) do { cublasStatus_t s_ = (call); if (s_ != CUBLAS_STATUS_SUCCESS) { \
    fprintf(stderr, "herd: %s:%d: cuBLAS error %d: %s\n", __FILE__, __LINE__, (int)s_, \
            cublasGetStatusString(s_)); exit(1); } } while (0)

/* after every kernel launch: a bad launch configuration is reported here */
#define CUDA_LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())

/* The process-wide cuBLAS handle (default stream, fp32 math: no TF32). It
 * holds no per-instance state, so the instances share it. */
cublasHandle_t herd_cuda_blas(void);

enum herd_cuda_scratch_slot { HERD_SCRATCH_RMSNORM, HERD_SCRATCH_SUMSQ, HERD_SCRATCH_FLASH_D,
                             HERD_SCRATCH_LT, HERD_SCRATCH_BF16_A, HERD_SCRATCH_BF16_B,
                             HERD_SCRATCH_WEIGHTS_BF16, HERD_SCRATCH_N };

/* The state of one CUDA backend instance (herd_backend.state). */
struct herd_cuda_state {
    herd_memstat *ledger; /* every cudaMalloc, the scratch included (the step's peak) */
    void *scratch[HERD_SCRATCH_N];
    size_t scratch_cap[HERD_SCRATCH_N];
    int bf16;             /* the matmul precision (set_matmul_bf16) */
    int device;           /* its CUDA device (herd_backend_options.device) */
    const float *w_base;  /* the step's weights (weights_bf16.cu), NULL outside a step */
    size_t w_n;
    void *w_bf16;         /* their bf16 copy, in a scratch slot */
};

static inline herd_cuda_state *herd_cuda_state_of(const herd_backend *be)
{
    return (herd_cuda_state *)be->state;
}

/* Device scratch owned by the instance, one growing buffer per slot. The
 * pointer stays valid until the next call with the same slot and a larger
 * size. Everything runs on the default stream, so a buffer is never in use by
 * two ops at once. */
void *herd_cuda_scratch(const herd_backend *be, int slot, size_t bytes);

/* Blocks for a grid-stride loop over n elements (kernels loop, so the grid
 * may be capped). n must be > 0. */
static inline unsigned herd_cuda_blocks(size_t n, unsigned threads)
{
    size_t b = (n + threads - 1) / threads;
    return (unsigned)(b > 65535u * 16u ? 65535u * 16u : b);
}

#define HERD_GRID_STRIDE(i, n) \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); \
         i += (size_t)gridDim.x * blockDim.x)

/* ---- block reductions -------------------------------------------------------
 * blockDim.x must be a multiple of 32 (<= 1024). Every thread gets the result.
 * The tree is fixed by blockDim.x, so the result does not depend on scheduling.
 * A trailing barrier lets a kernel call them several times. */

template <typename T> __device__ __forceinline__ T herd_warp_sum(T v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float herd_warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

template <typename T> __device__ T herd_block_sum(T v)
{
    __shared__ T red[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = herd_warp_sum(v);
    if (lane == 0) red[warp] = v;
    __syncthreads();
    if (warp == 0) {
        T s = lane < nw ? red[lane] : T(0);
        s = herd_warp_sum(s);
        if (lane == 0) red[0] = s;
    }
    __syncthreads();
    T s = red[0];
    __syncthreads();
    return s;
}

__device__ inline float herd_block_max(float v)
{
    __shared__ float red[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = herd_warp_max(v);
    if (lane == 0) red[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float s = lane < nw ? red[lane] : -INFINITY;
        s = herd_warp_max(s);
        if (lane == 0) red[0] = s;
    }
    __syncthreads();
    float s = red[0];
    __syncthreads();
    return s;
}

#endif
