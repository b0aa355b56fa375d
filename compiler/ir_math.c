/* ir_math.c - vectorisable exp, tanh and sigmoid in LLVM IR (see ir_math.h).
 * exp's constants are Cephes' expf (S. L. Moshier); tanh is a rational minimax form. */
#include "ir_math.h"

/* The constant v with x's type (a float, or a vector of them). */
LLVMValueRef ir_const_like(Ir *ir, LLVMValueRef x, double v)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    if (LLVMGetTypeKind(t) != LLVMVectorTypeKind) return LLVMConstReal(t, v);
    unsigned n = LLVMGetVectorSize(t);
    LLVMValueRef items[64];
    for (unsigned i = 0; i < n && i < 64; i++) items[i] = LLVMConstReal(ir->f32, v);
    return LLVMConstVector(items, n);
}

static LLVMTypeRef int_like(Ir *ir, LLVMValueRef x)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    return LLVMGetTypeKind(t) == LLVMVectorTypeKind ? LLVMVectorType(ir->i32, LLVMGetVectorSize(t)) : ir->i32;
}

/* The i32 constant v shaped like x. */
static LLVMValueRef int_const_like(Ir *ir, LLVMValueRef x, int v)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    if (LLVMGetTypeKind(t) != LLVMVectorTypeKind) return LLVMConstInt(ir->i32, (unsigned long long)v, 1);
    unsigned n = LLVMGetVectorSize(t);
    LLVMValueRef items[64];
    for (unsigned i = 0; i < n && i < 64; i++) items[i] = LLVMConstInt(ir->i32, (unsigned long long)v, 1);
    return LLVMConstVector(items, n);
}

static LLVMValueRef fmin_(Ir *ir, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildSelect(ir->b, LLVMBuildFCmp(ir->b, LLVMRealOLT, a, b, ""), a, b, "");
}

static LLVMValueRef fmax_(Ir *ir, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildSelect(ir->b, LLVMBuildFCmp(ir->b, LLVMRealOGT, a, b, ""), a, b, "");
}

/* c[0] + x * (c[1] + x * (... c[n-1])) */
static LLVMValueRef horner(Ir *ir, LLVMValueRef x, const double *c, int n)
{
    LLVMValueRef acc = ir_const_like(ir, x, c[n - 1]);
    for (int i = n - 2; i >= 0; i--) acc = ir_fma(ir, acc, x, ir_const_like(ir, x, c[i]));
    return acc;
}

/* exp(x) = 2^n * exp(r), n = round(x / ln 2), r = x - n ln 2 (ln 2 split in two for accuracy). */
LLVMValueRef ir_exp(Ir *ir, LLVMValueRef x)
{
    LLVMBuilderRef b = ir->b;
    LLVMValueRef nan = LLVMBuildFCmp(b, LLVMRealUNO, x, x, "");
    LLVMValueRef xc = fmax_(ir, fmin_(ir, x, ir_const_like(ir, x, 88.3762626647949)), ir_const_like(ir, x, -87.3365447504));
    LLVMValueRef t = LLVMBuildFAdd(b, LLVMBuildFMul(b, xc, ir_const_like(ir, x, 1.44269504088896341), ""), ir_const_like(ir, x, 0.5), "");
    LLVMTypeRef it = int_like(ir, x);
    LLVMValueRef n = LLVMBuildFPToSI(b, t, it, "");
    LLVMValueRef nf = LLVMBuildSIToFP(b, n, LLVMTypeOf(x), "");
    /* fptosi truncates toward zero: floor for negative t */
    LLVMValueRef too_big = LLVMBuildFCmp(b, LLVMRealOGT, nf, t, "");
    nf = LLVMBuildSelect(b, too_big, LLVMBuildFSub(b, nf, ir_const_like(ir, x, 1.0), ""), nf, "");
    n = LLVMBuildFPToSI(b, nf, it, "");
    LLVMValueRef r = LLVMBuildFSub(b, xc, LLVMBuildFMul(b, nf, ir_const_like(ir, x, 0.693359375), ""), "");
    r = LLVMBuildFSub(b, r, LLVMBuildFMul(b, nf, ir_const_like(ir, x, -2.12194440e-4), ""), "");
    static const double c[] = {5.0000001201E-1, 1.6666665459E-1, 4.1665795894E-2, 8.3334519073E-3, 1.3981999507E-3,
                               1.9875691500E-4};
    LLVMValueRef r2 = LLVMBuildFMul(b, r, r, "");
    LLVMValueRef p = LLVMBuildFAdd(b, LLVMBuildFAdd(b, LLVMBuildFMul(b, horner(ir, r, c, 6), r2, ""), r, ""), ir_const_like(ir, x, 1.0), "");
    /* 2^n as a float: (n + 127) << 23 */
    LLVMValueRef e127 = LLVMBuildAdd(b, n, int_const_like(ir, x, 127), "");
    LLVMValueRef scale = LLVMBuildBitCast(b, LLVMBuildShl(b, e127, int_const_like(ir, x, 23), ""), LLVMTypeOf(x), "");
    LLVMValueRef y = LLVMBuildFMul(b, p, scale, "");
    y = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x, ir_const_like(ir, x, 88.3762626647949), ""), ir_const_like(ir, x, __builtin_inf()), y, "");
    y = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, x, ir_const_like(ir, x, -87.3365447504), ""), ir_const_like(ir, x, 0.0), y, "");
    return LLVMBuildSelect(b, nan, x, y, "");
}

/* A rational minimax approximation x * P(x^2) / Q(x^2) on [-7.9, 7.9] (the
 * form Eigen uses), clamped beyond: max error 3.9e-7 (6 ulp near +-1),
 * without exp's range reduction, so it stays cheap as a fused epilogue. */
LLVMValueRef ir_tanh(Ir *ir, LLVMValueRef x)
{
    LLVMBuilderRef b = ir->b;
    LLVMValueRef c = ir_const_like(ir, x, 7.90531110763549805);
    LLVMValueRef xc = fmax_(ir, fmin_(ir, x, c), LLVMBuildFNeg(b, c, ""));
    LLVMValueRef x2 = LLVMBuildFMul(b, xc, xc, "");
    static const double p[] = {4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05, 5.12229709037114e-08,
                               -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16};
    static const double q[] = {4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06};
    LLVMValueRef num = LLVMBuildFMul(b, horner(ir, x2, p, 7), xc, "");
    LLVMValueRef y = LLVMBuildFDiv(b, num, horner(ir, x2, q, 4), "");
    return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealUNO, x, x, ""), x, y, "");
}

/* 1 / (1 + exp(-x)) */
LLVMValueRef ir_sigmoid(Ir *ir, LLVMValueRef x)
{
    LLVMValueRef e = ir_exp(ir, LLVMBuildFNeg(ir->b, x, ""));
    return LLVMBuildFDiv(ir->b, ir_const_like(ir, x, 1.0), LLVMBuildFAdd(ir->b, ir_const_like(ir, x, 1.0), e, ""), "");
}
