/* train_report.c — what the trainer prints about its run, and the whole
 * model written at its end (--dump-params). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "checkpoint/safetensors.h"
#include "monitoring/mfu.h"
#include "src/parallel/pipeline.h"
#include "src/train/train_report.h"
#include "topology/topo.h"

static void print_model(const herd_config *c, const herd_model *m, const herd_grid *g,
                        const herd_fsdp *f, double peak_tflops, const char *peak_origin)
{
    const herd_model_dims *d = &m->dims;
    int64_t pm = herd_model_dims_matmul_params(d);
    char layout[96];
    herd_grid_describe(g, layout, sizeof layout);
    printf("herd train: backend %s, %d threads per rank, layout %s%s\n", m->be->name,
           omp_get_max_threads(), layout, m->sp ? ", sequence parallel" : "");
    size_t sharded, working;
    herd_fsdp_memory(f, m, &sharded, &working);
    printf("memory per rank: sharded state (fp32 master, gradient, Adam m and v) %.2f MiB "
           "= 16 B x %lld elements (1/(TP*DP) of the model); unsharded working parameters and "
           "gradients for the step %.2f MiB\n", sharded / 1048576.0, (long long)f->n_shard,
           working / 1048576.0);
    printf("activations: recompute %s (train.recompute); the peak memory of each step is in "
           "metrics.jsonl (mem_peak_mib)\n", herd_plan_recompute_name(m->recompute));
    printf("precision: %s GEMM inputs, fp32 accumulation, fp32 master weights, gradients and "
           "AdamW state (train.precision)\n", herd_config_enum_name(herd_precision_choices, c->train.precision));
    printf("gradient reduction: %s (train.overlap_grad_reduce)\n",
           c->train.overlap_grad_reduce ? "per layer, overlapped with the backward"
                                  : "after the backward, one bucket");
    printf("model: %d layers, d_model %d, %d heads (%d kv), head_dim %d, ffn %d, vocab %d, "
           "theta %g\n", d->n_layers, d->d_model, d->n_heads, d->n_kv_heads, d->head_dim,
           d->ffn_dim, d->vocab_size, d->rope_theta);
    printf("params: %lld total (%lld on this rank), P_matmul %lld\n",
           (long long)herd_model_dims_total_params(d), (long long)m->n_params, (long long)pm);
    printf("mfu: flops_per_token = 6*P_matmul + 6*n_layers*seq_len*d_model "
           "= 6*%lld + 6*%d*seq_len*%d; peak %.4g TFLOP/s (%s)\n",
           (long long)pm, d->n_layers, d->d_model, peak_tflops, peak_origin);
    for (int i = 0; i < c->batch.n_ramp; i++)
        printf("batch ramp: after %lld tokens: %lld tokens/batch at seq_len %d (%lld sequences, "
               "%lld micro-batches of %d)\n", (long long)c->batch.ramp[i].after_tokens,
               (long long)c->batch.ramp[i].batch_tokens, c->batch.ramp[i].seq_len,
               (long long)(c->batch.ramp[i].batch_tokens / c->batch.ramp[i].seq_len),
               (long long)(c->batch.ramp[i].batch_tokens / c->batch.ramp[i].seq_len / c->batch.micro_batch),
               c->batch.micro_batch);
    fflush(stdout);
}

/* The pipeline's stages and schedule, context parallel's chunks. */
static void print_pipeline(const herd_config *c, const herd_model *m, const herd_grid *g)
{
    if (g->pp > 1 || c->parallel.virtual_stages > 1) {
        int S = g->pp * m->n_chunks, *first = malloc(sizeof(int) * S), *count = malloc(sizeof(int) * S);
        if (first && count &&
            herd_model_split_layers(m->dims.n_layers, S, c->parallel.pp_first_last_fewer, first, count) == 0) {
            long long n = c->batch.ramp[0].batch_tokens / c->batch.ramp[0].seq_len / g->dp / c->batch.micro_batch;
            int *warm = malloc(sizeof(int) * g->pp);
            double sim = warm ? herd_pipe_plan(g->pp, m->n_chunks, (int)n, warm) : -1;
            printf("pipeline: %d virtual stages (pp %d x virtual_stages %d, %s), layers per "
                   "stage:", S, g->pp, m->n_chunks, m->n_chunks > 1 ? "interleaved 1F1B" : "1F1B");
            for (int s = 0; s < S; s++) printf(" %d", count[s]);
            printf("; %lld micro-batches per DP rank: bubble (PP-1)/(N*V+PP-1) = %.3f, this "
                   "schedule's %.3f\n", n, herd_pipe_theory(g->pp, m->n_chunks, (int)n), sim);
            free(warm);
        }
        free(first);
        free(count);
    }
    if (g->cp > 1)
        printf("context parallel: cp %d, each sequence in %d chunks of seq_len/%d tokens; rank i "
               "holds chunks i and %d-i; K and V all-gathered\n", g->cp, 2 * g->cp, 2 * g->cp,
               2 * g->cp - 1);
}

void herd_train_print_header(const herd_trainer *t, const char *peak_origin, const char *place,
                             const char *bind)
{
    print_model(t->c, &t->model, &t->grid, &t->fsdp, t->peak_tflops, peak_origin);
    printf("placement: %s; rank 0: %s\n", place, bind);
    print_pipeline(t->c, &t->model, &t->grid);
}

/* Pipeline rank 0 collects the other stages' whole tensors (name, shape,
 * numbers) after its own in st / whole (grown to hold them); *n counts them. */
static int gather_stages(herd_comm *pp, herd_st_tensor *st, float **whole, int *n, int root)
{
    if (!root) {
        int32_t cnt = *n;
        if (herd_comm_send(pp, &cnt, 1, HERD_I32, 0, 7001)) return -1;
        for (int i = 0; i < *n; i++) {
            char name[64] = {0};
            snprintf(name, sizeof name, "%s", st[i].name);
            int64_t shape[3] = {st[i].ndim, st[i].shape[0], st[i].shape[1]};
            int64_t numel = shape[1] * (shape[0] == 2 ? shape[2] : 1);
            if (herd_comm_send(pp, name, 16, HERD_I32, 0, 7002) ||
                herd_comm_send(pp, shape, 3, HERD_I64, 0, 7003) ||
                herd_comm_send(pp, whole[i], (size_t)numel, HERD_F32, 0, 7004))
                return -1;
        }
        return 0;
    }
    for (int p = 1; p < pp->size; p++) {
        int32_t cnt;
        if (herd_comm_recv(pp, &cnt, 1, HERD_I32, p, 7001)) return -1;
        for (int j = 0; j < cnt; j++) {
            char *name = calloc(64, 1);
            int64_t shape[3];
            if (!name || herd_comm_recv(pp, name, 16, HERD_I32, p, 7002) ||
                herd_comm_recv(pp, shape, 3, HERD_I64, p, 7003))
                return -1;
            int64_t numel = shape[1] * (shape[0] == 2 ? shape[2] : 1);
            float *w = malloc(sizeof(float) * (size_t)numel);
            if (!w || herd_comm_recv(pp, w, (size_t)numel, HERD_F32, p, 7004)) return -1;
            st[*n] = (herd_st_tensor){name, "F32", (int)shape[0], {shape[1], shape[2]}, w};
            whole[(*n)++] = w;
        }
    }
    return 0;
}

/* Write the whole model (every tensor assembled from its TP pieces) as
 * safetensors on world rank 0: `herd train --dump-params`, used by the
 * equivalence tests to compare layouts. Collective over the TP group. */
static int dump_params(herd_model *m, const herd_grid *g, const char *path)
{
    const herd_backend *be = m->be;
    int P = g->tp_group->size, root = g->world_rank == 0, rc = 0;
    /* room for every stage's tensors on pipeline rank 0 */
    int cap = (int)(3 + 9 * (int64_t)m->dims.n_layers);
    herd_st_tensor *st = calloc(cap, sizeof *st);
    float **whole = calloc(cap, sizeof *whole);
    size_t *counts = malloc(sizeof(size_t) * P), *ocounts = malloc(sizeof(size_t) * P);
    for (int i = 0; i < m->n_tensors && rc == 0; i++) {
        const herd_tensor *t = &m->tensors[i];
        float *piece = malloc(sizeof(float) * (size_t)t->numel);
        float *pieces = malloc(sizeof(float) * (size_t)t->numel * P);
        int64_t off[2] = {t->global_offset[0], t->global_offset[1]}, *offs = malloc(16 * P);
        be->copy_d2h(be, piece, m->params + t->offset, sizeof(float) * (size_t)t->numel);
        for (int r = 0; r < P; r++) counts[r] = (size_t)t->numel, ocounts[r] = 2;
        rc = herd_comm_all_gather(g->tp_group, piece, pieces, counts, HERD_F32) ||
             herd_comm_all_gather(g->tp_group, off, offs, ocounts, HERD_I64);
        int64_t gr = t->global_shape[0], gc = t->global_shape[1] ? t->global_shape[1] : 1;
        int64_t rows = t->shape[0], cols = t->ndim == 2 ? t->shape[1] : 1;
        whole[i] = malloc(sizeof(float) * (size_t)(gr * gc));
        for (int r = 0; r < P && rc == 0; r++) /* copies of a piece write the same numbers */
            for (int64_t a = 0; a < rows; a++)
                memcpy(whole[i] + (offs[2 * r] + a) * gc + offs[2 * r + 1],
                       pieces + (size_t)r * t->numel + a * cols, sizeof(float) * (size_t)cols);
        st[i] = (herd_st_tensor){t->name, "F32", t->ndim, {gr, t->global_shape[1]}, whole[i]};
        free(piece);
        free(pieces);
        free(offs);
    }
    int n_st = m->n_tensors;
    if (g->pp > 1 && g->tp_rank == 0 && g->cp_rank == 0 && g->dp_rank == 0 && rc == 0) {
        /* every stage's whole tensors to pipeline rank 0, which writes them */
        root = g->pp_rank == 0;
        rc = gather_stages(g->pp_group, st, whole, &n_st, root);
    } else if (g->pp > 1) {
        root = 0;
    }
    if (rc == 0 && root) rc = herd_safetensors_write(path, st, n_st, NULL, 0);
    for (int i = n_st; i-- > m->n_tensors;) free((char *)st[i].name);
    for (int i = 0; i < n_st; i++) free(whole[i]);
    free(whole);
    free(st);
    free(counts);
    free(ocounts);
    return rc ? -1 : 0;
}

/* Activation memory per pipeline stage: the slots held at once. */
static void print_stage_peaks(herd_trainer *t)
{
    const herd_grid *g = &t->grid;
    int32_t *peaks = calloc((size_t)g->pp, sizeof(int32_t)), mine = t->model.peak_slots;
    size_t *cnt = malloc(sizeof(size_t) * (size_t)g->pp);
    for (int p = 0; cnt && p < g->pp; p++) cnt[p] = 1;
    if (!peaks || !cnt || herd_comm_all_gather(g->pp_group, &mine, peaks, cnt, HERD_I32))
        herd_comm_abort(1);
    if (t->root) {
        printf("pipeline: peak activations per stage (micro-batch x chunk slots of one "
               "step):");
        for (int p = 0; p < g->pp; p++) printf(" %d", peaks[p]);
        if (t->model.n_chunks == 1) printf(" (1F1B bound: pp = %d)\n", g->pp);
        else printf(" (interleaved: each slot holds one chunk, 1/%d of a stage's layers)\n",
                    t->model.n_chunks);
    }
    free(peaks);
    free(cnt);
}

int herd_trainer_report(herd_trainer *t)
{
    int rc = 0;
    if (t->opt && t->opt->dump_params)
        rc = herd_trainer_agree(t, dump_params(&t->model, &t->grid, t->opt->dump_params));
    if (rc == 0 && t->grid.pp > 1) print_stage_peaks(t);
    if (rc == 0 && t->root)
        printf("done: %lld steps, %lld tokens; metrics in %s\n", (long long)t->step,
               (long long)t->tokens_seen, t->metrics_path);
    return rc;
}
