/* plan_memory.h - the activation memory plan, made at compile time.
 *
 * Every layer output that is not a view (Flatten, Identity, Dropout share
 * their input's storage) gets a byte offset in one workspace; buffers whose
 * lifetimes do not overlap share bytes (first fit, in layer order).  A value
 * may have several readers (a residual kept alive across its block): its
 * buffer lives until the last.  An add, a mul and a Conv2d with a fused
 * residual write their output into an input's buffer when that input is
 * read by nothing after them (in place).  The model's inputs are read in
 * place and each output is written straight into the caller's buffer (or
 * copied there at the end, when it is an input or another output).  Sizes are per sample when the batch is named
 * (the runtime multiplies offsets by the batch), else for the whole batch.
 */
#ifndef LAYERC_PLAN_MEMORY_H
#define LAYERC_PLAN_MEMORY_H

#include "graph.h"

enum { STORAGE_INPUT = -1, STORAGE_OUTPUT = -2 };

typedef struct MemoryPlan {
    int *root;               /* per node: the node whose buffer holds its output */
    int *in_place;           /* per node: which of its inputs' buffers it writes its output into, or -1 */
    int64_t *offset;         /* per root node: workspace byte offset, or STORAGE_INPUT / STORAGE_OUTPUT */
    int *io_slot;            /* per STORAGE_INPUT / STORAGE_OUTPUT root: which input or output buffer */
    int *output_copy;        /* per model output: -1 when computed in its buffer, else the root node copied into it at the end */
    int64_t *scratch_offset; /* per node: its scratch buffer's offset (-1: none) */
    int64_t workspace_bytes; /* peak */
    int64_t naive_bytes;     /* without reuse: every output and scratch buffer */
} MemoryPlan;

/* Every buffer starts on a cache line. */
enum { BUFFER_ALIGN = 64 };
static inline int64_t buffer_aligned(int64_t bytes) { return (bytes + BUFFER_ALIGN - 1) / BUFFER_ALIGN * BUFFER_ALIGN; }

/* Bytes of scratch memory node n's kernels need (0 for most layers). */
int64_t node_scratch_bytes(const Node *n);
/* The scratch layouts of the layers whose kernels define them. */
int64_t recurrent_scratch_bytes(const Node *n);   /* lower_recurrent.c */
int64_t transformer_scratch_bytes(const Node *n); /* lower_transformer.c */
int64_t node_output_bytes(const Node *n);

MemoryPlan *plan_memory(Arena *a, const Graph *g);

#endif
