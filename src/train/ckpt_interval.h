/* ckpt_interval.h — checkpoint.every: auto. The interval (steps) of the
 * highest predicted goodput (topology/goodput.h, closed form) from the run's
 * own measured costs: its step time, the stall and the background write of
 * its checkpoints, a restart time (checkpoint.restart_s, else the mean of the
 * stage's recovery log, else 60 s) and the configured interruption rate
 * (checkpoint.mtbf_s, or checkpoint.failures_per_gpu_day times the ranks).
 * Re-evaluated at every checkpoint as measurements come in. Local: the
 * trainer makes the ranks agree on the interval. */
#ifndef HERD_CKPT_INTERVAL_H
#define HERD_CKPT_INTERVAL_H

#include <stddef.h>
#include <stdint.h>
#include "checkpoint/ckpt.h"
#include "kernels/comm.h"
#include "src/config/config.h"
#include "topology/goodput.h"

#define HERD_CKPT_AUTO_FIRST 3   /* steps before the first checkpoint, which measures the costs */
#define HERD_CKPT_AUTO_RESTART_S 60.0

typedef struct {
    herd_goodput_inputs in;  /* step, stall, write: the means measured so far */
    char   restart_from[160];/* where restart_s comes from */
    char   mtbf_from[96];
    int    n_step, n_ckpt;
    double step_sum, stall_sum, write_sum;
    int    every;            /* steps; HERD_CKPT_AUTO_FIRST until a checkpoint was measured */
    double predicted;        /* closed-form goodput at `every` */
    double last_t, pending_stall; /* the previous tick; the stall to take out of the next step */
    int    seen_commits, logged_every;
} herd_ckpt_interval;

/* From the config (checkpoint.*), the job's ranks and the stage's recovery
 * log (may be NULL or missing). 0, or -1 with a message (bad rate). */
int herd_ckpt_interval_init(herd_ckpt_interval *iv, const herd_config *c, int world, const char *recovery_log);

/* The measurements: one step's time (without a checkpoint's stall), one
 * committed checkpoint's stall and background write (write + commit). */
void herd_ckpt_interval_add_step(herd_ckpt_interval *iv, double step_s);
void herd_ckpt_interval_add_ckpt(herd_ckpt_interval *iv, double stall_s, double write_s);

/* Called once per step at the same point of the loop (now: a clock): the
 * time since the previous tick, less the checkpoint stall noted in between,
 * is a step's time. */
void herd_ckpt_interval_tick(herd_ckpt_interval *iv, double now, double stall_s);

/* Is a checkpoint due at `step` (last_saved: the step of the last one, -1: none)? */
int herd_ckpt_interval_due(const herd_ckpt_interval *iv, int64_t step, int64_t last_saved);

/* Re-evaluate: the new interval (>= 1); why gets one line saying from what. */
int herd_ckpt_interval_choose(herd_ckpt_interval *iv, char *why, size_t n);

/* After the checkpoint of `step` started: the newest committed checkpoint's
 * costs from the writer's stats, re-evaluated, the ranks agreed on the
 * largest interval (world: collective), the interval and why printed on root
 * when it changes. 0 or -1 (the agreement failed). */
int herd_ckpt_interval_update(herd_ckpt_interval *iv, herd_ckpt_writer *w, herd_comm *world, int root,
                              int64_t step);

/* The mean "time lost: N s down" of a recovery log's restarts (run_stage.sh);
 * *n_restarts their number. -1 when the file has none or cannot be read. */
double herd_ckpt_restart_from_log(const char *path, int *n_restarts);

#endif
