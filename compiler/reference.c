/* reference.c - the reference interpreter (reference.h): every layer written
 * as plain nested loops straight from PyTorch's documented inference (eval)
 * semantics.  It is the correctness oracle for the generated kernels, so it
 * deliberately shares no code with them and is optimised for being obviously
 * right, not fast: tensors are row-major (NCHW), sums accumulate in double,
 * and the intermediate values of composite layers (recurrent states,
 * attention) are kept in double.
 *
 * Each node is evaluated by one function per layer kind, given an Eval: the
 * node, its input (as float, and as the original token ids when the tensor
 * is i64), the actual input and output shapes for this run's batch, and the
 * output buffer to fill.  Everything is allocated in the caller's arena; there
 * is no global mutable state.  Convolutions, most of the work, compute their
 * output planes on every CPU (parallel.h), each plane by the same loops.
 */
#include "reference.h"

#include "parallel.h"
#include "splitmix.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* One node's evaluation. */
typedef struct Eval {
    Arena *arena;
    const Node *node;
    const float *in;     /* input values (the first input's, for a layer that reads several) */
    const int64_t *ids;  /* the input's original token ids when it is i64, else NULL */
    Shape in_shape;      /* actual shapes for this run's batch */
    Shape out_shape;
    const float *ins[MAX_NODE_INPUTS]; /* every input, for add, cat, Bilinear */
    Shape in_shapes[MAX_NODE_INPUTS];
    float *out;
    char *err;
    size_t errsize;
} Eval;

/* ---- helpers ---- */

static bool fail(const Eval *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(const Eval *e, const char *fmt, ...)
{
    const char *call = e->node->call_text ? e->node->call_text : op_name(e->node->op);
    int len = snprintf(e->err, e->errsize, "layer %s (%s): ", e->node->name, call);
    if (len < 0 || (size_t)len >= e->errsize) return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->err + len, e->errsize - (size_t)len, fmt, ap);
    va_end(ap);
    return false;
}

static int64_t numel(const Shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) n *= s->dims[i];
    return n;
}

/* Product of dims [from, to). */
static int64_t dims_product(const Shape *s, int from, int to)
{
    int64_t n = 1;
    for (int i = from; i < to; i++) n *= s->dims[i];
    return n;
}

/* The values of parameter "<node>.<suffix>", or NULL when the layer has none. */
static const float *param(const Eval *e, const char *suffix)
{
    const Param *p = node_param(e->node, suffix);
    return p ? p->data : NULL;
}

static const float *paramf(const Eval *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const float *paramf(const Eval *e, const char *fmt, ...)
{
    char suffix[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(suffix, sizeof suffix, fmt, ap);
    va_end(ap);
    return param(e, suffix);
}

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* y[o] = b[o] + sum_i w[o, i] * x[i]  (w is [out, in] row-major; b may be NULL). */
static void affine(const float *w, const float *b, const double *x, int64_t in, int64_t out, double *y)
{
    for (int64_t o = 0; o < out; o++) {
        double acc = b ? b[o] : 0.0;
        for (int64_t i = 0; i < in; i++) acc += (double)w[o * in + i] * x[i];
        y[o] = acc;
    }
}

static double *alloc_doubles(const Eval *e, int64_t count)
{
    return arena_alloc_array(e->arena, (size_t)(count > 0 ? count : 1), sizeof(double));
}

/* ---- Conv2d ---- */

/* Inputs [N, C, H, W] or unbatched [C, H, W]: the four sizes, N = 1 when unbatched. */
typedef struct Nchw {
    int64_t n, c, h, w;
} Nchw;

static Nchw nchw_of(const Shape *s)
{
    int c = s->rank - 3;
    return (Nchw){c == 1 ? s->dims[0] : 1, s->dims[c], s->dims[c + 1], s->dims[c + 2]};
}

/* Index into a dimension of `size` for position i of the input padded by
 * F.pad(mode); -1 for a zero (PAD_ZEROS outside the input).
 * reflect mirrors without repeating the edge, replicate repeats the edge,
 * circular wraps around. */
static int64_t padded_index(int64_t i, int64_t size, PadMode mode)
{
    if (i >= 0 && i < size) return i;
    switch (mode) {
    case PAD_ZEROS: return -1;
    case PAD_REFLECT: return i < 0 ? -i : 2 * (size - 1) - i;
    case PAD_REPLICATE: return i < 0 ? 0 : size - 1;
    case PAD_CIRCULAR: return ((i % size) + size) % size;
    }
    return -1;
}

/* out[n, oc, oy, ox] = bias[oc] + sum over the group's input channels ic and taps (ky, kx) of
 *   weight[oc, ic, ky, kx] * padded_input[n, g*Cin/G + ic, oy*sh - pad_h + ky*dh, ox*sw - pad_w + kx*dw]
 * where g = oc / (Cout/G) is the output channel's group. */
static double conv_at(const Eval *e, const Nchw *in, int64_t n, int64_t oc, int64_t oy, int64_t ox)
{
    const ConvAttrs *cv = &e->node->attr.conv;
    const float *weight = param(e, "weight"), *bias = param(e, "bias");
    int64_t cin_g = cv->in_channels / cv->groups, g = oc / (cv->out_channels / cv->groups);
    int64_t y0 = oy * cv->stride[0] - cv->pad_begin[0], x0 = ox * cv->stride[1] - cv->pad_begin[1];
    double acc = bias ? bias[oc] : 0.0;
    for (int64_t ic = 0; ic < cin_g; ic++)
        for (int64_t ky = 0; ky < cv->kernel[0]; ky++)
            for (int64_t kx = 0; kx < cv->kernel[1]; kx++) {
                int64_t y = padded_index(y0 + ky * cv->dilation[0], in->h, cv->pad_mode);
                int64_t x = padded_index(x0 + kx * cv->dilation[1], in->w, cv->pad_mode);
                if (y < 0 || x < 0) continue;
                double v = e->in[((n * in->c + g * cin_g + ic) * in->h + y) * in->w + x];
                acc += (double)weight[((oc * cin_g + ic) * cv->kernel[0] + ky) * cv->kernel[1] + kx] * v;
            }
    return acc;
}

/* Output planes [begin, end) (plane = sample * channels + channel) of a Conv2d: a range of parallel_ranges. */
static void conv_planes(void *ctx, int64_t begin, int64_t end)
{
    const Eval *e = ctx;
    Nchw in = nchw_of(&e->in_shape), out = nchw_of(&e->out_shape);
    for (int64_t plane = begin; plane < end; plane++)
        for (int64_t oy = 0; oy < out.h; oy++)
            for (int64_t ox = 0; ox < out.w; ox++)
                e->out[(plane * out.h + oy) * out.w + ox] = (float)conv_at(e, &in, plane / out.c, plane % out.c, oy, ox);
}

/* Each output plane is computed on its own, so the planes may be shared between CPUs (VGG16's 15 G
 * multiply-adds take a minute on one). */
static bool eval_conv2d(Eval *e)
{
    Nchw out = nchw_of(&e->out_shape);
    parallel_ranges(out.n * out.c, 2, conv_planes, e);
    return true;
}

/* ---- pooling ---- */

/* Windows start at o*stride - pad and take `kernel` taps `dilation` apart; the
 * padding is -inf, so only taps inside the input count.  NaN propagates, as in ATen.
 * `plane` is one [H, W] channel of the input. */
static double maxpool_at(const PoolAttrs *pa, const float *plane, const Nchw *in, int64_t oy, int64_t ox)
{
    double best = -INFINITY;
    for (int64_t ky = 0; ky < pa->kernel[0]; ky++)
        for (int64_t kx = 0; kx < pa->kernel[1]; kx++) {
            int64_t y = oy * pa->stride[0] - pa->pad[0] + ky * pa->dilation[0];
            int64_t x = ox * pa->stride[1] - pa->pad[1] + kx * pa->dilation[1];
            if (y < 0 || y >= in->h || x < 0 || x >= in->w) continue;
            double v = plane[y * in->w + x];
            if (v > best || isnan(v)) best = v;
        }
    return best;
}

static bool eval_maxpool2d(Eval *e)
{
    Nchw in = nchw_of(&e->in_shape), out = nchw_of(&e->out_shape);
    for (int64_t nc = 0; nc < out.n * out.c; nc++) {
        const float *plane = e->in + nc * in.h * in.w;
        for (int64_t oy = 0; oy < out.h; oy++)
            for (int64_t ox = 0; ox < out.w; ox++)
                e->out[(nc * out.h + oy) * out.w + ox] = (float)maxpool_at(&e->node->attr.pool, plane, &in, oy, ox);
    }
    return true;
}

/* One axis of an AvgPool2d window, as ATen's avg_pool2d computes it: the
 * window [start, start + kernel) is first clipped to the padded input
 * (giving the count_include_pad size, which excludes what ceil_mode adds past
 * the padded end), then to the input itself (the positions summed). */
typedef struct AvgSpan {
    int64_t begin, end; /* in the input */
    int64_t padded_size;
} AvgSpan;

static AvgSpan avg_span(int64_t o, int64_t kernel, int64_t stride, int64_t pad, int64_t size)
{
    int64_t start = o * stride - pad;
    int64_t end = start + kernel < size + pad ? start + kernel : size + pad;
    AvgSpan s = {.padded_size = end - start};
    s.begin = start < 0 ? 0 : start;
    s.end = end > size ? size : end;
    return s;
}

/* The sum over the clipped window divided by divisor_override, the window's
 * size within the padded input (count_include_pad) or its size within the
 * input.  A window with no input position is 0, as in ATen. */
static double avgpool_at(const PoolAttrs *pa, const float *plane, const Nchw *in, int64_t oy, int64_t ox)
{
    AvgSpan sy = avg_span(oy, pa->kernel[0], pa->stride[0], pa->pad[0], in->h);
    AvgSpan sx = avg_span(ox, pa->kernel[1], pa->stride[1], pa->pad[1], in->w);
    if (sy.begin >= sy.end || sx.begin >= sx.end) return 0.0;
    double sum = 0.0;
    for (int64_t y = sy.begin; y < sy.end; y++)
        for (int64_t x = sx.begin; x < sx.end; x++) sum += plane[y * in->w + x];
    int64_t divisor = pa->divisor_override      ? pa->divisor_override
                      : pa->count_include_pad ? sy.padded_size * sx.padded_size
                                              : (sy.end - sy.begin) * (sx.end - sx.begin);
    return sum / (double)divisor;
}

static bool eval_avgpool2d(Eval *e)
{
    Nchw in = nchw_of(&e->in_shape), out = nchw_of(&e->out_shape);
    for (int64_t nc = 0; nc < out.n * out.c; nc++) {
        const float *plane = e->in + nc * in.h * in.w;
        for (int64_t oy = 0; oy < out.h; oy++)
            for (int64_t ox = 0; ox < out.w; ox++)
                e->out[(nc * out.h + oy) * out.w + ox] = (float)avgpool_at(&e->node->attr.pool, plane, &in, oy, ox);
    }
    return true;
}

/* Output cell i of `out` averages input [floor(i*in/out), ceil((i+1)*in/out)). */
static bool eval_adaptiveavgpool2d(Eval *e)
{
    Nchw in = nchw_of(&e->in_shape), out = nchw_of(&e->out_shape);
    for (int64_t nc = 0; nc < out.n * out.c; nc++)
        for (int64_t oy = 0; oy < out.h; oy++)
            for (int64_t ox = 0; ox < out.w; ox++) {
                int64_t y0 = oy * in.h / out.h, y1 = ((oy + 1) * in.h + out.h - 1) / out.h;
                int64_t x0 = ox * in.w / out.w, x1 = ((ox + 1) * in.w + out.w - 1) / out.w;
                double sum = 0.0;
                for (int64_t y = y0; y < y1; y++)
                    for (int64_t x = x0; x < x1; x++) sum += e->in[(nc * in.h + y) * in.w + x];
                e->out[(nc * out.h + oy) * out.w + ox] = (float)(sum / (double)((y1 - y0) * (x1 - x0)));
            }
    return true;
}

/* ---- element-wise activations ---- */

static double ref_relu(double x, const ActAttrs *a) { (void)a; return x < 0 ? 0.0 : x; /* NaN stays NaN */ }
static double ref_relu6(double x, const ActAttrs *a) { (void)a; return isnan(x) ? x : x < 0 ? 0.0 : x > 6 ? 6.0 : x; }
static double ref_leaky_relu(double x, const ActAttrs *a) { return x > 0 ? x : x * a->negative_slope; }
static double ref_sigmoid(double x, const ActAttrs *a) { (void)a; return sigmoid(x); }
static double ref_tanh(double x, const ActAttrs *a) { (void)a; return tanh(x); }
static double ref_silu(double x, const ActAttrs *a) { (void)a; return x * sigmoid(x); }
static double ref_hardswish(double x, const ActAttrs *a) { return x * ref_relu6(x + 3.0, a) / 6.0; }

/* exact: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2));
 * approximate='tanh': 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
static double gelu_exact(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }
static double gelu_tanh(double x) { return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x))); }
static double ref_gelu(double x, const ActAttrs *a) { return a->gelu_tanh ? gelu_tanh(x) : gelu_exact(x); }

typedef double (*ActivationReference)(double x, const ActAttrs *a);

static const ActivationReference activation_references[OP_INPUT] = {
#define LAYER(E, Name, Sig, rule, kernel, reference, flags)
#define ACTIVATION(E, Name, Sig, kernel, reference) [OP_##E] = reference,
#include "layers.def"
#undef ACTIVATION
#undef LAYER
};

static bool eval_activation(Eval *e)
{
    ActivationReference f = activation_references[e->node->op];
    int64_t count = numel(&e->in_shape);
    for (int64_t i = 0; i < count; i++) e->out[i] = (float)f(e->in[i], &e->node->attr.act);
    return true;
}

/* Identity, Dropout, Dropout2d (eval), Flatten: the values unchanged. */
static bool eval_copy(Eval *e)
{
    memcpy(e->out, e->in, (size_t)numel(&e->in_shape) * sizeof(float));
    return true;
}

/* The input as [outer, size, inner] around attr.axis.dim. */
static void around_dim(const Eval *e, int64_t *outer, int64_t *size, int64_t *inner)
{
    int dim = e->node->attr.axis.dim;
    *outer = *inner = 1;
    for (int i = 0; i < dim; i++) *outer *= e->in_shape.dims[i];
    for (int i = dim + 1; i < e->in_shape.rank; i++) *inner *= e->in_shape.dims[i];
    *size = e->in_shape.dims[dim];
}

/* Select: element attr.axis.index of attr.axis.dim. */
static bool eval_select(Eval *e)
{
    int64_t outer, size, inner;
    around_dim(e, &outer, &size, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) e->out[o * inner + i] = e->in[(o * size + e->node->attr.axis.index) * inner + i];
    return true;
}

/* Mean over attr.axis.dim, in double. */
static bool eval_mean(Eval *e)
{
    int64_t outer, size, inner;
    around_dim(e, &outer, &size, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double sum = 0.0;
            for (int64_t k = 0; k < size; k++) sum += e->in[(o * size + k) * inner + i];
            e->out[o * inner + i] = (float)(sum / (double)size);
        }
    return true;
}

/* ---- Softmax / LogSoftmax over attr.axis.dim ---- */

static bool eval_softmax(Eval *e)
{
    bool log_softmax = e->node->op == OP_LOGSOFTMAX;
    int dim = e->node->attr.axis.dim;
    int64_t outer = dims_product(&e->in_shape, 0, dim), len = e->in_shape.dims[dim];
    int64_t inner = dims_product(&e->in_shape, dim + 1, e->in_shape.rank);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *x = e->in + o * len * inner + i;
            float *y = e->out + o * len * inner + i;
            double max = -INFINITY;
            for (int64_t k = 0; k < len; k++)
                if (x[k * inner] > max || isnan(x[k * inner])) max = x[k * inner];
            double sum = 0.0;
            for (int64_t k = 0; k < len; k++) sum += exp(x[k * inner] - max);
            for (int64_t k = 0; k < len; k++)
                y[k * inner] = (float)(log_softmax ? x[k * inner] - max - log(sum) : exp(x[k * inner] - max) / sum);
        }
    return true;
}

/* ---- normalisation ---- */

/* BatchNorm1d/2d over channel dim 1 of [N, C], [N, C, L] or [N, C, H, W]:
 * y = (x - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c], with the
 * running statistics, or (track_running_stats=False) the batch's own mean and
 * biased variance over N and the spatial dims. */
static bool eval_batchnorm(Eval *e)
{
    const NormAttrs *na = &e->node->attr.norm;
    const float *weight = param(e, "weight"), *bias = param(e, "bias");
    int64_t batch = e->in_shape.dims[0], channels = e->in_shape.dims[1];
    int64_t inner = dims_product(&e->in_shape, 2, e->in_shape.rank);
    for (int64_t c = 0; c < channels; c++) {
        double mean, var;
        if (na->track_running_stats) {
            mean = param(e, "running_mean")[c];
            var = param(e, "running_var")[c];
        } else {
            double sum = 0.0, sq = 0.0;
            for (int64_t n = 0; n < batch; n++)
                for (int64_t i = 0; i < inner; i++) sum += e->in[(n * channels + c) * inner + i];
            mean = sum / (double)(batch * inner);
            for (int64_t n = 0; n < batch; n++)
                for (int64_t i = 0; i < inner; i++) {
                    double d = e->in[(n * channels + c) * inner + i] - mean;
                    sq += d * d;
                }
            var = sq / (double)(batch * inner);
        }
        double scale = weight ? weight[c] : 1.0, shift = bias ? bias[c] : 0.0;
        for (int64_t n = 0; n < batch; n++)
            for (int64_t i = 0; i < inner; i++) {
                int64_t at = (n * channels + c) * inner + i;
                e->out[at] = (float)((e->in[at] - mean) / sqrt(var + na->eps) * scale + shift);
            }
    }
    return true;
}

/* y = (x - mean) / sqrt(var + eps) * weight + bias over `count` values (biased variance). */
static void layer_norm_row(const double *x, int64_t count, const float *weight, const float *bias, double eps, double *y)
{
    double sum = 0.0, sq = 0.0;
    for (int64_t i = 0; i < count; i++) sum += x[i];
    double mean = sum / (double)count;
    for (int64_t i = 0; i < count; i++) sq += (x[i] - mean) * (x[i] - mean);
    double inv_std = 1.0 / sqrt(sq / (double)count + eps);
    for (int64_t i = 0; i < count; i++)
        y[i] = (x[i] - mean) * inv_std * (weight ? weight[i] : 1.0) + (bias ? bias[i] : 0.0);
}

/* LayerNorm over the last norm_rank dims. */
static bool eval_layernorm(Eval *e)
{
    const NormAttrs *na = &e->node->attr.norm;
    int64_t inner = dims_product(&e->in_shape, e->in_shape.rank - na->norm_rank, e->in_shape.rank);
    int64_t outer = numel(&e->in_shape) / inner;
    double *x = alloc_doubles(e, inner), *y = alloc_doubles(e, inner);
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < inner; i++) x[i] = e->in[o * inner + i];
        layer_norm_row(x, inner, param(e, "weight"), param(e, "bias"), na->eps, y);
        for (int64_t i = 0; i < inner; i++) e->out[o * inner + i] = (float)y[i];
    }
    return true;
}

/* ---- Linear: y = x W^T + b over the last dim ---- */

static bool eval_linear(Eval *e)
{
    const LinearAttrs *la = &e->node->attr.linear;
    int64_t rows = numel(&e->in_shape) / la->in_features;
    double *x = alloc_doubles(e, la->in_features), *y = alloc_doubles(e, la->out_features);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < la->in_features; i++) x[i] = e->in[r * la->in_features + i];
        affine(param(e, "weight"), param(e, "bias"), x, la->in_features, la->out_features, y);
        for (int64_t o = 0; o < la->out_features; o++) e->out[r * la->out_features + o] = (float)y[o];
    }
    return true;
}

/* ---- layers of several inputs ---- */

/* Bilinear: y[o] = sum_ij x1[i] W[o, i, j] x2[j] + b[o], for every row. */
static bool eval_bilinear(Eval *e)
{
    const BilinearAttrs *bl = &e->node->attr.bilinear;
    const float *w = param(e, "weight"), *bias = param(e, "bias");
    int64_t rows = numel(&e->out_shape) / bl->out_features, n1 = bl->in1_features, n2 = bl->in2_features;
    for (int64_t r = 0; r < rows; r++) {
        const float *x1 = e->ins[0] + r * n1, *x2 = e->ins[1] + r * n2;
        for (int64_t o = 0; o < bl->out_features; o++) {
            double sum = bias ? bias[o] : 0.0;
            for (int64_t i = 0; i < n1; i++)
                for (int64_t j = 0; j < n2; j++) sum += (double)x1[i] * w[(o * n1 + i) * n2 + j] * x2[j];
            e->out[r * bl->out_features + o] = (float)sum;
        }
    }
    return true;
}

/* The index into input s (right-aligned, broadcast) of output element `flat` of shape out. */
static int64_t broadcast_index(const Shape *out, const Shape *s, int64_t flat)
{
    int64_t index = 0, stride = 1;
    for (int i = out->rank - 1; i >= 0; i--) {
        int64_t coord = flat % out->dims[i];
        flat /= out->dims[i];
        int j = i - (out->rank - s->rank);
        if (j < 0) continue;
        if (s->dims[j] != 1) index += coord * stride;
        stride *= s->dims[j];
    }
    return index;
}

/* a + b, a * b with broadcasting. */
static bool eval_broadcast_binary(Eval *e)
{
    int64_t count = numel(&e->out_shape);
    for (int64_t i = 0; i < count; i++) {
        double a = e->ins[0][broadcast_index(&e->out_shape, &e->in_shapes[0], i)];
        double b = e->ins[1][broadcast_index(&e->out_shape, &e->in_shapes[1], i)];
        e->out[i] = (float)(e->node->op == OP_ADD ? a + b : a * b);
    }
    return true;
}

/* cat: for every index before dim, each input's block in turn. */
static bool eval_cat(Eval *e)
{
    int d = e->node->attr.axis.dim;
    int64_t outer = dims_product(&e->out_shape, 0, d), inner = dims_product(&e->out_shape, d + 1, e->out_shape.rank);
    float *out = e->out;
    for (int64_t o = 0; o < outer; o++)
        for (int k = 0; k < e->node->ninputs; k++) {
            int64_t block = e->in_shapes[k].dims[d] * inner;
            memcpy(out, e->ins[k] + o * block, (size_t)block * sizeof(float));
            out += block;
        }
    return true;
}

/* ---- Embedding, EmbeddingBag ---- */

/* The norm_type-norm of a row: p = inf is the largest magnitude, p = 0 the count of non-zeros. */
static double row_norm(const float *row, int64_t count, double p)
{
    double acc = 0.0;
    for (int64_t i = 0; i < count; i++) {
        double v = fabs(row[i]);
        if (isinf(p)) acc = v > acc ? v : acc;
        else if (p == 0) acc += v != 0.0;
        else acc += pow(v, p);
    }
    return isinf(p) || p == 0 ? acc : pow(acc, 1.0 / p);
}

/* Row `index` of the table, checked against num_embeddings, with max_norm
 * applied as PyTorch's embedding_renorm_ does (row * max_norm / (norm + 1e-7)
 * when norm > max_norm) - to a copy: Param.data is left as it is. */
static bool embedding_row(const Eval *e, int64_t position, double *row)
{
    const EmbeddingAttrs *ea = &e->node->attr.emb;
    int64_t index = e->ids[position];
    if (index < 0 || index >= ea->num_embeddings)
        return fail(e,
                    "index %lld (at position %lld of its input) is out of range: num_embeddings is %lld, "
                    "so indices run from 0 to %lld",
                    (long long)index, (long long)position, (long long)ea->num_embeddings, (long long)(ea->num_embeddings - 1));
    const float *w = param(e, "weight") + index * ea->embedding_dim;
    double scale = 1.0;
    if (ea->max_norm >= 0) {
        double norm = row_norm(w, ea->embedding_dim, ea->norm_type);
        if (norm > ea->max_norm) scale = ea->max_norm / (norm + 1e-7);
    }
    for (int64_t d = 0; d < ea->embedding_dim; d++) row[d] = w[d] * scale;
    return true;
}

/* [*] ids -> [*, embedding_dim] */
static bool eval_embedding(Eval *e)
{
    int64_t dim = e->node->attr.emb.embedding_dim, count = numel(&e->in_shape);
    double *row = alloc_doubles(e, dim);
    for (int64_t p = 0; p < count; p++) {
        if (!embedding_row(e, p, row)) return false;
        for (int64_t d = 0; d < dim; d++) e->out[p * dim + d] = (float)row[d];
    }
    return true;
}

/* [B, L] ids -> [B, embedding_dim]: each row is a bag reduced by sum, mean or
 * max; entries equal to padding_idx are skipped (and not counted by mean); a
 * bag with no entries is all zeros. */
static bool eval_embeddingbag(Eval *e)
{
    const EmbeddingAttrs *ea = &e->node->attr.emb;
    if (ea->include_last_offset)
        return fail(e, "include_last_offset=True is not evaluated: on a 2-D input PyTorch takes the last row's offset as the "
                       "end of the previous bag and returns %lld bags, not the %lld the shape [B, embedding_dim] promises",
                    (long long)(e->in_shape.dims[0] - 1), (long long)e->in_shape.dims[0]);
    int64_t bags = e->in_shape.dims[0], len = e->in_shape.dims[1], dim = ea->embedding_dim;
    double *row = alloc_doubles(e, dim), *acc = alloc_doubles(e, dim);
    for (int64_t b = 0; b < bags; b++) {
        int64_t used = 0;
        for (int64_t k = 0; k < len; k++) {
            int64_t p = b * len + k;
            if (!embedding_row(e, p, row)) return false;
            if (e->ids[p] == ea->padding_idx) continue;
            for (int64_t d = 0; d < dim; d++) {
                if (used == 0) acc[d] = row[d];
                else if (ea->mode == BAG_MAX) acc[d] = row[d] > acc[d] || isnan(row[d]) ? row[d] : acc[d];
                else acc[d] += row[d];
            }
            used++;
        }
        for (int64_t d = 0; d < dim; d++) {
            double v = used == 0 ? 0.0 : ea->mode == BAG_MEAN ? acc[d] / (double)used : acc[d];
            e->out[b * dim + d] = (float)v;
        }
    }
    return true;
}

/* ---- sequences: [L, N, F], batch_first [N, L, F], or unbatched [L, F] ---- */

typedef struct SeqLayout {
    int64_t steps, batch, features;
    bool batch_first;
} SeqLayout;

static SeqLayout seq_layout(const Shape *s, bool batch_first)
{
    if (s->rank == 2) return (SeqLayout){s->dims[0], 1, s->dims[1], false};
    if (batch_first) return (SeqLayout){s->dims[1], s->dims[0], s->dims[2], true};
    return (SeqLayout){s->dims[0], s->dims[1], s->dims[2], false};
}

/* Row (of `features` values) holding step t of sequence b. */
static int64_t seq_row(const SeqLayout *l, int64_t t, int64_t b)
{
    return l->batch_first ? b * l->steps + t : t * l->batch + b;
}

/* ---- RNN, LSTM, GRU ---- */

/* The tensors of one layer and direction; biases and w_hr may be NULL. */
typedef struct CellWeights {
    const float *w_ih, *w_hh, *b_ih, *b_hh, *w_hr;
    int64_t in_size, hidden, out_size; /* out_size: proj_size when projecting, else hidden */
} CellWeights;

static CellWeights cell_weights(const Eval *e, int64_t layer, int dir)
{
    const RecurrentAttrs *ra = &e->node->attr.rnn;
    const char *sfx = dir ? "_reverse" : "";
    long long l = (long long)layer;
    int64_t out_size = ra->proj_size > 0 ? ra->proj_size : ra->hidden_size;
    return (CellWeights){
        .w_ih = paramf(e, "weight_ih_l%lld%s", l, sfx),
        .w_hh = paramf(e, "weight_hh_l%lld%s", l, sfx),
        .b_ih = paramf(e, "bias_ih_l%lld%s", l, sfx),
        .b_hh = paramf(e, "bias_hh_l%lld%s", l, sfx),
        .w_hr = paramf(e, "weight_hr_l%lld%s", l, sfx),
        .in_size = layer == 0 ? ra->input_size : out_size * (ra->bidirectional ? 2 : 1),
        .hidden = ra->hidden_size,
        .out_size = out_size,
    };
}

/* Scratch of one cell step: gi = W_ih x + b_ih, gh = W_hh h + b_hh (gates * hidden each). */
typedef struct CellScratch {
    double *gi, *gh, *h_full;
} CellScratch;

static void cell_gates(const CellWeights *w, int gates, const double *x, const double *h, CellScratch *s)
{
    affine(w->w_ih, w->b_ih, x, w->in_size, gates * w->hidden, s->gi);
    affine(w->w_hh, w->b_hh, h, w->out_size, gates * w->hidden, s->gh);
}

/* h = act(W_ih x + b_ih + W_hh h + b_hh), act tanh or relu. */
static void rnn_cell(const CellWeights *w, bool use_relu, const double *x, double *h, CellScratch *s)
{
    cell_gates(w, 1, x, h, s);
    for (int64_t j = 0; j < w->hidden; j++) {
        double a = s->gi[j] + s->gh[j];
        h[j] = use_relu ? (a > 0 ? a : 0.0) : tanh(a);
    }
}

/* Gates i, f, g, o: c = f*c + i*g; h = o*tanh(c), then h = W_hr h with proj_size. */
static void lstm_cell(const CellWeights *w, const double *x, double *h, double *c, CellScratch *s)
{
    int64_t H = w->hidden;
    cell_gates(w, 4, x, h, s);
    for (int64_t j = 0; j < H; j++) {
        double i = sigmoid(s->gi[j] + s->gh[j]);
        double f = sigmoid(s->gi[H + j] + s->gh[H + j]);
        double g = tanh(s->gi[2 * H + j] + s->gh[2 * H + j]);
        double o = sigmoid(s->gi[3 * H + j] + s->gh[3 * H + j]);
        c[j] = f * c[j] + i * g;
        s->h_full[j] = o * tanh(c[j]);
    }
    if (w->w_hr) affine(w->w_hr, NULL, s->h_full, H, w->out_size, h);
    else memcpy(h, s->h_full, (size_t)H * sizeof *h);
}

/* Gates r, z, n: n = tanh(W_in x + b_in + r*(W_hn h + b_hn)); h = (1-z)*n + z*h. */
static void gru_cell(const CellWeights *w, const double *x, double *h, CellScratch *s)
{
    int64_t H = w->hidden;
    cell_gates(w, 3, x, h, s);
    for (int64_t j = 0; j < H; j++) {
        double r = sigmoid(s->gi[j] + s->gh[j]);
        double z = sigmoid(s->gi[H + j] + s->gh[H + j]);
        double n = tanh(s->gi[2 * H + j] + r * s->gh[2 * H + j]);
        s->h_full[j] = (1.0 - z) * n + z * h[j];
    }
    memcpy(h, s->h_full, (size_t)H * sizeof *h);
}

/* One direction of one layer over the whole sequence from zero state.
 * seq_in is [steps][batch][in_size]; the outputs go to
 * seq_out[t][b][dir*out_size ...] of rows `out_width` wide. */
static void recurrent_direction(const Eval *e, const CellWeights *w, int dir, const SeqLayout *l, const double *seq_in,
                                double *seq_out, int64_t out_width)
{
    OpKind op = e->node->op;
    int gates = op == OP_LSTM ? 4 : op == OP_GRU ? 3 : 1;
    CellScratch s = {alloc_doubles(e, gates * w->hidden), alloc_doubles(e, gates * w->hidden), alloc_doubles(e, w->hidden)};
    double *h = alloc_doubles(e, w->out_size), *c = alloc_doubles(e, w->hidden);
    for (int64_t b = 0; b < l->batch; b++) {
        memset(h, 0, (size_t)w->out_size * sizeof *h);
        memset(c, 0, (size_t)w->hidden * sizeof *c);
        for (int64_t step = 0; step < l->steps; step++) {
            int64_t t = dir ? l->steps - 1 - step : step;
            const double *x = seq_in + (t * l->batch + b) * w->in_size;
            if (op == OP_LSTM) lstm_cell(w, x, h, c, &s);
            else if (op == OP_GRU) gru_cell(w, x, h, &s);
            else rnn_cell(w, e->node->attr.rnn.relu, x, h, &s);
            memcpy(seq_out + (t * l->batch + b) * out_width + dir * w->out_size, h, (size_t)w->out_size * sizeof *h);
        }
    }
}

/* RNN/LSTM/GRU: layer k > 0 reads layer k-1's output (both directions
 * concatenated); inter-layer dropout is off in eval; the result is the last
 * layer's output sequence. */
static bool eval_recurrent(Eval *e)
{
    const RecurrentAttrs *ra = &e->node->attr.rnn;
    SeqLayout l = seq_layout(&e->in_shape, ra->batch_first);
    int dirs = ra->bidirectional ? 2 : 1;
    int64_t out_width = dirs * (ra->proj_size > 0 ? ra->proj_size : ra->hidden_size);
    /* time-major [steps][batch][features] copies, whatever the input layout */
    double *seq = alloc_doubles(e, l.steps * l.batch * l.features);
    for (int64_t t = 0; t < l.steps; t++)
        for (int64_t b = 0; b < l.batch; b++)
            for (int64_t f = 0; f < l.features; f++)
                seq[(t * l.batch + b) * l.features + f] = e->in[seq_row(&l, t, b) * l.features + f];
    for (int64_t layer = 0; layer < ra->num_layers; layer++) {
        double *next = alloc_doubles(e, l.steps * l.batch * out_width);
        for (int dir = 0; dir < dirs; dir++) {
            CellWeights w = cell_weights(e, layer, dir);
            recurrent_direction(e, &w, dir, &l, seq, next, out_width);
        }
        seq = next;
    }
    for (int64_t t = 0; t < l.steps; t++)
        for (int64_t b = 0; b < l.batch; b++)
            for (int64_t f = 0; f < out_width; f++)
                e->out[seq_row(&l, t, b) * out_width + f] = (float)seq[(t * l.batch + b) * out_width + f];
    return true;
}

/* ---- TransformerEncoderLayer (eval, no mask) ---- */

/* y[r] = W x[r] + b for each of `rows` rows. */
static void affine_rows(const float *w, const float *b, const double *x, int64_t rows, int64_t in, int64_t out, double *y)
{
    for (int64_t r = 0; r < rows; r++) affine(w, b, x + r * in, in, out, y + r * out);
}

/* Multi-head self-attention of one sequence x [L, E] into y [L, E]:
 * q, k, v = x W_q^T + b_q, ... (in_proj_weight split in three), per head
 * softmax(q k^T / sqrt(head_dim)) v, heads concatenated, then out_proj. */
static void self_attention(const Eval *e, const double *x, int64_t len, double *y)
{
    const TransformerAttrs *ta = &e->node->attr.tfm;
    int64_t E = ta->d_model, hd = E / ta->nhead;
    double *qkv = alloc_doubles(e, len * 3 * E), *ctx = alloc_doubles(e, len * E), *p = alloc_doubles(e, len);
    affine_rows(param(e, "self_attn.in_proj_weight"), param(e, "self_attn.in_proj_bias"), x, len, E, 3 * E, qkv);
    double scale = 1.0 / sqrt((double)hd);
    for (int64_t head = 0; head < ta->nhead; head++)
        for (int64_t i = 0; i < len; i++) {
            const double *q = qkv + i * 3 * E + head * hd;
            double max = -INFINITY, sum = 0.0;
            for (int64_t j = 0; j < len; j++) {
                const double *k = qkv + j * 3 * E + E + head * hd;
                double dot = 0.0;
                for (int64_t d = 0; d < hd; d++) dot += q[d] * k[d];
                p[j] = dot * scale;
                if (p[j] > max) max = p[j];
            }
            for (int64_t j = 0; j < len; j++) sum += p[j] = exp(p[j] - max);
            for (int64_t d = 0; d < hd; d++) {
                double acc = 0.0;
                for (int64_t j = 0; j < len; j++) acc += p[j] / sum * qkv[j * 3 * E + 2 * E + head * hd + d];
                ctx[i * E + head * hd + d] = acc;
            }
        }
    affine_rows(param(e, "self_attn.out_proj.weight"), param(e, "self_attn.out_proj.bias"), ctx, len, E, E, y);
}

/* linear2(activation(linear1(x))) for each row of x [L, E]. */
static void feed_forward(const Eval *e, const double *x, int64_t len, double *y)
{
    const TransformerAttrs *ta = &e->node->attr.tfm;
    int64_t E = ta->d_model, F = ta->dim_feedforward;
    double *hidden = alloc_doubles(e, len * F);
    affine_rows(param(e, "linear1.weight"), param(e, "linear1.bias"), x, len, E, F, hidden);
    for (int64_t i = 0; i < len * F; i++) hidden[i] = ta->gelu ? gelu_exact(hidden[i]) : hidden[i] > 0 ? hidden[i] : 0.0;
    affine_rows(param(e, "linear2.weight"), param(e, "linear2.bias"), hidden, len, F, E, y);
}

/* norm1 or norm2 ("norm1") applied to every row of x [L, E]. */
static void norm_rows(const Eval *e, const char *norm, const double *x, int64_t len, double *y)
{
    int64_t E = e->node->attr.tfm.d_model;
    const float *w = paramf(e, "%s.weight", norm), *b = paramf(e, "%s.bias", norm);
    for (int64_t i = 0; i < len; i++) layer_norm_row(x + i * E, E, w, b, e->node->attr.tfm.layer_norm_eps, y + i * E);
}

/* One sequence x [L, E], in place:
 *   post-norm: x = norm1(x + sa(x));  x = norm2(x + ff(x))
 *   norm_first: x = x + sa(norm1(x)); x = x + ff(norm2(x)) */
static void encoder_sequence(const Eval *e, double *x, int64_t len)
{
    int64_t count = len * e->node->attr.tfm.d_model;
    double *t = alloc_doubles(e, count), *u = alloc_doubles(e, count);
    if (e->node->attr.tfm.norm_first) {
        norm_rows(e, "norm1", x, len, t);
        self_attention(e, t, len, u);
        for (int64_t i = 0; i < count; i++) x[i] += u[i];
        norm_rows(e, "norm2", x, len, t);
        feed_forward(e, t, len, u);
        for (int64_t i = 0; i < count; i++) x[i] += u[i];
    } else {
        self_attention(e, x, len, u);
        for (int64_t i = 0; i < count; i++) t[i] = x[i] + u[i];
        norm_rows(e, "norm1", t, len, x);
        feed_forward(e, x, len, u);
        for (int64_t i = 0; i < count; i++) t[i] = x[i] + u[i];
        norm_rows(e, "norm2", t, len, x);
    }
}

static bool eval_transformer_encoder(Eval *e)
{
    SeqLayout l = seq_layout(&e->in_shape, e->node->attr.tfm.batch_first);
    int64_t E = l.features;
    double *x = alloc_doubles(e, l.steps * E);
    for (int64_t b = 0; b < l.batch; b++) {
        for (int64_t t = 0; t < l.steps; t++)
            for (int64_t f = 0; f < E; f++) x[t * E + f] = e->in[seq_row(&l, t, b) * E + f];
        encoder_sequence(e, x, l.steps);
        for (int64_t t = 0; t < l.steps; t++)
            for (int64_t f = 0; f < E; f++) e->out[seq_row(&l, t, b) * E + f] = (float)x[t * E + f];
    }
    return true;
}

/* ---- the driver ---- */

typedef bool (*Evaluator)(Eval *e);

static const Evaluator evaluators[OP_INPUT] = {
#define LAYER(E, Name, Sig, rule, kernel, reference, flags) [OP_##E] = reference,
#include "layers.def"
#undef LAYER
};

static bool eval_node(Eval *e)
{
    if (e->node->op >= OP_INPUT) return fail(e, "the reference interpreter has no implementation of %s", op_name(e->node->op));
    return evaluators[e->node->op](e);
}

Shape reference_shape(const Node *n, int64_t batch)
{
    Shape s = n->shape;
    if (s.dynamic_batch && s.rank > 0) s.dims[0] = batch;
    return s;
}

/* Every float tensor the node reads must be bound; i64 buffers (num_batches_tracked) are never read. */
static bool check_params(const Eval *e)
{
    for (int i = 0; i < e->node->nparams; i++) {
        const Param *p = &e->node->params[i];
        if (p->dtype == DT_F32 && !p->data) return fail(e, "parameter %s has no values: bind the weights first", p->key);
    }
    return true;
}

static bool check_run(const Graph *g, int64_t batch, char *err, size_t errsize)
{
    const Node *in = g->input;
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = g->nodes.items[i];
        if (n->invalid || !n->inferred || n->recovered) {
            snprintf(err, errsize, "layer %s has errors (see the front end's diagnostics): the model cannot be run", n->name);
            return false;
        }
    }
    if (in->shape.dynamic_batch) {
        if (batch < 1) {
            const char *name = g->batch_name ? g->batch_name : "N";
            snprintf(err, errsize, "the batch %s must be at least 1, found %lld", name, (long long)batch);
            return false;
        }
    } else if (in->shape.rank > 0 && batch != in->shape.dims[0]) {
        snprintf(err, errsize, "the input's first dimension is fixed at %lld, but the batch given is %lld",
                 (long long)in->shape.dims[0], (long long)batch);
        return false;
    }
    for (int i = 0; i < g->nodes.len; i++) {
        Shape s = reference_shape(g->nodes.items[i], batch);
        int64_t count = shape_numel(&s);
        if (count < 0 || count > ((int64_t)1 << 40) / (int64_t)sizeof(double)) {
            snprintf(err, errsize, "with batch %lld, the output of %s is too large", (long long)batch,
                     ((const Node *)g->nodes.items[i])->name);
            return false;
        }
    }
    return true;
}

/* Multiplies every value by 1 + noise * U(-1, 1): rounding errors of about that size, for reference_run_perturbed. */
static void perturb(float *v, int64_t count, double noise, uint64_t *state)
{
    for (int64_t i = 0; i < count; i++) v[i] = (float)(v[i] * (1.0 + noise * ((double)(splitmix64(state) >> 11) * 0x1.0p-52 - 1.0)));
}

bool reference_run(Arena *a, const Graph *g, const void *input, int64_t batch, float **outputs, char *err, size_t errsize)
{
    return reference_run_perturbed(a, g, &input, batch, 0.0, 0, NULL, outputs, err, errsize);
}

/* Input node n's values (the caller's k-th input) as floats, and as token ids when i64. */
static void load_input(Arena *a, const Node *n, const void *data, int64_t batch, float **out, const int64_t **ids)
{
    Shape shape = reference_shape(n, batch);
    int64_t count = numel(&shape);
    *out = arena_alloc_array(a, (size_t)(count ? count : 1), sizeof(float));
    if (n->dtype == DT_I64) {
        *ids = data;
        for (int64_t i = 0; i < count; i++) (*out)[i] = (float)(*ids)[i];
    } else {
        memcpy(*out, data, (size_t)count * sizeof(float));
    }
}

bool reference_run_perturbed(Arena *a, const Graph *g, const void *const *inputs, int64_t batch, double noise, uint64_t seed,
                             Progress *progress, float **outputs, char *err, size_t errsize)
{
    if (!check_run(g, batch, err, errsize)) return false;
    /* ids[i]: node i's output as the original token ids, for i64 tensors (the input, and Identity/Flatten of it). */
    const int64_t **ids = arena_alloc_array(a, (size_t)g->nodes.len, sizeof *ids);
    int next_input = 0, layers_done = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = g->nodes.items[i];
        if (n->op == OP_INPUT) {
            load_input(a, n, inputs[next_input++], batch, &outputs[i], &ids[i]);
            continue;
        }
        progress_step(progress, "reference interpreter: layer %d of %d (%s)", ++layers_done, graph_layer_count(g), n->name);
        int src = n->inputs[0]->id;
        Eval e = {
            .arena = a,
            .node = n,
            .in = outputs[src],
            .ids = ids[src],
            .in_shape = reference_shape(n->inputs[0], batch),
            .out_shape = reference_shape(n, batch),
            .err = err,
            .errsize = errsize,
        };
        for (int k = 0; k < n->ninputs; k++) {
            e.ins[k] = outputs[n->inputs[k]->id];
            e.in_shapes[k] = reference_shape(n->inputs[k], batch);
        }
        e.out = outputs[i] = arena_alloc_array(a, (size_t)numel(&e.out_shape), sizeof(float));
        if (!check_params(&e)) return false;
        if ((n->op == OP_EMBEDDING || n->op == OP_EMBEDDINGBAG) && !e.ids)
            return fail(&e, "expects token ids (i64) but its input is floats");
        if (!eval_node(&e)) return false;
        if (n->dtype == DT_I64) ids[i] = ids[src];
        else if (noise > 0) perturb(e.out, numel(&e.out_shape), noise, &seed);
    }
    return true;
}
