/* ast.h - the syntax tree of a .nn file, as the parser builds it.
 *
 * The AST is exactly what was written: argument values are not yet bound to
 * a layer's parameters and nothing is checked beyond the grammar.  bind.c
 * turns it into the graph IR (graph.h).  All nodes live in the compilation
 * arena and carry their source span.
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
    VAL_NAME,  /* a bare identifier: never valid as an argument, kept for the hint */
} ValueKind;

typedef struct Value {
    ValueKind kind;
    SrcSpan loc;
    int64_t i;            /* VAL_INT, VAL_BOOL */
    double f;             /* VAL_FLOAT */
    const char *s;        /* VAL_STRING (unquoted), VAL_NAME */
    struct Value **items; /* VAL_TUPLE */
    int nitems;
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

typedef struct Model {
    const char *name;
    SrcSpan name_loc;
    PtrVec inputs; /* InputDecl* */
    PtrVec layers; /* LayerStmt* */
    SrcSpan loc;
} Model;

#endif
