/* lower_recurrent.c - the kernels of RNN, LSTM and GRU.
 *
 * Per layer two steps:
 *   1. the input projection of every time step at once, G = x W_ih^T + b,
 *      both directions side by side: one packed, register-tiled GEMM
 *      (lower_gemm.h) over all T * N rows;
 *   2. the recurrence: a work item is one (direction, sample); a call runs
 *      the time loop (a loop in the generated code) for its samples of each
 *      direction together: R = h W_hh^T (+ b) for all of them, in register
 *      tiles of MR samples panel by panel (W_hh is read once a step, a
 *      panel staying in L1 while the tiles sweep it), then the gates, vector
 *      by vector, then LSTM's projection h = W_hr h_full the same way, then
 *      h is copied into the output sequence.
 * Layer k > 0 reads layer k-1's output sequence from scratch (both
 * directions concatenated, as PyTorch); the last layer writes the layer's
 * output.  Gate order and biases are PyTorch's: LSTM i, f, g, o; GRU r, z, n
 * with n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), so b_hn stays in the
 * recurrence while the other hidden biases fold into the projection.
 *
 * Scratch memory (per batch unit, plan_memory.h): G, then the inter-layer
 * sequence Y (num_layers > 1), then a state slot per (direction, sample):
 * h [P] | c [H] | R [gates * H] | h_full [H] (LSTM with proj_size), where P
 * is proj_size or H.  The slots of consecutive samples are one stride
 * apart, so the tile reads the h of MR samples as MR rows.
 *
 * Layouts: lower_sequence.h.
 */
#include <string.h>

#include "ir_math.h"
#include "lower_gemm.h"
#include "lower_sequence.h"
#include "plan_memory.h"

typedef struct RecurrentShape {
    int gates;                      /* 1 RNN, 4 LSTM, 3 GRU */
    int dirs;
    int64_t hidden, out_size;       /* H, P */
    SeqDims seq;
    int64_t slot;                   /* floats per state slot */
    int64_t r_at, hfull_at;         /* in the slot */
    int64_t g_at, y_at, state_at;   /* scratch byte offsets */
    int64_t bytes;
} RecurrentShape;

static RecurrentShape recurrent_shape(const Node *n)
{
    const RecurrentAttrs *ra = &n->attr.rnn;
    RecurrentShape s = {.seq = seq_dims(&n->inputs[0]->shape, ra->batch_first), .dirs = ra->bidirectional ? 2 : 1};
    s.gates = n->op == OP_LSTM ? 4 : n->op == OP_GRU ? 3 : 1;
    s.hidden = ra->hidden_size;
    s.out_size = ra->proj_size > 0 ? ra->proj_size : ra->hidden_size;
    s.r_at = s.out_size + s.hidden;
    s.hfull_at = s.r_at + s.gates * s.hidden;
    s.slot = s.hfull_at + (ra->proj_size > 0 ? s.hidden : 0);
    s.g_at = 0;
    s.y_at = s.g_at + buffer_aligned(s.seq.rows * s.dirs * s.gates * s.hidden * 4);
    s.state_at = s.y_at + (ra->num_layers > 1 ? buffer_aligned(s.seq.rows * s.dirs * s.out_size * 4) : 0);
    s.bytes = s.state_at + buffer_aligned(s.dirs * s.seq.samples * s.slot * 4);
    return s;
}

int64_t recurrent_scratch_bytes(const Node *n) { return recurrent_shape(n).bytes; }

static const float *param_of(KernelBuilder *kb, const char *kind, int64_t layer, int dir)
{
    const Param *p = node_param(kb->node, arena_printf(kb->arena, "%s_l%lld%s", kind, (long long)layer, dir ? "_reverse" : ""));
    return p ? p->data : NULL;
}

/* Whether hidden bias element i (of gates * H) folds into the input projection: all but GRU's n gate. */
static bool bias_folds(const RecurrentShape *s, int64_t i) { return s->gates != 3 || i < 2 * s->hidden; }

/* Step 1 of layer `layer`: G = x [W_ih fwd; W_ih rev]^T + the biases that fold. */
static void emit_projection(KernelBuilder *kb, const RecurrentShape *s, int64_t layer, int64_t layer_in)
{
    int64_t per_dir = s->gates * s->hidden, out_f = s->dirs * per_dir;
    float *w = arena_alloc_array(kb->arena, (size_t)(out_f * layer_in), sizeof *w);
    float *b = NULL;
    for (int d = 0; d < s->dirs; d++) {
        memcpy(w + d * per_dir * layer_in, param_of(kb, "weight_ih", layer, d), (size_t)(per_dir * layer_in) * sizeof *w);
        const float *b_ih = param_of(kb, "bias_ih", layer, d), *b_hh = param_of(kb, "bias_hh", layer, d);
        if (!b_ih) continue;
        if (!b) b = arena_alloc_array(kb->arena, (size_t)out_f, sizeof *b);
        for (int64_t i = 0; i < per_dir; i++) b[d * per_dir + i] = b_ih[i] + (bias_folds(s, i) ? b_hh[i] : 0.0f);
    }
    MatmulStep m = {.what = arena_printf(kb->arena, ".l%lld.input", (long long)layer), .rows = s->seq.rows, .in_f = layer_in,
                    .out_f = out_f, .weight = w, .bias = b, .src = {layer == 0 ? BUF_INPUT : BUF_SCRATCH, s->y_at},
                    .dst = {BUF_SCRATCH, s->g_at}};
    lower_matmul_step(kb, &m);
}

/* What the time loop of one direction needs. */
typedef struct Recurrence {
    Ir *ir;
    const Node *node;
    const RecurrentShape *s;
    int dir;
    LLVMValueRef g, out, state; /* G, the output sequence, the state slots */
    SeqRuntime seq;
    int64_t out_width;           /* floats per row of the output sequence */
    Gemm hidden, projection;     /* h W_hh^T (+ b_hn), and h_full W_hr^T (proj_size) */
} Recurrence;

static LLVMValueRef slot_of(Recurrence *rc, LLVMValueRef b, int64_t offset)
{
    Ir *ir = rc->ir;
    LLVMValueRef slot = ir_add(ir, ir_mul(ir, ir_i64(ir, rc->dir), rc->seq.samples), b);
    return ir_f32_ptr(ir, rc->state, ir_add(ir, ir_mul(ir, slot, ir_i64(ir, rc->s->slot)), ir_i64(ir, offset)));
}

static LLVMValueRef vec_const(Ir *ir, double v) { return ir_splat(ir, ir_f32(ir, v)); }

/* One unit vector of each cell: gx, gh are the gates' input and hidden parts
 * (PyTorch's order), the state slot is updated in place. */
static void rnn_units(Recurrence *rc, const LLVMValueRef *gx, const LLVMValueRef *gh, LLVMValueRef slot, LLVMValueRef j,
                      int lanes)
{
    Ir *ir = rc->ir;
    ActAttrs none = {0};
    LLVMValueRef pre = ir_fadd(ir, gx[0], gh[0]);
    LLVMValueRef h = rc->node->attr.rnn.relu ? activation(ir, OP_RELU, &none, pre) : ir_tanh(ir, pre);
    ir_store_vec(ir, slot, j, h, lanes);
}

/* c = f c + i g; h = o tanh(c), into h_full when a projection follows. */
static void lstm_units(Recurrence *rc, const LLVMValueRef *gx, const LLVMValueRef *gh, LLVMValueRef slot, LLVMValueRef j,
                       int lanes)
{
    Ir *ir = rc->ir;
    const RecurrentShape *s = rc->s;
    LLVMValueRef i = ir_sigmoid(ir, ir_fadd(ir, gx[0], gh[0])), f = ir_sigmoid(ir, ir_fadd(ir, gx[1], gh[1]));
    LLVMValueRef g = ir_tanh(ir, ir_fadd(ir, gx[2], gh[2])), o = ir_sigmoid(ir, ir_fadd(ir, gx[3], gh[3]));
    LLVMValueRef c_at = ir_add(ir, j, ir_i64(ir, s->out_size));
    LLVMValueRef c = ir_fma(ir, f, ir_load_vec(ir, slot, c_at, lanes), ir_fmul(ir, i, g));
    ir_store_vec(ir, slot, c_at, c, lanes);
    bool projected = rc->node->attr.rnn.proj_size > 0;
    ir_store_vec(ir, slot, projected ? ir_add(ir, j, ir_i64(ir, s->hfull_at)) : j, ir_fmul(ir, o, ir_tanh(ir, c)), lanes);
}

/* n = tanh(x_n + r (W_hn h + b_hn)); h = (1 - z) n + z h. */
static void gru_units(Recurrence *rc, const LLVMValueRef *gx, const LLVMValueRef *gh, LLVMValueRef slot, LLVMValueRef j,
                      int lanes)
{
    Ir *ir = rc->ir;
    LLVMValueRef r = ir_sigmoid(ir, ir_fadd(ir, gx[0], gh[0])), z = ir_sigmoid(ir, ir_fadd(ir, gx[1], gh[1]));
    LLVMValueRef n = ir_tanh(ir, ir_fma(ir, r, gh[2], gx[2]));
    LLVMValueRef keep = ir_fmul(ir, ir_fadd(ir, vec_const(ir, 1.0), LLVMBuildFNeg(ir->b, z, "")), n);
    ir_store_vec(ir, slot, j, ir_fma(ir, z, ir_load_vec(ir, slot, j, lanes), keep), lanes);
}

/* The gates at units [j, j + lanes) of one sample: G row g, hidden products r (R), state slot. */
static void emit_gates_at(Recurrence *rc, LLVMValueRef g, LLVMValueRef r, LLVMValueRef slot, LLVMValueRef j, int lanes)
{
    Ir *ir = rc->ir;
    const RecurrentShape *s = rc->s;
    LLVMValueRef gx[4], gh[4];
    for (int k = 0; k < s->gates; k++) {
        LLVMValueRef at = ir_add(ir, j, ir_i64(ir, k * s->hidden));
        gx[k] = ir_load_vec(ir, g, at, lanes);
        gh[k] = ir_load_vec(ir, r, at, lanes);
    }
    if (s->gates == 1) rnn_units(rc, gx, gh, slot, j, lanes);
    else if (s->gates == 4) lstm_units(rc, gx, gh, slot, j, lanes);
    else gru_units(rc, gx, gh, slot, j, lanes);
}

/* The gates of sample b at time row `row`: every unit, a vector at a time. */
static void emit_gates(Recurrence *rc, LLVMValueRef row, LLVMValueRef b)
{
    Ir *ir = rc->ir;
    const RecurrentShape *s = rc->s;
    int64_t per_dir = s->gates * s->hidden, width = ir->vector_width;
    LLVMValueRef g = ir_f32_ptr(ir, rc->g, ir_add(ir, ir_mul(ir, row, ir_i64(ir, s->dirs * per_dir)), ir_i64(ir, rc->dir * per_dir)));
    LLVMValueRef slot = slot_of(rc, b, 0), r = slot_of(rc, b, s->r_at);
    int64_t full = s->hidden / width;
    if (full > 0) {
        IrLoop v = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, full), "unit");
        emit_gates_at(rc, g, r, slot, ir_mul(ir, v.index, ir_i64(ir, width)), (int)width);
        ir_loop_end(ir, &v);
    }
    if (s->hidden % width) emit_gates_at(rc, g, r, slot, ir_i64(ir, full * width), (int)(s->hidden % width));
}

/* The time loop of samples [b0, b0 + count) of this direction, from zero state. */
static void emit_samples(Recurrence *rc, LLVMValueRef b0, LLVMValueRef count)
{
    Ir *ir = rc->ir;
    const RecurrentShape *s = rc->s;
    LLVMValueRef first_slot = slot_of(rc, b0, 0);
    LLVMBuildMemSet(ir->b, first_slot, LLVMConstInt(LLVMInt8TypeInContext(ir->ctx), 0, 0),
                    ir_mul(ir, count, ir_i64(ir, s->slot * 4)), 4);
    IrLoop step = ir_loop_begin(ir, ir_i64(ir, 0), rc->seq.steps, "step");
    LLVMValueRef t = rc->dir ? ir_sub(ir, ir_sub(ir, rc->seq.steps, ir_i64(ir, 1)), step.index) : step.index;
    rc->hidden.src = first_slot;
    rc->hidden.dst = slot_of(rc, b0, s->r_at);
    gemm_emit_row_range(&rc->hidden, count);
    IrLoop r = ir_loop_begin(ir, ir_i64(ir, 0), count, "row");
    LLVMValueRef b = ir_add(ir, b0, r.index);
    emit_gates(rc, seq_row(ir, &rc->seq, t, b), b);
    ir_loop_end(ir, &r);
    if (rc->node->attr.rnn.proj_size > 0) {
        rc->projection.src = slot_of(rc, b0, s->hfull_at);
        rc->projection.dst = first_slot;
        gemm_emit_row_range(&rc->projection, count);
    }
    IrLoop c = ir_loop_begin(ir, ir_i64(ir, 0), count, "copy");
    LLVMValueRef bc = ir_add(ir, b0, c.index);
    LLVMValueRef at = ir_add(ir, ir_mul(ir, seq_row(ir, &rc->seq, t, bc), ir_i64(ir, rc->out_width)), ir_i64(ir, rc->dir * s->out_size));
    LLVMBuildMemCpy(ir->b, ir_f32_ptr(ir, rc->out, at), 4, slot_of(rc, bc, 0), 4, ir_i64(ir, s->out_size * 4));
    ir_loop_end(ir, &c);
    ir_loop_end(ir, &step);
}

/* The hidden products of one direction: W_hh, with the biases that do not fold (GRU's b_hn). */
static Gemm hidden_gemm(KernelBuilder *kb, const RecurrentShape *s, int64_t layer, int dir)
{
    int64_t per_dir = s->gates * s->hidden;
    const float *b_hh = param_of(kb, "bias_hh", layer, dir);
    float *bias = NULL;
    if (b_hh && s->gates == 3) {
        bias = arena_alloc_array(kb->arena, (size_t)per_dir, sizeof *bias);
        for (int64_t i = 0; i < per_dir; i++) bias[i] = bias_folds(s, i) ? 0.0f : b_hh[i];
    }
    Gemm t = gemm_prepare(kb->ir, s->out_size, per_dir, 1, param_of(kb, "weight_hh", layer, dir), bias, true);
    t.src_stride = t.dst_stride = s->slot;
    return t;
}

/* Step 2 of layer `layer`: items (direction, sample), direction major. */
static void emit_recurrence(KernelBuilder *kb, const RecurrentShape *s, int64_t layer)
{
    Ir *ir = kb->ir;
    const RecurrentAttrs *ra = &kb->node->attr.rnn;
    bool last = layer == ra->num_layers - 1;
    Gemm hidden[2], projection[2];
    for (int d = 0; d < s->dirs; d++) {
        hidden[d] = hidden_gemm(kb, s, layer, d);
        if (ra->proj_size > 0) {
            projection[d] = gemm_prepare(ir, s->hidden, s->out_size, 1, param_of(kb, "weight_hr", layer, d), NULL, true);
            projection[d].src_stride = projection[d].dst_stride = s->slot;
        }
    }
    KernelArgs a = kernel_begin(kb, arena_printf(kb->arena, ".l%lld.recurrence", (long long)layer));
    Recurrence rc = {.ir = ir, .node = kb->node, .s = s, .out_width = s->dirs * s->out_size};
    rc.g = kernel_operand(ir, &a, (Operand){BUF_SCRATCH, s->g_at});
    rc.out = kernel_operand(ir, &a, last ? (Operand){BUF_OUTPUT, 0} : (Operand){BUF_SCRATCH, s->y_at});
    rc.state = kernel_operand(ir, &a, (Operand){BUF_SCRATCH, s->state_at});
    rc.seq = seq_runtime(ir, &s->seq, a.batch);
    for (int d = 0; d < s->dirs; d++) {
        rc.dir = d;
        rc.hidden = hidden[d];
        if (ra->proj_size > 0) rc.projection = projection[d];
        LLVMValueRef offset = ir_mul(ir, ir_i64(ir, d), rc.seq.samples);
        LLVMValueRef lo = ir_sub(ir, a.begin, offset), hi = ir_min(ir, ir_sub(ir, a.end, offset), rc.seq.samples);
        lo = LLVMBuildSelect(ir->b, LLVMBuildICmp(ir->b, LLVMIntSLT, lo, ir_i64(ir, 0), ""), ir_i64(ir, 0), lo, "");
        LLVMValueRef count = ir_sub(ir, hi, lo);
        LLVMBasicBlockRef done = ir_if_begin(ir, LLVMBuildICmp(ir->b, LLVMIntSGT, count, ir_i64(ir, 0), ""));
        emit_samples(&rc, lo, count);
        ir_if_end(ir, done);
    }
    int64_t per_step = 2 * s->gates * s->hidden * s->out_size + 2 * ra->proj_size * s->hidden + 16 * s->gates * s->hidden;
    kernel_end(kb, BUF_ALL, BUF_ALL, s->dirs * s->seq.samples, s->seq.batch_first, per_step * s->seq.steps);
}

void lower_recurrent(KernelBuilder *kb)
{
    const RecurrentAttrs *ra = &kb->node->attr.rnn;
    RecurrentShape s = recurrent_shape(kb->node);
    for (int64_t layer = 0; layer < ra->num_layers; layer++) {
        emit_projection(kb, &s, layer, layer == 0 ? ra->input_size : s.dirs * s.out_size);
        emit_recurrence(kb, &s, layer);
    }
}
