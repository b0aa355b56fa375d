/* fuzz_safetensors.c - libFuzzer target: arbitrary bytes as a .safetensors
 * file through weights_read_safetensors; when it reads, weights_bind against
 * a fixed model (Conv2d, BatchNorm2d, Linear, LayerNorm: f32 weights, biases,
 * running statistics and the i64 num_batches_tracked), built once.  Binding
 * only sets Param.data, which is reset after every input.  When binding
 * succeeds, a fresh copy of the model is bound and run through the graph
 * passes, which fold the BatchNorm with the file's values. */
#include "fuzz_common.h"

#include <string.h>

#include "backend.h"
#include "frontend.h"
#include "weights.h"

static const char MODEL[] =
    "model FuzzWeights {\n"
    "    input x: f32[N, 3, 6, 6]\n"
    "    conv = Conv2d(3, 4, 3, padding=1)\n"
    "    bn = BatchNorm2d(4)\n"
    "    ReLU()\n"
    "    Flatten()\n"
    "    fc = Linear(144, 5)\n"
    "    ln = LayerNorm(5)\n"
    "}\n";

static FuzzFile model_file, weights_file;
static Frontend model; /* the fixed graph */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void reset_params(Graph *g)
{
    for (int i = 1; i < g->nodes.len; i++) {
        Node *n = g->nodes.items[i];
        for (int j = 0; j < n->nparams; j++) n->params[j].data = NULL;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_file_open(&model_file, "fuzz_weights_model.nn");
    fuzz_file_open(&weights_file, "fuzz.safetensors");
    fuzz_file_write(&model_file, (const uint8_t *)MODEL, sizeof MODEL - 1);
    if (!frontend_run(&model, model_file.path, stderr)) {
        fprintf(stderr, "fuzz_safetensors: the fixed model does not compile\n");
        abort();
    }
    return 0;
}

/* Reads the input into arena a and binds it to g; true when both succeed. */
static bool read_and_bind(Arena *a, Graph *g)
{
    Source wsrc = {.path = weights_file.path};
    Diag d;
    diag_init(&d, a, &wsrc, fuzz_devnull());
    WeightSet ws;
    if (!weights_read_safetensors(a, &d, weights_file.path, &ws)) return false;
    return weights_bind(&d, g, &ws);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_file_write(&weights_file, data, size);
    Arena a;
    arena_init(&a);
    bool bound = read_and_bind(&a, model.graph);
    reset_params(model.graph);
    arena_free(&a);
    if (bound) {
        /* The passes rewrite the graph: a fresh one, whose arena holds the weights too. */
        Frontend fe;
        if (!frontend_run(&fe, model_file.path, fuzz_devnull())) abort();
        if (read_and_bind(&fe.arena, fe.graph)) {
            BuildOptions opt = {.emit = {.opt_level = 3}};
            backend_run_passes(fe.graph, &opt);
        } else {
            abort(); /* bound once, must bind again */
        }
        frontend_free(&fe);
    }
    return 0;
}
