#!/usr/bin/env bash
# The architecture stage's mixture-of-experts layouts on the real models:
# per layout (E experts x top-k, MoEfication split or upcycled) the
# parameters a token uses, the share of the dense FFN's weight bytes a
# decoded token reads, decode speed against the dense model over a
# context-filling prompt + generation (timed interleaved: eval --paired),
# perplexity converted as is (routers fitted on the uptraining text) and
# after the same uptraining budget, and how evenly the scored text's tokens
# spread over the experts (busiest expert / mean, averaged over layers; 1 is
# even). Uptraining reads TinyStories val from byte 65,536 on; perplexity
# scores its first 64 KiB (no overlap). The "dense" row's uptrained figure is
# the control: the original model given the same full fine-tuning.
#
# Then speed alone on a random-weight 110M shape (Q4_0): the FFN bytes a
# token reads and decode tokens/s at a 512-token context per layout, split
# without uptraining (its weights mean nothing; its speed does not depend on
# them), timed interleaved with the dense model (eval --paired).
#
#   bench/moe_table.sh BUILD_DIR [DATA_DIR]
#   env: MODELS="stories260K babyllama" ("" skips them) STEPS=200 REPS=10 THREADS=2
#        SPEED_SHAPE=110M (none skips it) SPEED_REPS=6
set -euo pipefail
steps=${STEPS:-200} reps=${REPS:-10} threads=${THREADS:-2}
. "$(dirname "$0")/tinystories_task.sh"
echo "machine: $(nproc) cores, $threads threads; $(date -u +%F); $("$aellm" --version)"
echo "uptraining: $steps steps of 8 x 256 tokens (full fine-tuning with a 0.01 load-balancing loss)"
echo "on tinystories_val.txt from byte 65536; routers fitted on its first 8192 tokens; perplexity"
echo "on its first 64 KiB"
echo
echo "| model | layout | active params / token | FFN bytes read / token | decode vs dense (paired) | PPL converted | PPL after $steps steps | expert load (max/mean) |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
row() { # model ctx layout before.json after.json
    python3 - "$@" <<'PY'
import json, sys
model, ctx, layout = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rec = lambda f: (lambda j: j.get("record", j))(json.load(open(f)))
b, a = rec(sys.argv[4]), rec(sys.argv[5])
ex = b.get("experts")
active = ex["active_params"] if ex else b["model"]["shape"]["n_params"]
# of the dense FFN's bytes: a split's experts together are the FFN (and its
# padding), an upcycled model's are E copies of it
copies = ex["experts"] if ex and b["architecture"]["moe"]["method"] == "upcycle" else 1
share = "%.1f %%" % (100 * ex["ffn_bytes_per_token"] * copies / ex["ffn_bytes_all_experts"]) if ex else "100 %"
p = b["latency"].get("paired")
dec = "%.3f" % (1 / p["ratio_decode"]["median"]) if p else "1"
load = "%.2f" % a["experts"]["load_max_over_mean"] if a.get("experts") else "-"
print("| %s | %s | %d | %s | %s | %.3f | %.3f | %s |" % (model, layout, active, share, dec,
      b["accuracy"]["value"], a["accuracy"]["value"], load))
PY
}
for model in ${MODELS-stories260K babyllama}; do
    model_args "$model"
    "$aellm" convert "${m[@]}" -o "$work/$model.gguf" >/dev/null 2>&1
    ctx=$("$aellm" info -m "$work/$model.gguf" --json |
        python3 -c "import json,sys; print(json.load(sys.stdin)['metadata']['llama.context_length'])")
    gen=128 prompt=$((ctx - 128))
    ev() { # config JSON, record file, [--paired]
        echo "$1" >"$work/c.json"
        "$aellm" eval -m "$work/$model.gguf" --task "$work/task.json" --config "$work/c.json" \
            --db "$work/e.db" -p "$prompt" -n "$gen" --max-reps "$reps" -t "$threads" --json ${3:-} \
            >"$2" 2>"$work/err" || { echo "eval failed: $(tail -2 "$work/err")" >&2; exit 1; }
    }
    ev '{}' "$work/b.json"
    ev "{\"finetuning\": {\"method\": \"full\", \"steps\": $steps}}" "$work/a.json"
    row "$model" "$ctx" "dense (control: full FT)" "$work/b.json" "$work/a.json"
    for layout in 2:1 2:2 4:1 4:2 8:1 8:2 4:1:upcycle; do
        IFS=: read -r E k method <<<"$layout"
        arch="\"moe_experts\": $E, \"moe_top_k\": $k, \"moe_method\": \"${method:-split}\""
        ev "{\"architecture\": {$arch}}" "$work/b.json" --paired
        ev "{\"architecture\": {$arch, \"uptrain_steps\": $steps}}" "$work/a.json"
        row "$model" "$ctx" "$E x top-$k${method:+ ($method)}" "$work/b.json" "$work/a.json"
    done
done
shape=${SPEED_SHAPE:-110M}
[ "$shape" = none ] && exit 0
"$aellm" mkmodel --shape "$shape" --type q4_0 -o "$work/speed.gguf" >/dev/null 2>&1
head -c 4096 "$val" >"$work/short.txt"
echo "{\"name\": \"short\", \"kind\": \"perplexity\", \"data\": \"$work/short.txt\"}" >"$work/short.json"
echo
echo "| $shape (random, Q4_0) | active params / token | FFN bytes read / token | decode tok/s (384 + 128) | decode speed vs dense (paired) |"
echo "| --- | ---: | ---: | ---: | ---: |"
for layout in 2:1 4:1 4:2 8:1 8:2; do
    IFS=: read -r E k <<<"$layout"
    echo "{\"architecture\": {\"moe_experts\": $E, \"moe_top_k\": $k}}" >"$work/c.json"
    "$aellm" eval -m "$work/speed.gguf" --task "$work/short.json" --config "$work/c.json" \
        --db "$work/e.db" -p 384 -n 128 --max-reps "${SPEED_REPS:-6}" -t "$threads" --paired --json \
        >"$work/s.json" 2>"$work/err" || { echo "eval failed: $(tail -2 "$work/err")" >&2; exit 1; }
    python3 - "$work/s.json" "$E x top-$k" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r = r.get("record", r)
ex, p = r["experts"], r["latency"]["paired"]
print("| %s | %d | %.1f %% | %.1f | %.3f |" % (sys.argv[2], ex["active_params"],
      100 * ex["ffn_bytes_per_token"] / ex["ffn_bytes_all_experts"], r["latency"]["n_gen"] / p["decode_s"],
      1 / p["ratio_decode"]["median"]))
PY
done
