/* layerc.h - the stable, model-independent C interface of every library that
 * `layerc build` generates.
 *
 * Each generated .so exports, besides its model-named functions (declared in
 * the header `layerc build --header` writes), one entry point:
 *
 *     const layerc_model_desc *layerc_model(void);
 *
 * so a tool can load any model with dlopen() + dlsym("layerc_model") and learn
 * its name, its input and output shapes and how to run it.  The structure only
 * grows at its end; abi_version changes if that is ever not enough.
 *
 * Token ids: a model whose input is i64 (an Embedding or EmbeddingBag reads
 * it) checks every id before it runs, so an id out of range is an error
 * (LAYERC_ERR_INPUT, with the id and its position in error()), never an
 * out-of-bounds read.
 *
 * A library checks when a context is created that the CPU has the features
 * it was compiled for (cpu_unsupported below).
 *
 * Threading: a context is used by one thread at a time; separate contexts may
 * run concurrently.  There is no global mutable state.  Every function that
 * takes a context returns an error code for a NULL context, NULL buffers or a
 * bad batch size, and never crashes on them.
 */
#ifndef LAYERC_H
#define LAYERC_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LAYERC_ABI_VERSION 1
#define LAYERC_MAX_RANK 8

typedef enum layerc_dtype { LAYERC_F32 = 0, LAYERC_I64 = 1 } layerc_dtype;

typedef enum layerc_status {
    LAYERC_OK = 0,
    LAYERC_ERR_NULL = 1,    /* a NULL context or buffer */
    LAYERC_ERR_BATCH = 2,   /* a batch size the model cannot take */
    LAYERC_ERR_NOMEM = 3,   /* the activation memory could not be allocated */
    LAYERC_ERR_THREADS = 4, /* a thread count below 1 or threads could not start */
    LAYERC_ERR_INPUT = 5,   /* an input value out of range (e.g. a token id) */
    LAYERC_ERR_ARITY = 6,   /* run() or run_observed() on a model of several inputs or outputs: use run_multi() */
} layerc_status;

typedef struct layerc_tensor_info {
    int32_t rank;
    int32_t dtype;     /* layerc_dtype */
    int32_t batch_dim; /* 0 when dims[0] is the batch chosen at run time, else -1 */
    int32_t reserved;
    int64_t dims[LAYERC_MAX_RANK]; /* a run-time batch dimension holds 1 here */
} layerc_tensor_info;

typedef struct layerc_ctx layerc_ctx;

/* Called after each layer (or fused group) by run_observed, with its output. */
typedef void (*layerc_observer)(void *user, int32_t layer, const float *data, const layerc_tensor_info *shape,
                                int64_t batch);

typedef struct layerc_model_desc {
    uint32_t abi_version; /* LAYERC_ABI_VERSION */
    int32_t num_layers;   /* kernels run in order (fused groups count once) */
    const char *name;
    layerc_tensor_info input;
    layerc_tensor_info output;
    int64_t workspace_bytes; /* planned peak activation memory (per sample when the batch is named) */

    /* Allocates a context with every activation buffer; NULL when out of
     * memory or when the CPU lacks a feature the code needs (cpu_unsupported). */
    layerc_ctx *(*create)(void);
    /* Runs the model.  batch: the run-time batch when the input's first
     * dimension is named (>= 1), otherwise 0 or the declared first dimension. */
    int (*run)(layerc_ctx *ctx, const void *input, void *output, int64_t batch);
    void (*destroy)(layerc_ctx *ctx);
    /* The last error of ctx as text ("" when none); never NULL. */
    const char *(*error)(const layerc_ctx *ctx);
    /* Threads used by run (default 1).  Results are identical for any count. */
    int (*set_threads)(layerc_ctx *ctx, int threads);
    /* run, calling observe after every layer with its output (for debugging). */
    int (*run_observed)(layerc_ctx *ctx, const void *input, void *output, int64_t batch, layerc_observer observe,
                        void *user);
    const char *const *layer_names;          /* num_layers entries, e.g. "conv1 (Conv2d)" */
    const layerc_tensor_info *layer_outputs; /* num_layers entries */

    /* Private to the runtime: one pointer per input and per output. */
    void (*forward)(layerc_ctx *ctx, const void *const *inputs, void *const *outputs, void *workspace, int64_t batch);

    /* An i64 (token id) input: every id must be in [0, input_id_limit), the
     * num_embeddings of the Embedding that reads it; run() checks them all
     * before computing anything and returns LAYERC_ERR_INPUT naming the
     * first id out of range and its position.  0 for an f32 input. */
    int64_t input_id_limit;

    /* Every input and output.  A model with a forward section may take
     * several inputs (in the order they are declared) and return several
     * outputs (in the order forward returns them); `input`, `output` and
     * `input_id_limit` above describe the first of each.  The inputs share
     * one run-time batch. */
    int32_t num_inputs, num_outputs;
    const layerc_tensor_info *inputs;  /* num_inputs entries */
    const layerc_tensor_info *outputs; /* num_outputs entries */
    const char *const *input_names;    /* as declared ("x") */
    const char *const *output_names;   /* the layer computing each, e.g. "fc" */
    const int64_t *input_id_limits;    /* num_inputs entries, as input_id_limit */
    /* Runs the model on one buffer per input and per output (arrays of
     * num_inputs and num_outputs pointers), calling observe after every
     * layer when it is not NULL.  run() and run_observed() are this for a
     * model of one input and one output; for others they return
     * LAYERC_ERR_ARITY. */
    int (*run_multi)(layerc_ctx *ctx, const void *const *inputs, void *const *outputs, int64_t batch,
                     layerc_observer observe, void *user);

    /* What the code was compiled for, e.g. "x86_64-linux-gnu, CPU haswell,
     * AVX2: 8 floats a vector, 16 registers", and the CPU features it relies
     * on ("sse3,...,avx2"; "" for the architecture's baseline). */
    const char *target;
    const char *cpu_features;
    /* NULL when this machine's CPU has all of cpu_features; else why not
     * ("this machine's CPU lacks amx-fp16, which ... was compiled for ...").
     * create() then returns NULL and error(NULL) returns this text, so a
     * library built for a newer CPU fails with a message, not SIGILL. */
    const char *(*cpu_unsupported)(void);
} layerc_model_desc;

const layerc_model_desc *layerc_model(void);

#ifdef __cplusplus
}
#endif

#endif
