/* pass_fuse_residual.c - a Conv2d absorbs the add that follows it (the skip
 * connection of a residual block, y = conv(x) + skip): its kernel adds the
 * skip tensor to each output before the activation (which fuse-epilogue may
 * then fuse too, giving Conv + BN + add + ReLU in one kernel).
 *
 * Applies when the add's inputs have its shape (no broadcasting), the
 * Conv2d's output has that one use, and the Conv2d has no activation or
 * residual yet.  The Conv2d then reads the skip tensor as its second input,
 * so it moves to just before the add, after whatever computes the skip (its
 * only consumer was the add, so nothing in between reads it).  The memory
 * plan lets it write into the skip tensor's buffer when that is its last use
 * (plan_memory.c); otherwise forward() copies the skip tensor into the
 * output first and the kernel adds to what it finds there. */
#include "passes.h"

static bool fusable(const Graph *g, const Node *add, const Node *conv)
{
    return conv->op == OP_CONV2D && !conv->has_epilogue && !conv->has_residual && conv->ninputs == 1 &&
           graph_single_user(g, conv) == add && conv->shape.rank == add->shape.rank && shape_numel(&conv->shape) == shape_numel(&add->shape);
}

/* Moves node n to just before node `before` in the order (n comes earlier). */
static void move_before(Graph *g, Node *n, const Node *before)
{
    int from = n->id, to = before->id - 1;
    for (int i = from; i < to; i++) {
        g->nodes.items[i] = g->nodes.items[i + 1];
        ((Node *)g->nodes.items[i])->id = i;
    }
    g->nodes.items[to] = n;
    n->id = to;
}

int pass_fuse_residual(Graph *g, const PassOptions *opt)
{
    (void)opt;
    int rewrites = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        Node *add = g->nodes.items[i];
        if (add->op != OP_ADD || !add->attr.broadcast.same_shapes) continue;
        int k = fusable(g, add, add->inputs[0]) ? 0 : fusable(g, add, add->inputs[1]) ? 1 : -1;
        if (k < 0) continue;
        Node *conv = add->inputs[k], *skip = add->inputs[1 - k];
        conv->inputs[1] = skip;
        conv->ninputs = 2;
        conv->has_residual = true;
        ptrvec_push(g->arena, &conv->absorbed, add);
        conv->source_id = add->source_id;
        move_before(g, conv, add);
        graph_replace_node(g, add, conv);
        rewrites++;
        i = conv->id;
    }
    return rewrites;
}
