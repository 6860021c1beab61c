/* Monotonic wall-clock time, for latency measurement and progress. */
#ifndef AELLM_CORE_TIMER_H
#define AELLM_CORE_TIMER_H

#include <time.h>

static inline double aellm_time_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
