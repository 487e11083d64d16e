/* metrics.c — JSON Lines step metrics. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "monitoring/metrics.h"

int herd_metrics_format(char *buf, size_t size, const herd_step_metrics *s)
{
    return snprintf(buf, size,
                    "{\"step\":%lld,\"loss\":%.17g,\"lr\":%.17g,\"grad_norm\":%.17g,"
                    "\"tokens_seen\":%lld,\"batch_tokens\":%lld,\"seq_len\":%d,"
                    "\"step_seconds\":%.6f,\"tokens_per_second\":%.3f,\"tflops\":%.6f,"
                    "\"mfu\":%.6f,\"compute_s\":%.6f,\"comm_tp_s\":%.6f,\"comm_dp_s\":%.6f,"
                    "\"comm_world_s\":%.6f}",
                    (long long)s->step, s->loss, s->lr, s->grad_norm, (long long)s->tokens_seen,
                    (long long)s->batch_tokens, s->seq_len, s->step_seconds,
                    s->tokens_per_second, s->tflops, s->mfu, s->compute_s, s->comm_tp_s,
                    s->comm_dp_s, s->comm_world_s);
}

int herd_metrics_open(herd_metrics *m, const char *path)
{
    snprintf(m->path, sizeof m->path, "%s", path);
    m->f = fopen(path, "a");
    if (!m->f) {
        fprintf(stderr, "herd: %s: cannot open metrics file: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int herd_metrics_write(herd_metrics *m, const herd_step_metrics *s)
{
    char line[1024];
    herd_metrics_format(line, sizeof line, s);
    if (fprintf(m->f, "%s\n", line) < 0 || fflush(m->f) != 0) {
        fprintf(stderr, "herd: %s: write failed: %s\n", m->path, strerror(errno));
        return -1;
    }
    return 0;
}

void herd_metrics_close(herd_metrics *m)
{
    if (m->f) fclose(m->f);
    m->f = NULL;
}
