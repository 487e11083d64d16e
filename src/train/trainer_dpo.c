/* trainer_dpo.c — see trainer_dpo.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "checkpoint/ckpt.h"
#include "checkpoint/safe_file.h"
#include "src/model/schedule.h"
#include "src/parallel/pipeline.h"
#include "src/train/trainer_dpo.h"

#define REF_MAGIC "HERDDPO2"
#define REF_HEAD 24 /* magic, pair count, fingerprint */

struct herd_trainer_dpo {
    double  *ref;         /* [2 * n_pairs]: chosen, rejected of pair k */
    int      n_pairs;
    uint64_t fingerprint;  /* of what decides the numbers (rank 0) */
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

/* What decides the rows: the bytes of post.data, its tokenizer and the rows'
 * length. (The starting weights are checked by ref_check.) Rank 0. */
static int ref_fingerprint(herd_trainer_dpo *d, const herd_config *c)
{
    uint64_t h;
    int64_t size;
    if (herd_xxh64_file(c->post.data, &h, &size)) {
        fprintf(stderr, "herd: %s: key 'post.data': cannot read it\n", c->post.data);
        return -1;
    }
    char key[2 * HERD_PATH_MAX + 32];
    int n = snprintf(key, sizeof key, "%s|%s|%d", c->post.tokenizer, c->post.specials,
                     herd_schedule_ramp(c, 0)->seq_len);
    d->fingerprint = herd_xxh64(key, (size_t)n, h);
    return 0;
}

/* The file: magic, the pair count, the fingerprint, then chosen / rejected
 * of each pair in order, appended batch by batch. *done: the whole pairs in it (0: absent);
 * a torn last record is dropped. -1: not this data's file. Rank 0. */
static int ref_read(herd_trainer_dpo *d, const char *path, int64_t *done)
{
    *done = 0;
    if (access(path, F_OK) != 0) return 0;
    int fd = herd_safe_open_read(path);
    if (fd < 0) return -1;
    char magic[8];
    int64_t n = -1, got = 0, want = (int64_t)sizeof(double) * 2 * d->n_pairs;
    uint64_t fp = 0;
    int ok = read(fd, magic, 8) == 8 && !memcmp(magic, REF_MAGIC, 8) &&
             read(fd, &n, sizeof n) == (ssize_t)sizeof n && n == d->n_pairs &&
             read(fd, &fp, sizeof fp) == (ssize_t)sizeof fp && fp == d->fingerprint;
    while (ok && got < want) {
        ssize_t r = read(fd, (char *)d->ref + got, (size_t)(want - got));
        if (r <= 0) break;
        got += r;
    }
    close(fd);
    if (!ok) {
        fprintf(stderr, "herd: %s: not the reference log-probabilities of this post.data's %d "
                "pairs under this starting model and tokenizer (remove it to compute them "
                "again)\n", path, d->n_pairs);
        return -1;
    }
    *done = got / (int64_t)(2 * sizeof(double));
    return 0;
}

/* Open for appending after the first `done` pairs (a new file with its
 * header when none). Rank 0; the descriptor or -1. */
static int ref_append_open(const herd_trainer_dpo *d, const char *path, int64_t done)
{
    int fd = herd_safe_open_append(path, done == 0);
    if (fd < 0) return -1;
    int64_t n = d->n_pairs;
    if (done == 0 ? herd_write_all(fd, REF_MAGIC, 8) || herd_write_all(fd, &n, sizeof n) ||
                        herd_write_all(fd, &d->fingerprint, sizeof d->fingerprint)
                  : ftruncate(fd, REF_HEAD + (off_t)done * 2 * (off_t)sizeof(double))) {
        fprintf(stderr, "herd: %s: cannot write the reference log-probabilities\n", path);
        close(fd);
        return -1;
    }
    return fd;
}

/* One batch of the reference pass from pair k0: every pair in [k0, k1) of
 * it through the pipeline with weights 0 (no gradient); each pair's numbers
 * land on one DP rank's last stage, then are summed over DP and PP. */
static int ref_batch(herd_trainer_dpo *d, herd_trainer *t, int32_t *buf, int64_t k0, int64_t k1)
{
    const herd_config *c = t->c;
    const herd_grid *g = &t->grid;
    const herd_ramp_stage *st = herd_schedule_ramp(c, 0);
    int T = st->seq_len, B = c->batch.micro_batch;
    int64_t n_seqs = st->batch_tokens / T, n_local = n_seqs / g->dp, n = n_local * T;
    herd_chat_batch_set_cursor(t->chat, (int)k0);
    if (herd_chat_batch_next(t->chat, T, n_seqs, g->dp_rank * n_local, n_local, buf, buf + n, buf + 2 * n))
        return -1;
    herd_trainer_dpo_begin(d, t, (int)k0, g->dp_rank * n_local, n_seqs);
    double loss;
    if (herd_pipe_run(&t->model, buf, buf + n, buf + 2 * n, (int)(n_local / B), B, T, 1.0f, &loss, NULL))
        herd_comm_abort(1);
    herd_trainer_dpo_end(d, t);
    double *slice = d->ref + 2 * k0;
    size_t len = 2 * (size_t)(k1 - k0);
    if (g->dp_group && herd_comm_all_reduce(g->dp_group, slice, len, HERD_F64, HERD_SUM)) herd_comm_abort(1);
    if (g->pp_group && herd_comm_all_reduce(g->pp_group, slice, len, HERD_F64, HERD_SUM)) herd_comm_abort(1);
    return 0;
}

/* The batches of pairs [k_from, k_to) through the model as it is now, into
 * d->ref; rank 0 appends each batch's numbers to fd (>= 0). The chat cursor
 * and the gradients are left as they were. Collective. */
static int ref_pass(herd_trainer_dpo *d, herd_trainer *t, int64_t k_from, int64_t k_to, int fd)
{
    const herd_ramp_stage *st = herd_schedule_ramp(t->c, 0);
    int64_t n_seqs = st->batch_tokens / st->seq_len, n = n_seqs / t->grid.dp * st->seq_len;
    int32_t *buf = malloc(sizeof(int32_t) * 3 * (size_t)n);
    if (herd_trainer_agree(t, buf ? 0 : -1)) return -1;
    const herd_backend *be = t->be;
    int w16 = t->bf16 && be->weights_bf16_begin; /* the reference as the policy's forward sees it */
    if (w16 && be->weights_bf16_begin(be, t->model.params, (size_t)t->model.n_params)) herd_comm_abort(1);
    int cursor = herd_chat_batch_cursor(t->chat), rc = 0;
    d->record = 1;
    for (int64_t k = k_from; rc == 0 && k < k_to; k += n_seqs / 2) {
        int64_t k1 = k + n_seqs / 2 < k_to ? k + n_seqs / 2 : k_to;
        rc = herd_trainer_agree(t, ref_batch(d, t, buf, k, k1));
        if (rc == 0 && t->root && fd >= 0)
            rc = herd_write_all(fd, d->ref + 2 * k, sizeof(double) * 2 * (size_t)(k1 - k));
        rc = herd_trainer_agree(t, rc);
    }
    d->record = 0;
    if (w16) be->weights_bf16_end(be);
    herd_model_zero_grad(&t->model);
    herd_chat_batch_set_cursor(t->chat, cursor);
    free(buf);
    return rc;
}

/* Pairs [done, n_pairs) through the starting model, appended to the file
 * batch by batch (a rerun goes on from what is written). Collective. */
static int ref_compute(herd_trainer_dpo *d, herd_trainer *t, const char *path, int64_t done)
{
    int fd = t->root ? ref_append_open(d, path, done) : -1;
    if (herd_trainer_agree(t, t->root && fd < 0 ? -1 : 0)) return -1;
    int rc = ref_pass(d, t, done, d->n_pairs, fd);
    if (t->root && (fsync(fd) || close(fd)) && rc == 0) {
        fprintf(stderr, "herd: %s: cannot write the reference log-probabilities\n", path);
        rc = -1;
    }
    return herd_trainer_agree(t, rc);
}

/* At step 0, numbers already written must be this starting model's: the
 * first batch computed again agrees with them (to the rounding of another
 * layout; other weights miss by far more). Collective. */
static int ref_check(herd_trainer_dpo *d, herd_trainer *t, const char *path, int64_t done)
{
    const herd_ramp_stage *st = herd_schedule_ramp(t->c, 0);
    int64_t k1 = st->batch_tokens / st->seq_len / 2 < done ? st->batch_tokens / st->seq_len / 2 : done;
    double *file = d->ref, worst = 0.0;
    d->ref = calloc(2 * (size_t)d->n_pairs, sizeof(double));
    int rc = d->ref ? ref_pass(d, t, 0, k1, -1) : -1;
    for (int64_t i = 0; rc == 0 && i < 2 * k1; i++) {
        double e = fabs(d->ref[i] - file[i]) / (fabs(file[i]) > 1.0 ? fabs(file[i]) : 1.0);
        if (e > worst) worst = e;
    }
    if (rc == 0 && worst > 1e-3) {
        if (t->root)
            fprintf(stderr, "herd: %s: written by another starting model or data (its first pairs "
                    "differ by %.2g relative from this model's); remove it to compute it again\n",
                    path, worst);
        rc = -1;
    }
    free(d->ref);
    d->ref = file;
    return herd_trainer_agree(t, rc);
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
    /* rank 0 reads what is written and hands it to every rank */
    int64_t done = 0;
    if (herd_trainer_agree(t, t->root && (ref_fingerprint(d, t->c) || ref_read(d, path, &done)) ? -1 : 0))
        return -1;
    herd_comm *w = t->grid.world;
    if (herd_comm_broadcast(w, &done, 1, HERD_I64, 0) ||
        (done && herd_comm_broadcast(w, d->ref, 2 * (size_t)done, HERD_F64, 0)))
        herd_comm_abort(1);
    if (done < d->n_pairs && t->step > 0) { /* the starting weights are gone */
        if (t->root)
            fprintf(stderr, "herd: %s: holds %lld of the %d pairs' reference log-probabilities, but "
                    "the run resumes at step %lld: they need the starting model (start the run "
                    "over from step 0)\n", path, (long long)done, d->n_pairs, (long long)t->step);
        return herd_trainer_agree(t, -1);
    }
    if (done > 0 && t->step == 0 && ref_check(d, t, path, done)) return -1;
    if (done < d->n_pairs) {
        memset(d->ref + 2 * done, 0, sizeof(double) * 2 * (size_t)(d->n_pairs - done));
        if (ref_compute(d, t, path, done)) return -1;
    }
    if (t->root)
        printf("dpo: reference log-probabilities of %d pairs in %s (%lld read, %lld computed by "
               "the starting model)\n", d->n_pairs, path, (long long)done,
               (long long)(d->n_pairs - done)), fflush(stdout);
    return 0;
}

void herd_trainer_dpo_close(herd_trainer_dpo *d)
{
    if (!d) return;
    free(d->ref);
    free(d);
}
