/* pass_choose_conv_algorithm.c - picks Winograd F(4x4,3x3), F(2x2,3x3) or
 * F(2x2,5x5) (lower_winograd.c) for the 3x3 and 5x5 stride-1 convolutions
 * where it pays, else the direct kernel.
 *
 * Winograd computes each 2x2 output tile with 16 multiplies per channel pair
 * instead of 36 (3x3: 2.25x fewer), or 36 instead of 100 (5x5: 2.8x fewer),
 * and each 4x4 tile of a 3x3 kernel with 36 instead of 144 (4x fewer), but
 * adds input and output transforms and round-trips its transformed tiles
 * through memory.  The cost rule, from measurements on VGG-style layers and
 * the CIFAR-10 net's 5x5 layers (docs/benchmarks.md): at least 32 input and
 * 32 output channels (the transforms cost about 1/C and 1/K of the products)
 * and an output of at least 4x4.  The 4x4 tile has a quarter of the tiles but
 * its GEMM runs on whole vectors of them: it is taken where (6 x 6 positions)
 * x (vectors of tiles) is below 0.9 x (4 x 4) x (vectors of 2x2 tiles):
 * VGG16's layers from 224x224 down to 14x14, not 12x12 or smaller (measured
 * with 256 channels, 2x2 / 4x4 tiles: 8x8 0.41 / 0.73 ms, 12x12 1.08 / 1.13,
 * 14x14 1.51 / 1.31, 16x16 1.86 / 1.26).  It costs
 * accuracy: F(4x4,3x3)'s transforms have entries up to 8, its error against
 * PyTorch is about 20x F(2x2,3x3)'s (docs/benchmarks.md).  Its scratch
 * memory is bounded by working in bands of tile rows, one sample at a time
 * (plan_memory.h).  --winograd always takes every eligible layer (for
 * tests), never none; --winograd-tile 2x2 or 4x4 fixes the tile of the 3x3 ones.
 */
#include "passes.h"
#include "plan_memory.h"

static const int64_t MIN_CHANNELS = 32, MIN_OUTPUT_SIDE = 4;

bool conv_winograd_eligible(const Node *n)
{
    if (n->op != OP_CONV2D) return false;
    const ConvAttrs *cv = &n->attr.conv;
    bool square_3_or_5 = cv->kernel[0] == cv->kernel[1] && (cv->kernel[0] == 3 || cv->kernel[0] == 5);
    return square_3_or_5 && cv->stride[0] == 1 && cv->stride[1] == 1 &&
           cv->dilation[0] == 1 && cv->dilation[1] == 1 && cv->groups == 1 && cv->pad_mode == PAD_ZEROS;
}

static bool winograd_pays(const Node *n)
{
    WinogradLayout l = winograd_layout(n);
    return l.in_c >= MIN_CHANNELS && l.out_c >= MIN_CHANNELS && l.oh >= MIN_OUTPUT_SIDE && l.ow >= MIN_OUTPUT_SIDE;
}

/* GEMM work of F(mxm,3x3) on n's output: (m + 2)^2 positions times the
 * vectors of tiles (of 8, AVX2's width) that hold its tiles. */
static int64_t tile_cost(const Node *n, int m)
{
    const Shape *s = &n->shape;
    int64_t oh = s->dims[s->rank - 2], ow = s->dims[s->rank - 1];
    int64_t tiles = ((oh + m - 1) / m) * ((ow + m - 1) / m);
    return (int64_t)(m + 2) * (m + 2) * ((tiles + 7) / 8);
}

static int tile_side(const Node *n, int forced)
{
    if (n->attr.conv.kernel[0] != 3) return 2;
    if (forced) return forced;
    return 10 * tile_cost(n, 4) < 9 * tile_cost(n, 2) ? 4 : 2; /* a clear win: its U is 2.25x larger */
}

int pass_choose_conv_algorithm(Graph *g, const PassOptions *opt)
{
    int rewrites = 0;
    for (int i = 1; i < g->nodes.len; i++) {
        Node *n = g->nodes.items[i];
        if (!conv_winograd_eligible(n) || opt->winograd == WINOGRAD_NEVER) continue;
        bool winograd = opt->winograd == WINOGRAD_ALWAYS || winograd_pays(n);
        n->winograd_tile = winograd ? tile_side(n, opt->winograd_tile) : 0;
        rewrites += winograd;
    }
    return rewrites;
}
