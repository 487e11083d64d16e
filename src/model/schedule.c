/* schedule.c — see schedule.h. */
#include <math.h>
#include "src/model/schedule.h"

double herd_lr_warmup_cosine(double peak, double lo, int64_t warmup, int64_t decay_end,
                             int64_t step)
{
    if (step < warmup) return peak * (double)(step + 1) / (double)warmup;
    int64_t span = decay_end - warmup;
    double p = span > 0 ? (double)(step - warmup) / (double)span : 1.0;
    if (p > 1.0) p = 1.0;
    return lo + 0.5 * (peak - lo) * (1.0 + cos(M_PI * p));
}

double herd_schedule_lr(const herd_config *c, int64_t step, int64_t tokens_seen)
{
    double lr = herd_lr_warmup_cosine(c->optim.lr, c->optim.min_lr, c->schedule.warmup_steps,
                                      c->schedule.decay_steps, step);
    if (c->schedule.anneal_tokens > 0 && c->train.max_tokens > 0) {
        double left = (double)(c->train.max_tokens - tokens_seen) / (double)c->schedule.anneal_tokens;
        if (left < 1.0) lr *= left > 0.0 ? left : 0.0;
    }
    return lr;
}

const herd_ramp_stage *herd_schedule_ramp(const herd_config *c, int64_t tokens_seen)
{
    const herd_ramp_stage *s = &c->batch.ramp[0];
    for (int i = 1; i < c->batch.n_ramp; i++)
        if (tokens_seen >= c->batch.ramp[i].after_tokens) s = &c->batch.ramp[i];
    return s;
}
