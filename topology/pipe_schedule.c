/* pipe_schedule.c — see pipe_schedule.h. */
#include <stdlib.h>
#include "topology/pipe_schedule.h"

/* k-th forward (or backward) of a rank in Megatron's order: groups of P
 * micro-batches, inside a group chunk by chunk (backwards: last chunk first).
 * With N not a multiple of P the last group is smaller. */
static void nth_op(int P, int V, int N, int k, int backward, int *chunk, int *mb)
{
    int g0 = k / (P * V) * P;            /* first micro-batch of the group */
    int gsize = N - g0 < P ? N - g0 : P; /* micro-batches in it */
    int r = k - g0 * V;                  /* position inside the group: r / gsize = chunk */
    int c = r / gsize;
    *chunk = backward ? V - 1 - c : c;
    *mb = g0 + r % gsize;
}

void herd_pipe_order(int P, int V, int N, int p, int warmup, herd_pipe_op *ops)
{
    int total = N * V, n = 0, f = 0, b = 0;
    (void)p;
    if (warmup > total) warmup = total;
    for (; f < warmup; f++, n++) {
        ops[n].kind = 0;
        nth_op(P, V, N, f, 0, &ops[n].chunk, &ops[n].mb);
    }
    for (; f < total; f++) { /* steady state: one forward, one backward */
        ops[n].kind = 0;
        nth_op(P, V, N, f, 0, &ops[n].chunk, &ops[n].mb);
        n++;
        ops[n].kind = 1;
        nth_op(P, V, N, b++, 1, &ops[n].chunk, &ops[n].mb);
        n++;
    }
    for (; b < total; b++, n++) {
        ops[n].kind = 1;
        nth_op(P, V, N, b, 1, &ops[n].chunk, &ops[n].mb);
    }
}

double herd_pipe_theory(int P, int V, int N) { return (P - 1.0) / ((double)N * V + P - 1.0); }

/* Run the P op lists with forward time 1 and backward time 2: an op starts
 * when its rank is free and its input exists. Returns the bubble fraction,
 * or -1 when some rank would wait forever. */
static double simulate(int P, int V, int N, const int *warmup)
{
    int S = P * V, total = 2 * N * V;
    herd_pipe_op *ops = malloc(sizeof(*ops) * (size_t)total * P);
    double *fdone = malloc(sizeof(double) * S * N), *bdone = malloc(sizeof(double) * S * N);
    double *clock = calloc(P, sizeof(double));
    int *next = calloc(P, sizeof(int));
    for (int i = 0; i < S * N; i++) fdone[i] = bdone[i] = -1.0;
    for (int p = 0; p < P; p++) herd_pipe_order(P, V, N, p, warmup[p], ops + (size_t)p * total);
    int left = total * P, progress = 1;
    double end = 0.0;
    while (left > 0 && progress) {
        progress = 0;
        for (int p = 0; p < P; p++)
            while (next[p] < total) {
                const herd_pipe_op *o = &ops[(size_t)p * total + next[p]];
                int s = o->chunk * P + p;
                double dep;
                if (o->kind == 0) dep = s == 0 ? 0.0 : fdone[(s - 1) * N + o->mb];
                else dep = s == S - 1 ? fdone[s * N + o->mb] : bdone[(s + 1) * N + o->mb];
                if (dep < 0) break;
                double t = (clock[p] > dep ? clock[p] : dep) + (o->kind ? 2.0 : 1.0);
                (o->kind ? bdone : fdone)[s * N + o->mb] = t;
                clock[p] = t;
                if (t > end) end = t;
                next[p]++;
                left--;
                progress = 1;
            }
    }
    free(ops); free(fdone); free(bdone); free(clock); free(next);
    return left ? -1.0 : 1.0 - 3.0 * N * V / end;
}

double herd_pipe_plan(int P, int V, int N, int *warmup)
{
    int total = N * V;
    for (int p = 0; p < P; p++) {
        int w = V > 1 ? (P - p - 1) * 2 + (V - 1) * P : P - p - 1;
        warmup[p] = w < total ? w : total;
    }
    for (;;) {
        double b = simulate(P, V, N, warmup);
        if (b >= 0) return b;
        int raised = 0; /* all forwards first (GPipe) never waits forever */
        for (int p = 0; p < P; p++)
            if (warmup[p] < total) warmup[p]++, raised = 1;
        if (!raised) return -1.0;
    }
}
