// optim.cu — AdamW and the deterministic sum of squares.
#include "kernels/cuda/cuda_common.h"
extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

__global__ void adamw_kernel(float *p, const float *g, float *m, float *v, size_t n, float lr,
                             float beta1, float beta2, float eps, float wd, float bc1, float bc2,
                             float grad_scale)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= n) return;
    float gi = g[i] * grad_scale;
    float mi = beta1 * m[i] + (1.0f - beta1) * gi;
    float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * (1.0f - lr * wd) - lr * (mi / bc1) / (sqrtf(vi / bc2) + eps);
}

extern "C" void cuda_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr,
                           float beta1, float beta2, float eps, float wd, float bc1, float bc2,
                           float grad_scale)
{
    adamw_kernel<<<(unsigned)((n + 255) / 256), 256>>>(p, g, m, v, n, lr, beta1, beta2, eps, wd,
                                                       bc1, bc2, grad_scale);
    CUDA_LAUNCH_CHECK();
}

enum { SUMSQ_BLOCKS = 1024, SUMSQ_THREADS = 256 };

// fixed grid, fixed per-thread strides, fixed tree: the same bits every run
__global__ void sumsq_partial_kernel(double *part, const float *x, size_t n)
{
    __shared__ double red[SUMSQ_THREADS];
    double s = 0.0;
    for (size_t i = blockIdx.x * (size_t)SUMSQ_THREADS + threadIdx.x; i < n;
         i += (size_t)SUMSQ_BLOCKS * SUMSQ_THREADS)
        s += (double)x[i] * x[i];
    red[threadIdx.x] = s;
    __syncthreads();
    for (int o = SUMSQ_THREADS / 2; o > 0; o >>= 1) {
        if (threadIdx.x < o) red[threadIdx.x] += red[threadIdx.x + o];
        __syncthreads();
    }
    if (threadIdx.x == 0) part[blockIdx.x] = red[0];
}

extern "C" double cuda_sumsq(const float *x, size_t n)
{
    static double *part; // device scratch, allocated once
    if (!part) CUDA_CHECK(cudaMalloc(&part, sizeof(double) * SUMSQ_BLOCKS));
    sumsq_partial_kernel<<<SUMSQ_BLOCKS, SUMSQ_THREADS>>>(part, x, n);
    CUDA_LAUNCH_CHECK();
    double host[SUMSQ_BLOCKS], total = 0.0;
    CUDA_CHECK(cudaMemcpy(host, part, sizeof host, cudaMemcpyDeviceToHost));
    for (int b = 0; b < SUMSQ_BLOCKS; b++) total += host[b];
    return total;
}
