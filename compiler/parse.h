/* parse.h - the parsing stage: source text -> AST (grammar/lexer.l, grammar/parser.y). */
#ifndef LAYERC_PARSE_H
#define LAYERC_PARSE_H

#include "arena.h"
#include "ast.h"
#include "diag.h"

/* State shared by the reentrant lexer and the pure parser of one file. */
typedef struct ParseCtx {
    Arena *arena;
    Diag *diag;
    Model *model;
    int quiet_line; /* a line with a lexical error: no syntax errors reported on it */
} ParseCtx;

/* Parses src; returns the model (possibly partial) or NULL when nothing
 * usable was found.  Syntax errors are reported through diag. */
Model *parse_source(Arena *a, Diag *d, const Source *src);

#endif
