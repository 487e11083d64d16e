/* bench_shapes.c — the calibration table of `herd plan --calibrate`: times
 * the GEMMs and the attention of one training step's micro-batch, with the
 * shapes herd plan charges (topology/costmodel.c shape_compute), on a herd
 * backend (cpu here; cuda on a GPU machine).
 *
 * usage: bench_shapes [--backend cpu|cuda] [--model tiny] [--seq N] [--tp N]
 *                     [--cp N] [--micro-batch N] [--reps N] [--bf16 0|1]
 * Per projection of a layer (q/k/v, o, gate/up, down) and the output layer:
 * the forward GEMM (m, n, k) with m = micro_batch x seq / cp tokens and the
 * weight's n/tp columns, and the two backward GEMMs as forward GEMMs of their
 * shapes (dX: m, k, n; dW: k, n, m); attention forward + backward of one
 * micro-batch (causal, one document). Each the median of --reps runs after
 * one warm-up. stdout: "gemm M N K SECONDS" and "attn Q KV WIDTH 1 SECONDS"
 * lines, '#' comments with the conditions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/backend.h"
#include "monitoring/clock.h"
#include "src/config/config.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* one GEMM out[m,n] = a[m,k] w[n,k]^T, timed; -1 if memory ran out */
static int time_gemm(const herd_backend *be, int m, int n, int k, int reps)
{
    float *a = be->alloc(be, sizeof(float) * (size_t)m * k), *w = be->alloc(be, sizeof(float) * (size_t)n * k);
    float *o = be->alloc(be, sizeof(float) * (size_t)m * n);
    if (!a || !w || !o) return -1;
    double t[64];
    for (int r = -1; r < reps; r++) {
        be->synchronize(be);
        double t0 = herd_now_s();
        be->matmul_fwd(be, o, a, w, m, n, k, 0);
        be->synchronize(be);
        if (r >= 0) t[r] = herd_now_s() - t0;
    }
    printf("gemm %d %d %d %.9f\n", m, n, k, median(t, reps));
    be->free(be, a), be->free(be, w), be->free(be, o);
    return 0;
}

/* attention forward + backward of B sequences of T tokens, H heads / KV heads of hd */
static int time_attn(const herd_backend *be, int B, int T, int H, int KV, int hd, int reps)
{
    size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KV * hd;
    int flash = be->prefer_flash && be->attention_flash_fwd;
    float *q = be->alloc(be, 4 * nq), *k = be->alloc(be, 4 * nk), *v = be->alloc(be, 4 * nk);
    float *o = be->alloc(be, 4 * nq), *dq = be->alloc(be, 4 * nq), *dk = be->alloc(be, 4 * nk);
    float *dv = be->alloc(be, 4 * nk), *dout = be->alloc(be, 4 * nq);
    size_t att_n = flash ? (size_t)B * H * T : (size_t)B * H * T * T;
    float *att = be->alloc(be, 4 * att_n), *scratch = be->alloc(be, 4 * (size_t)T * T);
    int32_t *doc = be->alloc(be, sizeof(int32_t) * (size_t)B * T); /* zero: one document */
    if (!q || !k || !v || !o || !dq || !dk || !dv || !dout || !att || !scratch || !doc) return -1;
    double t[64];
    for (int r = -1; r < reps; r++) {
        be->synchronize(be);
        double t0 = herd_now_s();
        if (flash) {
            be->attention_flash_fwd(be, o, att, q, k, v, doc, B, T, H, KV, hd);
            be->attention_flash_bwd(be, dq, dk, dv, dout, o, att, q, k, v, doc, B, T, H, KV, hd);
        } else {
            be->attention_fwd(be, o, att, q, k, v, doc, B, T, H, KV, hd);
            be->attention_bwd(be, dq, dk, dv, scratch, dout, att, q, k, v, doc, B, T, H, KV, hd);
        }
        be->synchronize(be);
        if (r >= 0) t[r] = herd_now_s() - t0;
    }
    printf("attn %d %d %d 1 %.9f\n", B * T, T, H * hd, median(t, reps));
    float *bufs[] = {q, k, v, o, dq, dk, dv, dout, att, scratch};
    for (int i = 0; i < 10; i++) be->free(be, bufs[i]);
    be->free(be, doc);
    return 0;
}

static int arg_int(const char *flag, const char *v, int lo, int hi, int *out)
{
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || end == v || x < lo || x > hi) {
        fprintf(stderr, "bench_shapes: %s '%s': expected an integer in [%d, %d]\n", flag, v ? v : "", lo, hi);
        return -1;
    }
    *out = (int)x;
    return 0;
}

int main(int argc, char **argv)
{
    const char *backend = "cpu", *model = "tiny";
    int seq = 0, tp = 1, cp = 1, mb = 1, reps = 9, bf16 = 0;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (!strcmp(a, "--backend") && v) backend = v;
        else if (!strcmp(a, "--model") && v) model = v;
        else if (!strcmp(a, "--seq")) rc = arg_int(a, v, 1, 1 << 24, &seq);
        else if (!strcmp(a, "--tp")) rc = arg_int(a, v, 1, 1024, &tp);
        else if (!strcmp(a, "--cp")) rc = arg_int(a, v, 1, 1024, &cp);
        else if (!strcmp(a, "--micro-batch")) rc = arg_int(a, v, 1, 1024, &mb);
        else if (!strcmp(a, "--reps")) rc = arg_int(a, v, 1, 64, &reps);
        else if (!strcmp(a, "--bf16")) rc = arg_int(a, v, 0, 1, &bf16);
        else {
            fprintf(stderr, "usage: bench_shapes [--backend cpu|cuda] [--model tiny] [--seq N] [--tp N] [--cp N] "
                            "[--micro-batch N] [--reps N] [--bf16 0|1]\n");
            return 2;
        }
        if (rc) return 2;
    }
    herd_config c;
    herd_config_defaults(&c);
    if (herd_config_apply_preset(&c, model)) return 2;
    int d = c.model.d_model, H = c.model.n_heads, KV = c.model.n_kv_heads, f = c.model.ffn_dim;
    int hd = d / H, V = c.model.vocab_size;
    if (!seq) seq = c.model.max_seq_len;
    if (H % tp || f % tp || V % tp || seq % cp) {
        fprintf(stderr, "bench_shapes: tp=%d must divide heads %d, ffn %d, vocab %d; cp=%d the sequence %d\n", tp, H,
                f, V, cp, seq);
        return 2;
    }
    herd_backend_options opt = {.matmul_bf16 = bf16};
    herd_backend *be = herd_backend_create(backend, &opt);
    if (!be) return 1;
    int m = mb * seq / cp, kvh = KV >= tp ? KV / tp : 1;
    printf("# bench_shapes: backend %s, model %s, seq %d, tp %d, cp %d, micro_batch %d, %s, median of %d\n",
           backend, model, seq, tp, cp, mb, bf16 ? "bf16" : "fp32", reps);
    /* q/k/v, o, gate (= up), down, the output layer: each forward shape and its two backward ones */
    int fw[5][2] = {{d / tp + 2 * kvh * hd, d}, {d, d / tp}, {f / tp, d}, {d, f / tp}, {V / tp, d}};
    int rc = 0;
    for (int i = 0; i < 5 && !rc; i++) {
        int n = fw[i][0], k = fw[i][1];
        rc = time_gemm(be, m, n, k, reps) || time_gemm(be, m, k, n, reps) || time_gemm(be, k, n, m, reps);
    }
    if (!rc && cp == 1) rc = time_attn(be, mb, seq, H / tp, kvh, hd, reps);
    herd_backend_free(be);
    if (rc) fprintf(stderr, "bench_shapes: out of %s memory\n", backend);
    return rc ? 1 : 0;
}
