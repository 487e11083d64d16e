/* test_ckpt_stop.c — the trainer's stop signals (checkpoint/stop.c) in one
 * process: SIGUSR1 and SIGTERM are recorded, not fatal, and a step loop that
 * checks every step stops and exits 75 (requeue me). */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint/ckpt.h"
#include "monitoring/exitcodes.h"
#include "tests/unit/test.h"

TEST(usr1_is_recorded_not_fatal)
{
    herd_ckpt_stopper *s;
    if (herd_ckpt_stopper_create(&s, MPI_COMM_NULL)) { CHECK(0); return; }
    CHECK(herd_ckpt_stopper_signal(s) == 0);
    CHECK(herd_ckpt_stopper_check(s) == 0);
    raise(SIGUSR1);
    CHECK(herd_ckpt_stopper_signal(s) == SIGUSR1);
    CHECK(herd_ckpt_stopper_check(s) == 1);
    herd_ckpt_stopper_destroy(s);
}

/* The shape of the trainer's loop: a child steps until the stopper says stop,
 * then "commits" and exits 75; the parent sends SIGTERM as scancel would. */
TEST(step_loop_exits_75_on_term)
{
    pid_t pid = fork();
    if (pid == 0) {
        herd_ckpt_stopper *s;
        if (herd_ckpt_stopper_create(&s, MPI_COMM_NULL)) _exit(1);
        for (int step = 0; step < 100000; step++) {
            if (herd_ckpt_stopper_check(s)) _exit(HERD_EXIT_REQUEUE);
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
