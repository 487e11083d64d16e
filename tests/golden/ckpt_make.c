/* ckpt_make.c — test tool: writes a checkpoint of a one-layer tiny Llama whose
 * every value is a known formula, from 1 or more MPI ranks, so that the shell
 * and h5py tests (tests/cli/ckpt*.sh) have real checkpoints to read.
 *
 *   [mpirun -np N] build/tests/ckpt_make DIR STEP [rows|cols|3d]
 *   [mpirun -np N] build/tests/ckpt_make DIR MAX_STEPS loop
 *
 * loop: a training loop's checkpoint path (rows layout): 20 ms steps, the
 * state after step s holds value(..., s), a checkpoint every 10 steps with
 * defer_copy, and on SIGUSR1/SIGTERM (to any rank) every rank stops at the
 * same step, saves it, waits for the commit and exits 75 (HERD_EXIT_REQUEUE).
 * Each rank writes its pid to $CKPT_MAKE_PIDDIR/pid.RANK when it is running.
 *
 * value(kind k, tensor t, i, j, step) = (k ? -1 : 1) * (1000 t + 10 i + 0.5 j + 0.25 step)
 * (every value exact in float32). rows: each rank holds a block of rows;
 * cols: a block of columns of 2-D tensors (1-D ones are split by rows).
 * 3d: 8 ranks as TP2 x PP2 x DP2 (TP innermost): stage 0 holds the embedding
 * and layer 0, stage 1 the final norm and lm_head; TP splits q/k/v/gate/up,
 * the embedding and lm_head by rows and o/down by columns, norms replicated
 * on both TP ranks (overlapping slices); FSDP (DP) then splits each TP shard's
 * rows in two. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "checkpoint/ckpt.h"
#include "monitoring/exitcodes.h"

static const struct { const char *name; int ndim; int64_t g0, g1; } T[] = {
    {"model.embed_tokens.weight", 2, 32, 16},
    {"model.layers.0.input_layernorm.weight", 1, 16, 0},
    {"model.layers.0.self_attn.q_proj.weight", 2, 16, 16},
    {"model.layers.0.self_attn.k_proj.weight", 2, 8, 16},
    {"model.layers.0.self_attn.v_proj.weight", 2, 8, 16},
    {"model.layers.0.self_attn.o_proj.weight", 2, 16, 16},
    {"model.layers.0.post_attention_layernorm.weight", 1, 16, 0},
    {"model.layers.0.mlp.gate_proj.weight", 2, 48, 16},
    {"model.layers.0.mlp.up_proj.weight", 2, 48, 16},
    {"model.layers.0.mlp.down_proj.weight", 2, 16, 48},
    {"model.norm.weight", 1, 16, 0},
    {"lm_head.weight", 2, 32, 16},
};
#define NT (int)(sizeof T / sizeof T[0])

static int slice_t[2 * NT], slice_k[2 * NT];

static void refill(herd_ckpt_slice *s, float **bufs, int n, int64_t step)
{
    for (int q = 0; q < n; q++) {
        herd_ckpt_slice *x = &s[q];
        for (int64_t i = 0; i < x->shape[0]; i++)
            for (int64_t j = 0; j < x->shape[1]; j++)
                bufs[q][i * x->shape[1] + j] = (float)((slice_k[q] ? -1.0 : 1.0) *
                    (1000.0 * slice_t[q] + 10.0 * (double)(x->offset[0] + i) + 0.5 * (double)(x->offset[1] + j) +
                     0.25 * (double)step));
    }
}

static void split(int64_t n, int parts, int p, int64_t *off, int64_t *len)
{
    int64_t base = n / parts, rem = n % parts;
    *off = p * base + (p < rem ? p : rem);
    *len = base + (p < rem);
}

static int train_loop(const char *dir, int64_t max_steps, herd_ckpt_slice *s, float **bufs, int n,
                      int mpi, int rank, int world)
{
    MPI_Comm comm = mpi ? MPI_COMM_WORLD : MPI_COMM_NULL;
    herd_ckpt_options opt = {.keep_last = 2, .defer_copy = 1};
    herd_ckpt_writer *w;
    herd_ckpt_stopper *st;
    if (herd_ckpt_writer_create(&w, comm, &opt) || herd_ckpt_stopper_create(&st, comm)) return HERD_EXIT_FAIL;
    const char *piddir = getenv("CKPT_MAKE_PIDDIR");
    if (piddir) {
        char p[600];
        snprintf(p, sizeof p, "%s/pid.%d", piddir, rank);
        FILE *f = fopen(p, "w");
        if (f) { fprintf(f, "%d\n", (int)getpid()); fclose(f); }
    }
    int rc = HERD_EXIT_FAIL;
    refill(s, bufs, n, 0);
    for (int64_t step = 0; step <= max_steps; step++) {
        int stop = herd_ckpt_stopper_check(st);
        if (stop || (step > 0 && step % 10 == 0)) {
            char meta[128];
            snprintf(meta, sizeof meta, "{\"step\": %" PRId64 ", \"rank\": %d, \"world\": %d}", step, rank, world);
            if (herd_ckpt_save_begin(w, dir, step, s, n, meta, strlen(meta))) break;
        }
        usleep(20000);                  /* forward + backward */
        herd_ckpt_snapshot_wait(w);
        if (stop) {
            rc = herd_ckpt_wait(w) ? HERD_EXIT_FAIL : HERD_EXIT_REQUEUE;
            if (rank == 0)
                fprintf(stderr, "ckpt_make: signal %d: stopped at step %" PRId64 " with a checkpoint, exit %d\n",
                        herd_ckpt_stopper_signal(st), step, rc);
            break;
        }
        refill(s, bufs, n, step + 1);   /* the optimizer */
        herd_ckpt_poll(w);
    }
    herd_ckpt_stopper_destroy(st);
    if (herd_ckpt_writer_destroy(w)) rc = HERD_EXIT_FAIL;
    for (int i = 0; i < n; i++) free(bufs[i]);
    if (mpi) MPI_Finalize();
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: ckpt_make DIR STEP [rows|cols]\n");
        return 2;
    }
    const char *dir = argv[1];
    int64_t step = strtoll(argv[2], NULL, 10);
    int cols = argc > 3 && !strcmp(argv[3], "cols");
    int three_d = argc > 3 && !strcmp(argv[3], "3d");
    int loop = argc > 3 && !strcmp(argv[3], "loop");
    int mpi = getenv("OMPI_COMM_WORLD_SIZE") != NULL;
    int rank = 0, world = 1;
    if (mpi) {
        MPI_Init(&argc, &argv);
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &world);
    }
    if (three_d && world != 8) {
        fprintf(stderr, "ckpt_make: layout 3d needs 8 ranks, got %d\n", world);
        if (mpi) MPI_Finalize();
        return 2;
    }
    herd_ckpt_slice s[2 * NT];
    float *bufs[2 * NT];
    int n = 0;
    for (int k = 0; k < 2; k++)
        for (int t = 0; t < NT; t++) {
            herd_ckpt_slice *x = &s[n];
            memset(x, 0, sizeof *x);
            snprintf(x->name, sizeof x->name, "%s", T[t].name);
            snprintf(x->kind, sizeof x->kind, "%s", k ? "adam_m" : "param");
            x->ndim = T[t].ndim;
            x->global_shape[0] = T[t].g0;
            x->global_shape[1] = T[t].g1;
            int64_t g1 = T[t].ndim > 1 ? T[t].g1 : 1;
            if (three_d) {
                int tp = rank % 2, pp = (rank / 2) % 2, dp = rank / 4;
                int stage1 = !strcmp(T[t].name, "model.norm.weight") || !strcmp(T[t].name, "lm_head.weight");
                if (stage1 != pp) continue;
                int by_col = strstr(T[t].name, "o_proj") || strstr(T[t].name, "down_proj");
                int replicated = T[t].ndim == 1;
                int64_t r0 = 0, nr = T[t].g0, c0 = 0, nc = g1;
                if (!replicated && by_col) split(g1, 2, tp, &c0, &nc);
                if (!replicated && !by_col) split(T[t].g0, 2, tp, &r0, &nr);
                int64_t dr0, dnr;
                split(nr, 2, dp, &dr0, &dnr);
                x->offset[0] = r0 + dr0; x->shape[0] = dnr;
                x->offset[1] = c0; x->shape[1] = nc;
            } else if (cols && T[t].ndim == 2) {
                x->offset[0] = 0; x->shape[0] = T[t].g0;
                split(T[t].g1, world, rank, &x->offset[1], &x->shape[1]);
            } else {
                split(T[t].g0, world, rank, &x->offset[0], &x->shape[0]);
                x->offset[1] = 0; x->shape[1] = g1;
            }
            if (T[t].ndim == 1) x->shape[1] = 1;
            float *b = malloc((size_t)(x->shape[0] * x->shape[1]) * sizeof *b);
            x->data = b;
            slice_t[n] = t;
            slice_k[n] = k;
            bufs[n++] = b;
        }
    refill(s, bufs, n, step);
    if (loop) return train_loop(dir, step, s, bufs, n, mpi, rank, world);
    char meta[128];
    snprintf(meta, sizeof meta, "{\"step\": %" PRId64 ", \"rank\": %d, \"world\": %d}", step, rank, world);
    herd_ckpt_writer *w;
    herd_ckpt_options opt = {0};
    int rc = herd_ckpt_writer_create(&w, mpi ? MPI_COMM_WORLD : MPI_COMM_NULL, &opt);
    if (!rc) rc = herd_ckpt_save_begin(w, dir, step, s, n, meta, strlen(meta));
    if (!rc) rc = herd_ckpt_wait(w);
    if (herd_ckpt_writer_destroy(w)) rc = -1;
    for (int i = 0; i < n; i++) free(bufs[i]);
    if (mpi) MPI_Finalize();
    return rc ? 1 : 0;
}
