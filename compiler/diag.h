/* diag.h - source text and user-facing diagnostics.
 *
 * Every error about the user's model goes through diag_report(), which prints
 *   file:line:col: error: message
 *       <source line>
 *       ^~~~~
 * the way gcc and clang do.  Compiler bugs are not diagnostics: they use
 * LAYERC_UNREACHABLE(), which names the compiler's own file and line.
 */
#ifndef LAYERC_DIAG_H
#define LAYERC_DIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "arena.h"
#include "progress.h"

/* A span of source text; lines and columns are 1-based, last_* inclusive.
 * The layout matches bison's YYLTYPE so the parser fills it directly. */
typedef struct SrcSpan {
    int first_line, first_column;
    int last_line, last_column;
} SrcSpan;

typedef struct Source {
    const char *path;      /* as given on the command line */
    const char *text;      /* may contain NUL bytes; not NUL-terminated as a whole */
    size_t len;
    const size_t *line_start; /* byte offset of each line; line_start[i] is line i+1 */
    int nlines;
} Source;

typedef enum { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE } DiagLevel;

typedef struct Diag {
    Arena *arena;
    const Source *src;
    FILE *out;
    int errors, warnings;
    int max_errors;        /* stop reporting (and compiling) after this many */
    bool color;
    Progress *progress;    /* a progress line to erase before printing, or NULL */
} Diag;

/* Index the lines of src->text. */
void source_index_lines(Arena *a, Source *src);

void diag_init(Diag *d, Arena *a, const Source *src, FILE *out);
void diag_report(Diag *d, DiagLevel level, SrcSpan at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Like diag_report(DIAG_ERROR, ...). */
void diag_error(Diag *d, SrcSpan at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_warning(Diag *d, SrcSpan at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_note(Diag *d, SrcSpan at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool diag_too_many(const Diag *d);

/* The candidate closest to `word` by edit distance, or NULL if none is close. */
const char *nearest_word(const char *word, const char *const *candidates, int n);

_Noreturn void layerc_unreachable(const char *file, int line, const char *what);
#define LAYERC_UNREACHABLE(what) layerc_unreachable(__FILE__, __LINE__, what)

#endif
