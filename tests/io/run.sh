#!/usr/bin/env bash
# run.sh - builds tests/io/test_io.c (after `make`, which generates the parser)
# twice, plainly and with AddressSanitizer + UBSan, and runs both builds.
# Each run ends with "io: N passed, M failed"; exits non-zero when any failed.
set -eu
cd "$(dirname "$0")/../.."
OUT=${TMPDIR:-/tmp}/layerc-test-io.$$
mkdir -p "$OUT"
trap 'rm -rf "$OUT"' EXIT
WARN="-std=gnu11 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes"
SRCS="tests/io/test_io.c compiler/weights.c compiler/npy.c compiler/arena.c compiler/diag.c compiler/frontend.c
      compiler/parse.c compiler/bind.c compiler/layer_args.c compiler/infer_shapes.c compiler/rules_dense.c
      compiler/rules_sequence.c compiler/rules_spatial.c"
GEN="build/parser.c build/lexer.c"
GEN_WARN="-Wno-unused-function -Wno-sign-compare -Wno-unused-parameter"
SAN="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
status=0
build() { # NAME FLAGS
    local name=$1 flags=$2 objs=()
    for g in $GEN; do
        cc $WARN $flags $GEN_WARN -Icompiler -Ibuild -c -o "$OUT/$name-$(basename "$g" .c).o" "$g"
        objs+=("$OUT/$name-$(basename "$g" .c).o")
    done
    cc $WARN $flags -Icompiler -Ibuild -o "$OUT/$name" $SRCS "${objs[@]}" -lcjson -lm
}
build test_io "-O2"
"$OUT/test_io" || status=1
build test_io_san "$SAN"
ASAN_OPTIONS=detect_leaks=1 "$OUT/test_io_san" || status=1
exit $status
