#!/usr/bin/env bash
# run.sh - the whole PyTorch-to-C path of examples/c_api, end to end:
#   1. export the weights and a sample batch from PyTorch   (export_weights.py)
#   2. compile the model to libcifar10.so + cifar10.h       (layerc build)
#   3. compile and run a C program linked against it        (main.c)
#   4. check the compiled model against PyTorch's output    (layerc test --expect)
# Everything it writes stays in this directory (see .gitignore).
# LAYERC: the compiler to use (default: the repository's ./layerc).
set -eu
cd "$(dirname "$0")"
LAYERC=${LAYERC:-../../layerc}
CC=${CC:-cc}

step() { printf '\n== %s\n' "$*"; }

step "1. export from PyTorch"
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
    /usr/bin/python3 export_weights.py
    WEIGHTS=(--weights cifar10.safetensors)
else
    echo "skipped: /usr/bin/python3 has no torch (apt-get install python3-torch);"
    echo "using layerc's random weights and four all-zero images instead"
    WEIGHTS=()
    head -c $((4 * 3 * 32 * 32 * 4)) /dev/zero >input.f32
fi

step "2. compile the model"
"$LAYERC" build ../cifar10.nn "${WEIGHTS[@]}" -o libcifar10.so --header cifar10.h
echo "wrote libcifar10.so and cifar10.h"

step "3. compile and run the C program"
"$CC" -std=c11 -O2 -Wall -Wextra -o classify main.c -L. -lcifar10 -Wl,-rpath,'$ORIGIN'
./classify input.f32

step "4. the compiled model against PyTorch"
if [ ${#WEIGHTS[@]} -gt 0 ]; then
    "$LAYERC" test ../cifar10.nn "${WEIGHTS[@]}" --input input.npy --expect expected.npy
else
    echo "skipped: no expected.npy (no PyTorch export)"
fi
