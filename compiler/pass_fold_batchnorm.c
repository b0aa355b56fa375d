/* pass_fold_batchnorm.c - folds an eval-mode BatchNorm into the Conv2d or
 * Linear before it: W'[c] = W[c] * scale[c], b'[c] = b[c] * scale[c] + shift[c].
 * Applies when the BatchNorm uses running statistics, its input comes from a
 * Conv2d with a batched [N, C, H, W] output or a Linear with an [N, F]
 * output (so BatchNorm's channels are the layer's output channels), that
 * output has no other use, and nothing (an activation) sits between them. */
#include <math.h>

#include "passes.h"

static bool channels_match(const Node *producer, const Node *bn)
{
    int64_t channels = bn->attr.norm.num_features;
    if (producer->op == OP_CONV2D) return producer->shape.rank == 4 && producer->attr.conv.out_channels == channels;
    if (producer->op == OP_LINEAR || producer->op == OP_LAZYLINEAR)
        return producer->shape.rank == 2 && producer->attr.linear.out_features == channels;
    return false;
}

static bool can_fold(const Graph *g, const Node *bn)
{
    if ((bn->op != OP_BATCHNORM1D && bn->op != OP_BATCHNORM2D) || !bn->attr.norm.track_running_stats || bn->bn_folded)
        return false;
    const Node *p = bn->inputs[0];
    return p->op != OP_INPUT && !p->has_epilogue && channels_match(p, bn) && graph_count_uses(g, p) == 1;
}

/* The producer's bias parameter, created (zero) when the layer had none. */
static Param *ensure_bias(Graph *g, Node *p, int64_t channels, bool with_data)
{
    const Param *existing = node_param(p, "bias");
    if (existing) return (Param *)existing;
    Param *grown = arena_alloc_array(g->arena, (size_t)p->nparams + 1, sizeof *grown);
    for (int i = 0; i < p->nparams; i++) grown[i] = p->params[i];
    Param *bias = &grown[p->nparams];
    bias->key = arena_printf(g->arena, "%s.bias", p->name);
    bias->shape = (Shape){.rank = 1, .dims = {channels}};
    bias->dtype = DT_F32;
    if (with_data) bias->data = arena_alloc_array(g->arena, (size_t)channels, sizeof(float));
    p->params = grown;
    p->nparams++;
    p->params_cap = p->nparams;
    p->param_count += channels;
    if (p->op == OP_CONV2D) p->attr.conv.bias = true;
    else p->attr.linear.bias = true;
    return bias;
}

static void fold_values(Graph *g, const Node *bn, Param *weight, Param *bias)
{
    int64_t channels = bn->attr.norm.num_features;
    float *scale = arena_alloc_array(g->arena, (size_t)channels, sizeof *scale);
    float *shift = arena_alloc_array(g->arena, (size_t)channels, sizeof *shift);
    batchnorm_scale_shift(bn, scale, shift);
    int64_t per_channel = shape_numel(&weight->shape) / channels; /* weight rows are output channels */
    float *w = arena_alloc_array(g->arena, (size_t)(channels * per_channel), sizeof *w);
    float *b = arena_alloc_array(g->arena, (size_t)channels, sizeof *b);
    for (int64_t c = 0; c < channels; c++) {
        for (int64_t k = 0; k < per_channel; k++) w[c * per_channel + k] = weight->data[c * per_channel + k] * scale[c];
        b[c] = (float)((double)bias->data[c] * scale[c] + shift[c]);
    }
    weight->data = w; /* new arrays: the unoptimised graph's values stay intact */
    bias->data = b;
}

int pass_fold_batchnorm(Graph *g, const PassOptions *opt)
{
    (void)opt;
    int rewrites = 0;
    for (int i = 1; i < g->nodes.len; i++) {
        Node *bn = g->nodes.items[i];
        if (!can_fold(g, bn)) continue;
        Node *p = bn->inputs[0];
        bool with_data = node_param(p, "weight")->data != NULL;
        Param *bias = ensure_bias(g, p, bn->attr.norm.num_features, with_data);
        /* Looked up after ensure_bias, which may move the layer's parameters to a grown array. */
        Param *weight = (Param *)node_param(p, "weight");
        if (with_data) fold_values(g, bn, weight, bias);
        ptrvec_push(g->arena, &p->absorbed, bn);
        p->source_id = bn->source_id;
        graph_bypass_node(g, bn);
        rewrites++;
        i--;
    }
    return rewrites;
}
