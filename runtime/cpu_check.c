/* cpu_check.c - whether this machine's CPU has every feature the generated
 * code was compiled for, so that a library built for a newer CPU refuses to
 * create a context (with the reason) instead of dying of SIGILL.  The
 * generated object lists the features it relies on (__layerc_cpu_features,
 * from compiler/target.c) with a message for each; this file tests them with
 * cpuid and xgetbv on x86-64 and with the kernel's hwcaps on AArch64, using
 * the rows of cpu_check.def.  Compiled generically, like the rest of the
 * runtime: it runs before any code that could need a feature. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "runtime.h"

#define HIDDEN __attribute__((visibility("hidden")))

/* NULL-terminated; the messages run parallel to the names. */
extern const char *const __layerc_cpu_features[] HIDDEN;
extern const char *const __layerc_cpu_messages[] HIDDEN;

#if defined(__x86_64__)
#include <cpuid.h>

enum { EAX, EBX, ECX, EDX };

typedef struct X86Feature {
    const char *name;
    unsigned leaf, subleaf;
    int reg, bit;
    uint64_t os_state; /* XCR0 bits the OS must enable */
} X86Feature;

static const X86Feature FEATURES[] = {
#define X86(name, leaf, subleaf, reg, bit, os) {name, leaf, subleaf, reg, bit, os},
#define ARM(name, word, bit)
#include "cpu_check.def"
#undef X86
#undef ARM
};

/* The cpuid leaves the table reads, and the OS-saved state (XCR0), read once
 * per check: cpuid is a VM exit under a hypervisor. */
typedef struct CpuState {
    unsigned leaf1[4], leaf7[4], leaf7_1[4], extended1[4];
    uint64_t xcr0;
} CpuState;

static CpuState read_state(void)
{
    CpuState s = {{0}, {0}, {0}, {0}, 0};
    __get_cpuid_count(1, 0, &s.leaf1[EAX], &s.leaf1[EBX], &s.leaf1[ECX], &s.leaf1[EDX]);
    __get_cpuid_count(7, 0, &s.leaf7[EAX], &s.leaf7[EBX], &s.leaf7[ECX], &s.leaf7[EDX]);
    __get_cpuid_count(7, 1, &s.leaf7_1[EAX], &s.leaf7_1[EBX], &s.leaf7_1[ECX], &s.leaf7_1[EDX]);
    __get_cpuid_count(0x80000001u, 0, &s.extended1[EAX], &s.extended1[EBX], &s.extended1[ECX], &s.extended1[EDX]);
    if (s.leaf1[ECX] & (1u << 27)) { /* OSXSAVE: xgetbv may run */
        uint32_t lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        s.xcr0 = (uint64_t)hi << 32 | lo;
    }
    return s;
}

static const unsigned *leaf_of(const CpuState *s, unsigned leaf, unsigned subleaf)
{
    if (leaf == 1) return s->leaf1;
    if (leaf == 7) return subleaf ? s->leaf7_1 : s->leaf7;
    return s->extended1;
}

static int has_feature(const char *name, const CpuState *s)
{
    for (size_t i = 0; i < sizeof FEATURES / sizeof FEATURES[0]; i++) {
        const X86Feature *f = &FEATURES[i];
        if (strcmp(f->name, name) != 0) continue;
        if (!(leaf_of(s, f->leaf, f->subleaf)[f->reg] >> f->bit & 1)) return 0;
        return (s->xcr0 & f->os_state) == f->os_state;
    }
    return 1; /* not a feature this runtime knows: the compiler lists only those it does */
}

#elif defined(__aarch64__)
#include <sys/auxv.h>

typedef struct ArmFeature {
    const char *name;
    int word, bit;
} ArmFeature;

static const ArmFeature FEATURES[] = {
#define X86(name, leaf, subleaf, reg, bit, os)
#define ARM(name, word, bit) {name, word, bit},
#include "cpu_check.def"
#undef X86
#undef ARM
};

/* The kernel's hardware capability words. */
typedef struct CpuState {
    unsigned long hwcap, hwcap2;
} CpuState;

static CpuState read_state(void) { return (CpuState){getauxval(AT_HWCAP), getauxval(AT_HWCAP2)}; }

static int has_feature(const char *name, const CpuState *s)
{
    for (size_t i = 0; i < sizeof FEATURES / sizeof FEATURES[0]; i++) {
        const ArmFeature *f = &FEATURES[i];
        if (strcmp(f->name, name) != 0) continue;
        return (int)((f->word == 1 ? s->hwcap : s->hwcap2) >> f->bit & 1);
    }
    return 1;
}

#else
typedef int CpuState;

static CpuState read_state(void) { return 0; }

static int has_feature(const char *name, const CpuState *s)
{
    (void)name, (void)s;
    return 1;
}
#endif

HIDDEN const char *__layerc_rt_cpu_unsupported(void)
{
    CpuState state = read_state();
    for (int i = 0; __layerc_cpu_features[i]; i++)
        if (!has_feature(__layerc_cpu_features[i], &state)) return __layerc_cpu_messages[i];
    return NULL;
}
