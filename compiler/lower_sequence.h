/* lower_sequence.h - the sequence layout that the kernels of RNN/LSTM/GRU
 * (lower_recurrent.c) and TransformerEncoderLayer (lower_transformer.c)
 * share: [T, N, F], batch_first [N, T, F], or unbatched [T, F].  The
 * run-time batch multiplies the first dimension, so in the generated code
 * T (sequence first, unbatched) or N (batch_first) is a run-time value.
 */
#ifndef LAYERC_LOWER_SEQUENCE_H
#define LAYERC_LOWER_SEQUENCE_H

#include "lower.h"

typedef struct SeqDims {
    int64_t steps, samples; /* T and N as declared (one of them scales with the batch) */
    int64_t rows;           /* T * N: rows of features per batch unit */
    bool batch_first;       /* rows are sample major */
} SeqDims;

static inline SeqDims seq_dims(const Shape *in, bool batch_first)
{
    bool batched = in->rank == 3;
    SeqDims s = {.batch_first = batched && batch_first};
    s.steps = s.batch_first ? in->dims[1] : in->dims[0];
    s.samples = !batched ? 1 : s.batch_first ? in->dims[0] : in->dims[1];
    s.rows = s.steps * s.samples;
    return s;
}

/* T and N in a kernel, from its batch argument. */
typedef struct SeqRuntime {
    LLVMValueRef steps, samples;
    bool batch_first;
} SeqRuntime;

static inline SeqRuntime seq_runtime(Ir *ir, const SeqDims *s, LLVMValueRef batch)
{
    SeqRuntime r = {.batch_first = s->batch_first};
    r.steps = s->batch_first ? ir_i64(ir, s->steps) : ir_mul(ir, batch, ir_i64(ir, s->steps));
    r.samples = s->batch_first ? ir_mul(ir, batch, ir_i64(ir, s->samples)) : ir_i64(ir, s->samples);
    return r;
}

/* The row of time step t of sample b. */
static inline LLVMValueRef seq_row(Ir *ir, const SeqRuntime *r, LLVMValueRef t, LLVMValueRef b)
{
    if (r->batch_first) return ir_add(ir, ir_mul(ir, b, r->steps), t);
    return ir_add(ir, ir_mul(ir, t, r->samples), b);
}

#endif
