/* test_goodput.c — the goodput model (topology/goodput.c, goodput_sim.c) and
 * checkpoint.every: auto (src/train/ckpt_interval.c): the closed form and the
 * simulation agree within 1 point over a range of failure rates and part where
 * first order fails; auto's interval within 20% of the simulation's optimum
 * for three sets of measured costs; the recovery log; bad inputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "src/config/config.h"
#include "src/train/ckpt_interval.h"
#include "tests/unit/test.h"
#include "topology/goodput.h"

static herd_goodput_inputs costs(double step, double stall, double write, double restart, double mtbf)
{
    herd_goodput_inputs in;
    herd_goodput_inputs_init(&in);
    in.step_s = step;
    in.stall_s = stall;
    in.write_s = write;
    in.restart_s = restart;
    in.mtbf_s = mtbf;
    return in;
}

/* closed form vs simulation at the closed form's best interval and at half
 * and twice it; the largest gap in points */
static double worst_gap(const herd_goodput_inputs *in)
{
    herd_goodput_result c, s;
    int best = herd_goodput_best_every(in, 1 << 30, &c), worst_e = 0;
    double worst = 0;
    for (int k = 0; k < 3; k++) {
        int e = k == 0 ? best : k == 1 ? (best + 1) / 2 : 2 * best;
        herd_goodput_closed(in, e, &c);
        herd_goodput_simulate(in, e, 3000 * in->mtbf_s, 11, &s);
        double gap = 100 * fabs(s.goodput - c.goodput);
        CHECK_NEAR(c.goodput + c.ckpt + c.restart + c.lost, 1, 1e-9);
        CHECK_NEAR(s.goodput + s.ckpt + s.restart + s.lost, 1, 1e-9);
        if (gap > worst) worst = gap, worst_e = e;
    }
    if (worst > 1)
        fprintf(stderr, "  MTBF %g s, every %d: closed and simulated goodput %.2f points apart\n", in->mtbf_s,
                worst_e, worst);
    return worst;
}

TEST(closed_form_and_simulation_within_1_point)
{
    static const double mtbf[] = {360000, 36000, 10800, 3600};
    for (int i = 0; i < 4; i++) {
        herd_goodput_inputs in = costs(1, 2, 10, 60, mtbf[i]);
        CHECK(worst_gap(&in) <= 1);
        in.p_requeue = 0.2, in.requeue_s = 600; /* a fifth requeue, 10 min in the queue */
        CHECK(worst_gap(&in) <= 1);
        in = costs(1, 2, 10, 60, mtbf[i]);
        in.nodes = 8, in.p_node = 0.5, in.repair_s = 3600; /* half lose a node for an hour */
        CHECK(worst_gap(&in) <= 1);
        in = costs(1, 0.01, 60, 60, mtbf[i]); /* async: a write longer than the stall */
        CHECK(worst_gap(&in) <= 1);
    }
}

TEST(simulation_parts_from_first_order_at_high_rates_and_long_restarts)
{
    /* the closed form charges every failure's cost against all of wall time,
     * the failures during restarts included: pessimistic once R + T is a
     * sizeable part of the MTBF */
    herd_goodput_inputs in = costs(1, 2, 10, 600, 1800);
    herd_goodput_result c, s;
    int e = herd_goodput_best_every(&in, 1 << 30, &c);
    herd_goodput_simulate(&in, e, 3000 * in.mtbf_s, 11, &s);
    CHECK(s.goodput - c.goodput > 0.02);
    in = costs(1, 2, 10, 60, 300);
    e = herd_goodput_best_every(&in, 1 << 30, &c);
    herd_goodput_simulate(&in, e, 3000 * in.mtbf_s, 11, &s);
    CHECK(s.goodput - c.goodput > 0.02);
}

TEST(without_failures_goodput_is_work_over_period)
{
    herd_goodput_inputs in = costs(0.5, 1, 3, 60, 1e12);
    herd_goodput_result c, s;
    herd_goodput_closed(&in, 10, &c);
    herd_goodput_simulate(&in, 10, 1e5, 1, &s);
    CHECK_NEAR(c.goodput, 5.0 / 6.0, 1e-6);
    CHECK_NEAR(s.goodput, 5.0 / 6.0, 1e-4);
    /* a write longer than the period is waited for: W / (stall + write) */
    herd_goodput_closed(&in, 2, &c);
    herd_goodput_simulate(&in, 2, 1e5, 1, &s);
    CHECK_NEAR(c.goodput, 1.0 / 4.0, 1e-6);
    CHECK_NEAR(s.goodput, 1.0 / 4.0, 1e-3);
}

TEST(async_write_beats_synchronous)
{
    /* the same bytes: stalled for all of the write, or 1% of it */
    herd_goodput_inputs sync = costs(1, 20, 0, 60, 3600), async = costs(1, 0.2, 20, 60, 3600);
    herd_goodput_result a, b;
    herd_goodput_best_every(&sync, 1 << 30, &a);
    herd_goodput_best_every(&async, 1 << 30, &b);
    CHECK(b.goodput > a.goodput + 0.01);
}

/* feed a trainer's measurements through checkpoint.every: auto */
static int auto_every(double step, double stall, double write, const char *log, double mtbf, herd_goodput_inputs *out)
{
    herd_config c;
    herd_config_defaults(&c);
    c.checkpoint.every = HERD_CKPT_EVERY_AUTO;
    c.checkpoint.mtbf_s = mtbf;
    herd_ckpt_interval iv;
    if (herd_ckpt_interval_init(&iv, &c, 8, log)) return -1;
    char why[768];
    CHECK(herd_ckpt_interval_choose(&iv, why, sizeof why) == HERD_CKPT_AUTO_FIRST);
    double t = 100;
    for (int i = 0; i < 20; i++) herd_ckpt_interval_tick(&iv, t += step * (0.9 + 0.2 * (i % 2)), 0);
    herd_ckpt_interval_add_ckpt(&iv, stall * 0.8, write * 1.1);
    herd_ckpt_interval_add_ckpt(&iv, stall * 1.2, write * 0.9);
    int e = herd_ckpt_interval_choose(&iv, why, sizeof why);
    printf("  auto: %s\n", why);
    *out = iv.in;
    return e;
}

TEST(auto_within_20_percent_of_simulated_optimum)
{
    char log[] = "/tmp/herd_goodput_XXXXXX";
    int fd = mkstemp(log);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("2026-12-05T01:32:05Z launch on node1,node2 (8 ranks, 2 per node) from checkpoint none\n"
          "2026-12-05T01:32:13Z restart 1/3: cause: step failed with exit 137: x; relaunch on node1,node2 (8 ranks)"
          " from checkpoint r/step_00000005; time lost: 9 s down since the last step logged (probing nodes 1 s),"
          " 2 steps since the checkpoint\n"
          "2026-12-05T01:40:13Z restart 2/3: cause: step failed; relaunch on node1,node2 (8 ranks) from checkpoint"
          " r/step_00000010; time lost: 27 s down since the last step logged (probing nodes 10 s), 0 steps since"
          " the checkpoint\n", f);
    fclose(f);
    /* measured: this machine's tiny run (step, stall, write + commit); the
     * checkpoint benchmark's 0.5 s steps with the copy in save_begin (90 ms)
     * and a 0.3 s write; a synchronous write (all stall), no recovery log */
    static const struct { double step, stall, write, mtbf; int use_log; } sets[] = {
        {0.088, 0.0096, 0.092, 600, 1}, {0.5, 0.09, 0.3, 900, 1}, {2, 5, 0, 3600, 0}};
    for (int i = 0; i < 3; i++) {
        herd_goodput_inputs in;
        int e = auto_every(sets[i].step, sets[i].stall, sets[i].write, sets[i].use_log ? log : NULL,
                           sets[i].mtbf, &in);
        CHECK(e >= 1);
        CHECK_NEAR(in.restart_s, sets[i].use_log ? 18 : HERD_CKPT_AUTO_RESTART_S, 1e-9);
        double g;
        int lo = e / 4 > 1 ? e / 4 : 1, sim = herd_goodput_sim_best_every(&in, lo, 4 * e + 4, 41, 2000 * in.mtbf_s, 3, &g);
        printf("  set %d: auto every %d steps, the simulation's optimum %d (goodput %.2f%%)\n", i + 1, e, sim, 100 * g);
        CHECK(abs(e - sim) <= 0.2 * sim);
    }
    unlink(log);
}

TEST(recovery_log_and_rates)
{
    int n;
    CHECK(herd_ckpt_restart_from_log("/nonexistent/recovery.log", &n) < 0 && n == 0);
    CHECK_NEAR(herd_goodput_mtbf_from_count(466, 54 * 86400.0), 54 * 86400.0 / 466, 1e-9);
    CHECK_NEAR(herd_goodput_mtbf_from_gpu_rate(1, 24), 3600, 1e-9);
    herd_config c;
    herd_config_defaults(&c);
    c.checkpoint.every = HERD_CKPT_EVERY_AUTO;
    c.checkpoint.failures_per_gpu_day = 466.0 / 54 / 16384;
    herd_ckpt_interval iv;
    CHECK(herd_ckpt_interval_init(&iv, &c, 16384, NULL) == 0);
    CHECK_NEAR(iv.in.mtbf_s, 54 * 86400.0 / 466, 1e-6);
    c.checkpoint.failures_per_gpu_day = 0;
    CHECK(herd_ckpt_interval_init(&iv, &c, 8, NULL) == -1);
}

TEST(bad_inputs_name_the_field)
{
    char why[160];
    herd_goodput_inputs in = costs(1, 2, 10, 60, 3600);
    CHECK(herd_goodput_check(&in, why, sizeof why) == 0);
    in.step_s = 0;
    CHECK(herd_goodput_check(&in, why, sizeof why) == -1 && strstr(why, "step_s"));
    in = costs(1, -2, 10, 60, 3600);
    CHECK(herd_goodput_check(&in, why, sizeof why) == -1 && strstr(why, "stall_s"));
    in = costs(1, 2, 10, 60, 3600);
    in.p_node = 0.5;
    CHECK(herd_goodput_check(&in, why, sizeof why) == -1 && strstr(why, "nodes >= 2"));
    in = costs(1, 2, 10, 60, NAN);
    CHECK(herd_goodput_check(&in, why, sizeof why) == -1 && strstr(why, "mtbf_s"));
}

int main(void)
{
    RUN(closed_form_and_simulation_within_1_point);
    RUN(simulation_parts_from_first_order_at_high_rates_and_long_restarts);
    RUN(without_failures_goodput_is_work_over_period);
    RUN(async_write_beats_synchronous);
    RUN(auto_within_20_percent_of_simulated_optimum);
    RUN(recovery_log_and_rates);
    RUN(bad_inputs_name_the_field);
    return test_summary();
}
