// xent.cu — cross-entropy over the vocabulary: one block per token row.
#include <math.h>
#include "kernels/cuda/cuda_common.h"
extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

__global__ void xent_fwd_kernel(float *losses, float *lse, const float *logits,
                                const int32_t *targets, int V)
{
    __shared__ float red[32];
    const float *row = logits + (size_t)blockIdx.x * V;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < V; j += blockDim.x) mx = fmaxf(mx, row[j]);
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = mx;
    __syncthreads();
    if (threadIdx.x < 32) {
        float v = threadIdx.x < (blockDim.x >> 5) ? red[threadIdx.x] : -INFINITY;
        for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
        if (threadIdx.x == 0) red[0] = v;
    }
    __syncthreads();
    mx = red[0];
    __syncthreads();
    float s = 0.0f;
    for (int j = threadIdx.x; j < V; j += blockDim.x) s += expf(row[j] - mx);
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
        float tot = 0.0f;
        for (int w = 0; w < (int)(blockDim.x >> 5); w++) tot += red[w];
        float l = mx + logf(tot);
        int t = targets[blockIdx.x];
        lse[blockIdx.x] = l;
        losses[blockIdx.x] = t >= 0 ? l - row[t] : 0.0f;
    }
}

__global__ void xent_bwd_kernel(float *logits, const float *lse, const int32_t *targets, int V, float scale)
{
    float *row = logits + (size_t)blockIdx.x * V;
    int t = targets[blockIdx.x];
    float l = lse[blockIdx.x];
    for (int j = threadIdx.x; j < V; j += blockDim.x)
        row[j] = t < 0 ? 0.0f : (expf(row[j] - l) - (j == t ? 1.0f : 0.0f)) * scale;
}

extern "C" void cuda_xent_fwd(float *losses, float *lse, const float *logits,
                              const int32_t *targets, int n, int V)
{
    xent_fwd_kernel<<<n, 256>>>(losses, lse, logits, targets, V);
    CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_xent_bwd(float *logits, const float *lse, const int32_t *targets, int n, int V,
                              float scale)
{
    xent_bwd_kernel<<<n, 256>>>(logits, lse, targets, V, scale);
    CUDA_LAUNCH_CHECK();
}
