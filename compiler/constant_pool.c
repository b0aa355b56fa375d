/* constant_pool.c - the blob of weight arrays (see constant_pool.h).
 *
 * The range is reserved inaccessible (it costs no memory and counts against
 * no overcommit limit) and made writable a step at a time as the blob
 * grows; anonymous memory asks for transparent huge pages, so the kernel
 * zeroes and maps VGG16's 600 MB in 2 MiB pages instead of 150 000 faults of
 * 4 KiB.  A file's range grows the file (its blocks allocated) first.
 */
#define _GNU_SOURCE /* MAP_NORESERVE, MADV_HUGEPAGE */
#include "constant_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "diag.h" /* LAYERC_UNREACHABLE */

enum { HUGE_PAGE = 2 << 20 }; /* also the step by which the writable part grows */

static _Noreturn void out_of_memory(size_t bytes)
{
    fprintf(stderr, "layerc: fatal: out of memory allocating %zu bytes of weights\n", bytes);
    exit(3);
}

static _Noreturn void out_of_disk(size_t bytes, int error)
{
    fprintf(stderr, "layerc: fatal: cannot keep %zu MiB of weights next to the library: %s\n", bytes >> 20, strerror(error));
    exit(3); /* the file has no name yet: nothing is left behind */
}

static void reserve_range(ConstantPool *pool)
{
    if (pool->file >= 0) { /* a file's pages: no alignment to choose */
        pool->data = mmap(NULL, CONSTANT_POOL_MAX_BYTES, PROT_NONE, MAP_SHARED | MAP_NORESERVE, pool->file,
                          CONSTANT_POOL_FILE_OFFSET);
        if (pool->data == MAP_FAILED) out_of_memory(CONSTANT_POOL_MAX_BYTES);
        return;
    }
    size_t size = CONSTANT_POOL_MAX_BYTES + HUGE_PAGE;
    unsigned char *range = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (range == MAP_FAILED) out_of_memory(CONSTANT_POOL_MAX_BYTES);
    /* Start on a huge-page boundary and give back the rest of the extra page. */
    size_t skip = (HUGE_PAGE - (uintptr_t)range % HUGE_PAGE) % HUGE_PAGE;
    if (skip) munmap(range, skip);
    if (HUGE_PAGE - skip) munmap(range + skip + CONSTANT_POOL_MAX_BYTES, HUGE_PAGE - skip);
    pool->data = range + skip;
    madvise(pool->data, CONSTANT_POOL_MAX_BYTES, MADV_HUGEPAGE); /* a hint: ignoring its failure is fine */
}

/* The file's blocks for [writable, grown) of the blob, allocated now: a page
 * written through the mapping on a full disk would otherwise be a SIGBUS. */
static void grow_file(ConstantPool *pool, size_t grown)
{
    off_t from = CONSTANT_POOL_FILE_OFFSET + (off_t)pool->writable, len = (off_t)(grown - pool->writable);
    int error = posix_fallocate(pool->file, from, len);
    if (error == EOPNOTSUPP || error == EINVAL) error = ftruncate(pool->file, from + len) == 0 ? 0 : errno;
    if (error) out_of_disk(grown, error);
}

static void make_writable(ConstantPool *pool, size_t end)
{
    if (end <= pool->writable) return;
    size_t grown = (end + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    if (grown > CONSTANT_POOL_MAX_BYTES) grown = CONSTANT_POOL_MAX_BYTES;
    if (pool->file >= 0) grow_file(pool, grown);
    if (mprotect(pool->data + pool->writable, grown - pool->writable, PROT_READ | PROT_WRITE) != 0) out_of_memory(end);
    /* A file's pages mapped in one call per step rather than a fault each
     * (Linux 5.14+; elsewhere they fault in as they are written). */
    if (pool->file >= 0) madvise(pool->data + pool->writable, grown - pool->writable, MADV_POPULATE_WRITE);
    pool->writable = grown;
}

/* Scratch for an array past the limit: zeroed, reused by the next one. */
static void *spill(ConstantPool *pool, size_t bytes)
{
    if (bytes > pool->spill_cap) {
        free(pool->spill);
        pool->spill = malloc(bytes);
        if (!pool->spill) out_of_memory(bytes);
        pool->spill_cap = bytes;
    }
    return memset(pool->spill, 0, bytes);
}

void *constant_pool_space(ConstantPool *pool, size_t bytes, size_t *offset)
{
    if (!pool->data) reserve_range(pool);
    size_t at = (pool->len + CONSTANT_ALIGN - 1) / CONSTANT_ALIGN * CONSTANT_ALIGN;
    *offset = at;
    if (bytes > SIZE_MAX / 4 || at > CONSTANT_POOL_MAX_BYTES || bytes > CONSTANT_POOL_MAX_BYTES - at) {
        pool->len = at + (bytes > SIZE_MAX / 4 ? SIZE_MAX / 4 : bytes);
        return spill(pool, bytes);
    }
    make_writable(pool, at + bytes);
    pool->len = at + bytes;
    return pool->data + at; /* never written before: zero */
}

void constant_pool_init(ConstantPool *pool) { *pool = (ConstantPool){.file = -1}; }

void constant_pool_use_file(ConstantPool *pool, int file)
{
    if (pool->data) LAYERC_UNREACHABLE("constant_pool_use_file after the first array");
    pool->file = file;
}

void constant_pool_free(ConstantPool *pool)
{
    if (pool->data) munmap(pool->data, CONSTANT_POOL_MAX_BYTES);
    if (pool->file >= 0) close(pool->file);
    free(pool->spill);
    constant_pool_init(pool);
}
