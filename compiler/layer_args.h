/* layer_args.h - the constructor signature of every layer, exactly as torch.nn
 * declares it: positional order, keyword names and defaults.
 *
 * Each signature is a list of X(name, type, default, choices) entries.  From
 * one list come the ArgSpec table bind.c binds a call against (layer_args.c)
 * and a struct with one BoundArg field per argument, in the same order, that
 * overlays the node's bound arguments: a shape rule reads
 *     const Conv2dArgs *a = NODE_ARGS(n, Conv2dArgs);   a->kernel_size.ints[0]
 * so a misspelt argument is a compile error, not a run-time lookup.  The
 * layer table (layers.def) names each layer's signature.
 */
#ifndef LAYERC_LAYER_ARGS_H
#define LAYERC_LAYER_ARGS_H

#include "graph.h"

/* Defaults: the three ArgSpec fields def_kind, def_num, def_str. */
#define REQUIRED DEF_REQUIRED, 0, NULL
#define NONE DEF_NONE, 0, NULL
#define INT(v) DEF_INT, (v), NULL
#define FLOAT(v) DEF_FLOAT, (v), NULL
#define BOOL(v) DEF_BOOL, (v), NULL
#define STR(s) DEF_STRING, 0, (s)
#define DEVICE_DTYPE(X) X(device, ARG_NONE_ONLY, NONE, NULL) X(dtype, ARG_NONE_ONLY, NONE, NULL)

#define Conv2dArgs_LIST(X)                                                         \
    X(in_channels, ARG_INT, REQUIRED, NULL)                                        \
    X(out_channels, ARG_INT, REQUIRED, NULL)                                       \
    X(kernel_size, ARG_PAIR, REQUIRED, NULL)                                       \
    X(stride, ARG_PAIR, INT(1), NULL)                                              \
    X(padding, ARG_PADDING, INT(0), NULL)                                          \
    X(dilation, ARG_PAIR, INT(1), NULL)                                            \
    X(groups, ARG_INT, INT(1), NULL)                                               \
    X(bias, ARG_BOOL, BOOL(1), NULL)                                               \
    X(padding_mode, ARG_STRING, STR("zeros"), PAD_MODE_NAMES)                      \
    DEVICE_DTYPE(X)

#define MaxPool2dArgs_LIST(X)                                                      \
    X(kernel_size, ARG_PAIR, REQUIRED, NULL)                                       \
    X(stride, ARG_OPT_PAIR, NONE, NULL)                                            \
    X(padding, ARG_PAIR, INT(0), NULL)                                             \
    X(dilation, ARG_PAIR, INT(1), NULL)                                            \
    X(return_indices, ARG_BOOL, BOOL(0), NULL)                                     \
    X(ceil_mode, ARG_BOOL, BOOL(0), NULL)

#define AvgPool2dArgs_LIST(X)                                                      \
    X(kernel_size, ARG_PAIR, REQUIRED, NULL)                                       \
    X(stride, ARG_OPT_PAIR, NONE, NULL)                                            \
    X(padding, ARG_PAIR, INT(0), NULL)                                             \
    X(ceil_mode, ARG_BOOL, BOOL(0), NULL)                                          \
    X(count_include_pad, ARG_BOOL, BOOL(1), NULL)                                  \
    X(divisor_override, ARG_OPT_INT, NONE, NULL)

#define AdaptiveAvgPool2dArgs_LIST(X) X(output_size, ARG_OPT_SIZE2, REQUIRED, NULL)

#define NoArgs_LIST(X)
#define InplaceArgs_LIST(X) X(inplace, ARG_BOOL, BOOL(0), NULL)

#define LeakyReluArgs_LIST(X)                                                      \
    X(negative_slope, ARG_FLOAT, FLOAT(0.01), NULL)                                \
    X(inplace, ARG_BOOL, BOOL(0), NULL)

#define GeluArgs_LIST(X) X(approximate, ARG_STRING, STR("none"), "none tanh")
#define SoftmaxArgs_LIST(X) X(dim, ARG_OPT_INT, NONE, NULL)

#define BatchNormArgs_LIST(X)                                                      \
    X(num_features, ARG_INT, REQUIRED, NULL)                                       \
    X(eps, ARG_FLOAT, FLOAT(1e-5), NULL)                                           \
    X(momentum, ARG_OPT_FLOAT, FLOAT(0.1), NULL)                                   \
    X(affine, ARG_BOOL, BOOL(1), NULL)                                             \
    X(track_running_stats, ARG_BOOL, BOOL(1), NULL)                                \
    DEVICE_DTYPE(X)

#define LayerNormArgs_LIST(X)                                                      \
    X(normalized_shape, ARG_SHAPE, REQUIRED, NULL)                                 \
    X(eps, ARG_FLOAT, FLOAT(1e-5), NULL)                                           \
    X(elementwise_affine, ARG_BOOL, BOOL(1), NULL)                                 \
    X(bias, ARG_BOOL, BOOL(1), NULL)                                               \
    DEVICE_DTYPE(X)

#define LinearArgs_LIST(X)                                                         \
    X(in_features, ARG_INT, REQUIRED, NULL)                                        \
    X(out_features, ARG_INT, REQUIRED, NULL)                                       \
    X(bias, ARG_BOOL, BOOL(1), NULL)                                               \
    DEVICE_DTYPE(X)

#define LazyLinearArgs_LIST(X)                                                     \
    X(out_features, ARG_INT, REQUIRED, NULL)                                       \
    X(bias, ARG_BOOL, BOOL(1), NULL)                                               \
    DEVICE_DTYPE(X)

#define FlattenArgs_LIST(X)                                                        \
    X(start_dim, ARG_INT, INT(1), NULL)                                            \
    X(end_dim, ARG_INT, INT(-1), NULL)

/* layerc's own layers for sequence outputs, after torch.select and torch.mean */
#define SelectArgs_LIST(X)                                                         \
    X(dim, ARG_INT, REQUIRED, NULL)                                                \
    X(index, ARG_INT, REQUIRED, NULL)

#define MeanArgs_LIST(X)                                                           \
    X(dim, ARG_INT, REQUIRED, NULL)                                                \
    X(keepdim, ARG_BOOL, BOOL(0), NULL)

#define BilinearArgs_LIST(X)                                                       \
    X(in1_features, ARG_INT, REQUIRED, NULL)                                       \
    X(in2_features, ARG_INT, REQUIRED, NULL)                                       \
    X(out_features, ARG_INT, REQUIRED, NULL)                                       \
    X(bias, ARG_BOOL, BOOL(1), NULL)                                               \
    DEVICE_DTYPE(X)

/* torch.cat(tensors, dim=0): the tensors are the node's inputs */
#define CatArgs_LIST(X) X(dim, ARG_INT, INT(0), NULL)

#define DropoutArgs_LIST(X)                                                        \
    X(p, ARG_FLOAT, FLOAT(0.5), NULL)                                              \
    X(inplace, ARG_BOOL, BOOL(0), NULL)

#define EmbeddingArgs_LIST(X)                                                      \
    X(num_embeddings, ARG_INT, REQUIRED, NULL)                                     \
    X(embedding_dim, ARG_INT, REQUIRED, NULL)                                      \
    X(padding_idx, ARG_OPT_INT, NONE, NULL)                                        \
    X(max_norm, ARG_OPT_FLOAT, NONE, NULL)                                         \
    X(norm_type, ARG_FLOAT, FLOAT(2.0), NULL)                                      \
    X(scale_grad_by_freq, ARG_BOOL, BOOL(0), NULL)                                 \
    X(sparse, ARG_BOOL, BOOL(0), NULL)                                             \
    X(_weight, ARG_NONE_ONLY, NONE, NULL)                                          \
    X(_freeze, ARG_BOOL, BOOL(0), NULL)                                            \
    DEVICE_DTYPE(X)

#define EmbeddingBagArgs_LIST(X)                                                   \
    X(num_embeddings, ARG_INT, REQUIRED, NULL)                                     \
    X(embedding_dim, ARG_INT, REQUIRED, NULL)                                      \
    X(max_norm, ARG_OPT_FLOAT, NONE, NULL)                                         \
    X(norm_type, ARG_FLOAT, FLOAT(2.0), NULL)                                      \
    X(scale_grad_by_freq, ARG_BOOL, BOOL(0), NULL)                                 \
    X(mode, ARG_STRING, STR("mean"), "sum mean max")                               \
    X(sparse, ARG_BOOL, BOOL(0), NULL)                                             \
    X(_weight, ARG_NONE_ONLY, NONE, NULL)                                          \
    X(include_last_offset, ARG_BOOL, BOOL(0), NULL)                                \
    X(padding_idx, ARG_OPT_INT, NONE, NULL)                                        \
    DEVICE_DTYPE(X)

#define RnnArgs_LIST(X)                                                            \
    X(input_size, ARG_INT, REQUIRED, NULL)                                         \
    X(hidden_size, ARG_INT, REQUIRED, NULL)                                        \
    X(num_layers, ARG_INT, INT(1), NULL)                                           \
    X(nonlinearity, ARG_STRING, STR("tanh"), "tanh relu")                          \
    X(bias, ARG_BOOL, BOOL(1), NULL)                                               \
    X(batch_first, ARG_BOOL, BOOL(0), NULL)                                        \
    X(dropout, ARG_FLOAT, FLOAT(0.0), NULL)                                        \
    X(bidirectional, ARG_BOOL, BOOL(0), NULL)                                      \
    DEVICE_DTYPE(X)

/* LSTM's arguments are GRU's and proj_size. */
#define GRU_AND_LSTM_ARGS(X)                                                       \
    X(input_size, ARG_INT, REQUIRED, NULL)                                         \
    X(hidden_size, ARG_INT, REQUIRED, NULL)                                        \
    X(num_layers, ARG_INT, INT(1), NULL)                                           \
    X(bias, ARG_BOOL, BOOL(1), NULL)                                               \
    X(batch_first, ARG_BOOL, BOOL(0), NULL)                                        \
    X(dropout, ARG_FLOAT, FLOAT(0.0), NULL)                                        \
    X(bidirectional, ARG_BOOL, BOOL(0), NULL)
#define LstmArgs_LIST(X) GRU_AND_LSTM_ARGS(X) X(proj_size, ARG_INT, INT(0), NULL) DEVICE_DTYPE(X)
#define GruArgs_LIST(X) GRU_AND_LSTM_ARGS(X) DEVICE_DTYPE(X)

#define TransformerEncoderArgs_LIST(X)                                             \
    X(d_model, ARG_INT, REQUIRED, NULL)                                            \
    X(nhead, ARG_INT, REQUIRED, NULL)                                              \
    X(dim_feedforward, ARG_INT, INT(2048), NULL)                                   \
    X(dropout, ARG_FLOAT, FLOAT(0.1), NULL)                                        \
    X(activation, ARG_STRING, STR("relu"), "relu gelu")                            \
    X(layer_norm_eps, ARG_FLOAT, FLOAT(1e-5), NULL)                                \
    X(batch_first, ARG_BOOL, BOOL(0), NULL)                                        \
    X(norm_first, ARG_BOOL, BOOL(0), NULL)                                         \
    X(bias, ARG_BOOL, BOOL(1), NULL)                                               \
    DEVICE_DTYPE(X)

/* Every signature, once. */
#define SIGNATURES(S)                                                              \
    S(Conv2dArgs) S(MaxPool2dArgs) S(AvgPool2dArgs) S(AdaptiveAvgPool2dArgs)      \
    S(NoArgs) S(InplaceArgs) S(LeakyReluArgs) S(GeluArgs) S(SoftmaxArgs)           \
    S(BatchNormArgs) S(LayerNormArgs) S(LinearArgs) S(LazyLinearArgs)              \
    S(FlattenArgs) S(SelectArgs) S(MeanArgs) S(BilinearArgs) S(CatArgs) S(DropoutArgs) S(EmbeddingArgs) S(EmbeddingBagArgs)             \
    S(RnnArgs) S(LstmArgs) S(GruArgs) S(TransformerEncoderArgs)

typedef enum {
#define SIGNATURE_ID(Sig) SIG_##Sig,
    SIGNATURES(SIGNATURE_ID)
#undef SIGNATURE_ID
    SIG_COUNT
} SignatureId;

/* One BoundArg field per argument, in the signature's order (the layout of Node.args). */
#define ARG_FIELD(name, type, def, choices) BoundArg name;
#define SIGNATURE_STRUCT(Sig) typedef struct Sig { Sig##_LIST(ARG_FIELD) } Sig;
SIGNATURES(SIGNATURE_STRUCT)
#undef SIGNATURE_STRUCT
#undef ARG_FIELD

/* The arguments of node n, whose layer has signature Sig (a compiler bug aborts otherwise). */
#define NODE_ARGS(n, Sig) ((const Sig *)node_args_of((n), SIG_##Sig))
const BoundArg *node_args_of(const Node *n, SignatureId sig);
/* The name of argument a of node n ("kernel_size"), for messages. */
const char *node_arg_name(const Node *n, const BoundArg *a);

#endif
