/* test_pool.c - the runtime's thread pool (runtime/runtime.c, compiled into
 * this program) on its own: every item of every job runs exactly once, with
 * the job's own buffers and batch, for thread counts 1 to 4, item counts
 * from 1 to thousands, costs on both sides of the parallel threshold, kernels
 * that stall one thread, and two contexts running at once.  Built plain, with
 * ASan + UBSan, and with ThreadSanitizer (which checks the claim protocol's
 * ordering). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../unit_check.h"
#include "runtime.h"

/* The runtime reads the model's descriptor when a context is made: no workspace, a fixed batch. */
const layerc_model_desc __layerc_desc __attribute__((visibility("hidden"))) = {.workspace_bytes = 0};
/* ... and the CPU features it needs (runtime/cpu_check.c): none. */
const char *const __layerc_cpu_features[] __attribute__((visibility("hidden"))) = {NULL};
const char *const __layerc_cpu_messages[] __attribute__((visibility("hidden"))) = {NULL};

layerc_ctx *__layerc_rt_create(void);
void __layerc_rt_destroy(layerc_ctx *ctx);
int __layerc_rt_set_threads(layerc_ctx *ctx, int threads);

enum { MAX_ITEMS = 4096 };

typedef struct Tally {
    atomic_int runs[MAX_ITEMS];
    atomic_int wrong_args;
    int64_t batch;
    bool stall; /* every 7th item waits 50 us: a thread the OS has set aside */
} Tally;

static void count_items(const void *input, void *output, int64_t batch, int64_t begin, int64_t end)
{
    Tally *t = output;
    if (input != (const void *)t || batch != t->batch || begin < 0 || end > MAX_ITEMS || begin >= end)
        atomic_fetch_add(&t->wrong_args, 1);
    for (int64_t i = begin; i < end && i < MAX_ITEMS; i++) {
        if (i >= 0) atomic_fetch_add(&t->runs[i], 1);
        if (t->stall && i % 7 == 0) nanosleep(&(struct timespec){0, 50000}, NULL);
    }
}

static uint64_t next_random(uint64_t *s)
{
    *s = *s * 6364136223846793005u + 1442695040888963407u;
    return *s >> 33;
}

/* Runs `jobs` random jobs on ctx; returns how many ran some item other than exactly once. */
static int run_jobs(layerc_ctx *ctx, int jobs, uint64_t seed, bool stall, Tally *t)
{
    int bad = 0;
    for (int j = 0; j < jobs; j++) {
        int64_t items = 1 + (int64_t)(next_random(&seed) % 3000), first = (int64_t)(next_random(&seed) % 1000);
        int64_t cost = (int64_t)1 << (next_random(&seed) % 14); /* 1 .. 8192 flops an item */
        memset(t->runs, 0, sizeof t->runs);
        t->batch = 1 + j % 5;
        t->stall = stall && j % 50 == 0;
        __layerc_rt_parallel(ctx, count_items, t, t, t->batch, first, items, cost);
        for (int64_t i = 0; i < MAX_ITEMS; i++)
            if (atomic_load(&t->runs[i]) != (i >= first && i < first + items)) {
                bad++;
                break;
            }
    }
    return bad;
}

typedef struct Runner {
    int threads, jobs, bad, wrong;
    uint64_t seed;
} Runner;

static void *run_context(void *arg)
{
    Runner *r = arg;
    static _Thread_local Tally t;
    layerc_ctx *ctx = __layerc_rt_create();
    if (!ctx || __layerc_rt_set_threads(ctx, r->threads) != 0) {
        r->bad = -1;
        return NULL;
    }
    atomic_store(&t.wrong_args, 0);
    r->bad = run_jobs(ctx, r->jobs, r->seed, false, &t);
    r->wrong = atomic_load(&t.wrong_args);
    __layerc_rt_destroy(ctx);
    return NULL;
}

int main(void)
{
    Ctx t = {{0}, 0, 0};
    static Tally tally;
    char detail[160];
    for (int threads = 1; threads <= 4; threads++) {
        for (int stall = 0; stall < 2; stall++) {
            layerc_ctx *ctx = __layerc_rt_create();
            check(&t, ctx && __layerc_rt_set_threads(ctx, threads) == 0, "context with threads", "");
            if (!ctx) continue;
            atomic_store(&tally.wrong_args, 0);
            int bad = run_jobs(ctx, stall ? 300 : 1500, 42 + (uint64_t)threads, stall, &tally);
            snprintf(detail, sizeof detail, "%d threads%s: %d jobs ran an item other than once, %d calls had wrong arguments",
                     threads, stall ? " (stalling kernels)" : "", bad, atomic_load(&tally.wrong_args));
            check(&t, bad == 0 && atomic_load(&tally.wrong_args) == 0, detail, detail);
            __layerc_rt_destroy(ctx);
        }
    }
    /* Two contexts at once, each with its own pool. */
    Runner runners[2] = {{.threads = 2, .jobs = 800, .seed = 7}, {.threads = 3, .jobs = 800, .seed = 9}};
    pthread_t ids[2];
    for (int i = 0; i < 2; i++) pthread_create(&ids[i], NULL, run_context, &runners[i]);
    for (int i = 0; i < 2; i++) pthread_join(ids[i], NULL);
    for (int i = 0; i < 2; i++) {
        snprintf(detail, sizeof detail, "concurrent context %d (%d threads): %d bad jobs, %d wrong calls", i, runners[i].threads,
                 runners[i].bad, runners[i].wrong);
        check(&t, runners[i].bad == 0 && runners[i].wrong == 0, detail, detail);
    }
    printf("test_pool: %d passed, %d failed\n", t.passed, t.failed);
    return t.failed != 0;
}
