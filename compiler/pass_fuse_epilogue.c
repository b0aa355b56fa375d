/* pass_fuse_epilogue.c - a Conv2d or Linear absorbs the elementwise
 * activation that follows it (an ACTIVATION row of layers.def): its kernel
 * applies the activation to each output before storing it,
 * and the intermediate tensor disappears.  Applies when the layer's output
 * has exactly that one use and the layer has no epilogue yet. */
#include "passes.h"

static bool is_producer(OpKind op) { return op == OP_CONV2D || op == OP_LINEAR || op == OP_LAZYLINEAR; }

int pass_fuse_epilogue(Graph *g, const PassOptions *opt)
{
    (void)opt;
    int rewrites = 0;
    for (int i = 1; i < g->nodes.len; i++) {
        Node *p = g->nodes.items[i];
        if (!is_producer(p->op) || p->has_epilogue) continue;
        Node *act = graph_single_user(g, p);
        if (!act || !op_is_activation(act->op)) continue;
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
