/* dpo_run.c — herd_post_dpo (post_train.h): DPO of a policy against a
 * frozen reference (dpo.h) on the preference records' pairs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/model/weights.h"
#include "src/post/dpo.h"
#include "src/post/post_train.h"

/* Pair k of the data: (record, worse response), the best response of each
 * record against each worse one, in order. */
typedef struct { int rec, worse; } pair_ix;

static pair_ix *list_pairs(const herd_pref_data *d, int64_t *n)
{
    *n = 0;
    for (int i = 0; i < d->n; i++) *n += d->items[i].n_resp - 1;
    pair_ix *p = malloc(sizeof *p * (size_t)*n);
    int64_t k = 0;
    for (int i = 0; i < d->n; i++)
        for (int j = 1; j < d->items[i].n_resp; j++) p[k++] = (pair_ix){i, j};
    return p;
}

/* P pairs from pair `first` on (wrapping): chosen rows 0..P-1, rejected P..2P-1. */
static void dpo_batch(const herd_pref_data *d, const pair_ix *pairs, int64_t n_pairs, int64_t first,
                      int P, int T, int32_t *tok, int32_t *tgt, int32_t *doc)
{
    for (int p = 0; p < P; p++) {
        pair_ix x = pairs[(first + p) % n_pairs];
        const herd_pref *r = &d->items[x.rec];
        herd_chat_row(&r->prompt, &r->resp[0], T, HERD_MASK_CONTENT, tok + (size_t)p * T,
                      tgt + (size_t)p * T, doc + (size_t)p * T);
        herd_chat_row(&r->prompt, &r->resp[x.worse], T, HERD_MASK_CONTENT,
                      tok + (size_t)(P + p) * T, tgt + (size_t)(P + p) * T, doc + (size_t)(P + p) * T);
    }
}

/* The run's buffers and its two models. */
typedef struct {
    herd_model pol, ref;
    int32_t *tok, *tgt, *doc;
    double  *rl;            /* the reference's log-probabilities of the rows */
    herd_dpo_opts o;
    int      pn, P, T;      /* this rank's pairs of the global P */
    const herd_post_dp *dp;
} dpo_run;

/* stats: loss, nll, margin, accuracy */
static int dpo_loss(void *ctx, herd_model *m, double *stats)
{
    dpo_run *r = ctx;
    herd_dpo_stats st;
    /* the sums over this rank's pn pairs divided by the global P: the
     * shares of the global mean, which add up over the ranks */
    int rc = herd_dpo_reference(&r->ref, r->tok, r->tgt, r->doc, r->pn, r->T, r->rl) ||
             herd_dpo_step_norm(m, r->tok, r->tgt, r->doc, r->pn, r->T, r->rl, &r->o, 1, r->P, &st);
    if ((rc = herd_post_dp_any(r->dp, rc))) return rc;
    stats[0] = st.loss, stats[1] = st.nll, stats[2] = st.margin, stats[3] = st.accuracy;
    return 0;
}

/* Held-out pairs: the final policy against the reference. */
static int dpo_eval(dpo_run *r, const herd_pref_data *v, const char *what)
{
    int64_t vn;
    pair_ix *vp = list_pairs(v, &vn);
    herd_dpo_stats st, sum = {0};
    int batches = 0, rc = 0;
    for (int64_t first = 0; first < vn && !rc; first += r->P, batches++) {
        dpo_batch(v, vp, vn, first, r->P, r->T, r->tok, r->tgt, r->doc);
        rc = herd_dpo_reference(&r->ref, r->tok, r->tgt, r->doc, r->P, r->T, r->rl) ||
             herd_dpo_step(&r->pol, r->tok, r->tgt, r->doc, r->P, r->T, r->rl, &r->o, 0, &st);
        sum.loss += st.loss, sum.margin += st.margin, sum.accuracy += st.accuracy;
    }
    if (!rc && batches)
        printf("herd post dpo: %s: loss %.4f margin %.4f accuracy %.3f (held-out pairs)\n",
               what, sum.loss / batches, sum.margin / batches, sum.accuracy / batches);
    free(vp);
    return rc;
}

/* The training steps; 0, or non-zero when a batch failed. */
static int dpo_train(dpo_run *r, const herd_post_run *a, const herd_config *c, herd_adamw *opt,
                     const herd_pref_data *d, const pair_ix *pairs, int64_t n_pairs, int64_t steps)
{
    herd_step_engine eng;
    herd_post_engine(&eng, &r->pol, opt, c, r->dp);
    int rc = 0, win = 0;
    herd_dpo_stats acc = {0};
    int64_t p0, pn; /* this rank's pairs of a step: [p0, p0 + pn) of the P */
    herd_post_dp_share(r->dp, r->P, &p0, &pn);
    r->pn = (int)pn;
    for (int64_t s = 0; s < steps && !rc; s++) {
        dpo_batch(d, pairs, n_pairs, s * r->P + p0, (int)pn, r->T, r->tok, r->tgt, r->doc);
        double g[4];
        if ((rc = herd_step_run(&eng, dpo_loss, r, g, 4, herd_post_lr(a, c, s, steps)))) break;
        acc.loss += g[0], acc.nll += g[1], acc.margin += g[2], acc.accuracy += g[3];
        win++;
        if (herd_post_log_due(c, s + 1, steps)) {
            printf("herd post dpo: step %lld/%lld loss %.4f nll %.4f margin %.4f accuracy %.3f\n",
                   (long long)s + 1, (long long)steps, acc.loss / win, acc.nll / win,
                   acc.margin / win, acc.accuracy / win);
            memset(&acc, 0, sizeof acc);
            win = 0;
        }
    }
    return rc;
}

int herd_post_dpo(const herd_post_run *a, const herd_post_env *e, const herd_post_dp *dp)
{
    const herd_config *c = &e->cfg;
    dpo_run r = {.P = c->batch.micro_batch, .T = c->model.max_seq_len, .dp = dp};
    herd_pref_data d, v = {0};
    if (herd_post_load_pref(a->data, e, &d, "dpo")) return 1;
    if (a->val && herd_post_load_pref(a->val, e, &v, "dpo")) return 1;
    herd_adamw opt;
    if (herd_post_model_open(&r.pol, e, a->weights)) return 1;
    if (herd_post_model_open(&r.ref, e, a->ref ? a->ref : a->weights)) return 1;
    herd_adamw_create(&opt, &r.pol);
    int64_t n_pairs;
    pair_ix *pairs = list_pairs(&d, &n_pairs);
    int64_t steps = a->steps ? a->steps : c->train.max_steps ? c->train.max_steps : (n_pairs + r.P - 1) / r.P;
    size_t rows = (size_t)2 * r.P * r.T;
    r.tok = malloc(sizeof(int32_t) * 3 * rows), r.tgt = r.tok + rows, r.doc = r.tgt + rows;
    r.rl = malloc(sizeof(double) * 2 * r.P);
    r.o = (herd_dpo_opts){a->beta >= 0 ? a->beta : c->post.dpo_beta,
                          a->nll_coef >= 0 ? a->nll_coef : c->post.dpo_nll_coef};
    printf("herd post dpo: beta %g, nll_coef %g, %lld pairs, %d per step, %lld steps\n", r.o.beta,
           r.o.nll_coef, (long long)n_pairs, r.P, (long long)steps);
    int rc = dpo_train(&r, a, c, &opt, &d, pairs, n_pairs, steps);
    if (!rc && v.n && dp->rank == 0) rc = dpo_eval(&r, &v, a->val);
    if (!rc && dp->rank == 0) rc = herd_weights_save(&r.pol, a->out);
    if (!rc) printf("herd post dpo: wrote %s\n", a->out);
    free(r.tok);
    free(r.rl);
    free(pairs);
    herd_adamw_destroy(&opt, &r.pol);
    herd_model_destroy(&r.pol);
    herd_model_destroy(&r.ref);
    herd_pref_data_free(&d);
    herd_pref_data_free(&v);
    return rc ? 1 : 0;
}
