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

/* Queries are taken QUERY_BLOCK at a time, so that each vector of keys (or
 * of values) loaded feeds QUERY_BLOCK multiply-adds; the keys of a slot row
 * are T rounded up to whole vectors, so that scores are computed and
 * softmaxed a vector at a time.  Register tiles: QUERY_BLOCK x
 * key_block_vectors() score accumulators, QUERY_BLOCK x context_vectors()
 * context ones. */
enum { QUERY_BLOCK = 4, MAX_TILE_VECTORS = 4, MAX_VECTOR_WIDTH = 16 };

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
    /* a slot: K^T and QUERY_BLOCK score rows, the keys rounded up to whole vectors */
    s.bytes = s.slots_at + buffer_aligned(s.seq.samples * s.heads * (s.seq.steps + MAX_VECTOR_WIDTH - 1) *
                                          (s.head_dim + QUERY_BLOCK) * 4);
    return s;
}

int64_t transformer_scratch_bytes(const Node *n) { return encoder_shape(n).bytes; }

static const float *param_data(KernelBuilder *kb, const char *suffix)
{
    const Param *p = node_param(kb->node, suffix);
    return p ? p->data : NULL;
}

static Operand scratch_at(int64_t at) { return (Operand){BUF_SCRATCH, at}; }

/* The product step `what` over every token: src W^T + b into dst, W and b the layer's parameters `weight` and `bias`. */
static MatmulStep projection(KernelBuilder *kb, const EncoderShape *s, const char *what, const char *weight,
                             const char *bias, int64_t in_f, int64_t out_f, Operand src, Operand dst)
{
    return (MatmulStep){.what = what, .rows = s->seq.rows, .in_f = in_f, .out_f = out_f, .weight = param_data(kb, weight),
                        .bias = param_data(kb, bias), .src = src, .dst = dst};
}

/* QKV = src W_in^T + b_in. */
static void emit_in_projection(KernelBuilder *kb, const EncoderShape *s, Operand src)
{
    MatmulStep m = projection(kb, s, ".in_proj", "self_attn.in_proj_weight", "self_attn.in_proj_bias", s->d, 3 * s->d, src,
                              scratch_at(s->qkv_at));
    lower_matmul_step(kb, &m);
}

/* dst = src W^T + b + residual, W [d, in_f]: out_proj and linear2 (the residual add in the epilogue). */
static void emit_projection_add(KernelBuilder *kb, const EncoderShape *s, const char *what, const char *prefix, int64_t in_f,
                                Operand src, Operand residual, Operand dst)
{
    MatmulStep m = projection(kb, s, what, arena_printf(kb->arena, "%s.weight", prefix),
                              arena_printf(kb->arena, "%s.bias", prefix), in_f, s->d, src, dst);
    m.has_residual = true;
    m.residual = residual;
    lower_matmul_step(kb, &m);
}

/* F = act(A W_1^T + b_1): relu or exact gelu in the epilogue. */
static void emit_feed_forward_in(KernelBuilder *kb, const EncoderShape *s)
{
    MatmulStep m = projection(kb, s, ".linear1", "linear1.weight", "linear1.bias", s->d, s->ff, scratch_at(s->a_at),
                              scratch_at(s->f_at));
    m.has_activation = true;
    m.activation = kb->node->attr.tfm.gelu ? OP_GELU : OP_RELU;
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

static int key_block_vectors(const Ir *ir) { return ir->vector_registers >= 32 ? 4 : 2; }
static int context_vectors(const Ir *ir) { return ir->vector_registers >= 32 ? 4 : 2; }

typedef struct Attention {
    Ir *ir;
    const EncoderShape *s;
    SeqRuntime seq;
    LLVMValueRef keys;                  /* T rounded up to whole vectors */
    LLVMValueRef qkv, out, kt, scores;  /* kt [head_dim][keys], scores [QUERY_BLOCK][keys]: the item's slot */
    LLVMValueRef sample, head_col;      /* head_col: the head's first column */
} Attention;

static LLVMValueRef qkv_at(Attention *at, LLVMValueRef t, int64_t part, LLVMValueRef k)
{
    Ir *ir = at->ir;
    LLVMValueRef row = seq_row(ir, &at->seq, t, at->sample);
    LLVMValueRef col = ir_add(ir, ir_add(ir, at->head_col, ir_i64(ir, part * at->s->d)), k);
    return ir_add(ir, ir_mul(ir, row, ir_i64(ir, 3 * at->s->d)), col);
}

static LLVMValueRef score_row(Attention *at, int r) { return ir_f32_ptr(at->ir, at->scores, ir_mul(at->ir, at->keys, ir_i64(at->ir, r))); }

static LLVMValueRef load_var(Ir *ir, LLVMValueRef var) { return LLVMBuildLoad2(ir->b, ir_vec_type(ir), var, ""); }

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

/* Scores of queries [i0, i0 + nq) against `vectors` vectors of keys from j0: q . k / sqrt(head_dim). */
static void emit_score_tile(Attention *at, LLVMValueRef i0, int nq, LLVMValueRef j0, int vectors)
{
    Ir *ir = at->ir;
    int width = ir->vector_width;
    LLVMTypeRef vt = ir_vec_type(ir);
    float scale = (float)(1.0 / sqrt((double)at->s->head_dim));
    LLVMValueRef acc[QUERY_BLOCK][MAX_TILE_VECTORS];
    for (int r = 0; r < nq; r++)
        for (int v = 0; v < vectors; v++) acc[r][v] = ir_var(ir, vt, LLVMConstNull(vt), "acc");
    IrLoop k = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, at->s->head_dim), "k");
    LLVMValueRef kt_row = ir_add(ir, ir_mul(ir, k.index, at->keys), j0), kv[MAX_TILE_VECTORS];
    for (int v = 0; v < vectors; v++) kv[v] = ir_load_vec(ir, at->kt, ir_add(ir, kt_row, ir_i64(ir, v * width)), width);
    for (int r = 0; r < nq; r++) {
        LLVMValueRef q = ir_load_f32(ir, at->qkv, qkv_at(at, ir_add(ir, i0, ir_i64(ir, r)), 0, k.index));
        q = ir_splat(ir, ir_fmul(ir, q, ir_f32(ir, scale)));
        for (int v = 0; v < vectors; v++) LLVMBuildStore(ir->b, ir_fma(ir, q, kv[v], load_var(ir, acc[r][v])), acc[r][v]);
    }
    ir_loop_end(ir, &k);
    for (int r = 0; r < nq; r++)
        for (int v = 0; v < vectors; v++)
            ir_store_vec(ir, score_row(at, r), ir_add(ir, j0, ir_i64(ir, v * width)), load_var(ir, acc[r][v]), width);
}

/* Every score of queries [i0, i0 + nq): blocks of vectors of keys, then single vectors; -inf past the last key. */
static void emit_scores(Attention *at, LLVMValueRef i0, int nq)
{
    Ir *ir = at->ir;
    int64_t width = ir->vector_width, per_block = key_block_vectors(ir);
    LLVMValueRef vectors = ir_div_const(ir, at->keys, width), blocks = ir_div_const(ir, vectors, per_block);
    IrLoop b = ir_loop_begin(ir, ir_i64(ir, 0), blocks, "keys");
    emit_score_tile(at, i0, nq, ir_mul(ir, b.index, ir_i64(ir, per_block * width)), (int)per_block);
    ir_loop_end(ir, &b);
    IrLoop v = ir_loop_begin(ir, ir_mul(ir, blocks, ir_i64(ir, per_block)), vectors, "key_vector");
    emit_score_tile(at, i0, nq, ir_mul(ir, v.index, ir_i64(ir, width)), 1);
    ir_loop_end(ir, &v);
    for (int r = 0; r < nq; r++) {
        IrLoop pad = ir_loop_begin(ir, at->seq.steps, at->keys, "padding");
        ir_store_f32(ir, score_row(at, r), pad.index, ir_f32(ir, -INFINITY));
        ir_loop_end(ir, &pad);
    }
}

/* A loop over the vectors of a score row; returns its index in floats. */
static IrLoop score_vectors_begin(Attention *at, const char *name)
{
    Ir *ir = at->ir;
    return ir_loop_begin(ir, ir_i64(ir, 0), ir_div_const(ir, at->keys, ir->vector_width), name);
}

/* A score row = exp(row - max), a vector at a time; returns 1 / their sum. */
static LLVMValueRef emit_softmax(Attention *at, LLVMValueRef row)
{
    Ir *ir = at->ir;
    LLVMBuilderRef b = ir->b;
    int width = ir->vector_width;
    LLVMTypeRef vt = ir_vec_type(ir);
    LLVMValueRef max = ir_var(ir, vt, ir_splat(ir, ir_f32(ir, -INFINITY)), "max");
    LLVMValueRef sum = ir_var(ir, vt, LLVMConstNull(vt), "sum");
    IrLoop j = score_vectors_begin(at, "max");
    LLVMValueRef s = ir_load_vec(ir, row, ir_mul(ir, j.index, ir_i64(ir, width)), width), cur = load_var(ir, max);
    LLVMBuildStore(b, LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, s, cur, ""), s, cur, ""), max);
    ir_loop_end(ir, &j);
    LLVMValueRef m = ir_splat(ir, ir_reduce_max(ir, load_var(ir, max)));
    IrLoop e = score_vectors_begin(at, "exp");
    LLVMValueRef at_e = ir_mul(ir, e.index, ir_i64(ir, width));
    LLVMValueRef p = ir_exp(ir, LLVMBuildFSub(b, ir_load_vec(ir, row, at_e, width), m, ""));
    ir_store_vec(ir, row, at_e, p, width);
    LLVMBuildStore(b, ir_fadd(ir, load_var(ir, sum), p), sum);
    ir_loop_end(ir, &e);
    return LLVMBuildFDiv(b, ir_f32(ir, 1.0), ir_reduce_add(ir, load_var(ir, sum)), "");
}

/* Columns [col0, col0 + lanes) of the context rows of queries [i0, i0 + nq):
 * sum_j p_j v_j / sum, the tile in registers. */
static void emit_context_columns(Attention *at, LLVMValueRef i0, int nq, const LLVMValueRef *inv_sum, LLVMValueRef col0,
                                 int lanes)
{
    Ir *ir = at->ir;
    int width = ir->vector_width, nvec = (lanes + width - 1) / width;
    LLVMTypeRef vt = ir_vec_type(ir);
    LLVMValueRef acc[QUERY_BLOCK][MAX_TILE_VECTORS];
    for (int r = 0; r < nq; r++)
        for (int v = 0; v < nvec; v++) acc[r][v] = ir_var(ir, vt, LLVMConstNull(vt), "ctx");
    IrLoop j = ir_loop_begin(ir, ir_i64(ir, 0), at->seq.steps, "key");
    LLVMValueRef vrow = ir_f32_ptr(ir, at->qkv, qkv_at(at, j.index, 2, col0)), x[MAX_TILE_VECTORS];
    for (int v = 0; v < nvec; v++) {
        int n = lanes - v * width < width ? lanes - v * width : width;
        x[v] = ir_load_vec(ir, vrow, ir_i64(ir, v * width), n);
    }
    for (int r = 0; r < nq; r++) {
        LLVMValueRef p = ir_splat(ir, ir_load_f32(ir, score_row(at, r), j.index));
        for (int v = 0; v < nvec; v++) LLVMBuildStore(ir->b, ir_fma(ir, p, x[v], load_var(ir, acc[r][v])), acc[r][v]);
    }
    ir_loop_end(ir, &j);
    for (int r = 0; r < nq; r++) {
        LLVMValueRef row = seq_row(ir, &at->seq, ir_add(ir, i0, ir_i64(ir, r)), at->sample);
        LLVMValueRef out = ir_f32_ptr(ir, at->out, ir_add(ir, ir_mul(ir, row, ir_i64(ir, at->s->d)), ir_add(ir, at->head_col, col0)));
        for (int v = 0; v < nvec; v++) {
            int n = lanes - v * width < width ? lanes - v * width : width;
            ir_store_vec(ir, out, ir_i64(ir, v * width), ir_fmul(ir, load_var(ir, acc[r][v]), ir_splat(ir, inv_sum[r])), n);
        }
    }
}

/* The context rows of queries [i0, i0 + nq), in chunks of context_vectors() vectors of the head's columns. */
static void emit_context(Attention *at, LLVMValueRef i0, int nq, const LLVMValueRef *inv_sum)
{
    Ir *ir = at->ir;
    int64_t chunk = context_vectors(ir) * ir->vector_width, hd = at->s->head_dim, full = hd / chunk;
    if (full > 0) {
        IrLoop c = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, full), "columns");
        emit_context_columns(at, i0, nq, inv_sum, ir_mul(ir, c.index, ir_i64(ir, chunk)), (int)chunk);
        ir_loop_end(ir, &c);
    }
    if (hd % chunk) emit_context_columns(at, i0, nq, inv_sum, ir_i64(ir, full * chunk), (int)(hd % chunk));
}

static void emit_queries(Attention *at, LLVMValueRef i0, int nq)
{
    emit_scores(at, i0, nq);
    LLVMValueRef inv_sum[QUERY_BLOCK];
    for (int r = 0; r < nq; r++) inv_sum[r] = emit_softmax(at, score_row(at, r));
    emit_context(at, i0, nq, inv_sum);
}

/* Items (sample, head), sample major: the queries QUERY_BLOCK at a time, then one at a time. */
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
    LLVMValueRef slot_floats = ir_mul(ir, at.keys, ir_i64(ir, s->head_dim + QUERY_BLOCK));
    IrLoop item = ir_loop_begin(ir, a.begin, a.end, "item");
    at.sample = ir_div_const(ir, item.index, s->heads);
    at.head_col = ir_mul(ir, ir_rem_const(ir, item.index, s->heads), ir_i64(ir, s->head_dim));
    at.kt = ir_f32_ptr(ir, slots, ir_mul(ir, item.index, slot_floats));
    at.scores = ir_f32_ptr(ir, at.kt, ir_mul(ir, at.keys, ir_i64(ir, s->head_dim)));
    emit_transpose_keys(&at);
    LLVMValueRef blocks = ir_div_const(ir, at.seq.steps, QUERY_BLOCK);
    IrLoop qb = ir_loop_begin(ir, ir_i64(ir, 0), blocks, "queries");
    emit_queries(&at, ir_mul(ir, qb.index, ir_i64(ir, QUERY_BLOCK)), QUERY_BLOCK);
    ir_loop_end(ir, &qb);
    IrLoop q = ir_loop_begin(ir, ir_mul(ir, blocks, ir_i64(ir, QUERY_BLOCK)), at.seq.steps, "query");
    emit_queries(&at, q.index, 1);
    ir_loop_end(ir, &q);
    ir_loop_end(ir, &item);
    int64_t per_item = 4 * s->seq.steps * s->seq.steps * s->head_dim + 16 * s->seq.steps * s->seq.steps;
    kernel_end(kb, BUF_ALL, BUF_ALL, s->seq.samples * s->heads, s->seq.batch_first, per_item);
}

void lower_transformer_encoder(KernelBuilder *kb)
{
    EncoderShape s = encoder_shape(kb->node);
    Operand x = {BUF_INPUT, 0}, out = {BUF_OUTPUT, 0};
    Operand a = scratch_at(s.a_at), o = scratch_at(s.o_at), sum = scratch_at(s.s_at), f = scratch_at(s.f_at);
    bool norm_first = kb->node->attr.tfm.norm_first;
    if (norm_first) emit_norm(kb, &s, "norm1", x, a);
    emit_in_projection(kb, &s, norm_first ? a : x);
    emit_attention(kb, &s);
    emit_projection_add(kb, &s, ".out_proj", "self_attn.out_proj", s.d, o, x, sum);
    emit_norm(kb, &s, norm_first ? "norm2" : "norm1", sum, a);
    emit_feed_forward_in(kb, &s);
    if (norm_first) {
        emit_projection_add(kb, &s, ".linear2", "linear2", s.ff, f, sum, out);
    } else {
        emit_projection_add(kb, &s, ".linear2", "linear2", s.ff, f, a, sum);
        emit_norm(kb, &s, "norm2", sum, out);
    }
}
