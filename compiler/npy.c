/* npy.c - numpy's .npy files: reading versions 1.0, 2.0 and 3.0 ('<f4',
 * '<i8', and '<f8' converted to f32), writing version 1.0 exactly as
 * np.save does (header padded so the data starts at a multiple of 64).
 *
 * The header is a Python dict literal, e.g.
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (64, 3, 32, 32), }
 * parsed by a small hand parser for exactly that literal: the three keys in
 * any order, each once; the shape a tuple ((5,) for 1-D, () for a scalar).
 * The data must be exactly the shape's size: a short file or trailing bytes
 * are errors.  Writes go to "<path>.tmp.<pid>" renamed into place.
 */
#include "npy.h"

#include "file_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_NPY_FILE ((int64_t)16 << 30) /* 16 GiB */
enum { MAX_NPY_HEADER = 1 << 20, NPY_ALIGN = 64, GROWTH_AXIS_MAX_DIGITS = 21, MAX_WORD = 32 };

static const char NPY_MAGIC[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

static bool host_little_endian(void) { return __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__; }

static uint64_t load_le(const unsigned char *p, int nbytes)
{
    uint64_t v = 0;
    for (int i = nbytes - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static void swap_bytes(unsigned char *p, int64_t count, int size)
{
    for (int64_t i = 0; i < count; i++, p += size)
        for (int j = 0; j < size / 2; j++) {
            unsigned char t = p[j];
            p[j] = p[size - 1 - j];
            p[size - 1 - j] = t;
        }
}

/* ------------------------------------------------------- the header dict */

typedef enum { NPY_F4, NPY_I8, NPY_F8 } NpyDescr;

typedef struct HeaderParser {
    Diag *diag;
    const char *p, *start, *end;
    NpyDescr descr;
    Shape shape;
    bool fortran_order;
    bool seen[3]; /* descr, fortran_order, shape */
} HeaderParser;

static void skip_space(HeaderParser *hp)
{
    while (hp->p < hp->end && (*hp->p == ' ' || *hp->p == '\t' || *hp->p == '\n' || *hp->p == '\r')) hp->p++;
}

/* What the parser sees at its position, for messages. */
static const char *seen_here(const HeaderParser *hp, char *buf, size_t size)
{
    if (hp->p >= hp->end) return "the end of the header";
    unsigned char c = (unsigned char)*hp->p;
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, size, "'%c'", c);
    else
        snprintf(buf, size, "byte 0x%02x", c);
    return buf;
}

static bool syntax_error(HeaderParser *hp, const char *expected)
{
    char buf[32];
    diag_error(hp->diag, (SrcSpan){0}, "malformed header dict: expected %s at byte %d of the header, found %s", expected,
               (int)(hp->p - hp->start), seen_here(hp, buf, sizeof buf));
    return false;
}

static bool expect_char(HeaderParser *hp, char c, const char *what)
{
    skip_space(hp);
    if (hp->p < hp->end && *hp->p == c) {
        hp->p++;
        return true;
    }
    return syntax_error(hp, what);
}

/* A quoted Python string (no escapes needed for the header's words). */
static bool parse_string(HeaderParser *hp, char *out, size_t size, const char *what)
{
    skip_space(hp);
    if (hp->p >= hp->end || (*hp->p != '\'' && *hp->p != '"')) return syntax_error(hp, what);
    char quote = *hp->p++;
    size_t n = 0;
    while (hp->p < hp->end && *hp->p != quote) {
        unsigned char c = (unsigned char)*hp->p;
        if (c == '\\' || c < 0x20 || c >= 0x7f) return syntax_error(hp, "a plain string (no escapes or control bytes)");
        if (n + 1 >= size) return syntax_error(hp, "a shorter string");
        out[n++] = (char)c;
        hp->p++;
    }
    if (hp->p >= hp->end) return syntax_error(hp, "the closing quote of a string");
    hp->p++;
    out[n] = 0;
    return true;
}

static bool parse_descr(HeaderParser *hp)
{
    skip_space(hp);
    if (hp->p < hp->end && *hp->p == '[') {
        diag_error(hp->diag, (SrcSpan){0}, "the array has a structured dtype (a list 'descr'); expected '<f4' or '<i8'");
        return false;
    }
    char s[MAX_WORD];
    if (!parse_string(hp, s, sizeof s, "a dtype string such as '<f4' after 'descr':")) return false;
    if (strcmp(s, "<f4") == 0) hp->descr = NPY_F4;
    else if (strcmp(s, "<i8") == 0) hp->descr = NPY_I8;
    else if (strcmp(s, "<f8") == 0) hp->descr = NPY_F8;
    else if (s[0] == '>' && (strcmp(s + 1, "f4") == 0 || strcmp(s + 1, "i8") == 0 || strcmp(s + 1, "f8") == 0)) {
        diag_error(hp->diag, (SrcSpan){0}, "the array is big-endian ('%s'); expected little-endian '<%s' (save arr.astype('<%s'))",
                   s, s + 1, s + 1);
        return false;
    } else {
        diag_error(hp->diag, (SrcSpan){0},
                   "unsupported dtype '%s'; expected '<f4' (float32), '<i8' (int64) or '<f8' (float64, read as float32)", s);
        return false;
    }
    return true;
}

static bool parse_fortran_order(HeaderParser *hp)
{
    skip_space(hp);
    size_t left = (size_t)(hp->end - hp->p);
    if (left >= 5 && strncmp(hp->p, "False", 5) == 0) {
        hp->p += 5;
        hp->fortran_order = false;
        return true;
    }
    if (left >= 4 && strncmp(hp->p, "True", 4) == 0) {
        diag_error(hp->diag, (SrcSpan){0},
                   "'fortran_order' is True (column-major data); expected a C-ordered array (save np.ascontiguousarray(arr))");
        return false;
    }
    return syntax_error(hp, "True or False after 'fortran_order':");
}

/* A non-negative Python int (a Python 2 long's 'L' suffix is accepted). */
static bool parse_dim(HeaderParser *hp, int64_t *out)
{
    skip_space(hp);
    if (hp->p < hp->end && *hp->p == '-') {
        diag_error(hp->diag, (SrcSpan){0}, "the shape has a negative dimension");
        return false;
    }
    if (hp->p >= hp->end || *hp->p < '0' || *hp->p > '9') return syntax_error(hp, "a dimension (a non-negative integer)");
    int64_t v = 0;
    while (hp->p < hp->end && *hp->p >= '0' && *hp->p <= '9') {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *hp->p - '0', &v)) {
            diag_error(hp->diag, (SrcSpan){0}, "a dimension of the shape is larger than %lld", (long long)INT64_MAX);
            return false;
        }
        hp->p++;
    }
    if (hp->p < hp->end && (*hp->p == 'L' || *hp->p == 'l')) hp->p++;
    *out = v;
    return true;
}

/* (d0, d1, ...) with an optional trailing comma; a single dimension needs it: (5,). */
static bool parse_shape(HeaderParser *hp)
{
    if (!expect_char(hp, '(', "a tuple such as (64, 3) after 'shape':")) return false;
    Shape *s = &hp->shape;
    memset(s, 0, sizeof *s);
    bool comma = false;
    for (;;) {
        skip_space(hp);
        if (hp->p < hp->end && *hp->p == ')') break;
        if (s->rank == MAX_RANK) {
            diag_error(hp->diag, (SrcSpan){0}, "the shape has more than %d dimensions", MAX_RANK);
            return false;
        }
        if (!parse_dim(hp, &s->dims[s->rank++])) return false;
        skip_space(hp);
        comma = hp->p < hp->end && *hp->p == ',';
        if (comma) hp->p++;
        else if (hp->p >= hp->end || *hp->p != ')') return syntax_error(hp, "',' or ')' in the shape");
    }
    hp->p++;
    if (s->rank == 1 && !comma) {
        diag_error(hp->diag, (SrcSpan){0}, "the shape (%lld) is not a tuple; a one-dimensional shape is written (%lld,)",
                   (long long)s->dims[0], (long long)s->dims[0]);
        return false;
    }
    return true;
}

static bool parse_entry(HeaderParser *hp)
{
    static const char *const keys[3] = {"descr", "fortran_order", "shape"};
    char key[MAX_WORD];
    if (!parse_string(hp, key, sizeof key, "a quoted key ('descr', 'fortran_order' or 'shape')")) return false;
    int k = 0;
    while (k < 3 && strcmp(key, keys[k]) != 0) k++;
    if (k == 3) {
        diag_error(hp->diag, (SrcSpan){0}, "unexpected key '%s' in the header; expected 'descr', 'fortran_order' and 'shape'",
                   key);
        return false;
    }
    if (hp->seen[k]) {
        diag_error(hp->diag, (SrcSpan){0}, "the header gives '%s' twice", key);
        return false;
    }
    hp->seen[k] = true;
    if (!expect_char(hp, ':', "':' after a key")) return false;
    return k == 0 ? parse_descr(hp) : k == 1 ? parse_fortran_order(hp) : parse_shape(hp);
}

/* The whole dict, then only padding (spaces, ending in a newline). */
static bool parse_header(HeaderParser *hp)
{
    if (!expect_char(hp, '{', "'{' (the header is a Python dict)")) return false;
    for (;;) {
        skip_space(hp);
        if (hp->p < hp->end && *hp->p == '}') break;
        if (!parse_entry(hp)) return false;
        skip_space(hp);
        if (hp->p < hp->end && *hp->p == ',') hp->p++;
        else if (hp->p >= hp->end || *hp->p != '}') return syntax_error(hp, "',' or '}' after a value");
    }
    hp->p++;
    skip_space(hp);
    if (hp->p < hp->end) return syntax_error(hp, "only spaces after the dict");
    static const char *const keys[3] = {"descr", "fortran_order", "shape"};
    for (int k = 0; k < 3; k++)
        if (!hp->seen[k]) {
            diag_error(hp->diag, (SrcSpan){0}, "the header has no '%s'; expected 'descr', 'fortran_order' and 'shape'",
                       keys[k]);
            return false;
        }
    return true;
}

/* ------------------------------------------------------------------ reading */


/* Magic, version and header length; returns the preamble's size (10 or 12) or 0. */
static int read_preamble(Diag *d, FILE *f, int64_t size, uint32_t *hlen)
{
    unsigned char b[12];
    if (size < 10) {
        diag_error(d, (SrcSpan){0}, "the file is %lld bytes, too short for a .npy header (at least 10 bytes)",
                   (long long)size);
        return 0;
    }
    if (!read_exact(d, f, b, 10, "magic and version")) return 0;
    if (memcmp(b, NPY_MAGIC, sizeof NPY_MAGIC) != 0) {
        diag_error(d, (SrcSpan){0}, "not a .npy file: it does not start with the magic \"\\x93NUMPY\"");
        return 0;
    }
    if ((b[6] != 1 && b[6] != 2 && b[6] != 3) || b[7] != 0) {
        diag_error(d, (SrcSpan){0}, "unsupported .npy format version %d.%d; expected 1.0, 2.0 or 3.0", b[6], b[7]);
        return 0;
    }
    if (b[6] == 1) {
        *hlen = (uint32_t)load_le(b + 8, 2);
        return 10;
    }
    if (size < 12) {
        diag_error(d, (SrcSpan){0}, "the file is %lld bytes, too short for a version %d.0 header (at least 12 bytes)",
                   (long long)size, b[6]);
        return 0;
    }
    if (!read_exact(d, f, b + 10, 2, "header length")) return 0;
    *hlen = (uint32_t)load_le(b + 8, 4);
    return 12;
}

static bool read_header(Arena *a, Diag *d, FILE *f, int64_t size, HeaderParser *hp, int64_t *data_start)
{
    uint32_t hlen = 0;
    int pre = read_preamble(d, f, size, &hlen);
    if (!pre) return false;
    if (hlen > MAX_NPY_HEADER) {
        diag_error(d, (SrcSpan){0}, "the header length is %u bytes; expected at most %d", hlen, MAX_NPY_HEADER);
        return false;
    }
    if ((int64_t)hlen > size - pre) {
        diag_error(d, (SrcSpan){0}, "the header length is %u bytes but only %lld bytes follow it (truncated file?)", hlen,
                   (long long)(size - pre));
        return false;
    }
    char *text = arena_alloc(a, (size_t)hlen + 1);
    if (!read_exact(d, f, text, hlen, "header")) return false;
    *hp = (HeaderParser){.diag = d, .p = text, .start = text, .end = text + hlen};
    *data_start = pre + (int64_t)hlen;
    return parse_header(hp);
}

static const char *descr_name(NpyDescr t) { return t == NPY_F4 ? "'<f4'" : t == NPY_I8 ? "'<i8'" : "'<f8'"; }

/* The data after the header must be exactly numel elements. */
static bool check_data_size(Diag *d, const HeaderParser *hp, int64_t have, int64_t *numel)
{
    char buf[MAX_SHAPE_TEXT];
    const char *shape = shape_format(&hp->shape, NULL, buf, sizeof buf);
    int itemsize = hp->descr == NPY_F4 ? 4 : 8;
    int64_t need;
    *numel = shape_numel(&hp->shape);
    if (*numel < 0 || __builtin_mul_overflow(*numel, itemsize, &need)) {
        diag_error(d, (SrcSpan){0}, "shape %s of %s is too large: its size overflows", shape, descr_name(hp->descr));
        return false;
    }
    if (have == need) return true;
    if (have < need)
        diag_error(d, (SrcSpan){0}, "the file has %lld bytes of data but shape %s of %s needs %lld (truncated file?)",
                   (long long)have, shape, descr_name(hp->descr), (long long)need);
    else
        diag_error(d, (SrcSpan){0}, "the file has %lld bytes of data but shape %s of %s needs only %lld (%lld extra bytes at the end)",
                   (long long)have, shape, descr_name(hp->descr), (long long)need, (long long)(have - need));
    return false;
}

static void *convert_data(Arena *a, NpyDescr descr, unsigned char *raw, int64_t numel)
{
    int size = descr == NPY_F4 ? 4 : 8;
    if (!host_little_endian()) swap_bytes(raw, numel, size);
    if (descr != NPY_F8) return raw;
    float *out = arena_alloc_array(a, (size_t)numel + 1, sizeof *out);
    for (int64_t i = 0; i < numel; i++) {
        double v;
        memcpy(&v, raw + 8 * i, sizeof v);
        out[i] = (float)v;
    }
    return out;
}

static bool read_npy_file(Arena *a, Diag *d, FILE *f, int64_t size, NpyArray *out)
{
    HeaderParser hp;
    int64_t data_start, numel;
    if (!read_header(a, d, f, size, &hp, &data_start)) return false;
    if (!check_data_size(d, &hp, size - data_start, &numel)) return false;
    int itemsize = hp.descr == NPY_F4 ? 4 : 8;
    unsigned char *raw = arena_alloc(a, (size_t)(numel * itemsize) + 1);
    if (!read_exact(d, f, raw, (size_t)(numel * itemsize), "data")) return false;
    out->dtype = hp.descr == NPY_I8 ? DT_I64 : DT_F32;
    out->shape = hp.shape;
    out->numel = numel;
    out->data = convert_data(a, hp.descr, raw, numel);
    return true;
}

bool npy_read(Arena *a, Diag *d, const char *path, NpyArray *out)
{
    memset(out, 0, sizeof *out);
    int64_t size;
    FILE *f = open_input_file(d, path, MAX_NPY_FILE, ".npy", &size);
    if (!f) return false;
    NpyArray arr = {0};
    bool ok = read_npy_file(a, d, f, size, &arr);
    fclose(f);
    if (ok) *out = arr;
    return ok;
}

/* ------------------------------------------------------------------ writing */

/* np.save's header: the dict, spare room for the first axis to grow, spaces
 * up to a multiple of 64 and a newline.  Returns its length (with preamble). */
static size_t format_header(char *buf, size_t size, DType dtype, const Shape *s)
{
    char shape[MAX_SHAPE_TEXT + 8];
    size_t n = (size_t)snprintf(shape, sizeof shape, "(");
    for (int i = 0; i < s->rank; i++)
        n += (size_t)snprintf(shape + n, sizeof shape - n, "%s%lld", i ? ", " : "", (long long)s->dims[i]);
    snprintf(shape + n, sizeof shape - n, s->rank == 1 ? ",)" : ")");
    memcpy(buf, NPY_MAGIC, sizeof NPY_MAGIC);
    buf[6] = 1;
    buf[7] = 0;
    size_t len = 10 + (size_t)snprintf(buf + 10, size - 10, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                                       dtype == DT_I64 ? "<i8" : "<f4", shape);
    if (s->rank > 0) {
        int digits = snprintf(NULL, 0, "%lld", (long long)s->dims[0]);
        for (int i = digits; i < GROWTH_AXIS_MAX_DIGITS; i++) buf[len++] = ' ';
    }
    size_t pad = NPY_ALIGN - (len + 1) % NPY_ALIGN;
    memset(buf + len, ' ', pad);
    len += pad;
    buf[len++] = '\n';
    size_t hlen = len - 10;
    buf[8] = (char)(hlen & 0xff);
    buf[9] = (char)(hlen >> 8);
    return len;
}

static bool write_all(int fd, const void *data, size_t n)
{
    const unsigned char *p = data;
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : n;
        ssize_t w = write(fd, p, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = EIO;
            return false;
        }
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* The data in little-endian order (byte-swapped through a buffer on a big-endian host). */
static bool write_data(int fd, const void *data, int64_t numel, int itemsize)
{
    if (host_little_endian()) return write_all(fd, data, (size_t)(numel * itemsize));
    unsigned char buf[1 << 16];
    const unsigned char *p = data;
    int64_t per = (int64_t)sizeof buf / itemsize;
    for (int64_t i = 0; i < numel; i += per) {
        int64_t count = numel - i < per ? numel - i : per;
        memcpy(buf, p + i * itemsize, (size_t)(count * itemsize));
        swap_bytes(buf, count, itemsize);
        if (!write_all(fd, buf, (size_t)(count * itemsize))) return false;
    }
    return true;
}

static bool check_write_args(DType dtype, const Shape *s, const void *data, int64_t *numel, char *err, size_t errsize)
{
    if (dtype != DT_F32 && dtype != DT_I64) {
        snprintf(err, errsize, "cannot write a .npy file of dtype %d (expected f32 or i64)", (int)dtype);
        return false;
    }
    if (s->rank < 0 || s->rank > MAX_RANK) {
        snprintf(err, errsize, "cannot write a .npy file of rank %d (expected 0 to %d)", s->rank, MAX_RANK);
        return false;
    }
    *numel = shape_numel(s);
    if (*numel < 0 || *numel > INT64_MAX / 8) {
        snprintf(err, errsize, "cannot write a .npy file: its shape has a negative dimension or too many elements");
        return false;
    }
    if (!data && *numel > 0) {
        snprintf(err, errsize, "cannot write a .npy file: no data");
        return false;
    }
    return true;
}

/* Writes header and data to the open temporary file and closes it. */
static bool write_file(int fd, const char *header, size_t hlen, const void *data, int64_t numel, int itemsize)
{
    bool ok = write_all(fd, header, hlen) && write_data(fd, data, numel, itemsize) && fsync(fd) == 0;
    int saved = errno;
    if (close(fd) != 0 && ok) return false;
    errno = saved;
    return ok;
}

bool npy_write(const char *path, DType dtype, const Shape *shape, const void *data, char *err, size_t errsize)
{
    int64_t numel;
    if (!check_write_args(dtype, shape, data, &numel, err, errsize)) return false;
    char header[512];
    size_t hlen = format_header(header, sizeof header, dtype, shape);
    size_t tmp_size = strlen(path) + 32;
    char *tmp = malloc(tmp_size);
    if (!tmp) {
        snprintf(err, errsize, "cannot write '%s': out of memory", path);
        return false;
    }
    snprintf(tmp, tmp_size, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    bool ok = fd >= 0 && write_file(fd, header, hlen, data, numel, dtype == DT_I64 ? 8 : 4) && rename(tmp, path) == 0;
    if (!ok) {
        snprintf(err, errsize, "cannot write '%s': %s", path, strerror(errno));
        if (fd >= 0) unlink(tmp);
    }
    free(tmp);
    return ok;
}
