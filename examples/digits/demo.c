/* demo.c - the README's main demo: the digits CNN that tools/train_digits.py trained with PyTorch,
 * compiled by layerc (libdigits.so + digits.h), run on the 360 held-out test images.
 *
 *   usage: demo DATA_DIR [--rounds R] [--pytorch-live TIMES.json]
 *
 * DATA_DIR is examples/digits: test_images.npy, test_labels.npy, PyTorch's outputs on them
 * (pytorch_logits.npy, pytorch_predictions.npy) and its times (pytorch_reference.json).  Prints the
 * accuracy, the agreement with PyTorch's predictions and the largest logit difference, and the time per
 * image at batch 1 and for the whole split, on 1 and 2 threads, beside PyTorch's recorded (and, with
 * --pytorch-live, just measured) times.  Exit status 1 when a prediction differs from PyTorch's (or a
 * file is missing or malformed), 2 for a bad command line.  examples/digits/run.sh builds and runs it. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "digits.h"

enum { IN = DIGITS_INPUT_SAMPLE_ELEMENTS, CLASSES = DIGITS_OUTPUT_SAMPLE_ELEMENTS, MAX_IMAGES = 100000 };

typedef struct TestSplit {
    int64_t count;
    float *images;         /* count x IN */
    int64_t *labels;       /* count */
    float *torch_logits;   /* count x CLASSES */
    int64_t *torch_labels; /* PyTorch's predicted classes, count */
} TestSplit;

/* ---- .npy files (little-endian float32 or int64, C order) ---- */

/* The element count of the shape tuple in an .npy header ("(360, 1, 8, 8)"), or -1. */
static int64_t npy_elements(const char *header)
{
    const char *p = strstr(header, "'shape':");
    if (!p || !(p = strchr(p, '('))) return -1;
    int64_t n = 1;
    for (p++; *p && *p != ')';) {
        char *end;
        long long d = strtoll(p, &end, 10);
        if (end == p) return -1;
        if (d < 0 || d > MAX_IMAGES * IN) return -1;
        n *= d;
        p = end + strspn(end, ", ");
    }
    return *p == ')' ? n : -1;
}

/* Opens DIR/NAME and reads its .npy header (version 1) into header; NULL, with a message, when it cannot. */
static FILE *open_npy(const char *dir, const char *name, char *header, size_t capacity)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "demo: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    unsigned char pre[10];
    size_t size = 0;
    if (fread(pre, 1, 10, f) == 10 && memcmp(pre, "\x93NUMPY\x01", 7) == 0) size = pre[8] | (size_t)pre[9] << 8;
    memset(header, 0, capacity);
    if (size > 0 && size < capacity && fread(header, 1, size, f) == size) return f;
    fprintf(stderr, "demo: %s is not a version-1 .npy file\n", path);
    fclose(f);
    return NULL;
}

/* Reads DIR/NAME, which must hold `elements` values of type descr ("<f4", "<i8"); NULL, with a message, if not. */
static void *read_npy(const char *dir, const char *name, const char *descr, int64_t elements)
{
    char header[1024], want[32];
    FILE *f = open_npy(dir, name, header, sizeof header);
    if (!f) return NULL;
    snprintf(want, sizeof want, "'descr': '%s'", descr);
    size_t item = descr[2] == '4' ? 4 : 8;
    void *data = NULL;
    if (strstr(header, want) && strstr(header, "'fortran_order': False") && npy_elements(header) == elements
        && (data = malloc(item * (size_t)elements)) && fread(data, item, (size_t)elements, f) == (size_t)elements) {
        fclose(f);
        return data;
    }
    fprintf(stderr, "demo: %s/%s does not hold %lld %s values in C order\n", dir, name, (long long)elements, descr);
    free(data);
    fclose(f);
    return NULL;
}

static int load_split(const char *dir, TestSplit *s)
{
    char header[1024];
    FILE *f = open_npy(dir, "test_images.npy", header, sizeof header);
    if (!f) return -1;
    fclose(f);
    int64_t elements = npy_elements(header);
    if (elements <= 0 || elements % IN != 0) {
        fprintf(stderr, "demo: %s/test_images.npy does not hold images of %d pixels\n", dir, IN);
        return -1;
    }
    s->count = elements / IN;
    s->images = read_npy(dir, "test_images.npy", "<f4", s->count * IN);
    s->labels = read_npy(dir, "test_labels.npy", "<i8", s->count);
    s->torch_logits = read_npy(dir, "pytorch_logits.npy", "<f4", s->count * CLASSES);
    s->torch_labels = read_npy(dir, "pytorch_predictions.npy", "<i8", s->count);
    return s->images && s->labels && s->torch_logits && s->torch_labels ? 0 : -1;
}

static void free_split(TestSplit *s)
{
    free(s->images);
    free(s->labels);
    free(s->torch_logits);
    free(s->torch_labels);
}

/* ---- PyTorch's times (pytorch_reference.json, or train_digits.py --time-only) ---- */

typedef struct TorchTimes {
    cJSON *root;
    const cJSON *ms; /* "ms_per_image": {"batch1_threads1": ...} */
} TorchTimes;

static int read_torch_times(const char *path, TorchTimes *t)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    long size = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0
        && (text = calloc(1, (size_t)size + 1)) && fread(text, 1, (size_t)size, f) == (size_t)size)
        t->root = cJSON_Parse(text);
    if (f) fclose(f);
    free(text);
    t->ms = t->root ? cJSON_GetObjectItemCaseSensitive(t->root, "ms_per_image") : NULL;
    if (cJSON_IsObject(t->ms)) return 0;
    fprintf(stderr, "demo: %s: %s\n", path, f ? "not a JSON object with \"ms_per_image\"" : strerror(errno));
    cJSON_Delete(t->root);
    t->root = NULL;
    return -1;
}

static double torch_ms(const TorchTimes *t, const char *key)
{
    const cJSON *v = t->root ? cJSON_GetObjectItemCaseSensitive(t->ms, key) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *torch_text(const TorchTimes *t, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(t->root, key);
    return cJSON_IsString(v) ? v->valuestring : "?";
}

/* ---- running and timing the compiled model ---- */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int argmax(const float *v)
{
    int best = 0;
    for (int i = 1; i < CLASSES; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static int run_checked(layerc_ctx *ctx, const float *in, float *out, int64_t batch)
{
    int rc = digits_run(ctx, in, out, batch);
    if (rc != 0) fprintf(stderr, "demo: digits_run: %s\n", digits_error(ctx));
    return rc;
}

/* One round: every image once, one call each (batch 1) or one call for all. */
static int run_round(layerc_ctx *ctx, const TestSplit *s, float *logits, int one_by_one)
{
    if (!one_by_one) return run_checked(ctx, s->images, logits, s->count);
    for (int64_t i = 0; i < s->count; i++)
        if (run_checked(ctx, s->images + i * IN, logits + i * CLASSES, 1) != 0) return -1;
    return 0;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median over rounds of one round's time, per image, in ms (after a warm-up round); NAN on error. */
static double ms_per_image(layerc_ctx *ctx, const TestSplit *s, float *logits, int one_by_one, int rounds)
{
    double times[64];
    if (run_round(ctx, s, logits, one_by_one) != 0) return NAN;
    for (int r = 0; r < rounds; r++) {
        double start = now_seconds();
        if (run_round(ctx, s, logits, one_by_one) != 0) return NAN;
        times[r] = now_seconds() - start;
    }
    qsort(times, (size_t)rounds, sizeof *times, compare_doubles);
    double median = rounds % 2 ? times[rounds / 2] : (times[rounds / 2 - 1] + times[rounds / 2]) / 2;
    return median * 1000.0 / (double)s->count;
}

/* ---- the report ---- */

static void print_accuracy(const TestSplit *s, const float *logits)
{
    int64_t correct = 0;
    for (int64_t i = 0; i < s->count; i++) correct += argmax(logits + i * CLASSES) == s->labels[i];
    printf("accuracy on the test split   %6.2f %%  (%lld of %lld correct)\n", 100.0 * (double)correct / (double)s->count,
           (long long)correct, (long long)s->count);
}

/* Prints the agreement with PyTorch's predictions and the largest logit difference; 0 when all agree. */
static int print_agreement(const TestSplit *s, const float *logits)
{
    int64_t agree = 0;
    double max_diff = 0;
    for (int64_t i = 0; i < s->count * CLASSES; i++) max_diff = fmax(max_diff, fabs(logits[i] - s->torch_logits[i]));
    for (int64_t i = 0; i < s->count; i++) agree += argmax(logits + i * CLASSES) == s->torch_labels[i];
    printf("agreement with PyTorch       %6.2f %%  (%lld of %lld predictions), max |logit difference| %.2g\n",
           100.0 * (double)agree / (double)s->count, (long long)agree, (long long)s->count, max_diff);
    for (int64_t i = 0, shown = 0; i < s->count && shown < 10; i++) {
        int mine = argmax(logits + i * CLASSES);
        if (mine == s->torch_labels[i]) continue;
        printf("  image %lld: layerc predicts %d, PyTorch %lld\n", (long long)i, mine, (long long)s->torch_labels[i]);
        shown++;
    }
    return agree == s->count ? 0 : 1;
}

static void print_ratio(double ms, double torch)
{
    if (isnan(torch)) printf("   %10s %8s", "-", "");
    else printf("   %10.4f %7.1fx", torch, torch / ms);
}

/* The timing table: layerc against the recorded PyTorch times (and the live ones when given). */
static int print_times(const TestSplit *s, float *logits, int rounds, const TorchTimes *recorded, const TorchTimes *live)
{
    printf("\ntime per image in ms (median of %d rounds over the %lld images; x: PyTorch's time / layerc's)\n", rounds,
           (long long)s->count);
    printf("                          layerc   PyTorch (recorded)%s\n", live->root ? "   PyTorch (now)" : "");
    layerc_ctx *ctx = digits_create();
    if (!ctx) {
        fprintf(stderr, "demo: out of memory\n");
        return -1;
    }
    int rc = 0;
    for (int threads = 1; threads <= 2 && rc == 0; threads++) {
        if (digits_set_threads(ctx, threads) != 0) {
            fprintf(stderr, "demo: %s\n", digits_error(ctx));
            rc = -1;
        }
        for (int one_by_one = 1; one_by_one >= 0 && rc == 0; one_by_one--) {
            char key[64], label[64];
            snprintf(key, sizeof key, "%s_threads%d", one_by_one ? "batch1" : "whole_split", threads);
            snprintf(label, sizeof label, "batch %lld, %d thread%s", one_by_one ? 1LL : (long long)s->count, threads,
                     threads > 1 ? "s" : "");
            double ms = ms_per_image(ctx, s, logits, one_by_one, rounds);
            if (isnan(ms)) rc = -1;
            printf("  %-20s %10.4f", label, ms);
            print_ratio(ms, torch_ms(recorded, key));
            if (live->root) print_ratio(ms, torch_ms(live, key));
            printf("\n");
        }
    }
    digits_destroy(ctx);
    printf("PyTorch (recorded): measured by tools/train_digits.py at training time (%s) on %s, torch %s\n",
           torch_text(recorded, "date"), torch_text(recorded, "machine"), torch_text(recorded, "torch"));
    if (live->root)
        printf("PyTorch (now): measured just now on this machine by tools/train_digits.py --time-only (%s), torch %s\n",
               torch_text(live, "rule"), torch_text(live, "torch"));
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: demo DATA_DIR [--rounds R (1 to 64)] [--pytorch-live TIMES.json]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *live_path = NULL;
    int rounds = 15;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--pytorch-live") == 0 && i + 1 < argc) live_path = argv[++i];
        else if (argv[i][0] != '-' && !dir) dir = argv[i];
        else return usage();
    }
    if (!dir || rounds < 1 || rounds > 64) return usage();

    TestSplit split = {0};
    TorchTimes recorded = {0}, live = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s/pytorch_reference.json", dir);
    if (load_split(dir, &split) != 0 || read_torch_times(path, &recorded) != 0
        || (live_path && read_torch_times(live_path, &live) != 0)) {
        free_split(&split);
        cJSON_Delete(recorded.root);
        return 1;
    }
    size_t bytes = sizeof(float) * CLASSES * (size_t)split.count;
    float *logits = malloc(bytes), *timed = malloc(bytes);
    layerc_ctx *ctx = digits_create();
    int status = logits && timed && ctx && run_checked(ctx, split.images, logits, split.count) == 0 ? 0 : 1;
    digits_destroy(ctx);
    if (status == 0) {
        printf("Digits: a CNN trained with PyTorch on scikit-learn's 8x8 handwritten digits, compiled by layerc,\n"
               "on the %lld test images held out from training\n\n", (long long)split.count);
        print_accuracy(&split, logits);
        status = print_agreement(&split, logits);
        if (print_times(&split, timed, rounds, &recorded, &live) != 0) status = 1;
        else if (memcmp(timed, logits, bytes) != 0) { /* the last timed run: the whole split on 2 threads */
            fprintf(stderr, "demo: the timed runs' outputs differ from the first run's\n");
            status = 1;
        }
    }
    free(logits);
    free(timed);
    free_split(&split);
    cJSON_Delete(recorded.root);
    cJSON_Delete(live.root);
    return status;
}
