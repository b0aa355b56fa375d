#!/usr/bin/env bash
# bench/run_all.sh - the peers benchmark (`make bench`): layerc against
# PyTorch eager and traced+frozen, ONNX Runtime and oneDNN (direct and
# Winograd, single convolutions), with the measured FMA peak of the machine;
# one table.  Every example at batch 1 and 64 (vgg16_bn: 1), bench/conv*.nn,
# the sequence models bench/lstm_classifier.nn (batches 1 32) and
# bench/transformer2.nn (1 8; a `# bench-batches:` line in the file),
# examples/resnet18.nn and mobilenet_v2.nn against torchvision's own modules
# (batches 1 16: IMAGENET_BATCHES), 1 and 2 threads; each engine's output is checked against PyTorch's on the same
# weights and input before it is timed.  A model layerc does not compile yet
# keeps its PyTorch and ORT rows.  About 15-20 minutes on 2 vCPUs.  See
# bench/peers.py for what is measured and how, and docs/peers.md for the
# results.  Then MobileNetV2's depthwise convolutions in GB/s beside the
# memory bandwidth bench/stream.c measures (bench/depthwise_bw.py).
#
# usage: bash bench/run_all.sh            (from anywhere; builds nothing but the two C helpers)
# environment (all optional):
#   LAYERC=./layerc  TORCH_PY=/usr/bin/python3  ORT_PY=python3  CC=cc
#   MIN_TIME=1  BIG_MIN_TIME=0.5  THREADS="1 2"  ONLY=REGEX (model files)
#   BATCHES="1 64" (models with a named batch and no `# bench-batches:` line)
#   IMAGENET_BATCHES="1 16" (resnet18, mobilenet_v2)
#   GATE_RATIO=1.8  GATE_TRIES=6  GATE_WAIT=5  GATE_BUDGET=300   the 2-thread gate (bench/peers.py)
#   RESULTS=FILE (every row as JSON)  KEEP=1 (keep the work directory)
# Needs: numpy for the driver (Debian's python3-numpy or the python3 on PATH);
# peers missing are skipped with a message: python3-torch (Debian), onnxruntime
# (python3 -m pip install onnxruntime), libdnnl-dev (Debian).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x "${LAYERC:-./layerc}" ]; then
    echo "run_all.sh: ${LAYERC:-./layerc} is not built (run make)" >&2
    exit 2
fi
# the driver needs numpy: Debian's interpreter first (it has it with python3-torch), then the one on PATH
for py in "${DRIVER_PY:-}" /usr/bin/python3 python3; do
    [ -n "$py" ] || continue
    if "$py" -c 'import numpy' 2>/dev/null; then
        "$py" bench/peers.py "$@"
        # MobileNetV2's depthwise convolutions against the measured memory bandwidth (bench/stream.c)
        if [ -z "${ONLY:-}" ] || [[ mobilenet_v2.nn =~ ${ONLY} ]]; then
            echo
            "$py" bench/depthwise_bw.py
        fi
        exit 0
    fi
done
echo "run_all.sh: no python3 with numpy (apt-get install python3-numpy, or python3 -m pip install numpy)" >&2
exit 2
