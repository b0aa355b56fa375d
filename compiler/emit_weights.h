/* emit_weights.h - writes the constant pool (constant_pool.h) as an ELF
 * relocatable object holding one read-only section and one hidden symbol,
 * CONSTANT_POOL_SYMBOL, which the generated code refers to.  Written
 * directly (not through LLVM) because it is only bytes: for VGG16 this
 * turns seconds of LLVM constant handling into one write of the file.
 * It reports no diagnostics itself, so that it can run on a thread of its
 * own while LLVM generates the code (backend.c).
 */
#ifndef LAYERC_EMIT_WEIGHTS_H
#define LAYERC_EMIT_WEIGHTS_H

#include "constant_pool.h"

/* Writes the object to path: 0, or the errno of what failed. */
int emit_weights_object(const ConstantPool *pool, const char *path);

#endif
