/* harness.h - `layerc test` and `layerc run`: compile a model, run it on
 * data, and (test) check it against the reference interpreter and an
 * optional expected output through a generated C test harness. */
#ifndef LAYERC_HARNESS_H
#define LAYERC_HARNESS_H

#include "backend.h"

typedef struct TestOptions {
    BuildOptions build;
    const char *input_npy;  /* NULL: deterministic random input */
    const char *expect_npy; /* NULL: compare with the reference only */
    double atol, rtol;
    int64_t batch;          /* 0: the default (2 for a named batch) */
    const char *keep_dir;   /* NULL: a temporary directory, removed afterwards */
    int threads;
    bool sanitize;          /* build the harness with AddressSanitizer + UBSan */
} TestOptions;

/* Returns the process exit status: 0 pass, 1 fail or error. */
int harness_test(Frontend *fe, const TestOptions *opt);

typedef struct RunOptions {
    BuildOptions build;
    const char *input_npy;
    const char *output_npy;
    int threads;
} RunOptions;

int harness_run(Frontend *fe, const RunOptions *opt);

#endif
