/* rules_spatial.c - shape rules of the layers that slide a window over H and W:
 * Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d.  The output-size formulas
 * are PyTorch's (torch.nn docs; pooling_output_shape in ATen for ceil_mode). */
#include <stdint.h>
#include <string.h>

#include "infer.h"
#include "layer_args.h"

static const char *const axis_name[2] = {"H", "W"};

static long long clamp_to_int64(__int128 v) { return v > INT64_MAX ? INT64_MAX : v < INT64_MIN ? INT64_MIN : (long long)v; }

/* Inputs are [N, C, H, W] or unbatched [C, H, W]: index of C. */
static int channel_axis(const Node *n) { return input_shape(n)->rank - 3; }

static void set_output_nchw(Node *n, int64_t channels, const int64_t out_hw[2])
{
    const Shape *in = input_shape(n);
    n->shape = *in;
    int c = channel_axis(n);
    n->shape.dims[c] = channels;
    n->shape.dims[c + 1] = out_hw[0];
    n->shape.dims[c + 2] = out_hw[1];
}

static bool conv_padding(InferCtx *ic, Node *n, ConvAttrs *cv)
{
    const BoundArg *pad = &NODE_ARGS(n, Conv2dArgs)->padding;
    if (pad->str && strcmp(pad->str, "valid") == 0) return true;
    if (pad->str && strcmp(pad->str, "same") == 0) {
        if (cv->stride[0] != 1 || cv->stride[1] != 1) {
            node_error(ic, n, pad->loc, "padding='same' needs stride 1, found stride (%lld, %lld)",
                       (long long)cv->stride[0], (long long)cv->stride[1]);
            diag_note(ic->diag, pad->loc, "PyTorch does not support padding='same' for strided convolutions either");
            return false;
        }
        for (int i = 0; i < 2; i++) {
            int64_t total = sat_mul(cv->dilation[i], cv->kernel[i] - 1);
            cv->pad_begin[i] = total / 2;
            cv->pad_end[i] = total - total / 2;
        }
        return true;
    }
    if (pad->str) {
        node_error(ic, n, pad->loc, "'padding' must be an integer, a pair, 'same' or 'valid', found '%s'", pad->str);
        return false;
    }
    if (!expect_nonnegative(ic, n, pad)) return false;
    for (int i = 0; i < 2; i++) cv->pad_begin[i] = cv->pad_end[i] = pad->ints[i];
    return true;
}

static bool conv_pad_mode(InferCtx *ic, Node *n, ConvAttrs *cv)
{
    const BoundArg *m = &NODE_ARGS(n, Conv2dArgs)->padding_mode;
    cv->pad_mode = pad_mode_from_name(m->str);
    if (cv->pad_mode != PAD_REFLECT && cv->pad_mode != PAD_CIRCULAR) return true;
    /* PyTorch pads the input first: reflect needs pad < size, circular pad <= size. */
    const Shape *in = input_shape(n);
    int c = channel_axis(n);
    for (int i = 0; i < 2; i++) {
        int64_t size = in->dims[c + 1 + i];
        int64_t pad = cv->pad_begin[i] > cv->pad_end[i] ? cv->pad_begin[i] : cv->pad_end[i];
        bool ok = cv->pad_mode == PAD_REFLECT ? pad < size : pad <= size;
        if (ok) continue;
        node_error(ic, n, m->loc, "padding_mode='%s' needs padding %s the input %s size, but padding is %lld and %s is %lld (%s)",
                   m->str, cv->pad_mode == PAD_REFLECT ? "smaller than" : "at most", axis_name[i], (long long)pad,
                   axis_name[i], (long long)size, describe_tensor(ic, n->inputs[0]));
        return false;
    }
    return true;
}

/* padded = in + pad_begin + pad_end; out = floor((padded - dilation*(kernel-1) - 1) / stride) + 1 */
static bool conv_output_size(InferCtx *ic, Node *n, ConvAttrs *cv, int64_t out[2])
{
    const Shape *in = input_shape(n);
    int c = channel_axis(n);
    for (int i = 0; i < 2; i++) {
        int64_t size = in->dims[c + 1 + i];
        /* 128-bit: every argument may be as large as an int64 literal. */
        __int128 span = (__int128)cv->dilation[i] * (cv->kernel[i] - 1) + 1;
        __int128 padded = (__int128)size + cv->pad_begin[i] + cv->pad_end[i];
        const char *pads = cv->pad_begin[i] == cv->pad_end[i]
                               ? arena_printf(ic->arena, "2*%lld", (long long)cv->pad_begin[i])
                               : arena_printf(ic->arena, "(%lld+%lld)", (long long)cv->pad_begin[i], (long long)cv->pad_end[i]);
        if (padded < span) {
            node_error(ic, n, n->op_loc,
                       "the %s kernel extent %lld (dilation %lld * (kernel %lld - 1) + 1) is larger than the padded "
                       "input %s %lld (%lld + padding %lld + %lld) (%s)",
                       axis_name[i], clamp_to_int64(span), (long long)cv->dilation[i], (long long)cv->kernel[i],
                       axis_name[i], clamp_to_int64(padded), (long long)size, (long long)cv->pad_begin[i],
                       (long long)cv->pad_end[i], describe_tensor(ic, n->inputs[0]));
            return false;
        }
        __int128 size_out = (padded - span) / cv->stride[i] + 1;
        out[i] = size_out > INT64_MAX ? INT64_MAX : (int64_t)size_out;
        cv->padded[i] = padded > INT64_MAX ? INT64_MAX : (int64_t)padded;
        explain(ic, n, "%s: floor((%lld + %s - %lld*(%lld-1) - 1) / %lld) + 1 = %lld", axis_name[i], (long long)size, pads,
                (long long)cv->dilation[i], (long long)cv->kernel[i], (long long)cv->stride[i], (long long)out[i]);
    }
    return true;
}

static bool conv_channels(InferCtx *ic, Node *n, const ConvAttrs *cv)
{
    const Conv2dArgs *a = NODE_ARGS(n, Conv2dArgs);
    const BoundArg *groups = &a->groups;
    if (cv->in_channels % cv->groups != 0) {
        node_error(ic, n, groups->loc, "in_channels (%lld) must be divisible by groups (%lld)", (long long)cv->in_channels,
                   (long long)cv->groups);
        return false;
    }
    if (cv->out_channels % cv->groups != 0) {
        node_error(ic, n, groups->loc, "out_channels (%lld) must be divisible by groups (%lld)", (long long)cv->out_channels,
                   (long long)cv->groups);
        return false;
    }
    int64_t have = input_shape(n)->dims[channel_axis(n)];
    if (have != cv->in_channels) {
        node_error(ic, n, a->in_channels.loc, "in_channels is %lld but its input has %lld channels (%s)",
                   (long long)cv->in_channels, (long long)have, describe_tensor(ic, n->inputs[0]));
        return false;
    }
    return true;
}

/* in: [N, C_in, H, W] weight: [C_out, C_in/groups, KH, KW] -> [N, C_out, OH, OW] */
bool rule_conv2d(InferCtx *ic, Node *n)
{
    if (!expect_dtype(ic, n, DT_F32) || !expect_rank(ic, n, 3, 4, "[N, C, H, W] or [C, H, W]")) return false;
    if (input_shape(n)->rank == 3 && !expect_fixed_dim(ic, n, 0, "channels")) return false;
    const Conv2dArgs *a = NODE_ARGS(n, Conv2dArgs);
    if (!expect_positive(ic, n, &a->in_channels) || !expect_positive(ic, n, &a->out_channels) ||
        !expect_positive(ic, n, &a->kernel_size) || !expect_positive(ic, n, &a->stride) ||
        !expect_positive(ic, n, &a->dilation) || !expect_positive(ic, n, &a->groups))
        return false;
    ConvAttrs *cv = &n->attr.conv;
    cv->in_channels = a->in_channels.ints[0];
    cv->out_channels = a->out_channels.ints[0];
    cv->groups = a->groups.ints[0];
    cv->bias = a->bias.ints[0];
    for (int i = 0; i < 2; i++) {
        cv->kernel[i] = a->kernel_size.ints[i];
        cv->stride[i] = a->stride.ints[i];
        cv->dilation[i] = a->dilation.ints[i];
    }
    int64_t out_hw[2];
    bool channels_ok = conv_channels(ic, n, cv);
    if (!conv_padding(ic, n, cv) || !conv_pad_mode(ic, n, cv) || !conv_output_size(ic, n, cv, out_hw)) return false;
    set_output_nchw(n, cv->out_channels, out_hw);
    n->recovered = !channels_ok; /* the output shape does not depend on the mismatch */

    int64_t weight[4] = {cv->out_channels, cv->in_channels / cv->groups, cv->kernel[0], cv->kernel[1]};
    add_param(ic, n, "weight", 4, weight, false);
    if (cv->bias) add_param1(ic, n, "bias", cv->out_channels, false);
    int64_t taps = sat_mul(sat_mul(weight[1], weight[2]), weight[3]);
    n->macs = sat_mul(shape_numel(&n->shape), taps);
    return channels_ok;
}

/* PyTorch's pooling_output_shape: with ceil_mode the last window must start
 * inside the input or the left padding, else it is dropped. */
static int64_t pool_output_size(int64_t size, int64_t k, int64_t pad, int64_t stride, int64_t dil, bool ceil_mode,
                                bool *dropped)
{
    /* 128-bit: every argument may be as large as an int64 literal. */
    __int128 numerator = (__int128)size + 2 * (__int128)pad - (__int128)dil * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
    __int128 out = (numerator >= 0 ? numerator / stride : -((-numerator + stride - 1) / stride)) + 1;
    *dropped = false;
    if (ceil_mode && (out - 1) * stride >= (__int128)size + pad) {
        out--;
        *dropped = true;
    }
    return out > INT64_MAX ? INT64_MAX : out < INT64_MIN ? INT64_MIN : (int64_t)out;
}

/* The arguments MaxPool2d and AvgPool2d share (AvgPool2d has no dilation: NULL). */
typedef struct PoolArgs {
    const BoundArg *kernel_size, *stride, *padding, *dilation, *ceil_mode;
} PoolArgs;

static bool pool_common(InferCtx *ic, Node *n, PoolAttrs *pa, const PoolArgs *a)
{
    bool has_dilation = a->dilation != NULL;
    if (!expect_dtype(ic, n, DT_F32) || !expect_rank(ic, n, 3, 4, "[N, C, H, W] or [C, H, W]")) return false;
    if (!expect_positive(ic, n, a->kernel_size) || !expect_positive(ic, n, a->stride) ||
        !expect_nonnegative(ic, n, a->padding) || (has_dilation && !expect_positive(ic, n, a->dilation)))
        return false;
    const BoundArg *stride = a->stride;
    const BoundArg *pad = a->padding;
    pa->ceil_mode = a->ceil_mode->ints[0];
    for (int i = 0; i < 2; i++) {
        pa->kernel[i] = a->kernel_size->ints[i];
        pa->stride[i] = stride->is_none ? pa->kernel[i] : stride->ints[i];
        pa->pad[i] = pad->ints[i];
        pa->dilation[i] = has_dilation ? a->dilation->ints[i] : 1;
        if (pa->pad[i] > pa->kernel[i] / 2) {
            node_error(ic, n, pad->loc, "padding must be at most half the kernel size, found padding %lld for kernel %lld (%s)",
                       (long long)pa->pad[i], (long long)pa->kernel[i], axis_name[i]);
            return false;
        }
    }
    const Shape *in = input_shape(n);
    int c = channel_axis(n);
    int64_t out_hw[2];
    for (int i = 0; i < 2; i++) {
        int64_t size = in->dims[c + 1 + i];
        bool dropped;
        out_hw[i] = pool_output_size(size, pa->kernel[i], pa->pad[i], pa->stride[i], pa->dilation[i], pa->ceil_mode, &dropped);
        const char *round = pa->ceil_mode ? "ceil" : "floor";
        explain(ic, n, "%s: %s((%lld + 2*%lld - %lld*(%lld-1) - 1) / %lld) + 1 = %lld%s", axis_name[i], round, (long long)size,
                (long long)pa->pad[i], (long long)pa->dilation[i], (long long)pa->kernel[i], (long long)pa->stride[i],
                (long long)(out_hw[i] + dropped),
                dropped ? arena_printf(ic->arena, ", minus 1: the last window would start at %lld, past the input and left padding (%lld) -> %lld",
                                       (long long)(out_hw[i] * pa->stride[i]), (long long)(size + pa->pad[i]), (long long)out_hw[i])
                        : "");
        if (out_hw[i] < 1) {
            __int128 window = (__int128)pa->dilation[i] * (pa->kernel[i] - 1) + 1;
            const char *how = has_dilation ? arena_printf(ic->arena, " (dilation %lld * (kernel %lld - 1) + 1)",
                                                          (long long)pa->dilation[i], (long long)pa->kernel[i])
                                           : "";
            node_error(ic, n, n->op_loc,
                       "output %s would be empty: the window %lld%s is larger than the padded input %s %lld "
                       "(%lld + padding 2*%lld) (%s)",
                       axis_name[i], clamp_to_int64(window), how, axis_name[i],
                       clamp_to_int64((__int128)size + 2 * (__int128)pa->pad[i]), (long long)size, (long long)pa->pad[i],
                       describe_tensor(ic, n->inputs[0]));
            return false;
        }
    }
    set_output_nchw(n, in->dims[c], out_hw);
    return true;
}

bool rule_maxpool2d(InferCtx *ic, Node *n)
{
    const MaxPool2dArgs *a = NODE_ARGS(n, MaxPool2dArgs);
    if (a->return_indices.ints[0]) {
        node_error(ic, n, a->return_indices.loc, "return_indices=True is not supported: the layer would return two tensors "
                                                  "(values and indices), but a layer stack passes one to the next layer");
        return false;
    }
    PoolArgs pool = {&a->kernel_size, &a->stride, &a->padding, &a->dilation, &a->ceil_mode};
    return pool_common(ic, n, &n->attr.pool, &pool);
}

bool rule_avgpool2d(InferCtx *ic, Node *n)
{
    PoolAttrs *pa = &n->attr.pool;
    const AvgPool2dArgs *a = NODE_ARGS(n, AvgPool2dArgs);
    const BoundArg *div = &a->divisor_override;
    if (!div->is_none && div->ints[0] == 0) {
        node_error(ic, n, div->loc, "divisor_override must not be zero");
        return false;
    }
    pa->divisor_override = div->is_none ? 0 : div->ints[0];
    pa->count_include_pad = a->count_include_pad.ints[0];
    PoolArgs pool = {&a->kernel_size, &a->stride, &a->padding, NULL, &a->ceil_mode};
    return pool_common(ic, n, pa, &pool);
}

bool rule_adaptiveavgpool2d(InferCtx *ic, Node *n)
{
    if (!expect_dtype(ic, n, DT_F32) || !expect_rank(ic, n, 3, 4, "[N, C, H, W] or [C, H, W]")) return false;
    const BoundArg *size = &NODE_ARGS(n, AdaptiveAvgPool2dArgs)->output_size;
    const Shape *in = input_shape(n);
    int c = channel_axis(n);
    int64_t out_hw[2];
    for (int i = 0; i < 2; i++) {
        bool keep = size->is_none || size->none_at[i];
        out_hw[i] = keep ? in->dims[c + 1 + i] : size->ints[i];
        if (out_hw[i] < 1) {
            node_error(ic, n, size->loc, "output_size must be at least 1, found %lld", (long long)out_hw[i]);
            return false;
        }
        n->attr.adaptive_out[i] = out_hw[i];
        explain(ic, n, "%s: %s = %lld", axis_name[i], keep ? "None keeps the input size" : "output_size", (long long)out_hw[i]);
    }
    set_output_nchw(n, in->dims[c], out_hw);
    return true;
}
