/* kernel_tiles.c - the per-target table of register tiles (kernel_tiles.h).
 *
 * Measured at 1 thread, batch 1 (docs/benchmarks.md, "Register tiles"):
 *  - AVX-512 (Intel Xeon, 2026-12-03): the direct kernel with 6 channels x
 *    4 vectors against 4 x 6 and 8 x 3 (6 best or tied); the
 *    channel-vectorised one with 2 x 12 against 2 x 14, 2 x 10, 3 x 8 and
 *    4 x 6 (3x3 64->64 at 56x56: 173, 169, 166, 164-167, 163-166 GFLOP/s;
 *    256->256 at 14x14 all within 4%).  A loop of that tile's loads and
 *    FMAs alone, its data in L1, runs at 78-85% of the FMA peak there.
 *  - AVX2 (AMD Zen 4, 2026-12-02): 6 channels x 2 vectors fastest of the
 *    shapes that fit sixteen registers; the channel-vectorised 2 x 6 runs
 *    at 88-93% of the AVX2 peak on the Xeon (bench/kernels.sh).
 * A tile keeps every accumulator and the vectors one step of it loads in
 * registers: accumulators + loaded vectors + one broadcast <= registers.
 */
#include "kernel_tiles.h"

#include <stddef.h>

static const KernelTiles TABLE[] = {
    {.width = 16, .registers = 32, .units = "AVX-512", .direct_oc_tile = 6, .direct_accumulators = 24,
     .channel_vectors = 2, .channel_positions = 12, .gemm_panel_vectors = 3, .gemm_rows = 8},
    {.width = 8, .registers = 16, .units = "AVX2", .direct_oc_tile = 6, .direct_accumulators = 12,
     .channel_vectors = 2, .channel_positions = 6, .gemm_panel_vectors = 3, .gemm_rows = 8},
    {.width = 4, .registers = 32, .units = "NEON", .direct_oc_tile = 6, .direct_accumulators = 24,
     .channel_vectors = 2, .channel_positions = 12, .gemm_panel_vectors = 3, .gemm_rows = 8},
    {.width = 4, .registers = 16, .units = "SSE", .direct_oc_tile = 6, .direct_accumulators = 12,
     .channel_vectors = 2, .channel_positions = 6, .gemm_panel_vectors = 3, .gemm_rows = 8},
};

const KernelTiles *kernel_tiles(int width, int registers)
{
    const KernelTiles *best = NULL;
    for (size_t i = 0; i < sizeof TABLE / sizeof TABLE[0]; i++) {
        const KernelTiles *t = &TABLE[i];
        if (t->width == width && t->registers == registers) return t;
        if (t->registers <= registers && t->width <= width && (!best || t->registers > best->registers)) best = t;
    }
    return best ? best : &TABLE[sizeof TABLE / sizeof TABLE[0] - 1];
}
