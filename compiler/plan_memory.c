/* plan_memory.c - liveness-based reuse of activation buffers, and outputs
 * written in place of an input that is dead after them (see plan_memory.h). */
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

/* For each node, the last node that reads it (itself when none; past the end for a model output). */
static int *last_readers(Arena *a, const Graph *g)
{
    int n = g->nodes.len;
    int *last = arena_alloc_array(a, (size_t)n, sizeof *last);
    for (int i = 0; i < n; i++) {
        const Node *node = g->nodes.items[i];
        last[i] = i;
        for (int k = 0; k < node->ninputs; k++)
            if (last[node->inputs[k]->id] < i) last[node->inputs[k]->id] = i;
    }
    for (int i = 0; i < g->outputs.len; i++) last[((const Node *)g->outputs.items[i])->id] = n;
    return last;
}

/* Whether the buffer of root r is read after node i (by any node it holds). */
static bool read_after(const MemoryPlan *p, const int *last_reader, int r, int i)
{
    for (int v = r; v < i; v++)
        if (p->root[v] == r && last_reader[v] > i) return true;
    return false;
}

/* The input of node i whose buffer i may overwrite with its output, or -1:
 * a fused residual's skip tensor, or an operand of an add or mul of the
 * output's shape, whose value is not needed after i and is not the model's input. */
static int in_place_input(const Graph *g, const MemoryPlan *p, const int *last_reader, int i)
{
    const Node *n = g->nodes.items[i];
    int first = n->op == OP_CONV2D && n->has_residual ? 1 : n->op == OP_ADD || n->op == OP_MUL ? 0 : -1;
    if (first < 0) return -1;
    for (int k = first; k < 2 && k < n->ninputs; k++) {
        const Node *in = n->inputs[k];
        int r = p->root[in->id];
        if (((const Node *)g->nodes.items[r])->op == OP_INPUT || in->shape.dynamic_batch != n->shape.dynamic_batch ||
            node_output_bytes(in) != node_output_bytes(n) || read_after(p, last_reader, r, i))
            continue;
        /* A convolution reads its input while it writes: the two buffers must differ. */
        if (n->op == OP_CONV2D && p->root[n->inputs[0]->id] == r) continue;
        return k;
    }
    return -1;
}

/* Inputs are read where the caller has them.  Output k is computed straight
 * into the caller's buffer k when its buffer is its own; otherwise (it is an
 * input, or another output's buffer) forward() copies it there at the end. */
static void assign_outputs(Arena *a, const Graph *g, MemoryPlan *p)
{
    p->output_copy = arena_alloc_array(a, (size_t)(g->outputs.len ? g->outputs.len : 1), sizeof *p->output_copy);
    for (int k = 0; k < g->inputs.len; k++) {
        int id = ((const Node *)g->inputs.items[k])->id;
        p->offset[id] = STORAGE_INPUT;
        p->io_slot[id] = k;
    }
    for (int k = 0; k < g->outputs.len; k++) {
        int r = p->root[((const Node *)g->outputs.items[k])->id];
        p->output_copy[k] = -1;
        if (p->offset[r] == STORAGE_INPUT || p->offset[r] == STORAGE_OUTPUT) {
            p->output_copy[k] = r;
            continue;
        }
        p->offset[r] = STORAGE_OUTPUT;
        p->io_slot[r] = k;
    }
}

MemoryPlan *plan_memory(Arena *a, const Graph *g)
{
    int n = g->nodes.len;
    MemoryPlan *p = arena_alloc(a, sizeof *p);
    p->root = arena_alloc_array(a, (size_t)n, sizeof *p->root);
    p->offset = arena_alloc_array(a, (size_t)n, sizeof *p->offset);
    p->scratch_offset = arena_alloc_array(a, (size_t)n, sizeof *p->scratch_offset);
    p->in_place = arena_alloc_array(a, (size_t)n, sizeof *p->in_place);
    p->io_slot = arena_alloc_array(a, (size_t)n, sizeof *p->io_slot);
    int *last_reader = last_readers(a, g);
    int *last_use = arena_alloc_array(a, (size_t)n, sizeof *last_use);
    for (int i = 0; i < n; i++) {
        const Node *node = g->nodes.items[i];
        p->root[i] = node->op != OP_INPUT && op_is_view(node->op) ? p->root[node->inputs[0]->id] : i;
        p->in_place[i] = -1;
        int k = node->op == OP_INPUT ? -1 : in_place_input(g, p, last_reader, i);
        if (k >= 0) {
            p->root[i] = p->root[node->inputs[k]->id];
            p->in_place[i] = k;
        }
        last_use[i] = i;
        p->scratch_offset[i] = -1;
    }
    for (int i = 0; i < n; i++) {
        const Node *node = g->nodes.items[i];
        for (int k = 0; k < node->ninputs; k++) {
            int r = p->root[node->inputs[k]->id];
            if (last_use[r] < i) last_use[r] = i;
        }
        if (last_use[p->root[i]] < i) last_use[p->root[i]] = i;
    }
    assign_outputs(a, g, p);

    Block *blocks = arena_alloc_array(a, (size_t)(2 * n), sizeof *blocks);
    int nblocks = 0;
    for (int i = 0; i < n; i++) {
        const Node *node = g->nodes.items[i];
        if (node->op == OP_INPUT) continue;
        int64_t scratch = node_scratch_bytes(node);
        if (scratch > 0) {
            p->scratch_offset[i] = place(blocks, &nblocks, i, i, scratch, &p->workspace_bytes);
            p->naive_bytes += buffer_aligned(scratch);
        }
        if (p->root[i] != i || p->offset[i] == STORAGE_OUTPUT) continue;
        p->offset[i] = place(blocks, &nblocks, i, last_use[i], node_output_bytes(node), &p->workspace_bytes);
        p->naive_bytes += buffer_aligned(node_output_bytes(node));
    }
    return p;
}
