/* lower_conv_channels.c - the direct convolution vectorised over output
 * channels, as oneDNN's kernels are: every lane of every multiply is a real
 * output, whatever the width of the rows (a 14-wide row fills 14 of
 * AVX-512's 16 lanes; 56 fills 3.5 vectors).
 *
 * A work item is (sample, group, block of `vectors` x width output
 * channels, band of output rows).  A tile is up to `positions` consecutive
 * output positions (row-major, so consecutive in the output plane): within
 * one row, or across rows when the whole plane is unrolled (small planes).
 * It keeps vectors x positions accumulators in registers through the whole
 * reduction over input channels and kernel taps: per tap it loads `vectors`
 * weight vectors (a block laid out at compile time as
 * [group][block][ICg][KH][KW][channels]) and broadcasts one input float per
 * position.  Every position's column is known at compile time, and so is its
 * row in the tiles of the border rows (their own copies), so taps that land
 * on zero padding are left out: the input is read unpadded, with no padding
 * step.  An accumulator holds one position of `width` channels; the tile's
 * accumulators are transposed in registers (ir_transpose) into one vector
 * of consecutive positions per channel, which takes the fused residual add
 * and activation and is stored with one (masked) store.
 */
#include "lower_conv.h"
#include "kernel_tiles.h"

enum { MAX_CV_VECTORS = 4, MAX_CV_POSITIONS = 32, MAX_BORDER_ROWS = 8, MAX_UNROLLED_PLANE = 256 };

/* A plane of few channel blocks splits into parts (bands of rows, or parts of
 * an unrolled plane's tiles), so that a sample has this many work items for
 * the threads (CIFAR-10's 32-channel layers are one block: alone, it kept a
 * second thread idle). */
enum { PLANE_ITEMS = 8 };

/* Input rows of a band should stay in L2 while every channel block reads them. */
static const int64_t BAND_BYTES = 192 * 1024;

typedef struct ChannelPlan {
    int vectors;       /* channel vectors per block */
    int positions;     /* most positions a tile */
    bool whole_plane;  /* tiles run across rows, the plane unrolled (bands: parts of its tiles); else within each row */
    int64_t band_rows, bands;
} ChannelPlan;

/* Output positions of one tile, relative to its first row: row dy[q], column ox[q]. */
typedef struct Positions {
    int count;
    int64_t dy[MAX_CV_POSITIONS], ox[MAX_CV_POSITIONS];
} Positions;

typedef struct ChannelKernel {
    Ir *ir;
    const ConvGeometry *g;
    const ConvAttrs *cv;
    const Node *node;
    const ChannelPlan *plan;
    LLVMValueRef src, dst, wpack, bias;
    LLVMTypeRef vt;
    int width;
} ChannelKernel;

/* Input row of output row oy at kernel row ky, and column of output column ox at kernel column kx. */
static int64_t input_row(const ChannelKernel *k, int64_t oy, int64_t ky)
{
    return oy * k->cv->stride[0] + ky * k->cv->dilation[0] - k->g->pad_top;
}

static int64_t input_col(const ChannelKernel *k, int64_t ox, int64_t kx)
{
    return ox * k->cv->stride[1] + kx * k->cv->dilation[1] - k->g->pad_left;
}

/* Whether output row oy reads zero padding at some kernel row. */
static bool is_border_row(const ConvGeometry *g, const ConvAttrs *cv, int64_t oy)
{
    for (int64_t ky = 0; ky < cv->kernel[0]; ky++) {
        int64_t iy = oy * cv->stride[0] + ky * cv->dilation[0] - g->pad_top;
        if (iy < 0 || iy >= g->h) return true;
    }
    return false;
}

static int border_rows(const ConvGeometry *g, const ConvAttrs *cv)
{
    int count = 0;
    for (int64_t oy = 0; oy < g->oh; oy++) count += is_border_row(g, cv, oy);
    return count;
}

/* The tile shape from the target's tile table; whole planes of at most
 * MAX_UNROLLED_PLANE positions are unrolled; the plane or each row splits
 * into tiles of nearly equal length. */
static ChannelPlan choose_plan(const ConvGeometry *g, const ConvAttrs *cv, int width, int registers)
{
    const KernelTiles *tiles = kernel_tiles(width, registers);
    ChannelPlan p = {.vectors = tiles->channel_vectors, .positions = tiles->channel_positions};
    p.whole_plane = g->oh * g->ow <= MAX_UNROLLED_PLANE;
    int64_t span = p.whole_plane ? g->oh * g->ow : g->ow;
    int64_t tiles_a_span = (span + p.positions - 1) / p.positions;
    p.positions = (int)((span + tiles_a_span - 1) / tiles_a_span); /* 49 positions: 5 tiles of 10, not 4 of 12 and 1 */
    int64_t blocks = (g->out_c / cv->groups + p.vectors * width - 1) / (p.vectors * width);
    if (p.whole_plane) { /* bands are parts of the plane's tiles, enough for PLANE_ITEMS items a sample */
        p.band_rows = g->oh;
        p.bands = (PLANE_ITEMS + cv->groups * blocks - 1) / (cv->groups * blocks);
        if (p.bands > tiles_a_span) p.bands = tiles_a_span;
        return p;
    }
    int64_t row_bytes = (g->in_c / cv->groups) * g->w * 4 * cv->stride[0];
    int64_t rows = BAND_BYTES / (row_bytes > 0 ? row_bytes : 1);
    int64_t fewest_bands = (PLANE_ITEMS + cv->groups * blocks - 1) / (cv->groups * blocks); /* items for the threads */
    if (rows > (g->oh + fewest_bands - 1) / fewest_bands) rows = (g->oh + fewest_bands - 1) / fewest_bands;
    if (rows < 1) rows = 1;
    if (rows > g->oh) rows = g->oh;
    p.band_rows = rows;
    p.bands = (g->oh + rows - 1) / rows;
    return p;
}

/* Below this many multiply-adds an output (input channels x taps) the tile's
 * transposes and stores cost more than the lanes it fills: MobileNetV2's
 * 1x1 expansions (16 to 64 input channels), its 1x1 projection from 144 and
 * ResNet's 7x7 stem (3 channels, 147) ran 5-65% slower than the
 * position-vectorised kernel; its projections from 192 input channels up and
 * every 3x3 layer of 64 channels or more ran faster (Intel Xeon AVX-512,
 * 2026-12-03, docs/benchmarks.md). */
enum { MIN_REDUCTION = 160 };

bool conv_channel_vectors_fit(const ConvGeometry *g, const ConvAttrs *cv, int width, int registers)
{
    const KernelTiles *tiles = kernel_tiles(width, registers);
    int64_t ocg = g->out_c / cv->groups;
    if (cv->pad_mode != PAD_ZEROS || tiles->channel_vectors == 0) return false;
    if ((g->in_c / cv->groups) * cv->kernel[0] * cv->kernel[1] < MIN_REDUCTION) return false;
    if (ocg % width != 0 || ocg < (int64_t)tiles->channel_vectors * width) return false;
    return g->oh * g->ow <= MAX_UNROLLED_PLANE || border_rows(g, cv) <= MAX_BORDER_ROWS;
}

/* Weights [OC, ICg, KH, KW] -> [group][block][ICg][KH][KW][channels of the block], `block` channels a
 * block (the last block of a group may have fewer: its own width). */
static LLVMValueRef pack_weights(KernelBuilder *kb, const ConvGeometry *g, int64_t block)
{
    const ConvAttrs *cv = &kb->node->attr.conv;
    int64_t icg = g->in_c / cv->groups, ocg = g->out_c / cv->groups, taps = cv->kernel[0] * cv->kernel[1];
    LLVMValueRef address;
    float *packed = lower_constant_space(kb->ir, g->out_c * icg * taps, &address);
    const float *w = node_param(kb->node, "weight")->data;
    for (int64_t oc = 0; oc < g->out_c; oc++) {
        int64_t group = oc / ocg, in_group = oc % ocg, b = in_group / block, lane = in_group % block;
        int64_t width = ocg - b * block < block ? ocg - b * block : block; /* this block's channels */
        int64_t base = group * ocg * icg * taps + b * block * icg * taps;
        for (int64_t c = 0; c < icg; c++)
            for (int64_t k = 0; k < taps; k++) packed[base + (c * taps + k) * width + lane] = w[(oc * icg + c) * taps + k];
    }
    return address;
}

/* The accumulators of one tile (positions ps from output row oy0; row_known: oy0 is
 * `row`, so the taps of rows in the padding are left out; else every tap row is
 * inside the input) for `nvec` channel vectors from oc, then their stores. */
static void emit_tile(ChannelKernel *k, const Positions *ps, LLVMValueRef in_group, LLVMValueRef out_planes,
                      LLVMValueRef oy0, bool row_known, int64_t row, int nvec, LLVMValueRef oc, LLVMValueRef wblock)
{
    Ir *ir = k->ir;
    const ConvGeometry *g = k->g;
    const ConvAttrs *cv = k->cv;
    int64_t kh = cv->kernel[0], kw = cv->kernel[1], icg = g->in_c / cv->groups, block = (int64_t)nvec * k->width;
    int np = ps->count;
    LLVMValueRef acc[MAX_CV_VECTORS][MAX_CV_POSITIONS];
    for (int j = 0; j < nvec; j++) {
        LLVMValueRef init = k->bias ? ir_load_vec(ir, k->bias, ir_add(ir, oc, ir_i64(ir, j * k->width)), k->width)
                                    : LLVMConstNull(k->vt);
        for (int q = 0; q < np; q++) acc[j][q] = ir_var(ir, k->vt, init, "acc");
    }
    /* The loop bound is opaque so that LLVM keeps the loop (see lower_conv.c's emit_tile). */
    IrLoop c = ir_loop_begin(ir, ir_i64(ir, 0), ir_opaque(ir, ir_i64(ir, icg)), "ic");
    LLVMValueRef in_rows = ir_add(ir, ir_add(ir, in_group, ir_mul(ir, c.index, ir_i64(ir, g->h * g->w))),
                                  ir_mul(ir, oy0, ir_i64(ir, cv->stride[0] * g->w)));
    LLVMValueRef wc = ir_add(ir, wblock, ir_mul(ir, c.index, ir_i64(ir, kh * kw * block)));
    LLVMValueRef cur[MAX_CV_VECTORS][MAX_CV_POSITIONS];
    for (int j = 0; j < nvec; j++)
        for (int q = 0; q < np; q++) cur[j][q] = LLVMBuildLoad2(ir->b, k->vt, acc[j][q], "");
    for (int64_t ky = 0; ky < kh; ky++) {
        for (int64_t kx = 0; kx < kw; kx++) {
            bool inside[MAX_CV_POSITIONS], any = false;
            for (int q = 0; q < np; q++) {
                int64_t ix = input_col(k, ps->ox[q], kx);
                int64_t iy = input_row(k, row + ps->dy[q], ky);
                inside[q] = ix >= 0 && ix < g->w && (!row_known || (iy >= 0 && iy < g->h));
                any = any || inside[q];
            }
            if (!any) continue;
            LLVMValueRef wv[MAX_CV_VECTORS];
            for (int j = 0; j < nvec; j++)
                wv[j] = ir_load_vec(ir, k->wpack, ir_add(ir, wc, ir_i64(ir, (ky * kw + kx) * block + j * k->width)), k->width);
            /* The tap's input address opaque: position q + 1 at tap kx reads the float of position q at
             * tap kx + 1, and LLVM would keep such broadcasts in registers from one tap to the next (spills). */
            int64_t tap = (ky * cv->dilation[0] - g->pad_top) * g->w + kx * cv->dilation[1] - g->pad_left;
            LLVMValueRef tap_rows = ir_opaque(ir, ir_add(ir, in_rows, ir_i64(ir, tap)));
            for (int q = 0; q < np; q++) {
                if (!inside[q]) continue;
                int64_t at = ps->dy[q] * cv->stride[0] * g->w + ps->ox[q] * cv->stride[1];
                LLVMValueRef xv = ir_splat(ir, ir_load_f32(ir, k->src, ir_add(ir, tap_rows, ir_i64(ir, at))));
                for (int j = 0; j < nvec; j++) cur[j][q] = ir_fma(ir, wv[j], xv, cur[j][q]);
            }
        }
    }
    for (int j = 0; j < nvec; j++)
        for (int q = 0; q < np; q++) LLVMBuildStore(ir->b, cur[j][q], acc[j][q]);
    ir_loop_end(ir, &c);

    /* width positions at a time: transposed into a vector of positions per channel. */
    int64_t plane = g->oh * g->ow;
    LLVMValueRef first = ir_add(ir, out_planes, ir_add(ir, ir_mul(ir, oy0, ir_i64(ir, g->ow)), ir_i64(ir, ps->dy[0] * g->ow + ps->ox[0])));
    for (int j = 0; j < nvec; j++) {
        for (int q0 = 0; q0 < np; q0 += k->width) {
            int lanes = np - q0 < k->width ? np - q0 : k->width;
            LLVMValueRef rows[64];
            for (int i = 0; i < k->width; i++)
                rows[i] = i < lanes ? LLVMBuildLoad2(ir->b, k->vt, acc[j][q0 + i], "") : LLVMConstNull(k->vt);
            ir_transpose(ir, rows);
            for (int l = 0; l < k->width; l++) {
                LLVMValueRef where = ir_add(ir, first, ir_i64(ir, (j * k->width + l) * plane + q0));
                LLVMValueRef r = rows[l];
                if (k->node->has_residual) r = ir_fadd(ir, r, ir_load_vec(ir, k->dst, where, lanes)); /* the skip tensor */
                ir_store_vec(ir, k->dst, where, epilogue_vector(ir, k->node, r), lanes);
            }
        }
    }
}

/* The tiles of part `band` of a whole plane, unrolled: consecutive positions across rows. */
static void emit_plane(ChannelKernel *k, LLVMValueRef band, LLVMValueRef in_group, LLVMValueRef out_planes, int nvec,
                       LLVMValueRef oc, LLVMValueRef wblock)
{
    Ir *ir = k->ir;
    const ConvGeometry *g = k->g;
    int64_t plane = g->oh * g->ow, tiles = (plane + k->plan->positions - 1) / k->plan->positions;
    for (int64_t p0 = 0; p0 < plane; p0 += k->plan->positions) {
        int64_t part = p0 / k->plan->positions * k->plan->bands / tiles;
        LLVMBasicBlockRef merge = k->plan->bands > 1 ? ir_if_begin(ir, LLVMBuildICmp(ir->b, LLVMIntEQ, band, ir_i64(ir, part), "")) : NULL;
        Positions ps = {.count = (int)(plane - p0 < k->plan->positions ? plane - p0 : k->plan->positions)};
        int64_t row = p0 / g->ow;
        for (int q = 0; q < ps.count; q++) {
            ps.dy[q] = (p0 + q) / g->ow - row;
            ps.ox[q] = (p0 + q) % g->ow;
        }
        emit_tile(k, &ps, in_group, out_planes, ir_i64(ir, row), true, row, nvec, oc, wblock);
        if (merge) ir_if_end(ir, merge);
    }
}

/* The tiles of output row oy (row_known: it is `row`). */
static void emit_row(ChannelKernel *k, LLVMValueRef in_group, LLVMValueRef out_planes, LLVMValueRef oy, bool row_known,
                     int64_t row, int nvec, LLVMValueRef oc, LLVMValueRef wblock)
{
    int64_t ow = k->g->ow, span = k->plan->positions;
    for (int64_t x0 = 0; x0 < ow; x0 += span) {
        Positions ps = {.count = (int)(ow - x0 < span ? ow - x0 : span)};
        for (int q = 0; q < ps.count; q++) ps.ox[q] = x0 + q;
        emit_tile(k, &ps, in_group, out_planes, oy, row_known, row, nvec, oc, wblock);
    }
}

/* The rows of one band: each border row (whose kernel reaches into the padding) has its
 * own copy, chosen by comparing the row; the others share one. */
static void emit_band(ChannelKernel *k, LLVMValueRef band, LLVMValueRef in_group, LLVMValueRef out_planes, int nvec,
                      LLVMValueRef oc, LLVMValueRef wblock)
{
    Ir *ir = k->ir;
    const ConvGeometry *g = k->g;
    LLVMValueRef first = ir_mul(ir, band, ir_i64(ir, k->plan->band_rows));
    LLVMValueRef end = ir_min(ir, ir_add(ir, first, ir_i64(ir, k->plan->band_rows)), ir_i64(ir, g->oh));
    IrLoop oy = ir_loop_begin(ir, first, end, "oy");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(ir->ctx, ir->fn, "row.done");
    for (int64_t row = 0; row < g->oh; row++) {
        if (!is_border_row(g, k->cv, row)) continue;
        LLVMBasicBlockRef border = LLVMAppendBasicBlockInContext(ir->ctx, ir->fn, "row.border");
        LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(ir->ctx, ir->fn, "row.next");
        LLVMBuildCondBr(ir->b, LLVMBuildICmp(ir->b, LLVMIntEQ, oy.index, ir_i64(ir, row), ""), border, next);
        LLVMPositionBuilderAtEnd(ir->b, border);
        emit_row(k, in_group, out_planes, ir_i64(ir, row), true, row, nvec, oc, wblock);
        LLVMBuildBr(ir->b, done);
        LLVMPositionBuilderAtEnd(ir->b, next);
    }
    emit_row(k, in_group, out_planes, oy.index, false, 0, nvec, oc, wblock);
    LLVMBuildBr(ir->b, done);
    LLVMPositionBuilderAtEnd(ir->b, done);
    ir_loop_end(ir, &oy);
}

void lower_conv_channel_vectors(KernelBuilder *kb, const ConvGeometry *g)
{
    Ir *ir = kb->ir;
    const ConvAttrs *cv = &kb->node->attr.conv;
    ChannelPlan plan = choose_plan(g, cv, ir->vector_width, ir->vector_registers);
    int64_t icg = g->in_c / cv->groups, ocg = g->out_c / cv->groups, taps = cv->kernel[0] * cv->kernel[1];
    int64_t width = ir->vector_width, block = plan.vectors * width, blocks = (ocg + block - 1) / block;
    ChannelKernel k = {.ir = ir, .g = g, .cv = cv, .node = kb->node, .plan = &plan, .width = (int)width};
    k.vt = ir_vec_type(ir);
    k.wpack = pack_weights(kb, g, block);
    k.bias = constant_param(kb, "bias");
    KernelArgs a = kernel_begin(kb, "");
    k.src = a.src;
    k.dst = a.dst;
    IrLoop item = ir_loop_begin(ir, a.begin, a.end, "item"); /* (sample, band, group, block) */
    int64_t per_band = cv->groups * blocks;
    LLVMValueRef sample = ir_div_const(ir, item.index, plan.bands * per_band);
    LLVMValueRef band = ir_rem_const(ir, ir_div_const(ir, item.index, per_band), plan.bands);
    LLVMValueRef group = ir_rem_const(ir, ir_div_const(ir, item.index, blocks), cv->groups);
    LLVMValueRef blk = ir_rem_const(ir, item.index, blocks);
    LLVMValueRef oc = ir_add(ir, ir_mul(ir, group, ir_i64(ir, ocg)), ir_mul(ir, blk, ir_i64(ir, block)));
    LLVMValueRef in_group = ir_mul(ir, ir_add(ir, ir_mul(ir, sample, ir_i64(ir, g->in_c)), ir_mul(ir, group, ir_i64(ir, icg))),
                                   ir_i64(ir, g->h * g->w));
    LLVMValueRef out_planes = ir_mul(ir, ir_add(ir, ir_mul(ir, sample, ir_i64(ir, g->out_c)), oc), ir_i64(ir, g->oh * g->ow));
    LLVMValueRef wblock = ir_mul(ir, oc, ir_i64(ir, icg * taps)); /* blocks before it hold `block` channels each */
    int last = (int)((ocg - (blocks - 1) * block) / width); /* vectors in a group's last block */
    LLVMBasicBlockRef partial = NULL, done = NULL;
    if (last != plan.vectors) {
        LLVMValueRef is_last = LLVMBuildICmp(ir->b, LLVMIntEQ, blk, ir_i64(ir, blocks - 1), "");
        LLVMBasicBlockRef full = LLVMAppendBasicBlockInContext(ir->ctx, ir->fn, "full");
        partial = LLVMAppendBasicBlockInContext(ir->ctx, ir->fn, "partial");
        done = LLVMAppendBasicBlockInContext(ir->ctx, ir->fn, "block.done");
        LLVMBuildCondBr(ir->b, is_last, partial, full);
        LLVMPositionBuilderAtEnd(ir->b, full);
    }
    for (int pass = 0; pass < (last != plan.vectors ? 2 : 1); pass++) {
        if (pass == 1) LLVMPositionBuilderAtEnd(ir->b, partial);
        int nvec = pass == 0 ? plan.vectors : last;
        if (plan.whole_plane) emit_plane(&k, band, in_group, out_planes, nvec, oc, wblock);
        else emit_band(&k, band, in_group, out_planes, nvec, oc, wblock);
        if (done) LLVMBuildBr(ir->b, done);
    }
    if (done) LLVMPositionBuilderAtEnd(ir->b, done);
    ir_loop_end(ir, &item);
    int64_t positions = plan.whole_plane ? (g->oh * g->ow + plan.bands - 1) / plan.bands : plan.band_rows * g->ow;
    kernel_end(kb, BUF_INPUT, BUF_OUTPUT, g->samples * plan.bands * per_band, true, 2 * icg * taps * block * positions);
}
