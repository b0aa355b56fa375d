/* diag.c - printing diagnostics with the source line and a caret under the span,
 * and the "did you mean" helper used by the binder and the parser. */
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Very long lines are shown as a window around the caret. */
enum { LINE_WINDOW = 120, MAX_ERRORS_DEFAULT = 20 };

void source_index_lines(Arena *a, Source *src)
{
    int n = 1;
    for (size_t i = 0; i < src->len; i++)
        if (src->text[i] == '\n') n++;
    size_t *starts = arena_alloc_array(a, (size_t)n, sizeof *starts);
    int k = 0;
    starts[k++] = 0;
    for (size_t i = 0; i < src->len; i++)
        if (src->text[i] == '\n') starts[k++] = i + 1;
    src->line_start = starts;
    src->nlines = n;
}

void diag_init(Diag *d, Arena *a, const Source *src, FILE *out)
{
    memset(d, 0, sizeof *d);
    d->arena = a;
    d->src = src;
    d->out = out;
    d->max_errors = MAX_ERRORS_DEFAULT;
}

bool diag_too_many(const Diag *d) { return d->errors >= d->max_errors; }

static const char *level_name(DiagLevel level)
{
    switch (level) {
    case DIAG_ERROR: return "error";
    case DIAG_WARNING: return "warning";
    case DIAG_NOTE: return "note";
    }
    return "?";
}

/* A printable byte of the source line: control bytes and non-ASCII become '?'
 * so a garbage input cannot garble the terminal. */
static char shown_char(unsigned char c) { return (c == '\t' || (c >= 0x20 && c < 0x7f)) ? (char)c : '?'; }

static void print_source_line(Diag *d, SrcSpan at)
{
    const Source *src = d->src;
    if (!src || at.first_line < 1 || at.first_line > src->nlines) return;
    size_t start = src->line_start[at.first_line - 1];
    size_t end = start;
    while (end < src->len && src->text[end] != '\n') end++;
    if (end > start && src->text[end - 1] == '\r') end--;
    size_t line_len = end - start;

    size_t caret = at.first_column > 0 ? (size_t)at.first_column - 1 : 0;
    size_t caret_end = caret + 1;
    if (at.last_line == at.first_line && at.last_column >= at.first_column)
        caret_end = (size_t)at.last_column;
    if (caret > line_len) caret = line_len;
    if (caret_end > line_len) caret_end = line_len > caret ? line_len : caret + 1;

    size_t from = 0, to = line_len;
    if (line_len > LINE_WINDOW) {
        from = caret > LINE_WINDOW / 2 ? caret - LINE_WINDOW / 2 : 0;
        to = from + LINE_WINDOW < line_len ? from + LINE_WINDOW : line_len;
        if (caret_end > to) caret_end = to;
    }
    fputs("    ", d->out);
    if (from > 0) fputs("...", d->out);
    for (size_t i = from; i < to; i++) fputc(shown_char((unsigned char)src->text[start + i]), d->out);
    if (to < line_len) fputs("...", d->out);
    fputs("\n    ", d->out);
    if (from > 0) fputs("   ", d->out);
    for (size_t i = from; i < caret; i++) fputc(src->text[start + i] == '\t' ? '\t' : ' ', d->out);
    fputc('^', d->out);
    for (size_t i = caret + 1; i < caret_end; i++) fputc('~', d->out);
    fputc('\n', d->out);
}

static void vreport(Diag *d, DiagLevel level, SrcSpan at, const char *fmt, va_list ap)
{
    progress_clear(d->progress);
    if (level == DIAG_ERROR) {
        if (d->errors >= d->max_errors) return;
        d->errors++;
    } else if (level == DIAG_WARNING) {
        d->warnings++;
    }
    if (level == DIAG_NOTE && d->errors > d->max_errors) return;
    const char *path = d->src ? d->src->path : "layerc";
    if (at.first_line > 0)
        fprintf(d->out, "%s:%d:%d: %s: ", path, at.first_line, at.first_column > 0 ? at.first_column : 1, level_name(level));
    else
        fprintf(d->out, "%s: %s: ", path, level_name(level));
    vfprintf(d->out, fmt, ap);
    fputc('\n', d->out);
    if (at.first_line > 0) print_source_line(d, at);
    if (level == DIAG_ERROR && d->errors == d->max_errors)
        fprintf(d->out, "%s: fatal: too many errors (%d), stopping\n", path, d->max_errors);
}

void diag_report(Diag *d, DiagLevel level, SrcSpan at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(d, level, at, fmt, ap);
    va_end(ap);
}

#define DEFINE_LEVEL_FN(fn, level)                             \
    void fn(Diag *d, SrcSpan at, const char *fmt, ...)         \
    {                                                          \
        va_list ap;                                            \
        va_start(ap, fmt);                                     \
        vreport(d, level, at, fmt, ap);                        \
        va_end(ap);                                            \
    }
DEFINE_LEVEL_FN(diag_error, DIAG_ERROR)
DEFINE_LEVEL_FN(diag_warning, DIAG_WARNING)
DEFINE_LEVEL_FN(diag_note, DIAG_NOTE)

/* Case-insensitive Levenshtein distance of two short words (capped length). */
static int edit_distance(const char *a, const char *b)
{
    enum { MAXW = 64 };
    size_t la = strlen(a), lb = strlen(b);
    if (la >= MAXW || lb >= MAXW) return MAXW;
    int prev[MAXW + 1], cur[MAXW + 1];
    for (size_t j = 0; j <= lb; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            char ca = a[i - 1], cb = b[j - 1];
            if (ca >= 'A' && ca <= 'Z') ca = (char)(ca - 'A' + 'a');
            if (cb >= 'A' && cb <= 'Z') cb = (char)(cb - 'A' + 'a');
            int best = prev[j - 1] + (ca != cb);
            if (prev[j] + 1 < best) best = prev[j] + 1;
            if (cur[j - 1] + 1 < best) best = cur[j - 1] + 1;
            cur[j] = best;
        }
        memcpy(prev, cur, sizeof cur);
    }
    return prev[lb];
}

const char *nearest_word(const char *word, const char *const *candidates, int n)
{
    const char *best = NULL;
    int best_dist = 1 << 30;
    for (int i = 0; i < n; i++) {
        int dist = edit_distance(word, candidates[i]);
        if (dist < best_dist) {
            best_dist = dist;
            best = candidates[i];
        }
    }
    /* Close enough: at most a third of the word's letters differ (and at least one may). */
    int len = (int)strlen(word);
    int limit = len / 3 > 1 ? len / 3 : 1;
    if (best && best_dist <= limit + 1 && best_dist < len) return best;
    return NULL;
}

void layerc_unreachable(const char *file, int line, const char *what)
{
    fprintf(stderr, "layerc: internal compiler error at %s:%d: %s\n", file, line, what);
    abort();
}
