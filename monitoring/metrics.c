/* metrics.c — JSON Lines step metrics. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "checkpoint/safe_file.h"
#include "monitoring/metrics.h"

int herd_metrics_format(char *buf, size_t size, const herd_step_metrics *s)
{
    int n = snprintf(buf, size,
                    "{\"step\":%lld,\"loss\":%.17g,\"lr\":%.17g,\"grad_norm\":%.17g,"
                    "\"tokens_seen\":%lld,\"batch_tokens\":%lld,\"seq_len\":%d,"
                    "\"step_seconds\":%.6f,\"tokens_per_second\":%.3f,\"tflops\":%.6f,"
                    "\"mfu\":%.6f}",
                    (long long)s->step, s->loss, s->lr, s->grad_norm, (long long)s->tokens_seen,
                    (long long)s->batch_tokens, s->seq_len, s->step_seconds,
                    s->tokens_per_second, s->tflops, s->mfu);
    if ((!s->has_times && !s->has_mem) || n < 1 || (size_t)n >= size) return n;
    n--; /* reopen the object: drop its closing brace */
    for (int p = 0; s->has_times && p < HERD_T_COUNT && (size_t)n < size; p++)
        n += snprintf(buf + n, size - n, ",\"%s_s\":%.6f", herd_timer_part_name(p), s->times.seconds[p]);
    if (s->has_mem && (size_t)n < size)
        n += snprintf(buf + n, size - n, ",\"mem_peak_mib\":%.3f", s->mem_peak_bytes / 1048576.0);
    if ((size_t)n < size) n += snprintf(buf + n, size - n, "}");
    return n;
}

int herd_metrics_open_fresh(herd_metrics *m, const char *path, int fresh)
{
    snprintf(m->path, sizeof m->path, "%s", path);
    m->f = NULL;
    int fd = herd_safe_open_append(path, fresh);   /* never through a planted link; 0640 */
    if (fd >= 0 && !(m->f = fdopen(fd, "a"))) close(fd);
    if (!m->f) {
        fprintf(stderr, "herd: %s: cannot open metrics file\n", path);
        return -1;
    }
    return 0;
}

int herd_metrics_open(herd_metrics *m, const char *path) { return herd_metrics_open_fresh(m, path, 0); }

static int put_line(herd_metrics *m, const char *line)
{
    if (fprintf(m->f, "%s\n", line) < 0 || fflush(m->f) != 0) {
        fprintf(stderr, "herd: %s: write failed: %s\n", m->path, strerror(errno));
        return -1;
    }
    return 0;
}

int herd_metrics_write(herd_metrics *m, const herd_step_metrics *s)
{
    char line[2048];
    herd_metrics_format(line, sizeof line, s);
    return put_line(m, line);
}

int herd_metrics_event_restart(herd_metrics *m, int64_t step, double time, int64_t restarts)
{
    char line[256];
    snprintf(line, sizeof line, "{\"event\":\"restart\",\"step\":%lld,\"time\":%.3f,\"restarts\":%lld}",
             (long long)step, time, (long long)restarts);
    return put_line(m, line);
}

int herd_metrics_event_checkpoint(herd_metrics *m, int64_t step, double time, double stall_s,
                                  double write_s)
{
    char line[256];
    snprintf(line, sizeof line,
             "{\"event\":\"checkpoint\",\"step\":%lld,\"time\":%.3f,\"stall_s\":%.6f,\"write_s\":%.6f}",
             (long long)step, time, stall_s, write_s);
    return put_line(m, line);
}

void herd_metrics_close(herd_metrics *m)
{
    if (m->f) fclose(m->f);
    m->f = NULL;
}
