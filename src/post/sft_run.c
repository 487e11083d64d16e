/* sft_run.c — herd_post_sft (post_train.h): supervised fine-tuning on
 * conversations packed into rows, the loss on the assistant's tokens. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "src/model/weights.h"
#include "src/post/post_train.h"

/* Mean per-token loss over every conversation of d, each packed once. */
static double sft_eval(herd_model *m, const herd_sft_data *d, int B, int T)
{
    int32_t *buf = malloc(sizeof(int32_t) * 3 * (size_t)B * T);
    int done = 0;
    double sum = 0;
    int64_t n = 0;
    while (done < d->n) {
        int next = 0; /* pack the rest without wrapping around */
        int placed = herd_chat_pack(d->convs + done, d->n - done, &next, B, T, HERD_MASK_EOT, buf,
                                    buf + B * T, buf + 2 * B * T);
        int64_t nv;
        sum += herd_model_forward(m, buf, buf + B * T, buf + 2 * B * T, B, T, &nv);
        n += nv;
        done += placed;
    }
    free(buf);
    return n ? sum / (double)n : NAN;
}

/* This rank's rows of a step's packed batch. */
typedef struct {
    const int32_t *tk, *tg, *dc;
    int nr, T;
    const herd_post_dp *dp;
    double  loss;   /* out: summed over the global batch */
    int64_t nv;     /* out: target tokens of the global batch */
} sft_batch;

static int sft_loss(void *ctx, herd_model *m, double *stats)
{
    sft_batch *b = ctx;
    int64_t nv;
    double loss = herd_model_forward(m, b->tk, b->tg, b->dc, b->nr, b->T, &nv);
    /* the mean over the target tokens of the GLOBAL batch, as the trainer */
    double g[2] = {loss, (double)nv};
    herd_post_dp_sum(b->dp, g, 2);
    b->loss = g[0], b->nv = (int64_t)g[1];
    if (b->nv) herd_model_backward(m, 1.0f / (float)b->nv);
    return 0;
}

/* The conversations of path (the counts printed). */
static int load_sft(herd_sft_data *d, const char *path, const herd_post_env *e, int print)
{
    int T = e->cfg.model.max_seq_len;
    if (herd_sft_data_load(d, path, e->tok, T)) return -1;
    if (print)
        printf("herd post sft: %s: %lld conversations, %lld kept, %lld skipped (longer than "
               "model.max_seq_len %d)\n", path, (long long)d->stats.lines, (long long)d->stats.kept,
               (long long)d->stats.skipped_long, T);
    return 0;
}

int herd_post_sft(const herd_post_run *a, const herd_post_env *e, const herd_post_dp *dp)
{
    const herd_config *c = &e->cfg;
    int B = c->batch.micro_batch, T = c->model.max_seq_len;
    herd_sft_data d, v = {0};
    if (load_sft(&d, a->data, e, 1)) return 1;
    if (a->val && load_sft(&v, a->val, e, 0)) {
        herd_sft_data_free(&d);
        return 1;
    }
    if (d.n == 0) {
        fprintf(stderr, "herd post sft: %s: no conversation to train on\n", a->data);
        herd_sft_data_free(&d);
        return 1;
    }
    herd_model m;
    herd_adamw opt;
    if (herd_post_model_open(&m, e, a->weights)) return 1;
    herd_adamw_create(&opt, &m);
    herd_step_engine eng;
    herd_post_engine(&eng, &m, &opt, c, dp);
    /* one epoch: the packed rows needed to place every conversation once */
    int64_t tokens = 0;
    for (int i = 0; i < d.n; i++) tokens += (int64_t)d.convs[i].n;
    int64_t steps = a->steps ? a->steps : c->train.max_steps ? c->train.max_steps
                                        : (tokens + (int64_t)B * T - 1) / ((int64_t)B * T);
    int32_t *buf = malloc(sizeof(int32_t) * 3 * (size_t)B * T);
    int next = 0;
    /* every rank packs the whole global batch (cheap, deterministic) and
     * trains on its rows [r0, r0 + nr) */
    int64_t r0, nr;
    herd_post_dp_share(dp, B, &r0, &nr);
    sft_batch b = {buf + r0 * T, buf + (size_t)B * T + r0 * T, buf + 2 * (size_t)B * T + r0 * T,
                   (int)nr, T, dp, 0, 0};
    if (v.n && dp->rank == 0) printf("herd post sft: step 0 val_loss %.4f\n", sft_eval(&m, &v, B, T));
    for (int64_t s = 0; s < steps; s++) {
        herd_chat_pack(d.convs, d.n, &next, B, T, HERD_MASK_EOT, buf, buf + B * T, buf + 2 * B * T);
        herd_step_run(&eng, sft_loss, &b, NULL, 0, herd_post_lr(a, c, s, steps));
        if (herd_post_log_due(c, s + 1, steps))
            printf("herd post sft: step %lld/%lld loss %.4f (%lld target tokens)\n",
                   (long long)s + 1, (long long)steps, b.nv ? b.loss / b.nv : 0.0, (long long)b.nv);
    }
    if (v.n && dp->rank == 0) printf("herd post sft: final val_loss %.4f\n", sft_eval(&m, &v, B, T));
    int rc = dp->rank == 0 && herd_weights_save(&m, a->out) ? 1 : 0;
    if (!rc) printf("herd post sft: wrote %s\n", a->out);
    free(buf);
    herd_adamw_destroy(&opt, &m);
    herd_model_destroy(&m);
    herd_sft_data_free(&d);
    herd_sft_data_free(&v);
    return rc;
}
