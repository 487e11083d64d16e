/* test_ckpt_mpi.c — checkpoints across real MPI ranks: 4 ranks save slices of
 * known global tensors with rows split 4 ways (uneven for the 1-D one) and
 * read them back under other layouts (columns split 2 ways, the whole tensor
 * on each rank, an odd window): exact. Then 2 of the ranks save a new step
 * with columns split 2 ways and all 4 read it back with rows split 4 ways
 * (shrinking and growing the world). The commit is progressed by poll only.
 *
 * Run directly (as tests/run.sh does), it starts itself under
 * `mpirun -np 4 --oversubscribe` and passes its output through. */
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "checkpoint/ckpt.h"
#include "checkpoint/internal.h"
#include "tests/unit/test.h"

static int rank, world;
static char dir[256];

#define R 12
#define C 8
#define NB 10
static float gval(int k, int t, int64_t i, int64_t j, int64_t step)
{
    return (float)((k * 7 + t) * 10000 + i * 100 + j) + 0.125f * (float)step;
}

static void mk(herd_ckpt_slice *s, const char *kind, const char *name, int nd, int64_t g0, int64_t g1,
               int64_t o0, int64_t o1, int64_t s0, int64_t s1, const float *d)
{
    memset(s, 0, sizeof *s);
    snprintf(s->kind, sizeof s->kind, "%s", kind);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->ndim = nd;
    s->global_shape[0] = g0; s->global_shape[1] = g1;
    s->offset[0] = o0; s->offset[1] = o1;
    s->shape[0] = s0; s->shape[1] = s1;
    s->data = d;
}

static const char *kinds[2] = {"param", "adam_v"};
static const char *WN = "model.layers.1.self_attn.o_proj.weight";
static const char *BN = "model.layers.1.input_layernorm.weight";

/* every rank's agreement: 1 if all ranks pass ok */
static int all_ok(int ok)
{
    MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return ok;
}

static int check_region(herd_ckpt *c, int k, int64_t o0, int64_t o1, int64_t s0, int64_t s1, int64_t step)
{
    float *buf = malloc((size_t)(s0 * s1) * sizeof *buf);
    int64_t o[2] = {o0, o1}, s[2] = {s0, s1};
    int ok = herd_ckpt_read(c, kinds[k], WN, 2, o, s, buf) == 0;
    for (int64_t i = 0; ok && i < s0; i++)
        for (int64_t j = 0; j < s1; j++)
            if (buf[i * s1 + j] != gval(k, 0, o0 + i, o1 + j, step)) { ok = 0; break; }
    free(buf);
    return ok;
}

static int check_vec(herd_ckpt *c, int k, int64_t o0, int64_t s0, int64_t step)
{
    float buf[NB];
    int64_t o[2] = {o0, 0}, s[2] = {s0, 0};
    int ok = herd_ckpt_read(c, kinds[k], BN, 1, o, s, buf) == 0;
    for (int64_t i = 0; ok && i < s0; i++)
        if (buf[i] != gval(k, 1, o0 + i, 0, step)) ok = 0;
    return ok;
}

static float W[2][R * C], Bv[2][NB];
static void fill(int64_t step)
{
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < R; i++)
            for (int j = 0; j < C; j++) W[k][i * C + j] = gval(k, 0, i, j, step);
        for (int i = 0; i < NB; i++) Bv[k][i] = gval(k, 1, i, 0, step);
    }
}

TEST(save_rows4_read_other_layouts)
{
    fill(5);
    herd_ckpt_slice s[4];
    int n = 0;
    int rows = R / world;
    /* 1-D: 10 elements over 4 ranks: 3, 3, 2, 2 */
    int64_t bo = rank < NB % world ? rank * (NB / world + 1) : NB % world * (NB / world + 1) + (rank - NB % world) * (NB / world);
    int64_t bs = NB / world + (rank < NB % world);
    for (int k = 0; k < 2; k++) {
        mk(&s[n++], kinds[k], WN, 2, R, C, rank * rows, 0, rows, C, W[k] + rank * rows * C);
        mk(&s[n++], kinds[k], BN, 1, NB, 0, bo, 0, bs, 0, Bv[k] + bo);
    }
    herd_ckpt_writer *w;
    herd_ckpt_options opt = {.quiet = 1};
    CHECK(herd_ckpt_writer_create(&w, MPI_COMM_WORLD, &opt) == 0);
    char meta[32];
    snprintf(meta, sizeof meta, "rank %d", rank);
    CHECK(herd_ckpt_save_begin(w, dir, 5, s, n, meta, strlen(meta) + 1) == 0);
    memset(W, 0, sizeof W);   /* training goes on: the snapshot is ours */
    int polls = 0;
    while (herd_ckpt_busy(w)) {
        CHECK(herd_ckpt_poll(w) == 0);
        usleep(1000);
        polls++;
    }
    herd_ckpt_stats st;
    herd_ckpt_get_stats(w, &st);
    CHECK(st.step == 5 && st.n_committed == 1 && st.bytes > 0);
    CHECK(herd_ckpt_writer_destroy(w) == 0);

    char latest[512];
    int ok = herd_ckpt_find_latest_comm(MPI_COMM_WORLD, dir, latest, sizeof latest) == 0 &&
             strstr(latest, "step_00000005");
    herd_ckpt *c;
    if (!ok || herd_ckpt_open(&c, latest)) { CHECK(all_ok(0)); return; }
    ok = herd_ckpt_world(c) == world && herd_ckpt_step(c) == 5;
    /* columns split 2 ways: ranks 0,1 get the left half, 2,3 the right (and all rows) */
    int half = C / 2, col = (rank / 2) * half;
    for (int k = 0; k < 2; k++) {
        ok &= check_region(c, k, 0, col, R, half, 5);
        ok &= check_region(c, k, 0, 0, R, C, 5);            /* the whole tensor */
        ok &= check_region(c, k, 1 + rank, 1, 7, 5, 5);     /* a window across three slices */
        ok &= check_vec(c, k, 0, NB, 5);
        ok &= check_vec(c, k, 2, 5, 5);
    }
    void *m;
    size_t len;
    int other = (rank + 1) % world;
    char want[32];
    snprintf(want, sizeof want, "rank %d", other);
    ok &= herd_ckpt_meta(c, other, &m, &len) == 0 && len == strlen(want) + 1 && !strcmp(m, want);
    free(m);
    herd_ckpt_close(c);
    CHECK(all_ok(ok));
}

/* herd_ckpt_open_rank reads the index of its own shard only, as long as the
 * regions asked for are in it: shown on a copy of step 5 without shard 3. */
TEST(open_rank_reads_its_own_index_only)
{
    char src[600], cp[600], a[700], b[700];
    snprintf(src, sizeof src, "%s/step_00000005", dir);
    snprintf(cp, sizeof cp, "%s.noshard3/step_00000005", dir);
    int ok = 1;
    if (rank == 0) {
        snprintf(a, sizeof a, "%s.noshard3", dir);
        ok = mkdir(a, 0750) == 0 && mkdir(cp, 0750) == 0;
        const char *names[4] = {"MANIFEST", "shard_00000.h5", "shard_00001.h5", "shard_00002.h5"};
        for (int i = 0; i < 4 && ok; i++) {
            snprintf(a, sizeof a, "%s/%s", src, names[i]);
            snprintf(b, sizeof b, "%s/%s", cp, names[i]);
            ok = link(a, b) == 0;
        }
    }
    CHECK(all_ok(ok));
    int rows = R / world;
    herd_ckpt *c = NULL;
    int opened = herd_ckpt_open_rank(&c, cp, rank) == 0;
    /* ranks 0..2: their own rows, from their own shard; rank 3's shard is gone */
    ok = rank < 3 ? opened && check_region(c, 0, rank * rows, 0, rows, C, 5) : !opened || !check_region(c, 0, rank * rows, 0, rows, C, 5);
    if (rank < 3 && opened) ok &= !check_region(c, 0, 0, 0, R, C, 5);   /* the whole tensor needs shard 3 */
    herd_ckpt_close(c);
    c = NULL;
    ok &= herd_ckpt_open(&c, cp) == -1;   /* opening reads every index */
    herd_ckpt_close(c);
    CHECK(all_ok(ok));
}

/* ranks 0 and 1 write step 9 with columns split 2 ways; 4 ranks read rows split 4 ways */
TEST(save_cols2_on_2_ranks_read_rows4)
{
    fill(9);
    MPI_Comm sub;
    MPI_Comm_split(MPI_COMM_WORLD, rank < 2 ? 0 : MPI_UNDEFINED, rank, &sub);
    int ok = 1;
    if (sub != MPI_COMM_NULL) {
        herd_ckpt_slice s[4];
        int half = C / 2, n = 0;
        static float part[2][R * C / 2];
        for (int k = 0; k < 2; k++) {
            for (int i = 0; i < R; i++)
                memcpy(part[k] + i * half, W[k] + i * C + rank * half, (size_t)half * sizeof(float));
            mk(&s[n++], kinds[k], WN, 2, R, C, 0, rank * half, R, half, part[k]);
            /* the 1-D tensor replicated on both ranks: overlapping slices are allowed */
            mk(&s[n++], kinds[k], BN, 1, NB, 0, 0, 0, NB, 0, Bv[k]);
        }
        herd_ckpt_writer *w;
        herd_ckpt_options opt = {.quiet = 1, .keep_last = 1};
        ok &= herd_ckpt_writer_create(&w, sub, &opt) == 0;
        ok &= herd_ckpt_save_begin(w, dir, 9, s, n, NULL, 0) == 0;
        ok &= herd_ckpt_wait(w) == 0;
        ok &= herd_ckpt_writer_destroy(w) == 0;
        MPI_Comm_free(&sub);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    char latest[512], p5[512];
    ok &= herd_ckpt_find_latest(dir, latest, sizeof latest) == 0 && strstr(latest, "step_00000009") != NULL;
    snprintf(p5, sizeof p5, "%s/step_00000005", dir);
    ok &= access(p5, F_OK) != 0;   /* keep_last 1: step 5 went */
    herd_ckpt *c;
    if (!ok || herd_ckpt_open(&c, latest)) { CHECK(all_ok(0)); return; }
    ok &= herd_ckpt_world(c) == 2;
    int rows = R / world;
    for (int k = 0; k < 2; k++) {
        ok &= check_region(c, k, rank * rows, 0, rows, C, 9);
        ok &= check_vec(c, k, 0, NB, 9);
    }
    herd_ckpt_close(c);
    CHECK(all_ok(ok));
}

/* SIGUSR1 to rank 2 alone at step 5: every rank stops at the same step, then
 * saves there and commits (the trainer's exit path, HERD_EXIT_REQUEUE) */
TEST(signal_every_rank_stops_at_one_step)
{
    herd_ckpt_stopper *st;
    if (herd_ckpt_stopper_create(&st, MPI_COMM_WORLD)) { CHECK(all_ok(0)); return; }
    int stop_at = -1;
    for (int step = 0; step < 50; step++) {
        if (rank == 2 && step == 5) raise(SIGUSR1);
        usleep(1000 * (rank + 1));   /* the ranks drift apart, as in training */
        if (herd_ckpt_stopper_check(st)) { stop_at = step; break; }
    }
    int sig = herd_ckpt_stopper_signal(st);
    herd_ckpt_stopper_destroy(st);
    int steps[4];
    MPI_Allgather(&stop_at, 1, MPI_INT, steps, 1, MPI_INT, MPI_COMM_WORLD);
    int ok = steps[0] == 6 && steps[1] == 6 && steps[2] == 6 && steps[3] == 6;
    ok &= rank == 2 ? sig == SIGUSR1 : sig == 0;
    if (!ok && rank == 0) fprintf(stderr, "  stop steps %d %d %d %d\n", steps[0], steps[1], steps[2], steps[3]);
    CHECK(all_ok(ok));
}

/* 4 ranks write step 11; a byte of shard 3 flips: the job-wide search (rank 3
 * checks shard 3) falls back to step 9 on every rank */
TEST(flipped_byte_in_one_shard_job_wide)
{
    fill(11);
    herd_ckpt_slice s[2];
    int rows = R / world;
    mk(&s[0], "param", WN, 2, R, C, rank * rows, 0, rows, C, W[0] + rank * rows * C);
    mk(&s[1], "param", BN, 1, NB, 0, 0, 0, NB, 0, Bv[0]);
    herd_ckpt_writer *w;
    herd_ckpt_options opt = {.quiet = 1};
    int ok = herd_ckpt_writer_create(&w, MPI_COMM_WORLD, &opt) == 0;
    ok &= herd_ckpt_save_begin(w, dir, 11, s, 2, NULL, 0) == 0;
    ok &= herd_ckpt_wait(w) == 0;
    ok &= herd_ckpt_writer_destroy(w) == 0;
    char latest[512];
    ok &= herd_ckpt_find_latest_comm(MPI_COMM_WORLD, dir, latest, sizeof latest) == 0 &&
          strstr(latest, "step_00000011") != NULL;
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 3) {
        char p[600];
        snprintf(p, sizeof p, "%s/step_00000011/shard_00003.h5", dir);
        FILE *f = fopen(p, "r+b");
        if (f) {
            fseek(f, 2000, SEEK_SET);
            int ch = fgetc(f);
            fseek(f, 2000, SEEK_SET);
            fputc(ch ^ 0x01, f);
            fclose(f);
        } else ok = 0;
    }
    MPI_Barrier(MPI_COMM_WORLD);
    ok &= herd_ckpt_find_latest_comm(MPI_COMM_WORLD, dir, latest, sizeof latest) == 0 &&
          strstr(latest, "step_00000009") != NULL;
    CHECK(all_ok(ok));
}

static int launch_self(char **argv)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
             "OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo "
             "OMPI_MCA_mpi_preconnect_mpi=1 "
             "mpirun -np 4 --oversubscribe %s", argv[0]);
    if (system("command -v mpirun >/dev/null 2>&1")) {
        printf("SKIP ckpt_mpi: mpirun not found\n");
        return 0;
    }
    int rc = system(cmd);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (!getenv("OMPI_COMM_WORLD_SIZE")) return launch_self(argv);
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    if (world != 4) {
        if (!rank) printf("FAIL ckpt_mpi: needs 4 ranks, got %d\n", world);
        MPI_Finalize();
        return 1;
    }
    int pid = rank == 0 ? (int)getpid() : 0;
    MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
    snprintf(dir, sizeof dir, "/tmp/herd_test_ckpt_mpi.%d/checkpoints", pid);
    if (rank) { fclose(stdout); if (!freopen("/dev/null", "w", stdout)) return 1; }  /* rank 0 reports */
    RUN(save_rows4_read_other_layouts);
    RUN(open_rank_reads_its_own_index_only);
    RUN(save_cols2_on_2_ranks_read_rows4);
    RUN(signal_every_rank_stops_at_one_step);
    RUN(flipped_byte_in_one_shard_job_wide);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0 && !test_n_fail_) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf /tmp/herd_test_ckpt_mpi.%d", pid);
        if (system(cmd)) fprintf(stderr, "cannot clean up\n");
    }
    int rc = test_summary();
    MPI_Finalize();
    return rc;
}
