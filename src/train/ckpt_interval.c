/* ckpt_interval.c — see ckpt_interval.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/train/ckpt_interval.h"

double herd_ckpt_restart_from_log(const char *path, int *n_restarts)
{
    *n_restarts = 0;
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f) return -1;
    char line[4096];
    double sum = 0;
    while (fgets(line, sizeof line, f)) {
        /* "... restart 1/3: cause: ...; time lost: 9 s down since the last step logged ..." */
        const char *p = strstr(line, "time lost: ");
        if (!strstr(line, " restart ") || !p) continue;
        char *end;
        double s = strtod(p + 11, &end);
        if (end == p + 11 || strncmp(end, " s down", 7) || !(s >= 0)) continue;
        sum += s;
        (*n_restarts)++;
    }
    fclose(f);
    return *n_restarts ? sum / *n_restarts : -1;
}

int herd_ckpt_interval_init(herd_ckpt_interval *iv, const herd_config *c, int world, const char *recovery_log)
{
    memset(iv, 0, sizeof *iv);
    herd_goodput_inputs_init(&iv->in);
    const herd_config_checkpoint *k = &c->checkpoint;
    if (k->mtbf_s > 0) {
        iv->in.mtbf_s = k->mtbf_s;
        snprintf(iv->mtbf_from, sizeof iv->mtbf_from, "checkpoint.mtbf_s");
    } else {
        iv->in.mtbf_s = herd_goodput_mtbf_from_gpu_rate(k->failures_per_gpu_day, world);
        snprintf(iv->mtbf_from, sizeof iv->mtbf_from, "%g per GPU-day x %d ranks", k->failures_per_gpu_day, world);
    }
    if (!(iv->in.mtbf_s > 0)) {
        fprintf(stderr, "herd: checkpoint.every auto: no interruption rate (checkpoint.mtbf_s, "
                "checkpoint.failures_per_gpu_day)\n");
        return -1;
    }
    int n = 0;
    double logged = herd_ckpt_restart_from_log(recovery_log, &n);
    if (k->restart_s > 0) {
        iv->in.restart_s = k->restart_s;
        snprintf(iv->restart_from, sizeof iv->restart_from, "checkpoint.restart_s");
    } else if (logged >= 0) {
        iv->in.restart_s = logged;
        snprintf(iv->restart_from, sizeof iv->restart_from, "mean of %d in %.120s", n, recovery_log);
    } else {
        iv->in.restart_s = HERD_CKPT_AUTO_RESTART_S;
        snprintf(iv->restart_from, sizeof iv->restart_from, "assumed: no restart logged yet");
    }
    iv->every = HERD_CKPT_AUTO_FIRST;
    return 0;
}

void herd_ckpt_interval_add_step(herd_ckpt_interval *iv, double step_s)
{
    if (!(step_s > 0)) return;
    iv->step_sum += step_s;
    iv->n_step++;
}

void herd_ckpt_interval_add_ckpt(herd_ckpt_interval *iv, double stall_s, double write_s)
{
    iv->stall_sum += stall_s > 0 ? stall_s : 0;
    iv->write_sum += write_s > 0 ? write_s : 0;
    iv->n_ckpt++;
}

void herd_ckpt_interval_tick(herd_ckpt_interval *iv, double now, double stall_s)
{
    /* the first tick's interval holds the warm-up step: not counted */
    if (iv->last_t > 0) herd_ckpt_interval_add_step(iv, now - iv->last_t - iv->pending_stall);
    iv->last_t = now;
    iv->pending_stall = stall_s;
}

int herd_ckpt_interval_due(const herd_ckpt_interval *iv, int64_t step, int64_t last_saved)
{
    return step - (last_saved < 0 ? 0 : last_saved) >= iv->every;
}

int herd_ckpt_interval_choose(herd_ckpt_interval *iv, char *why, size_t n)
{
    if (iv->n_step == 0 || iv->n_ckpt == 0) {
        snprintf(why, n, "every %d steps until a checkpoint's stall and write are measured", iv->every);
        return iv->every;
    }
    herd_goodput_inputs *in = &iv->in;
    in->step_s = iv->step_sum / iv->n_step;
    in->stall_s = iv->stall_sum / iv->n_ckpt;
    in->write_s = iv->write_sum / iv->n_ckpt;
    herd_goodput_result r;
    iv->every = herd_goodput_best_every(in, 1 << 30, &r);
    iv->predicted = r.goodput;
    snprintf(why, n,
             "every %d steps: predicted goodput %.2f%% from step %.4g s (mean of %d), checkpoint stall %.4g s "
             "and write %.4g s (mean of %d), restart %.4g s (%s), MTBF %.4g s (%s); Young/Daly %.4g s of work",
             iv->every, 100 * r.goodput, in->step_s, iv->n_step, in->stall_s, in->write_s, iv->n_ckpt,
             in->restart_s, iv->restart_from, in->mtbf_s, iv->mtbf_from, herd_goodput_young_daly_s(in));
    return iv->every;
}

int herd_ckpt_interval_update(herd_ckpt_interval *iv, herd_ckpt_writer *w, herd_comm *world, int root,
                              int64_t step)
{
    herd_ckpt_stats st;
    herd_ckpt_get_stats(w, &st);
    if (st.n_committed > iv->seen_commits) {
        herd_ckpt_interval_add_ckpt(iv, st.stall_s, st.write_s + st.commit_s);
        iv->seen_commits = st.n_committed;
    }
    char why[768];
    int32_t every = herd_ckpt_interval_choose(iv, why, sizeof why);
    /* the ranks measured slightly different costs: one interval for all */
    if (world && herd_comm_all_reduce(world, &every, 1, HERD_I32, HERD_MAX)) return -1;
    if (root && every != iv->logged_every) {
        printf("checkpoint.every auto at step %lld: %s%s\n", (long long)step, why,
               every != iv->every ? " (the largest over the ranks taken)" : "");
        fflush(stdout);
    }
    iv->every = every;
    iv->logged_every = every;
    return 0;
}
