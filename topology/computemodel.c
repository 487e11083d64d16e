/* computemodel.c — see computemodel.h. Sources of the built-in numbers are in
 * docs/topology.md ("Shape-aware compute"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "topology/computemodel.h"

/* FlashAttention-3 forward, BF16, head dim 128, non-causal, H100 SXM5 80GB:
 * Shah et al. 2024 (arXiv 2407.08608), the figure "Attention forward speed,
 * head dim 128 (H100 80GB SXM5)", TFLOP/s by sequence length. */
static const double h100_attn_seq[] = {512, 1024, 2048, 4096, 8192, 16384};
static const double h100_attn_tf[] = {467, 565, 625, 638, 646, 648};

/* Square BF16 GEMMs (torch.matmul, PyTorch 2.7 + CUDA 12.8) on an H100 80GB
 * HBM3: github.com/zzc0721/torch-performance-test-data issue #79, TFLOP/s. */
static const double h100_gemm_n[] = {1024, 2048, 4096, 8192, 10240};
static const double h100_gemm_tf[] = {176.62, 676.59, 788.72, 797.51, 719.72};

int herd_gpu_profile_get(const char *name, herd_gpu_profile *g)
{
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name);
    g->tile_m = 128;
    g->tile_n = 256;
    g->launch_us = 4;
    g->attn_bwd_ratio = 0.75; /* FA backward runs below its forward: an assumption (docs) */
    if (!strcmp(name, "h100")) {
        g->peak_tflops = 989.4; /* SXM5 dense BF16 */
        g->hbm_GBps = 3350;
        g->gemm_eff = 0.80; /* the best of the measured GEMMs below: 797.51 / 989.4 */
        g->sms = 132;
        for (int i = 0; i < 5; i++) {
            double n = h100_gemm_n[i];
            g->pts[i] = (herd_shape_point){HERD_SHAPE_GEMM, n, n, n, 0, 2 * n * n * n / (h100_gemm_tf[i] * 1e12)};
        }
        g->n_points = 5;
        g->n_attn = 6;
        memcpy(g->attn_seq, h100_attn_seq, sizeof h100_attn_seq);
        memcpy(g->attn_tflops, h100_attn_tf, sizeof h100_attn_tf);
    } else if (!strcmp(name, "a100")) {
        g->peak_tflops = 312; /* SXM4 80GB dense BF16/FP16 */
        g->hbm_GBps = 2039;
        g->gemm_eff = 0.85;
        g->sms = 108;
        g->n_attn = 1; /* no measured curve: half of peak at every length */
        g->attn_seq[0] = 2048;
        g->attn_tflops[0] = 156;
    } else {
        fprintf(stderr, "herd plan: --gpu '%s': expected h100 or a100 (or --calibrate FILE)\n", name);
        return -1;
    }
    return 0;
}

double herd_gemm_roofline(const herd_gpu_profile *g, double m, double n, double k)
{
    if (m <= 0 || n <= 0 || k <= 0) return 0;
    /* output tiles run in waves of one tile per SM; a partial tile or a
     * partial last wave costs a whole one */
    double tiles = ceil(m / g->tile_m) * ceil(n / g->tile_n);
    double waves = ceil(tiles / g->sms);
    double t_tile = 2.0 * g->tile_m * g->tile_n * k * g->sms / (g->peak_tflops * 1e12 * g->gemm_eff);
    double t_c = waves * t_tile;
    double t_m = 2.0 * (m * k + k * n + m * n) / (g->hbm_GBps * 1e9);
    return (t_c > t_m ? t_c : t_m) + g->launch_us * 1e-6;
}

/* the forward rate at a key length: log-linear between the table's points */
static double attn_rate(const herd_gpu_profile *g, double kv)
{
    int n = g->n_attn;
    if (n == 1 || kv <= g->attn_seq[0]) return g->attn_tflops[0];
    if (kv >= g->attn_seq[n - 1]) return g->attn_tflops[n - 1];
    int i = 1;
    while (g->attn_seq[i] < kv) i++;
    double w = log(kv / g->attn_seq[i - 1]) / log(g->attn_seq[i] / g->attn_seq[i - 1]);
    return g->attn_tflops[i - 1] + w * (g->attn_tflops[i] - g->attn_tflops[i - 1]);
}

double herd_attn_roofline(const herd_gpu_profile *g, double q, double kv, double width, int causal)
{
    if (q <= 0 || kv <= 0 || width <= 0) return 0;
    /* forward: Q K^T and P V, 2 flops a multiply-add; backward: 5 such
     * products (S recomputed, dV, dP, dQ, dK) = 2.5 x the forward */
    double fwd = 4.0 * q * kv * width * (causal ? 0.5 : 1.0);
    double rate = attn_rate(g, kv) * 1e12;
    double io = 2.0 * (2 * q * width + 2 * kv * width) / (g->hbm_GBps * 1e9); /* Q, O, K, V */
    return fwd / rate + 2.5 * fwd / (rate * g->attn_bwd_ratio) + 3 * io + 2 * g->launch_us * 1e-6;
}

/* the measured point of `kind` nearest in log(shape); NULL if none */
static const herd_shape_point *nearest(const herd_gpu_profile *g, int kind, double a, double b, double c,
                                       int causal)
{
    const herd_shape_point *best = NULL;
    double bd = 0;
    for (int i = 0; i < g->n_points; i++) {
        const herd_shape_point *p = &g->pts[i];
        if (p->kind != kind || (kind == HERD_SHAPE_ATTN && p->causal != causal)) continue;
        double d = pow(log(a / p->a), 2) + pow(log(b / p->b), 2) + pow(log(c / p->c), 2);
        if (!best || d < bd) best = p, bd = d;
    }
    return best;
}

double herd_gemm_seconds(const herd_gpu_profile *g, double m, double n, double k)
{
    double t = herd_gemm_roofline(g, m, n, k);
    const herd_shape_point *p = nearest(g, HERD_SHAPE_GEMM, m, n, k, 0);
    return p ? t * p->seconds / herd_gemm_roofline(g, p->a, p->b, p->c) : t;
}

double herd_attn_seconds(const herd_gpu_profile *g, double q, double kv, double width, int causal)
{
    double t = herd_attn_roofline(g, q, kv, width, causal);
    const herd_shape_point *p = nearest(g, HERD_SHAPE_ATTN, q, kv, width, causal);
    return p ? t * p->seconds / herd_attn_roofline(g, p->a, p->b, p->c, p->causal) : t;
}

static int bad(const char *path, int line, const char *field, const char *what)
{
    fprintf(stderr, "%s:%d: %s: %s\n", path, line, field, what);
    return -1;
}

/* one line of a calibration table into g; 0 or -1 with a message */
static int calibrate_line(herd_gpu_profile *g, const char *path, int ln, char *s)
{
    char kind[16];
    double v[5];
    int n = sscanf(s, "%15s %lf %lf %lf %lf %lf", kind, &v[0], &v[1], &v[2], &v[3], &v[4]);
    if (n <= 0) return 0;
    if (!strcmp(kind, "peak") || !strcmp(kind, "hbm")) {
        if (n != 2 || !(v[0] > 0)) return bad(path, ln, kind, "expected one positive number");
        *(kind[0] == 'p' ? &g->peak_tflops : &g->hbm_GBps) = v[0];
        return 0;
    }
    int attn = !strcmp(kind, "attn");
    if (!attn && strcmp(kind, "gemm")) return bad(path, ln, kind, "expected gemm, attn, peak or hbm");
    if (n != (attn ? 6 : 5)) return bad(path, ln, kind, attn ? "expected Q KV WIDTH CAUSAL SECONDS" : "expected M N K SECONDS");
    for (int i = 0; i < (attn ? 5 : 4); i++)
        if (!(v[i] > 0) && !(attn && i == 3 && v[i] == 0))
            return bad(path, ln, kind, "every shape and time must be positive (causal 0 or 1)");
    if (attn && v[3] != 0 && v[3] != 1) return bad(path, ln, "attn", "CAUSAL must be 0 or 1");
    if (g->n_points == HERD_SHAPE_MAX_POINTS) return bad(path, ln, kind, "more than 256 measured kernels");
    herd_shape_point *p = &g->pts[g->n_points++];
    p->kind = attn ? HERD_SHAPE_ATTN : HERD_SHAPE_GEMM;
    p->a = v[0], p->b = v[1], p->c = v[2];
    p->causal = attn ? (int)v[3] : 0;
    p->seconds = attn ? v[4] : v[3];
    return 0;
}

int herd_gpu_profile_calibrate(herd_gpu_profile *g, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot open the calibration table (herd plan --calibrate)\n", path);
        return -1;
    }
    g->n_points = 0;
    char line[512];
    int ln = 0, rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        ln++;
        char *h = strchr(line, '#');
        if (h) *h = 0;
        rc = calibrate_line(g, path, ln, line);
    }
    fclose(f);
    if (!rc && g->n_points == 0) {
        fprintf(stderr, "%s: gemm: no measured kernel (lines 'gemm M N K SECONDS')\n", path);
        rc = -1;
    }
    return rc;
}

const herd_gpu_profile *herd_gpu_profile_h100(void)
{
    static herd_gpu_profile g;
    static int done;
    if (!done) herd_gpu_profile_get("h100", &g), done = 1;
    return &g;
}
