/* lower_llvm.c - builds the LLVM module of a model (see lower.h): weights in
 * the constant pool, kernels per layer, the forward function over the memory plan,
 * the layerc_model_desc descriptor and the model-named entry points. */
#include <ctype.h>
#include <string.h>

#include "constant_pool.h"
#include "layerc.h"
#include "lower.h"

/* The generated code addresses the constant pool PC-relative (the small code
 * model), so it must fit in 2 GiB with the code; refused before any weight is read. */
static size_t param_bytes(const Node *n)
{
    size_t bytes = 0;
    for (int k = 0; k < n->nparams; k++) bytes += (size_t)shape_numel(&n->params[k].shape) * sizeof(float);
    return bytes;
}

static void check_weights_fit(Diag *d, const Graph *g)
{
    size_t bytes = 0;
    const Node *largest = NULL;
    size_t largest_bytes = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = g->nodes.items[i];
        size_t node_bytes = param_bytes(n);
        bytes += node_bytes;
        if (node_bytes > largest_bytes) largest = n, largest_bytes = node_bytes;
    }
    if (bytes <= CONSTANT_POOL_MAX_BYTES || !largest) return;
    diag_error(d, largest->op_loc, "the model's weights take %zu MiB; a compiled library can embed at most %zu MiB",
               bytes >> 20, CONSTANT_POOL_MAX_BYTES >> 20);
    diag_note(d, largest->op_loc, "layer %s alone takes %zu MiB", largest->name, largest_bytes >> 20);
}

/* "Conv2d, MaxPool2d, ..., Dropout2d": the layers with a kernel (layers.def). */
static const char *lowered_layer_list(Arena *a)
{
    const char *list = NULL;
    for (int op = 0; op < OP_INPUT; op++)
        if (op_is_lowered((OpKind)op)) list = list ? arena_printf(a, "%s, %s", list, op_name((OpKind)op)) : op_name((OpKind)op);
    return list;
}

/* Reports the options of a lowered layer that the back end does not compile, naming them and why. */
static void check_options(Diag *d, const Node *n)
{
    int max_layers = MAX_KERNEL_STEPS / 2; /* two kernel steps a recurrent layer */
    if ((n->op == OP_RNN || n->op == OP_LSTM || n->op == OP_GRU) && n->attr.rnn.num_layers > max_layers) {
        diag_error(d, n->op_loc, "layer %s (%s) has num_layers=%lld: the back end compiles at most %d stacked layers in one %s",
                   n->name, op_name(n->op), (long long)n->attr.rnn.num_layers, max_layers, op_name(n->op));
        diag_note(d, n->op_loc, "split it into %s layers of at most %d each: layer %d becomes layer 0 of the second, so "
                                "its weights are renamed (weight_ih_l%d -> weight_ih_l0)", op_name(n->op), max_layers, max_layers,
                  max_layers);
    }
    if (n->op == OP_EMBEDDINGBAG && n->attr.emb.include_last_offset) {
        diag_error(d, n->op_loc, "layer %s (EmbeddingBag) has include_last_offset=True, which cannot be compiled: on a 2-D "
                                 "input PyTorch then returns one bag fewer than there are rows", n->name);
        diag_note(d, n->op_loc, "with include_last_offset=False (the default) each row of the input is one bag");
    }
}

/* The inputs share one run-time batch: all name it, or none does and they agree on the first dimension. */
static void check_input_batches(Diag *d, const Graph *g)
{
    const Node *first = g->input;
    for (int k = 1; k < g->inputs.len; k++) {
        const Node *in = g->inputs.items[k];
        bool agree = in->shape.dynamic_batch == first->shape.dynamic_batch &&
                     (in->shape.dynamic_batch || (in->shape.rank > 0 && first->shape.rank > 0 && in->shape.dims[0] == first->shape.dims[0]));
        if (agree) continue;
        diag_error(d, in->loc, "input '%s' and input '%s' disagree on the batch: a compiled model's inputs share one", in->name,
                   first->name);
        diag_note(d, in->loc, "name the first dimension of every input (e.g. N), or give them the same fixed size");
    }
}

/* Outputs are floats: an i64 output would be a token-id input passed through unchanged. */
static void check_outputs(Diag *d, const Graph *g)
{
    for (int k = 0; k < g->outputs.len; k++) {
        const Node *out = g->outputs.items[k];
        if (out->dtype == DT_F32) continue;
        const Node *in = out;
        while (in->op != OP_INPUT && in->ninputs) in = in->inputs[0];
        diag_error(d, out->op == OP_INPUT ? out->loc : out->op_loc,
                   "the model's output is its i64 input, unchanged: a compiled model computes floats");
        diag_note(d, in->loc, "token ids are read by an Embedding or EmbeddingBag layer");
    }
}

bool lower_check_supported(Diag *d, const Graph *g)
{
    int errors = d->errors;
    check_outputs(d, g);
    check_input_batches(d, g);
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = g->nodes.items[i];
        if (n->op == OP_INPUT) continue;
        if (op_is_lowered(n->op)) {
            check_options(d, n);
            continue;
        }
        diag_error(d, n->op_loc, "layer %s (%s) cannot be compiled yet: the back end lowers %s", n->name, op_name(n->op),
                   lowered_layer_list(d->arena));
        diag_note(d, n->op_loc, "'layerc check' and 'layerc shapes' accept it");
    }
    check_weights_fit(d, g);
    return d->errors == errors;
}

/* The arrays are placed in the constant pool.  A layer's kernels address
 * them from a placeholder of the layer's own (so that lower_share.c can make
 * them relative to an argument); end_layer_constants() points whatever still
 * uses it into the pool's placeholder, which finish_constants() gives its
 * final size. */
static LLVMValueRef pool_address(Ir *ir, int64_t offset)
{
    if (!ir->constants_global) {
        ir->constants_global = LLVMAddGlobal(ir->mod, LLVMArrayType2(LLVMInt8TypeInContext(ir->ctx), 0), "weights.placeholder");
        LLVMSetGlobalConstant(ir->constants_global, 1);
    }
    LLVMValueRef at = ir_i64(ir, offset);
    return LLVMConstInBoundsGEP2(LLVMInt8TypeInContext(ir->ctx), ir->constants_global, &at, 1);
}

float *lower_constant_space(Ir *ir, int64_t count, LLVMValueRef *address)
{
    size_t offset;
    float *space = constant_pool_space(ir->constants, (size_t)count * sizeof(float), &offset);
    if (!ir->layer_constants) {
        ir->layer_constants = LLVMAddGlobal(ir->mod, LLVMArrayType2(LLVMInt8TypeInContext(ir->ctx), 0), "weights.layer");
        LLVMSetGlobalConstant(ir->layer_constants, 1);
        ir->layer_constants_at = (int64_t)offset;
    }
    LLVMValueRef at = ir_i64(ir, (int64_t)offset - ir->layer_constants_at);
    *address = LLVMConstInBoundsGEP2(LLVMInt8TypeInContext(ir->ctx), ir->layer_constants, &at, 1);
    return space;
}

LLVMValueRef lower_layer_constants_address(Ir *ir)
{
    return ir->layer_constants ? pool_address(ir, ir->layer_constants_at) : LLVMConstNull(ir->ptr);
}

static void end_layer_constants(Ir *ir)
{
    if (!ir->layer_constants) return;
    LLVMReplaceAllUsesWith(ir->layer_constants, pool_address(ir, ir->layer_constants_at));
    LLVMDeleteGlobal(ir->layer_constants);
    ir->layer_constants = NULL;
}

LLVMValueRef lower_constant_floats(Ir *ir, const float *data, int64_t count)
{
    LLVMValueRef address;
    memcpy(lower_constant_space(ir, count, &address), data, (size_t)count * sizeof(float));
    return address;
}

/* The pool's symbol (emit_weights.c), declared with its real size. */
static void finish_constants(Ir *ir)
{
    if (!ir->constants_global) return;
    LLVMTypeRef type = LLVMArrayType2(LLVMInt8TypeInContext(ir->ctx), ir->constants->len);
    LLVMValueRef pool = LLVMAddGlobal(ir->mod, type, CONSTANT_POOL_SYMBOL);
    LLVMSetGlobalConstant(pool, 1);
    LLVMSetVisibility(pool, LLVMHiddenVisibility);
    LLVMSetAlignment(pool, CONSTANT_ALIGN);
    LLVMReplaceAllUsesWith(ir->constants_global, pool);
    LLVMDeleteGlobal(ir->constants_global);
    ir->constants_global = pool;
}

enum { DESC_FIELDS = 27 };

typedef struct Lowering {
    Ir ir;
    Arena arena; /* scratch for names and re-laid-out weights; freed at the end */
    KernelShare share;
    const Graph *g;
    const MemoryPlan *plan;
    KernelStep (*steps)[MAX_KERNEL_STEPS];
    int *nsteps;
    PerSampleKernel *per_sample;
    LLVMTypeRef tensor_info_t, desc_t, parallel_t, observe_t;
    int fault_layer; /* --inject-fault */
    const Target *target;
} Lowering;

static LLVMValueRef constant_string(Ir *ir, const char *text, const char *name)
{
    LLVMValueRef init = LLVMConstStringInContext2(ir->ctx, text, strlen(text), 0);
    LLVMValueRef g = LLVMAddGlobal(ir->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(g, init);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
    return g;
}

static LLVMValueRef declare(Ir *ir, const char *name, LLVMTypeRef type)
{
    LLVMValueRef fn = LLVMGetNamedFunction(ir->mod, name);
    if (!fn) {
        fn = LLVMAddFunction(ir->mod, name, type);
        LLVMSetVisibility(fn, LLVMHiddenVisibility);
    }
    return fn;
}

static void define_types(Lowering *lw)
{
    Ir *ir = &lw->ir;
    LLVMTypeRef info[5] = {ir->i32, ir->i32, ir->i32, ir->i32, LLVMArrayType2(ir->i64, LAYERC_MAX_RANK)};
    lw->tensor_info_t = LLVMStructTypeInContext(ir->ctx, info, 5, 0);
    LLVMTypeRef p = ir->ptr;
    /* Field for field, runtime/layerc.h's layerc_model_desc. */
    LLVMTypeRef desc[DESC_FIELDS] = {ir->i32, ir->i32, p, lw->tensor_info_t, lw->tensor_info_t, ir->i64, p, p, p, p, p, p, p,
                                     p, p, ir->i64, ir->i32, ir->i32, p, p, p, p, p, p, p, p, p};
    lw->desc_t = LLVMStructTypeInContext(ir->ctx, desc, DESC_FIELDS, 0);
    LLVMTypeRef par[8] = {p, p, p, p, ir->i64, ir->i64, ir->i64, ir->i64};
    lw->parallel_t = LLVMFunctionType(ir->void_t, par, 8, 0);
    LLVMTypeRef obs[4] = {p, ir->i32, p, ir->i64};
    lw->observe_t = LLVMFunctionType(ir->void_t, obs, 4, 0);
}

static LLVMValueRef tensor_info(Lowering *lw, const Shape *s, DType dtype)
{
    Ir *ir = &lw->ir;
    LLVMValueRef dims[LAYERC_MAX_RANK];
    for (int i = 0; i < LAYERC_MAX_RANK; i++) dims[i] = ir_i64(ir, i < s->rank ? s->dims[i] : 0);
    LLVMValueRef fields[5] = {
        LLVMConstInt(ir->i32, (unsigned long long)s->rank, 0),
        LLVMConstInt(ir->i32, dtype == DT_I64 ? LAYERC_I64 : LAYERC_F32, 0),
        LLVMConstInt(ir->i32, s->dynamic_batch ? 0 : (unsigned long long)-1, 1),
        LLVMConstInt(ir->i32, 0, 0),
        LLVMConstArray2(ir->i64, dims, LAYERC_MAX_RANK),
    };
    return LLVMConstNamedStruct(lw->tensor_info_t, fields, 5);
}

static void lower_kernels(Lowering *lw)
{
    const Graph *g = lw->g;
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = g->nodes.items[i];
        if (n->op == OP_INPUT || op_is_view(n->op)) continue;
        KernelBuilder kb = {.ir = &lw->ir, .arena = &lw->arena, .share = &lw->share, .node = n};
        kb.fn_prefix = arena_printf(&lw->arena, "k%d.%s", i, n->name);
        lower_node_kernels(&kb);
        end_layer_constants(&lw->ir);
        memcpy(lw->steps[i], kb.steps, sizeof kb.steps);
        lw->nsteps[i] = kb.nsteps;
        lw->per_sample[i] = kb.per_sample;
    }
}

/* forward()'s view of the caller's buffers: one pointer per input and per output. */
typedef struct CallerBuffers {
    LLVMValueRef inputs[MAX_MODEL_IO], outputs[MAX_MODEL_IO];
} CallerBuffers;

/* Element k of a pointer array. */
static LLVMValueRef load_pointer(Ir *ir, LLVMValueRef array, int k)
{
    LLVMValueRef at = ir_i64(ir, k);
    return LLVMBuildLoad2(ir->b, ir->ptr, LLVMBuildInBoundsGEP2(ir->b, ir->ptr, array, &at, 1, ""), "");
}

/* Where node r's buffer lives in forward(): an input, an output, or the workspace. */
static LLVMValueRef storage(Lowering *lw, int root, const CallerBuffers *io, LLVMValueRef ws, LLVMValueRef batch)
{
    int64_t off = lw->plan->offset[root];
    if (off == STORAGE_INPUT) return io->inputs[lw->plan->io_slot[root]];
    if (off == STORAGE_OUTPUT) return io->outputs[lw->plan->io_slot[root]];
    Ir *ir = &lw->ir;
    LLVMValueRef bytes = ir_mul(ir, ir_i64(ir, off), batch);
    return LLVMBuildInBoundsGEP2(ir->b, LLVMInt8TypeInContext(ir->ctx), ws, &bytes, 1, "");
}

/* Byte `at` of node i's scratch memory (sizes per sample, as every offset). */
static LLVMValueRef scratch(Lowering *lw, int i, int64_t at, LLVMValueRef ws, LLVMValueRef batch)
{
    Ir *ir = &lw->ir;
    LLVMValueRef bytes = ir_mul(ir, ir_i64(ir, lw->plan->scratch_offset[i] + at), batch);
    return LLVMBuildInBoundsGEP2(ir->b, LLVMInt8TypeInContext(ir->ctx), ws, &bytes, 1, "");
}

/* A block of pointers in forward()'s frame: the layer's input, its output,
 * its scratch memory and its other inputs (BUF_ALL steps and per-sample kernels). */
static LLVMValueRef buffer_block(Lowering *lw, int i, LLVMValueRef *srcs, LLVMValueRef dst, LLVMValueRef ws, LLVMValueRef batch)
{
    Ir *ir = &lw->ir;
    const Node *n = lw->g->nodes.items[i];
    int count = 2 + n->ninputs;
    LLVMTypeRef block_t = LLVMArrayType2(ir->ptr, (uint64_t)count);
    LLVMValueRef block = ir_var(ir, block_t, LLVMGetUndef(block_t), "buffers");
    LLVMValueRef buffers[2 + MAX_NODE_INPUTS] = {
        srcs[0], dst, lw->plan->scratch_offset[i] >= 0 ? scratch(lw, i, 0, ws, batch) : LLVMConstNull(ir->ptr)};
    for (int k = 1; k < n->ninputs; k++) buffers[2 + k] = srcs[k];
    for (int k = 0; k < count; k++) {
        LLVMValueRef at[2] = {ir_i64(ir, 0), ir_i64(ir, k)};
        LLVMBuildStore(ir->b, buffers[k], LLVMBuildInBoundsGEP2(ir->b, block_t, block, at, 2, ""));
    }
    return block;
}

/* Where a step reads or writes: the node's input or output, part of its scratch, or all three (BUF_ALL). */
static LLVMValueRef step_buffer(Lowering *lw, int i, BufferRole role, int64_t scratch_at, LLVMValueRef buffer,
                                LLVMValueRef ws, LLVMValueRef batch, LLVMValueRef block)
{
    if (role == BUF_ALL) return block;
    return role == BUF_SCRATCH ? scratch(lw, i, scratch_at, ws, batch) : buffer;
}

/* Node i's kernel steps, one parallel loop each. */
static void call_steps(Lowering *lw, int i, LLVMValueRef ctx, LLVMValueRef *srcs, LLVMValueRef dst, LLVMValueRef ws,
                       LLVMValueRef batch)
{
    Ir *ir = &lw->ir;
    LLVMValueRef parallel = declare(ir, "__layerc_rt_parallel", lw->parallel_t);
    LLVMValueRef block = NULL, src = srcs[0];
    for (int s = 0; s < lw->nsteps[i]; s++)
        if (lw->steps[i][s].src == BUF_ALL && !block) block = buffer_block(lw, i, srcs, dst, ws, batch);
    for (int s = 0; s < lw->nsteps[i]; s++) {
        const KernelStep *st = &lw->steps[i][s];
        LLVMValueRef items = ir_i64(ir, st->items), first = ir_i64(ir, st->first_item);
        if (st->items_per_sample) {
            items = ir_mul(ir, items, batch);
            first = ir_mul(ir, first, batch);
        }
        LLVMValueRef args[8] = {ctx, st->fn, step_buffer(lw, i, st->src, st->src_scratch_at, src, ws, batch, block),
                                st->src == BUF_ALL ? LLVMConstNull(ir->ptr)
                                                   : step_buffer(lw, i, st->dst, st->dst_scratch_at, dst, ws, batch, block),
                                batch, first, items, ir_i64(ir, st->cost_per_item)};
        LLVMBuildCall2(ir->b, lw->parallel_t, parallel, args, 8, "");
    }
}

/* Node i's per-sample kernel, one parallel loop over the samples. */
static void call_per_sample(Lowering *lw, int i, LLVMValueRef ctx, LLVMValueRef *srcs, LLVMValueRef dst, LLVMValueRef ws,
                            LLVMValueRef batch, LLVMValueRef samples)
{
    Ir *ir = &lw->ir;
    const PerSampleKernel *ps = &lw->per_sample[i];
    LLVMValueRef args[8] = {ctx, ps->fn, buffer_block(lw, i, srcs, dst, ws, batch), LLVMConstNull(ir->ptr), ir_i64(ir, 1),
                            ir_i64(ir, 0), samples, ir_i64(ir, ps->cost)};
    LLVMBuildCall2(ir->b, lw->parallel_t, declare(ir, "__layerc_rt_parallel", lw->parallel_t), args, 8, "");
}

/* Node i's kernels: the per-sample kernel when it has one and there is more
 * than one sample (known at compile time for a fixed batch), else the steps. */
static void call_kernels(Lowering *lw, int i, LLVMValueRef ctx, LLVMValueRef *src, LLVMValueRef dst, LLVMValueRef ws,
                         LLVMValueRef batch)
{
    Ir *ir = &lw->ir;
    const Node *n = lw->g->nodes.items[i];
    const Shape *in = &n->inputs[0]->shape;
    if (!lw->per_sample[i].fn || (!in->dynamic_batch && in->dims[0] == 1)) {
        call_steps(lw, i, ctx, src, dst, ws, batch);
        return;
    }
    if (!in->dynamic_batch) {
        call_per_sample(lw, i, ctx, src, dst, ws, batch, ir_i64(ir, in->dims[0]));
        return;
    }
    LLVMBasicBlockRef merge = LLVMAppendBasicBlockInContext(ir->ctx, ir->fn, "kernels.done");
    LLVMBasicBlockRef one = LLVMAppendBasicBlockInContext(ir->ctx, ir->fn, "one.sample");
    LLVMBasicBlockRef many = LLVMAppendBasicBlockInContext(ir->ctx, ir->fn, "samples");
    LLVMBuildCondBr(ir->b, LLVMBuildICmp(ir->b, LLVMIntSGT, batch, ir_i64(ir, 1), ""), many, one);
    LLVMPositionBuilderAtEnd(ir->b, many);
    call_per_sample(lw, i, ctx, src, dst, ws, batch, batch);
    LLVMBuildBr(ir->b, merge);
    LLVMPositionBuilderAtEnd(ir->b, one);
    call_steps(lw, i, ctx, src, dst, ws, batch);
    LLVMBuildBr(ir->b, merge);
    LLVMPositionBuilderAtEnd(ir->b, merge);
}

static LLVMValueRef lower_forward(Lowering *lw)
{
    Ir *ir = &lw->ir;
    const Graph *g = lw->g;
    const MemoryPlan *plan = lw->plan;
    LLVMTypeRef params[5] = {ir->ptr, ir->ptr, ir->ptr, ir->ptr, ir->i64};
    LLVMValueRef fn = LLVMAddFunction(ir->mod, "__layerc_forward", LLVMFunctionType(ir->void_t, params, 5, 0));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    ir_begin_function(ir, fn);
    LLVMValueRef ctx = LLVMGetParam(fn, 0), ws = LLVMGetParam(fn, 3), batch = LLVMGetParam(fn, 4);
    CallerBuffers io;
    for (int k = 0; k < g->inputs.len; k++) io.inputs[k] = load_pointer(ir, LLVMGetParam(fn, 1), k);
    for (int k = 0; k < g->outputs.len; k++) io.outputs[k] = load_pointer(ir, LLVMGetParam(fn, 2), k);
    LLVMValueRef observe = declare(ir, "__layerc_rt_observe", lw->observe_t);

    int layer = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = g->nodes.items[i];
        if (n->op == OP_INPUT) continue;
        LLVMValueRef src[MAX_NODE_INPUTS];
        for (int k = 0; k < n->ninputs; k++) src[k] = storage(lw, plan->root[n->inputs[k]->id], &io, ws, batch);
        LLVMValueRef dst = storage(lw, plan->root[i], &io, ws, batch);
        if (n->has_residual && plan->in_place[i] < 0) /* the kernel adds the skip tensor it finds in its output */
            LLVMBuildMemCpy(ir->b, dst, 4, src[1], 4, ir_mul(ir, ir_i64(ir, node_output_bytes(n)), batch));
        call_kernels(lw, i, ctx, src, dst, ws, batch);
        if (i == lw->fault_layer) /* a deliberate error, to show that layerc test finds it */
            ir_store_f32(ir, dst, ir_i64(ir, 0), ir_fadd(ir, ir_load_f32(ir, dst, ir_i64(ir, 0)), ir_f32(ir, 1.0)));
        LLVMValueRef oargs[4] = {ctx, LLVMConstInt(ir->i32, (unsigned long long)layer++, 0), dst, batch};
        LLVMBuildCall2(ir->b, lw->observe_t, observe, oargs, 4, "");
    }
    /* Outputs that are an input, or that share another output's buffer, are copied at the end. */
    for (int k = 0; k < g->outputs.len; k++) {
        int from = plan->output_copy[k];
        if (from < 0) continue;
        LLVMValueRef bytes = ir_mul(ir, ir_i64(ir, node_output_bytes(g->outputs.items[k])), batch);
        LLVMBuildMemCpy(ir->b, io.outputs[k], 4, storage(lw, from, &io, ws, batch), 4, bytes);
    }
    LLVMBuildRetVoid(ir->b);
    return fn;
}

static LLVMValueRef constant_array_global(Ir *ir, LLVMTypeRef elem, LLVMValueRef *items, int count, const char *name)
{
    LLVMValueRef init = LLVMConstArray2(elem, items, (uint64_t)count);
    LLVMValueRef g = LLVMAddGlobal(ir->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(g, init);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    return g;
}

/* A private constant array of the tensor infos (or names, or id limits) of the model's inputs or outputs. */
static LLVMValueRef io_infos(Lowering *lw, const PtrVec *nodes, const char *name)
{
    LLVMValueRef items[MAX_MODEL_IO];
    for (int k = 0; k < nodes->len; k++) {
        const Node *n = nodes->items[k];
        items[k] = tensor_info(lw, &n->shape, n->dtype);
    }
    return constant_array_global(&lw->ir, lw->tensor_info_t, items, nodes->len, name);
}

static LLVMValueRef io_names(Lowering *lw, const PtrVec *nodes, const char *name)
{
    LLVMValueRef items[MAX_MODEL_IO];
    for (int k = 0; k < nodes->len; k++) items[k] = constant_string(&lw->ir, ((const Node *)nodes->items[k])->name, "io.name");
    return constant_array_global(&lw->ir, lw->ir.ptr, items, nodes->len, name);
}

static LLVMValueRef input_id_limits(Lowering *lw)
{
    LLVMValueRef items[MAX_MODEL_IO];
    const Graph *g = lw->g;
    for (int k = 0; k < g->inputs.len; k++) items[k] = ir_i64(&lw->ir, graph_input_token_limit(g, g->inputs.items[k]));
    return constant_array_global(&lw->ir, lw->ir.i64, items, g->inputs.len, "input.id_limits");
}

static void lower_descriptor(Lowering *lw, LLVMValueRef forward)
{
    Ir *ir = &lw->ir;
    const Graph *g = lw->g;
    int layers = graph_layer_count(g);
    LLVMValueRef *names = arena_alloc_array(&lw->arena, (size_t)(layers + 1), sizeof *names);
    LLVMValueRef *shapes = arena_alloc_array(&lw->arena, (size_t)(layers + 1), sizeof *shapes);
    int layer = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = g->nodes.items[i];
        if (n->op == OP_INPUT) continue;
        const char *label = arena_printf(&lw->arena, "%s (%s)%s", node_group_name(&lw->arena, n),
                                         node_group_types(&lw->arena, n), n->absorbed.len ? " [fused]" : "");
        names[layer] = constant_string(ir, label, "layer.name");
        shapes[layer++] = tensor_info(lw, &n->shape, n->dtype);
    }
    LLVMTypeRef empty = LLVMFunctionType(ir->void_t, NULL, 0, 0); /* the runtime's functions, by address only */
    LLVMValueRef fields[DESC_FIELDS] = {
        LLVMConstInt(ir->i32, LAYERC_ABI_VERSION, 0),
        LLVMConstInt(ir->i32, (unsigned long long)layers, 0),
        constant_string(ir, g->model_name, "model.name"),
        tensor_info(lw, &g->input->shape, g->input->dtype),
        tensor_info(lw, &g->output->shape, g->output->dtype),
        ir_i64(ir, lw->plan->workspace_bytes),
        declare(ir, "__layerc_rt_create", empty),
        declare(ir, "__layerc_rt_run", empty),
        declare(ir, "__layerc_rt_destroy", empty),
        declare(ir, "__layerc_rt_error", empty),
        declare(ir, "__layerc_rt_set_threads", empty),
        declare(ir, "__layerc_rt_run_observed", empty),
        constant_array_global(ir, ir->ptr, names, layers, "layer.names"),
        constant_array_global(ir, lw->tensor_info_t, shapes, layers, "layer.outputs"),
        forward,
        ir_i64(ir, graph_token_limit(g)),
        LLVMConstInt(ir->i32, (unsigned long long)g->inputs.len, 0),
        LLVMConstInt(ir->i32, (unsigned long long)g->outputs.len, 0),
        io_infos(lw, &g->inputs, "model.inputs"),
        io_infos(lw, &g->outputs, "model.outputs"),
        io_names(lw, &g->inputs, "model.input_names"),
        io_names(lw, &g->outputs, "model.output_names"),
        input_id_limits(lw),
        declare(ir, "__layerc_rt_run_multi", empty),
        constant_string(ir, target_describe(&lw->arena, lw->target), "model.target"),
        constant_string(ir, lw->target->checked, "model.cpu_features"),
        declare(ir, "__layerc_rt_cpu_unsupported", empty),
    };
    LLVMValueRef desc = LLVMAddGlobal(ir->mod, lw->desc_t, "__layerc_desc");
    LLVMSetInitializer(desc, LLVMConstNamedStruct(lw->desc_t, fields, DESC_FIELDS));
    LLVMSetGlobalConstant(desc, 1);
    LLVMSetVisibility(desc, LLVMHiddenVisibility);
}

/* The CPU features the code relies on, NULL-terminated, and the message
 * create() gives for each when this machine lacks it (runtime/cpu_check.c). */
static void lower_cpu_features(Lowering *lw)
{
    Ir *ir = &lw->ir;
    const Target *t = lw->target;
    const char *list = t->checked;
    int count = 1;
    for (const char *p = list; *p; p++) count += *p == ',';
    LLVMValueRef *names = arena_alloc_array(&lw->arena, (size_t)count + 1, sizeof *names);
    LLVMValueRef *messages = arena_alloc_array(&lw->arena, (size_t)count + 1, sizeof *messages);
    int n = 0;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        const char *name = arena_strndup(&lw->arena, p, len);
        names[n] = constant_string(ir, name, "cpu.feature");
        messages[n++] = constant_string(
            ir, arena_printf(&lw->arena, "this machine's CPU lacks %s, which model %s was compiled for (%s, CPU %s): build it "
                                         "with --target-cpu native, or for the CPU of the machine that runs it",
                             name, lw->g->model_name, t->name, t->cpu),
            "cpu.message");
        p += len + (p[len] == ',');
    }
    names[n] = messages[n] = LLVMConstNull(ir->ptr);
    static const char *const symbols[2] = {"__layerc_cpu_features", "__layerc_cpu_messages"};
    LLVMValueRef *arrays[2] = {names, messages};
    for (int k = 0; k < 2; k++) {
        LLVMValueRef init = LLVMConstArray2(ir->ptr, arrays[k], (uint64_t)n + 1);
        LLVMValueRef g = LLVMAddGlobal(ir->mod, LLVMTypeOf(init), symbols[k]);
        LLVMSetInitializer(g, init);
        LLVMSetGlobalConstant(g, 1);
        LLVMSetVisibility(g, LLVMHiddenVisibility);
    }
}

/* <prefix>_model(): the descriptor, as layerc_model() gives it (which an object or archive keeps local). */
static void lower_model_entry(Lowering *lw, const char *prefix)
{
    Ir *ir = &lw->ir;
    LLVMValueRef fn = LLVMAddFunction(ir->mod, arena_printf(&lw->arena, "%s_model", prefix), LLVMFunctionType(ir->ptr, NULL, 0, 0));
    ir_begin_function(ir, fn);
    LLVMBuildRet(ir->b, LLVMGetNamedGlobal(ir->mod, "__layerc_desc"));
}

/* <prefix>_create() etc.: thin exported wrappers over the runtime. */
static void lower_entry_point(Lowering *lw, const char *prefix, const char *suffix, LLVMTypeRef ret, LLVMTypeRef *params,
                              unsigned nparams)
{
    Ir *ir = &lw->ir;
    LLVMTypeRef type = LLVMFunctionType(ret, params, nparams, 0);
    LLVMValueRef target = LLVMGetNamedFunction(ir->mod, arena_printf(&lw->arena, "__layerc_rt_%s", suffix));
    LLVMValueRef fn = LLVMAddFunction(ir->mod, arena_printf(&lw->arena, "%s_%s", prefix, suffix), type);
    ir_begin_function(ir, fn);
    LLVMValueRef args[4];
    for (unsigned i = 0; i < nparams; i++) args[i] = LLVMGetParam(fn, i);
    LLVMValueRef r = LLVMBuildCall2(ir->b, type, target, args, nparams, "");
    if (ret == ir->void_t) LLVMBuildRetVoid(ir->b);
    else LLVMBuildRet(ir->b, r);
}

/* <prefix>_run_multi(ctx, inputs, outputs, batch): the runtime's run_multi without an observer. */
static void lower_run_multi_entry(Lowering *lw, const char *prefix)
{
    Ir *ir = &lw->ir;
    LLVMTypeRef p = ir->ptr;
    LLVMTypeRef params[4] = {p, p, p, ir->i64}, target_params[6] = {p, p, p, ir->i64, p, p};
    LLVMTypeRef type = LLVMFunctionType(ir->i32, params, 4, 0);
    LLVMTypeRef target_type = LLVMFunctionType(ir->i32, target_params, 6, 0);
    LLVMValueRef target = LLVMGetNamedFunction(ir->mod, "__layerc_rt_run_multi");
    LLVMValueRef fn = LLVMAddFunction(ir->mod, arena_printf(&lw->arena, "%s_run_multi", prefix), type);
    ir_begin_function(ir, fn);
    LLVMValueRef args[6] = {LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), LLVMGetParam(fn, 2), LLVMGetParam(fn, 3),
                            LLVMConstNull(p), LLVMConstNull(p)};
    LLVMBuildRet(ir->b, LLVMBuildCall2(ir->b, target_type, target, args, 6, ""));
}

static void lower_entry_points(Lowering *lw, const char *prefix)
{
    Ir *ir = &lw->ir;
    LLVMTypeRef p = ir->ptr, i32 = ir->i32;
    LLVMTypeRef run[4] = {p, p, p, ir->i64}, one[1] = {p}, threads[2] = {p, i32};
    lower_entry_point(lw, prefix, "create", p, NULL, 0);
    lower_entry_point(lw, prefix, "run", i32, run, 4);
    lower_entry_point(lw, prefix, "destroy", ir->void_t, one, 1);
    lower_entry_point(lw, prefix, "error", p, one, 1);
    lower_entry_point(lw, prefix, "set_threads", i32, threads, 2);
    lower_run_multi_entry(lw, prefix);
    lower_model_entry(lw, prefix);
}

LLVMModuleRef lower_graph(LLVMContextRef ctx, const Graph *g, const MemoryPlan *plan, const char *symbol_prefix,
                          const Target *target, int inject_fault_layer, ConstantPool *constants)
{
    LLVMModuleRef mod = LLVMModuleCreateWithNameInContext(g->model_name, ctx);
    Lowering lw = {.g = g, .plan = plan, .fault_layer = inject_fault_layer, .target = target};
    arena_init(&lw.arena);
    lw.share.arena = &lw.arena;
    ir_init(&lw.ir, ctx, mod);
    lw.ir.vector_width = target->vector.width;
    lw.ir.vector_registers = target->vector.registers;
    lw.ir.constants = constants;
    define_types(&lw);
    lw.steps = arena_alloc_array(&lw.arena, (size_t)g->nodes.len, sizeof *lw.steps);
    lw.nsteps = arena_alloc_array(&lw.arena, (size_t)g->nodes.len, sizeof *lw.nsteps);
    lw.per_sample = arena_alloc_array(&lw.arena, (size_t)g->nodes.len, sizeof *lw.per_sample);
    lower_kernels(&lw);
    LLVMValueRef forward = lower_forward(&lw);
    lower_cpu_features(&lw);
    lower_descriptor(&lw, forward);
    lower_entry_points(&lw, symbol_prefix);
    finish_constants(&lw.ir);
    ir_dispose(&lw.ir);
    arena_free(&lw.arena);
    return mod;
}
