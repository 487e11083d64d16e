/* samples.c — see samples.h. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "src/post/samples.h"

int herd_post_prompt_len(const herd_chat *c)
{
    int n = c->n;
    while (n > 0 && c->msgs[n - 1].role == HERD_ROLE_ASSISTANT) n--;
    return n;
}

/* The sampled ids of one sequence as a response: mask content, the eot last. */
static void as_response(const herd_post_env *e, const uint32_t *ids, int n, herd_chat_tokens *r)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < n; i++)
        herd_chat_tokens_push(r, ids[i], ids[i] == (uint32_t)e->eot_id ? HERD_MASK_EOT : HERD_MASK_CONTENT);
    if (n == 0 || ids[n - 1] != (uint32_t)e->eot_id)
        herd_chat_tokens_push(r, (uint32_t)e->eot_id, HERD_MASK_EOT);
}

int herd_post_sample_chunk(const herd_post_env *e, herd_model *m, const herd_chat *chats, int first,
                           int n, int k, const herd_gen_opts *o, char **texts,
                           herd_chat_tokens *prompts, herd_chat_tokens *samples)
{
    int B = n * k, rc = 0;
    const uint32_t **pr = malloc(sizeof *pr * (size_t)B);
    int *pl = malloc(sizeof(int) * (size_t)B), *ol = malloc(sizeof(int) * (size_t)B);
    uint32_t **out = calloc((size_t)B, sizeof *out);
    for (int i = 0; i < n && !rc; i++) {
        herd_chat c = chats[first + i];
        c.n = herd_post_prompt_len(&c);
        memset(&prompts[i], 0, sizeof prompts[i]);
        rc = herd_chat_encode(e->tok, &c, 1, 1, &prompts[i]);
        for (int s = 0; s < k; s++) pr[i * k + s] = prompts[i].ids, pl[i * k + s] = (int)prompts[i].n;
    }
    if (!rc) rc = herd_generate(m, pr, pl, B, o, out, ol);
    for (int b = 0; b < B && !rc; b++) {
        texts[b] = herd_post_decode(e, out[b], ol[b]);
        if (samples) as_response(e, out[b], ol[b], &samples[b]);
    }
    for (int b = 0; b < B; b++) free(out[b]);
    free(out), free(pr), free(pl), free(ol);
    return rc;
}

void herd_post_write_messages(FILE *f, const herd_chat *c, int n, int open_end)
{
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "%s{\"role\":\"%s\",\"content\":", i ? "," : "", herd_chat_role_name(c->msgs[i].role));
        herd_post_json_str(f, c->msgs[i].content, c->msgs[i].len);
        fputc('}', f);
    }
    if (!open_end) fputc(']', f);
}

void herd_post_trim(const char *s, const char **b, size_t *n)
{
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1])) len--;
    while (len && isspace((unsigned char)*s)) s++, len--;
    *b = s;
    *n = len;
}
