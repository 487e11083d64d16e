/* ckpt_make.c — test tool: writes a checkpoint of a one-layer tiny Llama whose
 * every value is a known formula, from 1 or more MPI ranks, so that the shell
 * and h5py tests (tests/cli/ckpt*.sh) have real checkpoints to read.
 *
 *   [mpirun -np N] build/tests/ckpt_make DIR STEP [rows|cols|3d]
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
#include "checkpoint/ckpt.h"

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

static void split(int64_t n, int parts, int p, int64_t *off, int64_t *len)
{
    int64_t base = n / parts, rem = n % parts;
    *off = p * base + (p < rem ? p : rem);
    *len = base + (p < rem);
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
            for (int64_t i = 0; i < x->shape[0]; i++)
                for (int64_t j = 0; j < x->shape[1]; j++)
                    b[i * x->shape[1] + j] = (float)((k ? -1.0 : 1.0) *
                        (1000.0 * t + 10.0 * (double)(x->offset[0] + i) + 0.5 * (double)(x->offset[1] + j) + 0.25 * (double)step));
            x->data = b;
            bufs[n++] = b;
        }
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
