/* trainer_dpo.h — post.objective dpo as the loss of the trainer's step: the
 * sequence loss of the model's head (model.h herd_seq_loss_fn) over pairs
 * (rows 2i chosen, 2i+1 rejected of a micro-batch, src/data/chat_batch.h),
 *
 *   loss = (1/P) sum_p -log sigmoid(beta ((pi_c - rho_c) - (pi_r - rho_r)))
 *                      + nll_coef * (-pi_c / n_c)
 *
 * with pi the policy's and rho the frozen reference's summed log-probabilities
 * of a response's content tokens, P the pairs of the global batch
 * (post.dpo_beta, post.dpo_nll_coef). rho comes from OUT_DIR/dpo_reference.bin,
 * written by a pass of the starting model over every pair before the first
 * step, in the training layout (no second copy of the weights), appended batch
 * by batch: a rerun reads what is written and computes only the rest, a
 * resumed run reads it all.
 */
#ifndef HERD_TRAINER_DPO_H
#define HERD_TRAINER_DPO_H

#include "src/train/trainer.h"

typedef struct herd_trainer_dpo herd_trainer_dpo;

/* The reference log-probabilities: read (rank 0, broadcast), the missing
 * ones computed with t's model as it is now (call before a checkpoint is
 * resumed) and appended. Collective. 0 / -1. */
int  herd_trainer_dpo_open(herd_trainer_dpo **out, herd_trainer *t);
void herd_trainer_dpo_close(herd_trainer_dpo *d);

/* Around a step's pipeline run: the hook on t's model for the batch that
 * starts at pair `cursor`, this rank's rows from global row `row_base` of
 * n_global. */
void herd_trainer_dpo_begin(herd_trainer_dpo *d, herd_trainer *t, int cursor, int64_t row_base,
                            int64_t n_global);
void herd_trainer_dpo_end(herd_trainer_dpo *d, herd_trainer *t);

#endif
