/* timers.h — one optimizer step's wall time split into named parts, per rank.
 *
 * The trainer fills a herd_step_times at every step: the communication parts
 * are the time inside each group's calls, the bubble the time a pipeline stage
 * waits on its neighbours, and compute the rest of the step, so the parts add
 * up to the step time by construction. metrics.jsonl, the Prometheus file and
 * `herd report` name the parts with herd_timer_part_name.
 */
#ifndef HERD_TIMERS_H
#define HERD_TIMERS_H

typedef enum {
    HERD_T_COMPUTE = 0, /* forward, backward, optimizer (device or CPU work) */
    HERD_T_COMM_TP,     /* exposed communication of the tensor-parallel group */
    HERD_T_COMM_CP,     /* ... context-parallel group */
    HERD_T_COMM_PP,     /* ... pipeline point-to-point */
    HERD_T_COMM_DP,     /* ... data-parallel (FSDP all-gather / reduce-scatter) */
    HERD_T_BUBBLE,      /* pipeline bubble: a stage idle waiting for its neighbour */
    HERD_T_DATA,        /* waiting for the next batch */
    HERD_T_CKPT,        /* checkpoint stall: training blocked on a snapshot/commit */
    HERD_T_OTHER,       /* time in none of the parts above */
    HERD_T_COUNT
} herd_timer_part;

/* Seconds of one step per part; `step` is the step's wall time. */
typedef struct {
    double seconds[HERD_T_COUNT];
    double step;
} herd_step_times;

/* "compute", "comm_tp", "comm_cp", "comm_pp", "comm_dp", "bubble", "data",
 * "ckpt", "other"; NULL for an out-of-range part. */
const char *herd_timer_part_name(herd_timer_part p);

#endif
