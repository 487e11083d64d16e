/* goodput.c — see goodput.h: the inputs, their checks and the closed form.
 *
 * One period: W = every * step_s of training, then the checkpoint's stall C
 * (stall_s, plus waiting for the previous write when it is slower than W);
 * T = W + C. An interruption (rate 1/M) costs, to first order in T/M:
 *   the restart R (+ requeue_s for the fraction p_requeue that requeue),
 *   the work since the last committed checkpoint: on average T/2 + C + write_s
 *     (a checkpoint commits C + write_s after its period ends),
 *   for the fraction p_node that lose a node: data parallelism shrunk by
 *     1/nodes until the node is repaired and the next checkpoint after it
 *     ((repair_s + T/2) / nodes), a planned restart R and the commit waited
 *     for (write_s) to grow back.
 * goodput = W/T * (1 - F/M), F the sum above. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "topology/goodput.h"

void herd_goodput_inputs_init(herd_goodput_inputs *in)
{
    memset(in, 0, sizeof *in);
    in->nodes = 1;
}

double herd_goodput_mtbf_from_count(double interruptions, double period_s)
{
    return interruptions > 0 ? period_s / interruptions : 0;
}

double herd_goodput_mtbf_from_gpu_rate(double per_gpu_day, int gpus)
{
    return per_gpu_day > 0 && gpus > 0 ? 86400.0 / (per_gpu_day * gpus) : 0;
}

static int bad(char *why, size_t n, const char *field, double v, const char *want)
{
    snprintf(why, n, "%s %g: %s", field, v, want);
    return -1;
}

int herd_goodput_check(const herd_goodput_inputs *in, char *why, size_t n)
{
    const struct { const char *name; double v; } pos[] = {
        {"step_s", in->step_s}, {"mtbf_s", in->mtbf_s}};
    const struct { const char *name; double v; } nonneg[] = {
        {"stall_s", in->stall_s}, {"write_s", in->write_s}, {"restart_s", in->restart_s},
        {"requeue_s", in->requeue_s}, {"repair_s", in->repair_s}};
    for (size_t i = 0; i < sizeof pos / sizeof *pos; i++)
        if (!(pos[i].v > 0) || !isfinite(pos[i].v)) return bad(why, n, pos[i].name, pos[i].v, "expected > 0");
    for (size_t i = 0; i < sizeof nonneg / sizeof *nonneg; i++)
        if (!(nonneg[i].v >= 0) || !isfinite(nonneg[i].v))
            return bad(why, n, nonneg[i].name, nonneg[i].v, "expected >= 0");
    if (!(in->p_requeue >= 0 && in->p_requeue <= 1))
        return bad(why, n, "p_requeue", in->p_requeue, "expected a fraction in [0, 1]");
    if (!(in->p_node >= 0 && in->p_node <= 1))
        return bad(why, n, "p_node", in->p_node, "expected a fraction in [0, 1]");
    if (in->nodes < 1 || in->nodes > 1000000) return bad(why, n, "nodes", in->nodes, "expected 1 to 10^6");
    if (in->p_node > 0 && in->nodes < 2)
        return bad(why, n, "p_node", in->p_node, "a lost node shrinks data parallelism: needs nodes >= 2");
    return 0;
}

void herd_goodput_closed(const herd_goodput_inputs *in, int every, herd_goodput_result *r)
{
    double W = every * in->step_s;
    double wait = in->write_s > W ? in->write_s - W : 0;
    double C = in->stall_s + wait, T = W + C;
    double R = in->restart_s + in->p_requeue * in->requeue_s;
    double shrunk = in->nodes > 1 ? (in->repair_s + T / 2) / in->nodes + in->write_s : 0;
    double lost = T / 2 + C + in->write_s + in->p_node * shrunk;
    double restart = R + (in->nodes > 1 ? in->p_node * in->restart_s : 0);
    double down = (restart + lost) / in->mtbf_s;
    if (down > 1) down = 1;
    memset(r, 0, sizeof *r);
    r->goodput = W / T * (1 - down);
    r->ckpt = C / T * (1 - down);
    r->restart = restart / in->mtbf_s < 1 ? restart / in->mtbf_s : 1;
    r->lost = 1 - r->goodput - r->ckpt - r->restart;
    r->n_fail = 3600.0 / in->mtbf_s;
}

int herd_goodput_best_every(const herd_goodput_inputs *in, int max_every, herd_goodput_result *r)
{
    /* beyond 2M of work per period a failure is all but certain each period */
    double lim = 2 * in->mtbf_s / in->step_s + 2;
    int top = lim < max_every ? (int)lim : max_every, best = 1;
    if (top < 1) top = 1;
    herd_goodput_result x;
    double g = -1;
    /* geometric scan (1%), then the integers around the best */
    for (double e = 1; e <= top; e = fmax(e + 1, e * 1.01)) {
        herd_goodput_closed(in, (int)e, &x);
        if (x.goodput > g) g = x.goodput, best = (int)e;
    }
    int lo = (int)(best / 1.02), hi = (int)(best * 1.02) + 1;
    if (lo < 1) lo = 1;
    if (hi > top) hi = top;
    int by = (hi - lo) / 200 + 1; /* at most ~200 evaluations (a huge MTBF: a huge interval) */
    for (int e = lo; e <= hi; e += by) {
        herd_goodput_closed(in, e, &x);
        if (x.goodput > g) g = x.goodput, best = e;
    }
    if (g <= 0) { /* restarts alone outlast the MTBF: no optimum; Young/Daly's interval */
        double yd = herd_goodput_young_daly_s(in) / in->step_s;
        best = yd < 1 ? 1 : yd > top ? top : (int)yd;
    }
    herd_goodput_closed(in, best, r);
    return best;
}

double herd_goodput_young_daly_s(const herd_goodput_inputs *in)
{
    double C = in->stall_s;
    double w = sqrt(2 * C * in->mtbf_s) - C;
    return w > in->write_s ? w : in->write_s; /* an async write slower than the period is waited for */
}
