/* test_straggler.c — the straggler detector over real MPI.
 *
 * Run directly (tests/run.sh does), it checks the pure scoring, then starts
 * itself under `mpirun -np 4 --oversubscribe`: rank 2 sleeps longer in its
 * "compute" and must be named, with its host, in the suspects and in the
 * hosts file; a rank slow in one gather only must not be; a healthy phase
 * before and a recovery after must give no suspects. */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "monitoring/straggler.h"
#include "monitoring/timers.h"
#include "tests/unit/test.h"
#include "monitoring/clock.h"

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts)) {}
}

TEST(ratios_to_the_median)
{
    double t[4] = {1, 1, 2, 1}, r[4];
    herd_straggler_ratios(t, 4, r);
    CHECK_NEAR(r[2], 2.0, 1e-12);
    CHECK_NEAR(r[0], 1.0, 1e-12);
    double u[4] = {1, 2, 3, 10}; /* even count: median 2.5 */
    herd_straggler_ratios(u, 4, r);
    CHECK_NEAR(r[3], 4.0, 1e-12);
    double z[3] = {0, 0, 0}; /* no time at all: nobody is slow */
    herd_straggler_ratios(z, 3, r);
    CHECK(r[0] == 1.0 && r[2] == 1.0);
}

TEST(bad_arguments_refused)
{
    herd_straggler *s;
    CHECK(herd_straggler_create(&s, MPI_COMM_WORLD, 0, 1.5) == -1 && s == NULL);
    CHECK(herd_straggler_create(&s, MPI_COMM_WORLD, 4, 0.9) == -1 && s == NULL);
}

/* ---- under mpirun: every rank runs this; rank 0 prints the verdicts ---- */

static int rank;

/* one phase: `n` gathers; rank `slow` sleeps `extra` more; rank `blip` is slow
 * in the first gather only */
static int phase(herd_straggler *s, int n, int slow, int blip, double extra)
{
    for (int g = 0; g < n; g++) {
        double t0 = herd_now_s();
        sleep_s(0.020 + (rank == slow ? extra : 0) + (rank == blip && g == 0 ? 0.080 : 0));
        if (herd_straggler_gather(s, herd_now_s() - t0)) return -1;
    }
    return 0;
}

/* every rank's CHECKs count: rank 0 reports the OR of the failures */
static void verdict(const char *name)
{
    int mine = test_failed_, any = 0;
    MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0) printf("%s %s\n", any ? "FAIL" : "PASS", name), fflush(stdout);
    test_failed_ = 0;
    test_n_fail_ += any;
}

static int mpi_main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    herd_straggler *s = NULL;
    CHECK(size == 4);
    CHECK(herd_straggler_create(&s, MPI_COMM_WORLD, 4, 1.5) == 0);
    if (!s) MPI_Abort(MPI_COMM_WORLD, 1);
    int sus[4], n;

    CHECK(phase(s, 4, -1, -1, 0) == 0);
    n = herd_straggler_suspects(s, sus, 4);
    CHECK(n == 0);
    verdict("straggler_mpi_healthy_job_has_none");

    /* rank 2 is 2.5x slower in every gather; rank 1 5x slower once */
    CHECK(phase(s, 4, 2, 1, 0.030) == 0);
    n = herd_straggler_suspects(s, sus, 4);
    CHECK(n == 1 && sus[0] == 2);
    int nr;
    const herd_prom_straggler *sc = herd_straggler_scores(s, &nr);
    char me[MPI_MAX_PROCESSOR_NAME];
    int len;
    MPI_Get_processor_name(me, &len);
    CHECK(nr == 4 && sc[2].rank == 2 && !strcmp(sc[2].host, me)); /* one host here: all share it */
    CHECK(sc[2].score > 1.5 && sc[1].score < 1.5 && sc[0].score < 1.5);
    if (rank == 0) printf("  scores: %.2f %.2f %.2f %.2f\n", sc[0].score, sc[1].score, sc[2].score,
                          sc[3].score);
    if (rank == 0) {
        char path[] = "/tmp/herd_stragglers_XXXXXX", line[256] = "";
        int fd = mkstemp(path);
        close(fd);
        CHECK(herd_straggler_write_hosts(s, path) == 0);
        FILE *f = fopen(path, "r");
        int lines = 0;
        while (f && fgets(line + (lines ? 128 : 0), 128, f)) lines++;
        if (f) fclose(f);
        line[strcspn(line, "\n")] = '\0';
        CHECK(lines == 1 && !strcmp(line, me));
        CHECK(herd_straggler_write_hosts(s, "/nonexistent_dir_herd/stragglers.txt") == -1);
        unlink(path);
    }
    verdict("straggler_mpi_slow_rank_named_with_host");

    CHECK(phase(s, 4, -1, -1, 0) == 0);
    CHECK(herd_straggler_suspects(s, sus, 4) == 0);
    verdict("straggler_mpi_recovered_rank_cleared");

    /* a bad time on one rank: every rank gets -1, nobody hangs */
    CHECK(herd_straggler_gather(s, rank == 3 ? -1.0 : 0.01) == -1);
    verdict("straggler_mpi_bad_time_refused_everywhere");

    herd_straggler_destroy(s);
    MPI_Finalize();
    return test_summary();
}

int main(int argc, char **argv)
{
    if (getenv("OMPI_COMM_WORLD_SIZE")) return mpi_main(argc, argv);
    RUN(ratios_to_the_median);
    RUN(bad_arguments_refused);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
             "timeout 120 mpirun -np 4 --oversubscribe %s", argv[0]);
    fflush(stdout);
    int rc = system(cmd);
    if (rc != 0) printf("FAIL straggler_mpi: mpirun exited with status %d\n", rc), test_n_fail_++;
    return test_summary();
}
