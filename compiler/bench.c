/* bench.c - `layerc bench` (see bench.h): how fast a compiled model runs.
 *
 * The model is built the way `layerc run` builds it (harness.c): checked for
 * the back end, weights bound (random and quiet unless --weights), the graph
 * passes run, compiled into a temporary directory, and the library loaded
 * here with dlopen + layerc_model().  Then, on a random input:
 *
 *   1. warm-up: `run` for a tenth of the measuring time, at least 2 runs;
 *   2. the model: each `run` timed with CLOCK_MONOTONIC until min_seconds
 *      have passed and at least MIN_RUNS runs were made;
 *   3. --per-layer: the same with an observer (run_multi), which reads the
 *      clock after every compiled layer (a fused group counts once): a
 *      layer's time is the time since the previous reading (the first
 *      layer's includes the run's own argument checks).
 *
 * Reported: median, minimum and 90th percentile of the run times (the
 * p-quantile interpolates linearly between order statistics), and GFLOP/s
 * = 2 * MACs / median time.  MACs are counted on the graph as written,
 * before the passes, so fused and unfused builds are credited with the same
 * work; a layer's MACs are those of its main node (the Conv2d or Linear of a
 * fused group).
 */
#include "bench.h"

#include "load_model.h"
#include "splitmix.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "layerc.h"
#include "lower.h"
#include "report.h"

/* MAX_SAMPLES bounds the memory of the timings (8 bytes each): a run records one, or one per layer. */
enum { MIN_RUNS = 10, WARMUP_RUNS = 2, MAX_SAMPLES = 4 << 20 };

/* ---- samples and their statistics ---- */

typedef struct Samples {
    double *ms;
    int n, cap;
} Samples;

static bool samples_push(Samples *s, double ms)
{
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 256;
        double *grown = realloc(s->ms, (size_t)cap * sizeof *grown);
        if (!grown) return false;
        s->ms = grown;
        s->cap = cap;
    }
    s->ms[s->n++] = ms;
    return true;
}

typedef struct Stats {
    double median, min, p90;
    int runs;
} Stats;

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double quantile(const double *sorted, int n, double q)
{
    double pos = q * (n - 1);
    int lo = (int)pos;
    if (lo >= n - 1) return sorted[n - 1];
    return sorted[lo] + (pos - lo) * (sorted[lo + 1] - sorted[lo]);
}

/* Sorts s in place. */
static Stats summarize(Samples *s)
{
    Stats st = {0};
    if (s->n == 0) return st;
    qsort(s->ms, (size_t)s->n, sizeof *s->ms, compare_doubles);
    st.median = quantile(s->ms, s->n, 0.5);
    st.min = s->ms[0];
    st.p90 = quantile(s->ms, s->n, 0.9);
    st.runs = s->n;
    return st;
}

static double gflops(double flops, double ms) { return ms > 0 ? flops / (ms * 1e-3) / 1e9 : 0; }

/* ---- the benchmark's state ---- */

typedef struct Bench {
    Frontend *fe;
    const BenchOptions *opt;
    int64_t batch;     /* the run's batch (the fixed first dimension for a fixed batch) */
    int64_t api_batch; /* what run() takes: the batch, or 0 for a fixed one */
    int64_t work_scale; /* Node.macs is per declared batch (1 for a named one): times this, per run */
    double model_flops; /* 2 * MACs per run, counted before the passes */
    LoadedModel lm;              /* the compiled library, loaded */
    const layerc_model_desc *m;  /* lm.m and lm.ctx, for short */
    layerc_ctx *ctx;
    void *in[MAX_MODEL_IO];  /* one per model input: floats, or token ids */
    void *out[MAX_MODEL_IO]; /* one per model output */
    int nin, nout;
    double *layer_clock; /* num_layers: this run's time of each layer (ms) */
    double last_tick;
    Samples total;       /* ms per run of `run` */
    Samples *layers;     /* num_layers: ms per run_observed of each layer */
    double measured_seconds;
} Bench;

static bool resolve_batch(Bench *b)
{
    const Shape *in = &b->fe->graph->input->shape;
    int64_t want = b->opt->batch;
    if (in->dynamic_batch) {
        b->batch = b->api_batch = b->work_scale = want > 0 ? want : 1;
        return true;
    }
    if (want > 0 && want != in->dims[0]) {
        diag_error(&b->fe->diag, (SrcSpan){0}, "--batch %lld: model %s has a fixed batch of %lld", (long long)want,
                   b->fe->graph->model_name, (long long)in->dims[0]);
        return false;
    }
    b->batch = in->dims[0];
    b->api_batch = 0;
    b->work_scale = 1;
    return true;
}

/* splitmix64 -> uniform [-1, 1): the input's values do not matter, only that they are ordinary floats. */
static void fill_random(float *x, int64_t n, uint64_t seed)
{
    uint64_t state = seed ^ 0x62656e63686d6172ull;
    for (int64_t i = 0; i < n; i++) {
        x[i] = (float)((double)(splitmix64(&state) >> 40) / 8388608.0 - 1.0);
    }
}

/* splitmix64 -> token ids uniform in [0, limit). */
static void fill_random_ids(int64_t *ids, int64_t n, int64_t limit, uint64_t seed)
{
    uint64_t state = seed ^ 0x62656e63686d6172ull;
    splitmix64_ids(ids, n, limit, &state);
}

/* A 64-byte aligned buffer of the tensor `s` (f32, or i64 token ids below
 * token_limit) at the run's batch, random or zero; NULL after reporting. */
static void *tensor_buffer(Bench *b, const Shape *s, DType dtype, int64_t token_limit, const char *what, bool randomize)
{
    int64_t per = shape_numel(s), scale = s->dynamic_batch ? b->batch : 1, elem = dtype == DT_I64 ? 8 : 4;
    void *p = NULL;
    if (per < 0 || (per > 0 && scale > INT64_MAX / 8 / per) ||
        posix_memalign(&p, 64, (size_t)(per * scale > 0 ? per * scale : 1) * (size_t)elem) != 0) {
        diag_error(&b->fe->diag, (SrcSpan){0}, "cannot allocate the %s of batch %lld", what, (long long)b->batch);
        return NULL;
    }
    if (!randomize) memset(p, 0, (size_t)(per * scale * elem));
    else if (dtype == DT_I64) fill_random_ids(p, per * scale, token_limit, b->opt->build.seed);
    else fill_random(p, per * scale, b->opt->build.seed);
    return p;
}

/* ---- clean up ---- */

static void bench_free(Bench *b)
{
    for (int k = 0; b->layers && k < b->m->num_layers; k++) free(b->layers[k].ms); /* b->m lives in the library */
    free(b->layers);
    free(b->layer_clock);
    free(b->total.ms);
    for (int k = 0; k < b->nin; k++) free(b->in[k]);
    for (int k = 0; k < b->nout; k++) free(b->out[k]);
    unload_model(&b->lm);
}

/* ---- timing ---- */

static void observe_layer(void *user, int32_t layer, const float *data, const layerc_tensor_info *shape, int64_t batch)
{
    (void)data, (void)shape, (void)batch;
    Bench *b = user;
    double t = monotonic_seconds();
    b->layer_clock[layer] = (t - b->last_tick) * 1e3;
    b->last_tick = t;
}

/* One run (observed per layer or not); records its times when `record`.  Returns a layerc_status. */
static int run_once(Bench *b, bool per_layer, bool record)
{
    double t0 = monotonic_seconds();
    b->last_tick = t0;
    int rc = b->m->run_multi(b->ctx, (const void *const *)b->in, b->out, b->api_batch, per_layer ? observe_layer : NULL, b);
    double t1 = monotonic_seconds();
    if (rc != 0 || !record) return rc;
    bool ok = true;
    if (per_layer)
        for (int k = 0; k < b->m->num_layers; k++) ok = ok && samples_push(&b->layers[k], b->layer_clock[k]);
    else
        ok = samples_push(&b->total, (t1 - t0) * 1e3);
    return ok ? LAYERC_OK : LAYERC_ERR_NOMEM;
}

/* Runs for `seconds` and at least min_runs times (fewer than MAX_SAMPLES samples); false after
 * reporting a failed run. */
static bool run_for(Bench *b, double seconds, int min_runs, bool per_layer, bool record)
{
    int max_runs = per_layer ? MAX_SAMPLES / (b->m->num_layers > 0 ? b->m->num_layers : 1) : MAX_SAMPLES;
    if (max_runs < min_runs) max_runs = min_runs;
    double start = monotonic_seconds(), elapsed = 0;
    for (int runs = 0; runs < max_runs && (runs < min_runs || elapsed < seconds); runs++) {
        progress_step(&b->fe->progress, "%s: run %d", !record ? "warming up" : per_layer ? "timing each layer" : "timing", runs + 1);
        int rc = run_once(b, per_layer, record);
        if (rc != 0) {
            diag_error(&b->fe->diag, (SrcSpan){0}, "running the model failed: %s",
                       rc == LAYERC_ERR_NOMEM && !*b->m->error(b->ctx) ? "out of memory for the timings" : b->m->error(b->ctx));
            return false;
        }
        elapsed = monotonic_seconds() - start;
    }
    if (record && !per_layer) b->measured_seconds = elapsed;
    return true;
}

static bool measure(Bench *b)
{
    double seconds = b->opt->min_seconds > 0 ? b->opt->min_seconds : 1.0;
    if (!run_for(b, seconds / 10, WARMUP_RUNS, false, false) || !run_for(b, seconds, MIN_RUNS, false, true)) return false;
    if (!b->opt->per_layer) return true;
    b->layer_clock = calloc((size_t)b->m->num_layers + 1, sizeof *b->layer_clock);
    b->layers = calloc((size_t)b->m->num_layers + 1, sizeof *b->layers);
    if (!b->layer_clock || !b->layers) {
        diag_error(&b->fe->diag, (SrcSpan){0}, "out of memory for the per-layer timings");
        return false;
    }
    return run_for(b, seconds, MIN_RUNS, true, true);
}

/* ---- reporting ---- */

/* 2 * the MACs of compiled layer k in one run: its main node's (graph node k + 1, after the passes). */
static double layer_flops(const Bench *b, int k)
{
    const Node *n = b->fe->graph->nodes.items[k + 1];
    return 2.0 * (double)n->macs * (double)b->work_scale;
}

/* "-O3, all passes", "-O3 without fold-batchnorm, fuse-epilogue", "-O0, no passes". */
static const char *build_label(Bench *b)
{
    const BuildOptions *o = &b->opt->build;
    Arena *a = &b->fe->arena;
    if (o->emit.opt_level == 0) return "-O0, no passes";
    if (o->passes.ndisabled == 0) return arena_printf(a, "-O%d, all passes", o->emit.opt_level);
    char *s = arena_printf(a, "-O%d without", o->emit.opt_level);
    for (int i = 0; i < o->passes.ndisabled; i++) s = arena_printf(a, "%s%s %s", s, i ? "," : "", o->passes.disabled[i]);
    return s;
}

static double layer_sum(Stats *layer, int n)
{
    double sum = 0;
    for (int k = 0; k < n; k++) sum += layer[k].median;
    return sum;
}

/* ms with about 4 significant digits in fixed notation: 59.11, 0.1582, 0.00006100. */
static const char *ms_text(char buf[32], double ms)
{
    int decimals = ms > 0 ? 3 - (int)floor(log10(ms)) : 1;
    decimals = decimals < 1 ? 1 : decimals > 9 ? 9 : decimals;
    snprintf(buf, 32, "%.*f", decimals, ms);
    return buf;
}

static void print_layers_text(Bench *b, Stats *layer)
{
    static const char SUM[] = "sum of the layer medians";
    int n = b->m->num_layers, width = (int)strlen(SUM);
    for (int k = 0; k < n; k++) width = (int)strlen(b->m->layer_names[k]) > width ? (int)strlen(b->m->layer_names[k]) : width;
    double sum = layer_sum(layer, n);
    printf("\nper layer (run_observed, %d runs; share of the sum of the layer medians):\n", n ? layer[0].runs : 0);
    printf("  %3s  %-*s  %10s  %10s  %7s  %8s\n", "#", width, "layer", "median ms", "p90 ms", "share", "GFLOP/s");
    for (int k = 0; k < n; k++) {
        double flops = layer_flops(b, k);
        char rate[32] = "-";
        if (flops > 0) snprintf(rate, sizeof rate, "%.2f", gflops(flops, layer[k].median));
        char med[32], p90[32];
        printf("  %3d  %-*s  %10s  %10s  %6.1f%%  %8s\n", k + 1, width, b->m->layer_names[k], ms_text(med, layer[k].median),
               ms_text(p90, layer[k].p90), sum > 0 ? 100 * layer[k].median / sum : 0, rate);
    }
    char total[32];
    printf("  %3s  %-*s  %10s\n", "", width, SUM, ms_text(total, sum));
}

static void print_text(Bench *b, const Stats *total, Stats *layer)
{
    int threads = b->opt->threads > 0 ? b->opt->threads : 1;
    printf("model      %s (%s)\n", b->m->name, b->fe->src.path);
    printf("build      %s\n", build_label(b));
    printf("batch      %lld\n", (long long)b->batch);
    printf("threads    %d\n", threads);
    printf("runs       %d in %.2f s\n", total->runs, b->measured_seconds);
    char t[32];
    printf("median     %s ms\n", ms_text(t, total->median));
    printf("min        %s ms\n", ms_text(t, total->min));
    printf("p90        %s ms\n", ms_text(t, total->p90));
    printf("GFLOP/s    %.2f (%.4g GFLOP per run, counted before the passes)\n", gflops(b->model_flops, total->median),
           b->model_flops / 1e9);
    if (layer) print_layers_text(b, layer);
}

static void add_stats(cJSON *obj, const Stats *s)
{
    cJSON_AddNumberToObject(obj, "median_ms", s->median);
    cJSON_AddNumberToObject(obj, "min_ms", s->min);
    cJSON_AddNumberToObject(obj, "p90_ms", s->p90);
}

static cJSON *layers_json(Bench *b, Stats *layer)
{
    cJSON *arr = cJSON_CreateArray();
    double sum = layer_sum(layer, b->m->num_layers);
    for (int k = 0; k < b->m->num_layers; k++) {
        cJSON *l = cJSON_CreateObject();
        cJSON_AddNumberToObject(l, "index", k);
        cJSON_AddStringToObject(l, "name", b->m->layer_names[k]);
        add_stats(l, &layer[k]);
        cJSON_AddNumberToObject(l, "share", sum > 0 ? layer[k].median / sum : 0);
        double flops = layer_flops(b, k);
        cJSON_AddNumberToObject(l, "flops", flops);
        if (flops > 0) cJSON_AddNumberToObject(l, "gflops", gflops(flops, layer[k].median));
        else cJSON_AddNullToObject(l, "gflops");
        cJSON_AddItemToArray(arr, l);
    }
    return arr;
}

static bool print_json(Bench *b, const Stats *total, Stats *layer)
{
    const BuildOptions *o = &b->opt->build;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model", b->m->name);
    cJSON_AddStringToObject(root, "file", b->fe->src.path);
    cJSON_AddNumberToObject(root, "opt_level", o->emit.opt_level);
    cJSON *disabled = cJSON_AddArrayToObject(root, "disabled_passes");
    for (int i = 0; o->emit.opt_level > 0 && i < o->passes.ndisabled; i++)
        cJSON_AddItemToArray(disabled, cJSON_CreateString(o->passes.disabled[i]));
    cJSON_AddNumberToObject(root, "batch", (double)b->batch);
    cJSON_AddNumberToObject(root, "threads", b->opt->threads > 0 ? b->opt->threads : 1);
    cJSON_AddNumberToObject(root, "runs", total->runs);
    cJSON_AddNumberToObject(root, "seconds", b->measured_seconds);
    add_stats(root, total);
    cJSON_AddNumberToObject(root, "flops", b->model_flops);
    cJSON_AddNumberToObject(root, "gflops", gflops(b->model_flops, total->median));
    if (layer) {
        cJSON_AddNumberToObject(root, "layer_runs", b->m->num_layers ? layer[0].runs : 0);
        cJSON_AddItemToObject(root, "layers", layers_json(b, layer));
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) {
        diag_error(&b->fe->diag, (SrcSpan){0}, "out of memory for the JSON report");
        return false;
    }
    printf("%s\n", text);
    cJSON_free(text);
    return true;
}

static bool report(Bench *b)
{
    progress_end(&b->fe->progress);
    Stats total = summarize(&b->total);
    Stats *layer = NULL;
    if (b->opt->per_layer) {
        layer = arena_alloc_array(&b->fe->arena, (size_t)b->m->num_layers + 1, sizeof *layer);
        for (int k = 0; k < b->m->num_layers; k++) layer[k] = summarize(&b->layers[k]);
    }
    if (b->opt->json) return print_json(b, &total, layer);
    print_text(b, &total, layer);
    return true;
}

/* ---- the command ---- */

/* Everything up to a loaded library with its input and output buffers. */
static bool prepare(Bench *b)
{
    Frontend *fe = b->fe;
    BuildOptions build = b->opt->build;
    build.quiet_random_weights = true;
    if (!resolve_batch(b)) return false;
    b->model_flops = 2.0 * (double)report_totals(fe->graph).macs * (double)b->work_scale; /* before the passes */
    if (!load_model(b->fe, &build, b->opt->threads, &b->lm)) return false;
    b->m = b->lm.m;
    b->ctx = b->lm.ctx;
    const Graph *g = fe->graph;
    for (; b->nin < g->inputs.len; b->nin++) {
        const Node *in = g->inputs.items[b->nin];
        if (!(b->in[b->nin] = tensor_buffer(b, &in->shape, in->dtype, graph_input_token_limit(g, in), "input", true)))
            return false;
    }
    for (; b->nout < g->outputs.len; b->nout++)
        if (!(b->out[b->nout] = tensor_buffer(b, &((const Node *)g->outputs.items[b->nout])->shape, DT_F32, 0, "output", false)))
            return false;
    return true;
}

int bench_model(Frontend *fe, const BenchOptions *opt)
{
    Bench b = {.fe = fe, .opt = opt};
    bool ok = prepare(&b) && measure(&b) && report(&b);
    fflush(stdout);
    bench_free(&b);
    return ok ? 0 : 1;
}
