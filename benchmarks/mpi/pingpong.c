/* pingpong.c — link latency and bandwidth between rank pairs, for the
 * links file that `herd plan` reads in benchmarks/layouts.sh.
 *
 *   srun --mpi=pmix -N2 -n2 pingpong      one pair, one rank on each of two emulated nodes
 *   srun --mpi=pmix -N4 -n8 pingpong      rank r pings r + 4, all pairs at once: the link
 *                                         as 8 ranks sharing 2 cores see it (a reply waits
 *                                         for its rank to get a core)
 *
 * Prints one line for rank 0's pair: "pingpong: latency_us X bandwidth_GBps Y nodes A B".
 * Latency: half the round trip of a 1-byte message (median of 200 after 20
 * warm-ups: one slow round trip on a shared 2-core machine must not set it).
 * Bandwidth: one direction, 4 MiB messages, half the round trip, best of 20:
 * the alpha-beta model's beta is the link's rate, not its average under load.
 * Built with mpicc by the script (not part of libherd: no herd code used). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* seconds of one round trip of n bytes with the peer; the lower half of the
 * ranks starts it */
static double round_trip(char *buf, int n, int first, int peer)
{
    double t0 = MPI_Wtime();
    if (first) {
        MPI_Send(buf, n, MPI_CHAR, peer, 0, MPI_COMM_WORLD);
        MPI_Recv(buf, n, MPI_CHAR, peer, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else {
        MPI_Recv(buf, n, MPI_CHAR, peer, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Send(buf, n, MPI_CHAR, peer, 0, MPI_COMM_WORLD);
    }
    return MPI_Wtime() - t0;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size < 2 || size % 2) {
        if (rank == 0) fprintf(stderr, "pingpong: needs an even number of ranks, got %d\n", size);
        MPI_Finalize();
        return 2;
    }
    int half = size / 2, first = rank < half, peer = first ? rank + half : rank - half;
    enum { SMALL = 200, BIG = 20, BIG_BYTES = 4 << 20 };
    char *buf = calloc(BIG_BYTES, 1);
    double lat[SMALL], best = 1e30;
    if (!buf) MPI_Abort(MPI_COMM_WORLD, 1);
    for (int i = 0; i < 20; i++) round_trip(buf, 1, first, peer);
    for (int i = 0; i < SMALL; i++) lat[i] = round_trip(buf, 1, first, peer) / 2;
    round_trip(buf, BIG_BYTES, first, peer);
    for (int i = 0; i < BIG; i++) {
        double t = round_trip(buf, BIG_BYTES, first, peer) / 2;
        if (t < best) best = t;
    }
    char host[MPI_MAX_PROCESSOR_NAME] = "?", peer_host[MPI_MAX_PROCESSOR_NAME] = "?";
    const char *node = getenv("SLURMD_NODENAME");
    int len;
    if (node) snprintf(host, sizeof host, "%s", node);
    else MPI_Get_processor_name(host, &len);
    if (rank == half) MPI_Send(host, sizeof host, MPI_CHAR, 0, 1, MPI_COMM_WORLD);
    else if (rank == 0) MPI_Recv(peer_host, sizeof peer_host, MPI_CHAR, half, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (rank == 0) {
        qsort(lat, SMALL, sizeof lat[0], cmp_double);
        printf("pingpong: latency_us %.2f bandwidth_GBps %.3f nodes %s %s\n", 1e6 * lat[SMALL / 2],
               BIG_BYTES / best / 1e9, host, peer_host);
    }
    free(buf);
    MPI_Finalize();
    return 0;
}
