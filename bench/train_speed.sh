#!/usr/bin/env bash
# Training speed, as ratios measured in the same run: aellm's training tokens/s
# (full fine-tuning, LoRA rank 16 on q,k,v,o) against the engine's own
# inference forward over the same windows (aellm perplexity at the same
# context: a full step costs about 3 forwards by FLOPs, a LoRA step about 2),
# against OpenBLAS SGEMM at the model's FFN shape over the batch's tokens
# (bench_matmul_ab, same run), by the step's FLOPs (3 x 2 x matrix weights per
# token, plus the full T x T attention), and against llama.cpp's
# llama-finetune (full fine-tuning only) with the same threads, sequence
# length and batch, when LLAMA_FINETUNE points at it: its tokens/s over its
# first epoch, and its held-out loss after that epoch beside aellm's after
# one epoch at one sequence per step (both hold out the text's last 5 %).
# A shared machine drifts by tens of percent within minutes: every aellm
# rate is the best of REPS runs of about 80 k tokens each.
#
#   bench/train_speed.sh BUILD_DIR [DATA_DIR]
#   env: MODELS="stories260K babyllama" SEQ=256 BATCHES="1 8" TOKENS=81920 REPS=3 THREADS=2
#        LLAMA_FINETUNE=/path/to/llama-finetune (built beside the project, never committed)
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR [DATA_DIR]}
data=$(cd "${2:-$(dirname "$0")/../../shared/data}" && pwd)
aellm=$build/aellm
seq=${SEQ:-256} tokens=${TOKENS:-81920} reps=${REPS:-3} threads=${THREADS:-2}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=$threads
train=$data/wikitext-2/valid.txt
# newlines become spaces: BabyLlama's vocabulary has no newline, and llama.cpp's
# tokenizer aborts on a character it cannot encode
head -c 400000 "$train" | tr -s '\n' ' ' >"$work/train.txt"
jnum() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }
best() { sort -g | tail -1; } # the largest of the numbers on stdin
echo "machine: $(nproc) cores, $threads threads; $(date -u +%F); $("$aellm" --version)"
[ -n "${LLAMA_FINETUNE:-}" ] && echo "llama.cpp: $LLAMA_FINETUNE"
echo
echo "| model | batch x seq | forward tok/s | full tok/s | forward / full | full GFLOP/s / SGEMM's | LoRA r16 tok/s | forward / LoRA | llama-finetune tok/s | aellm full / llama-finetune |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
epochs="" # held-out losses after one epoch, printed after the table
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
    fwd=$(for r in $(seq "$reps"); do "$aellm" perplexity -m "$work/$model.gguf" -f "$work/train.txt" -c "$seq" \
        -b "$seq" -t "$threads" --json 2>/dev/null |
        python3 -c "import json,sys; r=json.load(sys.stdin); print(r['chunks']*r['ctx']/r['seconds'])"; done | best)
    lf="-"
    if [ -n "${LLAMA_FINETUNE:-}" ]; then
        # llama-finetune trains two epochs over windows of -c tokens (5 % held out) at a
        # fixed learning rate; its progress bar counts windows and elapsed time. Kept: the
        # tokens/s of its first epoch (windows x seq / seconds; the best of REPS runs, as
        # for aellm) and the held-out loss after that epoch.
        : >"$work/lf.all"
        for r in $(seq "$reps"); do
            (cd "$work" && "$LLAMA_FINETUNE" -m "$work/$model.gguf" -f "$work/train.txt" -c "$seq" \
                -b "$seq" -ub "$seq" -t "$threads" -ngl 0 >"$work/lf.log" 2>&1) || break
            tr '\r' '\n' <"$work/lf.log" | python3 -c "
import re, sys
rate, val = '-', '-'
for l in sys.stdin:
    x = re.search(r'data=\s*(\d+)/\s*(\d+) loss=([0-9.]+).*t=(\d+):(\d+):(\d+)', l)
    if not x or x.group(1) != x.group(2):
        continue
    if l.startswith('train:') and rate == '-':
        secs = int(x.group(4)) * 3600 + int(x.group(5)) * 60 + int(x.group(6))
        rate = '%.0f' % (int(x.group(1)) * $seq / max(1, secs))
    elif l.startswith('val:') and val == '-':
        val = x.group(3)
print(rate, val)" >>"$work/lf.all"
        done
        read -r lf lf_val < <(python3 -c "
import sys
rows = [l.split() for l in open('$work/lf.all') if l.split() and l.split()[0] != '-']
print('%s %s' % (max(rows, key=lambda r: int(r[0]))[0], rows[0][1]) if rows else '- -')")
        # aellm, one epoch at one sequence per step, the last 5 % held out
        ours=$("$aellm" train -m "$work/$model.gguf" -d "$work/train.txt" -o "$work/out.gguf" --seq-len "$seq" \
            --batch 1 --epochs 1 --heldout 0.05 -t "$threads" -q --json --method full | jnum heldout_loss)
        epochs+="| $model | $lf_val | $(printf %.5f "$ours") |"$'\n'
    fi
    for b in ${BATCHES:-1 8}; do
        run() { for r in $(seq "$reps"); do "$aellm" train -m "$work/$model.gguf" -d "$work/train.txt" \
            -o "$work/out.gguf" --seq-len "$seq" --batch "$b" --steps $((tokens / seq / b)) --heldout 0.02 \
            --eval-max 1 -t "$threads" -q --json "$@" | jnum tokens_per_s; done | best; }
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
if [ -n "$epochs" ]; then
    echo
    echo "| model | held-out loss after one epoch: llama-finetune | aellm (full, 1 x $seq) |"
    echo "| --- | ---: | ---: |"
    printf %s "$epochs"
fi
