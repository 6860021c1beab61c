#!/usr/bin/env bash
# aellm search against random search (same budget) and exhaustive search of
# the inference-stage space on stories260K (MODEL=babyllama: BabyLlama), all on one store: evaluations,
# hypervolume share of the exhaustive front, efficiency and accuracy change
# of each utility pick. Usage: bench/search_vs_exhaustive.sh BUILD_DIR [DATA_DIR]
# (BUDGET=60 EXPLORE=0 SEED=1 MAX_REPS=100 REL_CI=0.02 DB=/tmp/aellm-search-bench.db to change; a rerun with the
# same DB and engine version reuses every measurement).
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR [DATA_DIR]}
data=$(cd "${2:-$(dirname "$0")/../../shared/data}" && pwd)
val=$data/tinystories/tinystories_val.txt
case ${MODEL:-stories260K} in # either real model of the data folder
stories260K) model=(-m "$data/stories260K/stories260K.bin" -z "$data/stories260K/tok512.bin") ;;
babyllama) model=(-m "$data/babyllama/babyllama-1M.bin" -z "$data/babyllama/tok105.bin") ;;
*) echo "MODEL must be stories260K or babyllama" >&2; exit 1 ;;
esac
db=${DB:-/tmp/aellm-search-bench.db}
task=$(mktemp --suffix=.json); trap 'rm -f "$task"' EXIT
cat >"$task" <<JSON
{"name": "tinystories-ppl-16k", "kind": "perplexity", "data": "$val", "max_bytes": 16384, "n_ctx": 256}
JSON
echo "machine: $(nproc) cores; $(date -u +%F); engine $("$build/aellm" --version)"
"$build/aellm" search "${model[@]}" --task "$task" --db "$db" --budget "${BUDGET:-60}" --explore "${EXPLORE:-0}" --seed "${SEED:-1}" \
    --baselines --calib "$val" --calib-skip 393216 --prompt 128 --gen 32 --max-reps "${MAX_REPS:-100}" --rel-ci "${REL_CI:-0.02}" --threads 2 \
    2>/dev/null | sed -n '/^held-out/,$p'
