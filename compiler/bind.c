/* bind.c - AST -> graph IR: layer lookup, argument binding, node naming,
 * the model's inputs, and the stack form (each line reads the previous
 * line's output).  A model with a forward section is traced by
 * bind_forward.c, which binds its layer calls with the functions here.
 * See bind.h.  Every check here is about how a call is written; whether the
 * values make sense for the tensor flowing in is the shape rules' job. */
#include "bind.h"
#include "binder.h"

#include <stdio.h>
#include <string.h>

/* torch.nn layers that layerc knows by name but does not compile, and why. */
static const struct {
    const char *name;
    const char *why;
} refused_layers[] = {
    {"Conv1d", NULL}, {"Conv3d", NULL}, {"ConvTranspose2d", NULL}, {"MaxPool1d", NULL},
    {"MaxPool3d", NULL}, {"AvgPool1d", NULL}, {"AdaptiveMaxPool2d", NULL}, {"BatchNorm3d", NULL},
    {"GroupNorm", NULL}, {"InstanceNorm2d", NULL}, {"PReLU", NULL}, {"ELU", NULL},
    {"Transformer", NULL}, {"TransformerDecoderLayer", NULL}, {"MultiheadAttention", NULL},
    {"Unflatten", NULL}, {"Upsample", NULL}, {"ZeroPad2d", NULL},
};

/* "zeros reflect" -> {"zeros", "reflect"}; at most 16 words. */
static int split_choices(Arena *a, const char *choices, const char **words)
{
    char *copy = arena_strdup(a, choices);
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, " ", &save); tok && n < 16; tok = strtok_r(NULL, " ", &save)) words[n++] = tok;
    return n;
}

static const char *value_description(Arena *a, const Value *v)
{
    switch (v->kind) {
    case VAL_INT: return arena_printf(a, "integer %lld", (long long)v->i);
    case VAL_FLOAT: {
        const char *text = arena_printf(a, "%.9g", v->f);
        bool looks_integral = !strpbrk(text, ".eEn"); /* n: inf, nan */
        return arena_printf(a, "float %s%s", text, looks_integral ? ".0" : "");
    }
    case VAL_BOOL: return v->i ? "True" : "False";
    case VAL_NONE: return "None";
    case VAL_STRING: return arena_printf(a, "string '%.60s'", v->s);
    case VAL_NAME: return arena_printf(a, "name '%.60s'", v->s);
    case VAL_TUPLE: return arena_printf(a, "a tuple of %d item%s", v->nitems, v->nitems == 1 ? "" : "s");
    case VAL_CALL: return arena_printf(a, "a call of %.60s", v->call->layer);
    case VAL_BINARY:
    case VAL_UNARY: return "an expression (only blocks and forward sections compute values)";
    }
    return "?";
}

static const char *type_expectation(const ArgSpec *spec, Arena *a)
{
    switch (spec->type) {
    case ARG_INT: return "an integer";
    case ARG_PAIR: return "an integer or a pair of integers such as (3, 3)";
    case ARG_FLOAT: return "a number";
    case ARG_BOOL: return "True or False";
    case ARG_STRING: {
        const char *words[16];
        int n = split_choices(a, spec->choices, words);
        char *out = arena_strdup(a, "one of ");
        for (int i = 0; i < n; i++)
            out = arena_printf(a, "%s%s'%s'", out, i == 0 ? "" : i == n - 1 ? " or " : ", ", words[i]);
        return out;
    }
    case ARG_PADDING: return "an integer, a pair of integers, 'same' or 'valid'";
    case ARG_SHAPE: return "an integer or a tuple of integers";
    case ARG_OPT_INT: return "an integer or None";
    case ARG_OPT_PAIR: return "an integer, a pair of integers or None";
    case ARG_OPT_FLOAT: return "a number or None";
    case ARG_OPT_SIZE2: return "an integer, None, or a pair of integers or None";
    case ARG_NONE_ONLY: return "None";
    }
    return "?";
}

static bool string_in_choices(const char *s, const char *choices, Arena *a, const char **nearest)
{
    const char *words[16];
    int n = split_choices(a, choices, words);
    for (int i = 0; i < n; i++)
        if (strcmp(words[i], s) == 0) return true;
    *nearest = nearest_word(s, words, n);
    return false;
}

static bool value_is_poisoned(const Value *v)
{
    if (v->poisoned) return true;
    if (v->kind == VAL_TUPLE)
        for (int i = 0; i < v->nitems; i++)
            if (v->items[i]->poisoned) return true;
    return false;
}

static void report_mismatch(Binder *b, const char *layer, const ArgSpec *spec, const Value *v)
{
    diag_error(b->diag, v->loc, "%s: '%s' expects %s, found %s", layer, spec->name, type_expectation(spec, b->arena),
               value_description(b->arena, v));
    if (v->kind == VAL_NAME)
        diag_note(b->diag, v->loc, "strings are quoted: write '%s'", v->s);
}

static bool bind_pair_items(const Value *v, BoundArg *out, bool allow_none)
{
    if (v->kind != VAL_TUPLE || v->nitems != 2) return false;
    for (int i = 0; i < 2; i++) {
        const Value *item = v->items[i];
        if (item->kind == VAL_INT) {
            out->ints[i] = item->i;
        } else if (allow_none && item->kind == VAL_NONE) {
            out->none_at[i] = true;
        } else {
            return false;
        }
    }
    out->count = 2;
    return true;
}

/* Normalises v into out for spec's type; false when the value has the wrong type. */
static bool bind_value(const ArgSpec *spec, const Value *v, BoundArg *out)
{
    bool optional = spec->type == ARG_OPT_INT || spec->type == ARG_OPT_PAIR || spec->type == ARG_OPT_FLOAT ||
                    spec->type == ARG_OPT_SIZE2 || spec->type == ARG_NONE_ONLY;
    if (v->kind == VAL_NONE) {
        out->is_none = true;
        return optional;
    }
    switch (spec->type) {
    case ARG_INT:
    case ARG_OPT_INT:
        out->ints[0] = v->i;
        out->count = 1;
        return v->kind == VAL_INT;
    case ARG_PAIR:
    case ARG_OPT_PAIR:
    case ARG_OPT_SIZE2:
        if (v->kind == VAL_INT) {
            out->ints[0] = out->ints[1] = v->i;
            out->count = 2;
            return true;
        }
        return bind_pair_items(v, out, spec->type == ARG_OPT_SIZE2);
    case ARG_PADDING:
        if (v->kind == VAL_STRING) {
            out->str = v->s;
            return true;
        }
        if (v->kind == VAL_INT) {
            out->ints[0] = out->ints[1] = v->i;
            out->count = 2;
            return true;
        }
        return bind_pair_items(v, out, false);
    case ARG_FLOAT:
    case ARG_OPT_FLOAT:
        out->num = v->kind == VAL_INT ? (double)v->i : v->f;
        return v->kind == VAL_INT || v->kind == VAL_FLOAT;
    case ARG_BOOL:
        out->ints[0] = v->i;
        return v->kind == VAL_BOOL;
    case ARG_STRING:
        out->str = v->s;
        return v->kind == VAL_STRING;
    case ARG_SHAPE:
        if (v->kind == VAL_INT) {
            out->ints[0] = v->i;
            out->count = 1;
            return true;
        }
        if (v->kind != VAL_TUPLE || v->nitems < 1 || v->nitems > MAX_RANK) return false;
        for (int i = 0; i < v->nitems; i++) {
            if (v->items[i]->kind != VAL_INT) return false;
            out->ints[i] = v->items[i]->i;
        }
        out->count = v->nitems;
        return true;
    case ARG_NONE_ONLY:
        return false;
    }
    return false;
}

static void bind_default(const ArgSpec *spec, BoundArg *out)
{
    switch (spec->def_kind) {
    case DEF_REQUIRED:
    case DEF_NONE: out->is_none = true; break;
    case DEF_INT:
        out->ints[0] = out->ints[1] = (int64_t)spec->def_num;
        out->count = spec->type == ARG_INT || spec->type == ARG_SHAPE ? 1 : 2;
        break;
    case DEF_FLOAT: out->num = spec->def_num; break;
    case DEF_BOOL: out->ints[0] = (int64_t)spec->def_num; break;
    case DEF_STRING: out->str = spec->def_str; break;
    }
}

const char *bind_signature_text(Binder *b, OpKind op)
{
    const LayerSignature *sig = op_signature(op);
    char *text = arena_printf(b->arena, "%s(", op_name(op));
    for (int i = 0; i < sig->nargs; i++) {
        const ArgSpec *s = &sig->args[i];
        const char *sep = i ? ", " : "";
        switch (s->def_kind) {
        case DEF_REQUIRED: text = arena_printf(b->arena, "%s%s%s", text, sep, s->name); break;
        case DEF_NONE: text = arena_printf(b->arena, "%s%s%s=None", text, sep, s->name); break;
        case DEF_INT: text = arena_printf(b->arena, "%s%s%s=%lld", text, sep, s->name, (long long)s->def_num); break;
        case DEF_FLOAT: text = arena_printf(b->arena, "%s%s%s=%g", text, sep, s->name, s->def_num); break;
        case DEF_BOOL: text = arena_printf(b->arena, "%s%s%s=%s", text, sep, s->name, s->def_num ? "True" : "False"); break;
        case DEF_STRING: text = arena_printf(b->arena, "%s%s%s='%s'", text, sep, s->name, s->def_str); break;
        }
    }
    return arena_printf(b->arena, "%s)", text);
}

static int find_keyword(const LayerSignature *sig, const char *kw)
{
    for (int i = 0; i < sig->nargs; i++)
        if (strcmp(sig->args[i].name, kw) == 0) return i;
    return -1;
}

static void report_unknown_keyword(Binder *b, OpKind op, const Arg *arg)
{
    const LayerSignature *sig = op_signature(op);
    const char *names[32];
    int n = 0;
    for (int i = 0; i < sig->nargs && n < 32; i++) names[n++] = sig->args[i].name;
    const char *near = nearest_word(arg->keyword, names, n);
    if (near)
        diag_error(b->diag, arg->keyword_loc, "%s has no argument '%s'; did you mean '%s'?", op_name(op), arg->keyword, near);
    else
        diag_error(b->diag, arg->keyword_loc, "%s has no argument '%s'", op_name(op), arg->keyword);
    diag_note(b->diag, arg->keyword_loc, "the signature is %s", bind_signature_text(b, op));
}

/* Binds one argument to slot i; false after reporting an error. */
static bool bind_slot(Binder *b, OpKind op, const LayerStmt *st, const Arg *arg, int slot, const SrcSpan **given_at)
{
    const LayerSignature *sig = op_signature(op);
    const ArgSpec *spec = &sig->args[slot];
    (void)st;
    if (given_at[slot]) {
        diag_error(b->diag, arg->loc, "%s: argument '%s' is given twice", op_name(op), spec->name);
        diag_note(b->diag, *given_at[slot], "first given here");
        return false;
    }
    given_at[slot] = &arg->loc;
    return true;
}

static bool bind_args(Binder *b, BoundLayer *n, const LayerStmt *st)
{
    const LayerSignature *sig = op_signature(n->op);
    const char *layer = op_name(n->op);
    n->args = arena_alloc_array(b->arena, (size_t)(sig->nargs ? sig->nargs : 1), sizeof *n->args);
    if (sig->accepts_anything) return true;

    const SrcSpan **given_at = arena_alloc_array(b->arena, (size_t)(sig->nargs ? sig->nargs : 1), sizeof *given_at);
    bool ok = true, seen_keyword = false;
    int positional = 0;
    for (int k = 0; k < st->nargs; k++) {
        const Arg *arg = st->args[k];
        int slot;
        if (arg->keyword) {
            seen_keyword = true;
            slot = find_keyword(sig, arg->keyword);
            if (slot < 0) {
                report_unknown_keyword(b, n->op, arg);
                ok = false;
                continue;
            }
        } else {
            if (seen_keyword) {
                diag_error(b->diag, arg->loc, "%s: positional argument after a keyword argument", layer);
                ok = false;
                continue;
            }
            slot = positional++;
            if (slot >= sig->nargs) {
                diag_error(b->diag, arg->loc, "%s takes at most %d positional argument%s, found %d", layer, sig->nargs,
                           sig->nargs == 1 ? "" : "s", slot + 1);
                diag_note(b->diag, arg->loc, "the signature is %s", bind_signature_text(b, n->op));
                return false;
            }
        }
        if (!bind_slot(b, n->op, st, arg, slot, given_at)) {
            ok = false;
            continue;
        }
        BoundArg *out = &n->args[slot];
        out->given = true;
        if (value_is_poisoned(arg->value)) { /* already reported by the lexer */
            ok = false;
            continue;
        }
        out->loc = arg->value->loc;
        if (!bind_value(&sig->args[slot], arg->value, out)) {
            const ArgSpec *spec = &sig->args[slot];
            if (spec->type == ARG_NONE_ONLY)
                diag_error(b->diag, arg->value->loc,
                           "%s: '%s' must be None: layerc compiles float32 models for the host CPU", layer,
                           spec->name);
            else
                report_mismatch(b, layer, spec, arg->value);
            ok = false;
            continue;
        }
        const char *near = NULL;
        if (sig->args[slot].type == ARG_STRING && !string_in_choices(out->str, sig->args[slot].choices, b->arena, &near)) {
            diag_error(b->diag, arg->value->loc, "%s: '%s' must be %s, found '%s'%s%s%s", layer, sig->args[slot].name,
                       type_expectation(&sig->args[slot], b->arena), out->str, near ? "; did you mean '" : "",
                       near ? near : "", near ? "'?" : "");
            ok = false;
        }
    }
    bool ok_before_defaults = ok;
    for (int i = 0; i < sig->nargs; i++) {
        if (given_at[i]) continue;
        if (sig->args[i].def_kind == DEF_REQUIRED && ok_before_defaults) { /* else likely an echo of that error */
            diag_error(b->diag, st->call_loc, "%s is missing its required argument '%s'", layer, sig->args[i].name);
            diag_note(b->diag, st->layer_loc, "the signature is %s", bind_signature_text(b, n->op));
            ok = false;
            ok_before_defaults = false; /* one report per call */
        }
        bind_default(&sig->args[i], &n->args[i]);
        n->args[i].loc = st->loc;
    }
    return ok;
}

static void report_unknown_layer(Binder *b, const LayerStmt *st)
{
    for (size_t i = 0; i < sizeof refused_layers / sizeof refused_layers[0]; i++) {
        if (strcmp(refused_layers[i].name, st->layer) != 0) continue;
        if (refused_layers[i].why)
            diag_error(b->diag, st->layer_loc, "%s is not supported: %s", st->layer, refused_layers[i].why);
        else
            diag_error(b->diag, st->layer_loc, "torch.nn.%s is not supported by layerc yet", st->layer);
        return;
    }
    const char *names[OP_COUNT];
    int n = op_all_names(names, OP_COUNT);
    const char *near = nearest_word(st->layer, names, n);
    if (near)
        diag_error(b->diag, st->layer_loc, "unknown layer '%s'; did you mean '%s'?", st->layer, near);
    else
        diag_error(b->diag, st->layer_loc, "unknown layer '%s' (layerc knows the torch.nn layers listed by 'layerc --help')", st->layer);
}

/* The model's inputs: input x: f32[N, 3, 32, 32]. */
static Node *bind_input(Binder *b, const InputDecl *in)
{
    Node *n = arena_alloc(b->arena, sizeof *n);
    n->op = OP_INPUT;
    n->name = in->name;
    n->named = true;
    n->loc = in->loc;
    n->op_loc = in->name_loc;
    bool ok = true;
    if (strcmp(in->dtype, "f32") == 0) {
        n->dtype = DT_F32;
    } else if (strcmp(in->dtype, "i64") == 0) {
        n->dtype = DT_I64;
    } else {
        diag_error(b->diag, in->dtype_loc, "unknown element type '%s': expected f32 (features) or i64 (token ids)", in->dtype);
        ok = false;
    }
    if (in->ndims > MAX_RANK) {
        diag_error(b->diag, in->loc, "input '%s' has %d dimensions; at most %d are supported", in->name, in->ndims, MAX_RANK);
        return NULL;
    }
    n->shape.rank = in->ndims;
    for (int i = 0; i < in->ndims; i++) {
        const Dim *d = in->dims[i];
        if (d->poisoned) {
            ok = false; /* already reported by the lexer */
        } else if (d->name) {
            if (i != 0) {
                diag_error(b->diag, d->loc, "only the first (batch) dimension may be named; dimension %d is '%s'", i, d->name);
                ok = false;
            } else if (b->graph->batch_name && strcmp(b->graph->batch_name, d->name) != 0) {
                diag_error(b->diag, d->loc, "input '%s' names its batch '%s', but an earlier input names it '%s'; the "
                                            "inputs share one run-time batch", in->name, d->name, b->graph->batch_name);
                ok = false;
            }
            n->shape.dims[i] = 1;
            n->shape.dynamic_batch = true;
            if (!b->graph->batch_name) b->graph->batch_name = d->name;
        } else if (d->value < 1) {
            diag_error(b->diag, d->loc, "dimension %d of input '%s' is %lld; dimensions must be at least 1", i, in->name,
                       (long long)d->value);
            ok = false;
        } else {
            n->shape.dims[i] = d->value;
        }
    }
    n->inferred = ok;
    return n;
}

const char *bind_span_text(Binder *b, SrcSpan from, SrcSpan to, const char *fallback)
{
    const Source *src = b->diag->src;
    if (!src || from.first_line != to.last_line || from.first_line < 1 || from.first_line > src->nlines) return fallback;
    size_t line = src->line_start[from.first_line - 1];
    size_t begin = line + (size_t)from.first_column - 1, end = line + (size_t)to.last_column;
    if (end > src->len || begin >= end) return fallback;
    enum { MAX_SHOWN = 60 };
    if (end - begin > MAX_SHOWN) return arena_printf(b->arena, "%.*s...)", MAX_SHOWN - 4, src->text + begin);
    return arena_strndup(b->arena, src->text + begin, end - begin);
}

const char *bind_call_text(Binder *b, const LayerStmt *st) { return bind_span_text(b, st->layer_loc, st->loc, st->layer); }

static void check_duplicate_name(Binder *b, const LayerStmt *st, const Model *m, int index)
{
    for (int j = 0; j < index; j++) {
        const LayerStmt *prev = m->layers.items[j];
        if (prev->name && strcmp(prev->name, st->name) == 0) {
            diag_error(b->diag, st->name_loc, "layer name '%s' is used twice (weights are looked up by name)", st->name);
            diag_note(b->diag, prev->name_loc, "first used here");
            return;
        }
    }
    const InputDecl *in = m->inputs.len ? m->inputs.items[0] : NULL;
    if (in && strcmp(in->name, st->name) == 0)
        diag_error(b->diag, st->name_loc, "layer name '%s' is already the model's input", st->name);
}

BoundLayer bind_layer_call(Binder *b, const LayerStmt *st)
{
    OpKind op = st->broken ? OP_IDENTITY : op_lookup(st->layer);
    if (op != OP_COUNT && (op_flags(op) & LF_FUNCTIONAL)) op = OP_COUNT; /* add, cat: not torch.nn layers */
    return bind_call_as(b, op, st);
}

BoundLayer bind_call_as(Binder *b, OpKind op, const LayerStmt *st)
{
    BoundLayer n = {.op = op, .loc = st->loc, .op_loc = st->layer_loc};
    n.call_text = bind_call_text(b, st);
    if (st->broken) {
        n.args = arena_alloc(b->arena, sizeof *n.args); /* its syntax error is reported */
        n.invalid = true;
    } else if (n.op == OP_COUNT) {
        report_unknown_layer(b, st);
        n.op = OP_IDENTITY; /* keeps positions and the chain intact; never inferred */
        n.args = arena_alloc(b->arena, sizeof *n.args);
        n.invalid = true;
    } else if (!bind_args(b, &n, st)) {
        n.invalid = true;
    }
    return n;
}

Node *bind_new_node(Binder *b, const BoundLayer *layer, const char *name, bool named)
{
    Graph *g = b->graph;
    Node *n = arena_alloc(b->arena, sizeof *n);
    n->id = n->source_id = g->nodes.len;
    n->op = layer->op;
    n->name = name;
    n->named = named;
    n->loc = layer->loc;
    n->op_loc = layer->op_loc;
    n->call_text = layer->call_text;
    n->args = layer->args;
    n->invalid = layer->invalid;
    ptrvec_push(b->arena, &g->nodes, n);
    return n;
}

/* Every input declared (at least one), first in the graph. */
static bool bind_inputs(Binder *b, const Model *m)
{
    if (m->inputs.len == 0) {
        diag_error(b->diag, m->name_loc, "model '%s' declares no input", m->name);
        diag_note(b->diag, m->name_loc, "declare it first in the body, e.g. 'input x: f32[N, 3, 32, 32]'");
        return false;
    }
    if (!m->forward && m->inputs.len > 1) {
        const InputDecl *extra = m->inputs.items[1];
        diag_error(b->diag, extra->loc, "a stack of layers has exactly one input; '%s' is a second one", extra->name);
        diag_note(b->diag, extra->loc, "a model with several inputs says how they flow in a 'forward(%s, %s) { ... }' "
                                       "section", ((const InputDecl *)m->inputs.items[0])->name, extra->name);
    }
    if (m->inputs.len > MAX_MODEL_IO) {
        const InputDecl *extra = m->inputs.items[MAX_MODEL_IO];
        diag_error(b->diag, extra->loc, "a model has at most %d inputs; '%s' is input %d", MAX_MODEL_IO, extra->name,
                   MAX_MODEL_IO + 1);
        return false;
    }
    for (int i = 0; i < (m->forward ? m->inputs.len : 1); i++) {
        const InputDecl *in = m->inputs.items[i];
        for (int j = 0; j < i; j++) {
            const InputDecl *prev = m->inputs.items[j];
            if (strcmp(prev->name, in->name) == 0) {
                diag_error(b->diag, in->name_loc, "input '%s' is declared twice", in->name);
                diag_note(b->diag, prev->name_loc, "first declared here");
            }
        }
        Node *n = bind_input(b, in);
        if (!n) return false;
        n->id = n->source_id = b->graph->nodes.len;
        ptrvec_push(b->arena, &b->graph->nodes, n);
        ptrvec_push(b->arena, &b->graph->inputs, n);
    }
    b->graph->input = b->graph->inputs.items[0];
    return true;
}

/* Statements a stack of layers cannot hold. */
static void check_stack_body(Binder *b, const Model *m)
{
    for (int i = 0; i < m->body.len; i++) {
        const Stmt *st = m->body.items[i];
        if (st->kind == ST_ASSIGN || st->kind == ST_EXPR || st->kind == ST_IF || st->kind == ST_RETURN) {
            diag_error(b->diag, st->loc, "a stack of layers holds one layer call per line; %s belongs in a model with a "
                                         "'forward(x) { ... }' section or in a block",
                       st->kind == ST_ASSIGN ? "a constant" : st->kind == ST_IF ? "'if'" : st->kind == ST_RETURN ? "'return'"
                                                                                                          : "an expression");
        }
    }
}

/* The stack form: every line reads the previous line's output. */
static void bind_stack(Binder *b, const Model *m)
{
    Graph *g = b->graph;
    check_stack_body(b, m);
    Node *prev = g->input;
    for (int i = 0; i < m->layers.len && !diag_too_many(b->diag); i++) {
        const LayerStmt *st = m->layers.items[i];
        if (st->name) check_duplicate_name(b, st, m, i);
        const char *name = st->name ? st->name : arena_printf(b->arena, "%d", i);
        if (bind_is_module_call(b, st)) {
            Node *out = bind_module_line(b, st, name, prev);
            if (out) {
                prev = out;
                continue;
            }
            /* an invalid placeholder keeps the chain: nothing after it is checked against a wrong input */
            BoundLayer broken = {.op = OP_IDENTITY, .args = arena_alloc(b->arena, sizeof(BoundArg)), .loc = st->loc,
                                 .op_loc = st->layer_loc, .call_text = st->layer, .invalid = true};
            Node *n = bind_new_node(b, &broken, name, st->name != NULL);
            n->inputs[0] = prev;
            n->ninputs = 1;
            prev = n;
            continue;
        }
        BoundLayer layer = bind_layer_call(b, st);
        if (layer.op == OP_BILINEAR && !layer.invalid) {
            diag_error(b->diag, st->layer_loc, "Bilinear takes two input tensors, but each line of a layer stack receives one "
                                               "(the previous line's output)");
            diag_note(b->diag, st->layer_loc, "declare it as a submodule and call it with two tensors in a 'forward' "
                                              "section: y = %s(x1, x2)", st->name ? st->name : "bil");
            layer.invalid = true;
        }
        Node *n = bind_new_node(b, &layer, name, st->name != NULL);
        n->inputs[0] = prev;
        n->ninputs = 1;
        prev = n;
    }
    if (m->layers.len == 0 && b->diag->errors == 0) diag_warning(b->diag, m->name_loc, "model '%s' has no layers; its output is its input", m->name);
    g->output = prev;
    ptrvec_push(b->arena, &g->outputs, prev);
}

const BlockDef *bind_find_block(const Binder *b, const char *name)
{
    for (int i = 0; i < b->program->blocks.len; i++) {
        const BlockDef *blk = b->program->blocks.items[i];
        if (strcmp(blk->name, name) == 0) return blk;
    }
    return NULL;
}

/* One model a file, blocks with distinct names that are not layer names. */
static void check_program(Binder *b, const Program *p)
{
    for (int i = 1; i < p->models.len; i++) {
        const Model *extra = p->models.items[i];
        diag_error(b->diag, extra->name_loc, "a file holds one model; '%s' is a second one", extra->name);
        diag_note(b->diag, p->model->name_loc, "the first is '%s'", p->model->name);
    }
    for (int i = 0; i < p->blocks.len; i++) {
        const BlockDef *blk = p->blocks.items[i];
        if (op_lookup(blk->name) != OP_COUNT || strcmp(blk->name, "Sequential") == 0)
            diag_error(b->diag, blk->name_loc, "block '%s' has the name of a torch.nn layer; give it another name", blk->name);
        for (int j = 0; j < i; j++) {
            const BlockDef *prev = p->blocks.items[j];
            if (strcmp(prev->name, blk->name) != 0) continue;
            diag_error(b->diag, blk->name_loc, "block '%s' is defined twice", blk->name);
            diag_note(b->diag, prev->name_loc, "first defined here");
        }
    }
}

static void warn_unused_blocks(Binder *b, const Program *p)
{
    if (b->diag->errors) return;
    for (int i = 0; i < p->blocks.len; i++) {
        const BlockDef *blk = p->blocks.items[i];
        bool used = false;
        for (int k = 0; k < b->used_blocks.len && !used; k++) used = b->used_blocks.items[k] == blk;
        if (!used) diag_warning(b->diag, blk->name_loc, "block %s is never used", blk->name);
    }
}

Graph *bind_program(Arena *a, Diag *d, const Program *p)
{
    const Model *m = p->model;
    Graph *g = arena_alloc(a, sizeof *g);
    g->arena = a;
    g->model_name = m->name;
    Binder b = {.arena = a, .diag = d, .graph = g, .program = p};
    check_program(&b, p);
    if (!bind_inputs(&b, m)) return NULL;
    if (m->forward) bind_forward_model(&b, m);
    else bind_stack(&b, m);
    warn_unused_blocks(&b, p);
    if (!g->output) return NULL;
    return g;
}
