/* trainer_step.c — herd_trainer_step and herd_trainer_log (trainer.h): the
 * global batch through the pipeline schedule as the loss of the shared step
 * machinery (train_step.h), and the step's metrics. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "monitoring/mfu.h"
#include "monitoring/prometheus.h"
#include "src/model/schedule.h"
#include "src/parallel/pipeline.h"
#include "src/train/train_step.h"
#include "src/train/trainer.h"
#include "src/train/trainer_dpo.h"
#include "src/train/trainer_rm.h"
#include "monitoring/clock.h"

static double comm_seconds(const herd_comm *c) { return c ? c->seconds : 0.0; }

/* a group's time: its MPI calls and, on CUDA, its NCCL twin's */
static double group_seconds(const herd_comm *mpi, const herd_comm *dev)
{
    return comm_seconds(mpi) + (dev != mpi ? comm_seconds(dev) : 0.0);
}

/* The communication clocks of the groups at the start of a step. */
typedef struct { double tp, dp, world, cp, pp; } comm_clocks;

static void read_clocks(const herd_trainer *t, comm_clocks *k)
{
    const herd_grid *g = &t->grid;
    k->tp = group_seconds(g->tp_group, g->tp_dev) + comm_seconds(t->model.kv_group);
    k->dp = group_seconds(g->dp_group, g->dp_dev);
    k->world = comm_seconds(g->world);
    k->cp = group_seconds(g->cp_group, g->cp_dev);
    k->pp = group_seconds(g->pp_group, g->pp_dev);
}

static int batch_reserve(herd_trainer *t, size_t n)
{
    if (n <= t->batch.cap) return 0;
    free(t->batch.tokens); free(t->batch.targets); free(t->batch.doc);
    t->batch.tokens = malloc(n * sizeof(int32_t));
    t->batch.targets = malloc(n * sizeof(int32_t));
    t->batch.doc = malloc(n * sizeof(int32_t));
    t->batch.cap = n;
    if (t->batch.tokens && t->batch.targets && t->batch.doc) return 0;
    fprintf(stderr, "herd: out of memory for a batch of %zu tokens\n", n);
    return -1;
}

/* This rank's micro-batches of the step. */
typedef struct {
    herd_trainer *t;
    int     n_micro, B, T;
    int64_t n_valid;      /* valid targets of the global batch */
    int     cursor;       /* dpo: the batch's first pair */
    int64_t n_seqs;       /* rows of the global batch */
    int     want_sched;   /* print the pipeline timeline of this step */
} pipe_batch;

/* The micro-batches through the pipeline schedule (one stage: forward,
 * backward, one after the other); stats[0]: the loss summed over the stages. */
static int pipe_loss(void *ctx, herd_model *m, double *stats)
{
    pipe_batch *b = ctx;
    herd_trainer *t = b->t;
    const herd_backend *be = t->be;
    /* bf16: the weights rounded once for all of the step's GEMMs (they
     * change only in the optimizer step, after the bracket) */
    int w16 = t->bf16 && be->weights_bf16_begin;
    if (w16 && be->weights_bf16_begin(be, m->params, (size_t)m->n_params)) herd_comm_abort(1);
    stats[0] = 0.0;
    herd_pipe_stats pst;
    /* dpo, rm: the sequence loss is already the mean over the global batch's pairs */
    float scale = t->dpo || t->rm ? 1.0f : (float)(1.0 / (double)b->n_valid);
    if (t->dpo) herd_trainer_dpo_begin(t->dpo, t, b->cursor, t->grid.dp_rank * (b->n_seqs / t->grid.dp), b->n_seqs);
    if (t->rm) herd_trainer_rm_begin(t->rm, t, b->n_seqs);
    if (herd_pipe_run(m, t->batch.tokens, t->batch.targets, t->batch.doc, b->n_micro, b->B, b->T,
                      scale, &stats[0], b->want_sched ? &pst : NULL))
        herd_comm_abort(1);
    if (t->dpo) herd_trainer_dpo_end(t->dpo, t);
    if (t->rm) herd_trainer_rm_end(t->rm, t);
    if (w16) be->weights_bf16_end(be);
    if (b->want_sched) {
        const herd_grid *g = &t->grid;
        if (g->dp_rank == 0 && g->cp_rank == 0 && g->tp_rank == 0 &&
            herd_pipe_print(m, &pst, b->n_micro, stdout))
            herd_comm_abort(1);
        herd_pipe_stats_free(&pst);
    }
    return 0;
}

/* The step's metrics once its update is applied: throughput, MFU, the time
 * split, the peak memory. */
static void step_metrics(herd_trainer *t, herd_step_metrics *sm, double t0, const comm_clocks *k0,
                         double td, double ckpt_stall)
{
    const herd_grid *g = &t->grid;
    const herd_backend *be = t->be;
    herd_model_dims dims;
    herd_model_dims_from_config(&dims, &t->c->model);
    int64_t p_matmul = herd_model_dims_matmul_params(&dims);
    int T = sm->seq_len;
    double dt = herd_now_s() - t0, tps = (double)sm->batch_tokens / dt;
    double mem_peak = be->mem_peak ? (double)be->mem_peak(be, 0) : 0.0;
    double fpt = herd_mfu_flops_per_token(p_matmul, dims.n_layers, T, dims.d_model);
    double tps_dev = tps / g->world_size; /* MFU is per device */
    sm->step_seconds = dt, sm->tokens_per_second = tps, sm->tflops = tps_dev * fpt / 1e12;
    sm->mfu = herd_mfu(tps_dev, fpt, t->peak_tflops), sm->has_times = 1;
    sm->has_mem = be->mem_peak != NULL, sm->mem_peak_bytes = mem_peak;
    /* the step split: communication is the time inside each group's calls
     * (waiting for the slowest peer included); the global reductions of
     * loss, token count and grad norm count as DP */
    comm_clocks k;
    read_clocks(t, &k);
    double *ts = sm->times.seconds;
    ts[HERD_T_COMM_TP] = k.tp - k0->tp;
    ts[HERD_T_COMM_DP] = k.dp - k0->dp + k.world - k0->world;
    ts[HERD_T_COMM_CP] = k.cp - k0->cp;
    /* pipeline transfers are asynchronous (isend/irecv posted ahead): the
     * time a stage spends in its pp-group waits is idle time waiting for a
     * neighbour stage — the bubble, with any transfer it did not hide */
    ts[HERD_T_BUBBLE] = k.pp - k0->pp;
    ts[HERD_T_DATA] = td;
    ts[HERD_T_CKPT] = ckpt_stall;
    ts[HERD_T_COMPUTE] = dt - ts[HERD_T_COMM_TP] - ts[HERD_T_COMM_DP] - ts[HERD_T_COMM_CP] -
                         ts[HERD_T_BUBBLE] - td - ckpt_stall;
    sm->times.step = dt;
    /* the step's peak of backend memory, the largest over the ranks; after the
     * time split, whose world-group time must not count this call (not in dt) */
    if (herd_comm_all_reduce(g->world, &mem_peak, 1, HERD_F64, HERD_MAX)) herd_comm_abort(1);
    sm->mem_peak_bytes = mem_peak;
}

int herd_trainer_step(herd_trainer *t, herd_step_metrics *out)
{
    const herd_config *c = t->c;
    herd_grid *g = &t->grid;
    double t0 = herd_now_s();
    comm_clocks k0;
    read_clocks(t, &k0);
    const herd_ramp_stage *st = herd_schedule_ramp(c, t->tokens_seen);
    int T = st->seq_len, B = c->batch.micro_batch;
    /* this DP rank's share of the global batch: sequences [dr*n/D, (dr+1)*n/D) */
    int64_t n_seqs = st->batch_tokens / T, n_local = n_seqs / g->dp, n_micro = n_local / B;
    if (batch_reserve(t, (size_t)n_local * T)) return -1;
    int cursor = t->dpo ? herd_chat_batch_cursor(t->chat) : 0;
    double td = herd_now_s();
    int rc = t->chat ? herd_chat_batch_next(t->chat, T, n_seqs, g->dp_rank * n_local, n_local,
                                            t->batch.tokens, t->batch.targets, t->batch.doc)
                     : herd_loader_next(t->data, T, n_seqs, g->dp_rank * n_local, n_local,
                                        t->batch.tokens, t->batch.targets, t->batch.doc);
    td = herd_now_s() - td;
    if (herd_trainer_agree(t, rc)) return -1;
    /* the loss is a mean over the valid targets of the whole global batch */
    int64_t n_valid = 0;
    for (size_t i = 0; i < (size_t)n_local * T; i++) n_valid += t->batch.targets[i] >= 0;
    if (herd_comm_all_reduce(g->dp_group, &n_valid, 1, HERD_I64, HERD_SUM)) herd_comm_abort(1);

    if (t->be->mem_peak) t->be->mem_peak(t->be, 1); /* the step's peak starts from what is allocated now */
    pipe_batch pb = {t, (int)n_micro, B, T, n_valid, cursor, n_seqs,
                     t->opt && t->opt->print_schedule && c->train.max_steps && t->step + 1 == c->train.max_steps};
    herd_step_engine e = {&t->model, c, g->dp_group, &t->fsdp, g->world, c->train.overlap_grad_reduce, NULL};
    double loss_sum = 0.0, gnorm = 0.0;
    herd_step_backward(&e, pipe_loss, &pb, &loss_sum, 1, &gnorm);
    double loss = t->dpo || t->rm ? loss_sum : loss_sum / (double)n_valid;
    if (!isfinite(loss) || !isfinite(gnorm)) { /* the same numbers on every rank */
        if (t->root)
            fprintf(stderr, "herd: step %lld: loss %g, grad norm %g is not finite; stopping\n",
                    (long long)t->step, loss, gnorm);
        return -1;
    }
    double lr = herd_schedule_lr(c, t->step, t->tokens_seen), ckpt_stall = 0;
    if (herd_train_ckpt_snapshot_wait(&t->ckpt, &ckpt_stall)) return -1;
    herd_step_update(&e, lr, gnorm);
    t->tokens_seen += n_seqs * T;
    t->step++;
    *out = (herd_step_metrics){.step = t->step, .loss = loss, .lr = lr, .grad_norm = gnorm,
                               .tokens_seen = t->tokens_seen, .batch_tokens = n_seqs * T, .seq_len = T};
    step_metrics(t, out, t0, &k0, td, ckpt_stall);
    return 0;
}

int herd_trainer_chat_replay(herd_trainer *t)
{
    int64_t tokens = 0;
    for (int64_t s = 0; s < t->step; s++) { /* the batch shapes the steps had */
        const herd_ramp_stage *st = herd_schedule_ramp(t->c, tokens);
        int64_t n = st->batch_tokens / st->seq_len;
        if (herd_chat_batch_next(t->chat, st->seq_len, n, 0, 0, NULL, NULL, NULL)) return -1;
        tokens += n * st->seq_len;
    }
    return 0;
}

int herd_trainer_log(herd_trainer *t, const herd_step_metrics *sm)
{
    const herd_config *c = t->c;
    int rc = t->root ? herd_metrics_write(&t->metrics, sm) : 0;
    const double *ts = sm->times.seconds;
    t->compute_since_gather += ts[HERD_T_COMPUTE];
    int n_scores = 0;
    const herd_prom_straggler *scores = NULL;
    if (t->strag && t->step % c->monitor.straggler_every == 0) {
        if (herd_straggler_gather(t->strag, t->compute_since_gather)) herd_comm_abort(1);
        t->compute_since_gather = 0.0;
        if (t->root && herd_straggler_write_hosts(t->strag, t->strag_path)) rc = -1;
    }
    if (t->strag && herd_straggler_n_gathers(t->strag) > 0)
        scores = herd_straggler_scores(t->strag, &n_scores);
    if (t->root && rc == 0) {
        herd_prom_snapshot ps = {
            .step = t->step, .loss = sm->loss, .grad_norm = sm->grad_norm, .lr = sm->lr,
            .tokens_total = t->tokens_seen, .step_seconds = sm->step_seconds,
            .tokens_per_second = sm->tokens_per_second, .mfu = sm->mfu, .has_times = 1,
            .times = sm->times, .checkpoint_seconds = -1, .n_stragglers = n_scores,
            .stragglers = scores};
        rc = herd_prometheus_write(t->prom_path, &ps);
    }
    if (t->root && c->train.log_every > 0 && (t->step % c->train.log_every == 0 || t->step == 1)) {
        herd_model_dims d;
        herd_model_dims_from_config(&d, &c->model);
        double fpt = herd_mfu_flops_per_token(herd_model_dims_matmul_params(&d), d.n_layers,
                                              sm->seq_len, d.d_model);
        double tps_dev = sm->tokens_per_second / t->grid.world_size, dt = sm->step_seconds;
        printf("step %6lld | loss %.4f | lr %.3e | grad norm %.3f | %.0f tok/s | "
               "%.2f GFLOP/s/rank | mfu %.1f%% | comm %.0f%% | peak mem %.1f MiB\n",
               (long long)t->step, sm->loss, sm->lr, sm->grad_norm, sm->tokens_per_second,
               tps_dev * fpt / 1e9, 100 * sm->mfu,
               100 * (ts[HERD_T_COMM_TP] + ts[HERD_T_COMM_DP] + ts[HERD_T_COMM_CP] + ts[HERD_T_BUBBLE]) / dt,
               sm->mem_peak_bytes / 1048576.0), fflush(stdout);
    }
    return rc;
}
