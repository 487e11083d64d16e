/* rope.c — rotary position embedding, rotate-half convention (HF Llama):
 * for i < hd/2 the pair (x[i], x[i + hd/2]) is rotated by pos * theta^(-2i/hd). */
#include "kernels/cpu/cpu_ops.h"

static void rope_apply(float *x, const float *cos_sin, const int32_t *pos, int n, int n_heads,
                       int head_dim, float sign)
{
    int half = head_dim / 2;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *cs = cos_sin + (size_t)pos[i] * half * 2;
        for (int h = 0; h < n_heads; h++) {
            float *xh = x + ((size_t)i * n_heads + h) * head_dim;
            for (int j = 0; j < half; j++) {
                float c = cs[2 * j], s = sign * cs[2 * j + 1];
                float x1 = xh[j], x2 = xh[j + half];
                xh[j] = x1 * c - x2 * s;
                xh[j + half] = x2 * c + x1 * s;
            }
        }
    }
}

/* x[n, n_heads, head_dim] rotated in place */
void cpu_rope_fwd(float *x, const float *cos_sin, const int32_t *pos, int n, int n_heads, int head_dim)
{
    rope_apply(x, cos_sin, pos, n, n_heads, head_dim, 1.0f);
}

/* The rotation is orthogonal: its backward is the inverse rotation (angle negated). */
void cpu_rope_bwd(float *dx, const float *cos_sin, const int32_t *pos, int n, int n_heads, int head_dim)
{
    rope_apply(dx, cos_sin, pos, n, n_heads, head_dim, -1.0f);
}
