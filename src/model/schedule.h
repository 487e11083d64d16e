/* schedule.h — the learning-rate schedule and the batch-size ramp.
 *
 * lr(step, tokens):
 *   step < warmup_steps:  lr * (step + 1) / warmup_steps          (linear warm-up)
 *   otherwise:            cosine from lr to min_lr, reaching min_lr at decay_steps
 *                         and staying there
 *   then, when schedule.anneal_tokens > 0: multiplied by
 *     min(1, (max_tokens - tokens) / anneal_tokens)               (final linear decay to 0,
 *                                                                  the paper's annealing)
 * ramp(tokens): the last stage whose after_tokens <= tokens
 *   (the paper: 4M tokens at 4,096 -> 8M at 8,192 after 252M -> 16M after 2.87T).
 */
#ifndef HERD_SCHEDULE_H
#define HERD_SCHEDULE_H

#include <stdint.h>
#include "src/config/config.h"

/* The shape both pre- and post-training use: linear warm-up to `peak` over
 * `warmup` steps, then a cosine from peak down to lo, reaching lo at step
 * decay_end and staying there. */
double herd_lr_warmup_cosine(double peak, double lo, int64_t warmup, int64_t decay_end,
                             int64_t step);

/* Pre-training's schedule (above) from the config. */
double herd_schedule_lr(const herd_config *c, int64_t step, int64_t tokens_seen);
const herd_ramp_stage *herd_schedule_ramp(const herd_config *c, int64_t tokens_seen);

#endif
