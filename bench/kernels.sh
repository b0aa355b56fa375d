#!/usr/bin/env bash
# bench/kernels.sh - how close the direct convolution comes to the FMA peak
# of the vector extension it is built for, and what a second thread buys,
# in one run (part of `make bench`; results in docs/benchmarks.md).
#
#  1. The FP32 FMA peak at 1 thread of each extension this machine has
#     (bench/peak.c --isa avx512 / avx2), and what the channel-vectorised
#     tile's loads and FMAs reach alone with their data in L1
#     (bench/tile_loop.c): the ceiling of that instruction mix.
#  2. The benchmark convolutions (bench/conv*.nn) with the direct kernel
#     (--winograd never), 1 thread: GFLOP/s and % of the peak of the
#     extension the build uses: the native build (AVX-512 on an AVX-512
#     host) and an AVX2 build (--target-cpu haswell) side by side, with the
#     native/AVX2 ratio; then the default build (Winograd where it pays) for
#     reference (its GFLOP/s counts the direct sum's MACs, so it can pass the
#     peak).
#  3. Every example and the conv stack at batch 1: 1 and 2 threads and the
#     speed-up, the two runs alternating ROUNDS times (median of the rounds).
#
# usage: bash bench/kernels.sh   (LAYERC=./layerc, ROUNDS=3, MIN_TIME=1 seconds a run)
set -euo pipefail
cd "$(dirname "$0")/.."
LAYERC=${LAYERC:-./layerc}
ROUNDS=${ROUNDS:-3}
MIN_TIME=${MIN_TIME:-1}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cc -O2 -mavx2 -mfma -pthread -o "$WORK/peak" bench/peak.c
native_isa=avx2
grep -qw avx512f /proc/cpuinfo && native_isa=avx512
peak_of() { "$WORK/peak" --threads 1 --isa "$1" | awk '/1 thread/ {print $4}'; }
declare -A PEAK
for isa in $native_isa avx2; do PEAK[$isa]=$(peak_of "$isa"); done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "FMA peak, 1 thread: ${native_isa} ${PEAK[$native_isa]} GFLOP/s$([ "$native_isa" != avx2 ] && echo ", avx2 ${PEAK[avx2]} GFLOP/s")"
# The channel-vectorised tile's loop alone, data in L1 (bench/tile_loop.c), with the tile table's shapes.
clang-19 -O3 -march=native -DVECTORS=2 -DPOSITIONS=12 -o "$WORK/tile_native" bench/tile_loop.c 2>/dev/null
clang-19 -O3 -mavx2 -mfma -DVECTORS=2 -DPOSITIONS=6 -o "$WORK/tile_avx2" bench/tile_loop.c
tile_native=$("$WORK/tile_native" | awk '{print $1}')
tile_avx2=$("$WORK/tile_avx2" | awk '{print $1}')
echo "the channel tile's loop alone, data in L1: ${native_isa} 2 x 12 ${tile_native} GFLOP/s ($(awk -v g="$tile_native" -v p="${PEAK[$native_isa]}" 'BEGIN {printf "%.1f%%", 100 * g / p}'))$([ "$native_isa" != avx2 ] && echo ", avx2 2 x 6 ${tile_avx2} GFLOP/s ($(awk -v g="$tile_avx2" -v p="${PEAK[avx2]}" 'BEGIN {printf "%.1f%%", 100 * g / p}'))")"
echo

# GFLOP/s of one `layerc bench` run (the model's MACs as written, from the median).
gflops() { "$LAYERC" bench "$@" --min-time "$MIN_TIME" 2>/dev/null | awk '/^GFLOP\/s/ {print $2}'; }
median_ms() { "$LAYERC" bench "$@" --min-time "$MIN_TIME" 2>/dev/null | awk '/^median/ {print $2}'; }
percent() { awk -v g="$1" -v p="$2" 'BEGIN {printf "%.1f%%", 100 * g / p}'; }
# The share of a single-convolution model's MACs whose input is not padding
# (input f32[N, C, H, W], Conv2d(C, K, k, padding=p), stride 1): the kernel
# vectorised over output channels leaves the rest out, so GFLOP/s on the
# MACs as written would overstate its work by up to 17% (5x5 at 16x16).
unpadded_share() {
    python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
h, w = map(int, re.search(r"input \w+: f32\[[^,]+, *\d+, *(\d+), *(\d+)\]", text).groups())
k, p = map(int, re.search(r"Conv2d\(\d+, *\d+, *(\d+), *padding=(\d+)\)", text).groups())
def taps(size):  # taps inside the input, summed over the outputs of one axis
    out = size + 2 * p - k + 1
    return sum(1 for o in range(out) for t in range(k) if 0 <= o - p + t < size), out * k
inside_h, all_h = taps(h)
inside_w, all_w = taps(w)
print(inside_h * inside_w / (all_h * all_w))
PY
}

echo "direct convolution, batch as in the model, 1 thread: GFLOP/s on the MACs as written, and % of the"
echo "peak of the build's extension on the MACs outside the padding (the work done)"
printf '%-16s %7s %20s %20s %8s %14s\n' model inside "$native_isa build" "avx2 build" ratio "default build"
for model in bench/conv*.nn; do
    share=$(unpadded_share "$model")
    native=$(gflops "$model" --winograd never)
    avx2=$(gflops "$model" --winograd never --target-cpu haswell)
    default=$(gflops "$model")
    done_native=$(awk -v g="$native" -v s="$share" 'BEGIN {print g * s}')
    done_avx2=$(awk -v g="$avx2" -v s="$share" 'BEGIN {print g * s}')
    printf '%-16s %6.1f%% %9s %10s %9s %10s %7.2fx %14s\n' "$(basename "$model" .nn)" "$(awk -v s="$share" 'BEGIN {print 100 * s}')" \
        "$native" "($(percent "$done_native" "${PEAK[$native_isa]}"))" "$avx2" "($(percent "$done_avx2" "${PEAK[avx2]}"))" \
        "$(awk -v a="$native" -v b="$avx2" 'BEGIN {print a / b}')" "$default"
done
echo

echo "batch 1, 1 and 2 threads (median ms of $ROUNDS alternating rounds)"
printf '%-18s %12s %12s %9s\n' model "1 thread" "2 threads" speed-up
for model in examples/*.nn bench/vgg_block.nn; do
    grep -q '^ *input ' "$model" || continue
    one=() two=()
    for ((r = 0; r < ROUNDS; r++)); do
        one+=("$(median_ms "$model" --threads 1)")
        two+=("$(median_ms "$model" --threads 2)")
    done
    m1=$(printf '%s\n' "${one[@]}" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
    m2=$(printf '%s\n' "${two[@]}" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
    [ -n "$m1" ] && [ -n "$m2" ] || continue
    printf '%-18s %12s %12s %8.2fx\n' "$(basename "$model" .nn)" "$m1" "$m2" "$(awk -v a="$m1" -v b="$m2" 'BEGIN {print a / b}')"
done
