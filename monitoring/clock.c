/* clock.c — see clock.h. */
#include <time.h>
#include "monitoring/clock.h"

double herd_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
