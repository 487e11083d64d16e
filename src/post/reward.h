/* reward.h — the reward model: the pretrained backbone with a scalar head on
 * the last token, trained with the pairwise loss -log sigmoid(r_better -
 * r_worse) (no margin term, as Llama 3), over every ordered pair of the
 * responses to one prompt (edited > chosen > rejected where the data has
 * three).
 *
 * The scalar head is row `head_id` of the output projection: r = h_final[last]
 * . lm_head[head_id], a linear head on the final hidden state of the last
 * token that needs no new tensor (so checkpoints, averaging and export carry
 * it unchanged). herd_rm_head_id picks <|reserved_special_token_0|>, a token
 * that never occurs in text.
 */
#ifndef HERD_REWARD_H
#define HERD_REWARD_H

#include <stdint.h>
#include "src/model/model.h"

/* The vocabulary id of the scalar head for a tokenizer with n_regular tokens. */
int herd_rm_head_id(int n_regular);

typedef struct {
    double loss;      /* mean over pairs */
    double accuracy;  /* fraction of pairs with r_better > r_worse */
    int    pairs;
} herd_rm_stats;

/* Rewards of B rows (prompt + response each, padded to T): forward only, on
 * a model of any TP width (every rank of the TP group gets them all).
 * last[b]: index in row b of its last token. reward: [B]. */
int herd_rm_score(herd_model *m, const int32_t *tokens, const int32_t *doc, int B, int T,
                  const int *last, int head_id, double *reward);

/* Forward, pairwise loss over rows of the same group[b] with rank[b] lower
 * = better, and (backward != 0) the gradient accumulated into m->grads.
 * -1 when no pair exists. */
int herd_rm_step(herd_model *m, const int32_t *tokens, const int32_t *doc, int B, int T,
                 const int *last, const int *group, const int *rank, int head_id, int backward,
                 herd_rm_stats *st);

/* The ranked pairs among B rows (what herd_rm_step counts). */
int herd_rm_count_pairs(const int *group, const int *rank, int B);

/* herd_rm_step with the sums over the pairs divided by `norm` instead of
 * their count (loss, accuracy, gradient; st->pairs stays the local count): a
 * data-parallel rank's exact share of the mean over the global batch's norm
 * pairs. */
int herd_rm_step_norm(herd_model *m, const int32_t *tokens, const int32_t *doc, int B, int T,
                      const int *last, const int *group, const int *rank, int head_id,
                      int backward, int norm, herd_rm_stats *st);

#endif
