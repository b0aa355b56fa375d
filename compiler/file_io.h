/* file_io.h - reading the user's input files (models, weights, .npy) with
 * clear errors (a missing file, a directory, a file too large for its kind,
 * a short read), and putting output files in place whole: a failed write
 * leaves the previous file as it was. */
#ifndef LAYERC_FILE_IO_H
#define LAYERC_FILE_IO_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "diag.h"

/* Opens the regular file `path` for reading; *size receives its size.  A file
 * over max_bytes is refused ("a KIND file may be at most ..."). */
FILE *open_input_file(Diag *d, const char *path, int64_t max_bytes, const char *kind, int64_t *size);

/* Reads exactly n bytes (`what` names them in the error). */
bool read_exact(Diag *d, FILE *f, void *buf, size_t n, const char *what);

/* Puts the file tmp in place of path (which may not exist), atomically:
 * 0, or the errno of what failed (tmp is then left as it is). */
int replace_file(const char *tmp, const char *path);

/* Writes `text` to path through a temporary file renamed into place. */
bool write_file_atomically(Diag *d, const char *path, const char *text, size_t len);

#endif
