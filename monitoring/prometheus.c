/* prometheus.c — Prometheus text exposition format 0.0.4, written atomically. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <stdlib.h>
#include "checkpoint/safe_file.h"
#include "monitoring/prometheus.h"

/* Go's ParseFloat spellings, which the text format uses for non-finite values */
static void put_value(FILE *f, double v)
{
    if (isnan(v)) fputs("NaN", f);
    else if (isinf(v)) fputs(v > 0 ? "+Inf" : "-Inf", f);
    else fprintf(f, "%.17g", v);
}

/* label values escape backslash, double quote and newline */
static void put_label(FILE *f, const char *v)
{
    for (const char *p = v ? v : ""; *p; p++) {
        if (*p == '\\') fputs("\\\\", f);
        else if (*p == '"') fputs("\\\"", f);
        else if (*p == '\n') fputs("\\n", f);
        else fputc(*p, f);
    }
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(FILE *f, const char *name, const char *type, const char *help, double v)
{
    family(f, name, type, help);
    fprintf(f, "%s ", name);
    put_value(f, v);
    fputc('\n', f);
}

int herd_prometheus_format(FILE *f, const herd_prom_snapshot *s)
{
    sample(f, "herd_step", "gauge", "Optimizer steps done.", (double)s->step);
    sample(f, "herd_loss", "gauge", "Training loss of the last step (mean over its targets).", s->loss);
    sample(f, "herd_grad_norm", "gauge", "Global gradient norm of the last step, before clipping.",
           s->grad_norm);
    sample(f, "herd_learning_rate", "gauge", "Learning rate of the last step.", s->lr);
    sample(f, "herd_tokens_total", "counter", "Tokens trained on.", (double)s->tokens_total);
    sample(f, "herd_step_seconds", "gauge", "Wall time of the last step.", s->step_seconds);
    sample(f, "herd_tokens_per_second", "gauge", "Training throughput of the last step.",
           s->tokens_per_second);
    sample(f, "herd_mfu_ratio", "gauge", "Model FLOPs utilisation of the last step (0 to 1).", s->mfu);
    if (s->has_times) {
        family(f, "herd_step_part_seconds", "gauge",
               "Last step's wall time split into exclusive parts (rank 0).");
        for (int p = 0; p < HERD_T_COUNT; p++) {
            fprintf(f, "herd_step_part_seconds{part=\"%s\"} ", herd_timer_part_name(p));
            put_value(f, s->times.seconds[p]);
            fputc('\n', f);
        }
        static const struct { const char *group; herd_timer_part part; } comm[] = {
            {"tp", HERD_T_COMM_TP}, {"cp", HERD_T_COMM_CP}, {"pp", HERD_T_COMM_PP}, {"dp", HERD_T_COMM_DP}};
        family(f, "herd_comm_seconds", "gauge",
               "Last step's exposed communication time per parallel group (rank 0).");
        for (size_t i = 0; i < sizeof comm / sizeof comm[0]; i++) {
            fprintf(f, "herd_comm_seconds{group=\"%s\"} ", comm[i].group);
            put_value(f, s->times.seconds[comm[i].part]);
            fputc('\n', f);
        }
    }
    if (s->checkpoint_seconds >= 0) {
        sample(f, "herd_checkpoint_seconds", "gauge",
               "Training stall of the last checkpoint.", s->checkpoint_seconds);
        sample(f, "herd_checkpoint_last_success_timestamp_seconds", "gauge",
               "Unix time the last checkpoint was committed.", s->checkpoint_last_success_unix);
    }
    sample(f, "herd_restarts_total", "counter", "Restarts of this run from a checkpoint.",
           (double)s->restarts_total);
    if (s->n_stragglers > 0) {
        family(f, "herd_straggler_score", "gauge",
               "Rank's compute time over the median of its peers, median over the window.");
        for (int i = 0; i < s->n_stragglers; i++) {
            fprintf(f, "herd_straggler_score{rank=\"%d\",host=\"", s->stragglers[i].rank);
            put_label(f, s->stragglers[i].host);
            fputs("\"} ", f);
            put_value(f, s->stragglers[i].score);
            fputc('\n', f);
        }
        family(f, "herd_straggler_suspect", "gauge",
               "1 when the rank is consistently slower than its peers, else 0.");
        for (int i = 0; i < s->n_stragglers; i++) {
            fprintf(f, "herd_straggler_suspect{rank=\"%d\",host=\"", s->stragglers[i].rank);
            put_label(f, s->stragglers[i].host);
            fprintf(f, "\"} %d\n", s->stragglers[i].suspect ? 1 : 0);
        }
    }
    return ferror(f) ? -1 : 0;
}

int herd_prometheus_write(const char *path, const herd_prom_snapshot *s)
{
    /* formatted in memory, then the crash-safe write: a scraper sees the
     * previous file or this one, never a half-written one */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        fprintf(stderr, "herd: %s: prometheus file: out of memory\n", path);
        return -1;
    }
    int rc = herd_prometheus_format(f, s);
    if (fclose(f) != 0) rc = -1;
    if (rc == 0) rc = herd_safe_write(path, buf, len);
    else fprintf(stderr, "herd: %s: prometheus file: formatting failed\n", path);
    free(buf);
    return rc;
}
