/* constant_pool.c - the blob of weight arrays (see constant_pool.h).
 *
 * The range is reserved inaccessible (it costs no memory and counts against
 * no overcommit limit) and made writable a step at a time as the blob
 * grows; it asks for transparent huge pages, so the kernel zeroes and maps
 * VGG16's 600 MB in 2 MiB pages instead of 150 000 faults of 4 KiB.
 */
#define _GNU_SOURCE /* MAP_NORESERVE, MADV_HUGEPAGE */
#include "constant_pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

enum { HUGE_PAGE = 2 << 20 }; /* also the step by which the writable part grows */

static _Noreturn void out_of_memory(size_t bytes)
{
    fprintf(stderr, "layerc: fatal: out of memory allocating %zu bytes of weights\n", bytes);
    exit(3);
}

static void reserve_range(ConstantPool *pool)
{
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

static void make_writable(ConstantPool *pool, size_t end)
{
    if (end <= pool->writable) return;
    size_t grown = (end + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    if (grown > CONSTANT_POOL_MAX_BYTES) grown = CONSTANT_POOL_MAX_BYTES;
    if (mprotect(pool->data + pool->writable, grown - pool->writable, PROT_READ | PROT_WRITE) != 0) out_of_memory(end);
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

void constant_pool_free(ConstantPool *pool)
{
    if (pool->data) munmap(pool->data, CONSTANT_POOL_MAX_BYTES);
    free(pool->spill);
    *pool = (ConstantPool){0};
}
