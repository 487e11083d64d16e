/* watchdog.c — the hang watchdog (see watchdog.h for why and how).
 *
 * State is one static struct: a process has one step loop and one watchdog.
 * The step loop writes the ring under a mutex (a few stores per collective);
 * the heartbeat thread reads the beat time as an atomic and takes the mutex
 * only to print the report, with trylock so that it can never wait on the
 * thread it watches. */
#include "monitoring/watchdog.h"
#include "monitoring/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "monitoring/exitcodes.h"

typedef struct {
    char   what[96];
    double t_enter; /* monotonic seconds */
    double t_leave; /* 0 while the wait is open */
} wd_entry;

static struct {
    pthread_t       thread;
    pthread_mutex_t lock;
    int             running;
    atomic_int      quit;
    atomic_int      committing;
    _Atomic double  last_beat;
    _Atomic int64_t step;
    double          step_limit, commit_limit, started;
    int             rank;
    char            host[64];
    wd_entry        ring[HERD_WATCHDOG_RING];
    unsigned        n; /* entries ever entered; ring[(n - 1) % RING] is the newest */
} wd = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void put(int fd, const char *s)
{
    size_t len = strlen(s);
    while (len > 0) {
        ssize_t w = write(fd, s, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        s += w; len -= (size_t)w;
    }
}

void herd_watchdog_report(int fd, const char *why)
{
    char line[256];
    double t = herd_now_s();
    int committing = atomic_load(&wd.committing);
    snprintf(line, sizeof line,
             "herd watchdog: rank %d on %s: %s: step %lld, %.1f s since the last progress "
             "(limit %.1f s%s)\n",
             wd.rank, wd.host, why, (long long)atomic_load(&wd.step), t - atomic_load(&wd.last_beat),
             committing ? wd.commit_limit : wd.step_limit, committing ? ", checkpoint commit" : "");
    put(fd, line);
    /* the ring, oldest first; a report without the lock is still better than none */
    int locked = 0;
    for (int i = 0; i < 100 && !locked; i++) {
        locked = pthread_mutex_trylock(&wd.lock) == 0;
        if (!locked) usleep(1000);
    }
    unsigned n = wd.n, first = n > HERD_WATCHDOG_RING ? n - HERD_WATCHDOG_RING : 0;
    snprintf(line, sizeof line, "herd watchdog: rank %d: last %u of %u waits, oldest first:\n", wd.rank,
             n - first, n);
    put(fd, line);
    for (unsigned i = first; i < n; i++) {
        const wd_entry *e = &wd.ring[i % HERD_WATCHDOG_RING];
        if (e->t_leave > 0)
            snprintf(line, sizeof line, "herd watchdog:   #%u %-40s began %.3f s ago, took %.3f s\n", i,
                     e->what, t - e->t_enter, e->t_leave - e->t_enter);
        else
            snprintf(line, sizeof line, "herd watchdog:   #%u %-40s began %.3f s ago, STILL WAITING\n", i,
                     e->what, t - e->t_enter);
        put(fd, line);
    }
    if (locked) pthread_mutex_unlock(&wd.lock);
}

static void *watch(void *arg)
{
    (void)arg;
    /* poll often enough to fire within ~5% of the limit, but never spin */
    double poll = wd.step_limit / 20;
    if (poll > 0.2) poll = 0.2;
    if (poll < 0.001) poll = 0.001;
    struct timespec ts = {(time_t)poll, (long)((poll - (double)(time_t)poll) * 1e9)};
    while (!atomic_load(&wd.quit)) {
        nanosleep(&ts, NULL);
        double limit = atomic_load(&wd.committing) ? wd.commit_limit : wd.step_limit;
        if (herd_now_s() - atomic_load(&wd.last_beat) > limit) {
            herd_watchdog_report(2, "HANG: no progress within the limit; aborting the job");
            /* _exit: no atexit handlers or MPI_Finalize that could wait on the hung peer */
            _exit(HERD_EXIT_HANG);
        }
    }
    return NULL;
}

int herd_watchdog_start(double step_limit_s, double commit_limit_s, int rank, const char *host)
{
    if (!(step_limit_s > 0)) {
        fprintf(stderr, "watchdog.c: step_limit_s: %g is not a positive number of seconds\n", step_limit_s);
        return -1;
    }
    if (!(commit_limit_s >= step_limit_s)) {
        fprintf(stderr, "watchdog.c: commit_limit_s: %g is shorter than step_limit_s %g\n", commit_limit_s,
                step_limit_s);
        return -1;
    }
    if (wd.running) {
        fprintf(stderr, "watchdog.c: herd_watchdog_start: already running\n");
        return -1;
    }
    wd.step_limit = step_limit_s;
    wd.commit_limit = commit_limit_s;
    wd.rank = rank;
    if (host) snprintf(wd.host, sizeof wd.host, "%s", host);
    else if (gethostname(wd.host, sizeof wd.host) != 0) snprintf(wd.host, sizeof wd.host, "?");
    wd.host[sizeof wd.host - 1] = 0;
    wd.n = 0;
    atomic_store(&wd.quit, 0);
    atomic_store(&wd.committing, 0);
    atomic_store(&wd.step, 0);
    wd.started = herd_now_s();
    atomic_store(&wd.last_beat, wd.started);
    int rc = pthread_create(&wd.thread, NULL, watch, NULL);
    if (rc != 0) {
        fprintf(stderr, "watchdog.c: pthread_create: %s\n", strerror(rc));
        return -1;
    }
    wd.running = 1;
    return 0;
}

void herd_watchdog_beat(int64_t step)
{
    atomic_store(&wd.step, step);
    atomic_store(&wd.last_beat, herd_now_s());
}

void herd_watchdog_enter(const char *fmt, ...)
{
    if (!wd.running) return;
    pthread_mutex_lock(&wd.lock);
    wd_entry *e = &wd.ring[wd.n % HERD_WATCHDOG_RING];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->what, sizeof e->what, fmt, ap);
    va_end(ap);
    e->t_enter = herd_now_s();
    e->t_leave = 0;
    wd.n++;
    pthread_mutex_unlock(&wd.lock);
}

void herd_watchdog_leave(void)
{
    if (!wd.running) return;
    pthread_mutex_lock(&wd.lock);
    /* the newest entry still open (waits nest: leave closes the innermost) */
    unsigned first = wd.n > HERD_WATCHDOG_RING ? wd.n - HERD_WATCHDOG_RING : 0;
    for (unsigned i = wd.n; i > first; i--) {
        wd_entry *e = &wd.ring[(i - 1) % HERD_WATCHDOG_RING];
        if (e->t_leave == 0) { e->t_leave = herd_now_s(); break; }
    }
    pthread_mutex_unlock(&wd.lock);
}

void herd_watchdog_commit(int active)
{
    atomic_store(&wd.committing, active ? 1 : 0);
    atomic_store(&wd.last_beat, herd_now_s());
}

void herd_watchdog_stop(void)
{
    if (!wd.running) return;
    atomic_store(&wd.quit, 1);
    pthread_join(wd.thread, NULL);
    wd.running = 0;
}
