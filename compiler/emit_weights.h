/* emit_weights.h - writes the constant pool (constant_pool.h) as an ELF
 * relocatable object holding one read-only section and one hidden symbol,
 * CONSTANT_POOL_SYMBOL, which the generated code refers to.  Written
 * directly (not through LLVM) because it is only bytes: for VGG16 this
 * turns seconds of LLVM constant handling into one write of the file.
 */
#ifndef LAYERC_EMIT_WEIGHTS_H
#define LAYERC_EMIT_WEIGHTS_H

#include <stdbool.h>

#include "constant_pool.h"
#include "diag.h"

bool emit_weights_object(Diag *d, const ConstantPool *pool, const char *path);

#endif
