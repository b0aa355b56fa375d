/* weights.c - a model's parameter values.
 *
 *  - weights_read_safetensors: reads a .safetensors file (8-byte little-endian
 *    header length, a JSON header parsed with libcjson, then the data buffer).
 *    Every field is validated before any data is trusted: dtype, shape,
 *    data_offsets against the buffer, byte sizes, duplicate keys, overlaps.
 *    F16, BF16 and F64 are converted to f32 exactly (F64 rounded); I64 stays.
 *  - weights_bind: points each graph Param at its tensor, reporting missing
 *    keys, shape and dtype mismatches, and warning about unused tensors.
 * (weights_init_random is in weights_random.c.)
 */
#include "weights.h"

#include "file_io.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Limits on what a weights file may be. */
#define MAX_WEIGHTS_FILE ((int64_t)16 << 30)      /* 16 GiB */
#define MAX_HEADER_BYTES ((uint64_t)100 * 1000 * 1000)
#define MAX_JSON_INT 9007199254740992.0           /* 2^53: larger integers are not exact in JSON */
/* Unused-tensor warnings beyond this many are summarised in one note. */
enum { MAX_UNUSED_WARNINGS = 20, MAX_SHOWN_KEY = 100 };

/* ---------------------------------------------------------------- helpers */

static bool host_little_endian(void) { return __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__; }

static uint64_t load_le(const unsigned char *p, int nbytes)
{
    uint64_t v = 0;
    for (int i = nbytes - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* A key as shown in a message: control and non-ASCII bytes become '?', and
 * very long keys are cut, so a hostile file cannot garble the terminal. */
static const char *shown(Arena *a, const char *key)
{
    size_t n = strlen(key);
    bool cut = n > MAX_SHOWN_KEY;
    if (cut) n = MAX_SHOWN_KEY;
    char *s = arena_alloc(a, n + 4);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        s[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (cut) memcpy(s + n, "...", 4);
    return s;
}

static const char *shape_str(Arena *a, const Shape *s)
{
    char buf[MAX_SHAPE_TEXT];
    return arena_strdup(a, shape_format(s, NULL, buf, sizeof buf));
}

/* "a string \"F32\"", "the number 1.5", "an array", ... for "found ..." messages. */
static const char *describe_json(Arena *a, const cJSON *v)
{
    if (!v) return "nothing";
    if (cJSON_IsString(v)) return arena_printf(a, "the string \"%s\"", shown(a, v->valuestring));
    if (cJSON_IsNumber(v)) return arena_printf(a, "the number %.15g", v->valuedouble);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v) ? "true" : "false";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "an invalid value";
}

/* A JSON number that is a non-negative integer exactly representable. */
static bool json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return false;
    double x = v->valuedouble;
    if (!(x >= 0) || x > MAX_JSON_INT || x != floor(x)) return false;
    *out = (uint64_t)x;
    return true;
}

/* ------------------------------------------------------- safetensors dtypes */

typedef enum { ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64 } StDtype;

static const struct {
    const char *name;
    int itemsize;
} st_dtypes[] = {
    [ST_F32] = {"F32", 4}, [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2}, [ST_F64] = {"F64", 8}, [ST_I64] = {"I64", 8},
};

static bool st_dtype_lookup(const char *name, StDtype *out)
{
    for (int i = 0; i < (int)(sizeof st_dtypes / sizeof st_dtypes[0]); i++)
        if (strcmp(st_dtypes[i].name, name) == 0) {
            *out = (StDtype)i;
            return true;
        }
    return false;
}

/* IEEE half -> float, exact for every value (subnormals, inf, nan payloads). */
static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0) { /* zero or subnormal: man * 2^-24, exact in float */
        float v = ldexpf((float)man, -24);
        return sign ? -v : v;
    }
    uint32_t bits = sign | (exp == 0x1f ? 0x7f800000u : (exp + 112u) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* bfloat16 is the top half of a float. */
static float bf16_to_f32(uint16_t b)
{
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* ------------------------------------------------------------ file access */


/* ------------------------------------------------------ header validation */

/* One tensor entry of the header, validated. */
typedef struct Entry {
    const char *key;
    StDtype dtype;
    Shape shape;
    uint64_t begin, end;
    bool ok;
} Entry;

typedef struct Header {
    Arena *arena;
    Diag *diag;
    uint64_t data_len;
    Entry *entries;
    int count;
} Header;

/* A field of an entry, reported when missing or given more than once. */
static const cJSON *entry_field(Header *h, const cJSON *obj, const char *key, const char *field, const char *expect)
{
    const cJSON *found = NULL;
    int times = 0;
    for (const cJSON *c = obj->child; c; c = c->next)
        if (c->string && strcmp(c->string, field) == 0) {
            if (!found) found = c;
            times++;
        }
    if (!found)
        diag_error(h->diag, (SrcSpan){0}, "tensor '%s' has no \"%s\" (expected %s)", shown(h->arena, key), field, expect);
    else if (times > 1)
        diag_error(h->diag, (SrcSpan){0}, "tensor '%s' gives \"%s\" %d times; expected it once", shown(h->arena, key), field,
                   times);
    return times == 1 ? found : NULL;
}

static bool parse_dtype(Header *h, Entry *e, const cJSON *obj)
{
    const cJSON *v = entry_field(h, obj, e->key, "dtype", "a string such as \"F32\"");
    if (!v) return false;
    if (!cJSON_IsString(v)) {
        diag_error(h->diag, (SrcSpan){0}, "tensor '%s': \"dtype\" must be a string such as \"F32\", found %s",
                   shown(h->arena, e->key), describe_json(h->arena, v));
        return false;
    }
    if (st_dtype_lookup(v->valuestring, &e->dtype)) return true;
    diag_error(h->diag, (SrcSpan){0},
               "tensor '%s' has dtype \"%s\", which layerc does not read (expected F32, F16, BF16, F64 or I64)",
               shown(h->arena, e->key), shown(h->arena, v->valuestring));
    return false;
}

static bool parse_shape(Header *h, Entry *e, const cJSON *obj)
{
    const char *expect = "an array of non-negative integers such as [64, 3]";
    const cJSON *v = entry_field(h, obj, e->key, "shape", expect);
    if (!v) return false;
    const char *key = shown(h->arena, e->key);
    if (!cJSON_IsArray(v)) {
        diag_error(h->diag, (SrcSpan){0}, "tensor '%s': \"shape\" must be %s, found %s", key, expect,
                   describe_json(h->arena, v));
        return false;
    }
    int rank = cJSON_GetArraySize(v);
    if (rank > MAX_RANK) {
        diag_error(h->diag, (SrcSpan){0}, "tensor '%s' has %d dimensions; layerc supports at most %d", key, rank, MAX_RANK);
        return false;
    }
    e->shape.rank = rank;
    int i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        uint64_t dim;
        if (!json_uint(c, &dim)) {
            diag_error(h->diag, (SrcSpan){0}, "tensor '%s': dimension %d of \"shape\" must be a non-negative integer, found %s",
                       key, i, describe_json(h->arena, c));
            return false;
        }
        e->shape.dims[i] = (int64_t)dim;
    }
    if (shape_numel(&e->shape) < 0) {
        diag_error(h->diag, (SrcSpan){0}, "tensor '%s': shape %s has more elements than can be counted (overflow)", key,
                   shape_str(h->arena, &e->shape));
        return false;
    }
    return true;
}

static bool parse_offsets(Header *h, Entry *e, const cJSON *obj)
{
    const char *expect = "[begin, end], two byte offsets into the data buffer";
    const cJSON *v = entry_field(h, obj, e->key, "data_offsets", expect);
    if (!v) return false;
    const char *key = shown(h->arena, e->key);
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2) {
        diag_error(h->diag, (SrcSpan){0}, "tensor '%s': \"data_offsets\" must be %s, found %s", key, expect,
                   cJSON_IsArray(v) ? arena_printf(h->arena, "an array of %d items", cJSON_GetArraySize(v))
                                    : describe_json(h->arena, v));
        return false;
    }
    const cJSON *b = v->child, *en = v->child->next;
    if (!json_uint(b, &e->begin) || !json_uint(en, &e->end)) {
        const cJSON *bad = json_uint(b, &e->begin) ? en : b;
        diag_error(h->diag, (SrcSpan){0}, "tensor '%s': \"data_offsets\" must be non-negative integers, found %s", key,
                   describe_json(h->arena, bad));
        return false;
    }
    if (e->end < e->begin) {
        diag_error(h->diag, (SrcSpan){0}, "tensor '%s': data_offsets [%llu, %llu] end before they begin", key,
                   (unsigned long long)e->begin, (unsigned long long)e->end);
        return false;
    }
    if (e->end > h->data_len) {
        diag_error(h->diag, (SrcSpan){0},
                   "tensor '%s': data_offsets [%llu, %llu] are outside the data buffer, which has %llu bytes", key,
                   (unsigned long long)e->begin, (unsigned long long)e->end, (unsigned long long)h->data_len);
        return false;
    }
    return true;
}

/* The byte span must hold exactly numel elements of the dtype. */
static bool check_size(Header *h, const Entry *e)
{
    int64_t numel = shape_numel(&e->shape);
    int itemsize = st_dtypes[e->dtype].itemsize;
    uint64_t need = (uint64_t)numel * (uint64_t)itemsize; /* numel < 2^63, itemsize <= 8: checked below */
    bool overflow = numel > 0 && (uint64_t)numel > UINT64_MAX / (uint64_t)itemsize;
    uint64_t have = e->end - e->begin;
    if (!overflow && need == have) return true;
    diag_error(h->diag, (SrcSpan){0},
               "tensor '%s': data_offsets [%llu, %llu] span %llu bytes but %s %s needs %s (%lld elements of %d bytes)",
               shown(h->arena, e->key), (unsigned long long)e->begin, (unsigned long long)e->end,
               (unsigned long long)have, st_dtypes[e->dtype].name, shape_str(h->arena, &e->shape),
               overflow ? "more than 2^64 bytes" : arena_printf(h->arena, "%llu bytes", (unsigned long long)need),
               (long long)numel, itemsize);
    return false;
}

static bool parse_entry(Header *h, Entry *e, const cJSON *obj)
{
    if (!cJSON_IsObject(obj)) {
        diag_error(h->diag, (SrcSpan){0},
                   "tensor '%s': expected an object {\"dtype\", \"shape\", \"data_offsets\"}, found %s",
                   shown(h->arena, e->key), describe_json(h->arena, obj));
        return false;
    }
    bool ok = parse_dtype(h, e, obj);
    ok = parse_shape(h, e, obj) && ok;
    ok = parse_offsets(h, e, obj) && ok;
    return ok && check_size(h, e);
}

/* "__metadata__" is an object whose values are strings. */
static bool check_metadata(Header *h, const cJSON *meta)
{
    if (!cJSON_IsObject(meta)) {
        diag_error(h->diag, (SrcSpan){0}, "\"__metadata__\" must be an object of strings, found %s",
                   describe_json(h->arena, meta));
        return false;
    }
    for (const cJSON *c = meta->child; c; c = c->next)
        if (!cJSON_IsString(c)) {
            diag_error(h->diag, (SrcSpan){0}, "\"__metadata__\" must map strings to strings; \"%s\" is %s",
                       shown(h->arena, c->string), describe_json(h->arena, c));
            return false;
        }
    return true;
}

static int cmp_entry_key(const void *a, const void *b)
{
    return strcmp((*(const Entry *const *)a)->key, (*(const Entry *const *)b)->key);
}

static int cmp_entry_offset(const void *a, const void *b)
{
    const Entry *x = *(const Entry *const *)a, *y = *(const Entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static bool check_duplicates(Header *h)
{
    if (h->count < 2) return true;
    Entry **sorted = arena_alloc_array(h->arena, (size_t)h->count, sizeof *sorted);
    for (int i = 0; i < h->count; i++) sorted[i] = &h->entries[i];
    qsort(sorted, (size_t)h->count, sizeof *sorted, cmp_entry_key);
    bool ok = true;
    for (int i = 1; i < h->count; i++)
        if (strcmp(sorted[i - 1]->key, sorted[i]->key) == 0) {
            if (i < 2 || strcmp(sorted[i - 2]->key, sorted[i]->key) != 0)
                diag_error(h->diag, (SrcSpan){0}, "tensor '%s' appears more than once in the header",
                           shown(h->arena, sorted[i]->key));
            sorted[i]->ok = false; /* not checked again for overlaps */
            ok = false;
        }
    return ok;
}

/* Valid entries sorted by offset must not overlap; bytes no tensor covers get a warning. */
static bool check_overlaps(Header *h)
{
    Entry **sorted = arena_alloc_array(h->arena, (size_t)h->count + 1, sizeof *sorted);
    int n = 0;
    for (int i = 0; i < h->count; i++)
        if (h->entries[i].ok && h->entries[i].end > h->entries[i].begin) sorted[n++] = &h->entries[i];
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_entry_offset);
    bool ok = true;
    uint64_t covered = 0;
    const Entry *last = NULL; /* the entry reaching furthest so far */
    for (int i = 0; i < n; i++) {
        const Entry *e = sorted[i];
        if (last && e->begin < last->end) {
            diag_error(h->diag, (SrcSpan){0}, "tensors '%s' (bytes %llu to %llu) and '%s' (bytes %llu to %llu) overlap in the data buffer",
                       shown(h->arena, last->key), (unsigned long long)last->begin, (unsigned long long)last->end,
                       shown(h->arena, e->key), (unsigned long long)e->begin, (unsigned long long)e->end);
            ok = false;
        }
        covered += e->end - e->begin; /* only used when nothing overlaps */
        if (!last || e->end > last->end) last = e;
    }
    if (ok && covered < h->data_len)
        diag_warning(h->diag, (SrcSpan){0}, "%llu of the %llu bytes of the data buffer belong to no tensor",
                     (unsigned long long)(h->data_len - covered), (unsigned long long)h->data_len);
    return ok;
}

/* Validates every entry of the parsed header; returns false after reporting. */
static bool validate_header(Header *h, const cJSON *root)
{
    if (!cJSON_IsObject(root)) {
        diag_error(h->diag, (SrcSpan){0},
                   "the header is %s; expected a JSON object {\"name\": {\"dtype\", \"shape\", \"data_offsets\"}, ...}",
                   describe_json(h->arena, root));
        return false;
    }
    int n = cJSON_GetArraySize(root);
    h->entries = arena_alloc_array(h->arena, (size_t)n + 1, sizeof *h->entries);
    bool ok = true;
    int metadata_seen = 0;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__") == 0) {
            if (metadata_seen++ == 1) {
                diag_error(h->diag, (SrcSpan){0}, "\"__metadata__\" appears more than once in the header");
                ok = false;
            }
            ok = check_metadata(h, c) && ok;
            continue;
        }
        Entry *e = &h->entries[h->count++];
        e->key = arena_strdup(h->arena, c->string);
        e->ok = parse_entry(h, e, c);
        ok = ok && e->ok;
    }
    ok = check_duplicates(h) && ok;
    return check_overlaps(h) && ok;
}

/* Parses the header text with libcjson; it may be padded with trailing spaces. */
static cJSON *parse_header_json(Diag *d, const char *text, size_t len)
{
    /* libcjson skips every byte below 0x20 as whitespace; JSON allows none outside these four. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
            diag_error(d, (SrcSpan){0}, "the header is not valid JSON: control byte 0x%02x at byte %zu of the header", c, i);
            return NULL;
        }
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!root) {
        size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        diag_error(d, (SrcSpan){0}, "the %zu-byte header is not valid JSON (error near byte %zu of the header)", len, at);
        return NULL;
    }
    for (const char *p = end; p < text + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            diag_error(d, (SrcSpan){0}, "unexpected data after the JSON header at byte %zu of the header (expected only spaces)",
                       (size_t)(p - text));
            cJSON_Delete(root);
            return NULL;
        }
    return root;
}

/* Reads and checks the 8-byte header length against the file size. */
static bool read_header_length(Diag *d, FILE *f, int64_t size, uint64_t *len)
{
    if (size < 8) {
        diag_error(d, (SrcSpan){0}, "the file is %lld bytes; a safetensors file starts with an 8-byte header length",
                   (long long)size);
        return false;
    }
    unsigned char b[8];
    if (!read_exact(d, f, b, sizeof b, "header length")) return false;
    *len = load_le(b, 8);
    if (*len > MAX_HEADER_BYTES) {
        diag_error(d, (SrcSpan){0}, "the header length is %llu bytes; expected at most %llu (is this a safetensors file?)",
                   (unsigned long long)*len, (unsigned long long)MAX_HEADER_BYTES);
        return false;
    }
    if (*len > (uint64_t)(size - 8)) {
        diag_error(d, (SrcSpan){0}, "the header length is %llu bytes but only %lld bytes follow it (truncated file?)",
                   (unsigned long long)*len, (long long)(size - 8));
        return false;
    }
    return true;
}

/* ------------------------------------------------------- data conversion */

static float *to_f32(Arena *a, const Entry *e, const unsigned char *src, int64_t numel)
{
    if (e->dtype == ST_F32 && host_little_endian() && e->begin % sizeof(float) == 0)
        return (float *)(void *)src; /* the buffer is 16-byte aligned: use it in place */
    float *out = arena_alloc_array(a, (size_t)numel, sizeof *out);
    for (int64_t i = 0; i < numel; i++) {
        switch (e->dtype) {
        case ST_F16: out[i] = f16_to_f32((uint16_t)load_le(src + 2 * i, 2)); break;
        case ST_BF16: out[i] = bf16_to_f32((uint16_t)load_le(src + 2 * i, 2)); break;
        case ST_F32: {
            uint32_t bits = (uint32_t)load_le(src + 4 * i, 4);
            memcpy(&out[i], &bits, sizeof bits);
            break;
        }
        case ST_F64: {
            uint64_t bits = load_le(src + 8 * i, 8);
            double v;
            memcpy(&v, &bits, sizeof v);
            out[i] = (float)v;
            break;
        }
        case ST_I64: LAYERC_UNREACHABLE("i64 tensor converted to f32");
        }
    }
    return out;
}

static int64_t *to_i64(Arena *a, const Entry *e, const unsigned char *src, int64_t numel)
{
    if (host_little_endian() && e->begin % sizeof(int64_t) == 0) return (int64_t *)(void *)src;
    int64_t *out = arena_alloc_array(a, (size_t)numel, sizeof *out);
    for (int64_t i = 0; i < numel; i++) out[i] = (int64_t)load_le(src + 8 * i, 8);
    return out;
}

static void fill_weight_set(Arena *a, const Header *h, const unsigned char *data, WeightSet *out)
{
    out->tensors = arena_alloc_array(a, (size_t)h->count + 1, sizeof *out->tensors);
    out->count = h->count;
    for (int i = 0; i < h->count; i++) {
        const Entry *e = &h->entries[i];
        WeightTensor *t = &out->tensors[i];
        int64_t numel = shape_numel(&e->shape);
        t->key = e->key;
        t->shape = e->shape;
        t->dtype = e->dtype == ST_I64 ? DT_I64 : DT_F32;
        if (t->dtype == DT_I64)
            t->i64 = to_i64(a, e, data + e->begin, numel);
        else
            t->f32 = to_f32(a, e, data + e->begin, numel);
    }
}

/* Header validated: reads the data buffer and converts every tensor. */
static bool read_data(Arena *a, Diag *d, FILE *f, const Header *h, WeightSet *out)
{
    unsigned char *data = arena_alloc(a, (size_t)h->data_len + 1);
    if (!read_exact(d, f, data, (size_t)h->data_len, "data buffer")) return false;
    fill_weight_set(a, h, data, out);
    return true;
}

static bool read_safetensors_file(Arena *a, Diag *d, FILE *f, int64_t size, WeightSet *out)
{
    uint64_t hlen;
    if (!read_header_length(d, f, size, &hlen)) return false;
    char *text = arena_alloc(a, (size_t)hlen + 1);
    if (!read_exact(d, f, text, (size_t)hlen, "header")) return false;
    cJSON *root = parse_header_json(d, text, (size_t)hlen);
    if (!root) return false;
    Header h = {.arena = a, .diag = d, .data_len = (uint64_t)size - 8 - hlen};
    bool ok = validate_header(&h, root);
    cJSON_Delete(root);
    return ok && read_data(a, d, f, &h, out);
}

bool weights_read_safetensors(Arena *a, Diag *d, const char *path, WeightSet *out)
{
    memset(out, 0, sizeof *out);
    int64_t size;
    FILE *f = open_input_file(d, path, MAX_WEIGHTS_FILE, "weights", &size);
    if (!f) return false;
    WeightSet set = {0};
    bool ok = read_safetensors_file(a, d, f, size, &set);
    fclose(f);
    if (ok) *out = set;
    return ok;
}

/* ---------------------------------------------------------------- binding */

static int cmp_tensor_key(const void *a, const void *b)
{
    return strcmp((*(WeightTensor *const *)a)->key, (*(WeightTensor *const *)b)->key);
}

typedef struct Binder {
    Arena *arena;
    Diag *diag;
    Graph *graph;
    WeightTensor **sorted; /* w's tensors by key */
    int count;
} Binder;

static WeightTensor *find_tensor(const Binder *b, const char *key)
{
    WeightTensor probe = {.key = key}, *pp = &probe;
    WeightTensor **hit = bsearch(&pp, b->sorted, (size_t)b->count, sizeof *b->sorted, cmp_tensor_key);
    return hit ? *hit : NULL;
}

static const char *dtype_desc(DType t) { return t == DT_I64 ? "an integer (I64) tensor" : "a floating-point tensor"; }

static bool bind_param(Binder *b, const Node *n, Param *p)
{
    Arena *a = b->arena;
    WeightTensor *t = find_tensor(b, p->key);
    if (!t) {
        if (p->dtype == DT_I64) return true; /* num_batches_tracked: optional, not used for inference */
        diag_error(b->diag, (SrcSpan){0}, "missing tensor '%s' %s for layer %s (%s)", p->key, shape_str(a, &p->shape),
                   n->name, op_name(n->op));
        return false;
    }
    t->used = true;
    if (t->dtype != p->dtype) {
        diag_error(b->diag, (SrcSpan){0}, "tensor '%s' is %s in the weights file but the model expects %s for layer %s (%s)",
                   p->key, dtype_desc(t->dtype), dtype_desc(p->dtype), n->name, op_name(n->op));
        return false;
    }
    bool same = t->shape.rank == p->shape.rank;
    for (int i = 0; same && i < p->shape.rank; i++) same = t->shape.dims[i] == p->shape.dims[i];
    if (!same) {
        diag_error(b->diag, (SrcSpan){0}, "tensor '%s' has shape %s in the weights file but the model expects %s (layer %s, %s)",
                   p->key, shape_str(a, &t->shape), shape_str(a, &p->shape), n->name,
                   n->call_text ? n->call_text : op_name(n->op));
        return false;
    }
    if (p->dtype == DT_F32) p->data = t->f32;
    return true;
}

static const Node *node_named(const Graph *g, const char *name, size_t len)
{
    for (int i = 1; i < g->nodes.len; i++) {
        const Node *n = g->nodes.items[i];
        if (strlen(n->name) == len && strncmp(n->name, name, len) == 0) return n;
    }
    return NULL;
}

/* The " did you mean ..." hint of an unused tensor: a near key of its layer,
 * or, when no layer has the key's prefix, the nearest layer name. */
static const char *unused_hint(const Binder *b, const char *key)
{
    Arena *a = b->arena;
    const Graph *g = b->graph;
    size_t plen = strcspn(key, ".");
    const Node *n = node_named(g, key, plen);
    if (n) {
        const char **keys = arena_alloc_array(a, (size_t)n->nparams + 1, sizeof *keys);
        for (int i = 0; i < n->nparams; i++) keys[i] = n->params[i].key;
        const char *near = nearest_word(key, keys, n->nparams);
        if (near) return arena_printf(a, "; did you mean '%s'?", near);
        return arena_printf(a, "; layer %s (%s) has no tensor '%s'", n->name, op_name(n->op), shown(a, key + plen + (key[plen] != 0)));
    }
    const char **names = arena_alloc_array(a, (size_t)g->nodes.len + 1, sizeof *names);
    int count = 0;
    for (int i = 1; i < g->nodes.len; i++) names[count++] = ((const Node *)g->nodes.items[i])->name;
    const char *prefix = arena_strndup(a, key, plen);
    const char *near = nearest_word(prefix, names, count);
    if (near) return arena_printf(a, "; no layer is named '%s': did you mean '%s'?", shown(a, prefix), near);
    return arena_printf(a, "; no layer is named '%s'", shown(a, prefix));
}

/* Whether key belongs to a submodule that is declared but never called (graph.h: Graph.uncalled). */
static bool of_uncalled_module(const Graph *g, const char *key)
{
    for (int i = 0; i < g->uncalled.len; i++) {
        const char *path = g->uncalled.items[i];
        size_t len = strlen(path);
        if (strncmp(key, path, len) == 0 && key[len] == '.') return true;
    }
    return false;
}

static void warn_unused(const Binder *b, const WeightSet *w)
{
    int unused = 0;
    for (int i = 0; i < w->count; i++) {
        const WeightTensor *t = &w->tensors[i];
        if (t->used || of_uncalled_module(b->graph, t->key)) continue;
        if (++unused > MAX_UNUSED_WARNINGS) continue;
        diag_warning(b->diag, (SrcSpan){0}, "unused tensor '%s' in the weights file%s", shown(b->arena, t->key),
                     unused_hint(b, t->key));
    }
    if (unused > MAX_UNUSED_WARNINGS)
        diag_note(b->diag, (SrcSpan){0}, "%d more unused tensors are not listed", unused - MAX_UNUSED_WARNINGS);
}

bool weights_bind(Diag *d, Graph *g, WeightSet *w)
{
    Binder b = {.arena = d->arena ? d->arena : g->arena, .diag = d, .graph = g, .count = w->count};
    b.sorted = arena_alloc_array(b.arena, (size_t)w->count + 1, sizeof *b.sorted);
    for (int i = 0; i < w->count; i++) {
        w->tensors[i].used = false;
        b.sorted[i] = &w->tensors[i];
    }
    qsort(b.sorted, (size_t)w->count, sizeof *b.sorted, cmp_tensor_key);
    bool ok = true;
    for (int i = 1; i < g->nodes.len; i++) {
        Node *n = g->nodes.items[i];
        for (int j = 0; j < n->nparams; j++) ok = bind_param(&b, n, &n->params[j]) && ok;
    }
    warn_unused(&b, w);
    return ok;
}
