/* pass_simplify_inference.c - Identity, Dropout and Dropout2d
 * (LF_INFERENCE_IDENTITY in layers.def) are the identity at inference:
 * remove them, their consumers read their input.  Applies to every such node.  (Flatten stays a node but is a view: the
 * memory plan gives it its input's storage, so it never copies.) */
#include "passes.h"

static bool is_inference_identity(OpKind op) { return op_flags(op) & LF_INFERENCE_IDENTITY; }

int pass_simplify_inference(Graph *g, const PassOptions *opt)
{
    (void)opt;
    int rewrites = 0;
    for (int i = 1; i < g->nodes.len;) {
        Node *n = g->nodes.items[i];
        if (!is_inference_identity(n->op)) {
            i++;
            continue;
        }
        graph_bypass_node(g, n);
        rewrites++;
    }
    return rewrites;
}
