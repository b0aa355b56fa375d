/* frontend.c - reads a .nn file and runs parse, bind and shape inference. */
#include "frontend.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "bind.h"
#include "infer.h"
#include "parse.h"

/* A model file is a few kilobytes; anything past this is not one. */
enum { MAX_SOURCE_BYTES = 16 << 20 };

static bool read_source(Frontend *fe, const char *path)
{
    fe->src.path = path;
    FILE *f = fopen(path, "rb");
    if (!f) {
        diag_error(&fe->diag, (SrcSpan){0}, "cannot open '%s': %s", path, strerror(errno));
        return false;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        diag_error(&fe->diag, (SrcSpan){0}, "'%s' is not a regular file", path);
        fclose(f);
        return false;
    }
    if (st.st_size > MAX_SOURCE_BYTES) {
        diag_error(&fe->diag, (SrcSpan){0}, "'%s' is %lld bytes; a model file may be at most %d bytes", path,
                   (long long)st.st_size, MAX_SOURCE_BYTES);
        fclose(f);
        return false;
    }
    char *text = arena_alloc(&fe->arena, (size_t)st.st_size + 1);
    size_t len = fread(text, 1, (size_t)st.st_size, f);
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        diag_error(&fe->diag, (SrcSpan){0}, "cannot read '%s'", path);
        return false;
    }
    fe->src.text = text;
    fe->src.len = len;
    source_index_lines(&fe->arena, &fe->src);
    return true;
}

bool frontend_run(Frontend *fe, const char *path, FILE *out)
{
    memset(fe, 0, sizeof *fe);
    arena_init(&fe->arena);
    diag_init(&fe->diag, &fe->arena, &fe->src, out);
    if (!read_source(fe, path)) return false;

    Model *model = parse_source(&fe->arena, &fe->diag, &fe->src);
    if (!model) {
        if (fe->diag.errors == 0) diag_error(&fe->diag, (SrcSpan){1, 1, 1, 1}, "expected 'model NAME { ... }'");
        return false;
    }
    fe->graph = bind_model(&fe->arena, &fe->diag, model);
    if (!fe->graph) return false;
    infer_shapes(&fe->diag, fe->graph);
    return fe->diag.errors == 0;
}

void frontend_free(Frontend *fe) { arena_free(&fe->arena); }
