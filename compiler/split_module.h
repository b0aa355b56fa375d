/* split_module.h - one LLVM module as up to SPLIT_MAX_PARTS modules that
 * together define the same functions and variables, each part in an LLVM
 * context of its own, so that their optimisation and code generation run on
 * threads of their own and their objects link into the same library.
 * Functions do not move between parts once split: calls across parts are
 * not inlined (the kernels are called through the thread pool anyway).
 */
#ifndef LAYERC_SPLIT_MODULE_H
#define LAYERC_SPLIT_MODULE_H

#include <llvm-c/Core.h>
#include <stdbool.h>

enum { SPLIT_MAX_PARTS = 4 };

typedef struct ModulePart {
    LLVMContextRef ctx; /* NULL for part 0, the caller's module */
    LLVMModuleRef mod;
} ModulePart;

/* Splits mod (which becomes part 0) into at most `want` parts; returns how
 * many it made (1: mod as it was, when it is small or cannot be split). */
int split_module(LLVMModuleRef mod, int want, ModulePart *parts);
/* Frees parts 1..count-1 (part 0 stays the caller's). */
void split_module_dispose(ModulePart *parts, int count);

#endif
