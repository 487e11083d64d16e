/* bench_train.c — CPU training throughput against bare sgemm, side by side.
 *
 *   build/benchmarks/bench_train [PRESET[:B:T]]...   (default: tiny:8:128 100m:4:512)
 *
 * For each model: a full optimizer step (forward, backward, AdamW) on random
 * tokens with a document mask, timed over several steps after a warm-up;
 * tokens/s and GFLOP/s by the MFU formula of DESIGN.md (6 P_matmul + 6 L T d
 * per token). In the same run: OpenBLAS sgemm on 2048^3 with the same threads,
 * the reference. Prints a table and one JSON line per model.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "monitoring/mfu.h"
#include "src/config/config.h"
#include "src/model/model.h"
#include "src/model/optim.h"
#include "src/base/rng.h"
#include "monitoring/clock.h"

static int bench_one(const char *spec, double sgemm_tflops)
{
    char preset[32];
    int B = 0, T = 0;
    if (sscanf(spec, "%31[^:]:%d:%d", preset, &B, &T) < 1) return -1;
    herd_config c;
    herd_config_defaults(&c);
    if (herd_config_apply_preset(&c, preset)) return -1;
    if (B <= 0) B = 4;
    if (T <= 0) T = c.batch.ramp[0].seq_len;
    if (T > c.model.max_seq_len) c.model.max_seq_len = T;
    herd_model_dims d;
    herd_model_dims_from_config(&d, &c.model);
    herd_model m;
    herd_adamw o;
    if (herd_model_create(&m, &d, herd_backend_cpu(), 1) || herd_adamw_create(&o, &m)) return -1;
    int N = B * T;
    int32_t *tok = malloc(N * 4), *tgt = malloc(N * 4), *doc = malloc(N * 4);
    for (int i = 0; i < N; i++) {
        tok[i] = (int32_t)(herd_splitmix64(i) % d.vocab_size);
        tgt[i] = (int32_t)(herd_splitmix64(i + 7) % d.vocab_size);
        doc[i] = (i % T) / (T / 2 > 0 ? T / 2 : 1); /* two documents per sequence */
    }
    double fpt = herd_mfu_flops_per_token(herd_model_dims_matmul_params(&d), d.n_layers, T,
                                          d.d_model);
    int warm = 1, steps = 0;
    double t0 = 0, t = 0;
    for (int s = 0; ; s++) {
        if (s == warm) t0 = herd_now_s();
        herd_model_zero_grad(&m);
        int64_t nv;
        herd_model_forward(&m, tok, tgt, doc, B, T, &nv);
        herd_model_backward(&m, 1.0f / nv);
        herd_adamw_step(&o, &m, &c.optim, 1e-4, herd_grad_norm(&m));
        if (s >= warm) {
            steps++;
            t = herd_now_s() - t0;
            if (steps >= 3 && t > 5.0) break;
        }
    }
    double tps = (double)N * steps / t, gflops = tps * fpt / 1e9;
    printf("%-6s B=%-3d T=%-5d params %7.1fM | %9.0f tok/s | %7.1f GFLOP/s | sgemm %7.1f GFLOP/s | "
           "ratio %.2f\n", preset, B, T, m.n_params / 1e6, tps, gflops, sgemm_tflops * 1e3,
           gflops / (sgemm_tflops * 1e3));
    printf("{\"bench\":\"train_cpu\",\"preset\":\"%s\",\"B\":%d,\"T\":%d,\"params\":%lld,"
           "\"threads\":%d,\"steps\":%d,\"tokens_per_second\":%.1f,\"gflops\":%.2f,"
           "\"sgemm_gflops\":%.2f,\"ratio_to_sgemm\":%.4f}\n", preset, B, T,
           (long long)m.n_params, omp_get_max_threads(), steps, tps, gflops,
           sgemm_tflops * 1e3, gflops / (sgemm_tflops * 1e3));
    fflush(stdout);
    free(tok); free(tgt); free(doc);
    herd_adamw_destroy(&o, &m);
    herd_model_destroy(&m);
    return 0;
}

int main(int argc, char **argv)
{
    double sgemm = herd_mfu_measure_cpu_peak(2048, 3.0);
    printf("bare OpenBLAS sgemm 2048^3, %d threads: %.1f GFLOP/s\n", omp_get_max_threads(),
           sgemm * 1e3);
    const char *defaults[] = {"tiny:8:128", "100m:4:512"};
    int rc = 0;
    if (argc > 1)
        for (int i = 1; i < argc; i++) rc |= bench_one(argv[i], sgemm);
    else
        for (int i = 0; i < 2; i++) rc |= bench_one(defaults[i], sgemm);
    return rc ? 1 : 0;
}
