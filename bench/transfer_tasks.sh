#!/usr/bin/env bash
# Transfer across tasks on stories260K (MODEL=babyllama: BabyLlama): the surrogates of a search on
# TinyStories perplexity warm-start a search on WikiText-2 perplexity, against
# the same budget from scratch; both scored as a share of the WikiText space's
# exhaustive front (--baselines), all on one store.
# Usage: bench/transfer_tasks.sh BUILD_DIR [DATA_DIR]
# (BUDGET_A=100 BUDGET_B=40 SEEDS="1 2 3" MAX_REPS=300 REL_CI=0.01 DB=/tmp/aellm-transfer-bench.db;
# the source search is bench/search_vs_exhaustive.sh's, so a shared DB reuses its measurements)
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR [DATA_DIR]}
data=$(cd "${2:-$(dirname "$0")/../../shared/data}" && pwd)
val=$data/tinystories/tinystories_val.txt
case ${MODEL:-stories260K} in # either real model of the data folder
stories260K) model=(-m "$data/stories260K/stories260K.bin" -z "$data/stories260K/tok512.bin") ;;
babyllama) model=(-m "$data/babyllama/babyllama-1M.bin" -z "$data/babyllama/tok105.bin") ;;
*) echo "MODEL must be stories260K or babyllama" >&2; exit 1 ;;
esac
db=${DB:-/tmp/aellm-transfer-bench.db}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/a.json" <<JSON
{"name": "tinystories-ppl-16k", "kind": "perplexity", "data": "$val", "max_bytes": 16384, "n_ctx": 256}
JSON
cat >"$tmp/b.json" <<JSON
{"name": "wikitext2-ppl-16k", "kind": "perplexity", "data": "$data/wikitext-2/valid.txt", "max_bytes": 16384, "n_ctx": 256}
JSON
common=(--db "$db" --calib "$val" --calib-skip 393216 --prompt 128 --gen 32
    --max-reps "${MAX_REPS:-300}" --rel-ci "${REL_CI:-0.01}" --threads 2)
echo "machine: $(nproc) cores; $(date -u +%F); engine $("$build/aellm" --version)"
"$build/aellm" search "${model[@]}" --task "$tmp/a.json" --budget "${BUDGET_A:-100}" --seed 1 \
    --save-surrogates "$tmp/src" "${common[@]}" >/dev/null 2>"$tmp/a.err" || { tail -1 "$tmp/a.err"; exit 1; }
echo "source: TinyStories search, ${BUDGET_A:-100} evaluations; target: WikiText-2, ${BUDGET_B:-40} evaluations"
for s in ${SEEDS:-1 2 3}; do
    for mode in scratch transfer; do
        extra=(); [ "$mode" = transfer ] && extra=(--transfer-from "$tmp/src")
        "$build/aellm" search "${model[@]}" --task "$tmp/b.json" --budget "${BUDGET_B:-40}" --seed "$s" --baselines \
            "${extra[@]}" "${common[@]}" 2>/dev/null >"$tmp/out.txt"
        r2=$(sed -n 's/^held-out R2 of the surrogates: //p' "$tmp/out.txt")
        row=$(awk '$1 == "search" {print "HV/exhaustive " $4 ", pick efficiency " $5 ", acc change " $6}' "$tmp/out.txt")
        echo "seed $s $mode: $row; held-out R2 $r2"
    done
    awk '$1 == "random" {print "seed '"$s"' random: HV/exhaustive " $4}' "$tmp/out.txt"
done
