/* cmd_post.c — `herd post sft|rm|dpo`: the training steps of a post-training
 * round on the CPU, one process or data-parallel over MPI ranks (below; TP,
 * PP and CP come with the trainer's 4D layout).
 *
 *   herd post sft CONFIG --tokenizer R --data SFT.jsonl [--weights W] --out W2
 *   herd post rm  CONFIG --tokenizer R --data PREF.jsonl [--weights W] --out RM
 *   herd post dpo CONFIG --tokenizer R --data PREF.jsonl --weights W [--ref W0] --out W2
 *        [--beta B] [--nll-coef C]   (default: post.dpo_beta 0.1, post.dpo_nll_coef 0.2)
 *   common: [--steps N] [--lr X] [--val FILE] [--set section.key=value]...
 *
 * Shapes: model.* of CONFIG; micro-batch batch.micro_batch rows (sft: packed
 * sequences of model.max_seq_len tokens; rm: responses; dpo: pairs); AdamW of
 * optim.*, linear warm-up over schedule.warmup_steps (at most a tenth of the
 * steps), then a cosine to optim.min_lr at the last step; steps: --steps, else
 * train.max_steps, else one epoch.
 * rs, eval and demo-data are in cmd_post_rs.c.
 *
 * Under mpirun / srun with N ranks the same commands run data-parallel
 * (src/post/post_dp.h): the global batch stays batch.micro_batch rows / records /
 * pairs per step, each rank takes a contiguous share (micro_batch >= N; an
 * uneven split is fine), the loss is normalised over the global batch, the
 * gradients are summed over the ranks, AdamW runs replicated, and rank 0
 * alone prints, evaluates --val and writes --out. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/data/chat.h"
#include "src/cli/commands.h"
#include "src/post/dpo.h"
#include "src/model/optim.h"
#include "src/post/post_common.h"
#include "src/post/post_dp.h"
#include "src/post/reward.h"
#include "src/model/weights.h"

int herd_post_rs(int argc, char **argv, const herd_post_dp *dp);
int herd_post_eval(int argc, char **argv, const herd_post_dp *dp);
int herd_post_annotate(int argc, char **argv, const herd_post_dp *dp);
int herd_post_demo_data(int argc, char **argv);
int herd_post_average(int argc, char **argv);

typedef struct {
    const char *config, *tokenizer, *data, *weights, *ref, *out, *val;
    char **sets;
    int n_sets;
    int64_t steps;
    double lr, beta, nll_coef;
} post_args;

static int usage(const char *why)
{
    if (why) fprintf(stderr, "herd post: %s\n", why);
    fputs("usage: herd post sft CONFIG --tokenizer R --data SFT.jsonl [--weights W] --out W2\n"
          "       herd post rm  CONFIG --tokenizer R --data PREF.jsonl [--weights W] --out RM\n"
          "       herd post dpo CONFIG --tokenizer R --data PREF.jsonl --weights W [--ref W0] --out W2\n"
          "                [--beta B] [--nll-coef C]   (config: post.dpo_beta, post.dpo_nll_coef)\n"
          "         (common: [--steps N] [--lr X] [--val FILE] [--set section.key=value]...)\n"
          "       herd post rs CONFIG --tokenizer R --prompts F.jsonl --weights W --rm RM --out SFT.jsonl\n"
          "                [--k K] [--temperature T] [--top-p P] [--max-new N] [--pairs PREF.jsonl]\n"
          "       herd post eval CONFIG --tokenizer R --data TEST.jsonl [--weights W] [--max-new N]\n"
          "       herd post annotate CONFIG --tokenizer R --data QA.jsonl --weights W --out PREF.jsonl\n"
          "                [--k K] [--temperature T] [--top-p P] [--seed S]   (pairs on the model's samples)\n"
          "       herd post average CONFIG --tokenizer R --out W.safetensors W1 W2 ...\n"
          "       herd post demo-data --out DIR [--train N] [--test N] [--pref N] [--prompts N] [--digits D] [--seed S]\n", stderr);
    return 2;
}

static int parse(int argc, char **argv, post_args *a)
{
    memset(a, 0, sizeof *a);
    a->sets = calloc(argc, sizeof(char *));
    a->beta = a->nll_coef = -1; /* not given: post.dpo_beta, post.dpo_nll_coef of the config */
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!v && k[0] == '-') return usage("an option is missing its value");
        if (!strcmp(k, "--set")) a->sets[a->n_sets++] = argv[++i];
        else if (!strcmp(k, "--tokenizer")) a->tokenizer = argv[++i];
        else if (!strcmp(k, "--data")) a->data = argv[++i];
        else if (!strcmp(k, "--weights")) a->weights = argv[++i];
        else if (!strcmp(k, "--ref")) a->ref = argv[++i];
        else if (!strcmp(k, "--out")) a->out = argv[++i];
        else if (!strcmp(k, "--val")) a->val = argv[++i];
        else if (!strcmp(k, "--steps")) {
            a->steps = strtoll(argv[++i], &end, 10);
            if (*end || a->steps < 1) return usage("--steps: expected an integer >= 1");
        } else if (!strcmp(k, "--lr") || !strcmp(k, "--beta") || !strcmp(k, "--nll-coef")) {
            double x = strtod(argv[++i], &end);
            if (*end || !(x >= 0)) return usage("--lr, --beta, --nll-coef: expected a number >= 0");
            *(!strcmp(k, "--lr") ? &a->lr : !strcmp(k, "--beta") ? &a->beta : &a->nll_coef) = x;
        } else if (k[0] != '-' && !a->config) a->config = k;
        else {
            fprintf(stderr, "herd post: unexpected argument '%s'\n", k);
            return usage(NULL);
        }
    }
    if (!a->config || !a->data || !a->out) return usage("CONFIG, --data and --out are required");
    return 0;
}

/* Linear warm-up over schedule.warmup_steps (at most a tenth of the run), then a
 * cosine from the peak (--lr, else optim.lr) down to optim.min_lr (scaled by
 * the same factor as the peak) at the last step: the schedule of the run itself,
 * whatever --steps is, so a short run still ends at a low rate. */
static double lr_at(const post_args *a, const herd_config *c, int64_t step, int64_t steps)
{
    double lr = a->lr > 0 ? a->lr : c->optim.lr, lo = c->optim.lr > 0 ? lr * c->optim.min_lr / c->optim.lr : 0;
    int64_t warm = c->schedule.warmup_steps < steps / 10 ? c->schedule.warmup_steps : steps / 10;
    if (step < warm) return lr * (double)(step + 1) / (double)warm;
    double p = steps - 1 > warm ? (double)(step - warm) / (double)(steps - 1 - warm) : 1.0;
    return lo + 0.5 * (lr - lo) * (1.0 + cos(M_PI * p));
}

static void update(herd_adamw *opt, herd_model *m, const herd_config *c, double lr)
{
    double norm = herd_grad_norm(m);
    herd_adamw_step(opt, m, c, lr, norm);
}

/* ---- SFT ------------------------------------------------------------------ */

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

static int run_sft(const post_args *a, const herd_post_env *e, const herd_post_dp *dp)
{
    const herd_config *c = &e->cfg;
    int B = c->batch.micro_batch, T = c->model.max_seq_len;
    herd_sft_data d, v = {0};
    if (herd_sft_data_load(&d, a->data, e->tok, T)) return 1;
    printf("herd post sft: %s: %lld conversations, %lld kept, %lld skipped (longer than "
           "model.max_seq_len %d)\n", a->data, (long long)d.stats.lines, (long long)d.stats.kept,
           (long long)d.stats.skipped_long, T);
    if (a->val && herd_sft_data_load(&v, a->val, e->tok, T)) {
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
    const int32_t *tk = buf + r0 * T, *tg = buf + (size_t)B * T + r0 * T,
                  *dc = buf + 2 * (size_t)B * T + r0 * T;
    if (v.n && dp->rank == 0) printf("herd post sft: step 0 val_loss %.4f\n", sft_eval(&m, &v, B, T));
    for (int64_t s = 0; s < steps; s++) {
        herd_chat_pack(d.convs, d.n, &next, B, T, HERD_MASK_EOT, buf, buf + B * T, buf + 2 * B * T);
        int64_t nv;
        herd_model_zero_grad(&m);
        double loss = herd_model_forward(&m, tk, tg, dc, (int)nr, T, &nv);
        /* the mean over the target tokens of the GLOBAL batch, as the trainer */
        double g[2] = {loss, (double)nv};
        herd_post_dp_sum(dp, g, 2);
        loss = g[0], nv = (int64_t)g[1];
        if (nv) herd_model_backward(&m, 1.0f / (float)nv);
        herd_post_dp_reduce_grads(dp, &m, 1.0);
        update(&opt, &m, c, lr_at(a, c, s, steps));
        if ((s + 1) % (c->train.log_every > 0 ? c->train.log_every : 10) == 0 || s + 1 == steps)
            printf("herd post sft: step %lld/%lld loss %.4f (%lld target tokens)\n",
                   (long long)s + 1, (long long)steps, nv ? loss / nv : 0.0, (long long)nv);
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

/* ---- preference batches --------------------------------------------------- */

static int load_pref(const char *path, const herd_post_env *e, herd_pref_data *d, const char *who)
{
    if (herd_pref_data_load(d, path, e->tok, e->cfg.model.max_seq_len)) return -1;
    printf("herd post %s: %s: %lld records, %lld kept, %lld skipped as identical responses, "
           "%lld skipped as longer than model.max_seq_len %d\n", who, path,
           (long long)d->stats.lines, (long long)d->stats.kept, (long long)d->stats.skipped_same,
           (long long)d->stats.skipped_long, e->cfg.model.max_seq_len);
    if (d->n == 0) {
        fprintf(stderr, "herd post %s: %s: no usable preference record\n", who, path);
        return -1;
    }
    return 0;
}

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

static void rm_eval(herd_model *m, const herd_pref_data *d, int head, int T, const char *what)
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
    printf("herd post rm: %s: loss %.4f accuracy %.4f over %d pairs\n", what,
           pairs ? loss / pairs : NAN, pairs ? acc / pairs : NAN, pairs);
    free(last);
    free(tok);
}

static int run_rm(const post_args *a, const herd_post_env *e, const herd_post_dp *dp)
{
    const herd_config *c = &e->cfg;
    int T = c->model.max_seq_len, head = herd_rm_head_id(e->n_regular);
    herd_pref_data d, v = {0};
    if (load_pref(a->data, e, &d, "rm")) return 1;
    if (a->val && load_pref(a->val, e, &v, "rm")) return 1;
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
    int64_t steps = a->steps ? a->steps : c->train.max_steps ? c->train.max_steps : (d.n + per - 1) / per;
    double run_loss = 0, run_acc = 0;
    int every = c->train.log_every > 0 ? c->train.log_every : 10, in_window = 0;
    for (int64_t s = 0; s < steps; s++) {
        int rows = rm_rows(&d, (int)((s * per + o0) % d.n), (int)on, T, tok, doc, last, group, rank);
        herd_rm_stats st;
        herd_model_zero_grad(&m);
        /* the loss is the mean over the pairs of the GLOBAL batch: each rank
         * divides its sums by the global count, and the sums add up */
        double np = herd_rm_count_pairs(group, rank, rows);
        herd_post_dp_sum(dp, &np, 1);
        if (herd_post_dp_any(dp, herd_rm_step_norm(&m, tok, doc, rows, T, last, group, rank, head,
                                                   1, (int)np, &st)))
            return 1;
        double g[2] = {st.loss, st.accuracy};
        herd_post_dp_sum(dp, g, 2);
        herd_post_dp_reduce_grads(dp, &m, 1.0);
        update(&opt, &m, c, lr_at(a, c, s, steps));
        run_loss += g[0], run_acc += g[1], in_window++;
        if ((s + 1) % every == 0 || s + 1 == steps) {
            printf("herd post rm: step %lld/%lld loss %.4f accuracy %.3f\n", (long long)s + 1,
                   (long long)steps, run_loss / in_window, run_acc / in_window);
            run_loss = run_acc = 0, in_window = 0;
        }
    }
    if (v.n && dp->rank == 0) rm_eval(&m, &v, head, T, a->val);
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

/* ---- DPO ------------------------------------------------------------------ */

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

static int run_dpo(const post_args *a, const herd_post_env *e, const herd_post_dp *dp)
{
    const herd_config *c = &e->cfg;
    int T = c->model.max_seq_len, P = c->batch.micro_batch;
    herd_pref_data d, v = {0};
    if (!a->weights) return usage("dpo: --weights (the SFT model: policy and reference) is required");
    if (load_pref(a->data, e, &d, "dpo")) return 1;
    if (a->val && load_pref(a->val, e, &v, "dpo")) return 1;
    herd_model pol, ref;
    herd_adamw opt;
    if (herd_post_model_open(&pol, e, a->weights)) return 1;
    if (herd_post_model_open(&ref, e, a->ref ? a->ref : a->weights)) return 1;
    herd_adamw_create(&opt, &pol);
    int64_t n_pairs;
    pair_ix *pairs = list_pairs(&d, &n_pairs);
    int64_t steps = a->steps ? a->steps : c->train.max_steps ? c->train.max_steps : (n_pairs + P - 1) / P;
    size_t rows = (size_t)2 * P * T;
    int32_t *tok = malloc(sizeof(int32_t) * 3 * rows), *tgt = tok + rows, *doc = tgt + rows;
    double *rl = malloc(sizeof(double) * 2 * P);
    herd_dpo_opts o = {a->beta >= 0 ? a->beta : e->cfg.post.dpo_beta,
                       a->nll_coef >= 0 ? a->nll_coef : e->cfg.post.dpo_nll_coef};
    printf("herd post dpo: beta %g, nll_coef %g, %lld pairs, %d per step, %lld steps\n", o.beta,
           o.nll_coef, (long long)n_pairs, P, (long long)steps);
    int every = c->train.log_every > 0 ? c->train.log_every : 10, rc = 0, win = 0;
    herd_dpo_stats acc = {0};
    int64_t p0, pn; /* this rank's pairs of a step: [p0, p0 + pn) of the P */
    herd_post_dp_share(dp, P, &p0, &pn);
    for (int64_t s = 0; s < steps && !rc; s++) {
        dpo_batch(&d, pairs, n_pairs, s * P + p0, (int)pn, T, tok, tgt, doc);
        herd_dpo_stats st;
        herd_model_zero_grad(&pol);
        /* the sums over this rank's pn pairs divided by the global P: the
         * shares of the global mean, which add up over the ranks */
        rc = herd_dpo_reference(&ref, tok, tgt, doc, (int)pn, T, rl) ||
             herd_dpo_step_norm(&pol, tok, tgt, doc, (int)pn, T, rl, &o, 1, P, &st);
        if ((rc = herd_post_dp_any(dp, rc))) break;
        double g[4] = {st.loss, st.nll, st.margin, st.accuracy};
        herd_post_dp_sum(dp, g, 4);
        herd_post_dp_reduce_grads(dp, &pol, 1.0);
        update(&opt, &pol, c, lr_at(a, c, s, steps));
        acc.loss += g[0], acc.nll += g[1], acc.margin += g[2], acc.accuracy += g[3];
        win++;
        if ((s + 1) % every == 0 || s + 1 == steps) {
            printf("herd post dpo: step %lld/%lld loss %.4f nll %.4f margin %.4f accuracy %.3f\n",
                   (long long)s + 1, (long long)steps, acc.loss / win, acc.nll / win,
                   acc.margin / win, acc.accuracy / win);
            memset(&acc, 0, sizeof acc);
            win = 0;
        }
    }
    if (!rc && v.n && dp->rank == 0) { /* held-out pairs: the final policy against the reference */
        int64_t vn;
        pair_ix *vp = list_pairs(&v, &vn);
        herd_dpo_stats st, sum = {0};
        int batches = 0;
        for (int64_t first = 0; first < vn && !rc; first += P, batches++) {
            dpo_batch(&v, vp, vn, first, P, T, tok, tgt, doc);
            rc = herd_dpo_reference(&ref, tok, tgt, doc, P, T, rl) ||
                 herd_dpo_step(&pol, tok, tgt, doc, P, T, rl, &o, 0, &st);
            sum.loss += st.loss, sum.margin += st.margin, sum.accuracy += st.accuracy;
        }
        if (!rc && batches)
            printf("herd post dpo: %s: loss %.4f margin %.4f accuracy %.3f (held-out pairs)\n",
                   a->val, sum.loss / batches, sum.margin / batches, sum.accuracy / batches);
        free(vp);
    }
    if (!rc && dp->rank == 0) rc = herd_weights_save(&pol, a->out);
    if (!rc) printf("herd post dpo: wrote %s\n", a->out);
    free(tok);
    free(rl);
    free(pairs);
    herd_adamw_destroy(&opt, &pol);
    herd_model_destroy(&pol);
    herd_model_destroy(&ref);
    herd_pref_data_free(&d);
    herd_pref_data_free(&v);
    return rc ? 1 : 0;
}

int herd_cmd_post(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) return usage(NULL);
    const char *sub = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress lines reach a log file as they happen */
    if (!strcmp(sub, "demo-data")) return herd_post_demo_data(argc - 1, argv + 1);
    if (!strcmp(sub, "average")) return herd_post_average(argc - 1, argv + 1);
    int is_rs = !strcmp(sub, "rs"), is_eval = !strcmp(sub, "eval"), is_ann = !strcmp(sub, "annotate");
    int (*run)(const post_args *, const herd_post_env *, const herd_post_dp *) =
        !strcmp(sub, "sft") ? run_sft : !strcmp(sub, "rm") ? run_rm : !strcmp(sub, "dpo") ? run_dpo : NULL;
    if (!run && !is_rs && !is_eval && !is_ann) {
        fprintf(stderr, "herd post: unknown command '%s'\n", sub);
        return usage(NULL);
    }
    /* the data-parallel job (one process without a launcher); ranks other
     * than 0 keep stderr for their errors but print no progress: rank 0 speaks
     * for the job, with the global numbers */
    herd_post_dp dp;
    if (herd_post_dp_open(&dp)) return 1;
    if (dp.rank != 0 && !freopen("/dev/null", "w", stdout)) perror("herd post: /dev/null");
    int rc;
    if (is_rs || is_eval || is_ann) {
        rc = is_rs    ? herd_post_rs(argc - 1, argv + 1, &dp)
             : is_ann ? herd_post_annotate(argc - 1, argv + 1, &dp)
                      : herd_post_eval(argc - 1, argv + 1, &dp);
        herd_post_dp_close(&dp);
        return rc;
    }
    post_args a;
    rc = parse(argc - 1, argv + 1, &a);
    herd_post_env e;
    if (!rc && herd_post_env_open(&e, a.config, a.n_sets, a.sets, a.tokenizer)) rc = 1;
    if (!rc && e.cfg.batch.micro_batch < dp.size) { /* the same test on every rank: all stop */
        if (dp.rank == 0)
            fprintf(stderr, "herd post %s: %s: key 'batch.micro_batch': %d is fewer than the %d "
                    "ranks (each rank needs at least one row, record or pair of a step)\n", sub,
                    a.config, e.cfg.batch.micro_batch, dp.size);
        herd_post_env_close(&e);
        rc = 1;
    }
    if (!rc) {
        rc = run(&a, &e, &dp);
        herd_post_env_close(&e);
    }
    free(a.sets);
    herd_post_dp_close(&dp);
    return rc;
}
