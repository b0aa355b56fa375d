/* bind.h - the binding stage: AST -> graph IR.
 *
 * Resolves layer names against layers.def, binds each call's arguments to
 * the layer's torch.nn signature (layer_args.c) with PyTorch's defaults,
 * names every node by its state_dict prefix and links each layer to the
 * previous one.  Shapes are not looked at here (infer_shapes.c does that).
 */
#ifndef LAYERC_BIND_H
#define LAYERC_BIND_H

#include "ast.h"
#include "diag.h"
#include "graph.h"

/* Returns the graph, or NULL when the model has no usable input.  Nodes whose
 * call could not be bound are left out and reported through d. */
Graph *bind_model(Arena *a, Diag *d, const Model *m);

#endif
