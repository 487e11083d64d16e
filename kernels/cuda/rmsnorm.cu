// rmsnorm.cu — RMSNorm: out = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps).
// Row statistics are summed in double as in kernels/cpu/rmsnorm.c; the weight
// gradient is reduced in the CPU op's order (64-row partials, then the
// partials in order), so it is deterministic and matches the oracle closely.
#include "kernels/cuda/cuda_common.h"
extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

enum { RMS_THREADS = 256, RMS_ROWS = 64 };

// one block per row: out[n,d], rstd[n]
__global__ void rmsnorm_fwd_kernel(float *out, float *rstd, const float *x, const float *w, int d,
                                   float eps)
{
    const float *xi = x + (size_t)blockIdx.x * d;
    float *oi = out + (size_t)blockIdx.x * d;
    double ss = 0.0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) ss += (double)xi[j] * xi[j];
    ss = herd_block_sum(ss);
    float r = (float)(1.0 / sqrt(ss / d + eps));
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
    for (int j = threadIdx.x; j < d; j += blockDim.x) oi[j] = xi[j] * r * w[j];
}

// one block per row, xhat = x * r:  dx += r * (g*w - xhat * mean(g*w*xhat))
__global__ void rmsnorm_bwd_dx_kernel(float *dx, const float *dout, const float *x, const float *w,
                                      const float *rstd, int d)
{
    size_t o = (size_t)blockIdx.x * d;
    float r = rstd[blockIdx.x];
    double dot = 0.0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) dot += (double)dout[o + j] * w[j] * x[o + j] * r;
    dot = herd_block_sum(dot);
    float m = (float)(dot / d);
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        float xhat = x[o + j] * r;
        dx[o + j] += r * (dout[o + j] * w[j] - xhat * m);
    }
}

// part[c, j] = sum over the rows of chunk c (in order) of g * xhat
// grid: x = row chunk, y = column block
__global__ void rmsnorm_bwd_dw_partial_kernel(float *part, const float *dout, const float *x,
                                              const float *rstd, int n, int d)
{
    int j = blockIdx.y * blockDim.x + threadIdx.x;
    if (j >= d) return;
    int lo = blockIdx.x * RMS_ROWS, hi = min(n, lo + RMS_ROWS);
    float s = 0.0f;
    for (int i = lo; i < hi; i++) {
        size_t o = (size_t)i * d + j;
        s += dout[o] * (x[o] * rstd[i]);
    }
    part[(size_t)blockIdx.x * d + j] = s;
}

// dw[j] += part[0, j], += part[1, j], ... in chunk order
__global__ void rmsnorm_bwd_dw_reduce_kernel(float *dw, const float *part, int nchunk, int d)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= d) return;
    float acc = dw[j];
    for (int c = 0; c < nchunk; c++) acc += part[(size_t)c * d + j];
    dw[j] = acc;
}

extern "C" void cuda_rmsnorm_fwd(const herd_backend *be, float *out, float *rstd, const float *x,
                                 const float *w, int n, int d, float eps)
{
    if (n <= 0 || d <= 0) return;
    rmsnorm_fwd_kernel<<<n, RMS_THREADS>>>(out, rstd, x, w, d, eps);
    CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_rmsnorm_bwd(const herd_backend *be, float *dx, float *dw, const float *dout,
                                 const float *x, const float *w, const float *rstd, int n, int d)
{
    if (n <= 0 || d <= 0) return;
    rmsnorm_bwd_dx_kernel<<<n, RMS_THREADS>>>(dx, dout, x, w, rstd, d);
    CUDA_LAUNCH_CHECK();
    int nchunk = (n + RMS_ROWS - 1) / RMS_ROWS, colblk = (d + 127) / 128;
    float *part = (float *)herd_cuda_scratch(be, HERD_SCRATCH_RMSNORM,
                                             sizeof(float) * (size_t)nchunk * d);
    rmsnorm_bwd_dw_partial_kernel<<<dim3(nchunk, colblk), 128>>>(part, dout, x, rstd, n, d);
    CUDA_LAUNCH_CHECK();
    rmsnorm_bwd_dw_reduce_kernel<<<colblk, 128>>>(dw, part, nchunk, d);
    CUDA_LAUNCH_CHECK();
}
