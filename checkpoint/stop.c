/* stop.c — agree across ranks to stop at one step after SIGUSR1/SIGTERM.
 * A signal lands on one rank (or on each at a different moment); the ranks
 * must all stop after the same step or the checkpoint collective deadlocks.
 * One MPI_Iallreduce in flight, completed at the next check: no step waits
 * for a round trip, and since every rank checks at every step, all ranks see
 * the same reduced flag at the same step. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "checkpoint/ckpt.h"

static volatile sig_atomic_t got_signal;

static void on_signal(int sig) { got_signal = sig; }

struct herd_ckpt_stopper {
    MPI_Comm comm;
    MPI_Request req;
    int in_flight;
    int send, recv;
};

int herd_ckpt_stopper_create(herd_ckpt_stopper **out, MPI_Comm comm)
{
    herd_ckpt_stopper *s = calloc(1, sizeof *s);
    s->comm = MPI_COMM_NULL;
    if (comm != MPI_COMM_NULL && MPI_Comm_dup(comm, &s->comm) != MPI_SUCCESS) {
        fprintf(stderr, "checkpoint: stopper: MPI_Comm_dup failed\n");
        free(s);
        return -1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGUSR1, &sa, NULL) || sigaction(SIGTERM, &sa, NULL)) {
        fprintf(stderr, "checkpoint: stopper: cannot install the SIGUSR1/SIGTERM handlers\n");
        if (s->comm != MPI_COMM_NULL) MPI_Comm_free(&s->comm);
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

int herd_ckpt_stopper_signal(const herd_ckpt_stopper *s) { (void)s; return got_signal; }

int herd_ckpt_stopper_check(herd_ckpt_stopper *s)
{
    if (s->comm == MPI_COMM_NULL) return got_signal != 0;
    int stop = 0;
    if (s->in_flight) {
        MPI_Wait(&s->req, MPI_STATUS_IGNORE);   /* started a step ago: done by now */
        s->in_flight = 0;
        stop = s->recv != 0;
    }
    if (!stop) {
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
