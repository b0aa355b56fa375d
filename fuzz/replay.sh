#!/usr/bin/env bash
# replay.sh - regression test: runs every saved input, fuzz/crashes/TARGET/* (past findings, fixed)
# and fuzz/corpus/TARGET/*, once through its libFuzzer target (built by fuzz/build.sh if out of
# date), without fuzzing.  Any crash, leak, sanitizer report or timeout fails.
# Prints "fuzz replay: N inputs, M failed" last; exits 1 on a failure, 2 when it cannot build.
set -u
cd "$(dirname "$0")/.."
OUT=build/fuzz
TARGETS=(frontend safetensors npy)
bash fuzz/build.sh "${TARGETS[@]}" >"${TMPDIR:-/tmp}/layerc-fuzz-build.$$.log" 2>&1 || {
    cat "${TMPDIR:-/tmp}/layerc-fuzz-build.$$.log" >&2; rm -f "${TMPDIR:-/tmp}/layerc-fuzz-build.$$.log"
    echo "fuzz replay: cannot build the fuzz targets" >&2; exit 2
}
rm -f "${TMPDIR:-/tmp}/layerc-fuzz-build.$$.log"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

total=0
failed=0
for t in "${TARGETS[@]}"; do
    for dir in "fuzz/crashes/$t" "fuzz/corpus/$t"; do
        [ -d "$dir" ] || continue
        mapfile -t files < <(find "$dir" -type f ! -name '.*' ! -name '*.md' | sort)
        [ ${#files[@]} = 0 ] && continue
        total=$((total + ${#files[@]}))
        # Files given by name run once each, in full, with no fuzzing: all of a directory in one
        # process; when that fails, one process per file, so that a crash hides no other.
        "$OUT/fuzz_$t" -timeout=10 -rss_limit_mb=2048 "${files[@]}" >/dev/null 2>&1 && continue
        for f in "${files[@]}"; do
            out=$("$OUT/fuzz_$t" -timeout=10 -rss_limit_mb=2048 "$f" 2>&1) && continue
            failed=$((failed + 1))
            echo "FAIL fuzz_$t $f:"
            grep -E 'ERROR|runtime error|SUMMARY|ALARM|^    #[0-9]+ ' <<<"$out" | head -n 12 | sed 's/^/    /'
        done
    done
done
echo "fuzz replay: $total inputs, $failed failed"
[ "$failed" = 0 ]
