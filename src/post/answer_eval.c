/* answer_eval.c — exact-answer accuracy (see sampling.h): the greedy
 * response to each conversation's prompt against its last assistant message,
 * white space at both ends ignored. */
#include <stdlib.h>
#include <string.h>
#include "src/post/samples.h"
#include "src/post/sampling.h"

/* Greedy answers of this replica's chunks; correct / total counted. */
static int eval_loop(herd_sampling_job *j, herd_model *m, const herd_sampling_args *a, double *correct,
                     double *total)
{
    int n = j->n, chunk = a->batch > 0 ? a->batch : 1, rc = 0;
    herd_gen_opts o = {a->max_new, 0.0, 1.0, 1, j->e.eot_id, 1, 0};
    char **texts = calloc((size_t)chunk, sizeof *texts);
    herd_chat_tokens *prompts = calloc((size_t)chunk, sizeof *prompts);
    int64_t c0, cn;
    herd_gen_layout_share(&j->g, (n + chunk - 1) / chunk, &c0, &cn);
    for (int first = (int)c0 * chunk; first < n && first < (c0 + cn) * chunk && !rc; first += chunk) {
        int k = n - first < chunk ? n - first : chunk;
        if ((rc = herd_post_sample_chunk(&j->e, m, j->chats, first, k, 1, &o, texts, prompts, NULL)))
            break;
        for (int i = 0; i < k; i++) {
            const herd_chat *c = &j->chats[first + i];
            if (c->n > 0 && c->msgs[c->n - 1].role == HERD_ROLE_ASSISTANT) {
                const char *want, *got;
                size_t nw, ng;
                herd_post_trim(c->msgs[c->n - 1].content, &want, &nw);
                herd_post_trim(texts[i], &got, &ng);
                *correct += nw == ng && !memcmp(want, got, nw);
                *total += 1;
            }
            free(texts[i]);
            texts[i] = NULL;
            herd_chat_tokens_free(&prompts[i]);
        }
    }
    free(texts);
    free(prompts);
    return rc;
}

int herd_post_answer_eval(herd_sampling_args *a, const herd_post_dp *dp)
{
    herd_sampling_job j;
    herd_model m;
    int bad = herd_sampling_open(&j, a, a->data, dp) != 0;
    int have_m = !bad && !(bad = herd_gen_model_open(&m, &j.e, &j.g, a->weights));
    double g[2] = {0, 0}; /* correct, total */
    int rc = herd_post_dp_any(dp, bad);
    if (!rc) rc = herd_post_dp_any(dp, eval_loop(&j, &m, a, &g[0], &g[1]));
    if (!rc) { /* accuracy over the whole test set; each replica counted once */
        if (!j.g.speaker) g[0] = g[1] = 0;
        herd_post_dp_sum(dp, g, 2);
        printf("herd post eval: %s: accuracy %.4f (%.0f of %.0f exact answers, greedy)\n", a->data,
               g[1] ? g[0] / g[1] : 0.0, g[0], g[1]);
    }
    if (have_m) herd_model_destroy(&m);
    herd_sampling_close(&j);
    return rc ? 1 : 0;
}
