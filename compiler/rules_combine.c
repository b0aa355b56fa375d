/* rules_combine.c - shape rules of the layers that read several tensors:
 * a + b and a * b (PyTorch's broadcasting), cat (torch.cat) and Bilinear.
 * Errors name every input tensor with its shape. */
#include "infer.h"
#include "layer_args.h"

#include <string.h>

/* "the inputs conv2 output [N, 64, 56, 56] and x [N, 3, 56, 56]" */
static const char *describe_inputs(InferCtx *ic, const Node *n)
{
    const char *text = describe_tensor(ic, n->inputs[0]);
    for (int k = 1; k < n->ninputs; k++)
        text = arena_printf(ic->arena, "%s%s%s", text, k == n->ninputs - 1 ? " and " : ", ", describe_tensor(ic, n->inputs[k]));
    return text;
}

static bool expect_float_inputs(InferCtx *ic, const Node *n)
{
    for (int k = 0; k < n->ninputs; k++) {
        if (n->inputs[k]->dtype == DT_F32) continue;
        node_error(ic, n, n->op_loc, "expects float (f32) tensors, found token ids (i64) from %s",
                   describe_tensor(ic, n->inputs[k]));
        return false;
    }
    return true;
}

/* Dimension i (right-aligned to rank `rank`) of s: its size, 1 where s has fewer dimensions. */
static int64_t aligned_dim(const Shape *s, int rank, int i, bool *is_batch)
{
    int j = i - (rank - s->rank);
    *is_batch = j == 0 && s->dynamic_batch;
    return j < 0 ? 1 : s->dims[j];
}

/* a + b, a * b: [*a] and [*b] broadcast to one shape, as torch.add / torch.mul. */
bool rule_add(InferCtx *ic, Node *n)
{
    if (!expect_float_inputs(ic, n)) return false;
    const Shape *a = &n->inputs[0]->shape, *b = &n->inputs[1]->shape;
    int rank = a->rank > b->rank ? a->rank : b->rank;
    Shape out = {.rank = rank};
    const char *verb = n->op == OP_ADD ? "add" : "multiply";
    for (int i = 0; i < rank; i++) {
        bool a_batch, b_batch;
        int64_t da = aligned_dim(a, rank, i, &a_batch), db = aligned_dim(b, rank, i, &b_batch);
        if (a_batch || b_batch) {
            /* the run-time batch meets the other's batch, or a fixed size: only 1 broadcasts against it */
            int64_t other = a_batch ? (b_batch ? 1 : db) : da;
            if (other != 1) {
                node_error(ic, n, n->op_loc, "cannot %s %s: dimension %d is the run-time batch %s in one and %lld in the other",
                           verb, describe_inputs(ic, n), i, ic->graph->batch_name, (long long)other);
                return false;
            }
            if (i != 0) {
                node_error(ic, n, n->op_loc, "cannot %s %s: the run-time batch %s would not stay dimension 0", verb,
                           describe_inputs(ic, n), ic->graph->batch_name);
                return false;
            }
            out.dynamic_batch = true;
            out.dims[i] = 1;
            continue;
        }
        if (da != db && da != 1 && db != 1) {
            node_error(ic, n, n->op_loc, "cannot %s %s: dimension %d is %lld in one and %lld in the other", verb,
                       describe_inputs(ic, n), i, (long long)da, (long long)db);
            diag_note(ic->diag, n->op_loc, "tensors broadcast when each dimension, counted from the last, is equal or 1 in one of them");
            return false;
        }
        out.dims[i] = da == 1 ? db : da;
    }
    n->shape = out;
    bool same = a->rank == rank && b->rank == rank;
    for (int i = 0; same && i < rank; i++) same = a->dims[i] == out.dims[i] && b->dims[i] == out.dims[i];
    n->attr.broadcast.same_shapes = same && a->dynamic_batch == b->dynamic_batch;
    if (!n->attr.broadcast.same_shapes)
        explain(ic, n, "broadcast %s and %s to %s", shape_text(ic, a), shape_text(ic, b), shape_text(ic, &out));
    return true;
}

/* cat([a, b, ...], dim): equal shapes but along dim, where the sizes add up. */
bool rule_cat(InferCtx *ic, Node *n)
{
    if (!expect_float_inputs(ic, n)) return false;
    const Shape *first = &n->inputs[0]->shape;
    int rank = first->rank;
    const BoundArg *dim_arg = &NODE_ARGS(n, CatArgs)->dim;
    int64_t dim = dim_arg->ints[0];
    if (dim < -rank || dim >= rank) {
        node_error(ic, n, dim_arg->loc, "dim=%lld is out of range for %d-D tensors (expected %d to %d)", (long long)dim, rank,
                   -rank, rank - 1);
        return false;
    }
    int d = (int)(dim < 0 ? dim + rank : dim);
    if (d == 0 && first->dynamic_batch) {
        node_error(ic, n, dim_arg->loc, "cannot concatenate along dimension 0, the run-time batch %s", ic->graph->batch_name);
        return false;
    }
    Shape out = *first;
    for (int k = 1; k < n->ninputs; k++) {
        const Shape *s = &n->inputs[k]->shape;
        bool match = s->rank == rank && s->dynamic_batch == first->dynamic_batch;
        for (int i = 0; match && i < rank; i++) match = i == d || s->dims[i] == first->dims[i];
        if (!match) {
            node_error(ic, n, n->op_loc, "cannot concatenate %s along dimension %d: every other dimension must be equal",
                       describe_inputs(ic, n), d);
            return false;
        }
        out.dims[d] = sat_add(out.dims[d], s->dims[d]);
    }
    n->attr.axis.dim = d;
    n->shape = out;
    return true;
}

/* Bilinear(in1, in2, out)(x1 [*, in1], x2 [*, in2]) -> [*, out]: y = x1^T W x2 + b. */
bool rule_bilinear(InferCtx *ic, Node *n)
{
    if (!expect_float_inputs(ic, n)) return false;
    const BilinearArgs *a = NODE_ARGS(n, BilinearArgs);
    if (!expect_positive(ic, n, &a->in1_features) || !expect_positive(ic, n, &a->in2_features) ||
        !expect_positive(ic, n, &a->out_features))
        return false;
    BilinearAttrs *bl = &n->attr.bilinear;
    bl->in1_features = a->in1_features.ints[0];
    bl->in2_features = a->in2_features.ints[0];
    bl->out_features = a->out_features.ints[0];
    bl->bias = a->bias.ints[0] != 0;
    const Shape *x1 = &n->inputs[0]->shape, *x2 = &n->inputs[1]->shape;
    if (x1->rank < 1 || x2->rank != x1->rank) {
        node_error(ic, n, n->op_loc, "expects two tensors of the same rank, at least 1-D, found %s", describe_inputs(ic, n));
        return false;
    }
    int last = x1->rank - 1;
    bool leading_match = x1->dynamic_batch == x2->dynamic_batch;
    for (int i = 0; leading_match && i < last; i++) leading_match = x1->dims[i] == x2->dims[i];
    if (!leading_match) {
        node_error(ic, n, n->op_loc, "the two inputs must agree on every dimension but the last, found %s", describe_inputs(ic, n));
        return false;
    }
    if (x1->dims[last] != bl->in1_features || x2->dims[last] != bl->in2_features) {
        node_error(ic, n, n->op_loc, "expects inputs whose last dimensions are in1_features=%lld and in2_features=%lld, found %s",
                   (long long)bl->in1_features, (long long)bl->in2_features, describe_inputs(ic, n));
        return false;
    }
    n->shape = *x1;
    n->shape.dims[last] = bl->out_features;
    int64_t dims[3] = {bl->out_features, bl->in1_features, bl->in2_features};
    add_param(ic, n, "weight", 3, dims, false);
    if (bl->bias) add_param1(ic, n, "bias", bl->out_features, false);
    int64_t rows = shape_numel(&n->shape) / bl->out_features;
    n->macs = sat_mul(sat_mul(rows, bl->out_features), sat_mul(bl->in1_features, bl->in2_features));
    return true;
}
