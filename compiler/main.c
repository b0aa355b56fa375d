/* main.c - the layerc command line: parses the command and its options and
 * runs the pipeline stages it needs.  Exit status: 0 success, 1 an error in
 * the model (or its files), 2 misuse of the command line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "file_io.h"
#include "bench.h"
#include "frontend.h"
#include "harness.h"
#include "report.h"

#define LAYERC_VERSION "0.1.0"

enum { EXIT_MODEL_ERROR = 1, EXIT_USAGE = 2 };

typedef struct Command {
    const char *name;
    const char *summary;
    const char *usage;
    const char *const *options; /* the accepted flags (for "did you mean") */
    int (*run)(int argc, char **argv);
} Command;

static const char MAIN_HELP[] =
    "usage: layerc COMMAND [OPTIONS] MODEL.nn\n"
    "\n"
    "layerc compiles neural networks written in the .nn layer language (torch.nn\n"
    "layer names, arguments and defaults) ahead of time.\n"
    "\n"
    "commands:\n"
    "%s"
    "\n"
    "options:\n"
    "  -h, --help     show this help (or a command's: layerc COMMAND --help)\n"
    "  --version      print the version\n"
    "\n"
    "%s"
    "graphs: Sequential(...) of modules, block NAME(params) { ... }, and a forward(x) { ... } section\n"
    "        with + and * (broadcasting), cat([a, b], dim), relu, flatten, adaptive_avg_pool2d, ...\n"
    "        (see the README's 'Graphs' section)\n"
    "\n"
    "exit status: 0 success, 1 errors in the model, 2 command-line misuse\n";

static int usage_error(const char *cmd, const char *fmt, const char *arg, const char *const *options)
{
    fprintf(stderr, "layerc: error: ");
    fprintf(stderr, fmt, arg);
    if (options && arg && arg[0] == '-') {
        int n = 0;
        while (options[n]) n++;
        const char *near = nearest_word(arg, options, n);
        if (near) fprintf(stderr, "; did you mean '%s'?", near);
    }
    fprintf(stderr, "\nrun 'layerc %s%s--help' for usage\n", cmd ? cmd : "", cmd ? " " : "");
    return EXIT_USAGE;
}

static bool is_help(const char *arg) { return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0; }

/* The progress line of a long command (progress.h): "layerc: building vgg16_bn.nn: linking (1.2 s)". */
static void begin_progress(Frontend *fe, const char *doing, const char *path)
{
    const char *slash = strrchr(path, '/');
    progress_begin(&fe->progress, stderr, arena_printf(&fe->arena, "%s %s", doing, slash ? slash + 1 : path));
}

/* ---- layerc check ---- */

static const char *const CHECK_OPTIONS[] = {"--help", NULL};

static int run_check(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1]) return usage_error("check", "unknown option '%s'", argv[i], CHECK_OPTIONS);
        if (path) return usage_error("check", "more than one model file given ('%s')", argv[i], NULL);
        path = argv[i];
    }
    if (!path) return usage_error("check", "no model file given%s", "", NULL);
    Frontend fe;
    bool ok = frontend_run(&fe, path, stderr);
    frontend_free(&fe);
    return ok ? 0 : EXIT_MODEL_ERROR;
}

/* ---- layerc shapes ---- */

static const char *const SHAPES_OPTIONS[] = {"--explain", "--format", "--disable-pass", "--winograd", "--winograd-tile", "--tune-threads", "-O0", "--help", NULL};

static bool is_option(const char *arg, const char *name);
static bool is_pass_option(const char *arg);
static bool check_pass_name(const char *name);
static int parse_build_option(int argc, char **argv, int *i, BuildOptions *opt, const char *cmd);
static bool take_path(const char **path, const char *arg, const char *cmd);
static const char *option_value(int argc, char **argv, int *i, const char *name, const char *cmd);

static int run_shapes(int argc, char **argv)
{
    const char *path = NULL;
    bool explain = false, json = false;
    BuildOptions opt = {.emit = {.opt_level = 3}};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--explain") == 0) {
            explain = true;
        } else if (is_option(a, "--format")) {
            const char *v = option_value(argc, argv, &i, "--format", "shapes");
            if (!v) return EXIT_USAGE;
            if (strcmp(v, "json") == 0) json = true;
            else if (strcmp(v, "text") != 0) return usage_error("shapes", "unknown format '%s' (expected text or json)", v, NULL);
        } else if (is_pass_option(a)) {
            if (parse_build_option(argc, argv, &i, &opt, "shapes") < 0) return EXIT_USAGE;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("shapes", "unknown option '%s'", a, SHAPES_OPTIONS);
        } else if (!take_path(&path, a, "shapes")) {
            return EXIT_USAGE;
        }
    }
    if (!path) return usage_error("shapes", "no model file given%s", "", NULL);
    Frontend fe;
    bool ok = frontend_run(&fe, path, stderr);
    if (ok) {
        ReportTotals before = report_totals(fe.graph);
        backend_run_passes(fe.graph, &opt);
        if (json) ok = report_json(stdout, fe.graph, explain, &before);
        else report_text(stdout, fe.graph, explain, &before);
    }
    frontend_free(&fe);
    return ok ? 0 : EXIT_MODEL_ERROR;
}

/* ---- layerc dump-ir ---- */

static const char *const DUMP_OPTIONS[] = {"--after", "--print-after-all", "--disable-pass", "--winograd", "--winograd-tile", "--tune-threads", "-O0", "-O1", "-O2", "-O3",
                                           "--help", NULL};

static int run_dump_ir(int argc, char **argv)
{
    const char *path = NULL;
    BuildOptions opt = {.emit = {.opt_level = 3}};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (is_option(a, "--after")) {
            const char *v = option_value(argc, argv, &i, "--after", "dump-ir");
            if (!v || !check_pass_name(v)) return EXIT_USAGE;
            opt.passes.print_after = v;
        } else if (strcmp(a, "--print-after-all") == 0) {
            opt.passes.print_after_all = true;
        } else if (is_pass_option(a)) {
            if (parse_build_option(argc, argv, &i, &opt, "dump-ir") < 0) return EXIT_USAGE;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("dump-ir", "unknown option '%s'", a, DUMP_OPTIONS);
        } else if (!take_path(&path, a, "dump-ir")) {
            return EXIT_USAGE;
        }
    }
    if (!path) return usage_error("dump-ir", "no model file given%s", "", NULL);
    Frontend fe;
    bool ok = frontend_run(&fe, path, stderr);
    if (ok) {
        opt.passes.dump = stdout;
        if (opt.passes.print_after_all) dump_ir(stdout, fe.graph, "before passes");
        backend_run_passes(fe.graph, &opt);
        if (!opt.passes.print_after && !opt.passes.print_after_all)
            dump_ir(stdout, fe.graph, opt.emit.opt_level == 0 ? "-O0: no passes" : "after all passes");
    }
    frontend_free(&fe);
    return ok ? 0 : EXIT_MODEL_ERROR;
}

/* ---- layerc dot ---- */

static const char *const DOT_OPTIONS[] = {"-o", "--output", "--disable-pass", "--winograd", "--winograd-tile", "--tune-threads", "-O0", "--help", NULL};

/* Writes the DOT text to path whole (through a temporary file), or to stdout when path is NULL. */
static bool write_dot(Frontend *fe, const char *path)
{
    if (!path) {
        report_dot(stdout, fe->graph);
        return true;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem) {
        fprintf(stderr, "layerc: error: out of memory\n");
        return false;
    }
    report_dot(mem, fe->graph);
    fclose(mem);
    bool ok = write_file_atomically(&fe->diag, path, text, len);
    free(text);
    return ok;
}

static int run_dot(int argc, char **argv)
{
    const char *path = NULL, *output = NULL;
    BuildOptions opt = {.emit = {.opt_level = 3}};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (is_option(a, "-o") || is_option(a, "--output")) {
            if (!(output = option_value(argc, argv, &i, a[1] == 'o' ? "-o" : "--output", "dot"))) return EXIT_USAGE;
        } else if (is_pass_option(a)) {
            if (parse_build_option(argc, argv, &i, &opt, "dot") < 0) return EXIT_USAGE;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("dot", "unknown option '%s'", a, DOT_OPTIONS);
        } else if (!take_path(&path, a, "dot")) {
            return EXIT_USAGE;
        }
    }
    if (!path) return usage_error("dot", "no model file given%s", "", NULL);
    Frontend fe;
    bool ok = frontend_run(&fe, path, stderr);
    if (ok) {
        backend_run_passes(fe.graph, &opt);
        ok = write_dot(&fe, output);
    }
    frontend_free(&fe);
    return ok ? 0 : EXIT_MODEL_ERROR;
}

/* ---- layerc build ---- */

static const char *const BUILD_OPTIONS[] = {"--weights", "--seed", "--header", "--target", "--target-cpu", "--target-features",
                                            "--emit", "--emit-llvm", "--winograd", "--winograd-tile", "--tune-threads", "--verbose", "-v",
                                            "--time-report", "-o", "--output", "-O0", "-O1", "-O2", "-O3", "--disable-pass", "--help", NULL};

/* Value of option argv[*i] ("--opt VALUE" or "--opt=VALUE"); NULL after reporting a missing one. */
static const char *option_value(int argc, char **argv, int *i, const char *name, const char *cmd)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) == 0 && argv[*i][n] == '=') return argv[*i] + n + 1;
    if (*i + 1 < argc) return argv[++*i];
    usage_error(cmd, "%s needs a value", name, NULL);
    return NULL;
}

static bool is_option(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

/* -O0..-O3 and --disable-pass: the options that steer the graph passes. */
static bool is_pass_option(const char *arg)
{
    return is_option(arg, "--disable-pass") || is_option(arg, "--winograd") || is_option(arg, "--winograd-tile") ||
           is_option(arg, "--tune-threads") || (arg[0] == '-' && arg[1] == 'O' && arg[2] >= '0' && arg[2] <= '3' && !arg[3]);
}

static bool parse_seed(const char *text, uint64_t *seed)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-') return false;
    *seed = v;
    return true;
}

static bool parse_count(const char *text, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < 1 || v > max) return false;
    *out = v;
    return true;
}

static bool check_pass_name(const char *name)
{
    const char *near = NULL;
    if (pass_known(name, &near)) return true;
    fprintf(stderr, "layerc: error: unknown pass '%s'%s%s%s (see 'layerc dump-ir --help')\n", name,
            near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
    return false;
}

static bool add_disabled_pass(PassOptions *po, const char *name)
{
    if (!check_pass_name(name)) return false;
    if (po->ndisabled == (int)(sizeof po->disabled / sizeof po->disabled[0])) return true;
    po->disabled[po->ndisabled++] = name;
    return true;
}

/* The --target, --target-cpu and --target-features of a command, checked
 * once all its options are read; false after a usage error naming the valid
 * ones.  *foreign: the target is another architecture than this machine's. */
static bool check_target(const EmitOptions *e, bool *foreign)
{
    Arena a;
    arena_init(&a);
    Target t;
    bool ok = target_resolve(&a, e->target_triple, e->target_cpu, e->target_features, &t, stderr);
    if (foreign) *foreign = ok && t.foreign;
    arena_free(&a);
    return ok;
}

/* run and bench load the model into this process: this architecture only. */
static int refuse_foreign(const char *cmd, const EmitOptions *e)
{
    fprintf(stderr, "layerc: error: layerc %s loads the compiled model into this process, so it runs only for this "
                    "machine's architecture, not --target %s\n"
                    "layerc: note: 'layerc test --target %s' runs the model under the emulator; 'layerc build --target %s "
                    "--emit exe' makes a program for that machine\n",
            cmd, e->target_triple, e->target_triple, e->target_triple);
    return EXIT_USAGE;
}

/* Parses one option shared by build, test and run; returns 1 when consumed,
 * 0 when not a build option, -1 after a usage error. */
static int parse_build_option(int argc, char **argv, int *i, BuildOptions *opt, const char *cmd)
{
    const char *a = argv[*i];
    const struct {
        const char *name;
        const char **slot;
    } string_options[] = {{"--weights", &opt->weights_path}, {"--header", &opt->header},
                          {"--target-cpu", &opt->emit.target_cpu}, {"--target-features", &opt->emit.target_features},
                          {"--target", &opt->emit.target_triple}, {"--emit-llvm", &opt->emit.emit_llvm}};
    for (size_t k = 0; k < sizeof string_options / sizeof string_options[0]; k++) {
        if (!is_option(a, string_options[k].name)) continue;
        *string_options[k].slot = option_value(argc, argv, i, string_options[k].name, cmd);
        return *string_options[k].slot ? 1 : -1;
    }
    if (is_option(a, "--seed")) {
        const char *v = option_value(argc, argv, i, "--seed", cmd);
        if (!v) return -1;
        if (!parse_seed(v, &opt->seed)) {
            usage_error(cmd, "--seed needs a non-negative integer, got '%s'", v, NULL);
            return -1;
        }
        return 1;
    }
    if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3]) {
        opt->emit.opt_level = a[2] - '0';
        return 1;
    }
    if (is_option(a, "--winograd")) {
        static const char *const policies[] = {"auto", "always", "never"};
        const char *v = option_value(argc, argv, i, "--winograd", cmd);
        if (!v) return -1;
        for (int k = 0; k < 3; k++)
            if (strcmp(v, policies[k]) == 0) {
                opt->passes.winograd = (WinogradPolicy)k;
                return 1;
            }
        usage_error(cmd, "--winograd needs auto, always or never, got '%s'", v, NULL);
        return -1;
    }
    if (is_option(a, "--winograd-tile")) {
        const char *v = option_value(argc, argv, i, "--winograd-tile", cmd);
        if (!v) return -1;
        opt->passes.winograd_tile = strcmp(v, "auto") == 0 ? 0 : strcmp(v, "2x2") == 0 ? 2 : strcmp(v, "4x4") == 0 ? 4 : -1;
        if (opt->passes.winograd_tile >= 0) return 1;
        usage_error(cmd, "--winograd-tile needs auto, 2x2 or 4x4, got '%s'", v, NULL);
        return -1;
    }
    if (is_option(a, "--tune-threads")) {
        const char *v = option_value(argc, argv, i, "--tune-threads", cmd);
        if (!v) return -1;
        char *end;
        errno = 0;
        long t = strtol(v, &end, 10);
        if (errno || end == v || *end || t < 1 || t > 256) {
            usage_error(cmd, "--tune-threads needs a thread count from 1 to 256, got '%s'", v, NULL);
            return -1;
        }
        opt->passes.tune_threads = (int)t;
        return 1;
    }
    if (is_option(a, "--disable-pass")) {
        const char *name = option_value(argc, argv, i, "--disable-pass", cmd);
        return name && add_disabled_pass(&opt->passes, name) ? 1 : -1;
    }
    if (is_option(a, "--inject-fault")) {
        int64_t layer;
        const char *v = option_value(argc, argv, i, "--inject-fault", cmd);
        if (!v) return -1;
        if (!parse_count(v, 1 << 30, &layer)) {
            usage_error(cmd, "--inject-fault needs a layer number (1 is the first layer), got '%s'", v, NULL);
            return -1;
        }
        opt->inject_fault_layer = (int)layer;
        return 1;
    }
    return 0;
}

/* --batch B (1 to 2^20) or --threads T (1 to 256) into *batch or *threads; false after a usage error. */
static bool parse_batch_or_threads(int argc, char **argv, int *i, const char *cmd, int64_t *batch, int *threads)
{
    bool is_batch = is_option(argv[*i], "--batch");
    if (is_batch && !batch) {
        usage_error(cmd, "unknown option '%s'", argv[*i], NULL);
        return false;
    }
    const char *v = option_value(argc, argv, i, is_batch ? "--batch" : "--threads", cmd);
    int64_t n;
    if (!v) return false;
    if (!parse_count(v, is_batch ? (int64_t)1 << 20 : 256, &n)) {
        usage_error(cmd, is_batch ? "--batch needs an integer from 1 to 1048576, got '%s'"
                                  : "--threads needs an integer from 1 to 256, got '%s'", v, NULL);
        return false;
    }
    if (is_batch) *batch = n;
    else *threads = (int)n;
    return true;
}

/* The model file argument; false after a usage error (two files). */
static bool take_path(const char **path, const char *arg, const char *cmd)
{
    if (*path) {
        usage_error(cmd, "more than one model file given ('%s')", arg, NULL);
        return false;
    }
    *path = arg;
    return true;
}

static bool parse_emit_kind(const char *v, EmitKind *kind)
{
    static const char *const kinds[] = {"so", "obj", "static", "exe"}; /* EmitKind's order */
    for (int k = 0; k < 4; k++)
        if (strcmp(v, kinds[k]) == 0) {
            *kind = (EmitKind)k;
            return true;
        }
    return false;
}

static int run_build(int argc, char **argv)
{
    const char *path = NULL;
    BuildOptions opt = {.emit = {.opt_level = 3}};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int used = parse_build_option(argc, argv, &i, &opt, "build");
        if (used < 0) return EXIT_USAGE;
        if (used) continue;
        if (strcmp(a, "--time-report") == 0) {
            opt.time_report = stderr;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            opt.verbose = stderr;
        } else if (is_option(a, "--emit")) {
            const char *v = option_value(argc, argv, &i, "--emit", "build");
            if (!v) return EXIT_USAGE;
            if (!parse_emit_kind(v, &opt.emit.kind)) return usage_error("build", "--emit needs so, obj, static or exe, got '%s'", v, NULL);
        } else if (strcmp(a, "-o") == 0 || is_option(a, "--output")) {
            if (!(opt.output = option_value(argc, argv, &i, a[1] == 'o' ? "-o" : "--output", "build"))) return EXIT_USAGE;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("build", "unknown option '%s'", a, BUILD_OPTIONS);
        } else if (!take_path(&path, a, "build")) {
            return EXIT_USAGE;
        }
    }
    if (!path) return usage_error("build", "no model file given%s", "", NULL);
    if (!check_target(&opt.emit, NULL)) return EXIT_USAGE;
    if (opt.header && opt.emit.kind == EMIT_EXE)
        return usage_error("build", "--header goes with --emit so, obj or static: a program (--emit exe) has no C interface%s", "", NULL);
    Frontend fe;
    bool ok = frontend_run(&fe, path, stderr);
    if (ok) {
        static const char *const default_names[] = {"lib%s.so", "%s.o", "lib%s.a", "%s"}; /* by EmitKind */
        if (!opt.output)
            opt.output = arena_printf(&fe.arena, default_names[opt.emit.kind], model_symbol_prefix(&fe.arena, fe.graph->model_name));
        if (!opt.time_report) begin_progress(&fe, "building", path); /* --time-report prints the stages itself */
        ok = backend_build(&fe, &opt);
    }
    frontend_free(&fe);
    return ok ? 0 : EXIT_MODEL_ERROR;
}

/* ---- layerc test ---- */

static const char *const TEST_OPTIONS[] = {"--weights", "--seed", "--winograd", "--winograd-tile", "--tune-threads", "--input", "--expect", "--atol", "--rtol", "--batch",
                                           "--keep", "--threads", "--sanitize", "--target", "--target-cpu", "--target-features", "--disable-pass", "--inject-fault", "-O0", "-O1", "-O2", "-O3",
                                           "--help", NULL};

static bool parse_number(const char *text, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !(v >= 0) || v > 1e30) return false;
    *out = v;
    return true;
}

/* One more --input / --expect / -o file (one per model input or output, in order). */
static bool add_npy(const char **list, int *count, const char *path, const char *option, const char *command)
{
    if (*count == MAX_MODEL_IO) {
        usage_error(command, "%s is given more than 16 times", option, NULL);
        return false;
    }
    list[(*count)++] = path;
    return true;
}

static int run_test(int argc, char **argv)
{
    const char *path = NULL;
    TestOptions opt = {.build = {.emit = {.opt_level = 3}}, .atol = 1e-4, .rtol = 1e-4, .threads = 1};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int used = parse_build_option(argc, argv, &i, &opt.build, "test");
        if (used < 0) return EXIT_USAGE;
        if (used) continue;
        const char *v;
        if (is_option(a, "--input") || is_option(a, "--expect") || is_option(a, "--keep")) {
            const char *name = is_option(a, "--input") ? "--input" : is_option(a, "--expect") ? "--expect" : "--keep";
            if (!(v = option_value(argc, argv, &i, name, "test"))) return EXIT_USAGE;
            if (name[2] == 'k') opt.keep_dir = v;
            else if (!add_npy(name[2] == 'i' ? opt.input_npy : opt.expect_npy,
                              name[2] == 'i' ? &opt.ninput_npy : &opt.nexpect_npy, v, name, "test"))
                return EXIT_USAGE;
        } else if (is_option(a, "--atol") || is_option(a, "--rtol")) {
            const char *name = is_option(a, "--atol") ? "--atol" : "--rtol";
            if (!(v = option_value(argc, argv, &i, name, "test"))) return EXIT_USAGE;
            if (!parse_number(v, name[2] == 'a' ? &opt.atol : &opt.rtol))
                return usage_error("test", "tolerances are non-negative numbers, got '%s'", v, NULL);
        } else if (is_option(a, "--batch") || is_option(a, "--threads")) {
            if (!parse_batch_or_threads(argc, argv, &i, "test", &opt.batch, &opt.threads)) return EXIT_USAGE;
        } else if (strcmp(a, "--sanitize") == 0) {
            opt.sanitize = true;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("test", "unknown option '%s'", a, TEST_OPTIONS);
        } else if (!take_path(&path, a, "test")) {
            return EXIT_USAGE;
        }
    }
    if (!path) return usage_error("test", "no model file given%s", "", NULL);
    bool foreign;
    if (!check_target(&opt.build.emit, &foreign)) return EXIT_USAGE;
    if (foreign && opt.sanitize)
        return usage_error("test", "--sanitize runs only for this machine's architecture, not --target %s", opt.build.emit.target_triple, NULL);
    Frontend fe;
    int status = EXIT_MODEL_ERROR;
    if (frontend_run(&fe, path, stderr)) {
        begin_progress(&fe, "testing", path);
        status = harness_test(&fe, &opt);
    }
    frontend_free(&fe);
    return status;
}

/* ---- layerc run ---- */

static const char *const RUN_OPTIONS[] = {"--input", "-o", "--winograd", "--winograd-tile", "--tune-threads", "--weights", "--seed", "--threads", "--target-cpu", "--target-features", "--help", NULL};

static int run_run(int argc, char **argv)
{
    const char *path = NULL;
    RunOptions opt = {.build = {.emit = {.opt_level = 3}}, .threads = 1};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int used = parse_build_option(argc, argv, &i, &opt.build, "run");
        if (used < 0) return EXIT_USAGE;
        if (used) continue;
        if (is_option(a, "--input") || strcmp(a, "-o") == 0) {
            bool input = a[1] == '-';
            const char *v = option_value(argc, argv, &i, input ? "--input" : "-o", "run");
            if (!v || !add_npy(input ? opt.input_npy : opt.output_npy, input ? &opt.ninput_npy : &opt.noutput_npy, v,
                               input ? "--input" : "-o", "run"))
                return EXIT_USAGE;
        } else if (is_option(a, "--threads")) {
            if (!parse_batch_or_threads(argc, argv, &i, "run", NULL, &opt.threads)) return EXIT_USAGE;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("run", "unknown option '%s'", a, RUN_OPTIONS);
        } else if (!take_path(&path, a, "run")) {
            return EXIT_USAGE;
        }
    }
    if (!path) return usage_error("run", "no model file given%s", "", NULL);
    if (!opt.ninput_npy) return usage_error("run", "--input X.npy is required%s", "", NULL);
    if (!opt.noutput_npy) return usage_error("run", "-o Y.npy is required%s", "", NULL);
    bool foreign;
    if (!check_target(&opt.build.emit, &foreign)) return EXIT_USAGE;
    if (foreign) return refuse_foreign("run", &opt.build.emit);
    Frontend fe;
    int status = EXIT_MODEL_ERROR;
    if (frontend_run(&fe, path, stderr)) {
        begin_progress(&fe, "running", path);
        status = harness_run(&fe, &opt);
    }
    frontend_free(&fe);
    return status;
}

/* ---- layerc bench ---- */

static const char *const BENCH_OPTIONS[] = {"--batch", "--threads", "--winograd", "--winograd-tile", "--tune-threads", "--per-layer", "--json", "--min-time", "--weights",
                                            "--seed", "--target-cpu", "--target-features", "--disable-pass", "-O0", "-O1", "-O2", "-O3",
                                            "--help", NULL};

static int run_bench(int argc, char **argv)
{
    const char *path = NULL;
    BenchOptions opt = {.build = {.emit = {.opt_level = 3}}, .threads = 1, .min_seconds = 1.0};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int used = parse_build_option(argc, argv, &i, &opt.build, "bench");
        if (used < 0) return EXIT_USAGE;
        if (used) continue;
        const char *v;
        if (is_option(a, "--batch") || is_option(a, "--threads")) {
            if (!parse_batch_or_threads(argc, argv, &i, "bench", &opt.batch, &opt.threads)) return EXIT_USAGE;
        } else if (is_option(a, "--min-time")) {
            if (!(v = option_value(argc, argv, &i, "--min-time", "bench"))) return EXIT_USAGE;
            if (!parse_number(v, &opt.min_seconds) || opt.min_seconds <= 0 || opt.min_seconds > 3600)
                return usage_error("bench", "--min-time needs seconds above 0 and at most 3600, got '%s'", v, NULL);
        } else if (strcmp(a, "--per-layer") == 0 || strcmp(a, "--json") == 0) {
            *(a[2] == 'p' ? &opt.per_layer : &opt.json) = true;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("bench", "unknown option '%s'", a, BENCH_OPTIONS);
        } else if (!take_path(&path, a, "bench")) {
            return EXIT_USAGE;
        }
    }
    if (!path) return usage_error("bench", "no model file given%s", "", NULL);
    bool foreign;
    if (!check_target(&opt.build.emit, &foreign)) return EXIT_USAGE;
    if (foreign) return refuse_foreign("bench", &opt.build.emit);
    Frontend fe;
    int status = EXIT_MODEL_ERROR;
    if (frontend_run(&fe, path, stderr)) {
        begin_progress(&fe, "benchmarking", path);
        status = bench_model(&fe, &opt);
    }
    frontend_free(&fe);
    return status;
}

/* ---- layerc targets ---- */

static const char *const TARGETS_OPTIONS[] = {"--help", NULL};

static int run_targets(int argc, char **argv)
{
    if (argc > 0) return usage_error("targets", argv[0][0] == '-' ? "unknown option '%s'" : "unexpected argument '%s'", argv[0], TARGETS_OPTIONS);
    targets_print(stdout);
    return 0;
}

static const Command commands[] = {
    {"check", "report the model's errors and warnings; exit 0 when it has no errors",
     "usage: layerc check MODEL.nn\n", CHECK_OPTIONS, run_check},
    {"shapes", "print the shape-inference report: a row per layer, parameter and MAC totals",
     "usage: layerc shapes [--explain] [--format text|json] [-O0] [--disable-pass PASS] MODEL.nn\n"
     "  --explain        show how each output size arose, and each parameter tensor\n"
     "  --format FORMAT  text (default, a torchinfo-like table) or json\n"
     "  -O0, --disable-pass PASS   show the graph without the optimizer's passes (or one of them);\n"
     "                   fused groups are marked [fused], totals before the passes are shown beside\n",
     SHAPES_OPTIONS, run_shapes},
    {"dump-ir", "print the graph IR after the optimizer's passes (or after one, or after each)",
     "usage: layerc dump-ir [--after PASS | --print-after-all] [--disable-pass PASS]... [-O0] MODEL.nn\n"
     "passes, in order:\n"
     "  simplify-inference  remove Identity, Dropout and Dropout2d (the identity at inference)\n"
     "  fold-batchnorm      fold eval-mode BatchNorm into the Conv2d or Linear before it\n"
     "  fuse-epilogue       apply the activation after a Conv2d or Linear inside its kernel\n"
     "  fold-constants      compute the remaining BatchNorms' scale and shift at compile time\n"
     "  choose-conv-algorithm  run 3x3 and 5x5 stride-1 convolutions with >= 32 channels as Winograd\n"
     "                         with 4x4 or 2x2 output tiles (the one with clearly fewer products);\n"
     "                         5x5 ones with 4x4 tiles also from 16 output channels on\n"
     "                         (--winograd always: every such convolution; never: none;\n"
     "                         --winograd-tile 2x2 or 4x4: that output tile for every one)\n"
     "-O0 runs no pass; --disable-pass (repeatable) skips one, here and in shapes, build, test and run\n",
     DUMP_OPTIONS, run_dump_ir},
    {"dot", "write the graph after the optimizer's passes as Graphviz DOT (render: dot -Tsvg)",
     "usage: layerc dot [-o FILE] [-O0] [--disable-pass PASS] MODEL.nn\n"
     "  -o FILE          write the DOT text to FILE (default: standard output)\n"
     "  -O0, --disable-pass PASS   the graph without the optimizer's passes (or one of them)\n"
     "a box per layer or fused group (its types, output shape, parameters, MACs and, for a Conv2d,\n"
     "how it is computed); ellipses for the inputs and outputs; dashed edges for the skip tensor a\n"
     "convolution adds in its kernel\n",
     DOT_OPTIONS, run_dot},
    {"build", "compile the model to a self-contained shared library (weights embedded), object, archive or program",
     "usage: layerc build [OPTIONS] MODEL.nn\n"
     "  --weights FILE     a .safetensors file with the PyTorch state_dict (else random weights)\n"
     "  --seed N           seed of the random weights (default 0)\n"
     "  --emit KIND        so (default): a shared library; obj: one relocatable object; static: an archive\n"
     "                     (both hold the code, weights and runtime); exe: a program that reads input .npy\n"
     "                     files and writes the output .npy files (run it with --help)\n"
     "  -o FILE            the file to write (default libMODEL.so, MODEL.o, libMODEL.a or MODEL)\n"
     "  --header FILE      also write a C header declaring the model's functions\n"
     "  -O0 .. -O3         optimisation level (default -O3); -O0 also runs no graph pass\n"
     "  --disable-pass P   skip one graph pass (repeatable; see 'layerc dump-ir --help')\n"
     "  --target TRIPLE    compile for x86_64-linux-gnu or aarch64-linux-gnu (default: this machine)\n"
     "  --target-cpu CPU   compile for CPU (e.g. x86-64-v3, haswell, cortex-a76) instead of this machine's;\n"
     "                     'layerc targets' lists them with the vector unit each gets\n"
     "  --target-features +F,-F  add or remove CPU features (e.g. +avx512f; see 'layerc targets')\n"
     "  -v, --verbose      print the target, its vector unit and the CPU features the library requires\n"
     "  --emit-llvm FILE   also write the optimised LLVM IR (the weights are not in it)\n"
     "  --winograd W       auto (default), always or never: which 3x3 and 5x5 stride-1 convolutions\n"
     "                     run as Winograd (see 'layerc dump-ir --help')\n"
     "  --winograd-tile T  auto (default), 2x2 or 4x4: the output tile of Winograd layers (4x4: fewer\n"
     "                     products, 2-4x the direct sum's rounding error; 2x2: about the direct sum's)\n"
     "  --tune-threads T   the threads the library will mostly run one sample on (default 1): with 2 or\n"
     "                     more, convolutions too small for Winograd to split run direct, which splits\n"
     "                     (results never depend on the thread count a library runs on)\n"
     "  --time-report      print the time each stage took\n",
     BUILD_OPTIONS, run_build},
    {"test", "compile the model, run it and check it against the reference interpreter (and --expect)",
     "usage: layerc test [OPTIONS] MODEL.nn\n"
     "  --input X.npy      the input (default: deterministic random N(0, 1) values)\n"
     "  --expect Y.npy     also compare with this output (e.g. PyTorch's)\n"
     "                     (several inputs or outputs: --input and --expect once for each, in order)\n"
     "  --atol A --rtol R  pass when |out - expected| <= A + R * |expected| everywhere (default 1e-4, 1e-4)\n"
     "  --batch B          the run-time batch for a named batch dimension (default 2)\n"
     "  --threads T        threads of the compiled model (default 1)\n"
     "  --keep DIR         keep the library, data and generated harness.c in DIR\n"
     "  --sanitize         build the harness, runtime and generated code with AddressSanitizer + UBSan\n"
     "  --inject-fault K   make compiled layer K wrong on purpose (to see the divergence report)\n"
     "  --target TRIPLE    build for another architecture and run the harness under its emulator\n"
     "                     (aarch64-linux-gnu: qemu-aarch64 -L /usr/aarch64-linux-gnu)\n"
     "  --weights, --seed, -O0..-O3, --target-cpu, --target-features, --disable-pass, --winograd,\n"
     "  --winograd-tile, --tune-threads   as for build\n",
     TEST_OPTIONS, run_test},
    {"run", "compile the model and run it on an input .npy, writing the output .npy",
     "usage: layerc run MODEL.nn --input X.npy -o Y.npy [--weights W] [--threads T]\n"
     "  a model of several inputs or outputs takes --input and -o once for each, in order\n", RUN_OPTIONS, run_run},
    {"bench", "compile the model and time it: median, min and p90 of many runs, GFLOP/s, per layer",
     "usage: layerc bench [OPTIONS] MODEL.nn\n"
     "  --batch B          the run-time batch for a named batch dimension (default 1)\n"
     "  --threads T        threads of the compiled model (default 1)\n"
     "  --per-layer        also time every compiled layer (a fused group once), through run_observed\n"
     "  --min-time S       measure for at least S seconds and 10 runs (default 1; per layer again)\n"
     "  --json             print the results as JSON\n"
     "  --weights, --seed, -O0..-O3, --target-cpu, --disable-pass, --winograd, --winograd-tile,\n"
     "  --tune-threads     as for build\n"
     "GFLOP/s counts 2 x the multiply-accumulates of the model as written (before the passes),\n"
     "so builds with and without fusion are credited with the same work.\n",
     BENCH_OPTIONS, run_bench},
    {"targets", "list the target triples, CPUs and CPU features layerc compiles for, and this machine's",
     "usage: layerc targets\n", TARGETS_OPTIONS, run_targets},
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

/* "layers: Conv2d MaxPool2d ...", wrapped, from the layer table (layers.def). */
static void layer_list(char *buf, size_t size)
{
    const char *names[OP_COUNT];
    int count = op_all_names(names, OP_COUNT);
    size_t len = (size_t)snprintf(buf, size, "layers:"), line = len;
    for (int i = 0; i < count && len < size; i++) {
        if (line + 1 + strlen(names[i]) > 88) {
            len += (size_t)snprintf(buf + len, size - len, "\n       ");
            line = 7;
        }
        int n = snprintf(buf + len, size - len, " %s", names[i]);
        len += (size_t)n, line += (size_t)n;
    }
    if (len < size) snprintf(buf + len, size - len, "\n");
}

static void print_main_help(FILE *out)
{
    char list[2048], layers[2048];
    size_t len = 0;
    for (int i = 0; i < NCOMMANDS; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "  %-8s %s\n", commands[i].name, commands[i].summary);
    layer_list(layers, sizeof layers);
    fprintf(out, MAIN_HELP, list, layers);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_main_help(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (is_help(cmd)) {
        print_main_help(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("layerc %s\n", LAYERC_VERSION);
        return 0;
    }
    for (int i = 0; i < NCOMMANDS; i++) {
        if (strcmp(cmd, commands[i].name) != 0) continue;
        for (int k = 2; k < argc; k++) {
            if (strcmp(argv[k], "--") == 0) break;
            if (is_help(argv[k])) {
                printf("%s\n%s\n", commands[i].summary, commands[i].usage);
                return 0;
            }
        }
        return commands[i].run(argc - 2, argv + 2);
    }
    const char *names[NCOMMANDS];
    for (int i = 0; i < NCOMMANDS; i++) names[i] = commands[i].name;
    const char *near = nearest_word(cmd, names, NCOMMANDS);
    fprintf(stderr, "layerc: error: unknown command '%s'%s%s%s\nrun 'layerc --help' for usage\n", cmd,
            near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
    return EXIT_USAGE;
}
