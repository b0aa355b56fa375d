#!/usr/bin/env bash
# bench/fusion.sh - the fusion benchmark: a model (default bench/vgg_block.nn,
# a VGG-style Conv-BN-ReLU stack) fused (all passes), unfused (BatchNorm and
# ReLU as their own layers) and at -O0, side by side (bench/compare_builds.sh;
# results in docs/benchmarks.md).
# usage: bash bench/fusion.sh [MODEL.nn]   (environment as for compare_builds.sh)
cd "$(dirname "$0")/.." || exit 2
CONFIGS="fused unfused -O0" BASELINE=unfused exec bash bench/compare_builds.sh "${1:-bench/vgg_block.nn}"
