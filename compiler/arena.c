/* arena.c - the compilation arena: chunks of memory released all at once. */
#include "arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ARENA_ALIGN = 16, ARENA_MIN_CHUNK = 64 * 1024 };

struct ArenaChunk {
    ArenaChunk *next;
    size_t used, size;
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

void arena_init(Arena *a) { a->head = NULL; }

void arena_free(Arena *a)
{
    ArenaChunk *c = a->head;
    while (c) {
        ArenaChunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
}

static _Noreturn void out_of_memory(size_t size)
{
    fprintf(stderr, "layerc: fatal: out of memory allocating %zu bytes\n", size);
    exit(3);
}

void *arena_alloc(Arena *a, size_t size)
{
    if (size > SIZE_MAX / 2) out_of_memory(size);
    size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    ArenaChunk *c = a->head;
    if (!c || c->size - c->used < size) {
        size_t chunk = size > ARENA_MIN_CHUNK ? size : ARENA_MIN_CHUNK;
        /* calloc: every byte handed out is zero with no memset, and a large
         * chunk is fresh zero pages from the system, touched only when used
         * (hundreds of MB of weights are then written once, not twice). */
        c = calloc(1, sizeof *c + chunk);
        if (!c) out_of_memory(size);
        c->size = chunk;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    return p;
}

void *arena_alloc_array(Arena *a, size_t count, size_t elem_size)
{
    if (elem_size && count > SIZE_MAX / 2 / elem_size) out_of_memory(SIZE_MAX);
    return arena_alloc(a, count * elem_size);
}

char *arena_strndup(Arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_strdup(Arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }

char *arena_vprintf(Arena *a, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0) n = 0;
    char *p = arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *arena_printf(Arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = arena_vprintf(a, fmt, ap);
    va_end(ap);
    return p;
}

void ptrvec_push(Arena *a, PtrVec *v, void *item)
{
    if (v->len == v->cap) {
        int cap = v->cap ? v->cap * 2 : 8;
        void **items = arena_alloc_array(a, (size_t)cap, sizeof *items);
        if (v->len) memcpy(items, v->items, (size_t)v->len * sizeof *items);
        v->items = items;
        v->cap = cap;
    }
    v->items[v->len++] = item;
}
