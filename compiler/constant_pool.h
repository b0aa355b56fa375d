/* constant_pool.h - the model's weight arrays, gathered into one blob.
 *
 * Lowering appends every weight array (already re-laid out for its kernel)
 * here instead of making it an LLVM constant; the kernels address it as
 * `__layerc_weights + offset`.  emit_weights.c writes the blob as its own
 * ELF object, so hundreds of MB of weights never pass through LLVM's
 * constant folding, code generation or object writer (VGG16: 553 MB).
 * The pool owns its buffer (malloc); constant_pool_free releases it.
 */
#ifndef LAYERC_CONSTANT_POOL_H
#define LAYERC_CONSTANT_POOL_H

#include <stddef.h>
#include <stdint.h>

enum { CONSTANT_ALIGN = 64 }; /* a cache line: every array starts on one */

/* The symbol of the blob: hidden, so each model library has its own. */
#define CONSTANT_POOL_SYMBOL "__layerc_weights"

/* The largest pool the generated code can address: its references are
 * 32-bit PC-relative (the small code model), and the code and the runtime
 * share the same 2 GiB. */
#define CONSTANT_POOL_MAX_BYTES ((size_t)1900 << 20)

typedef struct ConstantPool {
    unsigned char *data;
    size_t len, cap;
} ConstantPool;

/* Makes room for `bytes` more bytes, so that adding them moves nothing. */
void constant_pool_reserve(ConstantPool *pool, size_t bytes);
/* Appends `bytes` bytes at the next CONSTANT_ALIGN boundary; returns their offset. */
size_t constant_pool_add(ConstantPool *pool, const void *data, size_t bytes);
void constant_pool_free(ConstantPool *pool);

#endif
