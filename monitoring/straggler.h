/* straggler.h — find the ranks (and hosts) that are consistently slower than
 * their peers.
 *
 * Every `every` steps each rank passes its compute seconds (e.g. the sum of
 * herd_step_times.seconds[HERD_T_COMPUTE] since the last gather) to
 * herd_straggler_gather(), a collective over the communicator given at create
 * time. Each gather gives every rank the ratio r = t_rank / median(t_all).
 * A rank's score is the median of its last `window` ratios: one slow gather
 * (a page fault storm, a checkpoint) moves the median little, a rank that is
 * slow in most gathers moves it all the way. A rank is a suspect once the
 * window is full and its score is above `threshold` (e.g. 1.2: 20% slower than
 * the median rank). Ratios to the median rather than z-scores: with a few
 * ranks the spread (MAD) of a healthy job is near zero and z-scores explode.
 *
 * When a rank becomes a suspect, rank 0 prints one warning line:
 *   herd: straggler: rank 3 on host node2: compute 1.85x the median over the last 8 gathers
 * and one line when it recovers. Every rank holds the same scores (the data
 * is all-gathered), so any rank may write the suspect hosts file that the
 * Slurm scripts read to --exclude nodes at the next restart.
 */
#ifndef HERD_STRAGGLER_H
#define HERD_STRAGGLER_H

#include <mpi.h>
#include <stdio.h>
#include "monitoring/prometheus.h"

typedef struct herd_straggler herd_straggler;

/* Collective over `comm` (gathers the host names). window >= 1, threshold > 1.
 * 0, or -1 with a message naming the bad argument. */
int herd_straggler_create(herd_straggler **out, MPI_Comm comm, int window, double threshold);
void herd_straggler_destroy(herd_straggler *s);

/* Collective: every rank passes its compute seconds since the last gather.
 * 0, or -1 with a message (an MPI error, a negative or non-finite time). */
int herd_straggler_gather(herd_straggler *s, double compute_seconds);

/* Scores per rank of the communicator (rank order); valid until destroy. The
 * array suits herd_prom_snapshot.stragglers. */
const herd_prom_straggler *herd_straggler_scores(const herd_straggler *s, int *n_ranks);

/* Number of gathers so far. */
int herd_straggler_n_gathers(const herd_straggler *s);

/* Suspect ranks, rank order, at most `max` written; returns how many there are. */
int herd_straggler_suspects(const herd_straggler *s, int *ranks, int max);

/* Write the distinct hosts of the suspect ranks, one per line, atomically
 * (temp file, fsync, rename): an empty file when there are none. Call on one
 * rank. 0, or -1 with a message naming the path. */
int herd_straggler_write_hosts(const herd_straggler *s, const char *path);

/* The pure scoring step, exposed for tests: given the times of one gather,
 * writes ratio[r] = t[r] / median(t) (1 when the median is 0). */
void herd_straggler_ratios(const double *t, int n, double *ratio);

#endif
