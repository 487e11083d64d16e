/* test_timers.c — the names of the step-time parts, as metrics.jsonl, the
 * Prometheus file and `herd report` spell them. */
#include <string.h>
#include "monitoring/timers.h"
#include "tests/unit/test.h"

TEST(part_names)
{
    static const char *want[HERD_T_COUNT] = {"compute", "comm_tp", "comm_cp", "comm_pp", "comm_dp",
                                             "bubble",  "data",    "ckpt",    "other"};
    for (int p = 0; p < HERD_T_COUNT; p++) {
        const char *n = herd_timer_part_name((herd_timer_part)p);
        CHECK(n && !strcmp(n, want[p]));
    }
    CHECK(herd_timer_part_name(HERD_T_COUNT) == NULL);
    CHECK(herd_timer_part_name((herd_timer_part)-1) == NULL);
}

int main(void)
{
    RUN(part_names);
    return test_summary();
}
