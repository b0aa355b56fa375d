/* lower_gemm.c - the Linear kernel: [rows, in] x W^T + bias -> [rows, out]
 * as a packed, register-tiled matrix product (lower_kernels.c dispatches
 * Linear and LazyLinear here; lower_conv.c tiles Conv2d the same way).
 *
 * The weight is packed at compile time into panels of NR output features,
 * [panel][in][NR], zero past out_features, so a tile reads NR contiguous
 * weights per input feature.  A tile of MR rows x NR outputs keeps
 * MR * NR / width vector accumulators in registers through the whole
 * reduction: per input feature it loads NR / width weight vectors,
 * broadcasts one input per row and does MR * NR / width fmas.  The bias
 * starts the accumulators and the fused activation runs in registers before
 * the store; the tail panel's padding lanes are computed but not stored.
 *
 * Work items are (panel group, row), group major, rows counted over the
 * whole run-time batch.  A call of items [begin, end) takes, for each group
 * it touches, its run of rows in blocks of MR (the rest one by one), and per
 * block every panel of the group: the group's weights stay in cache while
 * the rows sweep them, each thread streams only its own groups' weights, and
 * batch 1 (a memory-bound GEMV) still has one item per group for the thread
 * pool.  Every output element is the bias, then one vector multiply-add per
 * input feature in order, then the activation, whichever tile or split
 * computes it, so results do not depend on the thread count.  The
 * multiply-add is llvm.fmuladd (ir_fma), not llvm.fma: without FMA
 * hardware (x86-64-v2) llvm.fma becomes an fmaf call per lane, 25 times
 * slower; every tile uses the same vector operation, so a build fuses all of
 * them or none.
 */
#include "kernel_tiles.h"
#include "lower_gemm.h"

enum {
    MAX_TILE_ROWS = 8,
    MAX_PANEL_VECTORS = 3,
    MAX_TILE_VECTORS = MAX_TILE_ROWS * MAX_PANEL_VECTORS,
    /* Aim for this many groups, so a single row still splits over threads. */
    MIN_GROUPS = 8,
};

/* Weights of one group, kept in L2 (1 MiB per core on Zen 4) while rows sweep them. */
static const int64_t GROUP_BYTES = 512 * 1024;

/* The panel width (2 or 3 vectors; 1 when out_f fits in one, as a classifier
 * head of a few outputs) that pads out_f least, the widest on a tie:
 * one broadcast feeds more fmas.  MR rows then take the registers left after
 * the panel's weight vectors and one broadcast; a single row takes MR panels
 * instead, so it too has MR * NR / width independent fma chains. */
static GemmPlan choose_plan(int64_t in_f, int64_t out_f, int64_t rows_per_sample, int width, int registers, bool one_group)
{
    GemmPlan p = {.width = width, .in_f = in_f, .out_f = out_f, .rows_per_sample = rows_per_sample};
    int64_t best_padded = -1;
    const KernelTiles *tiles = kernel_tiles(width, registers);
    int fewest = out_f <= width ? 1 : 2; /* one vector only for outputs that fit in it: a classifier head */
    int widest = tiles->gemm_panel_vectors < MAX_PANEL_VECTORS ? tiles->gemm_panel_vectors : MAX_PANEL_VECTORS;
    for (int vectors = widest; vectors >= fewest; vectors--) {
        int64_t panel = (int64_t)vectors * width;
        int64_t padded = (out_f + panel - 1) / panel * panel;
        if (best_padded < 0 || padded < best_padded) {
            best_padded = padded;
            p.panel_vectors = vectors;
        }
    }
    p.panel = p.panel_vectors * width;
    p.tile_rows = (registers - p.panel_vectors - 1) / p.panel_vectors;
    if (p.tile_rows > tiles->gemm_rows) p.tile_rows = tiles->gemm_rows;
    if (p.tile_rows > MAX_TILE_ROWS) p.tile_rows = MAX_TILE_ROWS;
    if (p.tile_rows < 1) p.tile_rows = 1;
    p.panels = (out_f + p.panel - 1) / p.panel;
    int64_t panel_bytes = in_f * p.panel * (int64_t)sizeof(float);
    p.group_panels = GROUP_BYTES / panel_bytes;
    /* A weight bigger than a group makes batch 1 memory-bound: split it for the threads. */
    if (p.group_panels < p.panels && p.group_panels > p.panels / MIN_GROUPS) p.group_panels = p.panels / MIN_GROUPS;
    if (p.group_panels < 1) p.group_panels = 1;
    if (one_group) p.group_panels = p.panels;
    p.groups = (p.panels + p.group_panels - 1) / p.group_panels;
    return p;
}

/* W [out, in] -> [panel][in][NR], zero past out_f, in the constant pool; returns its address. */
static LLVMValueRef pack_weight(Ir *ir, const GemmPlan *p, const float *w)
{
    LLVMValueRef address;
    float *packed = lower_constant_space(ir, p->panels * p->in_f * p->panel, &address);
    /* Panel by panel, writing in order and reading NR rows of W side by side:
     * VGG16's 102 M weights pack in a fraction of the time a column-by-column
     * scatter takes. */
    for (int64_t panel = 0; panel < p->panels; panel++) {
        float *out = packed + panel * p->in_f * p->panel;
        int64_t lanes = p->out_f - panel * p->panel < p->panel ? p->out_f - panel * p->panel : p->panel;
        const float *rows = w + panel * p->panel * p->in_f;
        for (int64_t k = 0; k < p->in_f; k++)
            for (int64_t lane = 0; lane < lanes; lane++) out[k * p->panel + lane] = rows[lane * p->in_f + k];
    }
    return address;
}

/* The bias padded with zeros to whole panels, so the tail panel loads whole vectors. */
static LLVMValueRef pack_bias(Ir *ir, const GemmPlan *p, const float *bias)
{
    if (!bias) return NULL;
    LLVMValueRef address;
    float *padded = lower_constant_space(ir, p->panels * p->panel, &address);
    for (int64_t o = 0; o < p->out_f; o++) padded[o] = bias[o];
    return address;
}

Gemm gemm_prepare(Ir *ir, int64_t in_f, int64_t out_f, int64_t rows_per_sample, const float *weight, const float *bias,
                  bool one_group)
{
    Gemm t = {.ir = ir};
    t.plan = choose_plan(in_f, out_f, rows_per_sample, ir->vector_width, ir->vector_registers, one_group);
    t.wpack = pack_weight(ir, &t.plan, weight);
    t.bias = pack_bias(ir, &t.plan, bias);
    t.src_stride = in_f;
    t.dst_stride = t.residual_stride = out_f;
    return t;
}

/* The activation, then the residual, on one output vector. */
static LLVMValueRef finish_vector(Gemm *t, LLVMValueRef y, LLVMValueRef residual_at, int lanes)
{
    Ir *ir = t->ir;
    if (t->has_activation) y = activation(ir, t->activation, &t->activation_attr, y);
    if (t->residual) y = ir_fadd(ir, y, ir_load_vec(ir, t->residual, residual_at, lanes));
    return y;
}

/* A whole vector of a packed constant: its vectors start on multiples of the
 * width, so the load is aligned (SSE can then fold it into the multiply). */
static LLVMValueRef load_packed(Gemm *t, LLVMValueRef base, LLVMValueRef index)
{
    Ir *ir = t->ir;
    LLVMValueRef v = LLVMBuildLoad2(ir->b, ir_vec_type(ir), ir_f32_ptr(ir, base, index), "");
    LLVMSetAlignment(v, (unsigned)t->plan.width * 4);
    return v;
}

/* ---- the tile ---- */

/* Rows [row, row + rows) x `panels` panels from `panel`, of which the first
 * `outputs` outputs are real: accumulators in registers across every input
 * feature, then activation and store.  Either rows or panels is 1. */
static void emit_tile(Gemm *t, LLVMValueRef row, int rows, LLVMValueRef panel, int panels, int64_t outputs)
{
    Ir *ir = t->ir;
    const GemmPlan *p = &t->plan;
    int nvec = panels * p->panel_vectors;
    LLVMValueRef first_out = ir_mul(ir, panel, ir_i64(ir, p->panel));
    LLVMValueRef acc[MAX_TILE_ROWS][MAX_TILE_VECTORS];
    for (int v = 0; v < nvec; v++) {
        LLVMValueRef init = LLVMConstNull(ir_vec_type(ir));
        if (t->bias) init = load_packed(t, t->bias, ir_add(ir, first_out, ir_i64(ir, v * p->width)));
        for (int r = 0; r < rows; r++) acc[r][v] = ir_var(ir, ir_vec_type(ir), init, "acc");
    }
    LLVMValueRef in_row = ir_mul(ir, row, ir_i64(ir, t->src_stride));
    LLVMValueRef w_panel = ir_mul(ir, panel, ir_i64(ir, p->in_f * p->panel));
    IrLoop k = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, p->in_f), "k");
    LLVMValueRef w_at = ir_add(ir, w_panel, ir_mul(ir, k.index, ir_i64(ir, p->panel)));
    LLVMValueRef w[MAX_TILE_VECTORS];
    for (int v = 0; v < nvec; v++) {
        int64_t offset = v / p->panel_vectors * p->in_f * p->panel + v % p->panel_vectors * p->width;
        w[v] = load_packed(t, t->wpack, ir_add(ir, w_at, ir_i64(ir, offset)));
    }
    for (int r = 0; r < rows; r++) {
        LLVMValueRef x_at = ir_add(ir, ir_add(ir, in_row, ir_i64(ir, r * t->src_stride)), k.index);
        LLVMValueRef x = ir_splat(ir, ir_load_f32(ir, t->src, x_at));
        for (int v = 0; v < nvec; v++) {
            LLVMValueRef sum = ir_fma(ir, x, w[v], LLVMBuildLoad2(ir->b, ir_vec_type(ir), acc[r][v], ""));
            LLVMBuildStore(ir->b, sum, acc[r][v]);
        }
    }
    ir_loop_end(ir, &k);
    LLVMValueRef out_row = ir_add(ir, ir_mul(ir, row, ir_i64(ir, t->dst_stride)), first_out);
    LLVMValueRef res_row = ir_add(ir, ir_mul(ir, row, ir_i64(ir, t->residual_stride)), first_out);
    for (int r = 0; r < rows; r++) {
        for (int v = 0; v < nvec; v++) {
            int64_t lanes = outputs - (int64_t)v * p->width; /* the tail panel: masked, or nothing */
            if (lanes <= 0) break;
            int stored = lanes < p->width ? (int)lanes : p->width;
            LLVMValueRef res_at = ir_add(ir, res_row, ir_i64(ir, r * t->residual_stride + v * p->width));
            LLVMValueRef y = finish_vector(t, LLVMBuildLoad2(ir->b, ir_vec_type(ir), acc[r][v], ""), res_at, stored);
            LLVMValueRef at = ir_add(ir, out_row, ir_i64(ir, r * t->dst_stride + v * p->width));
            ir_store_vec(ir, t->dst, at, y, stored);
        }
    }
}

/* Rows [row, row + rows) against `count` panels from `first`, whose first
 * `outputs` outputs are real.  A single row takes MR panels per tile; the
 * last tile takes what is left, the tail panel included. */
static void emit_panels(Gemm *t, LLVMValueRef row, int rows, LLVMValueRef first, int64_t count, int64_t outputs)
{
    Ir *ir = t->ir;
    const GemmPlan *p = &t->plan;
    int wide = rows == 1 ? p->tile_rows : 1;
    int64_t uniform = count / wide;
    if (count % wide == 0 && outputs < count * p->panel) uniform--; /* the tail goes with the rest */
    if (uniform > 0) {
        IrLoop tile = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, uniform), "panels");
        emit_tile(t, row, rows, ir_add(ir, first, ir_mul(ir, tile.index, ir_i64(ir, wide))), wide, (int64_t)wide * p->panel);
        ir_loop_end(ir, &tile);
    }
    int64_t done = uniform * wide;
    if (done < count)
        emit_tile(t, row, rows, ir_add(ir, first, ir_i64(ir, done)), (int)(count - done), outputs - done * p->panel);
}

/* Rows [row, row + rows) against every panel of `group`; the last group may
 * have fewer panels and holds the tail. */
static void emit_group_panels(Gemm *t, LLVMValueRef group, LLVMValueRef row, int rows)
{
    Ir *ir = t->ir;
    const GemmPlan *p = &t->plan;
    LLVMValueRef first = ir_mul(ir, group, ir_i64(ir, p->group_panels));
    int64_t last_first = (p->groups - 1) * p->group_panels;
    int64_t last_count = p->panels - last_first, last_outputs = p->out_f - last_first * p->panel;
    if (p->groups == 1) {
        emit_panels(t, row, rows, first, last_count, last_outputs);
        return;
    }
    if (last_count == p->group_panels && last_outputs == last_count * p->panel) {
        emit_panels(t, row, rows, first, p->group_panels, p->group_panels * p->panel);
        return;
    }
    LLVMValueRef is_last = LLVMBuildICmp(ir->b, LLVMIntEQ, group, ir_i64(ir, p->groups - 1), "");
    LLVMBasicBlockRef last = LLVMAppendBasicBlockInContext(ir->ctx, ir->fn, "last_group");
    LLVMBasicBlockRef other = LLVMAppendBasicBlockInContext(ir->ctx, ir->fn, "group");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(ir->ctx, ir->fn, "group.done");
    LLVMBuildCondBr(ir->b, is_last, last, other);
    LLVMPositionBuilderAtEnd(ir->b, other);
    emit_panels(t, row, rows, first, p->group_panels, p->group_panels * p->panel);
    LLVMBuildBr(ir->b, done);
    LLVMPositionBuilderAtEnd(ir->b, last);
    emit_panels(t, row, rows, ir_i64(ir, last_first), last_count, last_outputs);
    LLVMBuildBr(ir->b, done);
    LLVMPositionBuilderAtEnd(ir->b, done);
}

void gemm_emit_row_range(Gemm *t, LLVMValueRef count)
{
    Ir *ir = t->ir;
    if (t->plan.groups != 1) LAYERC_UNREACHABLE("gemm_emit_row_range on a plan of several groups");
    Gemm by_panel = *t;
    by_panel.plan.group_panels = 1;
    by_panel.plan.groups = t->plan.panels;
    int tile = t->plan.tile_rows;
    LLVMValueRef blocks = ir_div_const(ir, count, tile);
    IrLoop panel = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, by_panel.plan.groups), "panel");
    IrLoop block = ir_loop_begin(ir, ir_i64(ir, 0), blocks, "block");
    emit_group_panels(&by_panel, panel.index, ir_mul(ir, block.index, ir_i64(ir, tile)), tile);
    ir_loop_end(ir, &block);
    ir_loop_end(ir, &panel);
    if (tile > 1) {
        IrLoop row = ir_loop_begin(ir, ir_mul(ir, blocks, ir_i64(ir, tile)), count, "row");
        emit_group_panels(t, ir_i64(ir, 0), row.index, 1);
        ir_loop_end(ir, &row);
    }
}

/* Items [begin, end) = (group, row) with rows = rows_per_sample * batch:
 * per group touched, its rows in blocks of MR, then the rest one at a time. */
static void emit_items(Gemm *t, const KernelArgs *a)
{
    Ir *ir = t->ir;
    LLVMBuilderRef b = ir->b;
    const GemmPlan *p = &t->plan;
    LLVMValueRef rows = ir_mul(ir, a->batch, ir_i64(ir, p->rows_per_sample));
    LLVMValueRef first_group = LLVMBuildUDiv(b, a->begin, rows, "");
    LLVMValueRef end_group = LLVMBuildUDiv(b, ir_sub(ir, ir_add(ir, a->end, rows), ir_i64(ir, 1)), rows, "");
    IrLoop group = ir_loop_begin(ir, first_group, end_group, "group");
    LLVMValueRef group_item = ir_mul(ir, group.index, rows);
    LLVMValueRef row_begin = ir_sub(ir, a->begin, group_item);
    row_begin = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, row_begin, ir_i64(ir, 0), ""), ir_i64(ir, 0), row_begin, "");
    LLVMValueRef row_end = ir_min(ir, ir_sub(ir, a->end, group_item), rows);
    LLVMValueRef blocks = ir_div_const(ir, ir_sub(ir, row_end, row_begin), p->tile_rows);
    IrLoop block = ir_loop_begin(ir, ir_i64(ir, 0), blocks, "block");
    emit_group_panels(t, group.index, ir_add(ir, row_begin, ir_mul(ir, block.index, ir_i64(ir, p->tile_rows))), p->tile_rows);
    ir_loop_end(ir, &block);
    if (p->tile_rows > 1) {
        LLVMValueRef rest_begin = ir_add(ir, row_begin, ir_mul(ir, blocks, ir_i64(ir, p->tile_rows)));
        IrLoop row = ir_loop_begin(ir, rest_begin, row_end, "row");
        emit_group_panels(t, group.index, row.index, 1);
        ir_loop_end(ir, &row);
    }
    ir_loop_end(ir, &group);
}

/* Ends the kernel of product t: its items (group, row) over `rows` rows a batch unit, as emit_items takes them. */
static void emit_product_step(KernelBuilder *kb, Gemm *t, const KernelArgs *a, BufferRole src, BufferRole dst, int64_t rows)
{
    emit_items(t, a);
    /* An item is one row against one group's panels, padding included (a group of a small weight may have
     * room for more panels than there are: it has them all). */
    const GemmPlan *p = &t->plan;
    int64_t panels = p->group_panels < p->panels ? p->group_panels : p->panels;
    kernel_end(kb, src, dst, p->groups * rows, true, 2 * p->in_f * panels * p->panel);
}

void lower_linear_gemm(KernelBuilder *kb)
{
    const Node *n = kb->node;
    const LinearAttrs *la = &n->attr.linear;
    int64_t rows_per_sample = shape_numel(&n->shape) / la->out_features;
    const Param *bias = node_param(n, "bias");
    Gemm t = gemm_prepare(kb->ir, la->in_features, la->out_features, rows_per_sample, node_param(n, "weight")->data,
                          bias ? bias->data : NULL, false);
    t.has_activation = n->has_epilogue;
    t.activation = n->epilogue;
    t.activation_attr = n->epilogue_attr;
    KernelArgs a = kernel_begin(kb, "");
    t.src = a.src;
    t.dst = a.dst;
    emit_product_step(kb, &t, &a, BUF_INPUT, BUF_OUTPUT, rows_per_sample);
}

void lower_matmul_step(KernelBuilder *kb, const MatmulStep *m)
{
    Gemm t = gemm_prepare(kb->ir, m->in_f, m->out_f, m->rows, m->weight, m->bias, false);
    t.has_activation = m->has_activation;
    t.activation = m->activation;
    t.activation_attr = m->activation_attr;
    KernelArgs a = kernel_begin(kb, m->what);
    t.src = kernel_operand(kb->ir, &a, m->src);
    t.dst = kernel_operand(kb->ir, &a, m->dst);
    if (m->has_residual) t.residual = kernel_operand(kb->ir, &a, m->residual);
    emit_product_step(kb, &t, &a, BUF_ALL, BUF_ALL, m->rows);
}
