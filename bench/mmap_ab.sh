#!/usr/bin/env bash
# Decode speed with the weights read into private huge-page memory (aellm's default) against
# the file mapping (AELLM_MMAP=1), alternating run by run so that both see the same moments of
# a drifting machine, through bench/decode_ab.sh: each run's tg tokens/s and roofline
# fraction, and the median pair ratio (private / mmap).
#
#   bench/mmap_ab.sh [BUILD_DIR]        (default: build)
#   env: SHAPES="1.1B" TYPES="f32 f16" PAIRS=3 TG=48 THREADS=2
#        MODELS_DIR=/tmp/aellm-bench-models   (GGUF files are made once, kept)
set -euo pipefail
build=${1:-build}
export PAIRS=${PAIRS:-3}
exec "$(dirname "$0")/decode_ab.sh" "mmap=AELLM_MMAP=1 $build/aellm" "private=$build/aellm"
