/* infer_shapes.c - the shape inference stage: walks the graph in order and
 * applies each layer's rule (layers.def) to the tensor flowing in.  A node
 * whose input could not be inferred is skipped, so one mistake is reported
 * once, not again by every layer after it.  See infer.h. */
#include "infer.h"
#include "layer_args.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* No single tensor may exceed this: far beyond any real model, and small
 * enough that every byte count derived from it fits comfortably in int64. */
static const int64_t MAX_TENSOR_BYTES = (int64_t)1 << 40;

static const ShapeRule rules[] = {
#define LAYER(E, Name, Sig, rule, kernel, reference, flags) [OP_##E] = rule,
#include "layers.def"
#undef LAYER
};

int64_t sat_mul(int64_t a, int64_t b)
{
    int64_t r;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r)) return INT64_MAX;
    return r;
}

int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) return INT64_MAX;
    return r;
}

int64_t shape_numel(const Shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++)
        if (s->dims[i] < 0 || __builtin_mul_overflow(n, s->dims[i], &n)) return -1;
    return n;
}

const char *shape_format(const Shape *s, const char *batch_name, char *buf, size_t size)
{
    size_t len = 0;
    len += (size_t)snprintf(buf + len, size - len, "[");
    for (int i = 0; i < s->rank && len < size; i++) {
        const char *sep = i ? ", " : "";
        if (i == 0 && s->dynamic_batch)
            len += (size_t)snprintf(buf + len, size - len, "%s%s", sep, batch_name ? batch_name : "N");
        else
            len += (size_t)snprintf(buf + len, size - len, "%s%lld", sep, (long long)s->dims[i]);
    }
    if (len < size) snprintf(buf + len, size - len, "]");
    return buf;
}

const char *shape_text(InferCtx *ic, const Shape *s)
{
    char buf[MAX_SHAPE_TEXT];
    return arena_strdup(ic->arena, shape_format(s, ic->graph->batch_name, buf, sizeof buf));
}

const char *describe_tensor(InferCtx *ic, const Node *producer)
{
    const char *shape = shape_text(ic, &producer->shape);
    if (producer->op == OP_INPUT) return arena_printf(ic->arena, "input %s %s", producer->name, shape);
    if (producer->named) return arena_printf(ic->arena, "%s output %s", producer->name, shape);
    return arena_printf(ic->arena, "%s output %s", op_name(producer->op), shape);
}

static void node_report(InferCtx *ic, DiagLevel level, const Node *n, SrcSpan at, const char *fmt, va_list ap)
{
    char *msg = arena_vprintf(ic->arena, fmt, ap);
    diag_report(ic->diag, level, at, "%s: %s", n->call_text, msg);
}

void node_error(InferCtx *ic, const Node *n, SrcSpan at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    node_report(ic, DIAG_ERROR, n, at, fmt, ap);
    va_end(ap);
}

void node_warning(InferCtx *ic, const Node *n, SrcSpan at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    node_report(ic, DIAG_WARNING, n, at, fmt, ap);
    va_end(ap);
}

void explain(InferCtx *ic, Node *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ptrvec_push(ic->arena, &n->explain, arena_vprintf(ic->arena, fmt, ap));
    va_end(ap);
}

bool expect_rank(InferCtx *ic, const Node *n, int min_rank, int max_rank, const char *layout)
{
    int rank = input_shape(n)->rank;
    if (rank >= min_rank && rank <= max_rank) return true;
    const char *want = min_rank == max_rank ? arena_printf(ic->arena, "%d-D", min_rank)
                                            : arena_printf(ic->arena, "%d-D to %d-D", min_rank, max_rank);
    node_error(ic, n, n->op_loc, "expects a %s input %s, found %d-D (%s)", want, layout, rank,
               describe_tensor(ic, n->inputs[0]));
    return false;
}

bool expect_dtype(InferCtx *ic, const Node *n, DType want)
{
    if (n->inputs[0]->dtype == want) return true;
    if (want == DT_F32)
        node_error(ic, n, n->op_loc, "expects a float (f32) input, found token ids (i64) from %s",
                   describe_tensor(ic, n->inputs[0]));
    else
        node_error(ic, n, n->op_loc, "expects token ids (an i64 input), found floats (f32) from %s",
                   describe_tensor(ic, n->inputs[0]));
    if (want == DT_F32 && n->inputs[0]->op == OP_INPUT)
        diag_note(ic->diag, n->op_loc, "token ids go through an Embedding first");
    return false;
}

bool expect_fixed_dim(InferCtx *ic, const Node *n, int dim, const char *what)
{
    if (dim != 0 || !input_shape(n)->dynamic_batch) return true;
    node_error(ic, n, n->op_loc, "uses dimension 0 as %s, but it is the run-time batch %s of %s; give it a fixed size",
               what, ic->graph->batch_name, describe_tensor(ic, n->inputs[0]));
    return false;
}

static bool expect_bound(InferCtx *ic, const Node *n, const BoundArg *a, int64_t min, const char *what)
{
    if (a->is_none || a->str) return true;
    int count = a->count ? a->count : 1;
    for (int i = 0; i < count; i++) {
        if (a->ints[i] >= min) continue;
        node_error(ic, n, a->loc, "'%s' must be %s, found %lld", node_arg_name(n, a), what, (long long)a->ints[i]);
        return false;
    }
    return true;
}

bool expect_positive(InferCtx *ic, const Node *n, const BoundArg *a) { return expect_bound(ic, n, a, 1, "at least 1"); }
bool expect_nonnegative(InferCtx *ic, const Node *n, const BoundArg *a) { return expect_bound(ic, n, a, 0, "non-negative"); }

void add_param(InferCtx *ic, Node *n, const char *suffix, int rank, const int64_t *dims, bool is_buffer)
{
    if (n->nparams == n->params_cap) {
        n->params_cap = n->params_cap ? 2 * n->params_cap : 4;
        Param *grown = arena_alloc_array(ic->arena, (size_t)n->params_cap, sizeof *grown);
        if (n->nparams) memcpy(grown, n->params, (size_t)n->nparams * sizeof *grown);
        n->params = grown;
    }
    Param *p = &n->params[n->nparams];
    p->key = arena_printf(ic->arena, "%s.%s", n->name, suffix);
    p->shape.rank = rank;
    for (int i = 0; i < rank; i++) p->shape.dims[i] = dims[i];
    p->dtype = DT_F32;
    p->is_buffer = is_buffer;
    n->nparams++;
    if (!is_buffer) {
        int64_t numel = shape_numel(&p->shape);
        n->param_count = sat_add(n->param_count, numel < 0 ? INT64_MAX : numel);
    }
}

void add_param1(InferCtx *ic, Node *n, const char *suffix, int64_t d0, bool is_buffer)
{
    add_param(ic, n, suffix, 1, &d0, is_buffer);
}

void add_param2(InferCtx *ic, Node *n, const char *suffix, int64_t d0, int64_t d1)
{
    int64_t dims[2] = {d0, d1};
    add_param(ic, n, suffix, 2, dims, false);
}

static bool within_limits(InferCtx *ic, const Node *n, const Shape *s, const char *what)
{
    int64_t numel = shape_numel(s);
    if (numel >= 0 && numel <= MAX_TENSOR_BYTES / 8) return true;
    const char *shape = shape_text(ic, s);
    if (n->op == OP_INPUT)
        diag_error(ic->diag, n->loc, "input %s %s is too large: more than %lld bytes", n->name, shape,
                   (long long)MAX_TENSOR_BYTES);
    else
        node_error(ic, n, n->op_loc, "its %s %s is too large: more than %lld bytes", what, shape,
                   (long long)MAX_TENSOR_BYTES);
    return false;
}

static bool node_within_limits(InferCtx *ic, Node *n)
{
    if (!within_limits(ic, n, &n->shape, "output")) return false;
    for (int i = 0; i < n->nparams; i++)
        if (!within_limits(ic, n, &n->params[i].shape, arena_printf(ic->arena, "parameter %s", n->params[i].key)))
            return false;
    return true;
}

static bool inputs_inferred(const Node *n)
{
    for (int k = 0; k < n->ninputs; k++)
        if (!n->inputs[k]->inferred) return false;
    return true;
}

bool infer_shapes(Diag *d, Graph *g)
{
    InferCtx ic = {.diag = d, .arena = g->arena, .graph = g};
    int errors_before = d->errors;
    for (int i = 0; i < g->nodes.len && !diag_too_many(d); i++) {
        Node *n = g->nodes.items[i];
        if (n->op == OP_INPUT) {
            if (n->inferred) n->inferred = node_within_limits(&ic, n);
            continue;
        }
        if (n->invalid || !inputs_inferred(n)) continue;
        n->dtype = DT_F32;
        bool ok = rules[n->op](&ic, n);
        n->inferred = (ok || n->recovered) && node_within_limits(&ic, n);
    }
    bool outputs_inferred = g->outputs.len > 0;
    for (int i = 0; i < g->outputs.len; i++) outputs_inferred &= ((const Node *)g->outputs.items[i])->inferred;
    return d->errors == errors_before && outputs_inferred;
}
