/* harness.c - `layerc test` and `layerc run` (see harness.h).
 *
 * test: the model is built into a directory with its inputs and the
 * reference interpreter's output of every layer as raw little-endian float
 * files; a generated C program (harness.c in that directory) loads the
 * library with dlopen + layerc_model(), runs it with an observer on every
 * layer, and prints the max errors, the first diverging layer and a verdict.
 * The pass rule is numpy's allclose: |out - want| <= atol + rtol * |want|.
 */
#include "harness.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layerc.h"
#include "load_model.h"
#include "file_io.h"
#include "lower.h"
#include "npy.h"
#include "passes.h"
#include "reference.h"
#include "splitmix.h"
#include "target.h"

static double uniform01(uint64_t *state) { return ((double)(splitmix64(state) >> 11) + 0.5) / 9007199254740992.0; }

/* splitmix64 -> N(0, 1) by Box-Muller: deterministic test inputs. */
static void random_input(float *x, int64_t n, uint64_t seed)
{
    uint64_t state = seed ^ 0x6c61796572637465ull;
    for (int64_t i = 0; i < n; i++) {
        double r = sqrt(-2.0 * log(uniform01(&state))), t = 2.0 * M_PI * uniform01(&state);
        x[i] = (float)(r * cos(t));
    }
}

/* Token ids uniform in [0, limit): deterministic test inputs of an i64 model. */
static void random_ids(int64_t *ids, int64_t n, int64_t limit, uint64_t seed)
{
    uint64_t state = seed ^ 0x746f6b656e696473ull;
    splitmix64_ids(ids, n, limit, &state);
}

typedef struct RunData {
    int64_t batch;     /* the reference's batch: the run-time batch, or the fixed first dimension */
    int64_t api_batch; /* what run() takes: the batch, or 0 for a fixed one */
    int ninputs, noutputs;
    Shape in_shapes[MAX_MODEL_IO], out_shapes[MAX_MODEL_IO];
    void *inputs[MAX_MODEL_IO]; /* floats, or token ids for an i64 input */
} RunData;

static const char *dtype_name(DType t) { return t == DT_I64 ? "i64" : "f32"; }
static size_t dtype_bytes(DType t) { return t == DT_I64 ? 8 : 4; }

/* "x, y": the names of the model's inputs. */
static const char *input_names(Frontend *fe)
{
    const char *names = "";
    for (int k = 0; k < fe->graph->inputs.len; k++)
        names = arena_printf(&fe->arena, "%s%s%s", names, k ? ", " : "", ((const Node *)fe->graph->inputs.items[k])->name);
    return names;
}

/* Input k from X.npy (dtype and shape checked; *batch is its first dimension). */
static bool read_input(Frontend *fe, const Node *in, const char *npy, int64_t *batch, void **data)
{
    const Graph *g = fe->graph;
    const Shape *decl = &in->shape;
    Source nsrc = {.path = npy};
    Diag nd;
    diag_init(&nd, &fe->arena, &nsrc, fe->diag.out);
    NpyArray arr;
    bool ok = npy_read(&fe->arena, &nd, npy, &arr);
    fe->diag.errors += nd.errors;
    if (!ok) return false;
    bool match = arr.dtype == in->dtype && arr.shape.rank == decl->rank;
    for (int i = decl->dynamic_batch ? 1 : 0; match && i < decl->rank; i++) match = arr.shape.dims[i] == decl->dims[i];
    if (!match) {
        char want[MAX_SHAPE_TEXT], got[MAX_SHAPE_TEXT];
        diag_error(&fe->diag, (SrcSpan){0}, "%s holds %s %s but the model's input %s is %s %s", npy, dtype_name(arr.dtype),
                   shape_format(&arr.shape, NULL, got, sizeof got), in->name, dtype_name(in->dtype),
                   shape_format(decl, g->batch_name, want, sizeof want));
        return false;
    }
    *batch = arr.shape.rank ? arr.shape.dims[0] : 1;
    *data = arr.data;
    return true;
}

/* The model's inputs: from one .npy each (shapes checked) or random.  batch_opt 0: default. */
static bool prepare_inputs(Frontend *fe, const char *const *npys, int nnpys, int64_t batch_opt, uint64_t seed, RunData *rd)
{
    const Graph *g = fe->graph;
    const Shape *decl = &g->input->shape;
    rd->ninputs = g->inputs.len;
    rd->noutputs = g->outputs.len;
    if (nnpys > 0 && nnpys != rd->ninputs) {
        diag_error(&fe->diag, (SrcSpan){0}, "model %s has %d inputs (%s): give --input once for each, in that order, found %d",
                   g->model_name, rd->ninputs, input_names(fe), nnpys);
        return false;
    }
    rd->batch = decl->dynamic_batch ? (batch_opt > 0 ? batch_opt : 2) : decl->dims[0];
    for (int k = 0; k < nnpys; k++) {
        int64_t batch;
        if (!read_input(fe, g->inputs.items[k], npys[k], &batch, &rd->inputs[k])) return false;
        if (k > 0 && batch != rd->batch) {
            diag_error(&fe->diag, (SrcSpan){0}, "%s has a batch of %lld but %s has %lld: the inputs share one batch", npys[k],
                       (long long)batch, npys[0], (long long)rd->batch);
            return false;
        }
        rd->batch = batch;
    }
    if (!decl->dynamic_batch && batch_opt > 0 && batch_opt != decl->dims[0]) {
        diag_error(&fe->diag, (SrcSpan){0}, "--batch %lld: model %s has a fixed batch of %lld", (long long)batch_opt,
                   g->model_name, (long long)decl->dims[0]);
        return false;
    }
    rd->api_batch = decl->dynamic_batch ? rd->batch : 0;
    for (int k = 0; k < rd->noutputs; k++) rd->out_shapes[k] = reference_shape(g->outputs.items[k], rd->batch);
    for (int k = 0; k < rd->ninputs; k++) {
        const Node *in = g->inputs.items[k];
        rd->in_shapes[k] = reference_shape(in, rd->batch);
        if (rd->inputs[k]) continue;
        int64_t n = shape_numel(&rd->in_shapes[k]);
        rd->inputs[k] = arena_alloc_array(&fe->arena, (size_t)(n ? n : 1), dtype_bytes(in->dtype));
        uint64_t input_seed = seed + (uint64_t)k; /* input 0 keeps the seed a one-input model always had */
        if (in->dtype == DT_I64) random_ids(rd->inputs[k], n, graph_input_token_limit(g, in), input_seed);
        else random_input(rd->inputs[k], n, input_seed);
    }
    return true;
}

static bool write_raw(Diag *d, const char *path, const void *data, int64_t count, DType dtype)
{
    return write_file_atomically(d, path, (const char *)data, (size_t)count * dtype_bytes(dtype));
}

/* The generated harness: constants for this model, then the checking program. */
static const char HARNESS_TEMPLATE[] =
    "/* harness.c - generated by layerc test for model %s: runs %s on input_K.bin\n"
    " * through layerc_model() and checks every layer against the reference\n"
    " * interpreter (ref_K.bin) and every output against expect_K.bin when present. */\n"
    "#include <dlfcn.h>\n#include <math.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n"
    "#include \"layerc.h\"\n\n"
    "static const char *const LIBRARY = \"%s\";\n"
    "static const long long BATCH = %lld; /* passed to run_multi() */\n"
    "enum { NUM_IN = %d, NUM_OUT = %d };\n"
    "static const long long IN_BYTES[NUM_IN] = {%s}, OUT_COUNT[NUM_OUT] = {%s};\n"
    "static const double ATOL = %.9g, RTOL = %.9g;\n"
    "static const int THREADS = %d, HAS_EXPECT = %d;\n"
    "/* ref_K.bin of each compiled layer: a fused group is checked at its last layer's output */\n"
    "static const int REF_FILE[] = {%s};\n";

static const char HARNESS_BODY[] =
    "\n"
    "typedef struct Check { double max_abs, max_rel; long long worst, bad; } Check;\n"
    "\n"
    "static void *read_bytes(const char *path, long long bytes)\n"
    "{\n"
    "    FILE *f = fopen(path, \"rb\");\n"
    "    char *p = malloc((size_t)(bytes > 0 ? bytes : 1));\n"
    "    if (!f || !p || fread(p, 1, (size_t)bytes, f) != (size_t)bytes) {\n"
    "        fprintf(stderr, \"harness: cannot read %s\\n\", path);\n"
    "        exit(2);\n"
    "    }\n"
    "    fclose(f);\n"
    "    return p;\n"
    "}\n"
    "\n"
    "static float *read_floats(const char *path, long long count) { return read_bytes(path, count * (long long)sizeof(float)); }\n"
    "\n"
    "/* numpy allclose, elementwise; NaN only matches NaN, an infinity only itself\n"
    " * (a max-pooling window wholly in the padding gives -inf, as in PyTorch). */\n"
    "static Check compare(const float *got, const float *want, long long n)\n"
    "{\n"
    "    Check c = {0, 0, -1, 0};\n"
    "    double worst_excess = -1;\n"
    "    for (long long i = 0; i < n; i++) {\n"
    "        double g = got[i], w = want[i], err = fabs(g - w);\n"
    "        int same = g == w || (isnan(g) && isnan(w));\n"
    "        int ok = same || err <= ATOL + RTOL * fabs(w);\n"
    "        if (isnan(err)) err = INFINITY;\n"
    "        if (same) err = 0;\n"
    "        double rel = err / (fabs(w) > 0 ? fabs(w) : 1e-30);\n"
    "        if (err > c.max_abs) c.max_abs = err;\n"
    "        if (w != 0 && rel > c.max_rel) c.max_rel = rel;\n"
    "        double excess = err - (ATOL + RTOL * fabs(w));\n"
    "        if (!ok) c.bad++;\n"
    "        if (excess > worst_excess || c.worst < 0) { worst_excess = excess; c.worst = i; }\n"
    "    }\n"
    "    return c;\n"
    "}\n"
    "\n"
    "typedef struct Observer { int first_bad; float got, want; long long at; double max_abs; } Observer;\n"
    "\n"
    "static void observe(void *user, int32_t layer, const float *data, const layerc_tensor_info *t, int64_t batch)\n"
    "{\n"
    "    Observer *o = user;\n"
    "    if (o->first_bad >= 0) return;\n"
    "    long long n = 1;\n"
    "    for (int i = 0; i < t->rank; i++) n *= (i == 0 && t->batch_dim == 0) ? batch : t->dims[i];\n"
    "    char path[64];\n"
    "    snprintf(path, sizeof path, \"ref_%d.bin\", REF_FILE[layer]);\n"
    "    float *want = read_floats(path, n);\n"
    "    Check c = compare(data, want, n);\n"
    "    if (c.bad > 0) {\n"
    "        o->first_bad = layer;\n"
    "        o->at = c.worst;\n"
    "        o->got = data[c.worst];\n"
    "        o->want = want[c.worst];\n"
    "        o->max_abs = c.max_abs;\n"
    "    }\n"
    "    free(want);\n"
    "}\n"
    "\n"
    "/* One line per output and oracle; a model of several outputs names each. */\n"
    "static void report(const layerc_model_desc *m, int k, const char *against, Check c)\n"
    "{\n"
    "    if (NUM_OUT > 1) printf(\"output %d (%s): \", k, m->output_names[k]);\n"
    "    printf(\"%-10s max abs error %.3g, max rel error %.3g, %lld of %lld elements outside atol %g + rtol %g\\n\",\n"
    "           against, c.max_abs, c.max_rel, c.bad, OUT_COUNT[k], ATOL, RTOL);\n"
    "}\n"
    "\n"
    "/* Output k against the file <stem>_k.bin: whether it passes. */\n"
    "static int check_output(const layerc_model_desc *m, int k, const float *out, const char *stem, const char *against)\n"
    "{\n"
    "    char path[64];\n"
    "    snprintf(path, sizeof path, \"%s_%d.bin\", stem, k);\n"
    "    float *want = read_floats(path, OUT_COUNT[k]);\n"
    "    Check c = compare(out, want, OUT_COUNT[k]);\n"
    "    report(m, k, against, c);\n"
    "    if (c.bad && strcmp(stem, \"expect\") == 0)\n"
    "        printf(\"  worst element %lld: got %.9g, expected %.9g\\n\", c.worst, out[c.worst], want[c.worst]);\n"
    "    free(want);\n"
    "    return c.bad == 0;\n"
    "}\n"
    "\n"
    "int main(void)\n"
    "{\n"
    "    void *lib = dlopen(LIBRARY, RTLD_NOW | RTLD_LOCAL);\n"
    "    if (!lib) { fprintf(stderr, \"harness: %s\\n\", dlerror()); return 2; }\n"
    "    const layerc_model_desc *(*entry)(void) = (const layerc_model_desc *(*)(void))dlsym(lib, \"layerc_model\");\n"
    "    if (!entry) { fprintf(stderr, \"harness: no layerc_model in %s\\n\", LIBRARY); return 2; }\n"
    "    const layerc_model_desc *m = entry();\n"
    "    if (m->abi_version != LAYERC_ABI_VERSION) { fprintf(stderr, \"harness: ABI %u, expected %d\\n\", m->abi_version, LAYERC_ABI_VERSION); return 2; }\n"
    "    layerc_ctx *ctx = m->create();\n"
    "    if (!ctx) { fprintf(stderr, \"harness: %s\\n\", m->cpu_unsupported() ? m->cpu_unsupported() : \"create failed: out of memory\"); return 2; }\n"
    "    if (m->set_threads(ctx, THREADS) != 0) { fprintf(stderr, \"harness: %s\\n\", m->error(ctx)); return 2; }\n"
    "    const void *in[NUM_IN];\n"
    "    void *out[NUM_OUT];\n"
    "    for (int k = 0; k < NUM_IN; k++) {\n"
    "        char path[64];\n"
    "        snprintf(path, sizeof path, \"input_%d.bin\", k);\n"
    "        in[k] = read_bytes(path, IN_BYTES[k]);\n"
    "    }\n"
    "    for (int k = 0; k < NUM_OUT; k++) out[k] = malloc((size_t)(OUT_COUNT[k] > 0 ? OUT_COUNT[k] : 1) * sizeof(float));\n"
    "    Observer o = {-1, 0, 0, 0, 0};\n"
    "    if (m->run_multi(ctx, in, out, BATCH, observe, &o) != 0) { fprintf(stderr, \"harness: %s\\n\", m->error(ctx)); return 2; }\n"
    "    int pass = 1;\n"
    "    for (int k = 0; k < NUM_OUT; k++) pass &= check_output(m, k, out[k], \"reference\", \"reference\");\n"
    "    for (int k = 0; HAS_EXPECT && k < NUM_OUT; k++) pass &= check_output(m, k, out[k], \"expect\", \"expected\");\n"
    "    if (o.first_bad >= 0)\n"
    "        printf(\"first diverging layer: %s (layer %d of %d): element %lld is %.9g, the reference interpreter gives %.9g\\n\",\n"
    "               m->layer_names[o.first_bad], o.first_bad + 1, m->num_layers, o.at, o.got, o.want);\n"
    "    printf(\"%s\\n\", pass ? \"PASS\" : \"FAIL\");\n"
    "    m->destroy(ctx);\n"
    "    for (int k = 0; k < NUM_IN; k++) free((void *)in[k]);\n"
    "    for (int k = 0; k < NUM_OUT; k++) free(out[k]);\n"
    "    dlclose(lib);\n"
    "    return pass ? 0 : 1;\n"
    "}\n";

/* "a, b, c" of count numbers. */
static const char *number_list(Arena *a, const long long *v, int count)
{
    const char *text = "";
    for (int k = 0; k < count; k++) text = arena_printf(a, "%s%s%lld", text, k ? ", " : "", v[k]);
    return text;
}

static bool write_harness(Frontend *fe, const char *dir, const char *so_path, const RunData *rd, const TestOptions *opt)
{
    const Graph *g = fe->graph;
    long long *refs = arena_alloc_array(&fe->arena, (size_t)g->nodes.len + 1, sizeof *refs);
    long long in_bytes[MAX_MODEL_IO], out_counts[MAX_MODEL_IO];
    int nrefs = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = g->nodes.items[i];
        if (n->op != OP_INPUT) refs[nrefs++] = n->source_id;
    }
    if (nrefs == 0) refs[nrefs++] = 0;
    for (int k = 0; k < rd->ninputs; k++)
        in_bytes[k] = (long long)(shape_numel(&rd->in_shapes[k]) * (int64_t)dtype_bytes(((const Node *)g->inputs.items[k])->dtype));
    for (int k = 0; k < rd->noutputs; k++) out_counts[k] = (long long)shape_numel(&rd->out_shapes[k]);
    char *text = arena_printf(&fe->arena, HARNESS_TEMPLATE, g->model_name, so_path, so_path, (long long)rd->api_batch,
                              rd->ninputs, rd->noutputs, number_list(&fe->arena, in_bytes, rd->ninputs),
                              number_list(&fe->arena, out_counts, rd->noutputs), opt->atol, opt->rtol, opt->threads,
                              opt->nexpect_npy > 0, number_list(&fe->arena, refs, nrefs));
    text = arena_printf(&fe->arena, "%s%s", text, HARNESS_BODY); /* the body is plain C, not a format */
    return write_file_atomically(&fe->diag, arena_printf(&fe->arena, "%s/harness.c", dir), text, strlen(text));
}

/* A directory for the build and the harness: --keep DIR, or a temporary one. */
static const char *work_dir(Frontend *fe, const char *keep)
{
    if (keep) {
        if (mkdir(keep, 0777) != 0 && errno != EEXIST) {
            diag_error(&fe->diag, (SrcSpan){0}, "cannot create %s: %s", keep, strerror(errno));
            return NULL;
        }
        return keep;
    }
    char *dir = arena_strdup(&fe->arena, "/tmp/layerc-test.XXXXXX");
    if (!mkdtemp(dir)) {
        diag_error(&fe->diag, (SrcSpan){0}, "cannot create a temporary directory: %s", strerror(errno));
        return NULL;
    }
    return dir;
}

static void remove_work_dir(Frontend *fe, const char *dir, int nodes)
{
    static const char *const files[] = {"libmodel.so", "harness.c", "harness"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) remove(arena_printf(&fe->arena, "%s/%s", dir, files[i]));
    for (int k = 0; k < MAX_MODEL_IO; k++) {
        remove(arena_printf(&fe->arena, "%s/input_%d.bin", dir, k));
        remove(arena_printf(&fe->arena, "%s/reference_%d.bin", dir, k));
        remove(arena_printf(&fe->arena, "%s/expect_%d.bin", dir, k));
    }
    for (int i = 0; i < nodes; i++) remove(arena_printf(&fe->arena, "%s/ref_%d.bin", dir, i));
    rmdir(dir);
}

/* The expected output k from X.npy, as raw floats (its shape checked). */
static bool write_expected(Frontend *fe, const char *dir, const RunData *rd, int k, const char *npy)
{
    Diag *d = &fe->diag;
    Source nsrc = {.path = npy};
    Diag nd;
    diag_init(&nd, &fe->arena, &nsrc, d->out);
    NpyArray want;
    bool ok = npy_read(&fe->arena, &nd, npy, &want);
    d->errors += nd.errors;
    const Shape *out = &rd->out_shapes[k];
    bool same = ok && want.dtype == DT_F32 && want.shape.rank == out->rank;
    for (int i = 0; same && i < want.shape.rank; i++) same = want.shape.dims[i] == out->dims[i];
    if (ok && !same) {
        char got[MAX_SHAPE_TEXT], exp[MAX_SHAPE_TEXT];
        const char *which = rd->noutputs > 1 ? arena_printf(&fe->arena, "output %d", k) : "output";
        diag_error(d, (SrcSpan){0}, "%s holds %s %s but the model's %s is f32 %s", npy, dtype_name(want.dtype),
                   shape_format(&want.shape, NULL, exp, sizeof exp), which, shape_format(out, NULL, got, sizeof got));
        return false;
    }
    return ok && write_raw(d, arena_printf(&fe->arena, "%s/expect_%d.bin", dir, k), want.data, shape_numel(out), DT_F32);
}

/* Inputs, the reference's output of every layer, and the expected outputs, as raw floats. */
static bool write_test_data(Frontend *fe, const char *dir, const RunData *rd, float **ref, const TestOptions *opt)
{
    const Graph *g = fe->graph;
    Diag *d = &fe->diag;
    bool ok = true;
    if (opt->nexpect_npy > 0 && opt->nexpect_npy != rd->noutputs) {
        diag_error(d, (SrcSpan){0}, "model %s returns %d outputs: give --expect once for each, in order, found %d",
                   g->model_name, rd->noutputs, opt->nexpect_npy);
        return false;
    }
    for (int k = 0; ok && k < rd->ninputs; k++)
        ok = write_raw(d, arena_printf(&fe->arena, "%s/input_%d.bin", dir, k), rd->inputs[k], shape_numel(&rd->in_shapes[k]),
                       ((const Node *)g->inputs.items[k])->dtype);
    for (int i = 0; ok && i < g->nodes.len; i++) {
        const Node *n = g->nodes.items[i];
        if (n->op == OP_INPUT) continue;
        Shape s = reference_shape(n, rd->batch);
        ok = write_raw(d, arena_printf(&fe->arena, "%s/ref_%d.bin", dir, i), ref[i], shape_numel(&s), DT_F32);
    }
    for (int k = 0; ok && k < rd->noutputs; k++)
        ok = write_raw(d, arena_printf(&fe->arena, "%s/reference_%d.bin", dir, k), ref[((const Node *)g->outputs.items[k])->id],
                       shape_numel(&rd->out_shapes[k]), DT_F32);
    for (int k = 0; ok && k < opt->nexpect_npy; k++) ok = write_expected(fe, dir, rd, k, opt->expect_npy[k]);
    return ok;
}

static bool compile_harness(Frontend *fe, const char *dir, bool sanitize, const Target *t)
{
    char *argv[24];
    int n = 0;
    argv[n++] = (char *)t->cc;
    if (t->cc_target) argv[n++] = (char *)t->cc_target;
    char *flags[] = {"-std=gnu11", "-O1", "-g", "-Wall", "-Werror", arena_printf(&fe->arena, "-I%s", include_dir())};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) argv[n++] = flags[i];
    if (sanitize) {
        argv[n++] = "-fsanitize=address,undefined";
        argv[n++] = "-fno-omit-frame-pointer";
    }
    char *files[] = {"harness.c", "-o", "harness", "-ldl", "-lm", NULL};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) argv[n++] = files[i];
    int status = run_command(&fe->diag, dir, argv);
    if (status > 0) diag_error(&fe->diag, (SrcSpan){0}, "the generated harness %s/harness.c does not compile", dir);
    return status == 0;
}

/* What layerc test's hook needs: once the weights are bound, the reference
 * interpreter runs on the graph as written and its outputs go to `dir`. */
typedef struct TestRun {
    const TestOptions *opt;
    RunData rd;
    const char *dir;
} TestRun;

static bool write_reference(Frontend *fe, void *ctx)
{
    TestRun *t = ctx;
    const Graph *g = fe->graph;
    float **ref = arena_alloc_array(&fe->arena, (size_t)g->nodes.len, sizeof *ref);
    char err[512];
    if (!reference_run_perturbed(&fe->arena, g, (const void *const *)t->rd.inputs, t->rd.batch, 0.0, 0, &fe->progress, ref, err,
                                 sizeof err)) {
        diag_error(&fe->diag, (SrcSpan){0}, "the reference interpreter cannot run this model: %s", err);
        return false;
    }
    return write_test_data(fe, t->dir, &t->rd, ref, t->opt);
}

int harness_test(Frontend *fe, const TestOptions *opt)
{
    TestRun t = {.opt = opt};
    if (!prepare_inputs(fe, opt->input_npy, opt->ninput_npy, opt->batch, opt->build.seed, &t.rd) ||
        !(t.dir = work_dir(fe, opt->keep_dir)))
        return 1;
    BuildOptions build = opt->build;
    build.output = arena_printf(&fe->arena, "%s/libmodel.so", t.dir);
    build.quiet_random_weights = true;
    build.emit.sanitize = opt->sanitize;
    build.weights_bound = write_reference;
    build.weights_bound_ctx = &t;
    int status = 1;
    int original_nodes = fe->graph->nodes.len;
    Target target;
    const EmitOptions *e = &build.emit;
    if (target_resolve(&fe->arena, e->target_triple, e->target_cpu, e->target_features, &target, fe->diag.out) &&
        backend_build(fe, &build) && write_harness(fe, t.dir, "./libmodel.so", &t.rd, opt) &&
        compile_harness(fe, t.dir, opt->sanitize, &target)) {
        /* Another architecture's harness runs under its emulator, with its libraries (ld.so, libc, libm). */
        char *native[] = {"./harness", NULL};
        char *emulated[] = {(char *)target.emulator, "-L", (char *)target.sysroot, "./harness", NULL};
        progress_end(&fe->progress); /* the harness prints the results */
        fflush(stdout);
        status = run_command(&fe->diag, t.dir, target.foreign ? emulated : native);
        if (status < 0) status = 1;
    }
    if (opt->keep_dir) fprintf(stderr, "layerc: kept the library, data and harness in %s\n", t.dir);
    else remove_work_dir(fe, t.dir, original_nodes);
    return status == 0 ? 0 : 1;
}

int harness_run(Frontend *fe, const RunOptions *opt)
{
    RunData rd = {0};
    LoadedModel lm;
    if (!prepare_inputs(fe, opt->input_npy, opt->ninput_npy, 0, opt->build.seed, &rd)) return 1;
    if (opt->noutput_npy != rd.noutputs) {
        diag_error(&fe->diag, (SrcSpan){0}, "model %s returns %d outputs: give -o once for each, in order, found %d",
                   fe->graph->model_name, rd.noutputs, opt->noutput_npy);
        return 1;
    }
    int status = 1;
    if (load_model(fe, &opt->build, opt->threads, &lm)) {
        void *outs[MAX_MODEL_IO];
        for (int k = 0; k < rd.noutputs; k++) {
            int64_t n = shape_numel(&rd.out_shapes[k]);
            outs[k] = arena_alloc_array(&fe->arena, (size_t)(n ? n : 1), sizeof(float));
        }
        char err[512];
        if (lm.m->run_multi(lm.ctx, (const void *const *)rd.inputs, outs, rd.api_batch, NULL, NULL) != 0) {
            diag_error(&fe->diag, (SrcSpan){0}, "running the model failed: %s", lm.m->error(lm.ctx));
        } else {
            status = 0;
            for (int k = 0; status == 0 && k < rd.noutputs; k++)
                if (!npy_write(opt->output_npy[k], DT_F32, &rd.out_shapes[k], outs[k], err, sizeof err)) {
                    diag_error(&fe->diag, (SrcSpan){0}, "%s", err);
                    status = 1;
                }
        }
    }
    unload_model(&lm);
    return status;
}
