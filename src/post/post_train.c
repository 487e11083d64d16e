/* post_train.c — see post_train.h: what the SFT, RM and DPO runs share. */
#include <stdio.h>
#include "src/model/schedule.h"
#include "src/post/post_train.h"

double herd_post_lr(const herd_post_run *a, const herd_config *c, int64_t step, int64_t steps)
{
    double lr = a->lr > 0 ? a->lr : c->optim.lr, lo = c->optim.lr > 0 ? lr * c->optim.min_lr / c->optim.lr : 0;
    int64_t warm = c->schedule.warmup_steps < steps / 10 ? c->schedule.warmup_steps : steps / 10;
    return herd_lr_warmup_cosine(lr, lo, warm, steps - 1, step);
}

void herd_post_engine(herd_step_engine *e, herd_model *m, herd_adamw *opt, const herd_config *c,
                      const herd_post_dp *dp)
{
    *e = (herd_step_engine){.m = m, .c = c, .dp = dp->size > 1 ? dp->grid.world : NULL, .adamw = opt};
}

int herd_post_log_due(const herd_config *c, int64_t step, int64_t steps)
{
    return step % (c->train.log_every > 0 ? c->train.log_every : 10) == 0 || step == steps;
}

int herd_post_load_pref(const char *path, const herd_post_env *e, herd_pref_data *d, const char *who)
{
    if (herd_pref_data_load(d, path, e->tok, e->cfg.model.max_seq_len)) return -1;
    printf("herd post %s: %s: %lld records, %lld kept, %lld skipped as identical responses, "
           "%lld skipped as longer than model.max_seq_len %d\n", who, path,
           (long long)d->stats.lines, (long long)d->stats.kept, (long long)d->stats.skipped_same,
           (long long)d->stats.skipped_long, e->cfg.model.max_seq_len);
    if (d->n == 0) {
        fprintf(stderr, "herd post %s: %s: no usable preference record\n", who, path);
        return -1;
    }
    return 0;
}
