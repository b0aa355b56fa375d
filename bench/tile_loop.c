/* bench/tile_loop.c - the inner loop of the channel-vectorised convolution's
 * tile (compiler/lower_conv_channels.c) alone: per step VECTORS weight
 * vectors loaded, POSITIONS inputs broadcast, VECTORS x POSITIONS FMAs into
 * accumulators held in registers, its data in L1 (16 KB of weights, 16 KB of
 * inputs, cycled).  What it reaches is the ceiling of that instruction mix
 * on this core, beside bench/peak.c's FMAs alone (bench/kernels.sh prints
 * both).  512-bit vectors when compiled with AVX-512, else 256-bit.
 *
 * build: cc -O2 -march=native -DVECTORS=2 -DPOSITIONS=12 -o tile_loop bench/tile_loop.c
 * usage: tile_loop [SECONDS]     prints "GFLOP/s"
 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifndef VECTORS
#define VECTORS 2
#endif
#ifndef POSITIONS
#define POSITIONS 12
#endif

#ifdef __AVX512F__
typedef __m512 vec;
#define WIDTH 16
#define ZERO() _mm512_setzero_ps()
#define LOAD(p) _mm512_load_ps(p)
#define SPLAT(x) _mm512_set1_ps(x)
#define FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
static float lane_sum(vec v) { return _mm512_reduce_add_ps(v); }
#else
typedef __m256 vec;
#define WIDTH 8
#define ZERO() _mm256_setzero_ps()
#define LOAD(p) _mm256_load_ps(p)
#define SPLAT(x) _mm256_set1_ps(x)
#define FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
static float lane_sum(vec v)
{
    float f[8];
    _mm256_storeu_ps(f, v);
    return f[0] + f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7];
}
#endif

enum { FLOATS = 4096, STEPS = 1000 };

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    volatile long cycle = FLOATS; /* read once, not a constant: with a constant bound the compiler
                                   * rearranges the steps (7-20% slower, measured) */
    long floats = cycle;
    float *w = aligned_alloc(64, (FLOATS + 1024) * sizeof(float));
    float *x = aligned_alloc(64, (FLOATS + 1024) * sizeof(float));
    if (!w || !x) return 1;
    for (int i = 0; i < FLOATS + 1024; i++) w[i] = x[i] = 1e-3f;
    vec acc[VECTORS][POSITIONS];
    for (int j = 0; j < VECTORS; j++)
        for (int q = 0; q < POSITIONS; q++) acc[j][q] = ZERO();
    long steps = 0, wo = 0, xo = 0;
    double start = now(), t;
    do {
        for (int r = 0; r < STEPS; r++) {
            const float *wp = w + wo, *xp = x + xo;
            vec wv[VECTORS];
            for (int j = 0; j < VECTORS; j++) wv[j] = LOAD(wp + WIDTH * j);
            for (int q = 0; q < POSITIONS; q++) {
                vec b = SPLAT(xp[q]);
                for (int j = 0; j < VECTORS; j++) acc[j][q] = FMA(wv[j], b, acc[j][q]);
            }
            __asm__ volatile("" : "+r"(wp), "+r"(xp)); /* keeps each step's loads */
            wo += WIDTH * VECTORS;
            if (wo >= floats) wo = 0;
            xo += 1;
            if (xo >= floats) xo = 0;
        }
        steps += STEPS;
        t = now();
    } while (t - start < seconds);
    float sum = 0;
    for (int j = 0; j < VECTORS; j++)
        for (int q = 0; q < POSITIONS; q++) sum += lane_sum(acc[j][q]);
    printf("%.1f GFLOP/s (%d x %d, %d-float vectors; checksum %g)\n",
           steps * (double)VECTORS * POSITIONS * WIDTH * 2 / (t - start) / 1e9, VECTORS, POSITIONS, WIDTH, sum);
    free(w);
    free(x);
    return 0;
}
