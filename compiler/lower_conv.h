/* lower_conv.h - what the Conv2d lowering files share (lower_conv.c, the
 * position-vectorised kernels and the dispatch; lower_conv_channels.c, the
 * kernel vectorised over output channels): the geometry of one convolution
 * as its kernel sees it.
 */
#ifndef LAYERC_LOWER_CONV_H
#define LAYERC_LOWER_CONV_H

#include "lower.h"

typedef struct ConvGeometry {
    int64_t in_c, h, w;            /* the (possibly pre-padded) input plane: h rows of w floats */
    int64_t row_step;              /* tiled kernel: input rows from one output row to the next */
    int64_t col_step, phase_width; /* tiled kernel: the column phases of a row (conv_plan.h's PaddedLayout) */
    int64_t pad_top, pad_left;     /* padding the kernel applies itself (zeros) */
    int64_t zero_top, zero_bottom; /* rows of zeros the padding step put above and below the input */
    int64_t out_c, oh, ow;
    int64_t samples;               /* per-sample leading count: 1, or the fixed batch */
} ConvGeometry;

/* Whether the channel-vectorised kernel takes Conv2d n on a vector unit of
 * `width` floats and `registers` registers (it reads the unpadded input and
 * pads zeros itself), and lowers it. */
bool conv_channel_vectors_fit(const ConvGeometry *g, const ConvAttrs *cv, int width, int registers);
void lower_conv_channel_vectors(KernelBuilder *kb, const ConvGeometry *g);

#endif
