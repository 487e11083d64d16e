/* bench_ckpt.c — checkpoint stall and background write speed, in one run.
 *
 *   build/benchmarks/bench_ckpt [MB_PER_RANK [DIR [STEP_S]]]
 *   (default 256 MB in build/bench/ckpt, a simulated step of 0.5 s)
 *   mpirun -np N build/benchmarks/bench_ckpt ...       (every rank its own shard)
 *
 * 1. the disk: a plain sequential write of the same number of bytes (8 MiB
 *    write() calls) + fsync — what the hardware gives to one writer;
 * 2. a synchronous checkpoint of the state: save_begin + wait, the time the
 *    step loop would lose without the background thread;
 * 3. a training loop (a busy 'step' on the main thread, so the background
 *    thread competes for the cores as it would in training) that checkpoints
 *    every few steps: the stall of each checkpoint (time blocked in
 *    save_begin), and the background write's time and throughput.
 * Targets (issue 7): stall <= 5% of the synchronous write; background
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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double seq_write(const char *path, size_t bytes)
{
    size_t chunk = 8u << 20;
    char *buf = malloc(chunk);
    for (size_t i = 0; i < chunk; i++) buf[i] = (char)(i * 31 + 7);
    double t0 = now_s();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror(path); exit(1); }
    for (size_t off = 0; off < bytes; off += chunk) {
        size_t k = bytes - off < chunk ? bytes - off : chunk;
        if (write(fd, buf, k) != (ssize_t)k) { perror("write"); exit(1); }
    }
    if (fsync(fd)) { perror("fsync"); exit(1); }
    close(fd);
    double t = now_s() - t0;
    unlink(path);
    free(buf);
    return t;
}

static double median3(const double *v)
{
    double a = v[0], b = v[1], c = v[2];
    return a > b ? (b > c ? b : (a > c ? c : a)) : (a > c ? a : (b > c ? c : b));
}

static void busy(double secs)
{
    double end = now_s() + secs;
    volatile double x = 1.0;
    while (now_s() < end)
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

    /* 1. the disk (every rank at once, as the checkpoint does); 2. the
     * synchronous checkpoint. Interleaved, 3 times each, medians: the disk of
     * a shared VM drifts within a run. */
    double seq[3], syn[3];
    herd_ckpt_options opt = {.keep_last = 1, .quiet = 1};
    herd_ckpt_writer *w;
    if (herd_ckpt_writer_create(&w, mpi ? MPI_COMM_WORLD : MPI_COMM_NULL, &opt)) return 1;
    for (int r = 0; r < 3; r++) {
        if (mpi) MPI_Barrier(MPI_COMM_WORLD);
        seq[r] = seq_write(seq_path, bytes);
        double t0 = now_s();
        if (herd_ckpt_save_begin(w, dir, 1 + r, s, NT, "sync", 4) || herd_ckpt_wait(w)) return 1;
        syn[r] = now_s() - t0;
    }
    herd_ckpt_writer_destroy(w);
    double t_seq = median3(seq), t_sync = median3(syn);
    double mbs = (double)bytes / 1e6, seq_mbps = mbs / t_seq;

    /* 3. asynchronous, in a loop of busy steps, a checkpoint every 4 steps;
     * mode 0 copies the snapshot in save_begin, mode 1 (defer_copy) lets the
     * thread copy while the step's forward/backward (here: 60% of the busy
     * step) runs, and waits for the snapshot before the 'optimizer' */
    const int n_ckpt = 3, every = 4;
    /* a step of 0.5 s (argv[3]); 4 steps between checkpoints */
    double step_s = argc > 3 ? atof(argv[3]) : 0.5;
    double stall[2][8], wr[2][8], mbps_all[16], reserve_s[2];
    int n_all = 0;
    for (int mode = 0; mode < 2; mode++) {
        herd_ckpt_options o = {.keep_last = 1, .quiet = 1, .defer_copy = mode};
        if (herd_ckpt_writer_create(&w, mpi ? MPI_COMM_WORLD : MPI_COMM_NULL, &o)) return 1;
        double tr = now_s();
        if (herd_ckpt_writer_reserve(w, bytes)) return 1;   /* at start-up, as a trainer would */
        reserve_s[mode] = now_s() - tr;
        herd_ckpt_stats st;
        int k = 0;
        for (int step = 100; k < n_ckpt; step++) {
            int ck = step % every == 0;
            if (ck && herd_ckpt_save_begin(w, dir, 1000 * (mode + 1) + step, s, NT, "async", 5)) return 1;
            busy(0.6 * step_s);                  /* forward + backward: the state is only read */
            herd_ckpt_snapshot_wait(w);          /* before the optimizer changes it */
            data[0][0] += 1.0f;                  /* the optimizer */
            busy(0.4 * step_s);
            herd_ckpt_poll(w);
            if (ck) {
                while (herd_ckpt_busy(w)) { busy(step_s / 8); herd_ckpt_poll(w); }
                herd_ckpt_get_stats(w, &st);
                stall[mode][k] = st.stall_s;
                wr[mode][k] = st.write_s;
                mbps_all[n_all++] = mbs / st.write_s;
                k++;
            }
        }
        herd_ckpt_writer_destroy(w);
    }
    /* the background write's throughput: median over the 6 async checkpoints */
    for (int i = 0; i < n_all; i++)
        for (int j = i + 1; j < n_all; j++)
            if (mbps_all[j] < mbps_all[i]) { double x = mbps_all[i]; mbps_all[i] = mbps_all[j]; mbps_all[j] = x; }
    double bg_mbps = 0.5 * (mbps_all[n_all / 2 - 1] + mbps_all[n_all / 2]);
    double stall_mean[2] = {0, 0};
    for (int m = 0; m < 2; m++) {
        for (int i = 0; i < n_ckpt; i++) stall_mean[m] += stall[m][i] / n_ckpt;
    }
    if (rank == 0) {
        printf("checkpoint state %.0f MB per rank, %d rank(s), dir %s, step %.2f s, a checkpoint every %d steps\n",
               mbs, world, dir, step_s, every);
        printf("  sequential write + fsync:  %.3f %.3f %.3f s -> median %.3f s, %.0f MB/s\n",
               seq[0], seq[1], seq[2], t_seq, seq_mbps);
        printf("  synchronous checkpoint:    %.3f %.3f %.3f s -> median %.3f s\n", syn[0], syn[1], syn[2], t_sync);
        for (int m = 0; m < 2; m++)
            for (int i = 0; i < n_ckpt; i++)
                printf("  async (%s) checkpoint %d: stall %.4f s (%.2f%% of sync), background write %.3f s, %.0f MB/s\n",
                       m ? "defer_copy" : "copy in save_begin", i, stall[m][i], 100 * stall[m][i] / t_sync,
                       wr[m][i], mbs / wr[m][i]);
        printf("  snapshot buffer reserve at start-up (outside the loop): %.3f s, %.3f s\n", reserve_s[0], reserve_s[1]);
        printf("  mean stall: copy in save_begin %.4f s = %.2f%%, defer_copy %.4f s = %.2f%% of the synchronous "
               "checkpoint (target <= 5%%)\n", stall_mean[0], 100 * stall_mean[0] / t_sync, stall_mean[1],
               100 * stall_mean[1] / t_sync);
        printf("  background write (median of %d): %.0f MB/s = %.0f%% of sequential (target >= 70%%)\n",
               n_all, bg_mbps, 100 * bg_mbps / seq_mbps);
        printf("{\"bench\":\"ckpt\",\"mb_per_rank\":%.1f,\"ranks\":%d,\"seq_write_s\":%.4f,\"seq_MBps\":%.1f,"
               "\"sync_ckpt_s\":%.4f,\"stall_copy_s\":%.5f,\"stall_copy_pct\":%.2f,\"stall_defer_s\":%.5f,"
               "\"stall_defer_pct\":%.2f,\"bg_MBps\":%.1f,\"bg_pct_of_seq\":%.1f,\"stall_defer_ok\":%s,\"bg_ok\":%s}\n",
               mbs, world, t_seq, seq_mbps, t_sync, stall_mean[0], 100 * stall_mean[0] / t_sync, stall_mean[1],
               100 * stall_mean[1] / t_sync, bg_mbps, 100 * bg_mbps / seq_mbps,
               stall_mean[1] <= 0.05 * t_sync ? "true" : "false", bg_mbps >= 0.7 * seq_mbps ? "true" : "false");
    }
    for (int t = 0; t < NT; t++) free(data[t]);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (rank == 0 && system(cmd)) fprintf(stderr, "bench_ckpt: cannot remove %s\n", dir);
    if (mpi) MPI_Finalize();
    return 0;
}
