/* kernel_tiles.h - the register tiles of the compute kernels for each vector
 * unit, in one table (kernel_tiles.c): how many output channels and vectors
 * of positions the direct convolution keeps in registers, how many channel
 * vectors and positions its channel-vectorised form keeps, and how wide and
 * tall the matrix product's tile may be.  32 registers (AVX-512, NEON) take
 * twice the accumulators of 16 (AVX2, SSE).  The kernels read their row of
 * the table with the target's vector width and register count.
 */
#ifndef LAYERC_KERNEL_TILES_H
#define LAYERC_KERNEL_TILES_H

typedef struct KernelTiles {
    int width, registers;       /* the vector unit: floats a vector, vector registers */
    const char *units;          /* which units have this row: "AVX-512" */
    int direct_oc_tile;         /* lower_conv.c: output channels a tile (weights broadcast) */
    int direct_accumulators;    /*   ... times vectors of output positions */
    int channel_vectors;        /* lower_conv_channels.c: vectors of output channels a tile */
    int channel_positions;      /*   ... times output positions (inputs broadcast) */
    int gemm_panel_vectors;     /* lower_gemm.c: the widest panel, in vectors */
    int gemm_rows;              /*   ... and the most rows a tile (fewer where the registers run out) */
} KernelTiles;

/* The row for a vector unit of `width` floats and `registers` registers (the
 * row with the same register count and width, else the nearest below). */
const KernelTiles *kernel_tiles(int width, int registers);

#endif
