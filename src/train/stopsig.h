/* stopsig.h — SIGUSR1 (Slurm's warning before the time limit, --signal=B:USR1@S
 * forwarded by slurm/run_stage.sh) and SIGTERM (preemption, scancel) ask the
 * trainer to stop at the next step boundary: checkpoint, commit, exit
 * HERD_EXIT_REQUEUE (75), and the job script requeues the job.
 *
 * The handler only records the signal; the step loop polls. Under MPI the ranks
 * may see the signal at different steps: the trainer must agree on it (an
 * MPI_Allreduce MAX of herd_stopsig_pending() once per step) so that every rank
 * checkpoints the same step. */
#ifndef HERD_STOPSIG_H
#define HERD_STOPSIG_H

/* Install the handlers for SIGUSR1 and SIGTERM. 0 / -1 with a message. */
int herd_stopsig_install(void);

/* The first stop signal received (SIGUSR1 or SIGTERM), or 0. */
int herd_stopsig_pending(void);

/* Forget a received signal (tests; a trainer that stops does not need it). */
void herd_stopsig_clear(void);

#endif
