#!/usr/bin/env bash
# run.sh - the digits demo (`make demo`, the README's main command): compile the CNN that
# tools/train_digits.py trained with PyTorch (digits.nn + digits.safetensors) into libdigits.so and
# digits.h, build demo.c against them, and run it on the committed test split: accuracy, agreement
# with PyTorch's predictions (exit status 1 if not 100%), time per image against PyTorch's.
# Needs neither torch nor scikit-learn.  When /usr/bin/python3 has torch, PyTorch is also timed
# live, with 5 rounds (PYTORCH_LIVE=0 skips that).
# LAYERC: the compiler (default: the repository's ./layerc); OUT: where the build goes (build/digits);
# ROUNDS: timing rounds (default 15).
set -eu
cd "$(dirname "$0")"
LAYERC=${LAYERC:-../../layerc}
OUT=${OUT:-../../build/digits}
CC=${CC:-cc}
mkdir -p "$OUT"

"$LAYERC" build digits.nn --weights digits.safetensors -o "$OUT/libdigits.so" --header "$OUT/digits.h"
"$CC" -std=gnu11 -O2 -Wall -Wextra -Werror -I"$OUT" -o "$OUT/demo" demo.c -L"$OUT" -ldigits -lcjson -lm \
    -Wl,-rpath,"$(cd "$OUT" && pwd)"

LIVE=()
if [ "${PYTORCH_LIVE:-1}" != 0 ] && /usr/bin/python3 -c "import torch" 2>/dev/null; then
    echo "timing PyTorch on this machine too (/usr/bin/python3 has torch; PYTORCH_LIVE=0 skips this)"
    /usr/bin/python3 ../../tools/train_digits.py --time-only "$OUT/pytorch_live.json" --rounds 5
    LIVE=(--pytorch-live "$OUT/pytorch_live.json")
fi
echo
"$OUT/demo" . --rounds "${ROUNDS:-15}" "${LIVE[@]}"
