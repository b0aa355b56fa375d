/* plan_memory.c - liveness-based reuse of activation buffers (see plan_memory.h). */
#include "plan_memory.h"

enum { BUFFER_ALIGN = 64 };

bool node_is_view(const Node *n)
{
    return n->op == OP_FLATTEN || n->op == OP_IDENTITY || n->op == OP_DROPOUT || n->op == OP_DROPOUT2D;
}

static int64_t aligned(int64_t bytes) { return (bytes + BUFFER_ALIGN - 1) / BUFFER_ALIGN * BUFFER_ALIGN; }

int64_t node_output_bytes(const Node *n) { return shape_numel(&n->shape) * (n->dtype == DT_I64 ? 8 : 4); }

bool conv_is_tiled(const Node *n) { return n->attr.conv.stride[0] == 1 && n->attr.conv.stride[1] == 1; }

bool conv_pads_into_scratch(const Node *n)
{
    if (n->winograd_tile) return false; /* it pads into its own layout */
    const ConvAttrs *cv = &n->attr.conv;
    bool padded = cv->pad_begin[0] || cv->pad_end[0] || cv->pad_begin[1] || cv->pad_end[1];
    return padded && (cv->pad_mode != PAD_ZEROS || conv_is_tiled(n));
}

static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/* V and M of one band, per sample: a few MiB, so a band's n*n GEMMs work from L2/L3. */
static const int64_t WINOGRAD_BAND_BYTES = (int64_t)6 << 20;

WinogradLayout winograd_layout(const Node *n)
{
    const Shape *in = &n->inputs[0]->shape;
    int c = in->rank - 3;
    WinogradLayout l = {
        .in_c = in->dims[c], .out_c = n->attr.conv.out_channels,
        .h = in->dims[c + 1], .w = in->dims[c + 2], .oh = n->shape.dims[c + 1], .ow = n->shape.dims[c + 2],
    };
    l.m = n->winograd_tile ? n->winograd_tile : 2;
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
    int64_t padded = aligned(l.in_c * l.ph * l.pw * 4);
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

int64_t node_scratch_bytes(const Node *n)
{
    if (n->op == OP_CONV2D && n->winograd_tile) { /* a slot per sample (lower_kernels.c, kernel_fuse_per_sample) */
        const Shape *in = &n->inputs[0]->shape;
        return winograd_layout(n).scratch_bytes * (in->rank == 4 ? in->dims[0] : 1);
    }
    if (n->op != OP_CONV2D || !conv_pads_into_scratch(n)) return 0;
    /* Non-zero padding modes pad the input into scratch first, as PyTorch does. */
    const ConvAttrs *cv = &n->attr.conv;
    const Shape *in = &n->inputs[0]->shape;
    int c = in->rank - 3;
    int64_t planes = shape_numel(in) / (in->dims[c + 1] * in->dims[c + 2]);
    return planes * (in->dims[c + 1] + cv->pad_begin[0] + cv->pad_end[0]) * (in->dims[c + 2] + cv->pad_begin[1] + cv->pad_end[1]) * 4;
}

typedef struct Block {
    int64_t offset, bytes;
    int free_after; /* the last node index that uses it */
} Block;

/* Lowest offset where `bytes` fits between the blocks live at node i. */
static int64_t first_fit(const Block *blocks, int nblocks, int i, int64_t bytes)
{
    int64_t candidate = 0;
    for (bool moved = true; moved;) {
        moved = false;
        for (int k = 0; k < nblocks; k++) {
            const Block *b = &blocks[k];
            if (b->free_after < i) continue;
            if (candidate < b->offset + b->bytes && b->offset < candidate + bytes) {
                candidate = b->offset + b->bytes;
                moved = true;
            }
        }
    }
    return candidate;
}

static int64_t place(Block *blocks, int *nblocks, int i, int last_use, int64_t bytes, int64_t *peak)
{
    bytes = aligned(bytes);
    int64_t offset = first_fit(blocks, *nblocks, i, bytes);
    blocks[(*nblocks)++] = (Block){offset, bytes, last_use};
    if (offset + bytes > *peak) *peak = offset + bytes;
    return offset;
}

MemoryPlan *plan_memory(Arena *a, const Graph *g)
{
    int n = g->nodes.len;
    MemoryPlan *p = arena_alloc(a, sizeof *p);
    p->root = arena_alloc_array(a, (size_t)n, sizeof *p->root);
    p->offset = arena_alloc_array(a, (size_t)n, sizeof *p->offset);
    p->scratch_offset = arena_alloc_array(a, (size_t)n, sizeof *p->scratch_offset);
    int *last_use = arena_alloc_array(a, (size_t)n, sizeof *last_use);
    for (int i = 0; i < n; i++) {
        const Node *node = g->nodes.items[i];
        p->root[i] = i > 0 && node_is_view(node) ? p->root[node->inputs[0]->id] : i;
        last_use[i] = i;
        p->scratch_offset[i] = -1;
    }
    for (int i = 1; i < n; i++) {
        const Node *node = g->nodes.items[i];
        for (int k = 0; k < node->ninputs; k++) {
            int r = p->root[node->inputs[k]->id];
            if (last_use[r] < i) last_use[r] = i;
        }
    }
    int out_root = p->root[g->output->id];
    p->copy_input_to_output = out_root == 0;
    p->offset[0] = STORAGE_INPUT;

    Block *blocks = arena_alloc_array(a, (size_t)(2 * n), sizeof *blocks);
    int nblocks = 0;
    for (int i = 1; i < n; i++) {
        const Node *node = g->nodes.items[i];
        int64_t scratch = node_scratch_bytes(node);
        if (scratch > 0) {
            p->scratch_offset[i] = place(blocks, &nblocks, i, i, scratch, &p->workspace_bytes);
            p->naive_bytes += aligned(scratch);
        }
        if (p->root[i] != i) continue;
        if (i == out_root) {
            p->offset[i] = STORAGE_OUTPUT;
            continue;
        }
        p->offset[i] = place(blocks, &nblocks, i, last_use[i], node_output_bytes(node), &p->workspace_bytes);
        p->naive_bytes += aligned(node_output_bytes(node));
    }
    return p;
}
