#!/usr/bin/env bash
# bench/winograd.sh - Winograd F(2x2,3x3) against the direct convolution, side
# by side (bench/compare_builds.sh): the two 3x3 layers of the peers
# benchmark at batch 1 and VGG16-BN at batch 1 (results in docs/benchmarks.md).
# usage: bash bench/winograd.sh   (environment as for compare_builds.sh; ROUNDS default 3)
cd "$(dirname "$0")/.." || exit 2
export CONFIGS="winograd direct" BASELINE=direct ROUNDS=${ROUNDS:-3} BATCHES=${BATCHES:-1}
for model in bench/conv3x3_64_56.nn bench/conv3x3_256_14.nn examples/vgg16_bn.nn; do
    bash bench/compare_builds.sh "$model" || exit 1
    echo
done
