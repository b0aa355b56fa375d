#!/usr/bin/env bash
# bench/compare_builds.sh - one model built several ways, timed side by side
# with `layerc bench --json` (bench/fusion.sh and bench/winograd.sh are its
# two uses).  The builds (CONFIGS, from the table FLAGS below):
#   fused     all passes (the default): Conv2d + BatchNorm2d + ReLU is one kernel
#   unfused   --disable-pass fold-batchnorm --disable-pass fuse-epilogue: BatchNorm
#             and ReLU run as their own layers (BatchNorm's scale and shift are
#             still computed at compile time by fold-constants)
#   -O0       no graph passes and LLVM -O0 (batch 1 only: it is ~20x slower)
#   winograd  --winograd always: every eligible 3x3 or 5x5 convolution as Winograd, with
#             the cost rule's tile (4x4 on most layers)
#   winograd2x2  --winograd always --winograd-tile 2x2: F(2x2,3x3) and F(2x2,5x5)
#   direct    --winograd never: the register-tiled direct convolution everywhere
# The configurations are interleaved in ROUNDS rounds (the order reversed
# every other round), so that a change in the machine's load hits all of them
# alike.  Per configuration: the median over the rounds of each round's median
# run time, the range of those round medians, the smallest run and the median
# of the rounds' 90th percentiles; GFLOP/s from the median (the MACs of the
# model as written); the speedup over BASELINE as the median (and range) of
# the per-round ratios.
#
# usage: CONFIGS="fused unfused -O0" BASELINE=unfused bash bench/compare_builds.sh MODEL.nn
# environment:
#   LAYERC=./layerc   the compiler          ROUNDS=5        rounds
#   BATCHES="1 8"     batch sizes           THREADS=1       threads of the model
#   EXTRA=""          more `layerc bench` options for every run (e.g. "--min-time 2")
#   RESULTS=FILE      keep the raw JSON of every run there (one object per line)
set -euo pipefail

MODEL=${1:?usage: CONFIGS="A B" BASELINE=B bash bench/compare_builds.sh MODEL.nn}
CONFIGS=${CONFIGS:-"fused unfused -O0"}
BASELINE=${BASELINE:-unfused}
LAYERC=${LAYERC:-./layerc}
ROUNDS=${ROUNDS:-5}
BATCHES=${BATCHES:-"1 8"}
THREADS=${THREADS:-1}
EXTRA=${EXTRA:-}

if ! "$LAYERC" bench --help >/dev/null 2>&1; then
    echo "compare_builds.sh: '$LAYERC bench' is not available (build layerc, or set LAYERC)" >&2
    exit 2
fi
raw=${RESULTS:-$(mktemp /tmp/layerc-builds.XXXXXX)}
[ -n "${RESULTS:-}" ] || trap 'rm -f "$raw"' EXIT
: >"$raw"

# configuration name -> layerc options
declare -A FLAGS=(
    [fused]=""
    [unfused]="--disable-pass fold-batchnorm --disable-pass fuse-epilogue"
    [-O0]="-O0"
    [winograd]="--winograd always"
    [winograd2x2]="--winograd always --winograd-tile 2x2"
    [direct]="--winograd never"
)

configs_for_batch() { # the configurations measured at batch $1, reversed when $2 is even
    local list=() config
    for config in $CONFIGS; do
        [ "$config" = -O0 ] && [ "$1" != 1 ] && continue
        list+=("$config")
    done
    if [ $(($2 % 2)) = 0 ]; then
        for ((i = ${#list[@]} - 1; i >= 0; i--)); do echo "${list[i]}"; done
    else
        printf '%s\n' "${list[@]}"
    fi
}

echo "builds $CONFIGS of $MODEL, batches $BATCHES, $THREADS thread(s), $ROUNDS rounds ($LAYERC)" >&2
for round in $(seq 1 "$ROUNDS"); do
    for batch in $BATCHES; do
        mapfile -t configs < <(configs_for_batch "$batch" "$round")
        for config in "${configs[@]}"; do
            echo "  round $round/$ROUNDS  batch $batch  $config" >&2
            # shellcheck disable=SC2086 # the flags are words
            json=$("$LAYERC" bench "$MODEL" --json --batch "$batch" --threads "$THREADS" ${FLAGS[$config]} $EXTRA)
            python3 -c 'import json, sys; d = json.loads(sys.argv[1]); d.update(config=sys.argv[2], round=int(sys.argv[3])); print(json.dumps(d))' \
                "$json" "$config" "$round" >>"$raw"
        done
    done
done

python3 - "$raw" "$BASELINE" $CONFIGS <<'EOF'
import json, statistics, sys

runs = [json.loads(line) for line in open(sys.argv[1])]
first = runs[0]
print(f"model {first['model']} ({first['file']}), {first['threads']} thread(s), "
      f"{first['flops'] / first['batch'] / 1e9:.3f} GFLOP per sample, {max(r['round'] for r in runs)} rounds")
print()
baseline, configs = sys.argv[2], sys.argv[3:]
header = ("batch", "build", "median ms", "round medians", "min ms", "p90 ms", "GFLOP/s", "vs " + baseline)
rows = []
for batch in sorted({r["batch"] for r in runs}):
    at = [r for r in runs if r["batch"] == batch]
    by = {}
    for r in at:
        by.setdefault(r["config"], {})[r["round"]] = r
    base = by.get(baseline, {})
    for config in configs:
        if config not in by:
            continue
        rs = by[config]
        med = statistics.median(r["median_ms"] for r in rs.values())
        lo = min(r["median_ms"] for r in rs.values())
        hi = max(r["median_ms"] for r in rs.values())
        mn = min(r["min_ms"] for r in rs.values())
        p90 = statistics.median(r["p90_ms"] for r in rs.values())
        gf = rs[next(iter(rs))]["flops"] / (med * 1e-3) / 1e9
        ratios = [base[k]["median_ms"] / rs[k]["median_ms"] for k in rs if k in base]
        if config == baseline or not ratios:
            vs = "1.000x" if config == baseline else ""
        else:
            vs = f"{statistics.median(ratios):.3f}x ({min(ratios):.3f}-{max(ratios):.3f})"
        rows.append((str(batch), config, f"{med:.2f}", f"{lo:.2f}-{hi:.2f}", f"{mn:.2f}", f"{p90:.2f}", f"{gf:.2f}", vs))

widths = [max(len(x) for x in col) for col in zip(header, *rows)]
line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
print(line(header))
print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
for row in rows:
    print(line(row))
print()
print("median ms: median over the rounds of each round's median run; round medians: their range;")
print("min ms: the fastest run; p90 ms: median of the rounds' 90th percentiles; GFLOP/s: 2 x MACs of the")
print("model as written / median; vs %s: median (range) over the rounds of %s median / this median." % (baseline, baseline))
EOF
