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

static const float *w_base;  // the fp32 parameters the copy was made from
static size_t w_n;
static __nv_bfloat16 *w_bf16;

extern "C" int cuda_weights_bf16_begin(const float *params, size_t n)
{
    w_bf16 = (__nv_bfloat16 *)herd_cuda_scratch(HERD_SCRATCH_WEIGHTS_BF16, (n ? n : 1) * 2);
    if (n) cuda_f32_to_bf16(w_bf16, params, n);
    w_base = params;
    w_n = n;
    return 0;
}

extern "C" void cuda_weights_bf16_end(void)
{
    w_base = NULL;
    w_n = 0;
}

extern "C" const void *cuda_weights_bf16_find(const float *x, size_t n)
{
    uintptr_t b = (uintptr_t)w_base, p = (uintptr_t)x;
    if (!w_base || p < b || p + n * sizeof(float) > b + w_n * sizeof(float)) return NULL;
    return w_bf16 + (x - w_base);
}
