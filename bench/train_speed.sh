#!/usr/bin/env bash
# Training speed, as ratios measured in the same run: aellm's training tokens/s
# (full fine-tuning, LoRA rank 16 on q,k,v,o) against the engine's own
# inference forward over the same windows (aellm perplexity at the same
# context: a full step costs about 3 forwards by FLOPs, a LoRA step about 2),
# against OpenBLAS SGEMM at the model's FFN shape over the batch's tokens
# (bench_matmul_ab, same run), by the step's FLOPs (3 x 2 x matrix weights per
# token, plus the full T x T attention), and against llama.cpp's
# llama-finetune (full fine-tuning only) with the same threads, sequence
# length and batch, when LLAMA_FINETUNE points at it.
#
#   bench/train_speed.sh BUILD_DIR [DATA_DIR]
#   env: MODELS="stories260K babyllama" SEQ=256 BATCHES="1 8" STEPS=40 THREADS=2
#        LLAMA_FINETUNE=/path/to/llama-finetune (built beside the project, never committed)
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR [DATA_DIR]}
data=$(cd "${2:-$(dirname "$0")/../../shared/data}" && pwd)
aellm=$build/aellm
seq=${SEQ:-256} steps=${STEPS:-40} threads=${THREADS:-2}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=$threads
train=$data/wikitext-2/valid.txt
# newlines become spaces: BabyLlama's vocabulary has no newline, and llama.cpp's
# tokenizer aborts on a character it cannot encode
head -c 400000 "$train" | tr -s '\n' ' ' >"$work/train.txt"
jnum() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }
echo "machine: $(nproc) cores, $threads threads; $(date -u +%F); $("$aellm" --version)"
[ -n "${LLAMA_FINETUNE:-}" ] && echo "llama.cpp: $LLAMA_FINETUNE"
echo
echo "| model | batch x seq | forward tok/s | full tok/s | forward / full | full GFLOP/s / SGEMM's | LoRA r16 tok/s | forward / LoRA | llama-finetune tok/s | aellm full / llama-finetune |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for model in ${MODELS:-stories260K babyllama}; do
    case $model in
    stories260K) m=(-m "$data/stories260K/stories260K.bin" -z "$data/stories260K/tok512.bin") ;;
    babyllama) m=(-m "$data/babyllama/babyllama-1M.bin" -z "$data/babyllama/tok105.bin") ;;
    esac
    "$aellm" convert "${m[@]}" -o "$work/$model.gguf" >/dev/null 2>&1
    # FLOPs of a full training step per token, and the FFN shape (rows x width)
    read -r flops shape < <("$aellm" info -m "$work/$model.gguf" --json | python3 -c "
import json, sys
t = {x['name']: x['shape'] for x in json.load(sys.stdin)['tensors']}
mats = sum(s[0] * s[1] for n, s in t.items() if n.startswith('blk.') and len(s) == 2)
mats += t['output.weight'][0] * t['output.weight'][1] if 'output.weight' in t else t['token_embd.weight'][0] * t['token_embd.weight'][1]
L = len([n for n in t if n.endswith('attn_q.weight')])
qd = t['blk.0.attn_q.weight'][1]
print(3 * 2 * mats + 3 * L * 4 * $seq * qd, '%dx%d' % (t['blk.0.ffn_up.weight'][1], t['blk.0.ffn_up.weight'][0]))")
    fwd=$("$aellm" perplexity -m "$work/$model.gguf" -f "$work/train.txt" -c "$seq" -b "$seq" -t "$threads" \
        --json 2>/dev/null | python3 -c "import json,sys; r=json.load(sys.stdin); print(r['chunks']*r['ctx']/r['seconds'])")
    lf="-"
    if [ -n "${LLAMA_FINETUNE:-}" ]; then
        # llama-finetune trains two epochs over windows of -c tokens (stride c/2, 5 % held
        # out) at a fixed learning rate; its progress bar counts windows and elapsed time.
        # Tokens/s of its first epoch: windows x seq / seconds.
        (cd "$work" && "$LLAMA_FINETUNE" -m "$work/$model.gguf" -f "$work/train.txt" -c "$seq" -b "$seq" \
            -ub "$seq" -t "$threads" -ngl 0 >"$work/lf.log" 2>&1) || true
        lf=$(tr '\r' '\n' <"$work/lf.log" | python3 -c "
import re, sys
m = [l for l in sys.stdin if l.startswith('train:')]
last = None
for l in m:
    x = re.search(r'data=\s*(\d+)/\s*(\d+).*t=(\d+):(\d+):(\d+)', l)
    if x and x.group(1) == x.group(2):
        last = x
        break
if last:
    d, h, mi, s = int(last.group(1)), int(last.group(3)), int(last.group(4)), int(last.group(5))
    print('%.0f' % (d * $seq / max(1, h * 3600 + mi * 60 + s)))
else:
    print('-')")
    fi
    for b in ${BATCHES:-1 8}; do
        run() { "$aellm" train -m "$work/$model.gguf" -d "$work/train.txt" -o "$work/out.gguf" --seq-len "$seq" \
            --batch "$b" --steps "$steps" --heldout 0.02 --eval-max 1 -t "$threads" -q --json "$@" | jnum tokens_per_s; }
        full=$(run --method full)
        sgemm=$("$build/bench/bench_matmul_ab" $((b * seq)) f32 3 3 "$shape" 2>/dev/null |
            awk -v s="$shape" '$1 == s {print $3}')
        lora=$(run --method lora --rank 16)
        ratio="-"
        [ "$lf" != "-" ] && ratio=$(python3 -c "print('%.2f' % ($full / $lf))")
        python3 -c "
f, fu, lo, fl, sg = $fwd, $full, $lora, $flops, ${sgemm:-0}
share = '%.1f / %.1f = %.2f' % (fu * fl / 1e9, sg, fu * fl / 1e9 / sg) if sg else '-'
print('| $model | $b x $seq | %.0f | %.0f | %.2f | %s | %.0f | %.2f | $lf | $ratio |' % (f, fu, f / fu, share, lo, f / lo))"
    done
done
