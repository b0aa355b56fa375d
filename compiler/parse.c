/* parse.c - runs the reentrant lexer and pure parser over one source buffer. */
#include "parse.h"

#include "parser.h"
#include "lexer.h"

int yyparse(yyscan_t scanner, ParseCtx *ctx);

Model *parse_source(Arena *a, Diag *d, const Source *src)
{
    ParseCtx ctx = {.arena = a, .diag = d};
    yyscan_t scanner;
    if (yylex_init_extra(&ctx, &scanner) != 0) {
        diag_error(d, (SrcSpan){0}, "cannot start the lexer");
        return NULL;
    }
    YY_BUFFER_STATE buf = yy_scan_bytes(src->text, (int)src->len, scanner);
    yyparse(scanner, &ctx);
    yy_delete_buffer(buf, scanner);
    yylex_destroy(scanner);
    return ctx.model;
}
