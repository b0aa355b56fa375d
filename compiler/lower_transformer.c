/* lower_transformer.c - the kernels of TransformerEncoderLayer (eval, no mask).
 *
 * Seven kernel steps over the layer's scratch memory, every projection a
 * packed, register-tiled GEMM (lower_gemm.h) over all tokens at once:
 *
 *   post-norm (norm_first=False)           norm_first=True
 *   QKV = x W_in^T + b_in                   A   = norm1(x)
 *   O   = attention(QKV)                    QKV = A W_in^T + b_in
 *   S   = O W_out^T + b_out + x             O   = attention(QKV)
 *   A   = norm1(S)                          S   = O W_out^T + b_out + x
 *   F   = act(A W_1^T + b_1)                A   = norm2(S)
 *   S   = F W_2^T + b_2 + A                 F   = act(A W_1^T + b_1)
 *   out = norm2(S)                          out = F W_2^T + b_2 + S
 *
 * The residual adds and the activation run in the GEMM's epilogue.  The
 * attention step's items are (sample, head): K of the head is transposed
 * into the item's slot, then per query row the scores q K^T / sqrt(head_dim)
 * (a broadcast-multiply-add over contiguous keys), softmax in that row, and
 * weights . V accumulated into the context row; its inner loops are
 * contiguous, for the loop vectoriser.
 *
 * Scratch memory (per batch unit): A, QKV, O, S, F, then the attention
 * slots: per (sample, head) K^T [head_dim][T] and scores [T].
 */
#include <math.h>

#include "ir_math.h"
#include "lower_gemm.h"
#include "lower_sequence.h"
#include "plan_memory.h"

typedef struct EncoderShape {
    SeqDims seq;
    int64_t d, ff, heads, head_dim;
    int64_t a_at, qkv_at, o_at, s_at, f_at, slots_at, bytes; /* scratch byte offsets */
} EncoderShape;

static EncoderShape encoder_shape(const Node *n)
{
    const TransformerAttrs *ta = &n->attr.tfm;
    EncoderShape s = {.seq = seq_dims(&n->inputs[0]->shape, ta->batch_first), .d = ta->d_model, .ff = ta->dim_feedforward,
                      .heads = ta->nhead};
    s.head_dim = s.d / s.heads;
    int64_t row_bytes = s.seq.rows * 4;
    s.a_at = 0;
    s.qkv_at = s.a_at + buffer_aligned(row_bytes * s.d);
    s.o_at = s.qkv_at + buffer_aligned(row_bytes * 3 * s.d);
    s.s_at = s.o_at + buffer_aligned(row_bytes * s.d);
    s.f_at = s.s_at + buffer_aligned(row_bytes * s.d);
    s.slots_at = s.f_at + buffer_aligned(row_bytes * s.ff);
    /* the keys of a slot are rounded up to whole vectors: at most 15 more a batch unit */
    s.bytes = s.slots_at + buffer_aligned(s.seq.samples * s.heads * (s.seq.steps + 15) * (s.head_dim + 1) * 4);
    return s;
}

int64_t transformer_scratch_bytes(const Node *n) { return encoder_shape(n).bytes; }

static const float *param_data(KernelBuilder *kb, const char *suffix)
{
    const Param *p = node_param(kb->node, suffix);
    return p ? p->data : NULL;
}

static Operand scratch_at(int64_t at) { return (Operand){BUF_SCRATCH, at}; }

static void emit_projection(KernelBuilder *kb, const EncoderShape *s, const char *what, const char *weight,
                            const char *bias, int64_t in_f, int64_t out_f, Operand src, Operand dst)
{
    MatmulStep m = {.what = what, .rows = s->seq.rows, .in_f = in_f, .out_f = out_f, .weight = param_data(kb, weight),
                    .bias = param_data(kb, bias), .src = src, .dst = dst};
    lower_matmul_step(kb, &m);
}

/* A projection whose result is added to `residual`. */
static void emit_projection_add(KernelBuilder *kb, const EncoderShape *s, const char *what, const char *weight,
                                const char *bias, int64_t in_f, Operand src, Operand residual, Operand dst)
{
    MatmulStep m = {.what = what, .rows = s->seq.rows, .in_f = in_f, .out_f = s->d, .weight = param_data(kb, weight),
                    .bias = param_data(kb, bias), .src = src, .dst = dst, .has_residual = true, .residual = residual};
    lower_matmul_step(kb, &m);
}

/* F = act(A W_1^T + b_1): relu or exact gelu in the epilogue. */
static void emit_feed_forward_in(KernelBuilder *kb, const EncoderShape *s)
{
    MatmulStep m = {.what = ".linear1", .rows = s->seq.rows, .in_f = s->d, .out_f = s->ff,
                    .weight = param_data(kb, "linear1.weight"), .bias = param_data(kb, "linear1.bias"),
                    .src = scratch_at(s->a_at), .dst = scratch_at(s->f_at), .has_activation = true,
                    .activation = kb->node->attr.tfm.gelu ? OP_GELU : OP_RELU};
    lower_matmul_step(kb, &m);
}

static void emit_norm(KernelBuilder *kb, const EncoderShape *s, const char *norm, Operand src, Operand dst)
{
    Ir *ir = kb->ir;
    const Param *w = node_param(kb->node, arena_printf(kb->arena, "%s.weight", norm));
    const Param *b = node_param(kb->node, arena_printf(kb->arena, "%s.bias", norm));
    LLVMValueRef weight = w ? lower_constant_floats(ir, w->data, s->d) : NULL;
    LLVMValueRef bias = b ? lower_constant_floats(ir, b->data, s->d) : NULL;
    KernelArgs a = kernel_begin(kb, arena_printf(kb->arena, ".%s", norm));
    emit_layernorm_rows(ir, kernel_operand(ir, &a, src), kernel_operand(ir, &a, dst), a.begin, a.end, s->d, weight, bias,
                        kb->node->attr.tfm.layer_norm_eps);
    kernel_end(kb, BUF_ALL, BUF_ALL, s->seq.rows, true, 6 * s->d);
}

/* ---- attention ---- */

/* Keys per slot row: T rounded up to whole vectors of the widest target, so
 * the scores are computed and softmaxed a vector at a time. */
enum { KEY_BLOCK_VECTORS = 4, CONTEXT_VECTORS = 4 };

typedef struct Attention {
    Ir *ir;
    const EncoderShape *s;
    SeqRuntime seq;
    LLVMValueRef keys;                  /* T rounded up to whole vectors */
    LLVMValueRef qkv, out, kt, scores;  /* kt [head_dim][keys], scores [keys]: the item's slot */
    LLVMValueRef sample, head_col;      /* head_col: the head's first column */
} Attention;

static LLVMValueRef qkv_at(Attention *at, LLVMValueRef t, int64_t part, LLVMValueRef k)
{
    Ir *ir = at->ir;
    LLVMValueRef row = seq_row(ir, &at->seq, t, at->sample);
    LLVMValueRef col = ir_add(ir, ir_add(ir, at->head_col, ir_i64(ir, part * at->s->d)), k);
    return ir_add(ir, ir_mul(ir, row, ir_i64(ir, 3 * at->s->d)), col);
}

/* K^T of the head, kt[k][j] = K[j][k], zero past the last key. */
static void emit_transpose_keys(Attention *at)
{
    Ir *ir = at->ir;
    int64_t hd = at->s->head_dim;
    LLVMBuildMemSet(ir->b, at->kt, LLVMConstInt(LLVMInt8TypeInContext(ir->ctx), 0, 0),
                    ir_mul(ir, at->keys, ir_i64(ir, hd * 4)), 4);
    IrLoop j = ir_loop_begin(ir, ir_i64(ir, 0), at->seq.steps, "key");
    IrLoop k = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, hd), "k");
    LLVMValueRef v = ir_load_f32(ir, at->qkv, qkv_at(at, j.index, 1, k.index));
    ir_store_f32(ir, at->kt, ir_add(ir, ir_mul(ir, k.index, at->keys), j.index), v);
    ir_loop_end(ir, &k);
    ir_loop_end(ir, &j);
}

/* scores[j0 ..] for `vectors` vectors of keys: q_i . k_j / sqrt(head_dim), one accumulator a vector. */
static void emit_score_vectors(Attention *at, LLVMValueRef i, LLVMValueRef j0, int vectors)
{
    Ir *ir = at->ir;
    int width = ir->vector_width;
    float scale = (float)(1.0 / sqrt((double)at->s->head_dim));
    LLVMValueRef acc[KEY_BLOCK_VECTORS];
    for (int v = 0; v < vectors; v++) acc[v] = ir_var(ir, ir_vec_type(ir), LLVMConstNull(ir_vec_type(ir)), "acc");
    IrLoop k = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, at->s->head_dim), "k");
    LLVMValueRef q = ir_splat(ir, ir_fmul(ir, ir_load_f32(ir, at->qkv, qkv_at(at, i, 0, k.index)), ir_f32(ir, scale)));
    LLVMValueRef kt_row = ir_add(ir, ir_mul(ir, k.index, at->keys), j0);
    for (int v = 0; v < vectors; v++) {
        LLVMValueRef kv = ir_load_vec(ir, at->kt, ir_add(ir, kt_row, ir_i64(ir, v * width)), width);
        LLVMBuildStore(ir->b, ir_fma(ir, q, kv, LLVMBuildLoad2(ir->b, ir_vec_type(ir), acc[v], "")), acc[v]);
    }
    ir_loop_end(ir, &k);
    for (int v = 0; v < vectors; v++)
        ir_store_vec(ir, at->scores, ir_add(ir, j0, ir_i64(ir, v * width)), LLVMBuildLoad2(ir->b, ir_vec_type(ir), acc[v], ""),
                     width);
}

/* Every score of query i: blocks of KEY_BLOCK_VECTORS vectors of keys, then single vectors; -inf past the last key. */
static void emit_scores(Attention *at, LLVMValueRef i)
{
    Ir *ir = at->ir;
    int64_t width = ir->vector_width, block = KEY_BLOCK_VECTORS * width;
    LLVMValueRef blocks = ir_div_const(ir, at->keys, block);
    IrLoop b = ir_loop_begin(ir, ir_i64(ir, 0), blocks, "keys");
    emit_score_vectors(at, i, ir_mul(ir, b.index, ir_i64(ir, block)), KEY_BLOCK_VECTORS);
    ir_loop_end(ir, &b);
    LLVMValueRef vectors = ir_div_const(ir, at->keys, width);
    IrLoop v = ir_loop_begin(ir, ir_mul(ir, blocks, ir_i64(ir, KEY_BLOCK_VECTORS)), vectors, "key_vector");
    emit_score_vectors(at, i, ir_mul(ir, v.index, ir_i64(ir, width)), 1);
    ir_loop_end(ir, &v);
    IrLoop pad = ir_loop_begin(ir, at->seq.steps, at->keys, "padding");
    ir_store_f32(ir, at->scores, pad.index, ir_f32(ir, -INFINITY));
    ir_loop_end(ir, &pad);
}

/* A loop over the vectors of scores; returns its index in floats. */
static IrLoop score_vectors_begin(Attention *at, const char *name)
{
    Ir *ir = at->ir;
    return ir_loop_begin(ir, ir_i64(ir, 0), ir_div_const(ir, at->keys, ir->vector_width), name);
}

/* scores = exp(scores - max), a vector at a time; returns 1 / their sum. */
static LLVMValueRef emit_softmax(Attention *at)
{
    Ir *ir = at->ir;
    LLVMBuilderRef b = ir->b;
    int width = ir->vector_width;
    LLVMTypeRef vt = ir_vec_type(ir);
    LLVMValueRef max = ir_var(ir, vt, ir_splat(ir, ir_f32(ir, -INFINITY)), "max");
    LLVMValueRef sum = ir_var(ir, vt, LLVMConstNull(vt), "sum");
    IrLoop j = score_vectors_begin(at, "max");
    LLVMValueRef s = ir_load_vec(ir, at->scores, ir_mul(ir, j.index, ir_i64(ir, width)), width);
    LLVMValueRef cur = LLVMBuildLoad2(b, vt, max, "");
    LLVMBuildStore(b, LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, s, cur, ""), s, cur, ""), max);
    ir_loop_end(ir, &j);
    LLVMValueRef m = ir_splat(ir, ir_reduce_max(ir, LLVMBuildLoad2(b, vt, max, "")));
    IrLoop e = score_vectors_begin(at, "exp");
    LLVMValueRef at_e = ir_mul(ir, e.index, ir_i64(ir, width));
    LLVMValueRef p = ir_exp(ir, LLVMBuildFSub(b, ir_load_vec(ir, at->scores, at_e, width), m, ""));
    ir_store_vec(ir, at->scores, at_e, p, width);
    LLVMBuildStore(b, ir_fadd(ir, LLVMBuildLoad2(b, vt, sum, ""), p), sum);
    ir_loop_end(ir, &e);
    return LLVMBuildFDiv(b, ir_f32(ir, 1.0), ir_reduce_add(ir, LLVMBuildLoad2(b, vt, sum, "")), "");
}

/* acc[set] += p_j v_j[col0, col0 + lanes) for key j. */
static void accumulate_value(Attention *at, LLVMValueRef acc[], LLVMValueRef j, LLVMValueRef col0, int lanes)
{
    Ir *ir = at->ir;
    int width = ir->vector_width;
    LLVMValueRef p = ir_splat(ir, ir_load_f32(ir, at->scores, j));
    LLVMValueRef vrow = ir_f32_ptr(ir, at->qkv, qkv_at(at, j, 2, col0));
    for (int v = 0; v * width < lanes; v++) {
        int n = lanes - v * width < width ? lanes - v * width : width;
        LLVMValueRef x = ir_load_vec(ir, vrow, ir_i64(ir, v * width), n);
        LLVMBuildStore(ir->b, ir_fma(ir, p, x, LLVMBuildLoad2(ir->b, ir_vec_type(ir), acc[v], "")), acc[v]);
    }
}

/* Columns [col0, col0 + lanes) of query i's context row, sum_j p_j v_j / sum:
 * two sets of accumulators in registers, for even and odd keys. */
static void emit_context_columns(Attention *at, LLVMValueRef i, LLVMValueRef inv_sum, LLVMValueRef col0, int lanes)
{
    Ir *ir = at->ir;
    LLVMBuilderRef b = ir->b;
    int width = ir->vector_width, nvec = (lanes + width - 1) / width;
    LLVMTypeRef vt = ir_vec_type(ir);
    LLVMValueRef even[CONTEXT_VECTORS], odd[CONTEXT_VECTORS];
    for (int v = 0; v < nvec; v++) {
        even[v] = ir_var(ir, vt, LLVMConstNull(vt), "even");
        odd[v] = ir_var(ir, vt, LLVMConstNull(vt), "odd");
    }
    IrLoop pair = ir_loop_begin(ir, ir_i64(ir, 0), ir_div_const(ir, at->seq.steps, 2), "keys");
    LLVMValueRef j = ir_mul(ir, pair.index, ir_i64(ir, 2));
    accumulate_value(at, even, j, col0, lanes);
    accumulate_value(at, odd, ir_add(ir, j, ir_i64(ir, 1)), col0, lanes);
    ir_loop_end(ir, &pair);
    LLVMValueRef last = ir_sub(ir, at->seq.steps, ir_i64(ir, 1));
    LLVMBasicBlockRef done = ir_if_begin(ir, LLVMBuildTrunc(b, at->seq.steps, ir->i1, "")); /* an odd count: the last key */
    accumulate_value(at, even, last, col0, lanes);
    ir_if_end(ir, done);
    LLVMValueRef row = seq_row(ir, &at->seq, i, at->sample);
    LLVMValueRef out = ir_f32_ptr(ir, at->out, ir_add(ir, ir_mul(ir, row, ir_i64(ir, at->s->d)), ir_add(ir, at->head_col, col0)));
    LLVMValueRef scale = ir_splat(ir, inv_sum);
    for (int v = 0; v < nvec; v++) {
        int n = lanes - v * width < width ? lanes - v * width : width;
        LLVMValueRef total = ir_fadd(ir, LLVMBuildLoad2(b, vt, even[v], ""), LLVMBuildLoad2(b, vt, odd[v], ""));
        ir_store_vec(ir, out, ir_i64(ir, v * width), ir_fmul(ir, total, scale), n);
    }
}

/* Query i's context row, in chunks of CONTEXT_VECTORS vectors of the head's columns. */
static void emit_context(Attention *at, LLVMValueRef i, LLVMValueRef inv_sum)
{
    Ir *ir = at->ir;
    int64_t chunk = CONTEXT_VECTORS * ir->vector_width, hd = at->s->head_dim;
    int64_t full = hd / chunk;
    if (full > 0) {
        IrLoop c = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, full), "columns");
        emit_context_columns(at, i, inv_sum, ir_mul(ir, c.index, ir_i64(ir, chunk)), (int)chunk);
        ir_loop_end(ir, &c);
    }
    if (hd % chunk) emit_context_columns(at, i, inv_sum, ir_i64(ir, full * chunk), (int)(hd % chunk));
}

/* Items (sample, head), sample major. */
static void emit_attention(KernelBuilder *kb, const EncoderShape *s)
{
    Ir *ir = kb->ir;
    KernelArgs a = kernel_begin(kb, ".attention");
    Attention at = {.ir = ir, .s = s, .seq = seq_runtime(ir, &s->seq, a.batch)};
    int64_t width = ir->vector_width;
    at.keys = ir_mul(ir, ir_div_const(ir, ir_add(ir, at.seq.steps, ir_i64(ir, width - 1)), width), ir_i64(ir, width));
    at.qkv = kernel_operand(ir, &a, scratch_at(s->qkv_at));
    at.out = kernel_operand(ir, &a, scratch_at(s->o_at));
    LLVMValueRef slots = kernel_operand(ir, &a, scratch_at(s->slots_at));
    LLVMValueRef slot_floats = ir_mul(ir, at.keys, ir_i64(ir, s->head_dim + 1));
    IrLoop item = ir_loop_begin(ir, a.begin, a.end, "item");
    at.sample = ir_div_const(ir, item.index, s->heads);
    at.head_col = ir_mul(ir, ir_rem_const(ir, item.index, s->heads), ir_i64(ir, s->head_dim));
    at.kt = ir_f32_ptr(ir, slots, ir_mul(ir, item.index, slot_floats));
    at.scores = ir_f32_ptr(ir, at.kt, ir_mul(ir, at.keys, ir_i64(ir, s->head_dim)));
    emit_transpose_keys(&at);
    IrLoop i = ir_loop_begin(ir, ir_i64(ir, 0), at.seq.steps, "query");
    emit_scores(&at, i.index);
    emit_context(&at, i.index, emit_softmax(&at));
    ir_loop_end(ir, &i);
    ir_loop_end(ir, &item);
    int64_t per_item = 4 * s->seq.steps * s->seq.steps * s->head_dim + 16 * s->seq.steps * s->seq.steps;
    kernel_end(kb, BUF_ALL, BUF_ALL, s->seq.samples * s->heads, s->seq.batch_first, per_item);
}

void lower_transformer_encoder(KernelBuilder *kb)
{
    EncoderShape s = encoder_shape(kb->node);
    Operand x = {BUF_INPUT, 0}, out = {BUF_OUTPUT, 0};
    Operand a = scratch_at(s.a_at), qkv = scratch_at(s.qkv_at), o = scratch_at(s.o_at), sum = scratch_at(s.s_at),
            f = scratch_at(s.f_at);
    bool norm_first = kb->node->attr.tfm.norm_first;
    if (norm_first) emit_norm(kb, &s, "norm1", x, a);
    emit_projection(kb, &s, ".in_proj", "self_attn.in_proj_weight", "self_attn.in_proj_bias", s.d, 3 * s.d,
                    norm_first ? a : x, qkv);
    emit_attention(kb, &s);
    emit_projection_add(kb, &s, ".out_proj", "self_attn.out_proj.weight", "self_attn.out_proj.bias", s.d, o, x, sum);
    emit_norm(kb, &s, norm_first ? "norm2" : "norm1", sum, a);
    emit_feed_forward_in(kb, &s);
    if (norm_first) {
        emit_projection_add(kb, &s, ".linear2", "linear2.weight", "linear2.bias", s.ff, f, sum, out);
    } else {
        emit_projection_add(kb, &s, ".linear2", "linear2.weight", "linear2.bias", s.ff, f, a, sum);
        emit_norm(kb, &s, "norm2", sum, out);
    }
}
