#!/usr/bin/env bash
# MLA's latent from the weights' own SVD (MHA2MLA's) against the SVD
# weighted by the attention inputs on the text (aellm's default when the
# conversion has text): each model converted both ways with the same rank,
# rotary dims and pairs, scored as converted, then given the same budget of
# full fine-tuning (the uptraining the architecture stage runs). The pairs
# and the weighting read TinyStories val from byte 65,536 on, as the
# training does; perplexity scores its first 64 KiB (no overlap).
#
#   bench/mla_svd_table.sh BUILD_DIR [DATA_DIR]
#   env: STEPS=200 THREADS=2 ROWS="stories260K 16 4,babyllama 32 4,..." (model rank rotary-dims)
set -euo pipefail
steps=${STEPS:-200} threads=${THREADS:-2}
. "$(dirname "$0")/tinystories_task.sh"
echo "{\"finetuning\": {\"method\": \"full\", \"steps\": $steps}}" >"$work/ft.json"
echo '{}' >"$work/none.json"
echo "machine: $(nproc) cores, $threads threads; $(date -u +%F); $("$aellm" --version)"
echo
echo "| model | rank | rotary dims | SVD | energy kept | PPL converted | PPL after $steps steps |"
echo "| --- | ---: | ---: | --- | ---: | ---: | ---: |"
ppl() { # model, config -> perplexity
    "$aellm" eval -m "$1" --task "$work/task.json" --config "$2" --db "$work/e.db" -p 16 -n 16 \
        --warmup 0 --min-reps 2 --max-reps 2 -t "$threads" --json >"$work/r.json" \
        2>"$work/err" || { echo "eval failed: $(tail -2 "$work/err")" >&2; exit 1; }
    python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print('%.3f' % j.get('record', j)['accuracy']['value'])" "$work/r.json"
}
IFS=, read -r -a rows <<<"${ROWS:-stories260K 16 4,babyllama 32 4,babyllama 32 8,babyllama 32 16}"
for row in "${rows[@]}"; do
    read -r model rank rope <<<"$row"
    model_args "$model"
    for svd in plain weighted; do
        flag=(); [ $svd = plain ] && flag=(--mla-plain-svd)
        "$aellm" convert "${m[@]}" -o "$work/w.gguf" --mla-rank "$rank" --mla-rope-dim "$rope" \
            --mla-calib "$work/train.txt" "${flag[@]}" --json >"$work/c.json" 2>/dev/null
        kept=$(python3 -c "import json,sys; print('%.3f' % json.load(open(sys.argv[1]))['mla']['svd_energy_kept'])" "$work/c.json")
        echo "| $model | $rank | $rope | $svd | $kept | $(ppl "$work/w.gguf" "$work/none.json") | $(ppl "$work/w.gguf" "$work/ft.json") |"
    done
done
