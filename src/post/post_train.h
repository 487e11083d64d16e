/* post_train.h — the training runs of post-training (herd post sft, rm,
 * dpo): each a loop over the step machinery of pre-training
 * (src/train/train_step.h: zero, loss callback, data-parallel reduction,
 * norm, AdamW) with its own loss, one process or replicated data parallel
 * over MPI ranks (post_dp.h).
 *
 * Shapes: model.* of the config; micro-batch batch.micro_batch rows (sft:
 * packed sequences of model.max_seq_len tokens; rm: records, all their
 * responses; dpo: pairs); AdamW of optim.*; the learning rate of
 * herd_post_lr; steps: a->steps, else train.max_steps, else one epoch.
 * Rank 0 alone prints, evaluates a->val and writes a->out.
 */
#ifndef HERD_POST_TRAIN_H
#define HERD_POST_TRAIN_H

#include <stdint.h>
#include "src/data/chat.h"
#include "src/post/post_common.h"
#include "src/post/post_dp.h"
#include "src/train/train_step.h"

typedef struct {
    const char *data, *weights, *ref, *out, *val;
    int64_t steps;           /* 0: train.max_steps, else one epoch */
    double  lr;              /* the peak rate; 0: optim.lr */
    double  beta, nll_coef;  /* dpo; < 0: post.dpo_beta, post.dpo_nll_coef */
} herd_post_run;

/* Each returns 0, or 1 with the message printed. */
int herd_post_sft(const herd_post_run *a, const herd_post_env *e, const herd_post_dp *dp);
int herd_post_rm(const herd_post_run *a, const herd_post_env *e, const herd_post_dp *dp);
int herd_post_dpo(const herd_post_run *a, const herd_post_env *e, const herd_post_dp *dp); /* a->weights set */
/* The reward model a->weights on the pairs of a->data: its ranking loss and
 * pairwise accuracy (the held-out check of a reward model the trainer made). */
int herd_post_rm_eval(const herd_post_run *a, const herd_post_env *e, const herd_post_dp *dp);

/* Linear warm-up over schedule.warmup_steps (at most a tenth of the run), then
 * a cosine from the peak (a->lr, else optim.lr) down to optim.min_lr (scaled
 * by the same factor as the peak) at the last step: the schedule of the run
 * itself, whatever its length, so a short run still ends at a low rate. */
double herd_post_lr(const herd_post_run *a, const herd_config *c, int64_t step, int64_t steps);

/* The step machinery of a replicated model m with AdamW state opt over the
 * ranks of dp. */
void herd_post_engine(herd_step_engine *e, herd_model *m, herd_adamw *opt, const herd_config *c,
                      const herd_post_dp *dp);

/* Progress lines: every train.log_every steps (10 if unset) and at the end. */
int herd_post_log_due(const herd_config *c, int64_t step, int64_t steps);

/* Preference records of path (the counts printed); -1 when none is usable. */
int herd_post_load_pref(const char *path, const herd_post_env *e, herd_pref_data *d, const char *who);

#endif
