#!/usr/bin/env bash
# `aellm train` on the bundled model and text: a short LoRA run writes a GGUF
# that the engine loads and that scores lower held-out loss than the base; the
# JSON summary has the reported fields; instruction JSONL trains on the
# completion; bad input gives one-line errors and writes nothing.
set -u
bin=$1
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
text=$src/tasks/data/stories_calib.txt
export OMP_NUM_THREADS=2
"$bin" train --help | grep -q -- "--method" || fail "no --help"
"$bin" train -d "$text" -o "$tmp/lora.gguf" --method lora --rank 4 --steps 12 --seq-len 64 \
    --batch 4 --lr 3e-3 --json -q >"$tmp/lora.json" || fail "lora run"
python3 - "$tmp/lora.json" <<'PY' || fail "summary: $(cat "$tmp/lora.json")"
import json, sys
r = json.load(open(sys.argv[1]))
for k in ("method", "steps", "train_loss", "heldout_loss_before", "heldout_loss", "heldout_ppl",
          "tokens_per_s", "wall_s", "trainable_params", "optimizer_bytes", "peak_bytes", "energy"):
    assert k in r, k
assert r["method"] == "lora" and r["steps"] == 12
assert r["heldout_loss"] < r["heldout_loss_before"], (r["heldout_loss"], r["heldout_loss_before"])
assert r["trainable_params"] == 5 * 4 * 4 * (64 + 64) - 5 * 4 * 2 * (64 - 32), r["trainable_params"]
assert r["optimizer_bytes"] == 2 * 4 * r["trainable_params"]
assert r["energy"]["source"]
PY
"$bin" perplexity -m "$tmp/lora.gguf" -f "$text" -c 64 --chunks 4 >/dev/null 2>&1 || fail "the written model does not load"
# the unmerged adapter: base + --lora gives the merged model's perplexity (RSLoRA's alpha
# is written as alpha * sqrt(r), llama.cpp's convention)
"$bin" train -d "$text" -o "$tmp/rs.gguf" --adapter-out "$tmp/rs-adapter.gguf" --method rslora \
    --rank 4 --steps 6 --seq-len 64 --batch 4 --lr 3e-3 -q >/dev/null || fail "rslora with an adapter"
merged=$("$bin" perplexity -m "$tmp/rs.gguf" -f "$text" -c 64 --chunks 8 2>/dev/null | tail -1)
adapted=$("$bin" perplexity --lora "$tmp/rs-adapter.gguf" -f "$text" -c 64 --chunks 8 2>/dev/null | tail -1)
base=$("$bin" perplexity -f "$text" -c 64 --chunks 8 2>/dev/null | tail -1)
[ -n "$merged" ] && [ "$merged" = "$adapted" ] || fail "merged '$merged' vs base + adapter '$adapted'"
[ "$merged" != "$base" ] || fail "the adapter changed nothing: $base"
# eval takes the adapter too, and keys it apart from the base
"$bin" eval --task stories-ppl --lora "$tmp/rs-adapter.gguf" --db "$tmp/l.db" -p 16 -n 4 --max-reps 3 --json \
    >"$tmp/la.json" 2>/dev/null || fail "eval --lora"
"$bin" eval --task stories-ppl -m "$tmp/rs.gguf" --db "$tmp/l.db" -p 16 -n 4 --max-reps 3 --json \
    >"$tmp/lm.json" 2>/dev/null || fail "eval of the merged model"
"$bin" eval --task stories-ppl --db "$tmp/l.db" -p 16 -n 4 --max-reps 3 --json >"$tmp/lb.json" 2>/dev/null ||
    fail "eval of the base"
python3 - "$tmp/la.json" "$tmp/lm.json" "$tmp/lb.json" <<'PY' || fail "eval --lora records"
import json, sys
a, m, b = (json.load(open(f)) for f in sys.argv[1:])
assert abs(a["accuracy"]["value"] - m["accuracy"]["value"]) < 1e-6 * m["accuracy"]["value"]
assert a["key"] != b["key"] and a["model"]["lora"]["sha256"]
assert a["accuracy"]["value"] != b["accuracy"]["value"]
PY
"$bin" generate --lora "$tmp/rs.gguf" -p "Once" -n 4 >/dev/null 2>"$tmp/err" && fail "a model accepted as an adapter"
grep -q "not a LoRA adapter" "$tmp/err" || fail "adapter error: $(cat "$tmp/err")"
# instruction data: loss on the completion only
for i in 1 2 3 4 5 6 7 8 9 10; do
    echo "{\"prompt\": \"Q: what does the cat say? A:\", \"completion\": \" The cat says meow.\"}"
done >"$tmp/inst.jsonl"
"$bin" train -d "$tmp/inst.jsonl" -o "$tmp/inst.gguf" --method dora --rank 2 --steps 6 --seq-len 32 \
    --batch 2 --heldout 0.2 -q >/dev/null || fail "instruction data"
# the fine-tuning stage through aellm eval: trained once, reused by an inference variant
export AELLM_CACHE_DIR=$tmp/cache
cat >"$tmp/ft.json" <<JSON
{"finetuning": {"method": "rslora", "rank": 4, "steps": 8, "data": "$text"}}
JSON
cat >"$tmp/ft-q8.json" <<JSON
{"finetuning": {"method": "rslora", "rank": 4, "steps": 8, "data": "$text"}, "inference": {"weights": "q8_0"}}
JSON
ev() { "$bin" eval --task stories-ppl --config "$1" --db "$tmp/e.db" -p 16 -n 4 --max-reps 3 --json 2>/dev/null; }
ev "$tmp/ft.json" >"$tmp/a.json" || fail "eval with fine-tuning"
ev "$tmp/ft-q8.json" >"$tmp/b.json" || fail "eval with fine-tuning and q8_0"
python3 - "$tmp/a.json" "$tmp/b.json" <<'PY' || fail "fine-tuning records: $(head -c 600 "$tmp/b.json")"
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
fa, fb = a["finetuning"], b["finetuning"]
assert fa["method"] == "rslora" and fa["steps"] == 8 and fa["reused"] is False, fa
assert fb["reused"] is True and fb["wall_s"] == fa["wall_s"], fb
assert fa["trainable_params"] > 0 and fa["energy_source"], fa
assert a["config"]["finetuning"]["data"]["sha256"], a["config"]
assert a["accuracy"]["value"] != b["accuracy"]["value"]
PY
"$bin" eval --task stories-ppl --config "$tmp/ft.json" --db "$tmp/e.db" -p 16 -n 4 --max-reps 3 2>&1 |
    grep -q "stored\|cached" || fail "eval output"
# errors: one line, non-zero, nothing written
bad() { # words, args...
    local words=$1
    shift
    "$bin" train -q "$@" -o "$tmp/bad.gguf" >/dev/null 2>"$tmp/err" && fail "accepted $*"
    [ "$(wc -l <"$tmp/err")" = 1 ] || fail "not one line: $(cat "$tmp/err")"
    grep -q -- "$words" "$tmp/err" || fail "'$words' not named: $(cat "$tmp/err")"
    [ -e "$tmp/bad.gguf" ] && fail "wrote an output for $*"
    return 0
}
bad "rank" -d "$text" --rank 0
bad "rank 100" -d "$text" --rank 100 --steps 1
bad "unknown target 'qq'" -d "$text" --targets q,qq
bad "unknown fine-tuning method" -d "$text" --method lorax
bad "No such file" -d "$tmp/none.txt"
echo "a b c" >"$tmp/short.txt"
bad "too few" -d "$tmp/short.txt"
echo '{"prompt": 1}' >"$tmp/bad.jsonl"
bad "bad.jsonl:1" -d "$tmp/bad.jsonl"
bad "dropout 0.95" -d "$text" --dropout 0.95
bad "not dora" -d "$text" --method dora --dropout 0.1
bad "merged only" -d "$text" --method dora --steps 1 --adapter-out "$tmp/dora-adapter.gguf"
bad "diverged" -d "$text" --method full --lr 1e30 --steps 20 --seq-len 32 --batch 2 --clip 0
echo "ok"
