/* model_generator.h - random valid models in the layer language, for the
 * differential tester (fuzz_models.c).
 *
 * Two forms.  A stack model is a random walk over the layers the back end lowers: each step
 * picks a layer that accepts the current shape ([N, C, H, W], [N, C, L] or
 * [N, F]) with random legal options (kernel, stride, padding and its modes,
 * dilation, groups, ceil_mode, bias on and off, BatchNorm with or without
 * running statistics and affine, ...), tracking the shape as PyTorch
 * computes it, so the text is a model PyTorch would build.  Sizes are odd
 * as often as even; the batch is a name or fixed (1 or more).  Common
 * motifs (Conv2d + BatchNorm2d + activation, wide 3x3 convolutions that take
 * Winograd) are drawn more often than chance would.  The activations come
 * from the layer table itself, so a new one is generated without a change here.
 *
 * A graph model (about a third) is an nn.Module: submodules, Sequential(...)
 * of layers, blocks with parameters (residual, inverted residual, squeeze-
 * excite, Fire, MLP and gated blocks, instantiated several times with
 * different arguments) and a forward section whose values form a DAG: the
 * same walk on a current value, plus residual adds (skips across several
 * layers, from the model input, both sides convolutions, projections), a * b
 * and a + b with PyTorch's broadcasting ([N, C, H, W] * [N, C, 1, 1], ...),
 * cat of branches with different sizes, Bilinear on two branches, a
 * submodule called twice, values read by several consumers and after an add.
 */
#ifndef LAYERC_MODEL_GENERATOR_H
#define LAYERC_MODEL_GENERATOR_H

#include <stddef.h>
#include <stdint.h>

enum { GENERATED_MODEL_MAX = 16384 };

/* Writes the model of `seed` into text (GENERATED_MODEL_MAX bytes); returns its layer count. */
int generate_model(uint64_t seed, char *text);

/* The mix: the percentage of models in the graph form, and a graph model's size in steps (at most;
 * its convolution budget grows with it).  generate_model uses the defaults. */
enum { GENERATED_GRAPH_PERCENT = 33, GENERATED_GRAPH_STEPS = 5, GENERATED_GRAPH_STEPS_MAX = 40 };
typedef struct GeneratorMix {
    int graph_percent, graph_steps;
} GeneratorMix;

int generate_model_mix(uint64_t seed, char *text, const GeneratorMix *mix);

#endif
