#!/usr/bin/env bash
# run.sh - runs every layerc test suite and ends with "N passed, N failed".
#
# Suites (each file is one test; expectations sit next to their inputs):
#   cli           command-line behaviour and exit statuses
#   torch-shapes  `layerc shapes --format json` vs PyTorch's own goldens (tests/golden/shapes)
#   reports       `layerc shapes --explain` text vs tests/reports/*.expected
#   diagnostics   `layerc check` output and exit status vs tests/diagnostics/*.expected
#   hostile       garbage, huge lines, deep nesting, overflowing sizes: exit 1, no crash, no hang
#   unit          C unit tests of the .npy/safetensors readers, the reference interpreter and the
#                 weights' splice into the library (tests/emit, needs ld.lld)
#   golden        `layerc test` of every case in tests/golden/outputs against PyTorch's outputs
#   export        the models tools/torch2nn.py exported from PyTorch (tests/export/*/): `layerc check` is clean,
#                 `layerc test` against PyTorch's outputs (regenerated and compared by `make test-export`)
#   examples      `layerc test` of every example (random weights, checked against the reference)
#   ir            `layerc dump-ir --print-after-all` of tests/ir/*.nn vs their .expected (args from a
#                 "# layerc-args:" line), and the emitted LLVM IR of a fused Conv2d + BatchNorm2d + ReLU
#   api           tests/api/test_api.c: the C API's promises (NULL pointers, bad batches, threads,
#                 concurrent contexts) on a named-batch and a fixed-batch model; examples/c_api end to end
#   valgrind      no leak or memory error in the compiler: shapes of every example, build of one
#   winograd      every golden case with a 3x3 or 5x5 stride-1 convolution, forced to Winograd (with the cost
#                 rule's tile, and 2x2 and 4x4 tiles), against PyTorch; CIFAR-10's per-sample kernel (batch 5,
#                 3 threads) against the reference
#   passes        every golden case with no passes (-O0) against PyTorch, and -O3 against -O0 (atol, rtol 1e-5)
#   targets       every golden case built for SSE (--target-cpu x86-64: 4-float vectors, other tails)
#                 against PyTorch; AVX-512 builds (which this machine cannot run) use zmm registers
#   cross         other targets (README "Targets"): a few golden cases (conv, pooling, linear, LSTM, the
#                 graph form, CIFAR-10) built for aarch64 and run under qemu-aarch64, built for AVX2
#                 (--target-cpu haswell) and for this machine's best; --emit obj and static linked into
#                 tests/emit/link_model.c, --emit exe run, against PyTorch; a library built for a CPU
#                 feature this machine lacks refused at create with the reason; target errors and -v
#   cross-all     every golden case for aarch64 under qemu and for AVX2 (--target-cpu haswell)
#                 (make test-cross, which .ci/run runs after make test)
#   models        the random-model differential tester (fuzz/models/fuzz_models.c): a fixed-seed set of
#                 generated models and every saved regression case (tests/models/*.nn), each built at
#                 -O0, -O3, -O3 with forced Winograd and for every lesser vector extension the CPU has,
#                 against the reference interpreter; every lowered layer kind must be generated
#   demo          the digits demo (examples/digits/run.sh, `make demo`): the trained CNN's accuracy and 100%
#                 agreement with PyTorch's predictions; a changed PyTorch prediction makes it fail
#   python        the Python binding (python/layerc.py, tests/python/test_layerc.py) with the python3 on PATH:
#                 outputs against PyTorch's goldens and `layerc run`, threads, batches, exact error messages
# The same suites run again with the AddressSanitizer + UBSan build (build/san/layerc); there
# `layerc test --sanitize` instruments the runtime, the generated code and the harness too.
# Set UPDATE=1 to rewrite the .expected files of the reports and diagnostics suites, and
# SUITES="cli golden ..." to run only those suites (fuzz: the fuzz corpus replay).
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
PASS=0
FAIL=0
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

pass() { PASS=$((PASS + 1)); [ -n "${VERBOSE:-}" ] && echo "PASS $1"; return 0; }
fail() { FAIL=$((FAIL + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && sed 's/^/    /' <<<"$2" | head -40; return 0; }

# Independent cases run $JOBS at a time: `spawn FUNCTION ARGS...` runs a test function in the
# background with its own counters and output file; `collect` waits for them and adds their counts
# and FAIL lines in the order they were spawned.
JOBS=${JOBS:-$(nproc)}
SPAWNED=0
mkdir -p "$TMP/results"
spawn() {
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
    SPAWNED=$((SPAWNED + 1))
    local file
    file=$(printf '%s/results/%06d' "$TMP" "$SPAWNED")
    ( PASS=0; FAIL=0; "$@" >"$file.out" 2>&1; echo "$PASS $FAIL" >"$file.counts" ) &
}
collect() {
    wait
    local f p q
    for f in "$TMP"/results/*.out; do
        [ -e "$f" ] || continue
        cat "$f"
        if read -r p q <"${f%.out}.counts"; then PASS=$((PASS + p)); FAIL=$((FAIL + q)); else fail "$(basename "$f") (no result)"; fi
        rm -f "$f" "${f%.out}.counts"
    done
}

# expect_output NAME EXPECTED_FILE ACTUAL_FILE
expect_output() {
    if [ -n "${UPDATE:-}" ]; then cp "$3" "$2"; fi
    if [ ! -f "$2" ]; then fail "$1" "missing $2 (run with UPDATE=1 to create it)"; return; fi
    local d
    if d=$(diff -u "$2" "$3"); then pass "$1"; else fail "$1" "$d"; fi
}

suite_cli() {
    local L=$1 tag=$2 out rc
    out=$($L --help 2>&1); rc=$?
    [ $rc = 0 ] && grep -q "usage: layerc COMMAND" <<<"$out" && pass "$tag cli --help" || fail "$tag cli --help" "rc=$rc $out"
    out=$($L --version 2>&1); rc=$?
    [ $rc = 0 ] && grep -Eq '^layerc [0-9]+\.[0-9]+\.[0-9]+$' <<<"$out" && pass "$tag cli --version" || fail "$tag cli --version" "$out"
    out=$($L shapes --help 2>&1); rc=$?
    [ $rc = 0 ] && grep -q -- "--explain" <<<"$out" && pass "$tag cli shapes --help" || fail "$tag cli shapes --help" "$out"
    out=$($L shapse x.nn 2>&1); rc=$?
    [ $rc = 2 ] && grep -q "did you mean 'shapes'" <<<"$out" && pass "$tag cli unknown command" || fail "$tag cli unknown command" "rc=$rc $out"
    out=$($L shapes --explian examples/cifar10.nn 2>&1); rc=$?
    [ $rc = 2 ] && grep -q "did you mean '--explain'" <<<"$out" && pass "$tag cli unknown option" || fail "$tag cli unknown option" "rc=$rc $out"
    out=$($L check 2>&1); rc=$?
    [ $rc = 2 ] && pass "$tag cli no file" || fail "$tag cli no file" "rc=$rc $out"
    out=$($L check /nonexistent/model.nn 2>&1); rc=$?
    [ $rc = 1 ] && grep -q "cannot open '/nonexistent/model.nn'" <<<"$out" && pass "$tag cli missing file" || fail "$tag cli missing file" "rc=$rc $out"
    out=$($L check examples 2>&1); rc=$?
    [ $rc = 1 ] && grep -q "not a regular file" <<<"$out" && pass "$tag cli directory" || fail "$tag cli directory" "rc=$rc $out"
    out=$($L build --winograd-tile 3x3 examples/cifar10.nn 2>&1); rc=$?
    [ $rc = 2 ] && grep -q "winograd-tile needs auto, 2x2 or 4x4, got '3x3'" <<<"$out" && pass "$tag cli bad --winograd-tile" \
        || fail "$tag cli bad --winograd-tile" "rc=$rc $out"
    out=$($L build --tune-threads 0 examples/cifar10.nn 2>&1); rc=$?
    [ $rc = 2 ] && grep -q "tune-threads needs a thread count from 1 to 256, got '0'" <<<"$out" && pass "$tag cli bad --tune-threads" \
        || fail "$tag cli bad --tune-threads" "rc=$rc $out"
    out=$($L shapes --format yaml examples/cifar10.nn 2>&1); rc=$?
    [ $rc = 2 ] && pass "$tag cli bad format" || fail "$tag cli bad format" "rc=$rc $out"
    # Progress: a long build draws its stages on a terminal (script(1) gives it one) and erases them;
    # when stderr is not a terminal, or with LAYERC_PROGRESS=0, nothing but the warning is printed.
    out=$(script -qec "$L build examples/vgg16_bn.nn -o $TMP/vgg_p.so" /dev/null 2>&1 | tr '\r' '\n'); rc=$?
    [ $rc = 0 ] && grep -q $'^\e\\[Klayerc: building vgg16_bn.nn: linking ([0-9.]* s)$' <<<"$out" \
        && [ "$(tail -n 1 <<<"$out")" = $'\e[K' ] && pass "$tag cli progress on a terminal" || fail "$tag cli progress on a terminal" "rc=$rc $(cat -v <<<"$out")"
    out=$(LAYERC_PROGRESS=0 script -qec "$L build examples/vgg16_bn.nn -o $TMP/vgg_p.so" /dev/null 2>&1); rc=$?
    [ $rc = 0 ] && ! grep -q "building" <<<"$out" && pass "$tag cli LAYERC_PROGRESS=0" || fail "$tag cli LAYERC_PROGRESS=0" "rc=$rc $(cat -v <<<"$out")"
    out=$($L build examples/vgg16_bn.nn -o "$TMP/vgg_p.so" 2>&1); rc=$?
    [ $rc = 0 ] && [ "$(wc -l <<<"$out")" = 1 ] && grep -q "warning: no --weights given" <<<"$out" \
        && pass "$tag cli no progress off a terminal" || fail "$tag cli no progress off a terminal" "rc=$rc $(cat -v <<<"$out")"
    rm -f "$TMP/vgg_p.so"
    # Refused before any weight is drawn (quickly, in little memory), and nothing written.
    (cd tests/build && timeout 20 $L build weights_too_large.nn -o "$TMP/too_large.so"; echo "exit status $?") \
        >"$TMP/too_large.out" 2>&1
    [ ! -e "$TMP/too_large.so" ] && expect_output "$tag cli build weights_too_large" tests/build/weights_too_large.expected \
        "$TMP/too_large.out" || fail "$tag cli build weights_too_large" "an output was written"
    # Options the back end refuses, with the reason, and nothing written.
    local src stem
    for src in tests/build/refuse_*.nn; do
        stem=$(basename "$src" .nn)
        (cd tests/build && timeout 20 $L build "$stem.nn" -o "$TMP/$stem.so"; echo "exit status $?") >"$TMP/$stem.out" 2>&1
        [ ! -e "$TMP/$stem.so" ] && expect_output "$tag cli build $stem" "tests/build/$stem.expected" "$TMP/$stem.out" \
            || fail "$tag cli build $stem" "an output was written"
    done
    # Several inputs and outputs: one --input and one -o each, in order; a wrong count is an error, nothing written.
    (cd tests/build && $L build uncalled_submodule.nn --weights uncalled_submodule.safetensors -o "$TMP/uncalled.so"; echo "exit status $?") \
        >"$TMP/uncalled.out" 2>&1
    expect_output "$tag cli build uncalled_submodule" tests/build/uncalled_submodule.expected "$TMP/uncalled.out"
    local two=tests/build/two_towers.nn
    out=$($L run $two --input tests/build/two_towers_a.npy --input tests/build/two_towers_b.npy -o "$TMP/two0.npy" \
          -o "$TMP/two1.npy" 2>&1); rc=$?
    [ $rc = 0 ] && [ -s "$TMP/two0.npy" ] && [ -s "$TMP/two1.npy" ] && pass "$tag cli run two inputs, two outputs" \
        || fail "$tag cli run two inputs, two outputs" "rc=$rc $out"
    out=$($L run $two --input tests/build/two_towers_a.npy -o "$TMP/two2.npy" -o "$TMP/two3.npy" 2>&1); rc=$?
    [ $rc = 1 ] && [ ! -e "$TMP/two2.npy" ] && grep -q "model TwoTowers has 2 inputs (a, b): give --input once for each, in that order, found 1" <<<"$out" \
        && pass "$tag cli run one input of two" || fail "$tag cli run one input of two" "rc=$rc $out"
    out=$($L test $two --threads 2 --batch 3 2>&1); rc=$?
    [ $rc = 0 ] && grep -q "^output 1 (add): reference " <<<"$out" && grep -q "^PASS$" <<<"$out" \
        && pass "$tag cli test two inputs, two outputs" || fail "$tag cli test two inputs, two outputs" "rc=$rc $out"
    # Token ids: checked by run() before anything is computed; an id out of range is an error naming it.
    local ids=tests/build/token_ids.nn
    out=$($L run $ids --input tests/build/good_ids.npy -o "$TMP/ids.npy" 2>&1); rc=$?
    [ $rc = 0 ] && [ -s "$TMP/ids.npy" ] && pass "$tag cli run token ids" || fail "$tag cli run token ids" "rc=$rc $out"
    out=$($L run $ids --input tests/build/bad_ids.npy -o "$TMP/bad_ids.npy" 2>&1); rc=$?
    [ $rc = 1 ] && [ ! -e "$TMP/bad_ids.npy" ] && grep -q "running the model failed: token id 25 at input\[1\]\[2\] is out of range: the embedding has 20 rows, ids 0 to 19" <<<"$out" \
        && pass "$tag cli run token id out of range" || fail "$tag cli run token id out of range" "rc=$rc $out"
    out=$($L run $ids --input tests/build/negative_id.npy -o "$TMP/neg_ids.npy" 2>&1); rc=$?
    [ $rc = 1 ] && grep -q "token id -4 at input\[0\]\[3\] is out of range" <<<"$out" \
        && pass "$tag cli run negative token id" || fail "$tag cli run negative token id" "rc=$rc $out"
    out=$($L run $ids --input tests/build/float_ids.npy -o "$TMP/f_ids.npy" 2>&1); rc=$?
    [ $rc = 1 ] && grep -q "holds f32 \[2, 5\] but the model's input x is i64 \[N, 5\]" <<<"$out" \
        && pass "$tag cli run float token ids" || fail "$tag cli run float token ids" "rc=$rc $out"
    out=$($L build --time-report examples/lenet5.nn -o "$TMP/lenet_time.so" 2>&1); rc=$?
    local stage missing=""
    for stage in weights "passes and plan" lower "llvm codegen" link "write weights" "clean up"; do
        grep -Eq "^layerc: time: $stage +[0-9]+\.[0-9]{3} s$" <<<"$out" || [ "$stage" = "llvm codegen" ] \
            || [ "$stage" = "write weights" ] || missing="$missing '$stage'"
    done
    # With ld.lld the weights are packed straight into the file that becomes the library.
    local note=""
    command -v ld.lld >/dev/null && note=" \(none to write: built in the library's file\)"
    grep -Eq "^layerc: time: write weights +[0-9]+\.[0-9]{3} s$note$" <<<"$out" || missing="$missing 'write weights$note'"

    # Without ld.lld on PATH the weights object holds the bytes and the system linker copies them.
    local bin="$TMP/no-lld-bin" tool
    mkdir -p "$bin"
    for tool in cc gcc as ld; do command -v $tool >/dev/null && ln -sf "$(command -v $tool)" "$bin/$tool"; done
    local plain rc_plain
    plain=$(PATH="$bin" $L test examples/lenet5.nn --keep "$TMP/no-lld" 2>&1); rc_plain=$?
    [ $rc_plain = 0 ] && [[ $plain == *PASS* ]] && readelf -SW "$TMP/no-lld/libmodel.so" | grep -q "\.layerc_weights *PROGBITS" \
        && readelf -SW "$TMP/no-lld/libmodel.so" | grep -q "\.note\.gnu\.build-id" \
        && pass "$tag cli build without ld.lld" || fail "$tag cli build without ld.lld" "rc=$rc_plain $plain"
    # LeNet-5's module is big enough to be split for code generation on each CPU (up to 4).
    local cpus=$(nproc) ; [ "$cpus" -gt 4 ] && cpus=4
    if [ "$cpus" -gt 1 ]; then
        grep -Eq "^layerc: time: llvm codegen +[0-9]+\.[0-9]{3} s \($cpus parts on as many threads\)$" <<<"$out" \
            || missing="$missing 'llvm codegen ($cpus parts)'"
    else
        grep -Eq "^layerc: time: llvm codegen +[0-9]+\.[0-9]{3} s$" <<<"$out" || missing="$missing 'llvm codegen'"
    fi
    [ $rc = 0 ] && [ -z "$missing" ] && pass "$tag cli build --time-report" \
        || fail "$tag cli build --time-report" "rc=$rc missing:$missing $out"
}

suite_torch_shapes() {
    local L=$1 tag=$2 golden stem src out
    for golden in tests/golden/shapes/*.torch.json; do
        stem=$(basename "$golden" .torch.json)
        src=examples/$stem.nn
        [ -f "$src" ] || src=tests/shapes/$stem.nn
        if ! $L shapes -O0 --format json "$src" >"$TMP/$stem.json" 2>"$TMP/$stem.err"; then
            fail "$tag torch-shapes $stem" "$(cat "$TMP/$stem.err")"
            continue
        fi
        if out=$(python3 tests/compare_shapes.py "$golden" "$TMP/$stem.json"); then
            pass "$tag torch-shapes $stem"
        else
            fail "$tag torch-shapes $stem" "$out"
        fi
    done
}

# The full-size examples/resnet18.nn and mobilenet_v2.nn have exactly torchvision's state_dict:
# every key with its shape and dtype (tests/golden/torchvision/*.keys.json, from tools/gen_graph_goldens.py).
suite_torchvision_keys() {
    local L=$1 tag=$2 golden name out
    for golden in tests/golden/torchvision/*.keys.json; do
        name=$(basename "$golden" .keys.json)
        if ! $L shapes -O0 --format json "examples/$name.nn" >"$TMP/$name.keys.json" 2>"$TMP/$name.keys.err"; then
            fail "$tag torchvision keys $name" "$(cat "$TMP/$name.keys.err")"
            continue
        fi
        if out=$(python3 tests/compare_keys.py "$golden" "$TMP/$name.keys.json"); then
            pass "$tag torchvision keys $name"
        else
            fail "$tag torchvision keys $name" "$out"
        fi
    done
}

suite_reports() {
    local L=$1 tag=$2 src stem
    for src in examples/*.nn; do
        stem=$(basename "$src" .nn)
        (cd examples && $L shapes --explain "$stem.nn") >"$TMP/$stem.report" 2>&1
        expect_output "$tag report $stem" "tests/reports/$stem.expected" "$TMP/$stem.report"
        (cd examples && $L dot "$stem.nn") >"$TMP/$stem.dot" 2>&1
        expect_output "$tag dot $stem" "tests/reports/$stem.dot" "$TMP/$stem.dot"
    done
    # Two inputs and two outputs (the graph form): "output 0" and "output 1".
    (cd tests/build && $L dot two_towers.nn) >"$TMP/two_towers.dot" 2>&1
    expect_output "$tag dot two_towers" tests/reports/two_towers.dot "$TMP/two_towers.dot"
    # -o writes the same text whole; a path that cannot be written is an error, exit 1, nothing left behind.
    local out rc
    out=$($L dot examples/resnet18.nn -o "$TMP/resnet18_o.dot" 2>&1); rc=$?
    [ $rc = 0 ] && cmp -s "$TMP/resnet18_o.dot" tests/reports/resnet18.dot && pass "$tag dot -o" || fail "$tag dot -o" "rc=$rc $out"
    out=$($L dot examples/resnet18.nn -o "$TMP/no/such/dir/r.dot" 2>&1); rc=$?
    [ $rc = 1 ] && grep -q "no/such/dir/r.dot" <<<"$out" && [ ! -e "$TMP/no" ] && pass "$tag dot -o unwritable" \
        || fail "$tag dot -o unwritable" "rc=$rc $out"
    out=$($L dot -O0 examples/resnet18.nn 2>&1); rc=$?
    [ $rc = 0 ] && ! grep -q "Winograd\|+ skip" <<<"$out" && [ "$(grep -c -- '->' <<<"$out")" = 78 ] && pass "$tag dot -O0" \
        || fail "$tag dot -O0" "rc=$rc $(grep -c -- '->' <<<"$out") edges"
}

suite_diagnostics() {
    local L=$1 tag=$2 src stem
    for src in tests/diagnostics/*.nn; do
        stem=$(basename "$src" .nn)
        (cd tests/diagnostics && $L check "$stem.nn"; echo "exit status $?") >"$TMP/$stem.diag" 2>&1
        expect_output "$tag diagnostics $stem" "tests/diagnostics/$stem.expected" "$TMP/$stem.diag"
    done
}

# hostile NAME FILE: must exit 1 with an error, within 10 s, whatever the bytes.
hostile() {
    local L=$1 tag=$2 name=$3 file=$4 rc
    timeout 10 "$L" check "$file" >"$TMP/hostile.out" 2>&1; rc=$?
    if [ $rc = 1 ] && grep -q "error:" "$TMP/hostile.out"; then
        pass "$tag hostile $name"
    else
        fail "$tag hostile $name" "exit status $rc: $(head -c 600 "$TMP/hostile.out")"
    fi
}

suite_hostile() {
    local L=$1 tag=$2
    python3 tests/make_hostile.py "$TMP/hostile"
    for f in "$TMP"/hostile/*.nn; do hostile "$L" "$tag" "$(basename "$f" .nn)" "$f"; done
}

# add_counts TEST OUTPUT FAILURES: a test program's last line "NAME: N passed, M failed" joins the totals;
# TEST fails with FAILURES (its failure lines) when M > 0, or with the output's end when there is no such line.
add_counts() {
    local test=$1 out=$2 failures=$3 line
    line=$(tail -n 1 <<<"$out")
    if [[ $line =~ ^[a-z_]+:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        PASS=$((PASS + BASH_REMATCH[1])); FAIL=$((FAIL + BASH_REMATCH[2]))
        [ "${BASH_REMATCH[2]}" = 0 ] || fail "$test" "$failures"
    else
        fail "$test" "$(tail -n 20 <<<"$out")"
    fi
}

suite_unit() {
    local dir=$1 tag=$2 prog out
    local progs=("$dir"/io/test_io "$dir"/reference/test_reference "$dir"/emit/test_emit_weights "$dir"/runtime/test_pool)
    [ "$dir" = "$ROOT/build/unit" ] && progs+=("$ROOT/build/tsan/unit/runtime/test_pool") # ThreadSanitizer: the plain pass only
    local rc name
    for prog in "${progs[@]}"; do
        name="$tag unit ${prog#"$ROOT"/build/}"
        out=$(TSAN_OPTIONS=halt_on_error=1 "$prog" 2>&1); rc=$?
        if [ $rc != 0 ] && ! grep -q "FAIL" <<<"$out"; then fail "$name (exit $rc)" "$(head -n 30 <<<"$out")"; continue; fi
        add_counts "$name" "$out" "$(grep -i fail <<<"$out" | head -20)"
    done
}

case_tolerance() { python3 -c "import json,sys; c=json.load(open(sys.argv[1])); print(c['atol'], c['rtol'])" "$1"; }

suite_golden() {
    local L=$1 tag=$2 extra=$3 dir name out rc
    for dir in tests/golden/outputs/*/; do
        name=$(basename "$dir")
        if grep -qx "$name" tests/golden/outputs/NOT_LOWERED; then
            out=$(cd "$dir" && "$L" test model.nn --weights weights.safetensors 2>&1); rc=$?
            [ $rc = 1 ] && grep -q "cannot be compiled yet" <<<"$out" && pass "$tag golden $name (refused)" \
                || fail "$tag golden $name (refused)" "exit $rc: $out"
            continue
        fi
        spawn golden_case "$L" "$tag golden $name" "$dir" $extra
    done
    collect
}

# golden_case LAYERC TEST_NAME CASE_DIR [OPTIONS...]: `layerc test` of the case against PyTorch's output
# (status 1 when it fails).
golden_case() {
    local L=$1 test=$2 dir=$3 tol out rc
    shift 3
    read -r -a tol < <(case_tolerance "$dir/case.json")
    out=$(cd "$dir" && "$L" test model.nn --weights weights.safetensors --input input.npy --expect expected.npy \
          --atol "${tol[0]}" --rtol "${tol[1]}" "$@" 2>&1); rc=$?
    [ $rc = 0 ] && grep -q "^PASS$" <<<"$out" && pass "$test" || { fail "$test" "exit $rc: $out"; return 1; }
}

# What tools/torch2nn.py writes (committed by `tools/test_torch2nn.py --update committed`, which needs torch):
# the text checks clean (no warning) and the library computes PyTorch's outputs.  In the sanitizer pass the
# compiler runs instrumented but the library does not (--sanitize): these models hold no layer that the golden
# suite does not already run that way, and instrumented they take half a minute.
suite_export() {
    local L=$1 tag=$2 dir name out rc
    for dir in tests/export/*/; do
        name=$(basename "$dir")
        out=$("$L" check "$dir/model.nn" 2>&1); rc=$?
        [ $rc = 0 ] && [ -z "$out" ] && pass "$tag export $name: check is clean" || fail "$tag export $name: check is clean" "exit $rc: $out"
        golden_case "$L" "$tag export $name" "$dir"
    done
}

# The kernels for other vector widths: SSE's 4 floats run here; AVX-512's 16 only compile on an
# AVX2 machine, so their code is checked for 512-bit registers and masked tails.
suite_targets() {
    local L=$1 tag=$2 dir name out
    for dir in tests/golden/outputs/*/; do
        name=$(basename "$dir")
        grep -qx "$name" tests/golden/outputs/NOT_LOWERED || spawn golden_case "$L" "$tag sse golden $name" "$dir" --target-cpu x86-64
    done
    collect
    local so="$TMP/avx512.so"
    if out=$("$L" build examples/tutorial_conv.nn --target-cpu skylake-avx512 -o "$so" 2>&1) \
        && objdump -d --no-show-raw-insn "$so" | grep -q "vfmadd[0-9]*ps.*%zmm" \
        && objdump -d --no-show-raw-insn "$so" | grep -q "vmovups %zmm[0-9]*,.*{%k[1-7]}"; then
        pass "$tag avx-512 build: zmm FMAs, masked row tails"
    else
        fail "$tag avx-512 build: zmm FMAs, masked row tails" "$out"
    fi
}

# The golden cases of the cross suite: conv, pooling, linear, LSTM, the graph form (blocks, residual), CIFAR-10.
CROSS_CASES="conv2d_basic maxpool2d_basic avgpool2d_pad_exclude linear lstm_batch_first graph_stack_model_blocks
graph_residual_downsample example_cifar10"

# The vector unit this machine's best build gets, from /proc/cpuinfo (target.c's rule).
host_vector_unit() {
    local flags
    flags=$(grep -m1 '^flags' /proc/cpuinfo)
    if [[ " $flags " == *" avx512f "* ]]; then echo "AVX-512: 16 floats a vector, 32 registers"
    elif [[ " $flags " == *" avx2 "* && " $flags " == *" fma "* ]]; then echo "AVX2: 8 floats a vector, 16 registers"
    else echo "SSE: 4 floats a vector, 16 registers"; fi
}

# A checked CPU feature (LLVM's name) this machine lacks, or nothing: from /proc/cpuinfo.
missing_cpu_feature() {
    local flags pair
    flags=$(grep -m1 '^flags' /proc/cpuinfo)
    for pair in amx-fp16:amx_fp16 avxvnniint16:avx_vnni_int16 avxifma:avx_ifma avxvnniint8:avx_vnni_int8 \
                avx512fp16:avx512_fp16 avx512bf16:avx512_bf16 amx-tile:amx_tile avx512f:avx512f avx2:avx2; do
        [[ " $flags " == *" ${pair#*:} "* ]] || { echo "${pair%%:*}"; return; }
    done
}

# cross_emit TAG NAME CASE_DIR RUNNER TARGET_OPTS...: --emit obj and static linked into link_model.c, and --emit
# exe, each run (by RUNNER: nothing, or the emulator) on the case's input and checked against PyTorch.
cross_emit() {
    local tag=$1 name=$2 dir=$3 runner=$4 tol out kind prefix cc
    shift 4
    read -r -a tol < <(case_tolerance "$dir/case.json")
    local w="$TMP/emit-$name-${runner%% *}"
    mkdir -p "$w"
    prefix=$(grep -m1 '^model ' "$dir/model.nn" | awk '{print tolower($2)}')
    cc=(cc)
    [ -n "$runner" ] && cc=(clang-19 --target=aarch64-linux-gnu -fuse-ld=lld)
    for kind in obj static; do
        local file="$w/model.o"
        [ $kind = static ] && file="$w/libmodel.a"
        if out=$("$L" build "$dir/model.nn" --weights "$dir/weights.safetensors" "$@" --emit $kind -o "$file" \
                  --header "$w/model.h" 2>&1) \
            && out=$("${cc[@]}" -Wall -Werror -Iruntime -DMODEL="$prefix" -include "$w/model.h" tests/emit/link_model.c \
                     "$file" -o "$w/prog" -lm -lpthread 2>&1) \
            && out=$($runner "$w/prog" "$dir/input.npy" "$w/out.bin" 2>&1) \
            && out=$(python3 tests/compare_npy.py "$w/out.bin" "$dir/expected.npy" "${tol[@]}" 2>&1); then
            pass "$tag --emit $kind $name"
        else
            fail "$tag --emit $kind $name" "$out"
        fi
    done
    if out=$("$L" build "$dir/model.nn" --weights "$dir/weights.safetensors" "$@" --emit exe -o "$w/model" 2>&1) \
        && out=$($runner "$w/model" "$dir/input.npy" -o "$w/out.npy" 2>&1) \
        && out=$(python3 tests/compare_npy.py "$w/out.npy" "$dir/expected.npy" "${tol[@]}" 2>&1); then
        pass "$tag --emit exe $name"
    else
        fail "$tag --emit exe $name" "$out"
    fi
}

# expect_refusal TEST EXPECTED_STATUS EXPECTED_TEXT COMMAND...: the command fails with that status and text.
expect_refusal() {
    local test=$1 status=$2 text=$3 out rc
    shift 3
    out=$("$@" 2>&1); rc=$?
    [ $rc = "$status" ] && grep -qF -- "$text" <<<"$out" && pass "$test" || fail "$test" "exit $rc: $out"
}

suite_cross() {
    local L=$1 tag=$2 name dir qemu="qemu-aarch64 -L /usr/aarch64-linux-gnu"
    local arm="--target aarch64-linux-gnu"
    for name in $CROSS_CASES; do
        dir=tests/golden/outputs/$name
        golden_case "$L" "$tag aarch64 golden $name" "$dir" $arm
        golden_case "$L" "$tag avx2 golden $name" "$dir" --target-cpu haswell
    done
    golden_case "$L" "$tag aarch64 golden cortex-a76 conv2d_depthwise" tests/golden/outputs/conv2d_depthwise $arm --target-cpu cortex-a76
    golden_case "$L" "$tag aarch64 golden 2 threads example_cifar10" tests/golden/outputs/example_cifar10 $arm --threads 2
    cross_emit "$tag" conv2d_basic tests/golden/outputs/conv2d_basic ""
    cross_emit "$tag" lstm_batch_first tests/golden/outputs/lstm_batch_first ""
    cross_emit "$tag aarch64" example_cifar10 tests/golden/outputs/example_cifar10 "$qemu" $arm
    # Two models' objects in one program: each keeps its runtime to itself.
    local g=tests/golden/outputs out
    if out=$("$L" build $g/linear/model.nn --weights $g/linear/weights.safetensors --emit static -o "$TMP/liblinear.a" \
              --header "$TMP/linear.h" 2>&1) \
        && out=$("$L" build $g/conv2d_basic/model.nn --weights $g/conv2d_basic/weights.safetensors --emit obj \
                 -o "$TMP/conv.o" --header "$TMP/conv.h" 2>&1) \
        && out=$(cc -Wall -Werror -Iruntime -DMODEL=linear -DOTHER=conv2dbasic -include "$TMP/linear.h" -include "$TMP/conv.h" \
                 tests/emit/link_model.c "$TMP/liblinear.a" "$TMP/conv.o" -o "$TMP/two" -lm -lpthread 2>&1) \
        && out=$("$TMP/two" $g/linear/input.npy "$TMP/two.bin" 2>&1) \
        && out=$(python3 tests/compare_npy.py "$TMP/two.bin" $g/linear/expected.npy 1e-4 1e-4 2>&1); then
        pass "$tag two models linked into one program"
    else
        fail "$tag two models linked into one program" "$out"
    fi
    # The exe: raw floats on stdin, the .npy to stdout; a wrong input is an error naming it.
    if out=$("$L" build $g/conv2d_basic/model.nn --weights $g/conv2d_basic/weights.safetensors --emit exe \
              -o "$TMP/conv_exe" 2>&1) \
        && tail -c $((2 * 3 * 7 * 9 * 4)) $g/conv2d_basic/input.npy | "$TMP/conv_exe" - -o - >"$TMP/stdout.npy" \
        && out=$(python3 tests/compare_npy.py "$TMP/stdout.npy" $g/conv2d_basic/expected.npy 1e-4 1e-4 2>&1); then
        pass "$tag --emit exe raw stdin to stdout"
    else
        fail "$tag --emit exe raw stdin to stdout" "$out"
    fi
    expect_refusal "$tag --emit exe wrong input shape" 1 "error: $g/linear/input.npy: has shape (2, 8), the model's input is (N, 3, 7, 9)" \
        "$TMP/conv_exe" $g/linear/input.npy -o "$TMP/never.npy"
    expect_refusal "$tag --emit exe wrong count" 2 "error: the model takes 1 input and 1 -o, given 1 and 0" \
        "$TMP/conv_exe" $g/conv2d_basic/input.npy
    # This machine's best, and what -v, --time-report and the library say about it.
    golden_case "$L" "$tag host golden example_cifar10" $g/example_cifar10
    local unit
    unit=$(host_vector_unit)
    expect_refusal "$tag build -v: this machine's vector unit" 0 ", CPU $("$L" targets | sed -n 's/.*this machine: x86_64-linux-gnu, CPU \([^ ]*\) .*/\1/p') (native: the compiling machine's), $unit" \
        "$L" build -v examples/lenet5.nn -o "$TMP/v.so"
    expect_refusal "$tag build --time-report: the target" 0 "layerc: target: x86_64-linux-gnu, CPU haswell, AVX2: 8 floats a vector, 16 registers" \
        "$L" build --time-report --target-cpu haswell examples/lenet5.nn -o "$TMP/v.so"
    expect_refusal "$tag build -v aarch64: NEON" 0 "layerc: target: aarch64-linux-gnu, CPU generic, NEON: 4 floats a vector, 32 registers" \
        "$L" build -v $arm examples/lenet5.nn -o "$TMP/a.so"
    expect_refusal "$tag build -v: features added" 0 "layerc: target: x86_64-linux-gnu, CPU x86-64, AVX2: 8 floats a vector, 16 registers" \
        "$L" build -v --target-cpu x86-64 --target-features +avx2,+fma examples/lenet5.nn -o "$TMP/v.so"
    # A library for a CPU feature this machine lacks: refused at create with the reason, not SIGILL.
    local missing
    missing=$(missing_cpu_feature)
    if [ -n "$missing" ]; then
        local why="this machine's CPU lacks $missing, which model LeNet5 was compiled for (x86_64-linux-gnu, CPU haswell): build it with --target-cpu native, or for the CPU of the machine that runs it"
        expect_refusal "$tag test: +$missing refused at create" 1 "harness: $why" \
            "$L" test examples/lenet5.nn --target-cpu haswell --target-features "+$missing"
        head -c $((1 * 32 * 32 * 4)) /dev/zero >"$TMP/lenet_in.f32"
        "$L" build examples/lenet5.nn --target-cpu haswell --target-features "+$missing" --emit exe -o "$TMP/lenet_new" 2>/dev/null
        expect_refusal "$tag exe: +$missing refused at create" 1 "error: $why" "$TMP/lenet_new" - -o "$TMP/never.npy" <"$TMP/lenet_in.f32"
        expect_refusal "$tag run: +$missing refused at create" 1 "cannot create a context of the compiled model: $why" \
            "$L" run examples/lenet5.nn --target-cpu haswell --target-features "+$missing" --input $g/example_lenet5/input.npy -o "$TMP/never.npy"
    else
        pass "$tag cpu check (skipped: this CPU has every checked feature)"
    fi
    [ ! -e "$TMP/never.npy" ] && pass "$tag refused runs write no output" || fail "$tag refused runs write no output"
    # Wrong targets: usage errors (exit 2) naming the valid ones.
    expect_refusal "$tag unknown --target" 2 "layerc: error: unknown --target 'arm-linux'; layerc compiles for x86_64-linux-gnu and aarch64-linux-gnu (see 'layerc targets')" \
        "$L" build --target arm-linux examples/lenet5.nn
    expect_refusal "$tag unknown --target nearest" 2 "unknown --target 'aarch64-linux'; did you mean 'aarch64-linux-gnu'?" \
        "$L" test --target aarch64-linux examples/lenet5.nn
    expect_refusal "$tag unknown --target-cpu" 2 "layerc: error: unknown --target-cpu 'haswel' for x86_64-linux-gnu; did you mean 'haswell'? ('layerc targets' lists the CPUs)" \
        "$L" build --target-cpu haswel examples/lenet5.nn
    expect_refusal "$tag x86 cpu for aarch64" 2 "unknown --target-cpu 'haswell' for aarch64-linux-gnu" \
        "$L" build $arm --target-cpu haswell examples/lenet5.nn
    expect_refusal "$tag unknown --target-features" 2 "layerc: error: --target-features: '+avx3' is not +FEATURE or -FEATURE with a feature layerc checks on x86_64-linux-gnu" \
        "$L" build --target-features +avx3 examples/lenet5.nn
    expect_refusal "$tag run for aarch64 refused" 2 "layerc run loads the compiled model into this process" \
        "$L" run $arm examples/lenet5.nn --input $g/example_lenet5/input.npy -o "$TMP/never.npy"
    expect_refusal "$tag targets lists both" 0 "aarch64-linux-gnu (linked by clang-19 --target=aarch64-linux-gnu, tests run under qemu-aarch64" \
        "$L" targets
}

# Every golden case for aarch64 under qemu (make test-cross).
suite_cross_all() {
    local L=$1 tag=$2 dir name
    for dir in tests/golden/outputs/*/; do
        name=$(basename "$dir")
        grep -qx "$name" tests/golden/outputs/NOT_LOWERED && continue
        spawn golden_case "$L" "$tag aarch64 golden $name" "$dir" --target aarch64-linux-gnu
        spawn golden_case "$L" "$tag avx2 golden $name" "$dir" --target-cpu haswell
    done
    collect
}

# Every example compiles and passes its harness (random weights, against the reference interpreter).
suite_examples() {
    local L=$1 tag=$2 extra=$3 src name out rc
    for src in examples/*.nn; do
        name=$(basename "$src" .nn)
        if grep -qx "example_$name" tests/golden/outputs/NOT_LOWERED; then continue; fi
        # ImageNet-sized models: too slow under the sanitizers (run in the plain pass), and one sample only
        # (VGG16 is 15 GMAC a sample, ResNet-18 1.8: the naive reference takes a minute, and 12 s)
        local big=false
        case "$name" in vgg16_bn | resnet18 | mobilenet_v2) big=true ;; esac
        $big && [ -n "$extra" ] && continue
        local batch=""
        $big && batch="--batch 1"
        spawn example_case "$L" "$tag example $name" "$src" --threads 2 $batch $extra
    done
    collect
}
example_case() {
    local L=$1 test=$2 src=$3 out rc
    shift 3
    out=$("$L" test "$src" "$@" 2>&1); rc=$?
    [ $rc = 0 ] && grep -q "^PASS$" <<<"$out" && pass "$test" || fail "$test" "exit $rc: $out"
}

suite_ir() {
    local L=$1 tag=$2 src stem args
    for src in tests/ir/*.nn; do
        stem=$(basename "$src" .nn)
        args=$(sed -n 's/^# layerc-args: //p' "$src")
        (cd tests/ir && $L dump-ir --print-after-all $args "$stem.nn") >"$TMP/$stem.ir" 2>&1
        expect_output "$tag ir $stem" "tests/ir/$stem.expected" "$TMP/$stem.ir"
    done
    # One kernel computes the fused group (a padding step copies its input first), none is left for
    # BatchNorm or ReLU, and forward calls three: pad, conv + bn + relu, pool.
    local ll="$TMP/conv_bn_relu.ll" kernels calls
    if ! $L build tests/ir/conv_bn_relu.nn -o "$TMP/conv_bn_relu.so" --emit-llvm "$ll" 2>/dev/null; then
        fail "$tag llvm-ir conv+bn+relu" "build failed"; return
    fi
    kernels=$(grep -c '^define internal void @k1\.conv1(' "$ll")
    calls=$(grep -c 'call void @__layerc_rt_parallel' "$ll")
    if [ "$kernels" = 1 ] && [ "$calls" = 3 ] && grep -q '^define internal void @k1\.conv1\.pad(' "$ll" \
        && ! grep -q '@k[0-9]*\.\(bn1\|relu1\)' "$ll"; then
        pass "$tag llvm-ir conv+bn+relu is one kernel"
    else
        fail "$tag llvm-ir conv+bn+relu is one kernel" "conv kernels=$kernels parallel calls=$calls (want 1 and 3: pad, conv group, pool)"
    fi
    # Identical layers share one body (lower_share.c): b's conv and fc2 call a's and fc1's with
    # their own weights; c (no fused ReLU) and fc3 (no Tanh) keep code of their own.
    ll="$TMP/repeated_layers.ll"
    if ! $L build tests/golden/outputs/repeated_layers/model.nn -o "$TMP/repeated_layers.so" --emit-llvm "$ll" 2>/dev/null; then
        fail "$tag llvm-ir identical layers share code" "build failed"; return
    fi
    local entry_b entry_fc2 entry_c
    entry_b=$(sed -n '/^define internal void @k2\.b(/,/^}/p' "$ll")
    entry_fc2=$(sed -n '/^define internal void @k7\.fc2(/,/^}/p' "$ll")
    entry_c=$(sed -n '/^define internal void @k3\.c(/,/^}/p' "$ll")
    if grep -q 'call fastcc void @k1\.a\.body(.*@__layerc_weights' <<<"$entry_b" \
        && grep -q 'call fastcc void @k6\.fc1\.body(.*@__layerc_weights' <<<"$entry_fc2" \
        && ! grep -q '^define .*@k2\.b\.body(' "$ll" && [ -n "$entry_c" ] && ! grep -q '@k1\.a\.body' <<<"$entry_c"; then
        pass "$tag llvm-ir identical layers share code"
    else
        fail "$tag llvm-ir identical layers share code" "$(grep '^define' "$ll")"
    fi
}

# Winograd F(2x2,3x3) on every golden case with an eligible convolution (3x3, stride 1, ...),
# small channel counts included (--winograd always), against PyTorch.
suite_winograd() {
    local L=$1 tag=$2 extra=$3 dir name out rc tile algorithms seen
    for dir in tests/golden/outputs/*/; do
        name=$(basename "$dir")
        grep -qx "$name" tests/golden/outputs/NOT_LOWERED && continue
        seen=""
        # Every tile choice that gives the case's convolutions a different algorithm or tile.
        for tile in auto 2x2 4x4; do
            algorithms=$(cd "$dir" && "$L" dump-ir --winograd always --winograd-tile $tile model.nn 2>/dev/null | grep -o "algorithm=winograd F([0-9x,]*)")
            [ -n "$algorithms" ] && [[ $seen != *"|$algorithms|"* ]] || continue
            seen="$seen|$algorithms|"
            spawn golden_case "$L" "$tag winograd $tile golden $name" "$dir" --winograd always --winograd-tile $tile --threads 2 $extra
        done
    done
    collect
    # The per-sample kernel with an uneven split (5 samples on 3 threads: calls of 1, 2 and 2 samples,
    # each in the scratch slot of its first), and the steps at batch 1, against the reference interpreter.
    local batch
    for batch in 5 1; do
        out=$("$L" test examples/cifar10.nn --batch $batch --threads 3 $extra 2>&1); rc=$?
        [ $rc = 0 ] && grep -q "^PASS$" <<<"$out" && pass "$tag winograd cifar10 batch $batch, 3 threads" \
            || fail "$tag winograd cifar10 batch $batch, 3 threads" "exit $rc: $out"
    done
    # --tune-threads 2: the small layers direct instead (tests/ir/tune_threads), on 2 threads at batch 1.
    out=$("$L" test examples/cifar10.nn --batch 1 --threads 2 --tune-threads 2 $extra 2>&1); rc=$?
    [ $rc = 0 ] && grep -q "^PASS$" <<<"$out" && pass "$tag cifar10 --tune-threads 2, batch 1, 2 threads" \
        || fail "$tag cifar10 --tune-threads 2, batch 1, 2 threads" "exit $rc: $out"
    out=$(cd tests/golden/outputs/example_cifar10 && "$L" dump-ir --tune-threads 2 model.nn 2>&1)
    ! grep -q "algorithm=winograd" <<<"$out" && pass "$tag cifar10 --tune-threads 2 has no Winograd layer" \
        || fail "$tag cifar10 --tune-threads 2 has no Winograd layer" "$out"
}

# One case of suite_passes: the -O0 library's output (layerc run) against PyTorch's, then -O3 against it:
# two builds, not three (the golden suite checks the optimised build against the reference too).
passes_case() {
    local L=$1 tag=$2 dir=$3 name out tol o0
    name=$(basename "$dir")
    o0="$TMP/o0_$name.npy"
    read -r -a tol < <(case_tolerance "$dir/case.json")
    out=$( (cd "$dir" && "$L" run -O0 model.nn --weights weights.safetensors --input input.npy -o "$o0") 2>&1 &&
          python3 tests/compare_npy.py "$o0" "$dir/expected.npy" "${tol[0]}" "${tol[1]}" 2>&1) \
        && pass "$tag -O0 golden $name" || { fail "$tag -O0 golden $name" "$out"; return 0; }
    out=$(cd "$dir" && "$L" test -O3 model.nn --weights weights.safetensors --input input.npy --expect "$o0" \
              --atol 1e-5 --rtol 1e-5 2>&1) && grep -q "^PASS$" <<<"$out" \
        && pass "$tag -O3 = -O0 $name" || fail "$tag -O3 = -O0 $name" "$out"
}
# No pass changes results: -O0 passes against PyTorch, and -O3 matches -O0
# within 1e-5 absolute and relative (float rounding: Winograd F(2x2,5x5)
# differs from the direct sum by up to 2.2e-6 on the goldens).
suite_passes() {
    local L=$1 tag=$2 dir name
    for dir in tests/golden/outputs/*/; do
        name=$(basename "$dir")
        grep -qx "$name" tests/golden/outputs/NOT_LOWERED && continue
        spawn passes_case "$L" "$tag" "$dir"
    done
    collect
}

# The C API's promises (tests/api/test_api.c) on a named-batch and a fixed-batch model.
suite_api() {
    local L=$1 tag=$2 extra=$3 dir="$TMP/api${3:+-san}" san="" name out line
    [ -n "$extra" ] && san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
    mkdir -p "$dir"
    if ! out=$(${CC:-cc} -std=gnu11 -O1 -g -Wall -Wextra -Werror -Iruntime $san -o "$dir/test_api" tests/api/test_api.c \
               -ldl -lpthread -lm 2>&1); then
        fail "$tag api build" "$out"; return
    fi
    for name in cifar10 tutorial_conv two_towers; do
        local src="examples/$name.nn"
        [ "$name" = two_towers ] && src=tests/build/two_towers.nn # two inputs, two outputs
        if ! out=$("$L" test "$src" $extra --keep "$dir/$name" 2>&1); then
            fail "$tag api $name (layerc test)" "$out"; continue
        fi
        out=$("$dir/test_api" "$dir/$name/libmodel.so" 2>&1)
        add_counts "$tag api $name" "$out" "$(grep '^FAIL' <<<"$out")"
    done
    [ -n "$extra" ] && return
    # The weights are written into the library after the link (emit_weights.h): an ordinary
    # section that strip keeps, so the stripped library still computes the same outputs.
    out=$(strip "$dir/cifar10/libmodel.so" 2>&1 && readelf -SW "$dir/cifar10/libmodel.so" | grep -c "\.layerc_weights *PROGBITS" \
          && cd "$dir/cifar10" && ./harness 2>&1)
    [ $? = 0 ] && [[ $out == *PASS* ]] && pass "$tag stripped library keeps its weights" \
        || fail "$tag stripped library keeps its weights" "$out"
    # A failed build leaves the previous library and header untouched, and no temporary file behind.
    local keep="$dir/keep"
    mkdir -p "$keep"
    "$L" build examples/relu_sigmoid.nn -o "$keep/lib.so" --header "$keep/m.h" 2>/dev/null
    cp "$keep/lib.so" "$keep/lib.so.orig"; cp "$keep/m.h" "$keep/m.h.orig"
    printf 'model Broken {\n    input x: f32[N, 4]\n    fc = Linear(5, 2)\n}\n' >"$keep/broken.nn"
    printf 'not a safetensors file' >"$keep/bad.safetensors"
    out=$( { "$L" build "$keep/broken.nn" -o "$keep/lib.so" --header "$keep/m.h";
             "$L" build examples/relu_sigmoid.nn --weights "$keep/bad.safetensors" -o "$keep/lib.so" --header "$keep/m.h"; } 2>&1)
    if cmp -s "$keep/lib.so" "$keep/lib.so.orig" && cmp -s "$keep/m.h" "$keep/m.h.orig" \
        && [ "$(ls "$keep" | grep -c tmp)" = 0 ]; then
        pass "$tag failed build keeps the previous output"
    else
        fail "$tag failed build keeps the previous output" "$out $(ls "$keep")"
    fi
    # The README's path: build with --header, compile a C program against it, run it.
    out=$(LAYERC="$L" bash examples/c_api/run.sh 2>&1) && grep -q "^image 3: class" <<<"$out" \
        && pass "$tag example c_api" || fail "$tag example c_api" "$out"
}

# valgrind on the compiler itself (the sanitizer pass covers the rest): shapes of every example,
# a diagnostics run, and a whole build.
suite_valgrind() {
    local L=$1 tag=$2 f
    for f in examples/*.nn; do
        spawn valgrind_case "$tag valgrind shapes $(basename "$f")" 0 "$L" shapes "$f"
    done
    spawn valgrind_case "$tag valgrind check (errors)" 1 "$L" check tests/diagnostics/several_mixed_errors.nn
    spawn valgrind_case "$tag valgrind build" 0 "$L" build examples/relu_sigmoid.nn -o "$TMP/vg.so"
    collect
}
# valgrind_case NAME STATUS COMMAND...: the command exits with STATUS and valgrind reports nothing.
valgrind_case() {
    local test=$1 want=$2 out rc
    shift 2
    local vg=(valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=9 -q)
    out=$("${vg[@]}" "$@" 2>&1 >/dev/null); rc=$?
    [ $rc = "$want" ] && ! grep -q "==[0-9]*==" <<<"$out" && pass "$test" || fail "$test" "exit $rc: $out"
}

# fuzz_models prints "FAIL ..." lines (with the minimised model) and ends with "models: N passed, M failed".
MODELS_COUNT=${MODELS_COUNT:-200}
suite_models() {
    local tag=$1 out cases
    cases=$(shopt -s nullglob; echo tests/models/*.nn)
    out=$("$ROOT/build/fuzz_models" --seed 1 --count "$MODELS_COUNT" --jobs "$(nproc)" $cases 2>&1)
    add_counts "$tag models" "$out" "$(grep -A12 '^FAIL' <<<"$out" | head -60)"
}

# The digits demo end to end (its timing rounds cut to 2, PyTorch not timed), then the demo program on a
# copy of the data where one PyTorch prediction was changed: it must see the disagreement and fail.
suite_demo() {
    local L=$1 tag=$2 out rc diff bad="$TMP/digits_bad"
    out=$(LAYERC="$L" OUT="$TMP/digits" ROUNDS=2 PYTORCH_LIVE=0 bash examples/digits/run.sh 2>&1); rc=$?
    diff=$(sed -n 's/^agreement with PyTorch .*max |logit difference| \(.*\)$/\1/p' <<<"$out")
    [ $rc = 0 ] && grep -qx "accuracy on the test split    99.72 %  (359 of 360 correct)" <<<"$out" \
        && grep -q "^agreement with PyTorch       100.00 %  (360 of 360 predictions), max |logit difference| " <<<"$out" \
        && python3 -c "import sys; sys.exit(not float(sys.argv[1]) < 1e-4)" "$diff" \
        && grep -q "^  batch 360, 2 threads " <<<"$out" && pass "$tag demo digits: accuracy, 100% agreement" \
        || { fail "$tag demo digits: accuracy, 100% agreement" "rc=$rc $out"; return; }
    mkdir -p "$bad" && cp examples/digits/*.npy examples/digits/pytorch_reference.json "$bad/"
    python3 -c "import numpy as np; p = np.load('$bad/pytorch_predictions.npy'); p[7] = (p[7] + 1) % 10; np.save('$bad/pytorch_predictions.npy', p)"
    out=$("$TMP/digits/demo" "$bad" --rounds 1 2>&1); rc=$?
    [ $rc = 1 ] && grep -q "^agreement with PyTorch        99.72 %  (359 of 360 predictions)" <<<"$out" \
        && grep -Eq "^  image 7: layerc predicts [0-9], PyTorch [0-9]$" <<<"$out" && pass "$tag demo digits: a disagreement fails" \
        || fail "$tag demo digits: a disagreement fails" "rc=$rc $out"
    out=$("$TMP/digits/demo" "$TMP" 2>&1); rc=$?
    [ $rc = 1 ] && grep -q "^demo: cannot open $TMP/test_images.npy: No such file or directory$" <<<"$out" \
        && pass "$tag demo digits: missing data" || fail "$tag demo digits: missing data" "rc=$rc $out"
}

# The Python binding: libraries built here, `layerc run`'s outputs beside them, then tests/python/test_layerc.py
# (numpy only; it prints "python: N passed, M failed").  The plain pass only: python3 is not instrumented.
suite_python() {
    local L=$1 tag=$2 dir="$TMP/python" g=tests/golden/outputs out
    if ! out=$(python3 -c "import numpy" 2>&1); then
        fail "$tag python: numpy" "$(command -v python3) cannot import numpy (make deps installs it): $out"; return
    fi
    mkdir -p "$dir"
    if ! out=$( ( set -e
        "$L" build $g/example_cifar10/model.nn --weights $g/example_cifar10/weights.safetensors -o "$dir/cifar10.so"
        "$L" run $g/example_cifar10/model.nn --weights $g/example_cifar10/weights.safetensors \
            --input $g/example_cifar10/input.npy -o "$dir/cifar10_run.npy"
        "$L" build tests/build/two_towers.nn -o "$dir/two_towers.so"
        "$L" run tests/build/two_towers.nn --input tests/build/two_towers_a.npy --input tests/build/two_towers_b.npy \
            -o "$dir/two_towers_run0.npy" -o "$dir/two_towers_run1.npy"
        "$L" build $g/embedding_padding_idx/model.nn --weights $g/embedding_padding_idx/weights.safetensors -o "$dir/embedding.so"
        "$L" run $g/embedding_padding_idx/model.nn --weights $g/embedding_padding_idx/weights.safetensors \
            --input $g/embedding_padding_idx/input.npy -o "$dir/embedding_run.npy"
        "$L" build tests/build/token_ids.nn -o "$dir/token_ids.so"
        "$L" run tests/build/token_ids.nn --input tests/build/good_ids.npy -o "$dir/token_ids_run.npy"
        "$L" build $g/example_tutorial_conv/model.nn --weights $g/example_tutorial_conv/weights.safetensors \
            -o "$dir/tutorial_conv.so"
        "$L" build examples/digits/digits.nn --weights examples/digits/digits.safetensors -o "$dir/digits.so"
        echo 'int not_a_model(void) { return 0; }' | ${CC:-cc} -shared -fPIC -x c - -o "$dir/not_layerc.so" ) 2>&1 ); then
        fail "$tag python (building the models)" "$out"; return
    fi
    out=$(python3 tests/python/test_layerc.py "$dir" 2>&1)
    add_counts "$tag python" "$out" "$(grep -A12 '^FAIL' <<<"$out" | head -60)"
}

# timed SUITE ARGS...: runs a suite; with TIMES=1 its wall time goes to stderr.
timed() {
    local t0=$SECONDS
    "$@"
    [ -n "${TIMES:-}" ] && echo "time $tag ${1#suite_}: $((SECONDS - t0)) s" >&2
    return 0
}

want() { [ -z "${SUITES:-}" ] || [[ " $SUITES " == *" $1 "* ]]; }

run_all() {
    local L=$1 tag=$2
    want cli && timed suite_cli "$L" "$tag"
    want torch-shapes && timed suite_torch_shapes "$L" "$tag"
    want torchvision-keys && timed suite_torchvision_keys "$L" "$tag"
    want reports && timed suite_reports "$L" "$tag"
    want diagnostics && timed suite_diagnostics "$L" "$tag"
    want hostile && timed suite_hostile "$L" "$tag"
    want unit && timed suite_unit "$4" "$tag"
    want golden && timed suite_golden "$L" "$tag" "$3"
    want export && timed suite_export "$L" "$tag"
    want examples && timed suite_examples "$L" "$tag" "$3"
    want winograd && timed suite_winograd "$L" "$tag" "$3"
    want ir && timed suite_ir "$L" "$tag"
    want api && timed suite_api "$L" "$tag" "$3"
    [ -z "$3" ] && want passes && timed suite_passes "$L" "$tag" # the plain pass only: it rebuilds every case twice more
    [ -z "$3" ] && want valgrind && timed suite_valgrind "$L" "$tag"
    [ -z "$3" ] && want targets && timed suite_targets "$L" "$tag"
    [ -z "$3" ] && want cross && timed suite_cross "$L" "$tag"
    [ -z "$3" ] && [[ " ${SUITES:-} " == *" cross-all "* ]] && timed suite_cross_all "$L" "$tag"
    [ -z "$3" ] && want models && timed suite_models "$tag"
    [ -z "$3" ] && want python && timed suite_python "$L" "$tag"
    [ -z "$3" ] && want demo && timed suite_demo "$L" "$tag"
    return 0
}

run_all "$ROOT/layerc" "[O2]" "" "$ROOT/build/unit"
# Sanitizers: any report aborts the process, which the suites see as a failure.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
unset UPDATE
run_all "$ROOT/build/san/layerc" "[asan+ubsan]" "--sanitize" "$ROOT/build/san/unit"

# Every committed fuzz corpus and crash input through the libFuzzer builds (fuzz/replay.sh).
want fuzz && { out=$(bash fuzz/replay.sh 2>&1) && pass "fuzz replay ($(tail -n 1 <<<"$out"))" || fail "fuzz replay" "$out"; }

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
