/* lower_embedding.c - the kernels of Embedding and EmbeddingBag: token ids
 * (i64) in, rows of the weight table out.
 *
 * The runtime checks every id of the model's input against num_embeddings
 * before forward() runs (runtime.c, LAYERC_ERR_INPUT), so the kernels index
 * the table without a bound check.  max_norm is applied at compile time:
 * PyTorch renormalises each row it looks up, in place, to at most max_norm
 * (scale max_norm / (norm + 1e-7)), which leaves a row's value the same on
 * every later lookup, so scaling every over-long row of the table once
 * gives the same outputs.
 */
#include <math.h>

#include "lower.h"

/* The weight table, with max_norm applied as PyTorch's embedding_renorm_ does. */
static LLVMValueRef embedding_table(KernelBuilder *kb)
{
    const EmbeddingAttrs *ea = &kb->node->attr.emb;
    const float *w = node_param(kb->node, "weight")->data;
    int64_t rows = ea->num_embeddings, dim = ea->embedding_dim;
    if (ea->max_norm < 0) return lower_constant_floats(kb->ir, w, rows * dim);
    LLVMValueRef address;
    float *table = lower_constant_space(kb->ir, rows * dim, &address);
    for (int64_t r = 0; r < rows; r++) {
        const float *row = w + r * dim;
        double norm = 0.0;
        if (isinf(ea->norm_type)) {
            for (int64_t d = 0; d < dim; d++) norm = fmax(norm, fabs(row[d]));
        } else {
            for (int64_t d = 0; d < dim; d++) norm += pow(fabs(row[d]), ea->norm_type);
            norm = pow(norm, 1.0 / ea->norm_type);
        }
        float scale = norm > ea->max_norm ? (float)(ea->max_norm / (norm + 1e-7)) : 1.0f;
        for (int64_t d = 0; d < dim; d++) table[r * dim + d] = scale == 1.0f ? row[d] : row[d] * scale;
    }
    return address;
}

/* The id at position `at` of the i64 input. */
static LLVMValueRef load_id(Ir *ir, LLVMValueRef ids, LLVMValueRef at)
{
    return LLVMBuildLoad2(ir->b, ir->i64, LLVMBuildInBoundsGEP2(ir->b, ir->i64, ids, &at, 1, ""), "id");
}

/* [*] ids -> [*, dim]: item p copies row ids[p] of the table. */
void lower_embedding(KernelBuilder *kb)
{
    Ir *ir = kb->ir;
    const Node *n = kb->node;
    int64_t dim = n->attr.emb.embedding_dim;
    int64_t ids = shape_numel(&n->inputs[0]->shape);
    LLVMValueRef table = embedding_table(kb);
    KernelArgs a = kernel_begin(kb, "");
    IrLoop p = ir_loop_begin(ir, a.begin, a.end, "p");
    LLVMValueRef row = ir_f32_ptr(ir, table, ir_mul(ir, load_id(ir, a.src, p.index), ir_i64(ir, dim)));
    LLVMValueRef out = ir_f32_ptr(ir, a.dst, ir_mul(ir, p.index, ir_i64(ir, dim)));
    LLVMBuildMemCpy(ir->b, out, 4, row, 4, ir_i64(ir, dim * 4));
    ir_loop_end(ir, &p);
    kernel_end(kb, BUF_INPUT, BUF_OUTPUT, ids, true, MEMORY_COST_PER_FLOAT * dim);
}

/* One bag's reduction, lane by lane of the row: sum, mean or max (NaN wins, as PyTorch's max). */
static LLVMValueRef bag_combine(Ir *ir, BagMode mode, LLVMValueRef acc, LLVMValueRef v)
{
    if (mode != BAG_MAX) return ir_fadd(ir, acc, v);
    LLVMValueRef take = LLVMBuildOr(ir->b, LLVMBuildFCmp(ir->b, LLVMRealOGT, v, acc, ""),
                                    LLVMBuildFCmp(ir->b, LLVMRealUNO, v, v, ""), "");
    return LLVMBuildSelect(ir->b, take, v, acc, "");
}

/* [B, L] ids -> [B, dim]: item b reduces the rows of bag b, skipping
 * padding_idx (which mean does not count either); an empty bag is zeros.
 * The bag's first row starts the reduction, as PyTorch's does. */
void lower_embeddingbag(KernelBuilder *kb)
{
    Ir *ir = kb->ir;
    LLVMBuilderRef b = ir->b;
    const Node *n = kb->node;
    const EmbeddingAttrs *ea = &n->attr.emb;
    int64_t dim = ea->embedding_dim, len = n->inputs[0]->shape.dims[1];
    LLVMValueRef table = embedding_table(kb);
    KernelArgs a = kernel_begin(kb, "");
    LLVMValueRef used = ir_var(ir, ir->i64, NULL, "used");
    IrLoop bag = ir_loop_begin(ir, a.begin, a.end, "bag");
    LLVMValueRef out = ir_f32_ptr(ir, a.dst, ir_mul(ir, bag.index, ir_i64(ir, dim)));
    LLVMBuildStore(b, ir_i64(ir, 0), used);
    IrLoop k = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, len), "k");
    LLVMValueRef id = load_id(ir, a.src, ir_mad(ir, bag.index, len, k.index));
    LLVMBasicBlockRef skip = ir_if_begin(ir, LLVMBuildICmp(b, LLVMIntNE, id, ir_i64(ir, ea->padding_idx), ""));
    LLVMValueRef row = ir_f32_ptr(ir, table, ir_mul(ir, id, ir_i64(ir, dim)));
    LLVMValueRef first = LLVMBuildICmp(b, LLVMIntEQ, LLVMBuildLoad2(b, ir->i64, used, ""), ir_i64(ir, 0), "");
    IrLoop d = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, dim), "d");
    LLVMValueRef v = ir_load_f32(ir, row, d.index);
    LLVMValueRef acc = LLVMBuildSelect(b, first, v, bag_combine(ir, ea->mode, ir_load_f32(ir, out, d.index), v), "");
    ir_store_f32(ir, out, d.index, acc);
    ir_loop_end(ir, &d);
    LLVMBuildStore(b, ir_add(ir, LLVMBuildLoad2(b, ir->i64, used, ""), ir_i64(ir, 1)), used);
    ir_if_end(ir, skip);
    ir_loop_end(ir, &k);
    /* mean divides by the rows used; an empty bag is zeros */
    LLVMValueRef count = LLVMBuildLoad2(b, ir->i64, used, "");
    LLVMValueRef empty = LLVMBuildICmp(b, LLVMIntEQ, count, ir_i64(ir, 0), "");
    LLVMValueRef divisor = LLVMBuildSIToFP(b, count, ir->f32, "");
    IrLoop f = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, dim), "f");
    LLVMValueRef y = ir_load_f32(ir, out, f.index);
    if (ea->mode == BAG_MEAN) y = LLVMBuildFDiv(b, y, divisor, "");
    ir_store_f32(ir, out, f.index, LLVMBuildSelect(b, empty, ir_f32(ir, 0.0), y, ""));
    ir_loop_end(ir, &f);
    ir_loop_end(ir, &bag);
    kernel_end(kb, BUF_INPUT, BUF_OUTPUT, n->inputs[0]->shape.dims[0], true, MEMORY_COST_PER_FLOAT * dim * len);
}
