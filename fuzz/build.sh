#!/usr/bin/env bash
# build.sh - builds the libFuzzer targets fuzz/fuzz_*.c into build/fuzz/.
#
# The compiler's sources (compiler/*.c but main.c, and the flex/bison output
# build/parser.c, build/lexer.c) are compiled with clang-19 and
# -fsanitize=fuzzer-no-link,address,undefined into build/fuzz/obj/ (only what
# is out of date), then each target is linked with -fsanitize=fuzzer.
# Usage: bash fuzz/build.sh [TARGET...]      (default: every fuzz/fuzz_*.c)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CLANG=${CLANG:-clang-19}
LLVM_CONFIG=${LLVM_CONFIG:-llvm-config-19}
OUT=build/fuzz
OBJ=$OUT/obj

command -v "$CLANG" >/dev/null || { echo "fuzz/build.sh: $CLANG not found (apt-get install clang-19)" >&2; exit 1; }
# The generated parser and lexer come from the main Makefile.
make -s build/parser.c build/parser.h build/lexer.c build/lexer.h

LLVM_INC=$("$LLVM_CONFIG" --includedir)
LLVM_LIB=$("$LLVM_CONFIG" --libdir)
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
CFLAGS=(-std=gnu11 -g -O1 -Wall -Wextra -Wno-unused-parameter -Icompiler -Iruntime -Ibuild -isystem "$LLVM_INC"
        "-DLAYERC_RUNTIME_DIR=\"$ROOT/build\"" "-DLAYERC_INCLUDE_DIR=\"$ROOT/runtime\"")
GEN_CFLAGS=(-Wno-unused-function -Wno-sign-compare -Wno-unused-parameter -Wno-unused-but-set-variable)
LDLIBS=(-lcjson -lm -L"$LLVM_LIB" -lLLVM-19)
mkdir -p "$OBJ"

HDRS=(compiler/*.h compiler/layers.def compiler/cpu_features.def runtime/*.h runtime/cpu_check.def build/parser.h build/lexer.h)
newest_hdr=$(ls -t "${HDRS[@]}" | head -n 1)

# compile SRC OBJ [EXTRA FLAGS...]: only when the object is older than its source or any header.
compile() {
    local src=$1 obj=$2; shift 2
    if [ -f "$obj" ] && [ "$obj" -nt "$src" ] && [ "$obj" -nt "$newest_hdr" ] && [ "$obj" -nt "$0" ]; then return 0; fi
    echo "  CC $src"
    # shellcheck disable=SC2086
    "$CLANG" "${CFLAGS[@]}" "$@" $SAN -fsanitize=fuzzer-no-link -c -o "$obj" "$src"
}

pids=()
objs=()
jobs_max=${JOBS:-2}
for src in compiler/*.c build/parser.c build/lexer.c; do
    base=$(basename "$src" .c)
    [ "$base" = main ] && continue
    obj=$OBJ/$base.o
    objs+=("$obj")
    extra=()
    case $src in build/*) extra=("${GEN_CFLAGS[@]}") ;; esac
    compile "$src" "$obj" "${extra[@]}" &
    pids+=($!)
    if [ "${#pids[@]}" -ge "$jobs_max" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p"; done

targets=("$@")
if [ ${#targets[@]} = 0 ]; then
    for f in fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi
for t in "${targets[@]}"; do
    t=${t#fuzz_}
    bin=$OUT/fuzz_$t
    src=fuzz/fuzz_$t.c
    stale=0
    [ -f "$bin" ] && [ "$bin" -nt "$src" ] && [ "$bin" -nt fuzz/fuzz_common.h ] || stale=1
    for o in "${objs[@]}"; do [ "$o" -nt "$bin" ] && stale=1; done
    if [ $stale = 1 ]; then
        echo "  LINK $bin"
        # shellcheck disable=SC2086
        "$CLANG" "${CFLAGS[@]}" $SAN -fsanitize=fuzzer -o "$bin" "$src" "${objs[@]}" "${LDLIBS[@]}"
    fi
done
