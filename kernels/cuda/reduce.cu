// reduce.cu — the sum of squares in double, deterministic: pass 1 has a fixed
// grid and fixed per-thread strides and a fixed tree in each block; pass 2 adds
// the block partials in index order on the host. The same input gives the same
// bits on every run, whatever the scheduling.
#include "kernels/cuda/cuda_common.h"
extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

enum { SUMSQ_BLOCKS = 1024, SUMSQ_THREADS = 256 };

__global__ void sumsq_partial_kernel(double *part, const float *x, size_t n)
{
    double s = 0.0;
    for (size_t i = blockIdx.x * (size_t)SUMSQ_THREADS + threadIdx.x; i < n;
         i += (size_t)SUMSQ_BLOCKS * SUMSQ_THREADS)
        s += (double)x[i] * x[i];
    s = herd_block_sum(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

extern "C" double cuda_sumsq(const herd_backend *be, const float *x, size_t n)
{
    if (!n) return 0.0;
    double *part = (double *)herd_cuda_scratch(be, HERD_SCRATCH_SUMSQ,
                                               sizeof(double) * SUMSQ_BLOCKS);
    sumsq_partial_kernel<<<SUMSQ_BLOCKS, SUMSQ_THREADS>>>(part, x, n);
    CUDA_LAUNCH_CHECK();
    double host[SUMSQ_BLOCKS], total = 0.0;
    CUDA_CHECK(cudaMemcpy(host, part, sizeof host, cudaMemcpyDeviceToHost));
    for (int b = 0; b < SUMSQ_BLOCKS; b++) total += host[b];
    return total;
}
