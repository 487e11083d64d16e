/* trainer_dpo.c — see trainer_dpo.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "checkpoint/safe_file.h"
#include "src/model/schedule.h"
#include "src/parallel/pipeline.h"
#include "src/train/trainer_dpo.h"

#define REF_MAGIC "HERDDPO1"

struct herd_trainer_dpo {
    double  *ref;         /* [2 * n_pairs]: chosen, rejected of pair k */
    int      n_pairs;
    double   beta, nll_coef;
    /* the batch in flight */
    int      cursor, record;  /* record: the reference pass writes ref */
    int64_t  row_base, n_global;
};

static double log_sigmoid(double z) { return z >= 0 ? -log1p(exp(-z)) : z - log1p(exp(z)); }
static double sigmoid(double z) { return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z)); }

/* herd_seq_loss_fn over the pairs of a micro-batch (B even: a pair never splits) */
static double dpo_seq_loss(void *ctx, int row0, const double *logp, const int64_t *n_tok, int B,
                           float *w)
{
    herd_trainer_dpo *d = ctx;
    double P = (double)(d->n_global / 2), loss = 0.0;
    for (int b = 0; b + 1 < B; b += 2) {
        int64_t k = d->cursor + (d->row_base + row0 + b) / 2; /* unwrapped pair index */
        w[b] = w[b + 1] = 0.0f;
        if (d->record) { /* each pair once: a wrapped repeat is the same pair again */
            if (k < d->n_pairs) d->ref[2 * k] = logp[b], d->ref[2 * k + 1] = logp[b + 1];
            continue;
        }
        const double *rho = d->ref + 2 * (k % d->n_pairs);
        double z = d->beta * ((logp[b] - rho[0]) - (logp[b + 1] - rho[1]));
        double nll = n_tok[b] ? -logp[b] / (double)n_tok[b] : 0.0;
        loss += (-log_sigmoid(z) + d->nll_coef * nll) / P;
        /* d loss / d (summed token loss = -logp) of each row */
        w[b] = (float)((d->beta * sigmoid(-z) + (n_tok[b] ? d->nll_coef / (double)n_tok[b] : 0.0)) / P);
        w[b + 1] = (float)(-d->beta * sigmoid(-z) / P);
    }
    return loss;
}

void herd_trainer_dpo_begin(herd_trainer_dpo *d, herd_trainer *t, int cursor, int64_t row_base,
                            int64_t n_global)
{
    d->cursor = cursor, d->row_base = row_base, d->n_global = n_global;
    t->model.seq_loss = dpo_seq_loss;
    t->model.seq_loss_ctx = d;
}

void herd_trainer_dpo_end(herd_trainer_dpo *d, herd_trainer *t)
{
    (void)d;
    t->model.seq_loss = NULL;
    t->model.seq_loss_ctx = NULL;
}

static void ref_path(const herd_trainer *t, char *path, size_t n)
{
    snprintf(path, n, "%s/dpo_reference.bin", t->c->train.out_dir);
}

/* 1: read (header: magic, the pair count), 0: absent, -1: unusable. Local. */
static int ref_read(herd_trainer_dpo *d, const char *path)
{
    if (access(path, F_OK) != 0) return 0;
    int fd = herd_safe_open_read(path);
    if (fd < 0) return -1;
    char magic[8];
    int64_t n = -1;
    size_t len = sizeof(double) * 2 * (size_t)d->n_pairs;
    int ok = read(fd, magic, 8) == 8 && !memcmp(magic, REF_MAGIC, 8) &&
             read(fd, &n, sizeof n) == (ssize_t)sizeof n && n == d->n_pairs &&
             read(fd, d->ref, len) == (ssize_t)len;
    close(fd);
    if (!ok)
        fprintf(stderr, "herd: %s: not the reference log-probabilities of post.data's %d pairs "
                "(remove it to compute them again)\n", path, d->n_pairs);
    return ok ? 1 : -1;
}

static int ref_write(const herd_trainer_dpo *d, const char *path)
{
    size_t len = 16 + sizeof(double) * 2 * (size_t)d->n_pairs;
    char *buf = malloc(len);
    if (!buf) return -1;
    int64_t n = d->n_pairs;
    memcpy(buf, REF_MAGIC, 8), memcpy(buf + 8, &n, 8);
    memcpy(buf + 16, d->ref, len - 16);
    int rc = herd_safe_write(path, buf, len);
    free(buf);
    return rc;
}

/* The reference pass: every pair once through the pipeline in the shape of
 * the first ramp stage, with weights 0 (no gradient); each pair's numbers are
 * on one DP rank's last pipeline stage, then summed over DP and PP. */
static int ref_compute(herd_trainer_dpo *d, herd_trainer *t)
{
    const herd_config *c = t->c;
    const herd_grid *g = &t->grid;
    const herd_ramp_stage *st = herd_schedule_ramp(c, 0);
    int T = st->seq_len, B = c->batch.micro_batch;
    int64_t n_seqs = st->batch_tokens / T, n_local = n_seqs / g->dp, n_micro = n_local / B;
    size_t n = (size_t)n_local * T;
    int32_t *buf = malloc(sizeof(int32_t) * 3 * n);
    if (!buf) return -1;
    const herd_backend *be = t->be;
    int w16 = t->bf16 && be->weights_bf16_begin; /* the reference as the policy's forward sees it */
    if (w16 && be->weights_bf16_begin(be, t->model.params, (size_t)t->model.n_params)) herd_comm_abort(1);
    d->record = 1;
    herd_chat_batch_set_cursor(t->chat, 0);
    int rc = 0;
    for (int64_t k = 0; rc == 0 && k < d->n_pairs; k += n_seqs / 2) {
        rc = herd_chat_batch_next(t->chat, T, n_seqs, g->dp_rank * n_local, n_local, buf, buf + n,
                                  buf + 2 * n);
        if (rc) break;
        herd_trainer_dpo_begin(d, t, (int)k, g->dp_rank * n_local, n_seqs);
        double loss;
        if (herd_pipe_run(&t->model, buf, buf + n, buf + 2 * n, (int)n_micro, B, T, 1.0f, &loss, NULL))
            herd_comm_abort(1);
        herd_trainer_dpo_end(d, t);
    }
    if (w16) be->weights_bf16_end(be);
    herd_model_zero_grad(&t->model);
    herd_chat_batch_set_cursor(t->chat, 0);
    d->record = 0;
    free(buf);
    if (rc) return rc;
    /* TP and CP ranks hold the same numbers; the other DP ranks and stages zeros */
    if (g->dp_group && herd_comm_all_reduce(g->dp_group, d->ref, 2 * (size_t)d->n_pairs, HERD_F64, HERD_SUM))
        herd_comm_abort(1);
    if (g->pp_group && herd_comm_all_reduce(g->pp_group, d->ref, 2 * (size_t)d->n_pairs, HERD_F64, HERD_SUM))
        herd_comm_abort(1);
    return 0;
}

int herd_trainer_dpo_open(herd_trainer_dpo **out, herd_trainer *t)
{
    herd_trainer_dpo *d = *out = calloc(1, sizeof *d);
    if (!d) return herd_trainer_agree(t, -1);
    d->n_pairs = herd_chat_batch_n_pairs(t->chat);
    d->beta = t->c->post.dpo_beta, d->nll_coef = t->c->post.dpo_nll_coef;
    d->ref = calloc(2 * (size_t)d->n_pairs, sizeof(double));
    if (herd_trainer_agree(t, d->ref ? 0 : -1)) return -1;
    char path[HERD_PATH_MAX + 32];
    ref_path(t, path, sizeof path);
    int found = ref_read(d, path);
    if (herd_trainer_agree(t, found < 0 ? -1 : 0)) return -1;
    int32_t missing = !found; /* on any rank: not a directory they share, compute it */
    if (herd_comm_all_reduce(t->grid.world, &missing, 1, HERD_I32, HERD_MAX)) herd_comm_abort(1);
    if (!missing) {
        if (t->root) printf("dpo: reference log-probabilities of %d pairs from %s\n", d->n_pairs, path);
        return 0;
    }
    memset(d->ref, 0, sizeof(double) * 2 * (size_t)d->n_pairs);
    if (herd_trainer_agree(t, ref_compute(d, t))) return -1;
    int rc = t->root ? ref_write(d, path) : 0;
    if (t->root && rc == 0)
        printf("dpo: reference log-probabilities of %d pairs written to %s\n", d->n_pairs, path);
    fflush(stdout);
    return herd_trainer_agree(t, rc);
}

void herd_trainer_dpo_close(herd_trainer_dpo *d)
{
    if (!d) return;
    free(d->ref);
    free(d);
}
