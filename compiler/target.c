/* target.c - the targets layerc compiles for and what follows from each (see target.h). */
#include "target.h"

#include <elf.h>
#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"

/* One row a supported architecture: its names and the toolchain that builds for it from elsewhere. */
typedef struct ArchInfo {
    TargetArch arch;
    const char *name, *llvm_triple;
    const char *aliases[3];
    const char *default_cpu;   /* of a cross build */
    const char *cross_cc;      /* the driver that builds for it from elsewhere (clang-19 finds Debian's cross libraries) */
    const char *cc_target;     /* its option naming the target */
    const char *emulator, *sysroot; /* qemu-user and the target's libraries */
    int elf_machine;
} ArchInfo;

static const ArchInfo ARCHES[] = {
    {ARCH_X86_64, "x86_64-linux-gnu", "x86_64-unknown-linux-gnu", {"x86_64-pc-linux-gnu", "x86_64-unknown-linux-gnu", "x86_64"},
     "x86-64", "clang-19", "--target=x86_64-linux-gnu", "qemu-x86_64", "/usr/x86_64-linux-gnu", EM_X86_64},
    {ARCH_AARCH64, "aarch64-linux-gnu", "aarch64-unknown-linux-gnu", {"aarch64-unknown-linux-gnu", "arm64-linux-gnu", "aarch64"},
     "generic", "clang-19", "--target=aarch64-linux-gnu", "qemu-aarch64", "/usr/aarch64-linux-gnu", EM_AARCH64},
};
enum { NARCHES = sizeof ARCHES / sizeof ARCHES[0] };

/* Every CPU LLVM 19 knows for the architectures, with the checked features it has (generated). */
typedef struct CpuInfo {
    TargetArch arch;
    const char *name, *features;
} CpuInfo;

static const CpuInfo CPUS[] = {
#define CPU(arch, name, features) {arch, name, features},
#include "cpu_features.def"
#undef CPU
};
enum { NCPUS = sizeof CPUS / sizeof CPUS[0] };

/* The features create() can check (runtime/cpu_check.def). */
typedef struct Feature {
    TargetArch arch;
    const char *name;
} Feature;

static const Feature FEATURES[] = {
#define X86(name, leaf, subleaf, reg, bit, os) {ARCH_X86_64, name},
#define ARM(name, word, bit) {ARCH_AARCH64, name},
#include "cpu_check.def"
#undef X86
#undef ARM
};
enum { NFEATURES = sizeof FEATURES / sizeof FEATURES[0] };

static const ArchInfo *host_arch(void)
{
    char *triple = LLVMGetDefaultTargetTriple();
    const ArchInfo *found = NULL;
    for (int i = 0; i < NARCHES && !found; i++) {
        size_t n = strcspn(ARCHES[i].name, "-");
        if (strncmp(triple, ARCHES[i].name, n) == 0 && triple[n] == '-') found = &ARCHES[i];
    }
    LLVMDisposeMessage(triple);
    return found ? found : &ARCHES[0];
}

static const ArchInfo *find_arch(const char *name)
{
    for (int i = 0; i < NARCHES; i++) {
        if (strcmp(ARCHES[i].name, name) == 0) return &ARCHES[i];
        for (int k = 0; k < 3; k++)
            if (ARCHES[i].aliases[k] && strcmp(ARCHES[i].aliases[k], name) == 0) return &ARCHES[i];
    }
    return NULL;
}

static const CpuInfo *find_cpu(TargetArch arch, const char *name)
{
    for (int i = 0; i < NCPUS; i++)
        if (CPUS[i].arch == arch && strcmp(CPUS[i].name, name) == 0) return &CPUS[i];
    return NULL;
}

static bool feature_checked(TargetArch arch, const char *name, size_t len)
{
    for (int i = 0; i < NFEATURES; i++)
        if (FEATURES[i].arch == arch && strlen(FEATURES[i].name) == len && strncmp(FEATURES[i].name, name, len) == 0) return true;
    return false;
}

/* Whether the comma-separated list holds `name`. */
static bool list_has(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, name, n) == 0) return true;
        p += len + (p[len] == ',');
    }
    return false;
}

/* list with `name` added (plus) or removed. */
static const char *list_edit(Arena *a, const char *list, const char *name, size_t n, bool plus)
{
    const char *out = "";
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len && !(len == n && strncmp(p, name, n) == 0)) out = arena_printf(a, "%s%s%.*s", out, *out ? "," : "", (int)len, p);
        p += len + (p[len] == ',');
    }
    return plus ? arena_printf(a, "%s%s%.*s", out, *out ? "," : "", (int)n, name) : out;
}

/* Whether the comma-separated LLVM feature string enables `name` ("+name"; a later "-name" would come after). */
static bool llvm_enables(const char *llvm, const char *name)
{
    bool on = false;
    size_t n = strlen(name);
    for (const char *p = llvm; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n + 1 && strncmp(p + 1, name, n) == 0) on = p[0] == '+';
        p += len + (p[len] == ',');
    }
    return on;
}

/* The checked features an LLVM feature string enables, in the table's order. */
static const char *checked_of_llvm(Arena *a, TargetArch arch, const char *llvm)
{
    const char *out = "";
    for (int i = 0; i < NFEATURES; i++)
        if (FEATURES[i].arch == arch && llvm_enables(llvm, FEATURES[i].name))
            out = arena_printf(a, "%s%s%s", out, *out ? "," : "", FEATURES[i].name);
    return out;
}

/* The names after `indent` spaces, wrapped at 100 columns with the same indent. */
static void print_names(FILE *out, const char *const *names, int n, int indent)
{
    int column = fprintf(out, "%*s", indent - 1, "");
    for (int i = 0; i < n; i++) {
        if (column + 1 + (int)strlen(names[i]) > 100) {
            column = fprintf(out, "\n%*s", indent - 1, "") - 1;
        }
        column += fprintf(out, " %s", names[i]);
    }
    fputc('\n', out);
}

static void print_feature_names(FILE *out, TargetArch arch, int indent)
{
    const char *names[NFEATURES];
    int n = 0;
    for (int i = 0; i < NFEATURES; i++)
        if (FEATURES[i].arch == arch) names[n++] = FEATURES[i].name;
    print_names(out, names, n, indent);
}

/* Applies --target-features "+a,-b" to t->checked; false after an error. */
static bool apply_features(Arena *a, Target *t, const char *features, FILE *err)
{
    for (const char *p = features; *p;) {
        size_t len = strcspn(p, ",");
        bool sign = len > 1 && (p[0] == '+' || p[0] == '-');
        if (!sign || !feature_checked(t->arch, p + 1, len - 1)) {
            fprintf(err, "layerc: error: --target-features: '%.*s' is not +FEATURE or -FEATURE with a feature layerc "
                         "checks on %s; the features are:\n",
                    (int)len, p, t->name);
            print_feature_names(err, t->arch, 4);
            return false;
        }
        t->checked = list_edit(a, t->checked, p + 1, len - 1, p[0] == '+');
        p += len + (p[len] == ',');
    }
    return true;
}

/* The kernels' vector shape from the features (one table: the tiling reads width and registers). */
static void choose_vector_unit(Target *t)
{
    if (t->arch == ARCH_AARCH64) {
        t->vector = (VectorShape){4, 32};
        t->vector_unit = "NEON";
    } else if (list_has(t->checked, "avx512f")) {
        t->vector = (VectorShape){16, 32};
        t->vector_unit = "AVX-512";
    } else if (list_has(t->checked, "avx2") && list_has(t->checked, "fma")) {
        t->vector = (VectorShape){8, 16};
        t->vector_unit = "AVX2";
    } else {
        t->vector = (VectorShape){4, 16};
        t->vector_unit = "SSE";
    }
}

static bool unknown_cpu(const ArchInfo *ai, const char *cpu, FILE *err)
{
    const char *names[NCPUS + 1];
    int n = 0;
    for (int i = 0; i < NCPUS; i++)
        if (CPUS[i].arch == ai->arch) names[n++] = CPUS[i].name;
    names[n++] = "native";
    const char *near = nearest_word(cpu, names, n);
    fprintf(err, "layerc: error: unknown --target-cpu '%s' for %s%s%s%s ('layerc targets' lists the CPUs)\n", cpu, ai->name,
            near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
    return false;
}

bool target_resolve(Arena *a, const char *triple, const char *cpu, const char *features, Target *t, FILE *err)
{
    const ArchInfo *host = host_arch(), *ai = triple ? find_arch(triple) : host;
    if (!ai) {
        const char *names[NARCHES];
        for (int i = 0; i < NARCHES; i++) names[i] = ARCHES[i].name;
        const char *near = nearest_word(triple, names, NARCHES);
        fprintf(err, "layerc: error: unknown --target '%s'%s%s%s; layerc compiles for", triple, near ? "; did you mean '" : "",
                near ? near : "", near ? "'?" : "");
        for (int i = 0; i < NARCHES; i++) fprintf(err, "%s %s", i ? (i == NARCHES - 1 ? " and" : ",") : "", ARCHES[i].name);
        fprintf(err, " (see 'layerc targets')\n");
        return false;
    }
    bool foreign = ai != host;
    if (!cpu) cpu = foreign ? ai->default_cpu : "native";
    bool native = strcmp(cpu, "native") == 0;
    if (native && foreign) {
        fprintf(err, "layerc: error: --target-cpu native means this machine's CPU, which is not an %s one\n", ai->name);
        return false;
    }
    const CpuInfo *ci = native ? NULL : find_cpu(ai->arch, cpu);
    if (!native && !ci) return unknown_cpu(ai, cpu, err);
    const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    *t = (Target){.arch = ai->arch, .name = ai->name, .llvm_triple = ai->llvm_triple, .native = native, .foreign = foreign,
                  .cc = foreign ? ai->cross_cc : cc, .cc_target = foreign ? ai->cc_target : NULL, .runtime_subdir = foreign ? arena_printf(a, "%s/", ai->name) : "",
                  .emulator = foreign ? ai->emulator : NULL, .sysroot = ai->sysroot, .elf_machine = ai->elf_machine};
    const char *user = features ? features : "";
    if (native) {
        char *host_cpu = LLVMGetHostCPUName(), *host_features = LLVMGetHostCPUFeatures();
        t->cpu = arena_strdup(a, host_cpu);
        t->llvm_features = *user ? arena_printf(a, "%s,%s", host_features, user) : arena_strdup(a, host_features);
        t->checked = checked_of_llvm(a, ai->arch, host_features);
        LLVMDisposeMessage(host_cpu);
        LLVMDisposeMessage(host_features);
    } else {
        t->cpu = ci->name;
        t->llvm_features = arena_strdup(a, user);
        t->checked = ci->features;
    }
    if (!apply_features(a, t, user, err)) return false;
    choose_vector_unit(t);
    return true;
}

const char *target_describe(Arena *a, const Target *t)
{
    return arena_printf(a, "%s, CPU %s%s, %s: %d floats a vector, %d registers", t->name, t->cpu,
                        t->native ? " (native: the compiling machine's)" : "", t->vector_unit, t->vector.width, t->vector.registers);
}

/* The CPUs of one architecture grouped by the vector unit the kernels get. */
static void print_cpus(FILE *out, const ArchInfo *ai)
{
    static const char *const UNITS[] = {"AVX-512", "AVX2", "SSE", "NEON"};
    for (int u = 0; u < 4; u++) {
        const char *names[NCPUS];
        int n = 0;
        for (int i = 0; i < NCPUS; i++) {
            if (CPUS[i].arch != ai->arch) continue;
            Target t = {.arch = ai->arch, .checked = CPUS[i].features};
            choose_vector_unit(&t);
            if (strcmp(t.vector_unit, UNITS[u]) == 0) names[n++] = CPUS[i].name;
        }
        if (!n) continue;
        fprintf(out, "    %s:\n", UNITS[u]);
        print_names(out, names, n, 6);
    }
}

void targets_print(FILE *out)
{
    Arena a;
    arena_init(&a);
    Target host;
    bool ok = target_resolve(&a, NULL, NULL, NULL, &host, stderr);
    fprintf(out, "layerc compiles for these targets (--target TRIPLE; the default is this machine%s%s):\n", ok ? ": " : "",
            ok ? target_describe(&a, &host) : "");
    for (int i = 0; i < NARCHES; i++) {
        const ArchInfo *ai = &ARCHES[i];
        bool here = ok && host.arch == ai->arch;
        fprintf(out, "\n%s%s\n", ai->name,
                here ? " (this machine's architecture)"
                     : arena_printf(&a, " (linked by %s %s, tests run under %s -L %s; default CPU %s)", ai->cross_cc,
                                    ai->cc_target, ai->emulator, ai->sysroot, ai->default_cpu));
        fprintf(out, "  --target-cpu CPU, by the vector unit its kernels use%s:\n", here ? " (native: this machine's)" : "");
        print_cpus(out, ai);
        fprintf(out, "  --target-features +F,-F (the features a library checks when it is created):\n");
        print_feature_names(out, ai->arch, 4);
    }
    arena_free(&a);
}
