/* target.h - what the code is compiled for: the triple, the CPU and its
 * features (--target, --target-cpu, --target-features; by default this
 * machine), and everything that follows from them in one table: the vector
 * unit the kernels are shaped for, the CPU features the library checks when
 * it is loaded (runtime/cpu_check.c), and the toolchain that builds for the
 * target (C compiler driver, runtime archive, emulator to run its tests).
 * emit_object.c makes the LLVM target machine from it; harness.c runs the
 * generated test program under the emulator for a foreign architecture.
 */
#ifndef LAYERC_TARGET_H
#define LAYERC_TARGET_H

#include <stdbool.h>
#include <stdio.h>

#include "arena.h"

typedef enum TargetArch { ARCH_X86_64, ARCH_AARCH64 } TargetArch;

/* The vector unit the kernels are tiled for: floats per register and register count. */
typedef struct VectorShape {
    int width, registers;
} VectorShape;

typedef struct Target {
    TargetArch arch;
    const char *name;          /* as layerc names it: "aarch64-linux-gnu" */
    const char *llvm_triple;   /* "aarch64-unknown-linux-gnu" */
    const char *cpu;           /* LLVM's CPU name (this machine's for a native build) */
    const char *llvm_features; /* the feature string of the LLVM target machine */
    const char *checked;       /* the checked features the code may use, "avx2,fma,...": create() requires them */
    bool native;               /* built for this machine's CPU and features */
    bool foreign;              /* another architecture than this machine's: runs under the emulator */
    VectorShape vector;
    const char *vector_unit;   /* "AVX-512", "AVX2", "SSE", "NEON" */
    const char *cc;            /* the C compiler driver that compiles and links for the target */
    const char *cc_target;     /* its first argument for another architecture ("--target=..."), else NULL */
    const char *runtime_subdir; /* where its runtime is under the runtime directory: "" or "aarch64-linux-gnu/" */
    const char *emulator;      /* NULL (runs here) or "qemu-aarch64" */
    const char *sysroot;       /* the emulator's -L: the target's libraries */
    int elf_machine;           /* EM_X86_64, EM_AARCH64 */
} Target;

/* Resolves the options (each NULL when not given: this machine) into *t,
 * its strings in arena a.  On an unknown triple, CPU or feature it prints a
 * usage error naming the valid ones to err and returns false. */
bool target_resolve(Arena *a, const char *triple, const char *cpu, const char *features, Target *t, FILE *err);

/* "x86_64-linux-gnu, CPU sapphirerapids (this machine), AVX-512: 16 floats a vector, 32 registers" */
const char *target_describe(Arena *a, const Target *t);

/* layerc targets: the triples, their CPUs and features, and this machine's choice. */
void targets_print(FILE *out);

#endif
