/* post_dp.c — see post_dp.h. */
#include <stdlib.h>
#include <string.h>
#include "src/post/post_dp.h"

/* Launched by mpirun / srun: the variables a launcher sets for its tasks (srun
 * without --mpi=pmix sets SLURM_STEP_NUM_TASKS only: MPI then starts as a
 * singleton and the grid's launcher check refuses the N one-rank jobs). */
static int launched(void)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE",
                                 "SLURM_STEP_NUM_TASKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i]) && *getenv(vars[i])) return 1;
    return 0;
}

int herd_post_dp_open(herd_post_dp *dp)
{
    memset(dp, 0, sizeof *dp);
    dp->size = 1;
    if (!launched()) return 0;
    if (herd_mpi_init(NULL, NULL)) return -1;
    dp->mpi = 1;
    /* a DP-only layout: the grid's checks of the launch, and its world group;
     * no batch ramp (post-training batches are batch.micro_batch items) */
    herd_config_parallel p = {.tp = 1, .cp = 1, .pp = 1};
    if (herd_grid_create(&dp->grid, &p, "herd post", NULL)) {
        herd_mpi_finalize();
        dp->mpi = 0;
        return -1;
    }
    dp->rank = dp->grid.world_rank;
    dp->size = dp->grid.world_size;
    return 0;
}

void herd_post_dp_close(herd_post_dp *dp)
{
    if (!dp->mpi) return;
    herd_grid_destroy(&dp->grid);
    herd_mpi_finalize();
    dp->mpi = 0;
}

void herd_post_dp_share(const herd_post_dp *dp, int64_t n, int64_t *first, int64_t *count)
{
    int64_t q = n / dp->size, r = n % dp->size;
    *count = q + (dp->rank < r);
    *first = q * dp->rank + (dp->rank < r ? dp->rank : r);
}

int herd_post_dp_any(const herd_post_dp *dp, int failed)
{
    int32_t f = failed != 0;
    if (dp->size > 1 && herd_comm_all_reduce(dp->grid.world, &f, 1, HERD_I32, HERD_MAX))
        herd_comm_abort(1);
    return f;
}

void herd_post_dp_sum(const herd_post_dp *dp, double *v, int n)
{
    if (dp->size > 1 && herd_comm_all_reduce(dp->grid.world, v, (size_t)n, HERD_F64, HERD_SUM))
        herd_comm_abort(1);
}

int herd_post_dp_gather_text(const herd_post_dp *dp, const char *text, size_t len, FILE *f)
{
    if (dp->size == 1) return len && fwrite(text, 1, len, f) != len ? -1 : 0;
    herd_comm *w = dp->grid.world;
    int64_t *lens = calloc((size_t)dp->size, sizeof *lens);
    size_t *ones = malloc(sizeof(size_t) * (size_t)dp->size);
    for (int r = 0; r < dp->size; r++) ones[r] = 1;
    int64_t mine = (int64_t)len;
    if (herd_comm_all_gather(w, &mine, lens, ones, HERD_I64)) herd_comm_abort(1);
    free(ones);
    int rc = 0;
    /* bytes travel as int32 words: the collectives interface has no byte type */
    if (dp->rank != 0) {
        size_t words = (len + 3) / 4;
        int32_t *buf = calloc(words ? words : 1, sizeof *buf);
        memcpy(buf, text, len);
        if (words && herd_comm_send(w, buf, words, HERD_I32, 0, 71)) herd_comm_abort(1);
        free(buf);
    } else {
        if (len && fwrite(text, 1, len, f) != len) rc = -1;
        for (int r = 1; r < dp->size; r++) {
            size_t words = ((size_t)lens[r] + 3) / 4;
            if (!words) continue;
            int32_t *buf = malloc(words * sizeof *buf);
            if (herd_comm_recv(w, buf, words, HERD_I32, r, 71)) herd_comm_abort(1);
            if (!rc && fwrite(buf, 1, (size_t)lens[r], f) != (size_t)lens[r]) rc = -1;
            free(buf);
        }
    }
    free(lens);
    return rc;
}
