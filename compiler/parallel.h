/* parallel.h - the compiler's own use of threads for work that is only
 * arithmetic over arrays (drawing random weights, transforming Winograd
 * weights): [0, count) cut into one contiguous range per CPU (at most
 * PARALLEL_MAX_THREADS), each run on a thread of its own, this one included.
 * Each range must write only its own outputs, so the result does not depend
 * on the number of threads. */
#ifndef LAYERC_PARALLEL_H
#define LAYERC_PARALLEL_H

#include <stdint.h>

enum { PARALLEL_MAX_THREADS = 4 };

typedef void (*RangeFn)(void *ctx, int64_t begin, int64_t end);

/* Runs fn(ctx, begin, end) over ranges covering [0, count); on one thread
 * when count is below min_count or a thread cannot be started. */
void parallel_ranges(int64_t count, int64_t min_count, RangeFn fn, void *ctx);

#endif
