/* load_model.h - compile the bound graph into a temporary directory and load
 * the library into this process (layerc run, layerc bench). */
#ifndef LAYERC_LOAD_MODEL_H
#define LAYERC_LOAD_MODEL_H

#include "backend.h"
#include "layerc.h"

typedef struct LoadedModel {
    const char *dir, *library; /* the temporary directory and the .so in it */
    void *handle;              /* dlopen's */
    const layerc_model_desc *m;
    layerc_ctx *ctx;           /* created, with `threads` threads */
} LoadedModel;

/* Builds fe's graph as opt says (backend_build), loads it and creates a context.
 * On failure the error is reported; call unload_model in every case. */
bool load_model(Frontend *fe, const BuildOptions *opt, int threads, LoadedModel *lm);
void unload_model(LoadedModel *lm);

#endif
