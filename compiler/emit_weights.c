/* emit_weights.c - the weights as an x86-64 ELF object (see emit_weights.h).
 *
 * Layout: the ELF header, the weights section at offset 64 (its alignment),
 * then the symbol table, the two string tables and the section headers.
 * Sections: [1] .rodata.layerc_weights, [2] .symtab, [3] .strtab,
 * [4] .note.GNU-stack (empty: the object needs no executable stack),
 * [5] .shstrtab.
 */
#include "emit_weights.h"

#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

enum { SEC_WEIGHTS = 1, SEC_SYMTAB, SEC_STRTAB, SEC_NOTE_STACK, SEC_SHSTRTAB, SECTION_COUNT };

static const char SECTION_NAMES[] = "\0.rodata.layerc_weights\0.symtab\0.strtab\0.note.GNU-stack\0.shstrtab";
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

int emit_weights_object(const ConstantPool *pool, const char *path)
{
    Elf64_Sym symbols[2] = {{0}, {
        .st_name = 1,
        .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_OBJECT),
        .st_other = STV_HIDDEN,
        .st_shndx = SEC_WEIGHTS,
        .st_size = pool->len,
    }};
    Elf64_Off weights_at = CONSTANT_ALIGN;
    Elf64_Off symtab_at = (weights_at + pool->len + 7) / 8 * 8;
    Elf64_Off strtab_at = symtab_at + sizeof symbols;
    Elf64_Off shstrtab_at = strtab_at + sizeof SYMBOL_NAMES;
    Elf64_Off headers_at = (shstrtab_at + sizeof SECTION_NAMES + 7) / 8 * 8;

    Elf64_Shdr sections[SECTION_COUNT] = {{0}};
    sections[SEC_WEIGHTS] = section(".rodata.layerc_weights", SHT_PROGBITS, SHF_ALLOC, weights_at, pool->len, CONSTANT_ALIGN);
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
        .e_machine = EM_X86_64,
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
              write_all(f, pool->data, pool->len) && write_all(f, zeros, symtab_at - weights_at - pool->len) &&
              write_all(f, symbols, sizeof symbols) && write_all(f, SYMBOL_NAMES, sizeof SYMBOL_NAMES) &&
              write_all(f, SECTION_NAMES, sizeof SECTION_NAMES) &&
              write_all(f, zeros, headers_at - shstrtab_at - sizeof SECTION_NAMES) &&
              write_all(f, sections, sizeof sections);
    int error = ok ? 0 : (errno ? errno : EIO);
    if (fclose(f) != 0 && !error) error = errno ? errno : EIO;
    return error;
}
