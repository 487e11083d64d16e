/* metrics.h — one JSON object per optimizer step (JSON Lines).
 *
 * Fields: step, loss, lr, grad_norm, tokens_seen, batch_tokens, seq_len,
 * step_seconds, tokens_per_second, tflops (achieved, per device), mfu,
 * compute_s, comm_tp_s, comm_dp_s, comm_world_s.
 * Floats are written with 17 significant digits, so two runs' files compare
 * bit for bit.
 */
#ifndef HERD_METRICS_H
#define HERD_METRICS_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    int64_t step;
    double  loss;
    double  lr;
    double  grad_norm;
    int64_t tokens_seen;
    int64_t batch_tokens;
    int     seq_len;
    double  step_seconds;
    double  tokens_per_second;
    double  tflops;
    double  mfu;
    /* the step split into compute and communication (seconds, this rank) */
    double  compute_s;
    double  comm_tp_s;    /* tensor-parallel group (incl. replicated-KV sums) */
    double  comm_dp_s;    /* FSDP all-gather and reduce-scatter */
    double  comm_world_s; /* global reductions: loss, token counts, grad norm */
} herd_step_metrics;

typedef struct {
    FILE *f;
    char  path[1024];
} herd_metrics;

/* Open (append: a resumed run continues the same file). -1 with a message. */
int  herd_metrics_open(herd_metrics *m, const char *path);
int  herd_metrics_write(herd_metrics *m, const herd_step_metrics *s);
void herd_metrics_close(herd_metrics *m);

/* Format one step as a JSON object without newline into buf. */
int  herd_metrics_format(char *buf, size_t size, const herd_step_metrics *s);

#endif
