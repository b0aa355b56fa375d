/* lower_conv.c - the Conv2d kernels: a padding step (into scratch memory, each
 * padded row split into column phases for a strided kernel: conv_plan.h's
 * PaddedLayout), the register-tiled direct convolution (any stride up to 4),
 * the depthwise convolution, and a plain direct convolution for what none of
 * them takes (column or row strides above 4); and the choice among them and
 * the kernel vectorised over output channels (lower_conv_channels.c), which
 * takes zero-padded convolutions of whole vectors of output channels and a
 * long enough reduction.
 *
 * Tiled kernel: a work item is (sample, band of output rows, group, block of
 * oc_tile output channels); the blocks of a band run in turn, so the band's
 * input rows stay in cache.  A tile is a set of vectors of output positions
 * (along a row, or several narrow rows; a 1x1 convolution on a small plane
 * takes the whole plane as one row); it keeps oc_tile x vectors
 * accumulators in registers through the whole reduction over input channels
 * and kernel taps (taps unrolled at compile time), adds the fused epilogue in
 * registers and stores.  Per tap it loads one input vector per tile vector
 * (shared by the oc_tile channels) and broadcasts oc_tile weights from a block
 * laid out at compile time as [group][block][ic][kh][kw][oc_tile].  The tile
 * shape and band height are chosen per layer from its shape (choose_tile_plan).
 * The input is read pre-padded and phase-split, so the inner loops have no
 * bounds checks and a strided tap's inputs are consecutive floats; a row's
 * tail is a masked vector.  The depthwise kernel is described where it is
 * defined.
 */
#include <stdio.h>
#include <string.h>

#include "conv_plan.h"
#include "kernel_tiles.h"
#include "lower_conv.h"

/* ---- Conv2d ---- */

/* The padded-input index for an index i of the padded plane (non-zero modes). */
static LLVMValueRef pad_index(Ir *ir, PadMode mode, LLVMValueRef i, int64_t size)
{
    LLVMBuilderRef b = ir->b;
    LLVMValueRef zero = ir_i64(ir, 0), last = ir_i64(ir, size - 1);
    LLVMValueRef below = LLVMBuildICmp(b, LLVMIntSLT, i, zero, "");
    LLVMValueRef above = LLVMBuildICmp(b, LLVMIntSGT, i, last, "");
    switch (mode) {
    case PAD_REFLECT: /* -1 -> 1, size -> size - 2 */
        return LLVMBuildSelect(b, below, LLVMBuildNeg(b, i, ""),
                               LLVMBuildSelect(b, above, ir_sub(ir, ir_i64(ir, 2 * (size - 1)), i), i, ""), "");
    case PAD_REPLICATE: return LLVMBuildSelect(b, below, zero, LLVMBuildSelect(b, above, last, i, ""), "");
    case PAD_CIRCULAR:
        return LLVMBuildSelect(b, below, ir_add(ir, i, ir_i64(ir, size)),
                               LLVMBuildSelect(b, above, ir_sub(ir, i, ir_i64(ir, size)), i, ""), "");
    case PAD_ZEROS: /* a clamped index; the caller selects 0 outside */
        return LLVMBuildSelect(b, below, zero, LLVMBuildSelect(b, above, last, i, ""), "");
    }
    LAYERC_UNREACHABLE("unknown padding mode");
}

/* Zeros to dst[at, at + count) (count known at compile time): whole vectors, then a masked tail. */
static void store_zeros(Ir *ir, LLVMValueRef dst, LLVMValueRef at, int64_t count)
{
    if (count <= 0) return;
    int64_t w = ir->vector_width, full = count / w;
    LLVMValueRef zero = LLVMConstNull(ir_vec_type(ir));
    if (full > 2) {
        IrLoop v = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, full), "zero");
        ir_store_vec(ir, dst, ir_add(ir, at, ir_mul(ir, v.index, ir_i64(ir, w))), zero, (int)w);
        ir_loop_end(ir, &v);
    } else {
        for (int64_t k = 0; k < full; k++) ir_store_vec(ir, dst, ir_add(ir, at, ir_i64(ir, k * w)), zero, (int)w);
    }
    if (count % w) ir_store_vec(ir, dst, ir_add(ir, at, ir_i64(ir, full * w)), zero, (int)(count % w));
}

/* `lanes` consecutive elements of a row that start at src[at] and step by `step` (1 or 2), as a vector
 * (lanes past `lanes` are 0); `lanes` < width reads nothing past the last element. */
static LLVMValueRef load_strided(Ir *ir, LLVMValueRef src, LLVMValueRef at, int64_t step, int lanes)
{
    if (step == 1) return ir_load_vec(ir, src, at, lanes);
    int w = ir->vector_width;
    int span = (lanes - 1) * 2 + 1; /* floats from the first to the last element read */
    LLVMValueRef lo = ir_load_vec(ir, src, at, span < w ? span : w);
    LLVMValueRef hi = span > w ? ir_load_vec(ir, src, ir_add(ir, at, ir_i64(ir, w)), span - w < w ? span - w : w)
                               : LLVMConstNull(ir_vec_type(ir));
    return ir_even_lanes(ir, lo, hi);
}

/* The padded copy of the input (zero padding, column step 1 or 2), a vector at a time. */
static void pad_rows_zeros(KernelBuilder *kb, const PaddedLayout *l, KernelArgs *a, LLVMValueRef plane, int64_t h,
                           int64_t w)
{
    Ir *ir = kb->ir;
    const ConvAttrs *cv = &kb->node->attr.conv;
    int64_t pt = cv->pad_begin[0], pl = cv->pad_begin[1], row_len = l->phases * l->phase_width, vw = ir->vector_width;
    int64_t first = (pt + l->row_step - 1) / l->row_step; /* stored rows above it are zero padding */
    int64_t end = (h - 1 + pt) / l->row_step + 1;        /* ... and from it on */
    if (first > l->rows) first = l->rows;
    if (end > l->rows) end = l->rows;
    if (end < first) end = first;
    LLVMValueRef in_base = ir_mul(ir, plane, ir_i64(ir, h * w));
    LLVMValueRef out_base = ir_mul(ir, plane, ir_i64(ir, l->rows * row_len));
    store_zeros(ir, a->dst, out_base, first * row_len);
    store_zeros(ir, a->dst, ir_add(ir, out_base, ir_i64(ir, end * row_len)), (l->rows - end) * row_len);
    if (end == first) return;
    IrLoop r = ir_loop_begin(ir, ir_i64(ir, first), ir_i64(ir, end), "row");
    LLVMValueRef iy = ir_sub(ir, ir_mul(ir, r.index, ir_i64(ir, l->row_step)), ir_i64(ir, pt));
    LLVMValueRef src_row = ir_add(ir, in_base, ir_mul(ir, iy, ir_i64(ir, w)));
    LLVMValueRef dst_row = ir_add(ir, out_base, ir_mul(ir, r.index, ir_i64(ir, row_len)));
    int64_t s = l->col_step;
    for (int64_t p = 0; p < l->phases; p++) {
        /* Phase p's element j is padded column j * s + p, input column j * s + p - pl. */
        int64_t lo = pl - p <= 0 ? 0 : (pl - p + s - 1) / s;
        int64_t hi = w - 1 + pl - p < 0 ? 0 : (w - 1 + pl - p) / s + 1;
        if (lo > l->phase_width) lo = l->phase_width;
        if (hi > l->phase_width) hi = l->phase_width;
        if (hi < lo) hi = lo;
        LLVMValueRef dst_phase = ir_add(ir, dst_row, ir_i64(ir, p * l->phase_width));
        store_zeros(ir, a->dst, dst_phase, lo);
        store_zeros(ir, a->dst, ir_add(ir, dst_phase, ir_i64(ir, hi)), l->phase_width - hi);
        /* Whole vectors while their s * width floats stay inside the input row. */
        int64_t n = hi - lo, full = 0;
        while ((full + 1) * vw <= n && (lo + (full + 1) * vw) * s - 1 + p - pl <= w - 1) full++;
        if (full > 0) {
            IrLoop v = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, full), "v");
            LLVMValueRef j = ir_add(ir, ir_i64(ir, lo), ir_mul(ir, v.index, ir_i64(ir, vw)));
            LLVMValueRef at = ir_add(ir, src_row, ir_add(ir, ir_mul(ir, j, ir_i64(ir, s)), ir_i64(ir, p - pl)));
            ir_store_vec(ir, a->dst, ir_add(ir, dst_phase, j), load_strided(ir, a->src, at, s, (int)vw), (int)vw);
            ir_loop_end(ir, &v);
        }
        for (int64_t j = lo + full * vw; j < hi; j += vw) {
            int lanes = (int)(hi - j < vw ? hi - j : vw);
            LLVMValueRef at = ir_add(ir, src_row, ir_i64(ir, j * s + p - pl));
            ir_store_vec(ir, a->dst, ir_add(ir, dst_phase, ir_i64(ir, j)), load_strided(ir, a->src, at, s, lanes), lanes);
        }
    }
    ir_loop_end(ir, &r);
}

/* [planes, H, W] -> the padded layout l (conv_plan.h) with zero, reflect, replicate or circular values. */
static void lower_conv_pad(KernelBuilder *kb, int64_t planes, int64_t h, int64_t w, const PaddedLayout *l)
{
    Ir *ir = kb->ir;
    const ConvAttrs *cv = &kb->node->attr.conv;
    int64_t pw = cv->padded[1], row_len = l->phases * l->phase_width;
    KernelArgs a = kernel_begin(kb, ".pad");
    IrLoop plane = ir_loop_begin(ir, a.begin, a.end, "plane");
    if (cv->pad_mode == PAD_ZEROS && l->col_step <= 2) {
        pad_rows_zeros(kb, l, &a, plane.index, h, w);
    } else {
        LLVMValueRef in_base = ir_mul(ir, plane.index, ir_i64(ir, h * w));
        LLVMValueRef out_base = ir_mul(ir, plane.index, ir_i64(ir, l->rows * row_len));
        IrLoop y = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, l->rows), "y");
        LLVMValueRef sy = ir_sub(ir, ir_mul(ir, y.index, ir_i64(ir, l->row_step)), ir_i64(ir, cv->pad_begin[0]));
        LLVMValueRef iy = pad_index(ir, cv->pad_mode, sy, h);
        IrLoop p = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, l->phases), "phase");
        IrLoop x = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, l->phase_width), "x");
        /* The padded column; past the padded plane (a phase's last elements, never read): its last column. */
        LLVMValueRef px = ir_min(ir, ir_add(ir, ir_mul(ir, x.index, ir_i64(ir, l->col_step)), p.index), ir_i64(ir, pw - 1));
        LLVMValueRef sx = ir_sub(ir, px, ir_i64(ir, cv->pad_begin[1]));
        LLVMValueRef ix = pad_index(ir, cv->pad_mode, sx, w);
        LLVMValueRef v = ir_load_f32(ir, a.src, ir_add(ir, in_base, ir_mad(ir, iy, w, ix)));
        if (cv->pad_mode == PAD_ZEROS) { /* outside the input: 0 */
            LLVMBuilderRef b = ir->b;
            LLVMValueRef inside = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntEQ, iy, sy, ""), LLVMBuildICmp(b, LLVMIntEQ, ix, sx, ""), "");
            v = LLVMBuildSelect(b, inside, v, ir_f32(ir, 0), "");
        }
        LLVMValueRef at = ir_add(ir, out_base, ir_add(ir, ir_mul(ir, y.index, ir_i64(ir, row_len)),
                                                      ir_add(ir, ir_mul(ir, p.index, ir_i64(ir, l->phase_width)), x.index)));
        ir_store_f32(ir, a.dst, at, v);
        ir_loop_end(ir, &x);
        ir_loop_end(ir, &p);
        ir_loop_end(ir, &y);
    }
    ir_loop_end(ir, &plane);
    kernel_end(kb, BUF_INPUT, BUF_SCRATCH, planes, true, l->rows * row_len * 2);
}

/* Output positions o in [lo, hi) whose input index o*stride - pad + tap stays in [0, size). */
static void valid_range(int64_t size, int64_t out, int64_t stride, int64_t pad, int64_t tap, int64_t *lo, int64_t *hi)
{
    int64_t first = pad - tap; /* o*stride >= first */
    *lo = first <= 0 ? 0 : (first + stride - 1) / stride;
    int64_t last = size - 1 + pad - tap; /* o*stride <= last */
    *hi = last < 0 ? 0 : last / stride + 1;
    if (*hi > out) *hi = out;
    if (*lo > *hi) *lo = *hi;
}

/* Item (sample, oc): out[oc] plane = bias + sum over its group's channels and taps. */
static void lower_conv_direct(KernelBuilder *kb, const ConvGeometry *g, BufferRole src)
{
    Ir *ir = kb->ir;
    const ConvAttrs *cv = &kb->node->attr.conv;
    int64_t icg = g->in_c / cv->groups, ocg = g->out_c / cv->groups;
    int64_t kh = cv->kernel[0], kw = cv->kernel[1];
    LLVMValueRef weight = constant_param(kb, "weight");
    LLVMValueRef bias = constant_param(kb, "bias");

    KernelArgs a = kernel_begin(kb, "");
    IrLoop item = ir_loop_begin(ir, a.begin, a.end, "item");
    LLVMValueRef sample = ir_div_const(ir, item.index, g->out_c);
    LLVMValueRef oc = ir_rem_const(ir, item.index, g->out_c);
    LLVMValueRef group = ir_div_const(ir, oc, ocg);
    LLVMValueRef out_base = ir_mul(ir, item.index, ir_i64(ir, g->oh * g->ow));
    LLVMValueRef init = bias ? ir_load_f32(ir, bias, oc) : ir_f32(ir, 0);
    IrLoop p = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, g->oh * g->ow), "p");
    LLVMValueRef out_at = ir_add(ir, out_base, p.index);
    /* A fused residual add: the output already holds the skip tensor (lower_llvm.c), the sum starts from it. */
    ir_store_f32(ir, a.dst, out_at, kb->node->has_residual ? ir_fadd(ir, init, ir_load_f32(ir, a.dst, out_at)) : init);
    ir_loop_end(ir, &p);

    IrLoop c = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, icg), "c");
    LLVMValueRef in_channel = ir_add(ir, ir_mul(ir, sample, ir_i64(ir, g->in_c)), ir_mad(ir, group, icg, c.index));
    LLVMValueRef in_base = ir_mul(ir, in_channel, ir_i64(ir, g->h * g->w));
    LLVMValueRef w_base = ir_mul(ir, ir_mad(ir, oc, icg, c.index), ir_i64(ir, kh * kw));
    for (int64_t ty = 0; ty < kh; ty++) {
        int64_t oy_lo, oy_hi;
        valid_range(g->h, g->oh, cv->stride[0], g->pad_top, ty * cv->dilation[0], &oy_lo, &oy_hi);
        for (int64_t tx = 0; tx < kw; tx++) {
            int64_t ox_lo, ox_hi;
            valid_range(g->w, g->ow, cv->stride[1], g->pad_left, tx * cv->dilation[1], &ox_lo, &ox_hi);
            if (oy_lo >= oy_hi || ox_lo >= ox_hi) continue; /* the tap only ever lands on padding */
            LLVMValueRef wv = ir_load_f32(ir, weight, ir_add(ir, w_base, ir_i64(ir, ty * kw + tx)));
            IrLoop oy = ir_loop_begin(ir, ir_i64(ir, oy_lo), ir_i64(ir, oy_hi), "oy");
            LLVMValueRef iy = ir_add(ir, ir_mul(ir, oy.index, ir_i64(ir, cv->stride[0])), ir_i64(ir, ty * cv->dilation[0] - g->pad_top));
            LLVMValueRef in_row = ir_add(ir, in_base, ir_mul(ir, iy, ir_i64(ir, g->w)));
            LLVMValueRef out_row = ir_add(ir, out_base, ir_mul(ir, oy.index, ir_i64(ir, g->ow)));
            IrLoop ox = ir_loop_begin(ir, ir_i64(ir, ox_lo), ir_i64(ir, ox_hi), "ox");
            LLVMValueRef ix = ir_add(ir, ir_mul(ir, ox.index, ir_i64(ir, cv->stride[1])), ir_i64(ir, tx * cv->dilation[1] - g->pad_left));
            LLVMValueRef at = ir_add(ir, out_row, ox.index);
            LLVMValueRef acc = ir_fma(ir, wv, ir_load_f32(ir, a.src, ir_add(ir, in_row, ix)), ir_load_f32(ir, a.dst, at));
            ir_store_f32(ir, a.dst, at, acc);
            ir_loop_end(ir, &ox);
            ir_loop_end(ir, &oy);
        }
    }
    ir_loop_end(ir, &c);
    apply_epilogue(kb, a.dst, out_base, g->oh * g->ow);
    ir_loop_end(ir, &item);
    kernel_end(kb, src, BUF_OUTPUT, g->samples * g->out_c, true, 2 * icg * kh * kw * g->oh * g->ow);
}

/* ---- the register-tiled kernel ---- */

enum { MAX_OC_TILE = 8, MAX_TILE_VECTORS = 8 };

/* Input rows of a band should stay in L2 while every channel block reads them. */
static const int64_t BAND_BYTES = 192 * 1024;

/* How a convolution is tiled, chosen at compile time from its shape. */
typedef struct TilePlan {
    int oc_tile;         /* output channels per work item and tile */
    int vectors;         /* vectors per tile */
    int rows_per_tile;   /* narrow rows: whole rows per tile; else 1 */
    int64_t band_rows;   /* output rows per work item */
    int64_t bands;
} TilePlan;

/* Where the vectors of one tile sit: vector v covers output row oh + dy[v],
 * columns ow0 + dx[v] .. + lanes[v] - 1 (lanes[v] < width: a masked tail). */
typedef struct TileShape {
    int nvec;
    int64_t dy[MAX_TILE_VECTORS], dx[MAX_TILE_VECTORS];
    int lanes[MAX_TILE_VECTORS];
} TileShape;

typedef struct Tile {
    Ir *ir;
    const ConvGeometry *g;
    const ConvAttrs *cv;
    const Node *node;
    const TilePlan *plan;
    LLVMValueRef src, dst, wpack, bias;
    LLVMTypeRef vt; /* <width x float> */
    int width;
    int64_t zero_top, zero_bottom; /* rows of zero padding above and below the input (pre-padded) */
} Tile;

/* One tile for `ocn` output channels from oc (weights from wblock): accumulators
 * in registers across every input channel and tap, then epilogue and store.
 * Kernel rows y with !tap_rows[y] read only zero padding here and are skipped. */
static void emit_tile(Tile *t, const TileShape *ts, LLVMValueRef in_group, LLVMValueRef out_plane, LLVMValueRef oh,
                      LLVMValueRef ow0, int ocn, LLVMValueRef oc, LLVMValueRef wblock, const bool *tap_rows)
{
    Ir *ir = t->ir;
    const ConvGeometry *g = t->g;
    const ConvAttrs *cv = t->cv;
    int64_t kh = cv->kernel[0], kw = cv->kernel[1], icg = g->in_c / cv->groups;
    int nvec = ts->nvec;
    LLVMValueRef acc[MAX_OC_TILE][MAX_TILE_VECTORS];
    for (int o = 0; o < ocn; o++) {
        LLVMValueRef init = t->bias ? ir_splat(ir, ir_load_f32(ir, t->bias, ir_add(ir, oc, ir_i64(ir, o)))) : LLVMConstNull(t->vt);
        for (int v = 0; v < nvec; v++) acc[o][v] = ir_var(ir, t->vt, init, "acc");
    }
    /* Offsets of each vector's first input and output element, relative to (oh, ow0). */
    LLVMValueRef at = ir_add(ir, ir_mul(ir, oh, ir_i64(ir, g->row_step * g->w)), ow0);
    LLVMValueRef out_at = ir_add(ir, out_plane, ir_add(ir, ir_mul(ir, oh, ir_i64(ir, g->ow)), ow0));
    /* The loop bound is opaque so that the loop stays even with one input
     * channel: without it LLVM hoists every weight broadcast out of the tile
     * loops and schedules the epilogue into the multiplies, and the tile
     * spills (LeNet-5's c1: 237 spills, 0.71 -> 0.39 ms at batch 64). */
    IrLoop c = ir_loop_begin(ir, ir_i64(ir, 0), ir_opaque(ir, ir_i64(ir, icg)), "ic");
    LLVMValueRef plane = ir_add(ir, ir_add(ir, in_group, ir_mul(ir, c.index, ir_i64(ir, g->h * g->w))), at);
    LLVMValueRef wc = ir_add(ir, wblock, ir_mul(ir, c.index, ir_i64(ir, kh * kw * t->plan->oc_tile)));
    LLVMValueRef cur[MAX_OC_TILE][MAX_TILE_VECTORS];
    for (int o = 0; o < ocn; o++)
        for (int v = 0; v < nvec; v++) cur[o][v] = LLVMBuildLoad2(ir->b, t->vt, acc[o][v], "");
    for (int64_t y = 0; y < kh; y++) {
        if (!tap_rows[y]) continue;
        for (int64_t x = 0; x < kw; x++) {
            LLVMValueRef xs[MAX_TILE_VECTORS];
            for (int v = 0; v < nvec; v++) {
                int64_t col = x * cv->dilation[1]; /* phase col % step, from col / step on */
                int64_t off = (ts->dy[v] * g->row_step + y * cv->dilation[0]) * g->w +
                              col % g->col_step * g->phase_width + ts->dx[v] + col / g->col_step;
                xs[v] = ir_load_vec(ir, t->src, ir_add(ir, plane, ir_i64(ir, off)), ts->lanes[v]);
            }
            LLVMValueRef wtap = ir_add(ir, wc, ir_i64(ir, (y * kw + x) * t->plan->oc_tile));
            for (int o = 0; o < ocn; o++) {
                LLVMValueRef w = ir_splat(ir, ir_load_f32(ir, t->wpack, ir_add(ir, wtap, ir_i64(ir, o))));
                for (int v = 0; v < nvec; v++) cur[o][v] = ir_fma(ir, w, xs[v], cur[o][v]);
            }
        }
    }
    for (int o = 0; o < ocn; o++)
        for (int v = 0; v < nvec; v++) LLVMBuildStore(ir->b, cur[o][v], acc[o][v]);
    ir_loop_end(ir, &c);
    for (int o = 0; o < ocn; o++) {
        for (int v = 0; v < nvec; v++) {
            int64_t off = o * g->oh * g->ow + ts->dy[v] * g->ow + ts->dx[v];
            LLVMValueRef r = LLVMBuildLoad2(ir->b, t->vt, acc[o][v], "");
            LLVMValueRef where = ir_add(ir, out_at, ir_i64(ir, off));
            if (t->node->has_residual) r = ir_fadd(ir, r, ir_load_vec(ir, t->dst, where, ts->lanes[v])); /* the skip tensor */
            ir_store_vec(ir, t->dst, where, epilogue_vector(t->ir, t->node, r), ts->lanes[v]);
        }
    }
}

enum { MAX_KERNEL_ROWS = 64 };

/* Which kernel rows a tile of `rows` output rows from row oh needs: those
 * that reach a real input row (not zero padding) for one of its rows.
 * Returns whether that is all of them. */
static bool tile_tap_rows(const Tile *t, int64_t oh, int rows, bool *tap_rows)
{
    int64_t kh = t->cv->kernel[0], first = t->zero_top, end = t->g->h - t->zero_bottom;
    bool all = true;
    for (int64_t y = 0; y < kh; y++) {
        tap_rows[y] = false;
        for (int r = 0; r < rows; r++) {
            int64_t row = (oh + r) * t->g->row_step + y * t->cv->dilation[0];
            if (row >= first && row < end) tap_rows[y] = true;
        }
        all = all && tap_rows[y];
    }
    return all;
}

static int tile_rows(const TileShape *ts)
{
    int rows = 1;
    for (int v = 0; v < ts->nvec; v++)
        if (ts->dy[v] + 1 > rows) rows = (int)ts->dy[v] + 1;
    return rows;
}

/* emit_tile at output row oh, a multiple of `step` when not a constant.  The
 * tiles at the top and bottom rows, whose kernel reaches into zero padding,
 * get their own copies without those taps (chosen by comparing oh); the
 * others share one copy with every tap. */
static void emit_tile_at(Tile *t, const TileShape *ts, LLVMValueRef in_group, LLVMValueRef out_plane, LLVMValueRef oh,
                         int64_t step, LLVMValueRef ow0, int ocn, LLVMValueRef oc, LLVMValueRef wblock)
{
    Ir *ir = t->ir;
    int rows = tile_rows(ts);
    bool taps[MAX_KERNEL_ROWS], all[MAX_KERNEL_ROWS];
    for (int y = 0; y < MAX_KERNEL_ROWS; y++) all[y] = true;
    if (t->cv->kernel[0] > MAX_KERNEL_ROWS || (t->zero_top == 0 && t->zero_bottom == 0)) {
        emit_tile(t, ts, in_group, out_plane, oh, ow0, ocn, oc, wblock, all);
        return;
    }
    if (LLVMIsConstant(oh)) {
        tile_tap_rows(t, (int64_t)LLVMConstIntGetSExtValue(oh), rows, taps);
        emit_tile(t, ts, in_group, out_plane, oh, ow0, ocn, oc, wblock, taps);
        return;
    }
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(ir->ctx, ir->fn, "tile.done");
    for (int64_t row = 0; row + rows <= t->g->oh; row += step) {
        if (tile_tap_rows(t, row, rows, taps)) continue;
        LLVMBasicBlockRef border = LLVMAppendBasicBlockInContext(ir->ctx, ir->fn, "tile.border");
        LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(ir->ctx, ir->fn, "tile.next");
        LLVMBuildCondBr(ir->b, LLVMBuildICmp(ir->b, LLVMIntEQ, oh, ir_i64(ir, row), ""), border, next);
        LLVMPositionBuilderAtEnd(ir->b, border);
        emit_tile(t, ts, in_group, out_plane, ir_i64(ir, row), ow0, ocn, oc, wblock, taps);
        LLVMBuildBr(ir->b, done);
        LLVMPositionBuilderAtEnd(ir->b, next);
    }
    emit_tile(t, ts, in_group, out_plane, oh, ow0, ocn, oc, wblock, all);
    LLVMBuildBr(ir->b, done);
    LLVMPositionBuilderAtEnd(ir->b, done);
}

/* The vectors of `rows` whole rows (narrow rows: several rows make one tile). */
static TileShape rows_shape(const Tile *t, int rows)
{
    TileShape ts = {0};
    for (int r = 0; r < rows; r++)
        for (int64_t col = 0; col < t->g->ow; col += t->width) {
            ts.dy[ts.nvec] = r;
            ts.dx[ts.nvec] = col;
            ts.lanes[ts.nvec++] = (int)(t->g->ow - col < t->width ? t->g->ow - col : t->width);
        }
    return ts;
}

/* `nvec` vectors along one row from column first (the last one possibly partial). */
static TileShape columns_shape(const Tile *t, int64_t first, int nvec)
{
    TileShape ts = {0};
    for (int v = 0; v < nvec && first + v * t->width < t->g->ow; v++) {
        int64_t col = first + v * t->width;
        ts.dx[ts.nvec] = col - first;
        ts.lanes[ts.nvec++] = (int)(t->g->ow - col < t->width ? t->g->ow - col : t->width);
    }
    return ts;
}

/* The rows of one band for ocn channels: tiles of several narrow rows, or
 * tiles of plan->vectors vectors along each wide row. */
static void emit_band(Tile *t, LLVMValueRef band, LLVMValueRef in_group, LLVMValueRef out_plane, int ocn, LLVMValueRef oc,
                      LLVMValueRef wblock)
{
    Ir *ir = t->ir;
    const ConvGeometry *g = t->g;
    const TilePlan *p = t->plan;
    LLVMValueRef row0 = ir_mul(ir, band, ir_i64(ir, p->band_rows));
    int64_t last_rows = g->oh - (p->bands - 1) * p->band_rows;
    LLVMValueRef is_last = LLVMBuildICmp(ir->b, LLVMIntEQ, band, ir_i64(ir, p->bands - 1), "");
    if (p->rows_per_tile > 1 || (g->ow + t->width - 1) / t->width <= p->vectors) {
        int rows = p->rows_per_tile;
        TileShape full = rows_shape(t, rows);
        LLVMValueRef count = LLVMBuildSelect(ir->b, is_last, ir_i64(ir, last_rows / rows), ir_i64(ir, p->band_rows / rows), "");
        IrLoop r = ir_loop_begin(ir, ir_i64(ir, 0), count, "rows");
        emit_tile_at(t, &full, in_group, out_plane, ir_add(ir, row0, ir_mul(ir, r.index, ir_i64(ir, rows))), rows, ir_i64(ir, 0), ocn,
                  oc, wblock);
        ir_loop_end(ir, &r);
        if (last_rows % rows) {
            LLVMBasicBlockRef merge = ir_if_begin(ir, is_last);
            TileShape rest = rows_shape(t, (int)(last_rows % rows));
            emit_tile_at(t, &rest, in_group, out_plane, ir_i64(ir, g->oh - last_rows % rows), rows, ir_i64(ir, 0), ocn, oc, wblock);
            ir_if_end(ir, merge);
        }
        return;
    }
    int64_t span = (int64_t)p->vectors * t->width, full = g->ow / span;
    LLVMValueRef row_end = LLVMBuildSelect(ir->b, is_last, ir_i64(ir, g->oh), ir_add(ir, row0, ir_i64(ir, p->band_rows)), "");
    IrLoop oh = ir_loop_begin(ir, row0, row_end, "oh");
    TileShape wide = columns_shape(t, 0, p->vectors);
    IrLoop col = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, full), "cols");
    emit_tile_at(t, &wide, in_group, out_plane, oh.index, 1, ir_mul(ir, col.index, ir_i64(ir, span)), ocn, oc, wblock);
    ir_loop_end(ir, &col);
    if (g->ow % span) {
        TileShape rest = columns_shape(t, full * span, p->vectors);
        emit_tile_at(t, &rest, in_group, out_plane, oh.index, 1, ir_i64(ir, full * span), ocn, oc, wblock);
    }
    ir_loop_end(ir, &oh);
}

/* The tile: the target's row of the tile table (kernel_tiles.c: six output
 * channels by 24 or 12 accumulators).  Fewer channels than that per group
 * take all of them, with more vectors. */
static TilePlan choose_tile_plan(const ConvGeometry *g, const ConvAttrs *cv, int width, int registers)
{
    int64_t ocg = g->out_c / cv->groups;
    const KernelTiles *tiles = kernel_tiles(width, registers);
    TilePlan best = {.oc_tile = ocg < tiles->direct_oc_tile ? (int)ocg : tiles->direct_oc_tile, .rows_per_tile = 1};
    best.vectors = tiles->direct_accumulators / best.oc_tile;
    if (best.vectors > MAX_TILE_VECTORS) best.vectors = MAX_TILE_VECTORS;
    int64_t per_row = (g->ow + width - 1) / width;
    if (per_row <= best.vectors) best.rows_per_tile = (int)(best.vectors / per_row);
    if (best.rows_per_tile > g->oh) best.rows_per_tile = (int)g->oh;
    /* Bands of output rows whose input rows (all channels of a group) fit BAND_BYTES. */
    int64_t row_bytes = (g->in_c / cv->groups) * g->w * 4;
    int64_t in_rows = BAND_BYTES / (row_bytes > 0 ? row_bytes : 1);
    int64_t rows = (in_rows - (cv->kernel[0] - 1) * cv->dilation[0]) / g->row_step;
    if (rows < best.rows_per_tile) rows = best.rows_per_tile;
    rows = rows / best.rows_per_tile * best.rows_per_tile;
    if (rows > g->oh) rows = g->oh;
    best.band_rows = rows;
    best.bands = (g->oh + rows - 1) / rows;
    return best;
}

/* Weights [OC, ICg, KH, KW] -> [group][block][ICg][KH][KW][oc_tile], zero-filled past OCg,
 * in the constant pool; returns their address. */
static LLVMValueRef pack_weights(KernelBuilder *kb, const ConvGeometry *g, int oc_tile)
{
    const ConvAttrs *cv = &kb->node->attr.conv;
    int64_t icg = g->in_c / cv->groups, ocg = g->out_c / cv->groups, taps = cv->kernel[0] * cv->kernel[1];
    int64_t blocks = (ocg + oc_tile - 1) / oc_tile;
    LLVMValueRef address;
    float *packed = lower_constant_space(kb->ir, cv->groups * blocks * icg * taps * oc_tile, &address);
    const float *w = node_param(kb->node, "weight")->data;
    for (int64_t oc = 0; oc < g->out_c; oc++) {
        int64_t group = oc / ocg, in_group = oc % ocg, block = in_group / oc_tile, lane = in_group % oc_tile;
        for (int64_t c = 0; c < icg; c++)
            for (int64_t k = 0; k < taps; k++)
                packed[(((group * blocks + block) * icg + c) * taps + k) * oc_tile + lane] = w[(oc * icg + c) * taps + k];
    }
    return address;
}

static void lower_conv_tiled(KernelBuilder *kb, const ConvGeometry *g, BufferRole src)
{
    Ir *ir = kb->ir;
    const ConvAttrs *cv = &kb->node->attr.conv;
    TilePlan plan = choose_tile_plan(g, cv, ir->vector_width, ir->vector_registers);
    int64_t icg = g->in_c / cv->groups, ocg = g->out_c / cv->groups, taps = cv->kernel[0] * cv->kernel[1];
    int64_t blocks = (ocg + plan.oc_tile - 1) / plan.oc_tile;
    Tile t = {.ir = ir, .g = g, .cv = cv, .node = kb->node, .plan = &plan, .width = ir->vector_width,
              .zero_top = g->zero_top, .zero_bottom = g->zero_bottom};
    t.vt = ir_vec_type(ir);
    t.wpack = pack_weights(kb, g, plan.oc_tile);
    t.bias = constant_param(kb, "bias");

    KernelArgs a = kernel_begin(kb, "");
    t.src = a.src;
    t.dst = a.dst;
    /* Items (sample, band, group, block): the blocks of a band run one after another on its rows. */
    int64_t per_band = cv->groups * blocks;
    IrLoop item = ir_loop_begin(ir, a.begin, a.end, "item");
    LLVMValueRef sample = ir_div_const(ir, item.index, plan.bands * per_band);
    LLVMValueRef band = ir_rem_const(ir, ir_div_const(ir, item.index, per_band), plan.bands);
    LLVMValueRef group = ir_rem_const(ir, ir_div_const(ir, item.index, blocks), cv->groups);
    LLVMValueRef block = ir_rem_const(ir, item.index, blocks);
    LLVMValueRef oc = ir_add(ir, ir_mul(ir, group, ir_i64(ir, ocg)), ir_mul(ir, block, ir_i64(ir, plan.oc_tile)));
    LLVMValueRef in_group = ir_mul(ir, ir_add(ir, ir_mul(ir, sample, ir_i64(ir, g->in_c)), ir_mul(ir, group, ir_i64(ir, icg))),
                                   ir_i64(ir, g->h * g->w));
    LLVMValueRef out_plane = ir_mul(ir, ir_add(ir, ir_mul(ir, sample, ir_i64(ir, g->out_c)), oc), ir_i64(ir, g->oh * g->ow));
    LLVMValueRef wblock =
        ir_mul(ir, ir_add(ir, ir_mul(ir, group, ir_i64(ir, blocks)), block), ir_i64(ir, icg * taps * plan.oc_tile));
    int last = (int)(ocg - (blocks - 1) * plan.oc_tile); /* channels in a group's last block */
    LLVMBasicBlockRef partial = NULL, done = NULL;
    if (last != plan.oc_tile) {
        LLVMValueRef is_last = LLVMBuildICmp(ir->b, LLVMIntEQ, block, ir_i64(ir, blocks - 1), "");
        LLVMBasicBlockRef full = LLVMAppendBasicBlockInContext(ir->ctx, ir->fn, "full");
        partial = LLVMAppendBasicBlockInContext(ir->ctx, ir->fn, "partial");
        done = LLVMAppendBasicBlockInContext(ir->ctx, ir->fn, "block.done");
        LLVMBuildCondBr(ir->b, is_last, partial, full);
        LLVMPositionBuilderAtEnd(ir->b, full);
    }
    for (int pass = 0; pass < (last != plan.oc_tile ? 2 : 1); pass++) {
        if (pass == 1) LLVMPositionBuilderAtEnd(ir->b, partial);
        emit_band(&t, band, in_group, out_plane, pass == 0 ? plan.oc_tile : last, oc, wblock);
        if (done) LLVMBuildBr(ir->b, done);
    }
    if (done) LLVMPositionBuilderAtEnd(ir->b, done);
    ir_loop_end(ir, &item);
    kernel_end(kb, src, BUF_OUTPUT, g->samples * plan.bands * per_band, true,
               2 * icg * taps * plan.oc_tile * plan.band_rows * g->ow);
}


/* ---- the depthwise kernel (groups = in = out channels) ---- */

/* A work item is (sample, channel): its kh x kw weights as vectors in
 * registers, then output row by output row, a vector of output columns at a
 * time, every tap one vector load (stride 2: lanes 0, 2, 4, ... of two, and
 * the next tap the odd lanes of the same two) and one multiply-add.  The
 * zero padding is never stored: taps of rows outside the input are left
 * out, and the vectors at the row ends load only the lanes inside the row
 * (masked loads), so the kernel reads its input once, straight from the
 * tensor, and writes its output once; rows and columns away from the border
 * run in loops without masks. */

enum { MAX_DW_TAPS = 256 };

typedef struct Depthwise {
    Ir *ir;
    const ConvGeometry *g;
    const ConvAttrs *cv;
    const Node *node;
    LLVMValueRef src, dst, in_plane, out_plane;
    LLVMValueRef wv[MAX_DW_TAPS], bias; /* splats */
    int width;
} Depthwise;

/* Lanes [lo, hi) of the vector at src[at] (others 0); the lanes outside may lie outside the tensor. */
static LLVMValueRef load_lanes(Ir *ir, LLVMValueRef src, LLVMValueRef at, int lo, int hi)
{
    LLVMTypeRef vt = ir_vec_type(ir);
    if (lo >= hi) return LLVMConstNull(vt);
    if (lo == 0 && hi >= ir->vector_width) return ir_load_vec(ir, src, at, ir->vector_width);
    if (lo == 0) return ir_load_vec(ir, src, at, hi);
    /* Not inbounds: the address of lane 0 may be before the tensor (only the lanes in [lo, hi) are read). */
    LLVMValueRef p = LLVMBuildGEP2(ir->b, ir->f32, src, &at, 1, "");
    LLVMTypeRef mt = LLVMVectorType(ir->i1, (unsigned)ir->vector_width);
    LLVMValueRef bits[64];
    for (int i = 0; i < ir->vector_width; i++) bits[i] = LLVMConstInt(ir->i1, i >= lo && i < hi, 0);
    LLVMTypeRef params[4] = {ir->ptr, ir->i32, mt, vt};
    LLVMTypeRef type = LLVMFunctionType(vt, params, 4, 0);
    char name[64];
    snprintf(name, sizeof name, "llvm.masked.load.v%df32.p0", ir->vector_width);
    LLVMValueRef fn = LLVMGetNamedFunction(ir->mod, name);
    if (!fn) fn = LLVMAddFunction(ir->mod, name, type);
    LLVMValueRef args[4] = {p, LLVMConstInt(ir->i32, 4, 0), LLVMConstVector(bits, (unsigned)ir->vector_width), LLVMConstNull(vt)};
    return LLVMBuildCall2(ir->b, type, fn, args, 4, "");
}

/* The first input column a tap kx reads for output column ox. */
static int64_t dw_column(const Depthwise *d, int64_t ox, int64_t kx)
{
    return ox * d->cv->stride[1] - d->g->pad_left + kx * d->cv->dilation[1];
}

/* Whether the vector of output columns from ox0 (`lanes` of them) loads only inside the input row. */
static bool dw_clean(const Depthwise *d, int64_t ox0, int lanes)
{
    if (lanes < d->width) return false;
    int64_t span = d->cv->stride[1] * d->width;
    for (int64_t kx = 0; kx < d->cv->kernel[1]; kx++) {
        int64_t c = dw_column(d, ox0, kx);
        if (c < 0 || c + span > d->g->w) return false;
    }
    return true;
}

/* The vectors loaded for one vector of output columns, by input row and first column (relative to the
 * row's first column read), so that two output rows (stride 1) or two taps (stride 2: the odd lanes)
 * that read the same floats share the load. */
enum { MAX_DW_LOADS = 512, DW_ROWS = 2 };

typedef struct DwLoads {
    int n;
    int64_t row[MAX_DW_LOADS], col[MAX_DW_LOADS], lo[MAX_DW_LOADS], hi[MAX_DW_LOADS]; /* lanes [lo, hi) loaded */
    LLVMValueRef v[MAX_DW_LOADS];
} DwLoads;

/* The vector of input row `row` (relative to the first output row's first) from column rel (relative to
 * ox * stride) for a vector of output columns from ox; ox0 >= 0: ox is that constant, and only the
 * floats of the row inside the input, and at most `last` + 1 from ox * stride + rel, are loaded. */
static LLVMValueRef dw_load(Depthwise *d, DwLoads *cache, LLVMValueRef base, int64_t row, int64_t rel, int64_t ox0, int64_t last)
{
    Ir *ir = d->ir;
    int64_t vw = d->width, lo = 0, hi = vw;
    if (ox0 >= 0) {
        int64_t c = ox0 * d->cv->stride[1] + rel;
        if (c < 0) lo = -c < vw ? -c : vw;
        if (c + hi > d->g->w) hi = d->g->w - c > 0 ? d->g->w - c : 0;
        if (hi > last + 1) hi = last + 1 > 0 ? last + 1 : 0;
        if (hi < lo) hi = lo;
    }
    for (int i = 0; i < cache->n; i++)
        if (cache->row[i] == row && cache->col[i] == rel && cache->lo[i] == lo && cache->hi[i] == hi) return cache->v[i];
    LLVMValueRef at = ir_add(ir, base, ir_i64(ir, row * d->g->w + rel));
    LLVMValueRef v = ox0 < 0 ? ir_load_vec(ir, d->src, at, (int)vw) : load_lanes(ir, d->src, at, (int)lo, (int)hi);
    if (cache->n < MAX_DW_LOADS) {
        cache->row[cache->n] = row;
        cache->col[cache->n] = rel;
        cache->lo[cache->n] = lo;
        cache->hi[cache->n] = hi;
        cache->v[cache->n++] = v;
    }
    return v;
}

/* One vector of output columns from ox (ox0 >= 0: the constant ox, whose loads may be masked; else a
 * clean vector) of `nrows` output rows from oy, output row r with the kernel rows rows[r] (those inside
 * the input).  Each kernel row sums into its own accumulator (shorter chains of multiply-adds). */
static void dw_vector(Depthwise *d, LLVMValueRef oy, int nrows, LLVMValueRef ox, int64_t ox0, int lanes,
                      bool rows[][MAX_DW_TAPS])
{
    Ir *ir = d->ir;
    const ConvGeometry *g = d->g;
    const ConvAttrs *cv = d->cv;
    int64_t kh = cv->kernel[0], kw = cv->kernel[1], s = cv->stride[1], vw = d->width, sy = cv->stride[0];
    DwLoads cache;
    cache.n = 0;
    /* Input row oy * sy - pt, column ox * s: the base all loads are relative to. */
    LLVMValueRef iy0 = ir_sub(ir, ir_mul(ir, oy, ir_i64(ir, sy)), ir_i64(ir, g->pad_top));
    LLVMValueRef base = ir_add(ir, ir_add(ir, d->in_plane, ir_mul(ir, iy0, ir_i64(ir, g->w))), ir_mul(ir, ox, ir_i64(ir, s)));
    for (int r = 0; r < nrows; r++) {
        LLVMValueRef part[MAX_DW_TAPS];
        int nparts = 0;
        for (int64_t ky = 0; ky < kh; ky++) {
            if (!rows[r][ky]) continue;
            int64_t row = r * sy + ky * cv->dilation[0];
            LLVMValueRef acc = NULL;
            for (int64_t kx = 0; kx < kw; kx++) {
                int64_t rel = kx * cv->dilation[1] - g->pad_left; /* from column ox * s */
                LLVMValueRef x;
                if (s == 1) {
                    if (ox0 >= 0) { /* nothing of the row inside the input: no tap */
                        int64_t c = ox0 + rel;
                        if (c + lanes <= 0 || c >= g->w) continue;
                    }
                    x = dw_load(d, &cache, base, row, rel, ox0, lanes - 1);
                } else {
                    /* Floats [rel, rel + 2 width) from column ox * 2: lanes 0, 2, ... of the two vectors;
                     * the tap one column on takes lanes 1, 3, ... of the same two. */
                    int64_t at = rel, lanes_at = 0; /* the even lanes of the pair from `at`, or the odd from at - 1 */
                    int k = 0;
                    while (k < cache.n && !(cache.row[k] == row && cache.col[k] == rel - 1)) k++;
                    if (k < cache.n) at = rel - 1, lanes_at = 1;
                    int64_t last = rel + 2 * (lanes - 1) + 1 - at; /* the last float used, from `at` (+1: the odd lanes) */
                    if (ox0 >= 0) {
                        int64_t c = ox0 * 2 + rel;
                        if (c + 2 * (lanes - 1) < 0 || c >= g->w) continue;
                    }
                    LLVMValueRef lo = dw_load(d, &cache, base, row, at, ox0, last);
                    LLVMValueRef hi = dw_load(d, &cache, base, row, at + vw, ox0, last - vw);
                    x = lanes_at ? ir_odd_lanes(ir, lo, hi) : ir_even_lanes(ir, lo, hi);
                }
                LLVMValueRef wv = d->wv[ky * kw + kx];
                acc = acc ? ir_fma(ir, wv, x, acc) : ir_fmul(ir, wv, x);
            }
            if (acc) part[nparts++] = acc;
        }
        LLVMValueRef acc = d->bias;
        for (int i = 0; i < nparts; i++) acc = ir_fadd(ir, acc, part[i]);
        LLVMValueRef oy_r = ir_add(ir, oy, ir_i64(ir, r));
        LLVMValueRef where = ir_add(ir, d->out_plane, ir_add(ir, ir_mul(ir, oy_r, ir_i64(ir, g->ow)), ox));
        if (d->node->has_residual) acc = ir_fadd(ir, acc, ir_load_vec(ir, d->dst, where, lanes)); /* the skip tensor */
        ir_store_vec(ir, d->dst, where, epilogue_vector(ir, d->node, acc), lanes);
    }
}

/* `nrows` output rows from oy (a constant for the rows whose kernel reaches into the padding), output
 * row r with kernel rows rows[r]: the vectors at the row ends unrolled, those between in a loop. */
static void dw_rows(Depthwise *d, LLVMValueRef oy, int nrows, bool rows[][MAX_DW_TAPS])
{
    Ir *ir = d->ir;
    int64_t ow = d->g->ow, vw = d->width, nv = (ow + vw - 1) / vw;
    int64_t lo = 0, hi = 0; /* the clean vectors [lo, hi) */
    while (lo < nv && !dw_clean(d, lo * vw, (int)(ow - lo * vw < vw ? ow - lo * vw : vw))) lo++;
    hi = lo;
    while (hi < nv && dw_clean(d, hi * vw, (int)(ow - hi * vw < vw ? ow - hi * vw : vw))) hi++;
    for (int64_t v = 0; v < nv; v++) {
        int lanes = (int)(ow - v * vw < vw ? ow - v * vw : vw);
        if (v >= lo && v < hi) {
            if (v > lo) continue;
            if (hi - lo <= 2) {
                for (int64_t u = lo; u < hi; u++) dw_vector(d, oy, nrows, ir_i64(ir, u * vw), -1, (int)vw, rows);
                continue;
            }
            IrLoop col = ir_loop_begin(ir, ir_i64(ir, lo), ir_i64(ir, hi), "col");
            dw_vector(d, oy, nrows, ir_mul(ir, col.index, ir_i64(ir, vw)), -1, (int)vw, rows);
            ir_loop_end(ir, &col);
            continue;
        }
        dw_vector(d, oy, nrows, ir_i64(ir, v * vw), v * vw, lanes, rows);
    }
}

static void lower_conv_depthwise(KernelBuilder *kb, const ConvGeometry *g)
{
    Ir *ir = kb->ir;
    const ConvAttrs *cv = &kb->node->attr.conv;
    int64_t kh = cv->kernel[0], kw = cv->kernel[1], taps = kh * kw;
    Depthwise d = {.ir = ir, .g = g, .cv = cv, .node = kb->node, .width = ir->vector_width};
    LLVMValueRef weight = constant_param(kb, "weight");
    LLVMValueRef bias = constant_param(kb, "bias");
    KernelArgs a = kernel_begin(kb, "");
    d.src = a.src;
    d.dst = a.dst;
    IrLoop item = ir_loop_begin(ir, a.begin, a.end, "item"); /* (sample, channel) */
    LLVMValueRef c = ir_rem_const(ir, item.index, g->in_c);
    d.in_plane = ir_mul(ir, item.index, ir_i64(ir, g->h * g->w));
    d.out_plane = ir_mul(ir, item.index, ir_i64(ir, g->oh * g->ow));
    for (int64_t t = 0; t < taps; t++) d.wv[t] = ir_splat(ir, ir_load_f32(ir, weight, ir_add(ir, ir_mul(ir, c, ir_i64(ir, taps)), ir_i64(ir, t))));
    d.bias = bias ? ir_splat(ir, ir_load_f32(ir, bias, c)) : LLVMConstNull(ir_vec_type(ir));
    /* Rows whose every tap is inside the input run in a loop, DW_ROWS at a time; the others (at the top
     * and bottom) are unrolled, each without the kernel rows that fall on the padding. */
    int64_t sy = cv->stride[0], dy = cv->dilation[0], pt = g->pad_top;
    int64_t first = (pt + sy - 1) / sy;                       /* oy * sy - pt >= 0 */
    int64_t span = (kh - 1) * dy;
    int64_t last = g->h - 1 + pt - span < 0 ? -1 : (g->h - 1 + pt - span) / sy; /* oy * sy - pt + span <= h - 1 */
    if (last >= g->oh) last = g->oh - 1;
    bool all[DW_ROWS][MAX_DW_TAPS];
    for (int r = 0; r < DW_ROWS; r++)
        for (int64_t ky = 0; ky < kh; ky++) all[r][ky] = true;
    for (int64_t oy = 0; oy < g->oh; oy++) {
        if (oy >= first && oy <= last) {
            if (oy > first) continue;
            int64_t n = last + 1 - first, pairs = n / DW_ROWS;
            if (pairs > 0) {
                IrLoop r = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, pairs), "oy");
                dw_rows(&d, ir_add(ir, ir_i64(ir, first), ir_mul(ir, r.index, ir_i64(ir, DW_ROWS))), DW_ROWS, all);
                ir_loop_end(ir, &r);
            }
            for (int64_t rest = first + pairs * DW_ROWS; rest <= last; rest++) dw_rows(&d, ir_i64(ir, rest), 1, all);
            continue;
        }
        bool rows[1][MAX_DW_TAPS]; /* a row of padding only gets the bias (and the epilogue) all the same */
        for (int64_t ky = 0; ky < kh; ky++) {
            int64_t iy = oy * sy - pt + ky * dy;
            rows[0][ky] = iy >= 0 && iy < g->h;
        }
        dw_rows(&d, ir_i64(ir, oy), 1, rows);
    }
    ir_loop_end(ir, &item);
    kernel_end(kb, BUF_INPUT, BUF_OUTPUT, g->samples * g->in_c, true, 2 * taps * g->oh * g->ow);
}

/* Whether a 1x1 convolution reads its input plane as laid out like its output (no stride left, no
 * padding in the copy): then the plane is one row of oh * ow columns, so vectors run over whole
 * planes, not rows that leave most of a vector's lanes idle (7x7: 7 of 16). */
static const int64_t FLAT_PLANE_BYTES = 512 * 1024;

static bool flatten_1x1(const ConvGeometry *g, const ConvAttrs *cv, int width)
{
    if (cv->kernel[0] != 1 || cv->kernel[1] != 1 || g->row_step != 1 || g->col_step != 1) return false;
    if (g->h != g->oh || g->w != g->ow || g->pad_top || g->pad_left) return false;
    return g->ow % width != 0 && (g->in_c / cv->groups) * g->h * g->w * 4 <= FLAT_PLANE_BYTES;
}

void lower_conv2d(KernelBuilder *kb)
{
    const Node *n = kb->node;
    ConvPlan plan = conv_plan_of(n);
    if (plan.algorithm == CONV_WINOGRAD) {
        lower_conv_winograd(kb);
        return;
    }
    const ConvAttrs *cv = &n->attr.conv;
    const Shape *in = &n->inputs[0]->shape;
    int c = in->rank - 3;
    ConvGeometry g = {
        .in_c = in->dims[c], .h = in->dims[c + 1], .w = in->dims[c + 2],
        .pad_top = cv->pad_begin[0], .pad_left = cv->pad_begin[1],
        .out_c = cv->out_channels, .oh = n->shape.dims[c + 1], .ow = n->shape.dims[c + 2],
        .samples = c == 1 ? in->dims[0] : 1,
        .row_step = 1, .col_step = 1,
    };
    g.phase_width = g.w;
    if (plan.algorithm == CONV_DEPTHWISE) {
        lower_conv_depthwise(kb, &g);
        return;
    }
    BufferRole src = BUF_INPUT;
    /* Before any padding step: the channel-vectorised kernel reads the unpadded input. */
    if (plan.algorithm == CONV_DIRECT_TILED && conv_channel_vectors_fit(&g, cv, kb->ir->vector_width, kb->ir->vector_registers)) {
        lower_conv_channel_vectors(kb, &g);
        return;
    }
    if (plan.pads_into_scratch) {
        const PaddedLayout *l = &plan.padded;
        lower_conv_pad(kb, g.samples * g.in_c, g.h, g.w, l);
        if (cv->pad_mode == PAD_ZEROS) { /* stored rows that are zero padding */
            int64_t first = (cv->pad_begin[0] + l->row_step - 1) / l->row_step;
            int64_t end = (g.h - 1 + cv->pad_begin[0]) / l->row_step + 1;
            g.zero_top = first < l->rows ? first : l->rows;
            g.zero_bottom = end < l->rows ? l->rows - end : 0;
        }
        g.h = l->rows;
        g.w = l->phases * l->phase_width;
        g.phase_width = l->phase_width;
        g.col_step = l->col_step;
        g.row_step = cv->stride[0] / l->row_step;
        g.pad_top = g.pad_left = 0;
        src = BUF_SCRATCH;
    }
    if (plan.algorithm == CONV_DIRECT_TILED) {
        if (flatten_1x1(&g, cv, kb->ir->vector_width)) {
            g.w = g.phase_width = g.ow = g.h * g.w;
            g.h = g.oh = 1;
            g.zero_top = g.zero_bottom = 0;
        }
        lower_conv_tiled(kb, &g, src);
    } else {
        lower_conv_direct(kb, &g, src);
    }
}
