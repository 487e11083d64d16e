/* train.h — the training loop: batch ramp, gradient accumulation, AdamW,
 * metrics, over the process grid (src/parallel/grid.h): TP + SP inside the model, FSDP
 * across DP. */
#ifndef HERD_TRAIN_H
#define HERD_TRAIN_H

#include "src/config/config.h"

typedef struct {
    const char *dump_params; /* write the final model here (safetensors), or NULL */
    int print_schedule;      /* print the pipeline timeline of the last step (max_steps) */
} herd_train_options;

/* Train per `c` as one rank of an MPI job (MPI initialised by the caller:
 * herd_mpi_init); `config_origin` names the config in messages. opt may be
 * NULL. Every rank returns the same status: 0, -1 with the message printed
 * once (rank 0) or by the rank that failed, HERD_EXIT_USAGE (2) when the
 * launch gives backend cuda a rank with no GPU or two ranks one GPU, or
 * HERD_EXIT_REQUEUE (75) after a signal made every rank stop and the
 * checkpoint of that step committed.
 * With checkpoint.resume it starts from the newest good checkpoint. */
int herd_train(const herd_config *c, const char *config_origin, const herd_train_options *opt);

#endif
