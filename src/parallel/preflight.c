/* preflight.c — herd check's measurements on every rank (see preflight.h):
 * the grid as the trainer builds it, each rank's binding, the arithmetic
 * probe, the groups' collectives; gathered on rank 0. */
#include <mpi.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kernels/backend.h"
#include "monitoring/clock.h"
#include "src/parallel/grid.h"
#include "src/parallel/placement.h"
#include "src/parallel/preflight.h"
#include "src/parallel/preflight_internal.h"
#include "topology/linkstat.h"

/* "0-3,6" of the cores this process may run on */
static void affinity_list(char *buf, size_t n)
{
    cpu_set_t set;
    buf[0] = '\0';
    if (sched_getaffinity(0, sizeof set, &set)) {
        snprintf(buf, n, "unknown");
        return;
    }
    size_t len = 0;
    for (int c = 0; c < CPU_SETSIZE && len + 16 < n; c++) {
        if (!CPU_ISSET(c, &set)) continue;
        int e = c;
        while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, &set)) e++;
        len += (size_t)snprintf(buf + len, n - len, "%s%d", len ? "," : "", c);
        if (e > c) len += (size_t)snprintf(buf + len, n - len, "-%d", e);
        c = e;
    }
}

/* This rank's row of the binding table. */
static void describe_rank(const herd_grid *g, const char *bind, const char *gpu, herd_preflight_rank *me)
{
    memset(me, 0, sizeof *me);
    herd_preflight_host(me->host, sizeof me->host);
    const char *lr = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    if (!lr) lr = getenv("SLURM_LOCALID");
    me->local_rank = lr ? atoi(lr) : -1;   /* -1: rank 0 counts it from the hosts */
    me->coord[0] = g->tp_rank;
    me->coord[1] = g->cp_rank;
    me->coord[2] = g->pp_rank;
    me->coord[3] = g->dp_rank;
    char cores[HERD_PF_DESC];
    affinity_list(cores, sizeof cores);
    if (bind && *bind) snprintf(me->cores, sizeof me->cores, "%s (%s)", cores, bind);
    else snprintf(me->cores, sizeof me->cores, "%s", cores);
    snprintf(me->gpu, sizeof me->gpu, "%s", gpu);
}

/* Seconds per unit of vector arithmetic (2^20 multiply-adds) over a fixed
 * window of wall time: the work done in the window, not the time of a fixed
 * piece of work, so that a node whose processes run in bursts (a throttled
 * or shared node, a neighbour's job) is measured at its average speed,
 * whatever phase of its bursts the window starts in. */
enum { PROBE_N = 1 << 14, PROBE_UNIT_ITERS = 64 };
#define PROBE_WINDOW_S 0.1

static double probe_once(void)
{
    static float a[PROBE_N], b[PROBE_N];
    for (int i = 0; i < PROBE_N; i++) {
        a[i] = (float)(i % 7);
        b[i] = 1.0f / (float)(1 + i % 5);
    }
    long units = 0;
    double t0 = herd_now_s(), t;
    do {
        for (int it = 0; it < PROBE_UNIT_ITERS; it++)
            for (int i = 0; i < PROBE_N; i++) a[i] = a[i] * 0.999f + b[i];
        units++;
        t = herd_now_s() - t0;
    } while (t < PROBE_WINDOW_S);
    volatile float sink = a[PROBE_N / 2];
    (void)sink;
    return t / (double)units;
}

static double compute_probe(int reps)
{
    double *t = malloc(sizeof *t * (size_t)reps);
    if (!t) return -1;
    for (int k = 0; k < reps; k++) {
        MPI_Barrier(MPI_COMM_WORLD);
        t[k] = probe_once();
    }
    double m = herd_stat_median(t, reps);
    free(t);
    return m;
}

/* The placed grid, GPU and binding of the trainer (src/train/trainer.c
 * open_grid): *device for herd_backend_create, gpu for the GPU column
 * ("-": none), bind for the cores column. */
static int open_grid(const herd_config *c, const char *origin, herd_grid *g, herd_preflight_result *r,
                     char *bind, size_t bind_len, char *gpu, size_t gpu_len, int *device)
{
    int world = herd_mpi_world_size();
    int *perm = malloc(sizeof(int) * (size_t)world);
    if (!perm) return -1;
    herd_device_info d;
    int cuda = c->train.backend == HERD_BACKEND_CUDA;
    if (herd_placement_prepare(&c->parallel, cuda, world, perm, &d, r->placement, sizeof r->placement, bind,
                               bind_len)) {
        free(perm);
        return -1;
    }
    *device = d.device;
    int rc_fmt = 0;
    if (d.device >= 0) {
        /* the cores column reads the rank's cores itself; bind says how */
        if (snprintf(gpu, gpu_len, "GPU %d %s NIC %s", d.device, d.busid, d.nic[0] ? d.nic : "none") < 0 ||
            snprintf(bind, bind_len, "%s", d.binding) < 0)
            rc_fmt = -1;
    }
    int rc = rc_fmt ? -1 : herd_grid_create(g, &c->parallel, origin, perm);
    free(perm);
    return rc;
}

/* Every rank's rows, compute time and op times to rank 0. */
static int gather(const herd_preflight_rank *me, double compute, const double *op_s, herd_preflight_result *r,
                  int rank)
{
    int W = r->world_size, n = r->n_ops, root = rank == 0;
    double *mine = malloc(sizeof(double) * (size_t)(n + 1)), *all = NULL;
    if (root) {
        r->rank = calloc((size_t)W, sizeof *r->rank);
        r->compute_s = calloc((size_t)W, sizeof *r->compute_s);
        all = calloc((size_t)W * (size_t)(n + 1), sizeof *all);
        for (int k = 0; k < n; k++) r->op[k].rank_s = calloc((size_t)W, sizeof(double));
    }
    int ok = mine && (!root || (r->rank && r->compute_s && all));
    for (int k = 0; root && k < n; k++) ok = ok && r->op[k].rank_s;
    if (!ok) herd_comm_abort(1); /* out of memory: the others wait in the gather */
    mine[0] = compute;
    for (int k = 0; k < n; k++) mine[k + 1] = op_s[k];
    int rc = MPI_Gather(me, (int)sizeof *me, MPI_BYTE, r->rank, (int)sizeof *me, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (rc == MPI_SUCCESS) rc = MPI_Gather(mine, n + 1, MPI_DOUBLE, all, n + 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    for (int w = 0; root && w < W; w++) {
        r->compute_s[w] = all[(size_t)w * (n + 1)];
        for (int k = 0; k < n; k++) r->op[k].rank_s[w] = all[(size_t)w * (n + 1) + k + 1];
    }
    free(mine);
    free(all);
    return rc == MPI_SUCCESS ? 0 : -1;
}

/* rank 0 counts local ranks the launcher did not give: earlier ranks on its host */
static void fill_local_ranks(herd_preflight_result *r)
{
    for (int w = 0; w < r->world_size; w++) {
        if (r->rank[w].local_rank >= 0) continue;
        int k = 0;
        for (int v = 0; v < w; v++) k += !strcmp(r->rank[v].host, r->rank[w].host);
        r->rank[w].local_rank = k;
    }
}

static int measure(herd_grid *g, herd_backend *be, const herd_preflight_options *o,
                   herd_preflight_result *r, const char *bind, const char *gpu)
{
    herd_preflight_rank me;
    describe_rank(g, bind, gpu, &me);
    double op_s[8] = {0};
    double compute = compute_probe(o->reps);
    int rc = herd_preflight_ops(g, be, o->reps, r, op_s);
    if (herd_preflight_agree(rc)) return -1;
    herd_preflight_edge edge;
    rc = herd_preflight_link_probe(g, be, o->reps, me.host, r, &edge);
    if (herd_preflight_agree(rc)) return -1;
    if (gather(&me, compute, op_s, r, g->world_rank)) return -1;
    if (herd_preflight_gather_edges(&edge, r, g->world_rank)) return -1;
    if (g->world_rank == 0) fill_local_ranks(r);
    return 0;
}

int herd_preflight_run(const herd_config *c, const char *origin, const herd_preflight_options *o,
                       herd_preflight_result *r)
{
    memset(r, 0, sizeof *r);
    r->world_size = herd_mpi_world_size();
    int rank = herd_mpi_world_rank();
    r->reps = o->reps;
    herd_grid g;
    memset(&g, 0, sizeof g);
    char bind[HERD_PF_DESC] = "", gpu[HERD_PF_DESC] = "-";
    int device = -1;
    int rc = open_grid(c, origin, &g, r, bind, sizeof bind, gpu, sizeof gpu, &device);
    if (rc == 0 && herd_grid_check_batch(&g, &c->batch, origin)) rc = -1;
    herd_backend *be = NULL;
    if (rc == 0) {
        const char *name = herd_config_enum_name(herd_backend_choices, c->train.backend);
        snprintf(r->backend, sizeof r->backend, "%s", name);
        be = herd_backend_create(name, &(herd_backend_options){.device = device});
        if (!be) fprintf(stderr, "herd check: %s: key 'train.backend': backend '%s' is not available on rank %d\n",
                         origin, name, g.world_rank);
        rc = herd_preflight_agree(be ? 0 : -1);
        if (rc == 0 && herd_preflight_agree(herd_grid_device_groups(&g, !strcmp(name, "cuda")))) rc = -1;
    }
    if (rc == 0) {
        int L[4] = {g.tp, g.cp, g.pp, g.dp};
        memcpy(r->layout, L, sizeof L);
        herd_grid_describe(&g, r->layout_desc, sizeof r->layout_desc);
        herd_preflight_sizes_from_config(c, g.dp, &r->sizes);
        rc = measure(&g, be, o, r, bind, gpu);
    }
    if (g.world) herd_grid_destroy(&g);
    herd_backend_free(be);
    if (rc || rank != 0) herd_preflight_free(r);
    return rc;
}

void herd_preflight_free(herd_preflight_result *r)
{
    free(r->rank);
    free(r->compute_s);
    for (int k = 0; k < r->n_ops; k++) free(r->op[k].rank_s);
    free(r->edge);
    r->rank = NULL;
    r->compute_s = NULL;
    r->edge = NULL;
    r->n_ops = 0;
}
