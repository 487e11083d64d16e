/* train_step.h — one optimizer step around a loss callback: the machinery
 * that pre-training (herd_trainer) and post-training (SFT, RM, DPO) share.
 *
 *   zero the gradients -> loss(ctx): forward + backward of this rank's share,
 *   gradients accumulated already scaled to the mean over the GLOBAL batch ->
 *   the callback's stats summed over the data-parallel group -> gradients
 *   reduced over it -> global gradient norm -> AdamW with clipping.
 *
 * Two kinds of state:
 *   sharded (fsdp set): FSDP reduce-scatter of the gradients (or the
 *     reduction overlapped with the backward), sharded norm over `world`,
 *     AdamW on the shards, then the parameters all-gathered;
 *   replicated (adamw set): every rank holds the whole model and its own
 *     AdamW state; the gradients are summed with one all-reduce and every rank
 *     applies the same update.
 * Errors of a collective abort the job (herd_comm_abort): a failed
 * collective leaves the other ranks waiting.
 */
#ifndef HERD_TRAIN_STEP_H
#define HERD_TRAIN_STEP_H

#include "kernels/comm.h"
#include "src/config/config.h"
#include "src/model/model.h"
#include "src/model/optim.h"
#include "src/parallel/fsdp.h"

/* Forward and backward of this rank's share of the step's batch; stats[]
 * gets this rank's share of the numbers to report (summed over the ranks by
 * the step). Returns 0, or non-zero alike on every rank (a callback whose
 * failure may be local agrees before it returns). */
typedef int (*herd_loss_fn)(void *ctx, herd_model *m, double *stats);

typedef struct {
    herd_model        *m;
    const herd_config *c;        /* optim.*: betas, weight decay, clip */
    herd_comm         *dp;       /* the data-parallel group; NULL: one replica */
    herd_fsdp         *fsdp;     /* sharded state, or NULL */
    herd_comm         *world;    /* sharded: the group of the gradient norm */
    int                overlap;  /* sharded: reduce during the backward (train.overlap_grad_reduce) */
    herd_adamw        *adamw;    /* replicated state (fsdp NULL) */
} herd_step_engine;

/* Everything up to the optimizer: *grad_norm is the global norm. Returns the
 * callback's status (nothing is reduced when it fails). */
int herd_step_backward(const herd_step_engine *e, herd_loss_fn loss, void *ctx, double *stats,
                       int n_stats, double *grad_norm);

/* The AdamW update with learning rate lr, clipped by grad_norm. */
void herd_step_update(const herd_step_engine *e, double lr, double grad_norm);

/* Both, for a caller that knows its learning rate before the step. */
int herd_step_run(const herd_step_engine *e, herd_loss_fn loss, void *ctx, double *stats,
                  int n_stats, double lr);

/* m->grads summed over dp (replicated data parallelism; host gradients). */
void herd_step_all_reduce_grads(herd_comm *dp, herd_model *m);

#endif
