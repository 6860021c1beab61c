#!/usr/bin/env bash
# Accuracy cross-check against llama.cpp on the two real models: the F32,
# Q8_0 and Q4_0 GGUF files that aellm writes (convert, quantize --method rtn;
# BabyLlama's, as stories260K's quantized rows are not llama.cpp's blocks)
# scored by llama.cpp's llama-perplexity and by aellm perplexity on the same
# text and window, then the KL divergence of Q8_0 and Q4_0 from F32 by both
# (llama-perplexity --kl-divergence-base / --kl-divergence, and aellm's
# options of the same names). Prints the markdown table of bench/README.md.
#
#   LLAMA_CPP=/path/to/llama.cpp/build/bin bench/llamacpp_ppl_check.sh [BUILD_DIR] [DATA_DIR]
#   env: THREADS=2  WORK=/tmp/aellm-llamacpp-check
# A second table: fine-tuned models (merged GGUF, and base + LoRA adapter) by both.
# llama.cpp runs with an F32 KV cache (-ctk f32 -ctv f32), as aellm's default.
set -euo pipefail
build=${1:-build}
data=$(cd "${2:-$(dirname "$0")/../../shared/data}" && pwd)
bin=${LLAMA_CPP:?set LLAMA_CPP to the folder of llama-perplexity}
aellm=$build/aellm
threads=${THREADS:-2}
work=${WORK:-/tmp/aellm-llamacpp-check}
mkdir -p "$work"
head -c 65536 "$data/tinystories/tinystories_val.txt" >"$work/ts64k.txt"
# BabyLlama's vocabulary has no newline and no byte pieces; llama.cpp's
# tokenizer aborts on a character it cannot encode. Each run of newlines
# becomes one space for it.
tr -s '\n' ' ' <"$work/ts64k.txt" >"$work/ts64k-nonl.txt"

echo "llama.cpp: $bin (commit $(git -C "$bin/../.." rev-parse --short HEAD 2>/dev/null || echo unknown)); aellm $("$aellm" --version)"
echo
echo "| model | file | aellm PPL | llama.cpp PPL | rel. diff | aellm KLD | llama.cpp KLD | aellm top-1 same | llama.cpp same top p |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
check() { # name checkpoint text tokenizer ctx types
    local name=$1 text=$3 ctx=$5 types=$6 dir=$work/$1
    mkdir -p "$dir"
    "$aellm" convert -m "$data/$2" -z "$data/$4" -o "$dir/f32.gguf" >/dev/null 2>&1
    for t in $types; do
        [ $t = f32 ] || "$aellm" quantize -m "$dir/f32.gguf" -o "$dir/$t.gguf" --type $t --method rtn \
            >/dev/null 2>&1
    done
    local lcommon=(-f "$text" -c "$ctx" -t "$threads" -ctk f32 -ctv f32)
    "$bin/llama-perplexity" -m "$dir/f32.gguf" "${lcommon[@]}" --kl-divergence-base "$dir/llama.kld" \
        >"$dir/llama-f32.txt" 2>&1
    "$aellm" perplexity -m "$dir/f32.gguf" -f "$text" -c "$ctx" -t "$threads" \
        --kl-divergence-base "$dir/aellm.kld" --json >"$dir/aellm-f32.json" 2>/dev/null
    for t in $types; do
        local lout=$dir/llama-$t.txt aout=$dir/aellm-$t.json
        if [ $t != f32 ]; then
            "$bin/llama-perplexity" -m "$dir/$t.gguf" "${lcommon[@]}" --kl-divergence-base "$dir/llama.kld" \
                --kl-divergence >"$lout" 2>&1
            "$aellm" perplexity -m "$dir/$t.gguf" -f "$text" -c "$ctx" -t "$threads" \
                --kl-divergence-base "$dir/aellm.kld" --kl-divergence --json >"$aout" 2>/dev/null
        fi
        python3 - "$name" "$t" "$lout" "$aout" <<'PY'
import json, re, sys
name, t, lout, aout = sys.argv[1:]
log = open(lout, encoding="utf-8", errors="replace").read()
a = json.load(open(aout))
if t == "f32":
    m = re.search(r"Final estimate: PPL = ([0-9.]+)", log)
    lppl = float(m.group(1))
    lkld = ltop = "-"
else:
    lppl = float(re.search(r"Mean PPL\(Q\)\s*:\s*([0-9.]+)", log).group(1))
    lkld = "%.6f ± %.6f" % tuple(map(float, re.search(r"Mean\s+KLD:\s*([-0-9.]+) ±\s*([0-9.]+)", log).groups()))
    ltop = "%.3f %%" % float(re.search(r"Same top p:\s*([0-9.]+)", log).group(1))
k = a.get("kl_divergence")
akld = "%.6f ± %.6f" % (k["kld"], k["kld_stderr"]) if k else "-"
atop = "%.3f %%" % (100 * k["top1_agree"]) if k else "-"
ppl = a["ppl"]
print("| %s | %s | %.6f | %.6f | %.1e | %s | %s | %s | %s |" % (name, t, ppl, lppl, abs(ppl - lppl) / lppl, akld, lkld, atop, ltop))
PY
    done
}
# stories260K's FFN rows are 172 wide, not whole blocks of 32: its Q8_0/Q4_0
# files keep those rows in aellm's padded types, which llama.cpp cannot load.
check stories260K stories260K/stories260K.bin "$work/ts64k.txt" stories260K/tok512.bin 512 f32
check babyllama babyllama/babyllama-1M.bin "$work/ts64k-nonl.txt" babyllama/tok105.bin 256 "f32 q8_0 q4_0"

# Fine-tuned models: stories260K trained on WikiText-2 valid by LoRA and RSLoRA,
# the merged GGUF scored by both, and the unmerged adapter (llama.cpp's LoRA
# GGUF; RSLoRA's alpha written as alpha * sqrt(r)) applied by both --lora.
echo
echo "| fine-tuned stories260K | merged: aellm PPL | merged: llama.cpp PPL | base + adapter: aellm --lora | base + adapter: llama.cpp --lora |"
echo "| --- | ---: | ---: | ---: | ---: |"
dir=$work/stories260K
head -c 65536 "$data/wikitext-2/test.txt" >"$work/wt-test.txt"
final_ppl() { grep -a "Final estimate" | sed 's/.*PPL = \([0-9.]*\).*/\1/'; }
for method in lora rslora; do
    "$aellm" train -m "$dir/f32.gguf" -d "$data/wikitext-2/valid.txt" -o "$dir/$method.gguf" \
        --adapter-out "$dir/$method-adapter.gguf" --method "$method" --rank 8 --steps 40 -t "$threads" -q \
        >/dev/null
    a_m=$("$aellm" perplexity -m "$dir/$method.gguf" -f "$work/wt-test.txt" -c 512 -t "$threads" 2>/dev/null |
        awk '/^PPL/ {print $3}')
    a_l=$("$aellm" perplexity -m "$dir/f32.gguf" --lora "$dir/$method-adapter.gguf" -f "$work/wt-test.txt" -c 512 \
        -t "$threads" 2>/dev/null | awk '/^PPL/ {print $3}')
    l_m=$("$bin/llama-perplexity" -m "$dir/$method.gguf" -f "$work/wt-test.txt" -c 512 -t "$threads" -ctk f32 \
        -ctv f32 2>&1 | final_ppl)
    l_l=$("$bin/llama-perplexity" -m "$dir/f32.gguf" --lora "$dir/$method-adapter.gguf" -f "$work/wt-test.txt" \
        -c 512 -t "$threads" -ctk f32 -ctv f32 2>&1 | final_ppl)
    echo "| $method rank 8, 40 steps | $a_m | $l_m | $a_l | $l_l |"
done
