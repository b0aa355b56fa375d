/* arena.h - bump allocation for one compilation.
 *
 * Ownership rule of the whole compiler: everything a compilation creates
 * (source text, AST, graph, strings, diagnostics) lives in one Arena and is
 * released by a single arena_free().  Nothing in the compiler calls free()
 * on an individual object.
 */
#ifndef LAYERC_ARENA_H
#define LAYERC_ARENA_H

#include <stdarg.h>
#include <stddef.h>

typedef struct ArenaChunk ArenaChunk;

typedef struct Arena {
    ArenaChunk *head;
} Arena;

void arena_init(Arena *a);
void arena_free(Arena *a);

/* Zero-filled, 16-byte aligned.  Aborts with a message when memory is exhausted. */
void *arena_alloc(Arena *a, size_t size);
void *arena_alloc_array(Arena *a, size_t count, size_t elem_size);
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *arena_vprintf(Arena *a, const char *fmt, va_list ap);

/* A growable array of pointers whose storage lives in the arena. */
typedef struct PtrVec {
    void **items;
    int len, cap;
} PtrVec;

void ptrvec_push(Arena *a, PtrVec *v, void *item);

#endif
