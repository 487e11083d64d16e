/* stopsig.c — record SIGUSR1 / SIGTERM for the step loop (see stopsig.h). */
#include "src/train/stopsig.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>

static volatile sig_atomic_t pending;

static void on_stop(int sig)
{
    if (!pending) pending = sig; /* the first one names the reason */
}

int herd_stopsig_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* a read or a wait in progress goes on */
    if (sigaction(SIGUSR1, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0) {
        fprintf(stderr, "stopsig.c: sigaction: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

int herd_stopsig_pending(void) { return pending; }

void herd_stopsig_clear(void) { pending = 0; }
