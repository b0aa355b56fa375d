/* parallel.c - ranges of arithmetic on threads of their own (see parallel.h). */
#include "parallel.h"

#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

typedef struct Range {
    RangeFn fn;
    void *ctx;
    int64_t begin, end;
} Range;

static void *run_range(void *arg)
{
    const Range *r = arg;
    r->fn(r->ctx, r->begin, r->end);
    return NULL;
}

void parallel_ranges(int64_t count, int64_t min_count, RangeFn fn, void *ctx)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = count < min_count || cpus < 2 ? 1 : cpus < PARALLEL_MAX_THREADS ? (int)cpus : PARALLEL_MAX_THREADS;
    if (threads > count) threads = count > 0 ? (int)count : 1;
    Range ranges[PARALLEL_MAX_THREADS];
    pthread_t ids[PARALLEL_MAX_THREADS];
    bool started[PARALLEL_MAX_THREADS] = {false};
    for (int t = 0; t < threads; t++)
        ranges[t] = (Range){fn, ctx, count * t / threads, count * (t + 1) / threads};
    for (int t = 1; t < threads; t++) started[t] = pthread_create(&ids[t], NULL, run_range, &ranges[t]) == 0;
    run_range(&ranges[0]);
    for (int t = 1; t < threads; t++) {
        if (started[t]) pthread_join(ids[t], NULL);
        else run_range(&ranges[t]);
    }
}
