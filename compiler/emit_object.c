/* emit_object.c - target machine, optimisation, object emission and linking (see emit_object.h). */
#define _GNU_SOURCE /* posix_spawn_file_actions_addchdir_np */
#include "emit_object.h"

#include "file_io.h"
#include "split_module.h"

#include <errno.h>
#include <llvm-c/Analysis.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef LAYERC_RUNTIME_DIR
#define LAYERC_RUNTIME_DIR "build"
#endif
#ifndef LAYERC_INCLUDE_DIR
#define LAYERC_INCLUDE_DIR "runtime"
#endif

extern char **environ;

const char *runtime_dir(void)
{
    const char *env = getenv("LAYERC_RUNTIME_DIR");
    return env && *env ? env : LAYERC_RUNTIME_DIR;
}

const char *include_dir(void)
{
    const char *env = getenv("LAYERC_INCLUDE_DIR");
    return env && *env ? env : LAYERC_INCLUDE_DIR;
}

/* The LLVM targets layerc compiles for (target.h), initialised once per build. */
static void initialise_llvm_targets(void)
{
    LLVMInitializeX86TargetInfo();
    LLVMInitializeX86Target();
    LLVMInitializeX86TargetMC();
    LLVMInitializeX86AsmPrinter();
    LLVMInitializeAArch64TargetInfo();
    LLVMInitializeAArch64Target();
    LLVMInitializeAArch64TargetMC();
    LLVMInitializeAArch64AsmPrinter();
}

static LLVMTargetMachineRef create_target_machine(Diag *d, const Target *t, const EmitOptions *opt)
{
    LLVMTargetRef target;
    char *error = NULL;
    if (LLVMGetTargetFromTriple(t->llvm_triple, &target, &error)) {
        diag_error(d, (SrcSpan){0}, "no LLVM target for %s: %s", t->llvm_triple, error);
        LLVMDisposeMessage(error);
        return NULL;
    }
    static const LLVMCodeGenOptLevel levels[4] = {LLVMCodeGenLevelNone, LLVMCodeGenLevelLess, LLVMCodeGenLevelDefault,
                                                   LLVMCodeGenLevelAggressive};
    /* A sanitized build is for finding memory errors, not for speed: its machine code is generated without
     * optimisation (the fast register allocator), which is many times quicker on the large unrolled kernels
     * with the address checks added.  The IR passes are the same as the optimised build's. */
    LLVMCodeGenOptLevel level = opt->sanitize ? LLVMCodeGenLevelNone : levels[opt->opt_level];
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, t->llvm_triple, t->cpu, t->llvm_features, level,
                                                      LLVMRelocPIC, LLVMCodeModelDefault);
    if (!tm) diag_error(d, (SrcSpan){0}, "LLVM cannot create a target machine for %s, CPU '%s'", t->name, t->cpu);
    return tm;
}

static bool write_ir(Diag *d, LLVMModuleRef mod, const char *path)
{
    char *text = LLVMPrintModuleToString(mod);
    bool ok = write_file_atomically(d, path, text, strlen(text));
    LLVMDisposeMessage(text);
    return ok;
}

/* The asan pass instruments only functions that carry sanitize_address. */
static void mark_for_address_sanitizer(LLVMModuleRef mod)
{
    LLVMContextRef ctx = LLVMGetModuleContext(mod);
    unsigned kind = LLVMGetEnumAttributeKindForName("sanitize_address", 16);
    for (LLVMValueRef fn = LLVMGetFirstFunction(mod); fn; fn = LLVMGetNextFunction(fn))
        if (!LLVMIsDeclaration(fn)) LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(ctx, kind, 0));
}

/* One part's optimisation and code generation, on a thread of its own. */
typedef struct PartJob {
    LLVMModuleRef mod;
    LLVMTargetMachineRef tm;
    const EmitOptions *opt;
    const char *path;
    char *error; /* malloc'd message, or NULL */
    const char *what; /* "LLVM passes failed" or "cannot write the object file" */
} PartJob;

static char *copy_message(const char *m)
{
    char *c = malloc(strlen(m) + 1);
    if (!c) abort();
    return strcpy(c, m);
}

static void *optimise_and_emit(void *arg)
{
    PartJob *job = arg;
    char passes[64];
    snprintf(passes, sizeof passes, "default<O%d>%s", job->opt->opt_level, job->opt->sanitize ? ",asan" : "");
    if (job->opt->sanitize) mark_for_address_sanitizer(job->mod);
    LLVMPassBuilderOptionsRef options = LLVMCreatePassBuilderOptions();
    LLVMErrorRef err = LLVMRunPasses(job->mod, passes, job->tm, options);
    LLVMDisposePassBuilderOptions(options);
    if (err) {
        char *msg = LLVMGetErrorMessage(err);
        job->error = copy_message(msg);
        job->what = "internal compiler error: LLVM passes failed";
        LLVMDisposeErrorMessage(msg);
        return NULL;
    }
    char *error = NULL;
    if (LLVMTargetMachineEmitToFile(job->tm, job->mod, job->path, LLVMObjectFile, &error)) {
        job->error = copy_message(error);
        job->what = "cannot write the object file";
        LLVMDisposeMessage(error);
    }
    return NULL;
}

/* One part per CPU (split_module decides whether the module is worth splitting). */
static int parts_wanted(const EmitOptions *opt)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (opt->emit_llvm || cpus < 2) return 1; /* --emit-llvm writes the one optimised module */
    return cpus < SPLIT_MAX_PARTS ? (int)cpus : SPLIT_MAX_PARTS;
}

static bool verify(Diag *d, LLVMModuleRef mod)
{
    char *error = NULL;
    bool bad = LLVMVerifyModule(mod, LLVMReturnStatusAction, &error);
    if (bad) diag_error(d, (SrcSpan){0}, "internal compiler error: the generated module does not verify:\n%s", error);
    LLVMDisposeMessage(error);
    return !bad;
}

/* Runs the jobs, parts 1.. on threads of their own and part 0 here; reports their errors. */
static bool run_jobs(Diag *d, PartJob *jobs, int count)
{
    pthread_t threads[SPLIT_MAX_PARTS];
    bool started[SPLIT_MAX_PARTS] = {false};
    for (int p = 1; p < count; p++) started[p] = pthread_create(&threads[p], NULL, optimise_and_emit, &jobs[p]) == 0;
    optimise_and_emit(&jobs[0]);
    bool ok = true;
    for (int p = 0; p < count; p++) {
        if (p && started[p]) pthread_join(threads[p], NULL);
        else if (p) optimise_and_emit(&jobs[p]);
        if (jobs[p].error) {
            diag_error(d, (SrcSpan){0}, "%s %s: %s", jobs[p].what, jobs[p].path, jobs[p].error);
            free(jobs[p].error);
            ok = false;
        }
    }
    return ok;
}

int emit_objects(Diag *d, LLVMModuleRef mod, const EmitOptions *opt, const Target *t, const char *const *obj_paths)
{
    initialise_llvm_targets();
    PartJob jobs[SPLIT_MAX_PARTS] = {{0}};
    jobs[0].tm = create_target_machine(d, t, opt);
    if (!jobs[0].tm) return 0;
    char *triple = LLVMGetTargetMachineTriple(jobs[0].tm);
    LLVMSetTarget(mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(jobs[0].tm);
    LLVMSetModuleDataLayout(mod, layout);
    LLVMDisposeTargetData(layout);
    ModulePart parts[SPLIT_MAX_PARTS];
    int count = verify(d, mod) ? split_module(mod, parts_wanted(opt), parts) : 0;
    bool ok = count > 0;
    for (int p = 0; p < count; p++) {
        jobs[p] = (PartJob){.mod = parts[p].mod, .tm = p ? create_target_machine(d, t, opt) : jobs[0].tm, .opt = opt,
                            .path = obj_paths[p]};
        ok = ok && jobs[p].tm;
    }
    ok = ok && run_jobs(d, jobs, count);
    if (ok && opt->emit_llvm) ok = write_ir(d, mod, opt->emit_llvm);
    for (int p = 0; p < SPLIT_MAX_PARTS; p++)
        if (jobs[p].tm) LLVMDisposeTargetMachine(jobs[p].tm);
    if (count > 1) split_module_dispose(parts, count);
    return ok ? count : 0;
}

int run_command(Diag *d, const char *dir, char *const argv[])
{
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (dir) posix_spawn_file_actions_addchdir_np(&actions, dir);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        diag_error(d, (SrcSpan){0}, "cannot run %s: %s", argv[0], strerror(rc));
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            diag_error(d, (SrcSpan){0}, "cannot wait for %s: %s", argv[0], strerror(errno));
            return -1;
        }
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    diag_error(d, (SrcSpan){0}, "%s was killed by signal %d%s", argv[0], WTERMSIG(status),
               WTERMSIG(status) == SIGILL ? " (an illegal instruction: code compiled with --target-cpu for a CPU this "
                                            "machine is not?)" : "");
    return -1;
}

static bool run_tool(Diag *d, char *const argv[])
{
    int status = run_command(d, NULL, argv);
    if (status > 0) diag_error(d, (SrcSpan){0}, "%s failed with exit status %d", argv[0], status);
    return status == 0;
}

/* Whether an executable `name` is on $PATH. */
static bool on_path(const char *name)
{
    const char *path = getenv("PATH");
    char candidate[4096];
    for (const char *dir = path; dir && *dir;) {
        size_t len = strcspn(dir, ":");
        snprintf(candidate, sizeof candidate, "%.*s/%s", (int)len, dir, name);
        if (len && access(candidate, X_OK) == 0) return true;
        dir += len + (dir[len] == ':');
    }
    return false;
}

bool linker_is_lld(void) { return on_path("ld.lld"); }

#ifndef LAYERC_LLVM_BINDIR
#define LAYERC_LLVM_BINDIR "/usr/lib/llvm-19/bin"
#endif

/* "DIR/FILE" of the target's runtime build (the sanitized one when asked), or NULL after reporting it missing. */
static const char *runtime_file(Diag *d, const EmitOptions *opt, const Target *t, const char *file, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s%s%s", runtime_dir(), t->runtime_subdir, opt->sanitize ? "san/" : "", file);
    if (access(buf, R_OK) == 0) return buf;
    diag_error(d, (SrcSpan){0}, "cannot find the layerc runtime for %s: %s", t->name, buf);
    if (t->foreign)
        diag_note(d, (SrcSpan){0}, "'make' builds it when the cross compiler %s-gcc is installed (Debian: apt-get install %s)",
                  t->name, t->arch == ARCH_AARCH64 ? "gcc-aarch64-linux-gnu libc6-dev-arm64-cross" : "gcc-x86-64-linux-gnu");
    else diag_note(d, (SrcSpan){0}, "set LAYERC_RUNTIME_DIR, or run 'make'");
    return NULL;
}

/* The driver's command line to link a shared library or an executable (argv has room for 20 + LINK_MAX_OBJECTS). */
static int final_link_args(char **argv, const EmitOptions *opt, const Target *t, const char *const *objects, int nobjects,
                           const char *path, char *runtime, char *main_object)
{
    int n = 0;
    argv[n++] = (char *)t->cc;
    if (t->cc_target) argv[n++] = (char *)t->cc_target;
    if (opt->kind == EMIT_SO) argv[n++] = "-shared";
    if (linker_is_lld()) {
        argv[n++] = "-fuse-ld=lld";
        /* The weights are written after the link (emit_weights.h): a build ID
         * computed by the linker would not cover them. */
        argv[n++] = "-Wl,--build-id=none";
    }
    if (opt->sanitize) argv[n++] = "-fsanitize=address,undefined";
    argv[n++] = "-o";
    argv[n++] = (char *)path;
    for (int i = 0; i < nobjects && i < LINK_MAX_OBJECTS; i++) argv[n++] = (char *)objects[i];
    if (main_object) argv[n++] = main_object;
    argv[n++] = runtime;
    argv[n++] = "-lm";
    argv[n++] = "-lpthread";
    argv[n++] = "-Wl,-z,noexecstack";
    if (!opt->sanitize && opt->kind == EMIT_SO) argv[n++] = "-Wl,--no-undefined";
    argv[n] = NULL;
    return n;
}

/* One relocatable object of the objects and the runtime members they use, its
 * hidden symbols made local (and layerc_model, so several models link into one
 * program: each has its <prefix>_model()); then, for EMIT_STATIC, an archive of it. */
static bool link_relocatable(Diag *d, const EmitOptions *opt, const Target *t, const char *const *objects, int nobjects,
                             const char *path, char *runtime)
{
    char merged[4096];
    snprintf(merged, sizeof merged, "%s%s", path, opt->kind == EMIT_STATIC ? ".o" : "");
    char *argv[16 + LINK_MAX_OBJECTS];
    int n = 0;
    argv[n++] = (char *)t->cc;
    if (t->cc_target) argv[n++] = (char *)t->cc_target;
    argv[n++] = "-r";
    argv[n++] = "-nostdlib";
    if (linker_is_lld()) argv[n++] = "-fuse-ld=lld";
    argv[n++] = "-o";
    argv[n++] = merged;
    for (int i = 0; i < nobjects && i < LINK_MAX_OBJECTS; i++) argv[n++] = (char *)objects[i];
    argv[n++] = runtime;
    argv[n] = NULL;
    char *objcopy[] = {LAYERC_LLVM_BINDIR "/llvm-objcopy", "--localize-hidden", "--localize-symbol=layerc_model", merged, NULL};
    bool ok = run_tool(d, argv) && run_tool(d, objcopy);
    if (ok && opt->kind == EMIT_STATIC) {
        remove(path); /* ar adds to an archive that exists */
        char *ar[] = {LAYERC_LLVM_BINDIR "/llvm-ar", "rcs", (char *)path, merged, NULL};
        ok = run_tool(d, ar);
        remove(merged);
    }
    return ok;
}

bool link_output(Diag *d, const EmitOptions *opt, const Target *t, const char *const *objects, int nobjects, const char *path)
{
    char runtime[4096], main_object[4096];
    if (!runtime_file(d, opt, t, "liblayerc_rt.a", runtime, sizeof runtime)) return false;
    if (opt->kind == EMIT_OBJ || opt->kind == EMIT_STATIC) return link_relocatable(d, opt, t, objects, nobjects, path, runtime);
    if (opt->kind == EMIT_EXE && !runtime_file(d, opt, t, "layerc_main.o", main_object, sizeof main_object)) return false;
    char *argv[20 + LINK_MAX_OBJECTS];
    final_link_args(argv, opt, t, objects, nobjects, path, runtime, opt->kind == EMIT_EXE ? main_object : NULL);
    return run_tool(d, argv);
}
