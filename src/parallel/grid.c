/* grid.c — see grid.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/parallel/grid.h"

/* The job size as the launcher sees it, or 0 when no launcher says. Open
 * MPI's own launcher first (mpirun inside a Slurm allocation inherits the
 * allocation's SLURM_NTASKS, which need not be this job's size), then the
 * srun step, then the allocation. */
static int launcher_size(const char **who)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS",
                                 "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) {
            *who = vars[i];
            return atoi(v);
        }
    }
    return 0;
}

int herd_grid_create(herd_grid *g, const herd_config_parallel *p, const char *origin, const int *perm)
{
    memset(g, 0, sizeof *g);
    g->world = herd_comm_mpi_world();
    if (!g->world) return -1;
    g->world_rank = g->world->rank;
    g->world_size = g->world->size;
    int W = g->world_size, root = g->world_rank == 0;

    const char *who = NULL;
    int expect = launcher_size(&who);
    if (expect && expect != W) {
        if (root || W == 1)
            fprintf(stderr, "herd: launch: %s says %d tasks but MPI sees a world of %d: the "
                    "processes did not join one MPI job (with srun use --mpi=pmix; with mpirun "
                    "check that herd is linked to the same MPI)\n", who, expect, W);
        return -1;
    }

    g->tp = p->tp;
    g->cp = p->cp;
    g->pp = p->pp;
    int inner = p->tp * p->cp * p->pp;
    g->dp = p->dp ? p->dp : (W % inner ? 0 : W / inner);
    if (g->dp == 0 || (long)inner * g->dp != W) {
        if (root)
            fprintf(stderr, "herd: %s: keys 'parallel.tp', 'parallel.cp', 'parallel.pp', "
                    "'parallel.dp': tp %d x cp %d x pp %d x dp %s%d = %ld does not equal the "
                    "world size %d\n", origin, p->tp, p->cp, p->pp, p->dp ? "" : "(auto) ",
                    p->dp ? p->dp : W / inner, (long)inner * (p->dp ? p->dp : W / inner), W);
        return -1;
    }
    /* my grid index: the position whose world rank is mine */
    int idx = g->world_rank;
    if (perm) {
        idx = -1;
        for (int i = 0; i < W; i++)
            if (perm[i] == g->world_rank) idx = i;
        if (idx < 0) {
            if (root) fprintf(stderr, "herd: placement: world rank %d has no grid position\n",
                              g->world_rank);
            return -1;
        }
    }
    g->tp_rank = idx % g->tp;
    g->cp_rank = idx / g->tp % g->cp;
    g->pp_rank = idx / (g->tp * g->cp) % g->pp;
    g->dp_rank = idx / (g->tp * g->cp * g->pp);
    /* one color per group: the index with that coordinate zeroed */
    int tp_color = idx - g->tp_rank;
    int cp_color = idx - g->cp_rank * g->tp;
    int pp_color = idx - g->pp_rank * g->tp * g->cp;
    int dp_color = idx - g->dp_rank * inner;
    g->tp_group = herd_comm_mpi_split(g->world, tp_color, g->tp_rank, "tp");
    g->cp_group = herd_comm_mpi_split(g->world, cp_color, g->cp_rank, "cp");
    g->pp_group = herd_comm_mpi_split(g->world, pp_color, g->pp_rank, "pp");
    g->dp_group = herd_comm_mpi_split(g->world, dp_color, g->dp_rank, "dp");
    if (!g->tp_group || !g->cp_group || !g->pp_group || !g->dp_group) return -1;
    return 0;
}

int herd_grid_check_batch(const herd_grid *g, const herd_config_batch *b, const char *origin)
{
    int root = g->world_rank == 0;
    for (int seq = 0; seq < (int)b->n_ramp; seq++) {
        long long seqs = (long long)(b->ramp[seq].batch_tokens / b->ramp[seq].seq_len);
        if (seqs % ((long long)g->dp * b->micro_batch)) {
            if (root)
                fprintf(stderr, "herd: %s: key 'batch.ramp': stage %d: %lld sequences per batch "
                        "are not a multiple of dp (%d) x micro_batch (%d)\n", origin, seq + 1, seqs,
                        g->dp, b->micro_batch);
            return -1;
        }
        /* the pipeline schedule needs at least one micro-batch per stage */
        if (g->pp > 1 && seqs / ((long long)g->dp * b->micro_batch) < g->pp) {
            if (root)
                fprintf(stderr, "herd: %s: keys 'parallel.pp', 'batch.ramp': stage %d: %lld "
                        "micro-batches per DP rank are fewer than the %d pipeline stages\n",
                        origin, seq + 1, seqs / ((long long)g->dp * b->micro_batch), g->pp);
            return -1;
        }
    }
    return 0;
}

int herd_grid_device_groups(herd_grid *g, int nccl)
{
    herd_comm *mpi[] = {g->tp_group, g->cp_group, g->pp_group, g->dp_group};
    herd_comm **dev[] = {&g->tp_dev, &g->cp_dev, &g->pp_dev, &g->dp_dev};
    int rc = 0;
    for (int i = 0; i < 4; i++) {
        *dev[i] = mpi[i];
        /* every rank takes the same branch: the sizes are the layout's */
        if (!nccl || rc || !mpi[i] || mpi[i]->size == 1) continue;
        *dev[i] = herd_comm_nccl_from_mpi(mpi[i], mpi[i]->name);
        if (!*dev[i]) {
            *dev[i] = mpi[i];
            rc = -1;
        }
    }
    return rc;
}

void herd_grid_destroy(herd_grid *g)
{
    herd_comm *twins[] = {g->tp_dev, g->cp_dev, g->pp_dev, g->dp_dev};
    herd_comm *mpi[] = {g->tp_group, g->cp_group, g->pp_group, g->dp_group};
    for (int i = 0; i < 4; i++)
        if (twins[i] && twins[i] != mpi[i]) herd_comm_destroy(twins[i]);
    herd_comm *cs[] = {g->tp_group, g->cp_group, g->pp_group, g->dp_group, g->world};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) herd_comm_destroy(cs[i]);
    memset(g, 0, sizeof *g);
}

void herd_grid_describe(const herd_grid *g, char *buf, size_t n)
{
    snprintf(buf, n, "TP%d x CP%d x PP%d x DP%d (%d ranks)", g->tp, g->cp, g->pp, g->dp,
             g->world_size);
}
