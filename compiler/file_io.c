/* file_io.c - opening and reading input files with clear errors, and
 * replacing output files atomically (see file_io.h). */
#define _GNU_SOURCE /* renameat2, RENAME_EXCHANGE */
#include "file_io.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

int replace_file(const char *tmp, const char *path)
{
    /* Exchanging the two names is as atomic as rename, and ext4 does not then
     * start writing the new file to disk before it returns, as it does on a
     * rename over an existing file (auto_da_alloc: 0.25-0.4 s for VGG16). */
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_EXCHANGE) == 0) {
        remove(tmp); /* now the old file */
        return 0;
    }
    return rename(tmp, path) == 0 ? 0 : errno; /* no file at path yet, or no exchange on this file system */
}

bool write_file_atomically(Diag *d, const char *path, const char *text, size_t len)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        diag_error(d, (SrcSpan){0}, "cannot write %s: %s", path, strerror(errno));
        return false;
    }
    bool ok = fwrite(text, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    if (ok && replace_file(tmp, path) == 0) return true;
    diag_error(d, (SrcSpan){0}, "cannot write %s: %s", path, strerror(errno));
    remove(tmp);
    return false;
}
