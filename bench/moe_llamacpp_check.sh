#!/usr/bin/env bash
# llama.cpp runs aellm's mixture-of-experts GGUF files as aellm does: the
# two real models split into experts (aellm convert --moe, routers fitted on
# TinyStories val from byte 65,536 on), F32 and (BabyLlama 4 x top-2, whose
# expert rows are whole blocks) Q8_0 / Q4_0 by aellm quantize, scored by llama.cpp's
# llama-perplexity and by aellm perplexity on the first 64 KiB of the same
# text, same window, F32 KV cache. Prints a markdown table for bench/README.md.
#
#   LLAMA_CPP=/path/to/llama.cpp/build/bin bench/moe_llamacpp_check.sh [BUILD_DIR] [DATA_DIR]
#   env: THREADS=2
set -euo pipefail
build=${1:-build}
data=$(cd "${2:-$(dirname "$0")/../../shared/data}" && pwd)
bin=${LLAMA_CPP:?set LLAMA_CPP to the folder of llama-perplexity}
aellm=$build/aellm
threads=${THREADS:-2}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
val=$data/tinystories/tinystories_val.txt
head -c 65536 "$val" >"$work/ts64k.txt"
tail -c +65537 "$val" >"$work/router.txt"
# BabyLlama's vocabulary has no newline; llama.cpp's tokenizer aborts on a
# character it cannot encode, so runs of newlines become one space for both.
tr -s '\n' ' ' <"$work/ts64k.txt" >"$work/ts64k-nonl.txt"
echo "llama.cpp: $bin (commit $(git -C "$bin/../.." rev-parse --short HEAD 2>/dev/null || echo unknown)); aellm $("$aellm" --version)"
echo
echo "| model | experts | file | aellm PPL | llama.cpp PPL | rel. diff |"
echo "| --- | --- | --- | ---: | ---: | ---: |"
check() { # name checkpoint tokenizer text ctx layouts (E:k:types, types comma-separated)
    local name=$1 text=$4 ctx=$5
    for layout in $6; do
        IFS=: read -r E k types <<<"$layout"
        types=${types//,/ }
        local f=$work/$name-$E-$k
        "$aellm" convert -m "$data/$2" -z "$data/$3" -o "$f-f32.gguf" --moe "$E" --top-k "$k" \
            --router-text "$work/router.txt" >/dev/null 2>&1
        for t in $types; do
            [ $t = f32 ] || "$aellm" quantize -m "$f-f32.gguf" -o "$f-$t.gguf" --type $t --method rtn \
                >/dev/null 2>&1
            a=$("$aellm" perplexity -m "$f-$t.gguf" -f "$text" -c "$ctx" -t "$threads" --json |
                python3 -c "import json,sys; print(json.load(sys.stdin)['ppl'])")
            l=$("$bin/llama-perplexity" -m "$f-$t.gguf" -f "$text" -c "$ctx" -t "$threads" -ctk f32 \
                -ctv f32 2>&1 | sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p')
            [ -n "$l" ] || { echo "llama.cpp did not load $f-$t.gguf" >&2; exit 1; }
            python3 -c "a,l=$a,$l; print('| $name | $E x top-$k | $t | %.4f | %.4f | %.1e |' % (a, l, abs(a-l)/l))"
        done
    done
}
# quantized only where the experts' rows are whole 32-blocks (BabyLlama's 4
# experts of 96; 8 of 44 are not, and aellm's partial-block types are its own)
check stories260K stories260K/stories260K.bin stories260K/tok512.bin "$work/ts64k.txt" 256 "4:2:f32 8:1:f32"
check babyllama babyllama/babyllama-1M.bin babyllama/tok105.bin "$work/ts64k-nonl.txt" 256 \
    "4:2:f32,q8_0,q4_0 8:1:f32"
