/* test_timers.c — the step-time parts: a synthetic step with known sleeps and
 * busy work, nested communication inside compute; the parts must match what
 * was done and add up to the step time measured independently within 5%. */
#include <string.h>
#include <time.h>
#include "monitoring/timers.h"
#include "src/base/clock.h"
#include "tests/unit/test.h"

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts)) {}
}

static volatile double sink;
static void busy_s(double s) /* burn CPU for about s seconds */
{
    double end = herd_now_s() + s, x = 1;
    while (herd_now_s() < end)
        for (int i = 0; i < 1000; i++) x = x * 1.0000001 + 1e-9;
    sink = x;
}

TEST(parts_match_synthetic_step)
{
    herd_timers t;
    herd_step_times st;
    double t0 = herd_now_s();
    herd_timers_step_begin(&t);
    herd_timer_begin(&t, HERD_T_DATA); sleep_s(0.020); herd_timer_end(&t, HERD_T_DATA);
    double tc0 = herd_now_s();
    herd_timer_begin(&t, HERD_T_COMPUTE);
    busy_s(0.030);
    herd_timer_begin(&t, HERD_T_COMM_DP); sleep_s(0.015); herd_timer_end(&t, HERD_T_COMM_DP);
    busy_s(0.010);
    herd_timer_begin(&t, HERD_T_COMM_TP); sleep_s(0.005); herd_timer_end(&t, HERD_T_COMM_TP);
    herd_timer_end(&t, HERD_T_COMPUTE);
    double tc1 = herd_now_s();
    herd_timer_begin(&t, HERD_T_BUBBLE); sleep_s(0.010); herd_timer_end(&t, HERD_T_BUBBLE);
    sleep_s(0.010); /* nothing open: other */
    herd_timer_begin(&t, HERD_T_CKPT); sleep_s(0.005); herd_timer_end(&t, HERD_T_CKPT);
    CHECK(herd_timers_step_end(&t, &st) == 0);
    double step = herd_now_s() - t0; /* the caller's own clock around the step */

    CHECK(herd_step_times_check(&st, step, 0.05) == 0);
    /* a part is at least what was slept or burnt in it (nanosleep never wakes
     * early); no upper bound: a loaded CI machine may preempt anywhere */
#define CHECK_PART(p, want) CHECK(st.seconds[p] >= (want) - 1e-4)
    CHECK_PART(HERD_T_DATA, 0.020);
    CHECK_PART(HERD_T_COMPUTE, 0.040);
    CHECK_PART(HERD_T_COMM_DP, 0.015);
    CHECK_PART(HERD_T_COMM_TP, 0.005);
    CHECK_PART(HERD_T_BUBBLE, 0.010);
    CHECK_PART(HERD_T_OTHER, 0.010);
    CHECK_PART(HERD_T_CKPT, 0.005);
    CHECK(st.seconds[HERD_T_COMM_CP] == 0 && st.seconds[HERD_T_COMM_PP] == 0);
    /* exclusive: the DP and TP waits are not also counted in compute — the
     * three add up to the compute region as the caller's clock saw it */
    CHECK_NEAR(st.seconds[HERD_T_COMPUTE] + st.seconds[HERD_T_COMM_DP] + st.seconds[HERD_T_COMM_TP],
               tc1 - tc0, 1e-3);
    printf("  step %.4f s = compute %.4f + dp %.4f + tp %.4f + data %.4f + bubble %.4f + ckpt %.4f "
           "+ other %.4f\n", step, st.seconds[HERD_T_COMPUTE], st.seconds[HERD_T_COMM_DP],
           st.seconds[HERD_T_COMM_TP], st.seconds[HERD_T_DATA], st.seconds[HERD_T_BUBBLE],
           st.seconds[HERD_T_CKPT], st.seconds[HERD_T_OTHER]);
}

TEST(many_steps_add_up)
{
    /* ten steps of mixed work; each step's parts within 5% of its own clock */
    for (int s = 0; s < 10; s++) {
        herd_timers t;
        herd_step_times st;
        double t0 = herd_now_s();
        herd_timers_step_begin(&t);
        herd_timer_begin(&t, HERD_T_COMPUTE); busy_s(0.002 * (s + 1));
        herd_timer_begin(&t, HERD_T_COMM_PP); sleep_s(0.001); herd_timer_end(&t, HERD_T_COMM_PP);
        herd_timer_end(&t, HERD_T_COMPUTE);
        herd_timer_begin(&t, HERD_T_DATA); busy_s(0.001); herd_timer_end(&t, HERD_T_DATA);
        CHECK(herd_timers_step_end(&t, &st) == 0);
        CHECK(herd_step_times_check(&st, herd_now_s() - t0, 0.05) == 0);
        CHECK(st.seconds[HERD_T_COMPUTE] >= 0.002 * (s + 1) * 0.9);
    }
}

TEST(check_catches_bad_sums)
{
    herd_step_times st = {{0}, 1.0};
    st.seconds[HERD_T_COMPUTE] = 0.7;
    st.seconds[HERD_T_COMM_DP] = 0.2;
    CHECK(herd_step_times_check(&st, 1.0, 0.05) == -1); /* 0.9 vs 1.0: 10% off */
    st.seconds[HERD_T_OTHER] = 0.08;
    CHECK(herd_step_times_check(&st, 1.0, 0.05) == 0);  /* 0.98: within 5% */
    st.seconds[HERD_T_BUBBLE] = -0.01;
    CHECK(herd_step_times_check(&st, 1.0, 0.05) == -1); /* a negative part */
}

TEST(broken_nesting_is_reported)
{
    herd_timers t;
    herd_step_times st;
    herd_timers_step_begin(&t);
    herd_timer_begin(&t, HERD_T_COMPUTE);
    herd_timer_begin(&t, HERD_T_COMM_DP);
    herd_timer_end(&t, HERD_T_COMPUTE); /* wrong order */
    CHECK(herd_timers_step_end(&t, &st) == -1);
    herd_timers_step_begin(&t);
    herd_timer_end(&t, HERD_T_DATA); /* never opened */
    CHECK(herd_timers_step_end(&t, &st) == -1);
    CHECK(!strcmp(herd_timer_part_name(HERD_T_COMM_CP), "comm_cp"));
    CHECK(herd_timer_part_name(HERD_T_COUNT) == NULL);
}

TEST(overhead_is_small)
{
    herd_timers t;
    herd_step_times st;
    const int n = 1000000;
    herd_timers_step_begin(&t);
    double t0 = herd_now_s();
    for (int i = 0; i < n; i++) {
        herd_timer_begin(&t, HERD_T_COMM_TP);
        herd_timer_end(&t, HERD_T_COMM_TP);
    }
    double total = herd_now_s() - t0, per = total / n;
    CHECK(herd_timers_step_end(&t, &st) == 0);
    /* the cost is reported, not asserted (speed belongs in benchmarks); what
     * must hold is that a million empty parts account for no more time than
     * the loop took */
    printf("  begin+end pair: %.1f ns\n", per * 1e9);
    CHECK(st.seconds[HERD_T_COMM_TP] <= total);
}

int main(void)
{
    RUN(parts_match_synthetic_step);
    RUN(many_steps_add_up);
    RUN(check_catches_bad_sums);
    RUN(broken_nesting_is_reported);
    RUN(overhead_is_small);
    return test_summary();
}
