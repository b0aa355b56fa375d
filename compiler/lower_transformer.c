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
    s.bytes = s.slots_at + buffer_aligned(s.seq.samples * s.heads * s.seq.steps * (s.head_dim + 1) * 4);
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

typedef struct Attention {
    Ir *ir;
    const EncoderShape *s;
    SeqRuntime seq;
    LLVMValueRef qkv, out, kt, scores; /* kt, scores: the item's slot */
    LLVMValueRef sample, head_col;      /* head_col: the head's first column */
} Attention;

static LLVMValueRef qkv_at(Attention *at, LLVMValueRef t, int64_t part, LLVMValueRef k)
{
    Ir *ir = at->ir;
    LLVMValueRef row = seq_row(ir, &at->seq, t, at->sample);
    LLVMValueRef col = ir_add(ir, ir_add(ir, at->head_col, ir_i64(ir, part * at->s->d)), k);
    return ir_add(ir, ir_mul(ir, row, ir_i64(ir, 3 * at->s->d)), col);
}

/* K^T of the head: kt[k][j] = K[j][k]. */
static void emit_transpose_keys(Attention *at)
{
    Ir *ir = at->ir;
    IrLoop j = ir_loop_begin(ir, ir_i64(ir, 0), at->seq.steps, "key");
    IrLoop k = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, at->s->head_dim), "k");
    LLVMValueRef v = ir_load_f32(ir, at->qkv, qkv_at(at, j.index, 1, k.index));
    ir_store_f32(ir, at->kt, ir_add(ir, ir_mul(ir, k.index, at->seq.steps), j.index), v);
    ir_loop_end(ir, &k);
    ir_loop_end(ir, &j);
}

/* scores[j] = q_i . k_j / sqrt(head_dim), j over every key. */
static void emit_scores(Attention *at, LLVMValueRef i)
{
    Ir *ir = at->ir;
    LLVMValueRef steps = at->seq.steps;
    IrLoop z = ir_loop_begin(ir, ir_i64(ir, 0), steps, "zero");
    ir_store_f32(ir, at->scores, z.index, ir_f32(ir, 0.0));
    ir_loop_end(ir, &z);
    float scale = (float)(1.0 / sqrt((double)at->s->head_dim));
    IrLoop k = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, at->s->head_dim), "k");
    LLVMValueRef q = ir_fmul(ir, ir_load_f32(ir, at->qkv, qkv_at(at, i, 0, k.index)), ir_f32(ir, scale));
    LLVMValueRef kt_row = ir_f32_ptr(ir, at->kt, ir_mul(ir, k.index, steps));
    IrLoop j = ir_loop_begin(ir, ir_i64(ir, 0), steps, "key");
    ir_store_f32(ir, at->scores, j.index, ir_fma(ir, q, ir_load_f32(ir, kt_row, j.index), ir_load_f32(ir, at->scores, j.index)));
    ir_loop_end(ir, &j);
    ir_loop_end(ir, &k);
}

/* scores = exp(scores - max); returns 1 / their sum. */
static LLVMValueRef emit_softmax(Attention *at)
{
    Ir *ir = at->ir;
    LLVMBuilderRef b = ir->b;
    LLVMValueRef max = ir_var(ir, ir->f32, ir_f32(ir, -INFINITY), "max");
    LLVMValueRef sum = ir_var(ir, ir->f32, ir_f32(ir, 0.0), "sum");
    IrLoop j = ir_loop_begin(ir, ir_i64(ir, 0), at->seq.steps, "key");
    LLVMBuildStore(b, ir_call_f32_2(ir, "llvm.maxnum.f32", ir_load_f32(ir, at->scores, j.index), LLVMBuildLoad2(b, ir->f32, max, "")), max);
    ir_loop_end(ir, &j);
    LLVMValueRef m = LLVMBuildLoad2(b, ir->f32, max, "");
    IrLoop e = ir_loop_begin(ir, ir_i64(ir, 0), at->seq.steps, "key");
    LLVMValueRef p = ir_exp(ir, LLVMBuildFSub(b, ir_load_f32(ir, at->scores, e.index), m, ""));
    ir_store_f32(ir, at->scores, e.index, p);
    LLVMBuildStore(b, ir_fadd(ir, LLVMBuildLoad2(b, ir->f32, sum, ""), p), sum);
    ir_loop_end(ir, &e);
    return LLVMBuildFDiv(b, ir_f32(ir, 1.0), LLVMBuildLoad2(b, ir->f32, sum, ""), "");
}

/* The context row of query i: sum_j p_j v_j. */
static void emit_context(Attention *at, LLVMValueRef i, LLVMValueRef inv_sum)
{
    Ir *ir = at->ir;
    int64_t hd = at->s->head_dim;
    LLVMValueRef row = seq_row(ir, &at->seq, i, at->sample);
    LLVMValueRef out = ir_f32_ptr(ir, at->out, ir_add(ir, ir_mul(ir, row, ir_i64(ir, at->s->d)), at->head_col));
    IrLoop z = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, hd), "zero");
    ir_store_f32(ir, out, z.index, ir_f32(ir, 0.0));
    ir_loop_end(ir, &z);
    IrLoop j = ir_loop_begin(ir, ir_i64(ir, 0), at->seq.steps, "key");
    LLVMValueRef p = ir_fmul(ir, ir_load_f32(ir, at->scores, j.index), inv_sum);
    LLVMValueRef v = ir_f32_ptr(ir, at->qkv, qkv_at(at, j.index, 2, ir_i64(ir, 0)));
    IrLoop k = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, hd), "k");
    ir_store_f32(ir, out, k.index, ir_fma(ir, p, ir_load_f32(ir, v, k.index), ir_load_f32(ir, out, k.index)));
    ir_loop_end(ir, &k);
    ir_loop_end(ir, &j);
}

/* Items (sample, head), sample major. */
static void emit_attention(KernelBuilder *kb, const EncoderShape *s)
{
    Ir *ir = kb->ir;
    KernelArgs a = kernel_begin(kb, ".attention");
    Attention at = {.ir = ir, .s = s, .seq = seq_runtime(ir, &s->seq, a.batch)};
    at.qkv = kernel_operand(ir, &a, scratch_at(s->qkv_at));
    at.out = kernel_operand(ir, &a, scratch_at(s->o_at));
    LLVMValueRef slots = kernel_operand(ir, &a, scratch_at(s->slots_at));
    LLVMValueRef slot_floats = ir_mul(ir, at.seq.steps, ir_i64(ir, s->head_dim + 1));
    IrLoop item = ir_loop_begin(ir, a.begin, a.end, "item");
    at.sample = ir_div_const(ir, item.index, s->heads);
    at.head_col = ir_mul(ir, ir_rem_const(ir, item.index, s->heads), ir_i64(ir, s->head_dim));
    at.kt = ir_f32_ptr(ir, slots, ir_mul(ir, item.index, slot_floats));
    at.scores = ir_f32_ptr(ir, at.kt, ir_mul(ir, at.seq.steps, ir_i64(ir, s->head_dim)));
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
