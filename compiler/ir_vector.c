/* ir_vector.c - vector helpers for the tiled kernels (see ir.h): vectors of
 * ir->vector_width floats, loads and stores of the first `lanes` of them
 * (llvm.masked.*, or plain stores of fewer lanes, so a tail never touches
 * memory past it), splats and lane shuffles. */
#include <stdio.h>

#include "ir.h"

LLVMTypeRef ir_vec_type(Ir *ir) { return LLVMVectorType(ir->f32, (unsigned)ir->vector_width); }

static LLVMTypeRef mask_type(Ir *ir) { return LLVMVectorType(ir->i1, (unsigned)ir->vector_width); }

static LLVMValueRef lane_mask(Ir *ir, int lanes)
{
    LLVMValueRef bits[64];
    for (int i = 0; i < ir->vector_width; i++) bits[i] = LLVMConstInt(ir->i1, i < lanes, 0);
    return LLVMConstVector(bits, (unsigned)ir->vector_width);
}

/* The intrinsic `base` (a format with %d for the width), declared once. */
static LLVMValueRef vector_intrinsic(Ir *ir, const char *base, LLVMTypeRef type)
{
    char name[64];
    snprintf(name, sizeof name, base, ir->vector_width);
    LLVMValueRef fn = LLVMGetNamedFunction(ir->mod, name);
    return fn ? fn : LLVMAddFunction(ir->mod, name, type);
}

LLVMValueRef ir_splat(Ir *ir, LLVMValueRef x)
{
    LLVMTypeRef vt = ir_vec_type(ir);
    LLVMValueRef v = LLVMBuildInsertElement(ir->b, LLVMGetUndef(vt), x, LLVMConstInt(ir->i32, 0, 0), "");
    LLVMValueRef zeros = LLVMConstNull(LLVMVectorType(ir->i32, (unsigned)ir->vector_width));
    return LLVMBuildShuffleVector(ir->b, v, LLVMGetUndef(vt), zeros, "");
}

LLVMValueRef ir_load_vec(Ir *ir, LLVMValueRef base, LLVMValueRef index, int lanes)
{
    LLVMTypeRef vt = ir_vec_type(ir);
    LLVMValueRef p = ir_f32_ptr(ir, base, index);
    if (lanes >= ir->vector_width) {
        LLVMValueRef v = LLVMBuildLoad2(ir->b, vt, p, "");
        LLVMSetAlignment(v, 4);
        return v;
    }
    LLVMTypeRef params[4] = {ir->ptr, ir->i32, mask_type(ir), vt};
    LLVMTypeRef type = LLVMFunctionType(vt, params, 4, 0);
    LLVMValueRef args[4] = {p, LLVMConstInt(ir->i32, 4, 0), lane_mask(ir, lanes), LLVMConstNull(vt)};
    return LLVMBuildCall2(ir->b, type, vector_intrinsic(ir, "llvm.masked.load.v%df32.p0", type), args, 4, "");
}

/* Lanes [first, first + count) of v, count a power of two below the width. */
static LLVMValueRef sub_vector(Ir *ir, LLVMValueRef v, int first, int count)
{
    LLVMValueRef idx[64];
    for (int i = 0; i < count; i++) idx[i] = LLVMConstInt(ir->i32, (unsigned long long)(first + i), 0);
    return LLVMBuildShuffleVector(ir->b, v, LLVMGetUndef(LLVMTypeOf(v)), LLVMConstVector(idx, (unsigned)count), "");
}

void ir_store_vec(Ir *ir, LLVMValueRef base, LLVMValueRef index, LLVMValueRef v, int lanes)
{
    if (lanes <= 0) return;
    LLVMValueRef p = ir_f32_ptr(ir, base, index);
    if (lanes >= ir->vector_width) {
        LLVMSetAlignment(LLVMBuildStore(ir->b, v, p), 4);
        return;
    }
    if (ir->vector_width < 16) {
        /* Without AVX-512's mask registers a masked store is slow (VMASKMOVPS
         * to memory: microcoded on AMD): plain stores of 4, 2 and 1 lanes. */
        for (int first = 0, count = ir->vector_width / 2; count > 0; count /= 2) {
            if (lanes - first < count) continue;
            LLVMValueRef part = count == 1 ? LLVMBuildExtractElement(ir->b, v, LLVMConstInt(ir->i32, (unsigned long long)first, 0), "")
                                           : sub_vector(ir, v, first, count);
            LLVMSetAlignment(LLVMBuildStore(ir->b, part, ir_f32_ptr(ir, p, ir_i64(ir, first))), 4);
            first += count;
        }
        return;
    }
    LLVMTypeRef params[4] = {ir_vec_type(ir), ir->ptr, ir->i32, mask_type(ir)};
    LLVMTypeRef type = LLVMFunctionType(ir->void_t, params, 4, 0);
    LLVMValueRef args[4] = {v, p, LLVMConstInt(ir->i32, 4, 0), lane_mask(ir, lanes)};
    LLVMBuildCall2(ir->b, type, vector_intrinsic(ir, "llvm.masked.store.v%df32.p0", type), args, 4, "");
}

/* Lanes `first`, first + step, ... of the 2 * width lanes of a:b. */
static LLVMValueRef strided_lanes(Ir *ir, LLVMValueRef a, LLVMValueRef b, int first, int step)
{
    LLVMValueRef idx[64];
    for (int i = 0; i < ir->vector_width; i++) idx[i] = LLVMConstInt(ir->i32, (unsigned long long)(first + step * i), 0);
    return LLVMBuildShuffleVector(ir->b, a, b, LLVMConstVector(idx, (unsigned)ir->vector_width), "");
}

LLVMValueRef ir_even_lanes(Ir *ir, LLVMValueRef a, LLVMValueRef b) { return strided_lanes(ir, a, b, 0, 2); }
LLVMValueRef ir_odd_lanes(Ir *ir, LLVMValueRef a, LLVMValueRef b) { return strided_lanes(ir, a, b, 1, 2); }

void ir_interleave(Ir *ir, LLVMValueRef a, LLVMValueRef b, LLVMValueRef *lo, LLVMValueRef *hi)
{
    int w = ir->vector_width;
    LLVMValueRef idx_lo[64], idx_hi[64];
    for (int i = 0; i < w; i++) {
        int pick = i % 2 ? w : 0; /* even lanes from a, odd from b */
        idx_lo[i] = LLVMConstInt(ir->i32, (unsigned long long)(i / 2 + pick), 0);
        idx_hi[i] = LLVMConstInt(ir->i32, (unsigned long long)(w / 2 + i / 2 + pick), 0);
    }
    *lo = LLVMBuildShuffleVector(ir->b, a, b, LLVMConstVector(idx_lo, (unsigned)w), "");
    *hi = LLVMBuildShuffleVector(ir->b, a, b, LLVMConstVector(idx_hi, (unsigned)w), "");
}

/* Each round swaps the off-diagonal k x k blocks of every 2k x 2k block (Eklundh's transpose):
 * rows i and i + k (bit k of i clear) exchange the lanes with bit k set in i's and clear in i + k's. */
void ir_transpose(Ir *ir, LLVMValueRef *rows)
{
    int w = ir->vector_width;
    for (int k = w / 2; k >= 1; k /= 2) {
        LLVMValueRef low[64], high[64];
        for (int c = 0; c < w; c++) {
            low[c] = LLVMConstInt(ir->i32, (unsigned long long)(c & k ? w + c - k : c), 0);
            high[c] = LLVMConstInt(ir->i32, (unsigned long long)(c & k ? w + c : c + k), 0);
        }
        LLVMValueRef low_mask = LLVMConstVector(low, (unsigned)w), high_mask = LLVMConstVector(high, (unsigned)w);
        for (int i = 0; i < w; i++) {
            if (i & k) continue;
            LLVMValueRef a = rows[i], b = rows[i + k];
            rows[i] = LLVMBuildShuffleVector(ir->b, a, b, low_mask, "");
            rows[i + k] = LLVMBuildShuffleVector(ir->b, a, b, high_mask, "");
        }
    }
}

LLVMValueRef ir_reduce_max(Ir *ir, LLVMValueRef v)
{
    LLVMTypeRef vt = ir_vec_type(ir);
    LLVMTypeRef type = LLVMFunctionType(ir->f32, &vt, 1, 0);
    return LLVMBuildCall2(ir->b, type, vector_intrinsic(ir, "llvm.vector.reduce.fmax.v%df32", type), &v, 1, "");
}

LLVMValueRef ir_reduce_add(Ir *ir, LLVMValueRef v)
{
    LLVMTypeRef vt = ir_vec_type(ir);
    LLVMTypeRef params[2] = {ir->f32, vt};
    LLVMTypeRef type = LLVMFunctionType(ir->f32, params, 2, 0);
    LLVMValueRef args[2] = {ir_f32(ir, 0.0), v};
    return LLVMBuildCall2(ir->b, type, vector_intrinsic(ir, "llvm.vector.reduce.fadd.v%df32", type), args, 2, "");
}
