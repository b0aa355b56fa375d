/* rules_sequence.c - shape rules of the sequence layers: Embedding,
 * EmbeddingBag, RNN/LSTM/GRU (the stack continues with the output sequence)
 * and TransformerEncoderLayer.  Parameter names and order follow PyTorch's
 * state_dict. */
#include <string.h>

#include "infer.h"
#include "layer_args.h"

/* Far beyond any trained model; keeps the parameter list (4 tensors a layer) small. */
enum { MAX_RECURRENT_LAYERS = 1024 };

static bool expect_fraction(InferCtx *ic, Node *n, const BoundArg *arg)
{
    double p = arg->num;
    if (p >= 0.0 && p <= 1.0) return true;
    node_error(ic, n, arg->loc, "'%s' is a probability between 0 and 1, found %g", node_arg_name(n, arg), p);
    return false;
}

/* The arguments Embedding and EmbeddingBag share. */
typedef struct EmbeddingCommonArgs {
    const BoundArg *num_embeddings, *embedding_dim, *padding_idx, *max_norm, *norm_type;
} EmbeddingCommonArgs;

static bool embedding_common(InferCtx *ic, Node *n, EmbeddingAttrs *ea, const EmbeddingCommonArgs *a)
{
    if (!expect_dtype(ic, n, DT_I64) || !expect_positive(ic, n, a->num_embeddings) || !expect_positive(ic, n, a->embedding_dim))
        return false;
    ea->num_embeddings = a->num_embeddings->ints[0];
    ea->embedding_dim = a->embedding_dim->ints[0];
    const BoundArg *pad = a->padding_idx;
    ea->padding_idx = -1;
    if (!pad->is_none) {
        int64_t p = pad->ints[0];
        if (p < -ea->num_embeddings || p >= ea->num_embeddings) {
            node_error(ic, n, pad->loc, "padding_idx must be within num_embeddings (%lld to %lld), found %lld",
                       (long long)-ea->num_embeddings, (long long)(ea->num_embeddings - 1), (long long)p);
            return false;
        }
        ea->padding_idx = p < 0 ? p + ea->num_embeddings : p;
    }
    ea->max_norm = a->max_norm->is_none ? -1.0 : a->max_norm->num;
    ea->norm_type = a->norm_type->num;
    add_param2(ic, n, "weight", ea->num_embeddings, ea->embedding_dim);
    return true;
}

/* Embedding: i64 [*] -> f32 [*, embedding_dim] */
bool rule_embedding(InferCtx *ic, Node *n)
{
    const Shape *in = input_shape(n);
    const EmbeddingArgs *a = NODE_ARGS(n, EmbeddingArgs);
    EmbeddingCommonArgs common = {&a->num_embeddings, &a->embedding_dim, &a->padding_idx, &a->max_norm, &a->norm_type};
    if (!embedding_common(ic, n, &n->attr.emb, &common)) return false;
    if (in->rank == MAX_RANK) {
        node_error(ic, n, n->op_loc, "its output would have more than %d dimensions", MAX_RANK);
        return false;
    }
    n->shape = *in;
    n->shape.dims[n->shape.rank++] = n->attr.emb.embedding_dim;
    return true;
}

/* EmbeddingBag without offsets: i64 [B, L] -> f32 [B, embedding_dim] */
bool rule_embeddingbag(InferCtx *ic, Node *n)
{
    EmbeddingAttrs *ea = &n->attr.emb;
    const Shape *in = input_shape(n);
    if (in->rank == 1) {
        node_error(ic, n, n->op_loc, "a 1-D input needs an offsets tensor, a second input that a layer stack cannot pass (%s)",
                   describe_tensor(ic, n->inputs[0]));
        diag_note(ic->diag, n->op_loc, "give it a 2-D input [bags, indices_per_bag] instead");
        return false;
    }
    const EmbeddingBagArgs *a = NODE_ARGS(n, EmbeddingBagArgs);
    EmbeddingCommonArgs common = {&a->num_embeddings, &a->embedding_dim, &a->padding_idx, &a->max_norm, &a->norm_type};
    if (!expect_rank(ic, n, 2, 2, "[bags, indices_per_bag]") || !embedding_common(ic, n, ea, &common)) return false;
    const char *mode = a->mode.str;
    ea->mode = strcmp(mode, "sum") == 0 ? BAG_SUM : strcmp(mode, "max") == 0 ? BAG_MAX : BAG_MEAN;
    ea->include_last_offset = a->include_last_offset.ints[0];
    n->shape = *in;
    n->shape.dims[1] = ea->embedding_dim;
    return true;
}

static int gate_count(OpKind op) { return op == OP_LSTM ? 4 : op == OP_GRU ? 3 : 1; }

static void recurrent_params(InferCtx *ic, Node *n, const RecurrentAttrs *ra)
{
    int64_t gates = sat_mul(gate_count(n->op), ra->hidden_size);
    int64_t out_size = ra->proj_size > 0 ? ra->proj_size : ra->hidden_size;
    int dirs = ra->bidirectional ? 2 : 1;
    for (int64_t layer = 0; layer < ra->num_layers; layer++) {
        int64_t layer_in = layer == 0 ? ra->input_size : sat_mul(out_size, dirs);
        for (int dir = 0; dir < dirs; dir++) {
            const char *sfx = dir ? "_reverse" : "";
            long long l = (long long)layer;
            add_param2(ic, n, arena_printf(ic->arena, "weight_ih_l%lld%s", l, sfx), gates, layer_in);
            add_param2(ic, n, arena_printf(ic->arena, "weight_hh_l%lld%s", l, sfx), gates, out_size);
            if (ra->bias) {
                add_param1(ic, n, arena_printf(ic->arena, "bias_ih_l%lld%s", l, sfx), gates, false);
                add_param1(ic, n, arena_printf(ic->arena, "bias_hh_l%lld%s", l, sfx), gates, false);
            }
            if (ra->proj_size > 0) add_param2(ic, n, arena_printf(ic->arena, "weight_hr_l%lld%s", l, sfx), ra->proj_size, ra->hidden_size);
            int64_t per_step = sat_add(sat_mul(gates, sat_add(layer_in, out_size)), sat_mul(ra->proj_size, ra->hidden_size));
            n->macs = sat_add(n->macs, per_step);
        }
    }
}

/* The arguments RNN, LSTM and GRU share, and the two only one of them has (else NULL). */
typedef struct RecurrentArgs {
    const BoundArg *input_size, *hidden_size, *num_layers, *bias, *batch_first, *dropout, *bidirectional;
    const BoundArg *nonlinearity, *proj_size;
} RecurrentArgs;

#define RECURRENT_COMMON(a) \
    &a->input_size, &a->hidden_size, &a->num_layers, &a->bias, &a->batch_first, &a->dropout, &a->bidirectional

static RecurrentArgs recurrent_args(const Node *n)
{
    if (n->op == OP_RNN) {
        const RnnArgs *a = NODE_ARGS(n, RnnArgs);
        return (RecurrentArgs){RECURRENT_COMMON(a), .nonlinearity = &a->nonlinearity};
    }
    if (n->op == OP_LSTM) {
        const LstmArgs *a = NODE_ARGS(n, LstmArgs);
        return (RecurrentArgs){RECURRENT_COMMON(a), .proj_size = &a->proj_size};
    }
    const GruArgs *a = NODE_ARGS(n, GruArgs);
    return (RecurrentArgs){RECURRENT_COMMON(a), .nonlinearity = NULL, .proj_size = NULL};
}

static bool recurrent_attrs(InferCtx *ic, Node *n, RecurrentAttrs *ra, const RecurrentArgs *a)
{
    if (!expect_positive(ic, n, a->input_size) || !expect_positive(ic, n, a->hidden_size) ||
        !expect_positive(ic, n, a->num_layers) || !expect_fraction(ic, n, a->dropout))
        return false;
    if (a->num_layers->ints[0] > MAX_RECURRENT_LAYERS) {
        node_error(ic, n, a->num_layers->loc, "num_layers must be at most %d, found %lld", MAX_RECURRENT_LAYERS,
                   (long long)a->num_layers->ints[0]);
        return false;
    }
    ra->input_size = a->input_size->ints[0];
    ra->hidden_size = a->hidden_size->ints[0];
    ra->num_layers = a->num_layers->ints[0];
    ra->bias = a->bias->ints[0];
    ra->batch_first = a->batch_first->ints[0];
    ra->bidirectional = a->bidirectional->ints[0];
    ra->dropout = a->dropout->num;
    if (a->nonlinearity) ra->relu = strcmp(a->nonlinearity->str, "relu") == 0;
    if (a->proj_size) {
        const BoundArg *proj = a->proj_size;
        ra->proj_size = proj->ints[0];
        if (ra->proj_size < 0 || ra->proj_size >= ra->hidden_size) {
            node_error(ic, n, proj->loc, "proj_size must be 0 (none) or smaller than hidden_size (%lld), found %lld",
                       (long long)ra->hidden_size, (long long)ra->proj_size);
            return false;
        }
    }
    if (ra->dropout > 0 && ra->num_layers == 1)
        node_warning(ic, n, a->dropout->loc, "dropout only acts between stacked layers, and num_layers is 1");
    return true;
}

/* RNN/LSTM/GRU: [L, N, input_size] (or [N, L, ...] with batch_first, or
 * unbatched [L, input_size]) -> the output sequence [.., D * H_out]. */
bool rule_recurrent(InferCtx *ic, Node *n)
{
    RecurrentAttrs *ra = &n->attr.rnn;
    RecurrentArgs a = recurrent_args(n);
    if (!recurrent_attrs(ic, n, ra, &a)) return false;
    const char *layout = ra->batch_first ? "[N, L, input_size] or [L, input_size]" : "[L, N, input_size] or [L, input_size]";
    if (!expect_dtype(ic, n, DT_F32) || !expect_rank(ic, n, 2, 3, layout)) return false;
    const Shape *in = input_shape(n);
    int64_t have = in->dims[in->rank - 1];
    int64_t out_size = ra->proj_size > 0 ? ra->proj_size : ra->hidden_size;
    n->shape = *in;
    n->shape.dims[in->rank - 1] = sat_mul(ra->bidirectional ? 2 : 1, out_size);
    if (have != ra->input_size) {
        node_error(ic, n, a.input_size->loc, "input_size is %lld but its input has %lld features (%s)",
                   (long long)ra->input_size, (long long)have, describe_tensor(ic, n->inputs[0]));
        n->recovered = true;
        return false;
    }
    recurrent_params(ic, n, ra);
    int64_t steps = in->rank == 3 ? sat_mul(in->dims[0], in->dims[1]) : in->dims[0];
    n->macs = sat_mul(n->macs, steps);
    explain(ic, n, "features: %s%lld = %lld", ra->bidirectional ? "2 directions * " : "", (long long)out_size,
            (long long)n->shape.dims[in->rank - 1]);
    return true;
}

/* TransformerEncoderLayer: [L, N, d_model] ([N, L, d_model] with batch_first,
 * or unbatched [L, d_model]) -> same shape. */
bool rule_transformer_encoder(InferCtx *ic, Node *n)
{
    TransformerAttrs *ta = &n->attr.tfm;
    const TransformerEncoderArgs *a = NODE_ARGS(n, TransformerEncoderArgs);
    if (!expect_positive(ic, n, &a->d_model) || !expect_positive(ic, n, &a->nhead) ||
        !expect_positive(ic, n, &a->dim_feedforward) || !expect_fraction(ic, n, &a->dropout))
        return false;
    ta->d_model = a->d_model.ints[0];
    ta->nhead = a->nhead.ints[0];
    ta->dim_feedforward = a->dim_feedforward.ints[0];
    ta->gelu = strcmp(a->activation.str, "gelu") == 0;
    ta->layer_norm_eps = a->layer_norm_eps.num;
    ta->batch_first = a->batch_first.ints[0];
    ta->norm_first = a->norm_first.ints[0];
    ta->bias = a->bias.ints[0];
    ta->dropout = a->dropout.num;
    if (ta->d_model % ta->nhead != 0) {
        node_error(ic, n, a->nhead.loc, "d_model (%lld) must be divisible by nhead (%lld)", (long long)ta->d_model,
                   (long long)ta->nhead);
        return false;
    }
    const char *layout = ta->batch_first ? "[N, L, d_model] or [L, d_model]" : "[L, N, d_model] or [L, d_model]";
    if (!expect_dtype(ic, n, DT_F32) || !expect_rank(ic, n, 2, 3, layout)) return false;
    const Shape *in = input_shape(n);
    int64_t d = ta->d_model, ff = ta->dim_feedforward;
    n->shape = *in;
    if (in->dims[in->rank - 1] != d) {
        node_error(ic, n, a->d_model.loc, "d_model is %lld but its input has %lld features (%s)", (long long)d,
                   (long long)in->dims[in->rank - 1], describe_tensor(ic, n->inputs[0]));
        n->recovered = true;
        return false;
    }
    add_param2(ic, n, "self_attn.in_proj_weight", sat_mul(3, d), d);
    if (ta->bias) add_param1(ic, n, "self_attn.in_proj_bias", sat_mul(3, d), false);
    add_param2(ic, n, "self_attn.out_proj.weight", d, d);
    if (ta->bias) add_param1(ic, n, "self_attn.out_proj.bias", d, false);
    add_param2(ic, n, "linear1.weight", ff, d);
    if (ta->bias) add_param1(ic, n, "linear1.bias", ff, false);
    add_param2(ic, n, "linear2.weight", d, ff);
    if (ta->bias) add_param1(ic, n, "linear2.bias", d, false);
    const char *norms[4] = {"norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"};
    for (int i = 0; i < 4; i++)
        if (ta->bias || i % 2 == 0) add_param1(ic, n, norms[i], d, false);

    int64_t seq = in->rank == 3 && !ta->batch_first ? in->dims[0] : in->dims[in->rank - 2];
    int64_t tokens = in->rank == 3 ? sat_mul(in->dims[0], in->dims[1]) : in->dims[0];
    int64_t projections = sat_mul(tokens, sat_add(sat_mul(sat_mul(4, d), d), sat_mul(sat_mul(2, d), ff)));
    int64_t attention = sat_mul(sat_mul(2, tokens), sat_mul(seq, d)); /* Q.K^T and weights.V */
    n->macs = sat_add(projections, attention);
    return true;
}
