#!/usr/bin/env bash
# Transfer across models: the surrogates of a search on one real model warm-start
# a search on the other (stories260K -> BabyLlama and back), against the same
# small budget from scratch and random search, each scored as a share of the
# target's exhaustive front (--baselines), all on one store.
# Usage: bench/transfer_models.sh BUILD_DIR [DATA_DIR]
# (BUDGET_A=100 BUDGET_B=40 SEEDS="1 2 3 4 5 6" MAX_REPS=300 REL_CI=0.01
#  DIRECTIONS="s2b b2s" DB=/tmp/aellm-transfer-models.db; a rerun with the same DB
#  and engine reuses every measurement)
# Both models score perplexity on the same 16 KiB of TinyStories validation
# text at context 256 (BabyLlama's): per token for stories260K's 512-piece
# vocabulary, per character for BabyLlama's, so the accuracy levels differ and
# the transferred trees must learn the shift from the target's rows.
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR [DATA_DIR]}
data=$(cd "${2:-$(dirname "$0")/../../shared/data}" && pwd)
val=$data/tinystories/tinystories_val.txt
db=${DB:-/tmp/aellm-transfer-models.db}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/task.json" <<JSON
{"name": "tinystories-ppl-16k-256", "kind": "perplexity", "data": "$val", "max_bytes": 16384, "n_ctx": 256}
JSON
s260=(-m "$data/stories260K/stories260K.bin" -z "$data/stories260K/tok512.bin")
baby=(-m "$data/babyllama/babyllama-1M.bin" -z "$data/babyllama/tok105.bin")
common=(--task "$tmp/task.json" --db "$db" --calib "$val" --calib-skip 393216 --prompt 128 --gen 32
    --max-reps "${MAX_REPS:-300}" --rel-ci "${REL_CI:-0.01}" --threads 2)
echo "machine: $(nproc) cores; $(date -u +%F); engine $("$build/aellm" --version)"
echo "source searches: ${BUDGET_A:-100} evaluations; target searches: ${BUDGET_B:-40} evaluations"
for dir in ${DIRECTIONS:-s2b b2s}; do
    if [ "$dir" = s2b ]; then src=("${s260[@]}") dst=("${baby[@]}") name="stories260K -> BabyLlama"
    else src=("${baby[@]}") dst=("${s260[@]}") name="BabyLlama -> stories260K"; fi
    "$build/aellm" search "${src[@]}" --budget "${BUDGET_A:-100}" --seed 1 \
        --save-surrogates "$tmp/$dir" "${common[@]}" >/dev/null 2>"$tmp/src.err" ||
        { tail -1 "$tmp/src.err"; exit 1; }
    echo "## $name"
    for s in ${SEEDS:-1 2 3 4 5 6}; do
        for mode in scratch transfer; do
            extra=(); [ "$mode" = transfer ] && extra=(--transfer-from "$tmp/$dir")
            "$build/aellm" search "${dst[@]}" --budget "${BUDGET_B:-40}" --seed "$s" --baselines \
                "${extra[@]}" "${common[@]}" 2>"$tmp/err.txt" >"$tmp/out.txt" ||
                { tail -1 "$tmp/err.txt"; exit 1; }
            r2=$(sed -n 's/^held-out R2 of the surrogates: //p' "$tmp/out.txt")
            row=$(awk '$1 == "search" {print "HV/exhaustive " $4 ", pick efficiency " $5 ", acc change " $6}' "$tmp/out.txt")
            echo "seed $s $mode: $row; held-out R2 $r2"
        done
        awk '$1 == "random" {print "seed '"$s"' random: HV/exhaustive " $4}' "$tmp/out.txt"
        awk '$1 == "exhaustive" {print "seed '"$s"' exhaustive: " $2 " points"}' "$tmp/out.txt"
    done
done
