/* train.c — see train.h. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "src/base/safe_file.h"
#include "monitoring/metrics.h"
#include "monitoring/mfu.h"
#include "monitoring/prometheus.h"
#include "monitoring/straggler.h"
#include "monitoring/watchdog.h"
#include <unistd.h>
#include <mpi.h>
#include "src/data/data.h"
#include "src/data/eval.h"
#include "src/data/loader.h"
#include "src/parallel/fsdp.h"
#include "src/parallel/grid.h"
#include "src/parallel/pipeline.h"
#include "src/parallel/placement.h"
#include "checkpoint/safetensors.h"
#include "src/model/model.h"
#include "src/model/optim.h"
#include "src/model/schedule.h"
#include "src/train/train.h"
#include "src/train/train_ckpt.h"
#include "src/base/exitcodes.h"
#include "topology/topo.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int save_resolved_config(const herd_config *c)
{
    char path[HERD_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/config.yaml", c->train.out_dir);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int rc = f ? herd_config_write(c, f) : -1;
    if (f && fclose(f) != 0) rc = -1;
    /* temp file, rename: a link planted at config.yaml is replaced, never followed */
    if (rc == 0) rc = herd_safe_write(path, buf, len);
    else fprintf(stderr, "herd: %s: cannot write the resolved config\n", path);
    free(buf);
    return rc;
}

static void set_threads(int threads)
{
    if (threads <= 0) return;
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
}

static void print_header(const herd_config *c, const herd_model *m, const herd_grid *g,
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

typedef struct {
    int32_t *tokens, *targets, *doc;  /* host [n_seqs * T] */
    size_t   cap;
} host_batch;

static int host_batch_reserve(host_batch *b, size_t n)
{
    if (n <= b->cap) return 0;
    free(b->tokens); free(b->targets); free(b->doc);
    b->tokens = malloc(n * sizeof(int32_t));
    b->targets = malloc(n * sizeof(int32_t));
    b->doc = malloc(n * sizeof(int32_t));
    b->cap = n;
    if (b->tokens && b->targets && b->doc) return 0;
    fprintf(stderr, "herd: out of memory for a batch of %zu tokens\n", n);
    return -1;
}

/* Mean loss over the same eval_batches micro-batches of the validation shard
 * every time (the sampler restarts from its first window), forward only.
 * Every DP replica computes the same value; the TP ranks cooperate. */
static double evaluate(herd_model *m, herd_data *val, const herd_config *c, int T, int64_t *n_tok)
{
    int B = c->batch.micro_batch;
    size_t n = (size_t)B * T;
    int32_t *tok = malloc(n * sizeof(int32_t)), *tgt = malloc(n * sizeof(int32_t)),
            *doc = malloc(n * sizeof(int32_t));
    herd_data_state st = {c->train.seed, 0, 0, T};
    double sum = herd_data_set_state(val, &st) ? NAN : 0;
    int64_t valid = 0;
    for (int i = 0; i < c->train.eval_batches && tok && tgt && doc && !isnan(sum); i++) {
        int64_t nv;
        if (herd_data_next(val, B, T, tok, tgt, doc)) { sum = NAN; break; }
        sum += herd_model_forward(m, tok, tgt, doc, B, T, &nv);
        valid += nv;
    }
    free(tok); free(tgt); free(doc);
    *n_tok = valid;
    return valid ? sum / (double)valid : NAN;
}

static int log_eval(herd_metrics *mt, herd_model *m, herd_data *val, const herd_config *c, int T,
                    int64_t step, int root)
{
    int64_t n;
    double vl = evaluate(m, val, c, T, &n);
    if (!isfinite(vl)) {
        fprintf(stderr, "herd: %s: validation loss is not finite\n", c->data.val_path);
        return -1;
    }
    if (!root) return 0;
    printf("eval   %6lld | val loss %.4f (%lld tokens of %s)\n", (long long)step, vl, (long long)n,
           c->data.val_path);
    fflush(stdout);
    if (fprintf(mt->f, "{\"step\":%lld,\"val_loss\":%.17g,\"val_tokens\":%lld}\n",
                (long long)step, vl, (long long)n) < 0 || fflush(mt->f))
        return -1;
    return 0;
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

/* Validation loss and bits per byte of every source of a data.sources mix
 * (the same windows each time); every DP replica computes the same numbers. */
static double forward_for_eval(void *ctx, const int32_t *tok, const int32_t *tgt, const int32_t *doc,
                               int B, int T, int64_t *n_valid)
{
    return herd_model_forward(ctx, tok, tgt, doc, B, T, n_valid);
}

static int log_eval_sources(herd_metrics *mt, herd_model *m, herd_loader *ld, const herd_config *c,
                            int T, int64_t step, int root)
{
    int n = herd_loader_n_val_sources(ld);
    if (n <= 0) return 0;
    herd_eval_acc *acc = calloc((size_t)n, sizeof *acc);
    int rc = acc ? 0 : -1;
    for (int v = 0; v < n && rc == 0; v++)
        rc = herd_eval_source(ld, v, forward_for_eval, m, c->batch.micro_batch, T, 0, c->train.eval_batches,
                              &acc[v]);
    if (rc == 0 && root) {
        rc = herd_eval_report(ld, acc, step, mt->f, stdout);
        fflush(mt->f);
        fflush(stdout);
    }
    free(acc);
    return rc;
}

static double comm_seconds(const herd_comm *c) { return c ? c->seconds : 0.0; }

/* a group's time: its MPI calls and, on CUDA, its NCCL twin's */
static double group_seconds(const herd_comm *mpi, const herd_comm *dev)
{
    return comm_seconds(mpi) + (dev != mpi ? comm_seconds(dev) : 0.0);
}

/* Every rank reaches the same verdict on its inputs; a local failure (a file
 * one rank cannot write) is shared so that no rank goes on alone. */
static int agree(const herd_grid *g, int rc)
{
    int32_t bad = rc != 0;
    if (herd_comm_all_reduce(g->world, &bad, 1, HERD_I32, HERD_MAX)) herd_comm_abort(1);
    return bad ? -1 : 0;
}

int herd_train(const herd_config *c, const char *config_origin, const herd_train_options *opt)
{
    set_threads(c->train.threads);
    herd_grid grid;
    int world = herd_mpi_world_size();
    int *perm = malloc(sizeof(int) * (size_t)world);
    char place_desc[1200] = "rank order", bind_desc[256] = "not bound";
    if (!perm) return -1;
    if (c->parallel.placement && herd_placement_perm(c, world, perm, place_desc, sizeof place_desc)) {
        free(perm);
        return -1;
    }
    if (!c->parallel.placement)
        for (int i = 0; i < world; i++) perm[i] = i;
    if (c->parallel.bind_cores && herd_placement_bind(bind_desc, sizeof bind_desc))
        snprintf(bind_desc, sizeof bind_desc, "binding failed (see above)");
    int grid_rc = herd_grid_create(&grid, c, config_origin, perm);
    free(perm);
    if (grid_rc) {
        herd_grid_destroy(&grid);
        return -1;
    }
    int root = grid.world_rank == 0;
    if (c->monitor.watchdog_step_s > 0) {
        char host[128] = "";
        const char *node = getenv("SLURMD_NODENAME");
        if (node) snprintf(host, sizeof host, "%s", node);
        else gethostname(host, sizeof host - 1);
        double commit = c->monitor.watchdog_commit_s > c->monitor.watchdog_step_s ? c->monitor.watchdog_commit_s
                                                                  : c->monitor.watchdog_step_s;
        if (herd_watchdog_start(c->monitor.watchdog_step_s, commit, grid.world_rank, host)) {
            herd_grid_destroy(&grid);
            return -1;
        }
    }
    const char *backend_name = herd_config_enum_name(herd_backend_choices, c->train.backend);
    const herd_backend *be = herd_backend_get(backend_name);
    if (!be) {
        if (root)
            fprintf(stderr, "herd: %s: key 'train.backend': backend '%s' is not available "
                    "(%s)\n", config_origin, backend_name,
                    c->train.backend != HERD_BACKEND_CUDA ? "unknown backend" : "not built with CUDA or no device");
        herd_watchdog_stop();
        herd_grid_destroy(&grid);
        return -1;
    }
    if (!c->data.path[0] && c->data.n_sources == 0) {
        if (root) fprintf(stderr, "herd: %s: key 'data.path': no training data given\n", config_origin);
        herd_watchdog_stop();
        herd_grid_destroy(&grid);
        return -1;
    }
    herd_loader *data = NULL;
    herd_data *val = NULL;
    int rc = herd_loader_open(&data, c, c->model.vocab_size);
    if (rc == 0 && c->data.val_path[0]) rc = herd_data_open(&val, c->data.val_path, c->model.vocab_size, c->train.seed);
    if (rc == 0 && root) rc = herd_safe_mkdirs(c->train.out_dir) || save_resolved_config(c) ? -1 : 0;
    if (agree(&grid, rc)) {
        herd_loader_close(data);
        herd_data_close(val);
        herd_watchdog_stop();
        herd_grid_destroy(&grid);
        return -1;
    }

    herd_model_dims dims;
    herd_model_dims_from_config(&dims, c);
    herd_model model;
    herd_fsdp fsdp;
    /* the backend's buffers travel over NCCL on the CUDA backend (groups of
     * more than one rank), over MPI on the CPU */
    rc = herd_grid_device_groups(&grid, !strcmp(be->name, "cuda"));
    herd_model_parallel par = {grid.tp_dev, c->parallel.sequence_parallel, grid.pp_dev, grid.cp_dev,
                               c->parallel.virtual_stages, c->parallel.pp_first_last_fewer, c->train.xent_chunk};
    if (rc == 0) rc = herd_model_create_parallel(&model, &dims, be, c->train.seed, &par);
    if (rc == 0 && herd_model_set_recompute(&model, c->train.recompute)) {
        herd_model_destroy(&model);
        rc = -1;
    }
    /* BF16 compute: the backend rounds every GEMM input; master weights,
     * gradients and the optimizer stay fp32 */
    int bf16 = c->train.precision == HERD_PRECISION_BF16;
    if (rc == 0 && bf16 && !be->set_matmul_bf16) {
        fprintf(stderr, "herd: key 'train.precision': backend %s has no bf16 matmul\n", be->name);
        herd_model_destroy(&model);
        rc = -1;
    }
    if (rc == 0 && be->set_matmul_bf16) be->set_matmul_bf16(be, bf16);
    if (rc == 0 && herd_fsdp_create(&fsdp, &model, grid.dp_dev)) {
        herd_model_destroy(&model);
        rc = -1;
    }
    if (agree(&grid, rc)) {
        herd_loader_close(data);
        herd_data_close(val);
        herd_watchdog_stop();
        herd_grid_destroy(&grid);
        return -1;
    }

    double peak = c->monitor.peak_tflops;
    const char *peak_origin = "monitor.peak_tflops";
    if (peak <= 0 && !strcmp(be->name, "cuda")) {
        peak = HERD_PEAK_TFLOPS_H100_BF16;
        peak_origin = "H100 dense BF16";
    } else if (peak <= 0) {
        /* every rank measures (the same binary on the same kind of core); rank 0's number is used */
        peak = herd_mfu_measure_cpu_peak(512, 0.3);
        if (herd_comm_broadcast(grid.world, &peak, 1, HERD_F64, 0)) herd_comm_abort(1);
        peak_origin = "measured fp32 sgemm 512^3 on this machine, per rank";
    }
    if (root) {
        print_header(c, &model, &grid, &fsdp, peak, peak_origin);
        printf("placement: %s; rank 0: %s\n", place_desc, bind_desc);
        print_pipeline(c, &model, &grid);
    }

    /* checkpoints: resume from the newest good one, whatever layout wrote it */
    herd_train_ckpt tck;
    int64_t step = 0, tokens_seen = 0;
    char resumed_from[HERD_PATH_MAX + 256];
    rc = agree(&grid, herd_train_ckpt_open(&tck, c, &grid));
    int resumed = rc == 0 ? herd_train_ckpt_resume(&tck, c, &grid, &model, &fsdp, data, &step,
                                                   &tokens_seen, resumed_from, sizeof resumed_from)
                          : -1;
    if (resumed < 0) rc = -1;
    if (root && resumed > 0) printf("resumed from %s\n", resumed_from), fflush(stdout);

    char mpath[HERD_PATH_MAX + 32];
    snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", c->train.out_dir);
    herd_metrics metrics = {0};
    if (root && rc == 0) {
        /* a fresh run starts a fresh file; a resumed one appends */
        rc = herd_metrics_open_fresh(&metrics, mpath, !resumed);
        if (rc == 0 && resumed)
            rc = herd_metrics_event_restart(&metrics, step, (double)time(NULL), 1);
    }
    rc = agree(&grid, rc);
    /* stragglers: every rank's compute time, gathered every straggler_every steps */
    herd_straggler *strag = NULL;
    double compute_since_gather = 0.0;
    if (rc == 0 && c->monitor.straggler_every > 0)
        rc = agree(&grid, herd_straggler_create(&strag, MPI_COMM_WORLD, 4, 1.5));
    char prom_path[HERD_PATH_MAX + 32], strag_path[HERD_PATH_MAX + 32];
    if (c->monitor.prom_file[0]) snprintf(prom_path, sizeof prom_path, "%s", c->monitor.prom_file);
    else snprintf(prom_path, sizeof prom_path, "%s/herd.prom", c->train.out_dir);
    snprintf(strag_path, sizeof strag_path, "%s/stragglers.txt", c->train.out_dir);
    host_batch hb = {0};
    int64_t p_matmul = herd_model_dims_matmul_params(&dims);
    int D = grid.dp, dr = grid.dp_rank;

    while (rc == 0 && (c->train.max_steps == 0 || step < c->train.max_steps) &&
           (c->train.max_tokens == 0 || tokens_seen < c->train.max_tokens)) {
        double t0 = now_s();
        double c0_tp = group_seconds(grid.tp_group, grid.tp_dev) + comm_seconds(model.kv_group),
               c0_dp = group_seconds(grid.dp_group, grid.dp_dev), c0_w = comm_seconds(grid.world),
               c0_cp = group_seconds(grid.cp_group, grid.cp_dev), c0_pp = group_seconds(grid.pp_group, grid.pp_dev);
        const herd_ramp_stage *st = herd_schedule_ramp(c, tokens_seen);
        int T = st->seq_len, B = c->batch.micro_batch;
        /* this DP rank's share of the global batch: sequences [dr*n/D, (dr+1)*n/D) */
        int64_t n_seqs = st->batch_tokens / T, n_local = n_seqs / D, n_micro = n_local / B;
        if (host_batch_reserve(&hb, (size_t)n_local * T)) { rc = -1; break; }
        double td = now_s();
        rc = herd_loader_next(data, T, n_seqs, dr * n_local, n_local, hb.tokens, hb.targets,
                              hb.doc);
        td = now_s() - td;
        if (agree(&grid, rc)) { rc = -1; break; }
        /* the loss is a mean over the valid targets of the whole global batch */
        int64_t n_valid = 0;
        for (size_t i = 0; i < (size_t)n_local * T; i++) n_valid += hb.targets[i] >= 0;
        if (herd_comm_all_reduce(grid.dp_group, &n_valid, 1, HERD_I64, HERD_SUM)) herd_comm_abort(1);

        if (be->mem_peak) be->mem_peak(be, 1); /* the step's peak starts from what is allocated now */
        herd_model_zero_grad(&model);
        if (c->train.overlap_grad_reduce && herd_fsdp_overlap_begin(&fsdp, &model)) herd_comm_abort(1);
        /* bf16: the weights rounded once for all of the step's GEMMs (they
         * change only in the optimizer step, after the bracket) */
        int w16 = bf16 && be->weights_bf16_begin;
        if (w16 && be->weights_bf16_begin(be, model.params, (size_t)model.n_params)) herd_comm_abort(1);
        double loss_sum = 0.0;
        /* the micro-batches through the pipeline schedule (one stage: forward,
         * backward, one after the other); loss summed over the stages */
        int want_sched = opt && opt->print_schedule && c->train.max_steps && step + 1 == c->train.max_steps;
        herd_pipe_stats pst;
        if (herd_pipe_run(&model, hb.tokens, hb.targets, hb.doc, (int)n_micro, B, T,
                          (float)(1.0 / (double)n_valid), &loss_sum, want_sched ? &pst : NULL))
            herd_comm_abort(1);
        if (w16) be->weights_bf16_end(be);
        if (want_sched) {
            if (grid.dp_rank == 0 && grid.cp_rank == 0 && grid.tp_rank == 0 &&
                herd_pipe_print(&model, &pst, (int)n_micro, stdout))
                herd_comm_abort(1);
            herd_pipe_stats_free(&pst);
        }
        if (herd_comm_all_reduce(grid.dp_group, &loss_sum, 1, HERD_F64, HERD_SUM) ||
            (c->train.overlap_grad_reduce
                 ? herd_fsdp_overlap_finish(&fsdp, &model)
                 : herd_model_sync_grads(&model) || herd_fsdp_reduce_grads(&fsdp, &model)))
            herd_comm_abort(1);
        double loss = loss_sum / (double)n_valid, gnorm = 0.0;
        if (herd_fsdp_grad_norm(&fsdp, &model, grid.world, &gnorm)) herd_comm_abort(1);
        if (!isfinite(loss) || !isfinite(gnorm)) { /* the same numbers on every rank */
            if (root)
                fprintf(stderr, "herd: step %lld: loss %g, grad norm %g is not finite; stopping\n",
                        (long long)step, loss, gnorm);
            rc = -1;
            break;
        }
        double lr = herd_schedule_lr(c, step, tokens_seen), ckpt_stall = 0;
        if (herd_train_ckpt_snapshot_wait(&tck, &ckpt_stall)) { rc = -1; break; }
        herd_fsdp_step(&fsdp, &model, c, lr, gnorm);
        if (herd_fsdp_gather_params(&fsdp, &model)) herd_comm_abort(1);
        be->synchronize(be);
        tokens_seen += n_seqs * T;
        step++;

        double dt = now_s() - t0, tps = (double)(n_seqs * T) / dt;
        double mem_peak = be->mem_peak ? (double)be->mem_peak(be, 0) : 0.0;
        double fpt = herd_mfu_flops_per_token(p_matmul, dims.n_layers, T, dims.d_model);
        double tps_dev = tps / grid.world_size; /* MFU is per device */
        herd_step_metrics sm = {
            .step = step, .loss = loss, .lr = lr, .grad_norm = gnorm,
            .tokens_seen = tokens_seen, .batch_tokens = n_seqs * T, .seq_len = T,
            .step_seconds = dt, .tokens_per_second = tps, .tflops = tps_dev * fpt / 1e12,
            .mfu = herd_mfu(tps_dev, fpt, peak), .has_times = 1,
            .has_mem = be->mem_peak != NULL, .mem_peak_bytes = mem_peak};
        /* the step split: communication is the time inside each group's calls
         * (waiting for the slowest peer included); the global reductions of
         * loss, token count and grad norm count as DP */
        double *ts = sm.times.seconds;
        ts[HERD_T_COMM_TP] = group_seconds(grid.tp_group, grid.tp_dev) + comm_seconds(model.kv_group) - c0_tp;
        ts[HERD_T_COMM_DP] = group_seconds(grid.dp_group, grid.dp_dev) - c0_dp + comm_seconds(grid.world) - c0_w;
        ts[HERD_T_COMM_CP] = group_seconds(grid.cp_group, grid.cp_dev) - c0_cp;
        /* pipeline transfers are asynchronous (isend/irecv posted ahead): the
         * time a stage spends in its pp-group waits is idle time waiting for a
         * neighbour stage — the bubble, with any transfer it did not hide */
        ts[HERD_T_BUBBLE] = group_seconds(grid.pp_group, grid.pp_dev) - c0_pp;
        ts[HERD_T_DATA] = td;
        ts[HERD_T_CKPT] = ckpt_stall;
        ts[HERD_T_COMPUTE] = dt - ts[HERD_T_COMM_TP] - ts[HERD_T_COMM_DP] - ts[HERD_T_COMM_CP] -
                             ts[HERD_T_BUBBLE] - td - ckpt_stall;
        sm.times.step = dt;
        /* the step's peak of backend memory, the largest over the ranks; after the
         * time split, whose world-group time must not count this call (not in dt) */
        if (herd_comm_all_reduce(grid.world, &mem_peak, 1, HERD_F64, HERD_MAX)) herd_comm_abort(1);
        sm.mem_peak_bytes = mem_peak;
        if (root) rc = herd_metrics_write(&metrics, &sm);
        compute_since_gather += ts[HERD_T_COMPUTE];
        int n_scores = 0;
        const herd_prom_straggler *scores = NULL;
        if (strag && step % c->monitor.straggler_every == 0) {
            if (herd_straggler_gather(strag, compute_since_gather)) herd_comm_abort(1);
            compute_since_gather = 0.0;
            if (root && herd_straggler_write_hosts(strag, strag_path)) rc = -1;
        }
        if (strag && herd_straggler_n_gathers(strag) > 0)
            scores = herd_straggler_scores(strag, &n_scores);
        if (root && rc == 0) {
            herd_prom_snapshot ps = {
                .step = step, .loss = loss, .grad_norm = gnorm, .lr = lr,
                .tokens_total = tokens_seen, .step_seconds = dt, .tokens_per_second = tps,
                .mfu = sm.mfu, .has_times = 1, .times = sm.times, .checkpoint_seconds = -1,
                .n_stragglers = n_scores, .stragglers = scores};
            rc = herd_prometheus_write(prom_path, &ps);
        }
        if (root && c->train.log_every > 0 && (step % c->train.log_every == 0 || step == 1))
            printf("step %6lld | loss %.4f | lr %.3e | grad norm %.3f | %.0f tok/s | "
                   "%.2f GFLOP/s/rank | mfu %.1f%% | comm %.0f%% | peak mem %.1f MiB\n",
                   (long long)step, loss, lr, gnorm, tps, tps_dev * fpt / 1e9, 100 * sm.mfu,
                   100 * (ts[HERD_T_COMM_TP] + ts[HERD_T_COMM_DP] + ts[HERD_T_COMM_CP] + ts[HERD_T_BUBBLE]) /
                       dt, mem_peak / 1048576.0), fflush(stdout);
        int last = (c->train.max_steps && step >= c->train.max_steps) || (c->train.max_tokens && tokens_seen >= c->train.max_tokens);
        if (rc == 0 && val && c->train.eval_every > 0 && (step % c->train.eval_every == 0 || last))
            rc = log_eval(&metrics, &model, val, c, T, step, root);
        if (rc == 0 && c->data.n_sources > 0 && c->train.eval_every > 0 && (step % c->train.eval_every == 0 || last))
            rc = log_eval_sources(&metrics, &model, data, c, T, step, root);
        rc = agree(&grid, rc);
        /* checkpoint every ckpt_every steps, at the end, and when a signal
         * asks every rank to stop (SIGUSR1 before the time limit, SIGTERM) */
        if (rc == 0 && tck.writer && herd_ckpt_poll(tck.writer)) rc = -1;
        int stop = rc == 0 ? herd_ckpt_stopper_check(tck.stopper) : 0;
        if (stop < 0) rc = -1, stop = 0;
        if (rc == 0 && tck.writer && tck.last_saved != step &&
            (step % c->checkpoint.every == 0 || last || stop)) {
            double stall = 0;
            rc = agree(&grid, herd_train_ckpt_save(&tck, c, &grid, &model, &fsdp, data, step,
                                                   tokens_seen, &stall));
            if (rc == 0 && root)
                rc = herd_metrics_event_checkpoint(&metrics, step, (double)time(NULL), stall, 0.0);
        }
        herd_watchdog_beat(step);
        if (rc == 0 && stop) {
            herd_watchdog_commit(1);
            if (tck.writer && herd_ckpt_wait(tck.writer)) rc = -1;
            herd_watchdog_commit(0);
            if (root)
                printf("stopping at step %lld on signal %d: checkpoint %s; exit %d (requeue)\n",
                       (long long)step, herd_ckpt_stopper_signal(tck.stopper),
                       tck.writer && rc == 0 ? "committed" : "NOT written (checkpoint.every 0)",
                       HERD_EXIT_REQUEUE), fflush(stdout);
            if (rc == 0) rc = HERD_EXIT_REQUEUE;
            break;
        }
    }
    herd_watchdog_commit(1); /* the last checkpoint commits */
    if (herd_train_ckpt_close(&tck) && rc == 0) rc = -1;
    herd_watchdog_commit(0);
    if (rc == 0 && opt && opt->dump_params) rc = agree(&grid, dump_params(&model, &grid, opt->dump_params));
    if (rc == 0 && grid.pp > 1) { /* activation memory per stage: slots held at once */
        int32_t *peaks = calloc((size_t)grid.pp, sizeof(int32_t)), mine = model.peak_slots;
        size_t *cnt = malloc(sizeof(size_t) * (size_t)grid.pp);
        for (int p = 0; cnt && p < grid.pp; p++) cnt[p] = 1;
        if (!peaks || !cnt || herd_comm_all_gather(grid.pp_group, &mine, peaks, cnt, HERD_I32))
            herd_comm_abort(1);
        if (root) {
            printf("pipeline: peak activations per stage (micro-batch x chunk slots of one "
                   "step):");
            for (int p = 0; p < grid.pp; p++) printf(" %d", peaks[p]);
            if (model.n_chunks == 1) printf(" (1F1B bound: pp = %d)\n", grid.pp);
            else printf(" (interleaved: each slot holds one chunk, 1/%d of a stage's layers)\n",
                        model.n_chunks);
        }
        free(peaks);
        free(cnt);
    }
    if (rc == 0 && root)
        printf("done: %lld steps, %lld tokens; metrics in %s\n", (long long)step,
               (long long)tokens_seen, mpath);
    free(hb.tokens); free(hb.targets); free(hb.doc);
    herd_straggler_destroy(strag);
    herd_metrics_close(&metrics);
    herd_fsdp_destroy(&fsdp, &model);
    herd_model_destroy(&model);
    herd_loader_close(data);
    herd_data_close(val);
    herd_watchdog_stop();
    herd_grid_destroy(&grid);
    return rc;
}
