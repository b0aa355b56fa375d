/* emit_weights.h - the constant pool (constant_pool.h) in the library.
 *
 * The generated code refers to the pool by one hidden symbol,
 * CONSTANT_POOL_SYMBOL, in a read-only section of its own.  Two ways to
 * get the bytes there, both written directly (not through LLVM, for which
 * they would be seconds of constant handling):
 *  - with ld.lld, the object only reserves the section (SHT_NOBITS, the
 *    pool's size): lld leaves a hole of that size inside the read-only
 *    segment and writes nothing there.  When the pool was built in a file
 *    at the hole's offset, that file takes the linked library's other bytes
 *    and becomes the library: the weights are never copied (VGG16: 730 MB).
 *    Else splice_weights writes the pool into the hole once, straight into
 *    the library file;
 *  - with another linker, the object holds the bytes themselves.
 * Neither reports diagnostics: each returns what failed for backend.c.
 */
#ifndef LAYERC_EMIT_WEIGHTS_H
#define LAYERC_EMIT_WEIGHTS_H

#include <stdbool.h>

#include "constant_pool.h"

/* Writes the object to path for ELF machine elf_machine (EM_X86_64,
 * EM_AARCH64), holding the pool's bytes or (reserve_only) only reserving
 * their room: 0, or the errno of what failed. */
int emit_weights_object(const ConstantPool *pool, const char *path, bool reserve_only, int elf_machine);

/* Writes the pool into the room reserved for it in the linked library
 * `library`, and makes the section an ordinary one holding bytes (so strip
 * and objcopy keep them).  A pool kept in a file (constant_pool_use_file)
 * whose bytes already lie where the room is becomes the library instead:
 * the library's other bytes are copied into it and it is named `adopted`.
 * *result is the file that is the library, `library` or `adopted`.  NULL on
 * success, else what went wrong. */
const char *splice_weights(const ConstantPool *pool, const char *library, const char *adopted, const char **result);

#endif
