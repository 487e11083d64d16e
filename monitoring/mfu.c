/* mfu.c — the MFU formula and the CPU sgemm peak probe. */
#include <cblas.h>
#include <stdlib.h>
#include <time.h>
#include "monitoring/mfu.h"
#include "monitoring/clock.h"

double herd_mfu_flops_per_token(int64_t p_matmul, int n_layers, int seq_len, int d_model)
{
    return 6.0 * (double)p_matmul + 6.0 * n_layers * (double)seq_len * d_model;
}

double herd_mfu(double tokens_per_second, double flops_per_token, double peak_tflops)
{
    if (peak_tflops <= 0) return 0;
    return tokens_per_second * flops_per_token / (peak_tflops * 1e12);
}

double herd_mfu_measure_cpu_peak(int n, double seconds)
{
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
          *c = malloc(sizeof(float) * n * n);
    if (!a || !b || !c) {
        free(a); free(b); free(c);
        return 0;
    }
    for (long i = 0; i < (long)n * n; i++) {
        a[i] = (float)(i % 7) * 0.1f;
        b[i] = (float)(i % 5) * 0.1f;
    }
    /* one warm-up product, then as many timed ones as fit in `seconds` */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    int reps = 0;
    double t0 = herd_now_s(), t;
    do {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        reps++;
        t = herd_now_s() - t0;
    } while (t < seconds);
    free(a); free(b); free(c);
    return 2.0 * n * (double)n * n * reps / t / 1e12;
}
