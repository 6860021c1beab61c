#!/usr/bin/env bash
# MLA's rotary dims against its rank on the real models: perplexity after
# uptraining at a quarter of the full rank with more or fewer of each KV
# head's frequency pairs kept rotary, beside the control (the model given the
# same full fine-tuning). Same text and task as bench/arch_table.sh: uptrain
# on TinyStories val from byte 65,536, score its first 64 KiB.
#
#   bench/mla_rope_table.sh BUILD_DIR [DATA_DIR]
#   env: THREADS=2
set -euo pipefail
threads=${THREADS:-2}
. "$(dirname "$0")/tinystories_task.sh"
echo "machine: $(nproc) cores, $threads threads; $(date -u +%F); $("$aellm" --version)"
echo
echo "| model | rank | rotary dims | KV values / token (MHA) | steps | PPL after | control after |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
ppl() { # model.gguf config -> perplexity, KV values per token
    echo "$2" >"$work/c.json"
    "$aellm" eval -m "$1" --task "$work/task.json" --config "$work/c.json" --db "$work/e.db" \
        -p 64 -n 16 --max-reps 3 -t "$threads" --json 2>"$work/err" |
        python3 -c "import json,sys; r=json.load(sys.stdin); r=r.get('record',r)
a=r.get('architecture',{}); print(r['accuracy']['value'], a.get('kv_values_per_token', 0))" ||
        { echo "eval failed: $(tail -2 "$work/err")" >&2; exit 1; }
}
row() { # name gguf mha_kv rank rope steps
    read -r p kv < <(ppl "$2" "{\"architecture\": {\"attention\": \"mla\", \"mla_rank\": $4, \"mla_rope_dim\": $5, \"uptrain_steps\": $6}}")
    read -r c _ < <(ppl "$2" "{\"finetuning\": {\"method\": \"full\", \"steps\": $6}}")
    printf '| %s | %d | %d | %d (%d) | %d | %.3f | %.3f |\n' "$1" "$4" "$5" "$kv" "$3" "$6" "$p" "$c"
}
"$aellm" convert -m "$data/stories260K/stories260K.bin" -z "$data/stories260K/tok512.bin" \
    -o "$work/s.gguf" >/dev/null 2>&1
"$aellm" convert -m "$data/babyllama/babyllama-1M.bin" -z "$data/babyllama/tok105.bin" \
    -o "$work/b.gguf" >/dev/null 2>&1
for rope in 2 4 8; do row stories260K "$work/s.gguf" 320 16 "$rope" 200; done
for rope in 8 16; do row babyllama "$work/b.gguf" 640 32 "$rope" 200; done
row babyllama "$work/b.gguf" 640 32 16 400
