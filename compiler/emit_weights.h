/* emit_weights.h - the constant pool (constant_pool.h) in the library.
 *
 * The generated code refers to the pool by one hidden symbol,
 * CONSTANT_POOL_SYMBOL, in a read-only section of its own.  Two ways to
 * get the bytes there, both written directly (not through LLVM, for which
 * they would be seconds of constant handling):
 *  - with ld.lld, the object only reserves the section (SHT_NOBITS, the
 *    pool's size): lld leaves a hole of that size inside the read-only
 *    segment and writes nothing there; splice_weights then writes the pool
 *    into the hole once, straight into the library file (VGG16: 600 MB
 *    written once, instead of to an object, then read and copied by the
 *    linker into a file it first zeroes);
 *  - with another linker, the object holds the bytes themselves.
 * Neither reports diagnostics: each returns what failed for backend.c.
 */
#ifndef LAYERC_EMIT_WEIGHTS_H
#define LAYERC_EMIT_WEIGHTS_H

#include <stdbool.h>

#include "constant_pool.h"

/* Writes the object to path, holding the pool's bytes or (reserve_only) only
 * reserving their room: 0, or the errno of what failed. */
int emit_weights_object(const ConstantPool *pool, const char *path, bool reserve_only);

/* Writes the pool into the room reserved for it in the linked library
 * `library`, and makes the section an ordinary one holding bytes (so strip
 * and objcopy keep them).  NULL on success, else what went wrong. */
const char *splice_weights(const ConstantPool *pool, const char *library);

#endif
