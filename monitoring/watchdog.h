/* watchdog.h — the hang watchdog: one heartbeat thread per rank.
 *
 * Slurm notices a dead rank (srun -K1) but not a hung one: a rank stopped by
 * SIGSTOP, a deadlocked collective or a stuck file system leaves every other
 * rank waiting until the job's time limit. The trainer calls beat() once per
 * step; a background thread checks that the time since the last beat stays
 * under a limit (a second, longer limit applies while a checkpoint commits).
 * When it does not, the thread prints what the rank was waiting on — the last
 * entries of a small ring buffer filled by enter()/leave() around collectives
 * and phases — with the step, rank and host, and ends the process with
 * _exit(HERD_EXIT_HANG) (76), so that srun -K1 / mpirun tear the job step down
 * and the stage driver (slurm/run_stage.sh) restarts it.
 *
 * One watchdog per process. Every call but start() is safe to make when the
 * watchdog is not running (it does nothing), so that the trainer can call
 * them unconditionally. Functions return 0 / -1 with a message on stderr.
 */
#ifndef HERD_WATCHDOG_H
#define HERD_WATCHDOG_H

#include <stdint.h>

#define HERD_WATCHDOG_RING 16 /* entries kept; the report prints them all, oldest first */

/* Start the heartbeat thread. step_limit_s: longest time allowed between two
 * beats; commit_limit_s (>= step_limit_s): the limit while commit(1) is in
 * effect. host may be NULL (gethostname is used). The clock starts now. */
int herd_watchdog_start(double step_limit_s, double commit_limit_s, int rank, const char *host);

/* The step loop progressed to `step`: resets the clock. */
void herd_watchdog_beat(int64_t step);

/* About to wait in a collective or enter a phase, printf-style
 * ("allreduce grads bytes=%zu"); recorded with its start time in the ring. */
void herd_watchdog_enter(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The innermost open wait finished (its end time is recorded). */
void herd_watchdog_leave(void);

/* active = 1 while a checkpoint commits (the longer limit applies), 0 after;
 * either way the clock restarts, since the phase change is progress. */
void herd_watchdog_commit(int active);

/* Stop and join the thread (idempotent). */
void herd_watchdog_stop(void);

/* Write the report (the same text the watchdog prints when it fires) to fd;
 * for a signal handler or a debugger: uses only write(2). */
void herd_watchdog_report(int fd, const char *why);

#endif
