/* lower_gemm.h - the packed, register-tiled matrix product of lower_gemm.c,
 * for the layers built from matrix products: Linear (a whole step), and the
 * input projections, recurrences, attention projections and feed-forward
 * parts of RNN/LSTM/GRU (lower_recurrent.c) and TransformerEncoderLayer
 * (lower_transformer.c).
 *
 *   dst[r, :] = act(src[r, :] . W^T + bias) + residual[r, :]
 *
 * W is [out_f, in_f] as PyTorch stores it; it is packed at compile time.
 */
#ifndef LAYERC_LOWER_GEMM_H
#define LAYERC_LOWER_GEMM_H

#include "lower.h"

/* How a product is tiled, chosen at compile time from its shape and the target. */
typedef struct GemmPlan {
    int width;         /* floats per vector */
    int panel_vectors; /* NR / width */
    int panel;         /* NR: outputs per panel */
    int tile_rows;     /* MR */
    int64_t in_f, out_f;
    int64_t rows_per_sample;
    int64_t panels, group_panels, groups; /* the last panel may be partly padding */
} GemmPlan;

/* One product being emitted: its plan and packed constants, and the
 * addresses and row strides (in floats) of its operands in the kernel
 * being built. */
typedef struct Gemm {
    Ir *ir;
    GemmPlan plan;
    LLVMValueRef wpack, bias;
    LLVMValueRef src, dst, residual; /* residual: NULL for none */
    int64_t src_stride, dst_stride, residual_stride;
    bool has_activation;
    OpKind activation;
    ActAttrs activation_attr;
} Gemm;

/* Plans the product and packs weight [out_f, in_f] and bias (or NULL) into
 * the constant pool; strides default to dense rows.  one_group: a single
 * group of panels, as gemm_emit_row_range needs. */
Gemm gemm_prepare(Ir *ir, int64_t in_f, int64_t out_f, int64_t rows_per_sample, const float *weight, const float *bias,
                  bool one_group);

/* Rows [0, count), a run-time count, against every output (a one-group
 * plan): blocks of MR rows panel by panel, so that a panel's weights stay
 * in L1 while the blocks sweep them, then the rest a row at a time with
 * MR panels a tile.  A recurrence's samples at one time step. */
void gemm_emit_row_range(Gemm *t, LLVMValueRef count);

/* A kernel step (source BUF_ALL) computing the product over `rows` rows per
 * batch unit, from and to operands of the layer. */
typedef struct MatmulStep {
    const char *what; /* the kernel's name suffix, e.g. ".qkv" */
    int64_t rows, in_f, out_f;
    const float *weight, *bias; /* bias may be NULL */
    Operand src, dst;
    bool has_residual;
    Operand residual;
    bool has_activation;
    OpKind activation;
    ActAttrs activation_attr;
} MatmulStep;

void lower_matmul_step(KernelBuilder *kb, const MatmulStep *m);

#endif
