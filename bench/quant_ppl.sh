#!/usr/bin/env bash
# Quantization accuracy: a real model (stories260K or BabyLlama) quantized by
# every (precision, method, group) that aellm has, each scored by perplexity
# and by KL divergence from the F32 model on TinyStories validation text, beside
# the F32 model in the same run. Prints the markdown table that bench/README.md
# holds.
#
#   bench/quant_ppl.sh [BUILD_DIR]          (default: build)
#   env: MODEL=stories260K|babyllama  DATA=../shared/data
#        EVAL_BYTES=65536 (the first bytes of tinystories_val.txt)
#        CTX=512 (stories260K) / 256 (babyllama: its context)  CALIB_SKIP=393216
#        CALIB_TOKENS=4096 (calibration: a later slice of the same file, so no
#        evaluated text is seen)  THREADS=2  WORK=/tmp/aellm-quant-ppl-$MODEL
set -euo pipefail
build=${1:-build}
aellm=$build/aellm
data=${DATA:-../shared/data}
model=${MODEL:-stories260K}
case $model in
stories260K) ckpt=stories260K/stories260K.bin tok=stories260K/tok512.bin def_ctx=512 ;;
babyllama) ckpt=babyllama/babyllama-1M.bin tok=babyllama/tok105.bin def_ctx=256 ;;
*) echo "MODEL must be stories260K or babyllama" >&2; exit 1 ;;
esac
eval_bytes=${EVAL_BYTES:-65536}
ctx=${CTX:-$def_ctx}
calib_skip=${CALIB_SKIP:-393216}
calib_tokens=${CALIB_TOKENS:-4096}
threads=${THREADS:-2}
work=${WORK:-/tmp/aellm-quant-ppl-$model}
val=$data/tinystories/tinystories_val.txt
[ -x "$aellm" ] || { echo "no $aellm: build first" >&2; exit 1; }
[ -f "$val" ] || { echo "no $val" >&2; exit 1; }
mkdir -p "$work"
head -c "$eval_bytes" "$val" >"$work/eval.txt"

jget() { sed -n "s/.*\"$1\":[[:space:]]*\([0-9.eE+-]*\).*/\1/p" | head -1; }

"$aellm" convert -m "$data/$ckpt" -z "$data/$tok" -o "$work/f32.gguf" 2>/dev/null
ppl_of() { "$aellm" perplexity -m "$1" -f "$work/eval.txt" -c "$ctx" -t "$threads" --json; }
# KL divergence from the F32 model, llama-perplexity's two steps
kld_of() { "$aellm" perplexity -m "$1" -f "$work/eval.txt" -c "$ctx" -t "$threads" \
    --kl-divergence-base "$work/base.kld" --kl-divergence --json; }
"$aellm" perplexity -m "$work/f32.gguf" -f "$work/eval.txt" -c "$ctx" -t "$threads" \
    --kl-divergence-base "$work/base.kld" --json >/dev/null
bytes_of() { "$aellm" info -m "$1" --json | jget tensor_bytes; }

base=$(ppl_of "$work/f32.gguf" | jget ppl)
base_bytes=$(bytes_of "$work/f32.gguf")

echo "$model, perplexity and KL divergence from F32 on the first $eval_bytes bytes of tinystories_val.txt at context $ctx;"
echo "calibration: $calib_tokens tokens from byte $calib_skip of the same file (no overlap);"
echo "layer matrices quantized, token embedding / output kept in F32 (GPTQ and AWQ papers' rule)."
echo
echo "| precision | method | group | PPL | ΔPPL vs F32 | Δ / RTN's Δ | KLD | top-1 same | weight bytes | vs F32 |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
printf "| f32 | - | - | %.4f | 0 | - | 0 | 1.000 | %d | 1.00 |\n" "$base" "$base_bytes"

# precision label, --type args, methods
configs=(
    "f16|--type f16|rtn"
    "bf16|--type bf16|rtn"
    "fp8 e4m3 (tensor scale)|--type fp8 --fp8-scale tensor|rtn"
    "fp8 e4m3 (channel scale)|--type fp8|rtn"
    "q8_0|--type q8_0|rtn gptq"
    "int8 W8A8 (channel)|--type int8|rtn smoothquant"
    "int4 sym|--type int4 --group 32|rtn gptq gptq+act-order awq"
    "int4 sym|--type int4 --group 64|rtn gptq gptq+act-order awq"
    "int4 sym|--type int4 --group 128|rtn gptq gptq+act-order awq"
    "int4 asym|--type int4 --asym --group 32|rtn gptq gptq+act-order awq"
    "int4 asym|--type int4 --asym --group 64|rtn gptq gptq+act-order awq"
    "int4 asym|--type int4 --asym --group 128|rtn gptq gptq+act-order awq"
    "nf4|--type nf4|rtn gptq gptq+act-order awq"
)
for c in "${configs[@]}"; do
    IFS='|' read -r label args methods <<<"$c"
    group=$(echo "$args" | sed -n 's/.*--group \([0-9]*\).*/\1/p')
    [ -z "$group" ] && case $label in nf4) group=64 ;; q8_0) group=32 ;; *) group="row" ;; esac
    [[ $label == f16 || $label == bf16 ]] && group="-"
    rtn_delta=""
    for method in $methods; do
        out="$work/$(echo "$label-$group-$method" | tr -c 'a-z0-9_-' '_').gguf"
        margs="--method ${method%%+*}"
        [ "$method" != "${method#*+}" ] && margs="$margs --${method#*+}"
        # shellcheck disable=SC2086
        "$aellm" quantize -m "$work/f32.gguf" -o "$out" $args $margs \
            --calib "$val" --calib-skip "$calib_skip" --calib-tokens "$calib_tokens" \
            -t "$threads" --json >"$out.json"
        kj=$(kld_of "$out")
        ppl=$(echo "$kj" | jget ppl)
        kld=$(echo "$kj" | jget kld)
        top1=$(echo "$kj" | jget top1_agree)
        bytes=$(bytes_of "$out")
        delta=$(python3 -c "print($ppl - $base)")
        [ "$method" = rtn ] && rtn_delta=$delta
        ratio="-"
        [ "$method" != rtn ] && [ -n "$rtn_delta" ] &&
            ratio=$(python3 -c "d=$rtn_delta; print('%.2f' % ($delta / d) if d > 0 else '-')")
        printf "| %s | %s | %s | %.4f | %+.4f | %s | %.5f | %.3f | %d | %.2f |\n" "$label" "$method" \
            "$group" "$ppl" "$delta" "$ratio" "$kld" "$top1" "$bytes" \
            "$(python3 -c "print($bytes / $base_bytes)")"
    done
done
