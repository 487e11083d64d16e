// xent.cu — cross-entropy over the vocabulary, one block per token row. The
// exponentials are summed in double, as in kernels/cpu/xent.c.
#include "kernels/cuda/cuda_common.h"
extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

enum { XENT_THREADS = 512 };

// losses[n] = lse - logits[target] (0 for target < 0), lse[n] = logsumexp(row)
__global__ void xent_fwd_kernel(float *losses, float *lse, const float *logits,
                                const int32_t *targets, int V)
{
    const float *row = logits + (size_t)blockIdx.x * V;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < V; j += blockDim.x) mx = fmaxf(mx, row[j]);
    mx = herd_block_max(mx);
    double s = 0.0;
    for (int j = threadIdx.x; j < V; j += blockDim.x) s += (double)expf(row[j] - mx);
    s = herd_block_sum(s);
    if (threadIdx.x == 0) {
        float l = mx + (float)log(s);
        int t = targets[blockIdx.x];
        lse[blockIdx.x] = l;
        losses[blockIdx.x] = t >= 0 ? l - row[t] : 0.0f;
    }
}

extern "C" void cuda_xent_fwd(const herd_backend *be, float *losses, float *lse,
                              const float *logits, const int32_t *targets, int n, int V)
{
    if (n <= 0 || V <= 0) return;
    xent_fwd_kernel<<<n, XENT_THREADS>>>(losses, lse, logits, targets, V);
    CUDA_LAUNCH_CHECK();
}

// logits[n,V] <- (softmax - onehot(target)) * scale in place; ignored rows 0:
// the vocabulary-parallel backward with the whole vocabulary here
extern "C" void cuda_xent_bwd(const herd_backend *be, float *logits, const float *lse,
                              const int32_t *targets, int n, int V, float scale)
{
    cuda_xent_bwd_range(be, logits, lse, targets, 0, n, V, scale);
}

// ---- vocabulary-parallel pieces (kernels/backend.h), one block per row ----

__global__ void xent_row_max_kernel(float *row_max, const float *logits, int V)
{
    const float *row = logits + (size_t)blockIdx.x * V;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < V; j += blockDim.x) mx = fmaxf(mx, row[j]);
    mx = herd_block_max(mx);
    if (threadIdx.x == 0) row_max[blockIdx.x] = mx;
}

__global__ void xent_sumexp_pick_kernel(float *sumexp, float *picked, const float *logits,
                                        const float *m, const int32_t *targets, int v0, int V)
{
    const float *row = logits + (size_t)blockIdx.x * V;
    float mx = m[blockIdx.x];
    double s = 0.0;
    for (int j = threadIdx.x; j < V; j += blockDim.x) s += (double)expf(row[j] - mx);
    s = herd_block_sum(s);
    if (threadIdx.x == 0) {
        int tg = targets[blockIdx.x], t = tg - v0;
        sumexp[blockIdx.x] = (float)s;
        picked[blockIdx.x] = tg >= 0 && t >= 0 && t < V ? row[t] : 0.0f;
    }
}

__global__ void xent_bwd_range_kernel(float *logits, const float *lse, const int32_t *targets,
                                      int v0, int V, float scale)
{
    float *row = logits + (size_t)blockIdx.x * V;
    int tg = targets[blockIdx.x], t = tg - v0;
    float l = lse[blockIdx.x];
    for (int j = threadIdx.x; j < V; j += blockDim.x) {
        float g = 0.0f;
        if (tg >= 0) {
            g = expf(row[j] - l) * scale;
            if (j == t) g -= scale;
        }
        row[j] = g;
    }
}

extern "C" void cuda_xent_row_max(const herd_backend *be, float *row_max, const float *logits,
                                  int n, int V)
{
    if (n <= 0 || V <= 0) return;
    xent_row_max_kernel<<<n, XENT_THREADS>>>(row_max, logits, V);
    CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_xent_sumexp_pick(const herd_backend *be, float *sumexp, float *picked,
                                      const float *logits, const float *m, const int32_t *targets,
                                      int v0, int n, int V)
{
    if (n <= 0 || V <= 0) return;
    xent_sumexp_pick_kernel<<<n, XENT_THREADS>>>(sumexp, picked, logits, m, targets, v0, V);
    CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_xent_bwd_range(const herd_backend *be, float *logits, const float *lse,
                                    const int32_t *targets, int v0, int n, int V, float scale)
{
    if (n <= 0 || V <= 0) return;
    xent_bwd_range_kernel<<<n, XENT_THREADS>>>(logits, lse, targets, v0, V, scale);
    CUDA_LAUNCH_CHECK();
}

// One chunk of the online softmax (kernels/backend.h xent_chunk_update), one
// block per row: block max of the chunk, then the block's sum of exp in double
// against the new running max; thread 0 rescales the old sum and stores.
__global__ void xent_chunk_update_kernel(float *row_max, float *sumexp, float *picked,
                                         const float *logits, const int32_t *targets, int v0,
                                         int Vc)
{
    const float *row = logits + (size_t)blockIdx.x * Vc;
    float mc = -INFINITY;
    for (int j = threadIdx.x; j < Vc; j += blockDim.x) mc = fmaxf(mc, row[j]);
    mc = herd_block_max(mc);
    float m_old = row_max[blockIdx.x], m_new = fmaxf(mc, m_old);
    double s = 0.0;
    for (int j = threadIdx.x; j < Vc; j += blockDim.x) s += (double)expf(row[j] - m_new);
    s = herd_block_sum(s);
    if (threadIdx.x == 0) {
        sumexp[blockIdx.x] = (float)((double)sumexp[blockIdx.x] * expf(m_old - m_new) + s);
        row_max[blockIdx.x] = m_new;
        int tg = targets[blockIdx.x], t = tg - v0;
        if (tg >= 0 && t >= 0 && t < Vc) picked[blockIdx.x] = row[t];
    }
}

extern "C" void cuda_xent_chunk_update(const herd_backend *be, float *row_max, float *sumexp,
                                       float *picked, const float *logits, const int32_t *targets,
                                       int v0, int n, int Vc)
{
    if (n <= 0 || Vc <= 0) return;
    xent_chunk_update_kernel<<<n, XENT_THREADS>>>(row_max, sumexp, picked, logits, targets, v0,
                                                  Vc);
    CUDA_LAUNCH_CHECK();
}
