/* bench_loader.c — how long the step waits for data, with and without the
 * prefetch thread.
 *
 * usage: bench_loader CONFIG [STEP_MS]
 * Opens the loader of CONFIG (data.sources or data.path), then for 30 steps:
 * herd_loader_next for the first batch.ramp stage (timed: the wait), then
 * STEP_MS milliseconds of busy compute standing in for the training step
 * (default 50). Prints the mean wait per step, prefetch off and on, as JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "src/config/config.h"
#include "src/data/loader.h"
#include "monitoring/clock.h"

static volatile double sink;

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_loader CONFIG [STEP_MS]\n");
        return 2;
    }
    double step_s = (argc > 2 ? atof(argv[2]) : 50) / 1000;
    herd_config *c = malloc(sizeof *c);
    if (!c || herd_config_resolve(c, argv[1], 0, NULL)) return 1;
    int T = c->batch.ramp[0].seq_len;
    int64_t G = c->batch.ramp[0].batch_tokens / T;
    int32_t *buf = malloc(sizeof(int32_t) * 3 * (size_t)(G * T));
    for (int prefetch = 0; prefetch < 2; prefetch++) {
        herd_loader *l;
        if (herd_loader_open(&l, c, c->model.vocab_size)) return 1;
        herd_loader_set_prefetch(l, prefetch);
        double wait = 0;
        enum { STEPS = 30 };
        for (int s = 0; s < STEPS; s++) {
            double t0 = herd_now_s();
            if (herd_loader_next(l, T, G, 0, G, buf, buf + G * T, buf + 2 * G * T)) return 1;
            wait += herd_now_s() - t0;
            double x = 0, t1 = herd_now_s();
            while (herd_now_s() - t1 < step_s) x += 1e-9; /* the step's compute */
            sink = x;
        }
        printf("{\"bench\": \"loader\", \"prefetch\": %d, \"batch\": \"%lldx%d\", \"step_ms\": %.0f, "
               "\"wait_ms_per_step\": %.3f}\n",
               prefetch, (long long)G, T, step_s * 1000, wait / STEPS * 1000);
        herd_loader_close(l);
    }
    free(buf);
    free(c);
    return 0;
}
