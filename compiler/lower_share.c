/* lower_share.c - one copy of the code of identical kernels (see lower.h).
 *
 * Layers of the same shape and options (VGG16 repeats four of its
 * convolutions) get kernels that differ only in where their weights are.
 * A kernel body therefore reads its layer's constants through a sixth
 * argument, `weights`, the address of the layer's first array in the
 * constant pool, instead of through fixed addresses.  The step the runtime
 * calls is a small entry `k(src, dst, batch, begin, end)` that passes the
 * layer's address on to the body.  Bodies whose IR text is identical are
 * kept once: LLVM optimises and compiles them once.  An entry whose body is
 * not shared inlines it again, so unshared kernels compile as before.
 */
#include <string.h>

#include "lower.h"

typedef struct SharedBody {
    uint64_t fingerprint;
    const char *text; /* its IR with its name replaced, printed when a fingerprint first matches */
    LLVMValueRef fn;
} SharedBody;

static const char COMPARED_NAME[] = "layerc.kernel";

static uint64_t mix(uint64_t h, uint64_t x) { return (h ^ x) * 1099511628211ull; }

/* A cheap summary of fn's code: each instruction's opcode, operand count and
 * integer constants.  Bodies that differ almost always differ here, so the
 * full text (slow to print) is compared only for the few that do not. */
static uint64_t fingerprint(LLVMValueRef fn)
{
    uint64_t h = 1469598103934665603ull;
    for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(fn); bb; bb = LLVMGetNextBasicBlock(bb))
        for (LLVMValueRef inst = LLVMGetFirstInstruction(bb); inst; inst = LLVMGetNextInstruction(inst)) {
            int operands = LLVMGetNumOperands(inst);
            h = mix(mix(h, (uint64_t)LLVMGetInstructionOpcode(inst)), (uint64_t)operands);
            for (int k = 0; k < operands; k++) {
                LLVMValueRef op = LLVMGetOperand(inst, k);
                if (LLVMIsAConstantInt(op)) h = mix(h, LLVMConstIntGetZExtValue(op));
            }
        }
    return h;
}

/* fn's IR as text under a fixed name, so that only its code is compared. */
static char *body_text(Arena *arena, LLVMValueRef fn)
{
    size_t len;
    const char *name = LLVMGetValueName2(fn, &len);
    char *saved = arena_strndup(arena, name, len);
    LLVMSetValueName2(fn, COMPARED_NAME, sizeof COMPARED_NAME - 1);
    char *printed = LLVMPrintValueToString(fn);
    char *text = arena_strdup(arena, printed);
    LLVMDisposeMessage(printed);
    LLVMSetValueName2(fn, saved, len);
    return text;
}

/* Does constant c use the layer's placeholder, directly or inside constant expressions? */
static bool refers_to(LLVMValueRef c, LLVMValueRef placeholder)
{
    if (c == placeholder) return true;
    if (!LLVMIsAConstantExpr(c)) return false;
    for (int k = 0; k < LLVMGetNumOperands(c); k++)
        if (refers_to(LLVMGetOperand(c, k), placeholder)) return true;
    return false;
}

/* Constant c (which refers to the placeholder) as instructions over `weights`,
 * built at the builder's position; NULL for a form other than address arithmetic. */
static LLVMValueRef rebase(Ir *ir, LLVMValueRef c, LLVMValueRef placeholder, LLVMValueRef weights)
{
    if (c == placeholder) return weights;
    if (!LLVMIsAConstantExpr(c) || LLVMGetConstOpcode(c) != LLVMGetElementPtr) return NULL;
    LLVMValueRef base = rebase(ir, LLVMGetOperand(c, 0), placeholder, weights);
    if (!base) return NULL;
    LLVMValueRef index[8];
    int count = LLVMGetNumOperands(c) - 1;
    if (count > 8) return NULL;
    for (int k = 0; k < count; k++) index[k] = LLVMGetOperand(c, k + 1);
    LLVMTypeRef type = LLVMGetGEPSourceElementType(c);
    return LLVMIsInBounds(c) ? LLVMBuildInBoundsGEP2(ir->b, type, base, index, (unsigned)count, "")
                             : LLVMBuildGEP2(ir->b, type, base, index, (unsigned)count, "");
}

/* Every use of the layer's constants in fn becomes an address computed from
 * its `weights` argument, at the top of the entry block.  A form rebase()
 * does not know keeps its constant: correct, only not shared. */
static void address_constants_by_argument(Ir *ir, LLVMValueRef fn, LLVMValueRef placeholder)
{
    LLVMValueRef weights = LLVMGetParam(fn, KERNEL_WEIGHTS_PARAM);
    LLVMPositionBuilderBefore(ir->b, LLVMGetFirstInstruction(LLVMGetEntryBasicBlock(fn)));
    for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(fn); bb; bb = LLVMGetNextBasicBlock(bb))
        for (LLVMValueRef inst = LLVMGetFirstInstruction(bb); inst; inst = LLVMGetNextInstruction(inst))
            for (int k = 0; k < LLVMGetNumOperands(inst); k++) {
                LLVMValueRef op = LLVMGetOperand(inst, k);
                if (!LLVMIsConstant(op) || !refers_to(op, placeholder)) continue;
                LLVMValueRef address = rebase(ir, op, placeholder, weights);
                if (address) LLVMSetOperand(inst, k, address);
            }
}

/* The body with the same code as fn, or NULL (fn is then recorded). */
static LLVMValueRef find_same_body(KernelShare *share, LLVMValueRef fn)
{
    uint64_t print = fingerprint(fn);
    const char *text = NULL;
    for (int i = 0; i < share->bodies.len; i++) {
        SharedBody *sb = share->bodies.items[i];
        if (sb->fingerprint != print) continue;
        if (!sb->text) sb->text = body_text(share->arena, sb->fn);
        if (!text) text = body_text(share->arena, fn);
        if (strcmp(sb->text, text) == 0) return sb->fn;
    }
    SharedBody *sb = arena_alloc(share->arena, sizeof *sb);
    *sb = (SharedBody){.fingerprint = print, .text = text, .fn = fn};
    ptrvec_push(share->arena, &share->bodies, sb);
    return NULL;
}

/* `name`(src, dst, batch, begin, end): body(src, dst, batch, begin, end, weights). */
static LLVMValueRef build_entry(Ir *ir, LLVMValueRef body, const char *name, LLVMValueRef weights)
{
    LLVMValueRef fn = LLVMAddFunction(ir->mod, name, kernel_fn_type(ir));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    ir_begin_function(ir, fn);
    LLVMValueRef args[KERNEL_WEIGHTS_PARAM + 1];
    for (unsigned k = 0; k < KERNEL_WEIGHTS_PARAM; k++) args[k] = LLVMGetParam(fn, k);
    args[KERNEL_WEIGHTS_PARAM] = weights;
    LLVMValueRef call = LLVMBuildCall2(ir->b, kernel_body_type(ir), body, args, KERNEL_WEIGHTS_PARAM + 1, "");
    LLVMSetTailCall(call, 1);
    LLVMBuildRetVoid(ir->b);
    return fn;
}

KernelEntry share_kernel(KernelShare *share, Ir *ir, LLVMValueRef body, const char *name)
{
    if (ir->layer_constants) address_constants_by_argument(ir, body, ir->layer_constants);
    LLVMValueRef same = find_same_body(share, body);
    if (same) {
        LLVMDeleteFunction(body);
        body = same;
        /* Compiled once for all its callers: not copied back into each entry. */
        unsigned noinline = LLVMGetEnumAttributeKindForName("noinline", 8);
        LLVMAddAttributeAtIndex(body, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(ir->ctx, noinline, 0));
    }
    return (KernelEntry){.fn = build_entry(ir, body, name, lower_layer_constants_address(ir)), .body = body};
}
