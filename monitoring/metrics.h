/* metrics.h — one JSON object per optimizer step (JSON Lines).
 *
 * Fields: step, loss, lr, grad_norm, tokens_seen, batch_tokens, seq_len,
 * step_seconds, tokens_per_second, tflops (achieved, per device), mfu.
 * Floats are written with 17 significant digits, so two runs' files compare
 * bit for bit.
 *
 * With has_times set, the line also carries the step's time split (seconds,
 * monitoring/timers.h, exclusive parts that add up to the step):
 *   compute_s, comm_tp_s, comm_cp_s, comm_pp_s, comm_dp_s, bubble_s, data_s,
 *   ckpt_s, other_s
 *
 * Event lines share the file; they have an "event" key and no "loss":
 *   {"event":"restart","step":N,"time":UNIX,"restarts":K}
 *       the run resumed at step N (from a checkpoint); K restarts so far
 *   {"event":"checkpoint","step":N,"time":UNIX,"stall_s":S,"write_s":W}
 *       a checkpoint of step N was committed; training was blocked S seconds,
 *       the (background) write took W seconds
 * `herd report` reads them to mark the timeline (docs/monitoring.md).
 */
#ifndef HERD_METRICS_H
#define HERD_METRICS_H

#include <stdint.h>
#include <stdio.h>
#include "monitoring/timers.h"

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
    int     has_times;        /* append the time split below */
    herd_step_times times;
    int     has_mem;          /* append mem_peak_mib: the most backend memory allocated at
                                 once during the step, max over the ranks */
    double  mem_peak_bytes;
} herd_step_metrics;

typedef struct {
    FILE *f;
    char  path[1024];
} herd_metrics;

/* Open (append: a resumed run continues the same file). -1 with a message.
 * The file is created 0640 and never opened through a link: a link or
 * anything but a regular file at path is refused. */
int  herd_metrics_open(herd_metrics *m, const char *path);
/* The same; fresh: remove what is at path first and start an empty file. */
int  herd_metrics_open_fresh(herd_metrics *m, const char *path, int fresh);
int  herd_metrics_write(herd_metrics *m, const herd_step_metrics *s);
void herd_metrics_close(herd_metrics *m);

/* Event lines (see above); `time` is the unix time in seconds. */
int  herd_metrics_event_restart(herd_metrics *m, int64_t step, double time, int64_t restarts);
int  herd_metrics_event_checkpoint(herd_metrics *m, int64_t step, double time, double stall_s,
                                   double write_s);

/* Format one step as a JSON object without newline into buf. */
int  herd_metrics_format(char *buf, size_t size, const herd_step_metrics *s);

#endif
