/* reward.c — see reward.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "src/post/post_backward.h"
#include "src/post/reward.h"
#include "src/data/tokenizer.h"

int herd_rm_head_id(int n_regular) { return n_regular + 2; /* <|reserved_special_token_0|> */ }

int herd_rm_score(herd_model *m, const int32_t *tokens, const int32_t *doc, int B, int T,
                  const int *last, int head_id, double *reward)
{
    int32_t *tg = malloc(sizeof(int32_t) * (size_t)B * T);
    for (size_t i = 0; i < (size_t)B * T; i++) tg[i] = -1; /* no language-model loss */
    double r = herd_model_forward(m, tokens, tg, doc, B, T, NULL);
    free(tg);
    if (isnan(r)) return -1;
    if (!m->logits) { /* train.xent_chunk: the head never stored the logits */
        fprintf(stderr, "herd: reward: the model runs its cross-entropy in vocabulary chunks "
                "(train.xent_chunk > 0) and keeps no logits to score; use train.xent_chunk 0\n");
        return -1;
    }
    /* the head's column lives on one TP rank (lm_head is split by vocabulary):
     * that rank reads it, the sum over the TP group gives every rank the rewards */
    int Vl = m->vocab_local, col = head_id - m->vocab_start, mine = col >= 0 && col < Vl;
    for (int b = 0; b < B; b++) {
        float v = 0.0f;
        if (mine) m->be->copy_d2h(m->be, &v, m->logits + ((size_t)b * T + last[b]) * Vl + col, sizeof v);
        reward[b] = v;
    }
    if (m->tp_size > 1 && herd_comm_all_reduce(m->tp, reward, (size_t)B, HERD_F64, HERD_SUM))
        herd_comm_abort(1);
    return 0;
}

int herd_rm_count_pairs(const int *group, const int *rank, int B)
{
    int n = 0;
    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++)
            if (group[i] == group[j] && rank[i] < rank[j]) n++;
    return n;
}

int herd_rm_step(herd_model *m, const int32_t *tokens, const int32_t *doc, int B, int T,
                 const int *last, const int *group, const int *rank, int head_id, int backward,
                 herd_rm_stats *st)
{
    return herd_rm_step_norm(m, tokens, doc, B, T, last, group, rank, head_id, backward,
                             herd_rm_count_pairs(group, rank, B), st);
}

int herd_rm_step_norm(herd_model *m, const int32_t *tokens, const int32_t *doc, int B, int T,
                      const int *last, const int *group, const int *rank, int head_id,
                      int backward, int norm, herd_rm_stats *st)
{
    double *r = malloc(sizeof(double) * B), *g = calloc(B, sizeof(double));
    if (herd_rm_score(m, tokens, doc, B, T, last, head_id, r)) {
        free(r);
        free(g);
        return -1;
    }
    herd_rm_stats s = {0};
    s.pairs = herd_rm_count_pairs(group, rank, B);
    double N = norm > 0 ? norm : 1; /* the sums over the pairs are divided by N */
    for (int i = 0; i < B && s.pairs; i++)
        for (int j = 0; j < B; j++) {
            if (group[i] != group[j] || rank[i] >= rank[j]) continue;
            double z = r[i] - r[j]; /* i is better */
            s.loss += (z >= 0 ? log1p(exp(-z)) : -z + log1p(exp(z))) / N;
            s.accuracy += (z > 0) / N;
            double sg = z >= 0 ? exp(-z) / (1.0 + exp(-z)) : 1.0 / (1.0 + exp(z)); /* sigmoid(-z) */
            g[i] -= sg / N;
            g[j] += sg / N;
        }
    int rc = 0;
    if (!s.pairs) {
        fprintf(stderr, "herd: reward: the batch of %d rows holds no ranked pair\n", B);
        rc = -1;
    } else if (backward) {
        int *row = malloc(sizeof(int) * B), *col = malloc(sizeof(int) * B);
        float *val = malloc(sizeof(float) * B);
        for (int b = 0; b < B; b++) row[b] = b * T + last[b], col[b] = head_id, val[b] = (float)g[b];
        herd_model_backward_logits(m, row, col, val, B);
        free(row);
        free(col);
        free(val);
    }
    if (st) *st = s;
    free(r);
    free(g);
    return rc;
}
