#!/usr/bin/env bash
# run.sh - builds the libFuzzer targets (fuzz/build.sh) and fuzzes each for a while.
#
#   bash fuzz/run.sh [SECONDS] [TARGET...]     (default 180 seconds each; targets: frontend safetensors npy)
#
# Every target starts from its committed corpus fuzz/corpus/TARGET (read only) and
# writes new inputs to a scratch corpus, build/fuzz/scratch/TARGET (kept across runs).
# A crash, leak, sanitizer report, timeout (-timeout=10) or out-of-memory (-rss_limit_mb=2048)
# stops that target and leaves the input in fuzz/crashes/TARGET/ (crash-*, leak-*, timeout-*, oom-*).
# Prints a line per target: executions, exec/s, final cov/ft, new inputs, and what it found.
# Logs: build/fuzz/logs/TARGET.log.
#
# Environment:
#   JOBS=N     targets fuzzed at once (default: 2 on a machine with 2 or more CPUs, else 1)
#   MERGE=1    afterwards, merge the scratch inputs that add coverage into fuzz/corpus/TARGET
#              (libFuzzer -merge=1), keeping it at most MAX_CORPUS (200) files where possible
#              (see merge_one); `MERGE=1 bash fuzz/run.sh 0` merges without fuzzing
#   FUZZ_ARGS  extra libFuzzer flags, e.g. FUZZ_ARGS="-only_ascii=1"
set -u
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-180}
shift $(($# > 0 ? 1 : 0))
TARGETS=("$@")
[ ${#TARGETS[@]} = 0 ] && TARGETS=(frontend safetensors npy)
if [ -z "${JOBS:-}" ]; then JOBS=$(nproc 2>/dev/null || echo 1); [ "$JOBS" -gt 2 ] && JOBS=2; fi
MAX_CORPUS=${MAX_CORPUS:-200}
OUT=build/fuzz

bash fuzz/build.sh "${TARGETS[@]}" || { echo "fuzz/run.sh: build failed" >&2; exit 2; }
mkdir -p "$OUT/logs"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

fuzz_one() {
    local t=$1 log=$OUT/logs/$1.log dict=()
    mkdir -p "$OUT/scratch/$t" "fuzz/crashes/$t"
    [ -f "fuzz/$t.dict" ] && dict=(-dict="fuzz/$t.dict")
    local start=$SECONDS
    # shellcheck disable=SC2086
    "$OUT/fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="fuzz/crashes/$t/" "${dict[@]}" ${FUZZ_ARGS:-} \
        "$OUT/scratch/$t" "fuzz/corpus/$t" >"$log" 2>&1
    echo $? >"$OUT/logs/$t.rc"
    echo $((SECONDS - start)) >"$OUT/logs/$t.time"
}

summary() {
    local t=$1 log=$OUT/logs/$1.log rc execs rate cov ft new found took
    rc=$(cat "$OUT/logs/$t.rc" 2>/dev/null || echo "?")
    took=$(cat "$OUT/logs/$t.time" 2>/dev/null || echo "?")
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    new=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    if [ "$rc" = 0 ]; then
        found="nothing found"
    else
        found="FOUND (exit $rc): $(grep -m1 -E '^==[0-9]+==ERROR|runtime error|ALARM|out-of-memory|deadly signal' "$log" | cut -c1-140)"
        found+="; input: $(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
    fi
    printf '%-12s %5ss  execs %-10s exec/s %-6s cov %-5s ft %-6s new %-5s %s\n' "$t" "$took" "${execs:-?}" \
        "${rate:-?}" "${cov:-?}" "${ft:-?}" "${new:-?}" "$found"
    [ "$rc" = 0 ]
}

# merge_one TARGET: the scratch inputs that add coverage join the committed corpus, which
# stays at most MAX_CORPUS files: first with libFuzzer's full features (edges and hit
# counts), keeping the committed files; if too many, edges only (-use_counters=0); if
# still too many, the committed corpus is minimised afresh on edges (SHA-1 file names).
merge_one() {
    local t=$1 before after work how log=$OUT/logs/$1.merge.log
    before=$(find "fuzz/corpus/$t" -type f | wc -l)
    : >"$log"
    for how in "keep:1" "keep:0" "fresh:0"; do
        work=$(mktemp -d "$OUT/merge.XXXXXX")
        [ "${how%:*}" = keep ] && cp -p "fuzz/corpus/$t"/* "$work"/
        "$OUT/fuzz_$t" -merge=1 -use_counters="${how#*:}" "$work" "fuzz/corpus/$t" "$OUT/scratch/$t" >>"$log" 2>&1 ||
            { rm -rf "$work"; echo "$t: merge failed (see $log)"; return 1; }
        after=$(find "$work" -type f | wc -l)
        if [ "$after" -le "$MAX_CORPUS" ] || [ "$how" = fresh:0 ]; then
            rm -rf "fuzz/corpus/$t" && mv "$work" "fuzz/corpus/$t" && chmod 755 "fuzz/corpus/$t"
            echo "$t: committed corpus $before -> $after files (merge ${how%:*}, use_counters=${how#*:})"
            return 0
        fi
        rm -rf "$work"
    done
}

status=0
if [ "$SECONDS_EACH" = 0 ]; then  # -max_total_time=0 would mean forever: merge only
    [ -n "${MERGE:-}" ] || { echo "fuzz/run.sh: 0 seconds: nothing to do (MERGE=1 merges the scratch corpus)"; exit 0; }
    for t in "${TARGETS[@]}"; do merge_one "$t" || status=1; done
    exit $status
fi
echo "fuzzing ${TARGETS[*]} for ${SECONDS_EACH}s each, $JOBS at a time"
running=0
for t in "${TARGETS[@]}"; do
    fuzz_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
done
wait

for t in "${TARGETS[@]}"; do summary "$t" || status=1; done
if [ -n "${MERGE:-}" ]; then
    for t in "${TARGETS[@]}"; do merge_one "$t" || status=1; done
fi
exit $status
