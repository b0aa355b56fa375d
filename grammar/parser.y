/* parser.y - grammar of the layer language (pure bison parser, reentrant flex).
 *
 *   model NAME {
 *       input x: f32[N, 3, 32, 32]
 *       [name =] Layer(positional, ..., keyword=value, ...)
 *   }
 *
 * The parser only builds the AST (ast.h); binding arguments to layers and
 * every semantic check happen later (bind.c, infer_shapes.c).  Syntax errors
 * are reported with what was expected and what was found, and parsing
 * resumes at the next line, so one run reports several of them.
 */
%define api.pure full
%define parse.error custom
%locations
%define api.location.type {SrcSpan}
%param {yyscan_t scanner}
%parse-param {ParseCtx *ctx}
%expect 0
%initial-action { @$ = (SrcSpan){1, 0, 1, 0}; }

%code requires {
#include "ast.h"
#include "parse.h"
typedef void *yyscan_t;
}

%code {
#include <string.h>

int yylex(YYSTYPE *yylval, SrcSpan *yylloc, yyscan_t scanner);
static void yyerror(SrcSpan *loc, yyscan_t scanner, ParseCtx *ctx, const char *msg);

static Value *new_value(ParseCtx *ctx, ValueKind kind, SrcSpan loc)
{
    Value *v = arena_alloc(ctx->arena, sizeof *v);
    v->kind = kind;
    v->loc = loc;
    return v;
}

static Value *new_tuple(ParseCtx *ctx, PtrVec *items, SrcSpan loc)
{
    Value *v = new_value(ctx, VAL_TUPLE, loc);
    v->items = (Value **)items->items;
    v->nitems = items->len;
    return v;
}

static Arg *new_arg(ParseCtx *ctx, const char *keyword, SrcSpan kwloc, Value *value, SrcSpan loc)
{
    Arg *arg = arena_alloc(ctx->arena, sizeof *arg);
    arg->keyword = keyword;
    arg->keyword_loc = kwloc;
    arg->value = value;
    arg->loc = loc;
    return arg;
}

static Dim *new_dim(ParseCtx *ctx, int64_t value, const char *name, SrcSpan loc)
{
    Dim *d = arena_alloc(ctx->arena, sizeof *d);
    d->value = value;
    d->name = name;
    d->loc = loc;
    return d;
}

static void add_input(ParseCtx *ctx, InputDecl *in)
{
    if (ctx->model) ptrvec_push(ctx->arena, &ctx->model->inputs, in);
}

static void add_layer(ParseCtx *ctx, LayerStmt *st)
{
    if (ctx->model) ptrvec_push(ctx->arena, &ctx->model->layers, st);
}

/* A line that failed to parse still occupies a layer position, and what
 * follows it must not be checked against the wrong input. */
static void add_broken_layer(ParseCtx *ctx, SrcSpan loc)
{
    LayerStmt *st = arena_alloc(ctx->arena, sizeof *st);
    st->layer = "?";
    st->layer_loc = st->loc = st->call_loc = loc;
    st->broken = true;
    add_layer(ctx, st);
}
}

%union {
    int64_t i;
    double f;
    const char *s;
    Value *value;
    Arg *arg;
    LayerStmt *stmt;
    InputDecl *input;
    Dim *dim;
    PtrVec list;
}

%token KW_MODEL "'model'" KW_INPUT "'input'" KW_TRUE "'True'" KW_FALSE "'False'" KW_NONE "'None'"
%token <s> IDENT "name"
%token <i> INT "integer"
%token <f> FLOAT "number"
%token <s> STRING "string"
%token <i> BAD_INT "too large integer"
%token NEWLINE "end of line"
%token INVALID "invalid character"

%type <value> value number
%type <list> values args dims
%type <arg> arg
%type <stmt> layer call
%type <input> input_decl
%type <dim> dim

%%

file:
    blank_lines model blank_lines
  ;

blank_lines:
    %empty
  | blank_lines NEWLINE
  ;

model:
    model_header '{' statements '}'
  ;

model_header:
    KW_MODEL IDENT
        {
            Model *m = arena_alloc(ctx->arena, sizeof *m);
            m->name = $2;
            m->name_loc = @2;
            m->loc = @$;
            ctx->model = m;
        }
  ;

statements:
    %empty
  | statements statement
  ;

statement:
    NEWLINE
  | input_decl NEWLINE { add_input(ctx, $1); }
  | layer NEWLINE      { add_layer(ctx, $1); }
  | error NEWLINE      { add_broken_layer(ctx, @1); yyerrok; }
  ;

/* input x: f32[N, 3, 32, 32] */
input_decl:
    KW_INPUT IDENT ':' IDENT '[' dims ']'
        {
            InputDecl *in = arena_alloc(ctx->arena, sizeof *in);
            in->name = $2;
            in->name_loc = @2;
            in->dtype = $4;
            in->dtype_loc = @4;
            in->dims = (Dim **)$6.items;
            in->ndims = $6.len;
            in->loc = @$;
            $$ = in;
        }
  ;

dims:
    dim            { $$ = (PtrVec){0}; ptrvec_push(ctx->arena, &$$, $1); }
  | dims ',' dim   { $$ = $1; ptrvec_push(ctx->arena, &$$, $3); }
  ;

dim:
    INT      { $$ = new_dim(ctx, $1, NULL, @$); }
  | '-' INT  { $$ = new_dim(ctx, -$2, NULL, @$); }
  | BAD_INT  { $$ = new_dim(ctx, 0, NULL, @$); $$->poisoned = true; }
  | IDENT    { $$ = new_dim(ctx, 0, $1, @$); }
  ;

/* [name =] Layer(args) */
layer:
    call              { $$ = $1; $$->call_loc = @1; }
  | IDENT '=' call    { $$ = $3; $$->name = $1; $$->name_loc = @1; $$->loc = @$; $$->call_loc = @3; }
  ;

call:
    IDENT '(' ')'
        {
            $$ = arena_alloc(ctx->arena, sizeof *$$);
            $$->layer = $1;
            $$->layer_loc = @1;
            $$->loc = @$;
        }
  | IDENT '(' args opt_comma ')'
        {
            $$ = arena_alloc(ctx->arena, sizeof *$$);
            $$->layer = $1;
            $$->layer_loc = @1;
            $$->args = (Arg **)$3.items;
            $$->nargs = $3.len;
            $$->loc = @$;
        }
  ;

opt_comma:
    %empty
  | ','
  ;

args:
    arg            { $$ = (PtrVec){0}; ptrvec_push(ctx->arena, &$$, $1); }
  | args ',' arg   { $$ = $1; ptrvec_push(ctx->arena, &$$, $3); }
  ;

arg:
    value             { $$ = new_arg(ctx, NULL, @1, $1, @$); }
  | IDENT '=' value   { $$ = new_arg(ctx, $1, @1, $3, @$); }
  ;

value:
    number                   { $$ = $1; }
  | STRING                   { $$ = new_value(ctx, VAL_STRING, @$); $$->s = $1; }
  | KW_TRUE                  { $$ = new_value(ctx, VAL_BOOL, @$); $$->i = 1; }
  | KW_FALSE                 { $$ = new_value(ctx, VAL_BOOL, @$); $$->i = 0; }
  | KW_NONE                  { $$ = new_value(ctx, VAL_NONE, @$); }
  | IDENT                    { $$ = new_value(ctx, VAL_NAME, @$); $$->s = $1; }
  | '(' ')'                  { PtrVec none = {0}; $$ = new_tuple(ctx, &none, @$); }
  | '(' values ')'           { $$ = $2.len == 1 ? $2.items[0] : new_tuple(ctx, &$2, @$); }
  | '(' values ',' ')'       { $$ = new_tuple(ctx, &$2, @$); }
  | '[' ']'                  { PtrVec none = {0}; $$ = new_tuple(ctx, &none, @$); }
  | '[' values opt_comma ']' { $$ = new_tuple(ctx, &$2, @$); }
  ;

number:
    INT        { $$ = new_value(ctx, VAL_INT, @$); $$->i = $1; }
  | BAD_INT    { $$ = new_value(ctx, VAL_INT, @$); $$->poisoned = true; }
  | '-' BAD_INT { $$ = new_value(ctx, VAL_INT, @$); $$->poisoned = true; }
  | '-' INT    { $$ = new_value(ctx, VAL_INT, @$); $$->i = -$2; }
  | FLOAT      { $$ = new_value(ctx, VAL_FLOAT, @$); $$->f = $1; }
  | '-' FLOAT  { $$ = new_value(ctx, VAL_FLOAT, @$); $$->f = -$2; }
  ;

values:
    value              { $$ = (PtrVec){0}; ptrvec_push(ctx->arena, &$$, $1); }
  | values ',' value   { $$ = $1; ptrvec_push(ctx->arena, &$$, $3); }
  ;

%%

/* The text of the token at loc, for "found name 'foo'" (NULL when not on one line). */
static const char *token_text(ParseCtx *ctx, const SrcSpan *loc)
{
    const Source *src = ctx->diag->src;
    if (!src || loc->first_line < 1 || loc->first_line > src->nlines || loc->last_line != loc->first_line) return NULL;
    size_t begin = src->line_start[loc->first_line - 1] + (size_t)loc->first_column - 1;
    size_t len = (size_t)(loc->last_column - loc->first_column + 1);
    if (begin + len > src->len || len > 40) return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src->text[begin + i];
        if (c < 0x20 || c >= 0x7f) return len == 1 ? arena_printf(ctx->arena, "byte 0x%02x", c) : NULL;
    }
    return arena_printf(ctx->arena, "'%.*s'", (int)len, src->text + begin);
}

/* Tokens that can start an argument value: listed as one "a value". */
static bool starts_value(yysymbol_kind_t t)
{
    switch (t) {
    case YYSYMBOL_INT: case YYSYMBOL_BAD_INT: case YYSYMBOL_FLOAT: case YYSYMBOL_STRING:
    case YYSYMBOL_KW_TRUE: case YYSYMBOL_KW_FALSE: case YYSYMBOL_KW_NONE: case YYSYMBOL_IDENT:
        return true;
    default: {
        const char *name = yysymbol_name(t);
        return strcmp(name, "'('") == 0 || strcmp(name, "'['") == 0 || strcmp(name, "'-'") == 0;
    }
    }
}

/* "expected A, B or C, found X", with a hint for the common slips. */
static int yyreport_syntax_error(const yypcontext_t *pctx, yyscan_t scanner, ParseCtx *ctx)
{
    (void)scanner;
    enum { MAX_EXPECTED = 24 };
    yysymbol_kind_t expected[MAX_EXPECTED];
    int n = yypcontext_expected_tokens(pctx, expected, MAX_EXPECTED);
    yysymbol_kind_t found = yypcontext_token(pctx);
    const SrcSpan *loc = yypcontext_location(pctx);
    if (loc->first_line == ctx->quiet_line) return 0; /* the lexer already explained this line */

    bool value_expected = false, has_int = false;
    for (int i = 0; i < n; i++) has_int |= expected[i] == YYSYMBOL_INT;
    const char *names[MAX_EXPECTED];
    int count = 0;
    bool wants_rparen = false, wants_newline = false, wants_model = false;
    for (int i = 0; i < n; i++) {
        if (expected[i] == YYSYMBOL_NEWLINE) wants_newline = true;
        if (expected[i] == YYSYMBOL_KW_MODEL) wants_model = true;
        if (strcmp(yysymbol_name(expected[i]), "')'") == 0) wants_rparen = true;
        if (has_int && starts_value(expected[i])) {
            if (!value_expected) names[count++] = "a value";
            value_expected = true;
            continue;
        }
        names[count++] = yysymbol_name(expected[i]);
    }
    char msg[512];
    size_t len = (size_t)snprintf(msg, sizeof msg, "expected ");
    for (int i = 0; i < count && len < sizeof msg; i++) {
        const char *sep = i == 0 ? "" : (i == count - 1 ? " or " : ", ");
        len += (size_t)snprintf(msg + len, sizeof msg - len, "%s%s", sep, names[i]);
    }
    if (count == 0 && len < sizeof msg) len += (size_t)snprintf(msg + len, sizeof msg - len, "something else");
    bool shows_text = found == YYSYMBOL_IDENT || found == YYSYMBOL_INT || found == YYSYMBOL_FLOAT ||
                      found == YYSYMBOL_STRING || found == YYSYMBOL_INVALID;
    const char *text = shows_text ? token_text(ctx, loc) : NULL;
    if (len < sizeof msg)
        snprintf(msg + len, sizeof msg - len, ", found %s%s%s", yysymbol_name(found), text ? " " : "", text ? text : "");

    const char *hint = "";
    if (found == YYSYMBOL_NEWLINE && wants_rparen)
        hint = " (a layer call must close its ')' on the same line)";
    else if (found == YYSYMBOL_YYEOF && ctx->model)
        hint = " (the model's '{' is never closed by a '}')";
    else if (wants_model && found == YYSYMBOL_IDENT)
        hint = " (a file holds one 'model NAME { ... }')";
    else if (wants_newline && found != YYSYMBOL_INVALID && found != YYSYMBOL_YYEOF)
        hint = " (one statement per line)";
    else if (found == YYSYMBOL_INVALID)
        hint = " (this character cannot appear in a .nn file)";
    diag_error(ctx->diag, *loc, "%s%s", msg, hint);
    return 0;
}

static void yyerror(SrcSpan *loc, yyscan_t scanner, ParseCtx *ctx, const char *msg)
{
    (void)scanner;
    /* Only bison's own failures reach here ("memory exhausted" on absurd nesting). */
    diag_error(ctx->diag, *loc, "%s (the input is nested too deeply)", msg);
}
