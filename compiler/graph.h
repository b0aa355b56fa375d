/* graph.h - the graph IR: what shape inference fills in, passes rewrite and
 * the LLVM lowering consumes.
 *
 * A Graph is a DAG: a list of Nodes in topological order, the model's inputs
 * first.  Every node names the nodes it reads (a residual add reads two, a
 * concatenation several; a value may have many readers), keeps its source
 * span for diagnostics, its bound arguments,
 * the typed attributes its shape rule derived from them, its output shape and
 * its parameter tensors under their PyTorch state_dict keys.
 * Ownership: all of it lives in the compilation arena (arena.h).
 */
#ifndef LAYERC_GRAPH_H
#define LAYERC_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "diag.h"

enum { MAX_RANK = 8, MAX_NODE_INPUTS = 8, MAX_MODEL_IO = 16, MAX_SHAPE_TEXT = 160 };

typedef enum {
#define LAYER(E, Name, Sig, rule, kernel, reference, flags) OP_##E,
#include "layers.def"
#undef LAYER
    OP_INPUT, /* the model's input: not a layer */
    OP_COUNT
} OpKind;

/* The flags column of layers.def. */
enum {
    LF_ACTIVATION = 1 << 0,         /* an elementwise activation (ACTIVATION rows) */
    LF_VIEW = 1 << 1,               /* shares its input's storage: no kernel */
    LF_INFERENCE_IDENTITY = 1 << 2, /* the identity in eval mode */
    LF_ANY_ARGS = 1 << 3,           /* accepts any arguments (Identity) */
    LF_FUNCTIONAL = 1 << 4,         /* not a torch.nn layer: written as an operator or a function (x + y, cat) */
};

typedef enum { DT_F32, DT_I64 } DType;

/* A tensor shape.  When `dynamic_batch` is set, dims[0] is the batch chosen at
 * run time; it holds 1 so that per-sample sizes can be computed. */
typedef struct Shape {
    int rank;
    int64_t dims[MAX_RANK];
    bool dynamic_batch;
} Shape;

/* ---- Arguments as bound to a layer's signature (layer_args.h, bind.c) ---- */

typedef enum {
    ARG_INT,        /* int */
    ARG_PAIR,       /* int or (int, int) */
    ARG_FLOAT,      /* float (an int is accepted) */
    ARG_BOOL,       /* True / False */
    ARG_STRING,     /* one of spec->choices */
    ARG_PADDING,    /* int, (int, int), 'same' or 'valid' */
    ARG_SHAPE,      /* int or tuple of ints (LayerNorm's normalized_shape) */
    ARG_OPT_INT,    /* int or None */
    ARG_OPT_PAIR,   /* int, (int, int) or None */
    ARG_OPT_FLOAT,  /* float or None */
    ARG_OPT_SIZE2,  /* int, None or a pair whose items may be None (AdaptiveAvgPool2d) */
    ARG_NONE_ONLY,  /* device=, dtype=, _weight=: accepted only as None */
} ArgType;

typedef enum { DEF_REQUIRED, DEF_NONE, DEF_INT, DEF_FLOAT, DEF_BOOL, DEF_STRING } DefaultKind;

typedef struct ArgSpec {
    const char *name;
    ArgType type;
    DefaultKind def_kind;
    double def_num; /* DEF_INT, DEF_FLOAT, DEF_BOOL */
    const char *def_str;
    const char *choices; /* ARG_STRING: the accepted values, space separated */
} ArgSpec;

typedef struct LayerSignature {
    const ArgSpec *args;
    int nargs;
    bool accepts_anything; /* Identity(*args, **kwargs) */
    const char *refusal;   /* non-NULL: a torch.nn layer layerc rejects, and why */
} LayerSignature;

/* One argument after binding: the value is normalised for its ArgType. */
typedef struct BoundArg {
    bool given;    /* written by the user (else the default) */
    bool is_none;
    SrcSpan loc;   /* of the value, or of the call when defaulted */
    int64_t ints[MAX_RANK]; /* ARG_INT: ints[0]; pairs: ints[0..1]; ARG_SHAPE: ints[0..count) */
    bool none_at[2];        /* ARG_OPT_SIZE2: which items are None */
    int count;
    double num;             /* ARG_FLOAT, ARG_OPT_FLOAT */
    const char *str;        /* ARG_STRING and ARG_PADDING 'same'/'valid' */
} BoundArg;

/* ---- Typed attributes derived by the shape rules ---- */

/* Conv2d's padding_mode: the enum, the names and the choices of its argument from one list. */
#define PAD_MODES(X) X(ZEROS, zeros) X(REFLECT, reflect) X(REPLICATE, replicate) X(CIRCULAR, circular)
typedef enum {
#define PAD_MODE_ENUM(E, name) PAD_##E,
    PAD_MODES(PAD_MODE_ENUM)
#undef PAD_MODE_ENUM
} PadMode;
#define PAD_MODE_WORD(E, name) #name " "
#define PAD_MODE_NAMES PAD_MODES(PAD_MODE_WORD) /* "zeros reflect replicate circular " */
const char *pad_mode_name(PadMode m);
/* The mode named `name`, one of PAD_MODE_NAMES (bind.c checked it). */
PadMode pad_mode_from_name(const char *name);

typedef struct ConvAttrs {
    int64_t in_channels, out_channels, groups;
    int64_t kernel[2], stride[2], dilation[2];
    int64_t pad_begin[2], pad_end[2]; /* [H, W]; 'same' may be asymmetric */
    int64_t padded[2];                /* the padded input's H and W: size + pad_begin + pad_end */
    bool bias;
    PadMode pad_mode;
} ConvAttrs;

typedef struct PoolAttrs {
    int64_t kernel[2], stride[2], pad[2], dilation[2];
    bool ceil_mode, count_include_pad;
    int64_t divisor_override; /* 0: none */
} PoolAttrs;

typedef struct LinearAttrs {
    int64_t in_features, out_features;
    bool bias;
} LinearAttrs;

typedef struct NormAttrs {
    int64_t num_features; /* BatchNorm: C; LayerNorm: product of normalized_shape */
    int norm_rank;        /* LayerNorm: how many trailing dims are normalised */
    double eps;
    bool affine;          /* BatchNorm affine / LayerNorm elementwise_affine */
    bool bias;            /* LayerNorm bias */
    bool track_running_stats;
} NormAttrs;

typedef struct ActAttrs {
    double negative_slope; /* LeakyReLU */
    bool gelu_tanh;        /* GELU(approximate='tanh') */
    double p;              /* Dropout */
} ActAttrs;

typedef struct AxisAttrs {
    int dim;           /* Softmax / LogSoftmax / Select / Mean, normalised to [0, rank) */
    int start, end;    /* Flatten, normalised */
    int64_t index;     /* Select, normalised to [0, size) */
    bool keepdim;      /* Mean */
} AxisAttrs;

typedef enum { BAG_SUM, BAG_MEAN, BAG_MAX } BagMode;

typedef struct EmbeddingAttrs {
    int64_t num_embeddings, embedding_dim;
    int64_t padding_idx; /* -1: none (normalised to non-negative otherwise) */
    double max_norm;     /* < 0: none */
    double norm_type;
    BagMode mode;
    bool include_last_offset;
} EmbeddingAttrs;

typedef struct RecurrentAttrs {
    int64_t input_size, hidden_size, num_layers, proj_size;
    bool bias, batch_first, bidirectional, relu; /* relu: RNN nonlinearity */
    double dropout;
} RecurrentAttrs;

typedef struct TransformerAttrs {
    int64_t d_model, nhead, dim_feedforward;
    bool gelu, batch_first, norm_first, bias;
    double layer_norm_eps, dropout;
} TransformerAttrs;

typedef struct BilinearAttrs {
    int64_t in1_features, in2_features, out_features;
    bool bias;
} BilinearAttrs;

/* add, mul: how each input's elements map onto the output's (PyTorch's
 * broadcasting).  The shapes are right-aligned to the output's rank; a
 * dimension of size 1 in an input repeats along the output's. */
typedef struct BroadcastAttrs {
    bool same_shapes; /* both inputs have the output's shape: a plain elementwise loop */
} BroadcastAttrs;

typedef struct Param {
    const char *key; /* full state_dict key, e.g. "conv1.weight" */
    Shape shape;
    DType dtype;
    bool is_buffer;  /* running_mean etc.: in the state_dict, not a learnable parameter */
    float *data;     /* the values, once weights are bound (weights.h); i64 tensors are not loaded */
} Param;

typedef struct Node {
    int id;
    OpKind op;
    const char *name;  /* state_dict prefix: the given name, or the layer's position */
    bool named;
    SrcSpan loc;       /* the whole statement */
    SrcSpan op_loc;    /* the layer's name in the call */
    const char *call_text; /* the call as written, e.g. "Linear(1024, 64)", for messages */
    bool invalid;      /* binding failed: no shape is inferred for it or what follows */
    struct Node *inputs[MAX_NODE_INPUTS];
    int ninputs;

    BoundArg *args;    /* parallel to the signature's ArgSpecs */
    union {
        ConvAttrs conv;
        PoolAttrs pool;
        LinearAttrs linear;
        NormAttrs norm;
        ActAttrs act;
        AxisAttrs axis;
        EmbeddingAttrs emb;
        RecurrentAttrs rnn;
        TransformerAttrs tfm;
        BilinearAttrs bilinear;
        BroadcastAttrs broadcast;
        int64_t adaptive_out[2];
    } attr;

    Shape shape;       /* output */
    DType dtype;
    bool inferred;     /* the output shape is known (later layers are checked against it) */
    bool recovered;    /* the rule reported an error but still knows the output shape */
    Param *params;
    int nparams, params_cap;
    int64_t param_count; /* learnable parameters */
    int64_t macs;        /* multiply-accumulates for one batch of the declared size */
    PtrVec explain;      /* lines of --explain text (char*) */

    /* Set by the optimizer (pass_*.c); see passes.h. */
    int source_id;          /* the node of the unoptimised graph whose output this node computes */
    bool has_residual;      /* Conv2d: inputs[1] is added to its output in its kernel, before the activation */
    bool has_epilogue;      /* an activation is applied inside this node's kernel: */
    OpKind epilogue;        /* which one, */
    ActAttrs epilogue_attr; /* with its arguments */
    PtrVec absorbed;        /* the nodes folded or fused into this one (Node*), in order */
    bool bn_folded;         /* BatchNorm: its parameters are NAME.scale and NAME.shift (y = x * scale + shift) */
    struct ConvPlan *conv_plan; /* Conv2d: how it is computed (conv_plan.h); NULL until choose-conv-algorithm ran */
} Node;

typedef struct Graph {
    Arena *arena;
    const char *model_name;
    const char *batch_name; /* the input's named first dimension, or NULL */
    PtrVec nodes;           /* Node*, topological order; the inputs come first */
    PtrVec inputs;          /* Node* (OP_INPUT), in declaration order */
    PtrVec outputs;         /* Node*, in the order forward returns them */
    Node *input;            /* inputs.items[0] */
    Node *output;           /* outputs.items[0] */
    PtrVec uncalled;        /* char*: paths of submodules declared but never called in forward ("u.extra"): their
                             * tensors in a weights file are expected, as PyTorch's state_dict has them */
} Graph;

/* ---- the layer table (layers.def; layer_args.c) ---- */

const char *op_name(OpKind op);
unsigned op_flags(OpKind op); /* LF_* */
static inline bool op_is_activation(OpKind op) { return op_flags(op) & LF_ACTIVATION; }
static inline bool op_is_view(OpKind op) { return op_flags(op) & LF_VIEW; }
const LayerSignature *op_signature(OpKind op);
/* The op whose torch name is `name`, or OP_COUNT. */
OpKind op_lookup(const char *name);
/* All torch names layerc knows (for "did you mean"); returns the count. */
int op_all_names(const char **names, int max);

/* The parameter "<node name>.<suffix>", or NULL when the layer has none (e.g. bias=False). */
const Param *node_param(const Node *n, const char *suffix);

int64_t shape_numel(const Shape *s); /* -1 on overflow */
/* The model's token ids (an i64 input) index a table of this many rows (the
 * first Embedding's or EmbeddingBag's num_embeddings); 0 for an f32 input. */
int64_t graph_token_limit(const Graph *g);
/* The same for one i64 input node (0 when none of its readers is an Embedding). */
int64_t graph_input_token_limit(const Graph *g, const Node *input);
/* The layers: every node but the inputs, in order (what a compiled model runs and observes). */
int graph_layer_count(const Graph *g);

/* ---- rewriting (graph.c) ---- */

/* Removes node n, whose single input takes its place for every consumer. */
void graph_bypass_node(Graph *g, Node *n);
/* Removes node n; `replacement` (an earlier node) takes its place for every consumer and as an output. */
void graph_replace_node(Graph *g, Node *n, Node *replacement);
/* How many times n's output is read (by nodes, and as a model output). */
int graph_count_uses(const Graph *g, const Node *n);
/* Whether n is one of the model's outputs. */
bool graph_is_output(const Graph *g, const Node *n);
/* Removes the nodes no output depends on; returns how many. */
int graph_remove_dead_nodes(Graph *g);
/* The only consumer of n, or NULL when it has none or several, or n is a model output. */
Node *graph_single_user(const Graph *g, const Node *n);
/* "conv1 + bn1 + relu1" for a node with absorbed nodes, else its name. */
const char *node_group_name(Arena *a, const Node *n);
/* "Conv2d + BatchNorm2d + ReLU" likewise, with the layers' types. */
const char *node_group_types(Arena *a, const Node *n);
/* "[64, 3, 32, 32]" or "[N, 3, 32, 32]" into buf. */
const char *shape_format(const Shape *s, const char *batch_name, char *buf, size_t size);

#endif
