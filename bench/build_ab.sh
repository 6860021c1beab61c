#!/usr/bin/env bash
# Decode of two builds of aellm on the same GGUF files, alternating run by run (the VM's
# speed drifts over minutes), through bench/decode_ab.sh: tg tokens/s and the roofline
# fraction of each run, then per model the median over the pairs of B / A and how many pairs
# B won. For a change that only a rebuild can switch (a kernel's layout, a compiler flag):
# build the base in another tree, e.g.
#   git worktree add /tmp/base REV && cmake -S /tmp/base -B /tmp/base/build -DCMAKE_BUILD_TYPE=Release
#   cmake --build /tmp/base/build -j --target aellm_cli
#
#   bench/build_ab.sh BUILD_A BUILD_B
#   env: SHAPES="1.1B" TYPES="f32 f16" PAIRS=6 TG=48 THREADS=2
#        MODELS_DIR=/tmp/aellm-bench-models   (GGUF files are made once, kept)
set -euo pipefail
if [ $# -ne 2 ] || [ "$1" = --help ] || [ "$1" = -h ]; then
    echo "usage: bench/build_ab.sh BUILD_A BUILD_B   (env: SHAPES TYPES PAIRS TG THREADS MODELS_DIR)" >&2
    exit 2
fi
rev() { git -C "$1/.." rev-parse --short HEAD 2>/dev/null || echo '?'; }
echo "A: $1 ($(rev "$1"))  B: $2 ($(rev "$2"))"
exec "$(dirname "$0")/decode_ab.sh" "A=$1/aellm" "B=$2/aellm"
