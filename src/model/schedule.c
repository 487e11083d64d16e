/* schedule.c — see schedule.h. */
#include <math.h>
#include "src/model/schedule.h"

double herd_schedule_lr(const herd_config *c, int64_t step, int64_t tokens_seen)
{
    double lr;
    if (step < c->schedule.warmup_steps) {
        lr = c->optim.lr * (double)(step + 1) / (double)c->schedule.warmup_steps;
    } else {
        int64_t span = c->schedule.decay_steps - c->schedule.warmup_steps;
        double p = span > 0 ? (double)(step - c->schedule.warmup_steps) / (double)span : 1.0;
        if (p > 1.0) p = 1.0;
        lr = c->optim.min_lr + 0.5 * (c->optim.lr - c->optim.min_lr) * (1.0 + cos(M_PI * p));
    }
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
