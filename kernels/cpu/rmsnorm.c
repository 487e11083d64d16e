/* rmsnorm.c — RMSNorm: y = x / sqrt(mean(x^2) + eps) * w. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/cpu/cpu_ops.h"

/* out[n,d], rstd[n] from x[n,d], w[d] */
void cpu_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, int n, int d, float eps)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * d;
        float *oi = out + (size_t)i * d;
        double ss = 0.0;
        for (int j = 0; j < d; j++) ss += (double)xi[j] * xi[j];
        float r = (float)(1.0 / sqrt(ss / d + eps));
        rstd[i] = r;
        for (int j = 0; j < d; j++) oi[j] = xi[j] * r * w[j];
    }
}

/* With xhat = x * r:  dx += r * (g*w - xhat * mean(g*w*xhat)),  dw += sum_i g * xhat.
 * dw is reduced over rows in fixed blocks, then the blocks in order
 * (deterministic for a given n). */
void cpu_rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x, const float *w,
                     const float *rstd, int n, int d)
{
    enum { ROWS = 64 };
    int nblk = (n + ROWS - 1) / ROWS;
    float *part = calloc((size_t)nblk * d, sizeof(float));
#pragma omp parallel for schedule(static)
    for (int b = 0; b < nblk; b++) {
        float *pw = part + (size_t)b * d;
        for (int i = b * ROWS; i < n && i < (b + 1) * ROWS; i++) {
            const float *xi = x + (size_t)i * d, *gi = dout + (size_t)i * d;
            float *dxi = dx + (size_t)i * d;
            float r = rstd[i];
            double dot = 0.0;
            for (int j = 0; j < d; j++) dot += (double)gi[j] * w[j] * xi[j] * r;
            float m = (float)(dot / d);
            for (int j = 0; j < d; j++) {
                float xhat = xi[j] * r;
                dxi[j] += r * (gi[j] * w[j] - xhat * m);
                pw[j] += gi[j] * xhat;
            }
        }
    }
    for (int b = 0; b < nblk; b++)
        for (int j = 0; j < d; j++) dw[j] += part[(size_t)b * d + j];
    free(part);
}
