/* plan_memory.h - the activation memory plan, made at compile time.
 *
 * Every layer output that is not a view (Flatten, Identity, Dropout share
 * their input's storage) gets a byte offset in one workspace; buffers whose
 * lifetimes do not overlap share bytes (first fit, in layer order).  The
 * model's input is read in place and the last layer writes straight into the
 * caller's output buffer.  Sizes are per sample when the batch is named
 * (the runtime multiplies offsets by the batch), else for the whole batch.
 */
#ifndef LAYERC_PLAN_MEMORY_H
#define LAYERC_PLAN_MEMORY_H

#include "graph.h"

enum { STORAGE_INPUT = -1, STORAGE_OUTPUT = -2 };

typedef struct MemoryPlan {
    int *root;               /* per node: the node whose buffer holds its output */
    int64_t *offset;         /* per root node: workspace byte offset, or STORAGE_INPUT / STORAGE_OUTPUT */
    int64_t *scratch_offset; /* per node: its scratch buffer's offset (-1: none) */
    int64_t workspace_bytes; /* peak */
    int64_t naive_bytes;     /* without reuse: every output and scratch buffer */
    bool copy_input_to_output; /* the model's output is a view of its input */
} MemoryPlan;

/* Conv2d lowering choices that decide memory: the register-tiled kernel
 * (stride 1) reads its input pre-padded, as do the non-zero padding modes. */
bool conv_is_tiled(const Node *n);
bool conv_pads_into_scratch(const Node *n);

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
WinogradLayout winograd_layout(const Node *n);

/* Bytes of scratch memory node n's kernels need (0 for most layers). */
int64_t node_scratch_bytes(const Node *n);
bool node_is_view(const Node *n);
int64_t node_output_bytes(const Node *n);

MemoryPlan *plan_memory(Arena *a, const Graph *g);

#endif
