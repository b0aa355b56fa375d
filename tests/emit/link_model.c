/* link_model.c - a C program linked with the object or archive of
 * `layerc build --emit obj|static` (tests/run.sh, suite cross): it includes
 * the generated header, runs the model through its model-named functions on
 * the input .npy and writes the output as raw float32 values.
 *   cc -Iruntime -DMODEL=conv2dbasic -include model.h link_model.c model.o -lm -lpthread
 *   ./a.out INPUT.npy OUTPUT.bin
 * A second model (-DOTHER=prefix) linked into the same program is created
 * too: the objects keep their runtimes' symbols to themselves. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layerc.h"

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(MODEL, name)

/* The .npy's data: after the 10-byte preamble and the header (version 1). */
static char *read_npy_data(const char *path, long *bytes)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *all = malloc((size_t)size);
    if (!all || fread(all, 1, (size_t)size, f) != (size_t)size || size < 10 || memcmp(all, "\x93NUMPY\x01", 7) != 0) {
        fclose(f);
        free(all);
        return NULL;
    }
    fclose(f);
    long start = 10 + ((unsigned char)all[8] | (unsigned char)all[9] << 8);
    *bytes = size - start;
    memmove(all, all + start, (size_t)*bytes);
    return all;
}

static long elements(const layerc_tensor_info *t)
{
    long n = 1;
    for (int i = t->batch_dim == 0 ? 1 : 0; i < t->rank; i++) n *= (long)t->dims[i];
    return n;
}

int main(int argc, char **argv)
{
    long bytes;
    char *input = argc == 3 ? read_npy_data(argv[1], &bytes) : NULL;
    if (!input) {
        fprintf(stderr, "usage: %s INPUT.npy OUTPUT.bin (a version 1 .npy)\n", argv[0]);
        return 2;
    }
#ifdef OTHER
    layerc_ctx *other = CAT(OTHER, _create)();
    if (!other) return fprintf(stderr, "the second model's create failed\n"), 1;
    CAT(OTHER, _destroy)(other);
#endif
    const layerc_model_desc *m = FN(_model)();
    layerc_ctx *ctx = FN(_create)();
    if (!ctx) return fprintf(stderr, "create failed: %s\n", FN(_error)(NULL)), 1;
    long batch = m->input.batch_dim == 0 ? bytes / (long)sizeof(float) / elements(&m->input) : 1;
    long out_count = elements(&m->output) * batch;
    float *output = malloc((size_t)out_count * sizeof(float));
    if (FN(_run)(ctx, (const float *)input, output, m->input.batch_dim == 0 ? batch : 0) != 0)
        return fprintf(stderr, "run: %s\n", FN(_error)(ctx)), 1;
    FILE *f = fopen(argv[2], "wb");
    if (!f || fwrite(output, sizeof(float), (size_t)out_count, f) != (size_t)out_count || fclose(f) != 0) return 1;
    printf("model %s: batch %ld, %ld outputs\n", m->name, batch, out_count);
    FN(_destroy)(ctx);
    free(output);
    free(input);
    return 0;
}
