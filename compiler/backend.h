/* backend.h - the back half of the pipeline.  The whole pipeline is two calls:
 *   frontend_run   read -> parse -> bind -> infer shapes          (frontend.c)
 *   backend_build  check lowerable -> weights -> [the command's hook] ->
 *                  graph passes -> memory plan -> LLVM lowering ->
 *                  optimise + objects -> link .so (+ header)     (backend.c)
 * Every command that compiles (build; test, run and bench through
 * load_model.h or the harness) calls them, in this order, and nothing else
 * sequences the stages. */
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
    const char *output;       /* the .so (or what emit.kind says) */
    const char *header;       /* NULL: none */
    EmitOptions emit;         /* emit.opt_level 0 also turns the graph passes off */
    PassOptions passes;
    bool quiet_random_weights; /* no warning (layerc test: its reference uses the same weights) */
    int inject_fault_layer;   /* test the tests: compiled layer K (1-based) adds 1 to its first output; 0: none */
    FILE *time_report;        /* --time-report: each stage's wall time goes here; NULL: none */
    FILE *verbose;            /* -v: the target and its vector unit go here; NULL: none */
    /* Called once the weights are bound, before the passes rewrite the graph
     * (layerc test runs the reference interpreter on the graph as written);
     * returning false stops the build.  NULL: none. */
    bool (*weights_bound)(Frontend *fe, void *ctx);
    void *weights_bound_ctx;
} BuildOptions;

/* Binds weights to fe's graph: from the file, or random with a warning. */
bool backend_load_weights(Frontend *fe, const BuildOptions *opt);

/* Compiles the checked model of fe to opt->output (and opt->header).
 * Nothing is written unless everything succeeds. */
bool backend_build(Frontend *fe, const BuildOptions *opt);

/* The graph passes as opt asks (also for shapes and dump-ir, without weights). */
void backend_run_passes(Graph *g, const BuildOptions *opt);

/* The prefix of the model-named C functions: the model name in lower case. */
const char *model_symbol_prefix(Arena *a, const char *model_name);

#endif
