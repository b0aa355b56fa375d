/* lower_combine.c - kernels of the layers that read several tensors: a + b
 * and a * b (PyTorch's broadcasting), cat and Bilinear.
 *
 * Their steps take the BUF_ALL block (lower.h), where kernel_input() finds
 * every input.  A run-time batch scales the items; an input without the
 * batch dimension (broadcast over it) is read at the same place for every
 * sample.  Sizes below are per sample when the batch is named.
 */
#include "lower.h"

enum { COMBINE_CHUNK = 4096 };

static int64_t numel(const Shape *s) { return shape_numel(s); }

/* Floats between one sample and the next of input s: 0 when it is broadcast over the batch. */
static int64_t sample_stride(const Shape *s) { return s->dynamic_batch ? numel(s) : 0; }

static LLVMValueRef binary_op(Ir *ir, OpKind op, LLVMValueRef a, LLVMValueRef b)
{
    return op == OP_ADD ? ir_fadd(ir, a, b) : ir_fmul(ir, a, b);
}

/* The index into input s (right-aligned to out, size-1 dimensions repeated) of out's element `flat` within a sample. */
static LLVMValueRef broadcast_index(Ir *ir, const Shape *out, const Shape *s, LLVMValueRef flat)
{
    LLVMValueRef index = ir_i64(ir, 0);
    int64_t stride = 1;
    for (int i = out->rank - 1; i >= 0; i--) {
        int j = i - (out->rank - s->rank);
        if (j < 0) break;
        LLVMValueRef coord = ir_rem_const(ir, flat, out->dims[i]);
        flat = ir_div_const(ir, flat, out->dims[i]);
        if (s->dims[j] != 1) index = ir_add(ir, index, ir_mul(ir, coord, ir_i64(ir, stride)));
        stride *= s->dims[j];
    }
    return index;
}

/* a + b, a * b: items are chunks of each sample's output. */
void lower_broadcast_binary(KernelBuilder *kb)
{
    Ir *ir = kb->ir;
    const Node *n = kb->node;
    const Shape *out = &n->shape, *sa = &n->inputs[0]->shape, *sb = &n->inputs[1]->shape;
    int64_t count = numel(out);
    int64_t chunks = (count + COMBINE_CHUNK - 1) / COMBINE_CHUNK;
    KernelArgs a = kernel_begin(kb, "");
    LLVMValueRef x = kernel_input(ir, &a, 0), y = kernel_input(ir, &a, 1);
    LLVMValueRef dst = kernel_operand(ir, &a, (Operand){BUF_OUTPUT, 0});
    IrLoop item = ir_loop_begin(ir, a.begin, a.end, "item");
    LLVMValueRef sample = ir_div_const(ir, item.index, chunks);
    LLVMValueRef start = ir_mul(ir, ir_rem_const(ir, item.index, chunks), ir_i64(ir, COMBINE_CHUNK));
    LLVMValueRef len = ir_min(ir, ir_i64(ir, COMBINE_CHUNK), ir_sub(ir, ir_i64(ir, count), start));
    LLVMValueRef xs = ir_f32_ptr(ir, x, ir_mul(ir, sample, ir_i64(ir, sample_stride(sa))));
    LLVMValueRef ys = ir_f32_ptr(ir, y, ir_mul(ir, sample, ir_i64(ir, sample_stride(sb))));
    LLVMValueRef ds = ir_f32_ptr(ir, dst, ir_mul(ir, sample, ir_i64(ir, count)));
    IrLoop i = ir_loop_begin(ir, ir_i64(ir, 0), len, "i");
    LLVMValueRef at = ir_add(ir, start, i.index);
    LLVMValueRef xi = n->attr.broadcast.same_shapes ? at : broadcast_index(ir, out, sa, at);
    LLVMValueRef yi = n->attr.broadcast.same_shapes ? at : broadcast_index(ir, out, sb, at);
    ir_store_f32(ir, ds, at, binary_op(ir, n->op, ir_load_f32(ir, xs, xi), ir_load_f32(ir, ys, yi)));
    ir_loop_end(ir, &i);
    ir_loop_end(ir, &item);
    kernel_end(kb, BUF_ALL, BUF_OUTPUT, chunks, true, COMBINE_CHUNK * 3 * MEMORY_COST_PER_FLOAT);
}

/* cat along dim d: an item is one index of the dimensions before d; it copies each input's block in turn. */
void lower_cat(KernelBuilder *kb)
{
    Ir *ir = kb->ir;
    const Node *n = kb->node;
    int d = n->attr.axis.dim;
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < d; i++) outer *= n->shape.dims[i];
    for (int i = d + 1; i < n->shape.rank; i++) inner *= n->shape.dims[i];
    int64_t out_block = n->shape.dims[d] * inner;
    KernelArgs a = kernel_begin(kb, "");
    LLVMValueRef ins[MAX_NODE_INPUTS];
    for (int k = 0; k < n->ninputs; k++) ins[k] = kernel_input(ir, &a, k);
    LLVMValueRef dst = kernel_operand(ir, &a, (Operand){BUF_OUTPUT, 0});
    IrLoop item = ir_loop_begin(ir, a.begin, a.end, "item");
    LLVMValueRef out = ir_f32_ptr(ir, dst, ir_mul(ir, item.index, ir_i64(ir, out_block)));
    int64_t offset = 0;
    for (int k = 0; k < n->ninputs; k++) {
        int64_t block = n->inputs[k]->shape.dims[d] * inner;
        LLVMValueRef from = ir_f32_ptr(ir, ins[k], ir_mul(ir, item.index, ir_i64(ir, block)));
        LLVMBuildMemCpy(ir->b, ir_f32_ptr(ir, out, ir_i64(ir, offset)), 4, from, 4, ir_i64(ir, block * 4));
        offset += block;
    }
    ir_loop_end(ir, &item);
    kernel_end(kb, BUF_ALL, BUF_OUTPUT, outer, true, out_block * 2 * MEMORY_COST_PER_FLOAT);
}

/* Bilinear: per row, y[o] = b[o] + sum_i x1[i] * (sum_j W[o, i, j] x2[j]); items are rows. */
void lower_bilinear(KernelBuilder *kb)
{
    Ir *ir = kb->ir;
    const Node *n = kb->node;
    const BilinearAttrs *bl = &n->attr.bilinear;
    int64_t n1 = bl->in1_features, n2 = bl->in2_features, nout = bl->out_features;
    int64_t rows = numel(&n->shape) / nout;
    LLVMValueRef weight = constant_param(kb, "weight"), bias = constant_param(kb, "bias");
    KernelArgs a = kernel_begin(kb, "");
    LLVMValueRef x1 = kernel_input(ir, &a, 0), x2 = kernel_input(ir, &a, 1);
    LLVMValueRef dst = kernel_operand(ir, &a, (Operand){BUF_OUTPUT, 0});
    IrLoop row = ir_loop_begin(ir, a.begin, a.end, "row");
    LLVMValueRef r1 = ir_f32_ptr(ir, x1, ir_mul(ir, row.index, ir_i64(ir, n1)));
    LLVMValueRef r2 = ir_f32_ptr(ir, x2, ir_mul(ir, row.index, ir_i64(ir, n2)));
    IrLoop o = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, nout), "o");
    LLVMValueRef sum = ir_var(ir, ir->f32, bias ? ir_load_f32(ir, bias, o.index) : ir_f32(ir, 0.0), "sum");
    IrLoop i = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, n1), "i");
    LLVMValueRef wrow = ir_f32_ptr(ir, weight, ir_mul(ir, ir_add(ir, ir_mul(ir, o.index, ir_i64(ir, n1)), i.index), ir_i64(ir, n2)));
    LLVMValueRef inner = ir_var(ir, ir->f32, ir_f32(ir, 0.0), "inner");
    IrLoop j = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, n2), "j");
    LLVMValueRef acc = LLVMBuildLoad2(ir->b, ir->f32, inner, "");
    LLVMBuildStore(ir->b, ir_fma(ir, ir_load_f32(ir, wrow, j.index), ir_load_f32(ir, r2, j.index), acc), inner);
    ir_loop_end(ir, &j);
    LLVMValueRef total = LLVMBuildLoad2(ir->b, ir->f32, sum, "");
    LLVMValueRef inner_value = LLVMBuildLoad2(ir->b, ir->f32, inner, "");
    LLVMBuildStore(ir->b, ir_fma(ir, ir_load_f32(ir, r1, i.index), inner_value, total), sum);
    ir_loop_end(ir, &i);
    ir_store_f32(ir, dst, ir_add(ir, ir_mul(ir, row.index, ir_i64(ir, nout)), o.index), LLVMBuildLoad2(ir->b, ir->f32, sum, ""));
    ir_loop_end(ir, &o);
    ir_loop_end(ir, &row);
    kernel_end(kb, BUF_ALL, BUF_OUTPUT, rows, true, 2 * nout * n1 * n2);
}
