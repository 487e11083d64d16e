/* test_runlog.c — metrics written by the real writers (herd_metrics with the
 * time split of a synthetic step, event lines) read
 * back by monitoring/runlog; then `herd report` draws the stacked breakdown
 * from them. Bad lines are refused with the line and the field. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "monitoring/metrics.h"
#include "monitoring/runlog.h"
#include "tests/unit/test.h"

static char dir[] = "/tmp/herd_runlog_XXXXXX";

TEST(round_trip_with_times_and_events)
{
    char path[256];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    herd_metrics m;
    CHECK(herd_metrics_open(&m, path) == 0);
    for (int s = 1; s <= 6; s++) {
        herd_step_metrics sm = {.step = s, .loss = 5.0 / s, .lr = 1e-3, .grad_norm = 1,
                                .tokens_seen = 512 * s, .batch_tokens = 512, .seq_len = 64,
                                .tokens_per_second = 1e4, .mfu = 0.3, .has_times = 1};
        /* the split of a synthetic step: data, compute, a DP wait that grows
         * with the step, a checkpoint stall at step 4 */
        double *ts = sm.times.seconds;
        ts[HERD_T_DATA] = 0.002;
        ts[HERD_T_COMPUTE] = 0.004;
        ts[HERD_T_COMM_DP] = 0.001 * s;
        ts[HERD_T_CKPT] = s == 4 ? 0.006 : 0;
        for (int p = 0; p < HERD_T_COUNT; p++) sm.times.step += ts[p];
        sm.step_seconds = sm.times.step;
        CHECK(herd_metrics_write(&m, &sm) == 0);
        if (s == 4) CHECK(herd_metrics_event_checkpoint(&m, 4, 1.7e9, sm.times.seconds[HERD_T_CKPT], 0.5) == 0);
        if (s == 5) CHECK(herd_metrics_event_restart(&m, 4, 1.7e9 + 60, 1) == 0);
    }
    herd_metrics_close(&m);

    herd_runlog log;
    CHECK(herd_runlog_read(&log, path) == 0);
    CHECK(log.n_steps == 6 && log.n_events == 2 && log.n_vals == 0);
    if (log.n_steps == 6 && log.n_events == 2) {
        CHECK(log.steps[5].step == 6 && log.steps[5].tokens_seen == 3072);
        CHECK_NEAR(log.steps[2].loss, 5.0 / 3, 1e-15);
        CHECK(log.steps[3].has_times);
        double sum = 0;
        for (int p = 0; p < HERD_T_COUNT; p++) sum += log.steps[3].parts[p];
        CHECK_NEAR(sum, log.steps[3].step_seconds, 0.05 * log.steps[3].step_seconds + 1e-5);
        CHECK(log.steps[3].parts[HERD_T_CKPT] > 0.005 && log.steps[2].parts[HERD_T_CKPT] == 0);
        CHECK(log.steps[5].parts[HERD_T_COMM_DP] > log.steps[0].parts[HERD_T_COMM_DP]);
        CHECK(log.events[0].kind == HERD_EVENT_CHECKPOINT && log.events[0].step == 4);
        CHECK_NEAR(log.events[0].write_s, 0.5, 1e-9);
        CHECK(log.events[1].kind == HERD_EVENT_RESTART && log.events[1].restarts == 1);
    }
    herd_runlog_free(&log);
}

TEST(report_draws_the_stacked_breakdown)
{
    if (access("build/herd", X_OK)) SKIP("build/herd not built");
    if (system("command -v gnuplot >/dev/null 2>&1")) SKIP("gnuplot missing (apt-get install gnuplot-nox)");
    char cmd[512], path[256];
    snprintf(cmd, sizeof cmd, "build/herd report %s > %s/report.out", dir, dir);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, "grep -q 'with time split; events marked' %s/report.out", dir);
    CHECK(system(cmd) == 0);
    /* one filled band per part in the script, the cumulative columns in the data */
    snprintf(cmd, sizeof cmd, "test $(grep -o 'filledcurves' %s/report/report.gp | wc -l) -eq %d",
             dir, HERD_T_COUNT);
    CHECK(system(cmd) == 0);
    snprintf(path, sizeof path, "%s/report/breakdown.png", dir);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size > 5000);
}

TEST(bad_lines_name_line_and_field)
{
    char path[256];
    snprintf(path, sizeof path, "%s/bad.jsonl", dir);
    static const char *bad[] = {"{\"step\":1,\"loss\":2}\n", "[1,2]\n",
                                "{\"event\":\"restart\",\"step\":1}\n", "{\"step\":1} trailing\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FILE *f = fopen(path, "w");
        fputs(bad[i], f);
        fclose(f);
        herd_runlog log;
        CHECK(herd_runlog_read(&log, path) == -1);
        CHECK(log.steps == NULL && log.n_steps == 0);
    }
    FILE *f = fopen(path, "w"); /* only a validation line: no steps */
    fputs("{\"step\":1,\"val_loss\":2.5,\"val_tokens\":10}\n", f);
    fclose(f);
    herd_runlog log;
    CHECK(herd_runlog_read(&log, path) == -1);
}

int main(void)
{
    if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
    RUN(round_trip_with_times_and_events);
    RUN(report_draws_the_stacked_breakdown);
    RUN(bad_lines_name_line_and_field);
    char cmd[300];
    if (!getenv("KEEP_RUNLOG")) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd)) {}
    } else printf("  kept %s\n", dir);
    return test_summary();
}
