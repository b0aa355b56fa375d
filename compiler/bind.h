/* bind.h - the binding stage: AST -> graph IR.
 *
 * Resolves layer names against layers.def, binds each call's arguments to
 * the layer's torch.nn signature (layer_args.c) with PyTorch's defaults and
 * names every node by its state_dict prefix.  A stack of layers links each
 * layer to the previous one (bind.c); a model with a forward section is
 * traced through its submodules and blocks into a DAG (bind_forward.c).
 * Shapes are not looked at here (infer_shapes.c does that).
 */
#ifndef LAYERC_BIND_H
#define LAYERC_BIND_H

#include "ast.h"
#include "diag.h"
#include "graph.h"

/* Returns the graph of p's model, or NULL when it has no usable input or
 * output.  Nodes whose call could not be bound are marked invalid and
 * reported through d. */
Graph *bind_program(Arena *a, Diag *d, const Program *p);

#endif
