/* backend.h - the back half of the pipeline, one call per stage:
 * check lowerable -> weights (read + bind, or random) -> memory plan ->
 * LLVM lowering -> optimise + object -> link .so (+ header). */
#ifndef LAYERC_BACKEND_H
#define LAYERC_BACKEND_H

#include <stdint.h>
#include <stdio.h>

#include "emit_object.h"
#include "frontend.h"
#include "passes.h"
#include "plan_memory.h"

typedef struct BuildOptions {
    const char *weights_path; /* NULL: random weights from seed */
    uint64_t seed;
    const char *output;       /* the .so */
    const char *header;       /* NULL: none */
    EmitOptions emit;         /* emit.opt_level 0 also turns the graph passes off */
    PassOptions passes;
    bool quiet_random_weights; /* no warning (layerc test: its reference uses the same weights) */
    int inject_fault_layer;   /* test the tests: compiled layer K (1-based) adds 1 to its first output; 0: none */
    FILE *time_report;        /* --time-report: each stage's wall time goes here; NULL: none */
} BuildOptions;

/* Binds weights to fe's graph: from the file, or random with a warning. */
bool backend_load_weights(Frontend *fe, const BuildOptions *opt);

/* Compiles the checked model of fe to opt->output (and opt->header).
 * Nothing is written unless everything succeeds. */
bool backend_build(Frontend *fe, const BuildOptions *opt);

/* backend_build for a graph whose weights are already bound (layerc test, run):
 * graph passes, memory plan, lowering, object, link. */
bool backend_build_bound(Frontend *fe, const BuildOptions *opt);

/* The graph passes as opt asks (also for shapes and dump-ir, without weights). */
void backend_run_passes(Graph *g, const BuildOptions *opt);

/* The prefix of the model-named C functions: the model name in lower case. */
const char *model_symbol_prefix(Arena *a, const char *model_name);

#endif
