/* parse.c - runs the reentrant lexer and pure parser over one source buffer. */
#include "parse.h"

#include "parser.h"
#include "lexer.h"

int yyparse(yyscan_t scanner, ParseCtx *ctx);

/* The model's inputs, layers and forward section, sorted out of its statements. */
static void sort_model_body(Arena *a, Model *m)
{
    for (int i = 0; i < m->body.len; i++) {
        Stmt *st = m->body.items[i];
        if (st->kind == ST_INPUT) ptrvec_push(a, &m->inputs, st->input);
        if (st->kind == ST_LAYER) ptrvec_push(a, &m->layers, st->layer);
        if (st->kind == ST_FORWARD && !m->forward) m->forward = st->forward;
    }
}

Program *parse_source(Arena *a, Diag *d, const Source *src)
{
    ParseCtx ctx = {.arena = a, .diag = d, .program = arena_alloc(a, sizeof(Program))};
    yyscan_t scanner;
    if (yylex_init_extra(&ctx, &scanner) != 0) {
        diag_error(d, (SrcSpan){0}, "cannot start the lexer");
        return ctx.program;
    }
    YY_BUFFER_STATE buf = yy_scan_bytes(src->text, (int)src->len, scanner);
    yyparse(scanner, &ctx);
    yy_delete_buffer(buf, scanner);
    yylex_destroy(scanner);
    for (int i = 0; i < ctx.program->models.len; i++) sort_model_body(a, ctx.program->models.items[i]);
    return ctx.program;
}
