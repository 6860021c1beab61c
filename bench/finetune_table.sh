#!/usr/bin/env bash
# Fine-tuning on text the model has never seen: a real model (stories260K or
# BabyLlama, both trained on TinyStories) fine-tuned on WikiText-2 valid.txt
# by each method at each rank with the same step budget, then scored by
# perplexity on WikiText-2 test.txt beside the base model in the same run.
# Prints the markdown table of bench/README.md.
#
#   bench/finetune_table.sh BUILD_DIR [DATA_DIR]
#   env: MODEL=stories260K|babyllama  STEPS=150 BATCH=8 SEQ=256 RANKS="4 8 16 32"
#        METHODS="full lora rslora dora qlora" EVAL_BYTES=65536 THREADS=2
#        WORK=/tmp/aellm-finetune-$MODEL
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR [DATA_DIR]}
data=$(cd "${2:-$(dirname "$0")/../../shared/data}" && pwd)
model=${MODEL:-stories260K}
case $model in
stories260K) m=(-m "$data/stories260K/stories260K.bin" -z "$data/stories260K/tok512.bin") ;;
babyllama) m=(-m "$data/babyllama/babyllama-1M.bin" -z "$data/babyllama/tok105.bin") ;;
*) echo "MODEL must be stories260K or babyllama" >&2; exit 1 ;;
esac
steps=${STEPS:-150} batch=${BATCH:-8} seq=${SEQ:-256} threads=${THREADS:-2}
work=${WORK:-/tmp/aellm-finetune-$model}
mkdir -p "$work"
head -c "${EVAL_BYTES:-65536}" "$data/wikitext-2/test.txt" >"$work/test.txt"
train=$data/wikitext-2/valid.txt
aellm=$build/aellm
export OMP_NUM_THREADS=$threads
jget() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
ppl_of() { "$aellm" perplexity "$@" -f "$work/test.txt" -t "$threads" --json 2>/dev/null | jget '["ppl"]'; }
base=$(ppl_of "${m[@]}")
echo "$model fine-tuned on WikiText-2 valid.txt: $steps steps of $batch x $seq tokens ($((steps * batch * seq)) tokens),"
echo "default learning rates (1e-3 adapters, 3e-4 full), alpha = 2 x rank, targets q,k,v,o;"
echo "test perplexity on the first ${EVAL_BYTES:-65536} bytes of test.txt at the model's context; base model: $(printf %.3f "$base")."
echo "machine: $(nproc) cores, $threads threads; $(date -u +%F); $("$aellm" --version)"
echo
echo "| method | rank | test PPL | vs base | held-out loss before → after | trainable params | train tokens/s | peak train memory MiB | wall s |"
echo "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |"
for method in ${METHODS:-full lora rslora dora qlora}; do
    ranks=${RANKS:-4 8 16 32}
    [ "$method" = full ] && ranks="-"
    for r in $ranks; do
        out=$work/$method-$r.gguf
        extra=()
        [ "$r" != "-" ] && extra=(--rank "$r")
        "$aellm" train "${m[@]}" -d "$train" -o "$out" --method "$method" "${extra[@]}" --steps "$steps" \
            --batch "$batch" --seq-len "$seq" --eval-max 64 -t "$threads" -q --json >"$out.json"
        ppl=$(ppl_of -m "$out")
        python3 - "$out.json" "$method" "$r" "$ppl" "$base" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
method, rank, ppl, base = sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
print("| %s | %s | %.3f | %.3f | %.4f → %.4f | %d | %.0f | %.1f | %.1f |" % (
    method, rank, ppl, ppl / base, r["heldout_loss_before"], r["heldout_loss"],
    r["trainable_params"], r["tokens_per_s"], r["peak_bytes"] / 2**20, r["wall_s"]))
PY
    done
done
