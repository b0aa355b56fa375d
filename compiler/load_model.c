/* load_model.c - build into a temporary directory, dlopen, create a context (see load_model.h). */
#include "load_model.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool build_into_temp_dir(Frontend *fe, const BuildOptions *opt, LoadedModel *lm)
{
    char *dir = arena_strdup(&fe->arena, "/tmp/layerc.XXXXXX");
    if (!mkdtemp(dir)) {
        diag_error(&fe->diag, (SrcSpan){0}, "cannot create a temporary directory: %s", strerror(errno));
        return false;
    }
    lm->dir = dir;
    BuildOptions build = *opt;
    build.output = lm->library = arena_printf(&fe->arena, "%s/libmodel.so", dir);
    build.header = NULL;
    return backend_build(fe, &build);
}

bool load_model(Frontend *fe, const BuildOptions *opt, int threads, LoadedModel *lm)
{
    Diag *d = &fe->diag;
    memset(lm, 0, sizeof *lm);
    if (!build_into_temp_dir(fe, opt, lm)) return false;
    lm->handle = dlopen(lm->library, RTLD_NOW | RTLD_LOCAL);
    const layerc_model_desc *(*entry)(void) =
        lm->handle ? (const layerc_model_desc *(*)(void))dlsym(lm->handle, "layerc_model") : NULL;
    if (!entry) {
        diag_error(d, (SrcSpan){0}, "cannot load the compiled model: %s", dlerror());
        return false;
    }
    const layerc_model_desc *m = entry();
    if (m->abi_version != LAYERC_ABI_VERSION) {
        diag_error(d, (SrcSpan){0}, "the compiled model has ABI version %u, this layerc expects %d", m->abi_version,
                   LAYERC_ABI_VERSION);
        return false;
    }
    lm->m = m;
    lm->ctx = m->create();
    if (!lm->ctx) {
        const char *why = m->cpu_unsupported();
        diag_error(d, (SrcSpan){0}, "cannot create a context of the compiled model: %s", why ? why : "out of memory");
        return false;
    }
    if (m->set_threads(lm->ctx, threads > 0 ? threads : 1) != 0) {
        diag_error(d, (SrcSpan){0}, "cannot use %d threads: %s", threads, m->error(lm->ctx));
        return false;
    }
    return true;
}

void unload_model(LoadedModel *lm)
{
    if (lm->ctx) lm->m->destroy(lm->ctx);
    if (lm->handle) dlclose(lm->handle);
    if (lm->library) remove(lm->library);
    if (lm->dir) rmdir(lm->dir);
    memset(lm, 0, sizeof *lm);
}
