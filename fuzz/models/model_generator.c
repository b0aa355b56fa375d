/* model_generator.c - random valid models (see model_generator.h).
 *
 * The shapes are computed here from PyTorch's formulas, independently of
 * layerc's shape rules, and written after each layer as "# -> [N, C, H, W]"
 * so that fuzz_models.c can hold layerc's inferred shapes against them.  The
 * first lines say how the model is run: "# run-batch: B".
 */
#include "model_generator.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "graph.h"
#include "lower.h"
#include "splitmix.h"

/* Bounds that keep a model quick to compile and to evaluate naively. */
enum { MAX_LAYERS = 7, MAX_SAMPLE_ELEMENTS = 6144, MAX_FEATURES = 1536, MAX_CHANNELS = 48 };

typedef struct Gen {
    uint64_t rng;
    char *text;
    size_t len;
    int rank;           /* of the current value: 4 [N, C, H, W], 3 [N, C, L] or 2 [N, F] */
    int64_t dims[4];    /* dims[1..rank) */
    const char *batch;  /* "N", or the fixed batch as text */
    int64_t run_batch;
    int layers;
} Gen;

static uint64_t below(Gen *g, uint64_t n) { return n ? splitmix64(&g->rng) % n : 0; }
static bool percent(Gen *g, int p) { return (int)below(g, 100) < p; }
static int64_t between(Gen *g, int64_t lo, int64_t hi) { return lo + (int64_t)below(g, (uint64_t)(hi - lo + 1)); }

static void emit(Gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(Gen *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(g->text + g->len, GENERATED_MODEL_MAX - g->len, fmt, ap);
    va_end(ap);
    if (n > 0) g->len += (size_t)n;
    if (g->len >= GENERATED_MODEL_MAX) g->len = GENERATED_MODEL_MAX - 1;
}

static int64_t sample_elements(const Gen *g)
{
    int64_t n = 1;
    for (int i = 1; i < g->rank; i++) n *= g->dims[i];
    return n;
}

/* One layer line: "    [name = ]call  # -> [shape]", the shape being g's after the layer. */
static void emit_layer(Gen *g, const char *call)
{
    g->layers++;
    if (percent(g, 60)) emit(g, "    l%d = %s", g->layers, call);
    else emit(g, "    %s", call);
    emit(g, "  # -> [%s", g->batch);
    for (int i = 1; i < g->rank; i++) emit(g, ", %lld", (long long)g->dims[i]);
    emit(g, "]\n");
}

/* A pair argument: "3" when both sides agree and a coin says so, else "(3, 4)". */
static void pair_text(Gen *g, char *buf, size_t size, const int64_t v[2])
{
    if (v[0] == v[1] && percent(g, 70)) snprintf(buf, size, "%lld", (long long)v[0]);
    else snprintf(buf, size, "(%lld, %lld)", (long long)v[0], (long long)v[1]);
}

/* floor or ceil((in + 2 pad - dil (k - 1) - 1) / stride) + 1, with PyTorch's
 * ceil_mode rule that the last window starts inside the input or the left padding. */
static int64_t pooled_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil, bool ceil_mode)
{
    int64_t span = in + 2 * pad - dil * (k - 1) - 1;
    if (span < 0) return 0;
    int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    if (ceil_mode && (out - 1) * stride >= in + pad) out--;
    return out;
}

/* Activations with arguments other than their defaults. */
static const char *const ACTIVATION_VARIANTS[] = {"ReLU(inplace=True)", "LeakyReLU(0.2)", "GELU(approximate='tanh')"};

/* Any activation of the layer table (layers.def), called with its defaults, or a variant. */
static void gen_activation(Gen *g)
{
    enum { NVARIANTS = sizeof ACTIVATION_VARIANTS / sizeof *ACTIVATION_VARIANTS };
    OpKind acts[OP_COUNT];
    int n = 0;
    for (int op = 0; op < OP_INPUT; op++)
        if (op_is_activation((OpKind)op) && op_is_lowered((OpKind)op)) acts[n++] = (OpKind)op;
    if (percent(g, 20)) {
        emit_layer(g, ACTIVATION_VARIANTS[below(g, NVARIANTS)]);
        return;
    }
    char call[64];
    snprintf(call, sizeof call, "%s()", op_name(acts[below(g, (uint64_t)n)]));
    emit_layer(g, call);
}

/* ---- [N, C, H, W] ---- */

static int64_t pick_groups(Gen *g, int64_t c)
{
    int r = (int)below(g, 100);
    if (r < 60 || c == 1) return 1;
    if (r < 78) return c; /* depthwise */
    int64_t divisors[MAX_CHANNELS], n = 0;
    for (int64_t d = 2; d < c; d++)
        if (c % d == 0) divisors[n++] = d;
    return n ? divisors[below(g, (uint64_t)n)] : c;
}

static bool gen_conv2d(Gen *g)
{
    int64_t c = g->dims[1], h = g->dims[2], w = g->dims[3];
    bool wide = c >= 16 && percent(g, 30); /* a 3x3 stride-1 layer that Winograd may take */
    int64_t groups = wide ? 1 : pick_groups(g, c);
    int64_t out = wide ? between(g, 16, MAX_CHANNELS) : groups * between(g, 1, groups == c && c > 1 ? 2 : (MAX_CHANNELS / 2) / groups + 1);
    if (groups > 1 && out % groups) out = groups * (out / groups + 1);
    static const int64_t KERNELS[] = {1, 2, 3, 3, 3, 5, 7};
    int64_t k[2], stride[2] = {1, 1}, dil[2] = {1, 1}, pad[2] = {0, 0};
    k[0] = wide ? 3 : KERNELS[below(g, 7)];
    k[1] = percent(g, 20) ? KERNELS[below(g, 7)] : k[0];
    if (!wide && percent(g, 30)) stride[0] = stride[1] = between(g, 2, 3);
    if (!wide && percent(g, 10)) stride[1] = between(g, 1, 2);
    if (!wide && percent(g, 15)) dil[0] = dil[1] = 2;
    const char *mode = "zeros";
    int form = (int)below(g, 100); /* padding: int, pair, 'same', 'valid' */
    bool unit_stride = stride[0] == 1 && stride[1] == 1;
    char padtext[32];
    if (form < 12 && unit_stride) {
        snprintf(padtext, sizeof padtext, "'same'");
        for (int i = 0; i < 2; i++) pad[i] = -1; /* marks 'same' */
    } else if (form < 20) {
        snprintf(padtext, sizeof padtext, "'valid'");
    } else {
        for (int i = 0; i < 2; i++) pad[i] = between(g, 0, (dil[i] * (k[i] - 1) + 1) / 2 + (percent(g, 20) ? 1 : 0));
        if (wide) pad[0] = pad[1] = 1;
        pair_text(g, padtext, sizeof padtext, pad);
        static const char *const MODES[] = {"reflect", "replicate", "circular"};
        if (percent(g, 25)) mode = MODES[below(g, 3)];
        /* reflect needs the padding below the input size; circular at most the input size */
        if (!strcmp(mode, "reflect") && (pad[0] >= h || pad[1] >= w)) mode = "zeros";
        if (!strcmp(mode, "circular") && (pad[0] > h || pad[1] > w)) mode = "zeros";
    }
    int64_t oh = pad[0] < 0 ? h : pooled_size(h, k[0], stride[0], pad[0], dil[0], false);
    int64_t ow = pad[1] < 0 ? w : pooled_size(w, k[1], stride[1], pad[1], dil[1], false);
    if (oh < 1 || ow < 1 || out * oh * ow > MAX_SAMPLE_ELEMENTS) return false;

    char call[256], ktext[32], stext[32], dtext[32];
    pair_text(g, ktext, sizeof ktext, k);
    pair_text(g, stext, sizeof stext, stride);
    pair_text(g, dtext, sizeof dtext, dil);
    int n = snprintf(call, sizeof call, "Conv2d(%lld, %lld, %s", (long long)c, (long long)out, ktext);
    if (!unit_stride || percent(g, 10)) n += snprintf(call + n, sizeof call - (size_t)n, ", stride=%s", stext);
    if (strcmp(padtext, "0") || percent(g, 10)) n += snprintf(call + n, sizeof call - (size_t)n, ", padding=%s", padtext);
    if (dil[0] > 1 || dil[1] > 1) n += snprintf(call + n, sizeof call - (size_t)n, ", dilation=%s", dtext);
    if (groups > 1) n += snprintf(call + n, sizeof call - (size_t)n, ", groups=%lld", (long long)groups);
    bool bias = percent(g, 50);
    if (!bias) n += snprintf(call + n, sizeof call - (size_t)n, ", bias=False");
    if (strcmp(mode, "zeros")) n += snprintf(call + n, sizeof call - (size_t)n, ", padding_mode='%s'", mode);
    snprintf(call + n, sizeof call - (size_t)n, ")");
    g->dims[1] = out, g->dims[2] = oh, g->dims[3] = ow;
    emit_layer(g, call);
    return true;
}

/* BatchNorm1d/2d over dims[1]; without running statistics it needs more than one value per channel. */
static void gen_batchnorm(Gen *g, const char *layer)
{
    int64_t per_channel = g->run_batch * (g->rank == 4 ? g->dims[2] * g->dims[3] : g->rank == 3 ? g->dims[2] : 1);
    char call[160];
    int n = snprintf(call, sizeof call, "%s(%lld", layer, (long long)g->dims[1]);
    if (percent(g, 15)) n += snprintf(call + n, sizeof call - (size_t)n, ", eps=0.001");
    if (percent(g, 15)) n += snprintf(call + n, sizeof call - (size_t)n, ", affine=False");
    if (per_channel > 1 && percent(g, 15)) n += snprintf(call + n, sizeof call - (size_t)n, ", track_running_stats=False");
    snprintf(call + n, sizeof call - (size_t)n, ")");
    emit_layer(g, call);
}

static bool gen_pool2d(Gen *g, bool max)
{
    int64_t h = g->dims[2], w = g->dims[3];
    int64_t k[2], stride[2], pad[2], dil[2] = {1, 1};
    k[0] = between(g, 1, 3);
    k[1] = percent(g, 20) ? between(g, 1, 3) : k[0];
    bool default_stride = percent(g, 50);
    stride[0] = default_stride ? k[0] : between(g, 1, 3);
    stride[1] = default_stride ? k[1] : percent(g, 80) ? stride[0] : between(g, 1, 3);
    if (max && percent(g, 15)) dil[0] = dil[1] = 2;
    /* padding at most half the kernel (not the dilated one: PyTorch's pool_2d_shape_check) */
    for (int i = 0; i < 2; i++) pad[i] = percent(g, 30) ? between(g, 0, k[i] / 2) : 0;
    bool ceil_mode = percent(g, 30);
    int64_t oh = pooled_size(h, k[0], stride[0], pad[0], dil[0], ceil_mode);
    int64_t ow = pooled_size(w, k[1], stride[1], pad[1], dil[1], ceil_mode);
    if (oh < 1 || ow < 1) return false;
    char call[200], ktext[32], stext[32], ptext[32], dtext[32];
    pair_text(g, ktext, sizeof ktext, k);
    pair_text(g, stext, sizeof stext, stride);
    pair_text(g, ptext, sizeof ptext, pad);
    pair_text(g, dtext, sizeof dtext, dil);
    int n = snprintf(call, sizeof call, "%s(%s", max ? "MaxPool2d" : "AvgPool2d", ktext);
    if (!default_stride) n += snprintf(call + n, sizeof call - (size_t)n, ", stride=%s", stext);
    if (pad[0] || pad[1]) n += snprintf(call + n, sizeof call - (size_t)n, ", padding=%s", ptext);
    if (dil[0] > 1) n += snprintf(call + n, sizeof call - (size_t)n, ", dilation=%s", dtext);
    if (ceil_mode) n += snprintf(call + n, sizeof call - (size_t)n, ", ceil_mode=True");
    if (!max && percent(g, 30)) n += snprintf(call + n, sizeof call - (size_t)n, ", count_include_pad=False");
    if (!max && percent(g, 15)) n += snprintf(call + n, sizeof call - (size_t)n, ", divisor_override=%lld", (long long)between(g, 1, 5));
    snprintf(call + n, sizeof call - (size_t)n, ")");
    g->dims[2] = oh, g->dims[3] = ow;
    emit_layer(g, call);
    return true;
}

static void gen_adaptive_avgpool2d(Gen *g)
{
    int64_t oh = between(g, 1, g->dims[2] + 1), ow = between(g, 1, g->dims[3] + 1);
    char call[80];
    int form = (int)below(g, 3);
    if (form == 0) {
        snprintf(call, sizeof call, "AdaptiveAvgPool2d(%lld)", (long long)oh);
        ow = oh;
    } else if (form == 1) {
        snprintf(call, sizeof call, "AdaptiveAvgPool2d((%lld, %lld))", (long long)oh, (long long)ow);
    } else {
        snprintf(call, sizeof call, "AdaptiveAvgPool2d((None, %lld))", (long long)ow);
        oh = g->dims[2];
    }
    if (g->dims[1] * oh * ow > MAX_SAMPLE_ELEMENTS) return;
    g->dims[2] = oh, g->dims[3] = ow;
    emit_layer(g, call);
}

/* LayerNorm over the last 1, 2 or 3 dims (at most rank - 1). */
static void gen_layernorm(Gen *g)
{
    int last = (int)between(g, 1, g->rank - 1 < 3 ? g->rank - 1 : 3);
    char call[160];
    int n = snprintf(call, sizeof call, "LayerNorm(");
    int form = (int)below(g, 3); /* 5, (5, 6) or [5, 6] */
    if (last == 1 && form == 0) {
        n += snprintf(call + n, sizeof call - (size_t)n, "%lld", (long long)g->dims[g->rank - 1]);
    } else {
        bool tuple = form == 1;
        n += snprintf(call + n, sizeof call - (size_t)n, "%s", tuple ? "(" : "[");
        for (int i = g->rank - last; i < g->rank; i++)
            n += snprintf(call + n, sizeof call - (size_t)n, "%s%lld", i > g->rank - last ? ", " : "", (long long)g->dims[i]);
        n += snprintf(call + n, sizeof call - (size_t)n, "%s", tuple ? (last == 1 ? ",)" : ")") : "]");
    }
    if (percent(g, 15)) n += snprintf(call + n, sizeof call - (size_t)n, ", elementwise_affine=False");
    else if (percent(g, 15)) n += snprintf(call + n, sizeof call - (size_t)n, ", bias=False");
    snprintf(call + n, sizeof call - (size_t)n, ")");
    emit_layer(g, call);
}

static void gen_softmax(Gen *g)
{
    int dim = (int)between(g, 1, g->rank - 1);
    if (percent(g, 30)) dim -= g->rank; /* the same dim, counted from the end */
    char call[48];
    snprintf(call, sizeof call, "%s(dim=%d)", percent(g, 50) ? "Softmax" : "LogSoftmax", dim);
    emit_layer(g, call);
}

static void gen_flatten(Gen *g)
{
    if (g->rank == 4 && percent(g, 30)) { /* Flatten(2): [N, C, H*W] */
        g->dims[2] *= g->dims[3];
        g->rank = 3;
        emit_layer(g, "Flatten(2)");
        return;
    }
    g->dims[1] = sample_elements(g);
    g->rank = 2;
    emit_layer(g, percent(g, 20) ? "Flatten(start_dim=1, end_dim=-1)" : "Flatten()");
}

/* Linear (or LazyLinear) on the last dimension. */
static bool gen_linear(Gen *g)
{
    int64_t in = g->dims[g->rank - 1];
    if (in > MAX_FEATURES) return false;
    int64_t out = percent(g, 20) ? between(g, 1, 4) : between(g, 5, 80);
    if (sample_elements(g) / in * out > MAX_SAMPLE_ELEMENTS) return false;
    bool bias = percent(g, 60);
    char call[96];
    if (percent(g, 20)) snprintf(call, sizeof call, "LazyLinear(%lld%s)", (long long)out, bias ? "" : ", bias=False");
    else snprintf(call, sizeof call, "Linear(%lld, %lld%s)", (long long)in, (long long)out, bias ? "" : ", bias=False");
    g->dims[g->rank - 1] = out;
    emit_layer(g, call);
    return true;
}

static void gen_shape_preserving(Gen *g)
{
    int r = (int)below(g, 100);
    if (r < 55) gen_activation(g);
    else if (r < 70) gen_layernorm(g);
    else if (r < 80) gen_softmax(g);
    else if (r < 88) emit_layer(g, percent(g, 50) ? "Dropout()" : "Dropout(0.25)");
    else if (r < 94 && g->rank == 4) emit_layer(g, "Dropout2d()");
    else emit_layer(g, percent(g, 50) ? "Identity()" : "Identity(54, unused_argument=0.1)");
}

static void gen_step_4d(Gen *g)
{
    int r = (int)below(g, 100);
    if (r < 30) {
        if (!gen_conv2d(g)) return;
        /* the motifs the passes rewrite: Conv2d + BatchNorm2d (+ activation), Conv2d + activation */
        if (percent(g, 50)) gen_batchnorm(g, "BatchNorm2d");
        if (percent(g, 50)) gen_activation(g);
    } else if (r < 40) gen_pool2d(g, true);
    else if (r < 47) gen_pool2d(g, false);
    else if (r < 51) gen_adaptive_avgpool2d(g);
    else if (r < 60) gen_batchnorm(g, "BatchNorm2d");
    else if (r < 72) gen_flatten(g);
    else gen_shape_preserving(g);
}

/* RNN, LSTM or GRU on [d0, d1, F]: batch_first says which of d0 and d1 is time (both are valid models). */
static bool gen_recurrent(Gen *g)
{
    static const char *const KINDS[] = {"RNN", "LSTM", "GRU"};
    int kind = (int)below(g, 3);
    int64_t in = g->dims[2], hidden = percent(g, 30) ? between(g, 17, 40) : between(g, 1, 16);
    int64_t layers = percent(g, 25) ? 2 : 1, proj = 0;
    bool bidir = percent(g, 30);
    if (kind == 1 && hidden > 1 && percent(g, 25)) proj = between(g, 1, hidden - 1);
    int64_t out = (bidir ? 2 : 1) * (proj ? proj : hidden);
    if (g->dims[1] * out > MAX_SAMPLE_ELEMENTS || in > MAX_FEATURES) return false;
    char call[200];
    int n = snprintf(call, sizeof call, "%s(%lld, %lld", KINDS[kind], (long long)in, (long long)hidden);
    if (layers > 1) n += snprintf(call + n, sizeof call - (size_t)n, ", num_layers=%lld", (long long)layers);
    if (kind == 0 && percent(g, 40)) n += snprintf(call + n, sizeof call - (size_t)n, ", nonlinearity='relu'");
    if (percent(g, 20)) n += snprintf(call + n, sizeof call - (size_t)n, ", bias=False");
    if (percent(g, 50)) n += snprintf(call + n, sizeof call - (size_t)n, ", batch_first=True");
    if (bidir) n += snprintf(call + n, sizeof call - (size_t)n, ", bidirectional=True");
    if (proj) n += snprintf(call + n, sizeof call - (size_t)n, ", proj_size=%lld", (long long)proj);
    snprintf(call + n, sizeof call - (size_t)n, ")");
    g->dims[2] = out;
    emit_layer(g, call);
    return true;
}

/* TransformerEncoderLayer on [d0, d1, d_model], nhead a divisor of d_model. */
static bool gen_transformer(Gen *g)
{
    int64_t d = g->dims[2], heads[16], nheads = 0;
    if (d > 96) return false;
    for (int64_t h = 1; h <= d && nheads < 16; h++)
        if (d % h == 0) heads[nheads++] = h;
    int64_t ff = between(g, 1, 96);
    char call[200];
    int n = snprintf(call, sizeof call, "TransformerEncoderLayer(%lld, %lld, dim_feedforward=%lld", (long long)d,
                     (long long)heads[below(g, (uint64_t)nheads)], (long long)ff);
    if (percent(g, 40)) n += snprintf(call + n, sizeof call - (size_t)n, ", activation='gelu'");
    if (percent(g, 50)) n += snprintf(call + n, sizeof call - (size_t)n, ", batch_first=True");
    if (percent(g, 40)) n += snprintf(call + n, sizeof call - (size_t)n, ", norm_first=True");
    if (percent(g, 15)) n += snprintf(call + n, sizeof call - (size_t)n, ", layer_norm_eps=1e-6");
    snprintf(call + n, sizeof call - (size_t)n, ")");
    emit_layer(g, call);
    return true;
}

/* Select or Mean over dim 1 or 2 of [N, d1, d2] (a sequence's time steps or its features). */
static void gen_reduce_dim(Gen *g)
{
    int dim = (int)between(g, 1, 2);
    char call[64];
    if (percent(g, 50)) {
        int64_t size = g->dims[dim], index = between(g, -size, size - 1);
        snprintf(call, sizeof call, "Select(dim=%d, index=%lld)", percent(g, 30) ? dim - 3 : dim, (long long)index);
    } else if (percent(g, 30)) {
        snprintf(call, sizeof call, "Mean(%d, keepdim=True)", dim);
        g->dims[dim] = 1;
        emit_layer(g, call);
        return;
    } else {
        snprintf(call, sizeof call, "Mean(dim=%d)", dim);
    }
    if (dim == 1) g->dims[1] = g->dims[2];
    g->rank = 2;
    emit_layer(g, call);
}

static void gen_step_dense(Gen *g)
{
    int r = (int)below(g, 100);
    if (g->rank == 3 && r < 32) {
        if (r < 15) gen_recurrent(g);
        else if (r < 25) gen_transformer(g);
        else gen_reduce_dim(g);
    } else if (r < 35) {
        if (!gen_linear(g)) return;
        if (percent(g, 30)) gen_batchnorm(g, "BatchNorm1d");
        if (percent(g, 40)) gen_activation(g);
    } else if (r < 50) gen_batchnorm(g, "BatchNorm1d");
    else if (r < 55 && g->rank == 3) gen_flatten(g);
    else gen_shape_preserving(g);
}

/* Token ids [N, L] into Embedding ([N, L, E]) or EmbeddingBag ([N, E]). */
static void gen_token_input(Gen *g)
{
    int64_t len = between(g, 1, 12), vocab = between(g, 1, 60), dim = between(g, 1, 40);
    emit(g, "    input x: i64[%s, %lld]\n", g->batch, (long long)len);
    char call[160], extra[64] = "";
    if (percent(g, 25)) snprintf(extra, sizeof extra, ", padding_idx=%lld", (long long)between(g, -vocab, vocab - 1));
    else if (percent(g, 15)) snprintf(extra, sizeof extra, ", max_norm=%s", percent(g, 50) ? "1.0" : "0.5, norm_type=1.0");
    if (percent(g, 35)) {
        static const char *const MODES[] = {"sum", "mean", "max"};
        snprintf(call, sizeof call, "EmbeddingBag(%lld, %lld, mode='%s'%s)", (long long)vocab, (long long)dim,
                 MODES[below(g, 3)], extra);
        g->rank = 2;
        g->dims[1] = dim;
    } else {
        snprintf(call, sizeof call, "Embedding(%lld, %lld%s)", (long long)vocab, (long long)dim, extra);
        g->rank = 3;
        g->dims[1] = len;
        g->dims[2] = dim;
    }
    emit_layer(g, call);
}

static void gen_input(Gen *g)
{
    int r = (int)below(g, 100);
    if (r < 55) { /* a named batch, run with 1 to 3 samples */
        g->batch = "N";
        g->run_batch = between(g, 1, 3);
    } else {
        g->run_batch = r < 80 ? 1 : between(g, 2, 3);
        g->batch = g->run_batch == 1 ? "1" : g->run_batch == 2 ? "2" : "3";
    }
    emit(g, "# run-batch: %lld\n", (long long)g->run_batch);
    emit(g, "model Random {\n");
    if (percent(g, 12)) {
        gen_token_input(g);
    } else if (percent(g, 70)) {
        g->rank = 4;
        g->dims[1] = percent(g, 20) ? between(g, 16, 32) : between(g, 1, 8);
        bool wide_rows = percent(g, 20); /* rows of more than one AVX-512 vector, with tails */
        g->dims[2] = wide_rows ? between(g, 1, 8) : between(g, 1, 14);
        g->dims[3] = wide_rows ? between(g, 15, 40) : percent(g, 70) ? g->dims[2] : between(g, 1, 14);
        if (sample_elements(g) > MAX_SAMPLE_ELEMENTS) g->dims[1] = 4;
        emit(g, "    input x: f32[%s, %lld, %lld, %lld]\n", g->batch, (long long)g->dims[1], (long long)g->dims[2],
             (long long)g->dims[3]);
    } else if (percent(g, 50)) {
        g->rank = 2;
        g->dims[1] = between(g, 1, 64);
        emit(g, "    input x: f32[%s, %lld]\n", g->batch, (long long)g->dims[1]);
    } else {
        g->rank = 3;
        g->dims[1] = between(g, 1, 12);
        g->dims[2] = between(g, 1, 24);
        emit(g, "    input x: f32[%s, %lld, %lld]\n", g->batch, (long long)g->dims[1], (long long)g->dims[2]);
    }
}

int generate_model(uint64_t seed, char *text)
{
    Gen g = {.rng = seed * 0x2545f4914f6cdd1dull + 1, .text = text};
    splitmix64(&g.rng);
    gen_input(&g);
    int target = (int)between(&g, 1, MAX_LAYERS);
    for (int attempts = 0; g.layers < target && attempts < 40; attempts++) {
        if (g.rank == 4) gen_step_4d(&g);
        else gen_step_dense(&g);
    }
    emit(&g, "}\n");
    return g.layers;
}
