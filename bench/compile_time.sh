#!/usr/bin/env bash
# bench/compile_time.sh - how long `layerc build` takes, stage by stage
# (--time-report), for VGG16-BN (138 M parameters, a 600 MB library),
# CIFAR-10 and LeNet-5, each built ROUNDS times in a row (random weights, the
# output replaced every time as a user's rebuild does).  Prints per model the
# median, fastest and slowest time of every stage and of the whole command.
# With BASELINE=/path/to/an/older/layerc the two compilers alternate round by
# round and the table shows both and the ratio of the medians.
# usage: bash bench/compile_time.sh   (LAYERC=./layerc ROUNDS=7 MODELS="..." BASELINE=)
cd "$(dirname "$0")/.." || exit 2
LAYERC=${LAYERC:-./layerc}
ROUNDS=${ROUNDS:-7}
MODELS=${MODELS:-"examples/vgg16_bn.nn examples/cifar10.nn examples/lenet5.nn"}
BASELINE=${BASELINE:-}
[ -x "$LAYERC" ] || { echo "compile_time.sh: no compiler at $LAYERC (run 'make')" >&2; exit 2; }
[ -z "$BASELINE" ] || [ -x "$BASELINE" ] || { echo "compile_time.sh: no compiler at $BASELINE" >&2; exit 2; }
TMP=$(mktemp -d /tmp/layerc-compile-time.XXXXXX) || exit 2
trap 'rm -rf "$TMP"' EXIT

# build COMPILER MODEL LOG: one build; appends "stage<TAB>seconds" lines to LOG, "total" last.
build() {
    local start end out
    start=$(date +%s.%N)
    out=$("$1" build "$2" -o "$TMP/lib.so" --time-report 2>&1) || { echo "$out" >&2; exit 1; }
    end=$(date +%s.%N)
    sed -nE 's/^layerc: time: (.*[a-z]) +([0-9.]+) s.*$/\1\t\2/p' <<<"$out" >>"$3"
    printf 'total (wall)\t%s\n' "$(python3 -c "print(round($end - $start, 3))")" >>"$3"
}

echo "layerc build, $ROUNDS rounds per model, on $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
for model in $MODELS; do
    : >"$TMP/new.log"; : >"$TMP/base.log"
    for ((r = 0; r < ROUNDS; r++)); do
        build "$LAYERC" "$model" "$TMP/new.log"
        [ -n "$BASELINE" ] && build "$BASELINE" "$model" "$TMP/base.log"
    done
    python3 - "$model" "$TMP/new.log" "$TMP/base.log" <<'EOF'
import statistics, sys
model, new_log, base_log = sys.argv[1:]
def stages(path):
    order, times = [], {}
    for line in open(path):
        name, seconds = line.rstrip("\n").split("\t")
        if name not in times: order.append(name); times[name] = []
        times[name].append(float(seconds))
    return order, times
order, new = stages(new_log)
base_order, base = stages(base_log)
for name in base_order:
    if name not in order: order.insert(len(order) - 1, name)
def cell(t):
    return f"{statistics.median(t):7.3f} ({min(t):.3f}-{max(t):.3f})" if t else f"{'-':>7} {'':13}"
print(f"\n{model}")
print(f"  {'stage':<16} {'median s (fastest-slowest)':>28}" + (f" {'baseline':>28} {'baseline/new':>12}" if base else ""))
for name in order:
    row = f"  {name:<16} {cell(new.get(name, [])):>28}"
    if base:
        b, n = base.get(name, []), new.get(name, [])
        ratio = f"{statistics.median(b) / statistics.median(n):.2f}x" if b and n and min(statistics.median(b), statistics.median(n)) >= 0.01 else "-"
        row += f" {cell(b):>28} {ratio:>12}"
    print(row)
EOF
done
