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
    Program *program; /* what the file holds so far */
    Model *model;     /* the model being parsed (the first, once one is complete) */
    int quiet_line;   /* a line with a lexical error: no syntax errors reported on it */
    int bracket_depth; /* of ( and [ on the current line */
    int brace_depth;   /* of { }: 'block' is a keyword only outside every body */
    bool continues;    /* the last token was '(', '[' or ',' inside brackets: a newline continues the line */
} ParseCtx;

/* Parses src; returns what the file holds (its model may be NULL or
 * partial).  Syntax errors are reported through diag. */
Program *parse_source(Arena *a, Diag *d, const Source *src);

#endif
