/* mpi_probe.c — an MPI program that proves a job step spans the emulated nodes:
 * every rank sends its Slurm node name to rank 0 and the ranks agree on a sum
 * by MPI_Allreduce (real traffic over Open MPI's tcp transport).
 * Rank 0 prints "probe: size S sum X nodes N" and one "rank R on NODE" line per rank;
 * the exit status is 1 if the sum is wrong.  Built by the Slurm tests with mpicc.
 *
 *   mpi_probe [HOLD_SECONDS READY_PREFIX]
 * holds every rank HOLD_SECONDS after the exchange, with its connections open,
 * once it has created the file READY_PREFIX.RANK (a test looks at the job's
 * sockets meanwhile). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    char node[64] = {0};
    const char *env = getenv("SLURMD_NODENAME");
    snprintf(node, sizeof node, "%s", env ? env : "none");

    long mine = rank + 1, sum = 0;
    MPI_Allreduce(&mine, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);

    char *all = rank == 0 ? calloc((size_t)size, sizeof node) : NULL;
    MPI_Gather(node, sizeof node, MPI_CHAR, all, sizeof node, MPI_CHAR, 0, MPI_COMM_WORLD);
    int ok = sum == (long)size * (size + 1) / 2;
    if (rank == 0) {
        int distinct = 0;
        for (int i = 0; i < size; i++) {
            int seen = 0;
            for (int j = 0; j < i; j++) seen |= !strcmp(all + i * sizeof node, all + j * sizeof node);
            distinct += !seen;
            printf("rank %d on %s\n", i, all + i * sizeof node);
        }
        printf("probe: size %d sum %ld nodes %d\n", size, sum, distinct);
        free(all);
    }
    if (argc > 2) {
        char ready[4096];
        snprintf(ready, sizeof ready, "%s.%d", argv[2], rank);
        FILE *f = fopen(ready, "w");
        if (f) fclose(f);
        sleep((unsigned)atoi(argv[1]));
    }
    MPI_Finalize();
    return ok ? 0 : 1;
}
