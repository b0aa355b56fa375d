/* npy.h - numpy's .npy format (version 1.0-3.0), float32 and int64, C order,
 * little-endian.  Reading validates everything (magic, header dict, dtype,
 * fortran_order, shape against the file size) and reports a clear error;
 * writing goes to a temporary file renamed into place. */
#ifndef LAYERC_NPY_H
#define LAYERC_NPY_H

#include "diag.h"
#include "graph.h"

typedef struct NpyArray {
    DType dtype;   /* DT_F32 ('<f4') or DT_I64 ('<i8') */
    Shape shape;   /* dynamic_batch is false */
    int64_t numel;
    void *data;    /* numel elements, in the arena */
} NpyArray;

bool npy_read(Arena *a, Diag *d, const char *path, NpyArray *out);
/* Returns false and fills err on failure (the destination is left untouched). */
bool npy_write(const char *path, DType dtype, const Shape *shape, const void *data, char *err, size_t errsize);

#endif
