/* main.c - the layerc command line: parses the command and its options and
 * runs the pipeline stages it needs.  Exit status: 0 success, 1 an error in
 * the model (or its files), 2 misuse of the command line. */
#include <stdio.h>
#include <string.h>

#include "frontend.h"
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
    "layers: Conv2d MaxPool2d AvgPool2d AdaptiveAvgPool2d ReLU ReLU6 LeakyReLU Sigmoid Tanh\n"
    "        GELU SiLU Softmax LogSoftmax BatchNorm1d BatchNorm2d LayerNorm Linear LazyLinear\n"
    "        Identity Flatten Dropout Dropout2d Embedding EmbeddingBag RNN LSTM GRU\n"
    "        TransformerEncoderLayer\n"
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

static const char *const SHAPES_OPTIONS[] = {"--explain", "--format", "--help", NULL};

static int run_shapes(int argc, char **argv)
{
    const char *path = NULL;
    bool explain = false, json = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--explain") == 0) {
            explain = true;
        } else if (strcmp(a, "--format") == 0 || strncmp(a, "--format=", 9) == 0) {
            const char *v = a[8] == '=' ? a + 9 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v) return usage_error("shapes", "--format needs a value: text or json%s", "", NULL);
            if (strcmp(v, "json") == 0) json = true;
            else if (strcmp(v, "text") != 0) return usage_error("shapes", "unknown format '%s' (expected text or json)", v, NULL);
        } else if (a[0] == '-' && a[1]) {
            return usage_error("shapes", "unknown option '%s'", a, SHAPES_OPTIONS);
        } else if (path) {
            return usage_error("shapes", "more than one model file given ('%s')", a, NULL);
        } else {
            path = a;
        }
    }
    if (!path) return usage_error("shapes", "no model file given%s", "", NULL);
    Frontend fe;
    bool ok = frontend_run(&fe, path, stderr);
    if (ok) ok = json ? report_json(stdout, fe.graph, explain) : (report_text(stdout, fe.graph, explain), true);
    frontend_free(&fe);
    return ok ? 0 : EXIT_MODEL_ERROR;
}

static const Command commands[] = {
    {"check", "report the model's errors and warnings; exit 0 when it has no errors",
     "usage: layerc check MODEL.nn\n", CHECK_OPTIONS, run_check},
    {"shapes", "print the shape-inference report: a row per layer, parameter and MAC totals",
     "usage: layerc shapes [--explain] [--format text|json] MODEL.nn\n"
     "  --explain        show how each output size arose, and each parameter tensor\n"
     "  --format FORMAT  text (default, a torchinfo-like table) or json\n",
     SHAPES_OPTIONS, run_shapes},
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

static void print_main_help(FILE *out)
{
    char list[2048];
    size_t len = 0;
    for (int i = 0; i < NCOMMANDS; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, MAIN_HELP, list);
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
