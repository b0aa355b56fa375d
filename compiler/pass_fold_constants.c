/* pass_fold_constants.c - computes at compile time what depends only on
 * constants: an eval-mode BatchNorm that could not be folded into a layer
 * becomes y = x * scale + shift per channel, with scale and shift computed
 * here from weight, bias, running_mean, running_var and eps (four tensors and
 * a square root per channel become two tensors).  Applies to every BatchNorm
 * that uses running statistics. */
#include <math.h>

#include "passes.h"

void batchnorm_scale_shift(const Node *bn, float *scale, float *shift)
{
    const NormAttrs *na = &bn->attr.norm;
    const float *mean = node_param(bn, "running_mean")->data, *var = node_param(bn, "running_var")->data;
    const Param *w = node_param(bn, "weight"), *b = node_param(bn, "bias");
    for (int64_t c = 0; c < na->num_features; c++) {
        double k = (w ? w->data[c] : 1.0) / sqrt((double)var[c] + na->eps);
        scale[c] = (float)k;
        shift[c] = (float)((b ? b->data[c] : 0.0) - mean[c] * k);
    }
}

int pass_fold_constants(Graph *g, const PassOptions *opt)
{
    (void)opt;
    int rewrites = 0;
    for (int i = 1; i < g->nodes.len; i++) {
        Node *bn = g->nodes.items[i];
        if ((bn->op != OP_BATCHNORM1D && bn->op != OP_BATCHNORM2D) || !bn->attr.norm.track_running_stats || bn->bn_folded)
            continue;
        int64_t channels = bn->attr.norm.num_features;
        bool with_data = node_param(bn, "running_mean")->data != NULL;
        Param *folded = arena_alloc_array(g->arena, 2, sizeof *folded);
        const char *names[2] = {"scale", "shift"};
        for (int k = 0; k < 2; k++) {
            folded[k].key = arena_printf(g->arena, "%s.%s", bn->name, names[k]);
            folded[k].shape = (Shape){.rank = 1, .dims = {channels}};
            folded[k].dtype = DT_F32;
            if (with_data) folded[k].data = arena_alloc_array(g->arena, (size_t)channels, sizeof(float));
        }
        if (with_data) batchnorm_scale_shift(bn, folded[0].data, folded[1].data);
        bn->params = folded;
        bn->nparams = bn->params_cap = 2;
        bn->param_count = 0; /* derived constants, not learnable parameters */
        bn->bn_folded = true;
        rewrites++;
    }
    return rewrites;
}
