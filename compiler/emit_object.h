/* emit_object.h - the last stages: optimise the module with LLVM's new pass
 * manager for the host (or --target-cpu) target machine, write the object
 * file, and link object + runtime into a shared library with the system
 * linker.  Every output is written to a temporary name and renamed into
 * place only on success, so a failed build never leaves a half-written file.
 */
#ifndef LAYERC_EMIT_OBJECT_H
#define LAYERC_EMIT_OBJECT_H

#include <llvm-c/Core.h>
#include <stdbool.h>

#include "diag.h"

typedef struct EmitOptions {
    int opt_level;          /* 0..3 */
    bool sanitize;          /* instrument the generated code with AddressSanitizer */
    const char *target_cpu; /* NULL: the host CPU with its features */
    const char *emit_llvm;  /* also write the optimised IR here (NULL: no) */
} EmitOptions;

/* Whether LLVM's x86-64 back end knows CPU `name` ("native" means this machine);
 * when not, *nearest is the closest known name or NULL. */
bool target_cpu_known(const char *name, const char **nearest);

/* The vector unit the code is generated for: floats per register and register count. */
typedef struct VectorShape {
    int width, registers;
} VectorShape;
VectorShape target_vector_shape(const char *target_cpu);

/* Optimises mod and writes it as object files obj_paths[0], [1], ... (room
 * for SPLIT_MAX_PARTS): a big module is split (split_module.h) and its
 * parts generated on threads of their own, one per CPU.  Returns how many
 * objects it wrote, or 0 after reporting an error. */
int emit_objects(Diag *d, LLVMModuleRef mod, const EmitOptions *opt, const char *const *obj_paths);

/* Whether the link uses ld.lld (when it is on $PATH), which leaves a hole in
 * the file for a reserved read-only section (emit_weights.h). */
bool linker_is_lld(void);

/* Links the objects with the runtime archive into the shared library so_path
 * (with the sanitizer-instrumented runtime when `sanitize`). */
enum { LINK_MAX_OBJECTS = 8 };
bool link_shared_library(Diag *d, const char *const *objects, int nobjects, const char *so_path, bool sanitize);

/* Runs argv (no shell) in directory dir (NULL: the current one).  Returns the
 * exit status, or -1 after reporting that it could not run or was killed. */
int run_command(Diag *d, const char *dir, char *const argv[]);

/* The runtime's build directory (liblayerc_rt.a): $LAYERC_RUNTIME_DIR, else the one layerc was built with. */
const char *runtime_dir(void);
/* The directory of runtime/layerc.h: $LAYERC_INCLUDE_DIR, else the one layerc was built with. */
const char *include_dir(void);

#endif
