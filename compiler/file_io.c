/* file_io.c - opening and reading input files with clear errors (see file_io.h). */
#include "file_io.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

FILE *open_input_file(Diag *d, const char *path, int64_t max_bytes, const char *kind, int64_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        diag_error(d, (SrcSpan){0}, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        diag_error(d, (SrcSpan){0}, "'%s' is not a regular file", path);
        fclose(f);
        return NULL;
    }
    if ((int64_t)st.st_size > max_bytes) {
        int64_t gib = (int64_t)1 << 30, mib = (int64_t)1 << 20;
        bool in_gib = max_bytes % gib == 0;
        diag_error(d, (SrcSpan){0}, "the file is %lld bytes; a %s file may be at most %lld %s (%lld bytes)",
                   (long long)st.st_size, kind, (long long)(max_bytes / (in_gib ? gib : mib)), in_gib ? "GiB" : "MiB",
                   (long long)max_bytes);
        fclose(f);
        return NULL;
    }
    *size = (int64_t)st.st_size;
    return f;
}

bool read_exact(Diag *d, FILE *f, void *buf, size_t n, const char *what)
{
    size_t got = n ? fread(buf, 1, n, f) : 0;
    if (got == n) return true;
    diag_error(d, (SrcSpan){0}, "cannot read the %s: expected %zu bytes, read %zu (%s)", what, n, got,
               ferror(f) ? strerror(errno) : "the file ended early; did it change while being read?");
    return false;
}
