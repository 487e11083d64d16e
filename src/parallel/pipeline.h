/* pipeline.h — the pipeline-parallel schedules (Llama 3 paper §3.3.2):
 * 1F1B (one chunk per rank) and interleaved 1F1B with V chunks per rank,
 * for any number of micro-batches N >= PP, over asynchronous point-to-point
 * (herd_comm_isend / irecv, receives posted one op ahead so they overlap the
 * compute of the current op).
 *
 * Virtual stage s = c * PP + p is chunk c of pipeline rank p (src/model/model.h).
 * A rank's ops are F(c, mb) and B(c, mb); an activation slot is taken when a
 * micro-batch's forward input is first needed and given back as soon as its
 * backward is done, so with 1F1B no stage holds more than PP micro-batches of
 * activations (stage p: PP - p at most, + 1 for the receive posted ahead when
 * p > 0).
 */
#ifndef HERD_PIPELINE_H
#define HERD_PIPELINE_H

#include <stdint.h>
#include <stdio.h>
#include "src/model/model.h"
#include "topology/pipe_schedule.h"


typedef struct {
    double t0, t1;  /* seconds since the pipeline's start */
    int kind, chunk, mb;
} herd_pipe_event;

typedef struct {
    herd_pipe_event *ev;   /* [2 * N * V] this rank's ops as they ran */
    int    n_ev;
    double span;           /* seconds from the start to this rank's last op */
    double busy;           /* seconds inside forward / backward compute */
    int    peak_slots;     /* the most activation slots held at once this step */
} herd_pipe_stats;

/* One step's forwards and backwards of n_micro micro-batches of B x T tokens
 * (host arrays [n_micro * B * T], every rank of the pipeline group the same
 * ones); gradients of (loss_scale * summed loss) accumulate into m->grads.
 * *loss_sum gets the summed loss of all micro-batches on every rank of the
 * pipeline group. st may be NULL; with st the ranks start together
 * (barrier) so that the timelines line up. -1 on a failure (message
 * printed); a failed transfer aborts the job. */
int herd_pipe_run(herd_model *m, const int32_t *tokens, const int32_t *targets,
                  const int32_t *doc, int n_micro, int B, int T, float loss_scale,
                  double *loss_sum, herd_pipe_stats *st);
void herd_pipe_stats_free(herd_pipe_stats *st);

/* Gather every pipeline rank's stats to pipeline rank 0 and print there the
 * timeline of each rank ('0'-'9' forward of micro-batch mb % 10, 'a'-'z'
 * backward of mb % 26, '.' idle; upper rows chunk order in the legend), the
 * measured bubble (1 - busy / span) beside the theory and the simulated
 * value, and the peak activation slots per stage. Collective over m->pp. */
int herd_pipe_print(const herd_model *m, const herd_pipe_stats *st, int n_micro, FILE *out);

#endif
