/* runlog.h — read a run's metrics.jsonl back: step lines, validation lines
 * and event lines (monitoring/metrics.h documents all three).
 *
 * Each line must be one flat JSON object (string, number, true/false/null
 * values); a line that is not is refused with FILE:LINE and the field.
 * Unknown keys are ignored, so newer trainers' lines stay readable.
 */
#ifndef HERD_RUNLOG_H
#define HERD_RUNLOG_H

#include <stdint.h>
#include "monitoring/timers.h"

typedef struct {
    int64_t step, tokens_seen, batch_tokens;
    double  loss, lr, grad_norm, step_seconds, tokens_per_second, mfu;
    int     has_times;                 /* every *_s part was on the line */
    double  parts[HERD_T_COUNT];       /* seconds, timers.h order */
} herd_runlog_step;

typedef struct {
    int64_t step;
    double  val_loss;
} herd_runlog_val;

typedef enum { HERD_EVENT_RESTART, HERD_EVENT_CHECKPOINT } herd_runlog_event_kind;

typedef struct {
    herd_runlog_event_kind kind;
    int64_t step;
    double  time, stall_s, write_s; /* stall_s/write_s for checkpoints, else 0 */
    int64_t restarts;               /* for restarts, else 0 */
} herd_runlog_event;

typedef struct {
    herd_runlog_step  *steps;  int n_steps;
    herd_runlog_val   *vals;   int n_vals;
    herd_runlog_event *events; int n_events;
} herd_runlog;

/* Read `path`. 0, or -1 with a message naming the file, the line and the field. */
int  herd_runlog_read(herd_runlog *log, const char *path);
void herd_runlog_free(herd_runlog *log);

#endif
