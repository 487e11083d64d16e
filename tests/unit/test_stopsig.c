/* test_stopsig.c — SIGUSR1 and SIGTERM are recorded, not fatal, and the first wins. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src/base/exitcodes.h"
#include "src/train/stopsig.h"
#include "tests/unit/test.h"

TEST(usr1_is_recorded_not_fatal)
{
    herd_stopsig_clear();
    CHECK(herd_stopsig_install() == 0);
    CHECK(herd_stopsig_pending() == 0);
    raise(SIGUSR1);
    CHECK(herd_stopsig_pending() == SIGUSR1);
    raise(SIGTERM); /* the first signal names the reason */
    CHECK(herd_stopsig_pending() == SIGUSR1);
    herd_stopsig_clear();
    raise(SIGTERM);
    CHECK(herd_stopsig_pending() == SIGTERM);
    herd_stopsig_clear();
}

/* The shape of the trainer's loop: a child steps until a signal is pending, then
 * "commits" and exits 75; the parent sends SIGTERM as scancel would. */
TEST(step_loop_exits_75_on_term)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (herd_stopsig_install() != 0) _exit(1);
        for (int step = 0; step < 100000; step++) {
            if (herd_stopsig_pending()) _exit(HERD_EXIT_REQUEUE);
            usleep(1000);
        }
        _exit(0);
    }
    usleep(50000);
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == HERD_EXIT_REQUEUE);
}

int main(void)
{
    RUN(usr1_is_recorded_not_fatal);
    RUN(step_loop_exits_75_on_term);
    return test_summary();
}
