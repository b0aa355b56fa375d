/* fuzz_models.c - the random-model differential tester (issue 13; in the
 * spirit of Csmith and NNSmith).
 *
 *   fuzz_models [--seed S] [--count N | --seconds T] [--jobs J] [--save DIR] [--graph-percent P]
 *               [--graph-steps K] [-v] [MODEL.nn ...]
 *   fuzz_models --print [--seed S] [--count N] [--graph-percent P] [--graph-steps K]
 *               (writes the generated models, checks nothing)
 *
 * --graph-percent: the share of generated models in the graph form (a forward section; default 33);
 * --graph-steps: a graph model's size, at most (2 to 40, default 5; larger ones take longer).
 *
 * Generates valid random models (model_generator.c), or reads the given
 * files, and checks each one:
 *   1. the front end accepts it, and every layer's inferred shape is the
 *      one the generator computed from PyTorch's formulas ("# -> [...]");
 *   2. it is compiled, in this process, in every configuration the machine
 *      can run: -O0, -O3 (2 threads), -O3 with every eligible convolution
 *      forced to Winograd, and -O3 for each vector extension below the host's
 *      (x86-64-v4 AVX-512, x86-64-v3 AVX2, x86-64 SSE) that the CPU has;
 *   3. each library's output matches the reference interpreter's
 *      (reference.c, in double) within |y - r| <= tol * (1 + |r|) + s,
 *      tol = 1e-4 * max(1, max |r|); s is 16 times the largest change of
 *      the output when every layer's output is perturbed by 4 float32 ulps
 *      (reference_run_perturbed): a model that amplifies rounding (a
 *      BatchNorm over the batch of nearly equal values, say) gets the
 *      tolerance its conditioning needs, as PyTorch's own float32 result
 *      would, and a well-conditioned one keeps 1e-4.
 * Random weights draw BatchNorm and LayerNorm state away from PyTorch's
 * defaults (weights_random.c), so folding is really exercised.
 *
 * Each model is checked in a child process (a crash or a hang in generated
 * code is a finding, not the end of the run).  A failing generated model is
 * minimised (layers removed while it still fails the same way) and, with
 * --save, written to DIR as a regression case; `make test` replays those
 * (tests/models/).  A graph model's forward lines are simplified too: an
 * expression replaced by a name it reads, a call by its first argument, a
 * list (cat's) without one of its items.  The last line is "models: N passed, M failed".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "clock.h"
#include "load_model.h"
#include "lower.h"
#include "model_generator.h"
#include "reference.h"
#include "splitmix.h"

enum { MAX_CONFIGS = 8, CHILD_SECONDS = 120, MAX_MESSAGE = 400, PROGRESS_EVERY = 200 };

typedef struct Config {
    const char *label;
    int opt_level;
    const char *target_cpu; /* NULL: the host */
    WinogradPolicy winograd;
    int threads;
} Config;

typedef enum { PASSED, REJECTED, WRONG_SHAPE, REFUSED, BUILD_FAILED, RUN_FAILED, MISMATCH, CRASHED, TIMED_OUT } Outcome;

static const char *const OUTCOME_NAMES[] = {"passed", "rejected by the front end", "wrong shape", "refused by the back end",
                                            "build failed", "run failed", "output mismatch", "crashed", "timed out"};

/* What a child reports: one record as each configuration starts, and one at the end. */
typedef struct Verdict {
    Outcome outcome;
    int config; /* -1: before any configuration */
    char message[MAX_MESSAGE];
} Verdict;

typedef struct Tester {
    Config configs[MAX_CONFIGS];
    int nconfigs;
    const char *work_dir;
    bool verbose;
    int64_t ops_seen[OP_COUNT];
} Tester;

/* ---- the configurations this machine runs ---- */

static void add_config(Tester *t, const char *label, int opt_level, const char *cpu, WinogradPolicy wino, int threads)
{
    t->configs[t->nconfigs++] = (Config){label, opt_level, cpu, wino, threads};
}

static void choose_configs(Tester *t)
{
    Arena a;
    arena_init(&a);
    Target host;
    int host_width = target_resolve(&a, NULL, NULL, NULL, &host, stderr) ? host.vector.width : 8;
    arena_free(&a);
    add_config(t, "-O0", 0, NULL, WINOGRAD_AUTO, 1);
    add_config(t, "-O3 (2 threads)", 3, NULL, WINOGRAD_AUTO, 2);
    add_config(t, "-O3 --winograd always", 3, NULL, WINOGRAD_ALWAYS, 1);
    __builtin_cpu_init();
    if (host_width > 16 || (host_width != 16 && __builtin_cpu_supports("avx512f")))
        add_config(t, "-O3 --target-cpu x86-64-v4", 3, "x86-64-v4", WINOGRAD_AUTO, 1);
    if (host_width != 8 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        add_config(t, "-O3 --target-cpu x86-64-v3", 3, "x86-64-v3", WINOGRAD_AUTO, 1);
    if (host_width != 4) add_config(t, "-O3 --target-cpu x86-64", 3, "x86-64", WINOGRAD_AUTO, 1);
}

/* ---- checking one model (in the child) ---- */

static void say(Verdict *v, Outcome o, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(Verdict *v, Outcome o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    v->outcome = o;
    vsnprintf(v->message, sizeof v->message, fmt, ap);
    va_end(ap);
}

/* A model through the front end, its diagnostics kept in a memory stream. */
typedef struct Model {
    Frontend fe;
    FILE *out;
    char *log;
    size_t loglen;
} Model;

static bool open_model(Model *m, const char *path)
{
    m->log = NULL;
    m->out = open_memstream(&m->log, &m->loglen);
    return frontend_run(&m->fe, path, m->out);
}

static void close_model(Model *m)
{
    fclose(m->out);
    free(m->log);
    frontend_free(&m->fe);
}

/* The first error line the compiler has printed about the model. */
static const char *first_error(Model *m)
{
    fflush(m->out);
    char *e = m->log ? strstr(m->log, "error:") : NULL;
    if (!e) return m->log && *m->log ? m->log : "(no message)";
    char *nl = strchr(e, '\n');
    if (nl) *nl = '\0';
    return e;
}

/* The "# -> [N, 4, 7, 7]" the generator wrote on node n's line, parsed; false when there is none. */
static bool expected_shape(const Frontend *fe, const Node *n, Shape *s)
{
    int line = n->loc.first_line;
    if (line < 1 || line > fe->src.nlines) return false;
    const char *begin = fe->src.text + fe->src.line_start[line - 1];
    const char *end = memchr(begin, '\n', fe->src.len - fe->src.line_start[line - 1]);
    if (!end) end = fe->src.text + fe->src.len;
    const char *arrow = memmem(begin, (size_t)(end - begin), "# -> [", 6);
    if (!arrow) return false;
    const char *p = arrow + 6;
    *s = (Shape){0};
    while (p < end && *p != ']' && s->rank < MAX_RANK) {
        while (*p == ' ' || *p == ',') p++;
        if (*p >= '0' && *p <= '9') s->dims[s->rank++] = strtoll(p, (char **)&p, 10);
        else if (*p == 'N') s->dims[s->rank++] = -1, p++;
        else return false;
    }
    return true;
}

static bool shapes_agree(Verdict *v, const Frontend *fe)
{
    const Graph *g = fe->graph;
    for (int i = 1; i < g->nodes.len; i++) {
        const Node *n = g->nodes.items[i];
        Shape want;
        if (!expected_shape(fe, n, &want)) continue;
        bool same = want.rank == n->shape.rank;
        for (int d = 0; same && d < want.rank; d++)
            same = want.dims[d] == (d == 0 && n->shape.dynamic_batch ? -1 : n->shape.dims[d]);
        if (!same) {
            char got[MAX_SHAPE_TEXT], wanted[MAX_SHAPE_TEXT];
            want.dynamic_batch = want.rank > 0 && want.dims[0] < 0;
            say(v, WRONG_SHAPE, "line %d: %s: layerc infers %s, PyTorch's formula gives %s", n->loc.first_line,
                n->call_text, shape_format(&n->shape, g->batch_name, got, sizeof got),
                shape_format(&want, "N", wanted, sizeof wanted));
            return false;
        }
    }
    return true;
}

static int64_t run_batch_of(const Frontend *fe)
{
    const char *p = strstr(fe->src.text, "# run-batch: ");
    int64_t b = p ? strtoll(p + 13, NULL, 10) : 0;
    if (fe->graph->input->shape.dynamic_batch) return b > 0 ? b : 2;
    return fe->graph->input->shape.dims[0];
}

static BuildOptions build_options(const Config *c, uint64_t seed)
{
    BuildOptions o = {.seed = seed, .quiet_random_weights = true};
    o.emit.opt_level = c->opt_level;
    o.emit.target_cpu = c->target_cpu;
    o.passes.winograd = c->winograd;
    return o;
}

static bool any_winograd_candidate(const Graph *g)
{
    for (int i = 1; i < g->nodes.len; i++)
        if (((Node *)g->nodes.items[i])->op == OP_CONV2D && conv_winograd_eligible(g->nodes.items[i])) return true;
    return false;
}

typedef struct Reference {
    const void *input; /* floats, or token ids */
    const float *output;
    int64_t batch, api_batch, out_elements;
    double tolerance;   /* relative, scaled by max(1, max |r|) */
    double sensitivity; /* absolute, from the model's conditioning */
} Reference;

/* Each layer's output perturbed by this much (relative), and the margin over the change it makes. */
static const double PERTURBATION = 0x1.0p-22, SENSITIVITY_MARGIN = 16;

/* tolerance from the output's size; sensitivity from a perturbed run (see the top of the file). */
static void set_tolerance(Reference *r, Arena *a, const Graph *g, uint64_t seed)
{
    double largest = 1.0, change = 0.0;
    for (int64_t i = 0; i < r->out_elements; i++)
        if (fabs(r->output[i]) > largest) largest = fabs(r->output[i]);
    r->tolerance = 1e-4 * largest;
    float **perturbed = arena_alloc_array(a, (size_t)g->nodes.len, sizeof *perturbed);
    char err[256];
    const void *inputs[1] = {r->input};
    if (!reference_run_perturbed(a, g, inputs, r->batch, PERTURBATION, seed, NULL, perturbed, err, sizeof err)) return;
    const float *p = perturbed[g->nodes.len - 1];
    for (int64_t i = 0; i < r->out_elements; i++)
        if (isfinite(p[i]) && isfinite(r->output[i]) && fabs(p[i] - r->output[i]) > change) change = fabs(p[i] - r->output[i]);
    r->sensitivity = SENSITIVITY_MARGIN * change;
}

static bool compare(Verdict *v, const Reference *r, const float *out)
{
    int64_t worst = -1, bad = 0;
    double worst_excess = 0;
    for (int64_t i = 0; i < r->out_elements; i++) {
        double want = r->output[i], got = out[i];
        if (got == want || (isnan(want) && isnan(got))) continue; /* -inf: a max-pooling window all in the padding */
        double excess = fabs(got - want) - r->tolerance * (1.0 + fabs(want)) - r->sensitivity;
        if (!(excess <= 0)) { /* NaN too */
            bad++;
            if (worst < 0 || !(excess <= worst_excess)) worst = i, worst_excess = excess;
        }
    }
    if (!bad) return true;
    say(v, MISMATCH, "%lld of %lld elements differ; element %lld is %.9g, the reference interpreter gives %.9g "
        "(allowed: %.2g * (1 + |r|) + %.2g)", (long long)bad, (long long)r->out_elements, (long long)worst, out[worst],
        r->output[worst], r->tolerance, r->sensitivity);
    return false;
}

/* Builds the model in configuration c, runs it and compares with the reference. */
static bool check_config(Verdict *v, const char *path, const Config *c, uint64_t seed, const Reference *ref)
{
    Model m;
    BuildOptions opt = build_options(c, seed);
    LoadedModel lm = {0};
    bool ok = open_model(&m, path) && load_model(&m.fe, &opt, c->threads, &lm);
    if (!ok) say(v, BUILD_FAILED, "%s", first_error(&m));
    if (ok) {
        float *result = calloc((size_t)ref->out_elements, sizeof *result);
        if (lm.m->run(lm.ctx, ref->input, result, ref->api_batch) != 0) {
            say(v, RUN_FAILED, "run() failed: %s", lm.m->error(lm.ctx));
            ok = false;
        } else {
            ok = compare(v, ref, result);
        }
        free(result);
    }
    unload_model(&lm);
    close_model(&m);
    return ok;
}

static void report(int fd, const Verdict *v) { (void)!write(fd, v, sizeof *v); }

/* The input (uniform in [-2, 2) from the seed) and the reference interpreter's output for it. */
static bool make_reference(Verdict *v, Model *m, uint64_t seed, Reference *ref)
{
    const Graph *g = m->fe.graph;
    Arena *a = &m->fe.arena;
    ref->batch = run_batch_of(&m->fe);
    ref->api_batch = g->input->shape.dynamic_batch ? ref->batch : 0;
    Shape in_shape = reference_shape(g->input, ref->batch), out_shape = reference_shape(g->output, ref->batch);
    int64_t in_elements = shape_numel(&in_shape);
    ref->out_elements = shape_numel(&out_shape);
    uint64_t state = seed ^ 0x5eedull;
    void *input;
    if (g->input->dtype == DT_I64) { /* token ids below the table's size */
        int64_t *ids = arena_alloc_array(a, (size_t)in_elements, sizeof *ids);
        splitmix64_ids(ids, in_elements, graph_token_limit(g), &state);
        input = ids;
    } else {
        float *x = arena_alloc_array(a, (size_t)in_elements, sizeof *x);
        for (int64_t i = 0; i < in_elements; i++) x[i] = (float)((double)(splitmix64(&state) >> 11) * 0x1.0p-53 * 4.0 - 2.0);
        input = x;
    }
    ref->input = input;
    float **outputs = arena_alloc_array(a, (size_t)g->nodes.len, sizeof *outputs);
    char err[256];
    if (!reference_run(a, g, input, ref->batch, outputs, err, sizeof err)) {
        say(v, REFUSED, "the reference interpreter cannot run it: %s", err);
        return false;
    }
    ref->output = outputs[g->nodes.len - 1];
    set_tolerance(ref, a, g, seed);
    return true;
}

/* The child's work: front end, shapes, reference, then every configuration in `mask`. */
static void check_in_child(const Tester *t, const char *path, uint64_t seed, unsigned mask, int fd)
{
    Verdict v = {.outcome = PASSED, .config = -1};
    Model m;
    Reference ref = {0};
    BuildOptions opt = build_options(&t->configs[0], seed);
    if (!open_model(&m, path)) {
        say(&v, REJECTED, "%s", first_error(&m));
    } else if (shapes_agree(&v, &m.fe) && (!lower_check_supported(&m.fe.diag, m.fe.graph) || !backend_load_weights(&m.fe, &opt))) {
        say(&v, REFUSED, "%s", first_error(&m));
    } else if (v.outcome == PASSED && make_reference(&v, &m, seed, &ref)) {
        bool winograd = any_winograd_candidate(m.fe.graph);
        for (int c = 0; c < t->nconfigs; c++) {
            if (!(mask & (1u << c)) || (t->configs[c].winograd == WINOGRAD_ALWAYS && !winograd)) continue;
            Verdict started = {.outcome = CRASHED, .config = c};
            report(fd, &started);
            v.config = c;
            if (!check_config(&v, path, &t->configs[c], seed, &ref)) break;
        }
        if (v.outcome == PASSED) v.config = -1;
    }
    close_model(&m);
    report(fd, &v);
}

/* Checks the model in `path` in a child process; a crash or a hang is a verdict too. */
static Verdict check_model(const Tester *t, const char *path, uint64_t seed, unsigned mask)
{
    Verdict v = {.outcome = CRASHED, .config = -1};
    int fds[2];
    if (pipe(fds) != 0) {
        say(&v, CRASHED, "pipe: %s", strerror(errno));
        return v;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        alarm(CHILD_SECONDS);
        check_in_child(t, path, seed, mask, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    Verdict got;
    bool final = false;
    while (read(fds[0], &got, sizeof got) == (ssize_t)sizeof got) {
        final = got.outcome != CRASHED;
        v = got;
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!final || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        Outcome o = sig == SIGALRM ? TIMED_OUT : CRASHED;
        if (sig) say(&v, o, "killed by signal %d (%s)", sig, strsignal(sig));
        else if (!final) say(&v, o, "the check ended without a verdict (exit status %d)", WEXITSTATUS(status));
    }
    return v;
}

/* ---- minimising and saving ---- */

/* Whether the line at `line` is a layer statement (not the model's head, its input, its end or a comment). */
static bool is_layer_line(const char *line)
{
    while (*line == ' ') line++;
    return *line && *line != '#' && *line != '}' && strncmp(line, "model ", 6) && strncmp(line, "input ", 6);
}

static bool write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return false;
    bool ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

/* The text without its line number `skip` (0-based). */
static void drop_line(const char *text, int skip, char *out)
{
    int line = 0;
    for (const char *p = text; *p; line++) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p + 1) : strlen(p);
        if (line != skip) memcpy(out, p, n), out += n;
        p += n;
    }
    *out = '\0';
}

static int line_count(const char *text)
{
    int n = 0;
    for (const char *p = text; *p; p++) n += *p == '\n';
    return n;
}

static const char *nth_line(const char *text, int k)
{
    for (; k > 0 && text; k--) {
        text = strchr(text, '\n');
        if (text) text++;
    }
    return text ? text : "";
}

/* The text with its line number `k` (0-based) replaced by `line` (without its newline). */
static void replace_line(const char *text, int k, const char *line, char *out)
{
    int i = 0;
    for (const char *p = text; *p; i++) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p + 1) : strlen(p);
        if (i == k) out += sprintf(out, "%s\n", line);
        else memcpy(out, p, n), out += n;
        p += n;
    }
    *out = '\0';
}

/* The text without its "  # -> [...]" shape comments. */
static void strip_shapes(const char *text, char *out)
{
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        const char *arrow = memmem(p, n, "  # -> [", 8);
        size_t keep = arrow ? (size_t)(arrow - p) : n;
        memcpy(out, p, keep), out += keep;
        if (nl) *out++ = '\n';
        p += n + (nl ? 1 : 0);
    }
    *out = '\0';
}

static bool is_name_char(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }

enum { MAX_VARIANTS = 24, VARIANT_MAX = 1024 };

/* Simpler versions of a forward line "    name = expr" or "    return expr" (8 spaces or more): expr
 * replaced by one of the names it reads, one call in it by its first argument, a list without one of
 * its items.  Returns their count. */
static int line_variants(const char *line, char variants[][VARIANT_MAX])
{
    const char *nl = strchr(line, '\n');
    int len = nl ? (int)(nl - line) : (int)strlen(line);
    if (len >= VARIANT_MAX - 1 || strncmp(line, "        ", 8)) return 0;
    char text[VARIANT_MAX];
    memcpy(text, line, (size_t)len);
    text[len] = '\0';
    char *hash = strstr(text, "  #");
    if (hash) *hash = '\0', len = (int)(hash - text);
    const char *expr = strstr(text, " = ");
    const char *ret = strstr(text, "return ");
    if (expr && !strchr(expr + 3, '(') && !strchr(expr + 3, ' ')) return 0; /* already an alias */
    if (expr) expr += 3;
    else if (ret) expr = ret + 7;
    else return 0;
    int head = (int)(expr - text), n = 0;
    /* the names it reads (not calls, keywords, numbers or True/False/None) */
    for (int i = head; i < len && n < MAX_VARIANTS; i++) {
        if (!is_name_char(text[i]) || (i > head && is_name_char(text[i - 1]))) continue;
        int j = i;
        while (j < len && is_name_char(text[j])) j++;
        bool call = j < len && text[j] == '(', keyword = j < len && text[j] == '=';
        bool number = text[i] >= '0' && text[i] <= '9', constant = !strncmp(text + i, "True", 4) || !strncmp(text + i, "False", 5) || !strncmp(text + i, "None", 4);
        if (!call && !keyword && !number && !constant && (j - i != len - head)) {
            bool seen = false;
            for (int v = 0; v < n && !seen; v++) seen = !strncmp(variants[v] + head, text + i, (size_t)(j - i)) && variants[v][head + j - i] == '\0';
            if (!seen) snprintf(variants[n++], VARIANT_MAX, "%.*s%.*s", head, text, j - i, text + i);
        }
        i = j - 1;
    }
    /* a call replaced by its first argument */
    for (int i = head; i < len && n < MAX_VARIANTS; i++) {
        if (text[i] != '(' || i == head || !is_name_char(text[i - 1])) continue;
        int start = i;
        while (start > head && is_name_char(text[start - 1])) start--;
        int depth = 0, first_end = -1, close = -1;
        for (int j = i; j < len; j++) {
            if (text[j] == '(' || text[j] == '[') depth++;
            else if (text[j] == ')' || text[j] == ']') {
                if (--depth == 0) {
                    close = j;
                    break;
                }
            } else if (text[j] == ',' && depth == 1 && first_end < 0) first_end = j;
        }
        if (close < 0) continue;
        if (first_end < 0) first_end = close;
        snprintf(variants[n++], VARIANT_MAX, "%.*s%.*s%s", start, text, first_end - i - 1, text + i + 1, text + close + 1);
    }
    /* a list without one of its items: cat([a, b, c]) -> cat([a, c]) */
    for (int i = head; i < len && n < MAX_VARIANTS; i++) {
        if (text[i] != '[') continue;
        int depth = 0, item = i + 1;
        for (int j = i; j < len && n < MAX_VARIANTS; j++) {
            if (text[j] == '(' || text[j] == '[') depth++;
            else if ((text[j] == ')' || text[j] == ']') && --depth == 0) {
                if (item > i + 1) /* the last item, with the comma before it */
                    snprintf(variants[n++], VARIANT_MAX, "%.*s%s", item - 2, text, text + j);
                break;
            } else if (text[j] == ',' && depth == 1) {
                int next = j + 1;
                while (text[next] == ' ') next++;
                snprintf(variants[n++], VARIANT_MAX, "%.*s%s", item, text, text + next);
                item = next;
            }
        }
    }
    return n;
}

/* Removes layers (and, in a forward section, simplifies expressions) while the model still fails with
 * the same outcome in the same configuration.  Shape comments go first, unless the failure is a shape. */
static void minimise(const Tester *t, char *text, uint64_t seed, const Verdict *failure)
{
    char *candidate = malloc(GENERATED_MODEL_MAX);
    char *path = NULL;
    static char variants[MAX_VARIANTS][VARIANT_MAX];
    if (asprintf(&path, "%s/minimise.nn", t->work_dir) < 0) abort();
    unsigned mask = failure->config >= 0 ? 1u << failure->config : ~0u;
#define SAME_FAILURE()                                                                                                 \
    (write_text(path, candidate) && (v = check_model(t, path, seed, mask), v.outcome == failure->outcome && v.config == failure->config))
    Verdict v;
    if (failure->outcome != WRONG_SHAPE) {
        strip_shapes(text, candidate);
        if (SAME_FAILURE()) strcpy(text, candidate);
    }
    for (bool progress = true; progress;) {
        progress = false;
        for (int k = line_count(text) - 1; k >= 0; k--) {
            if (k >= line_count(text) || !is_layer_line(nth_line(text, k))) continue;
            drop_line(text, k, candidate);
            if (SAME_FAILURE()) {
                strcpy(text, candidate);
                progress = true;
                continue;
            }
            int n = line_variants(nth_line(text, k), variants);
            for (int i = 0; i < n; i++) {
                replace_line(text, k, variants[i], candidate);
                if (SAME_FAILURE()) {
                    strcpy(text, candidate);
                    progress = true;
                    break;
                }
            }
        }
    }
#undef SAME_FAILURE
    remove(path);
    free(path);
    free(candidate);
}

static void save_case(const char *dir, uint64_t seed, const char *text, const Tester *t, const Verdict *v)
{
    char *path = NULL;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "fuzz_models: cannot create %s: %s\n", dir, strerror(errno));
        return;
    }
    if (asprintf(&path, "%s/seed_%llu.nn", dir, (unsigned long long)seed) < 0) abort();
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "# Found by fuzz_models (seed %llu), minimised: %s%s%s: %s\n", (unsigned long long)seed,
                OUTCOME_NAMES[v->outcome], v->config >= 0 ? " at " : "", v->config >= 0 ? t->configs[v->config].label : "",
                v->message);
        fprintf(f, "# seed: %llu\n%s", (unsigned long long)seed, text);
        fclose(f);
        printf("  saved %s\n", path);
    }
    free(path);
}

/* ---- the run ---- */

typedef struct Options {
    uint64_t seed;
    long count;
    double seconds;
    int jobs;
    const char *save_dir;
    bool print;
    GeneratorMix mix; /* the share of graph models, and their size */
    char **files;
    int nfiles;
} Options;

typedef struct Totals {
    long models, generated, passed, failed, layers;
    int64_t ops_seen[OP_COUNT];
} Totals;

static void print_failure(const Tester *t, const char *what, const Verdict *v)
{
    printf("FAIL %s: %s%s%s: %s\n", what, OUTCOME_NAMES[v->outcome], v->config >= 0 ? " at " : "",
           v->config >= 0 ? t->configs[v->config].label : "", v->message);
}

/* Counts the layer kinds of a model that the front end accepts (for the coverage line). */
static void count_ops(const char *path, Totals *tot)
{
    Model m;
    if (open_model(&m, path))
        for (int i = 1; i < m.fe.graph->nodes.len; i++) tot->ops_seen[((Node *)m.fe.graph->nodes.items[i])->op]++;
    close_model(&m);
}

static void check_generated(Tester *t, const Options *o, uint64_t seed, Totals *tot)
{
    char text[GENERATED_MODEL_MAX], path[4096];
    tot->layers += generate_model_mix(seed, text, &o->mix);
    snprintf(path, sizeof path, "%s/model_%llu.nn", t->work_dir, (unsigned long long)seed);
    if (!write_text(path, text)) {
        fprintf(stderr, "fuzz_models: cannot write %s\n", path);
        exit(2);
    }
    count_ops(path, tot);
    Verdict v = check_model(t, path, seed, ~0u);
    tot->models++;
    tot->generated++;
    if (v.outcome == PASSED) {
        tot->passed++;
        if (t->verbose) printf("PASS seed %llu\n", (unsigned long long)seed);
    } else {
        tot->failed++;
        char what[64];
        snprintf(what, sizeof what, "seed %llu", (unsigned long long)seed);
        print_failure(t, what, &v);
        minimise(t, text, seed, &v);
        printf("  minimised:\n%s", text);
        if (o->save_dir) save_case(o->save_dir, seed, text, t, &v);
    }
    remove(path);
}

/* A saved case: its "# seed:" line gives the weights' and input's seed. */
static void check_file(Tester *t, const char *path, Totals *tot)
{
    FILE *f = fopen(path, "r");
    char head[8192] = "";
    if (f) {
        size_t n = fread(head, 1, sizeof head - 1, f);
        head[n] = '\0';
        fclose(f);
    }
    const char *s = strstr(head, "# seed: ");
    uint64_t seed = s ? strtoull(s + 8, NULL, 10) : 0;
    count_ops(path, tot);
    Verdict v = check_model(t, path, seed, ~0u);
    tot->models++;
    if (v.outcome == PASSED) tot->passed++, (void)(t->verbose && printf("PASS %s\n", path));
    else tot->failed++, print_failure(t, path, &v);
}

static void run_worker(Tester *t, const Options *o, int job, Totals *tot)
{
    double deadline = monotonic_seconds() + o->seconds;
    for (int i = job; i < o->nfiles; i += o->jobs) check_file(t, o->files[i], tot);
    if (o->nfiles && !o->count && !o->seconds) return;
    for (long i = job;; i += o->jobs) {
        if (o->seconds > 0 ? monotonic_seconds() >= deadline : i >= o->count) break;
        check_generated(t, o, o->seed + (uint64_t)i, tot);
        if (o->seconds > 0 && tot->generated % PROGRESS_EVERY == 0)
            printf("job %d: %ld models, %ld failed, %.0f s left\n", job, tot->generated, tot->failed, deadline - monotonic_seconds());
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: fuzz_models [--seed S] [--count N | --seconds T] [--jobs J] [--save DIR] [--graph-percent P]\n"
                    "                   [--graph-steps K] [-v] [MODEL.nn ...]\n"
                    "       fuzz_models --print [--seed S] [--count N] [--graph-percent P] [--graph-steps K]\n");
    exit(2);
}

static Options parse_options(int argc, char **argv, bool *verbose)
{
    Options o = {.seed = 1, .jobs = 1, .mix = {GENERATED_GRAPH_PERCENT, GENERATED_GRAPH_STEPS}};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-v")) *verbose = true;
        else if (!strcmp(a, "--print")) o.print = true;
        else if (i + 1 >= argc) usage();
        else if (!strcmp(a, "--seed")) o.seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--count")) o.count = strtol(argv[++i], NULL, 10);
        else if (!strcmp(a, "--seconds")) o.seconds = strtod(argv[++i], NULL);
        else if (!strcmp(a, "--jobs")) o.jobs = atoi(argv[++i]);
        else if (!strcmp(a, "--save")) o.save_dir = argv[++i];
        else if (!strcmp(a, "--graph-percent")) o.mix.graph_percent = atoi(argv[++i]);
        else if (!strcmp(a, "--graph-steps")) o.mix.graph_steps = atoi(argv[++i]);
        else usage();
    }
    if (o.jobs < 1 || o.jobs > 64 || o.count < 0 || o.seconds < 0 || o.mix.graph_percent < 0 || o.mix.graph_percent > 100 ||
        o.mix.graph_steps < 2 || o.mix.graph_steps > GENERATED_GRAPH_STEPS_MAX)
        usage();
    o.files = argv + i;
    o.nfiles = argc - i;
    if (!o.nfiles && !o.count && !o.seconds) o.count = 100;
    return o;
}

/* Every lowered layer kind must come up in a run of this size, or the generator lags the table. */
enum { COVERAGE_MIN_MODELS = 200 };

static int report_coverage(const Totals *tot)
{
    int missing = 0;
    printf("layer kinds:");
    for (int op = 0; op < OP_INPUT; op++) {
        if (!op_is_lowered((OpKind)op)) continue;
        printf(" %s %lld", op_name((OpKind)op), (long long)tot->ops_seen[op]);
        missing += tot->ops_seen[op] == 0;
    }
    printf("\n");
    if (tot->generated < COVERAGE_MIN_MODELS || !missing) return 0;
    for (int op = 0; op < OP_INPUT; op++)
        if (op_is_lowered((OpKind)op) && !tot->ops_seen[op])
            printf("FAIL coverage: no generated model has a %s layer\n", op_name((OpKind)op));
    return missing;
}

int main(int argc, char **argv)
{
    Tester t = {0};
    Options o = parse_options(argc, argv, &t.verbose);
    if (o.print) {
        static char text[GENERATED_MODEL_MAX];
        for (long i = 0; i < (o.count ? o.count : 1); i++) {
            generate_model_mix(o.seed + (uint64_t)i, text, &o.mix);
            printf("# seed: %llu\n%s\n", (unsigned long long)(o.seed + (uint64_t)i), text);
        }
        return 0;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    choose_configs(&t);
    char dir[] = "/tmp/fuzz_models.XXXXXX";
    if (!mkdtemp(dir)) {
        fprintf(stderr, "fuzz_models: cannot create a temporary directory: %s\n", strerror(errno));
        return 2;
    }
    t.work_dir = dir;
    printf("fuzz_models: configurations:");
    for (int c = 0; c < t.nconfigs; c++) printf("%s %s", c ? "," : "", t.configs[c].label);
    printf("\n");
    double start = monotonic_seconds();
    Totals sum = {0};
    int pipes[64][2];
    for (int j = 0; j < o.jobs; j++) {
        if (pipe(pipes[j]) != 0) return 2;
        if (fork() == 0) {
            Totals tot = {0};
            run_worker(&t, &o, j, &tot);
            (void)!write(pipes[j][1], &tot, sizeof tot);
            _exit(0);
        }
        close(pipes[j][1]);
    }
    for (int j = 0; j < o.jobs; j++) {
        Totals tot;
        if (read(pipes[j][0], &tot, sizeof tot) != (ssize_t)sizeof tot) {
            printf("FAIL worker %d ended without its totals\n", j);
            sum.failed++;
        } else {
            sum.models += tot.models, sum.generated += tot.generated, sum.layers += tot.layers;
            sum.passed += tot.passed, sum.failed += tot.failed;
            for (int op = 0; op < OP_COUNT; op++) sum.ops_seen[op] += tot.ops_seen[op];
        }
        close(pipes[j][0]);
        wait(NULL);
    }
    rmdir(dir);
    int uncovered = report_coverage(&sum);
    printf("fuzz_models: %ld models (%ld generated, with %ld layers; %d saved cases), %d configurations, %.0f s on %d jobs\n",
           sum.models, sum.generated, sum.layers, o.nfiles, t.nconfigs, monotonic_seconds() - start, o.jobs);
    printf("models: %ld passed, %ld failed\n", sum.passed, sum.failed + uncovered);
    return sum.failed + uncovered ? 1 : 0;
}
