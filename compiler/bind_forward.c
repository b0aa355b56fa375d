/* bind_forward.c - the module form of the language, traced into the graph.
 *
 * A model with a forward section, like an nn.Module, declares submodules
 * (layers, Sequential(...) of modules, instances of blocks) and says in
 * forward how values flow.  This file elaborates that the way torch.fx
 * traces a module: submodule declarations are bound once, with their state_dict
 * prefixes ("layer2.0.downsample.0"); constants and conditions are evaluated
 * at compile time; every call of a submodule or a function in forward adds
 * nodes to the graph, which comes out a DAG in topological order.
 *
 * Names live in scopes: a model's or a block instance's scope holds its
 * parameters, constants and submodules; a forward section's frame holds its
 * tensors and sees its module's scope.  Blocks see only their own names.
 * Diagnostics: a value used before it is assigned, a name never used, a
 * submodule never called, a block called with wrong arguments (with its
 * signature).  Layer calls are bound by bind.c (binder.h).
 */
#include "binder.h"
#include "layer_args.h"

#include <stdio.h>
#include <string.h>

enum { MAX_BLOCK_DEPTH = 32 };

typedef enum { MOD_LAYER, MOD_SEQUENTIAL, MOD_BLOCK } ModuleKind;

typedef struct Scope Scope;

typedef struct Module {
    ModuleKind kind;
    const char *path; /* state_dict prefix */
    const LayerStmt *call;
    BoundLayer layer;      /* MOD_LAYER */
    PtrVec children;       /* MOD_SEQUENTIAL: Module* */
    const BlockDef *block; /* MOD_BLOCK */
    Scope *scope;          /* MOD_BLOCK: its parameters, constants and submodules */
    const Forward *forward; /* MOD_BLOCK */
    bool called;
} Module;

typedef enum { NAME_CONSTANT, NAME_MODULE, NAME_TENSOR } NameKind;

typedef struct Binding {
    const char *name;
    NameKind kind;
    SrcSpan loc;
    const Value *constant; /* NAME_CONSTANT: a literal */
    Module *module;        /* NAME_MODULE */
    Node *tensor;          /* NAME_TENSOR; NULL when it could not be computed (already reported) */
    bool used;
    bool alias;            /* y = x: another name of a value (not warned about when unread) */
    const char *role;      /* for the never-used warning: "value", "input", "parameter" */
} Binding;

struct Scope {
    Scope *parent;    /* a forward frame's module scope */
    Module *stack;    /* a block without forward: its layer lines in order become this Sequential's children */
    int layer_lines;  /* of a stack block: executed layer lines so far (unnamed ones are named by position) */
    PtrVec bindings;  /* Binding*; a later one with the same name replaces an earlier */
    PtrVec modules;   /* Module*: every submodule declared here, for the never-called check */
    const char *path; /* the module's prefix: "" for the model, "layer1.0" in a block */
    const PtrVec *forward_body; /* a frame: its statements, to tell "used before assigned" */
};

/* ---- scopes ---- */

static Binding *lookup_here(const Scope *s, const char *name)
{
    for (int i = s->bindings.len - 1; i >= 0; i--) {
        Binding *bd = s->bindings.items[i];
        if (strcmp(bd->name, name) == 0) return bd;
    }
    return NULL;
}

static Binding *lookup(const Scope *s, const char *name)
{
    for (; s; s = s->parent) {
        Binding *bd = lookup_here(s, name);
        if (bd) return bd;
    }
    return NULL;
}

static Binding *bind_name(Binder *b, Scope *s, const char *name, NameKind kind, SrcSpan loc)
{
    Binding *bd = arena_alloc(b->arena, sizeof *bd);
    bd->name = name;
    bd->kind = kind;
    bd->loc = loc;
    bd->role = "value";
    ptrvec_push(b->arena, &s->bindings, bd);
    return bd;
}

static const char *child_path(Binder *b, const Scope *s, const char *name)
{
    return s->path[0] ? arena_printf(b->arena, "%s.%s", s->path, name) : name;
}

bool bind_first_warning_at(Binder *b, SrcSpan at)
{
    for (int i = 0; i < b->warned.len; i++)
        if (memcmp(b->warned.items[i], &at, sizeof at) == 0) return false;
    SrcSpan *copy = arena_alloc(b->arena, sizeof *copy);
    *copy = at;
    ptrvec_push(b->arena, &b->warned, copy);
    return true;
}

/* A tensor binding replaced or going out of scope unread. */
static void warn_if_unused(Binder *b, const Binding *bd)
{
    if (bd->kind != NAME_TENSOR || bd->used || !bd->tensor || bd->alias || b->diag->errors) return; /* errors: likely an echo */
    if (!bind_first_warning_at(b, bd->loc)) return;
    diag_warning(b->diag, bd->loc, "%s '%s' is never used", bd->role, bd->name);
}

/* ---- constants: evaluated at compile time ---- */

static Value *literal(Binder *b, ValueKind kind, SrcSpan loc)
{
    Value *v = arena_alloc(b->arena, sizeof *v);
    v->kind = kind;
    v->loc = loc;
    return v;
}

static bool is_number(const Value *v) { return v->kind == VAL_INT || v->kind == VAL_FLOAT || v->kind == VAL_BOOL; }
static double number_of(const Value *v) { return v->kind == VAL_FLOAT ? v->f : (double)v->i; }

/* Python's truth value of a literal. */
static bool truth(const Value *v)
{
    switch (v->kind) {
    case VAL_INT:
    case VAL_BOOL: return v->i != 0;
    case VAL_FLOAT: return v->f != 0;
    case VAL_NONE: return false;
    case VAL_STRING: return v->s[0] != '\0';
    case VAL_TUPLE: return v->nitems > 0;
    default: return false;
    }
}

static const char *operator_text(ExprOp op)
{
    static const char *const text[] = {[EX_ADD] = "+",   [EX_SUB] = "-",  [EX_MUL] = "*",  [EX_EQ] = "==", [EX_NE] = "!=",
                                       [EX_LT] = "<",    [EX_LE] = "<=",  [EX_GT] = ">",   [EX_GE] = ">=", [EX_AND] = "and",
                                       [EX_OR] = "or",   [EX_NOT] = "not", [EX_NEG] = "-"};
    return text[op];
}

static const char *kind_text(const Value *v)
{
    switch (v->kind) {
    case VAL_INT: return "an integer";
    case VAL_FLOAT: return "a number";
    case VAL_BOOL: return "a bool";
    case VAL_NONE: return "None";
    case VAL_STRING: return "a string";
    case VAL_TUPLE: return "a tuple";
    default: return "an expression";
    }
}

static Value *eval_constant(Binder *b, Scope *s, const Value *v);

static Value *arithmetic(Binder *b, const Value *v, const Value *x, const Value *y)
{
    if (!is_number(x) || !is_number(y)) {
        diag_error(b->diag, v->loc, "'%s' needs two numbers, found %s and %s", operator_text(v->op), kind_text(x), kind_text(y));
        return NULL;
    }
    if (x->kind == VAL_FLOAT || y->kind == VAL_FLOAT) {
        Value *r = literal(b, VAL_FLOAT, v->loc);
        double a = number_of(x), c = number_of(y);
        r->f = v->op == EX_ADD ? a + c : v->op == EX_SUB ? a - c : a * c;
        return r;
    }
    Value *r = literal(b, VAL_INT, v->loc);
    bool overflow = v->op == EX_ADD   ? __builtin_add_overflow(x->i, y->i, &r->i)
                    : v->op == EX_SUB ? __builtin_sub_overflow(x->i, y->i, &r->i)
                                      : __builtin_mul_overflow(x->i, y->i, &r->i);
    if (overflow) {
        diag_error(b->diag, v->loc, "this integer expression overflows 64 bits");
        return NULL;
    }
    return r;
}

static bool literals_equal(const Value *x, const Value *y)
{
    if (is_number(x) && is_number(y)) return number_of(x) == number_of(y);
    if (x->kind != y->kind) return false;
    if (x->kind == VAL_NONE) return true;
    if (x->kind == VAL_STRING) return strcmp(x->s, y->s) == 0;
    if (x->kind == VAL_TUPLE) {
        if (x->nitems != y->nitems) return false;
        for (int i = 0; i < x->nitems; i++)
            if (!literals_equal(x->items[i], y->items[i])) return false;
        return true;
    }
    return false;
}

static Value *comparison(Binder *b, const Value *v, const Value *x, const Value *y)
{
    Value *r = literal(b, VAL_BOOL, v->loc);
    if (v->op == EX_EQ || v->op == EX_NE) {
        r->i = literals_equal(x, y) == (v->op == EX_EQ);
        return r;
    }
    if (!is_number(x) || !is_number(y)) {
        diag_error(b->diag, v->loc, "'%s' compares two numbers, found %s and %s", operator_text(v->op), kind_text(x), kind_text(y));
        return NULL;
    }
    double a = number_of(x), c = number_of(y);
    r->i = v->op == EX_LT ? a < c : v->op == EX_LE ? a <= c : v->op == EX_GT ? a > c : a >= c;
    return r;
}

static Value *eval_operator(Binder *b, Scope *s, const Value *v)
{
    Value *x = eval_constant(b, s, v->items[0]);
    if (!x) return NULL;
    if (v->kind == VAL_UNARY) {
        if (v->op == EX_NOT) {
            Value *r = literal(b, VAL_BOOL, v->loc);
            r->i = !truth(x);
            return r;
        }
        if (!is_number(x)) {
            diag_error(b->diag, v->loc, "'-' needs a number, found %s", kind_text(x));
            return NULL;
        }
        Value *zero = literal(b, VAL_INT, v->loc);
        Value sub = *v;
        sub.op = EX_SUB;
        return arithmetic(b, &sub, zero, x);
    }
    if (v->op == EX_AND || v->op == EX_OR) { /* short-circuit, as Python */
        if ((v->op == EX_AND) != truth(x)) {
            Value *r = literal(b, VAL_BOOL, v->loc);
            r->i = truth(x);
            return r;
        }
        Value *y = eval_constant(b, s, v->items[1]);
        if (!y) return NULL;
        Value *r = literal(b, VAL_BOOL, v->loc);
        r->i = truth(y);
        return r;
    }
    Value *y = eval_constant(b, s, v->items[1]);
    if (!y) return NULL;
    if (v->op == EX_ADD || v->op == EX_SUB || v->op == EX_MUL) return arithmetic(b, v, x, y);
    return comparison(b, v, x, y);
}

static const char *nearest_binding(Binder *b, const Scope *s, const char *name, NameKind kind)
{
    const char *names[64];
    int n = 0;
    for (; s; s = s->parent)
        for (int i = 0; i < s->bindings.len && n < 64; i++) {
            const Binding *bd = s->bindings.items[i];
            if (bd->kind == kind) names[n++] = bd->name;
        }
    (void)b;
    return nearest_word(name, names, n);
}

static Value *eval_name(Binder *b, Scope *s, const Value *v)
{
    Binding *bd = lookup(s, v->s);
    if (bd && bd->kind == NAME_CONSTANT) {
        bd->used = true;
        Value *copy = arena_alloc(b->arena, sizeof *copy);
        *copy = *bd->constant;
        copy->loc = v->loc; /* errors about the value point at its use */
        return copy;
    }
    if (bd) {
        diag_error(b->diag, v->loc, "'%s' is a %s, not a constant", v->s, bd->kind == NAME_MODULE ? "submodule" : "tensor");
        return NULL;
    }
    const char *near = nearest_binding(b, s, v->s, NAME_CONSTANT);
    if (near) diag_error(b->diag, v->loc, "unknown name '%s'; did you mean '%s'?", v->s, near);
    else diag_error(b->diag, v->loc, "unknown name '%s'", v->s);
    diag_note(b->diag, v->loc, "an argument is a number, a string in quotes, True, False, None, or a block parameter or "
                               "constant");
    return NULL;
}

/* v as a literal (int, float, bool, None, string, or a tuple of them); NULL after an error. */
static Value *eval_constant(Binder *b, Scope *s, const Value *v)
{
    switch (v->kind) {
    case VAL_INT:
    case VAL_FLOAT:
    case VAL_BOOL:
    case VAL_NONE:
    case VAL_STRING: return (Value *)v;
    case VAL_NAME: return eval_name(b, s, v);
    case VAL_BINARY:
    case VAL_UNARY: return v->poisoned ? NULL : eval_operator(b, s, v);
    case VAL_TUPLE: {
        Value *t = literal(b, VAL_TUPLE, v->loc);
        t->nitems = v->nitems;
        t->items = arena_alloc_array(b->arena, (size_t)(v->nitems ? v->nitems : 1), sizeof *t->items);
        for (int i = 0; i < v->nitems; i++)
            if (!(t->items[i] = eval_constant(b, s, v->items[i]))) return NULL;
        return t;
    }
    case VAL_CALL:
        diag_error(b->diag, v->loc, "a call is not a constant: '%s(...)' cannot be used as an argument value here", v->call->layer);
        return NULL;
    }
    return NULL;
}

/* st with every argument evaluated in s (block parameters and constants replaced by their values). */
static LayerStmt *evaluate_args(Binder *b, Scope *s, const LayerStmt *st, bool *ok)
{
    LayerStmt *copy = arena_alloc(b->arena, sizeof *copy);
    *copy = *st;
    copy->args = arena_alloc_array(b->arena, (size_t)(st->nargs ? st->nargs : 1), sizeof *copy->args);
    for (int k = 0; k < st->nargs; k++) {
        Arg *arg = arena_alloc(b->arena, sizeof *arg);
        *arg = *st->args[k];
        if (!arg->value->poisoned) {
            Value *v = eval_constant(b, s, arg->value);
            if (v) arg->value = v;
            else *ok = false;
        }
        copy->args[k] = arg;
    }
    return copy;
}

/* ---- submodules ---- */

static Module *declare_module(Binder *b, Scope *s, const LayerStmt *call, const char *path);
static void elaborate_block_body(Binder *b, Module *m, const PtrVec *body);

static Module *new_module(Binder *b, ModuleKind kind, const LayerStmt *call, const char *path)
{
    Module *m = arena_alloc(b->arena, sizeof *m);
    m->kind = kind;
    m->call = call;
    m->path = path;
    return m;
}

/* Sequential(A(...), B(...)): children named 0, 1, ... as nn.Sequential's. */
static Module *declare_sequential(Binder *b, Scope *s, const LayerStmt *call, const char *path)
{
    Module *m = new_module(b, MOD_SEQUENTIAL, call, path);
    for (int k = 0; k < call->nargs; k++) {
        const Arg *arg = call->args[k];
        if (arg->keyword) {
            diag_error(b->diag, arg->keyword_loc, "Sequential takes modules as positional arguments, found keyword '%s'",
                       arg->keyword);
            return NULL;
        }
        if (arg->value->kind != VAL_CALL) {
            if (!arg->value->poisoned)
                diag_error(b->diag, arg->value->loc, "Sequential takes modules: layer or block calls such as "
                                                     "Conv2d(3, 8, 3), found %s", kind_text(arg->value));
            return NULL;
        }
        Module *child = declare_module(b, s, arg->value->call, arena_printf(b->arena, "%s.%d", path, k));
        if (!child) return NULL;
        ptrvec_push(b->arena, &m->children, child);
    }
    return m;
}

/* A default value as written: 1, 0.5, True, None, 'a', (1, 2). */
static const char *literal_text(Binder *b, const Value *v)
{
    switch (v->kind) {
    case VAL_INT: return arena_printf(b->arena, "%lld", (long long)v->i);
    case VAL_FLOAT: return arena_printf(b->arena, "%g", v->f);
    case VAL_BOOL: return v->i ? "True" : "False";
    case VAL_NONE: return "None";
    case VAL_STRING: return arena_printf(b->arena, "'%s'", v->s);
    case VAL_TUPLE: {
        const char *text = "(";
        for (int i = 0; i < v->nitems; i++) text = arena_printf(b->arena, "%s%s%s", text, i ? ", " : "", literal_text(b, v->items[i]));
        return arena_printf(b->arena, "%s)", text);
    }
    default: return "...";
    }
}

/* "BasicBlock(inplanes, planes, stride=1, downsample=False)" */
static const char *block_signature(Binder *b, const BlockDef *blk)
{
    const char *text = arena_printf(b->arena, "%s(", blk->name);
    for (int i = 0; i < blk->nparams; i++) {
        const BlockParam *p = &blk->params[i];
        text = arena_printf(b->arena, "%s%s%s%s%s", text, i ? ", " : "", p->name, p->def ? "=" : "", p->def ? literal_text(b, p->def) : "");
    }
    return arena_printf(b->arena, "%s)", text);
}

/* The block's parameters from the call's arguments (evaluated in the caller's scope) and the defaults. */
static bool bind_block_args(Binder *b, Scope *caller, const BlockDef *blk, const LayerStmt *call, Scope *inst)
{
    const Value **given = arena_alloc_array(b->arena, (size_t)(blk->nparams ? blk->nparams : 1), sizeof *given);
    bool ok = true, seen_keyword = false;
    int positional = 0;
    for (int k = 0; k < call->nargs && ok; k++) {
        const Arg *arg = call->args[k];
        int slot = -1;
        if (arg->keyword) {
            seen_keyword = true;
            for (int i = 0; i < blk->nparams; i++)
                if (strcmp(blk->params[i].name, arg->keyword) == 0) slot = i;
            if (slot < 0) {
                diag_error(b->diag, arg->keyword_loc, "block %s has no parameter '%s'", blk->name, arg->keyword);
                ok = false;
                break;
            }
        } else if (seen_keyword) {
            diag_error(b->diag, arg->loc, "%s: positional argument after a keyword argument", blk->name);
            ok = false;
            break;
        } else if ((slot = positional++) >= blk->nparams) {
            diag_error(b->diag, arg->loc, "block %s takes %d argument%s, found %d", blk->name, blk->nparams,
                       blk->nparams == 1 ? "" : "s", call->nargs);
            ok = false;
            break;
        }
        if (given[slot]) {
            diag_error(b->diag, arg->loc, "%s: argument '%s' is given twice", blk->name, blk->params[slot].name);
            ok = false;
            break;
        }
        if (arg->value->poisoned || !(given[slot] = eval_constant(b, caller, arg->value))) return false;
    }
    for (int i = 0; i < blk->nparams && ok; i++) {
        const BlockParam *p = &blk->params[i];
        const Value *v = given[i];
        if (!v && !p->def) {
            diag_error(b->diag, call->call_loc, "block %s is missing its required argument '%s'", blk->name, p->name);
            ok = false;
            break;
        }
        if (!v && !(v = eval_constant(b, inst, p->def))) return false;
        Binding *bd = bind_name(b, inst, p->name, NAME_CONSTANT, p->loc);
        bd->constant = v;
    }
    if (!ok) diag_note(b->diag, blk->name_loc, "the signature is %s", block_signature(b, blk));
    return ok;
}

/* A block without a forward section is a stack of its layer lines, as a model without one. */
static bool has_forward(const BlockDef *blk)
{
    for (int i = 0; i < blk->body.len; i++)
        if (((const Stmt *)blk->body.items[i])->kind == ST_FORWARD) return true;
    return false;
}

static Module *instantiate_block(Binder *b, Scope *caller, const BlockDef *blk, const LayerStmt *call, const char *path)
{
    if (b->block_depth >= MAX_BLOCK_DEPTH) {
        diag_error(b->diag, call->layer_loc, "blocks nest more than %d deep here: does block %s instantiate itself?",
                   MAX_BLOCK_DEPTH, blk->name);
        return NULL;
    }
    bool seen = false;
    for (int i = 0; i < b->used_blocks.len && !seen; i++) seen = b->used_blocks.items[i] == blk;
    if (!seen) ptrvec_push(b->arena, &b->used_blocks, (void *)blk);
    Module *m = new_module(b, MOD_BLOCK, call, path);
    m->block = blk;
    m->scope = arena_alloc(b->arena, sizeof *m->scope);
    m->scope->path = path;
    if (!bind_block_args(b, caller, blk, call, m->scope)) return NULL;
    bool stack = !has_forward(blk);
    if (stack) m->scope->stack = m;
    b->block_depth++;
    elaborate_block_body(b, m, &blk->body);
    b->block_depth--;
    if (stack) {
        if (m->kind == MOD_LAYER) return NULL; /* a line failed */
        m->kind = MOD_SEQUENTIAL;
    }
    if (!stack && !m->forward) return NULL; /* elaboration stopped early (too many errors) */
    return m;
}

static Module *declare_module(Binder *b, Scope *s, const LayerStmt *call, const char *path)
{
    if (strcmp(call->layer, "Sequential") == 0) return declare_sequential(b, s, call, path);
    const BlockDef *blk = bind_find_block(b, call->layer);
    if (blk) return instantiate_block(b, s, blk, call, path);
    bool ok = true;
    LayerStmt *evaluated = evaluate_args(b, s, call, &ok);
    if (!ok) return NULL;
    Module *m = new_module(b, MOD_LAYER, call, path);
    m->layer = bind_layer_call(b, evaluated);
    return m;
}

/* name = Layer(...) in a model's or a block's body. */
static void declare_submodule(Binder *b, Scope *s, const Stmt *st)
{
    const LayerStmt *call = st->layer;
    if (call->broken) return;
    if (s->stack) { /* a line of a stack block: named, or numbered by its position as in nn.Sequential */
        int position = s->layer_lines++;
        const char *name = st->name ? st->name : arena_printf(b->arena, "%d", position);
        Module *m = declare_module(b, s, call, child_path(b, s, name));
        if (!m) {
            s->stack->kind = MOD_LAYER; /* unusable: calls of the block are skipped quietly */
            s->stack->layer.invalid = true;
            return;
        }
        ptrvec_push(b->arena, &s->stack->children, m);
        ptrvec_push(b->arena, &s->modules, m);
        if (st->name) bind_name(b, s, st->name, NAME_MODULE, st->name_loc)->module = m;
        return;
    }
    if (!st->name) {
        diag_error(b->diag, call->loc, "a submodule needs a name: write 'name = %s(...)'", call->layer);
        diag_note(b->diag, call->loc, "its weights are found under that name, as in a PyTorch state_dict");
        return;
    }
    Binding *prev = lookup_here(s, st->name);
    if (prev && prev->kind == NAME_MODULE) {
        diag_error(b->diag, st->name_loc, "submodule '%s' is declared twice (weights are looked up by name)", st->name);
        diag_note(b->diag, prev->loc, "first declared here");
        return;
    }
    Module *m = declare_module(b, s, call, child_path(b, s, st->name));
    Binding *bd = bind_name(b, s, st->name, NAME_MODULE, st->name_loc);
    bd->module = m; /* NULL after an error: calls of it are skipped quietly */
    if (m) ptrvec_push(b->arena, &s->modules, m);
}

/* A condition's truth; a bare submodule name is true, as `if self.downsample:` is when it exists. */
static bool condition_value(Binder *b, Scope *s, const Value *cond, bool *result)
{
    Binding *named = cond->kind == VAL_NAME ? lookup(s, cond->s) : NULL;
    if (named && named->kind == NAME_MODULE) {
        *result = true;
        return true;
    }
    Value *v = eval_constant(b, s, cond);
    if (!v) return false;
    *result = truth(v);
    return true;
}

static void declare_constant(Binder *b, Scope *s, const Stmt *st)
{
    Binding *prev = lookup_here(s, st->name);
    if (prev && prev->kind == NAME_MODULE) {
        diag_error(b->diag, st->name_loc, "'%s' is already a submodule", st->name);
        diag_note(b->diag, prev->loc, "declared here");
        return;
    }
    Value *v = eval_constant(b, s, st->value);
    if (!v) return;
    Binding *bd = bind_name(b, s, st->name, NAME_CONSTANT, st->name_loc);
    bd->constant = v;
}

/* The statements of a model's or a block's body (outside forward): submodules, constants, if, one forward. */
static void elaborate_body(Binder *b, Scope *s, const PtrVec *body, const Forward **forward, const char *owner)
{
    for (int i = 0; i < body->len && !diag_too_many(b->diag); i++) {
        const Stmt *st = body->items[i];
        switch (st->kind) {
        case ST_LAYER: declare_submodule(b, s, st); break;
        case ST_ASSIGN: declare_constant(b, s, st); break;
        case ST_IF: {
            bool taken;
            if (condition_value(b, s, st->value, &taken))
                elaborate_body(b, s, taken ? &st->then_body : &st->else_body, forward, owner);
            break;
        }
        case ST_FORWARD:
            if (*forward && *forward != st->forward) {
                diag_error(b->diag, st->loc, "%s has a second forward section", owner);
                diag_note(b->diag, (*forward)->loc, "the first is here");
            }
            if (!*forward) *forward = st->forward;
            break;
        case ST_INPUT:
            if (s->path[0]) diag_error(b->diag, st->loc, "a block has no inputs of its own: its forward's parameters are its inputs");
            break;
        case ST_RETURN: diag_error(b->diag, st->loc, "'return' belongs in a forward section"); break;
        case ST_EXPR: diag_error(b->diag, st->loc, "an expression on its own does nothing here; name it: 'name = ...'"); break;
        }
    }
}

static void elaborate_block_body(Binder *b, Module *m, const PtrVec *body)
{
    elaborate_body(b, m->scope, body, &m->forward, arena_printf(b->arena, "block %s", m->block->name));
}

/* ---- forward: tracing ---- */

static Node *eval_tensor(Binder *b, Scope *frame, const Value *v);
static Node *call_module(Binder *b, Module *m, Node **ins, int nins, SrcSpan at);

/* Whether `name` is assigned anywhere in body (for "used before it is assigned"); its location in *at. */
static bool assigned_in(const PtrVec *body, const char *name, SrcSpan *at)
{
    for (int i = 0; i < body->len; i++) {
        const Stmt *st = body->items[i];
        if ((st->kind == ST_ASSIGN || st->kind == ST_LAYER) && st->name && strcmp(st->name, name) == 0) {
            *at = st->name_loc;
            return true;
        }
        if (st->kind == ST_IF && (assigned_in(&st->then_body, name, at) || assigned_in(&st->else_body, name, at))) return true;
    }
    return false;
}

static Node *eval_tensor_name(Binder *b, Scope *frame, const Value *v)
{
    Binding *bd = lookup(frame, v->s);
    if (bd && bd->kind == NAME_TENSOR) {
        bd->used = true;
        return bd->tensor;
    }
    if (bd && bd->kind == NAME_MODULE) {
        diag_error(b->diag, v->loc, "'%s' is a submodule, not a tensor: call it, as in %s(x)", v->s, v->s);
        return NULL;
    }
    if (bd) {
        diag_error(b->diag, v->loc, "'%s' is a constant, not a tensor", v->s);
        return NULL;
    }
    SrcSpan later;
    if (frame->forward_body && assigned_in(frame->forward_body, v->s, &later)) {
        diag_error(b->diag, v->loc, "'%s' is used before it is assigned", v->s);
        diag_note(b->diag, later, "it is assigned here");
        return NULL;
    }
    const char *near = nearest_binding(b, frame, v->s, NAME_TENSOR);
    if (near) diag_error(b->diag, v->loc, "unknown tensor '%s'; did you mean '%s'?", v->s, near);
    else diag_error(b->diag, v->loc, "unknown tensor '%s'", v->s);
    return NULL;
}

/* "add", "add_1", ...: names for the nodes of functions and operators, as torch.fx gives them. */
typedef struct FunctionalName {
    const char *name;
    int count;
} FunctionalName;

static const char *fresh_name(Binder *b, const Scope *frame, const char *base)
{
    const char *full = child_path(b, frame, base);
    for (int i = 0; i < b->name_counts.len; i++) {
        FunctionalName *f = b->name_counts.items[i];
        if (strcmp(f->name, full) == 0) return arena_printf(b->arena, "%s_%d", full, ++f->count);
    }
    FunctionalName *f = arena_alloc(b->arena, sizeof *f);
    f->name = full;
    ptrvec_push(b->arena, &b->name_counts, f);
    return full;
}

static Node *new_computed_node(Binder *b, Scope *frame, OpKind op, const char *base, SrcSpan loc, SrcSpan op_loc,
                               const char *text, BoundArg *args, Node **ins, int nins)
{
    BoundLayer layer = {.op = op, .args = args, .call_text = text, .loc = loc, .op_loc = op_loc};
    if (!args) layer.args = arena_alloc(b->arena, sizeof *layer.args);
    Node *n = bind_new_node(b, &layer, fresh_name(b, frame, base), false);
    for (int k = 0; k < nins; k++) n->inputs[k] = ins[k];
    n->ninputs = nins;
    return n;
}

/* a + b, a * b */
static Node *eval_operator_on_tensors(Binder *b, Scope *frame, const Value *v)
{
    if (v->kind == VAL_UNARY || (v->op != EX_ADD && v->op != EX_MUL)) {
        diag_error(b->diag, v->loc, "'%s' does not apply to tensors; forward adds tensors with '+' and multiplies them "
                                    "elementwise with '*'", operator_text(v->op));
        return NULL;
    }
    Node *ins[2];
    for (int k = 0; k < 2; k++) {
        const Value *side = v->items[k];
        if (side->kind == VAL_INT || side->kind == VAL_FLOAT) {
            diag_error(b->diag, side->loc, "'%s' with a number is not supported: both operands must be tensors",
                       operator_text(v->op));
            return NULL;
        }
        ins[k] = eval_tensor(b, frame, side);
    }
    if (!ins[0] || !ins[1]) return NULL;
    const char *base = v->op == EX_ADD ? "add" : "mul";
    const char *text = bind_span_text(b, v->loc, v->loc, v->op == EX_ADD ? "a + b" : "a * b");
    return new_computed_node(b, frame, v->op == EX_ADD ? OP_ADD : OP_MUL, base, v->loc, v->loc, text, NULL, ins, 2);
}

/* The functions of tensors forward can call, as torch.* and torch.nn.functional.*, each computed by a layer kind. */
static const struct Functional {
    const char *name;
    OpKind op;
} functionals[] = {
    {"relu", OP_RELU}, {"relu6", OP_RELU6}, {"leaky_relu", OP_LEAKYRELU}, {"sigmoid", OP_SIGMOID}, {"tanh", OP_TANH},
    {"gelu", OP_GELU}, {"silu", OP_SILU}, {"hardswish", OP_HARDSWISH}, {"softmax", OP_SOFTMAX},
    {"log_softmax", OP_LOGSOFTMAX}, {"flatten", OP_FLATTEN}, {"adaptive_avg_pool2d", OP_ADAPTIVEAVGPOOL2D},
    {"max_pool2d", OP_MAXPOOL2D}, {"avg_pool2d", OP_AVGPOOL2D}, {"select", OP_SELECT}, {"mean", OP_MEAN},
    {"add", OP_ADD}, {"mul", OP_MUL}, {"cat", OP_CAT},
};

static const struct Functional *find_functional(const char *name)
{
    for (size_t i = 0; i < sizeof functionals / sizeof functionals[0]; i++)
        if (strcmp(functionals[i].name, name) == 0) return &functionals[i];
    return NULL;
}

/* How many leading positional arguments are tensors (cat's one is a list of them). */
static int leading_tensors(const struct Functional *f) { return f->op == OP_ADD || f->op == OP_MUL ? 2 : 1; }

static Node *call_functional(Binder *b, Scope *frame, const struct Functional *f, const LayerStmt *call)
{
    int ntensors = leading_tensors(f);
    Node *ins[MAX_NODE_INPUTS];
    int nins = 0;
    if (call->nargs < ntensors || call->args[0]->keyword) {
        diag_error(b->diag, call->loc, "%s takes %s as its first argument%s", f->name,
                   f->op == OP_CAT ? "a list of tensors" : ntensors == 2 ? "two tensors" : "a tensor", ntensors == 2 ? "s" : "");
        return NULL;
    }
    bool ok = true;
    if (f->op == OP_CAT) {
        const Value *list = call->args[0]->value;
        if (list->kind != VAL_TUPLE || list->nitems < 1 || list->nitems > MAX_NODE_INPUTS) {
            diag_error(b->diag, list->loc, "cat takes a list of 1 to %d tensors, as in cat([a, b], dim=1)", MAX_NODE_INPUTS);
            return NULL;
        }
        for (int k = 0; k < list->nitems; k++) ok &= (ins[nins++] = eval_tensor(b, frame, list->items[k])) != NULL;
    } else {
        for (int k = 0; k < ntensors; k++) ok &= (ins[nins++] = eval_tensor(b, frame, call->args[k]->value)) != NULL;
    }
    if (!ok) return NULL;
    /* The remaining arguments, bound to the layer's signature. */
    LayerStmt rest = *call;
    rest.layer = op_name(f->op);
    rest.args = call->args + ntensors;
    rest.nargs = call->nargs - ntensors;
    if (f->op == OP_MAXPOOL2D && rest.nargs > 4 && !rest.args[4]->keyword) {
        diag_error(b->diag, rest.args[4]->loc, "max_pool2d: pass ceil_mode and return_indices by keyword (their order differs "
                                               "from nn.MaxPool2d's)");
        return NULL;
    }
    LayerStmt *evaluated = evaluate_args(b, frame, &rest, &ok);
    if (!ok) return NULL;
    BoundLayer layer = bind_call_as(b, f->op, evaluated);
    if (layer.invalid) return NULL;
    if (f->op == OP_FLATTEN && !layer.args[0].given) layer.args[0].ints[0] = 0; /* torch.flatten's start_dim is 0 */
    return new_computed_node(b, frame, f->op, f->name, call->loc, call->layer_loc, bind_call_text(b, call), layer.args, ins,
                             nins);
}

static Node *call_named_module(Binder *b, Scope *frame, Binding *bd, const LayerStmt *call)
{
    bd->used = true;
    Node *ins[MAX_NODE_INPUTS];
    int nins = 0;
    bool ok = true;
    for (int k = 0; k < call->nargs; k++) {
        const Arg *arg = call->args[k];
        if (arg->keyword || nins == MAX_NODE_INPUTS) {
            diag_error(b->diag, arg->loc, "submodule '%s' is called with tensors only, as in %s(x)", bd->name, bd->name);
            return NULL;
        }
        ok &= (ins[nins++] = eval_tensor(b, frame, arg->value)) != NULL;
    }
    if (!ok || !bd->module) return NULL;
    return call_module(b, bd->module, ins, nins, call->loc);
}

static const char *known_callables(Binder *b, const Scope *frame)
{
    const char *list = NULL;
    for (const Scope *s = frame; s; s = s->parent)
        for (int i = 0; i < s->bindings.len; i++) {
            const Binding *bd = s->bindings.items[i];
            if (bd->kind == NAME_MODULE) list = list ? arena_printf(b->arena, "%s, %s", list, bd->name) : bd->name;
        }
    return list;
}

static Node *eval_call(Binder *b, Scope *frame, const LayerStmt *call)
{
    Binding *bd = lookup(frame, call->layer);
    if (bd && bd->kind == NAME_MODULE) return call_named_module(b, frame, bd, call);
    const struct Functional *f = find_functional(call->layer);
    if (f && !bd) return call_functional(b, frame, f, call);
    if (f) { /* a constant or a tensor of the same name hides the function, as a local name hides one in Python */
        diag_error(b->diag, call->layer_loc, "'%s' is a %s here, which hides the function %s(...)", call->layer,
                   bd->kind == NAME_CONSTANT ? "compile-time value" : "tensor", call->layer);
        diag_note(b->diag, bd->loc, "'%s' is given here; rename it (for example 'use_%s') to call the function", call->layer,
                  call->layer);
        return NULL;
    }
    if (op_lookup(call->layer) != OP_COUNT || bind_find_block(b, call->layer) || strcmp(call->layer, "Sequential") == 0) {
        diag_error(b->diag, call->layer_loc, "%s(...) declares a module; forward calls modules by name", call->layer);
        diag_note(b->diag, call->layer_loc, "declare it before forward, as 'name = %s(...)', and call name(x) here",
                  call->layer);
        return NULL;
    }
    const char *names[64];
    int n = 0;
    for (size_t i = 0; i < sizeof functionals / sizeof functionals[0]; i++) names[n++] = functionals[i].name;
    const char *near = nearest_word(call->layer, names, n);
    if (!near) near = nearest_binding(b, frame, call->layer, NAME_MODULE);
    if (near) diag_error(b->diag, call->layer_loc, "unknown submodule or function '%s'; did you mean '%s'?", call->layer, near);
    else diag_error(b->diag, call->layer_loc, "unknown submodule or function '%s'", call->layer);
    const char *modules = known_callables(b, frame);
    diag_note(b->diag, call->layer_loc, "forward calls %s%sthe functions relu, flatten, cat, adaptive_avg_pool2d, ...",
              modules ? modules : "", modules ? " and " : "");
    return NULL;
}

static Node *eval_tensor(Binder *b, Scope *frame, const Value *v)
{
    switch (v->kind) {
    case VAL_NAME: return eval_tensor_name(b, frame, v);
    case VAL_CALL: return eval_call(b, frame, v->call);
    case VAL_BINARY:
    case VAL_UNARY: return v->poisoned ? NULL : eval_operator_on_tensors(b, frame, v);
    default:
        if (!v->poisoned) diag_error(b->diag, v->loc, "expected a tensor, found %s", kind_text(v));
        return NULL;
    }
}

typedef struct Returned {
    bool returned;
    const Value *value;
    SrcSpan loc;
} Returned;

static Binding *assign_tensor(Binder *b, Scope *frame, const char *name, SrcSpan loc, Node *value)
{
    Binding *prev = lookup_here(frame, name);
    if (prev && prev->kind == NAME_TENSOR) warn_if_unused(b, prev);
    Binding *outer = prev ? NULL : lookup(frame, name);
    if (outer && outer->kind == NAME_MODULE) {
        diag_error(b->diag, loc, "'%s' is a submodule; a tensor cannot take its name", name);
        return NULL;
    }
    Binding *bd = bind_name(b, frame, name, NAME_TENSOR, loc);
    bd->tensor = value;
    return bd;
}

static void exec_forward_body(Binder *b, Scope *frame, const PtrVec *body, Returned *ret)
{
    for (int i = 0; i < body->len && !ret->returned && !diag_too_many(b->diag); i++) {
        const Stmt *st = body->items[i];
        switch (st->kind) {
        case ST_LAYER: {
            if (st->layer->broken) break;
            Value call = {.kind = VAL_CALL, .loc = st->layer->loc, .call = st->layer};
            Node *n = eval_tensor(b, frame, &call);
            if (st->name) assign_tensor(b, frame, st->name, st->name_loc, n);
            else if (n && bind_first_warning_at(b, st->loc)) diag_warning(b->diag, st->loc, "the result of this call is never used");
            break;
        }
        case ST_ASSIGN: {
            Binding *bd = assign_tensor(b, frame, st->name, st->name_loc, eval_tensor(b, frame, st->value));
            if (bd) bd->alias = st->value->kind == VAL_NAME;
            break;
        }
        case ST_IF: {
            bool taken;
            if (condition_value(b, frame, st->value, &taken))
                exec_forward_body(b, frame, taken ? &st->then_body : &st->else_body, ret);
            break;
        }
        case ST_RETURN:
            ret->returned = true;
            ret->value = st->value;
            ret->loc = st->loc;
            break;
        case ST_EXPR: diag_error(b->diag, st->loc, "an expression on its own does nothing; assign it or return it"); break;
        case ST_INPUT: diag_error(b->diag, st->loc, "inputs are declared in the model's body, before forward"); break;
        case ST_FORWARD: diag_error(b->diag, st->loc, "a forward section cannot hold another"); break;
        }
    }
}

static Scope *new_frame(Binder *b, Scope *module_scope, const Forward *f)
{
    Scope *frame = arena_alloc(b->arena, sizeof *frame);
    frame->parent = module_scope;
    frame->path = module_scope->path;
    frame->forward_body = &f->body;
    return frame;
}

static void end_frame(Binder *b, Scope *frame)
{
    for (int i = 0; i < frame->bindings.len; i++) {
        Binding *bd = frame->bindings.items[i];
        if (lookup_here(frame, bd->name) == bd) warn_if_unused(b, bd);
    }
}

/* A block instance's forward on ins: one tensor out. */
static Node *call_block(Binder *b, Module *m, Node **ins, int nins, SrcSpan at)
{
    const Forward *f = m->forward;
    if (nins != f->nparams) {
        diag_error(b->diag, at, "%s (block %s) is called with %d tensor%s; its forward takes %d", m->path, m->block->name,
                   nins, nins == 1 ? "" : "s", f->nparams);
        diag_note(b->diag, f->loc, "forward is declared here");
        return NULL;
    }
    Scope *frame = new_frame(b, m->scope, f);
    for (int k = 0; k < nins; k++) {
        Binding *bd = bind_name(b, frame, f->params[k], NAME_TENSOR, f->param_locs[k]);
        bd->tensor = ins[k];
        bd->role = "parameter";
    }
    Returned ret = {0};
    b->block_depth++;
    exec_forward_body(b, frame, &f->body, &ret);
    b->block_depth--;
    Node *out = NULL;
    if (!ret.returned) {
        if (bind_first_warning_at(b, f->loc)) diag_error(b->diag, f->loc, "the forward of block %s never returns a value", m->block->name);
    } else if (ret.value->kind == VAL_TUPLE) {
        diag_error(b->diag, ret.loc, "the forward of block %s returns %d values; a block returns one tensor", m->block->name,
                   ret.value->nitems);
    } else {
        out = eval_tensor(b, frame, ret.value);
    }
    end_frame(b, frame);
    return out;
}

static Node *call_module(Binder *b, Module *m, Node **ins, int nins, SrcSpan at)
{
    m->called = true;
    switch (m->kind) {
    case MOD_LAYER: {
        int arity = m->layer.op == OP_BILINEAR ? 2 : 1;
        if (nins != arity) {
            diag_error(b->diag, at, "%s (%s) takes %s, found %d", m->path, op_name(m->layer.op),
                       arity == 2 ? "two tensors" : "one tensor", nins);
            return NULL;
        }
        Node *n = bind_new_node(b, &m->layer, m->path, true);
        if (strchr(m->path, '.')) n->call_text = arena_printf(b->arena, "%s = %s", m->path, m->layer.call_text);
        for (int k = 0; k < nins; k++) n->inputs[k] = ins[k];
        n->ninputs = nins;
        return n;
    }
    case MOD_SEQUENTIAL: {
        if (nins != 1) {
            diag_error(b->diag, at, "%s (Sequential) takes one tensor, found %d", m->path, nins);
            return NULL;
        }
        Node *x = ins[0];
        for (int i = 0; i < m->children.len && x; i++) x = call_module(b, m->children.items[i], &x, 1, at);
        return x;
    }
    case MOD_BLOCK: return call_block(b, m, ins, nins, at);
    }
    return NULL;
}

/* ---- the model ---- */

static void warn_uncalled(Binder *b, const Scope *s)
{
    if (b->diag->errors) return; /* a call that failed leaves its module uncalled: not worth a warning */
    for (int i = 0; i < s->modules.len; i++) {
        const Module *m = s->modules.items[i];
        if (!m->called) {
            ptrvec_push(b->arena, &b->graph->uncalled, (void *)m->path);
            if (bind_first_warning_at(b, m->call->loc))
                diag_warning(b->diag, m->call->loc, "submodule '%s' is never called in forward", m->path);
            continue;
        }
        if (m->scope) warn_uncalled(b, m->scope);
    }
}

/* forward's parameters are the model's inputs, in order. */
static bool check_forward_params(Binder *b, const Model *m)
{
    const Forward *f = m->forward;
    bool ok = f->nparams == m->inputs.len;
    for (int i = 0; ok && i < f->nparams; i++) ok = strcmp(f->params[i], ((const InputDecl *)m->inputs.items[i])->name) == 0;
    if (ok) return true;
    char *names = arena_strdup(b->arena, "");
    for (int i = 0; i < m->inputs.len; i++)
        names = arena_printf(b->arena, "%s%s%s", names, i ? ", " : "", ((const InputDecl *)m->inputs.items[i])->name);
    diag_error(b->diag, f->loc, "the model's forward takes its inputs, in the order they are declared: forward(%s)", names);
    return false;
}

static void bind_outputs(Binder *b, Scope *frame, const Returned *ret, const Model *m)
{
    if (!ret->returned) {
        diag_error(b->diag, m->forward->loc, "forward never returns a value: end it with 'return y'");
        return;
    }
    const Value *v = ret->value;
    int count = v->kind == VAL_TUPLE ? v->nitems : 1;
    if (count > MAX_MODEL_IO) {
        diag_error(b->diag, v->loc, "forward returns %d values; a model has at most %d outputs", count, MAX_MODEL_IO);
        return;
    }
    if (count == 0) {
        diag_error(b->diag, v->loc, "forward returns an empty tuple: a model has at least one output");
        return;
    }
    for (int k = 0; k < count; k++) {
        const Value *item = v->kind == VAL_TUPLE ? v->items[k] : v;
        Node *out = eval_tensor(b, frame, item);
        if (!out) continue;
        ptrvec_push(b->arena, &b->graph->outputs, out);
    }
}

void bind_forward_model(Binder *b, const Model *m)
{
    Graph *g = b->graph;
    Scope *scope = arena_alloc(b->arena, sizeof *scope);
    scope->path = "";
    const Forward *forward = NULL;
    elaborate_body(b, scope, &m->body, &forward, arena_printf(b->arena, "model %s", m->name));
    if (!forward || !check_forward_params(b, m)) return; /* no forward: elaboration stopped (too many errors) */
    Scope *frame = new_frame(b, scope, forward);
    for (int i = 0; i < g->inputs.len; i++) {
        Node *in = g->inputs.items[i];
        Binding *bd = bind_name(b, frame, in->name, NAME_TENSOR, in->op_loc);
        bd->tensor = in;
        bd->role = "input";
    }
    Returned ret = {0};
    exec_forward_body(b, frame, &forward->body, &ret);
    bind_outputs(b, frame, &ret, m);
    end_frame(b, frame);
    warn_uncalled(b, scope);
    if (g->outputs.len) g->output = g->outputs.items[0];
}

/* ---- a block or Sequential as one line of a stack ---- */

bool bind_is_module_call(const Binder *b, const LayerStmt *st)
{
    return !st->broken && (strcmp(st->layer, "Sequential") == 0 || bind_find_block(b, st->layer));
}

Node *bind_module_line(Binder *b, const LayerStmt *st, const char *path, Node *input)
{
    Scope *scope = arena_alloc(b->arena, sizeof *scope);
    scope->path = "";
    Module *m = declare_module(b, scope, st, path);
    if (!m) return NULL;
    Node *out = call_module(b, m, &input, 1, st->loc);
    if (m->scope) warn_uncalled(b, m->scope);
    return out;
}
