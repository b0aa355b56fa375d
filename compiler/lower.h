/* lower.h - lowering the checked graph to LLVM IR (one module per model).
 *
 * lower_llvm.c builds the module: weights in a constant pool (written as
 * its own object by emit_weights.c), one or
 * more kernel functions per layer (lower_kernels.c; identical ones across
 * layers keep one body, lower_share.c), the `forward` function
 * that runs them in order over the planned workspace (plan_memory.h), the
 * descriptor `__layerc_desc` of runtime/layerc.h and the model-named entry
 * points.  emit_object.c optimises the module and writes the object file.
 */
#ifndef LAYERC_LOWER_H
#define LAYERC_LOWER_H

#include <llvm-c/Core.h>

#include "constant_pool.h"
#include "diag.h"
#include "graph.h"
#include "target.h"
#include "ir.h"
#include "conv_plan.h"
#include "plan_memory.h"

/* Refuses (with an error naming the layer) what the back end cannot lower. */
bool lower_check_supported(Diag *d, const Graph *g);
/* Whether the back end lowers layers of kind op (its kernel column is not NOT_LOWERED). */
bool op_is_lowered(OpKind op);

/* Builds the module for g; the weights must be bound.  `symbol_prefix` names
 * the model-named functions (<prefix>_create, ...).  The weight arrays go to
 * `constants`, which the module refers to by CONSTANT_POOL_SYMBOL.  The
 * kernels are shaped for the target's vector unit, and the library requires
 * its CPU features when a context is created (runtime/cpu_check.c). */
LLVMModuleRef lower_graph(LLVMContextRef ctx, const Graph *g, const MemoryPlan *plan, const char *symbol_prefix,
                          const Target *target, int inject_fault_layer, ConstantPool *constants);

/* ---- between lower_llvm.c and lower_kernels.c ---- */

/* A kernel step's source and destination.  BUF_ALL (a source only): the
 * kernel gets a block of pointers, the layer's input, its output, its
 * scratch memory and then its other inputs, and finds its operands in them
 * (kernel_operand, kernel_input); a layer of several steps over several
 * intermediate tensors (RNN, LSTM, GRU, TransformerEncoderLayer) or of
 * several inputs (add, cat, Bilinear) uses it. */
typedef enum { BUF_INPUT, BUF_OUTPUT, BUF_SCRATCH, BUF_ALL } BufferRole;

/* A tensor a BUF_ALL kernel reads or writes: the layer's input, its output,
 * or the part of its scratch memory at byte `at` (per batch unit, as every
 * scratch offset: the kernel multiplies it by the run-time batch). */
typedef struct Operand {
    BufferRole role;
    int64_t at;
} Operand;

/* One call of the runtime's parallel loop: fn(src, dst, batch, begin, end)
 * over work items [first_item, first_item + items) (both times the run-time
 * batch when items_per_sample).  A kernel called in several steps (a
 * Winograd band each) tells them apart by the item numbers. */
typedef struct KernelStep {
    LLVMValueRef fn;   /* the entry the runtime calls */
    LLVMValueRef body; /* what it calls with the layer's weights (lower_share.c) */
    BufferRole src, dst;
    int64_t src_scratch_at, dst_scratch_at; /* BUF_SCRATCH: bytes into the node's scratch */
    int64_t first_item, items;
    bool items_per_sample;
    int64_t cost_per_item;
} KernelStep;

enum { MAX_KERNEL_STEPS = 1 + 3 * MAX_WINOGRAD_BANDS }; /* Winograd: pad, then 3 per band */

/* Optionally, one kernel whose items are samples: each item runs every step
 * in order for its sample alone (batch 1), in a scratch slot of its own, so
 * that a sample's intermediate data stays in cache between the steps.
 * forward() runs it instead of the steps when there is more than one sample.
 * Its input argument is a block of three pointers (input, output, scratch);
 * its output argument is unused. */
typedef struct PerSampleKernel {
    LLVMValueRef fn; /* NULL: the layer has none */
    int64_t cost;    /* per sample */
} PerSampleKernel;

/* The kernel bodies built so far, to find identical ones (lower_share.c). */
typedef struct KernelShare {
    Arena *arena;
    PtrVec bodies;
} KernelShare;

typedef struct KernelEntry {
    LLVMValueRef fn, body;
} KernelEntry;

typedef struct KernelBuilder {
    Ir *ir;
    Arena *arena;
    KernelShare *share;
    const Node *node;
    const char *fn_prefix;   /* e.g. "k3.conv1" */
    const char *kernel_name; /* of the kernel being built, e.g. "k3.conv1.pad" */
    KernelStep steps[MAX_KERNEL_STEPS];
    int nsteps;
    PerSampleKernel per_sample;
} KernelBuilder;

/* The parameters of the kernel body being built: the kernel's, then the
 * address of the layer's first constant array (lower_constant_space). */
typedef struct KernelArgs {
    LLVMValueRef src, dst, batch, begin, end, weights;
} KernelArgs;

enum { KERNEL_WEIGHTS_PARAM = 5 };

/* Finishes `body` (void (src, dst, batch, begin, end, weights)): its
 * constants addressed from `weights`, one copy kept of identical bodies, and
 * an entry `name` of kernel_fn_type() that calls it with the layer's weights. */
KernelEntry share_kernel(KernelShare *share, Ir *ir, LLVMValueRef body, const char *name);

/* Emits node kb->node's kernels into kb->steps, with the kernel column of layers.def. */
void lower_node_kernels(KernelBuilder *kb);
/* The kernels of the column that live in files of their own (the others are in lower_kernels.c). */
void lower_conv2d(KernelBuilder *kb); /* lower_conv.c */
void lower_conv_winograd(KernelBuilder *kb); /* lower_winograd.c, called by lower_conv2d */
void lower_linear_gemm(KernelBuilder *kb); /* lower_gemm.c */
void lower_embedding(KernelBuilder *kb); /* lower_embedding.c */
void lower_embeddingbag(KernelBuilder *kb); /* lower_embedding.c */
void lower_recurrent(KernelBuilder *kb); /* lower_recurrent.c: RNN, LSTM, GRU */
void lower_transformer_encoder(KernelBuilder *kb); /* lower_transformer.c */
void lower_broadcast_binary(KernelBuilder *kb); /* lower_combine.c: add, mul */
void lower_cat(KernelBuilder *kb); /* lower_combine.c */
void lower_bilinear(KernelBuilder *kb); /* lower_combine.c */

/* Kernel-building helpers shared by lower_kernels.c, lower_conv.c, lower_gemm.c and lower_winograd.c. */
/* The type of every kernel: void (src, dst, batch, begin, end), runtime.h's layerc_kernel. */
LLVMTypeRef kernel_fn_type(Ir *ir);
/* A kernel body's type: kernel_fn_type's parameters, then ptr weights. */
LLVMTypeRef kernel_body_type(Ir *ir);
KernelArgs kernel_begin(KernelBuilder *kb, const char *what);
void kernel_end(KernelBuilder *kb, BufferRole src, BufferRole dst, int64_t items, bool per_sample, int64_t cost);
/* A kernel bound by memory, not by its few operations, counts this much cost
 * (kernel_end's rough flops) per float it reads or writes: enough that a
 * 64 x 3 x 32 x 32 MaxPool (77 us on one core) uses the thread pool. */
enum { MEMORY_COST_PER_FLOAT = 8 };
/* kernel_end for kernels that read or write parts of the node's scratch memory:
 * src_at / dst_at are byte offsets into it, or -1 for the input / the output. */
void kernel_end_in_scratch(KernelBuilder *kb, int64_t src_at, int64_t dst_at, int64_t items, bool per_sample,
                           int64_t cost);
/* In a kernel whose source is BUF_ALL: the address of operand o. */
LLVMValueRef kernel_operand(Ir *ir, const KernelArgs *a, Operand o);
/* In a kernel whose source is BUF_ALL: the address of the layer's input k. */
LLVMValueRef kernel_input(Ir *ir, const KernelArgs *a, int k);
/* Step `index` of this layer once more, over items [first_item, first_item + its items). */
void kernel_repeat(KernelBuilder *kb, int index, int64_t first_item);
/* kb->per_sample from the steps so far (all per sample, none writing the
 * input); `scratch_bytes` is the node's scratch for one sample. */
void kernel_fuse_per_sample(KernelBuilder *kb, int64_t scratch_bytes);
/* For a layer whose steps each read all of the step before (Winograd), run one sample at a time:
 * split between cores, each step first moves the data the other core wrote, so below
 * SMALL_LAYER_PARALLEL_FLOPS a sample (as 2 x the node's multiply-adds) runs every step on the calling
 * thread (their cost becomes 0, which the runtime never splits).  Only for a layer whose batch runs
 * its per-sample kernel (items are samples, with their own cost): the steps then serve batch 1 alone.
 * (SMALL_LAYER_PARALLEL_FLOPS is in conv_plan.h: the pass reads it for --tune-threads.) */
void kernel_keep_small_layer_on_one_thread(KernelBuilder *kb, int64_t samples); /* as declared (a named batch: 1) */
/* The node's parameter `suffix` as a constant array, or NULL when it has none. */
LLVMValueRef constant_param(KernelBuilder *kb, const char *suffix);
/* op applied to a float or a vector of floats. */
LLVMValueRef activation(Ir *ir, OpKind op, const ActAttrs *attr, LLVMValueRef x);
/* LayerNorm of rows [begin, end) of `width` floats, src to dst (which may be
 * the same): mean and biased variance in double, then (x - mean) / sqrt(var
 * + eps) * weight + bias (either may be NULL). */
void emit_layernorm_rows(Ir *ir, LLVMValueRef src, LLVMValueRef dst, LLVMValueRef begin, LLVMValueRef end, int64_t width,
                         LLVMValueRef weight, LLVMValueRef bias, double eps);
/* The node's fused activation over dst[base, base + count), if it has one. */
void apply_epilogue(KernelBuilder *kb, LLVMValueRef dst, LLVMValueRef base, int64_t count);
/* The node's fused activation on every lane of the vector v (v itself when it has none). */
LLVMValueRef epilogue_vector(Ir *ir, const Node *n, LLVMValueRef v);

/* A 64-byte aligned array of `count` floats in the constant pool, zero, for
 * the caller to fill (a weight packer writes its layout straight into it);
 * *address is its address in the module. */
float *lower_constant_space(Ir *ir, int64_t count, LLVMValueRef *address);
/* A copy of data[0, count) in the constant pool; returns its address. */
LLVMValueRef lower_constant_floats(Ir *ir, const float *data, int64_t count);
/* The address of the current layer's first constant array (null if it has none);
 * inside the layer's kernel bodies, its arrays are addressed relative to it. */
LLVMValueRef lower_layer_constants_address(Ir *ir);

#endif
