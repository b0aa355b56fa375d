/* ir.c - LLVM IR building helpers for kernels (see ir.h). */
#include "ir.h"

#include <stddef.h>
#include <string.h>

void ir_init(Ir *ir, LLVMContextRef ctx, LLVMModuleRef mod)
{
    ir->ctx = ctx;
    ir->mod = mod;
    ir->b = LLVMCreateBuilderInContext(ctx);
    ir->i1 = LLVMInt1TypeInContext(ctx);
    ir->i32 = LLVMInt32TypeInContext(ctx);
    ir->i64 = LLVMInt64TypeInContext(ctx);
    ir->f32 = LLVMFloatTypeInContext(ctx);
    ir->f64 = LLVMDoubleTypeInContext(ctx);
    ir->ptr = LLVMPointerTypeInContext(ctx, 0);
    ir->void_t = LLVMVoidTypeInContext(ctx);
    ir->fn = NULL;
    ir->vector_width = 8;
    ir->vector_registers = 16;
    ir->constants = NULL;
    ir->constants_global = NULL;
    ir->layer_constants = NULL;
    ir->layer_constants_at = 0;
}

void ir_dispose(Ir *ir) { LLVMDisposeBuilder(ir->b); }

void ir_begin_function(Ir *ir, LLVMValueRef fn)
{
    ir->fn = fn;
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(ir->ctx, fn, "entry");
    LLVMPositionBuilderAtEnd(ir->b, entry);
}

LLVMValueRef ir_i64(Ir *ir, int64_t v) { return LLVMConstInt(ir->i64, (unsigned long long)v, 1); }
LLVMValueRef ir_f32(Ir *ir, double v) { return LLVMConstReal(ir->f32, v); }

LLVMValueRef ir_var(Ir *ir, LLVMTypeRef type, LLVMValueRef init, const char *name)
{
    LLVMBasicBlockRef here = LLVMGetInsertBlock(ir->b);
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(ir->fn);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first) LLVMPositionBuilderBefore(ir->b, first);
    else LLVMPositionBuilderAtEnd(ir->b, entry);
    LLVMValueRef slot = LLVMBuildAlloca(ir->b, type, name);
    LLVMPositionBuilderAtEnd(ir->b, here);
    if (init) LLVMBuildStore(ir->b, init, slot);
    return slot;
}

static LLVMValueRef element_ptr(Ir *ir, LLVMTypeRef type, LLVMValueRef base, LLVMValueRef index)
{
    return LLVMBuildInBoundsGEP2(ir->b, type, base, &index, 1, "");
}

LLVMValueRef ir_f32_ptr(Ir *ir, LLVMValueRef base, LLVMValueRef index) { return element_ptr(ir, ir->f32, base, index); }

LLVMValueRef ir_load_f32(Ir *ir, LLVMValueRef base, LLVMValueRef index)
{
    return LLVMBuildLoad2(ir->b, ir->f32, element_ptr(ir, ir->f32, base, index), "");
}

void ir_store_f32(Ir *ir, LLVMValueRef base, LLVMValueRef index, LLVMValueRef value)
{
    LLVMBuildStore(ir->b, value, element_ptr(ir, ir->f32, base, index));
}

LLVMValueRef ir_add(Ir *ir, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWAdd(ir->b, a, b, ""); }
LLVMValueRef ir_sub(Ir *ir, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWSub(ir->b, a, b, ""); }
LLVMValueRef ir_mul(Ir *ir, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWMul(ir->b, a, b, ""); }

LLVMValueRef ir_mad(Ir *ir, LLVMValueRef a, int64_t k, LLVMValueRef c)
{
    LLVMValueRef scaled = k == 1 ? a : ir_mul(ir, a, ir_i64(ir, k));
    return c ? ir_add(ir, scaled, c) : scaled;
}

LLVMValueRef ir_min(Ir *ir, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildSelect(ir->b, LLVMBuildICmp(ir->b, LLVMIntSLT, a, b, ""), a, b, "");
}

LLVMValueRef ir_div_const(Ir *ir, LLVMValueRef a, int64_t k) { return k == 1 ? a : LLVMBuildSDiv(ir->b, a, ir_i64(ir, k), ""); }
LLVMValueRef ir_rem_const(Ir *ir, LLVMValueRef a, int64_t k) { return LLVMBuildSRem(ir->b, a, ir_i64(ir, k), ""); }

LLVMValueRef ir_fadd(Ir *ir, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(ir->b, a, b, ""); }
LLVMValueRef ir_fmul(Ir *ir, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFMul(ir->b, a, b, ""); }

static LLVMValueRef declared_f32_function(Ir *ir, const char *name, unsigned nargs, LLVMTypeRef *fn_type)
{
    LLVMTypeRef params[3] = {ir->f32, ir->f32, ir->f32};
    *fn_type = LLVMFunctionType(ir->f32, params, nargs, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(ir->mod, name);
    if (!fn) fn = LLVMAddFunction(ir->mod, name, *fn_type);
    return fn;
}

LLVMValueRef ir_fma(Ir *ir, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c)
{
    LLVMTypeRef type = LLVMTypeOf(a); /* llvm.fmuladd is overloaded on it: float or a vector */
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(ir->mod, LLVMLookupIntrinsicID("llvm.fmuladd", 12), &type, 1);
    LLVMTypeRef params[3] = {type, type, type};
    LLVMValueRef args[3] = {a, b, c};
    return LLVMBuildCall2(ir->b, LLVMFunctionType(type, params, 3, 0), fn, args, 3, "");
}

LLVMValueRef ir_call_f32(Ir *ir, const char *name, LLVMValueRef x)
{
    LLVMTypeRef type;
    LLVMValueRef fn = declared_f32_function(ir, name, 1, &type);
    return LLVMBuildCall2(ir->b, type, fn, &x, 1, "");
}

LLVMValueRef ir_call_f32_2(Ir *ir, const char *name, LLVMValueRef x, LLVMValueRef y)
{
    LLVMTypeRef type;
    LLVMValueRef fn = declared_f32_function(ir, name, 2, &type);
    LLVMValueRef args[2] = {x, y};
    return LLVMBuildCall2(ir->b, type, fn, args, 2, "");
}

LLVMValueRef ir_opaque(Ir *ir, LLVMValueRef value)
{
    LLVMTypeRef type = LLVMFunctionType(ir->i64, &ir->i64, 1, 0);
    const char *constraints = "=r,0";
    LLVMValueRef copy = LLVMGetInlineAsm(type, "", 0, constraints, strlen(constraints), 0, 0, LLVMInlineAsmDialectATT, 0);
    return LLVMBuildCall2(ir->b, type, copy, &value, 1, "");
}

IrLoop ir_loop_begin(Ir *ir, LLVMValueRef begin, LLVMValueRef end, const char *name)
{
    IrLoop loop;
    loop.counter = ir_var(ir, ir->i64, begin, name);
    loop.end = end;
    loop.cond = LLVMAppendBasicBlockInContext(ir->ctx, ir->fn, "loop.cond");
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(ir->ctx, ir->fn, "loop.body");
    loop.exit = LLVMAppendBasicBlockInContext(ir->ctx, ir->fn, "loop.exit");
    LLVMBuildBr(ir->b, loop.cond);
    LLVMPositionBuilderAtEnd(ir->b, loop.cond);
    LLVMValueRef i = LLVMBuildLoad2(ir->b, ir->i64, loop.counter, name);
    LLVMBuildCondBr(ir->b, LLVMBuildICmp(ir->b, LLVMIntSLT, i, end, ""), body, loop.exit);
    LLVMPositionBuilderAtEnd(ir->b, body);
    loop.index = LLVMBuildLoad2(ir->b, ir->i64, loop.counter, name);
    return loop;
}

void ir_loop_end(Ir *ir, IrLoop *loop)
{
    LLVMValueRef i = LLVMBuildLoad2(ir->b, ir->i64, loop->counter, "");
    LLVMBuildStore(ir->b, ir_add(ir, i, ir_i64(ir, 1)), loop->counter);
    LLVMBuildBr(ir->b, loop->cond);
    LLVMPositionBuilderAtEnd(ir->b, loop->exit);
}

LLVMBasicBlockRef ir_if_begin(Ir *ir, LLVMValueRef cond)
{
    LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(ir->ctx, ir->fn, "if.then");
    LLVMBasicBlockRef merge = LLVMAppendBasicBlockInContext(ir->ctx, ir->fn, "if.end");
    LLVMBuildCondBr(ir->b, cond, then, merge);
    LLVMPositionBuilderAtEnd(ir->b, then);
    return merge;
}

void ir_if_end(Ir *ir, LLVMBasicBlockRef merge)
{
    LLVMBuildBr(ir->b, merge);
    LLVMPositionBuilderAtEnd(ir->b, merge);
}
