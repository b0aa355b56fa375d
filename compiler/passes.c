/* passes.c - the pass pipeline: the table of passes in order and the driver
 * that runs them (see passes.h). */
#include "passes.h"

#include <string.h>

static const Pass PASSES[] = {
    {"simplify-inference", "remove Identity, Dropout and Dropout2d (the identity at inference)", pass_simplify_inference},
    {"fold-batchnorm", "fold eval-mode BatchNorm into the Conv2d or Linear before it", pass_fold_batchnorm},
    {"fuse-residual", "add a residual block's skip tensor inside the Conv2d before the add", pass_fuse_residual},
    {"fuse-epilogue", "apply the activation after a Conv2d or Linear inside its kernel", pass_fuse_epilogue},
    {"fold-constants", "compute the remaining BatchNorms' scale and shift at compile time", pass_fold_constants},
    {"choose-conv-algorithm",
     "run the 3x3 and 5x5 stride-1 convolutions where it pays as Winograd F(4x4,r) or F(2x2,r); plan every Conv2d",
     pass_choose_conv_algorithm},
};
enum { NPASSES = sizeof PASSES / sizeof PASSES[0] };

const Pass *pass_table(int *count)
{
    *count = NPASSES;
    return PASSES;
}

bool pass_known(const char *name, const char **nearest)
{
    const char *names[NPASSES];
    for (int i = 0; i < NPASSES; i++) {
        if (strcmp(PASSES[i].name, name) == 0) return true;
        names[i] = PASSES[i].name;
    }
    *nearest = nearest_word(name, names, NPASSES);
    return false;
}

static bool disabled(const PassOptions *opt, const char *name)
{
    for (int i = 0; i < opt->ndisabled; i++)
        if (strcmp(opt->disabled[i], name) == 0) return true;
    return false;
}

void run_passes(Graph *g, const PassOptions *opt)
{
    if (opt->opt_level == 0) return;
    for (int i = 0; i < NPASSES; i++) {
        const Pass *p = &PASSES[i];
        if (disabled(opt, p->name)) continue;
        int rewrites = p->run(g, opt);
        bool print = opt->dump && (opt->print_after_all || (opt->print_after && strcmp(opt->print_after, p->name) == 0));
        if (print) dump_ir(opt->dump, g, arena_printf(g->arena, "after %s (%d rewrite%s)", p->name, rewrites, rewrites == 1 ? "" : "s"));
    }
}
