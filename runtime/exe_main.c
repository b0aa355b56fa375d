/* exe_main.c - the program of `layerc build --emit exe`: linked with one
 * model's code and the runtime, it reads each input from an .npy file (or
 * raw little-endian values on stdin, "-") and writes each output as an .npy
 * file ("-o -": stdout), through the model's descriptor (layerc.h).  For
 * quick use on a device: no Python, no loader, one file to copy.
 *   usage: MODEL [--threads T] INPUT... -o OUTPUT.npy...
 * Exit status: 0 success, 1 bad input data or a failed run, 2 misuse. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layerc.h"

enum { MAX_IO = 16, MAX_HEADER = 4096 };

/* A tensor as read: its values and the batch they hold. */
typedef struct Tensor {
    void *data;
    int64_t batch;
} Tensor;

static int64_t per_sample_elements(const layerc_tensor_info *t)
{
    int64_t n = 1;
    for (int i = t->batch_dim == 0 ? 1 : 0; i < t->rank; i++) n *= t->dims[i];
    return n;
}

static size_t element_bytes(const layerc_tensor_info *t) { return t->dtype == LAYERC_I64 ? 8 : 4; }

/* "(2, 3, 32, 32)" with dims[0] = batch for a run-time batch ("N" when batch < 0). */
static void format_shape(char *buf, size_t size, const layerc_tensor_info *t, int64_t batch)
{
    size_t used = (size_t)snprintf(buf, size, "(");
    for (int i = 0; i < t->rank && used < size; i++)
    {
        const char *sep = t->rank == 1 ? "," : i + 1 < t->rank ? ", " : "";
        if (i == 0 && t->batch_dim == 0 && batch < 0) used += (size_t)snprintf(buf + used, size - used, "N%s", sep);
        else used += (size_t)snprintf(buf + used, size - used, "%lld%s", (long long)(i == 0 && t->batch_dim == 0 ? batch : t->dims[i]), sep);
    }
    if (used < size) snprintf(buf + used, size - used, ")");
}

static void *read_stream(FILE *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            char *grown = realloc(buf, cap *= 2);
            if (!grown) free(buf);
            buf = grown;
        }
    }
    *len = n;
    return buf;
}

/* The value of 'key' in the .npy header's dict text, e.g. "'<f4'" or "(2, 3)". */
static const char *header_value(const char *header, const char *key)
{
    const char *p = strstr(header, key);
    if (!p) return NULL;
    p = strchr(p + strlen(key), ':');
    if (!p) return NULL;
    for (p++; *p == ' '; p++) {}
    return p;
}

/* Parses an .npy buffer into *t after checking it against the model's input `info`; NULL or what is wrong. */
static const char *parse_npy(const char *bytes, size_t len, const layerc_tensor_info *info, Tensor *t, char *why, size_t why_size)
{
    if (len < 10 || memcmp(bytes, "\x93NUMPY", 6) != 0) return "not an .npy file";
    int major = (unsigned char)bytes[6];
    size_t header_len = major == 1 ? (size_t)(unsigned char)bytes[8] | (size_t)(unsigned char)bytes[9] << 8
                                   : (size_t)(unsigned char)bytes[8] | (size_t)(unsigned char)bytes[9] << 8 |
                                         (size_t)(unsigned char)bytes[10] << 16 | (size_t)(unsigned char)bytes[11] << 24;
    size_t start = (major == 1 ? 10 : 12) + header_len;
    if (header_len >= MAX_HEADER || start > len) return "a truncated .npy header";
    char header[MAX_HEADER];
    memcpy(header, bytes + (major == 1 ? 10 : 12), header_len);
    header[header_len] = '\0';
    const char *descr = header_value(header, "'descr'"), *order = header_value(header, "'fortran_order'");
    const char *shape = header_value(header, "'shape'");
    const char *want = info->dtype == LAYERC_I64 ? "'<i8'" : "'<f4'";
    if (!descr || strncmp(descr, want, 5) != 0) {
        snprintf(why, why_size, "holds another dtype than the model's input (%s)", info->dtype == LAYERC_I64 ? "int64" : "float32");
        return why;
    }
    if (!order || strncmp(order, "False", 5) != 0) return "is in Fortran order (save it C-contiguous)";
    if (!shape || *shape != '(') return "has no shape";
    int64_t dims[LAYERC_MAX_RANK + 1];
    int rank = 0;
    for (const char *p = shape + 1; *p && *p != ')';) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p) break;
        if (rank <= LAYERC_MAX_RANK) dims[rank] = v;
        rank++;
        for (p = end; *p == ',' || *p == ' '; p++) {}
    }
    int match = rank == info->rank;
    for (int i = info->batch_dim == 0 ? 1 : 0; match && i < rank; i++) match = dims[i] == info->dims[i];
    if (!match) {
        char expected[256];
        format_shape(expected, sizeof expected, info, -1);
        snprintf(why, why_size, "has shape %.*s, the model's input is %s", (int)strcspn(shape, ")") + 1, shape, expected);
        return why;
    }
    t->batch = rank ? dims[0] : 1;
    size_t need = (size_t)(per_sample_elements(info) * (info->batch_dim == 0 ? t->batch : 1)) * element_bytes(info);
    if (len - start < need) return "holds fewer values than its shape says";
    t->data = malloc(need ? need : 1);
    if (!t->data) return "is too large for memory";
    memcpy(t->data, bytes + start, need);
    return NULL;
}

/* Raw values: the batch follows from their count. */
static const char *parse_raw(const char *bytes, size_t len, const layerc_tensor_info *info, Tensor *t, char *why, size_t why_size)
{
    size_t sample = (size_t)per_sample_elements(info) * element_bytes(info);
    if (len == 0 || (info->batch_dim == 0 ? len % sample != 0 : len != sample)) {
        char expected[256];
        format_shape(expected, sizeof expected, info, -1);
        snprintf(why, why_size, "%zu bytes: the input %s takes %s%zu bytes (%s values)", len, expected,
                 info->batch_dim == 0 ? "a multiple of " : "", sample, info->dtype == LAYERC_I64 ? "int64" : "float32");
        return why;
    }
    t->batch = info->batch_dim == 0 ? (int64_t)(len / sample) : info->dims[0];
    t->data = malloc(len);
    if (!t->data) return "too large for memory";
    memcpy(t->data, bytes, len);
    return NULL;
}

static int read_input(const char *path, const layerc_tensor_info *info, Tensor *t)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "error: cannot open '%s': %s\n", path, strerror(errno));
        return 0;
    }
    size_t len;
    char *bytes = read_stream(f, &len);
    if (f != stdin) fclose(f);
    char why[512];
    const char *error = !bytes ? "too large for memory"
                        : f == stdin && (len < 6 || memcmp(bytes, "\x93NUMPY", 6) != 0)
                            ? parse_raw(bytes, len, info, t, why, sizeof why)
                            : parse_npy(bytes, len, info, t, why, sizeof why);
    free(bytes);
    if (error) fprintf(stderr, "error: %s: %s\n", strcmp(path, "-") == 0 ? "stdin" : path, error);
    return !error;
}

static int write_npy(const char *path, const layerc_tensor_info *info, int64_t batch, const float *data)
{
    char shape[256], header[512];
    format_shape(shape, sizeof shape, info, batch);
    int n = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape);
    int total = (10 + n + 1 + 63) / 64 * 64; /* the data 64-byte aligned, the header ending in a newline */
    memset(header + n, ' ', (size_t)(total - 10 - n));
    header[total - 10 - 1] = '\n';
    unsigned char preamble[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)((total - 10) & 0xff),
                                  (unsigned char)((total - 10) >> 8)};
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "error: cannot write '%s': %s\n", path, strerror(errno));
        return 0;
    }
    size_t count = (size_t)(per_sample_elements(info) * (info->batch_dim == 0 ? batch : 1));
    int ok = fwrite(preamble, 1, 10, f) == 10 && fwrite(header, 1, (size_t)(total - 10), f) == (size_t)(total - 10) &&
             fwrite(data, sizeof(float), count, f) == count;
    ok = (f == stdout ? fflush(f) == 0 : fclose(f) == 0) && ok;
    if (!ok) fprintf(stderr, "error: cannot write '%s'\n", path);
    return ok;
}

static void describe(const layerc_model_desc *m, FILE *out)
{
    char shape[256];
    fprintf(out, "model %s, compiled for %s\n", m->name, m->target);
    for (int k = 0; k < m->num_inputs; k++) {
        format_shape(shape, sizeof shape, &m->inputs[k], -1);
        fprintf(out, "  input %s: %s %s\n", m->input_names[k], m->inputs[k].dtype == LAYERC_I64 ? "int64" : "float32", shape);
    }
    for (int k = 0; k < m->num_outputs; k++) {
        format_shape(shape, sizeof shape, &m->outputs[k], -1);
        fprintf(out, "  output %s: float32 %s\n", m->output_names[k], shape);
    }
}

static int usage(const char *program, const layerc_model_desc *m, const char *problem)
{
    FILE *out = problem ? stderr : stdout;
    if (problem) fprintf(stderr, "error: %s\n", problem);
    fprintf(out, "usage: %s [--threads T] INPUT... -o OUTPUT.npy...\n"
                 "  INPUT: an .npy file per model input, in order, or - for stdin (an .npy or raw little-endian values)\n"
                 "  -o OUTPUT.npy: once per model output, in order (-o - writes it to stdout)\n", program);
    describe(m, out);
    return problem ? 2 : 0;
}

typedef struct Args {
    const char *inputs[MAX_IO], *outputs[MAX_IO];
    int ninputs, noutputs, threads;
} Args;

static const char *parse_args(int argc, char **argv, Args *a)
{
    *a = (Args){.threads = 1};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-o") == 0 || strcmp(arg, "--threads") == 0 || strcmp(arg, "-t") == 0) {
            if (i + 1 == argc) return "an option needs a value";
            if (arg[1] == 'o') {
                if (a->noutputs == MAX_IO) return "too many -o";
                a->outputs[a->noutputs++] = argv[++i];
            } else {
                char *end;
                long t = strtol(argv[++i], &end, 10);
                if (*end || t < 1 || t > 256) return "--threads needs a number from 1 to 256";
                a->threads = (int)t;
            }
        } else if (arg[0] == '-' && arg[1]) {
            return "unknown option";
        } else {
            if (a->ninputs == MAX_IO) return "too many inputs";
            a->inputs[a->ninputs++] = arg;
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const layerc_model_desc *m = layerc_model();
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return usage(argv[0], m, NULL);
    Args a;
    const char *problem = parse_args(argc, argv, &a);
    char count[128];
    if (!problem && (a.ninputs != m->num_inputs || a.noutputs != m->num_outputs)) {
        snprintf(count, sizeof count, "the model takes %d input%s and %d -o, given %d and %d", m->num_inputs,
                 m->num_inputs == 1 ? "" : "s", m->num_outputs, a.ninputs, a.noutputs);
        problem = count;
    }
    if (problem) return usage(argv[0], m, problem);
    layerc_ctx *ctx = m->create();
    if (!ctx) {
        const char *why = m->cpu_unsupported();
        fprintf(stderr, "error: %s\n", why ? why : "out of memory");
        return 1;
    }
    Tensor in[MAX_IO] = {{0}};
    void *out[MAX_IO] = {0};
    int ok = m->set_threads(ctx, a.threads) == 0;
    for (int k = 0; ok && k < a.ninputs; k++) {
        ok = read_input(a.inputs[k], &m->inputs[k], &in[k]);
        if (ok && k > 0 && in[k].batch != in[0].batch) {
            fprintf(stderr, "error: %s has a batch of %lld, %s of %lld: the inputs share one\n", a.inputs[k], (long long)in[k].batch,
                    a.inputs[0], (long long)in[0].batch);
            ok = 0;
        }
    }
    int64_t batch = in[0].batch;
    for (int k = 0; ok && k < a.noutputs; k++) {
        size_t n = (size_t)(per_sample_elements(&m->outputs[k]) * (m->outputs[k].batch_dim == 0 ? batch : 1));
        ok = (out[k] = malloc((n ? n : 1) * sizeof(float))) != NULL;
    }
    const void *inputs[MAX_IO];
    for (int k = 0; k < a.ninputs; k++) inputs[k] = in[k].data;
    if (ok && m->run_multi(ctx, inputs, out, m->inputs[0].batch_dim == 0 ? batch : 0, NULL, NULL) != 0) {
        fprintf(stderr, "error: %s\n", m->error(ctx));
        ok = 0;
    }
    for (int k = 0; ok && k < a.noutputs; k++) ok = write_npy(a.outputs[k], &m->outputs[k], batch, out[k]);
    for (int k = 0; k < MAX_IO; k++) {
        free(in[k].data);
        free(out[k]);
    }
    m->destroy(ctx);
    return ok ? 0 : 1;
}
