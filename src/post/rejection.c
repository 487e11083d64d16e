/* rejection.c — rejection sampling (see sampling.h): K samples per prompt from
 * the policy, scored by the reward model on the same ranks (a chunk's samples
 * in one batched forward); the best written as an SFT conversation, best vs
 * worst (when they differ) as a preference pair. */
#include <stdlib.h>
#include <string.h>
#include "src/post/reward.h"
#include "src/post/samples.h"
#include "src/post/sampling.h"

/* One chunk's buffers and the run's counts. */
typedef struct {
    herd_sampling_job *j;
    herd_model pol, rm;
    int k, T, head;
    char **texts;
    herd_chat_tokens *prompts, *samples;
    int32_t *tok, *tgt, *doc; /* [chunk * k, T] the rows the reward model scores */
    int *last, *row0;         /* [chunk * k] last token of each row; [chunk] prompt's first row, -1:
                                 a sample does not fit the context */
    double *r;
    FILE *so, *sp;           /* this rank's lines, in memory */
    double kept, skipped, pairs, sum_best, sum_mean;
} rs_state;

/* The rows of the chunk's m prompts, K per prompt whose samples all fit the
 * context (the RM scores exactly the sampled ids); the count. */
static int build_rows(rs_state *s, int m)
{
    int k = s->k, T = s->T, rows = 0;
    for (int i = 0; i < m; i++) {
        s->row0[i] = rows;
        for (int q = 0; q < k && s->row0[i] >= 0; q++) {
            size_t at = (size_t)(rows + q) * T;
            s->last[rows + q] = herd_chat_row(&s->prompts[i], &s->samples[i * k + q], T, HERD_MASK_EOT,
                                              s->tok + at, s->tgt + at, s->doc + at);
            if (s->last[rows + q] < 0) s->row0[i] = -1;
        }
        if (s->row0[i] >= 0) rows += k;
    }
    return rows;
}

/* Prompt i's best and worst sample by the rewards of its rows; counted. */
static void pick(rs_state *s, int i, int *best, int *worst)
{
    const double *r = s->r + s->row0[i];
    double mean = 0;
    *best = *worst = 0;
    for (int q = 0; q < s->k; q++) {
        if (r[q] > r[*best]) *best = q;
        if (r[q] < r[*worst]) *worst = q;
        mean += r[q] / s->k;
    }
    s->sum_best += r[*best], s->sum_mean += mean, s->kept++;
}

static void write_lines(rs_state *s, const herd_chat *c, const char *bt, const char *wt)
{
    int pn = herd_post_prompt_len(c);
    fprintf(s->so, "{\"messages\":");
    herd_post_write_messages(s->so, c, pn, 1);
    fprintf(s->so, "%s{\"role\":\"assistant\",\"content\":", pn ? "," : "");
    herd_post_json_str(s->so, bt, strlen(bt));
    fprintf(s->so, "}]}\n");
    if (!s->sp || !strcmp(bt, wt)) return;
    fprintf(s->sp, "{\"prompt\":");
    herd_post_write_messages(s->sp, c, pn, 0);
    fprintf(s->sp, ",\"chosen\":");
    herd_post_json_str(s->sp, bt, strlen(bt));
    fprintf(s->sp, ",\"rejected\":");
    herd_post_json_str(s->sp, wt, strlen(wt));
    fprintf(s->sp, "}\n");
    s->pairs++;
}

/* Prompts [first, first + m): sample, score, write. */
static int run_chunk(rs_state *s, int first, int m, herd_gen_opts *o)
{
    int rc = herd_post_sample_chunk(&s->j->e, &s->pol, s->j->chats, first, m, s->k, o, s->texts,
                                    s->prompts, s->samples);
    int rows = rc ? 0 : build_rows(s, m); /* the chunk's samples in one forward of the RM */
    if (rows && herd_rm_score(&s->rm, s->tok, s->doc, rows, s->T, s->last, s->head, s->r)) rc = -1;
    for (int i = 0; i < m && !rc; i++) {
        int best, worst;
        if (s->row0[i] < 0) { /* the prompt + a sample exceed the context: counted, not kept */
            s->skipped++;
            continue;
        }
        pick(s, i, &best, &worst);
        write_lines(s, &s->j->chats[first + i], s->texts[i * s->k + best], s->texts[i * s->k + worst]);
    }
    for (int b = 0; b < m * s->k; b++) {
        free(s->texts[b]);
        s->texts[b] = NULL;
        herd_chat_tokens_free(&s->samples[b]);
    }
    for (int i = 0; i < m; i++) herd_chat_tokens_free(&s->prompts[i]);
    return rc;
}

/* Every rank's lines to rank 0 in prompt order, the counts summed; only the
 * speaker of each replica contributes. Then rank 0 closes the files. */
static int gather(rs_state *s, int rc, FILE *fo, FILE *fp, char *mo, size_t nmo, char *mp, size_t nmp)
{
    if (!s->j->g.speaker) nmo = nmp = 0, s->kept = s->skipped = s->pairs = s->sum_best = s->sum_mean = 0;
    rc = herd_post_dp_any(s->j->g.dp, rc);
    if (!rc) {
        double g[5] = {s->kept, s->skipped, s->pairs, s->sum_best, s->sum_mean};
        herd_post_dp_sum(s->j->g.dp, g, 5);
        s->kept = g[0], s->skipped = g[1], s->pairs = g[2], s->sum_best = g[3], s->sum_mean = g[4];
        if (herd_post_dp_gather_text(s->j->g.dp, mo, nmo, fo)) rc = 1;
        if (s->sp && herd_post_dp_gather_text(s->j->g.dp, mp, nmp, fp)) rc = 1;
    }
    if (fo && fclose(fo)) rc = 1;
    if (fp && fclose(fp)) rc = 1;
    return rc;
}

static int rs_loop(rs_state *s, const herd_sampling_args *a, FILE *fo, FILE *fp)
{
    char *mo = NULL, *mp = NULL;
    size_t nmo = 0, nmp = 0;
    s->so = open_memstream(&mo, &nmo), s->sp = a->pairs ? open_memstream(&mp, &nmp) : NULL;
    int n = s->j->n, chunk = a->batch / s->k > 0 ? a->batch / s->k : 1, rc = 0;
    herd_gen_opts o = {a->max_new, a->temperature, a->top_p, a->seed, s->j->e.eot_id, 1, 0};
    int64_t c0, cn; /* this replica's chunks */
    herd_gen_layout_share(&s->j->g, (n + chunk - 1) / chunk, &c0, &cn);
    for (int first = (int)c0 * chunk; first < n && first < (c0 + cn) * chunk && !rc; first += chunk) {
        o.seed = a->seed + (uint64_t)first; /* each chunk its own sample counters */
        rc = run_chunk(s, first, n - first < chunk ? n - first : chunk, &o);
    }
    fclose(s->so);
    if (s->sp) fclose(s->sp);
    rc = gather(s, rc, fo, fp, mo, nmo, mp, nmp);
    free(mo);
    free(mp);
    return rc;
}

static int rs_alloc(rs_state *s, const herd_sampling_args *a)
{
    int k = s->k, chunk = a->batch / k > 0 ? a->batch / k : 1;
    s->T = s->j->e.cfg.model.max_seq_len;
    s->head = herd_rm_head_id(s->j->e.n_regular);
    s->texts = calloc((size_t)chunk * k, sizeof *s->texts);
    s->prompts = calloc((size_t)chunk, sizeof *s->prompts);
    s->samples = calloc((size_t)chunk * k, sizeof *s->samples);
    size_t rows = (size_t)chunk * k;
    s->tok = malloc(sizeof(int32_t) * 3 * rows * s->T);
    s->tgt = s->tok + rows * s->T, s->doc = s->tgt + rows * s->T;
    s->last = malloc(sizeof(int) * rows);
    s->row0 = malloc(sizeof(int) * (size_t)chunk);
    s->r = malloc(sizeof(double) * rows);
    return s->texts && s->prompts && s->samples && s->tok && s->last && s->row0 && s->r ? 0 : -1;
}

static void rs_free(rs_state *s)
{
    free(s->texts), free(s->prompts), free(s->samples), free(s->tok), free(s->last), free(s->row0);
    free(s->r);
}

static void report(const rs_state *s, const herd_sampling_args *a)
{
    double kept = s->kept;
    printf("herd post rs: %d prompts, K %d: kept %.0f best samples (mean reward of the best %.4f "
           "vs of all %.4f), %.0f skipped as longer than model.max_seq_len %d; %s%s%s\n", s->j->n,
           s->k, kept, kept ? s->sum_best / kept : 0.0, kept ? s->sum_mean / kept : 0.0, s->skipped,
           s->T, a->out, a->pairs ? ", pairs in " : "", a->pairs ? a->pairs : "");
    if (a->pairs) printf("herd post rs: %.0f preference pairs (best vs worst) written\n", s->pairs);
}

int herd_post_rejection_sample(herd_sampling_args *a, const herd_post_dp *dp)
{
    herd_sampling_job j;
    rs_state s;
    memset(&s, 0, sizeof s);
    s.j = &j;
    int rc = herd_sampling_open(&j, a, a->prompts, dp);
    int have_pol = !rc && !(rc = herd_gen_model_open(&s.pol, &j.e, &j.g, a->weights));
    int have_rm = have_pol && !(rc = herd_gen_model_open(&s.rm, &j.e, &j.g, a->rm));
    /* the files are rank 0's; every rank writes its lines to memory first */
    FILE *fo = NULL, *fp = NULL;
    int bad = rc != 0;
    if (!bad && dp->rank == 0) {
        fo = fopen(a->out, "w"), fp = a->pairs ? fopen(a->pairs, "w") : NULL;
        if (!fo || (a->pairs && !fp)) {
            perror(fo ? a->pairs : a->out);
            bad = 1;
        }
    }
    s.k = a->k;
    if (!bad && rs_alloc(&s, a)) bad = 1;
    if (herd_post_dp_any(dp, bad)) rc = 1;
    else if (!(rc = rs_loop(&s, a, fo, fp))) report(&s, a);
    else fo = fp = NULL;
    if (rc && fo) fclose(fo);
    if (rc && fp) fclose(fp);
    rs_free(&s);
    if (have_pol) herd_model_destroy(&s.pol);
    if (have_rm) herd_model_destroy(&s.rm);
    herd_sampling_close(&j);
    return rc ? 1 : 0;
}
