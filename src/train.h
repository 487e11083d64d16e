/* train.h — the training loop: batch ramp, gradient accumulation, AdamW,
 * metrics. Single process for now; the parallel issues grow it. */
#ifndef HERD_TRAIN_H
#define HERD_TRAIN_H

#include "src/config.h"

/* Train per `c`; `config_origin` names the config in messages.
 * 0 on success, -1 on failure (message printed). */
int herd_train(const herd_config *c, const char *config_origin);

#endif
