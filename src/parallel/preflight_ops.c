/* preflight_ops.c — each group of the layout times the collective the step
 * runs on it, at the step's size, all groups of a dimension at once (as in
 * training); on the groups that carry the backend's buffers (grid.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mpi.h>
#include "monitoring/clock.h"
#include "src/parallel/preflight_internal.h"
#include "topology/linkstat.h"
#include "topology/topo.h"

static void add_op(herd_preflight_result *r, const char *name, int dim, int kind, size_t elems)
{
    herd_preflight_op *op = &r->op[r->n_ops++];
    memset(op, 0, sizeof *op);
    snprintf(op->name, sizeof op->name, "%s", name);
    op->dim = dim;
    op->kind = kind;
    op->elems = elems ? elems : 1;
    op->measured = op->elems < HERD_PF_MAX_ELEMS ? op->elems : HERD_PF_MAX_ELEMS;
}

/* the step's collectives of the layout (src/model/model.c, src/parallel/fsdp.c) */
static void list_ops(const herd_grid *g, herd_preflight_result *r)
{
    const herd_preflight_sizes *s = &r->sizes;
    r->n_ops = 0;
    if (g->tp > 1 && s->sp) {
        add_op(r, "tp all_gather", HERD_DIM_TP, HERD_PF_ALL_GATHER, s->tp);
        add_op(r, "tp reduce_scatter", HERD_DIM_TP, HERD_PF_REDUCE_SCATTER, s->tp);
    } else if (g->tp > 1) {
        add_op(r, "tp all_reduce", HERD_DIM_TP, HERD_PF_ALL_REDUCE, s->tp);
    }
    if (g->cp > 1) add_op(r, "cp all_gather", HERD_DIM_CP, HERD_PF_ALL_GATHER, s->cp);
    if (g->pp > 1) add_op(r, "pp send/recv", HERD_DIM_PP, HERD_PF_SENDRECV, s->pp);
    if (g->dp > 1) {
        add_op(r, "dp all_gather", HERD_DIM_DP, HERD_PF_ALL_GATHER, s->dp);
        add_op(r, "dp reduce_scatter", HERD_DIM_DP, HERD_PF_REDUCE_SCATTER, s->dp);
    }
}

/* PP: each stage sends one activation to the next and receives one from the previous */
static int sendrecv(herd_comm *c, void *a, void *b, size_t m)
{
    herd_comm_request *rs = NULL, *rr = NULL;
    int next = (c->rank + 1) % c->size, prev = (c->rank + c->size - 1) % c->size;
    if (herd_comm_irecv(c, b, m, HERD_F32, prev, 71, &rr) || herd_comm_isend(c, a, m, HERD_F32, next, 71, &rs))
        return -1;
    return herd_comm_wait(c, rr) || herd_comm_wait(c, rs) ? -1 : 0;
}

static int run_op(herd_comm *c, int kind, void *a, void *b, size_t m, const size_t *counts)
{
    switch (kind) {
    case HERD_PF_ALL_REDUCE: return herd_comm_all_reduce(c, a, m, HERD_F32, HERD_SUM);
    case HERD_PF_ALL_GATHER: return herd_comm_all_gather(c, a, b, counts, HERD_F32);
    case HERD_PF_REDUCE_SCATTER: return herd_comm_reduce_scatter(c, a, b, counts, HERD_F32);
    default: return sendrecv(c, a, b, m);
    }
}

/* this rank's median seconds of one op on its group, or -1 (every rank) when
 * a rank could not allocate its buffers: they agree before the first
 * collective, so that none waits in a group another rank left */
static double time_op(herd_comm *c, const herd_backend *be, const herd_preflight_op *op, int reps)
{
    size_t m = op->measured, bytes = sizeof(float) * m * (size_t)c->size;
    size_t *counts = malloc(sizeof *counts * (size_t)c->size);
    double *t = malloc(sizeof *t * (size_t)reps);
    void *a = be->alloc(be, bytes), *b = be->alloc(be, bytes);
    double med = -1;
    int ok = counts && t && a && b;
    if (!ok)
        fprintf(stderr, "herd check: %s: out of memory for 2 x %zu bytes on rank %d\n", op->name, bytes,
                herd_mpi_world_rank());
    if (herd_preflight_agree(ok ? 0 : -1) == 0) {
        for (int i = 0; i < c->size; i++) counts[i] = m;
        for (int k = -1; k < reps; k++) { /* k = -1: the warm-up (connections, buffers) */
            /* a failed collective leaves the group's other ranks waiting: end the job
             * (the communicator printed the call, the group and the rank) */
            if (herd_comm_barrier(c)) herd_comm_abort(1);
            double t0 = herd_now_s();
            if (run_op(c, op->kind, a, b, m, counts)) herd_comm_abort(1);
            if (be->synchronize) be->synchronize(be);
            if (k >= 0) t[k] = herd_now_s() - t0;
        }
        med = herd_stat_median(t, reps);
    }
    if (a) be->free(be, a);
    if (b) be->free(be, b);
    free(counts);
    free(t);
    return med;
}

int herd_preflight_ops(herd_grid *g, const herd_backend *be, int reps, herd_preflight_result *r, double *op_s)
{
    herd_comm *dev[HERD_NDIM] = {g->tp_dev, g->cp_dev, g->pp_dev, g->dp_dev};
    list_ops(g, r);
    /* every rank runs every op: all groups of a dimension at once, as in a step */
    for (int k = 0; k < r->n_ops; k++)
        if ((op_s[k] = time_op(dev[r->op[k].dim], be, &r->op[k], reps)) < 0) return -1;
    return 0;
}
