#!/usr/bin/env bash
# bench/winograd.sh - Winograd with the cost rule's tiles (4x4 on these
# layers) and with 2x2 tiles against the direct convolution, side by side
# (bench/compare_builds.sh): the two 3x3 layers of the peers benchmark and
# VGG16-BN at batch 1, the 5x5 layer (fixed batch 64) and the CIFAR-10 net at
# batch 1 and 64 (results in docs/benchmarks.md).
# usage: bash bench/winograd.sh   (environment as for compare_builds.sh; ROUNDS default 3)
cd "$(dirname "$0")/.." || exit 2
export BASELINE=direct ROUNDS=${ROUNDS:-3}
run() { # CONFIGS BATCHES MODEL
    CONFIGS=$1 BATCHES=$2 bash bench/compare_builds.sh "$3" || exit 1
    echo
}
for model in bench/conv3x3_64_56.nn bench/conv3x3_256_14.nn examples/vgg16_bn.nn; do
    run "winograd winograd2x2 direct" 1 "$model"
done
run "winograd winograd2x2 direct" 64 bench/conv5x5_32_16.nn
run "winograd winograd2x2 direct" "1 64" examples/cifar10.nn
