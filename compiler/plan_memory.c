/* plan_memory.c - liveness-based reuse of activation buffers (see plan_memory.h). */
#include "plan_memory.h"

#include "conv_plan.h"

int64_t node_output_bytes(const Node *n) { return shape_numel(&n->shape) * (n->dtype == DT_I64 ? 8 : 4); }

int64_t node_scratch_bytes(const Node *n)
{
    switch (n->op) {
    case OP_CONV2D: return conv_plan_of(n).scratch_bytes;
    case OP_RNN:
    case OP_LSTM:
    case OP_GRU: return recurrent_scratch_bytes(n);
    case OP_TRANSFORMERENCODERLAYER: return transformer_scratch_bytes(n);
    default: return 0;
    }
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
    bytes = buffer_aligned(bytes);
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
        p->root[i] = i > 0 && op_is_view(node->op) ? p->root[node->inputs[0]->id] : i;
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
            p->naive_bytes += buffer_aligned(scratch);
        }
        if (p->root[i] != i) continue;
        if (i == out_root) {
            p->offset[i] = STORAGE_OUTPUT;
            continue;
        }
        p->offset[i] = place(blocks, &nblocks, i, last_use[i], node_output_bytes(node), &p->workspace_bytes);
        p->naive_bytes += buffer_aligned(node_output_bytes(node));
    }
    return p;
}
