/* weights.h - a model's parameter values: read from a .safetensors file
 * (PyTorch state_dict keys) or drawn at random the way PyTorch's default
 * initialisation draws them, then bound to the graph's Params (Param.data).
 *
 * Errors about the weights file are reported through a Diag whose source is
 * that file (no line:col; the message names the key and both shapes).
 */
#ifndef LAYERC_WEIGHTS_H
#define LAYERC_WEIGHTS_H

#include <stdint.h>

#include "diag.h"
#include "graph.h"

typedef struct WeightTensor {
    const char *key;
    Shape shape;
    DType dtype;       /* DT_F32 (F32, F16, BF16, F64 converted) or DT_I64 */
    float *f32;        /* DT_F32: numel floats */
    int64_t *i64;      /* DT_I64 */
    bool used;         /* set by weights_bind */
} WeightTensor;

typedef struct WeightSet {
    WeightTensor *tensors;
    int count;
} WeightSet;

/* Reads a safetensors file fully into the arena.  A malformed file (bad
 * header length, bad JSON, offsets out of range or overlapping, unknown
 * dtype, shape not matching its byte size) is an error, never a crash. */
bool weights_read_safetensors(Arena *a, Diag *d, const char *path, WeightSet *out);

/* Points every Param of g at its tensor in w.  A missing key or a shape
 * mismatch is an error naming the key and both shapes; an unused key is a
 * warning.  i64 buffers (num_batches_tracked) are optional. */
bool weights_bind(Diag *d, Graph *g, WeightSet *w);

/* Fills every Param of g deterministically from seed, with PyTorch's default
 * initialisation distributions (kaiming-uniform weights, uniform biases
 * bounded by 1/sqrt(fan_in), Embedding N(0, 1), ...), except what PyTorch
 * sets to constants: BatchNorm and LayerNorm weight ~ U(0.5, 1.5), bias and
 * running_mean ~ U(-0.5, 0.5), running_var ~ U(0.5, 2), attention biases
 * ~ U(-0.2, 0.2), so that no pass is tested with weights it leaves unchanged. */
void weights_init_random(Arena *a, Graph *g, uint64_t seed);

#endif
