// weights_bf16.cu — the step's weights rounded to bf16 once (backend.h:
// weights_bf16_begin/end). In bf16 mode every GEMM reads bf16 inputs; without
// this copy matmul.cu converts the weight at every call (forward, and the
// backward's da GEMM, for every micro-batch: about 8% of a GEMM's time at the
// 8B shapes by bandwidth). With it, one conversion of all parameters per step
// (6 bytes per parameter moved) and 2 bytes per parameter of device memory,
// held in a scratch slot (counted in the peak memory).
#include <cuda_bf16.h>
#include <stdint.h>
#include "kernels/cuda/cuda_common.h"
extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

extern "C" int cuda_weights_bf16_begin(const herd_backend *be, const float *params, size_t n)
{
    herd_cuda_state *s = herd_cuda_state_of(be);
    s->w_bf16 = herd_cuda_scratch(be, HERD_SCRATCH_WEIGHTS_BF16, (n ? n : 1) * 2);
    if (n) cuda_f32_to_bf16(s->w_bf16, params, n);
    s->w_base = params;  // the fp32 parameters the copy was made from
    s->w_n = n;
    return 0;
}

extern "C" void cuda_weights_bf16_end(const herd_backend *be)
{
    herd_cuda_state *s = herd_cuda_state_of(be);
    s->w_base = NULL;
    s->w_n = 0;
}

extern "C" const void *cuda_weights_bf16_find(const herd_backend *be, const float *x, size_t n)
{
    const herd_cuda_state *s = herd_cuda_state_of(be);
    uintptr_t b = (uintptr_t)s->w_base, p = (uintptr_t)x;
    if (!s->w_base || p < b || p + n * sizeof(float) > b + s->w_n * sizeof(float)) return NULL;
    return (const __nv_bfloat16 *)s->w_bf16 + (x - s->w_base);
}
