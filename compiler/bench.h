/* bench.h - `layerc bench`: compile a model exactly as `layerc run` does,
 * load it in this process and time it: the median, minimum and 90th
 * percentile of many runs, the throughput in GFLOP/s, and optionally the
 * same per compiled layer (fused groups count once). */
#ifndef LAYERC_BENCH_H
#define LAYERC_BENCH_H

#include "backend.h"

typedef struct BenchOptions {
    BuildOptions build;      /* from backend.h */
    int64_t batch;           /* 0: 1 for a named batch, else the fixed one */
    int threads;             /* default 1 */
    bool per_layer;
    double min_seconds;      /* total measuring time per configuration, default 1.0 */
    bool json;               /* machine-readable output */
} BenchOptions;

/* Returns the process exit status: 0 success, 1 an error (reported through fe->diag).
 * The work is counted on the graph as written (before the optimizer's passes), so
 * builds with and without fusion report GFLOP/s of the same work. */
int bench_model(Frontend *fe, const BenchOptions *opt);

#endif
