/* ir_math.h - exp, tanh and sigmoid as straight-line LLVM IR on a float or a
 * vector of floats, so that kernels using them vectorise: LLVM would
 * otherwise call libm once per element.  Accuracy: exp and sigmoid within a
 * few ulp, tanh within 3.9e-7 absolute; the golden tests against PyTorch
 * (tests/golden/outputs: sigmoid, tanh, silu, gelu_tanh) check them. */
#ifndef LAYERC_IR_MATH_H
#define LAYERC_IR_MATH_H

#include "ir.h"

/* The float constant v shaped like x (a scalar, or a splat vector). */
LLVMValueRef ir_const_like(Ir *ir, LLVMValueRef x, double v);
LLVMValueRef ir_exp(Ir *ir, LLVMValueRef x);
LLVMValueRef ir_tanh(Ir *ir, LLVMValueRef x);
LLVMValueRef ir_sigmoid(Ir *ir, LLVMValueRef x);

#endif
