/* test_api.c - checks the promises of layerc.h against one compiled model.
 *
 *   usage: test_api LIBRARY.so
 *
 * Loads the library with dlopen + layerc_model() and checks: the descriptor;
 * NULL contexts and buffers, bad batch sizes and thread counts (error codes
 * and error text, never a crash); errors cleared by a later successful run;
 * finite outputs; results bitwise identical for 1, 2 and 3 threads, for a
 * grown or shrunk workspace, and for two contexts run concurrently from two
 * threads; run_observed calling the observer once per layer, in order, with
 * the shapes of layer_outputs; run_multi agreeing with run, and on a model of
 * several inputs and outputs run refused with LAYERC_ERR_ARITY and run_multi's
 * checks.  Works for named-batch and fixed-batch models.
 * Prints one line per failed check, then "api: N passed, M failed"; exits 1
 * if any failed, 2 if the library cannot be loaded.
 *
 * Build it with -fsanitize=address,undefined to test a library built by
 * `layerc test --sanitize --keep DIR` (DIR/libmodel.so).
 */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layerc.h"

/* Under AddressSanitizer a failed huge allocation must return NULL (the
 * runtime's LAYERC_ERR_NOMEM path) instead of aborting.  ASAN_OPTIONS from the
 * environment still apply on top.  Unused without the sanitizer. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

enum { CONCURRENT_RUNS = 20, CONCURRENT_CONTEXTS = 2, MAX_IO = 16 /* inputs or outputs, as the compiler allows */ };

static int passed, failed;

static bool check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool check(bool ok, const char *fmt, ...)
{
    if (ok) {
        passed++;
        return true;
    }
    failed++;
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    return false;
}

/* ---- tensors and buffers ---- */

static bool named_batch(const layerc_model_desc *m) { return m->input.batch_dim == 0; }

/* Elements of t for `samples` samples (samples replaces a run-time batch dimension). */
static int64_t elements(const layerc_tensor_info *t, int64_t samples)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= (i == 0 && t->batch_dim == 0) ? samples : t->dims[i];
    return n;
}

static size_t element_size(const layerc_tensor_info *t) { return t->dtype == LAYERC_I64 ? 8 : 4; }

/* The batch argument run() takes for `samples` samples: 0 for a fixed batch. */
static int64_t api_batch(const layerc_model_desc *m, int64_t samples) { return named_batch(m) ? samples : 0; }

/* Samples a run holds: the request for a named batch, the declared one otherwise. */
static int64_t samples_of(const layerc_model_desc *m, int64_t want) { return named_batch(m) ? want : m->input.dims[0]; }

/* Deterministic input: N(0,1)-ish floats, or token id 0 (always in range) for i64 inputs. */
static void *make_input(const layerc_model_desc *m, int64_t samples)
{
    int64_t n = elements(&m->input, samples);
    void *buf = calloc((size_t)n, element_size(&m->input));
    if (!buf || m->input.dtype == LAYERC_I64) return buf;
    float *x = buf;
    uint32_t state = 12345;
    for (int64_t i = 0; i < n; i++) {
        float sum = 0;
        for (int k = 0; k < 4; k++) {
            state = state * 1664525u + 1013904223u;
            sum += (float)(state >> 8) / 16777216.0f;
        }
        x[i] = (sum - 2.0f) * 1.7f;
    }
    return buf;
}

static float *make_output(const layerc_model_desc *m, int64_t samples)
{
    return calloc((size_t)elements(&m->output, samples), sizeof(float));
}

static bool all_finite(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return false;
    return true;
}

static bool same_bits(const float *a, const float *b, int64_t n) { return memcmp(a, b, (size_t)n * sizeof *a) == 0; }

static bool same_shape(const layerc_tensor_info *a, const layerc_tensor_info *b)
{
    if (a->rank != b->rank || a->dtype != b->dtype || a->batch_dim != b->batch_dim) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return false;
    return true;
}

/* A fresh context's output for `samples` samples with `threads` threads; NULL (after a failed check) on error. */
static float *run_fresh(const layerc_model_desc *m, const void *input, int64_t samples, int threads)
{
    layerc_ctx *ctx = m->create();
    float *out = make_output(m, samples);
    int rc = !ctx ? -1 : m->set_threads(ctx, threads);
    if (rc == LAYERC_OK) rc = m->run(ctx, input, out, api_batch(m, samples));
    bool ok = check(ctx && rc == LAYERC_OK, "run of %lld samples with %d threads: status %d (%s)", (long long)samples,
                    threads, rc, ctx ? m->error(ctx) : "create returned NULL");
    m->destroy(ctx);
    if (ok) return out;
    free(out);
    return NULL;
}

/* ---- the descriptor ---- */

static void check_tensor_info(const char *what, const layerc_tensor_info *t)
{
    check(t->rank >= 1 && t->rank <= LAYERC_MAX_RANK, "%s: rank %d", what, t->rank);
    check(t->dtype == LAYERC_F32 || t->dtype == LAYERC_I64, "%s: dtype %d", what, t->dtype);
    check(t->batch_dim == 0 || t->batch_dim == -1, "%s: batch_dim %d", what, t->batch_dim);
    for (int i = 0; i < t->rank && i < LAYERC_MAX_RANK; i++)
        check(t->dims[i] >= 1, "%s: dims[%d] = %lld", what, i, (long long)t->dims[i]);
    if (t->batch_dim == 0)
        check(t->dims[0] == 1, "%s: a run-time batch dimension holds %lld, not 1", what, (long long)t->dims[0]);
}

static bool check_descriptor(const layerc_model_desc *m)
{
    if (!check(m->abi_version == LAYERC_ABI_VERSION, "abi_version %u, expected %d", m->abi_version, LAYERC_ABI_VERSION))
        return false;
    bool calls = m->create && m->run && m->destroy && m->error && m->set_threads && m->run_observed;
    if (!check(calls, "a function pointer of the descriptor is NULL")) return false;
    check(m->name && m->name[0], "name is NULL or empty");
    check_tensor_info("input", &m->input);
    check_tensor_info("output", &m->output);
    check(m->output.dtype == LAYERC_F32, "output dtype %d, expected f32", m->output.dtype);
    check(m->output.batch_dim == m->input.batch_dim, "output batch_dim %d but input batch_dim %d", m->output.batch_dim,
          m->input.batch_dim);
    check(m->workspace_bytes >= 0, "workspace_bytes %lld", (long long)m->workspace_bytes);
    if (!check(m->num_layers >= 1 && m->layer_names && m->layer_outputs, "num_layers %d, layer_names %p, layer_outputs %p",
               m->num_layers, (const void *)m->layer_names, (const void *)m->layer_outputs))
        return false;
    for (int i = 0; i < m->num_layers; i++) {
        char what[64];
        snprintf(what, sizeof what, "layer_outputs[%d]", i);
        check(m->layer_names[i] && m->layer_names[i][0], "layer_names[%d] is NULL or empty", i);
        check_tensor_info(what, &m->layer_outputs[i]);
    }
    check(same_shape(&m->layer_outputs[m->num_layers - 1], &m->output), "the last layer's output shape is not the output's");
    return true;
}

/* ---- misuse: NULL arguments, bad batches and thread counts ---- */

static void check_null_context(const layerc_model_desc *m, const void *in, float *out)
{
    int64_t b = api_batch(m, 1);
    check(m->run(NULL, in, out, b) == LAYERC_ERR_NULL, "run(NULL ctx) is not LAYERC_ERR_NULL");
    check(m->run_observed(NULL, in, out, b, NULL, NULL) == LAYERC_ERR_NULL, "run_observed(NULL ctx) is not LAYERC_ERR_NULL");
    check(m->set_threads(NULL, 2) == LAYERC_ERR_NULL, "set_threads(NULL ctx) is not LAYERC_ERR_NULL");
    check(m->error(NULL) != NULL, "error(NULL ctx) is NULL");
    m->destroy(NULL);
}

static void expect_error(const layerc_model_desc *m, layerc_ctx *ctx, int got, int want, const char *what)
{
    const char *text = m->error(ctx);
    check(got == want, "%s: status %d, expected %d", what, got, want);
    check(text && text[0], "%s: error() is %s", what, text ? "empty" : "NULL");
}

static void check_null_buffers(const layerc_model_desc *m, layerc_ctx *ctx, const void *in, float *out)
{
    int64_t b = api_batch(m, 1);
    expect_error(m, ctx, m->run(ctx, NULL, out, b), LAYERC_ERR_NULL, "run(NULL input)");
    expect_error(m, ctx, m->run(ctx, in, NULL, b), LAYERC_ERR_NULL, "run(NULL output)");
    expect_error(m, ctx, m->run(ctx, NULL, NULL, b), LAYERC_ERR_NULL, "run(NULL input and output)");
    expect_error(m, ctx, m->run_observed(ctx, NULL, out, b, NULL, NULL), LAYERC_ERR_NULL, "run_observed(NULL input)");
}

static void check_bad_batches(const layerc_model_desc *m, layerc_ctx *ctx, const void *in, float *out)
{
    const int64_t named_bad[] = {0, -1, INT64_MIN, INT64_MAX, INT64_MAX / 2};
    const int64_t fixed = m->input.dims[0];
    const int64_t fixed_bad[] = {-1, 1, fixed - 1, fixed + 1, INT64_MAX, INT64_MAX / 2, INT64_MIN};
    const int64_t *bad = named_batch(m) ? named_bad : fixed_bad;
    size_t count = named_batch(m) ? sizeof named_bad / sizeof *bad : sizeof fixed_bad / sizeof *bad;
    for (size_t i = 0; i < count; i++) {
        if (!named_batch(m) && (bad[i] == 0 || bad[i] == fixed)) continue; /* e.g. fixed - 1 == 0 */
        char what[64];
        snprintf(what, sizeof what, "run(batch %lld)", (long long)bad[i]);
        expect_error(m, ctx, m->run(ctx, in, out, bad[i]), LAYERC_ERR_BATCH, what);
    }
}

/* A batch the checks accept but whose activation memory cannot exist: an error, and the context stays usable. */
static void check_huge_batch(const layerc_model_desc *m, layerc_ctx *ctx, const void *in, float *out, const float *want)
{
    if (!named_batch(m) || m->workspace_bytes < 1024) return;
    int rc = m->run(ctx, in, out, (int64_t)1 << 40);
    check(rc == LAYERC_ERR_NOMEM || rc == LAYERC_ERR_BATCH, "run(batch 2^40): status %d, expected NOMEM or BATCH", rc);
    check(m->error(ctx)[0] != '\0', "run(batch 2^40): error() is empty");
    rc = m->run(ctx, in, out, 1);
    check(rc == LAYERC_OK && same_bits(out, want, elements(&m->output, 1)),
          "a run after a failed huge batch: status %d (%s)", rc, m->error(ctx));
}

static void check_bad_threads(const layerc_model_desc *m, layerc_ctx *ctx)
{
    const int bad[] = {0, -1, 100000};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char what[64];
        snprintf(what, sizeof what, "set_threads(%d)", bad[i]);
        expect_error(m, ctx, m->set_threads(ctx, bad[i]), LAYERC_ERR_THREADS, what);
    }
}

static void check_misuse(const layerc_model_desc *m)
{
    int64_t samples = samples_of(m, 1);
    void *in = make_input(m, samples);
    float *out = make_output(m, samples), *want = run_fresh(m, in, samples, 1);
    layerc_ctx *ctx = m->create();
    if (check(ctx && in && out && want, "setting up the misuse checks failed")) {
        check(m->error(ctx) && m->error(ctx)[0] == '\0', "error() of a fresh context is not \"\"");
        check_null_context(m, in, out);
        check_null_buffers(m, ctx, in, out);
        check_bad_batches(m, ctx, in, out);
        check_bad_threads(m, ctx);
        int rc = m->run(ctx, in, out, api_batch(m, samples));
        check(rc == LAYERC_OK, "a good run after errors: status %d (%s)", rc, m->error(ctx));
        check(m->error(ctx)[0] == '\0', "a successful run did not clear the error: \"%s\"", m->error(ctx));
        check(same_bits(out, want, elements(&m->output, samples)), "a run after errors differs from a fresh context's");
        check_huge_batch(m, ctx, in, out, want);
    }
    m->destroy(ctx);
    free(in);
    free(out);
    free(want);
}

/* ---- results: finite, independent of threads, batch history and fixed-batch spelling ---- */

static void check_threads_agree(const layerc_model_desc *m, int64_t samples)
{
    void *in = make_input(m, samples);
    int64_t n = elements(&m->output, samples);
    float *one = run_fresh(m, in, samples, 1);
    if (one) check(all_finite(one, n), "batch %lld: an output is not finite", (long long)samples);
    for (int threads = 2; one && threads <= 3; threads++) {
        float *other = run_fresh(m, in, samples, threads);
        if (other)
            check(same_bits(one, other, n), "batch %lld: %d threads differ from 1 thread", (long long)samples, threads);
        free(other);
    }
    free(one);
    free(in);
}

/* One context runs 1 sample, then 3 (its workspace grows), then 1 again. */
static void check_batch_history(const layerc_model_desc *m)
{
    void *in = make_input(m, 3);
    float *want1 = run_fresh(m, in, 1, 1), *want3 = run_fresh(m, in, 3, 1), *out = make_output(m, 3);
    layerc_ctx *ctx = m->create();
    if (check(ctx && want1 && want3 && out, "setting up the batch-history check failed")) {
        int rc = m->run(ctx, in, out, 1);
        rc = rc ? rc : m->run(ctx, in, out, 3);
        check(rc == LAYERC_OK && same_bits(out, want3, elements(&m->output, 3)),
              "batch 3 after batch 1 differs (status %d)", rc);
        rc = rc ? rc : m->run(ctx, in, out, 1);
        check(rc == LAYERC_OK && same_bits(out, want1, elements(&m->output, 1)),
              "batch 1 after batch 3 differs (status %d)", rc);
        int64_t per = elements(&m->output, 1);
        bool agree = true;
        for (int64_t i = 0; i < per; i++)
            agree = agree && fabsf(want3[i] - want1[i]) <= 1e-5f + 1e-5f * fabsf(want1[i]);
        check(agree, "sample 0 of a batch of 3 is not close to the same sample alone");
    }
    m->destroy(ctx);
    free(in);
    free(want1);
    free(want3);
    free(out);
}

/* A fixed-batch model takes 0 or its declared batch, with the same result. */
static void check_fixed_batch_spellings(const layerc_model_desc *m)
{
    int64_t samples = m->input.dims[0], n = elements(&m->output, samples);
    void *in = make_input(m, samples);
    float *a = make_output(m, samples), *b = make_output(m, samples);
    layerc_ctx *ctx = m->create();
    int rc0 = ctx ? m->run(ctx, in, a, 0) : -1, rcd = ctx ? m->run(ctx, in, b, samples) : -1;
    check(rc0 == LAYERC_OK && rcd == LAYERC_OK, "fixed batch: run(0) status %d, run(%lld) status %d", rc0,
          (long long)samples, rcd);
    check(same_bits(a, b, n), "fixed batch: run(0) and run(%lld) differ", (long long)samples);
    m->destroy(ctx);
    free(in);
    free(a);
    free(b);
}

/* ---- concurrency: separate contexts on separate threads ---- */

typedef struct Worker {
    const layerc_model_desc *m;
    const void *input;
    const float *want;
    int64_t samples;
    int threads;
    int mismatches, errors; /* written by the worker, read after join */
} Worker;

static void *worker_main(void *arg)
{
    Worker *w = arg;
    int64_t n = elements(&w->m->output, w->samples);
    float *out = make_output(w->m, w->samples);
    layerc_ctx *ctx = w->m->create();
    if (!ctx || !out || w->m->set_threads(ctx, w->threads) != LAYERC_OK) w->errors++;
    for (int i = 0; ctx && out && i < CONCURRENT_RUNS; i++) {
        memset(out, 0xff, (size_t)n * sizeof *out);
        if (w->m->run(ctx, w->input, out, api_batch(w->m, w->samples)) != LAYERC_OK) w->errors++;
        else if (!same_bits(out, w->want, n)) w->mismatches++;
    }
    w->m->destroy(ctx);
    free(out);
    return NULL;
}

static void check_concurrent(const layerc_model_desc *m)
{
    int64_t samples = samples_of(m, 3);
    void *in = make_input(m, samples);
    float *want = run_fresh(m, in, samples, 1);
    Worker w[CONCURRENT_CONTEXTS];
    pthread_t t[CONCURRENT_CONTEXTS];
    bool started[CONCURRENT_CONTEXTS] = {false};
    for (int i = 0; want && i < CONCURRENT_CONTEXTS; i++) {
        w[i] = (Worker){.m = m, .input = in, .want = want, .samples = samples, .threads = i + 1};
        started[i] = pthread_create(&t[i], NULL, worker_main, &w[i]) == 0;
        check(started[i], "cannot start worker thread %d", i);
    }
    for (int i = 0; i < CONCURRENT_CONTEXTS; i++) {
        if (!started[i]) continue;
        pthread_join(t[i], NULL);
        check(w[i].errors == 0 && w[i].mismatches == 0,
              "concurrent context %d (%d threads): %d of %d runs failed, %d differ from a single run", i, w[i].threads,
              w[i].errors, CONCURRENT_RUNS, w[i].mismatches);
    }
    free(in);
    free(want);
}

/* ---- run_observed ---- */

typedef struct Observed {
    const layerc_model_desc *m;
    int calls, out_of_order, bad_shape, bad_batch, bad_data;
    int64_t batch;      /* the batch run_observed was given (named batch only) */
    float *last;        /* a copy of the last layer's data */
    int64_t last_count;
} Observed;

static void observe(void *user, int32_t layer, const float *data, const layerc_tensor_info *shape, int64_t batch)
{
    Observed *o = user;
    const layerc_model_desc *m = o->m;
    if (layer != o->calls++ || layer < 0 || layer >= m->num_layers) {
        o->out_of_order++;
        return;
    }
    if (!shape || !same_shape(shape, &m->layer_outputs[layer])) o->bad_shape++;
    if (named_batch(m) && batch != o->batch) o->bad_batch++;
    int64_t n = elements(&m->layer_outputs[layer], named_batch(m) ? o->batch : 1);
    if (!data || !all_finite(data, n)) o->bad_data++;
    if (data && layer == m->num_layers - 1 && n == o->last_count) memcpy(o->last, data, (size_t)n * sizeof *data);
}

static void check_observed(const layerc_model_desc *m)
{
    int64_t samples = samples_of(m, 2), n = elements(&m->output, samples);
    void *in = make_input(m, samples);
    float *want = run_fresh(m, in, samples, 1), *out = make_output(m, samples), *last = make_output(m, samples);
    Observed o = {.m = m, .batch = api_batch(m, samples), .last = last, .last_count = n};
    layerc_ctx *ctx = m->create();
    if (check(ctx && want && out && last, "setting up the observer check failed")) {
        int rc = m->run_observed(ctx, in, out, api_batch(m, samples), observe, &o);
        check(rc == LAYERC_OK, "run_observed: status %d (%s)", rc, m->error(ctx));
        check(o.calls == m->num_layers && !o.out_of_order, "observer: %d calls (%d out of order) for %d layers", o.calls,
              o.out_of_order, m->num_layers);
        check(!o.bad_shape, "observer: %d calls with a shape other than layer_outputs[layer]", o.bad_shape);
        check(!o.bad_batch, "observer: %d calls with a batch other than run_observed's", o.bad_batch);
        check(!o.bad_data, "observer: %d calls with NULL or non-finite data", o.bad_data);
        check(same_bits(out, want, n), "run_observed's output differs from run's");
        check(same_bits(last, out, n), "the last layer's observed data differs from the output");
        rc = m->run_observed(ctx, in, out, api_batch(m, samples), NULL, NULL);
        check(rc == LAYERC_OK && same_bits(out, want, n),
              "run_observed without an observer: status %d or output differs", rc);
    }
    m->destroy(ctx);
    free(in);
    free(want);
    free(out);
    free(last);
}

/* ---- several inputs and outputs: run_multi ---- */

/* The inputs and outputs arrays describe every tensor; their first entries are `input` and `output`. */
static bool check_io_arrays(const layerc_model_desc *m)
{
    bool ok = check(m->num_inputs >= 1 && m->num_outputs >= 1 && m->inputs && m->outputs && m->input_names &&
                        m->output_names && m->input_id_limits && m->run_multi,
                    "descriptor: %d inputs, %d outputs, or a NULL array", m->num_inputs, m->num_outputs);
    if (!ok) return false;
    check(same_shape(&m->inputs[0], &m->input) && same_shape(&m->outputs[0], &m->output),
          "descriptor: inputs[0] / outputs[0] differ from input / output");
    check(m->input_id_limits[0] == m->input_id_limit, "descriptor: input_id_limits[0] differs from input_id_limit");
    for (int k = 0; k < m->num_inputs; k++) check(m->input_names[k] && m->input_names[k][0], "input %d has no name", k);
    for (int k = 0; k < m->num_outputs; k++) check(m->output_names[k] && m->output_names[k][0], "output %d has no name", k);
    return true;
}

/* One model of one input and one output: run_multi is run. */
static void check_run_multi_single(const layerc_model_desc *m)
{
    int64_t samples = samples_of(m, 2), n = elements(&m->output, samples);
    void *in = make_input(m, samples);
    float *want = run_fresh(m, in, samples, 1), *out = make_output(m, samples);
    layerc_ctx *ctx = m->create();
    if (check(ctx && want && out, "setting up the run_multi check failed")) {
        const void *ins[1] = {in};
        void *outs[1] = {out};
        int rc = m->run_multi(ctx, ins, outs, api_batch(m, samples), NULL, NULL);
        check(rc == LAYERC_OK && same_bits(out, want, n), "run_multi: status %d or output differs from run's", rc);
        expect_error(m, ctx, m->run_multi(ctx, NULL, outs, api_batch(m, samples), NULL, NULL), LAYERC_ERR_NULL, "run_multi(NULL inputs)");
        ins[0] = NULL;
        expect_error(m, ctx, m->run_multi(ctx, ins, outs, api_batch(m, samples), NULL, NULL), LAYERC_ERR_NULL, "run_multi(inputs {NULL})");
    }
    m->destroy(ctx);
    free(in);
    free(want);
    free(out);
}

/* run_multi on fresh buffers: outputs[k] gets count[k] floats. */
static int run_multi_fresh(const layerc_model_desc *m, void **ins, float **outs, int64_t samples, int threads)
{
    layerc_ctx *ctx = m->create();
    int rc = !ctx ? -1 : m->set_threads(ctx, threads);
    if (rc == LAYERC_OK) rc = m->run_multi(ctx, (const void *const *)ins, (void *const *)outs, api_batch(m, samples), NULL, NULL);
    m->destroy(ctx);
    return rc;
}

/* A model of several inputs or outputs: run and run_observed refuse it; run_multi computes finite outputs,
 * the same for any thread count, and names a NULL input buffer. */
static void check_run_multi_several(const layerc_model_desc *m)
{
    int64_t samples = samples_of(m, 3);
    void *ins[MAX_IO] = {0};
    float *outs1[MAX_IO] = {0}, *outs2[MAX_IO] = {0};
    if (!check(m->num_inputs <= MAX_IO && m->num_outputs <= MAX_IO, "more than %d inputs or outputs", MAX_IO)) return;
    for (int k = 0; k < m->num_inputs; k++) {
        layerc_model_desc one = *m;
        one.input = m->inputs[k];
        ins[k] = make_input(&one, samples);
    }
    for (int k = 0; k < m->num_outputs; k++) {
        outs1[k] = calloc((size_t)elements(&m->outputs[k], samples), sizeof(float));
        outs2[k] = calloc((size_t)elements(&m->outputs[k], samples), sizeof(float));
    }
    layerc_ctx *ctx = m->create();
    if (check(ctx != NULL, "create returned NULL")) {
        expect_error(m, ctx, m->run(ctx, ins[0], outs1[0], api_batch(m, samples)), LAYERC_ERR_ARITY, "run of a model of several inputs or outputs");
        expect_error(m, ctx, m->run_observed(ctx, ins[0], outs1[0], api_batch(m, samples), NULL, NULL), LAYERC_ERR_ARITY,
                     "run_observed of a model of several inputs or outputs");
        void *saved = ins[m->num_inputs - 1];
        ins[m->num_inputs - 1] = NULL;
        int rc = m->run_multi(ctx, (const void *const *)ins, (void *const *)outs1, api_batch(m, samples), NULL, NULL);
        check(rc == LAYERC_ERR_NULL && strstr(m->error(ctx), "NULL"), "run_multi with a NULL input: status %d (%s)", rc, m->error(ctx));
        ins[m->num_inputs - 1] = saved;
    }
    m->destroy(ctx);
    int rc1 = run_multi_fresh(m, ins, outs1, samples, 1), rc2 = run_multi_fresh(m, ins, outs2, samples, 2);
    check(rc1 == LAYERC_OK && rc2 == LAYERC_OK, "run_multi: status %d / %d", rc1, rc2);
    for (int k = 0; k < m->num_outputs; k++) {
        int64_t n = elements(&m->outputs[k], samples);
        check(all_finite(outs1[k], n), "run_multi: output %d (%s) is not finite", k, m->output_names[k]);
        check(same_bits(outs1[k], outs2[k], n), "run_multi: output %d differs between 1 and 2 threads", k);
    }
    for (int k = 0; k < m->num_inputs; k++) free(ins[k]);
    for (int k = 0; k < m->num_outputs; k++) {
        free(outs1[k]);
        free(outs2[k]);
    }
}

/* ---- main ---- */

/* dlopen's path; a bare file name means the file here, not a search of the library path. */
static const layerc_model_desc *load(const char *path, void **lib)
{
    char local[4096];
    if (!strchr(path, '/') && snprintf(local, sizeof local, "./%s", path) < (int)sizeof local) path = local;
    *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!*lib) {
        fprintf(stderr, "test_api: %s\n", dlerror());
        return NULL;
    }
    const layerc_model_desc *(*entry)(void) = (const layerc_model_desc *(*)(void))dlsym(*lib, "layerc_model");
    if (!entry) fprintf(stderr, "test_api: %s has no layerc_model\n", path);
    return entry ? entry() : NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_api LIBRARY.so\n");
        return 2;
    }
    void *lib;
    const layerc_model_desc *m = load(argv[1], &lib);
    if (!m) return 2;
    if (!check_io_arrays(m)) {
        /* nothing more can be checked */
    } else if (m->num_inputs > 1 || m->num_outputs > 1) {
        check_run_multi_several(m);
    } else if (check_descriptor(m)) {
        check_run_multi_single(m);
        check_misuse(m);
        if (named_batch(m)) {
            check_threads_agree(m, 1);
            check_threads_agree(m, 3);
            check_batch_history(m);
        } else {
            check_threads_agree(m, m->input.dims[0]);
            check_fixed_batch_spellings(m);
        }
        check_concurrent(m);
        check_observed(m);
    }
    printf("api: %d passed, %d failed\n", passed, failed);
    dlclose(lib);
    return failed ? 1 : 0;
}
