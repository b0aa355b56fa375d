/* passes.h - the optimizer: graph passes between shape inference and the
 * memory plan.  Every pass has the same signature and is one file; the
 * driver (passes.c) runs them in the order of the table, skipping disabled
 * ones, and can print the IR after any of them (dump_ir.c).
 *
 * Passes never change results beyond float rounding.  Passes that change
 * parameter values (BatchNorm folding, constant folding) compute the new
 * values when the weights are bound, and only restructure otherwise (for
 * `layerc shapes` and `layerc dump-ir` without weights).
 */
#ifndef LAYERC_PASSES_H
#define LAYERC_PASSES_H

#include <stdio.h>

#include "graph.h"

/* Which 3x3 and 5x5 stride-1 convolutions run as Winograd (pass_choose_conv_algorithm.c). */
typedef enum { WINOGRAD_AUTO, WINOGRAD_ALWAYS, WINOGRAD_NEVER } WinogradPolicy;

typedef struct PassOptions {
    int opt_level;              /* 0: no graph passes */
    WinogradPolicy winograd;    /* --winograd auto|always|never */
    int winograd_tile;          /* --winograd-tile: the output tile side of Winograd layers, 2 or 4 (0: by the cost rule) */
    int tune_threads;           /* --tune-threads: the threads the library will mostly run one sample on (0, 1: one) */
    const char *disabled[16];   /* --disable-pass NAME */
    int ndisabled;
    const char *print_after;    /* --after PASS: print the IR after it */
    bool print_after_all;
    FILE *dump;                 /* where to print */
} PassOptions;

typedef struct Pass {
    const char *name;
    const char *summary;
    /* Returns how many rewrites it made. */
    int (*run)(Graph *g, const PassOptions *opt);
} Pass;

int pass_simplify_inference(Graph *g, const PassOptions *opt);
int pass_fold_batchnorm(Graph *g, const PassOptions *opt);
int pass_fuse_residual(Graph *g, const PassOptions *opt);
int pass_fuse_epilogue(Graph *g, const PassOptions *opt);
int pass_fold_constants(Graph *g, const PassOptions *opt);
int pass_choose_conv_algorithm(Graph *g, const PassOptions *opt);

/* Whether Conv2d n can run as Winograd F(mxm,rxr) (m 2 or 4): a square 3x3
 * or 5x5 kernel, stride 1, dilation 1, one group, zero padding. */
bool conv_winograd_eligible(const Node *n);

/* The passes in pipeline order; *count receives their number. */
const Pass *pass_table(int *count);
/* Whether `name` is a pass; else *nearest is the closest pass name or NULL. */
bool pass_known(const char *name, const char **nearest);

/* Runs the pipeline on g (after shape inference, with or without weights). */
void run_passes(Graph *g, const PassOptions *opt);

/* scale = weight / sqrt(running_var + eps), shift = bias - running_mean * scale, in double
 * then rounded: the eval-mode BatchNorm as an affine map per channel. */
void batchnorm_scale_shift(const Node *bn, float *scale, float *shift);

/* Prints g in the readable IR form of `layerc dump-ir`. */
void dump_ir(FILE *out, const Graph *g, const char *title);

#endif
