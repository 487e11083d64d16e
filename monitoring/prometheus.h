/* prometheus.h — rank 0's Prometheus text-format file for node_exporter's
 * textfile collector (--collector.textfile.directory=DIR; the file must end
 * in .prom).
 *
 * The file is replaced atomically: written to PATH.tmp.PID in the same
 * directory (not ending in .prom, so the collector never reads it), fsynced,
 * renamed over PATH, and the directory fsynced. A reader sees the old file or
 * the new one, never a mix.
 *
 * Metrics (all gauges unless said; every family has HELP and TYPE lines):
 *   herd_step                                   optimizer steps done
 *   herd_loss, herd_grad_norm, herd_learning_rate
 *   herd_tokens_total                  counter  tokens trained on
 *   herd_step_seconds, herd_tokens_per_second, herd_mfu_ratio
 *   herd_step_part_seconds{part="compute|comm_tp|...|other"}  last step's split
 *   herd_comm_seconds{group="tp|cp|pp|dp"}      last step's exposed communication
 *   herd_checkpoint_seconds                     last checkpoint's training stall
 *   herd_checkpoint_last_success_timestamp_seconds   unix time of the last commit
 *   herd_restarts_total                counter  restarts of this run
 *   herd_straggler_score{rank="3",host="node2"} compute time / median of peers
 *   herd_straggler_suspect{rank="3",host="node2"} 1 when flagged, else 0
 */
#ifndef HERD_PROMETHEUS_H
#define HERD_PROMETHEUS_H

#include <stdint.h>
#include <stdio.h>
#include "monitoring/timers.h"

typedef struct {
    int         rank;
    const char *host;
    double      score;   /* robust ratio of this rank's compute time to the median */
    int         suspect; /* consistently slow: flagged by the detector */
} herd_prom_straggler;

typedef struct {
    int64_t step;
    double  loss, grad_norm, lr;
    int64_t tokens_total;
    double  step_seconds, tokens_per_second, mfu;
    int     has_times;          /* times below are valid */
    herd_step_times times;      /* last step's split (comm per group comes from it) */
    double  checkpoint_seconds; /* < 0: no checkpoint yet (the family is left out) */
    double  checkpoint_last_success_unix;
    int64_t restarts_total;
    int     n_stragglers;
    const herd_prom_straggler *stragglers;
} herd_prom_snapshot;

/* Write the text format to f. 0, or -1 on a write error. */
int herd_prometheus_format(FILE *f, const herd_prom_snapshot *s);

/* Replace `path` atomically with the snapshot. 0, or -1 with a message
 * naming the path (the old file, if any, is left as it was). */
int herd_prometheus_write(const char *path, const herd_prom_snapshot *s);

#endif
