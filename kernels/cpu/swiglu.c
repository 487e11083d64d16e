/* swiglu.c — SwiGLU gate: out = silu(gate) * up, silu(g) = g * sigmoid(g). */
#include <math.h>
#include "kernels/cpu/cpu_ops.h"

void cpu_swiglu_fwd(float *out, const float *gate, const float *up, size_t n)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = gate[i], sig = 1.0f / (1.0f + expf(-g));
        out[i] = g * sig * up[i];
    }
}

/* d silu(g)/dg = sig * (1 + g * (1 - sig)) */
void cpu_swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate,
                    const float *up, size_t n)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = gate[i], sig = 1.0f / (1.0f + expf(-g));
        float silu = g * sig;
        dup[i] = dout[i] * silu;
        dgate[i] = dout[i] * up[i] * sig * (1.0f + g * (1.0f - sig));
    }
}

void cpu_add_inplace(float *y, const float *x, size_t n)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}
