/* model_generator.c - random valid models (see model_generator.h).
 *
 * The shapes are computed here from PyTorch's formulas, independently of
 * layerc's shape rules, and written after each layer as "# -> [N, C, H, W]"
 * so that fuzz_models.c can hold layerc's inferred shapes against them.  The
 * first lines say how the model is run: "# run-batch: B".
 *
 * A graph model is written in four parts, assembled at the end: the blocks
 * it uses, the model's input and submodule declarations, and its forward
 * section.  Its walk keeps a current expression (a Chain: "relu(bn3(conv2(t1)))")
 * that each layer wraps, as a submodule call or a functional one, and that
 * is named ("t4 = ...") now and then; named values are kept (Val) so that
 * later steps read them again: skips, branches, cat and Bilinear operands.
 * The shape comments follow fuzz_models.c's rule that every node on a line
 * has the shape written on it: a submodule's nodes are on its declaration
 * (called once, or twice with one input shape), a functional's or an
 * operator's on the forward line, and nothing inside a block is annotated
 * (its instances have different shapes).
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

/* The share of graph models, their size in nodes, and the generator's own limits. */
enum { MAX_VALUES = 64, EXPR_MAX = 1024, FLUSH_LENGTH = 72 };

typedef struct Buf {
    char text[GENERATED_MODEL_MAX];
    size_t len;
} Buf;

/* The pending expression of a graph model's walk. */
typedef struct Chain {
    char expr[EXPR_MAX];
    int rank;
    int64_t dims[4];
    int src;         /* the value whose name expr is, or -1 once an operation wraps it */
    bool fn, mixed;  /* functional or operator nodes on the pending line; whether their shapes differ */
    int fn_rank;     /* the shape of the last of them */
    int64_t fn_dims[4];
} Chain;

/* A named value of forward. */
typedef struct Val {
    char name[16];
    int rank;
    int64_t dims[4];
    int uses;
} Val;

typedef struct Gen {
    uint64_t rng;
    Buf head, blocks, body, fwd, seq; /* "# run-batch", block definitions, the model's body, forward, an open Sequential */
    int rank;           /* of the current value: 4 [N, C, H, W], 3 [N, C, L] or 2 [N, F] */
    int64_t dims[4];    /* dims[0] the batch: 0 for the run-time batch N, else its fixed size */
    int64_t run_batch;  /* what N is at run time */
    bool tokens;        /* the input is token ids [N, L] */
    int layers;
    int convs, conv_budget; /* Conv2d kernels so far and at most (they cost most of a model's compile time) */
    /* graph models */
    bool graph;
    Chain *cur;         /* the chain whose shape rank and dims are */
    Chain main;
    Val vals[MAX_VALUES];
    int nvals, nsub, ntensors;
    int graph_steps;    /* at most */
    int joins;          /* operations that read two values or more, or a block, or a module twice */
    unsigned blocks_defined;
    bool in_seq;        /* layers go into g->seq, the children of a Sequential */
    int seq_children;
} Gen;

static uint64_t below(Gen *g, uint64_t n) { return n ? splitmix64(&g->rng) % n : 0; }
static bool percent(Gen *g, int p) { return (int)below(g, 100) < p; }
static int64_t between(Gen *g, int64_t lo, int64_t hi) { return lo + (int64_t)below(g, (uint64_t)(hi - lo + 1)); }

static void emit(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(Buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->text + b->len, GENERATED_MODEL_MAX - b->len, fmt, ap);
    va_end(ap);
    if (n > 0) b->len += (size_t)n;
    if (b->len >= GENERATED_MODEL_MAX) b->len = GENERATED_MODEL_MAX - 1;
}

static int64_t sample_elements(const Gen *g)
{
    int64_t n = 1;
    for (int i = 1; i < g->rank; i++) n *= g->dims[i];
    return n;
}

/* The batch the current value has when the model runs. */
static int64_t batch_now(const Gen *g) { return g->dims[0] ? g->dims[0] : g->run_batch; }

static void shape_text(int rank, const int64_t *dims, char *buf, size_t size)
{
    int n = snprintf(buf, size, "[");
    for (int i = 0; i < rank && n < (int)size; i++)
        n += i == 0 && dims[0] == 0 ? snprintf(buf + n, size - (size_t)n, "N")
                                    : snprintf(buf + n, size - (size_t)n, "%s%lld", i ? ", " : "", (long long)dims[i]);
    if (n < (int)size) snprintf(buf + n, size - (size_t)n, "]");
}

static bool same_shape(int ra, const int64_t *a, int rb, const int64_t *b)
{
    if (ra != rb) return false;
    for (int i = 0; i < ra; i++)
        if (a[i] != b[i]) return false;
    return true;
}

static void graph_layer(Gen *g, const char *call);

/* One layer line: "    [name = ]call  # -> [shape]", the shape being g's after the layer (in a graph model, see graph_layer). */
static void emit_layer(Gen *g, const char *call)
{
    g->layers++;
    if (g->graph) {
        graph_layer(g, call);
        return;
    }
    char shape[96];
    shape_text(g->rank, g->dims, shape, sizeof shape);
    if (percent(g, 60)) emit(&g->body, "    l%d = %s", g->layers, call);
    else emit(&g->body, "    %s", call);
    emit(&g->body, "  # -> %s\n", shape);
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
        const char *variant = ACTIVATION_VARIANTS[below(g, NVARIANTS)];
        /* PyTorch's inplace=True overwrites the input, which another reader of a graph model's value would see */
        emit_layer(g, g->graph && strstr(variant, "inplace") ? "ReLU()" : variant);
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
    if (g->convs >= g->conv_budget) return false;
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
    g->convs++;
    emit_layer(g, call);
    return true;
}

/* BatchNorm1d/2d over dims[1]; without running statistics it needs more than one value per channel. */
static void gen_batchnorm(Gen *g, const char *layer)
{
    int64_t per_channel = batch_now(g) * (g->rank == 4 ? g->dims[2] * g->dims[3] : g->rank == 3 ? g->dims[2] : 1);
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
    if (g->rank == 3 && r < 25 && g->graph && percent(g, 75)) return; /* costly to compile, and the stack models have them */
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

/* Token ids [N, L] into Embedding ([N, L, E]) or EmbeddingBag ([N, E]); g holds [N, L]. */
static void gen_embedding(Gen *g)
{
    int64_t len = g->dims[1], vocab = between(g, 1, 60), dim = between(g, 1, 40);
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
    g->tokens = false;
    emit_layer(g, call);
}

/* The model's input line, and g's shape set to it. */
static void gen_input(Gen *g)
{
    int r = (int)below(g, 100);
    if (r < 55) { /* a named batch, run with 1 to 3 samples */
        g->dims[0] = 0;
        g->run_batch = between(g, 1, 3);
    } else {
        g->run_batch = r < 80 ? 1 : between(g, 2, 3);
        g->dims[0] = g->run_batch;
    }
    emit(&g->head, "# run-batch: %lld\n", (long long)g->run_batch);
    if (percent(g, 12)) {
        g->tokens = true;
        g->rank = 2;
        g->dims[1] = between(g, 1, 12);
    } else if (percent(g, 70)) {
        g->rank = 4;
        g->dims[1] = percent(g, 20) ? between(g, 16, 32) : between(g, 1, 8);
        bool wide_rows = percent(g, 20); /* rows of more than one AVX-512 vector, with tails */
        g->dims[2] = wide_rows ? between(g, 1, 8) : between(g, 1, 14);
        g->dims[3] = wide_rows ? between(g, 15, 40) : percent(g, 70) ? g->dims[2] : between(g, 1, 14);
        if (sample_elements(g) > MAX_SAMPLE_ELEMENTS) g->dims[1] = 4;
    } else if (percent(g, 50)) {
        g->rank = 2;
        g->dims[1] = between(g, 1, 64);
    } else {
        g->rank = 3;
        g->dims[1] = between(g, 1, 12);
        g->dims[2] = between(g, 1, 24);
    }
    char shape[96];
    shape_text(g->rank, g->dims, shape, sizeof shape);
    emit(&g->body, "    input x: %s%s\n", g->tokens ? "i64" : "f32", shape);
}

/* ==== graph models ==== */

/* PyTorch's broadcasting of a and b into o, with layerc's rule that the run-time batch stays
 * dimension 0 and meets only itself or 1 (dims[0] == 0 is the run-time batch). */
static bool broadcast(int ra, const int64_t *a, int rb, const int64_t *b, int *ro, int64_t *o)
{
    int r = ra > rb ? ra : rb;
    for (int i = 0; i < r; i++) {
        int ja = i - (r - ra), jb = i - (r - rb);
        bool ba = ja == 0 && a[0] == 0, bb = jb == 0 && b[0] == 0;
        int64_t da = ja < 0 ? 1 : a[ja], db = jb < 0 ? 1 : b[jb];
        if (ba || bb) {
            if (i != 0 || (!(ba && bb) && (ba ? db : da) != 1)) return false;
            o[i] = 0;
            continue;
        }
        if (da != db && da != 1 && db != 1) return false;
        o[i] = da == 1 ? db : da;
    }
    *ro = r;
    return true;
}

static void save_shape(Gen *g)
{
    g->cur->rank = g->rank;
    memcpy(g->cur->dims, g->dims, sizeof g->dims);
}

/* Makes c the current chain (g's shape is its shape); returns the previous one. */
static Chain *enter(Gen *g, Chain *c)
{
    Chain *prev = g->cur;
    save_shape(g);
    g->cur = c;
    g->rank = c->rank;
    memcpy(g->dims, c->dims, sizeof g->dims);
    return prev;
}

/* c starts at value v (c is not the current chain). */
static void chain_from(Gen *g, Chain *c, int v)
{
    const Val *val = &g->vals[v];
    snprintf(c->expr, sizeof c->expr, "%s", val->name);
    c->rank = val->rank;
    memcpy(c->dims, val->dims, sizeof c->dims);
    c->src = v;
    c->fn = c->mixed = false;
}

/* The current chain restarts at value v. */
static void restart_at(Gen *g, int v)
{
    chain_from(g, g->cur, v);
    g->rank = g->cur->rank;
    memcpy(g->dims, g->cur->dims, sizeof g->dims);
}

/* c's expression is about to be read by an operation. */
static void consume(Gen *g, Chain *c)
{
    if (c->src >= 0) g->vals[c->src].uses++;
    c->src = -1;
}

/* A functional or operator node of this shape joins c's pending line. */
static void note_fn(Chain *c, int rank, const int64_t *dims)
{
    if (c->fn && !same_shape(c->fn_rank, c->fn_dims, rank, dims)) c->mixed = true;
    c->fn = true;
    c->fn_rank = rank;
    memcpy(c->fn_dims, dims, sizeof c->fn_dims);
}

/* The nodes on c's line all have c's shape (so the line may carry it as "# -> [...]"). */
static bool line_shape_holds(const Gen *g, const Chain *c)
{
    return !c->mixed && (!c->fn || same_shape(c->fn_rank, c->fn_dims, g->rank, g->dims));
}

static int add_value(Gen *g, const char *name)
{
    if (g->nvals == MAX_VALUES) g->nvals--; /* the last one is forgotten (it stays valid text) */
    Val *v = &g->vals[g->nvals];
    snprintf(v->name, sizeof v->name, "%s", name);
    v->rank = g->rank;
    memcpy(v->dims, g->dims, sizeof v->dims);
    v->uses = 0;
    return g->nvals++;
}

/* The current chain as a named value ("t4 = ..."): its index. */
static int flush(Gen *g)
{
    Chain *c = g->cur;
    if (c->src >= 0) return c->src;
    char name[16], shape[96];
    snprintf(name, sizeof name, "t%d", ++g->ntensors);
    shape_text(g->rank, g->dims, shape, sizeof shape);
    if (line_shape_holds(g, c)) emit(&g->fwd, "        %s = %s  # -> %s\n", name, c->expr, shape);
    else emit(&g->fwd, "        %s = %s\n", name, c->expr);
    int v = add_value(g, name);
    restart_at(g, v);
    return v;
}

static int flush_chain(Gen *g, Chain *c)
{
    Chain *prev = enter(g, c);
    int v = flush(g);
    enter(g, prev);
    return v;
}

/* torch.nn layers that forward may call as functions instead (F.relu(x), torch.flatten(x, 1), ...). */
static const struct {
    const char *layer, *function;
} FUNCTIONALS[] = {
    {"ReLU", "relu"},         {"ReLU6", "relu6"},       {"LeakyReLU", "leaky_relu"},
    {"Sigmoid", "sigmoid"},   {"Tanh", "tanh"},         {"GELU", "gelu"},
    {"SiLU", "silu"},         {"Hardswish", "hardswish"}, {"Softmax", "softmax"},
    {"LogSoftmax", "log_softmax"}, {"Flatten", "flatten"}, {"AdaptiveAvgPool2d", "adaptive_avg_pool2d"},
    {"MaxPool2d", "max_pool2d"}, {"AvgPool2d", "avg_pool2d"}, {"Select", "select"},
    {"Mean", "mean"},
};

static const char *functional_of(const char *layer)
{
    for (size_t i = 0; i < sizeof FUNCTIONALS / sizeof *FUNCTIONALS; i++)
        if (!strcmp(FUNCTIONALS[i].layer, layer)) return FUNCTIONALS[i].function;
    return NULL;
}

/* "conv7", "bn8": a fresh submodule name from the layer's kind. */
static void module_name(Gen *g, const char *layer, char *name, size_t size)
{
    static const struct {
        const char *prefix, *name;
    } NAMES[] = {{"Conv", "conv"}, {"BatchNorm", "bn"}, {"Linear", "fc"}, {"LazyLinear", "fc"}, {"MaxPool", "pool"},
                 {"AvgPool", "pool"}, {"Adaptive", "pool"}, {"LayerNorm", "norm"}, {"Dropout", "drop"},
                 {"Embedding", "embed"}, {"RNN", "rnn"}, {"LSTM", "lstm"}, {"GRU", "gru"},
                 {"Transformer", "encoder"}, {"Bilinear", "bil"}, {"Sequential", "seq"}, {"Flatten", "flat"},
                 {"Identity", "ident"}, {"Softmax", "softmax"}, {"LogSoftmax", "softmax"}, {"Select", "pick"},
                 {"Mean", "reduce"}};
    const char *base = "act";
    for (size_t i = 0; i < sizeof NAMES / sizeof *NAMES; i++)
        if (!strncmp(layer, NAMES[i].prefix, strlen(NAMES[i].prefix))) base = NAMES[i].name;
    snprintf(name, size, "%s%d", base, ++g->nsub);
}

static void set_expr(Chain *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_expr(Chain *c, const char *fmt, ...)
{
    char e[EXPR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e, sizeof e, fmt, ap);
    va_end(ap);
    memcpy(c->expr, e, sizeof e);
}

/* The current chain wraps its expression: text for "name(expr)" or "fn(expr, args)". */
static void wrap(Gen *g, const char *before, const char *after)
{
    Chain *c = g->cur;
    consume(g, c);
    set_expr(c, "%s%s%s", before, c->expr, after);
}

static void maybe_flush(Gen *g)
{
    if (strlen(g->cur->expr) > FLUSH_LENGTH || percent(g, 35)) flush(g);
}

/* A layer of a graph model, whose output shape g now has: a child of the open Sequential, a
 * submodule declared in the model's body and called, or a function called in forward. */
static void graph_layer(Gen *g, const char *call)
{
    char shape[96], layer[40], name[24];
    shape_text(g->rank, g->dims, shape, sizeof shape);
    const char *paren = strchr(call, '(');
    snprintf(layer, sizeof layer, "%.*s", (int)(paren - call), call);
    if (g->in_seq) {
        emit(&g->seq, "        %s,  # -> %s\n", call, shape);
        g->seq_children++;
        return;
    }
    const char *fn = functional_of(layer);
    if (fn && percent(g, 45)) {
        char after[200];
        const char *args = paren + 1;
        int alen = (int)strlen(args) - 1;
        if (!strcmp(layer, "Flatten") && alen == 0) snprintf(after, sizeof after, ", 1)"); /* torch.flatten's start_dim is 0 */
        else snprintf(after, sizeof after, "%s%.*s)", alen ? ", " : "", alen, args);
        char before[48];
        snprintf(before, sizeof before, "%s(", fn);
        wrap(g, before, after);
        note_fn(g->cur, g->rank, g->dims);
    } else {
        module_name(g, layer, name, sizeof name);
        emit(&g->body, "    %s = %s  # -> %s\n", name, call, shape);
        char before[32];
        snprintf(before, sizeof before, "%s(", name);
        wrap(g, before, ")");
    }
    maybe_flush(g);
}

/* The layers drawn until seq_close are one Sequential(...) of them. */
static void seq_open(Gen *g)
{
    g->in_seq = true;
    g->seq.len = 0;
    g->seq.text[0] = '\0';
    g->seq_children = 0;
}

static void seq_close(Gen *g)
{
    g->in_seq = false;
    if (!g->seq_children) return;
    char name[24], before[32];
    module_name(g, "Sequential", name, sizeof name);
    emit(&g->body, "    %s = Sequential(\n%s    )\n", name, g->seq.text);
    snprintf(before, sizeof before, "%s(", name);
    wrap(g, before, ")");
    maybe_flush(g);
}

/* ---- layers with chosen arguments ---- */

/* Conv2d to cout channels, k x k, padding an int or -1 for 'same' (stride 1 only). */
static bool lay_conv(Gen *g, int64_t cout, int64_t k, int64_t stride, int64_t pad, int64_t groups, bool bias)
{
    int64_t c = g->dims[1], h = g->dims[2], w = g->dims[3];
    int64_t oh = pad < 0 ? h : pooled_size(h, k, stride, pad, 1, false), ow = pad < 0 ? w : pooled_size(w, k, stride, pad, 1, false);
    if (oh < 1 || ow < 1 || cout < 1 || cout * oh * ow > MAX_SAMPLE_ELEMENTS || c % groups || cout % groups) return false;
    if (g->convs >= g->conv_budget) return false;
    g->convs++;
    char call[160];
    int n = snprintf(call, sizeof call, "Conv2d(%lld, %lld, %lld", (long long)c, (long long)cout, (long long)k);
    if (stride != 1) n += snprintf(call + n, sizeof call - (size_t)n, ", stride=%lld", (long long)stride);
    if (pad < 0) n += snprintf(call + n, sizeof call - (size_t)n, ", padding='same'");
    else if (pad) n += snprintf(call + n, sizeof call - (size_t)n, ", padding=%lld", (long long)pad);
    if (groups > 1) n += snprintf(call + n, sizeof call - (size_t)n, ", groups=%lld", (long long)groups);
    if (!bias) n += snprintf(call + n, sizeof call - (size_t)n, ", bias=False");
    snprintf(call + n, sizeof call - (size_t)n, ")");
    g->dims[1] = cout, g->dims[2] = oh, g->dims[3] = ow;
    emit_layer(g, call);
    return true;
}

/* A convolution that keeps H and W: odd k with padding k/2, or 'same' with any k. */
static bool lay_conv_keep(Gen *g, int64_t cout)
{
    /* 5x5 and larger kernels take several times longer to compile: rarely */
    static const int64_t KERNELS[] = {1, 1, 3, 3, 3, 3, 3, 3, 3, 5};
    int64_t k = KERNELS[below(g, 10)], groups = 1;
    if (cout == g->dims[1] && g->dims[1] > 1 && percent(g, 20)) groups = g->dims[1]; /* depthwise */
    if (percent(g, 15)) return lay_conv(g, cout, percent(g, 80) ? 2 : 4, 1, -1, groups, percent(g, 50));
    return lay_conv(g, cout, k, 1, k / 2, groups, percent(g, 50));
}

static void lay_bn(Gen *g) { gen_batchnorm(g, g->rank == 4 ? "BatchNorm2d" : "BatchNorm1d"); }

static bool lay_linear(Gen *g, int64_t out, bool bias)
{
    int64_t in = g->dims[g->rank - 1];
    if (in > MAX_FEATURES || out < 1 || sample_elements(g) / in * out > MAX_SAMPLE_ELEMENTS) return false;
    char call[96];
    snprintf(call, sizeof call, "Linear(%lld, %lld%s)", (long long)in, (long long)out, bias ? "" : ", bias=False");
    g->dims[g->rank - 1] = out;
    emit_layer(g, call);
    return true;
}

static void lay_adaptive(Gen *g, int64_t oh, int64_t ow)
{
    char call[80];
    if (oh == ow && percent(g, 50)) snprintf(call, sizeof call, "AdaptiveAvgPool2d(%lld)", (long long)oh);
    else snprintf(call, sizeof call, "AdaptiveAvgPool2d((%lld, %lld))", (long long)oh, (long long)ow);
    g->dims[2] = oh, g->dims[3] = ow;
    emit_layer(g, call);
}

static void lay_flatten(Gen *g)
{
    g->dims[1] = sample_elements(g);
    g->rank = 2;
    emit_layer(g, "Flatten()");
}

/* Mean over dim, keeping it as 1 (keepdim) or dropping it. */
static void lay_mean(Gen *g, int dim, bool keepdim)
{
    char call[48];
    snprintf(call, sizeof call, keepdim ? "Mean(%d, keepdim=True)" : "Mean(%d)", dim);
    if (keepdim) {
        g->dims[dim] = 1;
    } else {
        for (int i = dim; i + 1 < g->rank; i++) g->dims[i] = g->dims[i + 1];
        g->rank--;
    }
    emit_layer(g, call);
}

/* ---- combining chains ---- */

static void operand_text(const Chain *c, char *buf, size_t size)
{
    bool op = strstr(c->expr, " + ") || strstr(c->expr, " * ");
    snprintf(buf, size, op ? "(%s)" : "%s", c->expr);
}

/* The nodes on b's pending line join the current chain's. */
static void merge_line(Gen *g, const Chain *b)
{
    Chain *a = g->cur;
    a->mixed |= b->mixed;
    if (b->fn) note_fn(a, b->fn_rank, b->fn_dims);
}

/* current = current op b (or b op current), broadcast; false when the shapes do not broadcast. */
static bool combine(Gen *g, Chain *b, char op)
{
    int ro;
    int64_t o[4];
    if (!broadcast(g->rank, g->dims, b->rank, b->dims, &ro, o)) return false;
    int64_t n = 1;
    for (int i = 1; i < ro; i++) n *= o[i];
    if (n > MAX_SAMPLE_ELEMENTS) return false;
    if (strlen(b->expr) + strlen(g->cur->expr) > FLUSH_LENGTH * 2) flush_chain(g, b), flush(g);
    Chain *a = g->cur;
    char ea[EXPR_MAX + 2], eb[EXPR_MAX + 2];
    operand_text(a, ea, sizeof ea);
    operand_text(b, eb, sizeof eb);
    consume(g, a);
    consume(g, b);
    if (percent(g, 50)) set_expr(a, "%s %c %s", ea, op, eb);
    else set_expr(a, "%s %c %s", eb, op, ea);
    merge_line(g, b);
    g->rank = ro;
    memcpy(g->dims, o, sizeof o);
    note_fn(a, ro, o);
    g->layers++;
    g->joins++;
    return true;
}

/* Whether the current value can be brought to shape t by adapt(). */
static bool can_adapt(const Gen *g, int rank, const int64_t *t)
{
    if (t[0] != g->dims[0]) return false;
    if (rank == 4) return g->rank == 4 && (g->dims[1] * t[2] * t[3] <= MAX_SAMPLE_ELEMENTS || t[1] * g->dims[2] * g->dims[3] <= MAX_SAMPLE_ELEMENTS);
    if (rank == 3) return g->rank == 3 && g->dims[1] == t[1] && g->dims[2] <= MAX_FEATURES;
    if (g->rank == 4) return true; /* pooled to 1 x 1 when too large, flattened */
    if (g->rank == 3) return g->dims[2] <= MAX_FEATURES;
    return g->dims[1] <= MAX_FEATURES;
}

/* Layers that take the current value to shape t (see can_adapt): pooling, 1x1 convolutions, Linear. */
static void adapt(Gen *g, int rank, const int64_t *t)
{
    if (rank == 4) {
        bool spatial = g->dims[2] != t[2] || g->dims[3] != t[3];
        bool conv_first = spatial && g->dims[1] * t[2] * t[3] > MAX_SAMPLE_ELEMENTS;
        if (conv_first || (g->dims[1] != t[1] && !spatial)) {
            if (!lay_conv(g, t[1], 1, 1, 0, 1, percent(g, 50))) return;
            if (percent(g, 40)) lay_bn(g);
        }
        if (spatial) {
            if (g->dims[2] == 2 * t[2] && g->dims[3] == 2 * t[3] && percent(g, 50)) {
                g->dims[2] = t[2], g->dims[3] = t[3];
                emit_layer(g, percent(g, 50) ? "MaxPool2d(2)" : "AvgPool2d(2)");
            } else {
                lay_adaptive(g, t[2], t[3]);
            }
        }
        if (g->dims[1] != t[1]) lay_conv_keep(g, t[1]);
        return;
    }
    if (rank == 2 && g->rank == 4 && sample_elements(g) > MAX_FEATURES) lay_adaptive(g, 1, 1);
    if (rank == 2 && g->rank == 3 && sample_elements(g) > MAX_FEATURES) lay_mean(g, 1, false);
    if (rank == 2 && g->rank > 2) lay_flatten(g);
    if (g->dims[rank - 1] != t[rank - 1]) lay_linear(g, t[rank - 1], percent(g, 60));
}

/* Reduces the current value to a shape that broadcasts against the one it has: [N, C, 1, 1], [N, 1, H, W], ... */
static void reduce_for_broadcast(Gen *g)
{
    int r = (int)below(g, 100);
    if (g->rank == 4) {
        if (r < 35) lay_adaptive(g, 1, 1);
        else if (r < 50) lay_mean(g, 1, true);
        else if (r < 60) lay_conv(g, 1, 1, 1, 0, 1, true);
        else if (r < 70) lay_mean(g, 3, true);
        else if (r < 78) lay_mean(g, 2, true);
        else if (r < 86) {
            g->dims[3] = 1;
            emit_layer(g, "AdaptiveAvgPool2d((None, 1))");
        } else {
            lay_adaptive(g, 1, 1);
            lay_conv(g, 1, 1, 1, 0, 1, percent(g, 50));
        }
    } else if (r < 40) {
        lay_mean(g, g->rank == 3 && percent(g, 50) ? 1 : g->rank - 1, true);
    } else if (r < 60 && g->dims[0] == 1 && g->rank == 3) { /* [1, L, F] against [1, F]: a lower rank */
        lay_mean(g, 1, false);
    } else {
        lay_linear(g, 1, percent(g, 60));
    }
}

/* ---- motifs ---- */

/* A layer that keeps [N, C, H, W] and costs little to compile (no convolution). */
static void lay_cheap_keep(Gen *g)
{
    int r = (int)below(g, 100);
    if (r < 30) lay_bn(g);
    else if (r < 60) gen_activation(g);
    else if (r < 80) emit_layer(g, percent(g, 50) ? "MaxPool2d(3, stride=1, padding=1)" : "AvgPool2d(3, 1, 1, count_include_pad=False)");
    else if (r < 90) gen_layernorm(g);
    else emit_layer(g, "Dropout()");
}

/* x + f(x), f a few convolutions (the skip from this value, an older one of its shape, or a
 * projection when f strides or changes the width); sometimes both sides are convolutions.  Past
 * the model's convolution budget f is made of cheaper layers (BatchNorm, activations, pooling). */
static bool motif_residual(Gen *g)
{
    int s = flush(g);
    Chain branch, skip;
    chain_from(g, &branch, s);
    chain_from(g, &skip, s);
    Chain *main = enter(g, &branch);
    int64_t c = g->dims[1];
    int avail = g->conv_budget - g->convs;
    bool strided = avail >= 2 && percent(g, 25);
    int64_t out = strided || (avail >= 2 && percent(g, 20)) ? between(g, 2, MAX_CHANNELS) : c;
    int most = avail - (strided || out != c);
    int n = most <= 0 ? 0 : (int)between(g, 1, most < 2 ? most : 2);
    bool ok = true;
    if (n == 0)
        for (int i = (int)between(g, 1, 2); i > 0; i--) lay_cheap_keep(g);
    for (int i = 0; i < n && ok; i++) {
        int64_t cout = i == n - 1 ? out : between(g, 2, 32);
        if (i == 0 && strided) ok = lay_conv(g, cout, 3, 2, 1, 1, percent(g, 30));
        else ok = lay_conv_keep(g, cout);
        if (ok && percent(g, 60)) lay_bn(g);
        if (ok && (i < n - 1 || percent(g, 20))) gen_activation(g);
    }
    enter(g, &skip);
    if (ok && (strided || out != c || (g->convs < g->conv_budget && percent(g, 25)))) {
        /* the projection of the skip: a strided 1x1 convolution (+ BatchNorm), as torchvision's downsample */
        if (strided) ok = lay_conv(g, out, 1, 2, 0, 1, percent(g, 30));
        else ok = lay_conv_keep(g, out);
        if (ok && percent(g, 50)) lay_bn(g);
    } else if (ok && percent(g, 30)) {
        /* a longer skip: an older value of the branch's shape */
        for (int v = 0; v < s; v++) /* not the branch's own values */
            if (same_shape(g->vals[v].rank, g->vals[v].dims, branch.rank, branch.dims) && percent(g, 50)) {
                restart_at(g, v);
                break;
            }
    }
    enter(g, main);
    if (!ok || !same_shape(skip.rank, skip.dims, branch.rank, branch.dims)) return false;
    *main = branch;
    g->rank = main->rank;
    memcpy(g->dims, main->dims, sizeof g->dims);
    combine(g, &skip, '+');
    if (percent(g, 60)) gen_activation(g);
    return true;
}

/* Fully connected residual: x + fc(act(fc(x))) (+ LayerNorm). */
static bool motif_dense_residual(Gen *g)
{
    int64_t f = g->dims[g->rank - 1];
    if (f > MAX_FEATURES) return false;
    int s = flush(g);
    Chain branch;
    chain_from(g, &branch, s);
    Chain *main = enter(g, &branch);
    bool ok = lay_linear(g, between(g, 1, 64), percent(g, 70));
    if (ok) gen_activation(g);
    ok = ok && lay_linear(g, f, percent(g, 70));
    enter(g, main);
    if (!ok) return false;
    Chain skip = *main;
    *main = branch;
    g->rank = main->rank;
    memcpy(g->dims, main->dims, sizeof g->dims);
    combine(g, &skip, '+');
    if (percent(g, 40)) {
        char call[48];
        snprintf(call, sizeof call, "LayerNorm(%lld)", (long long)f);
        emit_layer(g, call);
    }
    return true;
}

/* x * gate(x), the gate reduced to broadcast ([N, C, 1, 1] as squeeze-and-excitation, [N, 1, H, W], [N, 1], ...). */
static bool motif_gate(Gen *g)
{
    int s = flush(g);
    Chain gate;
    chain_from(g, &gate, s);
    Chain *main = enter(g, &gate);
    if (g->rank == 4 && percent(g, 40)) { /* squeeze-and-excitation */
        int64_t c = g->dims[1];
        lay_adaptive(g, 1, 1);
        lay_conv(g, between(g, 1, c > 1 ? c : 1), 1, 1, 0, 1, true);
        gen_activation(g);
        lay_conv(g, c, 1, 1, 0, 1, true);
    } else {
        reduce_for_broadcast(g);
    }
    if (percent(g, 70)) emit_layer(g, "Sigmoid()");
    enter(g, main);
    return combine(g, &gate, percent(g, 75) ? '*' : '+');
}

/* current op f(v) for an older value v, adapted to the current shape (or reduced to broadcast against it). */
static bool motif_join(Gen *g)
{
    if (g->nvals == 0) return false;
    int v = (int)below(g, (uint64_t)g->nvals);
    Chain other;
    chain_from(g, &other, v);
    int ro;
    int64_t o[4];
    bool direct = broadcast(g->rank, g->dims, other.rank, other.dims, &ro, o) && same_shape(ro, o, g->rank, g->dims);
    if (!direct || percent(g, 40)) {
        int64_t t[4];
        memcpy(t, g->dims, sizeof t);
        int rank = g->rank;
        Chain *main = enter(g, &other);
        bool ok = can_adapt(g, rank, t);
        if (ok) {
            adapt(g, rank, t);
            ok = same_shape(g->rank, g->dims, rank, t);
            if (ok && percent(g, 25)) reduce_for_broadcast(g);
        }
        enter(g, main);
        if (!ok) return false;
    }
    return combine(g, &other, percent(g, 70) ? '+' : '*');
}

/* cat([a, b, ...], dim) of branches from one value (or older values of matching shape). */
static bool motif_cat(Gen *g)
{
    int s = flush(g);
    int rank = g->rank, d;
    int64_t base[4];
    memcpy(base, g->dims, sizeof base);
    if (g->dims[0] && percent(g, 8)) d = 0; /* a fixed batch: cat along the batch dimension */
    else if (rank == 4) d = percent(g, 70) ? 1 : (int)between(g, 2, 3);
    else if (rank == 3) d = percent(g, 60) ? 2 : 1;
    else d = 1;
    bool features = (rank == 4 && d == 1) || (rank < 4 && d == rank - 1);
    int nb = (int)between(g, 2, 4);
    Chain branches[4];
    int64_t total = 0, rest = 1;
    for (int i = 1; i < rank; i++)
        if (i != d) rest *= base[i];
    int made = 0;
    Chain *main = g->cur;
    for (int i = 0; i < nb; i++) {
        Chain *b = &branches[made];
        chain_from(g, b, s);
        enter(g, b);
        int r = (int)below(g, 100);
        bool ok = true;
        if (r < 20) {
            /* the value itself */
        } else if (r < 35) {
            /* an older value that fits */
            for (int v = 0; v < g->nvals; v++) {
                const Val *val = &g->vals[v];
                bool fits = val->rank == rank;
                for (int k = 0; fits && k < rank; k++) fits = k == d || val->dims[k] == base[k];
                if (fits && percent(g, 50)) {
                    restart_at(g, v);
                    break;
                }
            }
        } else if (features && rank == 4) {
            int64_t c = between(g, 1, 24);
            if (r < 55) ok = lay_conv(g, c, 1, 1, 0, 1, percent(g, 50));
            else if (r < 80) ok = lay_conv_keep(g, c);
            else emit_layer(g, percent(g, 50) ? "MaxPool2d(3, stride=1, padding=1)" : "AvgPool2d(3, stride=1, padding=1)");
            if (ok && percent(g, 50)) gen_activation(g);
        } else if (features) {
            ok = lay_linear(g, between(g, 1, 32), percent(g, 60));
            if (ok && percent(g, 50)) gen_activation(g);
        } else if (rank == 4 && d >= 2 && r < 70) {
            int64_t k = between(g, 2, 3);
            if (g->dims[d] >= k) {
                char call[64];
                g->dims[d] /= k;
                snprintf(call, sizeof call, "%s(%s%lld%s)", percent(g, 50) ? "MaxPool2d" : "AvgPool2d", d == 2 ? "(" : "(1, ",
                         (long long)k, d == 2 ? ", 1)" : ")");
                emit_layer(g, call);
            }
        } else if (rank == 4 && r < 85) {
            ok = lay_conv_keep(g, g->dims[1]);
        } else {
            gen_activation(g);
        }
        enter(g, main);
        if (!ok) continue;
        if (d != 0 && (total + b->dims[d]) * rest > MAX_SAMPLE_ELEMENTS) continue; /* per sample */
        total += b->dims[d];
        made++;
    }
    if (made < 2) return false;
    char list[EXPR_MAX * 2];
    int n = snprintf(list, sizeof list, "cat([");
    for (int i = 0; i < made; i++) {
        if (strlen(branches[i].expr) > FLUSH_LENGTH) flush_chain(g, &branches[i]);
        n += snprintf(list + n, sizeof list - (size_t)n, "%s%s", i ? ", " : "", branches[i].expr);
    }
    int form = (int)below(g, 3);
    if (form == 0) snprintf(list + n, sizeof list - (size_t)n, "], dim=%d)", d);
    else if (form == 1) snprintf(list + n, sizeof list - (size_t)n, "], %d)", d);
    else snprintf(list + n, sizeof list - (size_t)n, "], dim=%d)", d - rank);
    if (strlen(list) >= EXPR_MAX) return false;
    for (int i = 0; i < made; i++) {
        consume(g, &branches[i]);
        merge_line(g, &branches[i]);
    }
    main->src = -1;
    set_expr(main, "%s", list);
    g->rank = rank;
    memcpy(g->dims, base, sizeof base);
    g->dims[d] = total;
    note_fn(main, g->rank, g->dims);
    g->layers++;
    g->joins++;
    return true;
}

/* Bilinear(in1, in2, out) on two branches [*, in1] and [*, in2] with the same leading dimensions. */
static bool motif_bilinear(Gen *g)
{
    if (g->rank == 4) {
        if (sample_elements(g) > 64) lay_adaptive(g, 1, 1);
        lay_flatten(g);
    }
    if (g->dims[g->rank - 1] > MAX_FEATURES) return false;
    int s = flush(g);
    Chain x1, x2;
    chain_from(g, &x1, s);
    chain_from(g, &x2, s);
    Chain *main = enter(g, &x1);
    if (g->dims[g->rank - 1] > 20 || percent(g, 30)) {
        lay_linear(g, between(g, 1, 20), percent(g, 60));
        if (percent(g, 40)) gen_activation(g);
    }
    enter(g, &x2);
    int r = (int)below(g, 100);
    if (r < 40) {
        for (int v = 0; v < g->nvals; v++) { /* an older value with the same leading dimensions */
            const Val *val = &g->vals[v];
            bool fits = val->rank == g->rank && val->dims[val->rank - 1] <= MAX_FEATURES;
            for (int k = 0; fits && k < g->rank - 1; k++) fits = val->dims[k] == g->dims[k];
            if (fits && v != s && percent(g, 50)) {
                restart_at(g, v);
                break;
            }
        }
    }
    if (g->dims[g->rank - 1] > 20 || (r >= 40 && r < 80)) lay_linear(g, between(g, 1, 20), percent(g, 60));
    if (percent(g, 30)) gen_activation(g);
    enter(g, main);
    int64_t in1 = x1.dims[x1.rank - 1], in2 = x2.dims[x2.rank - 1], out = between(g, 1, 20);
    bool bias = percent(g, 70);
    char name[24], shape[96];
    module_name(g, "Bilinear", name, sizeof name);
    g->rank = x1.rank;
    memcpy(g->dims, x1.dims, sizeof g->dims);
    g->dims[g->rank - 1] = out;
    shape_text(g->rank, g->dims, shape, sizeof shape);
    emit(&g->body, "    %s = Bilinear(%lld, %lld, %lld%s)  # -> %s\n", name, (long long)in1, (long long)in2, (long long)out,
         bias ? "" : ", bias=False", shape);
    if (strlen(x1.expr) + strlen(x2.expr) > FLUSH_LENGTH * 2) flush_chain(g, &x1), flush_chain(g, &x2);
    consume(g, &x1);
    consume(g, &x2);
    main->src = -1;
    set_expr(main, "%s(%s, %s)", name, x1.expr, x2.expr);
    main->fn = main->mixed = false;
    merge_line(g, &x1);
    merge_line(g, &x2);
    g->layers++;
    g->joins++;
    return true;
}

/* One submodule called twice: conv(act(conv(x))) with a shape-keeping Conv2d or Linear. */
static bool motif_shared(Gen *g)
{
    char name[24], shape[96], call[128];
    int64_t last = g->dims[g->rank - 1];
    if (g->rank == 4) {
        int64_t c = g->dims[1], k = percent(g, 70) ? 3 : 1;
        if (c > MAX_CHANNELS) return false;
        if (g->convs + 2 > g->conv_budget) return false;
        g->convs += 2;
        bool grouped = c % 2 == 0 && percent(g, 25);
        snprintf(call, sizeof call, "Conv2d(%lld, %lld, %lld%s%s%s)", (long long)c, (long long)c, (long long)k,
                 k == 3 ? ", padding=1" : "", grouped ? ", groups=2" : "", percent(g, 50) ? ", bias=False" : "");
        module_name(g, "Conv2d", name, sizeof name);
    } else {
        if (last > MAX_FEATURES) return false;
        snprintf(call, sizeof call, "Linear(%lld, %lld%s)", (long long)last, (long long)last, percent(g, 50) ? ", bias=False" : "");
        module_name(g, "Linear", name, sizeof name);
    }
    shape_text(g->rank, g->dims, shape, sizeof shape);
    emit(&g->body, "    %s = %s  # -> %s\n", name, call, shape);
    char before[32];
    snprintf(before, sizeof before, "%s(", name);
    wrap(g, before, ")");
    g->layers++;
    if (percent(g, 70)) gen_activation(g);
    if (percent(g, 40)) flush(g);
    wrap(g, before, ")");
    g->layers++;
    g->joins++;
    maybe_flush(g);
    return true;
}

/* The walk goes on from an older value (a branch point: that value gets another reader). */
static bool motif_restart(Gen *g)
{
    if (g->nvals < 2) return false;
    flush(g);
    int v = (int)below(g, (uint64_t)g->nvals);
    if (percent(g, 50)) /* prefer a value already read, for 3 and more readers */
        for (int i = 0; i < g->nvals; i++)
            if (g->vals[i].uses > 0 && percent(g, 50)) v = i;
    restart_at(g, v);
    return true;
}

/* ---- blocks ---- */

enum { BLK_RES, BLK_CBA, BLK_INVRES, BLK_SE, BLK_FIRE, BLK_MLP, BLK_GLU, BLK_COUNT };

static const char *const ACT_FUNCTIONS[] = {"relu", "relu6", "silu", "gelu", "hardswish", "tanh"};
static const char *const ACT_LAYERS[] = {"ReLU6(inplace=True)", "ReLU()", "SiLU()", "Hardswish()", "GELU()"};

static void define_block(Gen *g, int kind)
{
    if (g->blocks_defined & (1u << kind)) return;
    g->blocks_defined |= 1u << kind;
    Buf *b = &g->blocks;
    const char *act = ACT_FUNCTIONS[below(g, 6)];
    switch (kind) {
    case BLK_RES: {
        static const int K[] = {3, 3, 1, 5};
        int k = K[below(g, 4)];
        bool bn = percent(g, 80), act_module = percent(g, 40), last_act = percent(g, 85), skip_first = percent(g, 50);
        emit(b, "block ResBlock(inplanes, planes, stride=1, downsample=False) {\n");
        emit(b, "    conv1 = Conv2d(inplanes, planes, %d, stride=stride, padding=%d, bias=%s)\n", k, k / 2, bn ? "False" : "True");
        if (bn) emit(b, "    bn1 = BatchNorm2d(planes)\n");
        if (act_module) emit(b, "    relu = ReLU(inplace=True)\n");
        emit(b, "    conv2 = Conv2d(planes, planes, %d, padding=%d, bias=%s)\n", k, k / 2, bn ? "False" : "True");
        if (bn) emit(b, "    bn2 = BatchNorm2d(planes)\n");
        emit(b, "    if downsample {\n        downsample = Sequential(\n");
        emit(b, "            Conv2d(inplanes, planes, kernel_size=1, stride=stride, bias=False),\n");
        if (bn) emit(b, "            BatchNorm2d(planes),\n");
        emit(b, "        )\n    }\n\n    forward(x) {\n        identity = x\n");
        const char *a = act_module ? "relu" : act;
        if (bn) emit(b, "        out = %s(bn1(conv1(x)))\n        out = bn2(conv2(out))\n", a);
        else emit(b, "        out = %s(conv1(x))\n        out = conv2(out)\n", a);
        emit(b, "        if downsample {\n            identity = downsample(x)\n        }\n");
        emit(b, skip_first ? "        out = identity + out\n" : "        out = out + identity\n");
        if (last_act) emit(b, "        return %s(out)\n", a);
        else emit(b, "        return out\n");
        emit(b, "    }\n}\n\n");
        break;
    }
    case BLK_CBA:
        emit(b, "block ConvBNAct(cin, cout, kernel_size=3, stride=1, padding=1, groups=1) {\n");
        emit(b, "    Conv2d(cin, cout, kernel_size, stride, padding, groups=groups, bias=False)\n");
        emit(b, "    BatchNorm2d(cout)\n    %s\n}\n\n", ACT_LAYERS[below(g, 5)]);
        break;
    case BLK_INVRES:
        define_block(g, BLK_CBA);
        emit(b, "block InvertedResidual(inp, oup, stride, expand_ratio) {\n");
        emit(b, "    hidden = inp * expand_ratio\n    if expand_ratio != 1 {\n        conv = Sequential(\n");
        emit(b, "            ConvBNAct(inp, hidden, 1, padding=0),\n            ConvBNAct(hidden, hidden, 3, stride, groups=hidden),\n");
        emit(b, "            Conv2d(hidden, oup, 1, bias=False),\n            BatchNorm2d(oup),\n        )\n    } else {\n");
        emit(b, "        conv = Sequential(\n            ConvBNAct(hidden, hidden, 3, stride, groups=hidden),\n");
        emit(b, "            Conv2d(hidden, oup, 1, bias=False),\n            BatchNorm2d(oup),\n        )\n    }\n");
        emit(b, "    forward(x) {\n        if stride == 1 and inp == oup {\n            return %s\n        }\n",
             percent(g, 50) ? "x + conv(x)" : "conv(x) + x");
        emit(b, "        return conv(x)\n    }\n}\n\n");
        break;
    case BLK_SE:
        emit(b, "block SqueezeExcite(channels, reduced) {\n    pool = AdaptiveAvgPool2d(1)\n");
        emit(b, "    fc1 = Conv2d(channels, reduced, 1)\n    fc2 = Conv2d(reduced, channels, 1)\n");
        emit(b, "    forward(x) {\n        s = fc2(%s(fc1(pool(x))))\n        return %s\n    }\n}\n\n", act,
             percent(g, 50) ? "x * sigmoid(s)" : "sigmoid(s) * x");
        break;
    case BLK_FIRE:
        emit(b, "block Fire(inplanes, squeeze_planes, expand1x1_planes, expand3x3_planes) {\n");
        emit(b, "    squeeze = Conv2d(inplanes, squeeze_planes, kernel_size=1)\n");
        emit(b, "    expand1x1 = Conv2d(squeeze_planes, expand1x1_planes, kernel_size=1)\n");
        emit(b, "    expand3x3 = Conv2d(squeeze_planes, expand3x3_planes, kernel_size=3, padding=1)\n");
        emit(b, "    forward(x) {\n        x = %s(squeeze(x))\n", act);
        emit(b, "        return cat([%s(expand1x1(x)), %s(expand3x3(x))], 1)\n    }\n}\n\n", act, act);
        break;
    case BLK_MLP:
        emit(b, "block MlpBlock(dim, hidden, pre_norm=False) {\n    norm = LayerNorm(dim)\n");
        emit(b, "    fc1 = Linear(dim, hidden)\n    fc2 = Linear(hidden, dim)\n    forward(x) {\n");
        emit(b, "        if pre_norm {\n            return x + fc2(%s(fc1(norm(x))))\n        }\n", act);
        emit(b, "        h = fc2(%s(fc1(x)))\n        return norm(%s)\n    }\n}\n\n", act, percent(g, 50) ? "x + h" : "h + x");
        break;
    case BLK_GLU:
        emit(b, "block GatedLinear(dim, out, bias=True) {\n    value = Linear(dim, out, bias=bias)\n    gate = Linear(dim, out)\n");
        emit(b, "    forward(x) {\n        return %s\n    }\n}\n\n",
             percent(g, 50) ? "value(x) * sigmoid(gate(x))" : "sigmoid(gate(x)) * value(x)");
        break;
    }
}

/* The Conv2d kernels of an instance (with a downsample for ResBlock, an expansion for InvertedResidual). */
static int block_convs(int kind)
{
    static const int CONVS[BLK_COUNT] = {[BLK_RES] = 3, [BLK_CBA] = 1, [BLK_INVRES] = 3, [BLK_SE] = 2, [BLK_FIRE] = 3};
    return CONVS[kind];
}

/* One instance of a block on g's shape: its call text, g's shape updated; false when it does not fit. */
static bool block_instance(Gen *g, int kind, char *call, size_t size)
{
    if (g->convs + block_convs(kind) > g->conv_budget + 1) return false; /* the budget, give or take one */
    g->convs += block_convs(kind);
    int64_t c = g->dims[1], h = g->dims[2], w = g->dims[3], last = g->dims[g->rank - 1];
    switch (kind) {
    case BLK_RES: {
        int64_t stride = percent(g, 25) ? 2 : 1, planes = stride == 1 && percent(g, 55) ? c : between(g, 2, 40);
        bool down = stride != 1 || planes != c || percent(g, 15);
        int64_t oh = (h - 1) / stride + 1, ow = (w - 1) / stride + 1;
        if (planes * oh * ow > MAX_SAMPLE_ELEMENTS) return false;
        if (!down) snprintf(call, size, "ResBlock(%lld, %lld)", (long long)c, (long long)planes);
        else if (percent(g, 50)) snprintf(call, size, "ResBlock(%lld, %lld, %lld, True)", (long long)c, (long long)planes, (long long)stride);
        else if (stride == 1) snprintf(call, size, "ResBlock(%lld, %lld, downsample=True)", (long long)c, (long long)planes);
        else snprintf(call, size, "ResBlock(inplanes=%lld, planes=%lld, stride=2, downsample=True)", (long long)c, (long long)planes);
        g->dims[1] = planes, g->dims[2] = oh, g->dims[3] = ow;
        return true;
    }
    case BLK_CBA: {
        int64_t k = percent(g, 60) ? 3 : 1, pad = k == 3 ? (percent(g, 80) ? 1 : 0) : (percent(g, 70) ? 0 : 1);
        int64_t stride = percent(g, 25) ? 2 : 1, groups = c > 1 && percent(g, 25) ? c : 1;
        int64_t cout = groups > 1 ? c : between(g, 2, 40);
        int64_t oh = pooled_size(h, k, stride, pad, 1, false), ow = pooled_size(w, k, stride, pad, 1, false);
        if (oh < 1 || ow < 1 || cout * oh * ow > MAX_SAMPLE_ELEMENTS) return false;
        int n = snprintf(call, size, "ConvBNAct(%lld, %lld", (long long)c, (long long)cout);
        if (k == 3 && stride == 1 && pad == 1 && percent(g, 50)) n += 0;
        else if (percent(g, 50)) n += snprintf(call + n, size - (size_t)n, ", %lld, %lld, %lld", (long long)k, (long long)stride, (long long)pad);
        else n += snprintf(call + n, size - (size_t)n, ", kernel_size=%lld, stride=%lld, padding=%lld", (long long)k, (long long)stride, (long long)pad);
        if (groups > 1) n += snprintf(call + n, size - (size_t)n, ", groups=%lld", (long long)groups);
        snprintf(call + n, size - (size_t)n, ")");
        g->dims[1] = cout, g->dims[2] = oh, g->dims[3] = ow;
        return true;
    }
    case BLK_INVRES: {
        static const int64_t EXPAND[] = {1, 2, 3, 4, 6};
        int64_t stride = percent(g, 30) ? 2 : 1, expand = EXPAND[below(g, 5)];
        int64_t oup = stride == 1 && percent(g, 50) ? c : between(g, 2, 32);
        int64_t oh = (h - 1) / stride + 1, ow = (w - 1) / stride + 1;
        if (c * expand > 2 * MAX_CHANNELS || c * expand * h * w > MAX_SAMPLE_ELEMENTS || oup * oh * ow > MAX_SAMPLE_ELEMENTS) return false;
        snprintf(call, size, "InvertedResidual(%lld, %lld, %lld, %lld)", (long long)c, (long long)oup, (long long)stride, (long long)expand);
        g->dims[1] = oup, g->dims[2] = oh, g->dims[3] = ow;
        return true;
    }
    case BLK_SE:
        snprintf(call, size, "SqueezeExcite(%lld, %lld)", (long long)c, (long long)between(g, 1, c > 2 ? c / 2 : 1));
        return true;
    case BLK_FIRE: {
        int64_t sq = between(g, 1, 16), e1 = between(g, 1, 24), e3 = between(g, 1, 24);
        if ((e1 + e3) * h * w > MAX_SAMPLE_ELEMENTS || sq * h * w > MAX_SAMPLE_ELEMENTS) return false;
        snprintf(call, size, "Fire(%lld, %lld, %lld, %lld)", (long long)c, (long long)sq, (long long)e1, (long long)e3);
        g->dims[1] = e1 + e3;
        return true;
    }
    case BLK_MLP: {
        int64_t hidden = between(g, 1, 64);
        if (last > MAX_FEATURES || sample_elements(g) / last * hidden > MAX_SAMPLE_ELEMENTS) return false;
        if (percent(g, 40)) snprintf(call, size, "MlpBlock(%lld, %lld, pre_norm=True)", (long long)last, (long long)hidden);
        else snprintf(call, size, "MlpBlock(%lld, %lld)", (long long)last, (long long)hidden);
        return true;
    }
    case BLK_GLU: {
        int64_t out = between(g, 1, 48);
        if (last > MAX_FEATURES || sample_elements(g) / last * out > MAX_SAMPLE_ELEMENTS) return false;
        snprintf(call, size, "GatedLinear(%lld, %lld%s)", (long long)last, (long long)out, percent(g, 30) ? ", bias=False" : "");
        g->dims[g->rank - 1] = out;
        return true;
    }
    }
    return false;
}

/* One to three instances of a block, declared one by one or as a Sequential of them. */
static bool motif_block(Gen *g)
{
    static const int SPATIAL[] = {BLK_RES, BLK_RES, BLK_CBA, BLK_INVRES, BLK_SE, BLK_FIRE};
    int kind = g->rank == 4 ? SPATIAL[below(g, 6)] : percent(g, 60) ? BLK_MLP : BLK_GLU;
    int n = percent(g, 60) ? 1 : (int)between(g, 2, 3);
    char calls[3][160];
    int made = 0;
    for (int i = 0; i < n; i++) {
        int64_t saved[4];
        int convs = g->convs;
        memcpy(saved, g->dims, sizeof saved);
        if (block_instance(g, kind, calls[made], sizeof calls[made])) made++;
        else memcpy(g->dims, saved, sizeof saved), g->convs = convs;
    }
    if (!made) return false;
    define_block(g, kind);
    char name[24], before[32];
    if (made > 1 && percent(g, 50)) {
        module_name(g, "Sequential", name, sizeof name);
        emit(&g->body, "    %s = Sequential(%s", name, calls[0]);
        for (int i = 1; i < made; i++) emit(&g->body, ", %s", calls[i]);
        emit(&g->body, ")\n");
        snprintf(before, sizeof before, "%s(", name);
        wrap(g, before, ")");
    } else {
        for (int i = 0; i < made; i++) {
            snprintf(name, sizeof name, "%s%d", kind == BLK_RES ? "layer" : "block", ++g->nsub);
            emit(&g->body, "    %s = %s\n", name, calls[i]);
            snprintf(before, sizeof before, "%s(", name);
            wrap(g, before, ")");
        }
    }
    g->layers += 3 * made;
    g->joins++;
    maybe_flush(g);
    return true;
}

/* ---- the walk ---- */

static void graph_plain_step(Gen *g)
{
    bool seq = percent(g, 15);
    if (seq) seq_open(g);
    if (g->rank == 4) gen_step_4d(g);
    else gen_step_dense(g);
    if (seq) seq_close(g);
}

/* One step of a graph model's walk (a motif that does not fit the current value does nothing). */
static void graph_step(Gen *g)
{
    int r = (int)below(g, 100);
    if (g->rank == 4) {
        if (r < 22) graph_plain_step(g);
        else if (r < 44) motif_residual(g);
        else if (r < 52) motif_gate(g);
        else if (r < 62) motif_cat(g);
        else if (r < 72) motif_join(g);
        else if (r < 82) motif_block(g);
        else if (r < 88) motif_restart(g);
        else if (r < 92) motif_shared(g);
        else if (r < 96) motif_bilinear(g);
        else graph_plain_step(g);
    } else {
        if (r < 28) graph_plain_step(g);
        else if (r < 46) motif_dense_residual(g);
        else if (r < 53) motif_gate(g);
        else if (r < 61) motif_cat(g);
        else if (r < 71) motif_bilinear(g);
        else if (r < 79) motif_join(g);
        else if (r < 86) motif_block(g);
        else if (r < 92) motif_restart(g);
        else motif_shared(g);
    }
}

static void generate_graph(Gen *g)
{
    g->cur = &g->main;
    if (g->tokens) {
        snprintf(g->main.expr, sizeof g->main.expr, "x");
        g->main.src = -1;
        gen_embedding(g);
    } else {
        add_value(g, "x");
        restart_at(g, 0);
    }
    int target = (int)between(g, 2, g->graph_steps);
    for (int attempts = 0; g->layers < target && attempts < 40; attempts++) graph_step(g);
    /* a graph model that came out a chain gets one join */
    for (int attempts = 0; !g->joins && attempts < 8; attempts++) {
        int r = (int)below(g, 4);
        if (r == 0) motif_gate(g);
        else if (r == 1) motif_join(g);
        else if (r == 2) motif_cat(g);
        else if (g->rank == 4) motif_residual(g);
        else motif_dense_residual(g);
    }
    /* values nobody read yet join the output, when they fit */
    int merged = 0;
    for (int v = g->nvals - 1; v >= 0 && merged < 3; v--) {
        if (g->vals[v].uses || v == g->main.src || !percent(g, 80)) continue;
        int ro;
        int64_t o[4];
        Chain other;
        chain_from(g, &other, v);
        if (!broadcast(g->rank, g->dims, other.rank, other.dims, &ro, o) || !same_shape(ro, o, g->rank, g->dims)) {
            int64_t t[4];
            memcpy(t, g->dims, sizeof t);
            int rank = g->rank;
            Chain *main = enter(g, &other);
            bool ok = can_adapt(g, rank, t);
            if (ok) adapt(g, rank, t);
            ok = ok && same_shape(g->rank, g->dims, rank, t);
            enter(g, main);
            if (!ok) continue;
        }
        if (combine(g, &other, percent(g, 80) ? '+' : '*')) merged++;
        if (strlen(g->main.expr) > FLUSH_LENGTH) flush(g);
    }
    char shape[96];
    shape_text(g->rank, g->dims, shape, sizeof shape);
    if (g->main.src < 0 && line_shape_holds(g, &g->main)) emit(&g->fwd, "        return %s  # -> %s\n", g->main.expr, shape);
    else emit(&g->fwd, "        return %s\n", g->main.expr);
}

static int generate(uint64_t seed, char *text, const GeneratorMix *mix)
{
    static Gen zero;
    static Gen g;
    g = zero;
    g.rng = seed * 0x2545f4914f6cdd1dull + 1;
    splitmix64(&g.rng);
    g.graph = percent(&g, mix->graph_percent);
    g.graph_steps = mix->graph_steps;
    gen_input(&g);
    /* 1 or 2 at the default size (a convolution is half a second of CPU over the five configurations) */
    if (!g.graph) g.conv_budget = 1 << 30;
    else if (g.graph_steps <= GENERATED_GRAPH_STEPS) g.conv_budget = percent(&g, 70) ? 1 : 2;
    else g.conv_budget = (int)between(&g, 1, g.graph_steps / 2);
    size_t len;
    if (g.graph) {
        generate_graph(&g);
        len = (size_t)snprintf(text, GENERATED_MODEL_MAX, "%s%smodel Random {\n%s    forward(x) {\n%s    }\n}\n", g.head.text,
                               g.blocks.text, g.body.text, g.fwd.text);
    } else {
        if (g.tokens) gen_embedding(&g);
        int target = (int)between(&g, 1, MAX_LAYERS);
        for (int attempts = 0; g.layers < target && attempts < 40; attempts++) {
            if (g.rank == 4) gen_step_4d(&g);
            else gen_step_dense(&g);
        }
        len = (size_t)snprintf(text, GENERATED_MODEL_MAX, "%smodel Random {\n%s}\n", g.head.text, g.body.text);
    }
    bool full = len >= GENERATED_MODEL_MAX - 1 || g.head.len >= GENERATED_MODEL_MAX - 1 || g.blocks.len >= GENERATED_MODEL_MAX - 1 ||
                g.body.len >= GENERATED_MODEL_MAX - 1 || g.fwd.len >= GENERATED_MODEL_MAX - 1;
    if (full && g.graph) return generate(seed, text, &(GeneratorMix){0, 0}); /* too long: a stack model instead */
    return g.layers;
}

int generate_model_mix(uint64_t seed, char *text, const GeneratorMix *mix) { return generate(seed, text, mix); }

int generate_model(uint64_t seed, char *text)
{
    return generate(seed, text, &(GeneratorMix){GENERATED_GRAPH_PERCENT, GENERATED_GRAPH_STEPS});
}
