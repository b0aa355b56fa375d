/* pass_choose_conv_algorithm.c - picks Winograd F(2x2,3x3) or F(2x2,5x5)
 * (lower_winograd.c) for the 3x3 and 5x5 stride-1 convolutions where it
 * pays, else the direct kernel.
 *
 * Winograd computes each 2x2 output tile with 16 multiplies per channel pair
 * instead of 36 (3x3: 2.25x fewer), or 36 instead of 100 (5x5: 2.8x fewer),
 * but adds input and output transforms and round-trips its transformed tiles
 * through memory.  The cost rule, from measurements on VGG-style layers and
 * the CIFAR-10 net's 5x5 layers (docs/benchmarks.md): at least 32 input and
 * 32 output channels (the transforms cost about 1/C and 1/K of the products)
 * and an output of at least 4x4.  Its scratch memory is bounded by working in
 * bands of tile rows, one sample at a time (plan_memory.h).  --winograd
 * always takes every eligible layer (for tests), never none.
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

int pass_choose_conv_algorithm(Graph *g, const PassOptions *opt)
{
    int rewrites = 0;
    for (int i = 1; i < g->nodes.len; i++) {
        Node *n = g->nodes.items[i];
        if (!conv_winograd_eligible(n) || opt->winograd == WINOGRAD_NEVER) continue;
        n->winograd = opt->winograd == WINOGRAD_ALWAYS || winograd_pays(n);
        rewrites += n->winograd;
    }
    return rewrites;
}
