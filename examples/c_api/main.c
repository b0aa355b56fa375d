/* main.c - the C side of examples/c_api: runs the compiled CIFAR-10 net on a
 * batch of images and prints each one's top class.
 *
 *   usage: ./classify [IMAGES.f32]   (default input.f32: raw float32,
 *          N x 3 x 32 x 32, as export_weights.py writes it; up to 1024 images)
 *
 * Everything it needs comes from cifar10.h, which
 * `layerc build ../cifar10.nn --header cifar10.h` writes. */
#include <stdio.h>
#include <stdlib.h>

#include "cifar10.h"

enum { IN = CIFAR10_INPUT_SAMPLE_ELEMENTS, OUT = CIFAR10_OUTPUT_SAMPLE_ELEMENTS, MAX_BATCH = 1024 };

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "input.f32";
    float *input = malloc(sizeof(float) * IN * MAX_BATCH), *output = malloc(sizeof(float) * OUT * MAX_BATCH);
    FILE *f = fopen(path, "rb");
    int64_t batch = f && input ? (int64_t)fread(input, sizeof(float) * IN, MAX_BATCH, f) : 0;
    if (f) fclose(f);
    if (batch == 0 || !output) {
        fprintf(stderr, "%s: no complete image (%d floats) to read\n", path, IN);
        free(input);
        free(output);
        return 1;
    }

    layerc_ctx *ctx = cifar10_create(); /* NULL only when out of memory */
    int rc = ctx ? cifar10_run(ctx, input, output, batch) : -1;
    if (rc != 0) fprintf(stderr, "cifar10: %s\n", ctx ? cifar10_error(ctx) : "out of memory");
    for (int64_t i = 0; rc == 0 && i < batch; i++)
        printf("image %lld: class %d\n", (long long)i, argmax(output + i * OUT, OUT));
    cifar10_destroy(ctx);
    free(input);
    free(output);
    return rc == 0 ? 0 : 1;
}
