/* annotate.c — preference pairs on the current model's own samples, as the
 * paper collects them each round (annotators rank the latest models'
 * responses and edit the chosen one). The annotator here is the exact answer:
 * the data holds conversations whose last assistant message is the
 * reference; K samples per prompt; a prompt with a wrong sample gives the pair
 * (chosen: the reference — a correct sample equals it —, rejected: the first
 * non-empty wrong sample); a prompt whose K samples are all right (or wrong
 * only by being empty) gives none. */
#include <stdlib.h>
#include <string.h>
#include "src/post/samples.h"
#include "src/post/sampling.h"

typedef struct {
    double right, samples, pairs, all_right, empty;
} ann_counts;

/* Prompt c's k samples against its reference; a pair line to so. */
static void annotate_prompt(FILE *so, const herd_chat *c, char **texts, int k, ann_counts *n)
{
    const char *want, *got;
    size_t nw, ng;
    herd_post_trim(c->msgs[c->n - 1].content, &want, &nw);
    int wrong = -1;
    for (int s = 0; s < k; s++) {
        herd_post_trim(texts[s], &got, &ng);
        int ok = nw == ng && !memcmp(want, got, nw);
        n->right += ok, n->samples++;
        /* an empty sample (the eot first) is wrong but has no token DPO can score */
        if (!ok && ng > 0 && wrong < 0) wrong = s;
        if (!ok && ng == 0) n->empty++;
    }
    if (wrong < 0) {
        n->all_right++;
        return;
    }
    fprintf(so, "{\"prompt\":");
    herd_post_write_messages(so, c, herd_post_prompt_len(c), 0);
    fprintf(so, ",\"chosen\":");
    herd_post_json_str(so, want, nw);
    fprintf(so, ",\"rejected\":");
    herd_post_trim(texts[wrong], &got, &ng);
    herd_post_json_str(so, got, ng);
    fprintf(so, "}\n");
    n->pairs++;
}

/* 0, or -1 with a message naming the line when a conversation lacks its reference. */
static int check_references(const herd_sampling_job *j, const char *data)
{
    for (int i = 0; i < j->n; i++)
        if (j->chats[i].n < 2 || j->chats[i].msgs[j->chats[i].n - 1].role != HERD_ROLE_ASSISTANT) {
            fprintf(stderr, "herd post annotate: %s: line %d: messages: the last message must be the "
                    "assistant's reference answer\n", data, i + 1);
            return -1;
        }
    return 0;
}

static int ann_loop(herd_sampling_job *j, herd_model *m, const herd_sampling_args *a, FILE *so,
                    ann_counts *cnt)
{
    int n = j->n, k = a->k, chunk = a->batch / k > 0 ? a->batch / k : 1, rc = 0;
    herd_gen_opts o = {a->max_new, a->temperature, a->top_p, a->seed, j->e.eot_id, 1, 0};
    char **texts = calloc((size_t)chunk * k, sizeof *texts);
    herd_chat_tokens *prompts = calloc((size_t)chunk, sizeof *prompts);
    int64_t c0, cn;
    herd_gen_layout_share(&j->g, (n + chunk - 1) / chunk, &c0, &cn);
    for (int first = (int)c0 * chunk; first < n && first < (c0 + cn) * chunk && !rc; first += chunk) {
        int mm = n - first < chunk ? n - first : chunk;
        o.seed = a->seed + (uint64_t)first; /* the prompt index decides the samples, not the rank */
        if ((rc = herd_post_sample_chunk(&j->e, m, j->chats, first, mm, k, &o, texts, prompts, NULL)))
            break;
        for (int i = 0; i < mm; i++) {
            annotate_prompt(so, &j->chats[first + i], texts + (size_t)i * k, k, cnt);
            for (int s = 0; s < k; s++) free(texts[i * k + s]), texts[i * k + s] = NULL;
            herd_chat_tokens_free(&prompts[i]);
        }
    }
    free(texts);
    free(prompts);
    return rc;
}

int herd_post_annotate_pairs(herd_sampling_args *a, const herd_post_dp *dp)
{
    herd_sampling_job j;
    herd_model m;
    int rc = herd_sampling_open(&j, a, a->data, dp);
    int bad = rc || check_references(&j, a->data);
    int have_m = !bad && !(bad = herd_gen_model_open(&m, &j.e, &j.g, a->weights));
    FILE *fo = NULL;
    if (!bad && dp->rank == 0 && !(fo = fopen(a->out, "w"))) {
        perror(a->out);
        bad = 1;
    }
    char *mo = NULL;
    size_t nmo = 0;
    ann_counts c = {0};
    rc = herd_post_dp_any(dp, bad);
    if (!rc) {
        FILE *so = open_memstream(&mo, &nmo);
        rc = ann_loop(&j, &m, a, so, &c);
        fclose(so);
        if (!j.g.speaker) nmo = 0, memset(&c, 0, sizeof c); /* its replica's speaker has them */
        rc = herd_post_dp_any(dp, rc);
    }
    if (!rc) {
        double g[5] = {c.right, c.samples, c.pairs, c.all_right, c.empty};
        herd_post_dp_sum(dp, g, 5);
        c = (ann_counts){g[0], g[1], g[2], g[3], g[4]};
        if (herd_post_dp_gather_text(dp, mo, nmo, fo)) rc = 1;
    }
    free(mo);
    if (fo && fclose(fo)) rc = 1;
    if (!rc)
        printf("herd post annotate: %s: %d prompts, K %d: %.0f of %.0f samples right (%.4f); %.0f "
               "pairs (reference vs a wrong sample) in %s, %.0f prompts without a non-empty wrong "
               "sample (%.0f empty samples)\n", a->data, j.n, a->k, c.right, c.samples,
               c.samples ? c.right / c.samples : 0.0, c.pairs, a->out, c.all_right, c.empty);
    if (have_m) herd_model_destroy(&m);
    herd_sampling_close(&j);
    return rc ? 1 : 0;
}
