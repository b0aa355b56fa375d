/* frontend.c - reads a .nn file and runs parse, bind and shape inference. */
#include "frontend.h"

#include <string.h>

#include "bind.h"
#include "file_io.h"
#include "infer.h"
#include "parse.h"

/* A model file is a few kilobytes; anything past this is not one. */
enum { MAX_SOURCE_BYTES = 16 << 20 };

static bool read_source(Frontend *fe, const char *path)
{
    fe->src.path = path;
    int64_t size;
    FILE *f = open_input_file(&fe->diag, path, MAX_SOURCE_BYTES, "model", &size);
    if (!f) return false;
    char *text = arena_alloc(&fe->arena, (size_t)size + 1);
    bool ok = read_exact(&fe->diag, f, text, (size_t)size, "model");
    fclose(f);
    if (!ok) return false;
    fe->src.text = text;
    fe->src.len = (size_t)size;
    source_index_lines(&fe->arena, &fe->src);
    return true;
}

bool frontend_run(Frontend *fe, const char *path, FILE *out)
{
    memset(fe, 0, sizeof *fe);
    arena_init(&fe->arena);
    diag_init(&fe->diag, &fe->arena, &fe->src, out);
    fe->diag.progress = &fe->progress;
    if (!read_source(fe, path)) return false;

    Program *program = parse_source(&fe->arena, &fe->diag, &fe->src);
    if (!program->model) {
        if (fe->diag.errors == 0) diag_error(&fe->diag, (SrcSpan){1, 1, 1, 1}, "expected 'model NAME { ... }'");
        return false;
    }
    fe->graph = bind_program(&fe->arena, &fe->diag, program);
    if (!fe->graph) return false;
    infer_shapes(&fe->diag, fe->graph);
    graph_remove_dead_nodes(fe->graph); /* values no output depends on (already warned about) */
    return fe->diag.errors == 0;
}

void frontend_free(Frontend *fe)
{
    progress_end(&fe->progress);
    arena_free(&fe->arena);
}
