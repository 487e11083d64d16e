/* bench_ckpt.c — checkpoint stall and background write speed, in one run.
 *
 *   build/benchmarks/bench_ckpt [MB_PER_RANK [DIR [STEP_S]]]
 *   (default 256 MB in build/bench/ckpt, a simulated step of 0.5 s)
 *   mpirun -np N build/benchmarks/bench_ckpt ...       (every rank its own shard)
 *
 * In each of 4 rounds:
 * 1. the disk: a plain sequential write of the same number of bytes (8 MiB
 *    write() calls) + fsync — what the hardware gives to one writer;
 * 2. a synchronous checkpoint of the state: save_begin + wait, the time the
 *    step loop would lose without the background thread;
 * 3. a checkpoint in a loop of busy 'steps' on the main thread (so that the
 *    background thread competes for the cores as in training), once with the
 *    copy in save_begin and once with defer_copy (the copy overlaps the
 *    step's forward/backward): the stall (time the loop was blocked) and the
 *    background write's time and throughput.
 * Targets: stall <= 5% of the synchronous write; background
 * throughput >= 70% of the sequential write. One JSON line with every number.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint/ckpt.h"
#include "monitoring/clock.h"

static double seq_write(const char *path, size_t bytes)
{
    size_t chunk = 8u << 20;
    char *buf = malloc(chunk);
    for (size_t i = 0; i < chunk; i++) buf[i] = (char)(i * 31 + 7);
    double t0 = herd_now_s();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror(path); exit(1); }
    for (size_t off = 0; off < bytes; off += chunk) {
        size_t k = bytes - off < chunk ? bytes - off : chunk;
        if (write(fd, buf, k) != (ssize_t)k) { perror("write"); exit(1); }
    }
    if (fsync(fd)) { perror("fsync"); exit(1); }
    close(fd);
    double t = herd_now_s() - t0;
    unlink(path);
    free(buf);
    return t;
}

static double median(const double *v, int n)
{
    double a[16];
    memcpy(a, v, (size_t)n * sizeof *a);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (a[j] < a[i]) { double x = a[i]; a[i] = a[j]; a[j] = x; }
    return n % 2 ? a[n / 2] : 0.5 * (a[n / 2 - 1] + a[n / 2]);
}

static void busy(double secs)
{
    double end = herd_now_s() + secs;
    volatile double x = 1.0;
    while (herd_now_s() < end)
        for (int i = 0; i < 10000; i++) x = x * 1.0000001 + 1e-9;
}

int main(int argc, char **argv)
{
    int mpi = getenv("OMPI_COMM_WORLD_SIZE") != NULL, rank = 0, world = 1;
    if (mpi) {
        MPI_Init(&argc, &argv);
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &world);
    }
    double mb = argc > 1 ? atof(argv[1]) : 256.0;
    const char *dir = argc > 2 ? argv[2] : "build/bench/ckpt";
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (rank == 0 && system(cmd)) { fprintf(stderr, "bench_ckpt: cannot prepare %s\n", dir); return 1; }
    if (mpi) MPI_Barrier(MPI_COMM_WORLD);

    /* the state: 16 tensors [rows, 4096] per rank, the rows of a global tensor
     * split across ranks (the FSDP/TP picture) */
    const int NT = 16;
    int64_t cols = 4096;
    int64_t rows = (int64_t)(mb * 1e6 / 4 / (double)cols / NT);
    if (rows < 1) rows = 1;
    herd_ckpt_slice s[16];
    float *data[16];
    for (int t = 0; t < NT; t++) {
        data[t] = malloc((size_t)(rows * cols) * sizeof(float));
        for (int64_t i = 0; i < rows * cols; i++) data[t][i] = (float)(i % 1000) * 1e-3f + (float)t;
        memset(&s[t], 0, sizeof s[t]);
        snprintf(s[t].name, sizeof s[t].name, "model.layers.%d.mlp.up_proj.weight", t);
        snprintf(s[t].kind, sizeof s[t].kind, "param");
        s[t].ndim = 2;
        s[t].global_shape[0] = rows * world; s[t].global_shape[1] = cols;
        s[t].offset[0] = rows * rank; s[t].offset[1] = 0;
        s[t].shape[0] = rows; s[t].shape[1] = cols;
        s[t].data = data[t];
    }
    size_t bytes = (size_t)(NT * rows * cols) * sizeof(float);
    char seq_path[600];
    snprintf(seq_path, sizeof seq_path, "%s/seq_write.%d", dir, rank);

    /* The disk of a shared VM drifts (a host cache absorbs some writes and not
     * others), so the measurements go in rounds, and each ratio is taken
     * within its round: round r = sequential write, synchronous checkpoint,
     * async checkpoint (copy in save_begin), async checkpoint (defer_copy).
     * The summary is the median over rounds of each ratio. */
    enum { ROUNDS = 4 };
    double step_s = argc > 3 ? atof(argv[3]) : 0.5;
    herd_ckpt_writer *ws[3];
    double reserve_s = herd_now_s();
    for (int m = 0; m < 3; m++) {
        herd_ckpt_options o = {.keep_last = 1, .quiet = 1, .defer_copy = m == 2};
        if (herd_ckpt_writer_create(&ws[m], mpi ? MPI_COMM_WORLD : MPI_COMM_NULL, &o)) return 1;
        if (herd_ckpt_writer_reserve(ws[m], bytes)) return 1;   /* at start-up, as a trainer would */
    }
    reserve_s = (herd_now_s() - reserve_s) / 3;
    double mbs = (double)bytes / 1e6;
    double seq[ROUNDS], syn[ROUNDS], stall[2][ROUNDS], wr[2][ROUNDS];
    double r_stall[2][ROUNDS], r_bg[2 * ROUNDS];
    int64_t step = 1;
    for (int r = 0; r < ROUNDS; r++) {
        if (mpi) MPI_Barrier(MPI_COMM_WORLD);
        seq[r] = seq_write(seq_path, bytes);
        double t0 = herd_now_s();
        if (herd_ckpt_save_begin(ws[0], dir, step++, s, NT, "sync", 4) || herd_ckpt_wait(ws[0])) return 1;
        syn[r] = herd_now_s() - t0;
        for (int m = 0; m < 2; m++) {
            herd_ckpt_writer *w = ws[1 + m];
            herd_ckpt_stats st;
            /* a loop of steps: the checkpoint at the first, then steps until it committed */
            if (herd_ckpt_save_begin(w, dir, step++, s, NT, "async", 5)) return 1;
            for (int k = 0; k < 4 || herd_ckpt_busy(w); k++) {
                busy(0.6 * step_s);                /* forward + backward: the state is only read */
                herd_ckpt_snapshot_wait(w);        /* before the optimizer changes it */
                data[0][0] += 1.0f;                /* the optimizer */
                busy(0.4 * step_s);
                herd_ckpt_poll(w);
            }
            herd_ckpt_get_stats(w, &st);
            stall[m][r] = st.stall_s;
            wr[m][r] = st.write_s;
            r_stall[m][r] = st.stall_s / syn[r];
            r_bg[2 * r + m] = (mbs / st.write_s) / (mbs / seq[r]);
        }
    }
    for (int m = 0; m < 3; m++) herd_ckpt_writer_destroy(ws[m]);
    double med_stall[2] = {median(r_stall[0], ROUNDS), median(r_stall[1], ROUNDS)};
    double med_bg = median(r_bg, 2 * ROUNDS);
    if (rank == 0) {
        printf("checkpoint state %.0f MB per rank, %d rank(s), dir %s, step %.2f s; snapshot buffers reserved "
               "at start-up in %.3f s each\n", mbs, world, dir, step_s, reserve_s);
        printf("round  seq write    sync ckpt | copy: stall      bg write       | defer_copy: stall  bg write\n");
        for (int r = 0; r < ROUNDS; r++)
            printf("%5d  %5.3f s %4.0f MB/s  %6.3f s | %7.4f s %5.2f%%  %5.3f s %4.0f MB/s | %7.4f s %5.2f%%  %5.3f s %4.0f MB/s\n",
                   r, seq[r], mbs / seq[r], syn[r], stall[0][r], 100 * r_stall[0][r], wr[0][r], mbs / wr[0][r],
                   stall[1][r], 100 * r_stall[1][r], wr[1][r], mbs / wr[1][r]);
        printf("median over rounds: stall / synchronous checkpoint = %.2f%% (copy in save_begin), %.2f%% (defer_copy), "
               "target <= 5%%; background write / sequential write = %.0f%%, target >= 70%%\n",
               100 * med_stall[0], 100 * med_stall[1], 100 * med_bg);
        printf("{\"bench\":\"ckpt\",\"mb_per_rank\":%.1f,\"ranks\":%d,\"rounds\":%d,\"seq_write_s_median\":%.4f,"
               "\"sync_ckpt_s_median\":%.4f,\"stall_copy_pct\":%.2f,\"stall_defer_pct\":%.2f,\"bg_pct_of_seq\":%.1f,"
               "\"stall_defer_ok\":%s,\"bg_ok\":%s}\n",
               mbs, world, ROUNDS, median(seq, ROUNDS), median(syn, ROUNDS), 100 * med_stall[0],
               100 * med_stall[1], 100 * med_bg, med_stall[1] <= 0.05 ? "true" : "false",
               med_bg >= 0.7 ? "true" : "false");
    }
    for (int t = 0; t < NT; t++) free(data[t]);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (rank == 0 && system(cmd)) fprintf(stderr, "bench_ckpt: cannot remove %s\n", dir);
    if (mpi) MPI_Finalize();
    return 0;
}
