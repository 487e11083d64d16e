/* post_backward.h — backward passes whose loss is not a plain sum of token
 * cross-entropies, over the model's own herd_model_backward.
 *
 * The model's backward starts from the gradient of the logits, which its
 * backend's xent_bwd_range writes. These functions run the same backward
 * through a copy of the backend table whose xent_bwd_range writes another
 * gradient of the logits instead: per-row scaled cross-entropy gradients
 * (DPO: each sequence's log-probability has its own coefficient), or a few
 * given entries (the reward model's scalar head, a row of lm_head). So the
 * model code stays written once, and every layer's backward is the tested one.
 * Not reentrant (one pending gradient at a time): post-training runs one model
 * step at a time on one thread.
 */
#ifndef HERD_POST_BACKWARD_H
#define HERD_POST_BACKWARD_H

#include <stdint.h>
#include "src/model/model.h"

/* Gradients of sum_i row_scale[i] * loss_i (loss_i the cross-entropy of row i
 * of the last forward; ignored targets contribute 0) accumulate into m->grads.
 * row_scale: host [B*T]. */
void herd_model_backward_rows(herd_model *m, const float *row_scale);

/* Gradients of sum_k value[k] * logits[row[k], col[k]] of the last forward
 * accumulate into m->grads. */
void herd_model_backward_logits(herd_model *m, const int *row, const int *col,
                                const float *value, int n);

/* After a forward: per sequence b of the B x T batch, the sum of
 * log p(target) over its non-ignored targets (logp[b]) and their count. */
void herd_model_seq_logprobs(const herd_model *m, const int32_t *targets, int B, int T,
                             double *logp, int64_t *n_tok);

#endif
