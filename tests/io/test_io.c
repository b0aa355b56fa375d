/* test_io.c - tests of compiler/weights.c (safetensors reading, binding,
 * random initialisation) and compiler/npy.c (.npy reading and writing).
 *
 * Every malformed file is its own bytes, written to a temporary directory;
 * each must be refused with an error containing a specific phrase, reported
 * through a real Diag whose source is that file.  Good files round-trip with
 * values compared bit for bit (F16 subnormals, BF16, inf, nan).  Graphs for
 * the binding and initialisation tests come from the real front end.
 * Ends with "io: N passed, M failed"; exits 1 when anything failed.
 */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontend.h"
#include "npy.h"
#include "splitmix.h"
#include "weights.h"
#include "../unit_check.h"

static const char *path_in(const Ctx *t, const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", t->dir, name);
    return buf;
}

static void write_bytes(const char *path, const void *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(bytes, 1, len, f) != len) || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

static size_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

static unsigned char *read_bytes(const char *path, size_t *len)
{
    *len = file_size(path);
    unsigned char *buf = malloc(*len + 1);
    FILE *f = fopen(path, "rb");
    if (!buf || !f || fread(buf, 1, *len, f) != *len) {
        perror(path);
        exit(2);
    }
    fclose(f);
    return buf;
}

/* ---- a Diag whose text is captured ---- */

typedef struct Capture {
    Arena arena;
    Source src;
    Diag diag;
    FILE *out;
    char *text;
    size_t len;
} Capture;

static void cap_begin(Capture *c, const char *path)
{
    memset(c, 0, sizeof *c);
    arena_init(&c->arena);
    c->src.path = path;
    c->out = open_memstream(&c->text, &c->len);
    diag_init(&c->diag, &c->arena, &c->src, c->out);
}

static void cap_end(Capture *c) { fflush(c->out); }

static void cap_free(Capture *c)
{
    fclose(c->out);
    free(c->text);
    arena_free(&c->arena);
}

static bool has(const Capture *c, const char *phrase) { return c->text && strstr(c->text, phrase) != NULL; }

/* The call failed with an error naming the phrase, reported against the file. */
static void check_refused(Ctx *t, const char *name, bool ok, const Capture *c, const char *path, const char *phrase)
{
    char detail[2048];
    char prefix[300];
    snprintf(prefix, sizeof prefix, "%s: error: ", path);
    bool good = !ok && c->diag.errors > 0 && has(c, phrase) && has(c, prefix);
    snprintf(detail, sizeof detail, "ok=%d errors=%d; expected \"%s\" in:\n%s", ok, c->diag.errors, phrase,
             c->text ? c->text : "");
    check(t, good, name, detail);
}

/* ======================================================== safetensors */

/* 8-byte little-endian header length, the header, the data. */
static unsigned char *st_bytes(const char *json, const void *data, size_t dlen, size_t *len)
{
    size_t hlen = strlen(json);
    *len = 8 + hlen + dlen;
    unsigned char *b = malloc(*len + 1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(b + 8, json, hlen);
    if (dlen) memcpy(b + 8 + hlen, data, dlen);
    return b;
}

static void expect_st_raw(Ctx *t, const char *name, const void *bytes, size_t len, const char *phrase)
{
    char path[256], test[300];
    path_in(t, name, path, sizeof path);
    write_bytes(path, bytes, len);
    Capture c;
    cap_begin(&c, path);
    WeightSet w;
    bool ok = weights_read_safetensors(&c.arena, &c.diag, path, &w);
    cap_end(&c);
    snprintf(test, sizeof test, "safetensors refuses %s", name);
    check_refused(t, test, ok, &c, path, phrase);
    cap_free(&c);
}

static void expect_st_error(Ctx *t, const char *name, const char *json, size_t dlen, const char *phrase)
{
    unsigned char zeros[256] = {0};
    size_t len;
    unsigned char *b = st_bytes(json, zeros, dlen, &len);
    expect_st_raw(t, name, b, len, phrase);
    free(b);
}

static void test_st_header_length(Ctx *t)
{
    expect_st_raw(t, "empty.safetensors", "", 0, "a safetensors file starts with an 8-byte header length");
    expect_st_raw(t, "five.safetensors", "\x05\0\0\0\0", 5, "the file is 5 bytes");
    unsigned char huge[16] = {0, 0, 0, 0, 0, 1, 0, 0, '{', '}'};
    expect_st_raw(t, "absurd_header_len.safetensors", huge, sizeof huge, "expected at most 100000000");
    unsigned char past[20] = {200, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    expect_st_raw(t, "header_past_eof.safetensors", past, sizeof past, "the header length is 200 bytes but only 12 bytes follow it");
    unsigned char all_ones[12] = {255, 255, 255, 255, 255, 255, 255, 255, '{', '}', ' ', ' '};
    expect_st_raw(t, "header_len_max.safetensors", all_ones, sizeof all_ones, "expected at most");
}

static void test_st_json(Ctx *t)
{
    expect_st_error(t, "empty_header.safetensors", "", 0, "is not valid JSON");
    expect_st_error(t, "not_json.safetensors", "hello", 0, "is not valid JSON");
    expect_st_error(t, "truncated_json.safetensors", "{\"a\": {\"dtype\": \"F32\"", 0, "is not valid JSON");
    expect_st_error(t, "array_header.safetensors", "[1, 2]", 0, "the header is an array; expected a JSON object");
    expect_st_error(t, "string_header.safetensors", "\"x\"", 0, "the header is the string \"x\"; expected a JSON object");
    expect_st_error(t, "trailing_after_json.safetensors", "{} xyz", 0, "unexpected data after the JSON header at byte 3");
    /* Deep nesting: libcjson's nesting limit makes it invalid JSON, not a stack overflow. */
    enum { DEPTH = 20000 };
    char *deep = malloc(2 * DEPTH + 16);
    size_t n = 0;
    deep[n++] = '{';
    memcpy(deep + n, "\"a\":", 4);
    n += 4;
    for (int i = 0; i < DEPTH; i++) deep[n++] = '[';
    for (int i = 0; i < DEPTH; i++) deep[n++] = ']';
    deep[n++] = '}';
    deep[n] = 0;
    expect_st_error(t, "deep_nesting.safetensors", deep, 0, "is not valid JSON");
    free(deep);
    unsigned char nul_header[] = {4, 0, 0, 0, 0, 0, 0, 0, '{', 0, '}', ' '};
    expect_st_raw(t, "nul_in_header.safetensors", nul_header, sizeof nul_header, "is not valid JSON");
}

static void test_st_entries(Ctx *t)
{
    expect_st_error(t, "entry_not_object.safetensors", "{\"a\": 5}", 0,
                    "tensor 'a': expected an object {\"dtype\", \"shape\", \"data_offsets\"}, found the number 5");
    expect_st_error(t, "no_dtype.safetensors", "{\"a\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
                    "tensor 'a' has no \"dtype\"");
    expect_st_error(t, "dtype_number.safetensors", "{\"a\": {\"dtype\": 5, \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
                    "tensor 'a': \"dtype\" must be a string such as \"F32\", found the number 5");
    expect_st_error(t, "dtype_i32.safetensors", "{\"a\": {\"dtype\": \"I32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
                    "tensor 'a' has dtype \"I32\", which layerc does not read (expected F32, F16, BF16, F64 or I64)");
    expect_st_error(t, "dtype_lowercase.safetensors", "{\"a\": {\"dtype\": \"f32\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
                    4, "tensor 'a' has dtype \"f32\"");
    expect_st_error(t, "dtype_twice.safetensors",
                    "{\"a\": {\"dtype\": \"F32\", \"dtype\": \"F16\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
                    "tensor 'a' gives \"dtype\" 2 times");
    expect_st_error(t, "no_shape.safetensors", "{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", 4,
                    "tensor 'w' has no \"shape\"");
    expect_st_error(t, "shape_string.safetensors", "{\"w\": {\"dtype\": \"F32\", \"shape\": \"2\", \"data_offsets\": [0, 8]}}",
                    8, "tensor 'w': \"shape\" must be an array of non-negative integers such as [64, 3], found the string \"2\"");
    expect_st_error(t, "shape_negative.safetensors", "{\"w\": {\"dtype\": \"F32\", \"shape\": [2, -1], \"data_offsets\": [0, 8]}}",
                    8, "tensor 'w': dimension 1 of \"shape\" must be a non-negative integer, found the number -1");
    expect_st_error(t, "shape_fraction.safetensors", "{\"w\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 8]}}",
                    8, "dimension 0 of \"shape\" must be a non-negative integer, found the number 1.5");
    expect_st_error(t, "shape_item_string.safetensors",
                    "{\"w\": {\"dtype\": \"F32\", \"shape\": [\"2\"], \"data_offsets\": [0, 8]}}", 8,
                    "found the string \"2\"");
    expect_st_error(t, "shape_huge_number.safetensors",
                    "{\"w\": {\"dtype\": \"F32\", \"shape\": [1e300], \"data_offsets\": [0, 8]}}", 8,
                    "must be a non-negative integer, found the number 1e+300");
    expect_st_error(t, "shape_rank9.safetensors",
                    "{\"w\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}", 4,
                    "tensor 'w' has 9 dimensions; layerc supports at most 8");
    expect_st_error(t, "shape_overflow.safetensors",
                    "{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4], \"data_offsets\": [0, 4]}}", 4,
                    "tensor 'w': shape [4294967296, 4294967296, 4] has more elements than can be counted (overflow)");
    expect_st_error(t, "bytes_overflow.safetensors",
                    "{\"w\": {\"dtype\": \"F64\", \"shape\": [4503599627370496, 512], \"data_offsets\": [0, 8]}}", 8,
                    "needs more than 2^64 bytes");
}

static void test_st_offsets(Ctx *t)
{
    expect_st_error(t, "no_offsets.safetensors", "{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4,
                    "tensor 'w' has no \"data_offsets\" (expected [begin, end], two byte offsets into the data buffer)");
    expect_st_error(t, "offsets_one.safetensors", "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", 4,
                    "\"data_offsets\" must be [begin, end], two byte offsets into the data buffer, found an array of 1 items");
    expect_st_error(t, "offsets_object.safetensors", "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": {}}}", 4,
                    "found an object");
    expect_st_error(t, "offsets_negative.safetensors",
                    "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, -4]}}", 4,
                    "tensor 'w': \"data_offsets\" must be non-negative integers, found the number -4");
    expect_st_error(t, "offsets_null.safetensors", "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [null, 4]}}",
                    4, "must be non-negative integers, found null");
    expect_st_error(t, "offsets_reversed.safetensors",
                    "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}}", 8,
                    "tensor 'w': data_offsets [8, 4] end before they begin");
    expect_st_error(t, "offsets_past_buffer.safetensors",
                    "{\"w\": {\"dtype\": \"F32\", \"shape\": [100], \"data_offsets\": [0, 400]}}", 8,
                    "tensor 'w': data_offsets [0, 400] are outside the data buffer, which has 8 bytes");
    expect_st_error(t, "size_mismatch.safetensors",
                    "{\"w\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8,
                    "tensor 'w': data_offsets [0, 8] span 8 bytes but F32 [3] needs 12 bytes (3 elements of 4 bytes)");
    expect_st_error(t, "size_mismatch_bf16.safetensors",
                    "{\"w\": {\"dtype\": \"BF16\", \"shape\": [2, 2], \"data_offsets\": [0, 16]}}", 16,
                    "span 16 bytes but BF16 [2, 2] needs 8 bytes");
    expect_st_error(t, "overlap.safetensors",
                    "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                    " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
                    12, "tensors 'a' (bytes 0 to 8) and 'b' (bytes 4 to 12) overlap in the data buffer");
    expect_st_error(t, "overlap_nested.safetensors",
                    "{\"big\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
                    " \"x\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]},"
                    " \"y\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}",
                    16, "tensors 'big' (bytes 0 to 16) and 'y' (bytes 8 to 12) overlap");
    expect_st_error(t, "duplicate_key.safetensors",
                    "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                    " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
                    8, "tensor 'a' appears more than once in the header");
    expect_st_error(t, "metadata_not_object.safetensors", "{\"__metadata__\": [1]}", 0,
                    "\"__metadata__\" must be an object of strings, found an array");
    expect_st_error(t, "metadata_number.safetensors", "{\"__metadata__\": {\"format\": 1}}", 0,
                    "\"__metadata__\" must map strings to strings; \"format\" is the number 1");
    expect_st_error(t, "control_chars_in_key.safetensors", "{\"\\u001b[31mred\": 5}", 0, "tensor '?[31mred'");
}

static void test_st_files(Ctx *t)
{
    char path[256];
    Capture c;
    WeightSet w;
    path_in(t, "no_such_file.safetensors", path, sizeof path);
    cap_begin(&c, path);
    bool ok = weights_read_safetensors(&c.arena, &c.diag, path, &w);
    cap_end(&c);
    check_refused(t, "safetensors refuses a missing file", ok, &c, path, "No such file or directory");
    cap_free(&c);

    cap_begin(&c, t->dir);
    ok = weights_read_safetensors(&c.arena, &c.diag, t->dir, &w);
    cap_end(&c);
    check_refused(t, "safetensors refuses a directory", ok, &c, t->dir, "is not a regular file");
    cap_free(&c);
}

/* ---- a good file with every dtype, values checked bit for bit ---- */

static uint32_t f32_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static bool same_bits(const float *got, const uint32_t *want, int n, char *detail, size_t size)
{
    for (int i = 0; i < n; i++)
        if (f32_bits(got[i]) != want[i]) {
            snprintf(detail, size, "element %d: got 0x%08x (%g), want 0x%08x", i, f32_bits(got[i]), got[i], want[i]);
            return false;
        }
    return true;
}

static const WeightTensor *tensor_named(const WeightSet *w, const char *key)
{
    for (int i = 0; i < w->count; i++)
        if (strcmp(w->tensors[i].key, key) == 0) return &w->tensors[i];
    return NULL;
}

static bool shape_is(const Shape *s, int rank, const int64_t *dims)
{
    if (s->rank != rank) return false;
    for (int i = 0; i < rank; i++)
        if (s->dims[i] != dims[i]) return false;
    return true;
}

enum { GOOD_DATA = 114 };

/* The data buffer of the good file: I64 first (aligned), then F32 aligned,
 * F16, BF16, one F16 to misalign, F32 misaligned, F64, I64 misaligned, a scalar. */
static void good_data(unsigned char *d)
{
    const int64_t i64[3] = {-1, INT64_MAX, 42};
    for (int i = 0; i < 3; i++) put_le(d + 8 * i, (uint64_t)i64[i], 8);
    const float f32[6] = {1.5f, -2.0f, 0.0f, 3.25e-39f /* subnormal */, INFINITY, -0.0f};
    for (int i = 0; i < 6; i++) put_le(d + 24 + 4 * i, f32_bits(f32[i]), 4);
    const uint16_t f16[9] = {0x0001, 0x03ff, 0x0400, 0x3c00, 0x7bff, 0x7c00, 0xfc00, 0x8000, 0x7e00};
    for (int i = 0; i < 9; i++) put_le(d + 48 + 2 * i, f16[i], 2);
    const uint16_t bf16[5] = {0x3f80, 0xc049, 0x0001, 0x7f80, 0xffc1};
    for (int i = 0; i < 5; i++) put_le(d + 66 + 2 * i, bf16[i], 2);
    put_le(d + 76, 0xbc00, 2); /* F16 -1.0 */
    put_le(d + 78, f32_bits(0.1f), 4);
    put_le(d + 82, f32_bits(-7.0f), 4);
    double f64[2] = {1.0 / 3.0, -2.5};
    for (int i = 0; i < 2; i++) {
        uint64_t b;
        memcpy(&b, &f64[i], sizeof b);
        put_le(d + 86 + 8 * i, b, 8);
    }
    put_le(d + 102, (uint64_t)INT64_MIN, 8);
    put_le(d + 110, f32_bits(6.5f), 4);
}

static const char GOOD_JSON[] =
    "{\"__metadata__\": {\"format\": \"pt\"},"
    " \"i64\": {\"dtype\": \"I64\", \"shape\": [3], \"data_offsets\": [0, 24]},"
    " \"f32\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [24, 48]},"
    " \"f16\": {\"dtype\": \"F16\", \"shape\": [9], \"data_offsets\": [48, 66]},"
    " \"bf16\": {\"dtype\": \"BF16\", \"shape\": [5], \"data_offsets\": [66, 76]},"
    " \"f16_one\": {\"dtype\": \"F16\", \"shape\": [1, 1], \"data_offsets\": [76, 78]},"
    " \"f32_misaligned\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [78, 86]},"
    " \"f64\": {\"dtype\": \"F64\", \"shape\": [2], \"data_offsets\": [86, 102]},"
    " \"i64_misaligned\": {\"dtype\": \"I64\", \"shape\": [], \"data_offsets\": [102, 110]},"
    " \"scalar\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [110, 114]},"
    " \"empty\": {\"dtype\": \"F32\", \"shape\": [0, 3], \"data_offsets\": [114, 114]}}    ";

static void check_good_values(Ctx *t, const WeightSet *w)
{
    char detail[256] = "";
    const WeightTensor *x = tensor_named(w, "i64");
    check(t, x && x->dtype == DT_I64 && x->i64[0] == -1 && x->i64[1] == INT64_MAX && x->i64[2] == 42, "safetensors I64 values", "");
    x = tensor_named(w, "f32");
    const uint32_t f32_want[6] = {0x3fc00000, 0xc0000000, 0, f32_bits(3.25e-39f), 0x7f800000, 0x80000000};
    check(t, x && x->dtype == DT_F32 && shape_is(&x->shape, 2, (int64_t[]){2, 3}) && same_bits(x->f32, f32_want, 6, detail, sizeof detail),
          "safetensors F32 values and shape", detail);
    x = tensor_named(w, "f16");
    const uint32_t f16_want[9] = {f32_bits(ldexpf(1, -24)), f32_bits(1023 * ldexpf(1, -24)), f32_bits(ldexpf(1, -14)),
                                  0x3f800000, f32_bits(65504.0f), 0x7f800000, 0xff800000, 0x80000000, 0x7fc00000};
    check(t, x && same_bits(x->f32, f16_want, 9, detail, sizeof detail), "safetensors F16 exact (subnormals, inf, nan)", detail);
    x = tensor_named(w, "bf16");
    const uint32_t bf16_want[5] = {0x3f800000, 0xc0490000, 0x00010000, 0x7f800000, 0xffc10000};
    check(t, x && same_bits(x->f32, bf16_want, 5, detail, sizeof detail), "safetensors BF16 exact (subnormal, inf, nan payload)",
          detail);
    x = tensor_named(w, "f16_one");
    check(t, x && x->f32[0] == -1.0f && shape_is(&x->shape, 2, (int64_t[]){1, 1}), "safetensors F16 [1, 1]", "");
    x = tensor_named(w, "f32_misaligned");
    check(t, x && x->f32[0] == 0.1f && x->f32[1] == -7.0f && ((uintptr_t)x->f32 % sizeof(float)) == 0,
          "safetensors misaligned F32 copied to aligned memory", "");
    x = tensor_named(w, "f64");
    check(t, x && x->dtype == DT_F32 && x->f32[0] == (float)(1.0 / 3.0) && x->f32[1] == -2.5f, "safetensors F64 rounded to f32", "");
    x = tensor_named(w, "i64_misaligned");
    check(t, x && x->dtype == DT_I64 && x->shape.rank == 0 && x->i64[0] == INT64_MIN && ((uintptr_t)x->i64 % 8) == 0,
          "safetensors misaligned I64 scalar", "");
    x = tensor_named(w, "scalar");
    check(t, x && x->shape.rank == 0 && x->f32[0] == 6.5f, "safetensors F32 scalar", "");
    x = tensor_named(w, "empty");
    check(t, x && shape_is(&x->shape, 2, (int64_t[]){0, 3}), "safetensors empty tensor [0, 3]", "");
}

static void test_st_good(Ctx *t)
{
    unsigned char data[GOOD_DATA];
    good_data(data);
    size_t len;
    unsigned char *bytes = st_bytes(GOOD_JSON, data, sizeof data, &len);
    char path[256];
    path_in(t, "good.safetensors", path, sizeof path);
    write_bytes(path, bytes, len);
    free(bytes);
    Capture c;
    cap_begin(&c, path);
    WeightSet w;
    bool ok = weights_read_safetensors(&c.arena, &c.diag, path, &w);
    cap_end(&c);
    check(t, ok && c.diag.errors == 0 && c.diag.warnings == 0 && w.count == 10, "safetensors reads a good file (10 tensors, metadata)",
          c.text);
    if (ok) check_good_values(t, &w);
    cap_free(&c);

    /* Bytes between tensors are accepted with a warning. */
    unsigned char gap[12] = {0};
    bytes = st_bytes("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}", gap, sizeof gap, &len);
    path_in(t, "gap.safetensors", path, sizeof path);
    write_bytes(path, bytes, len);
    free(bytes);
    cap_begin(&c, path);
    ok = weights_read_safetensors(&c.arena, &c.diag, path, &w);
    cap_end(&c);
    check(t, ok && c.diag.warnings == 1 && has(&c, "warning: 8 of the 12 bytes of the data buffer belong to no tensor"),
          "safetensors warns about bytes no tensor uses", c.text);
    cap_free(&c);

    /* An empty header object: no tensors. */
    bytes = st_bytes("{}", NULL, 0, &len);
    path_in(t, "no_tensors.safetensors", path, sizeof path);
    write_bytes(path, bytes, len);
    free(bytes);
    cap_begin(&c, path);
    ok = weights_read_safetensors(&c.arena, &c.diag, path, &w);
    cap_end(&c);
    check(t, ok && w.count == 0 && c.diag.errors == 0, "safetensors reads an empty header {}", c.text);
    cap_free(&c);
}

/* Every one of the 65536 F16 patterns against the compiler's own _Float16 conversion. */
static void test_st_f16_exhaustive(Ctx *t)
{
#ifdef __FLT16_MANT_DIG__
    enum { N = 65536 };
    unsigned char *data = malloc(2 * N);
    for (int i = 0; i < N; i++) put_le(data + 2 * i, (uint64_t)i, 2);
    size_t len;
    unsigned char *bytes = st_bytes("{\"all\": {\"dtype\": \"F16\", \"shape\": [65536], \"data_offsets\": [0, 131072]}}", data,
                                    2 * N, &len);
    char path[256];
    path_in(t, "all_f16.safetensors", path, sizeof path);
    write_bytes(path, bytes, len);
    free(bytes);
    free(data);
    Capture c;
    cap_begin(&c, path);
    WeightSet w;
    bool ok = weights_read_safetensors(&c.arena, &c.diag, path, &w);
    cap_end(&c);
    int bad = 0;
    char detail[128] = "";
    for (int i = 0; ok && i < N; i++) {
        uint16_t h = (uint16_t)i;
        _Float16 x;
        memcpy(&x, &h, sizeof x);
        float want = (float)x, got = w.tensors[0].f32[i];
        bool same = isnan(want) ? isnan(got) && signbit(got) == signbit(want) : f32_bits(got) == f32_bits(want);
        if (!same && bad++ == 0) snprintf(detail, sizeof detail, "0x%04x: got %a, want %a", i, got, want);
    }
    check(t, ok && bad == 0, "safetensors F16: all 65536 values equal _Float16's conversion", ok ? detail : c.text);
    cap_free(&c);
#else
    (void)t;
#endif
}

/* A sparse file one byte over 16 GiB is refused before anything is read. */
static void test_too_large(Ctx *t, const char *name, bool npy)
{
    char path[256];
    path_in(t, name, path, sizeof path);
    FILE *f = fopen(path, "wb");
    if (!f || ftruncate(fileno(f), ((off_t)16 << 30) + 1) != 0) {
        if (f) fclose(f);
        printf("skipped %s: cannot make a sparse file\n", name);
        return;
    }
    fclose(f);
    Capture c;
    cap_begin(&c, path);
    WeightSet w;
    NpyArray arr;
    bool ok = npy ? npy_read(&c.arena, &c.diag, path, &arr) : weights_read_safetensors(&c.arena, &c.diag, path, &w);
    cap_end(&c);
    char test[128];
    snprintf(test, sizeof test, "%s refuses a file over 16 GiB", npy ? "npy" : "safetensors");
    check_refused(t, test, ok, &c, path, "bytes; a");
    check(t, has(&c, "may be at most 16 GiB (17179869184 bytes)"), test, c.text);
    cap_free(&c);
    remove(path);
}

/* ======================================================== binding */

static const char MODEL_IMAGE[] =
    "model Img {\n"
    "    input x: f32[N, 3, 8, 8]\n"
    "    conv1 = Conv2d(3, 4, 3, padding=1)\n"
    "    bn1 = BatchNorm2d(4)\n"
    "    ReLU()\n"
    "    Flatten()\n"
    "    fc1 = Linear(256, 16)\n"
    "    Linear(16, 10)\n"
    "}\n";

/* Runs the front end on the model text; false (and a failed test) on errors. */
static bool load_model(Ctx *t, const char *name, const char *text, Frontend *fe)
{
    char path[256];
    path_in(t, name, path, sizeof path);
    write_bytes(path, text, strlen(text));
    FILE *devnull = fopen("/dev/null", "w");
    bool ok = frontend_run(fe, path, devnull);
    fclose(devnull);
    if (!ok) check(t, false, name, "the test model did not compile");
    return ok;
}

/* A weight set holding exactly the graph's tensors (f32 filled with i + 0.5). */
static WeightSet weights_for(Arena *a, const Graph *g, bool with_i64)
{
    WeightSet w = {arena_alloc_array(a, 64, sizeof(WeightTensor)), 0};
    for (int i = 1; i < g->nodes.len; i++) {
        const Node *n = g->nodes.items[i];
        for (int j = 0; j < n->nparams; j++) {
            const Param *p = &n->params[j];
            if (p->dtype == DT_I64 && !with_i64) continue;
            WeightTensor *wt = &w.tensors[w.count++];
            wt->key = p->key;
            wt->shape = p->shape;
            wt->dtype = p->dtype;
            int64_t numel = shape_numel(&p->shape);
            if (p->dtype == DT_I64) {
                wt->i64 = arena_alloc_array(a, (size_t)numel + 1, sizeof(int64_t));
            } else {
                wt->f32 = arena_alloc_array(a, (size_t)numel + 1, sizeof(float));
                for (int64_t k = 0; k < numel; k++) wt->f32[k] = (float)k + 0.5f;
            }
        }
    }
    return w;
}

static WeightTensor *find(WeightSet *w, const char *key)
{
    for (int i = 0; i < w->count; i++)
        if (strcmp(w->tensors[i].key, key) == 0) return &w->tensors[i];
    return NULL;
}

static void remove_tensor(WeightSet *w, const char *key)
{
    WeightTensor *x = find(w, key);
    if (x) *x = w->tensors[--w->count];
}

static WeightTensor *add_tensor(Arena *a, WeightSet *w, const char *key, int rank, const int64_t *dims)
{
    WeightTensor *x = &w->tensors[w->count++];
    memset(x, 0, sizeof *x);
    x->key = arena_strdup(a, key);
    x->shape.rank = rank;
    for (int i = 0; i < rank; i++) x->shape.dims[i] = dims[i];
    x->dtype = DT_F32;
    x->f32 = arena_alloc_array(a, (size_t)(shape_numel(&x->shape) + 1), sizeof(float));
    return x;
}

typedef enum { MUT_NONE, MUT_MISSING, MUT_SHAPE, MUT_I64_FOR_F32, MUT_F32_FOR_I64, MUT_WITH_I64, MUT_TYPO_LAYER,
               MUT_TYPO_KEY, MUT_UNKNOWN_SUFFIX, MUT_MANY_UNUSED, MUT_SCALAR_SHAPE } Mutation;

static void mutate(Arena *a, WeightSet *w, Mutation m)
{
    switch (m) {
    case MUT_NONE: case MUT_WITH_I64: break;
    case MUT_MISSING: remove_tensor(w, "conv1.weight"); break;
    case MUT_SHAPE: find(w, "fc1.weight")->shape.dims[1] = 128; break;
    case MUT_I64_FOR_F32: find(w, "bn1.running_mean")->dtype = DT_I64; break;
    case MUT_F32_FOR_I64: add_tensor(a, w, "bn1.num_batches_tracked", 0, NULL); break;
    case MUT_TYPO_LAYER: add_tensor(a, w, "conv_1.weight", 1, (int64_t[]){4}); break;
    case MUT_TYPO_KEY:
        remove_tensor(w, "conv1.weight");
        add_tensor(a, w, "conv1.weigth", 4, (int64_t[]){4, 3, 3, 3});
        break;
    case MUT_UNKNOWN_SUFFIX: add_tensor(a, w, "fc1.extra", 1, (int64_t[]){2}); break;
    case MUT_MANY_UNUSED:
        for (int i = 0; i < 30; i++) add_tensor(a, w, arena_printf(a, "zzz%d.weight", i), 1, (int64_t[]){1});
        break;
    case MUT_SCALAR_SHAPE: find(w, "5.bias")->shape.rank = 0; break;
    }
}

typedef struct BindCase {
    const char *name;
    Mutation mutation;
    bool ok;
    int warnings;
    const char *phrase;
} BindCase;

static const BindCase BIND_CASES[] = {
    {"bind: complete set", MUT_NONE, true, 0, NULL},
    {"bind: num_batches_tracked given", MUT_WITH_I64, true, 0, NULL},
    {"bind: missing tensor", MUT_MISSING, false, 0, "error: missing tensor 'conv1.weight' [4, 3, 3, 3] for layer conv1 (Conv2d)"},
    {"bind: shape mismatch", MUT_SHAPE, false, 0,
     "error: tensor 'fc1.weight' has shape [16, 128] in the weights file but the model expects [16, 256]"},
    {"bind: scalar for vector", MUT_SCALAR_SHAPE, false, 0,
     "error: tensor '5.bias' has shape [] in the weights file but the model expects [10]"},
    {"bind: I64 given for f32", MUT_I64_FOR_F32, false, 0,
     "error: tensor 'bn1.running_mean' is an integer (I64) tensor in the weights file but the model expects a floating-point tensor"},
    {"bind: F32 given for i64 buffer", MUT_F32_FOR_I64, false, 0,
     "error: tensor 'bn1.num_batches_tracked' is a floating-point tensor in the weights file but the model expects an integer (I64) tensor"},
    {"bind: unused tensor, layer typo", MUT_TYPO_LAYER, true, 1,
     "warning: unused tensor 'conv_1.weight' in the weights file; no layer is named 'conv_1': did you mean 'conv1'?"},
    {"bind: unused tensor, key typo", MUT_TYPO_KEY, false, 1, "warning: unused tensor 'conv1.weigth' in the weights file; did you mean 'conv1.weight'?"},
    {"bind: unused tensor, unknown suffix", MUT_UNKNOWN_SUFFIX, true, 1,
     "warning: unused tensor 'fc1.extra' in the weights file; layer fc1 (Linear) has no tensor 'extra'"},
    {"bind: many unused tensors summarised", MUT_MANY_UNUSED, true, 20, "note: 10 more unused tensors are not listed"},
};

static void run_bind_case(Ctx *t, const Graph *g, const BindCase *bc)
{
    Capture c;
    cap_begin(&c, "weights.safetensors");
    WeightSet w = weights_for(&c.arena, g, bc->mutation == MUT_WITH_I64);
    mutate(&c.arena, &w, bc->mutation);
    for (int i = 1; i < g->nodes.len; i++) {
        Node *n = g->nodes.items[i];
        for (int j = 0; j < n->nparams; j++) n->params[j].data = NULL;
    }
    bool ok = weights_bind(&c.diag, (Graph *)g, &w);
    cap_end(&c);
    bool good = ok == bc->ok && c.diag.warnings == bc->warnings && (!bc->phrase || has(&c, bc->phrase)) &&
                (bc->ok ? c.diag.errors == 0 : c.diag.errors > 0);
    if (bc->phrase) good = good && has(&c, "weights.safetensors: ");
    char detail[2048];
    snprintf(detail, sizeof detail, "ok=%d errors=%d warnings=%d; expected \"%s\" in:\n%s", ok, c.diag.errors, c.diag.warnings,
             bc->phrase ? bc->phrase : "", c.text ? c.text : "");
    check(t, good, bc->name, detail);
    if (bc->mutation == MUT_NONE) {
        const Node *fc = g->nodes.items[5];
        const WeightTensor *x = find(&w, "fc1.weight");
        check(t, fc->params[0].data == x->f32 && fc->params[0].data[3] == 3.5f, "bind: Param.data points at the tensor", "");
        const Node *bn = g->nodes.items[2];
        check(t, bn->params[4].dtype == DT_I64 && bn->params[4].data == NULL, "bind: i64 buffer is not loaded", "");
    }
    cap_free(&c);
}

static void test_bind(Ctx *t)
{
    Frontend fe;
    if (load_model(t, "bind.nn", MODEL_IMAGE, &fe))
        for (size_t i = 0; i < sizeof BIND_CASES / sizeof BIND_CASES[0]; i++) run_bind_case(t, fe.graph, &BIND_CASES[i]);
    frontend_free(&fe);
}

/* ---- a real file written by the test, read and bound ---- */

typedef struct StWriter {
    char json[8192];
    size_t jlen;
    unsigned char *data;
    size_t dlen;
} StWriter;

static void st_add(StWriter *s, const char *key, const char *dtype, const Shape *shape, const void *bytes, size_t n)
{
    char dims[256] = "";
    size_t k = 0;
    for (int i = 0; i < shape->rank; i++) k += (size_t)snprintf(dims + k, sizeof dims - k, "%s%lld", i ? ", " : "", (long long)shape->dims[i]);
    s->jlen += (size_t)snprintf(s->json + s->jlen, sizeof s->json - s->jlen,
                                "%s\"%s\": {\"dtype\": \"%s\", \"shape\": [%s], \"data_offsets\": [%zu, %zu]}",
                                s->jlen > 1 ? ", " : "", key, dtype, dims, s->dlen, s->dlen + n);
    s->data = realloc(s->data, s->dlen + n + 1);
    memcpy(s->data + s->dlen, bytes, n);
    s->dlen += n;
}

/* Writes every Param of g: f32 as BF16 when `bf16`, i64 buffers as I64 7. */
static void write_model_weights(const Graph *g, const char *path, bool bf16)
{
    StWriter s = {.json = "{", .jlen = 1};
    for (int i = 1; i < g->nodes.len; i++) {
        const Node *n = g->nodes.items[i];
        for (int j = 0; j < n->nparams; j++) {
            const Param *p = &n->params[j];
            int64_t numel = shape_numel(&p->shape);
            int size = p->dtype == DT_I64 ? 8 : bf16 ? 2 : 4;
            unsigned char *b = malloc((size_t)(numel * size) + 1);
            for (int64_t k = 0; k < numel; k++) {
                float v = (float)k * 0.25f; /* exact in bfloat16 for small k */
                uint64_t bits = p->dtype == DT_I64 ? 7 : bf16 ? f32_bits(v) >> 16 : f32_bits(v);
                put_le(b + k * size, bits, size);
            }
            st_add(&s, p->key, p->dtype == DT_I64 ? "I64" : bf16 ? "BF16" : "F32", &p->shape, b, (size_t)(numel * size));
            free(b);
        }
    }
    s.jlen += (size_t)snprintf(s.json + s.jlen, sizeof s.json - s.jlen, "}");
    size_t len;
    unsigned char *bytes = st_bytes(s.json, s.data, s.dlen, &len);
    write_bytes(path, bytes, len);
    free(bytes);
    free(s.data);
}

static void test_read_and_bind(Ctx *t)
{
    Frontend fe;
    if (!load_model(t, "file_bind.nn", MODEL_IMAGE, &fe)) {
        frontend_free(&fe);
        return;
    }
    for (int bf16 = 0; bf16 < 2; bf16++) {
        char path[256];
        path_in(t, bf16 ? "model_bf16.safetensors" : "model_f32.safetensors", path, sizeof path);
        write_model_weights(fe.graph, path, bf16);
        Capture c;
        cap_begin(&c, path);
        WeightSet w;
        bool ok = weights_read_safetensors(&c.arena, &c.diag, path, &w) && weights_bind(&c.diag, fe.graph, &w);
        cap_end(&c);
        const Node *conv = fe.graph->nodes.items[1];
        bool values = ok && conv->params[0].data && conv->params[0].data[107] == 26.75f;
        check(t, ok && values && c.diag.errors == 0 && c.diag.warnings == 0,
              bf16 ? "read BF16 safetensors and bind to a model" : "read F32 safetensors and bind to a model", c.text);
        cap_free(&c);
    }
    frontend_free(&fe);
}

/* ======================================================== random init */

static const Param *param(const Graph *g, const char *key)
{
    for (int i = 1; i < g->nodes.len; i++) {
        const Node *n = g->nodes.items[i];
        for (int j = 0; j < n->nparams; j++)
            if (strcmp(n->params[j].key, key) == 0) return &n->params[j];
    }
    return NULL;
}

/* All values within [-bound, bound] and the largest magnitude above 80% of it. */
static bool uniform_ok(const Param *p, double bound)
{
    if (!p || !p->data) return false;
    int64_t n = shape_numel(&p->shape);
    double max = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = fabs(p->data[i]);
        if (v > bound * (1 + 1e-6)) return false;
        if (v > max) max = v;
    }
    return max > (n >= 64 ? 0.8 * bound : 0.0); /* a few values need not come near the bound */
}

/* Every value in [low, high), and not all the same: state PyTorch sets to a
 * constant is drawn away from it (weights_random.c), so passes that fold it
 * are tested with values they change. */
static bool range_ok(const Param *p, double low, double high)
{
    if (!p || !p->data) return false;
    int64_t n = shape_numel(&p->shape);
    bool varied = n < 2;
    for (int64_t i = 0; i < n; i++) {
        if (!(p->data[i] >= low && p->data[i] < high)) return false;
        varied = varied || p->data[i] != p->data[0];
    }
    return varied;
}

static void check_uniform(Ctx *t, const Graph *g, const char *key, double bound)
{
    char name[128];
    snprintf(name, sizeof name, "init: %s ~ U(+-%.4f)", key, bound);
    check(t, uniform_ok(param(g, key), bound), name, "");
}

static void check_range(Ctx *t, const Graph *g, const char *key, double low, double high)
{
    char name[128];
    snprintf(name, sizeof name, "init: %s ~ U(%g, %g), not constant", key, low, high);
    check(t, range_ok(param(g, key), low, high), name, "");
}

static const char MODEL_INIT_A[] =
    "model A {\n"
    "    input x: f32[N, 4, 8, 8]\n"
    "    conv1 = Conv2d(4, 8, 3, groups=2)\n"
    "    bn1 = BatchNorm2d(8)\n"
    "    Flatten()\n"
    "    fc1 = Linear(288, 10)\n"
    "    ln = LayerNorm(10)\n"
    "}\n";

/* Model A with one more layer in the middle: the other layers' values must not change. */
static const char MODEL_INIT_B[] =
    "model B {\n"
    "    input x: f32[N, 4, 8, 8]\n"
    "    conv1 = Conv2d(4, 8, 3, groups=2)\n"
    "    bn1 = BatchNorm2d(8)\n"
    "    conv2 = Conv2d(8, 8, 1)\n"
    "    Flatten()\n"
    "    fc1 = Linear(288, 10)\n"
    "    ln = LayerNorm(10)\n"
    "}\n";

static const char MODEL_INIT_SEQ[] =
    "model S {\n"
    "    input x: i64[N, 16]\n"
    "    emb = Embedding(100, 32, padding_idx=3)\n"
    "    lstm = LSTM(32, 20, proj_size=10)\n"
    "    gru = GRU(10, 12)\n"
    "    fit = Linear(12, 20)\n"
    "    tfm = TransformerEncoderLayer(20, 4, 64)\n"
    "}\n";

static const char MODEL_INIT_BAG[] =
    "model Bag {\n"
    "    input x: i64[N, 5]\n"
    "    bag = EmbeddingBag(50, 8, padding_idx=0)\n"
    "}\n";

static bool same_values(const Param *a, const Param *b)
{
    return a && b && a->data && b->data && shape_numel(&a->shape) == shape_numel(&b->shape) &&
           memcmp(a->data, b->data, (size_t)shape_numel(&a->shape) * sizeof(float)) == 0;
}

static void test_init_image(Ctx *t)
{
    Frontend a1, a2, a3, b;
    bool ok = load_model(t, "init_a1.nn", MODEL_INIT_A, &a1) && load_model(t, "init_a2.nn", MODEL_INIT_A, &a2) &&
              load_model(t, "init_a3.nn", MODEL_INIT_A, &a3) && load_model(t, "init_b.nn", MODEL_INIT_B, &b);
    if (ok) {
        weights_init_random(&a1.arena, a1.graph, 7);
        weights_init_random(&a2.arena, a2.graph, 7);
        weights_init_random(&a3.arena, a3.graph, 8);
        weights_init_random(&b.arena, b.graph, 7);
        Graph *g = a1.graph;
        check_uniform(t, g, "conv1.weight", 1 / sqrt(2 * 9.0));
        check_uniform(t, g, "conv1.bias", 1 / sqrt(2 * 9.0));
        check_uniform(t, g, "fc1.weight", 1 / sqrt(288.0));
        check_uniform(t, g, "fc1.bias", 1 / sqrt(288.0));
        check_range(t, g, "bn1.weight", 0.5, 1.5);
        check_range(t, g, "bn1.bias", -0.5, 0.5);
        check_range(t, g, "bn1.running_mean", -0.5, 0.5);
        check_range(t, g, "bn1.running_var", 0.5, 2.0);
        check_range(t, g, "ln.weight", 0.5, 1.5);
        check_range(t, g, "ln.bias", -0.5, 0.5);
        check(t, param(g, "bn1.num_batches_tracked")->data == NULL, "init: i64 buffer left NULL", "");
        check(t, same_values(param(g, "fc1.weight"), param(a2.graph, "fc1.weight")) &&
                     same_values(param(g, "conv1.weight"), param(a2.graph, "conv1.weight")),
              "init: same seed, same values", "");
        check(t, !same_values(param(g, "fc1.weight"), param(a3.graph, "fc1.weight")), "init: another seed, other values", "");
        check(t, same_values(param(g, "fc1.weight"), param(b.graph, "fc1.weight")) &&
                     same_values(param(g, "conv1.bias"), param(b.graph, "conv1.bias")),
              "init: adding a layer leaves the others' values unchanged", "");
        check(t, !same_values(param(g, "conv1.weight"), param(g, "fc1.weight")) &&
                     memcmp(param(g, "conv1.weight")->data, param(g, "conv1.bias")->data, 8 * sizeof(float)) != 0,
              "init: each tensor has its own stream", "");
    }
    frontend_free(&a1);
    frontend_free(&a2);
    frontend_free(&a3);
    frontend_free(&b);
}

static void check_embedding(Ctx *t, const Param *p, int64_t pad_row, const char *name)
{
    int64_t rows = p->shape.dims[0], cols = p->shape.dims[1];
    bool row_zero = true;
    double sum = 0, sq = 0;
    int64_t n = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            float v = p->data[r * cols + c];
            if (r == pad_row) {
                row_zero = row_zero && v == 0.0f;
                continue;
            }
            sum += v;
            sq += (double)v * v;
            n++;
        }
    double mean = sum / (double)n, sd = sqrt(sq / (double)n - mean * mean);
    char detail[128], test[128];
    snprintf(detail, sizeof detail, "mean %g sd %g, padding row zero: %d", mean, sd, row_zero);
    snprintf(test, sizeof test, "init: %s ~ N(0, 1) with the padding_idx row zero", name);
    check(t, row_zero && fabs(mean) < 0.15 && fabs(sd - 1) < 0.15, test, detail);
}

/* A tensor above the 4 M values drawn in chunks on two threads
 * (weights_random.c): 4.5 M values, two chunks, the second partial. */
static const char MODEL_INIT_BIG[] =
    "model Big {\n"
    "    input x: f32[N, 3000]\n"
    "    fc = Linear(3000, 1500)\n"
    "}\n";

/* Value i of tensor `key` drawn one after another from the stream weights.h
 * documents: splitmix64 seeded from the seed and the key's FNV-1a hash. */
static float sequential_value(uint64_t seed, const char *key, int64_t i, double bound)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *c = key; *c; c++) h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
    uint64_t s = seed, state = splitmix64(&s) ^ h;
    splitmix64(&state);
    uint64_t bits = 0;
    for (int64_t k = 0; k <= i; k++) bits = splitmix64(&state);
    return (float)(-bound + 2.0 * bound * ((double)(bits >> 11) * 0x1.0p-53));
}

static void test_init_chunked(Ctx *t)
{
    Frontend f;
    if (!load_model(t, "init_big.nn", MODEL_INIT_BIG, &f)) return;
    weights_init_random(&f.arena, f.graph, 11);
    const Param *w = param(f.graph, "fc.weight");
    double bound = 1 / sqrt(3000.0);
    check_uniform(t, f.graph, "fc.weight", bound);
    const int64_t at[] = {0, 1, (1 << 22) - 1, 1 << 22, (1 << 22) + 1, 3000 * 1500 - 1};
    bool same = w && w->data;
    for (size_t k = 0; same && k < sizeof at / sizeof at[0]; k++)
        same = w->data[at[k]] == sequential_value(11, "fc.weight", at[k], bound);
    check(t, same, "init: a tensor drawn in chunks on two threads has the values of one sequential stream", "");
    frontend_free(&f);
}

static void test_init_sequence(Ctx *t)
{
    Frontend s, bag;
    if (load_model(t, "init_seq.nn", MODEL_INIT_SEQ, &s)) {
        weights_init_random(&s.arena, s.graph, 1);
        Graph *g = s.graph;
        check_embedding(t, param(g, "emb.weight"), 3, "Embedding");
        const char *lstm[] = {"lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0", "lstm.bias_hh_l0", "lstm.weight_hr_l0"};
        for (int i = 0; i < 5; i++) check_uniform(t, g, lstm[i], 1 / sqrt(20.0));
        check_uniform(t, g, "gru.weight_ih_l0", 1 / sqrt(12.0));
        check_uniform(t, g, "gru.bias_hh_l0", 1 / sqrt(12.0));
        check_uniform(t, g, "tfm.self_attn.in_proj_weight", sqrt(6.0 / (20 + 60)));
        check_range(t, g, "tfm.self_attn.in_proj_bias", -0.2, 0.2);
        check_uniform(t, g, "tfm.self_attn.out_proj.weight", 1 / sqrt(20.0));
        check_range(t, g, "tfm.self_attn.out_proj.bias", -0.2, 0.2);
        check_uniform(t, g, "tfm.linear1.weight", 1 / sqrt(20.0));
        check_uniform(t, g, "tfm.linear1.bias", 1 / sqrt(20.0));
        check_uniform(t, g, "tfm.linear2.weight", 1 / sqrt(64.0));
        check_uniform(t, g, "tfm.linear2.bias", 1 / sqrt(64.0));
        check_range(t, g, "tfm.norm1.weight", 0.5, 1.5);
        check_range(t, g, "tfm.norm2.bias", -0.5, 0.5);
    }
    frontend_free(&s);
    if (load_model(t, "init_bag.nn", MODEL_INIT_BAG, &bag)) {
        weights_init_random(&bag.arena, bag.graph, 1);
        check_embedding(t, param(bag.graph, "bag.weight"), 0, "EmbeddingBag");
    }
    frontend_free(&bag);
}

/* ======================================================== npy */

/* Preamble (magic, version, header length) + header text + data. */
static unsigned char *npy_bytes(int major, const char *header, const void *data, size_t dlen, size_t *len)
{
    size_t hlen = strlen(header), pre = major == 1 ? 10 : 12;
    *len = pre + hlen + dlen;
    unsigned char *b = malloc(*len + 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    put_le(b + 8, hlen, major == 1 ? 2 : 4);
    memcpy(b + pre, header, hlen);
    if (dlen) memcpy(b + pre + hlen, data, dlen);
    return b;
}

static void expect_npy_raw(Ctx *t, const char *name, const void *bytes, size_t len, const char *phrase)
{
    char path[256], test[300];
    path_in(t, name, path, sizeof path);
    write_bytes(path, bytes, len);
    Capture c;
    cap_begin(&c, path);
    NpyArray arr;
    bool ok = npy_read(&c.arena, &c.diag, path, &arr);
    cap_end(&c);
    snprintf(test, sizeof test, "npy refuses %s", name);
    check_refused(t, test, ok, &c, path, phrase);
    cap_free(&c);
}

/* A v1.0 file with this header dict and dlen zero bytes of data. */
static void expect_npy_error(Ctx *t, const char *name, const char *dict, size_t dlen, const char *phrase)
{
    unsigned char zeros[256] = {0};
    size_t len;
    unsigned char *b = npy_bytes(1, dict, zeros, dlen, &len);
    expect_npy_raw(t, name, b, len, phrase);
    free(b);
}

static void test_npy_preamble(Ctx *t)
{
    expect_npy_raw(t, "empty.npy", "", 0, "the file is 0 bytes, too short for a .npy header");
    expect_npy_raw(t, "short.npy", "\x93NUMPY\x01", 7, "the file is 7 bytes, too short");
    expect_npy_raw(t, "bad_magic.npy", "\x93NUMPX\x01\x00\x10\x00{}              ", 26, "does not start with the magic");
    expect_npy_raw(t, "text.npy", "hello world, this is not numpy\n", 31, "not a .npy file");
    expect_npy_raw(t, "version4.npy", "\x93NUMPY\x04\x00\x02\x00{}", 12, "unsupported .npy format version 4.0; expected 1.0, 2.0 or 3.0");
    expect_npy_raw(t, "version1_1.npy", "\x93NUMPY\x01\x01\x02\x00{}", 12, "unsupported .npy format version 1.1");
    expect_npy_raw(t, "v2_short.npy", "\x93NUMPY\x02\x00\x00\x00", 11, "too short for a version 2.0 header");
    expect_npy_raw(t, "header_past_eof.npy", "\x93NUMPY\x01\x00\x50\x00{'descr'", 18,
                   "the header length is 80 bytes but only 8 bytes follow it");
    expect_npy_raw(t, "v2_huge_header.npy", "\x93NUMPY\x02\x00\xff\xff\xff\x7f{}", 14,
                   "the header length is 2147483647 bytes; expected at most 1048576");
    expect_npy_error(t, "header_len0.npy", "", 0, "expected '{' (the header is a Python dict) at byte 0 of the header, found the end of the header");
}

static void test_npy_dict(Ctx *t)
{
    expect_npy_error(t, "not_dict.npy", "['descr']\n", 0, "expected '{' (the header is a Python dict) at byte 0 of the header, found '['");
    expect_npy_error(t, "no_shape.npy", "{'descr': '<f4', 'fortran_order': False, }\n", 0,
                     "the header has no 'shape'; expected 'descr', 'fortran_order' and 'shape'");
    expect_npy_error(t, "no_descr.npy", "{'fortran_order': False, 'shape': (1,)}\n", 4, "the header has no 'descr'");
    expect_npy_error(t, "unknown_key.npy", "{'descr': '<f4', 'foo': 1, 'fortran_order': False, 'shape': (1,)}\n", 4,
                     "unexpected key 'foo' in the header");
    expect_npy_error(t, "duplicate_key.npy", "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}\n", 4,
                     "the header gives 'descr' twice");
    expect_npy_error(t, "big_endian.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (1,)}\n", 4,
                     "the array is big-endian ('>f4'); expected little-endian '<f4'");
    expect_npy_error(t, "int32.npy", "{'descr': '<i4', 'fortran_order': False, 'shape': (1,)}\n", 4,
                     "unsupported dtype '<i4'; expected '<f4' (float32), '<i8' (int64) or '<f8' (float64, read as float32)");
    expect_npy_error(t, "uint8.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (1,)}\n", 1, "unsupported dtype '|u1'");
    expect_npy_error(t, "structured.npy", "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}\n", 4,
                     "structured dtype");
    expect_npy_error(t, "fortran.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2)}\n", 16,
                     "'fortran_order' is True (column-major data)");
    expect_npy_error(t, "fortran_word.npy", "{'descr': '<f4', 'fortran_order': maybe, 'shape': (1,)}\n", 4,
                     "expected True or False after 'fortran_order': at byte 34 of the header, found 'm'");
    expect_npy_error(t, "descr_not_string.npy", "{'descr': 5, 'fortran_order': False, 'shape': (1,)}\n", 4,
                     "expected a dtype string such as '<f4' after 'descr':");
    expect_npy_error(t, "unterminated.npy", "{'descr': '<f4}", 4,
                     "malformed header dict: expected the closing quote of a string at byte 15 of the header");
    expect_npy_error(t, "newline_in_string.npy", "{'descr': '<f4\n', 'fortran_order': False, 'shape': (1,)}\n", 4,
                     "expected a plain string (no escapes or control bytes) at byte 14 of the header, found byte 0x0a");
    expect_npy_error(t, "no_colon.npy", "{'descr' '<f4', 'fortran_order': False, 'shape': (1,)}\n", 4, "expected ':' after a key");
    expect_npy_error(t, "no_comma.npy", "{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}\n", 4,
                     "expected ',' or '}' after a value");
    expect_npy_error(t, "garbage_after.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x\n", 4,
                     "expected only spaces after the dict");
    expect_npy_error(t, "unclosed_dict.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)\n", 4,
                     "expected ',' or '}' after a value at byte 55 of the header, found the end of the header");
    expect_npy_error(t, "nul_in_header.npy", "{'descr': '<f4',\x01 'fortran_order': False, 'shape': (1,)}\n", 4,
                     "found byte 0x01");
}

static void test_npy_shape(Ctx *t)
{
    expect_npy_error(t, "shape_negative.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 3)}\n", 0,
                     "the shape has a negative dimension");
    expect_npy_error(t, "shape_huge_dim.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}\n", 0,
                     "a dimension of the shape is larger than 9223372036854775807");
    expect_npy_error(t, "shape_overflow.npy",
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4)}\n", 0,
                     "shape [4294967296, 4294967296, 4] of '<f4' is too large: its size overflows");
    expect_npy_error(t, "bytes_overflow.npy", "{'descr': '<i8', 'fortran_order': False, 'shape': (4611686018427387904,)}\n", 0,
                     "is too large: its size overflows");
    expect_npy_error(t, "shape_not_tuple.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (5)}\n", 20,
                     "the shape (5) is not a tuple; a one-dimensional shape is written (5,)");
    expect_npy_error(t, "shape_list.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': [5]}\n", 20,
                     "expected a tuple such as (64, 3) after 'shape':");
    expect_npy_error(t, "shape_double_comma.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,,3)}\n", 24,
                     "expected a dimension (a non-negative integer)");
    expect_npy_error(t, "shape_float.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,)}\n", 8,
                     "expected ',' or ')' in the shape");
    expect_npy_error(t, "shape_rank9.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}\n", 4,
                     "the shape has more than 8 dimensions");
    expect_npy_error(t, "data_short.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}\n", 20,
                     "the file has 20 bytes of data but shape [2, 3] of '<f4' needs 24 (truncated file?)");
    expect_npy_error(t, "data_extra.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}\n", 28,
                     "the file has 28 bytes of data but shape [2, 3] of '<f4' needs only 24 (4 extra bytes at the end)");
    expect_npy_error(t, "scalar_extra.npy", "{'descr': '<i8', 'fortran_order': False, 'shape': ()}\n", 16,
                     "shape [] of '<i8' needs only 8");
    expect_npy_error(t, "empty_with_data.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5)}\n", 4,
                     "needs only 0 (4 extra bytes at the end)");

    char path[256];
    Capture c;
    NpyArray arr;
    path_in(t, "missing.npy", path, sizeof path);
    cap_begin(&c, path);
    bool ok = npy_read(&c.arena, &c.diag, path, &arr);
    cap_end(&c);
    check_refused(t, "npy refuses a missing file", ok, &c, path, "cannot open");
    cap_free(&c);
    cap_begin(&c, t->dir);
    ok = npy_read(&c.arena, &c.diag, t->dir, &arr);
    cap_end(&c);
    check_refused(t, "npy refuses a directory", ok, &c, t->dir, "is not a regular file");
    cap_free(&c);
}

/* Reads path; checks dtype, shape and the data bytes. */
static void expect_npy_read(Ctx *t, const char *name, const char *path, DType dtype, const Shape *shape, const void *data,
                            size_t nbytes)
{
    Capture c;
    cap_begin(&c, path);
    NpyArray arr;
    bool ok = npy_read(&c.arena, &c.diag, path, &arr);
    cap_end(&c);
    bool good = ok && arr.dtype == dtype && shape_is(&arr.shape, shape->rank, shape->dims) && !arr.shape.dynamic_batch &&
                arr.numel == shape_numel(shape) && (nbytes == 0 || memcmp(arr.data, data, nbytes) == 0);
    check(t, good, name, c.text);
    cap_free(&c);
}

static void test_npy_roundtrip_one(Ctx *t, const char *name, DType dtype, Shape shape, const void *data, size_t nbytes)
{
    char path[256], err[256] = "", test[128];
    snprintf(test, sizeof test, "npy write %s", name);
    path_in(t, name, path, sizeof path);
    bool ok = npy_write(path, dtype, &shape, data, err, sizeof err);
    check(t, ok, test, err);
    size_t size = file_size(path);
    snprintf(test, sizeof test, "npy write %s: data starts at a multiple of 64", name);
    check(t, size >= nbytes && (size - nbytes) % 64 == 0, test, "");
    snprintf(test, sizeof test, "npy read back %s", name);
    expect_npy_read(t, test, path, dtype, &shape, data, nbytes);
}

static void test_npy_roundtrip(Ctx *t)
{
    const float f[6] = {1.5f, -0.0f, INFINITY, NAN, 1e-45f, 3.0f};
    test_npy_roundtrip_one(t, "f32_2x3.npy", DT_F32, (Shape){2, {2, 3}, false}, f, sizeof f);
    const int64_t i[5] = {INT64_MIN, -1, 0, 1, INT64_MAX};
    test_npy_roundtrip_one(t, "i64_5.npy", DT_I64, (Shape){1, {5}, false}, i, sizeof i);
    test_npy_roundtrip_one(t, "f32_scalar.npy", DT_F32, (Shape){0, {0}, false}, f, sizeof(float));
    test_npy_roundtrip_one(t, "f32_empty.npy", DT_F32, (Shape){2, {0, 4}, false}, NULL, 0);
    test_npy_roundtrip_one(t, "f32_rank8.npy", DT_F32, (Shape){8, {1, 1, 1, 1, 1, 1, 2, 3}, false}, f, sizeof f);
    float *big = malloc(1000 * 64 * sizeof(float));
    for (int k = 0; k < 64000; k++) big[k] = (float)k / 7.0f;
    test_npy_roundtrip_one(t, "f32_1000x64.npy", DT_F32, (Shape){2, {1000, 64}, true}, big, 64000 * sizeof(float));
    free(big);

    /* The exact bytes np.save writes for a float32 array of shape (2, 3). */
    char path[256];
    path_in(t, "f32_2x3.npy", path, sizeof path);
    size_t len;
    unsigned char *bytes = read_bytes(path, &len);
    static const char want[] = "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    size_t wlen = sizeof want - 1;
    bool header = len == 128 + 24 && memcmp(bytes, want, wlen) == 0 && bytes[127] == '\n';
    for (size_t k = wlen; k < 127; k++) header = header && bytes[k] == ' ';
    check(t, header, "npy write: the header np.save writes", "");
    free(bytes);
}

static void test_npy_other_versions(Ctx *t)
{
    char path[256];
    size_t len;
    double d[2] = {0.1, -3.0};
    unsigned char *b = npy_bytes(2, "{\"shape\": (2L,), 'fortran_order':False, \"descr\":'<f8'}", d, sizeof d, &len);
    path_in(t, "v2_f8.npy", path, sizeof path);
    write_bytes(path, b, len);
    free(b);
    const float want[2] = {(float)0.1, -3.0f};
    expect_npy_read(t, "npy reads v2.0, keys in any order, '<f8' as f32, 2L", path, DT_F32, &(Shape){1, {2}, false}, want,
                    sizeof want);
    int64_t v[3] = {5, 6, 7};
    b = npy_bytes(3, "{'descr': '<i8', 'fortran_order': False, 'shape': (3, 1), }          \n", v, sizeof v, &len);
    path_in(t, "v3_i8.npy", path, sizeof path);
    write_bytes(path, b, len);
    free(b);
    expect_npy_read(t, "npy reads v3.0 '<i8'", path, DT_I64, &(Shape){2, {3, 1}, false}, v, sizeof v);
    float s = 2.5f;
    b = npy_bytes(1, "{'descr':'<f4','fortran_order':False,'shape':()}", &s, sizeof s, &len);
    path_in(t, "v1_scalar_compact.npy", path, sizeof path);
    write_bytes(path, b, len);
    free(b);
    expect_npy_read(t, "npy reads a compact scalar header", path, DT_F32, &(Shape){0, {0}, false}, &s, sizeof s);
}

static bool dir_has_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    bool found = false;
    for (struct dirent *e; d && (e = readdir(d));) found = found || strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return found;
}

static void test_npy_write_errors(Ctx *t)
{
    char path[256], err[256];
    const float f[2] = {1, 2};
    path_in(t, "no_such_dir/x.npy", path, sizeof path);
    err[0] = 0;
    bool ok = npy_write(path, DT_F32, &(Shape){1, {2}, false}, f, err, sizeof err);
    check(t, !ok && strstr(err, "cannot write") && strstr(err, "No such file or directory"), "npy write into a missing directory", err);

    path_in(t, "a_directory.npy", path, sizeof path);
    mkdir(path, 0700);
    err[0] = 0;
    ok = npy_write(path, DT_F32, &(Shape){1, {2}, false}, f, err, sizeof err);
    check(t, !ok && strstr(err, "cannot write") && !dir_has_temp_files(t->dir), "npy write onto a directory fails, no temp file left",
          err);
    rmdir(path);

    path_in(t, "keep.npy", path, sizeof path);
    write_bytes(path, "original", 8);
    ok = npy_write(path, DT_F32, &(Shape){2, {2, -1}, false}, f, err, sizeof err);
    size_t len;
    unsigned char *bytes = read_bytes(path, &len);
    check(t, !ok && strstr(err, "negative dimension") && len == 8 && memcmp(bytes, "original", 8) == 0,
          "npy write with a bad shape leaves the destination untouched", err);
    free(bytes);
    ok = npy_write(path, DT_F32, &(Shape){9, {1}, false}, f, err, sizeof err);
    check(t, !ok && strstr(err, "rank 9"), "npy write refuses rank 9", err);
    ok = npy_write(path, DT_F32, &(Shape){1, {2}, false}, NULL, err, sizeof err);
    check(t, !ok && strstr(err, "no data"), "npy write refuses NULL data", err);
    ok = npy_write(path, DT_F32, &(Shape){1, {2}, false}, f, err, sizeof err);
    check(t, ok && file_size(path) == 128 + 8 && !dir_has_temp_files(t->dir), "npy write replaces an existing file", err);
}

/* ======================================================== main */

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    char path[512];
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (remove(path) != 0) perror(path);
    }
    closedir(d);
    rmdir(dir);
}

int main(void)
{
    Ctx t = {.dir = "/tmp/layerc-io-XXXXXX"};
    if (!mkdtemp(t.dir)) {
        perror("mkdtemp");
        return 2;
    }
    test_st_header_length(&t);
    test_st_json(&t);
    test_st_entries(&t);
    test_st_offsets(&t);
    test_st_files(&t);
    test_st_good(&t);
    test_st_f16_exhaustive(&t);
    test_too_large(&t, "huge.safetensors", false);
    test_too_large(&t, "huge.npy", true);
    test_bind(&t);
    test_read_and_bind(&t);
    test_init_image(&t);
    test_init_sequence(&t);
    test_init_chunked(&t);
    test_npy_preamble(&t);
    test_npy_dict(&t);
    test_npy_shape(&t);
    test_npy_roundtrip(&t);
    test_npy_other_versions(&t);
    test_npy_write_errors(&t);
    if (getenv("KEEP")) printf("files kept in %s\n", t.dir);
    else remove_tree(t.dir);
    printf("io: %d passed, %d failed\n", t.passed, t.failed);
    return t.failed ? 1 : 0;
}
