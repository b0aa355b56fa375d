/* emit_weights.c - the weights in the library (see emit_weights.h).
 *
 * The object's layout: the ELF header, the weights section at offset 64
 * (its alignment; no bytes when only reserved), then the symbol table, the
 * two string tables and the section headers.  Sections: [1] .layerc_weights
 * (not .rodata.*, which the linker would merge into .rodata), [2] .symtab,
 * [3] .strtab, [4] .note.GNU-stack (empty: the object needs no executable
 * stack), [5] .shstrtab.
 */
#define _GNU_SOURCE /* copy_file_range */
#include "emit_weights.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WEIGHTS_SECTION ".layerc_weights"

enum { SEC_WEIGHTS = 1, SEC_SYMTAB, SEC_STRTAB, SEC_NOTE_STACK, SEC_SHSTRTAB, SECTION_COUNT };

static const char SECTION_NAMES[] = "\0" WEIGHTS_SECTION "\0.symtab\0.strtab\0.note.GNU-stack\0.shstrtab";
static const char SYMBOL_NAMES[] = "\0" CONSTANT_POOL_SYMBOL;

static Elf64_Word name_at(const char *table, size_t table_size, const char *name)
{
    for (size_t i = 1; i < table_size; i += strlen(table + i) + 1)
        if (strcmp(table + i, name) == 0) return (Elf64_Word)i;
    return 0;
}

static Elf64_Shdr section(const char *name, Elf64_Word type, Elf64_Xword flags, Elf64_Off offset, Elf64_Xword size,
                          Elf64_Xword align)
{
    return (Elf64_Shdr){.sh_name = name_at(SECTION_NAMES, sizeof SECTION_NAMES, name), .sh_type = type,
                        .sh_flags = flags, .sh_offset = offset, .sh_size = size, .sh_addralign = align};
}

static bool write_all(FILE *f, const void *data, size_t len) { return len == 0 || fwrite(data, 1, len, f) == len; }

int emit_weights_object(const ConstantPool *pool, const char *path, bool reserve_only, int elf_machine)
{
    Elf64_Sym symbols[2] = {{0}, {
        .st_name = 1,
        .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_OBJECT),
        .st_other = STV_HIDDEN,
        .st_shndx = SEC_WEIGHTS,
        .st_size = pool->len,
    }};
    size_t bytes = reserve_only ? 0 : pool->len; /* in this file */
    Elf64_Off weights_at = CONSTANT_ALIGN;
    Elf64_Off symtab_at = (weights_at + bytes + 7) / 8 * 8;
    Elf64_Off strtab_at = symtab_at + sizeof symbols;
    Elf64_Off shstrtab_at = strtab_at + sizeof SYMBOL_NAMES;
    Elf64_Off headers_at = (shstrtab_at + sizeof SECTION_NAMES + 7) / 8 * 8;

    Elf64_Shdr sections[SECTION_COUNT] = {{0}};
    /* Reserved room is aligned so that ld.lld puts it at CONSTANT_POOL_FILE_OFFSET,
     * where a pool kept in a file has it (splice_weights checks). */
    sections[SEC_WEIGHTS] = section(WEIGHTS_SECTION, reserve_only ? SHT_NOBITS : SHT_PROGBITS, SHF_ALLOC, weights_at,
                                    pool->len, reserve_only ? CONSTANT_POOL_FILE_OFFSET : CONSTANT_ALIGN);
    sections[SEC_SYMTAB] = section(".symtab", SHT_SYMTAB, 0, symtab_at, sizeof symbols, 8);
    sections[SEC_SYMTAB].sh_link = SEC_STRTAB;
    sections[SEC_SYMTAB].sh_info = 1; /* the first global symbol */
    sections[SEC_SYMTAB].sh_entsize = sizeof(Elf64_Sym);
    sections[SEC_STRTAB] = section(".strtab", SHT_STRTAB, 0, strtab_at, sizeof SYMBOL_NAMES, 1);
    sections[SEC_NOTE_STACK] = section(".note.GNU-stack", SHT_PROGBITS, 0, shstrtab_at, 0, 1);
    sections[SEC_SHSTRTAB] = section(".shstrtab", SHT_STRTAB, 0, shstrtab_at, sizeof SECTION_NAMES, 1);

    Elf64_Ehdr header = {
        .e_ident = {ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_NONE},
        .e_type = ET_REL,
        .e_machine = (Elf64_Half)elf_machine,
        .e_version = EV_CURRENT,
        .e_shoff = headers_at,
        .e_ehsize = sizeof(Elf64_Ehdr),
        .e_shentsize = sizeof(Elf64_Shdr),
        .e_shnum = SECTION_COUNT,
        .e_shstrndx = SEC_SHSTRTAB,
    };
    static const unsigned char zeros[CONSTANT_ALIGN];
    FILE *f = fopen(path, "wb");
    if (!f) return errno;
    bool ok = write_all(f, &header, sizeof header) && write_all(f, zeros, weights_at - sizeof header) &&
              write_all(f, pool->data, bytes) && write_all(f, zeros, symtab_at - weights_at - bytes) &&
              write_all(f, symbols, sizeof symbols) && write_all(f, SYMBOL_NAMES, sizeof SYMBOL_NAMES) &&
              write_all(f, SECTION_NAMES, sizeof SECTION_NAMES) &&
              write_all(f, zeros, headers_at - shstrtab_at - sizeof SECTION_NAMES) &&
              write_all(f, sections, sizeof sections);
    int error = ok ? 0 : (errno ? errno : EIO);
    if (fclose(f) != 0 && !error) error = errno ? errno : EIO;
    return error;
}

/* ---- splicing the pool into the linked library ---- */

enum { MAX_LIBRARY_SECTIONS = 4096 }; /* a linked model library has a few dozen */

static bool read_at(int fd, void *buf, size_t len, off_t at) { return pread(fd, buf, len, at) == (ssize_t)len; }

static bool write_at(int fd, const unsigned char *data, size_t len, off_t at)
{
    while (len) {
        ssize_t n = pwrite(fd, data, len < ((size_t)1 << 30) ? len : (size_t)1 << 30, at);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data += n;
        len -= (size_t)n;
        at += n;
    }
    return true;
}

/* The library's section headers (malloc'd; h->e_shnum of them) and the index of
 * the weights section, or NULL with *why set. */
static Elf64_Shdr *read_sections(int fd, const Elf64_Ehdr *h, int *weights, const char **why)
{
    *why = "the library's section headers cannot be read";
    if (h->e_shentsize != sizeof(Elf64_Shdr) || h->e_shnum == 0 || h->e_shnum > MAX_LIBRARY_SECTIONS ||
        h->e_shstrndx >= h->e_shnum)
        return NULL;
    Elf64_Shdr *s = malloc(h->e_shnum * sizeof *s);
    if (!s || !read_at(fd, s, h->e_shnum * sizeof *s, (off_t)h->e_shoff)) {
        free(s);
        return NULL;
    }
    const Elf64_Shdr *names = &s[h->e_shstrndx];
    char name[sizeof WEIGHTS_SECTION];
    *weights = -1;
    for (int i = 1; i < h->e_shnum && *weights < 0; i++)
        if (s[i].sh_name < names->sh_size && names->sh_size - s[i].sh_name >= sizeof name &&
            read_at(fd, name, sizeof name, (off_t)(names->sh_offset + s[i].sh_name)) &&
            memcmp(name, WEIGHTS_SECTION, sizeof name) == 0)
            *weights = i;
    if (*weights >= 0) return s;
    *why = "the library has no " WEIGHTS_SECTION " section";
    free(s);
    return NULL;
}

/* Where section w's addresses lie in the file image of a loadable segment
 * (the room lld left: it maps addresses to file offsets one to one within a
 * segment), or 0 when they do not. */
static Elf64_Off room_in_file(int fd, const Elf64_Ehdr *h, const Elf64_Shdr *w)
{
    if (h->e_phentsize != sizeof(Elf64_Phdr) || h->e_phnum == 0 || h->e_phnum >= PN_XNUM) return 0;
    for (int i = 0; i < h->e_phnum; i++) {
        Elf64_Phdr p;
        if (!read_at(fd, &p, sizeof p, (off_t)(h->e_phoff + i * sizeof p))) return 0;
        if (p.p_type == PT_LOAD && p.p_vaddr <= w->sh_addr && w->sh_addr - p.p_vaddr <= p.p_filesz &&
            w->sh_size <= p.p_filesz - (w->sh_addr - p.p_vaddr))
            return p.p_offset + (w->sh_addr - p.p_vaddr);
    }
    return 0;
}

/* Writes section header w (number `index`) into the library file fd. */
static bool write_section_header(int fd, const Elf64_Ehdr *h, const Elf64_Shdr *w, int index)
{
    return write_at(fd, (const unsigned char *)w, sizeof *w, (off_t)(h->e_shoff + (size_t)index * sizeof *w));
}

/* Copies bytes [from, from + len) of file `in` to the same place in `out`. */
static bool copy_range(int in, int out, off_t from, off_t len)
{
    off_t src = from, dst = from;
    while (len > 0) {
        ssize_t n = copy_file_range(in, &src, out, &dst, (size_t)len, 0);
        if (n <= 0) break; /* not supported here, or an error: read and write instead */
        len -= n;
    }
    unsigned char buf[1 << 16];
    while (len > 0) {
        ssize_t n = pread(in, buf, len < (off_t)sizeof buf ? (size_t)len : sizeof buf, src);
        if (n <= 0 || !write_at(out, buf, (size_t)n, dst)) return false;
        src += n, dst += n, len -= n;
    }
    return true;
}

/* The pool's file, which holds the weights where the library's room for them
 * is, becomes the library: the linker's output around that room is copied
 * into it, and it is given the name `adopted`. */
static const char *adopt_pool_file(int fd, const ConstantPool *pool, const Elf64_Ehdr *h, const Elf64_Shdr *w,
                                   int weights, const char *adopted)
{
    struct stat st;
    off_t end = CONSTANT_POOL_FILE_OFFSET + (off_t)pool->len;
    if (fstat(fd, &st) != 0 || st.st_size < end) return "the linker's output is shorter than its sections";
    if (!copy_range(fd, pool->file, 0, CONSTANT_POOL_FILE_OFFSET) || !copy_range(fd, pool->file, end, st.st_size - end) ||
        ftruncate(pool->file, st.st_size) != 0 || !write_section_header(pool->file, h, w, weights))
        return strerror(errno ? errno : EIO);
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", pool->file);
    return linkat(AT_FDCWD, self, AT_FDCWD, adopted, AT_SYMLINK_FOLLOW) == 0 ? NULL : strerror(errno);
}

static const char *splice_into(int fd, const ConstantPool *pool, const char *adopted, bool *was_adopted)
{
    Elf64_Ehdr h;
    if (!read_at(fd, &h, sizeof h, 0) || memcmp(h.e_ident, ELFMAG, SELFMAG) != 0 || h.e_ident[EI_CLASS] != ELFCLASS64)
        return "the linker's output is not a 64-bit ELF file";
    int weights;
    const char *why;
    Elf64_Shdr *s = read_sections(fd, &h, &weights, &why);
    if (!s) return why;
    Elf64_Shdr *w = &s[weights];
    Elf64_Off at = w->sh_type == SHT_NOBITS && w->sh_size == pool->len ? room_in_file(fd, &h, w) : 0;
    if (!at) {
        free(s);
        return "the linker left no room in the file for the weights (" WEIGHTS_SECTION " is not a hole in a loadable segment)";
    }
    w->sh_type = SHT_PROGBITS;
    w->sh_offset = at;
    why = NULL;
    if (pool->file >= 0 && at == CONSTANT_POOL_FILE_OFFSET) {
        why = adopt_pool_file(fd, pool, &h, w, weights, adopted);
        *was_adopted = !why;
    } else if (!write_at(fd, pool->data, pool->len, (off_t)at) || !write_section_header(fd, &h, w, weights)) {
        why = strerror(errno ? errno : EIO);
    }
    free(s);
    return why;
}

const char *splice_weights(const ConstantPool *pool, const char *library, const char *adopted, const char **result)
{
    int fd = open(library, O_RDWR | O_CLOEXEC);
    if (fd < 0) return strerror(errno);
    bool was_adopted = false;
    const char *why = splice_into(fd, pool, adopted, &was_adopted);
    if (close(fd) != 0 && !why) why = strerror(errno);
    *result = was_adopted ? adopted : library;
    return why;
}
