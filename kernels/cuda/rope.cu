// rope.cu — rotary position embedding, rotate-half convention (HF Llama): for
// i < hd/2 the pair (x[i], x[i + hd/2]) is rotated by pos * theta^(-2i/hd).
// The backward is the inverse rotation (sin negated).
#include "kernels/cuda/cuda_common.h"
extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

// x[n, n_heads, head_dim] in place, one thread per rotated pair;
// cos_sin[max_pos, head_dim/2, 2], pos[n]
__global__ void rope_kernel(float *x, const float *cos_sin, const int32_t *pos, int n, int n_heads,
                            int head_dim, float sign)
{
    int half = head_dim / 2;
    HERD_GRID_STRIDE(e, (size_t)n * n_heads * half) {
        size_t t = e / ((size_t)n_heads * half), h = (e / half) % n_heads, j = e % half;
        const float *cs = cos_sin + ((size_t)pos[t] * half + j) * 2;
        float c = cs[0], s = sign * cs[1];
        float *xh = x + (t * n_heads + h) * head_dim;
        float x1 = xh[j], x2 = xh[j + half];
        xh[j] = x1 * c - x2 * s;
        xh[j + half] = x2 * c + x1 * s;
    }
}

static void rope(float *x, const float *cs, const int32_t *pos, int n, int nh, int hd, float sign)
{
    size_t total = (size_t)(n > 0 ? n : 0) * (nh > 0 ? nh : 0) * (hd > 0 ? hd / 2 : 0);
    if (!total) return;
    rope_kernel<<<herd_cuda_blocks(total, 256), 256>>>(x, cs, pos, n, nh, hd, sign);
    CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_rope_fwd(const herd_backend *be, float *x, const float *cs, const int32_t *pos,
                              int n, int nh, int hd)
{
    rope(x, cs, pos, n, nh, hd, 1.0f);
}

extern "C" void cuda_rope_bwd(const herd_backend *be, float *dx, const float *cs,
                              const int32_t *pos, int n, int nh, int hd)
{
    rope(dx, cs, pos, n, nh, hd, -1.0f);
}
