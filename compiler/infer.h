/* infer.h - shape inference: fills every node's output shape, parameter
 * tensors, parameter count, MACs and --explain lines, and reports every
 * mismatch between a layer and the tensor that flows into it.
 *
 * infer_shapes.c walks the graph; the per-layer rules live in
 * rules_spatial.c (Conv2d, pooling), rules_dense.c (activations,
 * normalisation, Linear, Flatten, Softmax) and rules_sequence.c
 * (Embedding, recurrent layers, TransformerEncoderLayer).  Each rule reads
 * the node's bound arguments (NODE_ARGS, layer_args.h), checks them against
 * its input, decodes them into the node's typed attributes (graph.h), which
 * is all later stages read, and fills the node; it returns false after
 * reporting an error.
 */
#ifndef LAYERC_INFER_H
#define LAYERC_INFER_H

#include "diag.h"
#include "graph.h"

/* Runs shape inference over g; returns false when any error was reported. */
bool infer_shapes(Diag *d, Graph *g);

/* ---- for the rule files ---- */

typedef struct InferCtx {
    Diag *diag;
    Arena *arena;
    Graph *graph;
} InferCtx;

typedef bool (*ShapeRule)(InferCtx *ic, Node *n);

#define LAYER(E, Name, Sig, rule, kernel, reference, flags) bool rule(InferCtx *ic, Node *n);
#include "layers.def"
#undef LAYER

/* "conv1 output [64, 32, 30, 30]", "Flatten output [64, 4096]" or "input x [N, 3, 32, 32]". */
const char *describe_tensor(InferCtx *ic, const Node *producer);
const char *shape_text(InferCtx *ic, const Shape *s);

/* Errors about node n start with its call as written ("Linear(1024, 64): ..."). */
void node_error(InferCtx *ic, const Node *n, SrcSpan at, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void node_warning(InferCtx *ic, const Node *n, SrcSpan at, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void explain(InferCtx *ic, Node *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The node's input tensor requirements; each reports its own error. */
bool expect_rank(InferCtx *ic, const Node *n, int min_rank, int max_rank, const char *layout);
bool expect_dtype(InferCtx *ic, const Node *n, DType want);
/* Dimension `dim` of the input must be a fixed size (not the run-time batch). */
bool expect_fixed_dim(InferCtx *ic, const Node *n, int dim, const char *what);

/* Integer checks on a bound argument of n (every item of a pair or shape). */
bool expect_positive(InferCtx *ic, const Node *n, const BoundArg *arg);
bool expect_nonnegative(InferCtx *ic, const Node *n, const BoundArg *arg);

/* Adds the state_dict tensor "<node name>.<suffix>". */
void add_param(InferCtx *ic, Node *n, const char *suffix, int rank, const int64_t *dims, bool is_buffer);
void add_param1(InferCtx *ic, Node *n, const char *suffix, int64_t d0, bool is_buffer);
void add_param2(InferCtx *ic, Node *n, const char *suffix, int64_t d0, int64_t d1);

/* a*b and a+b saturating at INT64_MAX, for counts (checked against limits later). */
int64_t sat_mul(int64_t a, int64_t b);
int64_t sat_add(int64_t a, int64_t b);

static inline const Shape *input_shape(const Node *n) { return &n->inputs[0]->shape; }

#endif
