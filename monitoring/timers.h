/* timers.h — one optimizer step's wall time split into named parts, per rank.
 *
 *   herd_timers t;
 *   herd_timers_step_begin(&t);
 *   herd_timer_begin(&t, HERD_T_DATA);    ... fetch the batch ...   herd_timer_end(&t, HERD_T_DATA);
 *   herd_timer_begin(&t, HERD_T_COMPUTE); ... forward/backward ...
 *       herd_timer_begin(&t, HERD_T_COMM_DP); MPI_Wait(...); herd_timer_end(&t, HERD_T_COMM_DP);
 *   herd_timer_end(&t, HERD_T_COMPUTE);
 *   herd_step_times st; herd_timers_step_end(&t, &st);
 *
 * Accounting is exclusive: at every instant exactly one part owns the clock,
 * the innermost open one (a stack), and time with no part open is "other".
 * So a DP wait opened inside compute is charged to comm_dp only, and the
 * parts add up to the step time by construction; herd_step_times_check() is
 * the guard that a caller (or a bug in nesting) did not break that.
 *
 * "Exposed" communication is what the caller brackets: wrap only the blocking
 * waits (MPI_Wait, ncclGroupEnd + stream sync), not the non-blocking starts,
 * so overlapped communication stays in compute. The timers read the host
 * monotonic clock (one clock_gettime per begin/end, ~20-40 ns) and never
 * synchronise a device: on GPU the caller times at the syncs it already has.
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
    HERD_T_OTHER,       /* time with no part open */
    HERD_T_COUNT
} herd_timer_part;

#define HERD_TIMERS_MAX_DEPTH 16

/* Seconds of one step per part; `step` is the wall time from step_begin to
 * step_end. */
typedef struct {
    double seconds[HERD_T_COUNT];
    double step;
} herd_step_times;

typedef struct {
    double step_start;  /* monotonic seconds */
    double mark;        /* last time the clock changed owner */
    int    depth;       /* open parts on the stack */
    int    stack[HERD_TIMERS_MAX_DEPTH];
    int    error;       /* a mismatched end or an overflow happened this step */
    herd_step_times acc;
} herd_timers;

/* "compute", "comm_tp", "comm_cp", "comm_pp", "comm_dp", "bubble", "data",
 * "ckpt", "other"; NULL for an out-of-range part. */
const char *herd_timer_part_name(herd_timer_part p);

void herd_timers_step_begin(herd_timers *t);
void herd_timer_begin(herd_timers *t, herd_timer_part p);
/* Ends the innermost part, which must be `p` (else the step is marked bad and
 * step_end returns -1 naming the part). */
void herd_timer_end(herd_timers *t, herd_timer_part p);

/* Closes the step (parts still open are charged up to now and closed) and
 * writes its times to *out. 0, or -1 with a message when the nesting was
 * broken during the step. */
int herd_timers_step_end(herd_timers *t, herd_step_times *out);

/* Sum of the parts. */
double herd_step_times_sum(const herd_step_times *s);

/* 0 when every part is >= 0 and the parts add up to `step_seconds` within a
 * relative tolerance `rel_tol` (e.g. 0.05); -1 with a message naming the
 * field otherwise. `step_seconds` is the step time the caller reports (it may
 * be measured with its own clock around step_begin/step_end). */
int herd_step_times_check(const herd_step_times *s, double step_seconds, double rel_tol);

#endif
