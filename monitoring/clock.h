/* clock.h — monotonic wall time for durations (step times, timeouts, rates).
 * Includes nothing from src/: every layer and library may use it. */
#ifndef HERD_CLOCK_H
#define HERD_CLOCK_H

/* Seconds on CLOCK_MONOTONIC: only differences mean anything. */
double herd_now_s(void);

#endif
