/* parser.y - grammar of the layer language (pure bison parser, reentrant flex).
 *
 * A stack of layers, as nn.Sequential:
 *
 *   model NAME {
 *       input x: f32[N, 3, 32, 32]
 *       [name =] Layer(positional, ..., keyword=value, ...)
 *   }
 *
 * or, as an nn.Module with __init__ and forward, submodules and a forward
 * section, with blocks (modules declared once with parameters) around it:
 *
 *   block Name(param, param=default) {
 *       name = Layer(...)              a submodule (Sequential(...) nests them)
 *       name = expression              a constant (param * 4)
 *       if condition { ... } else { ... }
 *       forward(x) { y = name(x)  y = y + x  return relu(y) }
 *   }
 *
 * One statement per line; a line that ends inside brackets after '(' , '['
 * or ',' continues on the next (the lexer drops that newline).  The parser
 * only builds the AST (ast.h); binding and every semantic check happen later
 * (bind.c, bind_forward.c, infer_shapes.c).  Syntax errors are reported with
 * what was expected and what was found, and parsing resumes at the next line,
 * so one run reports several of them.
 */
%define api.pure full
%define parse.error custom
%define parse.lac full
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

static Value *new_operator(ParseCtx *ctx, ExprOp op, Value *a, Value *b, SrcSpan loc)
{
    Value *v = new_value(ctx, b ? VAL_BINARY : VAL_UNARY, loc);
    v->op = op;
    v->nitems = b ? 2 : 1;
    v->items = arena_alloc_array(ctx->arena, 2, sizeof *v->items);
    v->items[0] = a;
    v->items[1] = b;
    v->poisoned = a->poisoned || (b && b->poisoned);
    return v;
}

/* -3 and -1.5 are literals (as before expressions existed); -x is an operator. */
static Value *negate(ParseCtx *ctx, Value *a, SrcSpan loc)
{
    if (a->kind == VAL_INT || a->kind == VAL_FLOAT) {
        a->i = -a->i;
        a->f = -a->f;
        a->loc = loc;
        return a;
    }
    return new_operator(ctx, EX_NEG, a, NULL, loc);
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

static Stmt *new_stmt(ParseCtx *ctx, StmtKind kind, SrcSpan loc)
{
    Stmt *st = arena_alloc(ctx->arena, sizeof *st);
    st->kind = kind;
    st->loc = loc;
    return st;
}

/* A line that failed to parse still occupies a layer position, and what
 * follows it must not be checked against the wrong input. */
static Stmt *broken_stmt(ParseCtx *ctx, SrcSpan loc)
{
    LayerStmt *layer = arena_alloc(ctx->arena, sizeof *layer);
    layer->layer = "?";
    layer->layer_loc = layer->loc = layer->call_loc = loc;
    layer->broken = true;
    Stmt *st = new_stmt(ctx, ST_LAYER, loc);
    st->layer = layer;
    st->broken = true;
    return st;
}

/* name = value: a layer (or submodule) when the value is a call, else an assignment. */
static Stmt *assign_stmt(ParseCtx *ctx, const char *name, SrcSpan name_loc, Value *value, SrcSpan loc)
{
    Stmt *st;
    if (value->kind == VAL_CALL) {
        st = new_stmt(ctx, ST_LAYER, loc);
        st->layer = value->call;
        st->layer->name = name;
        st->layer->name_loc = name_loc;
        st->layer->loc = loc;
    } else {
        st = new_stmt(ctx, ST_ASSIGN, loc);
        st->value = value;
    }
    st->name = name;
    st->name_loc = name_loc;
    return st;
}

static Stmt *expr_stmt(ParseCtx *ctx, Value *value, SrcSpan loc)
{
    if (value->kind != VAL_CALL) {
        Stmt *st = new_stmt(ctx, ST_EXPR, loc);
        st->value = value;
        return st;
    }
    Stmt *st = new_stmt(ctx, ST_LAYER, loc);
    st->layer = value->call;
    return st;
}

static PtrVec list_of(ParseCtx *ctx, void *first)
{
    PtrVec v = {0};
    ptrvec_push(ctx->arena, &v, first);
    return v;
}
}

%union {
    int64_t i;
    double f;
    const char *s;
    Value *value;
    Arg *arg;
    LayerStmt *stmt;
    Stmt *statement;
    InputDecl *input;
    Dim *dim;
    BlockParam *param;
    PtrVec list;
}

%token KW_MODEL "'model'" KW_INPUT "'input'" KW_TRUE "'True'" KW_FALSE "'False'" KW_NONE "'None'"
%token KW_BLOCK "'block'" KW_FORWARD "'forward'" KW_IF "'if'" KW_ELSE "'else'" KW_RETURN "'return'"
%token KW_AND "'and'" KW_OR "'or'" KW_NOT "'not'"
%token EQ "'=='" NE "'!='" LE "'<='" GE "'>='"
%token <s> IDENT "name"
%token <i> INT "integer"
%token <f> FLOAT "number"
%token <s> STRING "string"
%token <i> BAD_INT "too large integer"
%token NEWLINE "end of line"
%token INVALID "invalid character"

%left KW_OR
%left KW_AND
%precedence KW_NOT
%nonassoc EQ NE '<' '>' LE GE
%left '+' '-'
%left '*'
%precedence UMINUS

%type <value> value number
%type <list> values args dims statements forward_params block_params
%type <arg> arg
%type <stmt> call
%type <statement> statement if_stmt else_part
%type <input> input_decl
%type <dim> dim
%type <param> block_param

%%

file:
    blank_lines
  | blank_lines units
  ;

units:
    unit
  | units unit
  ;

unit:
    model blank_lines
  | block_def blank_lines
  ;

blank_lines:
    %empty
  | blank_lines NEWLINE
  ;

model:
    model_header '{' model_items '}'
        {
            Model *m = ctx->model;
            m->loc.last_line = @4.last_line;
            m->loc.last_column = @4.last_column;
            ctx->model = NULL;
        }
  ;

/* The model's statements go straight into it, so that a model whose '}' is missing is still checked. */
model_items:
    %empty
  | model_items NEWLINE
  | model_items statement NEWLINE { if (ctx->model) ptrvec_push(ctx->arena, &ctx->model->body, $2); }
  | model_items error NEWLINE     { if (ctx->model) ptrvec_push(ctx->arena, &ctx->model->body, broken_stmt(ctx, @2)); yyerrok; }
  ;

model_header:
    KW_MODEL IDENT
        {
            Model *m = arena_alloc(ctx->arena, sizeof *m);
            m->name = $2;
            m->name_loc = @2;
            m->loc = @$;
            ctx->model = m;
            ptrvec_push(ctx->arena, &ctx->program->models, m);
            if (!ctx->program->model) ctx->program->model = m;
        }
  ;

/* block Name(a, b=1) { ... } */
block_def:
    KW_BLOCK IDENT '(' block_params ')' '{' statements '}'
        {
            BlockDef *b = arena_alloc(ctx->arena, sizeof *b);
            b->name = $2;
            b->name_loc = @2;
            b->params = arena_alloc_array(ctx->arena, (size_t)($4.len ? $4.len : 1), sizeof *b->params);
            for (int i = 0; i < $4.len; i++) b->params[i] = *(BlockParam *)$4.items[i];
            b->nparams = $4.len;
            b->body = $7;
            b->loc = @$;
            ptrvec_push(ctx->arena, &ctx->program->blocks, b);
        }
  ;

block_params:
    %empty                        { $$ = (PtrVec){0}; }
  | block_param                   { $$ = list_of(ctx, $1); }
  | block_params ',' block_param  { $$ = $1; ptrvec_push(ctx->arena, &$$, $3); }
  ;

block_param:
    IDENT            { $$ = arena_alloc(ctx->arena, sizeof *$$); $$->name = $1; $$->loc = @1; }
  | IDENT '=' value  { $$ = arena_alloc(ctx->arena, sizeof *$$); $$->name = $1; $$->loc = @1; $$->def = $3; }
  ;

statements:
    %empty                 { $$ = (PtrVec){0}; }
  | statements NEWLINE     { $$ = $1; }
  | statements statement NEWLINE { $$ = $1; ptrvec_push(ctx->arena, &$$, $2); }
  | statements error NEWLINE     { $$ = $1; ptrvec_push(ctx->arena, &$$, broken_stmt(ctx, @2)); yyerrok; }
  ;

statement:
    input_decl               { $$ = new_stmt(ctx, ST_INPUT, @$); $$->input = $1; }
  | call                     { Value v = {.kind = VAL_CALL, .loc = @1, .call = $1}; $$ = expr_stmt(ctx, &v, @$); }
  | IDENT '=' value          { $$ = assign_stmt(ctx, $1, @1, $3, @$); }
  | if_stmt                  { $$ = $1; }
  | KW_RETURN values         { $$ = new_stmt(ctx, ST_RETURN, @$); $$->value = $2.len == 1 ? $2.items[0] : new_tuple(ctx, &$2, @2); }
  | KW_FORWARD '(' forward_params ')' '{' statements '}'
        {
            Forward *f = arena_alloc(ctx->arena, sizeof *f);
            f->nparams = $3.len;
            f->params = arena_alloc_array(ctx->arena, (size_t)($3.len ? $3.len : 1), sizeof *f->params);
            f->param_locs = arena_alloc_array(ctx->arena, (size_t)($3.len ? $3.len : 1), sizeof *f->param_locs);
            for (int i = 0; i < $3.len; i++) {
                const Value *p = $3.items[i];
                f->params[i] = p->s;
                f->param_locs[i] = p->loc;
            }
            f->body = $6;
            f->loc = @$;
            $$ = new_stmt(ctx, ST_FORWARD, @$);
            $$->forward = f;
        }
  ;

forward_params:
    %empty                   { $$ = (PtrVec){0}; }
  | IDENT                    { Value *v = new_value(ctx, VAL_NAME, @1); v->s = $1; $$ = list_of(ctx, v); }
  | forward_params ',' IDENT { $$ = $1; Value *v = new_value(ctx, VAL_NAME, @3); v->s = $3; ptrvec_push(ctx->arena, &$$, v); }
  ;

/* if c { ... } [else { ... } | else if ...]: the braces' lines hold the statements. */
if_stmt:
    KW_IF value '{' statements '}' else_part
        {
            $$ = new_stmt(ctx, ST_IF, @$);
            $$->value = $2;
            $$->then_body = $4;
            if ($6) $$->else_body = $6->kind == ST_IF && $6->value ? list_of(ctx, $6) : $6->then_body;
        }
  ;

else_part:
    %empty                          { $$ = NULL; }
  | KW_ELSE '{' statements '}'      { $$ = new_stmt(ctx, ST_IF, @$); $$->then_body = $3; }
  | KW_ELSE if_stmt                 { $$ = $2; }
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

/* Layer(args) */
call:
    IDENT '(' ')'
        {
            $$ = arena_alloc(ctx->arena, sizeof *$$);
            $$->layer = $1;
            $$->layer_loc = @1;
            $$->loc = $$->call_loc = @$;
        }
  | IDENT '(' args opt_comma ')'
        {
            $$ = arena_alloc(ctx->arena, sizeof *$$);
            $$->layer = $1;
            $$->layer_loc = @1;
            $$->args = (Arg **)$3.items;
            $$->nargs = $3.len;
            $$->loc = $$->call_loc = @$;
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
  | call                     { $$ = new_value(ctx, VAL_CALL, @$); $$->call = $1; }
  | '(' ')'                  { PtrVec none = {0}; $$ = new_tuple(ctx, &none, @$); }
  | '(' values ')'           { $$ = $2.len == 1 ? $2.items[0] : new_tuple(ctx, &$2, @$); }
  | '(' values ',' ')'       { $$ = new_tuple(ctx, &$2, @$); }
  | '[' ']'                  { PtrVec none = {0}; $$ = new_tuple(ctx, &none, @$); }
  | '[' values opt_comma ']' { $$ = new_tuple(ctx, &$2, @$); }
  | value '+' value          { $$ = new_operator(ctx, EX_ADD, $1, $3, @$); }
  | value '-' value          { $$ = new_operator(ctx, EX_SUB, $1, $3, @$); }
  | value '*' value          { $$ = new_operator(ctx, EX_MUL, $1, $3, @$); }
  | value EQ value           { $$ = new_operator(ctx, EX_EQ, $1, $3, @$); }
  | value NE value           { $$ = new_operator(ctx, EX_NE, $1, $3, @$); }
  | value '<' value          { $$ = new_operator(ctx, EX_LT, $1, $3, @$); }
  | value LE value           { $$ = new_operator(ctx, EX_LE, $1, $3, @$); }
  | value '>' value          { $$ = new_operator(ctx, EX_GT, $1, $3, @$); }
  | value GE value           { $$ = new_operator(ctx, EX_GE, $1, $3, @$); }
  | value KW_AND value       { $$ = new_operator(ctx, EX_AND, $1, $3, @$); }
  | value KW_OR value        { $$ = new_operator(ctx, EX_OR, $1, $3, @$); }
  | KW_NOT value             { $$ = new_operator(ctx, EX_NOT, $2, NULL, @$); }
  | '-' value %prec UMINUS   { $$ = negate(ctx, $2, @$); }
  ;

number:
    INT        { $$ = new_value(ctx, VAL_INT, @$); $$->i = $1; }
  | BAD_INT    { $$ = new_value(ctx, VAL_INT, @$); $$->poisoned = true; }
  | FLOAT      { $$ = new_value(ctx, VAL_FLOAT, @$); $$->f = $1; }
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
    case YYSYMBOL_KW_TRUE: case YYSYMBOL_KW_FALSE: case YYSYMBOL_KW_NONE: case YYSYMBOL_IDENT: case YYSYMBOL_KW_NOT:
        return true;
    default: {
        const char *name = yysymbol_name(t);
        return strcmp(name, "'('") == 0 || strcmp(name, "'['") == 0 || strcmp(name, "'-'") == 0;
    }
    }
}

/* The binary operators of expressions. */
static bool is_operator(yysymbol_kind_t t)
{
    switch (t) {
    case YYSYMBOL_EQ: case YYSYMBOL_NE: case YYSYMBOL_LE: case YYSYMBOL_GE: case YYSYMBOL_KW_AND: case YYSYMBOL_KW_OR:
        return true;
    default: {
        const char *name = yysymbol_name(t);
        return strcmp(name, "'+'") == 0 || strcmp(name, "'-'") == 0 || strcmp(name, "'*'") == 0 || strcmp(name, "'<'") == 0 ||
               strcmp(name, "'>'") == 0;
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
        if (is_operator(expected[i])) continue; /* possible after any value, but rarely what was meant: not listed */
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
        hint = " (a '(' is never closed)";
    else if (found == YYSYMBOL_YYEOF && ctx->model)
        hint = " (the model's '{' is never closed by a '}')";
    else if (wants_model && found == YYSYMBOL_IDENT)
        hint = " (a file holds one 'model NAME { ... }' and the blocks it uses)";
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
