/* mpi_steps.c — a stand-in for the MPI trainer's step loop, with the real hang
 * watchdog: every step is an MPI_Allreduce between all ranks wrapped in
 * herd_watchdog_enter/leave and followed by herd_watchdog_beat. A rank stopped
 * with SIGSTOP leaves its peers waiting in the allreduce: their watchdogs exit 76
 * and srun -K1 ends the step, which is what tests/cli/slurm_cluster.sh checks.
 *
 *   mpi_steps CONFIG [--set train.out_dir=DIR]...   (the stage driver's arguments)
 *   env: MPI_STEPS_N (steps, 40), MPI_STEPS_MS (sleep per step, 100),
 *        MPI_STEPS_LIMIT (watchdog step limit in s, 2)
 * Rank 0 appends {"step":N} to DIR/metrics.jsonl after every step.
 * SIGUSR1/SIGTERM: the trainer's stopper (checkpoint/stop.c) has the ranks agree
 * on it at a step, rank 0 appends {"stopped":N}, and all exit 75 (requeue me),
 * the protocol the trainer follows after committing its checkpoint. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "monitoring/watchdog.h"
#include "monitoring/exitcodes.h"
#include "checkpoint/ckpt.h"

static double env_or(const char *name, double dflt)
{
    const char *v = getenv(name);
    return v && *v ? atof(v) : dflt;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const char *out = ".";
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--set") && !strncmp(argv[i + 1], "train.out_dir=", 14)) out = argv[i + 1] + 14;
    int steps = (int)env_or("MPI_STEPS_N", 40), ms = (int)env_or("MPI_STEPS_MS", 100);
    double limit = env_or("MPI_STEPS_LIMIT", 2);
    const char *node = getenv("SLURMD_NODENAME");
    herd_ckpt_stopper *stopper = NULL;
    if (herd_watchdog_start(limit, limit, rank, node) != 0 ||
        herd_ckpt_stopper_create(&stopper, MPI_COMM_WORLD) != 0)
        MPI_Abort(MPI_COMM_WORLD, 1);

    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", out);
    for (int step = 1; step <= steps; step++) {
        long mine = rank, sum = 0;
        herd_watchdog_enter("allreduce step %d", step);
        MPI_Allreduce(&mine, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
        herd_watchdog_leave();
        if (sum != (long)size * (size - 1) / 2) MPI_Abort(MPI_COMM_WORLD, 1);
        herd_watchdog_beat(step);
        if (rank == 0) {
            FILE *f = fopen(path, "a");
            if (!f) { perror(path); MPI_Abort(MPI_COMM_WORLD, 1); }
            fprintf(f, "{\"step\":%d}\n", step);
            fclose(f);
        }
        herd_watchdog_enter("stop flag step %d", step);
        int stop = herd_ckpt_stopper_check(stopper);
        herd_watchdog_leave();
        if (stop) {
            if (rank == 0) {
                FILE *f = fopen(path, "a");
                if (f) { fprintf(f, "{\"stopped\":%d}\n", step); fclose(f); }
            }
            herd_ckpt_stopper_destroy(stopper);
            herd_watchdog_stop();
            MPI_Finalize();
            return HERD_EXIT_REQUEUE;
        }
        usleep((useconds_t)ms * 1000);
    }
    herd_ckpt_stopper_destroy(stopper);
    herd_watchdog_stop();
    MPI_Finalize();
    return 0;
}
