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

/* LLVM 19's 64-bit x86 processors (llc -mcpu=help), checked here because LLVM
 * itself only prints a warning and falls back to a generic CPU. */
static const char *const X86_64_CPUS[] = {
    "native", "x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4", "generic", "nocona", "core2", "penryn", "bonnell",
    "atom", "silvermont", "slm", "goldmont", "goldmont-plus", "tremont", "nehalem", "corei7", "westmere",
    "sandybridge", "corei7-avx", "ivybridge", "core-avx-i", "haswell", "core-avx2", "broadwell", "skylake",
    "skylake-avx512", "skx", "cascadelake", "cooperlake", "cannonlake", "icelake-client", "rocketlake",
    "icelake-server", "tigerlake", "sapphirerapids", "alderlake", "raptorlake", "meteorlake", "arrowlake",
    "arrowlake-s", "lunarlake", "gracemont", "pantherlake", "sierraforest", "grandridge", "graniterapids",
    "graniterapids-d", "emeraldrapids", "clearwaterforest", "knl", "knm", "k8", "athlon64", "athlon-fx", "opteron",
    "k8-sse3", "athlon64-sse3", "opteron-sse3", "amdfam10", "barcelona", "btver1", "btver2", "bdver1", "bdver2",
    "bdver3", "bdver4", "znver1", "znver2", "znver3", "znver4", "znver5",
};

bool target_cpu_known(const char *name, const char **nearest)
{
    int n = (int)(sizeof X86_64_CPUS / sizeof X86_64_CPUS[0]);
    for (int i = 0; i < n; i++)
        if (strcmp(X86_64_CPUS[i], name) == 0) return true;
    *nearest = nearest_word(name, X86_64_CPUS, n);
    return false;
}

/* CPUs in X86_64_CPUS with AVX-512 (F), and those without AVX2. */
static const char *const AVX512_CPUS[] = {"x86-64-v4", "skylake-avx512", "skx", "cascadelake", "cooperlake", "cannonlake",
                                          "icelake-client", "rocketlake", "icelake-server", "tigerlake", "sapphirerapids",
                                          "graniterapids", "graniterapids-d", "emeraldrapids", "knl", "knm", "znver4", "znver5"};
static const char *const NO_AVX2_CPUS[] = {"x86-64", "x86-64-v2", "generic", "nocona", "core2", "penryn", "bonnell", "atom",
                                           "silvermont", "slm", "goldmont", "goldmont-plus", "tremont", "nehalem", "corei7",
                                           "westmere", "sandybridge", "corei7-avx", "ivybridge", "core-avx-i", "k8", "athlon64",
                                           "athlon-fx", "opteron", "k8-sse3", "athlon64-sse3", "opteron-sse3", "amdfam10",
                                           "barcelona", "btver1", "btver2", "bdver1", "bdver2", "bdver3"};

static bool in_list(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0) return true;
    return false;
}

VectorShape target_vector_shape(const char *target_cpu)
{
    if (!target_cpu || strcmp(target_cpu, "native") == 0) {
        char *features = LLVMGetHostCPUFeatures();
        VectorShape v = strstr(features, "+avx512f") ? (VectorShape){16, 32}
                        : strstr(features, "+avx2") && strstr(features, "+fma") ? (VectorShape){8, 16}
                                                                                 : (VectorShape){4, 16};
        LLVMDisposeMessage(features);
        return v;
    }
    if (in_list(target_cpu, AVX512_CPUS, sizeof AVX512_CPUS / sizeof AVX512_CPUS[0])) return (VectorShape){16, 32};
    if (in_list(target_cpu, NO_AVX2_CPUS, sizeof NO_AVX2_CPUS / sizeof NO_AVX2_CPUS[0])) return (VectorShape){4, 16};
    return (VectorShape){8, 16};
}

/* LLVMInitializeNativeTarget and ...AsmPrinter must have run. */
static LLVMTargetMachineRef create_target_machine(Diag *d, const EmitOptions *opt)
{
    char *triple = LLVMGetDefaultTargetTriple();
    LLVMTargetRef target;
    char *error = NULL;
    if (LLVMGetTargetFromTriple(triple, &target, &error)) {
        diag_error(d, (SrcSpan){0}, "no LLVM target for %s: %s", triple, error);
        LLVMDisposeMessage(error);
        LLVMDisposeMessage(triple);
        return NULL;
    }
    char *host_cpu = LLVMGetHostCPUName(), *host_features = LLVMGetHostCPUFeatures();
    bool host = !opt->target_cpu || strcmp(opt->target_cpu, "native") == 0;
    const char *cpu = host ? host_cpu : opt->target_cpu;
    const char *features = host ? host_features : "";
    static const LLVMCodeGenOptLevel levels[4] = {LLVMCodeGenLevelNone, LLVMCodeGenLevelLess, LLVMCodeGenLevelDefault,
                                                   LLVMCodeGenLevelAggressive};
    /* A sanitized build is for finding memory errors, not for speed: its machine code is generated without
     * optimisation (the fast register allocator), which is many times quicker on the large unrolled kernels
     * with the address checks added.  The IR passes are the same as the optimised build's. */
    LLVMCodeGenOptLevel level = opt->sanitize ? LLVMCodeGenLevelNone : levels[opt->opt_level];
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, triple, cpu, features, level, LLVMRelocPIC,
                                                      LLVMCodeModelDefault);
    LLVMDisposeMessage(host_cpu);
    LLVMDisposeMessage(host_features);
    LLVMDisposeMessage(triple);
    if (!tm) diag_error(d, (SrcSpan){0}, "LLVM cannot create a target machine for CPU '%s'", cpu);
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

int emit_objects(Diag *d, LLVMModuleRef mod, const EmitOptions *opt, const char *const *obj_paths)
{
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    PartJob jobs[SPLIT_MAX_PARTS] = {{0}};
    jobs[0].tm = create_target_machine(d, opt);
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
        jobs[p] = (PartJob){.mod = parts[p].mod, .tm = p ? create_target_machine(d, opt) : jobs[0].tm, .opt = opt,
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

bool link_shared_library(Diag *d, const char *const *objects, int nobjects, const char *so_path, bool sanitize)
{
    char runtime[4096];
    snprintf(runtime, sizeof runtime, "%s/%sliblayerc_rt.a", runtime_dir(), sanitize ? "san/" : "");
    if (access(runtime, R_OK) != 0) {
        diag_error(d, (SrcSpan){0}, "cannot find the layerc runtime %s (set LAYERC_RUNTIME_DIR, or run 'make')", runtime);
        return false;
    }
    const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    enum { MAX_ARGS = 17 };
    char *argv[MAX_ARGS + LINK_MAX_OBJECTS];
    int n = 0;
    argv[n++] = (char *)cc;
    argv[n++] = "-shared";
    if (linker_is_lld()) {
        argv[n++] = "-fuse-ld=lld";
        /* The weights are written after the link (emit_weights.h): a build ID
         * computed by the linker would not cover them. */
        argv[n++] = "-Wl,--build-id=none";
    }
    if (sanitize) argv[n++] = "-fsanitize=address,undefined";
    argv[n++] = "-o";
    argv[n++] = (char *)so_path;
    for (int i = 0; i < nobjects && i < LINK_MAX_OBJECTS; i++) argv[n++] = (char *)objects[i];
    argv[n++] = runtime;
    argv[n++] = "-lm";
    argv[n++] = "-lpthread";
    argv[n++] = "-Wl,-z,noexecstack";
    if (!sanitize) argv[n++] = "-Wl,--no-undefined";
    argv[n] = NULL;
    return run_tool(d, argv);
}
