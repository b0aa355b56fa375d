/* constant_pool.c - the blob of weight arrays (see constant_pool.h). */
#include "constant_pool.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void reserve(ConstantPool *pool, size_t need)
{
    if (need <= pool->cap) return;
    size_t cap = pool->cap ? pool->cap : 1 << 16;
    while (cap < need && cap <= SIZE_MAX / 2) cap *= 2;
    unsigned char *grown = cap >= need ? realloc(pool->data, cap) : NULL; /* cap < need: it wrapped */
    if (!grown) {
        fprintf(stderr, "layerc: fatal: out of memory allocating %zu bytes of weights\n", need);
        exit(3); /* as the arena does */
    }
    pool->data = grown;
    pool->cap = cap;
}

void constant_pool_reserve(ConstantPool *pool, size_t bytes)
{
    if (bytes > SIZE_MAX / 2 - pool->len) bytes = SIZE_MAX / 2 - pool->len;
    reserve(pool, pool->len + bytes);
}

size_t constant_pool_add(ConstantPool *pool, const void *data, size_t bytes)
{
    size_t offset = (pool->len + CONSTANT_ALIGN - 1) / CONSTANT_ALIGN * CONSTANT_ALIGN;
    reserve(pool, offset + bytes);
    memset(pool->data + pool->len, 0, offset - pool->len);
    memcpy(pool->data + offset, data, bytes);
    pool->len = offset + bytes;
    return offset;
}

void constant_pool_free(ConstantPool *pool)
{
    free(pool->data);
    *pool = (ConstantPool){0};
}
