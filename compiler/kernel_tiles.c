/* kernel_tiles.c - the per-target table of register tiles (kernel_tiles.h).
 *
 * Measured at 1 thread, batch 1 (docs/benchmarks.md, "Register tiles"):
 *  - AVX-512 (Intel Xeon, 2026-12-03): direct 3x3 64->64 at 56x56 and
 *    256->256 at 14x14 with 6 channels x 4 vectors against 4 x 6 and 8 x 3;
 *    the channel-vectorised form with 2 x 14 against 2 x 12, 3 x 8, 4 x 6,
 *    1 x 24 (within 3% of each other but for 1 x 24, 7% slower).
 *  - AVX2 (AMD Zen 4, 2026-12-02): 6 channels x 2 vectors fastest of the
 *    shapes that fit sixteen registers.
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
