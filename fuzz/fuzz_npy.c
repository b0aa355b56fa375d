/* fuzz_npy.c - libFuzzer target: arbitrary bytes as a .npy file through
 * npy_read.  What reads is written back with npy_write (to a per-process
 * file under /dev/shm, or $TMPDIR) and read again: the round trip must give
 * the same dtype, shape and bytes. */
#include "fuzz_common.h"

#include <string.h>

#include "npy.h"

static FuzzFile file;
static char roundtrip_path[256];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void remove_roundtrip(void) { unlink(roundtrip_path); }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_file_open(&file, "fuzz.npy");
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(roundtrip_path, sizeof roundtrip_path, "%s/layerc_fuzz_npy.%ld.npy", dir, (long)getpid());
    atexit(remove_roundtrip);
    return 0;
}

static bool read_npy(Arena *a, const char *path, NpyArray *arr)
{
    Source src = {.path = path};
    Diag d;
    diag_init(&d, a, &src, fuzz_devnull());
    return npy_read(a, &d, path, arr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_file_write(&file, data, size);
    Arena a;
    arena_init(&a);
    NpyArray arr;
    if (read_npy(&a, file.path, &arr)) {
        char err[512];
        if (!npy_write(roundtrip_path, arr.dtype, &arr.shape, arr.data, err, sizeof err)) {
            fprintf(stderr, "fuzz_npy: npy_write refused what npy_read accepted: %s\n", err);
            abort();
        }
        NpyArray back;
        if (!read_npy(&a, roundtrip_path, &back)) {
            fprintf(stderr, "fuzz_npy: npy_read refused what npy_write wrote\n");
            abort();
        }
        size_t bytes = (size_t)arr.numel * (arr.dtype == DT_I64 ? 8 : 4);
        if (back.dtype != arr.dtype || back.numel != arr.numel || back.shape.rank != arr.shape.rank ||
            memcmp(back.shape.dims, arr.shape.dims, sizeof(int64_t) * (size_t)arr.shape.rank) != 0 ||
            memcmp(back.data, arr.data, bytes) != 0) {
            fprintf(stderr, "fuzz_npy: the write/read round trip changed the array\n");
            abort();
        }
    }
    arena_free(&a);
    return 0;
}
