/* rules_dense.c - shape rules of the layers that keep or reshape a tensor
 * without a sliding window: elementwise activations, Dropout, Identity,
 * Softmax/LogSoftmax, BatchNorm1d/2d, LayerNorm, Linear/LazyLinear, Flatten. */
#include <string.h>

#include "infer.h"
#include "layer_args.h"

/* The activations (LF_ACTIVATION), Identity, Dropout, Dropout2d: [*] -> [*] */
bool rule_elementwise(InferCtx *ic, Node *n)
{
    n->shape = *input_shape(n);
    if (n->op == OP_IDENTITY) {
        n->dtype = n->inputs[0]->dtype;
        return true;
    }
    if (!expect_dtype(ic, n, DT_F32)) return false;
    if (n->op == OP_LEAKYRELU) n->attr.act.negative_slope = NODE_ARGS(n, LeakyReluArgs)->negative_slope.num;
    if (n->op == OP_GELU) n->attr.act.gelu_tanh = strcmp(NODE_ARGS(n, GeluArgs)->approximate.str, "tanh") == 0;
    if (n->op == OP_DROPOUT || n->op == OP_DROPOUT2D) {
        const BoundArg *p = &NODE_ARGS(n, DropoutArgs)->p;
        if (!(p->num >= 0.0 && p->num <= 1.0)) {
            node_error(ic, n, p->loc, "dropout probability must be between 0 and 1, found %g", p->num);
            return false;
        }
        n->attr.act.p = p->num;
        int rank = n->shape.rank;
        if (n->op == OP_DROPOUT2D && rank != 3 && rank != 4)
            node_warning(ic, n, n->op_loc, "Dropout2d expects a 3-D or 4-D input, found %d-D (%s); it is the identity at inference",
                         rank, describe_tensor(ic, n->inputs[0]));
    }
    return true;
}

/* A dimension argument in [-rank, rank) normalised to [0, rank). */
static bool normalise_dim(InferCtx *ic, const Node *n, const BoundArg *arg, int rank, int *out)
{
    int64_t dim = arg->ints[0];
    if (dim < -rank || dim >= rank) {
        node_error(ic, n, arg->loc, "%s=%lld is out of range for a %d-D input (expected %d to %d) (%s)", node_arg_name(n, arg),
                   (long long)dim, rank, -rank, rank - 1, describe_tensor(ic, n->inputs[0]));
        return false;
    }
    *out = (int)(dim < 0 ? dim + rank : dim);
    return true;
}

/* Softmax(dim), LogSoftmax(dim): [*] -> [*] */
bool rule_softmax(InferCtx *ic, Node *n)
{
    if (!expect_dtype(ic, n, DT_F32)) return false;
    n->shape = *input_shape(n);
    int rank = n->shape.rank;
    const BoundArg *dim = &NODE_ARGS(n, SoftmaxArgs)->dim;
    if (dim->is_none) {
        /* torch.nn.functional._get_softmax_dim: the legacy implicit choice. */
        n->attr.axis.dim = (rank == 0 || rank == 1 || rank == 3) ? 0 : 1;
        node_warning(ic, n, n->op_loc, "no dim given: PyTorch's deprecated implicit choice picks dim=%d for a %d-D input",
                     n->attr.axis.dim, rank);
        diag_note(ic->diag, n->op_loc, "write %s(dim=%d) to say which dimension sums to 1", op_name(n->op), n->attr.axis.dim);
        return true;
    }
    return normalise_dim(ic, n, dim, rank, &n->attr.axis.dim);
}

/* BatchNorm1d: [N, C] or [N, C, L]; BatchNorm2d: [N, C, H, W] -> same shape */
bool rule_batchnorm(InferCtx *ic, Node *n)
{
    bool two_d = n->op == OP_BATCHNORM2D;
    if (!expect_dtype(ic, n, DT_F32)) return false;
    if (two_d ? !expect_rank(ic, n, 4, 4, "[N, C, H, W]") : !expect_rank(ic, n, 2, 3, "[N, C] or [N, C, L]"))
        return false;
    const BatchNormArgs *a = NODE_ARGS(n, BatchNormArgs);
    if (!expect_positive(ic, n, &a->num_features)) return false;
    NormAttrs *na = &n->attr.norm;
    na->num_features = a->num_features.ints[0];
    na->eps = a->eps.num;
    na->affine = a->affine.ints[0];
    na->track_running_stats = a->track_running_stats.ints[0];
    int64_t have = input_shape(n)->dims[1];
    n->shape = *input_shape(n);
    if (have != na->num_features) {
        node_error(ic, n, a->num_features.loc, "num_features is %lld but its input has %lld channels (%s)",
                   (long long)na->num_features, (long long)have, describe_tensor(ic, n->inputs[0]));
        n->recovered = true; /* the output is the input's shape either way */
        return false;
    }
    if (!(na->eps > 0)) {
        node_error(ic, n, a->eps.loc, "eps must be positive, found %g", na->eps);
        return false;
    }
    n->shape = *input_shape(n);
    if (na->affine) {
        add_param1(ic, n, "weight", na->num_features, false);
        add_param1(ic, n, "bias", na->num_features, false);
    }
    if (na->track_running_stats) {
        add_param1(ic, n, "running_mean", na->num_features, true);
        add_param1(ic, n, "running_var", na->num_features, true);
        add_param(ic, n, "num_batches_tracked", 0, NULL, true);
        n->params[n->nparams - 1].dtype = DT_I64;
    } else {
        node_warning(ic, n, a->track_running_stats.loc,
                     "track_running_stats=False: in eval mode this layer normalises with the statistics of each batch");
    }
    return true;
}

/* LayerNorm(normalized_shape): [*, normalized_shape...] -> same shape */
bool rule_layernorm(InferCtx *ic, Node *n)
{
    const LayerNormArgs *a = NODE_ARGS(n, LayerNormArgs);
    const BoundArg *ns = &a->normalized_shape;
    if (!expect_dtype(ic, n, DT_F32) || !expect_positive(ic, n, ns)) return false;
    const Shape *in = input_shape(n);
    NormAttrs *na = &n->attr.norm;
    na->norm_rank = ns->count;
    na->eps = a->eps.num;
    na->affine = a->elementwise_affine.ints[0];
    na->bias = na->affine && a->bias.ints[0];
    bool match = in->rank >= ns->count;
    for (int i = 0; match && i < ns->count; i++) match = in->dims[in->rank - ns->count + i] == ns->ints[i];
    if (match && in->dynamic_batch && in->rank == ns->count) match = false;
    if (!match) {
        Shape want = {.rank = ns->count}, found = {.rank = in->rank < ns->count ? in->rank : ns->count};
        memcpy(want.dims, ns->ints, sizeof(int64_t) * (size_t)ns->count);
        memcpy(found.dims, in->dims + in->rank - found.rank, sizeof(int64_t) * (size_t)found.rank);
        found.dynamic_batch = in->dynamic_batch && found.rank == in->rank;
        const char *which = ns->count == 1 ? "last dimension" : arena_printf(ic->arena, "last %d dimensions", ns->count);
        node_error(ic, n, ns->loc, "normalized_shape %s must equal the %s of its input, found %s (%s)", shape_text(ic, &want),
                   which, shape_text(ic, &found), describe_tensor(ic, n->inputs[0]));
        n->shape = *in;
        n->recovered = true;
        return false;
    }
    na->num_features = 1;
    for (int i = 0; i < ns->count; i++) na->num_features = sat_mul(na->num_features, ns->ints[i]);
    n->shape = *in;
    if (na->affine) add_param(ic, n, "weight", ns->count, ns->ints, false);
    if (na->bias) add_param(ic, n, "bias", ns->count, ns->ints, false);
    return true;
}

/* Linear: [*, in_features] -> [*, out_features]; LazyLinear takes in_features from its input. */
bool rule_linear(InferCtx *ic, Node *n)
{
    if (!expect_dtype(ic, n, DT_F32) || !expect_rank(ic, n, 1, MAX_RANK, "[*, in_features]")) return false;
    const Shape *in = input_shape(n);
    /* Linear's arguments, or LazyLinear's (the same without in_features) */
    bool lazy = n->op == OP_LAZYLINEAR;
    const LinearArgs *a = lazy ? NULL : NODE_ARGS(n, LinearArgs);
    const LazyLinearArgs *lz = lazy ? NODE_ARGS(n, LazyLinearArgs) : NULL;
    const BoundArg *out_features = lazy ? &lz->out_features : &a->out_features;
    if (!expect_fixed_dim(ic, n, in->rank - 1, "its features") || !expect_positive(ic, n, out_features)) return false;
    LinearAttrs *la = &n->attr.linear;
    int64_t have = in->dims[in->rank - 1];
    la->out_features = out_features->ints[0];
    la->bias = (lazy ? &lz->bias : &a->bias)->ints[0];
    if (lazy) {
        la->in_features = have;
        explain(ic, n, "in_features: inferred from the input's last dimension = %lld", (long long)have);
    } else {
        if (!expect_positive(ic, n, &a->in_features)) return false;
        la->in_features = a->in_features.ints[0];
    }
    n->shape = *in;
    n->shape.dims[in->rank - 1] = la->out_features;
    if (have != la->in_features) { /* never for LazyLinear, whose in_features is `have` */
        node_error(ic, n, a->in_features.loc, "in_features is %lld but its input has %lld features (%s)",
                   (long long)la->in_features, (long long)have, describe_tensor(ic, n->inputs[0]));
        n->recovered = true; /* the output has out_features either way */
        return false;
    }
    add_param2(ic, n, "weight", la->out_features, la->in_features);
    if (la->bias) add_param1(ic, n, "bias", la->out_features, false);
    n->macs = sat_mul(shape_numel(&n->shape), la->in_features);
    return true;
}

/* Flatten(start_dim, end_dim): dims start..end collapse into their product. */
bool rule_flatten(InferCtx *ic, Node *n)
{
    const Shape *in = input_shape(n);
    AxisAttrs *ax = &n->attr.axis;
    int rank = in->rank;
    const FlattenArgs *a = NODE_ARGS(n, FlattenArgs);
    if (!normalise_dim(ic, n, &a->start_dim, rank, &ax->start) || !normalise_dim(ic, n, &a->end_dim, rank, &ax->end))
        return false;
    if (ax->start > ax->end) {
        node_error(ic, n, n->op_loc, "start_dim (%d) comes after end_dim (%d) for a %d-D input (%s)", ax->start, ax->end, rank,
                   describe_tensor(ic, n->inputs[0]));
        return false;
    }
    if (in->dynamic_batch && ax->start == 0 && ax->end > 0) {
        node_error(ic, n, n->op_loc, "would merge the run-time batch %s into a fixed dimension (%s)", ic->graph->batch_name,
                   describe_tensor(ic, n->inputs[0]));
        diag_note(ic->diag, n->op_loc, "start at dimension 1, or declare the input with a fixed batch size");
        return false;
    }
    n->dtype = n->inputs[0]->dtype;
    Shape out = {.rank = rank - (ax->end - ax->start), .dynamic_batch = in->dynamic_batch};
    int k = 0;
    for (int i = 0; i < rank; i++) {
        if (i <= ax->start || i > ax->end) out.dims[k++] = in->dims[i];
        else out.dims[k - 1] = sat_mul(out.dims[k - 1], in->dims[i]);
    }
    n->shape = out;
    if (ax->end > ax->start) {
        char *terms = arena_printf(ic->arena, "%lld", (long long)in->dims[ax->start]);
        for (int i = ax->start + 1; i <= ax->end; i++) terms = arena_printf(ic->arena, "%s * %lld", terms, (long long)in->dims[i]);
        explain(ic, n, "dim %d: %s = %lld", ax->start, terms, (long long)out.dims[ax->start]);
    }
    return true;
}

/* The dimension a Select or Mean reduces: not the run-time batch. */
static bool reduced_dim(InferCtx *ic, Node *n, const BoundArg *dim)
{
    const Shape *in = input_shape(n);
    if (!expect_dtype(ic, n, DT_F32) || !normalise_dim(ic, n, dim, in->rank, &n->attr.axis.dim)) return false;
    if (n->attr.axis.dim == 0 && in->dynamic_batch) {
        node_error(ic, n, dim->loc, "dim=0 is the run-time batch %s (%s)", ic->graph->batch_name, describe_tensor(ic, n->inputs[0]));
        diag_note(ic->diag, dim->loc, "a batch_first sequence [N, T, F] has its time steps in dim 1");
        return false;
    }
    return true;
}

/* The input's shape without dimension `dim` (kept as 1 with keepdim). */
static Shape without_dim(const Shape *in, int dim, bool keepdim)
{
    Shape out = *in;
    if (keepdim) {
        out.dims[dim] = 1;
        return out;
    }
    out.rank--;
    for (int i = dim; i < out.rank; i++) out.dims[i] = in->dims[i + 1];
    return out;
}

/* Select(dim, index): x.select(dim, index), e.g. the last time step x[:, -1] of a batch_first sequence. */
bool rule_select(InferCtx *ic, Node *n)
{
    const SelectArgs *a = NODE_ARGS(n, SelectArgs);
    if (!reduced_dim(ic, n, &a->dim)) return false;
    const Shape *in = input_shape(n);
    int dim = n->attr.axis.dim;
    int64_t size = in->dims[dim], index = a->index.ints[0];
    if (index < -size || index >= size) {
        node_error(ic, n, a->index.loc, "index %lld is out of range for dimension %d of size %lld (expected %lld to %lld) (%s)",
                   (long long)index, dim, (long long)size, (long long)-size, (long long)(size - 1), describe_tensor(ic, n->inputs[0]));
        diag_note(ic->diag, a->index.loc, "negative indices count from the end: index=-1 is the last (x[:, -1] for dim=1)");
        return false;
    }
    n->attr.axis.index = index < 0 ? index + size : index;
    n->shape = without_dim(in, dim, false);
    return true;
}

/* Mean(dim, keepdim): x.mean(dim, keepdim), e.g. pooling a sequence over its time steps. */
bool rule_mean(InferCtx *ic, Node *n)
{
    const MeanArgs *a = NODE_ARGS(n, MeanArgs);
    if (!reduced_dim(ic, n, &a->dim)) return false;
    n->attr.axis.keepdim = a->keepdim.ints[0];
    n->shape = without_dim(input_shape(n), n->attr.axis.dim, n->attr.axis.keepdim);
    return true;
}
