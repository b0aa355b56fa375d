/* binder.h - what the two halves of the binding stage share: bind.c (the
 * stack form, and binding one layer call to its torch.nn signature) and
 * bind_forward.c (submodules, Sequential, blocks and forward sections,
 * traced into nodes).  Internal to them; bind.h is the stage's interface. */
#ifndef LAYERC_BINDER_H
#define LAYERC_BINDER_H

#include "ast.h"
#include "diag.h"
#include "graph.h"

typedef struct Binder {
    Arena *arena;
    Diag *diag;
    Graph *graph;
    const Program *program;
    int block_depth;  /* blocks being instantiated inside each other */
    PtrVec warned;    /* SrcSpan* already warned about (a block's lines, once for all its instances) */
    PtrVec name_counts; /* FunctionalName*: how many nodes each function name has given (add, add_1, ...) */
    PtrVec used_blocks; /* BlockDef* instantiated at least once */
} Binder;

/* A layer call bound to its signature: op, arguments and the call's text,
 * ready to become nodes (one per call of a submodule).  Reports errors;
 * *invalid is set when the call cannot be used. */
typedef struct BoundLayer {
    OpKind op;
    BoundArg *args;
    const char *call_text;
    SrcSpan loc, op_loc;
    bool invalid;
} BoundLayer;

BoundLayer bind_layer_call(Binder *b, const LayerStmt *st);
/* The same for a known op (a function of forward: its arguments after the tensors). */
BoundLayer bind_call_as(Binder *b, OpKind op, const LayerStmt *st);
/* A new node computing `layer`, named `name` (its state_dict prefix), appended to the graph. */
Node *bind_new_node(Binder *b, const BoundLayer *layer, const char *name, bool named);
/* The call text ("Linear(1024, 64)") of st as written, shortened when long. */
const char *bind_call_text(Binder *b, const LayerStmt *st);
/* The source text from `from` to `to` (on one line), shortened when long; else fallback. */
const char *bind_span_text(Binder *b, SrcSpan from, SrcSpan to, const char *fallback);
/* "Conv2d(in_channels, out_channels, kernel_size, stride=1, ...)" */
const char *bind_signature_text(Binder *b, OpKind op);
/* The block named `name`, or NULL. */
const BlockDef *bind_find_block(const Binder *b, const char *name);

/* Whether the stack line st calls a block or Sequential rather than a layer. */
bool bind_is_module_call(const Binder *b, const LayerStmt *st);
/* A stack line that instantiates a block or a Sequential, applied to `input`
 * under the state_dict prefix `path`; NULL after errors. */
Node *bind_module_line(Binder *b, const LayerStmt *st, const char *path, Node *input);
/* A model with a forward section: its submodules and the traced graph. */
void bind_forward_model(Binder *b, const Model *m);
/* Warns once per source location (a block's line, for all its instances). */
bool bind_first_warning_at(Binder *b, SrcSpan at);

#endif
