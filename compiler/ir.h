/* ir.h - small helpers over the LLVM C API for writing kernels: constants,
 * typed loads and stores, counted loops and conditionals.
 *
 * Loop counters and accumulators are allocas in the entry block; the
 * optimiser's SROA/mem2reg turns them into registers, so kernel code can be
 * written like plain C loops.
 */
#ifndef LAYERC_IR_H
#define LAYERC_IR_H

#include <llvm-c/Core.h>
#include <stdint.h>

struct ConstantPool;

typedef struct Ir {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTypeRef i1, i32, i64, f32, f64, ptr, void_t;
    LLVMValueRef fn; /* the function being built */
    int vector_width;     /* floats per vector register of the target: 4 (SSE, NEON), 8 (AVX2), 16 (AVX-512) */
    int vector_registers; /* how many of them: 16, or 32 with AVX-512 and NEON (target.c) */
    struct ConstantPool *constants;  /* where lower_constant_floats puts weight arrays */
    LLVMValueRef constants_global;   /* their base address in the module (NULL until the first) */
    LLVMValueRef layer_constants;    /* the current layer's arrays are addressed from it (NULL until its first) */
    int64_t layer_constants_at;      /* its offset in the pool */
} Ir;

typedef struct IrLoop {
    LLVMValueRef counter; /* alloca */
    LLVMValueRef index;   /* the counter's value in this iteration */
    LLVMValueRef end;
    LLVMBasicBlockRef cond, exit;
} IrLoop;

void ir_init(Ir *ir, LLVMContextRef ctx, LLVMModuleRef mod);
void ir_dispose(Ir *ir);

/* Starts a function body: creates fn's entry block and positions there. */
void ir_begin_function(Ir *ir, LLVMValueRef fn);

LLVMValueRef ir_i64(Ir *ir, int64_t v);
LLVMValueRef ir_f32(Ir *ir, double v);
/* An alloca in the entry block, initialised to `init` at the current point. */
LLVMValueRef ir_var(Ir *ir, LLVMTypeRef type, LLVMValueRef init, const char *name);

/* &base[index] for a float array */
LLVMValueRef ir_f32_ptr(Ir *ir, LLVMValueRef base, LLVMValueRef index);
LLVMValueRef ir_load_f32(Ir *ir, LLVMValueRef base, LLVMValueRef index);
void ir_store_f32(Ir *ir, LLVMValueRef base, LLVMValueRef index, LLVMValueRef value);

LLVMValueRef ir_add(Ir *ir, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef ir_sub(Ir *ir, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef ir_mul(Ir *ir, LLVMValueRef a, LLVMValueRef b);
/* a * k + c with constants folded when k == 1 or c == 0 */
LLVMValueRef ir_mad(Ir *ir, LLVMValueRef a, int64_t k, LLVMValueRef c);
LLVMValueRef ir_min(Ir *ir, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef ir_div_const(Ir *ir, LLVMValueRef a, int64_t k); /* a >= 0 */
LLVMValueRef ir_rem_const(Ir *ir, LLVMValueRef a, int64_t k); /* a >= 0 */

LLVMValueRef ir_fadd(Ir *ir, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef ir_fmul(Ir *ir, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef ir_fma(Ir *ir, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c); /* a*b + c, llvm.fmuladd; floats or vectors */
/* A call to a one-argument float intrinsic or libm function, e.g. "llvm.exp.f32" or "erff". */
LLVMValueRef ir_call_f32(Ir *ir, const char *name, LLVMValueRef x);
LLVMValueRef ir_call_f32_2(Ir *ir, const char *name, LLVMValueRef x, LLVMValueRef y);

/* `value` (an i64) unchanged, through an empty inline asm the optimiser cannot
 * see through: a loop with an opaque bound is kept even when it would run
 * once, and what its body computes is not hoisted or folded away. */
LLVMValueRef ir_opaque(Ir *ir, LLVMValueRef value);

/* for (index = begin; index < end; index++) { ... } */
IrLoop ir_loop_begin(Ir *ir, LLVMValueRef begin, LLVMValueRef end, const char *name);
void ir_loop_end(Ir *ir, IrLoop *loop);

/* ---- vectors of ir->vector_width floats (ir_vector.c) ---- */
LLVMTypeRef ir_vec_type(Ir *ir);
LLVMValueRef ir_splat(Ir *ir, LLVMValueRef x);
/* base[index ..] as a vector; only the first `lanes` are read when lanes < width (the rest are 0). */
LLVMValueRef ir_load_vec(Ir *ir, LLVMValueRef base, LLVMValueRef index, int lanes);
/* Stores the first `lanes` lanes of v to base[index ..] (none when lanes <= 0). */
void ir_store_vec(Ir *ir, LLVMValueRef base, LLVMValueRef index, LLVMValueRef v, int lanes);
/* The even (odd) lanes of the 2*width lanes a:b: a stride-2 load from two plain ones. */
LLVMValueRef ir_even_lanes(Ir *ir, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef ir_odd_lanes(Ir *ir, LLVMValueRef a, LLVMValueRef b);
/* The largest lane (NaN lanes ignored, as llvm.maxnum), and the sum of the lanes in lane order. */
LLVMValueRef ir_reduce_max(Ir *ir, LLVMValueRef v);
LLVMValueRef ir_reduce_add(Ir *ir, LLVMValueRef v);
/* a0 b0 a1 b1 ... as two vectors: the inverse of even/odd lanes. */
void ir_interleave(Ir *ir, LLVMValueRef a, LLVMValueRef b, LLVMValueRef *lo, LLVMValueRef *hi);
/* rows[0 .. width) as a width x width matrix, transposed in place (rows[i] lane c becomes rows[c]
 * lane i): log2(width) rounds of width two-vector shuffles. */
void ir_transpose(Ir *ir, LLVMValueRef *rows);

/* if (cond) { ... } */
LLVMBasicBlockRef ir_if_begin(Ir *ir, LLVMValueRef cond);
void ir_if_end(Ir *ir, LLVMBasicBlockRef merge);

#endif
