/* clock.h - the compiler's one clock: monotonic seconds, for `layerc bench`
 * and `layerc build --time-report`. */
#ifndef LAYERC_CLOCK_H
#define LAYERC_CLOCK_H

#include <time.h>

static inline double monotonic_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#endif
