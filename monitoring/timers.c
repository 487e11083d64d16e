/* timers.c — the names of the step-time parts (see timers.h). */
#include <stddef.h>
#include "monitoring/timers.h"

static const char *const part_names[HERD_T_COUNT] = {
    "compute", "comm_tp", "comm_cp", "comm_pp", "comm_dp", "bubble", "data", "ckpt", "other"};

const char *herd_timer_part_name(herd_timer_part p)
{
    return (int)p >= 0 && p < HERD_T_COUNT ? part_names[p] : NULL;
}
