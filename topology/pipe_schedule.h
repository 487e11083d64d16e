/* pipe_schedule.h — the order of a pipeline-parallel rank's forwards and
 * backwards (1F1B, and interleaved 1F1B with V model chunks per rank, Llama 3
 * paper §3.3.2) and a simulation of the P op lists. Pure planning: the trainer
 * runs these orders (src/parallel/pipeline.c) and herd plan charges their
 * activation memory and bubble (topology/memmodel.c, costmodel.c).
 *
 * Virtual stage s = c * PP + p is chunk c of pipeline rank p. */
#ifndef HERD_PIPE_SCHEDULE_H
#define HERD_PIPE_SCHEDULE_H

typedef struct {
    int kind;   /* 0 forward, 1 backward */
    int chunk;  /* the rank's model chunk */
    int mb;     /* micro-batch */
} herd_pipe_op;

/* The ordered ops of pipeline rank p (2 * N * V of them) given its number of
 * warm-up forwards. Forwards go in groups of P micro-batches, chunk by chunk
 * (Megatron's order; the last group may be partial: flexible N); backwards in
 * the same groups with the chunks reversed. */
void herd_pipe_order(int P, int V, int N, int p, int warmup, herd_pipe_op *ops);

/* The warm-up of every rank: Megatron's min(NV, (P-p-1) * (V > 1 ? 2 : 1) +
 * (V-1) * P), raised (for all ranks together) until a simulation of the P
 * op lists completes (no rank waits forever on another); warmup[P].
 * Returns the simulated bubble fraction with backward = 2 x forward time. */
double herd_pipe_plan(int P, int V, int N, int *warmup);

/* The textbook bubble (P-1) / (N*V + P-1). */
double herd_pipe_theory(int P, int V, int N);

#endif
