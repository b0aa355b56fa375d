/* frontend.h - the front half of the pipeline, one call per stage:
 * read -> parse (grammar/) -> bind (bind.c) -> infer shapes (infer_shapes.c). */
#ifndef LAYERC_FRONTEND_H
#define LAYERC_FRONTEND_H

#include "diag.h"
#include "graph.h"
#include "progress.h"

typedef struct Frontend {
    Arena arena; /* owns everything below */
    Source src;
    Diag diag;
    Graph *graph; /* NULL when the model could not be read or bound */
    Progress progress; /* the command's progress line (off until progress_begin): the back end, the
                        * harness and bench draw their long work on it */
} Frontend;

/* Runs the front end on the file at path, reporting to `out`.  Returns true
 * when the model is free of errors.  Call frontend_free() in every case. */
bool frontend_run(Frontend *fe, const char *path, FILE *out);
void frontend_free(Frontend *fe);

#endif
