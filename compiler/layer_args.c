/* layer_args.c - the constructor signature of every layer, exactly as torch.nn
 * declares it: positional order, keyword names and defaults.  bind.c binds a
 * call's arguments against these tables; the shape rules read the result
 * through node_arg().
 */
#include <stdio.h>
#include <string.h>

#include "graph.h"

#define REQUIRED DEF_REQUIRED, 0, NULL
#define NONE DEF_NONE, 0, NULL
#define INT(v) DEF_INT, (v), NULL
#define FLOAT(v) DEF_FLOAT, (v), NULL
#define BOOL(v) DEF_BOOL, (v), NULL
#define STR(s) DEF_STRING, 0, (s)
#define DEVICE_DTYPE {"device", ARG_NONE_ONLY, NONE, NULL}, {"dtype", ARG_NONE_ONLY, NONE, NULL}

static const ArgSpec conv2d_args[] = {
    {"in_channels", ARG_INT, REQUIRED, NULL},
    {"out_channels", ARG_INT, REQUIRED, NULL},
    {"kernel_size", ARG_PAIR, REQUIRED, NULL},
    {"stride", ARG_PAIR, INT(1), NULL},
    {"padding", ARG_PADDING, INT(0), NULL},
    {"dilation", ARG_PAIR, INT(1), NULL},
    {"groups", ARG_INT, INT(1), NULL},
    {"bias", ARG_BOOL, BOOL(1), NULL},
    {"padding_mode", ARG_STRING, STR("zeros"), "zeros reflect replicate circular"},
    DEVICE_DTYPE,
};

static const ArgSpec maxpool2d_args[] = {
    {"kernel_size", ARG_PAIR, REQUIRED, NULL},
    {"stride", ARG_OPT_PAIR, NONE, NULL},
    {"padding", ARG_PAIR, INT(0), NULL},
    {"dilation", ARG_PAIR, INT(1), NULL},
    {"return_indices", ARG_BOOL, BOOL(0), NULL},
    {"ceil_mode", ARG_BOOL, BOOL(0), NULL},
};

static const ArgSpec avgpool2d_args[] = {
    {"kernel_size", ARG_PAIR, REQUIRED, NULL},
    {"stride", ARG_OPT_PAIR, NONE, NULL},
    {"padding", ARG_PAIR, INT(0), NULL},
    {"ceil_mode", ARG_BOOL, BOOL(0), NULL},
    {"count_include_pad", ARG_BOOL, BOOL(1), NULL},
    {"divisor_override", ARG_OPT_INT, NONE, NULL},
};

static const ArgSpec adaptiveavgpool2d_args[] = {
    {"output_size", ARG_OPT_SIZE2, REQUIRED, NULL},
};

static const ArgSpec inplace_args[] = {
    {"inplace", ARG_BOOL, BOOL(0), NULL},
};

static const ArgSpec leakyrelu_args[] = {
    {"negative_slope", ARG_FLOAT, FLOAT(0.01), NULL},
    {"inplace", ARG_BOOL, BOOL(0), NULL},
};

static const ArgSpec gelu_args[] = {
    {"approximate", ARG_STRING, STR("none"), "none tanh"},
};

static const ArgSpec softmax_args[] = {
    {"dim", ARG_OPT_INT, NONE, NULL},
};

static const ArgSpec batchnorm_args[] = {
    {"num_features", ARG_INT, REQUIRED, NULL},
    {"eps", ARG_FLOAT, FLOAT(1e-5), NULL},
    {"momentum", ARG_OPT_FLOAT, FLOAT(0.1), NULL},
    {"affine", ARG_BOOL, BOOL(1), NULL},
    {"track_running_stats", ARG_BOOL, BOOL(1), NULL},
    DEVICE_DTYPE,
};

static const ArgSpec layernorm_args[] = {
    {"normalized_shape", ARG_SHAPE, REQUIRED, NULL},
    {"eps", ARG_FLOAT, FLOAT(1e-5), NULL},
    {"elementwise_affine", ARG_BOOL, BOOL(1), NULL},
    {"bias", ARG_BOOL, BOOL(1), NULL},
    DEVICE_DTYPE,
};

static const ArgSpec linear_args[] = {
    {"in_features", ARG_INT, REQUIRED, NULL},
    {"out_features", ARG_INT, REQUIRED, NULL},
    {"bias", ARG_BOOL, BOOL(1), NULL},
    DEVICE_DTYPE,
};

static const ArgSpec lazylinear_args[] = {
    {"out_features", ARG_INT, REQUIRED, NULL},
    {"bias", ARG_BOOL, BOOL(1), NULL},
    DEVICE_DTYPE,
};

static const ArgSpec flatten_args[] = {
    {"start_dim", ARG_INT, INT(1), NULL},
    {"end_dim", ARG_INT, INT(-1), NULL},
};

static const ArgSpec dropout_args[] = {
    {"p", ARG_FLOAT, FLOAT(0.5), NULL},
    {"inplace", ARG_BOOL, BOOL(0), NULL},
};

static const ArgSpec embedding_args[] = {
    {"num_embeddings", ARG_INT, REQUIRED, NULL},
    {"embedding_dim", ARG_INT, REQUIRED, NULL},
    {"padding_idx", ARG_OPT_INT, NONE, NULL},
    {"max_norm", ARG_OPT_FLOAT, NONE, NULL},
    {"norm_type", ARG_FLOAT, FLOAT(2.0), NULL},
    {"scale_grad_by_freq", ARG_BOOL, BOOL(0), NULL},
    {"sparse", ARG_BOOL, BOOL(0), NULL},
    {"_weight", ARG_NONE_ONLY, NONE, NULL},
    {"_freeze", ARG_BOOL, BOOL(0), NULL},
    DEVICE_DTYPE,
};

static const ArgSpec embeddingbag_args[] = {
    {"num_embeddings", ARG_INT, REQUIRED, NULL},
    {"embedding_dim", ARG_INT, REQUIRED, NULL},
    {"max_norm", ARG_OPT_FLOAT, NONE, NULL},
    {"norm_type", ARG_FLOAT, FLOAT(2.0), NULL},
    {"scale_grad_by_freq", ARG_BOOL, BOOL(0), NULL},
    {"mode", ARG_STRING, STR("mean"), "sum mean max"},
    {"sparse", ARG_BOOL, BOOL(0), NULL},
    {"_weight", ARG_NONE_ONLY, NONE, NULL},
    {"include_last_offset", ARG_BOOL, BOOL(0), NULL},
    {"padding_idx", ARG_OPT_INT, NONE, NULL},
    DEVICE_DTYPE,
};

static const ArgSpec rnn_args[] = {
    {"input_size", ARG_INT, REQUIRED, NULL},
    {"hidden_size", ARG_INT, REQUIRED, NULL},
    {"num_layers", ARG_INT, INT(1), NULL},
    {"nonlinearity", ARG_STRING, STR("tanh"), "tanh relu"},
    {"bias", ARG_BOOL, BOOL(1), NULL},
    {"batch_first", ARG_BOOL, BOOL(0), NULL},
    {"dropout", ARG_FLOAT, FLOAT(0.0), NULL},
    {"bidirectional", ARG_BOOL, BOOL(0), NULL},
    DEVICE_DTYPE,
};

static const ArgSpec lstm_args[] = {
    {"input_size", ARG_INT, REQUIRED, NULL},
    {"hidden_size", ARG_INT, REQUIRED, NULL},
    {"num_layers", ARG_INT, INT(1), NULL},
    {"bias", ARG_BOOL, BOOL(1), NULL},
    {"batch_first", ARG_BOOL, BOOL(0), NULL},
    {"dropout", ARG_FLOAT, FLOAT(0.0), NULL},
    {"bidirectional", ARG_BOOL, BOOL(0), NULL},
    {"proj_size", ARG_INT, INT(0), NULL},
    DEVICE_DTYPE,
};

static const ArgSpec gru_args[] = {
    {"input_size", ARG_INT, REQUIRED, NULL},
    {"hidden_size", ARG_INT, REQUIRED, NULL},
    {"num_layers", ARG_INT, INT(1), NULL},
    {"bias", ARG_BOOL, BOOL(1), NULL},
    {"batch_first", ARG_BOOL, BOOL(0), NULL},
    {"dropout", ARG_FLOAT, FLOAT(0.0), NULL},
    {"bidirectional", ARG_BOOL, BOOL(0), NULL},
    DEVICE_DTYPE,
};

static const ArgSpec transformer_encoder_args[] = {
    {"d_model", ARG_INT, REQUIRED, NULL},
    {"nhead", ARG_INT, REQUIRED, NULL},
    {"dim_feedforward", ARG_INT, INT(2048), NULL},
    {"dropout", ARG_FLOAT, FLOAT(0.1), NULL},
    {"activation", ARG_STRING, STR("relu"), "relu gelu"},
    {"layer_norm_eps", ARG_FLOAT, FLOAT(1e-5), NULL},
    {"batch_first", ARG_BOOL, BOOL(0), NULL},
    {"norm_first", ARG_BOOL, BOOL(0), NULL},
    {"bias", ARG_BOOL, BOOL(1), NULL},
    DEVICE_DTYPE,
};

#define SIG(args) {args, (int)(sizeof args / sizeof args[0]), false, NULL}
#define NO_ARGS {NULL, 0, false, NULL}

/* Indexed by OpKind; the static_assert below keeps it in step with layers.def. */
static const LayerSignature signatures[] = {
    [OP_CONV2D] = SIG(conv2d_args),
    [OP_MAXPOOL2D] = SIG(maxpool2d_args),
    [OP_AVGPOOL2D] = SIG(avgpool2d_args),
    [OP_ADAPTIVEAVGPOOL2D] = SIG(adaptiveavgpool2d_args),
    [OP_RELU] = SIG(inplace_args),
    [OP_RELU6] = SIG(inplace_args),
    [OP_LEAKYRELU] = SIG(leakyrelu_args),
    [OP_SIGMOID] = NO_ARGS,
    [OP_TANH] = NO_ARGS,
    [OP_GELU] = SIG(gelu_args),
    [OP_SILU] = SIG(inplace_args),
    [OP_SOFTMAX] = SIG(softmax_args),
    [OP_LOGSOFTMAX] = SIG(softmax_args),
    [OP_BATCHNORM1D] = SIG(batchnorm_args),
    [OP_BATCHNORM2D] = SIG(batchnorm_args),
    [OP_LAYERNORM] = SIG(layernorm_args),
    [OP_LINEAR] = SIG(linear_args),
    [OP_LAZYLINEAR] = SIG(lazylinear_args),
    [OP_IDENTITY] = {NULL, 0, true, NULL},
    [OP_FLATTEN] = SIG(flatten_args),
    [OP_DROPOUT] = SIG(dropout_args),
    [OP_DROPOUT2D] = SIG(dropout_args),
    [OP_EMBEDDING] = SIG(embedding_args),
    [OP_EMBEDDINGBAG] = SIG(embeddingbag_args),
    [OP_RNN] = SIG(rnn_args),
    [OP_LSTM] = SIG(lstm_args),
    [OP_GRU] = SIG(gru_args),
    [OP_TRANSFORMERENCODERLAYER] = SIG(transformer_encoder_args),
    [OP_INPUT] = NO_ARGS,
};
_Static_assert(sizeof signatures / sizeof signatures[0] == OP_COUNT, "a layer in layers.def has no signature");

static const char *const op_names[] = {
#define LAYER(E, Name, rule) [OP_##E] = #Name,
#include "layers.def"
#undef LAYER
    [OP_INPUT] = "input",
};
_Static_assert(sizeof op_names / sizeof op_names[0] == OP_COUNT, "op_names out of step with layers.def");

const char *op_name(OpKind op) { return op < OP_COUNT ? op_names[op] : "?"; }

const LayerSignature *op_signature(OpKind op) { return &signatures[op]; }

OpKind op_lookup(const char *name)
{
    for (int op = 0; op < OP_INPUT; op++)
        if (strcmp(op_names[op], name) == 0) return (OpKind)op;
    return OP_COUNT;
}

int op_all_names(const char **names, int max)
{
    int n = 0;
    for (int op = 0; op < OP_INPUT && n < max; op++) names[n++] = op_names[op];
    return n;
}

const BoundArg *node_arg(const Node *n, const char *name)
{
    const LayerSignature *sig = op_signature(n->op);
    for (int i = 0; i < sig->nargs; i++)
        if (strcmp(sig->args[i].name, name) == 0) return &n->args[i];
    LAYERC_UNREACHABLE(name);
}

const Param *node_param(const Node *n, const char *suffix)
{
    size_t prefix = strlen(n->name);
    for (int i = 0; i < n->nparams; i++) {
        const char *key = n->params[i].key;
        if (strncmp(key, n->name, prefix) == 0 && key[prefix] == '.' && strcmp(key + prefix + 1, suffix) == 0)
            return &n->params[i];
    }
    return NULL;
}
