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

static uint64_t os_saved_state(void)
{
    unsigned r[4];
    if (!__get_cpuid(1, &r[EAX], &r[EBX], &r[ECX], &r[EDX]) || !(r[ECX] & (1u << 27))) return 0; /* no OSXSAVE */
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

static int has_feature(const char *name)
{
    for (size_t i = 0; i < sizeof FEATURES / sizeof FEATURES[0]; i++) {
        const X86Feature *f = &FEATURES[i];
        if (strcmp(f->name, name) != 0) continue;
        unsigned r[4] = {0, 0, 0, 0};
        if (!__get_cpuid_count(f->leaf, f->subleaf, &r[EAX], &r[EBX], &r[ECX], &r[EDX])) return 0;
        if (!(r[f->reg] >> f->bit & 1)) return 0;
        return (os_saved_state() & f->os_state) == f->os_state;
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

static int has_feature(const char *name)
{
    for (size_t i = 0; i < sizeof FEATURES / sizeof FEATURES[0]; i++) {
        const ArmFeature *f = &FEATURES[i];
        if (strcmp(f->name, name) != 0) continue;
        unsigned long caps = getauxval(f->word == 1 ? AT_HWCAP : AT_HWCAP2);
        return (int)(caps >> f->bit & 1);
    }
    return 1;
}

#else
static int has_feature(const char *name)
{
    (void)name;
    return 1;
}
#endif

HIDDEN const char *__layerc_rt_cpu_unsupported(void)
{
    for (int i = 0; __layerc_cpu_features[i]; i++)
        if (!has_feature(__layerc_cpu_features[i])) return __layerc_cpu_messages[i];
    return NULL;
}
