/* runtime.h - what generated code calls in the runtime (internal ABI).
 *
 * The generated object defines `__layerc_desc` (the descriptor, layerc.h)
 * whose `forward` runs the kernels in order.  forward calls back into the
 * runtime to split a kernel's work over the thread pool and to report each
 * layer's output to an observer.  All these symbols are hidden: they never
 * leave the .so.
 */
#ifndef LAYERC_RUNTIME_H
#define LAYERC_RUNTIME_H

#include <stdint.h>

#include "layerc.h"

/* A kernel computes work items [begin, end) of one layer. */
typedef void (*layerc_kernel)(const void *input, void *output, int64_t batch, int64_t begin, int64_t end);

/* Runs kernel over items [first, first + items), split over the context's
 * threads when the work (items * cost_per_item, in rough flops) is worth it. */
void __layerc_rt_parallel(layerc_ctx *ctx, layerc_kernel kernel, const void *input, void *output, int64_t batch,
                          int64_t first, int64_t items, int64_t cost_per_item);

/* Reports layer `layer`'s output to the observer, if one is set. */
void __layerc_rt_observe(layerc_ctx *ctx, int32_t layer, const float *data, int64_t batch);

/* NULL when this machine's CPU has every feature the code was compiled for,
 * else why not (cpu_check.c); create() refuses to run then. */
const char *__layerc_rt_cpu_unsupported(void);

#endif
