/* chat_batch.c — see chat_batch.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/backend.h"
#include "src/data/chat.h"
#include "src/data/chat_batch.h"
#include "src/data/tokenizer.h"

/* Pair k: response `better` of record rec against response `worse`. */
typedef struct { int rec, better, worse; } pair_ix;

struct herd_chat_batch {
    int            objective;       /* HERD_OBJECTIVE_SFT, _DPO or _RM */
    int            score_col;       /* rm: the reward head's vocabulary id */
    herd_sft_data  sft;
    herd_pref_data pref;
    pair_ix       *pairs;
    int            n_pairs;
    int            next;            /* sft: next conversation; dpo: next pair */
    int32_t       *scratch;         /* sft: one global batch [3 * n_global * T] */
    size_t         scratch_cap;
};

static int shortest_seq_len(const herd_config *c)
{
    int T = c->batch.ramp[0].seq_len;
    for (int i = 1; i < c->batch.n_ramp; i++)
        if (c->batch.ramp[i].seq_len < T) T = c->batch.ramp[i].seq_len;
    return T;
}

/* dpo: the best response against each worse one; rm: every ordered pair. */
static int list_pairs(herd_chat_batch *b)
{
    int n = 0, rm = b->objective == HERD_OBJECTIVE_RM;
    for (int i = 0; i < b->pref.n; i++) {
        int r = b->pref.items[i].n_resp;
        n += rm ? r * (r - 1) / 2 : r - 1;
    }
    b->pairs = malloc(sizeof *b->pairs * (size_t)(n ? n : 1));
    if (!b->pairs) return -1;
    for (int i = 0; i < b->pref.n; i++)
        for (int u = 0; u < (rm ? b->pref.items[i].n_resp : 1); u++)
            for (int j = u + 1; j < b->pref.items[i].n_resp; j++)
                b->pairs[b->n_pairs++] = (pair_ix){i, u, j};
    return 0;
}

static int load(herd_chat_batch *b, const herd_config *c, const herd_tokenizer *tok, int print)
{
    const char *path = c->post.data;
    int T = shortest_seq_len(c);
    const herd_chat_stats *st;
    int n;
    if (b->objective == HERD_OBJECTIVE_SFT) {
        if (herd_sft_data_load(&b->sft, path, tok, T)) return -1;
        st = &b->sft.stats, n = b->sft.n;
    } else {
        if (herd_pref_data_load(&b->pref, path, tok, T) || list_pairs(b)) return -1;
        st = &b->pref.stats, n = b->n_pairs;
    }
    if (print)
        printf("post data %s: %lld records, %lld kept, %lld skipped as longer than seq_len %d, "
               "%lld skipped as identical responses%s\n", path, (long long)st->lines,
               (long long)st->kept, (long long)st->skipped_long, T, (long long)st->skipped_same,
               b->objective == HERD_OBJECTIVE_SFT ? ""
               : b->objective == HERD_OBJECTIVE_DPO ? " (pairs: best against each worse)"
                                                    : " (pairs: every better against worse)"),
            fflush(stdout);
    if (n == 0) {
        fprintf(stderr, "herd: %s: key 'post.data': no %s to train on\n", path,
                b->objective == HERD_OBJECTIVE_SFT ? "conversation" : "preference pair");
        return -1;
    }
    return 0;
}

int herd_chat_batch_open(herd_chat_batch **out, const herd_config *c, int print)
{
    herd_chat_batch *b = *out = calloc(1, sizeof *b);
    if (!b) return -1;
    b->objective = c->post.objective;

    herd_tokenizer *tok = NULL;
    if (herd_tokenizer_open(&tok, c->post.tokenizer, c->post.specials[0] ? c->post.specials : NULL))
        return -1;
    int rc = 0;
    if (herd_tokenizer_vocab_size(tok) != c->model.vocab_size) {
        fprintf(stderr, "herd: key 'post.tokenizer': %s has %d tokens but model.vocab_size is %d\n",
                c->post.tokenizer, herd_tokenizer_vocab_size(tok), c->model.vocab_size);
        rc = -1;
    }
    /* the reward head: <|reserved_special_token_0|>, a row of the output
     * projection that text never uses (src/post/reward.h) */
    b->score_col = herd_tokenizer_n_regular(tok) + 2;
    if (rc == 0) rc = load(b, c, tok, print);
    herd_tokenizer_free(tok);
    return rc;
}

void herd_chat_batch_close(herd_chat_batch *b)
{
    if (!b) return;
    herd_sft_data_free(&b->sft);
    herd_pref_data_free(&b->pref);
    free(b->pairs);
    free(b->scratch);
    free(b);
}

int herd_chat_batch_n_pairs(const herd_chat_batch *b) { return b->n_pairs; }
int herd_chat_batch_cursor(const herd_chat_batch *b) { return b->next; }
int herd_chat_batch_score_col(const herd_chat_batch *b) { return b->score_col; }
void herd_chat_batch_set_cursor(herd_chat_batch *b, int cursor) { b->next = cursor; }

/* sft: every rank packs the whole global batch (cheap, the same on every
 * rank) and keeps its rows. */
static int next_sft(herd_chat_batch *b, int T, int64_t n_global, int64_t first, int64_t count,
                    int32_t *tokens, int32_t *targets, int32_t *doc)
{
    size_t n = (size_t)n_global * T;
    if (3 * n > b->scratch_cap) {
        free(b->scratch);
        b->scratch = malloc(3 * n * sizeof(int32_t));
        b->scratch_cap = b->scratch ? 3 * n : 0;
        if (!b->scratch) {
            fprintf(stderr, "herd: out of memory for a batch of %zu tokens\n", n);
            return -1;
        }
    }
    int32_t *tk = b->scratch, *tg = tk + n, *dc = tg + n;
    herd_chat_pack(b->sft.convs, b->sft.n, &b->next, (int)n_global, T, HERD_MASK_EOT, tk, tg, dc);
    if (!tokens) return 0;
    size_t off = (size_t)first * T, len = (size_t)count * T * sizeof(int32_t);
    memcpy(tokens, tk + off, len), memcpy(targets, tg + off, len), memcpy(doc, dc + off, len);
    return 0;
}

/* dpo, rm: row 2i the better, 2i+1 the worse response of the batch's pair i;
 * dpo's targets are the content tokens, rm's the scored last token only. */
static int next_pairs(herd_chat_batch *b, int T, int64_t n_global, int64_t first, int64_t count,
                      int32_t *tokens, int32_t *targets, int32_t *doc)
{
    int rm = b->objective == HERD_OBJECTIVE_RM;
    if (n_global % 2) {
        fprintf(stderr, "herd: key 'batch.ramp': objective %s needs an even number of sequences "
                "per batch (pairs), not %lld\n", rm ? "rm" : "dpo", (long long)n_global);
        return -1;
    }
    for (int64_t r = first; tokens && r < first + count; r++) {
        pair_ix x = b->pairs[(b->next + r / 2) % b->n_pairs];
        const herd_pref *p = &b->pref.items[x.rec];
        size_t o = (size_t)(r - first) * T;
        int last = herd_chat_row(&p->prompt, &p->resp[r % 2 ? x.worse : x.better], T,
                                 rm ? 0 : HERD_MASK_CONTENT, tokens + o, targets + o, doc + o);
        if (rm) targets[o + last] = HERD_TARGET_SCORE;
    }
    b->next = (int)((b->next + n_global / 2) % b->n_pairs);
    return 0;
}

int herd_chat_batch_next(herd_chat_batch *b, int T, int64_t n_global, int64_t first,
                         int64_t count, int32_t *tokens, int32_t *targets, int32_t *doc)
{
    return b->objective == HERD_OBJECTIVE_SFT
               ? next_sft(b, T, n_global, first, count, tokens, targets, doc)
               : next_pairs(b, T, n_global, first, count, tokens, targets, doc);
}
