/* test_watchdog.c — the hang watchdog kills a process that stops making
 * progress with exit code 76 and prints its ring of waits; it stays quiet
 * while the process beats, and applies the longer limit during a commit.
 * Each case runs the watched code in a forked child and reads its stderr. */
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "monitoring/clock.h"

#include "monitoring/watchdog.h"
#include "monitoring/exitcodes.h"
#include "tests/unit/test.h"

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {}
}

typedef struct {
    int    status;  /* waitpid status */
    double seconds; /* from fork to exit */
    char   err[8192];
} child_result;

/* Run fn in a child whose stderr is captured; give up (SIGKILL) after timeout_s. */
static int run_child(void (*fn)(void), double timeout_s, child_result *r)
{
    int p[2];
    if (pipe(p) != 0) return -1;
    double t0 = herd_now_s();
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 2);
        fn();
        _exit(0);
    }
    close(p[1]);
    size_t len = 0;
    memset(r->err, 0, sizeof r->err);
    for (;;) {
        double left = timeout_s - (herd_now_s() - t0);
        if (left <= 0) { kill(pid, SIGKILL); break; }
        struct pollfd pf = {p[0], POLLIN, 0};
        if (poll(&pf, 1, (int)(left * 1000) + 1) <= 0) continue;
        ssize_t got = read(p[0], r->err + len, sizeof r->err - 1 - len);
        if (got <= 0) break;
        len += (size_t)got;
    }
    close(p[0]);
    waitpid(pid, &r->status, 0);
    r->seconds = herd_now_s() - t0;
    return 0;
}

static int exited_with(const child_result *r, int code)
{
    return WIFEXITED(r->status) && WEXITSTATUS(r->status) == code;
}

static void hang_in_collective(void)
{
    if (herd_watchdog_start(0.3, 1.0, 3, "nodeX") != 0) _exit(1);
    herd_watchdog_beat(7);
    herd_watchdog_enter("allreduce grads count=%d", 42);
    herd_watchdog_leave();
    herd_watchdog_enter("barrier after step %d", 7);
    for (;;) pause(); /* the peer never comes */
}

TEST(hang_exits_76_and_prints_ring)
{
    child_result r;
    CHECK(run_child(hang_in_collective, 10, &r) == 0);
    CHECK(exited_with(&r, HERD_EXIT_HANG));
    CHECK(r.seconds > 0.29 && r.seconds < 3.0);
    CHECK(strstr(r.err, "rank 3 on nodeX") != NULL);
    CHECK(strstr(r.err, "step 7") != NULL);
    CHECK(strstr(r.err, "allreduce grads count=42") != NULL);
    const char *b = strstr(r.err, "barrier after step 7");
    CHECK(b != NULL && strstr(b, "STILL WAITING") != NULL);
    if (test_failed_) fprintf(stderr, "  child stderr after %.2f s:\n%s", r.seconds, r.err);
}

static void beat_steadily(void)
{
    if (herd_watchdog_start(0.2, 0.2, 0, NULL) != 0) _exit(1);
    for (int s = 1; s <= 15; s++) { /* 0.75 s, well past the limit in total */
        herd_watchdog_enter("step %d", s);
        sleep_s(0.05);
        herd_watchdog_leave();
        herd_watchdog_beat(s);
    }
    herd_watchdog_stop();
    _exit(0);
}

TEST(steady_beats_keep_it_quiet)
{
    child_result r;
    CHECK(run_child(beat_steadily, 10, &r) == 0);
    CHECK(exited_with(&r, 0));
    CHECK(r.seconds > 0.7);
    CHECK(strstr(r.err, "watchdog") == NULL);
}

static void long_commit_then_hang(void)
{
    if (herd_watchdog_start(0.2, 1.5, 1, "nodeY") != 0) _exit(1);
    herd_watchdog_beat(5);
    herd_watchdog_commit(1);
    herd_watchdog_enter("checkpoint commit step %d", 5);
    sleep_s(0.6); /* three step limits, inside the commit limit */
    herd_watchdog_leave();
    fprintf(stderr, "commit done\n");
    herd_watchdog_commit(0);
    for (;;) pause();
}

TEST(commit_gets_the_longer_limit)
{
    child_result r;
    CHECK(run_child(long_commit_then_hang, 10, &r) == 0);
    CHECK(exited_with(&r, HERD_EXIT_HANG));
    CHECK(r.seconds > 0.75 && r.seconds < 3.0);
    const char *done = strstr(r.err, "commit done"), *hang = strstr(r.err, "HANG");
    CHECK(done != NULL && hang != NULL && done < hang);
    CHECK(strstr(r.err, "checkpoint commit step 5") != NULL);
}

/* The SIGSTOP case of the fault tests, in small: rank A waits on data from a
 * peer B that is stopped; A's watchdog must end A with 76. */
static int peer_pipe[2];
static void wait_on_peer(void)
{
    if (herd_watchdog_start(0.5, 0.5, 0, "nodeA") != 0) _exit(1);
    char c;
    for (int64_t step = 1;; step++) {
        herd_watchdog_enter("recv from rank 1 step %lld", (long long)step);
        if (read(peer_pipe[0], &c, 1) != 1) _exit(2);
        herd_watchdog_leave();
        herd_watchdog_beat(step);
    }
}

TEST(stopped_peer_ends_in_76)
{
    if (pipe(peer_pipe) != 0) { CHECK(0); return; }
    pid_t peer = fork();
    if (peer == 0) {
        close(peer_pipe[0]);
        for (;;) { if (write(peer_pipe[1], "x", 1) != 1) _exit(0); sleep_s(0.05); }
    }
    child_result r;
    /* stop the peer in 0.3 s from a helper, while the waiter runs */
    pid_t stopper = fork();
    if (stopper == 0) { sleep_s(0.3); kill(peer, SIGSTOP); _exit(0); }
    CHECK(run_child(wait_on_peer, 10, &r) == 0);
    close(peer_pipe[0]);
    close(peer_pipe[1]);
    waitpid(stopper, NULL, 0);
    kill(peer, SIGKILL);
    waitpid(peer, NULL, 0);
    CHECK(exited_with(&r, HERD_EXIT_HANG));
    CHECK(r.seconds > 0.75 && r.seconds < 3.0);
    CHECK(strstr(r.err, "STILL WAITING") != NULL && strstr(r.err, "recv from rank 1") != NULL);
}

TEST(bad_limits_are_refused)
{
    CHECK(herd_watchdog_start(0, 1, 0, NULL) == -1);
    CHECK(herd_watchdog_start(-1, 1, 0, NULL) == -1);
    CHECK(herd_watchdog_start(2, 1, 0, NULL) == -1);
    /* calls without a running watchdog are harmless no-ops */
    herd_watchdog_enter("nothing %d", 1);
    herd_watchdog_leave();
    herd_watchdog_beat(1);
    herd_watchdog_stop();
}

int main(void)
{
    RUN(bad_limits_are_refused);
    RUN(hang_exits_76_and_prints_ring);
    RUN(steady_beats_keep_it_quiet);
    RUN(commit_gets_the_longer_limit);
    RUN(stopped_peer_ends_in_76);
    return test_summary();
}
