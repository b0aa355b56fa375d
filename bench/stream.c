/* bench/stream.c - this machine's memory bandwidth, STREAM-style: copy
 * (a[i] = b[i]) and triad (a[i] = b[i] + s * c[i]) over float arrays, each
 * thread on its own contiguous part, repeated; the best repetition counts,
 * as in STREAM.  Bytes are counted as STREAM counts them: 2 x 4 bytes per
 * element for copy, 3 x 4 for triad (the write-allocate read of a is not
 * counted).  Array sizes: one far larger than the L3 cache (DRAM), and one of
 * a few MiB (the size of MobileNetV2's activations, which the depthwise layers
 * read from the last-level cache), so a kernel's GB/s can be set beside both.
 *
 * build: cc -O3 -march=native -pthread -o stream bench/stream.c
 * usage: stream [--threads LIST] [--mib LIST] [--reps R] [--json]
 *   LIST: comma-separated thread counts (default "1,2") and total MiB of the
 *   three arrays (default "384,6"); R: repetitions (default 10, each at
 *   least 0.05 s).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    float *a, *b, *c;
    long n, passes;
    int kernel; /* 0 copy, 1 triad */
    pthread_barrier_t *start;
    double seconds;
} Job;

static void *worker(void *arg)
{
    Job *j = arg;
    float *restrict a = j->a;
    const float *restrict b = j->b, *restrict c = j->c;
    const float s = 3.0f;
    pthread_barrier_wait(j->start);
    double t0 = now();
    for (long p = 0; p < j->passes; p++) {
        if (j->kernel == 0)
            for (long i = 0; i < j->n; i++) a[i] = b[i];
        else
            for (long i = 0; i < j->n; i++) a[i] = b[i] + s * c[i];
        __asm__ volatile("" : : "r"(a) : "memory");
    }
    j->seconds = now() - t0;
    return NULL;
}

/* GB/s of `kernel` with `threads` threads over arrays of n floats in total each (split between threads). */
static double run(int kernel, int threads, long n, int reps, float *a, float *b, float *c)
{
    long per = n / threads;
    double bytes_per_elem = kernel == 0 ? 8.0 : 12.0;
    /* passes so that a repetition takes >= 0.05 s at ~50 GB/s */
    long passes = (long)(0.05 * 50e9 / (bytes_per_elem * n)) + 1;
    double best = 0;
    for (int r = 0; r < reps; r++) {
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, (unsigned)threads);
        pthread_t tid[64];
        Job jobs[64];
        for (int t = 0; t < threads; t++) {
            jobs[t] = (Job){.a = a + t * per, .b = b + t * per, .c = c + t * per, .n = per, .passes = passes,
                            .kernel = kernel, .start = &start};
            pthread_create(&tid[t], NULL, worker, &jobs[t]);
        }
        double slowest = 0;
        for (int t = 0; t < threads; t++) {
            pthread_join(tid[t], NULL);
            if (jobs[t].seconds > slowest) slowest = jobs[t].seconds;
        }
        pthread_barrier_destroy(&start);
        double gbs = bytes_per_elem * per * threads * passes / slowest / 1e9;
        if (gbs > best) best = gbs;
    }
    return best;
}

int main(int argc, char **argv)
{
    const char *threads_list = "1,2", *mib_list = "384,6";
    int reps = 10, json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads_list = argv[++i];
        else if (!strcmp(argv[i], "--mib") && i + 1 < argc) mib_list = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json")) json = 1;
        else {
            fprintf(stderr, "usage: stream [--threads LIST] [--mib LIST] [--reps R] [--json]\n");
            return 2;
        }
    }
    int threads[16], nt = 0;
    long mibs[16];
    int nm = 0;
    for (char *s = strdup(threads_list), *tok = strtok(s, ","); tok && nt < 16; tok = strtok(NULL, ",")) threads[nt++] = atoi(tok);
    for (char *s = strdup(mib_list), *tok = strtok(s, ","); tok && nm < 16; tok = strtok(NULL, ",")) mibs[nm++] = atol(tok);
    if (json) printf("{\"stream\": [");
    int first = 1;
    for (int m = 0; m < nm; m++) {
        long n = mibs[m] * 1024 * 1024 / 4 / 3; /* floats per array */
        n = n / 64 * 64;
        float *a = aligned_alloc(64, n * 4), *b = aligned_alloc(64, n * 4), *c = aligned_alloc(64, n * 4);
        for (long i = 0; i < n; i++) a[i] = 0, b[i] = 1, c[i] = 2; /* touch every page */
        for (int t = 0; t < nt; t++) {
            double copy = run(0, threads[t], n, reps, a, b, c), triad = run(1, threads[t], n, reps, a, b, c);
            if (json)
                printf("%s{\"mib\": %ld, \"threads\": %d, \"copy_gbs\": %.2f, \"triad_gbs\": %.2f}", first ? "" : ", ", mibs[m],
                       threads[t], copy, triad);
            else
                printf("arrays %4ld MiB in all, %d thread%s: copy %6.1f GB/s, triad %6.1f GB/s\n", mibs[m], threads[t],
                       threads[t] > 1 ? "s" : " ", copy, triad);
            first = 0;
        }
        free(a), free(b), free(c);
    }
    if (json) printf("]}\n");
    return 0;
}
