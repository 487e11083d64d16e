/* trainer.h — the pre-training run as an object (in the manner of
 * torchtitan's Trainer): open builds the process grid, the model, FSDP, the
 * data, the checkpoints (resuming from the newest good one) and the
 * monitors; step runs one optimizer step; evaluate and checkpoint do what
 * their names say; close tears down whatever open built, from any point.
 * herd_train (train.h) is the loop over them.
 *
 * Every function is collective over the job's ranks unless it says not.
 */
#ifndef HERD_TRAINER_H
#define HERD_TRAINER_H

#include <stdint.h>
#include "monitoring/metrics.h"
#include "monitoring/straggler.h"
#include "src/config/config.h"
#include "src/data/chat_batch.h"
#include "src/data/data.h"
#include "src/data/loader.h"
#include "src/model/model.h"
#include "src/parallel/fsdp.h"
#include "src/parallel/grid.h"
#include "src/train/train.h"
#include "src/train/train_ckpt.h"

typedef struct {
    const herd_config        *c;
    const herd_train_options *opt;        /* may be NULL */
    herd_grid          grid;
    int                root;              /* world rank 0: prints and writes the files */
    herd_backend *be;      /* the trainer's own instance (herd_backend_create), freed by close */
    int                device;            /* backend cuda: this rank's GPU (src/parallel/device.h) */
    herd_loader       *data;              /* post.objective pretrain, else NULL */
    herd_chat_batch   *chat;              /* post.objective sft / dpo: post.data, else NULL */
    struct herd_trainer_dpo *dpo;         /* post.objective dpo (trainer_dpo.h), else NULL */
    struct herd_trainer_rm  *rm;          /* post.objective rm (trainer_rm.h), else NULL */
    herd_data         *val;               /* data.val_path, or NULL */
    herd_model         model;
    herd_fsdp          fsdp;
    int                has_grid, has_model, has_fsdp, has_ckpt; /* what close frees */
    int                bf16;              /* train.precision bf16 */
    double             peak_tflops;       /* per device, for the MFU */
    herd_train_ckpt    ckpt;
    herd_metrics       metrics;           /* root only */
    char               metrics_path[HERD_PATH_MAX + 32];
    char               prom_path[HERD_PATH_MAX + 32], strag_path[HERD_PATH_MAX + 32];
    herd_straggler    *strag;             /* monitor.straggler_every > 0 */
    double             compute_since_gather;
    struct { int32_t *tokens, *targets, *doc; size_t cap; } batch; /* host [n_seqs * T] */
    int64_t            step, tokens_seen;
} herd_trainer;

/* Build everything; *t is allocated even on failure (close it). Prints the
 * run's header on rank 0. 0, HERD_EXIT_USAGE when the launch gives backend
 * cuda a rank with no GPU or two ranks one GPU, or -1 (the same on every rank). */
int  herd_trainer_open(herd_trainer **t, const herd_config *c, const char *config_origin,
                       const herd_train_options *opt);

/* Steps or tokens left to train (train.max_steps, train.max_tokens). Local. */
int  herd_trainer_more(const herd_trainer *t);

/* One optimizer step over the next global batch; *out gets its metrics
 * (the peak memory is the largest over the ranks). -1: stop (a read failed,
 * the loss or the gradient norm is not finite). */
int  herd_trainer_step(herd_trainer *t, herd_step_metrics *out);

/* post.objective sft / dpo: the chat data's cursor moved past the t->step
 * batches that a resumed run already trained on. 0 or -1 (this rank). */
int  herd_trainer_chat_replay(herd_trainer *t);

/* Record a step: metrics.jsonl, the Prometheus file, the stragglers, the
 * log line. 0 or -1 (this rank). */
int  herd_trainer_log(herd_trainer *t, const herd_step_metrics *sm);

/* The validation loss of data.val_path and of every source of data.sources
 * at sequence length T, printed and logged on rank 0. 0 or -1 (this rank). */
int  herd_trainer_evaluate(herd_trainer *t, int T);

/* Every rank's rc made one: -1 if any rank failed. */
int  herd_trainer_agree(const herd_trainer *t, int rc);

/* A checkpoint that failed in the background, and the signals: *stop is 1
 * when every rank agreed to stop (SIGUSR1, SIGTERM). 0 or -1. */
int  herd_trainer_poll(herd_trainer *t, int *stop);

/* Start the checkpoint of this step (the write goes on in the background)
 * when one is due (checkpoint.every) or `force`, checkpoints are on and this
 * step has none yet. 0 or -1 (agreed). */
int  herd_trainer_checkpoint(herd_trainer *t, int force);

/* Wait for the checkpoint in flight to commit and print why the run stops
 * on a signal. HERD_EXIT_REQUEUE, or -1 when the commit failed. */
int  herd_trainer_stop(herd_trainer *t);

/* Wait for the last checkpoint to commit. 0 or -1. */
int  herd_trainer_finish(herd_trainer *t);

/* The end of a run: --dump-params, the pipeline's activation peaks, "done". */
int  herd_trainer_report(herd_trainer *t);

/* Free what open built, whatever point it reached; t may be NULL. */
void herd_trainer_close(herd_trainer *t);

#endif
