/* harness.h - `layerc test` and `layerc run`: compile a model, run it on
 * data, and (test) check it against the reference interpreter and an
 * optional expected output through a generated C test harness. */
#ifndef LAYERC_HARNESS_H
#define LAYERC_HARNESS_H

#include "backend.h"

typedef struct TestOptions {
    BuildOptions build;
    const char *input_npy[MAX_MODEL_IO];  /* one per model input (--input, repeated); none: deterministic random inputs */
    int ninput_npy;
    const char *expect_npy[MAX_MODEL_IO]; /* one per model output (--expect, repeated); none: the reference only */
    int nexpect_npy;
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
    const char *input_npy[MAX_MODEL_IO];  /* one per model input, in order */
    int ninput_npy;
    const char *output_npy[MAX_MODEL_IO]; /* one per model output, in order */
    int noutput_npy;
    int threads;
} RunOptions;

int harness_run(Frontend *fe, const RunOptions *opt);

#endif
