/* optim.c — AdamW (torch.optim.AdamW semantics) and the gradient square sum. */
#include <math.h>
#include "kernels/cpu/cpu_ops.h"

/* p <- p*(1 - lr*wd) - lr * (m/bc1) / (sqrt(v/bc2) + eps), with g scaled by grad_scale */
void cpu_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
               float beta2, float eps, float wd, float bc1, float bc2, float grad_scale)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * grad_scale;
        float mi = beta1 * m[i] + (1.0f - beta1) * gi;
        float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float pi = p[i] * (1.0f - lr * wd);
        p[i] = pi - lr * (mi / bc1) / (sqrtf(vi / bc2) + eps);
    }
}

/* Per-block partial sums, then the blocks added in order: the same bits for
 * any thread count. */
double cpu_sumsq(const float *x, size_t n)
{
    enum { BLK = 1 << 16, MAXBLK = 4096 };
    size_t nblk = (n + BLK - 1) / BLK;
    size_t blk = nblk > MAXBLK ? (n + MAXBLK - 1) / MAXBLK : BLK;
    nblk = (n + blk - 1) / blk;
    double part[MAXBLK];
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < nblk; b++) {
        double s = 0.0;
        size_t hi = (b + 1) * blk < n ? (b + 1) * blk : n;
        for (size_t i = b * blk; i < hi; i++) s += (double)x[i] * x[i];
        part[b] = s;
    }
    double total = 0.0;
    for (size_t b = 0; b < nblk; b++) total += part[b];
    return total;
}
