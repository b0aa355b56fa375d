/* test_reference.c - unit tests of the reference interpreter (compiler/reference.c).
 *
 * Each test writes a tiny model to a temporary .nn file, runs the real front
 * end on it, fills the parameters by hand, runs reference_run and compares
 * the output with values worked out by hand from PyTorch's definitions (the
 * arithmetic is in the comments).  Ends with "reference: N passed, M failed";
 * exits 1 when anything failed.
 *
 * Build (after make):
 *   cc -std=gnu11 -Wall -Wextra -Werror -Wshadow -Icompiler -Ibuild tests/reference/test_reference.c \
 *      compiler/reference.c build/<every .o but main.o> -lcjson -lm
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend.h"
#include "reference.h"

typedef struct Tally {
    int passed, failed;
} Tally;

/* One loaded model and its last run. */
typedef struct Case {
    Tally *tally;
    const char *name;
    Frontend fe;
    Graph *g;
    float **outputs;
    char err[512];
} Case;

static void record(Tally *t, bool ok, const char *name, const char *why)
{
    if (ok) {
        t->passed++;
        return;
    }
    t->failed++;
    printf("FAIL %s: %s\n", name, why);
}

/* Runs the front end on `text`; on errors prints them and records a failure.
 * Every f32 parameter is then filled with `fill`. */
static bool load(Case *c, Tally *t, const char *name, const char *text, float fill)
{
    memset(c, 0, sizeof *c);
    c->tally = t;
    c->name = name;
    char path[] = "/tmp/test_reference_XXXXXX.nn";
    int fd = mkstemps(path, 3);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        record(t, false, name, "cannot write a temporary model file");
        if (fd >= 0) close(fd), unlink(path);
        return false;
    }
    close(fd);
    FILE *diag = tmpfile();
    bool ok = frontend_run(&c->fe, path, diag ? diag : stderr);
    unlink(path);
    if (!ok && diag) {
        rewind(diag);
        char line[512];
        while (fgets(line, sizeof line, diag)) printf("    %s", line);
    }
    if (diag) fclose(diag);
    if (!ok) {
        record(t, false, name, "the front end rejected the model");
        frontend_free(&c->fe);
        return false;
    }
    c->g = c->fe.graph;
    for (int i = 0; i < c->g->nodes.len; i++) {
        Node *n = c->g->nodes.items[i];
        for (int k = 0; k < n->nparams; k++) {
            Param *p = &n->params[k];
            if (p->dtype != DT_F32) continue;
            int64_t count = shape_numel(&p->shape);
            p->data = arena_alloc_array(&c->fe.arena, (size_t)(count ? count : 1), sizeof(float));
            for (int64_t j = 0; j < count; j++) p->data[j] = fill;
        }
    }
    return true;
}

static void unload(Case *c)
{
    if (c->g) frontend_free(&c->fe);
    c->g = NULL;
}

/* The state_dict tensor `key` (a test bug when there is none). */
static Param *find_param(Case *c, const char *key)
{
    for (int i = 0; i < c->g->nodes.len; i++) {
        Node *n = c->g->nodes.items[i];
        for (int k = 0; k < n->nparams; k++)
            if (strcmp(n->params[k].key, key) == 0) return &n->params[k];
    }
    fprintf(stderr, "test bug: %s: no parameter %s\n", c->name, key);
    exit(2);
}

/* Sets the state_dict tensor `key` (its size must match). */
static void set_param(Case *c, const char *key, const float *values, size_t count)
{
    Param *p = find_param(c, key);
    if ((int64_t)count != shape_numel(&p->shape)) {
        fprintf(stderr, "test bug: %s: %s has %lld values, given %zu\n", c->name, key, (long long)shape_numel(&p->shape), count);
        exit(2);
    }
    memcpy(p->data, values, count * sizeof(float));
}

#define FLOATS(...) ((const float[]){__VA_ARGS__}), sizeof((const float[]){__VA_ARGS__}) / sizeof(float)
#define VALUES(...) ((const float[]){__VA_ARGS__})
#define DOUBLES(...) ((const double[]){__VA_ARGS__}), sizeof((const double[]){__VA_ARGS__}) / sizeof(double)
#define IDS(...) ((const int64_t[]){__VA_ARGS__})
#define SET(c, key, ...) set_param(c, key, FLOATS(__VA_ARGS__))

/* Runs the model; returns the model output, or NULL (a failure recorded) when reference_run fails. */
static const float *run(Case *c, const void *input, int64_t batch)
{
    c->outputs = arena_alloc_array(&c->fe.arena, (size_t)c->g->nodes.len, sizeof *c->outputs);
    if (!reference_run(&c->fe.arena, c->g, input, batch, c->outputs, c->err, sizeof c->err)) {
        record(c->tally, false, c->name, c->err);
        return NULL;
    }
    return c->outputs[c->g->output->id];
}

/* got must hold exactly want[0..count) (within tol) and the model output must have count values. */
static void expect_output(Case *c, const float *got, int64_t batch, double tol, const double *want, size_t count)
{
    if (!got) return;
    Shape s = reference_shape(c->g->output, batch);
    char why[256];
    if (shape_numel(&s) != (int64_t)count) {
        snprintf(why, sizeof why, "output has %lld values, expected %zu", (long long)shape_numel(&s), count);
        record(c->tally, false, c->name, why);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        if (fabs(got[i] - want[i]) <= tol) continue;
        snprintf(why, sizeof why, "value %zu is %.7g, expected %.7g", i, got[i], want[i]);
        record(c->tally, false, c->name, why);
        return;
    }
    record(c->tally, true, c->name, NULL);
}

/* Runs a loaded case on `input` and checks the output. */
#define CHECK(c, input, batch, tol, ...) expect_output(c, run(c, input, batch), batch, tol, DOUBLES(__VA_ARGS__))

/* A model whose body is one layer on an input declared as `decl`, parameters all `fill`. */
static bool load_layer(Case *c, Tally *t, const char *name, const char *decl, const char *layer, float fill)
{
    char text[1024];
    snprintf(text, sizeof text, "model T {\n    input x: %s\n    l = %s\n}\n", decl, layer);
    return load(c, t, name, text, fill);
}

static const float TUTORIAL_5X5[25] = {1, 2, 0, 3, 1, 0, 1, 2, 3, 1, 1, 2, 1, 0, 0, 5, 2, 3, 1, 1, 2, 1, 0, 1, 1};

static const float ARANGE_16[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/* ---- pooling ---- */

static void test_pooling(Tally *t)
{
    Case c;
    /* The PyTorch tutorial's toy: 3x3 windows, stride 3; ceil_mode keeps the partial windows. */
    if (load_layer(&c, t, "maxpool ceil_mode", "f32[1, 1, 5, 5]", "MaxPool2d(3, ceil_mode=True)", 0))
        CHECK(&c, TUTORIAL_5X5, 1, 0, 2, 3, 5, 1), unload(&c);
    if (load_layer(&c, t, "maxpool floor", "f32[1, 1, 5, 5]", "MaxPool2d(3)", 0))
        CHECK(&c, TUTORIAL_5X5, 1, 0, 2), unload(&c);
    /* x[y][x] = 4y + x; k2 s2 pad1: windows cover rows {-1,0},{1,2},{3,4} -> max at rows/cols 0, 2, 3. */
    if (load_layer(&c, t, "maxpool padding", "f32[1, 1, 4, 4]", "MaxPool2d(2, stride=2, padding=1)", 0))
        CHECK(&c, ARANGE_16, 1, 0, 0, 2, 3, 8, 10, 11, 12, 14, 15), unload(&c);
    /* dilation 2: taps (y,x) (y,x+2) (y+2,x) (y+2,x+2); the max is 4(y+2) + x+2. */
    if (load_layer(&c, t, "maxpool dilation", "f32[1, 1, 4, 4]", "MaxPool2d(2, stride=1, dilation=2)", 0))
        CHECK(&c, ARANGE_16, 1, 0, 10, 11, 14, 15), unload(&c);
    /* Padding is -inf, not 0: all-negative input keeps its maximum. */
    if (load_layer(&c, t, "maxpool negative", "f32[1, 1, 1, 2]", "MaxPool2d((1, 2), stride=1, padding=(0, 1))", 0))
        CHECK(&c, VALUES(-3, -5), 1, 0, -3, -3, -5), unload(&c);

    /* AvgPool2d(3, 2, 1, ceil_mode=True) on 4x4 arange: windows start at -1, 1, 3 and the last is
     * clipped to the padded end 5, so per axis the input rows are {0,1}, {1,2,3}, {3} and the
     * count_include_pad sizes 3, 3, 2.  (0,0): sum 0+1+4+5 = 10 over 9; (0,1): 24 over 9;
     * (0,2): 3+7 = 10 over 6; ... (2,2): x[3][3] = 15 over 2*2 = 4.  (These match torch 1.13's output.) */
    if (load_layer(&c, t, "avgpool ceil count_include_pad", "f32[1, 1, 4, 4]", "AvgPool2d(3, 2, 1, ceil_mode=True)", 0))
        CHECK(&c, ARANGE_16, 1, 1e-5, 10. / 9, 24. / 9, 10. / 6, 51. / 9, 90. / 9, 33. / 6, 25. / 6, 42. / 6, 15. / 4), unload(&c);
    /* count_include_pad=False divides by the real positions: 10/4, 24/6, 10/2, 51/6, 90/9, 33/6, 25/2, 42/3, 15/1. */
    if (load_layer(&c, t, "avgpool exclude pad", "f32[1, 1, 4, 4]", "AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)", 0))
        CHECK(&c, ARANGE_16, 1, 1e-5, 10. / 4, 24. / 6, 10. / 2, 51. / 6, 90. / 9, 33. / 3, 25. / 2, 42. / 3, 15. / 1), unload(&c);
    if (load_layer(&c, t, "avgpool divisor_override", "f32[1, 1, 4, 4]", "AvgPool2d(3, 2, 1, ceil_mode=True, divisor_override=2)", 0))
        CHECK(&c, ARANGE_16, 1, 1e-5, 5, 12, 5, 25.5, 45, 16.5, 12.5, 21, 7.5), unload(&c);

    /* Adaptive 5 -> 3: windows [0,2) [1,4) [3,5) of 1..5 -> 1.5, 3, 4.5 */
    if (load_layer(&c, t, "adaptive avgpool", "f32[1, 1, 1, 5]", "AdaptiveAvgPool2d((1, 3))", 0))
        CHECK(&c, VALUES(1, 2, 3, 4, 5), 1, 1e-6, 1.5, 3, 4.5), unload(&c);
    /* Unbatched [C, H, W], global pooling: mean of 0..15 = 7.5 */
    if (load_layer(&c, t, "adaptive avgpool unbatched", "f32[1, 4, 4]", "AdaptiveAvgPool2d(1)", 0))
        CHECK(&c, ARANGE_16, 1, 1e-6, 7.5), unload(&c);
}

/* ---- Conv2d ---- */

static void test_conv(Tally *t)
{
    Case c;
    /* 1x1 conv: 2*x0 - x1 + 0.5 */
    if (load_layer(&c, t, "conv 1x1", "f32[1, 2, 2, 2]", "Conv2d(2, 1, 1)", 0)) {
        SET(&c, "l.weight", 2, -1);
        SET(&c, "l.bias", 0.5);
        CHECK(&c, VALUES(1, 2, 3, 4, 5, 6, 7, 8), 1, 1e-6, -2.5, -1.5, -0.5, 0.5);
        unload(&c);
    }
    /* 3x3 of ones over ones with zero padding 1 counts the in-bounds taps. */
    if (load_layer(&c, t, "conv zero padding", "f32[1, 1, 3, 3]", "Conv2d(1, 1, 3, padding=1, bias=False)", 1))
        CHECK(&c, VALUES(1, 1, 1, 1, 1, 1, 1, 1, 1), 1, 1e-6, 4, 6, 4, 6, 9, 6, 4, 6, 4), unload(&c);
    /* Padding modes on the row [1, 2, 3] padded by 2 each side, identity kernel. */
    if (load_layer(&c, t, "conv reflect", "f32[1, 1, 1, 3]", "Conv2d(1, 1, 1, padding=(0, 2), padding_mode='reflect', bias=False)", 1))
        CHECK(&c, VALUES(1, 2, 3), 1, 0, 3, 2, 1, 2, 3, 2, 1), unload(&c);
    if (load_layer(&c, t, "conv replicate", "f32[1, 1, 1, 3]", "Conv2d(1, 1, 1, padding=(0, 2), padding_mode='replicate', bias=False)", 1))
        CHECK(&c, VALUES(1, 2, 3), 1, 0, 1, 1, 1, 2, 3, 3, 3), unload(&c);
    if (load_layer(&c, t, "conv circular", "f32[1, 1, 1, 3]", "Conv2d(1, 1, 1, padding=(0, 2), padding_mode='circular', bias=False)", 1))
        CHECK(&c, VALUES(1, 2, 3), 1, 0, 2, 3, 1, 2, 3, 1, 2), unload(&c);
    if (load_layer(&c, t, "conv zeros padding mode", "f32[1, 1, 1, 3]", "Conv2d(1, 1, 1, padding=(0, 2), bias=False)", 1))
        CHECK(&c, VALUES(1, 2, 3), 1, 0, 0, 0, 1, 2, 3, 0, 0), unload(&c);
    /* 'same' with an even kernel: total padding 1 goes at the end: out[i] = x[i] + 10 x[i+1] */
    if (load_layer(&c, t, "conv same asymmetric", "f32[1, 1, 1, 3]", "Conv2d(1, 1, (1, 2), padding='same', bias=False)", 0)) {
        SET(&c, "l.weight", 1, 10);
        CHECK(&c, VALUES(1, 2, 3), 1, 1e-5, 21, 32, 3);
        unload(&c);
    }
    /* 'same' + reflect, even kernel: padded row [1 2 3 | 2]: out = [1+20, 2+30, 3+20] */
    if (load_layer(&c, t, "conv same reflect", "f32[1, 1, 1, 3]", "Conv2d(1, 1, (1, 2), padding='same', padding_mode='reflect', bias=False)", 0)) {
        SET(&c, "l.weight", 1, 10);
        CHECK(&c, VALUES(1, 2, 3), 1, 1e-5, 21, 32, 23);
        unload(&c);
    }
    /* stride 2, dilation 2, kernel (1,2) on 1..6: span 3, out 2: x0+x2 = 4, x2+x4 = 8 */
    if (load_layer(&c, t, "conv stride dilation", "f32[1, 1, 1, 6]", "Conv2d(1, 1, (1, 2), stride=(1, 2), dilation=(1, 2), bias=False)", 1))
        CHECK(&c, VALUES(1, 2, 3, 4, 5, 6), 1, 1e-6, 4, 8), unload(&c);
    /* groups=2 on an unbatched [2, 1, 2] input: channel 0 * 2 + 1, channel 1 * 3 - 1 */
    if (load_layer(&c, t, "conv groups unbatched", "f32[2, 1, 2]", "Conv2d(2, 2, 1, groups=2)", 0)) {
        SET(&c, "l.weight", 2, 3);
        SET(&c, "l.bias", 1, -1);
        CHECK(&c, VALUES(1, 2, 3, 4), 2, 1e-6, 3, 5, 8, 11); /* unbatched: "batch" is the fixed dims[0] */
        unload(&c);
    }
    /* A full 2->2 conv: out[o] = sum_c w[o][c] * x[c] (1x1 kernel), batch of 2 with a run-time batch. */
    if (load_layer(&c, t, "conv dynamic batch", "f32[N, 2, 1, 1]", "Conv2d(2, 2, 1, bias=False)", 0)) {
        SET(&c, "l.weight", 1, 2, 3, 4);
        CHECK(&c, VALUES(1, 1, 1, -1), 2, 1e-6, 3, 7, -1, -1);
        unload(&c);
    }
}

/* ---- Linear, activations, softmax ---- */

static void test_dense(Tally *t)
{
    Case c;
    /* W = [[1,2,3],[4,5,6]], b = [0.5,-1]; x = [1,0,-1] -> [-1.5, -3]; [2,1,0] -> [4.5, 12] */
    if (load_layer(&c, t, "linear", "f32[N, 3]", "Linear(3, 2)", 0)) {
        SET(&c, "l.weight", 1, 2, 3, 4, 5, 6);
        SET(&c, "l.bias", 0.5, -1);
        CHECK(&c, VALUES(1, 0, -1, 2, 1, 0), 2, 1e-6, -1.5, -3, 4.5, 12);
        unload(&c);
    }
    if (load_layer(&c, t, "linear rank 3 no bias", "f32[1, 2, 3]", "Linear(3, 2, bias=False)", 0)) {
        SET(&c, "l.weight", 1, 2, 3, 4, 5, 6);
        CHECK(&c, VALUES(1, 0, -1, 2, 1, 0), 1, 1e-6, -2, -2, 4, 13);
        unload(&c);
    }
    const float *x = VALUES(-1, 0, 1, 7);
    if (load_layer(&c, t, "relu", "f32[4]", "ReLU()", 0)) CHECK(&c, x, 4, 0, 0, 0, 1, 7), unload(&c);
    if (load_layer(&c, t, "relu6", "f32[4]", "ReLU6()", 0)) CHECK(&c, x, 4, 0, 0, 0, 1, 6), unload(&c);
    if (load_layer(&c, t, "leakyrelu", "f32[4]", "LeakyReLU(0.1)", 0)) CHECK(&c, x, 4, 1e-7, -0.1, 0, 1, 7), unload(&c);
    /* sigmoid(1) = 0.7310585786, tanh(1) = 0.7615941560, Phi(1) = 0.8413447461,
     * tanh-GELU(1) = 0.5 (1 + tanh(sqrt(2/pi) * 1.044715)) = 0.8411919906, SiLU(1) = sigmoid(1) */
    if (load_layer(&c, t, "sigmoid", "f32[4]", "Sigmoid()", 0))
        CHECK(&c, x, 4, 1e-6, 1 - 0.7310585786, 0.5, 0.7310585786, 0.9990889488), unload(&c);
    if (load_layer(&c, t, "tanh", "f32[4]", "Tanh()", 0)) CHECK(&c, x, 4, 1e-6, -0.7615941560, 0, 0.7615941560, 0.9999983369), unload(&c);
    if (load_layer(&c, t, "gelu", "f32[4]", "GELU()", 0)) CHECK(&c, x, 4, 1e-6, 0.8413447461 - 1, 0, 0.8413447461, 7), unload(&c);
    if (load_layer(&c, t, "gelu tanh", "f32[4]", "GELU(approximate='tanh')", 0))
        CHECK(&c, x, 4, 1e-6, 0.8411919906 - 1, 0, 0.8411919906, 7), unload(&c);
    if (load_layer(&c, t, "silu", "f32[4]", "SiLU()", 0)) CHECK(&c, x, 4, 1e-6, -(1 - 0.7310585786), 0, 0.7310585786, 6.9936227), unload(&c);
    if (load_layer(&c, t, "dropout is identity", "f32[4]", "Dropout(0.5)", 0)) CHECK(&c, x, 4, 0, -1, 0, 1, 7), unload(&c);

    /* softmax([1,2,3]) = [0.0900306, 0.2447285, 0.6652410]; log of it = [-2.4076060, -1.4076060, -0.4076060];
     * [1000, 1000, 1000] needs the max subtracted: 1/3 each. */
    if (load_layer(&c, t, "softmax", "f32[2, 3]", "Softmax(dim=1)", 0))
        CHECK(&c, VALUES(1, 2, 3, 1000, 1000, 1000), 2, 1e-6, 0.0900306, 0.2447285, 0.6652410, 1. / 3, 1. / 3, 1. / 3), unload(&c);
    if (load_layer(&c, t, "logsoftmax", "f32[2, 3]", "LogSoftmax(dim=-1)", 0))
        CHECK(&c, VALUES(1, 2, 3, 1000, 1000, 1000), 2, 1e-5, -2.4076060, -1.4076060, -0.4076060, -log(3), -log(3), -log(3)), unload(&c);
    /* dim 0 of [2, 1, 2]: pairs (1, 1) -> 0.5 each, (0, ln 3) -> 0.25, 0.75 */
    if (load_layer(&c, t, "softmax dim 0", "f32[2, 1, 2]", "Softmax(dim=0)", 0))
        CHECK(&c, VALUES(1, 0, 1, (float)log(3.0)), 2, 1e-6, 0.5, 0.25, 0.5, 0.75), unload(&c);
    /* Every slice of a softmax over a middle dim sums to 1. */
    if (load_layer(&c, t, "softmax sums to 1", "f32[2, 3, 2]", "Softmax(dim=1)", 0)) {
        const float *y = run(&c, VALUES(0.3, -2, 5, 1, 0, 0, 9, 9, -9, 2, 0.1, 0.2), 2);
        bool ok = y != NULL;
        for (int n = 0; ok && n < 2; n++)
            for (int i = 0; i < 2; i++) ok = ok && fabs(y[n * 6 + i] + y[n * 6 + 2 + i] + y[n * 6 + 4 + i] - 1.0) < 1e-6;
        if (y) record(t, ok, c.name, "a slice does not sum to 1");
        unload(&c);
    }
    /* Flatten copies: [2, 2, 1] -> [2, 2] */
    if (load_layer(&c, t, "flatten", "f32[N, 2, 1]", "Flatten()", 0)) CHECK(&c, VALUES(1, 2, 3, 4), 2, 0, 1, 2, 3, 4), unload(&c);
}

/* ---- normalisation ---- */

static void test_norm(Tally *t)
{
    Case c;
    /* (x - mean) / sqrt(var + 1e-5) * w + b with mean [1, 2], var [4, 9], w [2, 1], b [0, 1]:
     * channel 0: x = 3 -> 2 * 2/sqrt(4.00001) = 1.9999950; channel 1: x = 5 -> 3/sqrt(9.00001) + 1 = 1.9999983 */
    if (load_layer(&c, t, "batchnorm2d running stats", "f32[1, 2, 1, 2]", "BatchNorm2d(2)", 0)) {
        SET(&c, "l.running_mean", 1, 2);
        SET(&c, "l.running_var", 4, 9);
        SET(&c, "l.weight", 2, 1);
        SET(&c, "l.bias", 0, 1);
        CHECK(&c, VALUES(3, 1, 5, -1), 1, 1e-5, 1.9999950, 0, 1.9999983, 0.0000006);
        unload(&c);
    }
    /* Batch statistics over [4, 1]: mean 2.5, biased var 1.25 -> (x - 2.5)/sqrt(1.25 + 1e-5) */
    if (load_layer(&c, t, "batchnorm1d batch stats", "f32[N, 1]", "BatchNorm1d(1, affine=False, track_running_stats=False)", 0))
        CHECK(&c, VALUES(1, 2, 3, 4), 4, 1e-5, -1.3416354, -0.4472118, 0.4472118, 1.3416354), unload(&c);
    /* Batch statistics over N and L of [2, 1, 2]: values 1..4 again; weight 1, bias 1. */
    if (load_layer(&c, t, "batchnorm1d 3-D batch stats", "f32[2, 1, 2]", "BatchNorm1d(1, track_running_stats=False)", 1))
        CHECK(&c, VALUES(1, 2, 3, 4), 2, 1e-5, 1 - 1.3416354, 1 - 0.4472118, 1 + 0.4472118, 1 + 1.3416354), unload(&c);
    /* LayerNorm(3) of [1, 2, 3]: mean 2, var 2/3 -> ±1.2247357; weight [1,2,3] bias [0,0,1] */
    if (load_layer(&c, t, "layernorm", "f32[N, 3]", "LayerNorm(3)", 0)) {
        SET(&c, "l.weight", 1, 2, 3);
        SET(&c, "l.bias", 0, 0, 1);
        CHECK(&c, VALUES(1, 2, 3, 4, 4, 4), 2, 1e-5, -1.2247357, 0, 1 + 3 * 1.2247357, 0, 0, 1);
        unload(&c);
    }
    /* LayerNorm((2, 2)) without affine: the last two dims together; 1..4 as above. */
    if (load_layer(&c, t, "layernorm 2 dims", "f32[1, 2, 2]", "LayerNorm((2, 2), elementwise_affine=False)", 0))
        CHECK(&c, VALUES(1, 2, 3, 4), 1, 1e-5, -1.3416354, -0.4472118, 0.4472118, 1.3416354), unload(&c);
}

/* ---- Embedding, EmbeddingBag ---- */

static void test_embedding(Tally *t)
{
    Case c;
    if (load_layer(&c, t, "embedding", "i64[N, 3]", "Embedding(4, 2)", 0)) {
        SET(&c, "l.weight", 0, 0, 1, 2, 3, 4, 5, 6);
        CHECK(&c, IDS(2, 0, 3), 1, 0, 3, 4, 0, 0, 5, 6);
        /* outputs[0] is the ids as floats */
        record(t, c.outputs && c.outputs[0][0] == 2 && c.outputs[0][2] == 3, "embedding input as floats", "outputs[0] is wrong");
        /* An index past the table is an error naming it. */
        bool ok = !reference_run(&c.fe.arena, c.g, IDS(1, 4, 0), 1, c.outputs, c.err, sizeof c.err);
        record(t, ok && strstr(c.err, "index 4") != NULL, "embedding out of range", c.err);
        ok = !reference_run(&c.fe.arena, c.g, IDS(-1, 0, 0), 1, c.outputs, c.err, sizeof c.err);
        record(t, ok && strstr(c.err, "index -1") != NULL, "embedding negative index", c.err);
        unload(&c);
    }
    /* max_norm=5: [3,4] has norm 5 (kept); [5,6] has norm 7.8102497 -> * 5/(7.8102497 + 1e-7) = [3.2009220, 3.8411063] */
    if (load_layer(&c, t, "embedding max_norm", "i64[2]", "Embedding(4, 2, max_norm=5)", 0)) {
        SET(&c, "l.weight", 0, 0, 1, 2, 3, 4, 5, 6);
        CHECK(&c, IDS(3, 2), 2, 1e-5, 3.2009220, 3.8411063, 3, 4);
        const float *w = node_param(c.g->output, "weight")->data;
        record(t, w[6] == 5 && w[7] == 6, "embedding max_norm leaves the weights", "Param.data was modified");
        unload(&c);
    }
    /* Embedding after Flatten of the ids still reads the original ids. */
    if (load(&c, t, "embedding after flatten", "model T {\n input x: i64[1, 2, 1]\n Flatten()\n e = Embedding(20000000, 1)\n}\n", 0)) {
        find_param(&c, "e.weight")->data[16777217] = 7;
        CHECK(&c, IDS(16777217, 0), 1, 0, 7, 0);
        unload(&c);
    }
    /* weight rows [0,1] [2,3] [4,5] [6,7] [8,9]; padding_idx 0 is skipped and not counted:
     * bag [0,1,2] -> sum [6,8], mean [3,4], max [4,5]; bag [0,0,0] is empty -> zeros (matches torch 1.13). */
    const char *modes[3] = {"EmbeddingBag(5, 2, mode='sum', padding_idx=0)", "EmbeddingBag(5, 2, padding_idx=0)",
                            "EmbeddingBag(5, 2, mode='max', padding_idx=0)"};
    const char *names[3] = {"embeddingbag sum", "embeddingbag mean", "embeddingbag max"};
    const double want[3][4] = {{6, 8, 0, 0}, {3, 4, 0, 0}, {4, 5, 0, 0}};
    for (int m = 0; m < 3; m++)
        if (load_layer(&c, t, names[m], "i64[2, 3]", modes[m], 0)) {
            SET(&c, "l.weight", 0, 1, 2, 3, 4, 5, 6, 7, 8, 9);
            expect_output(&c, run(&c, IDS(0, 1, 2, 0, 0, 0), 2), 2, 1e-6, want[m], 4);
            unload(&c);
        }
    /* Without padding_idx, index 0 counts: mean of rows 0, 1, 1 = [4/3, 7/3] */
    if (load_layer(&c, t, "embeddingbag mean no padding", "i64[1, 3]", "EmbeddingBag(5, 2)", 0)) {
        SET(&c, "l.weight", 0, 1, 2, 3, 4, 5, 6, 7, 8, 9);
        CHECK(&c, IDS(0, 1, 1), 1, 1e-6, 4. / 3, 7. / 3);
        unload(&c);
    }
}

/* ---- RNN, LSTM, GRU ---- */

static void test_recurrent(Tally *t)
{
    Case c;
    const float *seq3 = VALUES(1, 1, 1);
    if (load_layer(&c, t, "lstm zero weights", "f32[3, 2, 4]", "LSTM(4, 5)", 0)) {
        float in[24];
        for (int i = 0; i < 24; i++) in[i] = (float)i - 7;
        const float *y = run(&c, in, 3);
        bool ok = y != NULL;
        for (int i = 0; ok && i < 3 * 2 * 5; i++) ok = y[i] == 0;
        if (y) record(t, ok, c.name, "output is not all zeros");
        unload(&c);
    }
    /* Biases only, b_ih = [i 0, f 0, g 1, o 0]: i = f = o = 1/2, g = tanh 1.
     * c1 = tanh(1)/2 = 0.3807971, h1 = tanh(c1)/2 = 0.1816997; c2 = c1/2 + tanh(1)/2 = 0.5711956, h2 = tanh(c2)/2 = 0.2581184 */
    if (load_layer(&c, t, "lstm biases", "f32[2, 1]", "LSTM(1, 1)", 0)) {
        SET(&c, "l.bias_ih_l0", 0, 0, 1, 0);
        CHECK(&c, VALUES(5, -5), 2, 1e-6, 0.1816997, 0.2581184);
        unload(&c);
    }
    /* Bidirectional, batch_first [1, 2, 1]: the reverse direction starts at the last step, so its
     * output at t=1 is h1 and at t=0 is h2: [h1, h2, h2, h1]. */
    if (load_layer(&c, t, "lstm bidirectional", "f32[1, 2, 1]", "LSTM(1, 1, bidirectional=True, batch_first=True)", 0)) {
        SET(&c, "l.bias_ih_l0", 0, 0, 1, 0);
        SET(&c, "l.bias_ih_l0_reverse", 0, 0, 1, 0);
        CHECK(&c, VALUES(5, -5), 1, 1e-6, 0.1816997, 0.2581184, 0.2581184, 0.1816997);
        unload(&c);
    }
    /* proj_size=1 with weight_hr = [[2, 0]], hidden 2, g bias 1 in unit 0 only: h = 2 * o*tanh(c) of unit 0,
     * and weight_hh (over the projected h) is zero: h1 = 2*0.1816997, h2 = 2*0.2581184. */
    if (load_layer(&c, t, "lstm proj_size", "f32[2, 1]", "LSTM(1, 2, proj_size=1)", 0)) {
        SET(&c, "l.bias_ih_l0", 0, 0, 0, 0, 1, 0, 0, 0);
        SET(&c, "l.weight_hr_l0", 2, 0);
        CHECK(&c, VALUES(0, 0), 2, 1e-6, 2 * 0.1816997, 2 * 0.2581184);
        unload(&c);
    }
    /* GRU, biases only: b_ih = b_hh = [r 0, z 0, n 1]: r = z = 1/2, n = tanh(1 + r*1) = tanh 1.5;
     * h1 = n/2 = 0.4525741; h2 = n/2 + h1/2 = 0.6788612 */
    if (load_layer(&c, t, "gru biases", "f32[2, 1, 1]", "GRU(1, 1)", 0)) {
        SET(&c, "l.bias_ih_l0", 0, 0, 1);
        SET(&c, "l.bias_hh_l0", 0, 0, 1);
        CHECK(&c, VALUES(3, 4), 2, 1e-6, 0.4525741, 0.6788612);
        unload(&c);
    }
    /* RNN relu, no bias, W_ih = 2, W_hh = 0.5 over ones: h = 2, 3, 3.5; a second layer with
     * W_ih = W_hh = 1 over that: 2, 3+2 = 5, 3.5+5 = 8.5 */
    if (load_layer(&c, t, "rnn relu 2 layers", "f32[3, 1]", "RNN(1, 1, num_layers=2, nonlinearity='relu', bias=False)", 0)) {
        SET(&c, "l.weight_ih_l0", 2);
        SET(&c, "l.weight_hh_l0", 0.5);
        SET(&c, "l.weight_ih_l1", 1);
        SET(&c, "l.weight_hh_l1", 1);
        CHECK(&c, seq3, 3, 1e-6, 2, 5, 8.5);
        unload(&c);
    }
    /* RNN tanh: h1 = tanh 2 = 0.9640276, h2 = tanh(2 + 0.5 h1) = 0.9861274 */
    if (load_layer(&c, t, "rnn tanh", "f32[N, 2, 1]", "RNN(1, 1, bias=False, batch_first=True)", 0)) {
        SET(&c, "l.weight_ih_l0", 2);
        SET(&c, "l.weight_hh_l0", 0.5);
        CHECK(&c, VALUES(1, 1, 0, 0), 2, 1e-6, 0.9640276, 0.9861274, 0, 0);
        unload(&c);
    }
}

/* ---- TransformerEncoderLayer ---- */

static void test_transformer(Tally *t)
{
    Case c;
    /* d_model 2, one head.  q = k = 0 (weights zero) gives uniform attention, v = x and out_proj the
     * identity: sa(x) = the mean token.  Tokens [1,3] and [3,1]: x + sa = [3,5], [5,3] -> norm1 -> ±1
     * (var 1: 1/sqrt(1 + 1e-5) = 0.999995).  linear1 is zero, so ff(x) = linear2.bias = 0 and norm2 keeps it. */
    static const char *model = "model T {\n input x: f32[N, 2, 2]\n l = TransformerEncoderLayer(2, 1, dim_feedforward=3, batch_first=True)\n}\n";
    if (load(&c, t, "transformer uniform attention", model, 0)) {
        SET(&c, "l.self_attn.in_proj_weight", 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1);
        SET(&c, "l.self_attn.out_proj.weight", 1, 0, 0, 1);
        SET(&c, "l.norm1.weight", 1, 1);
        SET(&c, "l.norm2.weight", 1, 1);
        /* a second sequence of identical tokens: x + sa = 2x = [4, 0] -> ±1 */
        CHECK(&c, VALUES(1, 3, 3, 1, 2, 0, 2, 0), 2, 1e-5, -0.999995, 0.999995, 0.999995, -0.999995, 0.999995, -0.999995, 0.999995,
              -0.999995);
        unload(&c);
    }
    /* norm_first with zero weights everywhere: norm(x) = 0 (weight 0) so both blocks add their
     * output biases: x + out_proj.bias + linear2.bias. */
    static const char *pre = "model T {\n input x: f32[2, 1, 2]\n l = TransformerEncoderLayer(2, 2, dim_feedforward=4, norm_first=True)\n}\n";
    if (load(&c, t, "transformer norm_first biases", pre, 0)) {
        SET(&c, "l.self_attn.out_proj.bias", 1, 2);
        SET(&c, "l.linear2.bias", 10, 20);
        CHECK(&c, VALUES(1, 2, 3, 4), 2, 1e-6, 12, 24, 14, 26);
        unload(&c);
    }
    /* Unbatched [L, E] with sharp attention: q = k = 10 x (one head), v = x.  Tokens [1,0] and [0,1]:
     * scores / sqrt 2 are 100/1.414 on the diagonal and 0 off it, so each token attends to itself:
     * sa = x, x + sa = 2x -> norm1 -> [1,-1], [-1,1] (times 0.999995); ff zero. */
    static const char *sharp = "model T {\n input x: f32[2, 2]\n l = TransformerEncoderLayer(2, 1, dim_feedforward=3, activation='gelu')\n}\n";
    if (load(&c, t, "transformer self attention", sharp, 0)) {
        SET(&c, "l.self_attn.in_proj_weight", 10, 0, 0, 10, 10, 0, 0, 10, 1, 0, 0, 1);
        SET(&c, "l.self_attn.out_proj.weight", 1, 0, 0, 1);
        SET(&c, "l.norm1.weight", 1, 1);
        SET(&c, "l.norm2.weight", 1, 1);
        CHECK(&c, VALUES(1, 0, 0, 1), 2, 1e-5, 0.999995, -0.999995, -0.999995, 0.999995);
        unload(&c);
    }
}

/* ---- run-time batch and refusals ---- */

static void test_driver(Tally *t)
{
    Case c;
    if (load_layer(&c, t, "fixed batch mismatch", "f32[2, 3]", "ReLU()", 0)) {
        float in[9] = {0};
        bool ok = !reference_run(&c.fe.arena, c.g, in, 3, arena_alloc_array(&c.fe.arena, 2, sizeof(float *)), c.err, sizeof c.err);
        record(t, ok && strstr(c.err, "fixed") != NULL, c.name, c.err);
        unload(&c);
    }
    if (load_layer(&c, t, "unbound weights", "f32[N, 3]", "Linear(3, 2)", 0)) {
        find_param(&c, "l.weight")->data = NULL;
        float in[3] = {0};
        bool ok = !reference_run(&c.fe.arena, c.g, in, 1, arena_alloc_array(&c.fe.arena, 2, sizeof(float *)), c.err, sizeof c.err);
        record(t, ok && strstr(c.err, "l.weight") != NULL, c.name, c.err);
        unload(&c);
    }
    if (load_layer(&c, t, "embeddingbag include_last_offset", "i64[2, 2]", "EmbeddingBag(5, 2, include_last_offset=True)", 0)) {
        bool ok = !reference_run(&c.fe.arena, c.g, IDS(0, 1, 2, 3), 2, arena_alloc_array(&c.fe.arena, 2, sizeof(float *)), c.err,
                                 sizeof c.err);
        record(t, ok && strstr(c.err, "include_last_offset") != NULL, c.name, c.err);
        unload(&c);
    }
    /* A model with errors is refused, even where shape inference recovered the output shape. */
    {
        char path[] = "/tmp/test_reference_XXXXXX.nn";
        const char *text = "model T {\n input x: f32[N, 3]\n fc = Linear(4, 2)\n ReLU()\n}\n";
        int fd = mkstemps(path, 3);
        bool written = fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text);
        if (fd >= 0) close(fd);
        FILE *sink = tmpfile();
        Frontend fe;
        bool front_ok = !written || frontend_run(&fe, path, sink ? sink : stderr);
        if (written && fe.graph) {
            float in[3] = {0}, *outs[3];
            char err[512] = "";
            bool refused = !reference_run(&fe.arena, fe.graph, in, 1, outs, err, sizeof err);
            record(t, !front_ok && refused && strstr(err, "fc") != NULL, "model with errors refused", err);
        } else {
            record(t, false, "model with errors refused", "the front end did not build a graph");
        }
        if (written) frontend_free(&fe);
        if (sink) fclose(sink);
        unlink(path);
    }
    /* A chain: every node's output is kept; the input is outputs[0]. */
    if (load(&c, t, "chain outputs", "model T {\n input x: f32[N, 2]\n ReLU()\n Linear(2, 1, bias=False)\n}\n", 1)) {
        CHECK(&c, VALUES(-1, 2, 3, 4), 2, 0, 2, 7);
        record(t, c.outputs && c.outputs[0][0] == -1 && c.outputs[1][0] == 0, "chain intermediate outputs", "wrong");
        unload(&c);
    }
}

int main(void)
{
    Tally t = {0, 0};
    test_pooling(&t);
    test_conv(&t);
    test_dense(&t);
    test_norm(&t);
    test_embedding(&t);
    test_recurrent(&t);
    test_transformer(&t);
    test_driver(&t);
    printf("reference: %d passed, %d failed\n", t.passed, t.failed);
    return t.failed ? 1 : 0;
}
