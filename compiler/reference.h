/* reference.h - the reference interpreter: a naive, obviously correct C
 * implementation of every layer the back end lowers, written straight from
 * PyTorch's definitions.  It is the oracle of `layerc test`, so it shares no
 * code with the generated kernels (lower_*.c).
 */
#ifndef LAYERC_REFERENCE_H
#define LAYERC_REFERENCE_H

#include "graph.h"
#include "progress.h"

/* Runs g on `input` (`inputs` for reference_run_perturbed: one per model input, in declaration order: f32, or
 * i64 for a token-id input) for `batch` samples (the run-time batch when the
 * inputs' first dimension is named; otherwise it must equal the declared
 * one).  outputs[i] receives a freshly arena-allocated f32 buffer holding
 * node i's output (an input node's is its input converted to float); outputs
 * must have g->nodes.len slots.  Weights must be bound (Param.data).
 * Returns false with a message in err for a layer it cannot evaluate. */
bool reference_run(Arena *a, const Graph *g, const void *input, int64_t batch, float **outputs, char *err, size_t errsize);
/* reference_run with every layer's output multiplied by 1 + noise * U(-1, 1)
 * (drawn from seed; noise 0: unchanged): how much rounding errors of that size change the
 * output tells how well conditioned the model is on this input.  Each layer is
 * a step of `progress` (NULL: none). */
bool reference_run_perturbed(Arena *a, const Graph *g, const void *const *inputs, int64_t batch, double noise, uint64_t seed,
                             Progress *progress, float **outputs, char *err, size_t errsize);

/* The shape of node n's output for a given run-time batch. */
Shape reference_shape(const Node *n, int64_t batch);

#endif
