/* timers.c — exclusive per-part step timers (see timers.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "monitoring/timers.h"
#include "src/base/clock.h"

static const char *const part_names[HERD_T_COUNT] = {
    "compute", "comm_tp", "comm_cp", "comm_pp", "comm_dp", "bubble", "data", "ckpt", "other"};

const char *herd_timer_part_name(herd_timer_part p)
{
    return (int)p >= 0 && p < HERD_T_COUNT ? part_names[p] : NULL;
}

/* the part that owns the clock now: the innermost open one, else "other" */
static int owner(const herd_timers *t)
{
    return t->depth > 0 ? t->stack[t->depth - 1] : HERD_T_OTHER;
}

/* charge the time since the last change of owner to the current owner */
static double charge(herd_timers *t)
{
    double now = herd_now_s();
    t->acc.seconds[owner(t)] += now - t->mark;
    t->mark = now;
    return now;
}

void herd_timers_step_begin(herd_timers *t)
{
    memset(t, 0, sizeof *t);
    t->step_start = t->mark = herd_now_s();
}

void herd_timer_begin(herd_timers *t, herd_timer_part p)
{
    if ((int)p < 0 || p >= HERD_T_COUNT || t->depth == HERD_TIMERS_MAX_DEPTH) {
        t->error = t->error ? t->error : 1;
        return;
    }
    charge(t);
    t->stack[t->depth++] = (int)p;
}

void herd_timer_end(herd_timers *t, herd_timer_part p)
{
    if (t->depth == 0 || t->stack[t->depth - 1] != (int)p) {
        /* remember the first offending part (+2 keeps 0 and 1 free) */
        if (!t->error) t->error = 2 + ((int)p >= 0 && p < HERD_T_COUNT ? (int)p : HERD_T_OTHER);
        return;
    }
    charge(t);
    t->depth--;
}

int herd_timers_step_end(herd_timers *t, herd_step_times *out)
{
    double now = charge(t);
    t->depth = 0;
    t->acc.step = now - t->step_start;
    *out = t->acc;
    if (t->error == 1) {
        fprintf(stderr, "herd: monitoring/timers: step times: a part was out of range or nested "
                        "deeper than %d\n", HERD_TIMERS_MAX_DEPTH);
        return -1;
    }
    if (t->error >= 2) {
        fprintf(stderr, "herd: monitoring/timers: step times: part '%s' ended while it was not "
                        "the innermost open part\n", part_names[t->error - 2]);
        return -1;
    }
    return 0;
}

double herd_step_times_sum(const herd_step_times *s)
{
    double sum = 0;
    for (int i = 0; i < HERD_T_COUNT; i++) sum += s->seconds[i];
    return sum;
}

int herd_step_times_check(const herd_step_times *s, double step_seconds, double rel_tol)
{
    for (int i = 0; i < HERD_T_COUNT; i++)
        if (!(s->seconds[i] >= 0) || !isfinite(s->seconds[i])) {
            fprintf(stderr, "herd: monitoring/timers: step times: part '%s' is %g seconds\n",
                    part_names[i], s->seconds[i]);
            return -1;
        }
    double sum = herd_step_times_sum(s);
    if (!(step_seconds > 0) || !(fabs(sum - step_seconds) <= rel_tol * step_seconds)) {
        fprintf(stderr, "herd: monitoring/timers: step times: parts add up to %.6f s but the "
                        "step took %.6f s (tolerance %.1f%%)\n", sum, step_seconds, 100 * rel_tol);
        return -1;
    }
    return 0;
}
