// adamw.cu — AdamW on one tensor (torch.optim.AdamW semantics), the same
// arithmetic as kernels/cpu/optim.c:
//   g' = g * grad_scale;  m = b1 m + (1-b1) g';  v = b2 v + (1-b2) g'^2
//   p  = p (1 - lr wd) - lr (m / bc1) / (sqrt(v / bc2) + eps)
#include "kernels/cuda/cuda_common.h"
extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

__global__ void adamw_kernel(float *p, const float *g, float *m, float *v, size_t n, float lr,
                             float beta1, float beta2, float eps, float wd, float bc1, float bc2,
                             float grad_scale)
{
    HERD_GRID_STRIDE(i, n) {
        float gi = g[i] * grad_scale;
        float mi = beta1 * m[i] + (1.0f - beta1) * gi;
        float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float pi = p[i] * (1.0f - lr * wd);
        p[i] = pi - lr * (mi / bc1) / (sqrtf(vi / bc2) + eps);
    }
}

extern "C" void cuda_adamw(const herd_backend *be, float *p, const float *g, float *m, float *v,
                           size_t n, float lr, float beta1, float beta2, float eps, float wd,
                           float bc1, float bc2, float grad_scale)
{
    if (!n) return;
    adamw_kernel<<<herd_cuda_blocks(n, 256), 256>>>(p, g, m, v, n, lr, beta1, beta2, eps, wd, bc1,
                                                    bc2, grad_scale);
    CUDA_LAUNCH_CHECK();
}
