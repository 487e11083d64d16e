// swiglu.cu — SwiGLU gate out = silu(gate) * up, silu(g) = g * sigmoid(g), and
// the residual add.
#include "kernels/cuda/cuda_common.h"
extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

__global__ void swiglu_fwd_kernel(float *out, const float *gate, const float *up, size_t n)
{
    HERD_GRID_STRIDE(i, n) {
        float g = gate[i], sig = 1.0f / (1.0f + expf(-g));
        out[i] = g * sig * up[i];
    }
}

// d silu(g)/dg = sig * (1 + g * (1 - sig)); dgate, dup overwritten
__global__ void swiglu_bwd_kernel(float *dgate, float *dup, const float *dout, const float *gate,
                                  const float *up, size_t n)
{
    HERD_GRID_STRIDE(i, n) {
        float g = gate[i], sig = 1.0f / (1.0f + expf(-g));
        dup[i] = dout[i] * (g * sig);
        dgate[i] = dout[i] * up[i] * sig * (1.0f + g * (1.0f - sig));
    }
}

// y[n] += x[n]
__global__ void add_inplace_kernel(float *y, const float *x, size_t n)
{
    HERD_GRID_STRIDE(i, n) y[i] += x[i];
}

extern "C" void cuda_swiglu_fwd(const herd_backend *be, float *out, const float *gate,
                                const float *up, size_t n)
{
    if (!n) return;
    swiglu_fwd_kernel<<<herd_cuda_blocks(n, 256), 256>>>(out, gate, up, n);
    CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_swiglu_bwd(const herd_backend *be, float *dgate, float *dup, const float *dout,
                                const float *gate, const float *up, size_t n)
{
    if (!n) return;
    swiglu_bwd_kernel<<<herd_cuda_blocks(n, 256), 256>>>(dgate, dup, dout, gate, up, n);
    CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_add_inplace(const herd_backend *be, float *y, const float *x, size_t n)
{
    if (!n) return;
    add_inplace_kernel<<<herd_cuda_blocks(n, 256), 256>>>(y, x, n);
    CUDA_LAUNCH_CHECK();
}
