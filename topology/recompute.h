/* recompute.h — activation recomputation modes (train.recompute), shared by
 * the model (src/model/model.c, which does it) and herd plan's memory estimate
 * (topology/memmodel.c, which charges it):
 * NONE keeps every tensor the backward reads;
 * SELECTIVE drops the RMSNorm outputs (the q/k/v and gate/up GEMM inputs) and
 *   the SwiGLU product (the down-projection input) and recomputes them in the
 *   backward: elementwise work and, with sequence parallelism, the all-gather
 *   of the norm outputs; no GEMM is rerun;
 * FULL keeps each layer's input only and reruns the layer's forward. */
#ifndef HERD_RECOMPUTE_H
#define HERD_RECOMPUTE_H

enum { HERD_RECOMPUTE_NONE = 0, HERD_RECOMPUTE_SELECTIVE = 1, HERD_RECOMPUTE_FULL = 2 };

#endif
