/* emit_object.h - the last stages: optimise the module with LLVM's new pass
 * manager for the target machine (target.h), write the object files, and
 * link them with the target's runtime into a shared library, an object, an
 * archive or an executable with the target's compiler driver.  Every output
 * is written to a temporary name and renamed into place only on success, so
 * a failed build never leaves a half-written file.
 */
#ifndef LAYERC_EMIT_OBJECT_H
#define LAYERC_EMIT_OBJECT_H

#include <llvm-c/Core.h>
#include <stdbool.h>

#include "diag.h"
#include "target.h"

/* What `layerc build --emit` writes. */
typedef enum EmitKind {
    EMIT_SO,     /* a shared library (the default) */
    EMIT_OBJ,    /* one relocatable object holding the code, the weights and the runtime */
    EMIT_STATIC, /* a static archive of that object */
    EMIT_EXE,    /* a standalone program (runtime/exe_main.c) */
} EmitKind;

typedef struct EmitOptions {
    int opt_level;          /* 0..3 */
    bool sanitize;          /* instrument the generated code with AddressSanitizer */
    const char *target_triple, *target_cpu, *target_features; /* NULL: this machine (target.h) */
    const char *emit_llvm;  /* also write the optimised IR here (NULL: no) */
    EmitKind kind;
} EmitOptions;

/* Optimises mod and writes it as object files obj_paths[0], [1], ... (room
 * for SPLIT_MAX_PARTS): a big module is split (split_module.h) and its
 * parts generated on threads of their own, one per CPU.  Returns how many
 * objects it wrote, or 0 after reporting an error. */
int emit_objects(Diag *d, LLVMModuleRef mod, const EmitOptions *opt, const Target *t, const char *const *obj_paths);

/* Whether the link uses ld.lld (when it is on $PATH), which leaves a hole in
 * the file for a reserved read-only section (emit_weights.h). */
bool linker_is_lld(void);

/* Links the objects with the target's runtime into `path` as opt->kind says
 * (a shared library, a relocatable object, a static archive or an
 * executable), with the sanitizer-instrumented runtime when opt->sanitize. */
enum { LINK_MAX_OBJECTS = 8 };
bool link_output(Diag *d, const EmitOptions *opt, const Target *t, const char *const *objects, int nobjects, const char *path);

/* Runs argv (no shell) in directory dir (NULL: the current one).  Returns the
 * exit status, or -1 after reporting that it could not run or was killed. */
int run_command(Diag *d, const char *dir, char *const argv[]);

/* The runtime's build directory (liblayerc_rt.a): $LAYERC_RUNTIME_DIR, else the one layerc was built with. */
const char *runtime_dir(void);
/* The directory of runtime/layerc.h: $LAYERC_INCLUDE_DIR, else the one layerc was built with. */
const char *include_dir(void);

#endif
