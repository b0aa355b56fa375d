/* rules_sequence.c - shape rules of the sequence layers: Embedding,
 * EmbeddingBag, RNN/LSTM/GRU (the stack continues with the output sequence)
 * and TransformerEncoderLayer.  Parameter names and order follow PyTorch's
 * state_dict. */
#include <string.h>

#include "infer.h"

/* Far beyond any trained model; keeps the parameter list (4 tensors a layer) small. */
enum { MAX_RECURRENT_LAYERS = 1024 };

static bool expect_fraction(InferCtx *ic, Node *n, const char *arg)
{
    double p = node_arg(n, arg)->num;
    if (p >= 0.0 && p <= 1.0) return true;
    node_error(ic, n, node_arg(n, arg)->loc, "'%s' is a probability between 0 and 1, found %g", arg, p);
    return false;
}

static bool embedding_common(InferCtx *ic, Node *n, EmbeddingAttrs *ea)
{
    if (!expect_dtype(ic, n, DT_I64) || !expect_positive(ic, n, "num_embeddings") || !expect_positive(ic, n, "embedding_dim"))
        return false;
    ea->num_embeddings = node_arg(n, "num_embeddings")->ints[0];
    ea->embedding_dim = node_arg(n, "embedding_dim")->ints[0];
    const BoundArg *pad = node_arg(n, "padding_idx");
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
    const BoundArg *max_norm = node_arg(n, "max_norm");
    ea->max_norm = max_norm->is_none ? -1.0 : max_norm->num;
    ea->norm_type = node_arg(n, "norm_type")->num;
    add_param2(ic, n, "weight", ea->num_embeddings, ea->embedding_dim);
    return true;
}

/* Embedding: i64 [*] -> f32 [*, embedding_dim] */
bool rule_embedding(InferCtx *ic, Node *n)
{
    const Shape *in = input_shape(n);
    if (!embedding_common(ic, n, &n->attr.emb)) return false;
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
    if (!expect_rank(ic, n, 2, 2, "[bags, indices_per_bag]") || !embedding_common(ic, n, ea)) return false;
    const char *mode = node_arg(n, "mode")->str;
    ea->mode = strcmp(mode, "sum") == 0 ? BAG_SUM : strcmp(mode, "max") == 0 ? BAG_MAX : BAG_MEAN;
    ea->include_last_offset = node_arg(n, "include_last_offset")->ints[0];
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

static bool recurrent_attrs(InferCtx *ic, Node *n, RecurrentAttrs *ra)
{
    if (!expect_positive(ic, n, "input_size") || !expect_positive(ic, n, "hidden_size") || !expect_positive(ic, n, "num_layers") ||
        !expect_fraction(ic, n, "dropout"))
        return false;
    if (node_arg(n, "num_layers")->ints[0] > MAX_RECURRENT_LAYERS) {
        node_error(ic, n, node_arg(n, "num_layers")->loc, "num_layers must be at most %d, found %lld", MAX_RECURRENT_LAYERS,
                   (long long)node_arg(n, "num_layers")->ints[0]);
        return false;
    }
    ra->input_size = node_arg(n, "input_size")->ints[0];
    ra->hidden_size = node_arg(n, "hidden_size")->ints[0];
    ra->num_layers = node_arg(n, "num_layers")->ints[0];
    ra->bias = node_arg(n, "bias")->ints[0];
    ra->batch_first = node_arg(n, "batch_first")->ints[0];
    ra->bidirectional = node_arg(n, "bidirectional")->ints[0];
    ra->dropout = node_arg(n, "dropout")->num;
    if (n->op == OP_RNN) ra->relu = strcmp(node_arg(n, "nonlinearity")->str, "relu") == 0;
    if (n->op == OP_LSTM) {
        const BoundArg *proj = node_arg(n, "proj_size");
        ra->proj_size = proj->ints[0];
        if (ra->proj_size < 0 || ra->proj_size >= ra->hidden_size) {
            node_error(ic, n, proj->loc, "proj_size must be 0 (none) or smaller than hidden_size (%lld), found %lld",
                       (long long)ra->hidden_size, (long long)ra->proj_size);
            return false;
        }
    }
    if (ra->dropout > 0 && ra->num_layers == 1)
        node_warning(ic, n, node_arg(n, "dropout")->loc, "dropout only acts between stacked layers, and num_layers is 1");
    return true;
}

/* RNN/LSTM/GRU: [L, N, input_size] (or [N, L, ...] with batch_first, or
 * unbatched [L, input_size]) -> the output sequence [.., D * H_out]. */
bool rule_recurrent(InferCtx *ic, Node *n)
{
    RecurrentAttrs *ra = &n->attr.rnn;
    if (!recurrent_attrs(ic, n, ra)) return false;
    const char *layout = ra->batch_first ? "[N, L, input_size] or [L, input_size]" : "[L, N, input_size] or [L, input_size]";
    if (!expect_dtype(ic, n, DT_F32) || !expect_rank(ic, n, 2, 3, layout)) return false;
    const Shape *in = input_shape(n);
    int64_t have = in->dims[in->rank - 1];
    int64_t out_size = ra->proj_size > 0 ? ra->proj_size : ra->hidden_size;
    n->shape = *in;
    n->shape.dims[in->rank - 1] = sat_mul(ra->bidirectional ? 2 : 1, out_size);
    if (have != ra->input_size) {
        node_error(ic, n, node_arg(n, "input_size")->loc, "input_size is %lld but its input has %lld features (%s)",
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
    if (!expect_positive(ic, n, "d_model") || !expect_positive(ic, n, "nhead") || !expect_positive(ic, n, "dim_feedforward") ||
        !expect_fraction(ic, n, "dropout"))
        return false;
    ta->d_model = node_arg(n, "d_model")->ints[0];
    ta->nhead = node_arg(n, "nhead")->ints[0];
    ta->dim_feedforward = node_arg(n, "dim_feedforward")->ints[0];
    ta->gelu = strcmp(node_arg(n, "activation")->str, "gelu") == 0;
    ta->layer_norm_eps = node_arg(n, "layer_norm_eps")->num;
    ta->batch_first = node_arg(n, "batch_first")->ints[0];
    ta->norm_first = node_arg(n, "norm_first")->ints[0];
    ta->bias = node_arg(n, "bias")->ints[0];
    ta->dropout = node_arg(n, "dropout")->num;
    if (ta->d_model % ta->nhead != 0) {
        node_error(ic, n, node_arg(n, "nhead")->loc, "d_model (%lld) must be divisible by nhead (%lld)", (long long)ta->d_model,
                   (long long)ta->nhead);
        return false;
    }
    const char *layout = ta->batch_first ? "[N, L, d_model] or [L, d_model]" : "[L, N, d_model] or [L, d_model]";
    if (!expect_dtype(ic, n, DT_F32) || !expect_rank(ic, n, 2, 3, layout)) return false;
    const Shape *in = input_shape(n);
    int64_t d = ta->d_model, ff = ta->dim_feedforward;
    n->shape = *in;
    if (in->dims[in->rank - 1] != d) {
        node_error(ic, n, node_arg(n, "d_model")->loc, "d_model is %lld but its input has %lld features (%s)", (long long)d,
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
