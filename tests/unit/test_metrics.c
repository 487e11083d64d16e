/* test_metrics.c — the JSON line keeps its fields, grows the time split when
 * asked, and event lines are written as documented in metrics.h. */
#include <string.h>
#include <unistd.h>
#include "monitoring/metrics.h"
#include "tests/unit/test.h"

static herd_step_metrics example(void)
{
    herd_step_metrics s = {.step = 3, .loss = 2.5, .lr = 1e-3, .grad_norm = 0.75,
                           .tokens_seen = 3072, .batch_tokens = 1024, .seq_len = 64,
                           .step_seconds = 0.5, .tokens_per_second = 2048, .tflops = 0.01,
                           .mfu = 0.2};
    return s;
}

TEST(line_without_times_is_unchanged)
{
    char buf[2048];
    herd_step_metrics s = example();
    herd_metrics_format(buf, sizeof buf, &s);
    CHECK(!strcmp(buf, "{\"step\":3,\"loss\":2.5,\"lr\":0.001,\"grad_norm\":0.75,\"tokens_seen\":3072,"
                       "\"batch_tokens\":1024,\"seq_len\":64,\"step_seconds\":0.500000,"
                       "\"tokens_per_second\":2048.000,\"tflops\":0.010000,\"mfu\":0.200000}"));
}

TEST(line_with_times_carries_every_part)
{
    char buf[2048];
    herd_step_metrics s = example();
    s.has_times = 1;
    for (int p = 0; p < HERD_T_COUNT; p++) s.times.seconds[p] = 0.001 * (p + 1);
    int n = herd_metrics_format(buf, sizeof buf, &s);
    CHECK(n == (int)strlen(buf));
    CHECK(strstr(buf, "\"mfu\":0.200000,\"compute_s\":0.001000,\"comm_tp_s\":0.002000,") != NULL);
    CHECK(strstr(buf, "\"comm_dp_s\":0.005000,\"bubble_s\":0.006000,\"data_s\":0.007000,"
                      "\"ckpt_s\":0.008000,\"other_s\":0.009000}") != NULL);
    CHECK(buf[n - 1] == '}' && strchr(buf, '}') == buf + n - 1); /* one object */
}

TEST(line_with_peak_memory)
{
    char buf[2048];
    herd_step_metrics s = example();
    s.has_mem = 1;
    s.mem_peak_bytes = 3.5 * 1048576;
    int n = herd_metrics_format(buf, sizeof buf, &s);
    CHECK(n == (int)strlen(buf));
    CHECK(strstr(buf, "\"mfu\":0.200000,\"mem_peak_mib\":3.500}") != NULL);
    s.has_times = 1; /* after the time split */
    n = herd_metrics_format(buf, sizeof buf, &s);
    CHECK(strstr(buf, "\"other_s\":0.000000,\"mem_peak_mib\":3.500}") != NULL);
    CHECK(buf[n - 1] == '}' && strchr(buf, '}') == buf + n - 1);
}

TEST(event_lines)
{
    char path[] = "/tmp/herd_metrics_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    herd_metrics m;
    CHECK(herd_metrics_open(&m, path) == 0);
    CHECK(herd_metrics_event_restart(&m, 100, 1700000000.5, 1) == 0);
    CHECK(herd_metrics_event_checkpoint(&m, 200, 1700000100.25, 1.5, 12.0) == 0);
    herd_metrics_close(&m);
    char a[256] = "", b[256] = "";
    FILE *f = fopen(path, "r");
    CHECK(f && fgets(a, sizeof a, f) && fgets(b, sizeof b, f));
    if (f) fclose(f);
    CHECK(!strcmp(a, "{\"event\":\"restart\",\"step\":100,\"time\":1700000000.500,\"restarts\":1}\n"));
    CHECK(!strcmp(b, "{\"event\":\"checkpoint\",\"step\":200,\"time\":1700000100.250,"
                     "\"stall_s\":1.500000,\"write_s\":12.000000}\n"));
    unlink(path);
    CHECK(herd_metrics_open(&m, "/nonexistent_dir_herd/metrics.jsonl") == -1);
}

int main(void)
{
    RUN(line_without_times_is_unchanged);
    RUN(line_with_times_carries_every_part);
    RUN(line_with_peak_memory);
    RUN(event_lines);
    return test_summary();
}
