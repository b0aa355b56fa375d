/* pass_choose_conv_algorithm.c - picks Winograd F(4x4,3x3), F(2x2,3x3),
 * F(4x4,5x5) or F(2x2,5x5) (lower_winograd.c) for the 3x3 and 5x5 stride-1
 * convolutions where it pays, else a direct kernel (lower_conv.c): the
 * depthwise one for groups = in = out channels with zero padding and column
 * stride 1 or 2, the register-tiled one for strides up to 4 (its input padded
 * and split into column phases in scratch), the plain one otherwise.
 *
 * Per m x m output tile and channel pair Winograd does (m + r - 1)^2
 * multiplies instead of m^2 r^2: 3x3 kernels 36 instead of 144 with 4x4
 * tiles, 16 instead of 36 with 2x2; 5x5 kernels 64 instead of 400, or 36
 * instead of 100.  It adds input and output transforms and round-trips its
 * transformed tiles through memory.  The cost rule, from measurements on
 * VGG-style layers and the CIFAR-10 net (docs/benchmarks.md):
 *  - the layer: at least 32 input and 32 output channels (the transforms
 *    cost about 1/C and 1/K of the products), or a 5x5 kernel with 4x4
 *    tiles and at least 16 output channels (winograd_pays); an output of at
 *    least 7x7: below, the transforms and the padded scratch cost more than
 *    the products saved (3x3, batch 1, Intel Xeon AVX-512, 2026-12-03: 512
 *    channels at 7x7 1.24 ms Winograd / 1.50 direct, 256 at 6x6 0.32 / 0.24,
 *    256 at 4x4 0.32 / 0.11, 32 -> 64 at 8x8 0.012 / 0.014, at 4x4 0.011 /
 *    0.0038: the digits demo's last convolution);
 *  - the tile: 4x4 has a quarter of the tiles of 2x2 but its
 *    GEMM runs on whole vectors of them and its transforms cost more per
 *    product, so it is taken where (n x n positions) x (vectors of tiles) is
 *    below 0.75 x the same for 2x2 tiles: VGG16's layers from 224x224 down to
 *    14x14 but not 12x12 (measured with 256 channels, 2x2 / 4x4 tiles: 8x8
 *    0.41 / 0.73 ms, 12x12 1.08 / 1.13, 14x14 1.51 / 1.31, 16x16 1.86 /
 *    1.26); CIFAR-10's 5x5 layers at 32x32 and 16x16 but not 8x8 (0.039 ms
 *    with 2x2 tiles, 0.054 with 4x4).
 * 4x4 tiles cost accuracy: 2-4x the direct sum's rounding error against
 * PyTorch on the goldens (docs/benchmarks.md).  The scratch memory is bounded
 * by working in bands of tile rows, one sample at a time (plan_memory.h).
 * --winograd always takes every eligible layer (for tests), never none;
 * --winograd-tile 2x2 or 4x4 fixes the tile.
 *
 * The pass stores its decision, with everything that follows from it (the
 * direct kernel's pre-padding, the Winograd layout, the scratch bytes), as
 * the node's ConvPlan (conv_plan.h), which the memory plan and the lowering
 * read.
 */
#include "conv_plan.h"
#include "passes.h"
#include "plan_memory.h"

static const int64_t MIN_CHANNELS = 32, MIN_5X5_OUTPUT_CHANNELS = 16, MIN_OUTPUT_SIDE = 7;

/* ---- the direct kernels (lower_conv.c) ---- */

static int64_t sample_count(const Node *n)
{
    const Shape *in = &n->inputs[0]->shape;
    return in->rank == 4 ? in->dims[0] : 1;
}

/* The copy of the input the tiled kernel reads: only the rows and column
 * phases it reads (conv_plan.h). */
static PaddedLayout tiled_layout(const Node *n)
{
    const ConvAttrs *cv = &n->attr.conv;
    const Shape *s = &n->shape;
    int64_t oh = s->dims[s->rank - 2], ow = s->dims[s->rank - 1];
    PaddedLayout l = {.row_step = cv->kernel[0] == 1 ? cv->stride[0] : 1, .col_step = cv->stride[1], .phases = 1};
    l.rows = cv->kernel[0] == 1 ? oh : (oh - 1) * cv->stride[0] + (cv->kernel[0] - 1) * cv->dilation[0] + 1;
    for (int64_t kx = 0; kx < cv->kernel[1]; kx++) {
        int64_t phase = kx * cv->dilation[1] % cv->stride[1];
        if (phase + 1 > l.phases) l.phases = phase + 1;
    }
    l.phase_width = ow + (cv->kernel[1] - 1) * cv->dilation[1] / cv->stride[1];
    return l;
}

/* The depthwise kernel (groups = in = out channels, lower_conv.c) pads in
 * registers (zeros only) and takes column strides 1 and 2. */
bool conv_is_depthwise(const Node *n)
{
    const ConvAttrs *cv = &n->attr.conv;
    return cv->groups > 1 && cv->groups == cv->in_channels && cv->groups == cv->out_channels &&
           cv->pad_mode == PAD_ZEROS && (cv->stride[1] == 1 || cv->stride[1] == 2) && cv->kernel[0] <= 16 &&
           cv->kernel[1] <= 16;
}

/* The register-tiled kernel takes strides up to MAX_TILED_STRIDE and reads
 * its input pre-padded (as the non-zero padding modes need: PyTorch pads
 * first too) and split into column phases; the plain direct kernel pads
 * zeros itself. */
enum { MAX_TILED_STRIDE = 4 };

static ConvPlan direct_plan(const Node *n)
{
    const ConvAttrs *cv = &n->attr.conv;
    ConvPlan p = {.algorithm = CONV_DIRECT};
    if (conv_is_depthwise(n)) {
        p.algorithm = CONV_DEPTHWISE;
        return p;
    }
    bool padded = cv->pad_begin[0] || cv->pad_end[0] || cv->pad_begin[1] || cv->pad_end[1];
    bool strided = cv->stride[0] > 1 || cv->stride[1] > 1;
    if (cv->stride[0] <= MAX_TILED_STRIDE && cv->stride[1] <= MAX_TILED_STRIDE) {
        p.algorithm = CONV_DIRECT_TILED;
        p.pads_into_scratch = padded || strided;
        p.padded = tiled_layout(n);
    } else {
        p.pads_into_scratch = padded && cv->pad_mode != PAD_ZEROS;
        p.padded = (PaddedLayout){.rows = cv->padded[0], .row_step = 1, .phases = 1, .col_step = 1,
                                  .phase_width = cv->padded[1]};
    }
    if (p.pads_into_scratch) {
        const Shape *in = &n->inputs[0]->shape;
        int64_t planes = shape_numel(in) / (in->dims[in->rank - 2] * in->dims[in->rank - 1]);
        p.scratch_bytes = planes * p.padded.rows * p.padded.phases * p.padded.phase_width * 4;
    }
    return p;
}

/* ---- Winograd (lower_winograd.c) ---- */

static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/* V and M of one band, per sample: a few MiB, so a band's n*n GEMMs work from L2/L3. */
static const int64_t WINOGRAD_BAND_BYTES = (int64_t)6 << 20;

static WinogradLayout winograd_layout(const Node *n, int m)
{
    const Shape *in = &n->inputs[0]->shape;
    int c = in->rank - 3;
    WinogradLayout l = {
        .in_c = in->dims[c], .out_c = n->attr.conv.out_channels,
        .h = in->dims[c + 1], .w = in->dims[c + 2], .oh = n->shape.dims[c + 1], .ow = n->shape.dims[c + 2],
    };
    l.m = m;
    l.r = (int)n->attr.conv.kernel[0];
    l.n = l.m + l.r - 1;
    l.positions = l.n * l.n;
    l.ty = (l.oh + l.m - 1) / l.m;
    l.tx = (l.ow + l.m - 1) / l.m;
    int64_t row_bytes = l.positions * (l.in_c + l.out_c) * l.tx * 4;
    int64_t rows = WINOGRAD_BAND_BYTES / row_bytes;
    if (rows < 1) rows = 1;
    l.bands = (l.ty + rows - 1) / rows;
    if (l.bands > MAX_WINOGRAD_BANDS) l.bands = MAX_WINOGRAD_BANDS;
    l.band_rows = (l.ty + l.bands - 1) / l.bands;
    l.bands = (l.ty + l.band_rows - 1) / l.band_rows;
    l.tiles = round_up(l.band_rows * l.tx + 15, 32);
    l.ph = l.m * l.ty + l.r - 1;
    /* A vector of tiles loads m whole vectors from its first patch column (and,
     * with m = 4, m more from 4 columns on): room for them in the last one. */
    l.pw = l.m * round_up(l.tx, 16) + (l.m == 4 ? 4 : l.r - 1);
    int64_t padded = buffer_aligned(l.in_c * l.ph * l.pw * 4);
    /* One cache line more per position: with C * tiles * 4 bytes a multiple
     * of 4 KiB (any C that is a multiple of 32), the transform's n*n stores
     * and the output step's n*n loads would all map to one L1 set. */
    l.v_stride = l.in_c * l.tiles + 16;
    l.m_stride = l.out_c * l.tiles + 16;
    int64_t transformed = l.positions * l.v_stride * 4;
    int64_t products = l.positions * l.m_stride * 4;
    l.padded_at = 0;
    l.transformed_at = padded;
    l.products_at = padded + transformed;
    l.scratch_bytes = padded + transformed + products;
    return l;
}

/* Winograd pads into its own layout: a scratch slot per sample (lower_kernels.c, kernel_fuse_per_sample). */
static ConvPlan winograd_plan(const Node *n, int m)
{
    ConvPlan p = {.algorithm = CONV_WINOGRAD, .winograd = winograd_layout(n, m)};
    p.scratch_bytes = p.winograd.scratch_bytes * sample_count(n);
    return p;
}

ConvPlan conv_plan_of(const Node *n) { return n->conv_plan ? *n->conv_plan : direct_plan(n); }

/* ---- the choice ---- */

bool conv_winograd_eligible(const Node *n)
{
    if (n->op != OP_CONV2D) return false;
    const ConvAttrs *cv = &n->attr.conv;
    bool square_3_or_5 = cv->kernel[0] == cv->kernel[1] && (cv->kernel[0] == 3 || cv->kernel[0] == 5);
    return square_3_or_5 && cv->stride[0] == 1 && cv->stride[1] == 1 &&
           cv->dilation[0] == 1 && cv->dilation[1] == 1 && cv->groups == 1 && cv->pad_mode == PAD_ZEROS;
}

/* GEMM work of F(mxm,rxr) on n's output: (m + r - 1)^2 positions times the
 * vectors of tiles (of 8, AVX2's width) that hold its tiles. */
static int64_t tile_cost(const Node *n, int m)
{
    const Shape *s = &n->shape;
    int64_t oh = s->dims[s->rank - 2], ow = s->dims[s->rank - 1], side = m + n->attr.conv.kernel[0] - 1;
    int64_t tiles = ((oh + m - 1) / m) * ((ow + m - 1) / m);
    return side * side * ((tiles + 7) / 8);
}

static int tile_side(const Node *n, int forced)
{
    if (forced) return forced;
    /* A clear win only: 4x4 tiles cost more per product in the transforms
     * (n = 8 for 5x5: 64 live vectors), and their U is larger. */
    return 4 * tile_cost(n, 4) < 3 * tile_cost(n, 2) ? 4 : 2;
}

/* At least MIN_CHANNELS on both sides; or, for a 5x5 kernel with 4x4 tiles (64
 * products per 16 outputs instead of 400), any input and MIN_5X5_OUTPUT_CHANNELS
 * outputs: measured with 3 input channels, CIFAR-10's first layer (-> 32)
 * takes 0.036 ms instead of the direct kernel's 0.055, 3 -> 16 0.028 instead
 * of 0.033; not 3x3 (VGG16's first layer, 3 -> 64 at 224x224: 3.6 ms instead
 * of 2.2) nor 1 -> 6 (LeNet-5's: 0.006 instead of 0.004). */
static bool winograd_pays(const WinogradLayout *l, int tile)
{
    if (l->oh < MIN_OUTPUT_SIDE || l->ow < MIN_OUTPUT_SIDE) return false;
    if (l->in_c >= MIN_CHANNELS && l->out_c >= MIN_CHANNELS) return true;
    return l->r == 5 && tile == 4 && l->out_c >= MIN_5X5_OUTPUT_CHANNELS;
}

/* --tune-threads T > 1: Winograd where its steps split (or a batch runs a
 * sample a thread), else the direct kernels, which split at batch 1 too.
 * CIFAR-10 at batch 1 on 2 threads (Intel Xeon AVX-512, 2026-12-03): its
 * three 5x5 layers are 5-13 MFLOP; 0.129 ms on 1 thread as Winograd, the
 * same on 2; 0.095 ms on 2 threads direct. */
static bool splits_as_winograd(const Node *n, const PassOptions *opt)
{
    if (opt->tune_threads <= 1) return true;
    const Shape *in = &n->inputs[0]->shape;
    if (in->rank == 4 && !in->dynamic_batch && in->dims[0] > 1) return true; /* a sample a thread */
    return 2 * n->macs / sample_count(n) >= SMALL_LAYER_PARALLEL_FLOPS;
}

int pass_choose_conv_algorithm(Graph *g, const PassOptions *opt)
{
    int rewrites = 0;
    for (int i = 1; i < g->nodes.len; i++) {
        Node *n = g->nodes.items[i];
        if (n->op != OP_CONV2D) continue;
        ConvPlan *plan = arena_alloc(g->arena, sizeof *plan);
        *plan = direct_plan(n);
        if (conv_winograd_eligible(n) && opt->winograd != WINOGRAD_NEVER) {
            int tile = tile_side(n, opt->winograd_tile);
            ConvPlan winograd = winograd_plan(n, tile);
            if (opt->winograd == WINOGRAD_ALWAYS || (winograd_pays(&winograd.winograd, tile) && splits_as_winograd(n, opt))) {
                *plan = winograd;
                rewrites++;
            }
        }
        n->conv_plan = plan;
    }
    return rewrites;
}
