/* weights_random.c - random parameter values for a model without a weights
 * file: PyTorch's default initialisation distributions, drawn from a
 * splitmix64 stream seeded from (seed, key), so one layer's values do not
 * depend on the other layers (see weights.h).
 *
 * State that PyTorch initialises to constants (BatchNorm's running
 * statistics and affine parameters, LayerNorm's, attention's biases) is drawn
 * away from those constants instead, as a trained network has it: with mean
 * 0, variance 1, weight 1 and bias 0, folding a BatchNorm is the identity and
 * a broken fold passes every test (issue 13).  A test is only as good as its
 * weights. */
#include "weights.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "parallel.h"
#include "splitmix.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

typedef struct Rng {
    uint64_t state;
    double spare; /* the second Box-Muller value */
    bool has_spare;
} Rng;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* The stream of one tensor: depends only on the seed and the tensor's key. */
static Rng rng_for(uint64_t seed, const char *key)
{
    uint64_t s = seed;
    Rng r = {.state = splitmix64(&s) ^ fnv1a(key)};
    splitmix64(&r.state);
    return r;
}

/* Uniform in [0, 1) with 53 random bits. */
static double unit_interval(uint64_t bits) { return (double)(bits >> 11) * 0x1.0p-53; }
static double rng_unit(Rng *r) { return unit_interval(splitmix64(&r->state)); }

static double rng_normal(Rng *r)
{
    if (r->has_spare) {
        r->has_spare = false;
        return r->spare;
    }
    double u1 = 1.0 - rng_unit(r); /* (0, 1]: log is finite */
    double u2 = rng_unit(r);
    double radius = sqrt(-2.0 * log(u1)), angle = 2.0 * M_PI * u2;
    r->spare = radius * sin(angle);
    r->has_spare = true;
    return radius * cos(angle);
}

typedef enum { INIT_UNIFORM, INIT_NORMAL } InitKind;

typedef struct InitSpec {
    InitKind kind;
    double low, high; /* INIT_UNIFORM: U(low, high) */
} InitSpec;

static InitSpec uniform(double low, double high) { return (InitSpec){INIT_UNIFORM, low, high}; }
/* kaiming_uniform(a=sqrt(5)) and PyTorch's bias rule both give U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
static InitSpec fan_in_uniform(int64_t fan_in)
{
    double bound = fan_in > 0 ? 1.0 / sqrt((double)fan_in) : 0.0;
    return uniform(-bound, bound);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Norm layers (PyTorch: weight 1, bias 0, running_mean 0, running_var 1) get
 * the ranges tools/gen_output_goldens.py perturbs them to. */
static InitSpec norm_init(const char *suffix)
{
    if (ends_with(suffix, "running_var")) return uniform(0.5, 2.0);
    if (ends_with(suffix, "weight")) return uniform(0.5, 1.5);
    return uniform(-0.5, 0.5); /* bias, running_mean */
}

/* nn.TransformerEncoderLayer: MultiheadAttention's _reset_parameters, two Linears, two LayerNorms. */
static InitSpec transformer_init(const TransformerAttrs *ta, const char *suffix)
{
    double d = (double)ta->d_model;
    if (strcmp(suffix, "self_attn.in_proj_weight") == 0)
        return uniform(-sqrt(6.0 / (d + 3.0 * d)), sqrt(6.0 / (d + 3.0 * d))); /* xavier_uniform */
    if (strcmp(suffix, "self_attn.in_proj_bias") == 0 || strcmp(suffix, "self_attn.out_proj.bias") == 0)
        return uniform(-0.2, 0.2); /* zeros in PyTorch */
    if (strncmp(suffix, "norm", 4) == 0) return norm_init(suffix);
    if (strncmp(suffix, "linear2.", 8) == 0) return fan_in_uniform(ta->dim_feedforward);
    return fan_in_uniform(ta->d_model); /* out_proj.weight, linear1.* */
}

/* A layer not listed: PyTorch's Linear/Conv rule with fan_in from the tensor's shape. */
static InitSpec generic_init(const Param *p, const char *suffix)
{
    if (ends_with(suffix, "running_mean") || ends_with(suffix, "running_var")) return norm_init(suffix);
    int64_t fan_in = p->shape.rank > 0 ? p->shape.dims[p->shape.rank > 1 ? 1 : 0] : 1;
    for (int i = 2; i < p->shape.rank; i++) fan_in *= p->shape.dims[i];
    return fan_in_uniform(fan_in);
}

static InitSpec init_spec(const Node *n, const Param *p)
{
    size_t prefix = strlen(n->name);
    const char *suffix = strncmp(p->key, n->name, prefix) == 0 && p->key[prefix] == '.' ? p->key + prefix + 1 : p->key;
    switch (n->op) {
    case OP_CONV2D: {
        const ConvAttrs *c = &n->attr.conv;
        return fan_in_uniform(c->groups > 0 ? c->in_channels / c->groups * c->kernel[0] * c->kernel[1] : 0);
    }
    case OP_LINEAR:
    case OP_LAZYLINEAR: return fan_in_uniform(n->attr.linear.in_features);
    case OP_BATCHNORM1D:
    case OP_BATCHNORM2D:
    case OP_LAYERNORM: return norm_init(suffix);
    case OP_EMBEDDING:
    case OP_EMBEDDINGBAG: return (InitSpec){.kind = INIT_NORMAL};
    case OP_RNN:
    case OP_LSTM:
    case OP_GRU: return fan_in_uniform(n->attr.rnn.hidden_size);
    case OP_TRANSFORMERENCODERLAYER: return transformer_init(&n->attr.tfm, suffix);
    default: return generic_init(p, suffix);
    }
}

/* Element i of a uniform parameter is the (i+1)-th draw of its stream; splitmix64's
 * state is a counter, so any range of elements can be drawn on its own. */
static void fill_uniform(float *data, int64_t begin, int64_t end, InitSpec spec, uint64_t state)
{
    uint64_t at = state + (uint64_t)begin * SPLITMIX64_STEP;
    for (int64_t i = begin; i < end; i++) data[i] = (float)(spec.low + (spec.high - spec.low) * unit_interval(splitmix64(&at)));
}

static void fill_param(float *data, int64_t numel, InitSpec spec, Rng *r)
{
    switch (spec.kind) {
    case INIT_UNIFORM: fill_uniform(data, 0, numel, spec, r->state); break;
    case INIT_NORMAL:
        for (int64_t i = 0; i < numel; i++) data[i] = (float)rng_normal(r);
        break;
    }
}

/* Embedding and EmbeddingBag zero their padding_idx row (_fill_padding_idx_with_zero). */
static void zero_padding_row(const Node *n, Param *p)
{
    if (n->op != OP_EMBEDDING && n->op != OP_EMBEDDINGBAG) return;
    const EmbeddingAttrs *ea = &n->attr.emb;
    if (ea->padding_idx < 0 || ea->padding_idx >= p->shape.dims[0] || p->shape.rank != 2) return;
    memset(p->data + ea->padding_idx * p->shape.dims[1], 0, (size_t)p->shape.dims[1] * sizeof *p->data);
}

/* Big uniform parameters are drawn in chunks on every CPU (parallel.h;
 * VGG16's 138 M values: 0.5 s on one); every value is the same whatever
 * thread draws it. */
enum { CHUNK = 1 << 22 };

typedef struct Chunk {
    float *data;
    int64_t begin, end;
    InitSpec spec;
    uint64_t state;
} Chunk;

static void draw_chunks(void *ctx, int64_t begin, int64_t end)
{
    const Chunk *chunks = ctx;
    for (int64_t i = begin; i < end; i++) fill_uniform(chunks[i].data, chunks[i].begin, chunks[i].end, chunks[i].spec, chunks[i].state);
}

static int64_t chunk_count(const Graph *g)
{
    int64_t n = 0;
    for (int i = 1; i < g->nodes.len; i++) {
        const Node *node = g->nodes.items[i];
        for (int j = 0; j < node->nparams; j++) {
            int64_t numel = shape_numel(&node->params[j].shape);
            if (numel > 0) n += (numel + CHUNK - 1) / CHUNK;
        }
    }
    return n;
}

void weights_init_random(Arena *a, Graph *g, uint64_t seed)
{
    int64_t most = chunk_count(g);
    Chunk *chunks = arena_alloc_array(a, (size_t)(most > 0 ? most : 1), sizeof *chunks);
    int len = 0;
    for (int i = 1; i < g->nodes.len; i++) {
        Node *n = g->nodes.items[i];
        for (int j = 0; j < n->nparams; j++) {
            Param *p = &n->params[j];
            int64_t numel = shape_numel(&p->shape);
            if (p->dtype != DT_F32 || numel < 0) {
                p->data = NULL; /* i64 buffers (num_batches_tracked) are not loaded */
                continue;
            }
            p->data = arena_alloc_array(a, (size_t)numel + 1, sizeof *p->data);
            Rng r = rng_for(seed, p->key);
            InitSpec spec = init_spec(n, p);
            if (spec.kind != INIT_UNIFORM || numel <= CHUNK) {
                fill_param(p->data, numel, spec, &r);
                zero_padding_row(n, p);
                continue;
            }
            for (int64_t at = 0; at < numel; at += CHUNK)
                chunks[len++] = (Chunk){p->data, at, at + CHUNK < numel ? at + CHUNK : numel, spec, r.state};
        }
    }
    parallel_ranges(len, 2, draw_chunks, chunks);
}
