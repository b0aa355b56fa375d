/* pass_fuse_epilogue.c - a Conv2d or Linear absorbs the elementwise
 * activation that follows it (ReLU, ReLU6, LeakyReLU, Sigmoid, Tanh, GELU,
 * SiLU): its kernel applies the activation to each output before storing it,
 * and the intermediate tensor disappears.  Applies when the layer's output
 * has exactly that one use and the layer has no epilogue yet. */
#include "passes.h"

static bool is_fusable_activation(OpKind op)
{
    switch (op) {
    case OP_RELU: case OP_RELU6: case OP_LEAKYRELU: case OP_SIGMOID: case OP_TANH: case OP_GELU: case OP_SILU:
        return true;
    default:
        return false;
    }
}

static bool is_producer(OpKind op) { return op == OP_CONV2D || op == OP_LINEAR || op == OP_LAZYLINEAR; }

int pass_fuse_epilogue(Graph *g, const PassOptions *opt)
{
    (void)opt;
    int rewrites = 0;
    for (int i = 1; i < g->nodes.len; i++) {
        Node *p = g->nodes.items[i];
        if (!is_producer(p->op) || p->has_epilogue) continue;
        Node *act = graph_single_user(g, p);
        if (!act || !is_fusable_activation(act->op)) continue;
        p->has_epilogue = true;
        p->epilogue = act->op;
        p->epilogue_attr = act->attr.act;
        ptrvec_push(g->arena, &p->absorbed, act);
        p->source_id = act->source_id;
        graph_bypass_node(g, act);
        rewrites++;
    }
    return rewrites;
}
