/* fuzz_common.h - what the libFuzzer targets share: the compiler's readers take
 * a path, so each input is written to an in-memory file (memfd) whose path is
 * /proc/self/fd/N; diagnostics go to /dev/null, opened once. */
#ifndef LAYERC_FUZZ_COMMON_H
#define LAYERC_FUZZ_COMMON_H

#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct FuzzFile {
    int fd;
    char path[64];
} FuzzFile;

static void fuzz_die(const char *what)
{
    perror(what);
    abort();
}

static void fuzz_file_open(FuzzFile *f, const char *name)
{
    f->fd = memfd_create(name, MFD_CLOEXEC);
    if (f->fd < 0) fuzz_die("memfd_create");
    snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
}

/* Replaces the file's contents with data[0..size). */
static void fuzz_file_write(FuzzFile *f, const uint8_t *data, size_t size)
{
    if (ftruncate(f->fd, 0) != 0) fuzz_die("ftruncate");
    size_t done = 0;
    while (done < size) {
        ssize_t w = pwrite(f->fd, data + done, size - done, (off_t)done);
        if (w <= 0) fuzz_die("pwrite");
        done += (size_t)w;
    }
}

/* Where diagnostics go: /dev/null, or stderr when FUZZ_VERBOSE is set (to see why an input is refused). */
static FILE *fuzz_devnull(void)
{
    static FILE *null;
    if (!null && getenv("FUZZ_VERBOSE")) null = stderr;
    if (!null && !(null = fopen("/dev/null", "w"))) fuzz_die("/dev/null");
    return null;
}

#endif
