/* rm_run.c — herd_post_rm (post_train.h): the reward model on preference
 * records, every ranked pair of a record's responses. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "src/model/weights.h"
#include "src/post/post_train.h"
#include "src/post/reward.h"

/* Reward-model rows of records [i, i + n): every response of each. */
static int rm_rows(const herd_pref_data *d, int i, int n, int T, int32_t *tok, int32_t *doc,
                   int *last, int *group, int *rank)
{
    int32_t *tgt = malloc(sizeof(int32_t) * (size_t)T);
    int r = 0;
    for (int k = 0; k < n; k++) {
        const herd_pref *p = &d->items[(i + k) % d->n];
        for (int j = 0; j < p->n_resp; j++, r++) {
            last[r] = herd_chat_row(&p->prompt, &p->resp[j], T, HERD_MASK_EOT, tok + (size_t)r * T,
                                    tgt, doc + (size_t)r * T);
            group[r] = k;
            rank[r] = j;
        }
    }
    free(tgt);
    return r;
}

static int max_resp(const herd_pref_data *d)
{
    int m = 0;
    for (int i = 0; i < d->n; i++)
        if (d->items[i].n_resp > m) m = d->items[i].n_resp;
    return m;
}

static void rm_eval(herd_model *m, const herd_pref_data *d, int head, int T, const char *who,
                    const char *what)
{
    int R = max_resp(d), *last = malloc(sizeof(int) * 3 * R), *group = last + R, *rank = group + R;
    int32_t *tok = malloc(sizeof(int32_t) * 2 * (size_t)R * T), *doc = tok + (size_t)R * T;
    double loss = 0, acc = 0;
    int pairs = 0;
    for (int i = 0; i < d->n; i++) {
        int rows = rm_rows(d, i, 1, T, tok, doc, last, group, rank);
        herd_rm_stats s;
        if (herd_rm_step(m, tok, doc, rows, T, last, group, rank, head, 0, &s)) continue;
        loss += s.loss * s.pairs;
        acc += s.accuracy * s.pairs;
        pairs += s.pairs;
    }
    printf("herd post %s: %s: loss %.4f accuracy %.4f over %d pairs\n", who, what,
           pairs ? loss / pairs : NAN, pairs ? acc / pairs : NAN, pairs);
    free(last);
    free(tok);
}

/* This rank's rows of a step's records. */
typedef struct {
    int32_t *tok, *doc;
    int *last, *group, *rank;
    int rows, T, head;
    const herd_post_dp *dp;
} rm_batch;

/* stats: loss, accuracy */
static int rm_loss(void *ctx, herd_model *m, double *stats)
{
    rm_batch *b = ctx;
    herd_rm_stats st;
    /* the loss is the mean over the pairs of the GLOBAL batch: each rank
     * divides its sums by the global count, and the sums add up */
    double np = herd_rm_count_pairs(b->group, b->rank, b->rows);
    herd_post_dp_sum(b->dp, &np, 1);
    if (herd_post_dp_any(b->dp, herd_rm_step_norm(m, b->tok, b->doc, b->rows, b->T, b->last, b->group,
                                                  b->rank, b->head, 1, (int)np, &st)))
        return 1;
    stats[0] = st.loss, stats[1] = st.accuracy;
    return 0;
}

int herd_post_rm(const herd_post_run *a, const herd_post_env *e, const herd_post_dp *dp)
{
    const herd_config *c = &e->cfg;
    int T = c->model.max_seq_len, head = herd_rm_head_id(e->n_regular);
    herd_pref_data d, v = {0};
    if (herd_post_load_pref(a->data, e, &d, "rm")) return 1;
    if (a->val && herd_post_load_pref(a->val, e, &v, "rm")) return 1;
    int per = c->batch.micro_batch; /* records per step: all their responses */
    int64_t o0, on; /* this rank's records of a step: [o0, o0 + on) of the per */
    herd_post_dp_share(dp, per, &o0, &on);
    int R = (int)on * max_resp(&d);
    int *last = malloc(sizeof(int) * 3 * R), *group = last + R, *rank = group + R;
    int32_t *tok = malloc(sizeof(int32_t) * 2 * (size_t)R * T), *doc = tok + (size_t)R * T;
    herd_model m;
    herd_adamw opt;
    if (herd_post_model_open(&m, e, a->weights)) return 1;
    herd_adamw_create(&opt, &m);
    herd_step_engine eng;
    herd_post_engine(&eng, &m, &opt, c, dp);
    int64_t steps = a->steps ? a->steps : c->train.max_steps ? c->train.max_steps : (d.n + per - 1) / per;
    double run_loss = 0, run_acc = 0;
    int in_window = 0;
    rm_batch b = {tok, doc, last, group, rank, 0, T, head, dp};
    for (int64_t s = 0; s < steps; s++) {
        b.rows = rm_rows(&d, (int)((s * per + o0) % d.n), (int)on, T, tok, doc, last, group, rank);
        double g[2];
        if (herd_step_run(&eng, rm_loss, &b, g, 2, herd_post_lr(a, c, s, steps))) return 1;
        run_loss += g[0], run_acc += g[1], in_window++;
        if (herd_post_log_due(c, s + 1, steps)) {
            printf("herd post rm: step %lld/%lld loss %.4f accuracy %.3f\n", (long long)s + 1,
                   (long long)steps, run_loss / in_window, run_acc / in_window);
            run_loss = run_acc = 0, in_window = 0;
        }
    }
    if (v.n && dp->rank == 0) rm_eval(&m, &v, head, T, "rm", a->val);
    int rc = dp->rank == 0 && herd_weights_save(&m, a->out) ? 1 : 0;
    if (!rc) printf("herd post rm: wrote %s\n", a->out);
    free(last);
    free(tok);
    herd_adamw_destroy(&opt, &m);
    herd_model_destroy(&m);
    herd_pref_data_free(&d);
    herd_pref_data_free(&v);
    return rc;
}

int herd_post_rm_eval(const herd_post_run *a, const herd_post_env *e, const herd_post_dp *dp)
{
    herd_pref_data d;
    herd_model m;
    if (herd_post_load_pref(a->data, e, &d, "rm-eval")) return 1;
    if (herd_post_model_open(&m, e, a->weights)) {
        herd_pref_data_free(&d);
        return 1;
    }
    if (dp->rank == 0)
        rm_eval(&m, &d, herd_rm_head_id(e->n_regular), e->cfg.model.max_seq_len, "rm-eval", a->data);
    herd_model_destroy(&m);
    herd_pref_data_free(&d);
    return 0;
}
