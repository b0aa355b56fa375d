/* ast.h - the syntax tree of a .nn file, as the parser builds it.
 *
 * The AST is exactly what was written: argument values are not yet bound to
 * a layer's parameters and nothing is checked beyond the grammar.  bind.c
 * (a stack of layers) and bind_forward.c (submodules, blocks and a forward
 * section) turn it into the graph IR (graph.h).  All nodes live in the
 * compilation arena and carry their source span.
 */
#ifndef LAYERC_AST_H
#define LAYERC_AST_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "diag.h"

typedef enum {
    VAL_INT,
    VAL_FLOAT,
    VAL_BOOL,
    VAL_NONE,
    VAL_STRING,
    VAL_TUPLE, /* (a, b) or [a, b] */
    VAL_NAME,  /* a bare identifier: a block parameter, a constant or a tensor */
    VAL_CALL,  /* f(args): a layer, a block, Sequential, or a function of tensors */
    VAL_BINARY, /* items[0] op items[1] */
    VAL_UNARY,  /* op items[0] */
} ValueKind;

/* The operators of expressions: arithmetic on constants and tensors (+, *),
 * comparisons and logic on constants (block conditions). */
typedef enum {
    EX_ADD, EX_SUB, EX_MUL,
    EX_EQ, EX_NE, EX_LT, EX_LE, EX_GT, EX_GE,
    EX_AND, EX_OR, EX_NOT, EX_NEG,
} ExprOp;

struct LayerStmt;

typedef struct Value {
    ValueKind kind;
    SrcSpan loc;
    int64_t i;            /* VAL_INT, VAL_BOOL */
    double f;             /* VAL_FLOAT */
    const char *s;        /* VAL_STRING (unquoted), VAL_NAME */
    struct Value **items; /* VAL_TUPLE; the operands of VAL_BINARY and VAL_UNARY */
    int nitems;
    ExprOp op;            /* VAL_BINARY, VAL_UNARY */
    struct LayerStmt *call; /* VAL_CALL */
    bool poisoned;        /* an integer literal too large: already reported, never checked again */
} Value;

typedef struct Arg {
    const char *keyword; /* NULL for a positional argument */
    SrcSpan keyword_loc;
    Value *value;
    SrcSpan loc;
} Arg;

typedef struct LayerStmt {
    const char *name; /* NULL for an unnamed layer */
    SrcSpan name_loc;
    const char *layer; /* e.g. "Conv2d" */
    SrcSpan layer_loc;
    Arg **args;
    int nargs;
    SrcSpan loc;
    SrcSpan call_loc; /* Layer(args), without the name */
    bool broken;      /* a line with a syntax error: a layer whose output is unknown */
} LayerStmt;

typedef struct Dim {
    bool poisoned;    /* see Value.poisoned */
    int64_t value;    /* when name is NULL */
    const char *name; /* a named (run-time) dimension such as N */
    SrcSpan loc;
} Dim;

typedef struct InputDecl {
    const char *name;
    SrcSpan name_loc;
    const char *dtype;
    SrcSpan dtype_loc;
    Dim **dims;
    int ndims;
    SrcSpan loc;
} InputDecl;

/* A statement of a model, a block or a forward section, in source order. */
typedef enum {
    ST_INPUT,   /* input x: f32[...] (a model's body) */
    ST_LAYER,   /* [name =] Layer(args): a stack line, or a submodule declaration */
    ST_ASSIGN,  /* name = expression that is not a call: a constant, or (in forward) a tensor */
    ST_IF,      /* if condition { ... } else { ... } */
    ST_RETURN,  /* return value[, value ...] (forward) */
    ST_FORWARD, /* forward(x) { ... } */
    ST_EXPR,    /* an expression on its own line that is not a call */
} StmtKind;

typedef struct Forward {
    const char **params;
    SrcSpan *param_locs;
    int nparams;
    PtrVec body; /* Stmt* */
    SrcSpan loc;
} Forward;

typedef struct Stmt {
    StmtKind kind;
    SrcSpan loc;
    InputDecl *input;  /* ST_INPUT */
    LayerStmt *layer;  /* ST_LAYER */
    const char *name;  /* ST_ASSIGN: the name assigned (also a named ST_LAYER's) */
    SrcSpan name_loc;
    Value *value;      /* ST_ASSIGN, ST_EXPR; ST_IF's condition; ST_RETURN's value (a tuple for several) */
    PtrVec then_body, else_body; /* ST_IF: Stmt* */
    Forward *forward;  /* ST_FORWARD */
    bool broken;       /* a line with a syntax error */
} Stmt;

/* A block parameter: name [= default]. */
typedef struct BlockParam {
    const char *name;
    SrcSpan loc;
    Value *def; /* NULL: required */
} BlockParam;

/* block NAME(params) { submodules, constants, forward(x) { ... } } */
typedef struct BlockDef {
    const char *name;
    SrcSpan name_loc;
    BlockParam *params;
    int nparams;
    PtrVec body; /* Stmt* */
    SrcSpan loc;
} BlockDef;

typedef struct Model {
    const char *name;
    SrcSpan name_loc;
    PtrVec inputs; /* InputDecl* */
    PtrVec layers; /* LayerStmt*: the ST_LAYER statements of the body, in order */
    PtrVec body;   /* Stmt*, every statement in order */
    Forward *forward; /* NULL: the body is a stack of layers */
    SrcSpan loc;
} Model;

/* What a file holds: one model and the blocks it uses. */
typedef struct Program {
    Model *model;   /* the first model */
    PtrVec models;  /* Model*, to report a second one */
    PtrVec blocks;  /* BlockDef* */
} Program;

#endif
