/* trainer_rm.h — post.objective rm as the loss of the trainer's step: a
 * reward model, r = h_final[last token] . lm_head[<|reserved_special_token_0|>]
 * (the scalar head is a row of the vocabulary-parallel output projection, so
 * its gradient is reduced, sharded and checkpointed as every lm_head row, and
 * export and averaging carry it: src/post/reward.h), trained with
 *
 *   loss = (1/P) sum_p -log sigmoid(r_better - r_worse)
 *
 * over the P pairs of the global batch (rows 2i, 2i+1 of a micro-batch,
 * src/data/chat_batch.h). Needs the stored logits (train.xent_chunk 0).
 */
#ifndef HERD_TRAINER_RM_H
#define HERD_TRAINER_RM_H

#include "src/train/trainer.h"

typedef struct herd_trainer_rm herd_trainer_rm;

/* Collective; 0 / -1 (agreed). */
int  herd_trainer_rm_open(herd_trainer_rm **out, herd_trainer *t);
void herd_trainer_rm_close(herd_trainer_rm *r);

/* Around a step's pipeline run, as herd_trainer_dpo_begin / _end. */
void herd_trainer_rm_begin(herd_trainer_rm *r, herd_trainer *t, int64_t n_global);
void herd_trainer_rm_end(herd_trainer_rm *r, herd_trainer *t);

#endif
