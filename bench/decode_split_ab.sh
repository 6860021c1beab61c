#!/usr/bin/env bash
# Decode with the static split of each product's rows (AELLM_DECODE_SPLIT=static) against the
# default, where a thread done with its share takes half of what a slower one has left: tg
# tokens/s, the roofline fraction and the share of the threads' time spent waiting at the
# barriers that end each group of products, the two alternating run by run (the VM's speed
# drifts over minutes), through bench/decode_ab.sh.
#
#   bench/decode_split_ab.sh [BUILD_DIR]        (default: build)
#   env: SHAPES="1.1B" TYPES="f32 q4_0" PAIRS=4 TG=128 THREADS=2
#        MODELS_DIR=/tmp/aellm-bench-models   (GGUF files are made once, kept)
set -euo pipefail
build=${1:-build}
export TYPES=${TYPES:-f32 q4_0} PAIRS=${PAIRS:-4} TG=${TG:-128}
exec "$(dirname "$0")/decode_ab.sh" "static=AELLM_DECODE_SPLIT=static $build/aellm" \
    "steal=$build/aellm"
