/* split_module.c - one LLVM module as several, for code generation on
 * several threads (see split_module.h).
 *
 * The other parts are copies of the module (a bitcode round trip into a
 * context of their own).  Every defined function is given to one part, the
 * largest first to the part with the fewest instructions so far; in the
 * other parts it becomes a declaration.  A function or variable that is
 * internal to the module but now referenced across parts becomes external
 * with hidden visibility, so the parts link to one another and nothing new
 * is exported from the library.  Internal constants stay, one copy per
 * part that uses them; the linker drops the unused ones.
 */
#include "split_module.h"

#include <llvm-c/BitReader.h>
#include <llvm-c/BitWriter.h>
#include <stdlib.h>
#include <string.h>

/* A function's size for the balance: its instruction count. */
static size_t instruction_count(LLVMValueRef fn)
{
    size_t n = 0;
    for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(fn); b; b = LLVMGetNextBasicBlock(b))
        for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i)) n++;
    return n;
}

static bool is_local(LLVMValueRef global)
{
    LLVMLinkage l = LLVMGetLinkage(global);
    return l == LLVMInternalLinkage || l == LLVMPrivateLinkage;
}

/* Whether the module can be split: no aliases, ifuncs or llvm.* variables
 * (appending arrays such as llvm.global_ctors), every function and
 * non-constant variable named (the parts find each other's by name). */
static bool splittable(LLVMModuleRef mod)
{
    if (LLVMGetFirstGlobalAlias(mod) || LLVMGetFirstGlobalIFunc(mod)) return false;
    size_t len;
    for (LLVMValueRef fn = LLVMGetFirstFunction(mod); fn; fn = LLVMGetNextFunction(fn))
        if (!LLVMIsDeclaration(fn) && (LLVMGetValueName2(fn, &len), len == 0)) return false;
    for (LLVMValueRef g = LLVMGetFirstGlobal(mod); g; g = LLVMGetNextGlobal(g)) {
        const char *name = LLVMGetValueName2(g, &len);
        if (strncmp(name, "llvm.", 5) == 0) return false;
        if (!LLVMIsDeclaration(g) && !LLVMIsGlobalConstant(g) && len == 0) return false;
    }
    return true;
}

typedef struct Owned {
    char *name; /* a copy: the function goes away in the parts that do not own it */
    size_t size;
    int part;
} Owned;

static int larger_first(const void *a, const void *b)
{
    const Owned *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return strcmp(x->name, y->name); /* the same split every build */
}

static char *copy_name(LLVMValueRef v)
{
    size_t len;
    const char *name = LLVMGetValueName2(v, &len);
    char *copy = malloc(len + 1);
    if (!copy) abort();
    memcpy(copy, name, len + 1);
    return copy;
}

/* Below this many instructions a module stays whole: the split and the
 * threads cost more than they save. */
enum { SPLIT_MIN_INSTRUCTIONS = 4000 };

static void free_owned(Owned *owned, int n)
{
    for (int i = 0; i < n; i++) free(owned[i].name);
    free(owned);
}

/* Gives each defined function of mod to a part; returns them (malloc'd,
 * *count) and the module's instruction count in *total. */
static Owned *assign_functions(LLVMModuleRef mod, int parts, int *count, size_t *total)
{
    int n = 0;
    for (LLVMValueRef fn = LLVMGetFirstFunction(mod); fn; fn = LLVMGetNextFunction(fn)) n += !LLVMIsDeclaration(fn);
    Owned *owned = malloc((size_t)(n ? n : 1) * sizeof *owned);
    if (!owned) abort();
    int i = 0;
    for (LLVMValueRef fn = LLVMGetFirstFunction(mod); fn; fn = LLVMGetNextFunction(fn))
        if (!LLVMIsDeclaration(fn)) owned[i++] = (Owned){copy_name(fn), instruction_count(fn), 0};
    qsort(owned, (size_t)n, sizeof *owned, larger_first);
    size_t load[SPLIT_MAX_PARTS] = {0};
    for (i = 0; i < n; i++) {
        int lightest = 0;
        for (int p = 1; p < parts; p++)
            if (load[p] < load[lightest]) lightest = p;
        owned[i].part = lightest;
        load[lightest] += owned[i].size;
    }
    *total = 0;
    for (int p = 0; p < parts; p++) *total += load[p];
    *count = n;
    return owned;
}

static void export_hidden(LLVMValueRef global)
{
    LLVMSetLinkage(global, LLVMExternalLinkage);
    LLVMSetVisibility(global, LLVMHiddenVisibility);
}

/* Replaces fn's definition with a declaration of the same name and type. */
static void drop_body(LLVMModuleRef mod, LLVMValueRef fn)
{
    char *name = copy_name(fn);
    LLVMValueRef decl = LLVMAddFunction(mod, "", LLVMGlobalGetValueType(fn));
    LLVMSetFunctionCallConv(decl, LLVMGetFunctionCallConv(fn));
    LLVMReplaceAllUsesWith(fn, decl);
    LLVMDeleteFunction(fn);
    LLVMSetValueName2(decl, name, strlen(name));
    free(name);
}

/* Keeps in part `part` (module mod) the functions it owns and what it must define. */
static void keep_part(LLVMModuleRef mod, int part, const Owned *owned, int n)
{
    for (int i = 0; i < n; i++) {
        LLVMValueRef fn = LLVMGetNamedFunction(mod, owned[i].name);
        if (is_local(fn)) export_hidden(fn);
        if (owned[i].part != part) drop_body(mod, fn);
    }
    /* Variables that are not internal constants: defined by part 0 only. */
    for (LLVMValueRef g = LLVMGetFirstGlobal(mod); g; g = LLVMGetNextGlobal(g)) {
        if (LLVMIsDeclaration(g) || (LLVMIsGlobalConstant(g) && is_local(g))) continue;
        if (is_local(g)) export_hidden(g);
        if (part != 0) {
            LLVMSetInitializer(g, NULL);
            LLVMSetLinkage(g, LLVMExternalLinkage);
        }
    }
}

/* A copy of mod in a new context (bitcode round trip), or false. */
static bool copy_module(LLVMMemoryBufferRef bitcode, ModulePart *out)
{
    out->ctx = LLVMContextCreate();
    LLVMMemoryBufferRef view = LLVMCreateMemoryBufferWithMemoryRange(LLVMGetBufferStart(bitcode), LLVMGetBufferSize(bitcode),
                                                                     "layerc part", 0);
    bool ok = !LLVMParseBitcodeInContext2(out->ctx, view, &out->mod);
    LLVMDisposeMemoryBuffer(view);
    if (!ok) {
        LLVMContextDispose(out->ctx);
        *out = (ModulePart){0};
    }
    return ok;
}

int split_module(LLVMModuleRef mod, int want, ModulePart *parts)
{
    parts[0] = (ModulePart){.mod = mod};
    if (want > SPLIT_MAX_PARTS) want = SPLIT_MAX_PARTS;
    if (want < 2 || !splittable(mod)) return 1;
    int n;
    size_t total;
    Owned *owned = assign_functions(mod, want, &n, &total);
    if (total < SPLIT_MIN_INSTRUCTIONS) {
        free_owned(owned, n);
        return 1;
    }
    LLVMMemoryBufferRef bitcode = LLVMWriteBitcodeToMemoryBuffer(mod);
    int count = 1;
    while (count < want && n > count && copy_module(bitcode, &parts[count])) count++;
    LLVMDisposeMemoryBuffer(bitcode);
    for (int i = 0; i < n; i++) /* parts that could not be copied: their functions stay in part 0 */
        if (owned[i].part >= count) owned[i].part = 0;
    for (int p = count - 1; p >= 0; p--) keep_part(parts[p].mod, p, owned, n);
    free_owned(owned, n);
    return count;
}

void split_module_dispose(ModulePart *parts, int count)
{
    for (int p = 1; p < count; p++) {
        LLVMDisposeModule(parts[p].mod);
        LLVMContextDispose(parts[p].ctx);
    }
}
