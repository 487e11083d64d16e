/* test_prometheus.c — the Prometheus textfile: its text, a real parser
 * (prometheus_client, through tests/unit/promcheck.py), and a reader loop in
 * parallel with a writer loop: the atomic writer must never be seen torn,
 * and an in-place writer (the negative control) must be. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "monitoring/prometheus.h"
#include "tests/unit/test.h"

#define CHECKER "/usr/bin/python3 tests/unit/promcheck.py"

static char dir[] = "/tmp/herd_prom_XXXXXX";
static herd_prom_straggler strag[3] = {
    {0, "node1", 1.0, 0}, {1, "node1", 0.98, 0}, {2, "we\"ird\\host\n", 1.5, 1}};

/* step s: tokens_total = 1000 s and loss = 1/(s+1), which promcheck.py checks */
static herd_prom_snapshot snap(int64_t s)
{
    herd_prom_snapshot p = {
        .step = s, .loss = 1.0 / (double)(s + 1), .grad_norm = 0.5, .lr = 3e-4,
        .tokens_total = 1000 * s, .step_seconds = 0.25, .tokens_per_second = 4000,
        .mfu = 0.41, .has_times = 1, .checkpoint_seconds = 1.5,
        .checkpoint_last_success_unix = 1.7e9, .restarts_total = 2,
        .n_stragglers = 3, .stragglers = strag};
    for (int i = 0; i < HERD_T_COUNT; i++) p.times.seconds[i] = 0.01 * (i + 1);
    p.times.step = 0.45;
    return p;
}

static int have_parser(void)
{
    return system("/usr/bin/python3 -c 'import prometheus_client' >/dev/null 2>&1") == 0;
}

TEST(text_has_help_type_and_escapes)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    herd_prom_snapshot p = snap(7);
    p.grad_norm = 0.0 / 0.0; /* a NaN is written the way Prometheus spells it */
    CHECK(herd_prometheus_format(f, &p) == 0);
    fclose(f);
    CHECK(strstr(buf, "# HELP herd_loss ") && strstr(buf, "# TYPE herd_loss gauge\n"));
    CHECK(strstr(buf, "# TYPE herd_tokens_total counter\nherd_tokens_total 7000\n") != NULL);
    CHECK(strstr(buf, "herd_grad_norm NaN\n") != NULL);
    CHECK(strstr(buf, "herd_comm_seconds{group=\"dp\"} 0.05") != NULL);
    CHECK(strstr(buf, "herd_straggler_score{rank=\"2\",host=\"we\\\"ird\\\\host\\n\"} 1.5\n") != NULL);
    CHECK(strstr(buf, "herd_straggler_suspect{rank=\"2\",host=") != NULL);
    /* no checkpoint yet: the checkpoint families are left out, not zero */
    free(buf);
    buf = NULL;
    f = open_memstream(&buf, &n);
    p.checkpoint_seconds = -1;
    herd_prometheus_format(f, &p);
    fclose(f);
    CHECK(strstr(buf, "herd_checkpoint_seconds") == NULL);
    free(buf);
}

TEST(file_parses_with_prometheus_client)
{
    if (!have_parser()) SKIP("python3 prometheus_client missing (apt-get install python3-prometheus-client)");
    char path[256], cmd[512];
    snprintf(path, sizeof path, "%s/herd.prom", dir);
    herd_prom_snapshot p = snap(42);
    CHECK(herd_prometheus_write(path, &p) == 0);
    snprintf(cmd, sizeof cmd, CHECKER " %s --step 42", path);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, CHECKER " %s --step 43 >/dev/null", path); /* the checker can fail */
    CHECK(system(cmd) != 0);
    /* no temporary file left beside it */
    snprintf(cmd, sizeof cmd, "test -z \"$(ls %s | grep -v '^herd.prom$')\"", dir);
    CHECK(system(cmd) == 0);
}

TEST(bad_path_fails_clearly)
{
    herd_prom_snapshot p = snap(1);
    CHECK(herd_prometheus_write("/nonexistent_dir_herd/x.prom", &p) == -1);
}

/* the negative control's writer: truncate and write in place, in two halves */
static void write_in_place(const char *path, const herd_prom_snapshot *p)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&buf, &n);
    herd_prometheus_format(m, p);
    fclose(m);
    FILE *f = fopen(path, "w");
    if (f) {
        fwrite(buf, 1, n / 2, f);
        fflush(f);
        usleep(500);
        fwrite(buf + n / 2, 1, n - n / 2, f);
        fclose(f);
    }
    free(buf);
}

/* a writer child rewriting `path` step after step while the Python reader
 * loops for `seconds`; returns the reader's exit status */
static int race(const char *path, int atomic, double seconds)
{
    herd_prom_snapshot p0 = snap(0);
    herd_prometheus_write(path, &p0); /* the file exists before the reader starts */
    pid_t w = fork();
    if (w == 0) {
        for (int64_t s = 1;; s++) {
            herd_prom_snapshot p = snap(s);
            if (atomic) herd_prometheus_write(path, &p);
            else write_in_place(path, &p);
        }
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd, CHECKER " %s --loop %g", path, seconds);
    int rc = system(cmd);
    kill(w, SIGKILL);
    waitpid(w, NULL, 0);
    return rc;
}

TEST(stays_valid_while_rewritten)
{
    if (!have_parser()) SKIP("python3 prometheus_client missing (apt-get install python3-prometheus-client)");
    char path[256];
    snprintf(path, sizeof path, "%s/race.prom", dir);
    CHECK(race(path, 1, 1.5) == 0);
}

TEST(in_place_writer_is_caught)
{
    if (!have_parser()) SKIP("python3 prometheus_client missing (apt-get install python3-prometheus-client)");
    char path[256];
    snprintf(path, sizeof path, "%s/torn.prom", dir);
    CHECK(race(path, 0, 1.5) != 0); /* proves the reader loop can see a torn file */
}

int main(void)
{
    if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
    RUN(text_has_help_type_and_escapes);
    RUN(file_parses_with_prometheus_client);
    RUN(bad_path_fails_clearly);
    RUN(stays_valid_while_rewritten);
    RUN(in_place_writer_is_caught);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) {}
    return test_summary();
}
