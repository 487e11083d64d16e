// elementwise.cu — embedding, RMSNorm, RoPE, SwiGLU and the residual add in
// fp32, the same arithmetic as kernels/cpu. Reductions run in a fixed order so
// that results do not depend on scheduling.
#include "kernels/cuda/cuda_common.h"
extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

// ---- embedding ---------------------------------------------------------------

__global__ void embedding_fwd_kernel(float *out, const int32_t *tokens, const float *wte, int n, int d)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= (size_t)n * d) return;
    size_t t = i / d, j = i % d;
    out[i] = wte[(size_t)tokens[t] * d + j];
}

// one thread per column: it adds the tokens in order (deterministic, no atomics)
__global__ void embedding_bwd_kernel(float *dwte, const float *dout, const int32_t *tokens, int n, int d)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= d) return;
    for (int i = 0; i < n; i++) dwte[(size_t)tokens[i] * d + j] += dout[(size_t)i * d + j];
}

extern "C" void cuda_embedding_fwd(float *out, const int32_t *tokens, const float *wte, int n, int d)
{
    size_t total = (size_t)n * d;
    embedding_fwd_kernel<<<(unsigned)((total + 255) / 256), 256>>>(out, tokens, wte, n, d);
    CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_embedding_bwd(float *dwte, const float *dout, const int32_t *tokens, int n, int d)
{
    embedding_bwd_kernel<<<(d + 127) / 128, 128>>>(dwte, dout, tokens, n, d);
    CUDA_LAUNCH_CHECK();
}

// ---- RMSNorm -----------------------------------------------------------------

__device__ float block_sum(float v, float *red)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x < 32) {
        float s = threadIdx.x < (blockDim.x >> 5) ? red[threadIdx.x] : 0.0f;
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (threadIdx.x == 0) red[0] = s;
    }
    __syncthreads();
    float s = red[0];
    __syncthreads();
    return s;
}

__global__ void rmsnorm_fwd_kernel(float *out, float *rstd, const float *x, const float *w, int d, float eps)
{
    __shared__ float red[32];
    const float *xi = x + (size_t)blockIdx.x * d;
    float *oi = out + (size_t)blockIdx.x * d;
    float ss = 0.0f;
    for (int j = threadIdx.x; j < d; j += blockDim.x) ss += xi[j] * xi[j];
    ss = block_sum(ss, red);
    float r = rsqrtf(ss / d + eps);
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
    for (int j = threadIdx.x; j < d; j += blockDim.x) oi[j] = xi[j] * r * w[j];
}

__global__ void rmsnorm_bwd_dx_kernel(float *dx, const float *dout, const float *x, const float *w,
                                      const float *rstd, int d)
{
    __shared__ float red[32];
    size_t o = (size_t)blockIdx.x * d;
    float r = rstd[blockIdx.x], dot = 0.0f;
    for (int j = threadIdx.x; j < d; j += blockDim.x) dot += dout[o + j] * w[j] * x[o + j] * r;
    float m = block_sum(dot, red) / d;
    for (int j = threadIdx.x; j < d; j += blockDim.x)
        dx[o + j] += r * (dout[o + j] * w[j] - x[o + j] * r * m);
}

// one thread per column, rows in order
__global__ void rmsnorm_bwd_dw_kernel(float *dw, const float *dout, const float *x, const float *rstd,
                                      int n, int d)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= d) return;
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += dout[(size_t)i * d + j] * x[(size_t)i * d + j] * rstd[i];
    dw[j] += s;
}

extern "C" void cuda_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, int n, int d, float eps)
{
    rmsnorm_fwd_kernel<<<n, 256>>>(out, rstd, x, w, d, eps);
    CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x,
                                 const float *w, const float *rstd, int n, int d)
{
    rmsnorm_bwd_dx_kernel<<<n, 256>>>(dx, dout, x, w, rstd, d);
    CUDA_LAUNCH_CHECK();
    rmsnorm_bwd_dw_kernel<<<(d + 127) / 128, 128>>>(dw, dout, x, rstd, n, d);
    CUDA_LAUNCH_CHECK();
}

// ---- RoPE (rotate half) --------------------------------------------------------

__global__ void rope_kernel(float *x, const float *cos_sin, const int32_t *pos, int n, int n_heads,
                            int head_dim, float sign)
{
    int half = head_dim / 2;
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= (size_t)n * n_heads * half) return;
    size_t t = i / ((size_t)n_heads * half), h = (i / half) % n_heads, j = i % half;
    const float *cs = cos_sin + ((size_t)pos[t] * half + j) * 2;
    float c = cs[0], s = sign * cs[1];
    float *xh = x + (t * n_heads + h) * head_dim;
    float x1 = xh[j], x2 = xh[j + half];
    xh[j] = x1 * c - x2 * s;
    xh[j + half] = x2 * c + x1 * s;
}

static void rope(float *x, const float *cs, const int32_t *pos, int n, int nh, int hd, float sign)
{
    size_t total = (size_t)n * nh * (hd / 2);
    rope_kernel<<<(unsigned)((total + 255) / 256), 256>>>(x, cs, pos, n, nh, hd, sign);
    CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_rope_fwd(float *x, const float *cs, const int32_t *pos, int n, int nh, int hd)
{
    rope(x, cs, pos, n, nh, hd, 1.0f);
}

extern "C" void cuda_rope_bwd(float *dx, const float *cs, const int32_t *pos, int n, int nh, int hd)
{
    rope(dx, cs, pos, n, nh, hd, -1.0f);
}

// ---- SwiGLU and the residual add ------------------------------------------------

__global__ void swiglu_fwd_kernel(float *out, const float *gate, const float *up, size_t n)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= n) return;
    float g = gate[i], sig = 1.0f / (1.0f + expf(-g));
    out[i] = g * sig * up[i];
}

__global__ void swiglu_bwd_kernel(float *dgate, float *dup, const float *dout, const float *gate,
                                  const float *up, size_t n)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= n) return;
    float g = gate[i], sig = 1.0f / (1.0f + expf(-g));
    dup[i] = dout[i] * g * sig;
    dgate[i] = dout[i] * up[i] * sig * (1.0f + g * (1.0f - sig));
}

__global__ void add_kernel(float *y, const float *x, size_t n)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] += x[i];
}

extern "C" void cuda_swiglu_fwd(float *out, const float *gate, const float *up, size_t n)
{
    swiglu_fwd_kernel<<<(unsigned)((n + 255) / 256), 256>>>(out, gate, up, n);
    CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate,
                                const float *up, size_t n)
{
    swiglu_bwd_kernel<<<(unsigned)((n + 255) / 256), 256>>>(dgate, dup, dout, gate, up, n);
    CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_add_inplace(float *y, const float *x, size_t n)
{
    add_kernel<<<(unsigned)((n + 255) / 256), 256>>>(y, x, n);
    CUDA_LAUNCH_CHECK();
}
