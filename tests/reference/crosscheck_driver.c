/* crosscheck_driver.c - runs the reference interpreter on one model for
 * torch_crosscheck.py:
 *
 *     crosscheck_driver DIR MODEL.nn BATCH
 *
 * reads every f32 parameter from DIR/<state_dict key>.bin and the input from
 * DIR/input.bin (raw little-endian f32 or i64), and writes the model output
 * to DIR/output.bin (raw f32).  Exit status 0 on success; a message on stderr
 * otherwise. */
#include <stdio.h>
#include <stdlib.h>

#include "frontend.h"
#include "reference.h"

/* The whole file at `path` in the arena; NULL when it cannot be read. */
static void *read_all(Arena *a, const char *path, long *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    void *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (*len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = arena_alloc(a, (size_t)*len + 1);
        if (fread(buf, 1, (size_t)*len, f) != (size_t)*len) buf = NULL;
    }
    fclose(f);
    return buf;
}

static bool bind_params(Frontend *fe, const char *dir)
{
    char path[4096];
    for (int i = 0; i < fe->graph->nodes.len; i++) {
        Node *n = fe->graph->nodes.items[i];
        for (int k = 0; k < n->nparams; k++) {
            Param *p = &n->params[k];
            if (p->dtype != DT_F32) continue;
            snprintf(path, sizeof path, "%s/%s.bin", dir, p->key);
            long len = 0;
            p->data = read_all(&fe->arena, path, &len);
            if (!p->data || len != shape_numel(&p->shape) * (long)sizeof(float)) {
                fprintf(stderr, "cannot read %s (or its size does not match %s)\n", path, p->key);
                return false;
            }
        }
    }
    return true;
}

static bool run(Frontend *fe, const char *dir, int64_t batch)
{
    char path[4096], err[512];
    long len = 0;
    snprintf(path, sizeof path, "%s/input.bin", dir);
    const void *input = read_all(&fe->arena, path, &len);
    Shape in_shape = reference_shape(fe->graph->input, batch);
    long elem = fe->graph->input->dtype == DT_I64 ? 8 : 4;
    if (!input || len != shape_numel(&in_shape) * elem) {
        fprintf(stderr, "cannot read %s (or its size does not match the input)\n", path);
        return false;
    }
    float **outputs = arena_alloc_array(&fe->arena, (size_t)fe->graph->nodes.len, sizeof *outputs);
    if (!reference_run(&fe->arena, fe->graph, input, batch, outputs, err, sizeof err)) {
        fprintf(stderr, "reference_run: %s\n", err);
        return false;
    }
    Shape s = reference_shape(fe->graph->output, batch);
    snprintf(path, sizeof path, "%s/output.bin", dir);
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(outputs[fe->graph->output->id], sizeof(float), (size_t)shape_numel(&s), f) == (size_t)shape_numel(&s);
    if (f && fclose(f) != 0) ok = false;
    if (!ok) fprintf(stderr, "cannot write %s\n", path);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: crosscheck_driver DIR MODEL.nn BATCH\n");
        return 2;
    }
    Frontend fe;
    bool ok = frontend_run(&fe, argv[2], stderr) && bind_params(&fe, argv[1]) && run(&fe, argv[1], atoll(argv[3]));
    frontend_free(&fe);
    return ok ? 0 : 1;
}
