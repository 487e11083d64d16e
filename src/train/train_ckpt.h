/* train_ckpt.h — the trainer's checkpoints: what a step's state is, and
 * where it goes (checkpoint/ckpt.h does the writing and the reading).
 *
 * Saved per rank, as rectangles of the whole tensors (so that any other
 * layout or world size can load them): the FSDP shards of the fp32 master
 * weights ("param"), Adam's first and second moments ("adam_m", "adam_v");
 * TP copies of a tensor (norm weights, replicated KV heads) are written by
 * their primary rank only. Plus a metadata blob (below): step, tokens seen,
 * Adam's update count, the data loader's whole position, the seed, the
 * layout that wrote it and the resolved config as YAML. The learning-rate
 * schedule and the batch ramp are functions of (step, tokens seen), so they
 * need no state of their own; there is no other random state (no dropout;
 * the init is a function of the seed).
 */
#ifndef HERD_TRAIN_CKPT_H
#define HERD_TRAIN_CKPT_H

#include <stdint.h>
#include "checkpoint/ckpt.h"
#include "src/config/config.h"
#include "src/parallel/fsdp.h"
#include "src/parallel/grid.h"
#include "src/data/loader.h"
#include "src/model/model.h"
#include "src/train/ckpt_interval.h"

typedef struct {
    herd_ckpt_writer  *writer;   /* NULL: checkpoints off (checkpoint.every 0) */
    herd_ckpt_stopper *stopper;  /* SIGUSR1 / SIGTERM agreement */
    char   dir[HERD_PATH_MAX + 32];
    float *stage;                /* host staging of the shards when the backend is not the CPU */
    int64_t last_saved;          /* step of the last checkpoint started (-1: none) */
    herd_ckpt_interval *ival;    /* checkpoint.every auto, else NULL */
} herd_train_ckpt;

/* Set up the writer and the signal handlers (collective). */
int herd_train_ckpt_open(herd_train_ckpt *tc, const herd_config *c, const herd_grid *g);
/* Before the optimizer changes the shards: wait until the background thread
 * has copied the snapshot of the checkpoint in flight (*stall_s: how long). */
int herd_train_ckpt_snapshot_wait(herd_train_ckpt *tc, double *stall_s);

/* Wait for the checkpoint in flight, free (collective). */
int herd_train_ckpt_close(herd_train_ckpt *tc);

/* Resume from the newest complete checkpoint of checkpoint.dir that verifies,
 * whatever layout wrote it. Returns 1 (resumed: *step, *tokens, the shards,
 * Adam's count and the loader are restored, the parameters gathered; ld NULL:
 * a post-training run, no loader), 0 (no checkpoint: a fresh run), -1
 * (checkpoints exist but none can be used, or a read failed: refusing to
 * start over them). Collective. */
int herd_train_ckpt_resume(herd_train_ckpt *tc, const herd_config *c, const herd_grid *g,
                           herd_model *m, herd_fsdp *f, herd_loader *ld, int64_t *step,
                           int64_t *tokens, char *from, size_t from_len);

/* Start checkpoint `step` (returns once the snapshot is taken; the write
 * goes on in the background). *stall_s gets the time the step loop was
 * blocked; ld NULL: no loader state. Collective. */
int herd_train_ckpt_save(herd_train_ckpt *tc, const herd_config *c, const herd_grid *g,
                         herd_model *m, herd_fsdp *f, herd_loader *ld, int64_t step,
                         int64_t tokens, double *stall_s);

/* The resolved config a trainer checkpoint saved (its meta blob), over the
 * defaults: what `herd ckpt export --format hf` reads the model section from.
 * One process, no MPI. 0 or -1 with a message naming step_dir. */
int herd_train_ckpt_read_config(const char *step_dir, herd_config *c);

#endif
