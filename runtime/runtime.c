/* runtime.c - the tiny runtime linked into every generated library:
 * contexts (activation memory, error text), argument checks, and a pthread
 * pool that splits a kernel's work items.  Model-specific work lives in the
 * generated code; nothing here knows a layer. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime.h"

#define HIDDEN __attribute__((visibility("hidden")))

extern const layerc_model_desc __layerc_desc HIDDEN;

enum { WORKSPACE_ALIGN = 64, MAX_THREADS = 256, ERROR_SIZE = 256 };

/* Below this much work (about flops) a kernel step runs on the calling thread.
 * Handing a step to spinning workers costs about a microsecond, and the other
 * core then first fetches the data this one wrote; 1 M flops is about 5 us of
 * one core's AVX-512 FMA peak.  Measured at batch 1 on 2 threads, against 1
 * (Intel Xeon AVX-512, 2026-12-03): with 256 K, the digits CNN (two 0.6 M
 * steps) took 0.89x of its 1-thread speed and the tiny transformer (0.4 M
 * products) 0.78x; with 1 M both 1.00x, while VGG, MobileNetV2 and ResNet-18
 * kept their 1.6-1.8x.  (It was 1 M once before, lowered to 256 K for LeNet-5
 * on another machine; LeNet-5 is 1.02x with 1 M here.) */
static const int64_t MIN_PARALLEL_WORK = 1 << 20;

/* After a job a worker keeps polling for the next one this long before it
 * sleeps: the layers of a forward pass follow each other within microseconds,
 * and a futex wake-up costs tens of them. */
static const int64_t SPIN_NS = 200 * 1000;

typedef struct Job {
    layerc_kernel kernel;
    const void *input;
    void *output;
    int64_t batch, first, items; /* items [first, first + items), in `chunks` contiguous chunks */
    int chunks;
} Job;

/* The caller publishes a job by bumping `generation` (after writing `job` and the runs);
 * workers see it by polling, or are woken from `wake` when they sleep.
 * `sleepers` and `generation` are sequentially consistent, so a worker going
 * to sleep and a caller publishing cannot miss each other.
 *
 * The job's chunks are claimed, not assigned.  Each thread (the caller is
 * thread 0) has a run of them, so that when all are on time each works on the
 * same part of the data job after job (a recurrence's half of its weights
 * stays in that core's cache); a thread that has finished its run takes
 * chunks from the others' runs, and the caller waits only for the chunks
 * taken (`done`).  So a worker the OS has not run yet (a busy machine) costs
 * nothing: its run is done by the others.  Each run's claim word holds the
 * job's generation (low 32 bits) beside its next and end chunk, so a worker
 * that wakes after its job has ended finds a generation that is not its own
 * and claims nothing; a claimed chunk keeps its job (and the Job fields)
 * alive until it is done. */
typedef struct Run {
    atomic_uint_fast64_t claim; /* generation << 32 | next chunk << 16 | end chunk */
    char pad[64 - sizeof(atomic_uint_fast64_t)]; /* one cache line each */
} Run;

typedef struct Pool Pool;
typedef struct Worker {
    pthread_t thread;
    Pool *pool;
    int index; /* 1..nworkers; the caller is 0 */
} Worker;

struct Pool {
    int nworkers; /* threads besides the caller */
    Worker *workers;
    Run *runs;    /* nworkers + 1 */
    Job job;
    atomic_uint_fast64_t generation;
    atomic_int done;     /* chunks of the current job finished */
    atomic_int sleepers; /* workers waiting on `wake` */
    atomic_int stop;
    pthread_mutex_t mu;
    pthread_cond_t wake;
};

struct layerc_ctx {
    const layerc_model_desc *desc;
    void *workspace;
    int64_t workspace_capacity;
    int threads;
    Pool *pool;
    layerc_observer observe;
    void *observe_user;
    char error[ERROR_SIZE];
};

static int fail(layerc_ctx *ctx, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->error, sizeof ctx->error, fmt, ap);
    va_end(ap);
    return status;
}

/* ---- thread pool ---- */

/* One chunk a thread: a kernel may read a layer's weights once a call (the LSTM's recurrence), so more,
 * smaller calls cost more; at batch 32 the LSTM classifier ran 1.11x faster on 2 threads than on 1 with 4
 * chunks a thread, 2.03x with 2, 2.26x with 1, and CIFAR-10 at batch 16 1.86x with 1, 1.74x with 2 (Intel
 * Xeon AVX-512, 2026-12-03).  A late thread's chunk is still taken by the others. */
enum { CHUNKS_PER_THREAD = 1, MAX_CHUNKS = 0xffff };

static uint64_t claim_word(uint64_t generation, int next, int end)
{
    return (generation & 0xffffffffu) << 32 | (uint64_t)next << 16 | (uint64_t)end;
}

/* Takes the next chunk of run r of job `generation`; -1 when the run is done or that job has ended. */
static int claim_from(Run *r, uint64_t generation)
{
    uint64_t c = atomic_load(&r->claim);
    for (;;) {
        int next = (int)(c >> 16 & 0xffff), end = (int)(c & 0xffff);
        if (c >> 32 != (generation & 0xffffffffu) || next >= end) return -1;
        if (atomic_compare_exchange_weak(&r->claim, &c, c + ((uint64_t)1 << 16))) return next;
    }
}

/* A chunk for thread `self`: from its own run, else from the others'. */
static int claim_chunk(Pool *p, uint64_t generation, int self)
{
    int threads = p->nworkers + 1;
    for (int i = 0; i < threads; i++) {
        int k = claim_from(&p->runs[(self + i) % threads], generation);
        if (k >= 0) return k;
    }
    return -1;
}

/* Runs chunks of job `generation` on thread `self` until none is left. */
static void run_chunks(Pool *p, uint64_t generation, int self)
{
    for (int k; (k = claim_chunk(p, generation, self)) >= 0;) {
        const Job *job = &p->job;
        int64_t begin = job->items * k / job->chunks, end = job->items * (k + 1) / job->chunks;
        if (begin < end) job->kernel(job->input, job->output, job->batch, job->first + begin, job->first + end);
        atomic_fetch_add(&p->done, 1);
    }
}

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* Polls for a generation other than `seen` for SPIN_NS, then sleeps until one comes (or stop). */
static uint64_t wait_for_job(Pool *p, uint64_t seen)
{
    int64_t deadline = now_ns() + SPIN_NS;
    for (int polls = 0;; polls++) {
        uint64_t g = atomic_load(&p->generation);
        if (g != seen || atomic_load(&p->stop)) return g;
        if ((polls & 255) == 255 && now_ns() > deadline) break;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    while (atomic_load(&p->generation) == seen && !atomic_load(&p->stop)) pthread_cond_wait(&p->wake, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
    return atomic_load(&p->generation);
}

static void *worker_main(void *arg)
{
    const Worker *w = arg;
    Pool *p = w->pool;
    uint64_t seen = 0;
    for (;;) {
        seen = wait_for_job(p, seen);
        if (atomic_load(&p->stop)) break;
        run_chunks(p, seen, w->index);
    }
    return NULL;
}

static void wake_sleepers(Pool *p)
{
    if (atomic_load(&p->sleepers) == 0) return;
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
}

static void pool_destroy(Pool *p)
{
    if (!p) return;
    atomic_store(&p->stop, 1);
    wake_sleepers(p);
    for (int i = 0; i < p->nworkers; i++) pthread_join(p->workers[i].thread, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    free(p->workers);
    free(p->runs);
    free(p);
}

static Pool *pool_create(int nworkers)
{
    Pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->workers = calloc((size_t)nworkers, sizeof *p->workers);
    if (!p->workers || posix_memalign((void **)&p->runs, 64, sizeof(Run) * (size_t)(nworkers + 1)) != 0) {
        free(p->workers);
        free(p);
        return NULL;
    }
    for (int i = 0; i <= nworkers; i++) atomic_init(&p->runs[i].claim, 0);
    atomic_init(&p->generation, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->stop, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    for (int i = 0; i < nworkers; i++) {
        p->workers[i] = (Worker){.pool = p, .index = i + 1};
        if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
            p->nworkers = i;
            pool_destroy(p);
            return NULL;
        }
    }
    p->nworkers = nworkers;
    return p;
}

/* How many chunks a job of `items` is split into: CHUNKS_PER_THREAD per thread, at most one per item. */
static int chunk_count(int64_t items, int threads)
{
    int64_t chunks = (int64_t)threads * CHUNKS_PER_THREAD;
    if (chunks > items) chunks = items;
    return chunks > MAX_CHUNKS ? MAX_CHUNKS : (int)chunks;
}

HIDDEN void __layerc_rt_parallel(layerc_ctx *ctx, layerc_kernel kernel, const void *input, void *output, int64_t batch,
                                 int64_t first, int64_t items, int64_t cost_per_item)
{
    Pool *p = ctx->pool;
    if (!p || items < 2 || items * cost_per_item < MIN_PARALLEL_WORK) {
        kernel(input, output, batch, first, first + items);
        return;
    }
    int chunks = chunk_count(items, p->nworkers + 1);
    uint64_t generation = atomic_load(&p->generation) + 1;
    p->job = (Job){kernel, input, output, batch, first, items, chunks};
    atomic_store(&p->done, 0);
    int threads = p->nworkers + 1;
    for (int t = 0; t < threads; t++)
        atomic_store(&p->runs[t].claim, claim_word(generation, chunks * t / threads, chunks * (t + 1) / threads));
    atomic_store(&p->generation, generation); /* publishes job */
    wake_sleepers(p);
    run_chunks(p, generation, 0);
    /* Only chunks a worker has taken are left: they usually end within microseconds; when the
     * machine is oversubscribed, yield so a descheduled worker can finish its chunk. */
    for (int polls = 0; atomic_load(&p->done) < chunks; polls++) {
        if (polls < 4096) cpu_relax();
        else sched_yield();
    }
}

HIDDEN void __layerc_rt_observe(layerc_ctx *ctx, int32_t layer, const float *data, int64_t batch)
{
    if (ctx->observe) ctx->observe(ctx->observe_user, layer, data, &ctx->desc->layer_outputs[layer], batch);
}

/* ---- contexts ---- */


static int reserve_workspace(layerc_ctx *ctx, int64_t batch)
{
    int64_t per = ctx->desc->workspace_bytes;
    int64_t scale = ctx->desc->input.batch_dim == 0 ? batch : 1;
    if (per > 0 && scale > INT64_MAX / per) return fail(ctx, LAYERC_ERR_BATCH, "batch %lld is too large", (long long)batch);
    int64_t need = per * scale;
    if (need <= ctx->workspace_capacity) return LAYERC_OK;
    void *mem = NULL;
    size_t bytes = (size_t)((need + WORKSPACE_ALIGN - 1) / WORKSPACE_ALIGN * WORKSPACE_ALIGN);
    if (posix_memalign(&mem, WORKSPACE_ALIGN, bytes) != 0)
        return fail(ctx, LAYERC_ERR_NOMEM, "cannot allocate %lld bytes of activation memory", (long long)need);
    /* Zeros, not the heap's old contents: kernels that compute whole vectors read lanes past their
     * data (a Winograd band's last vector of tiles) and drop them, and old pointers read as floats
     * are subnormal, which made such a layer up to 9x slower, depending on the heap. */
    memset(mem, 0, bytes);
    free(ctx->workspace);
    ctx->workspace = mem;
    ctx->workspace_capacity = need;
    return LAYERC_OK;
}

HIDDEN layerc_ctx *__layerc_rt_create(void)
{
    if (__layerc_rt_cpu_unsupported()) return NULL; /* error(NULL) says why */
    layerc_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->desc = &__layerc_desc;
    ctx->threads = 1;
    if (reserve_workspace(ctx, 1) != LAYERC_OK) {
        free(ctx);
        return NULL;
    }
    return ctx;
}

HIDDEN void __layerc_rt_destroy(layerc_ctx *ctx)
{
    if (!ctx) return;
    pool_destroy(ctx->pool);
    free(ctx->workspace);
    free(ctx);
}

HIDDEN const char *__layerc_rt_error(const layerc_ctx *ctx)
{
    if (!ctx) {
        const char *why = __layerc_rt_cpu_unsupported();
        return why ? why : "NULL context";
    }
    return ctx->error;
}

HIDDEN int __layerc_rt_set_threads(layerc_ctx *ctx, int threads)
{
    if (!ctx) return LAYERC_ERR_NULL;
    if (threads < 1 || threads > MAX_THREADS)
        return fail(ctx, LAYERC_ERR_THREADS, "thread count must be 1 to %d, got %d", MAX_THREADS, threads);
    if (threads == ctx->threads) return LAYERC_OK;
    pool_destroy(ctx->pool);
    ctx->pool = NULL;
    ctx->threads = 1;
    if (threads > 1) {
        ctx->pool = pool_create(threads - 1);
        if (!ctx->pool) return fail(ctx, LAYERC_ERR_THREADS, "cannot start %d threads", threads);
    }
    ctx->threads = threads;
    return LAYERC_OK;
}

static int64_t tensor_bytes_per_item(const layerc_tensor_info *t)
{
    int64_t n = t->dtype == LAYERC_I64 ? 8 : 4;
    for (int i = 0; i < t->rank; i++) n *= t->dims[i];
    return n;
}

static int64_t largest_item(const layerc_tensor_info *t, int count, int64_t largest)
{
    for (int i = 0; i < count; i++)
        if (tensor_bytes_per_item(&t[i]) > largest) largest = tensor_bytes_per_item(&t[i]);
    return largest;
}

static int check_batch(layerc_ctx *ctx, int64_t *batch)
{
    const layerc_model_desc *d = ctx->desc;
    if (d->input.batch_dim != 0) {
        if (*batch != 0 && *batch != d->input.dims[0])
            return fail(ctx, LAYERC_ERR_BATCH, "model %s has a fixed batch of %lld; batch must be 0 or %lld, got %lld",
                        d->name, (long long)d->input.dims[0], (long long)d->input.dims[0], (long long)*batch);
        *batch = 1; /* the generated code's multiplier: shapes are fully constant */
        return LAYERC_OK;
    }
    int64_t per = largest_item(d->outputs, d->num_outputs, largest_item(d->inputs, d->num_inputs, 0));
    if (*batch < 1 || (per > 0 && *batch > (INT64_MAX / 4) / per))
        return fail(ctx, LAYERC_ERR_BATCH, "batch must be at least 1 (and the tensors must fit in memory), got %lld",
                    (long long)*batch);
    return LAYERC_OK;
}

/* "[1][3]": the position of flat element `at` of t (batch samples). */
static void format_position(char *buf, size_t size, const layerc_tensor_info *t, int64_t at)
{
    int64_t index[LAYERC_MAX_RANK];
    for (int i = t->rank - 1; i >= 0; i--) {
        int64_t dim = (i == 0 && t->batch_dim == 0) ? INT64_MAX : t->dims[i];
        index[i] = i == 0 ? at : at % dim;
        at = i == 0 ? 0 : at / dim;
    }
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < t->rank && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "[%lld]", (long long)index[i]);
}

/* Every token id of i64 input k in [0, its limit): the kernels index their tables with them unchecked. */
static int check_token_ids(layerc_ctx *ctx, int k, const void *input, int64_t batch)
{
    const layerc_model_desc *d = ctx->desc;
    const layerc_tensor_info *t = &d->inputs[k];
    if (t->dtype != LAYERC_I64) return LAYERC_OK;
    const int64_t *ids = input;
    int64_t count = tensor_bytes_per_item(t) / 8 * batch, limit = d->input_id_limits[k];
    for (int64_t i = 0; i < count; i++) {
        if (ids[i] >= 0 && ids[i] < limit) continue;
        char at[LAYERC_MAX_RANK * 24];
        format_position(at, sizeof at, t, i);
        const char *name = d->num_inputs > 1 ? d->input_names[k] : "input";
        return fail(ctx, LAYERC_ERR_INPUT, "token id %lld at %s%s is out of range: the embedding has %lld rows, ids 0 to %lld",
                    (long long)ids[i], name, at, (long long)limit, (long long)(limit - 1));
    }
    return LAYERC_OK;
}

static int check_buffers(layerc_ctx *ctx, const void *const *inputs, void *const *outputs)
{
    const layerc_model_desc *d = ctx->desc;
    if (!inputs || !outputs) return fail(ctx, LAYERC_ERR_NULL, "the %s array is NULL", inputs ? "outputs" : "inputs");
    for (int k = 0; k < d->num_inputs; k++)
        if (!inputs[k]) return fail(ctx, LAYERC_ERR_NULL, d->num_inputs > 1 ? "input %d (%s) buffer is NULL" : "input buffer is NULL", k, d->input_names[k]);
    for (int k = 0; k < d->num_outputs; k++)
        if (!outputs[k]) return fail(ctx, LAYERC_ERR_NULL, d->num_outputs > 1 ? "output %d (%s) buffer is NULL" : "output buffer is NULL", k, d->output_names[k]);
    return LAYERC_OK;
}

static int run_model(layerc_ctx *ctx, const void *const *inputs, void *const *outputs, int64_t batch, layerc_observer observe,
                     void *user)
{
    if (!ctx) return LAYERC_ERR_NULL;
    ctx->error[0] = '\0';
    int status = check_buffers(ctx, inputs, outputs);
    if (status == LAYERC_OK) status = check_batch(ctx, &batch);
    for (int k = 0; status == LAYERC_OK && k < ctx->desc->num_inputs; k++) status = check_token_ids(ctx, k, inputs[k], batch);
    if (status == LAYERC_OK) status = reserve_workspace(ctx, batch);
    if (status != LAYERC_OK) return status;
    ctx->observe = observe;
    ctx->observe_user = user;
    ctx->desc->forward(ctx, inputs, outputs, ctx->workspace, batch);
    ctx->observe = NULL;
    return LAYERC_OK;
}

/* run() and run_observed(): one input, one output. */
static int run_single(layerc_ctx *ctx, const void *input, void *output, int64_t batch, layerc_observer observe, void *user)
{
    if (!ctx) return LAYERC_ERR_NULL;
    const layerc_model_desc *d = ctx->desc;
    if (d->num_inputs != 1 || d->num_outputs != 1)
        return fail(ctx, LAYERC_ERR_ARITY, "model %s has %d input%s and %d output%s: call run_multi with one buffer each",
                    d->name, d->num_inputs, d->num_inputs == 1 ? "" : "s", d->num_outputs, d->num_outputs == 1 ? "" : "s");
    ctx->error[0] = '\0';
    if (!input || !output) return fail(ctx, LAYERC_ERR_NULL, "%s buffer is NULL", input ? "output" : "input");
    return run_model(ctx, &input, &output, batch, observe, user);
}

HIDDEN int __layerc_rt_run(layerc_ctx *ctx, const void *input, void *output, int64_t batch)
{
    return run_single(ctx, input, output, batch, NULL, NULL);
}

HIDDEN int __layerc_rt_run_observed(layerc_ctx *ctx, const void *input, void *output, int64_t batch,
                                    layerc_observer observe, void *user)
{
    return run_single(ctx, input, output, batch, observe, user);
}

HIDDEN int __layerc_rt_run_multi(layerc_ctx *ctx, const void *const *inputs, void *const *outputs, int64_t batch,
                                 layerc_observer observe, void *user)
{
    return run_model(ctx, inputs, outputs, batch, observe, user);
}

__attribute__((visibility("default"))) const layerc_model_desc *layerc_model(void) { return &__layerc_desc; }
