#!/usr/bin/env bash
# The architecture stage's attention variants on the real models (MHA as
# is, GQA, MQA, and MLA at a quarter and half of the full rank 2 x KV heads
# x head dim, head_dim / 4 rotary dims): per
# variant the KV heads, KV-cache bytes per token (F32 cache), decode speed
# over a context-filling prompt + generation, and perplexity converted as is
# and after the same uptraining budget. Uptraining reads TinyStories val
# from byte 65,536 on; perplexity scores its first 64 KiB (no overlap). The
# "mha" row's uptrained figure is the control: the original model given the
# same full fine-tuning, so the gap to it is what the conversion costs.
#
# Then speed alone on a random-weight 110M shape (Q4_0 weights, so that the
# F32 KV cache is a large share of what a decoded token reads): KV bytes and
# decode tokens/s at a 512-token context per variant, converted without
# uptraining (its weights mean nothing; its speed does not depend on them),
# timed interleaved with the model as is (eval --paired): the ratio holds
# where the shared machine's drift swamps single medians.
#
#   bench/arch_table.sh BUILD_DIR [DATA_DIR]
#   env: MODELS="stories260K babyllama" ("" skips them) STEPS=200 REPS=10 THREADS=2
#        SPEED_SHAPE=110M (none skips it)
set -euo pipefail
steps=${STEPS:-200} reps=${REPS:-10} threads=${THREADS:-2}
. "$(dirname "$0")/tinystories_task.sh"
echo "machine: $(nproc) cores, $threads threads; $(date -u +%F); $("$aellm" --version)"
echo "uptraining: $steps steps of 8 x 256 tokens (full fine-tuning of the converted model) on"
echo "tinystories_val.txt from byte 65536; perplexity on its first 64 KiB"
echo
echo "| model | attention | KV heads | KV bytes / token | decode tok/s | PPL converted | PPL after $steps steps | held-out loss (uptraining) |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"
for model in ${MODELS-stories260K babyllama}; do
    model_args "$model"
    "$aellm" convert "${m[@]}" -o "$work/$model.gguf" >/dev/null 2>&1
    ctx=$("$aellm" info -m "$work/$model.gguf" --json |
        python3 -c "import json,sys; print(json.load(sys.stdin)['metadata']['llama.context_length'])")
    gen=128 prompt=$((ctx - 128))
    ev() { # config JSON, record file
        echo "$1" >"$work/c.json"
        "$aellm" eval -m "$work/$model.gguf" --task "$work/task.json" --config "$work/c.json" \
            --db "$work/e.db" -p "$prompt" -n "$gen" --max-reps "$reps" -t "$threads" --json \
            >"$2" 2>"$work/err" || { echo "eval failed: $(tail -2 "$work/err")" >&2; exit 1; }
    }
    full=$("$aellm" info -m "$work/$model.gguf" --json | python3 -c "import json,sys; m=json.load(sys.stdin)['metadata']
print(2 * m['llama.attention.head_count_kv'] * m['llama.embedding_length'] // m['llama.attention.head_count'])")
    for att in mha gqa mqa mla:$((full / 4)) mla:$((full / 2)); do
        IFS=: read -r att rank <<<"$att"
        arch="\"attention\": \"$att\"${rank:+, \"mla_rank\": $rank}"
        if [ "$att" = mha ]; then
            ev '{}' "$work/b.json"
            ev "{\"finetuning\": {\"method\": \"full\", \"steps\": $steps}}" "$work/a.json"
        else
            ev "{\"architecture\": {$arch}}" "$work/b.json"
            ev "{\"architecture\": {$arch, \"uptrain_steps\": $steps}}" "$work/a.json"
        fi
        python3 - "$model" "$att${rank:+ (rank $rank of $full)}" "$ctx" "$work/b.json" "$work/a.json" <<'PY'
import json, sys
model, att, ctx = sys.argv[1], sys.argv[2], int(sys.argv[3])
rec = lambda f: (lambda j: j.get("record", j))(json.load(open(f)))
b, a = rec(sys.argv[4]), rec(sys.argv[5])
kv = b["memory"]["peak_by_kind"]["kv"] / ctx
heads = b.get("architecture", {}).get("kv_heads", b["model"]["shape"]["n_kv_heads"])
dec = b["latency"]["n_gen"] / b["latency"]["decode_s"]["median"]
train = a.get("architecture", {}).get("uptraining") or a.get("finetuning")
loss = "%.3f -> %.3f" % (train["heldout_loss_before"], train["heldout_loss"]) if train else "-"
print("| %s | %s | %d | %.0f | %.0f | %.3f | %.3f | %s |" % (model, att if att != "mha" else "as is (control: full FT)",
      heads, kv, dec, b["accuracy"]["value"], a["accuracy"]["value"], loss))
PY
    done
done
shape=${SPEED_SHAPE:-110M}
[ "$shape" = none ] && exit 0
"$aellm" mkmodel --shape "$shape" --type q4_0 -o "$work/speed.gguf" >/dev/null 2>&1
head -c 4096 "$val" >"$work/short.txt"
echo "{\"name\": \"short\", \"kind\": \"perplexity\", \"data\": \"$work/short.txt\"}" >"$work/short.json"
echo
echo "| $shape (random, Q4_0) | KV heads | KV bytes / token | decode tok/s (384 + 128) | decode speed vs as is (paired) |"
echo "| --- | ---: | ---: | ---: | ---: |"
for att in mha gqa mqa mla; do
    cfg='{}'
    [ "$att" != mha ] && cfg="{\"architecture\": {\"attention\": \"$att\"}}"
    echo "$cfg" >"$work/c.json"
    "$aellm" eval -m "$work/speed.gguf" --task "$work/short.json" --config "$work/c.json" \
        --db "$work/e.db" -p 384 -n 128 --max-reps "$reps" -t "$threads" --paired --json \
        >"$work/s.json" 2>/dev/null
    python3 - "$work/s.json" "$att" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r = r.get("record", r)
ctx = r["model"]["shape"]["n_ctx"]
heads = r.get("architecture", {}).get("kv_heads", r["model"]["shape"]["n_kv_heads"])
p = r["latency"]["paired"]
print("| %s | %d | %.0f | %.1f | %.3f |" % (sys.argv[2] if sys.argv[2] != "mha" else "as is", heads,
      r["memory"]["peak_by_kind"]["kv"] / ctx, r["latency"]["n_gen"] / p["decode_s"],
      1 / p["ratio_decode"]["median"]))
PY
done
