/* average.h — model averaging: the element-wise mean of weights files of one
 * shape (the last step of a post-training round, as the paper averages the
 * models of its runs). */
#ifndef HERD_AVERAGE_H
#define HERD_AVERAGE_H

#include "src/post/post_common.h"

/* out = the mean of the n weights files in[] (safetensors, the config's
 * shape). Prints one line; 0, or -1 with a message naming the file. */
int herd_post_weights_average(const herd_post_env *e, const char *out, const char *const *in, int n);

#endif
