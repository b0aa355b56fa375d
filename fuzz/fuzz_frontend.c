/* fuzz_frontend.c - libFuzzer target: arbitrary bytes as a .nn model through
 * the lexer, parser, binder and shape inference (frontend_run); when the
 * model is clean, also the graph passes, the IR dump and both reports, as
 * `layerc shapes` and `layerc dump-ir` run them (compiler/main.c). */
#include "fuzz_common.h"

#include "backend.h"
#include "frontend.h"
#include "passes.h"
#include "report.h"

static FuzzFile file;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_file_open(&file, "fuzz_frontend.nn");
    fuzz_devnull();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *out = fuzz_devnull();
    fuzz_file_write(&file, data, size);
    Frontend fe;
    if (frontend_run(&fe, file.path, out)) {
        /* Both report flavours and -O0/-O3 from the input's size, so every input is deterministic. */
        bool explain = size & 1;
        BuildOptions opt = {.emit = {.opt_level = (size & 2) ? 0 : 3}};
        ReportTotals before = report_totals(fe.graph);
        opt.passes.dump = out;
        backend_run_passes(fe.graph, &opt);
        dump_ir(out, fe.graph, "after all passes");
        report_text(out, fe.graph, explain, &before);
        report_json(out, fe.graph, !explain, &before);
    }
    frontend_free(&fe);
    return 0;
}
