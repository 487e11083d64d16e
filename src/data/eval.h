/* eval.h — validation per source of the mix: loss and bits per byte.
 *
 * The model is passed as a callback, so that this file does not depend on
 * the trainer's model or parallel layout: forward returns the SUM of the
 * per-token cross-entropy (nats) over the valid targets of a [B*T] batch and
 * sets *n_valid (herd_model_forward's contract).
 *
 * Data-parallel use: rank r evaluates batches [i0, i1) of each source into
 * acc, the ranks sum acc (two numbers per source, an MPI_Allreduce), and one
 * rank calls herd_eval_report.
 */
#ifndef HERD_EVAL_H
#define HERD_EVAL_H

#include <stdint.h>
#include <stdio.h>
#include "src/data/loader.h"

typedef double (*herd_forward_fn)(void *ctx, const int32_t *tokens, const int32_t *targets,
                                  const int32_t *doc, int B, int T, int64_t *n_valid);

typedef struct {
    double  loss_sum;  /* nats, summed over tokens */
    int64_t n_tokens;  /* valid targets */
} herd_eval_acc;

/* Add batches [i0, i1) of validation source v (the same windows every call)
 * to acc. -1 with a message on a data error. */
int herd_eval_source(herd_loader *l, int v, herd_forward_fn f, void *ctx, int B, int T, int i0,
                     int i1, herd_eval_acc *acc);

/* Print one line per source to human (may be NULL) and write one JSON object
 * per source to jsonl (may be NULL):
 *   {"step":S,"val_source":"math","val_loss":L,"val_bpb":B,"val_tokens":N}
 * val_bpb = L / ln 2 / bytes_per_token (null when the bytes are unknown).
 * acc has herd_loader_n_val_sources entries. -1 on a write error or a
 * non-finite loss (naming the source). */
int herd_eval_report(const herd_loader *l, const herd_eval_acc *acc, int64_t step, FILE *jsonl,
                     FILE *human);

#endif
