/* test_emit_weights.c - tests of compiler/emit_weights.c: the weights
 * object, and splice_weights putting the constant pool into a library linked
 * by ld.lld, both ways:
 *  - a pool in memory is written into the hole lld left (the library file
 *    is the linker's output);
 *  - a pool kept in a file (constant_pool_use_file) whose bytes lie where
 *    the hole is becomes the library: lld's other bytes are copied into it.
 * Each library is read back as ELF: the section must hold exactly the pool's
 * bytes, as PROGBITS, and every other byte must be the linker's.  Needs
 * ld.lld (cc -fuse-ld=lld); without it the tests say so and count nothing.
 * Ends with "emit: N passed, M failed"; exits 1 when anything failed.
 */
#define _GNU_SOURCE /* O_TMPFILE */
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emit_object.h"
#include "emit_weights.h"
#include "../unit_check.h"

/* A whole file, malloc'd; *len its size. */
static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(size > 0 ? (size_t)size : 1);
    *len = buf && size > 0 && fread(buf, 1, (size_t)size, f) == (size_t)size ? (size_t)size : 0;
    fclose(f);
    return buf;
}

/* The .layerc_weights section header of the ELF image, or NULL. */
static const Elf64_Shdr *weights_section(const unsigned char *elf, size_t len)
{
    const Elf64_Ehdr *h = (const Elf64_Ehdr *)elf;
    if (len < sizeof *h || h->e_shoff + (size_t)h->e_shnum * sizeof(Elf64_Shdr) > len || h->e_shstrndx >= h->e_shnum) return NULL;
    const Elf64_Shdr *s = (const Elf64_Shdr *)(elf + h->e_shoff);
    const char *names = (const char *)elf + s[h->e_shstrndx].sh_offset;
    for (int i = 1; i < h->e_shnum; i++)
        if (strcmp(names + s[i].sh_name, ".layerc_weights") == 0) return &s[i];
    return NULL;
}

/* A pool of three arrays of recognisable values (3 MiB: more than one growth step). */
static void fill_pool(ConstantPool *pool)
{
    size_t counts[3] = {1000, 786432, 17}, offset;
    for (int a = 0; a < 3; a++) {
        float *x = constant_pool_space(pool, counts[a] * sizeof(float), &offset);
        for (size_t i = 0; i < counts[a]; i++) x[i] = (float)(a * 1000003 + i) * 0.5f;
    }
}

/* Writes the reserving object and links it alone into `so` with ld.lld. */
static bool link_reserved(Ctx *t, const ConstantPool *pool, const char *so)
{
    char object[128], command[512];
    snprintf(object, sizeof object, "%s/weights.o", t->dir);
    if (emit_weights_object(pool, object, true, EM_X86_64) != 0) return false;
    snprintf(command, sizeof command, "cc -shared -fuse-ld=lld -Wl,--build-id=none -o %s %s", so, object);
    return system(command) == 0;
}

/* The library holds the pool at its section, as PROGBITS (at expected_offset
 * unless it is 0); `linked` (the linker's output) and it differ nowhere else
 * but in that section's header. */
static void check_library(Ctx *t, const char *what, const ConstantPool *pool, const char *library, const char *linked,
                          size_t expected_offset)
{
    char name[128], detail[256] = "";
    size_t len = 0, linked_len = 0;
    unsigned char *lib = read_file(library, &len), *orig = read_file(linked, &linked_len);
    const Elf64_Shdr *w = lib ? weights_section(lib, len) : NULL;
    snprintf(name, sizeof name, "%s: the section holds the pool's bytes as PROGBITS", what);
    bool holds = w && w->sh_type == SHT_PROGBITS && w->sh_size == pool->len && w->sh_offset + pool->len <= len &&
                 memcmp(lib + w->sh_offset, pool->data, pool->len) == 0;
    if (w) snprintf(detail, sizeof detail, "type %u, offset %llu, size %llu (pool %zu)", w->sh_type,
                    (unsigned long long)w->sh_offset, (unsigned long long)w->sh_size, pool->len);
    check(t, holds, name, detail);
    if (expected_offset) {
        snprintf(name, sizeof name, "%s: the section is at offset %zu", what, expected_offset);
        check(t, w && w->sh_offset == expected_offset, name, detail);
    }
    snprintf(name, sizeof name, "%s: every other byte is the linker's", what);
    bool same = w && len == linked_len;
    for (size_t i = 0; same && i < len; i++) {
        size_t header_at = (size_t)((const unsigned char *)w - lib);
        bool in_section = i >= w->sh_offset && i < w->sh_offset + pool->len;
        bool in_header = i >= header_at && i < header_at + sizeof *w;
        same = in_section || in_header || lib[i] == orig[i];
    }
    snprintf(detail, sizeof detail, "%zu bytes against the linker's %zu", len, linked_len);
    check(t, same, name, detail);
    free(lib);
    free(orig);
}

static void test_pool_in_memory(Ctx *t)
{
    ConstantPool pool;
    constant_pool_init(&pool);
    fill_pool(&pool);
    char so[128], adopted[128];
    snprintf(so, sizeof so, "%s/memory.so", t->dir);
    snprintf(adopted, sizeof adopted, "%s/memory.adopted.so", t->dir);
    check(t, link_reserved(t, &pool, so), "memory: ld.lld links the reserving object", "");
    char linked[160];
    snprintf(linked, sizeof linked, "%s.linked", so);
    char command[400];
    snprintf(command, sizeof command, "cp %s %s", so, linked);
    check(t, system(command) == 0, "memory: a copy of the linker's output", "");
    const char *library = NULL;
    const char *why = splice_weights(&pool, so, adopted, &library);
    check(t, !why, "memory: splice_weights succeeds", why);
    check(t, library && strcmp(library, so) == 0 && access(adopted, F_OK) != 0,
          "memory: the linker's output is the library", library);
    check_library(t, "memory", &pool, so, linked, 0);
    constant_pool_free(&pool);
}

static void test_pool_in_file(Ctx *t)
{
    ConstantPool pool;
    constant_pool_init(&pool);
    int file = open(t->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0755);
    check(t, file >= 0, "file: an unnamed file in the directory", "");
    if (file < 0) return;
    constant_pool_use_file(&pool, file);
    fill_pool(&pool);
    char so[128], adopted[128];
    snprintf(so, sizeof so, "%s/file.so", t->dir);
    snprintf(adopted, sizeof adopted, "%s/file.adopted.so", t->dir);
    check(t, link_reserved(t, &pool, so), "file: ld.lld links the reserving object", "");
    const char *library = NULL;
    const char *why = splice_weights(&pool, so, adopted, &library);
    check(t, !why, "file: splice_weights succeeds", why);
    check(t, library && strcmp(library, adopted) == 0, "file: the pool's file is the library, named", library);
    /* so (the linker's output) is left as it was: the reference for every other byte */
    check_library(t, "file", &pool, adopted, so, CONSTANT_POOL_FILE_OFFSET);
    constant_pool_free(&pool);
}

/* An object that holds the bytes links into a library without room to fill. */
static void test_no_room(Ctx *t)
{
    ConstantPool pool;
    constant_pool_init(&pool);
    fill_pool(&pool);
    char object[128], so[128], command[512];
    snprintf(object, sizeof object, "%s/bytes.o", t->dir);
    snprintf(so, sizeof so, "%s/bytes.so", t->dir);
    snprintf(command, sizeof command, "cc -shared -fuse-ld=lld -o %s %s", so, object);
    check(t, emit_weights_object(&pool, object, false, EM_X86_64) == 0 && system(command) == 0, "no room: the object with bytes links", "");
    const char *library = NULL;
    const char *why = splice_weights(&pool, so, so, &library);
    check(t, why && strstr(why, "left no room in the file for the weights"), "no room: refused with the reason", why);
    constant_pool_free(&pool);
}

int main(void)
{
    Ctx t = {.dir = "/tmp/layerc-emit-XXXXXX"};
    if (!mkdtemp(t.dir)) {
        perror("mkdtemp");
        return 2;
    }
    if (!linker_is_lld()) {
        printf("emit: no ld.lld on PATH: the splice tests need it and did not run\n");
    } else {
        test_pool_in_memory(&t);
        test_pool_in_file(&t);
        test_no_room(&t);
    }
    char command[128];
    snprintf(command, sizeof command, "rm -rf %s", t.dir);
    if (!getenv("KEEP") && system(command) != 0) printf("could not remove %s\n", t.dir);
    printf("emit: %d passed, %d failed\n", t.passed, t.failed);
    return t.failed ? 1 : 0;
}
