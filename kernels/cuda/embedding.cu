// embedding.cu — token embedding lookup and its deterministic backward.
#include "kernels/cuda/cuda_common.h"
extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

// out[n,d] = wte[tokens[i], :]
__global__ void embedding_fwd_kernel(float *out, const int32_t *tokens, const float *wte, int n,
                                     int d)
{
    HERD_GRID_STRIDE(e, (size_t)n * d) {
        size_t i = e / d, j = e % d;
        out[e] = tokens[i] < 0 ? 0.0f : wte[(size_t)tokens[i] * d + j];
    }
}

// dwte[tokens[i], :] += dout[i, :]. One thread per column j adds the tokens in
// token order: no atomics, and every element of dwte sums its tokens in the
// same order as the CPU op (bit-identical results, run after run). Within a
// warp the columns are adjacent, so each token's row is one coalesced access.
__global__ void embedding_bwd_kernel(float *dwte, const float *dout, const int32_t *tokens, int n,
                                     int d)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= d) return;
    for (int i = 0; i < n; i++)
        if (tokens[i] >= 0) dwte[(size_t)tokens[i] * d + j] += dout[(size_t)i * d + j];
}

extern "C" void cuda_embedding_fwd(const herd_backend *be, float *out, const int32_t *tokens,
                                   const float *wte, int n, int d)
{
    if (n <= 0 || d <= 0) return;
    embedding_fwd_kernel<<<herd_cuda_blocks((size_t)n * d, 256), 256>>>(out, tokens, wte, n, d);
    CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_embedding_bwd(const herd_backend *be, float *dwte, const float *dout,
                                   const int32_t *tokens, int n, int d)
{
    if (n <= 0 || d <= 0) return;
    // small blocks: d threads in all, spread over as many SMs as possible
    embedding_bwd_kernel<<<(d + 63) / 64, 64>>>(dwte, dout, tokens, n, d);
    CUDA_LAUNCH_CHECK();
}
