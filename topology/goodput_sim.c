/* goodput_sim.c — see goodput.h: the run simulated, event by event.
 *
 * Failures arrive as a Poisson process (mean gap mtbf_s) from their own
 * random stream, so that every interval sees the same failure times; what a
 * failure does (requeue or not, a node lost or not) comes from a second
 * stream, two draws per failure. The run trains W = every * step_s of work
 * (slower by nodes / (nodes - lost) while nodes are lost), stalls for the
 * checkpoint (and for the previous write when it is still in flight), and
 * the checkpoint commits write_s later. A failure rolls the work back to the
 * last committed checkpoint (a write in flight is lost) and restarts; a
 * failure during the restart starts it again. A lost node comes back after
 * repair_s: at the next checkpoint after that the job waits for the commit
 * and relaunches on all nodes (a planned restart), or sooner when a failure
 * relaunches it anyway. */
#include <math.h>
#include <string.h>
#include "topology/goodput.h"

#define MAX_LOST 64

typedef struct {
    const herd_goodput_inputs *in;
    uint64_t rf, ra;                  /* failure times; what each failure does */
    double t, next_fail;
    double work, committed, pend_work, pend_t; /* pend_t < 0: no write in flight */
    double repair_at[MAX_LOST];
    int    lost;
    double t_stall, t_restart;
    long   n_fail;
} sim;

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *s) { return ((double)(splitmix(s) >> 11) + 0.5) * 0x1p-53; }

/* the nodes repaired by now rejoin (the relaunch or planned restart at t) */
static void rejoin(sim *s)
{
    int k = 0;
    for (int i = 0; i < s->lost; i++)
        if (s->repair_at[i] > s->t) s->repair_at[k++] = s->repair_at[i];
    s->lost = k;
}

/* at the failure time: roll back, restart until a restart completes */
static void fail(sim *s)
{
    const herd_goodput_inputs *in = s->in;
    s->t = s->next_fail;
    if (s->pend_t >= 0 && s->pend_t <= s->t) s->committed = s->pend_work;
    s->pend_t = -1;
    s->work = s->committed;
    for (;;) {
        s->n_fail++;
        s->next_fail = s->t - in->mtbf_s * log(uniform(&s->rf));
        double d = in->restart_s, u_q = uniform(&s->ra), u_n = uniform(&s->ra);
        if (u_q < in->p_requeue) d += in->requeue_s;
        if (in->nodes > 1 && u_n < in->p_node && s->lost < in->nodes - 1 && s->lost < MAX_LOST)
            s->repair_at[s->lost++] = s->t + in->repair_s;
        if (s->next_fail >= s->t + d) {
            s->t += d;
            s->t_restart += d;
            rejoin(s);
            return;
        }
        s->t_restart += s->next_fail - s->t;
        s->t = s->next_fail;
    }
}

/* spend dt (into *acc) unless a failure comes first: then 1 */
static int advance(sim *s, double dt, double *acc)
{
    if (s->next_fail < s->t + dt) {
        if (acc) *acc += s->next_fail - s->t;
        fail(s);
        return 1;
    }
    s->t += dt;
    if (acc) *acc += dt;
    return 0;
}

/* after a checkpoint: grow back onto repaired nodes (wait for the commit,
 * then a planned restart); 1 if a failure came first */
static int grow_back(sim *s)
{
    int repaired = 0;
    for (int i = 0; i < s->lost; i++) repaired += s->repair_at[i] <= s->t;
    if (!repaired) return 0;
    if (s->pend_t > s->t && advance(s, s->pend_t - s->t, &s->t_stall)) return 1;
    if (s->pend_t >= 0) s->committed = s->pend_work, s->pend_t = -1;
    if (advance(s, s->in->restart_s, &s->t_restart)) return 1;
    rejoin(s);
    return 0;
}

void herd_goodput_simulate(const herd_goodput_inputs *in, int every, double horizon_s, uint64_t seed,
                           herd_goodput_result *r)
{
    sim s;
    memset(&s, 0, sizeof s);
    s.in = in;
    s.rf = seed;
    s.ra = seed ^ 0x5851f42d4c957f2dull;
    s.pend_t = -1;
    s.next_fail = -in->mtbf_s * log(uniform(&s.rf));
    double W = every * in->step_s;
    while (s.t < horizon_s) {
        double speed = (double)(in->nodes - s.lost) / in->nodes;
        if (advance(&s, W / speed, NULL)) continue;
        s.work += W;
        double wait = s.pend_t > s.t ? s.pend_t - s.t : 0;
        if (advance(&s, in->stall_s + wait, &s.t_stall)) continue;
        if (s.pend_t >= 0) s.committed = s.pend_work;
        s.pend_work = s.work;
        s.pend_t = s.t + in->write_s;
        if (in->write_s <= 0) s.committed = s.work, s.pend_t = -1;
        grow_back(&s);
    }
    memset(r, 0, sizeof *r);
    r->goodput = s.work / s.t;
    r->ckpt = s.t_stall / s.t;
    r->restart = s.t_restart / s.t;
    r->lost = 1 - r->goodput - r->ckpt - r->restart;
    r->n_fail = s.n_fail * 3600.0 / s.t;
}

/* least squares a + b x + c x^2 through (x[i], y[i]); the vertex, or NAN */
static double vertex(const double *x, const double *y, int n)
{
    double S[5] = {0}, T[3] = {0};
    for (int i = 0; i < n; i++) {
        double p = 1;
        for (int k = 0; k < 5; k++) {
            if (k < 3) T[k] += p * y[i];
            S[k] += p;
            p *= x[i];
        }
    }
    /* normal equations [S0 S1 S2; S1 S2 S3; S2 S3 S4] (a b c) = T, Cramer */
    double m[3][3] = {{S[0], S[1], S[2]}, {S[1], S[2], S[3]}, {S[2], S[3], S[4]}};
#define DET(a) ((a)[0][0] * ((a)[1][1] * (a)[2][2] - (a)[1][2] * (a)[2][1]) - \
                (a)[0][1] * ((a)[1][0] * (a)[2][2] - (a)[1][2] * (a)[2][0]) + \
                (a)[0][2] * ((a)[1][0] * (a)[2][1] - (a)[1][1] * (a)[2][0]))
    double d = DET(m);
    double col[3][3];
    double coef[3];
    for (int j = 1; j < 3; j++) {
        memcpy(col, m, sizeof col);
        for (int i = 0; i < 3; i++) col[i][j] = T[i];
        coef[j] = DET(col) / d;
    }
#undef DET
    if (!(d != 0) || !(coef[2] < 0)) return NAN;
    return -coef[1] / (2 * coef[2]);
}

int herd_goodput_sim_best_every(const herd_goodput_inputs *in, int lo, int hi, int n, double horizon_s,
                                uint64_t seed, double *g)
{
    double x[64], y[64];
    if (n > 64) n = 64;
    if (n < 3) n = 3;
    if (lo < 1) lo = 1;
    if (hi <= lo) hi = lo + 2;
    int best = 0;
    for (int i = 0; i < n; i++) {
        x[i] = log(lo) + (log(hi) - log(lo)) * i / (n - 1);
        herd_goodput_result r;
        herd_goodput_simulate(in, (int)lround(exp(x[i])), horizon_s, seed, &r);
        y[i] = r.goodput;
        if (y[i] > y[best]) best = i;
    }
    int a = best - 1 < 0 ? 0 : best - 1, b = best + 1 >= n ? n - 1 : best + 1;
    double v = vertex(x + a, y + a, b - a + 1);
    int e = (int)lround(exp(isnan(v) || v < x[a] || v > x[b] ? x[best] : v));
    herd_goodput_result r;
    herd_goodput_simulate(in, e, horizon_s, seed, &r);
    *g = r.goodput;
    return e;
}
