/* weights.h — a one-rank model's parameters to and from safetensors files
 * (the format of `herd train --dump-params` and `herd ckpt export`), so that
 * post-training starts from a pretrained model and hands its result on.
 * Tensors are matched by their Hugging Face names; shapes must agree. */
#ifndef HERD_WEIGHTS_H
#define HERD_WEIGHTS_H

#include "src/model/model.h"

/* Copy every tensor of m from the F32 tensors of path. -1 with
 * "herd: PATH: TENSOR: ..." on a missing tensor, a wrong shape or dtype, or a
 * truncated file. Extra tensors in the file are ignored. The file holds whole
 * tensors; a tensor-parallel model reads its rank's slice of each (the
 * pieces of m->tensors), so one file loads on any TP layout. */
int herd_weights_load(herd_model *m, const char *path);
/* Write every tensor of m (tp 1) crash-safely. */
int herd_weights_save(const herd_model *m, const char *path);

#endif
