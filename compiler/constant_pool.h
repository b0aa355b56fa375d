/* constant_pool.h - the model's weight arrays, gathered into one blob.
 *
 * Lowering writes every weight array (re-laid out for its kernel) here
 * instead of making it an LLVM constant; the kernels address it as
 * `__layerc_weights + offset`.  emit_weights.c puts the blob into the
 * linked library, so hundreds of MB of weights never pass through LLVM's
 * constant folding, code generation or object writer (VGG16: 600 MB).
 *
 * The blob lives in one reserved range of address space (CONSTANT_POOL_MAX_BYTES,
 * pages taken from the system only when written), so it never moves: growing
 * it copies nothing, and constant_pool_space hands out memory that a packer
 * writes its layout into directly.  constant_pool_free releases it.
 *
 * The range is anonymous memory, or (constant_pool_use_file) the bytes of a
 * file from CONSTANT_POOL_FILE_OFFSET: the file that becomes the library
 * (emit_weights.c), so that the weights are written once, by the packers,
 * into the page cache, and never copied.
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

/* Where the blob starts in a backing file: past the library's ELF headers and
 * the dynamic linking tables that ld.lld puts before it (a few KiB). */
enum { CONSTANT_POOL_FILE_OFFSET = 64 << 10 };

typedef struct ConstantPool {
    int file;              /* -1: anonymous memory; else the backing file (owned) */
    unsigned char *data;   /* NULL until the first array; then the reserved range */
    size_t len;            /* the blob's size; beyond CONSTANT_POOL_MAX_BYTES only counted */
    size_t writable;       /* bytes of the range made writable so far */
    unsigned char *spill;  /* scratch for arrays past CONSTANT_POOL_MAX_BYTES */
    size_t spill_cap;
} ConstantPool;

/* `bytes` bytes of zeros at the next CONSTANT_ALIGN boundary, for the caller
 * to fill before it asks for more; *offset is where they are in the blob.
 * Past CONSTANT_POOL_MAX_BYTES the bytes are scratch memory that is not
 * kept, but len still grows: lowering finishes and the build reports the
 * size (backend.c).  Exits with status 3, as the arena does, when the
 * system has no memory for them. */
void *constant_pool_space(ConstantPool *pool, size_t bytes, size_t *offset);
/* An empty pool in anonymous memory. */
void constant_pool_init(ConstantPool *pool);
/* Before the first array: keep the blob in `file` (an O_TMPFILE descriptor,
 * which the pool then owns) from CONSTANT_POOL_FILE_OFFSET.  Disk blocks are
 * allocated as the blob grows, so that a full disk is an error, not a fault. */
void constant_pool_use_file(ConstantPool *pool, int file);
void constant_pool_free(ConstantPool *pool);

#endif
