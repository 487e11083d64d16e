/* grid.h — the 4D process grid: tensor, context, pipeline, data parallel.
 *
 * Ranks are ordered TP innermost, then CP, PP, DP outermost (the paper's
 * order: TP inside a node on NVLink, DP across pods). A grid position is
 *     index = tp + TP * (cp + CP * (pp + PP * dp))
 * and the world rank at each position is perm[index] — the identity unless a
 * placement (topology/, a rank permutation) replaces it. Each of the four
 * groups (the ranks that differ only in that coordinate) gets its own
 * communicator, plus the group of the ranks that hold the same model shard
 * (same tp, cp, pp: the FSDP group is DP).
 */
#ifndef HERD_GRID_H
#define HERD_GRID_H

#include "kernels/comm.h"
#include "src/config/config.h"

typedef struct {
    int world_rank, world_size;
    int tp, cp, pp, dp;                 /* sizes */
    int tp_rank, cp_rank, pp_rank, dp_rank;
    herd_comm *world, *tp_group, *cp_group, *pp_group, *dp_group;
    /* the groups that carry the backend's buffers (the model's TP/CP/PP
     * collectives, FSDP's DP ones): the MPI groups themselves, or, after
     * herd_grid_device_groups(g, 1), an NCCL twin of each group of more than
     * one rank. Host scalars (losses, norms, agreement) stay on the MPI groups. */
    herd_comm *tp_dev, *cp_dev, *pp_dev, *dp_dev;
} herd_grid;

/* Check the launch and the layout, then split the world.
 *  - the launcher's idea of the job size (SLURM_NTASKS under srun, PMI_SIZE /
 *    OMPI_COMM_WORLD_SIZE / PMIX job size) must equal MPI's world size, so that
 *    a launch without working PMI does not train as N one-rank jobs;
 *  - tp * cp * pp * dp must equal the world size (dp 0: the rest).
 * `perm` (may be NULL: identity) maps grid index -> world rank.
 * Every rank runs the same checks on the same inputs, so on an error every
 * rank returns -1 (rank 0 prints the message) and none waits in a collective. */
int herd_grid_create(herd_grid *g, const herd_config_parallel *p, const char *origin, const int *perm);
/* The batch ramp against the grid: every stage's sequences a multiple of dp x
 * micro_batch, and at least pp micro-batches per DP rank. 0, or -1 with the
 * keys named (printed on world rank 0). */
int herd_grid_check_batch(const herd_grid *g, const herd_config_batch *b, const char *origin);
void herd_grid_destroy(herd_grid *g);

/* nccl = 0: the device groups are the MPI groups; 1: NCCL twins for the groups
 * of more than one rank (collective over the world). -1 with a message. */
int herd_grid_device_groups(herd_grid *g, int nccl);

/* "TP2 x CP1 x PP1 x DP4 (8 ranks)" */
void herd_grid_describe(const herd_grid *g, char *buf, size_t n);

#endif
