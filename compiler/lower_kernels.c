/* lower_kernels.c - the kernel of every layer the back end lowers, as LLVM IR.
 *
 * A kernel is `void k(ptr src, ptr dst, i64 batch, i64 begin, i64 end)`: it
 * computes work items [begin, end) of its layer, so the runtime can split
 * the items over threads; every output element is computed by the same code
 * whatever the split, so results do not depend on the thread count.
 * Tensors are NCHW-contiguous; shapes are compile-time constants except the
 * run-time batch, which multiplies the first dimension (it is 1 for models
 * without a named batch).  Accumulation orders follow the naive definition,
 * and the LLVM optimiser vectorises the innermost loops.
 */
#include <math.h>
#include <string.h>

#include "ir_math.h"
#include "lower.h"
#include "passes.h"

enum { ELEMENTWISE_CHUNK = 4096, MAX_UNROLLED_TAPS = 4096 };

LLVMTypeRef kernel_fn_type(Ir *ir)
{
    LLVMTypeRef params[5] = {ir->ptr, ir->ptr, ir->i64, ir->i64, ir->i64};
    return LLVMFunctionType(ir->void_t, params, 5, 0);
}

LLVMTypeRef kernel_body_type(Ir *ir)
{
    LLVMTypeRef params[KERNEL_WEIGHTS_PARAM + 1] = {ir->ptr, ir->ptr, ir->i64, ir->i64, ir->i64, ir->ptr};
    return LLVMFunctionType(ir->void_t, params, KERNEL_WEIGHTS_PARAM + 1, 0);
}

/* Starts the body of kernel `what` of the layer (kernel_end finishes it). */
KernelArgs kernel_begin(KernelBuilder *kb, const char *what)
{
    Ir *ir = kb->ir;
    kb->kernel_name = arena_printf(kb->arena, "%s%s", kb->fn_prefix, what);
    LLVMValueRef fn = LLVMAddFunction(ir->mod, arena_printf(kb->arena, "%s.body", kb->kernel_name), kernel_body_type(ir));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    ir_begin_function(ir, fn);
    KernelArgs a = {LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), LLVMGetParam(fn, 2),
                    LLVMGetParam(fn, 3), LLVMGetParam(fn, 4), LLVMGetParam(fn, KERNEL_WEIGHTS_PARAM)};
    /* The buffers never alias (plan_memory.c), nor the weights, which are read only */
    unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
    unsigned params[3] = {1, 2, KERNEL_WEIGHTS_PARAM + 1};
    for (int i = 0; i < 3; i++) LLVMAddAttributeAtIndex(fn, params[i], LLVMCreateEnumAttribute(ir->ctx, noalias, 0));
    return a;
}

/* The body built since kernel_begin, finished and shared. */
static KernelEntry kernel_finish(KernelBuilder *kb)
{
    LLVMBuildRetVoid(kb->ir->b);
    return share_kernel(kb->share, kb->ir, kb->ir->fn, kb->kernel_name);
}

static void push_step(KernelBuilder *kb, KernelStep step)
{
    if (kb->nsteps == MAX_KERNEL_STEPS) LAYERC_UNREACHABLE("a layer with more than MAX_KERNEL_STEPS kernel steps");
    kb->steps[kb->nsteps++] = step;
}

void kernel_end(KernelBuilder *kb, BufferRole src, BufferRole dst, int64_t items, bool per_sample, int64_t cost)
{
    KernelEntry k = kernel_finish(kb);
    push_step(kb, (KernelStep){.fn = k.fn, .body = k.body, .src = src, .dst = dst, .items = items,
                               .items_per_sample = per_sample, .cost_per_item = cost});
}

void kernel_repeat(KernelBuilder *kb, int index, int64_t first_item)
{
    KernelStep step = kb->steps[index];
    step.first_item = first_item;
    push_step(kb, step);
}

/* Floats of one sample of a tensor whose first dimension is the batch. */
static int64_t sample_floats(const Shape *t) { return shape_numel(t) / t->dims[0]; }

/* A step's buffer inside kernel_fuse_per_sample: the sample's input or output, or its scratch slot + at. */
static LLVMValueRef step_buffer(Ir *ir, BufferRole role, int64_t at, LLVMValueRef in, LLVMValueRef out, LLVMValueRef slot)
{
    if (role == BUF_ALL) LAYERC_UNREACHABLE("a BUF_ALL step in a per-sample kernel");
    if (role == BUF_INPUT) return in;
    if (role == BUF_OUTPUT) return out;
    LLVMValueRef offset = ir_i64(ir, at);
    return LLVMBuildInBoundsGEP2(ir->b, LLVMInt8TypeInContext(ir->ctx), slot, &offset, 1, "");
}

void kernel_fuse_per_sample(KernelBuilder *kb, int64_t scratch_bytes)
{
    Ir *ir = kb->ir;
    const Node *n = kb->node;
    int nsteps = kb->nsteps;
    KernelArgs a = kernel_begin(kb, ".per_sample");
    LLVMValueRef buffers[3]; /* input, output, scratch */
    for (int k = 0; k < 3; k++) {
        LLVMValueRef at = ir_i64(ir, k);
        buffers[k] = LLVMBuildLoad2(ir->b, ir->ptr, LLVMBuildInBoundsGEP2(ir->b, ir->ptr, a.src, &at, 1, ""), "");
    }
    /* The slot of the call's first item: calls running at the same time start at different items. */
    LLVMValueRef slot_at = ir_mul(ir, a.begin, ir_i64(ir, scratch_bytes));
    LLVMValueRef slot = LLVMBuildInBoundsGEP2(ir->b, LLVMInt8TypeInContext(ir->ctx), buffers[2], &slot_at, 1, "");
    LLVMTypeRef body_t = kernel_body_type(ir);
    IrLoop sample = ir_loop_begin(ir, a.begin, a.end, "sample");
    LLVMValueRef in = ir_f32_ptr(ir, buffers[0], ir_mul(ir, sample.index, ir_i64(ir, sample_floats(&n->inputs[0]->shape))));
    LLVMValueRef out = ir_f32_ptr(ir, buffers[1], ir_mul(ir, sample.index, ir_i64(ir, sample_floats(&n->shape))));
    int64_t cost = 0;
    unsigned noinline = LLVMGetEnumAttributeKindForName("noinline", 8);
    for (int i = 0; i < nsteps; i++) {
        const KernelStep *st = &kb->steps[i];
        LLVMValueRef args[KERNEL_WEIGHTS_PARAM + 1] = {
            step_buffer(ir, st->src, st->src_scratch_at, in, out, slot),
            step_buffer(ir, st->dst, st->dst_scratch_at, in, out, slot), ir_i64(ir, 1),
            ir_i64(ir, st->first_item), ir_i64(ir, st->first_item + st->items), a.weights};
        LLVMValueRef call = LLVMBuildCall2(ir->b, body_t, st->body, args, KERNEL_WEIGHTS_PARAM + 1, "");
        /* Not inlined: the steps' code exists once (forward() calls them too), and a call per step and sample costs nothing. */
        LLVMAddCallSiteAttribute(call, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(ir->ctx, noinline, 0));
        cost += st->items * st->cost_per_item;
    }
    ir_loop_end(ir, &sample);
    kb->per_sample = (PerSampleKernel){.fn = kernel_finish(kb).fn, .cost = cost};
}

void kernel_keep_small_layer_on_one_thread(KernelBuilder *kb, int64_t samples)
{
    if (2 * kb->node->macs / (samples > 0 ? samples : 1) >= SMALL_LAYER_PARALLEL_FLOPS) return;
    for (int s = 0; s < kb->nsteps; s++) kb->steps[s].cost_per_item = 0;
}

LLVMValueRef kernel_operand(Ir *ir, const KernelArgs *a, Operand o)
{
    if (o.role == BUF_ALL) LAYERC_UNREACHABLE("BUF_ALL is not an operand");
    LLVMValueRef slot = ir_i64(ir, o.role); /* the block holds input, output, scratch in BufferRole order */
    LLVMValueRef base = LLVMBuildLoad2(ir->b, ir->ptr, LLVMBuildInBoundsGEP2(ir->b, ir->ptr, a->src, &slot, 1, ""), "");
    if (o.role != BUF_SCRATCH || o.at == 0) return base;
    LLVMValueRef bytes = ir_mul(ir, ir_i64(ir, o.at), a->batch);
    return LLVMBuildInBoundsGEP2(ir->b, LLVMInt8TypeInContext(ir->ctx), base, &bytes, 1, "");
}

LLVMValueRef kernel_input(Ir *ir, const KernelArgs *a, int k)
{
    if (k == 0) return kernel_operand(ir, a, (Operand){BUF_INPUT, 0});
    LLVMValueRef slot = ir_i64(ir, 2 + k); /* after input, output, scratch */
    return LLVMBuildLoad2(ir->b, ir->ptr, LLVMBuildInBoundsGEP2(ir->b, ir->ptr, a->src, &slot, 1, ""), "");
}

void kernel_end_in_scratch(KernelBuilder *kb, int64_t src_at, int64_t dst_at, int64_t items, bool per_sample,
                           int64_t cost)
{
    kernel_end(kb, src_at < 0 ? BUF_INPUT : BUF_SCRATCH, dst_at < 0 ? BUF_OUTPUT : BUF_SCRATCH, items, per_sample, cost);
    kb->steps[kb->nsteps - 1].src_scratch_at = src_at < 0 ? 0 : src_at;
    kb->steps[kb->nsteps - 1].dst_scratch_at = dst_at < 0 ? 0 : dst_at;
}

static const Param *param(const Node *n, const char *suffix) { return node_param(n, suffix); }

LLVMValueRef constant_param(KernelBuilder *kb, const char *suffix)
{
    const Param *p = param(kb->node, suffix);
    if (!p) return NULL;
    return lower_constant_floats(kb->ir, p->data, shape_numel(&p->shape));
}

static int64_t numel(const Shape *s) { return shape_numel(s); }

/* ---- elementwise activations (the ACTIVATION rows of layers.def) ---- */

/* Each takes a float or a vector of floats. */
static LLVMValueRef relu_of(Ir *ir, LLVMValueRef x) /* x < 0 ? 0 : x keeps NaN, as PyTorch does */
{
    LLVMValueRef zero = ir_const_like(ir, x, 0.0);
    return LLVMBuildSelect(ir->b, LLVMBuildFCmp(ir->b, LLVMRealOLT, x, zero, ""), zero, x, "");
}

static LLVMValueRef act_relu(Ir *ir, const ActAttrs *attr, LLVMValueRef x)
{
    (void)attr;
    return relu_of(ir, x);
}

static LLVMValueRef act_relu6(Ir *ir, const ActAttrs *attr, LLVMValueRef x)
{
    (void)attr;
    LLVMValueRef six = ir_const_like(ir, x, 6.0), lo = relu_of(ir, x);
    return LLVMBuildSelect(ir->b, LLVMBuildFCmp(ir->b, LLVMRealOGT, lo, six, ""), six, lo, "");
}

static LLVMValueRef act_leaky_relu(Ir *ir, const ActAttrs *attr, LLVMValueRef x)
{
    LLVMValueRef zero = ir_const_like(ir, x, 0.0);
    return LLVMBuildSelect(ir->b, LLVMBuildFCmp(ir->b, LLVMRealOGT, x, zero, ""), x,
                           ir_fmul(ir, x, ir_const_like(ir, x, (float)attr->negative_slope)), "");
}

static LLVMValueRef act_sigmoid(Ir *ir, const ActAttrs *attr, LLVMValueRef x)
{
    (void)attr;
    return ir_sigmoid(ir, x);
}

static LLVMValueRef act_tanh(Ir *ir, const ActAttrs *attr, LLVMValueRef x)
{
    (void)attr;
    return ir_tanh(ir, x);
}

static LLVMValueRef act_silu(Ir *ir, const ActAttrs *attr, LLVMValueRef x)
{
    (void)attr;
    return ir_fmul(ir, x, ir_sigmoid(ir, x));
}

/* x * relu6(x + 3) / 6, as PyTorch computes it */
static LLVMValueRef act_hardswish(Ir *ir, const ActAttrs *attr, LLVMValueRef x)
{
    LLVMValueRef shifted = ir_fadd(ir, x, ir_const_like(ir, x, 3.0));
    return LLVMBuildFDiv(ir->b, ir_fmul(ir, x, act_relu6(ir, attr, shifted)), ir_const_like(ir, x, 6.0), "");
}

/* 0.5 x (1 + erf(x / sqrt 2)), or with approximate='tanh' 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
static LLVMValueRef act_gelu(Ir *ir, const ActAttrs *attr, LLVMValueRef x)
{
    if (!attr->gelu_tanh && LLVMGetTypeKind(LLVMTypeOf(x)) == LLVMVectorTypeKind) {
        /* erff has no vector form here: lane by lane */
        unsigned width = LLVMGetVectorSize(LLVMTypeOf(x));
        for (unsigned l = 0; l < width; l++) {
            LLVMValueRef lane = LLVMConstInt(ir->i32, l, 0);
            LLVMValueRef y = act_gelu(ir, attr, LLVMBuildExtractElement(ir->b, x, lane, ""));
            x = LLVMBuildInsertElement(ir->b, x, y, lane, "");
        }
        return x;
    }
    LLVMValueRef half_x = ir_fmul(ir, x, ir_const_like(ir, x, 0.5)), inner;
    if (attr->gelu_tanh) {
        LLVMValueRef x3 = ir_fmul(ir, ir_fmul(ir, x, x), x);
        LLVMValueRef t = LLVMBuildFAdd(ir->b, ir_fmul(ir, x3, ir_const_like(ir, x, 0.044715)), x, "");
        inner = ir_tanh(ir, ir_fmul(ir, t, ir_const_like(ir, x, sqrt(2.0 / M_PI))));
    } else {
        inner = ir_call_f32(ir, "erff", ir_fmul(ir, x, ir_f32(ir, M_SQRT1_2)));
    }
    return ir_fmul(ir, half_x, ir_fadd(ir, ir_const_like(ir, x, 1.0), inner));
}

typedef LLVMValueRef (*ActivationKernel)(Ir *ir, const ActAttrs *attr, LLVMValueRef x);

static const ActivationKernel activation_kernels[OP_INPUT] = {
#define LAYER(E, Name, Sig, rule, kernel, reference, flags)
#define ACTIVATION(E, Name, Sig, kernel, reference) [OP_##E] = kernel,
#include "layers.def"
#undef ACTIVATION
#undef LAYER
};

LLVMValueRef activation(Ir *ir, OpKind op, const ActAttrs *attr, LLVMValueRef x)
{
    if (op >= OP_INPUT || !activation_kernels[op]) LAYERC_UNREACHABLE("not an elementwise activation");
    return activation_kernels[op](ir, attr, x);
}

/* The fused activation, if any, on a float or every lane of a vector. */
LLVMValueRef epilogue_vector(Ir *ir, const Node *n, LLVMValueRef v)
{
    return n->has_epilogue ? activation(ir, n->epilogue, &n->epilogue_attr, v) : v;
}

/* A fused activation (pass_fuse_epilogue.c) over dst[base, base + count), right
 * after the producer's accumulation, while those values are still in cache. */
void apply_epilogue(KernelBuilder *kb, LLVMValueRef dst, LLVMValueRef base, int64_t count)
{
    const Node *n = kb->node;
    if (!n->has_epilogue) return;
    Ir *ir = kb->ir;
    IrLoop i = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, count), "e");
    LLVMValueRef at = ir_add(ir, base, i.index);
    ir_store_f32(ir, dst, at, activation(ir, n->epilogue, &n->epilogue_attr, ir_load_f32(ir, dst, at)));
    ir_loop_end(ir, &i);
}

/* [*] -> [*]; items: chunks of ELEMENTWISE_CHUNK elements of each sample. */
static void lower_activation(KernelBuilder *kb)
{
    Ir *ir = kb->ir;
    int64_t count = numel(&kb->node->shape);
    int64_t chunks = (count + ELEMENTWISE_CHUNK - 1) / ELEMENTWISE_CHUNK;
    KernelArgs a = kernel_begin(kb, "");
    IrLoop item = ir_loop_begin(ir, a.begin, a.end, "item");
    LLVMValueRef sample = ir_div_const(ir, item.index, chunks);
    LLVMValueRef chunk_start = ir_mul(ir, ir_rem_const(ir, item.index, chunks), ir_i64(ir, ELEMENTWISE_CHUNK));
    LLVMValueRef base = ir_mad(ir, sample, count, chunk_start);
    LLVMValueRef len = ir_min(ir, ir_i64(ir, ELEMENTWISE_CHUNK), ir_sub(ir, ir_i64(ir, count), chunk_start));
    IrLoop i = ir_loop_begin(ir, ir_i64(ir, 0), len, "i");
    LLVMValueRef at = ir_add(ir, base, i.index);
    ir_store_f32(ir, a.dst, at, activation(ir, kb->node->op, &kb->node->attr.act, ir_load_f32(ir, a.src, at)));
    ir_loop_end(ir, &i);
    ir_loop_end(ir, &item);
    kernel_end(kb, BUF_INPUT, BUF_OUTPUT, chunks, true, ELEMENTWISE_CHUNK * 4);
}

/* ---- pooling ---- */

typedef struct PlaneGeometry {
    int64_t planes, h, w, oh, ow;
} PlaneGeometry;

static PlaneGeometry plane_geometry(const Node *n)
{
    const Shape *in = &n->inputs[0]->shape;
    int c = in->rank - 3;
    PlaneGeometry g = {numel(in) / (in->dims[c + 1] * in->dims[c + 2]), in->dims[c + 1], in->dims[c + 2], n->shape.dims[c + 1],
                       n->shape.dims[c + 2]};
    return g;
}

/* Max or average over one window, PyTorch's bounds (pooling_output_shape, avg_pool2d). */
static void lower_pool(KernelBuilder *kb)
{
    Ir *ir = kb->ir;
    LLVMBuilderRef b = ir->b;
    const Node *n = kb->node;
    const PoolAttrs *pa = &n->attr.pool;
    bool is_max = n->op == OP_MAXPOOL2D;
    PlaneGeometry g = plane_geometry(n);

    KernelArgs a = kernel_begin(kb, "");
    LLVMValueRef acc = ir_var(ir, ir->f32, NULL, "acc");
    LLVMValueRef count = ir_var(ir, ir->i64, NULL, "count");
    IrLoop plane = ir_loop_begin(ir, a.begin, a.end, "plane");
    LLVMValueRef in_base = ir_mul(ir, plane.index, ir_i64(ir, g.h * g.w));
    LLVMValueRef out_base = ir_mul(ir, plane.index, ir_i64(ir, g.oh * g.ow));
    IrLoop oy = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, g.oh), "oy");
    IrLoop ox = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, g.ow), "ox");
    LLVMValueRef y0 = ir_sub(ir, ir_mul(ir, oy.index, ir_i64(ir, pa->stride[0])), ir_i64(ir, pa->pad[0]));
    LLVMValueRef x0 = ir_sub(ir, ir_mul(ir, ox.index, ir_i64(ir, pa->stride[1])), ir_i64(ir, pa->pad[1]));
    LLVMBuildStore(b, ir_f32(ir, is_max ? -INFINITY : 0.0), acc);
    LLVMBuildStore(b, ir_i64(ir, 0), count);
    IrLoop ky = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, pa->kernel[0]), "ky");
    LLVMValueRef y = ir_add(ir, y0, ir_mul(ir, ky.index, ir_i64(ir, pa->dilation[0])));
    LLVMValueRef y_ok = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGE, y, ir_i64(ir, 0), ""),
                                     LLVMBuildICmp(b, LLVMIntSLT, y, ir_i64(ir, g.h), ""), "");
    LLVMBasicBlockRef y_done = ir_if_begin(ir, y_ok);
    IrLoop kx = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, pa->kernel[1]), "kx");
    LLVMValueRef x = ir_add(ir, x0, ir_mul(ir, kx.index, ir_i64(ir, pa->dilation[1])));
    LLVMValueRef x_ok = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGE, x, ir_i64(ir, 0), ""),
                                     LLVMBuildICmp(b, LLVMIntSLT, x, ir_i64(ir, g.w), ""), "");
    LLVMBasicBlockRef x_done = ir_if_begin(ir, x_ok);
    LLVMValueRef v = ir_load_f32(ir, a.src, ir_add(ir, in_base, ir_mad(ir, y, g.w, x)));
    LLVMValueRef cur = LLVMBuildLoad2(b, ir->f32, acc, "");
    if (is_max) { /* v > cur or v is NaN, as PyTorch's max_pool2d */
        LLVMValueRef take = LLVMBuildOr(b, LLVMBuildFCmp(b, LLVMRealOGT, v, cur, ""), LLVMBuildFCmp(b, LLVMRealUNO, v, v, ""), "");
        LLVMBuildStore(b, LLVMBuildSelect(b, take, v, cur, ""), acc);
    } else {
        LLVMBuildStore(b, ir_fadd(ir, cur, v), acc);
        LLVMBuildStore(b, ir_add(ir, LLVMBuildLoad2(b, ir->i64, count, ""), ir_i64(ir, 1)), count);
    }
    ir_if_end(ir, x_done);
    ir_loop_end(ir, &kx);
    ir_if_end(ir, y_done);
    ir_loop_end(ir, &ky);
    LLVMValueRef result = LLVMBuildLoad2(b, ir->f32, acc, "");
    if (!is_max) {
        LLVMValueRef divisor;
        if (pa->divisor_override) {
            divisor = ir_i64(ir, pa->divisor_override);
        } else if (pa->count_include_pad) { /* the window clipped to the padded input, not the input */
            LLVMValueRef y1 = ir_min(ir, ir_add(ir, y0, ir_i64(ir, pa->kernel[0])), ir_i64(ir, g.h + pa->pad[0]));
            LLVMValueRef x1 = ir_min(ir, ir_add(ir, x0, ir_i64(ir, pa->kernel[1])), ir_i64(ir, g.w + pa->pad[1]));
            divisor = ir_mul(ir, ir_sub(ir, y1, y0), ir_sub(ir, x1, x0));
        } else {
            divisor = LLVMBuildLoad2(b, ir->i64, count, "");
        }
        result = LLVMBuildFDiv(b, result, LLVMBuildSIToFP(b, divisor, ir->f32, ""), "");
    }
    ir_store_f32(ir, a.dst, ir_add(ir, out_base, ir_mad(ir, oy.index, g.ow, ox.index)), result);
    ir_loop_end(ir, &ox);
    ir_loop_end(ir, &oy);
    ir_loop_end(ir, &plane);
    /* Pooling is bound by memory: a 64 x 3 x 32 x 32 MaxPool takes 77 us,
     * about 30 FMA-peak flops per element read or written. */
    int64_t window_ops = g.oh * g.ow * pa->kernel[0] * pa->kernel[1];
    int64_t memory = MEMORY_COST_PER_FLOAT * (g.h * g.w + g.oh * g.ow);
    kernel_end(kb, BUF_INPUT, BUF_OUTPUT, g.planes, true, window_ops > memory ? window_ops : memory);
}

/* AdaptiveAvgPool2d: window [floor(o*in/out), ceil((o+1)*in/out)) on each axis. */
static void lower_adaptive_avgpool(KernelBuilder *kb)
{
    Ir *ir = kb->ir;
    LLVMBuilderRef b = ir->b;
    PlaneGeometry g = plane_geometry(kb->node);
    KernelArgs a = kernel_begin(kb, "");
    LLVMValueRef acc = ir_var(ir, ir->f32, NULL, "acc");
    IrLoop plane = ir_loop_begin(ir, a.begin, a.end, "plane");
    LLVMValueRef in_base = ir_mul(ir, plane.index, ir_i64(ir, g.h * g.w));
    LLVMValueRef out_base = ir_mul(ir, plane.index, ir_i64(ir, g.oh * g.ow));
    IrLoop oy = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, g.oh), "oy");
    LLVMValueRef y0 = ir_div_const(ir, ir_mul(ir, oy.index, ir_i64(ir, g.h)), g.oh);
    LLVMValueRef y1 = ir_div_const(ir, ir_add(ir, ir_mul(ir, oy.index, ir_i64(ir, g.h)), ir_i64(ir, g.h + g.oh - 1)), g.oh);
    IrLoop ox = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, g.ow), "ox");
    LLVMValueRef x0 = ir_div_const(ir, ir_mul(ir, ox.index, ir_i64(ir, g.w)), g.ow);
    LLVMValueRef x1 = ir_div_const(ir, ir_add(ir, ir_mul(ir, ox.index, ir_i64(ir, g.w)), ir_i64(ir, g.w + g.ow - 1)), g.ow);
    LLVMBuildStore(b, ir_f32(ir, 0), acc);
    IrLoop y = ir_loop_begin(ir, y0, y1, "y");
    IrLoop x = ir_loop_begin(ir, x0, x1, "x");
    LLVMValueRef v = ir_load_f32(ir, a.src, ir_add(ir, in_base, ir_mad(ir, y.index, g.w, x.index)));
    LLVMBuildStore(b, ir_fadd(ir, LLVMBuildLoad2(b, ir->f32, acc, ""), v), acc);
    ir_loop_end(ir, &x);
    ir_loop_end(ir, &y);
    LLVMValueRef size = ir_mul(ir, ir_sub(ir, y1, y0), ir_sub(ir, x1, x0));
    LLVMValueRef mean = LLVMBuildFDiv(b, LLVMBuildLoad2(b, ir->f32, acc, ""), LLVMBuildSIToFP(b, size, ir->f32, ""), "");
    ir_store_f32(ir, a.dst, ir_add(ir, out_base, ir_mad(ir, oy.index, g.ow, ox.index)), mean);
    ir_loop_end(ir, &ox);
    ir_loop_end(ir, &oy);
    ir_loop_end(ir, &plane);
    kernel_end(kb, BUF_INPUT, BUF_OUTPUT, g.planes, true, g.h * g.w);
}

/* ---- normalisation ---- */

/* Eval BatchNorm with running statistics: y = x * scale[c] + shift[c], folded at compile time. */
static void lower_batchnorm_running(KernelBuilder *kb)
{
    Ir *ir = kb->ir;
    const Node *n = kb->node;
    const NormAttrs *na = &n->attr.norm;
    int64_t channels = na->num_features;
    const Shape *s = &n->shape;
    int64_t inner = numel(s) / (s->dims[0] * channels);
    LLVMValueRef scale_c, shift_c;
    if (n->bn_folded) { /* pass_fold_constants.c computed them */
        scale_c = constant_param(kb, "scale");
        shift_c = constant_param(kb, "shift");
    } else {
        float *scale = arena_alloc_array(kb->arena, (size_t)channels, sizeof *scale);
        float *shift = arena_alloc_array(kb->arena, (size_t)channels, sizeof *shift);
        batchnorm_scale_shift(n, scale, shift);
        scale_c = lower_constant_floats(ir, scale, channels);
        shift_c = lower_constant_floats(ir, shift, channels);
    }

    KernelArgs a = kernel_begin(kb, "");
    IrLoop item = ir_loop_begin(ir, a.begin, a.end, "item"); /* (sample, channel) */
    LLVMValueRef c = ir_rem_const(ir, item.index, channels);
    LLVMValueRef k = ir_load_f32(ir, scale_c, c), sh = ir_load_f32(ir, shift_c, c);
    LLVMValueRef base = ir_mul(ir, item.index, ir_i64(ir, inner));
    IrLoop i = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, inner), "i");
    LLVMValueRef at = ir_add(ir, base, i.index);
    ir_store_f32(ir, a.dst, at, ir_fma(ir, ir_load_f32(ir, a.src, at), k, sh));
    ir_loop_end(ir, &i);
    ir_loop_end(ir, &item);
    kernel_end(kb, BUF_INPUT, BUF_OUTPUT, s->dims[0] * channels, true, 2 * inner);
}

/* Eval BatchNorm with track_running_stats=False uses the batch's statistics:
 * item c computes channel c's mean and biased variance (in double) over
 * every sample and position, then normalises it. */
static void lower_batchnorm_batch_stats(KernelBuilder *kb)
{
    Ir *ir = kb->ir;
    LLVMBuilderRef b = ir->b;
    const Node *n = kb->node;
    const NormAttrs *na = &n->attr.norm;
    int64_t channels = na->num_features;
    const Shape *s = &n->shape;
    int64_t inner = numel(s) / (s->dims[0] * channels);
    LLVMValueRef weight = constant_param(kb, "weight"), bias = constant_param(kb, "bias");

    KernelArgs a = kernel_begin(kb, "");
    LLVMValueRef sum = ir_var(ir, ir->f64, NULL, "sum");
    LLVMValueRef samples = ir_mul(ir, a.batch, ir_i64(ir, s->dims[0]));
    LLVMValueRef count = LLVMBuildSIToFP(b, ir_mul(ir, samples, ir_i64(ir, inner)), ir->f64, "");
    IrLoop c = ir_loop_begin(ir, a.begin, a.end, "c");
    LLVMValueRef stats[2];
    for (int pass = 0; pass < 2; pass++) { /* mean, then variance */
        LLVMBuildStore(b, LLVMConstReal(ir->f64, 0), sum);
        IrLoop sm = ir_loop_begin(ir, ir_i64(ir, 0), samples, "n");
        LLVMValueRef base = ir_mul(ir, ir_mad(ir, sm.index, channels, c.index), ir_i64(ir, inner));
        IrLoop i = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, inner), "i");
        LLVMValueRef x = LLVMBuildFPExt(b, ir_load_f32(ir, a.src, ir_add(ir, base, i.index)), ir->f64, "");
        LLVMValueRef term = pass == 0 ? x : LLVMBuildFMul(b, LLVMBuildFSub(b, x, stats[0], ""), LLVMBuildFSub(b, x, stats[0], ""), "");
        LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, ir->f64, sum, ""), term, ""), sum);
        ir_loop_end(ir, &i);
        ir_loop_end(ir, &sm);
        stats[pass] = LLVMBuildFDiv(b, LLVMBuildLoad2(b, ir->f64, sum, ""), count, "");
    }
    LLVMValueRef var_eps = LLVMBuildFPTrunc(b, LLVMBuildFAdd(b, stats[1], LLVMConstReal(ir->f64, na->eps), ""), ir->f32, "");
    LLVMValueRef k = LLVMBuildFDiv(b, ir_f32(ir, 1.0), ir_call_f32(ir, "llvm.sqrt.f32", var_eps), "");
    LLVMValueRef mean = LLVMBuildFPTrunc(b, stats[0], ir->f32, "");
    LLVMValueRef w = weight ? ir_load_f32(ir, weight, c.index) : ir_f32(ir, 1.0);
    LLVMValueRef bv = bias ? ir_load_f32(ir, bias, c.index) : ir_f32(ir, 0.0);
    IrLoop sm = ir_loop_begin(ir, ir_i64(ir, 0), samples, "n");
    LLVMValueRef base = ir_mul(ir, ir_mad(ir, sm.index, channels, c.index), ir_i64(ir, inner));
    IrLoop i = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, inner), "i");
    LLVMValueRef at = ir_add(ir, base, i.index);
    LLVMValueRef y = ir_fmul(ir, LLVMBuildFSub(b, ir_load_f32(ir, a.src, at), mean, ""), k);
    ir_store_f32(ir, a.dst, at, ir_fma(ir, y, w, bv));
    ir_loop_end(ir, &i);
    ir_loop_end(ir, &sm);
    ir_loop_end(ir, &c);
    kernel_end(kb, BUF_INPUT, BUF_OUTPUT, channels, false, 4 * inner * s->dims[0]);
}

void emit_layernorm_rows(Ir *ir, LLVMValueRef src, LLVMValueRef dst, LLVMValueRef begin, LLVMValueRef end, int64_t width,
                         LLVMValueRef weight, LLVMValueRef bias, double eps)
{
    LLVMBuilderRef b = ir->b;
    LLVMValueRef sum = ir_var(ir, ir->f64, NULL, "sum");
    IrLoop row = ir_loop_begin(ir, begin, end, "row");
    LLVMValueRef base = ir_mul(ir, row.index, ir_i64(ir, width));
    LLVMValueRef stats[2];
    for (int pass = 0; pass < 2; pass++) {
        LLVMBuildStore(b, LLVMConstReal(ir->f64, 0), sum);
        IrLoop i = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, width), "i");
        LLVMValueRef x = LLVMBuildFPExt(b, ir_load_f32(ir, src, ir_add(ir, base, i.index)), ir->f64, "");
        LLVMValueRef term = pass == 0 ? x : LLVMBuildFMul(b, LLVMBuildFSub(b, x, stats[0], ""), LLVMBuildFSub(b, x, stats[0], ""), "");
        LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, ir->f64, sum, ""), term, ""), sum);
        ir_loop_end(ir, &i);
        stats[pass] = LLVMBuildFDiv(b, LLVMBuildLoad2(b, ir->f64, sum, ""), LLVMConstReal(ir->f64, (double)width), "");
    }
    LLVMValueRef var_eps = LLVMBuildFPTrunc(b, LLVMBuildFAdd(b, stats[1], LLVMConstReal(ir->f64, eps), ""), ir->f32, "");
    LLVMValueRef k = LLVMBuildFDiv(b, ir_f32(ir, 1.0), ir_call_f32(ir, "llvm.sqrt.f32", var_eps), "");
    LLVMValueRef mean = LLVMBuildFPTrunc(b, stats[0], ir->f32, "");
    IrLoop i = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, width), "i");
    LLVMValueRef at = ir_add(ir, base, i.index);
    LLVMValueRef y = ir_fmul(ir, LLVMBuildFSub(b, ir_load_f32(ir, src, at), mean, ""), k);
    if (weight) y = ir_fmul(ir, y, ir_load_f32(ir, weight, i.index));
    if (bias) y = ir_fadd(ir, y, ir_load_f32(ir, bias, i.index));
    ir_store_f32(ir, dst, at, y);
    ir_loop_end(ir, &i);
    ir_loop_end(ir, &row);
}

/* LayerNorm over the last norm_rank dims: rows of `width` values. */
static void lower_layernorm(KernelBuilder *kb)
{
    Ir *ir = kb->ir;
    const Node *n = kb->node;
    const NormAttrs *na = &n->attr.norm;
    int64_t width = na->num_features, rows = numel(&n->shape) / width;
    LLVMValueRef weight = constant_param(kb, "weight"), bias = constant_param(kb, "bias");
    KernelArgs a = kernel_begin(kb, "");
    emit_layernorm_rows(ir, a.src, a.dst, a.begin, a.end, width, weight, bias, na->eps);
    kernel_end(kb, BUF_INPUT, BUF_OUTPUT, rows, true, 6 * width);
}

/* ---- Softmax / LogSoftmax over one dimension ---- */

static void lower_softmax(KernelBuilder *kb)
{
    Ir *ir = kb->ir;
    LLVMBuilderRef b = ir->b;
    const Node *n = kb->node;
    const Shape *s = &n->shape;
    int dim = n->attr.axis.dim;
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < dim; i++) outer *= s->dims[i];
    for (int i = dim + 1; i < s->rank; i++) inner *= s->dims[i];
    /* Over dimension 0 the length includes the run-time batch; else the batch multiplies `outer`. */
    bool over_batch = dim == 0;
    KernelArgs a = kernel_begin(kb, "");
    LLVMValueRef len = over_batch ? ir_mul(ir, a.batch, ir_i64(ir, s->dims[0])) : ir_i64(ir, s->dims[dim]);
    LLVMValueRef maxv = ir_var(ir, ir->f32, NULL, "max");
    LLVMValueRef sum = ir_var(ir, ir->f64, NULL, "sum");
    IrLoop item = ir_loop_begin(ir, a.begin, a.end, "item");
    LLVMValueRef o = ir_div_const(ir, item.index, inner), in_i = ir_rem_const(ir, item.index, inner);
    LLVMValueRef base = ir_add(ir, ir_mul(ir, ir_mul(ir, o, len), ir_i64(ir, inner)), in_i);
    LLVMBuildStore(b, ir_f32(ir, -INFINITY), maxv);
    IrLoop j = ir_loop_begin(ir, ir_i64(ir, 0), len, "j");
    LLVMValueRef x = ir_load_f32(ir, a.src, ir_mad(ir, j.index, inner, base));
    LLVMBuildStore(b, ir_call_f32_2(ir, "llvm.maxnum.f32", x, LLVMBuildLoad2(b, ir->f32, maxv, "")), maxv);
    ir_loop_end(ir, &j);
    LLVMValueRef m = LLVMBuildLoad2(b, ir->f32, maxv, "");
    LLVMBuildStore(b, LLVMConstReal(ir->f64, 0), sum);
    IrLoop j2 = ir_loop_begin(ir, ir_i64(ir, 0), len, "j");
    LLVMValueRef e = ir_call_f32(ir, "llvm.exp.f32", LLVMBuildFSub(b, ir_load_f32(ir, a.src, ir_mad(ir, j2.index, inner, base)), m, ""));
    LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, ir->f64, sum, ""), LLVMBuildFPExt(b, e, ir->f64, ""), ""), sum);
    ir_loop_end(ir, &j2);
    LLVMValueRef total = LLVMBuildFPTrunc(b, LLVMBuildLoad2(b, ir->f64, sum, ""), ir->f32, "");
    LLVMValueRef log_total = ir_call_f32(ir, "llvm.log.f32", total);
    IrLoop j3 = ir_loop_begin(ir, ir_i64(ir, 0), len, "j");
    LLVMValueRef at = ir_mad(ir, j3.index, inner, base);
    LLVMValueRef shifted = LLVMBuildFSub(b, ir_load_f32(ir, a.src, at), m, "");
    LLVMValueRef y = n->op == OP_LOGSOFTMAX ? LLVMBuildFSub(b, shifted, log_total, "")
                                            : LLVMBuildFDiv(b, ir_call_f32(ir, "llvm.exp.f32", shifted), total, "");
    ir_store_f32(ir, a.dst, at, y);
    ir_loop_end(ir, &j3);
    ir_loop_end(ir, &item);
    kernel_end(kb, BUF_INPUT, BUF_OUTPUT, over_batch ? inner : outer * inner, !over_batch, 8 * (over_batch ? 1 : s->dims[dim]));
}

/* ---- Select and Mean over one dimension: the input as [outer, size, inner] ---- */

typedef struct AroundDim {
    int64_t outer, size, inner; /* outer per batch unit */
} AroundDim;

static AroundDim around_dim(const Node *n)
{
    const Shape *in = &n->inputs[0]->shape;
    AroundDim a = {1, in->dims[n->attr.axis.dim], 1};
    for (int i = 0; i < n->attr.axis.dim; i++) a.outer *= in->dims[i];
    for (int i = n->attr.axis.dim + 1; i < in->rank; i++) a.inner *= in->dims[i];
    return a;
}

/* Item o copies row `index` of the [size, inner] block o. */
static void lower_select(KernelBuilder *kb)
{
    Ir *ir = kb->ir;
    AroundDim d = around_dim(kb->node);
    KernelArgs a = kernel_begin(kb, "");
    IrLoop o = ir_loop_begin(ir, a.begin, a.end, "outer");
    LLVMValueRef from = ir_f32_ptr(ir, a.src, ir_mad(ir, o.index, d.size * d.inner, ir_i64(ir, kb->node->attr.axis.index * d.inner)));
    LLVMBuildMemCpy(ir->b, ir_f32_ptr(ir, a.dst, ir_mul(ir, o.index, ir_i64(ir, d.inner))), 4, from, 4, ir_i64(ir, d.inner * 4));
    ir_loop_end(ir, &o);
    kernel_end(kb, BUF_INPUT, BUF_OUTPUT, d.outer, true, MEMORY_COST_PER_FLOAT * d.inner);
}

/* Item o: the mean of the `size` rows of block o, summed in order. */
static void lower_mean(KernelBuilder *kb)
{
    Ir *ir = kb->ir;
    AroundDim d = around_dim(kb->node);
    KernelArgs a = kernel_begin(kb, "");
    IrLoop o = ir_loop_begin(ir, a.begin, a.end, "outer");
    LLVMValueRef out = ir_f32_ptr(ir, a.dst, ir_mul(ir, o.index, ir_i64(ir, d.inner)));
    LLVMValueRef block = ir_f32_ptr(ir, a.src, ir_mul(ir, o.index, ir_i64(ir, d.size * d.inner)));
    LLVMBuildMemCpy(ir->b, out, 4, block, 4, ir_i64(ir, d.inner * 4));
    IrLoop k = ir_loop_begin(ir, ir_i64(ir, 1), ir_i64(ir, d.size), "k");
    LLVMValueRef row = ir_f32_ptr(ir, block, ir_mul(ir, k.index, ir_i64(ir, d.inner)));
    IrLoop i = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, d.inner), "i");
    ir_store_f32(ir, out, i.index, ir_fadd(ir, ir_load_f32(ir, out, i.index), ir_load_f32(ir, row, i.index)));
    ir_loop_end(ir, &i);
    ir_loop_end(ir, &k);
    IrLoop m = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, d.inner), "m");
    ir_store_f32(ir, out, m.index, LLVMBuildFDiv(ir->b, ir_load_f32(ir, out, m.index), ir_f32(ir, (double)d.size), ""));
    ir_loop_end(ir, &m);
    ir_loop_end(ir, &o);
    kernel_end(kb, BUF_INPUT, BUF_OUTPUT, d.outer, true, MEMORY_COST_PER_FLOAT * d.inner * d.size);
}

/* Eval BatchNorm: folded running statistics, or the batch's own. */
static void lower_batchnorm(KernelBuilder *kb)
{
    if (kb->node->attr.norm.track_running_stats) lower_batchnorm_running(kb);
    else lower_batchnorm_batch_stats(kb);
}

/* A view (LF_VIEW) shares its input's storage: lower_llvm.c gives it no kernel. */
static void view_kernel(KernelBuilder *kb)
{
    (void)kb;
    LAYERC_UNREACHABLE("a view reached kernel lowering");
}

typedef void (*LayerKernel)(KernelBuilder *kb);

#define NO_KERNEL view_kernel
#define NOT_LOWERED NULL
static const LayerKernel layer_kernels[OP_INPUT] = {
#define LAYER(E, Name, Sig, rule, kernel, reference, flags) [OP_##E] = kernel,
#include "layers.def"
#undef LAYER
};

bool op_is_lowered(OpKind op) { return op < OP_INPUT && layer_kernels[op]; }

void lower_node_kernels(KernelBuilder *kb)
{
    if (!op_is_lowered(kb->node->op)) LAYERC_UNREACHABLE("a layer the back end does not lower reached lowering");
    layer_kernels[kb->node->op](kb);
}
