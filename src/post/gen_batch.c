/* gen_batch.c — see gen_batch.h. */
#include <stdlib.h>
#include <string.h>
#include "monitoring/clock.h"
#include "src/data/chat.h"
#include "src/post/gen_batch.h"

int herd_post_encode_user(const herd_post_env *e, const char *text, int raw, herd_chat_tokens *out)
{
    if (raw) {
        herd_ids ids = {0};
        int rc = herd_chat_tokens_push(out, (uint32_t)(e->n_regular + HERD_TOK_BOS), 0) ||
                 herd_tokenizer_encode(e->tok, (const unsigned char *)text, strlen(text), 0, &ids);
        for (size_t i = 0; i < ids.n && rc == 0; i++) rc = herd_chat_tokens_push(out, ids.ids[i], 0);
        free(ids.ids);
        return rc;
    }
    herd_chat_msg msg = {HERD_ROLE_USER, (char *)text, strlen(text)};
    herd_chat c = {&msg, 1};
    return herd_chat_encode(e->tok, &c, 1, 1, out);
}

/* Every prompt, encoded: the texts first, then the file's conversations up
 * to their last assistant turn, then the assistant header. *n gets the count. */
static herd_chat_tokens *encode_all(const herd_post_env *e, const herd_gen_batch_args *a,
                                    int max_seq_len, int *n)
{
    herd_sft_data d = {0};
    *n = 0;
    if (a->prompts_file) {
        if (herd_sft_data_load(&d, a->prompts_file, e->tok, max_seq_len)) return NULL;
        if (d.stats.skipped_long)
            fprintf(stderr, "herd generate: %s: %lld of %lld prompts skipped: longer than "
                    "model.max_seq_len %d\n", a->prompts_file, (long long)d.stats.skipped_long,
                    (long long)d.stats.lines, max_seq_len);
    }
    herd_chat_tokens *tk = calloc((size_t)(a->n_texts + d.n + 1), sizeof *tk);
    int rc = tk ? 0 : -1;
    for (int i = 0; i < a->n_texts && !rc; i++) rc = herd_post_encode_user(e, a->texts[i], a->raw, &tk[(*n)++]);
    for (int i = 0; i < d.n && !rc; i++) {
        const herd_chat_tokens *c = &d.convs[i];
        size_t cut = c->n;
        while (cut > 0 && c->mask[cut - 1]) cut--;
        for (size_t k = 0; k < cut; k++) herd_chat_tokens_push(&tk[*n], c->ids[k], 0);
        (*n)++;
    }
    herd_sft_data_free(&d);
    if (rc) {
        for (int i = 0; i < *n; i++) herd_chat_tokens_free(&tk[i]);
        free(tk);
        return NULL;
    }
    return tk;
}

/* Prompts [first, first + count) in batches; their lines to so, the number
 * of generated tokens added to *tokens. */
static int run_share(const herd_post_env *e, herd_model *m, herd_chat_tokens *tk, int first,
                     int count, const herd_gen_batch_args *a, const herd_gen_opts *o, FILE *so,
                     double *tokens)
{
    int batch = a->batch > 0 ? a->batch : (count > 0 ? count : 1), rc = 0;
    const uint32_t **pr = malloc(sizeof *pr * (size_t)batch);
    int *pl = malloc(sizeof(int) * (size_t)batch), *ol = malloc(sizeof(int) * (size_t)batch);
    uint32_t **out = calloc((size_t)batch, sizeof *out);
    for (int b0 = first; b0 < first + count && !rc; b0 += batch) {
        int nb = first + count - b0 < batch ? first + count - b0 : batch;
        for (int i = 0; i < nb; i++) pr[i] = tk[b0 + i].ids, pl[i] = (int)tk[b0 + i].n;
        herd_gen_opts ob = *o;
        ob.index0 = (uint64_t)b0; /* the prompt's index, not its place in this batch */
        if (herd_generate(m, pr, pl, nb, &ob, out, ol)) rc = -1;
        for (int i = 0; i < nb && !rc; i++) {
            char *text = herd_post_decode(e, out[i], ol[i]);
            *tokens += ol[i];
            int idx = b0 + i;
            if (idx < a->n_texts) fprintf(so, "%s\n", text);
            else {
                fprintf(so, "{\"index\":%d,\"response\":", idx - a->n_texts);
                herd_post_json_str(so, text, strlen(text));
                fprintf(so, "}\n");
            }
            free(text);
        }
        for (int i = 0; i < nb && !rc; i++) free(out[i]), out[i] = NULL;
    }
    free(pr), free(pl), free(ol), free(out);
    return rc;
}

int herd_post_generate_batch(const herd_post_env *e, const herd_gen_layout *g, herd_model *m,
                             const herd_gen_batch_args *a, const herd_gen_opts *o, FILE *out)
{
    int n = 0, rc = 0;
    herd_chat_tokens *tk = encode_all(e, a, m->dims.max_seq_len, &n);
    if (herd_post_dp_any(g->dp, tk == NULL)) {
        free(tk);
        return -1;
    }
    int64_t first, count;
    herd_gen_layout_share(g, n, &first, &count);
    char *buf = NULL;
    size_t len = 0;
    FILE *so = open_memstream(&buf, &len);
    double tokens[1] = {0}, t0 = herd_now_s(); /* the job's ranks start together (the any above) */
    rc = run_share(e, m, tk, (int)first, (int)count, a, o, so, tokens);
    fclose(so);
    if (!g->speaker) len = 0, tokens[0] = 0; /* its replica's TP rank 0 prints the same lines */
    if (herd_post_dp_any(g->dp, rc)) rc = -1;
    else if (herd_post_dp_gather_text(g->dp, buf, len, out)) rc = -1;
    double secs = herd_now_s() - t0; /* after the any: the slowest replica's time */
    herd_post_dp_sum(g->dp, tokens, 1);
    if (!rc && a->timing && g->dp->rank == 0)
        fprintf(stderr, "herd generate: %d sequences, %.0f tokens generated in %.3f s: %.1f tokens/s "
                "(TP%d x DP%d)\n", n, tokens[0], secs, secs > 0 ? tokens[0] / secs : 0.0, g->tp,
                g->n_replicas);
    free(buf);
    for (int i = 0; i < n; i++) herd_chat_tokens_free(&tk[i]);
    free(tk);
    return rc;
}
