/* bench/onednn_conv.c - one Conv2d (f32, forward inference) timed with oneDNN
 * 2.x's C API, as a peer of layerc in bench/run_all.sh.
 *
 * The convolution is created with every tensor's format "any", so oneDNN picks
 * its preferred blocked layouts (nChw8c and the like on AVX2), and with the
 * chosen algorithm: convolution_direct or convolution_winograd (oneDNN refuses
 * Winograd where it has no implementation: then this program prints a "skipped"
 * object and exits 3).  The weights are reordered into oneDNN's layout once,
 * before timing.  Timed:
 *   conv      the convolution primitive alone, blocked input to blocked output
 *             (oneDNN's best case: a network keeps the blocked layout between layers)
 *   with reorders  NCHW input -> blocked, convolution, blocked -> NCHW output
 *             (what a caller holding NCHW tensors, as layerc's, pays)
 * Runs: a warm-up of a tenth of --min-time (at least 2 runs), then runs until
 * --min-time seconds have passed and at least 10 runs (as `layerc bench`);
 * median, min and 90th percentile.  Threads: oneDNN's CPU runtime in Debian's
 * libdnnl is OpenMP, so --threads calls omp_set_num_threads (set
 * OMP_NUM_THREADS as well).
 *
 * With --input/--weights/--bias (raw little-endian f32: NCHW, OIHW, O) the
 * output of one run of the convolution (NCHW), before the timing, is written
 * to --output, for the numerical check against PyTorch; without them, the
 * tensors are filled with a fixed pseudo-random pattern.
 *
 * build: cc -O2 -fopenmp -o onednn_conv bench/onednn_conv.c -ldnnl
 * usage: onednn_conv --alg direct|winograd --shape N,C,H,W,K,R,S,STRIDE,PAD
 *                    [--threads T] [--min-time S] [--input X.f32 --weights W.f32
 *                    --bias B.f32 --output Y.f32]
 * prints one JSON object.
 */
#define _GNU_SOURCE
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(call)                                                                                     \
    do {                                                                                                \
        dnnl_status_t st_ = (call);                                                                     \
        if (st_ != dnnl_success) {                                                                      \
            fprintf(stderr, "onednn_conv: %s failed: %s (line %d)\n", #call, dnnl_status2str(st_), __LINE__); \
            exit(1);                                                                                    \
        }                                                                                               \
    } while (0)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* oneDNN's notation of a blocked layout: outer dims by decreasing stride
 * (upper case when also blocked), then the inner blocks, e.g. aBcd8b, ABcd8b8a */
static void layout_str(const dnnl_memory_desc_t *md, char *out, size_t size)
{
    if (md->format_kind != dnnl_blocked) {
        snprintf(out, size, "%s", dnnl_fmt_kind2str(md->format_kind));
        return;
    }
    const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
    int order[DNNL_MAX_NDIMS], nd = md->ndims;
    for (int i = 0; i < nd; i++)
        order[i] = i;
    for (int i = 0; i < nd; i++) /* stable sort by decreasing stride */
        for (int j = i + 1; j < nd; j++)
            if (b->strides[order[j]] > b->strides[order[i]]) {
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    size_t n = 0;
    for (int i = 0; i < nd && n + 1 < size; i++) {
        int blocked = 0;
        for (int k = 0; k < b->inner_nblks; k++)
            blocked |= b->inner_idxs[k] == order[i];
        out[n++] = (char)((blocked ? 'A' : 'a') + order[i]);
    }
    out[n] = 0;
    for (int k = 0; k < b->inner_nblks && n + 8 < size; k++)
        n += (size_t)snprintf(out + n, size - n, "%lld%c", (long long)b->inner_blks[k], (char)('a' + b->inner_idxs[k]));
}

static void fill(float *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)((seed >> 8) & 0xffff) / 65536.0f - 0.5f;
    }
}

static void read_f32(const char *path, float *p, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    if (fread(p, sizeof(float), n, f) != n || fgetc(f) != EOF) {
        fprintf(stderr, "onednn_conv: %s does not hold exactly %zu floats\n", path, n);
        exit(1);
    }
    fclose(f);
}

static dnnl_memory_t make_mem(const dnnl_memory_desc_t *md, dnnl_engine_t eng)
{
    dnnl_memory_t m;
    CHECK(dnnl_memory_create(&m, md, eng, DNNL_MEMORY_ALLOCATE));
    return m;
}

static float *mem_ptr(dnnl_memory_t m)
{
    void *p;
    CHECK(dnnl_memory_get_data_handle(m, &p));
    return p;
}

/* a reorder primitive from src_md to dst_md, or NULL when the layouts are equal */
static dnnl_primitive_t make_reorder(const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst, dnnl_engine_t eng)
{
    if (dnnl_memory_desc_equal(src, dst))
        return NULL;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t p;
    CHECK(dnnl_reorder_primitive_desc_create(&pd, src, eng, dst, eng, NULL));
    CHECK(dnnl_primitive_create(&p, pd));
    dnnl_primitive_desc_destroy(pd);
    return p;
}

static void run_reorder(dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to, dnnl_stream_t s)
{
    if (!r)
        return;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    CHECK(dnnl_primitive_execute(r, s, 2, args));
}

typedef struct {
    double median, min, p90;
    int runs;
} stats_t;

int main(int argc, char **argv)
{
    const char *alg_name = "direct", *shape = NULL, *in_path = NULL, *w_path = NULL, *b_path = NULL, *out_path = NULL;
    int threads = 1;
    double min_time = 1.0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            goto usage;
        if (!strcmp(a, "--alg"))
            alg_name = v;
        else if (!strcmp(a, "--shape"))
            shape = v;
        else if (!strcmp(a, "--threads"))
            threads = atoi(v);
        else if (!strcmp(a, "--min-time"))
            min_time = atof(v);
        else if (!strcmp(a, "--input"))
            in_path = v;
        else if (!strcmp(a, "--weights"))
            w_path = v;
        else if (!strcmp(a, "--bias"))
            b_path = v;
        else if (!strcmp(a, "--output"))
            out_path = v;
        else
            goto usage;
        i++;
    }
    long long N, C, H, W, K, R, S, stride, pad;
    if (!shape || sscanf(shape, "%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld", &N, &C, &H, &W, &K, &R, &S, &stride,
                         &pad) != 9 || threads < 1 || min_time < 0 || (!!in_path + !!w_path + !!b_path) % 3 != 0)
        goto usage;
    dnnl_alg_kind_t alg;
    if (!strcmp(alg_name, "direct"))
        alg = dnnl_convolution_direct;
    else if (!strcmp(alg_name, "winograd"))
        alg = dnnl_convolution_winograd;
    else
        goto usage;
    omp_set_num_threads(threads);

    const long long OH = (H + 2 * pad - R) / stride + 1, OW = (W + 2 * pad - S) / stride + 1;
    dnnl_dims_t src_dims = {N, C, H, W}, w_dims = {K, C, R, S}, b_dims = {K}, dst_dims = {N, K, OH, OW};
    dnnl_dims_t strides = {stride, stride}, padding = {pad, pad};

    dnnl_engine_t eng;
    dnnl_stream_t strm;
    CHECK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags));

    /* the caller's (PyTorch's) layouts */
    dnnl_memory_desc_t user_src, user_w, user_b, user_dst;
    CHECK(dnnl_memory_desc_init_by_tag(&user_src, 4, src_dims, dnnl_f32, dnnl_nchw));
    CHECK(dnnl_memory_desc_init_by_tag(&user_w, 4, w_dims, dnnl_f32, dnnl_oihw));
    CHECK(dnnl_memory_desc_init_by_tag(&user_b, 1, b_dims, dnnl_f32, dnnl_x));
    CHECK(dnnl_memory_desc_init_by_tag(&user_dst, 4, dst_dims, dnnl_f32, dnnl_nchw));

    /* the convolution, layouts left to oneDNN */
    dnnl_memory_desc_t any_src, any_w, any_dst;
    CHECK(dnnl_memory_desc_init_by_tag(&any_src, 4, src_dims, dnnl_f32, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&any_w, 4, w_dims, dnnl_f32, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&any_dst, 4, dst_dims, dnnl_f32, dnnl_format_tag_any));
    dnnl_convolution_desc_t cd;
    CHECK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, alg, &any_src, &any_w, &user_b, &any_dst,
                                             strides, padding, padding));
    dnnl_primitive_desc_t conv_pd;
    dnnl_status_t st = dnnl_primitive_desc_create(&conv_pd, &cd, NULL, eng, NULL);
    if (st != dnnl_success) {
        const dnnl_version_t *v = dnnl_version();
        printf("{\"alg\": \"%s\", \"threads\": %d, \"skipped\": \"oneDNN %d.%d.%d refuses convolution_%s for this "
               "shape on this CPU (%s)\"}\n",
               alg_name, threads, v->major, v->minor, v->patch, alg_name, dnnl_status2str(st));
        return 3;
    }
    const char *impl = "?";
    dnnl_primitive_desc_query(conv_pd, dnnl_query_impl_info_str, 0, &impl);
    const dnnl_memory_desc_t *src_md = dnnl_primitive_desc_query_md(conv_pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *w_md = dnnl_primitive_desc_query_md(conv_pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *dst_md = dnnl_primitive_desc_query_md(conv_pd, dnnl_query_dst_md, 0);
    const dnnl_memory_desc_t *scratch_md = dnnl_primitive_desc_query_md(conv_pd, dnnl_query_scratchpad_md, 0);
    char src_fmt[64], w_fmt[64], dst_fmt[64];
    layout_str(src_md, src_fmt, sizeof src_fmt);
    layout_str(w_md, w_fmt, sizeof w_fmt);
    layout_str(dst_md, dst_fmt, sizeof dst_fmt);
    dnnl_primitive_t conv;
    CHECK(dnnl_primitive_create(&conv, conv_pd));

    dnnl_memory_t m_user_src = make_mem(&user_src, eng), m_user_w = make_mem(&user_w, eng),
                  m_b = make_mem(&user_b, eng), m_user_dst = make_mem(&user_dst, eng);
    dnnl_memory_t m_src = make_mem(src_md, eng), m_w = make_mem(w_md, eng), m_dst = make_mem(dst_md, eng);
    dnnl_memory_t m_scratch = make_mem(scratch_md, eng);
    size_t n_src = (size_t)(N * C * H * W), n_w = (size_t)(K * C * R * S), n_dst = (size_t)(N * K * OH * OW);
    if (in_path) {
        read_f32(in_path, mem_ptr(m_user_src), n_src);
        read_f32(w_path, mem_ptr(m_user_w), n_w);
        read_f32(b_path, mem_ptr(m_b), (size_t)K);
    } else {
        fill(mem_ptr(m_user_src), n_src, 1);
        fill(mem_ptr(m_user_w), n_w, 2);
        fill(mem_ptr(m_b), (size_t)K, 3);
    }
    dnnl_primitive_t r_src = make_reorder(&user_src, src_md, eng), r_w = make_reorder(&user_w, w_md, eng),
                     r_dst = make_reorder(dst_md, &user_dst, eng);
    /* the weights once, outside the timing (a compiled network keeps them in oneDNN's layout) */
    if (r_w)
        run_reorder(r_w, m_user_w, m_w, strm);
    else
        memcpy(mem_ptr(m_w), mem_ptr(m_user_w), n_w * sizeof(float));
    if (!r_src)
        memcpy(mem_ptr(m_src), mem_ptr(m_user_src), n_src * sizeof(float));
    dnnl_exec_arg_t conv_args[5] = {{DNNL_ARG_SRC, m_src},         {DNNL_ARG_WEIGHTS, m_w}, {DNNL_ARG_BIAS, m_b},
                                    {DNNL_ARG_DST, m_dst},         {DNNL_ARG_SCRATCHPAD, m_scratch}};
    CHECK(dnnl_stream_wait(strm));

    { /* one run first: fills the blocked input; its output (NCHW) goes to --output for the check */
        run_reorder(r_src, m_user_src, m_src, strm);
        CHECK(dnnl_primitive_execute(conv, strm, 5, conv_args));
        if (r_dst)
            run_reorder(r_dst, m_dst, m_user_dst, strm);
        CHECK(dnnl_stream_wait(strm));
        const float *y = r_dst ? mem_ptr(m_user_dst) : mem_ptr(m_dst);
        FILE *f = out_path ? fopen(out_path, "wb") : NULL;
        if (out_path && (!f || fwrite(y, sizeof(float), n_dst, f) != n_dst || fclose(f) != 0)) {
            perror(out_path);
            return 1;
        }
    }
    stats_t res[2]; /* 0: conv alone, 1: with the input and output reorders */
    for (int mode = 0; mode < 2; mode++) {
        size_t cap = 1024, runs = 0;
        double *t = malloc(cap * sizeof(double));
        int warm = 0;
        double start = now(), warm_end = 0;
        for (;;) {
            double t0 = now();
            if (mode == 1)
                run_reorder(r_src, m_user_src, m_src, strm);
            CHECK(dnnl_primitive_execute(conv, strm, 5, conv_args));
            if (mode == 1)
                run_reorder(r_dst, m_dst, m_user_dst, strm);
            CHECK(dnnl_stream_wait(strm));
            double t1 = now();
            if (!warm_end) { /* warm-up: a tenth of the time, at least 2 runs */
                if (++warm >= 2 && t1 - start >= min_time / 10)
                    warm_end = t1;
                continue;
            }
            if (runs == cap)
                t = realloc(t, (cap *= 2) * sizeof(double));
            t[runs++] = (t1 - t0) * 1e3;
            if (runs >= 10 && t1 - warm_end >= min_time)
                break;
        }
        qsort(t, runs, sizeof(double), cmp_double);
        res[mode].median = runs % 2 ? t[runs / 2] : 0.5 * (t[runs / 2 - 1] + t[runs / 2]);
        res[mode].min = t[0];
        res[mode].p90 = t[(size_t)((double)(runs - 1) * 0.9 + 0.5)];
        res[mode].runs = (int)runs;
        free(t);
    }

    const dnnl_version_t *ver = dnnl_version();
    printf("{\"alg\": \"%s\", \"threads\": %d, \"omp_max_threads\": %d, \"impl\": \"%s\", \"version\": \"%d.%d.%d\", "
           "\"src_layout\": \"%s\", \"weights_layout\": \"%s\", \"dst_layout\": \"%s\", "
           "\"median_ms\": %.6f, \"min_ms\": %.6f, \"p90_ms\": %.6f, \"runs\": %d, "
           "\"with_reorders\": {\"median_ms\": %.6f, \"min_ms\": %.6f, \"p90_ms\": %.6f, \"runs\": %d}}\n",
           alg_name, threads, omp_get_max_threads(), impl, ver->major, ver->minor, ver->patch, src_fmt, w_fmt, dst_fmt,
           res[0].median, res[0].min, res[0].p90, res[0].runs, res[1].median, res[1].min, res[1].p90, res[1].runs);
    return 0;

usage:
    fprintf(stderr, "usage: onednn_conv --alg direct|winograd --shape N,C,H,W,K,R,S,STRIDE,PAD [--threads T]\n"
                    "                   [--min-time S] [--input X.f32 --weights W.f32 --bias B.f32 --output Y.f32]\n");
    return 2;
}
