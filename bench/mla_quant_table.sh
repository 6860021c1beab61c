#!/usr/bin/env bash
# The inference stage on latent-attention (MLA) models: BabyLlama and
# stories260K made latent at a quarter of the full KV rank (default rotary
# dims) and uptrained, then quantized by each method. The latent's
# down-projection is calibrated on the layer's input, the up-projections on
# the latent; all three are stored in the target type. Beside each, the
# same method on the original model given the same fine-tuning (the
# control), so the cost of quantizing a latent model reads against that of
# quantizing a dense one. Uptraining and calibration read TinyStories val
# from byte 65,536 on; perplexity scores its first 64 KiB (no overlap).
#
#   bench/mla_quant_table.sh BUILD_DIR [DATA_DIR]
#   env: MODELS="babyllama stories260K" STEPS=200 THREADS=2
set -euo pipefail
steps=${STEPS:-200} threads=${THREADS:-2}
. "$(dirname "$0")/tinystories_task.sh"
echo "machine: $(nproc) cores, $threads threads; $(date -u +%F); $("$aellm" --version)"
echo "uptraining / control fine-tuning: $steps steps of 8 x 256 tokens; calibration: 4096"
echo "tokens of the same text; perplexity on the first 64 KiB of tinystories_val.txt"
echo
echo "| model | attention | weights (method) | weight bytes | PPL | PPL / unquantized |"
echo "| --- | --- | --- | ---: | ---: | ---: |"
calib="\"calibration\": {\"file\": \"$work/train.txt\"}"
for model in ${MODELS-babyllama stories260K}; do
    model_args "$model"
    "$aellm" convert "${m[@]}" -o "$work/$model.gguf" >/dev/null 2>&1
    full=$("$aellm" info -m "$work/$model.gguf" --json | python3 -c "import json,sys; m=json.load(sys.stdin)['metadata']
print(2 * m['llama.attention.head_count_kv'] * m['llama.embedding_length'] // m['llama.attention.head_count'])")
    for stage in "mla:{\"architecture\": {\"attention\": \"mla\", \"mla_rank\": $((full / 4)), \"uptrain_steps\": $steps}" \
        "mha (control):{\"finetuning\": {\"method\": \"full\", \"steps\": $steps}"; do
        att=${stage%%:*} head=${stage#*:}
        base=""
        for q in "f32 rtn" "q8_0 rtn" "int8 smoothquant" "int4 rtn" "int4 gptq" "int4 awq"; do
            read -r w meth <<<"$q"
            extra=""; [ "$meth" != rtn ] && extra=", $calib"
            echo "$head, \"inference\": {\"weights\": \"$w\", \"method\": \"$meth\"$extra}}" >"$work/c.json"
            "$aellm" eval -m "$work/$model.gguf" --task "$work/task.json" --config "$work/c.json" \
                --db "$work/e.db" -p 16 -n 16 --warmup 0 --min-reps 2 --max-reps 2 -t "$threads" --json >"$work/r.json" \
                2>"$work/err" || { echo "eval failed: $(tail -2 "$work/err")" >&2; exit 1; }
            row=$(python3 - "$model" "$att" "$w ($meth)" "$work/r.json" "$base" <<'PY'
import json, sys
model, att, what, f, base = sys.argv[1:6]
j = json.load(open(f)); r = j.get("record", j)
ppl = r["accuracy"]["value"]; wb = r["memory"]["peak_by_kind"]["weights"]
b = float(base) if base else ppl
print("%.6f\t| %s | %s | %s | %d | %.3f | %.3f |" % (ppl, model, att, what, wb, ppl, ppl / b))
PY
)
            [ -z "$base" ] && base=${row%%$'\t'*}
            echo "${row#*$'\t'}"
        done
    done
done
