/* conv_plan.h - how each Conv2d is computed: the register-tiled direct
 * kernel (any stride, reading its input padded and split into column
 * phases), the depthwise kernel, the plain direct kernel (what the others
 * do not take) or Winograd F(mxm,rxr), whether its input is padded into
 * scratch memory first and how it is laid out there, and the scratch it
 * needs.  The
 * choose-conv-algorithm pass (pass_choose_conv_algorithm.c) makes these
 * decisions once and stores them in the node; the memory plan
 * (plan_memory.c) and the lowering (lower_conv.c, lower_winograd.c) read
 * them.  A convolution the pass has not seen (-O0, the pass disabled, the
 * report of the graph as written) runs the direct kernel: conv_plan_of()
 * gives that plan, made by the same code.
 */
#ifndef LAYERC_CONV_PLAN_H
#define LAYERC_CONV_PLAN_H

#include "graph.h"

/* Winograd F(mxm,rxr), m = 2 or 4, r = 3 or 5 (lower_winograd.c),
 * for one sample (the node's scratch has a slot like this for every sample):
 * the input copied zero-padded, so that every n x n input patch (n = m + r - 1)
 * and every vector of patches is in bounds; then, for one band of tile rows at a time, the
 * transformed input V [n*n][C][tiles] and the products M [n*n][K][tiles],
 * each of the n*n positions one cache line longer (v_stride, m_stride).
 * Output tiles are m x m, ty x tx of them, numbered row by row within a band;
 * `tiles` leaves room past a band's last tile (a vector of tiles may run
 * over) and is a multiple of 32 (the widest GEMM tile).  Bands keep V and M
 * near WINOGRAD_BAND_BYTES, so the scratch stays small and in cache whatever
 * the layer's size. */
enum { MAX_WINOGRAD_BANDS = 16 };
typedef struct WinogradLayout {
    int64_t in_c, out_c, h, w, oh, ow;
    int m, r, n, positions;                         /* output tile side m, kernel side r, patch side n = m + r - 1, n * n */
    int64_t ty, tx;                                 /* output tiles */
    int64_t band_rows, bands;                       /* tile rows per band (the last may have fewer) */
    int64_t tiles;                                  /* per band in V and M */
    int64_t v_stride, m_stride;                     /* floats from one of the n*n positions to the next */
    int64_t ph, pw;                                 /* the padded input plane */
    int64_t padded_at, transformed_at, products_at; /* byte offsets into the scratch */
    int64_t scratch_bytes;
} WinogradLayout;

typedef enum { CONV_DIRECT, CONV_DIRECT_TILED, CONV_DEPTHWISE, CONV_WINOGRAD } ConvAlgorithm;

/* The direct kernels' copy of the input in scratch (pads_into_scratch), one
 * plane after another.  A plane is `rows` rows of the padded input: stored row
 * r is padded row r * row_step (row_step is the row stride of a kernel one
 * row high, which reads no other rows; else 1).  A stored row is `phases`
 * column phases of phase_width floats each: phase p holds the padded
 * columns p, p + col_step, p + 2 col_step, ... (col_step is the column
 * stride; a kernel one column wide needs only phase 0).  So the inputs of
 * consecutive output columns for one kernel tap are consecutive floats,
 * whatever the stride: tap kx reads phase (kx * dilation) % col_step from
 * (kx * dilation) / col_step on.  Stride 1 is the plain padded plane
 * (phases 1, phase_width the padded width). */
typedef struct PaddedLayout {
    int64_t rows, row_step;
    int64_t phases, col_step, phase_width;
} PaddedLayout;

typedef struct ConvPlan {
    ConvAlgorithm algorithm;
    bool pads_into_scratch;  /* direct kernels: the input is copied padded into scratch (the tiled
                                kernel reads it pre-padded and phase-split; the plain one does for
                                the non-zero padding modes) */
    PaddedLayout padded;     /* pads_into_scratch: the copy's layout */
    int64_t scratch_bytes;   /* for the node's whole batch (Winograd: a slot per sample) */
    WinogradLayout winograd; /* CONV_WINOGRAD: for one sample */
} ConvPlan;

/* Below this many flops a sample (2 x its multiply-adds) a Winograd layer's
 * four dependent steps run on one thread (lower_kernels.c's
 * kernel_keep_small_layer_on_one_thread); with --tune-threads above 1 such a
 * layer runs direct instead, which splits. */
#define SMALL_LAYER_PARALLEL_FLOPS ((int64_t)64 << 20)

/* The plan of Conv2d n: the pass's, or the direct kernel's when the pass has not run. */
ConvPlan conv_plan_of(const Node *n);
/* Whether Conv2d n runs the depthwise kernel (groups = in = out channels, zero padding, column stride 1 or 2). */
bool conv_is_depthwise(const Node *n);

#endif
