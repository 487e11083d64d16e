/* stop.c — agree across ranks to stop at one step after SIGUSR1/SIGTERM.
 * A signal lands on one rank (or on each at a different moment); the ranks
 * must all stop after the same step or the checkpoint collective deadlocks.
 * One MPI_Iallreduce in flight, completed at the next check: no step waits
 * for a round trip, and since every rank checks at every step, all ranks see
 * the same reduced flag at the same step.
 *
 * SIGTERM is ambiguous. Slurm sends the same SIGCONT + SIGTERM when srun -K1
 * tears a step down because one of its tasks died (SIG_TERM_KILL in Slurm's
 * launch_slurm.c; SIGKILL follows KillWait seconds later, 30 by default) and
 * when the job ends at its time limit, is preempted, cancelled or requeued.
 * After a peer's death the surviving ranks wait in a collective on it and can
 * never checkpoint: waiting for SIGKILL only delays the relaunch by KillWait.
 * At a time limit or a preemption every rank is alive and the checkpoint is
 * worth the wait. Only the ranks can tell the two apart, by whether they can
 * still agree: SIGTERM arms a grace timer, the agreement below (which needs
 * every rank) disarms it, and a rank that has not agreed when it expires
 * exits at once. SIGUSR1 (the time-limit warning, sent or forwarded by the
 * stage driver) asks for the checkpoint explicitly and never arms it.
 * The grace: HERD_STOP_GRACE_S (default 3 s), or three times the longest of
 * the last four step intervals when that is longer: a signal is agreed on at
 * the second check after it reached the first rank (the flag goes into the
 * reduction at the next check and comes out at the one after). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint/ckpt.h"
#include "monitoring/clock.h"

#define STOP_GRACE_DEFAULT_MS 3000
#define STOP_STEP_RING 4

static volatile sig_atomic_t got_signal;
static volatile sig_atomic_t grace_ms = STOP_GRACE_DEFAULT_MS;
static volatile sig_atomic_t grace_armed;
static volatile sig_atomic_t grace_off;     /* the ranks agreed, or SIGUSR1 asked: checkpoint */
static char grace_msg[200];
static size_t grace_msg_len;

static void set_timer_ms(long ms)
{
    struct itimerval it;
    memset(&it, 0, sizeof it);
    it.it_value.tv_sec = ms / 1000;
    it.it_value.tv_usec = (ms % 1000) * 1000;
    setitimer(ITIMER_REAL, &it, NULL);
}

static void on_signal(int sig)
{
    got_signal = sig;
    if (sig == SIGUSR1 || grace_off) {
        grace_off = 1;
        if (grace_armed) set_timer_ms(0);
        grace_armed = 0;
    } else if (sig == SIGTERM && !grace_armed) {
        grace_armed = 1;
        set_timer_ms(grace_ms);
    }
}

/* async-signal-safe: write(2) of a message formatted at create time, _exit */
static void on_grace_expired(int sig)
{
    (void)sig;
    if (!grace_armed || grace_off) return;
    ssize_t w = write(2, grace_msg, grace_msg_len);
    (void)w;
    _exit(128 + SIGTERM);
}

struct herd_ckpt_stopper {
    MPI_Comm comm;
    MPI_Request req;
    int in_flight;
    int send, recv;
    long floor_ms;
    double last_check;                    /* monotonic seconds, 0 before the first */
    double intervals[STOP_STEP_RING];     /* the last step intervals */
    int n_intervals;
};

/* HERD_STOP_GRACE_S: seconds, > 0; unset: the default. -1 on a bad value. */
static int grace_floor_ms(long *ms)
{
    const char *v = getenv("HERD_STOP_GRACE_S");
    *ms = STOP_GRACE_DEFAULT_MS;
    if (!v || !*v) return 0;
    char *end;
    double s = strtod(v, &end);
    if (*end || !(s > 0) || s > 86400) {
        fprintf(stderr, "checkpoint: stopper: HERD_STOP_GRACE_S '%s': not a number of seconds in (0, 86400]\n", v);
        return -1;
    }
    *ms = (long)(s * 1000 + 0.5);
    if (*ms < 1) *ms = 1;
    return 0;
}

/* the grace: the floor, or three of the longest recent step intervals */
static void update_grace(herd_ckpt_stopper *s)
{
    double t = herd_now_s();
    if (s->last_check > 0) {
        s->intervals[s->n_intervals % STOP_STEP_RING] = t - s->last_check;
        s->n_intervals++;
    }
    s->last_check = t;
    double longest = 0;
    int n = s->n_intervals < STOP_STEP_RING ? s->n_intervals : STOP_STEP_RING;
    for (int i = 0; i < n; i++)
        if (s->intervals[i] > longest) longest = s->intervals[i];
    long ms = (long)(3 * longest * 1000);
    if (ms < s->floor_ms) ms = s->floor_ms;
    if (ms > 86400000L) ms = 86400000L;
    grace_ms = (sig_atomic_t)ms;
}

int herd_ckpt_stopper_create(herd_ckpt_stopper **out, MPI_Comm comm)
{
    long floor_ms;
    if (grace_floor_ms(&floor_ms)) return -1;
    herd_ckpt_stopper *s = calloc(1, sizeof *s);
    if (!s) {
        fprintf(stderr, "checkpoint: stopper: out of memory\n");
        return -1;
    }
    s->comm = MPI_COMM_NULL;
    s->floor_ms = floor_ms;
    if (comm != MPI_COMM_NULL && MPI_Comm_dup(comm, &s->comm) != MPI_SUCCESS) {
        fprintf(stderr, "checkpoint: stopper: MPI_Comm_dup failed\n");
        free(s);
        return -1;
    }
    int rank = 0;
    if (s->comm != MPI_COMM_NULL) MPI_Comm_rank(s->comm, &rank);
    snprintf(grace_msg, sizeof grace_msg,
             "herd: rank %d: SIGTERM, and the ranks did not agree to stop within the grace "
             "(a peer is gone: the step is being torn down); exiting now, without a checkpoint\n",
             rank);
    grace_msg_len = strlen(grace_msg);
    got_signal = 0;
    grace_armed = 0;
    grace_off = 0;
    grace_ms = (sig_atomic_t)floor_ms;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGALRM);
    sigaddset(&sa.sa_mask, SIGUSR1);
    sigaddset(&sa.sa_mask, SIGTERM);
    sa.sa_flags = SA_RESTART;
    struct sigaction alarm_sa = sa;
    alarm_sa.sa_handler = on_grace_expired;
    if (sigaction(SIGUSR1, &sa, NULL) || sigaction(SIGTERM, &sa, NULL) ||
        sigaction(SIGALRM, &alarm_sa, NULL)) {
        fprintf(stderr, "checkpoint: stopper: cannot install the SIGUSR1/SIGTERM/SIGALRM handlers\n");
        if (s->comm != MPI_COMM_NULL) MPI_Comm_free(&s->comm);
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

int herd_ckpt_stopper_signal(const herd_ckpt_stopper *s) { (void)s; return got_signal; }

/* every rank agreed, so every rank is alive: the checkpoint goes ahead.
 * grace_off first: a SIGALRM handled meanwhile in another thread returns. */
static void agreed(void)
{
    grace_off = 1;
    set_timer_ms(0);
    grace_armed = 0;
}

int herd_ckpt_stopper_check(herd_ckpt_stopper *s)
{
    update_grace(s);
    if (s->comm == MPI_COMM_NULL) {
        if (got_signal) agreed();
        return got_signal != 0;
    }
    int stop = 0;
    if (s->in_flight) {
        MPI_Wait(&s->req, MPI_STATUS_IGNORE);   /* started a step ago: done by now */
        s->in_flight = 0;
        stop = s->recv != 0;
    }
    if (stop) agreed();
    else {
        s->send = got_signal != 0;
        MPI_Iallreduce(&s->send, &s->recv, 1, MPI_INT, MPI_MAX, s->comm, &s->req);
        s->in_flight = 1;
    }
    return stop;
}

void herd_ckpt_stopper_destroy(herd_ckpt_stopper *s)
{
    if (!s) return;
    if (s->in_flight) MPI_Wait(&s->req, MPI_STATUS_IGNORE);
    if (s->comm != MPI_COMM_NULL) MPI_Comm_free(&s->comm);
    free(s);
}
