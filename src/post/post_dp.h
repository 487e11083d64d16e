/* post_dp.h — data parallelism of the post-training commands (herd post sft,
 * rm, dpo, rs, eval): the same binary under mpirun / srun with N ranks.
 *
 * Simple replicated DP: every rank holds the whole model and its own AdamW
 * state; each step every rank takes its share of the step's global batch,
 * the gradients (already scaled so that the loss is the mean over the GLOBAL
 * batch) are summed over the ranks with one all-reduce, and every rank applies
 * the same AdamW update to the same numbers, so the replicas stay equal (the
 * step machinery of src/train/train_step.h, replicated state). No
 * sharding (FSDP), TP, PP or CP here: post-training models of the demo fit one
 * rank. Sampling (rs) and evaluation (eval) split the prompts by chunks and
 * gather the outputs to rank 0 in prompt order.
 *
 * Without a launcher (no OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_SIZE or
 * SLURM_STEP_NUM_TASKS in the environment) MPI is not initialised at all: one
 * process, and every function below is a no-op, so 1 rank is exactly the
 * single-process behaviour. Errors of a collective abort the job
 * (herd_comm_abort): a failed collective leaves the other ranks waiting.
 */
#ifndef HERD_POST_DP_H
#define HERD_POST_DP_H

#include <stdio.h>
#include "src/parallel/grid.h"
#include "src/model/model.h"

typedef struct {
    int       rank, size;
    int       mpi;     /* 1: MPI was initialised here (finalise on close) */
    herd_grid grid;    /* TP1 x CP1 x PP1 x DPsize, when mpi */
} herd_post_dp;

/* Join the job (MPI, the launcher check of herd_grid_create: a launch whose
 * ranks did not join one MPI job fails on every rank). 0 / -1. */
int  herd_post_dp_open(herd_post_dp *dp);
void herd_post_dp_close(herd_post_dp *dp);

/* This rank's share [*first, *first + *count) of n items, contiguous, in rank
 * order; the first n % size ranks get one more. */
void herd_post_dp_share(const herd_post_dp *dp, int64_t n, int64_t *first, int64_t *count);

/* 1 when `failed` is non-zero on any rank, else 0 (the same on every rank). */
int  herd_post_dp_any(const herd_post_dp *dp, int failed);

/* v[0..n) summed over the ranks, in place. */
void herd_post_dp_sum(const herd_post_dp *dp, double *v, int n);

/* Rank 0 writes every rank's text[0..len) to f, in rank order (the others'
 * f is ignored and may be NULL). 0, or -1 on rank 0 when the write fails. */
int  herd_post_dp_gather_text(const herd_post_dp *dp, const char *text, size_t len, FILE *f);

#endif
