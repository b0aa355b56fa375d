/* model_generator.h - random valid models in the layer language, for the
 * differential tester (fuzz_models.c).
 *
 * A model is a random walk over the layers the back end lowers: each step
 * picks a layer that accepts the current shape ([N, C, H, W], [N, C, L] or
 * [N, F]) with random legal options (kernel, stride, padding and its modes,
 * dilation, groups, ceil_mode, bias on and off, BatchNorm with or without
 * running statistics and affine, ...), tracking the shape as PyTorch
 * computes it, so the text is a model PyTorch would build.  Sizes are odd
 * as often as even; the batch is a name or fixed (1 or more).  Common
 * motifs (Conv2d + BatchNorm2d + activation, wide 3x3 convolutions that take
 * Winograd) are drawn more often than chance would.  The activations come
 * from the layer table itself, so a new one is generated without a change here.
 */
#ifndef LAYERC_MODEL_GENERATOR_H
#define LAYERC_MODEL_GENERATOR_H

#include <stddef.h>
#include <stdint.h>

enum { GENERATED_MODEL_MAX = 8192 };

/* Writes the model of `seed` into text (GENERATED_MODEL_MAX bytes); returns its layer count. */
int generate_model(uint64_t seed, char *text);

#endif
