#!/usr/bin/env bash
# The optimized model itself: `aellm search -o PICK.gguf` writes the utility
# pick's model (fine-tuned and quantized as evaluated, the fine-tuned model
# reused from the cache), recording its configuration and figures; scoring
# that file as it is gives the accuracy the search measured for the pick;
# `aellm apply` makes the same model from a point's eval_config (the search's
# accuracy objective is 1/PPL on a perplexity task). Bad input is
# one line and no file. Runs on the bundled model and text.
set -u
bin=$1
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
export OMP_NUM_THREADS=2 AELLM_CACHE_DIR=$tmp/cache
cat >"$tmp/space.json" <<'JSON'
{"version": 1, "description": "LoRA or not x two weight formats",
 "stages": [
  {"name": "finetuning", "knobs": [
    {"name": "method", "type": "categorical", "options": ["none", "lora"], "default": "none"},
    {"name": "rank", "type": "categorical", "options": [4], "default": 4,
     "active_when": {"finetuning.method": ["lora"]}}]},
  {"name": "inference", "knobs": [
    {"name": "weights", "type": "categorical", "options": ["f32", "q8_0"], "default": "f32"}]}]}
JSON
cat >"$tmp/task.json" <<JSON
{"name": "stories-ft", "kind": "perplexity", "data": "$src/tasks/data/stories_eval.txt",
 "train": "$src/tasks/data/stories_calib.txt"}
JSON
"$bin" search --space "$tmp/space.json" --task "$tmp/task.json" --budget 4 --rounds 0 --ft-steps 8 \
    --weights acc=1,lat=0,mem=0.5,energy=0 --prompt 16 --gen 4 --max-reps 3 --db "$tmp/s.db" \
    -o "$tmp/pick.gguf" --json >"$tmp/out.json" 2>"$tmp/err" || fail "search: $(tail -3 "$tmp/err")"
[ -f "$tmp/pick.gguf" ] && [ ! -e "$tmp/pick.gguf.tmp" ] || fail "no pick written"
python3 - "$tmp/out.json" "$tmp" <<'PY' || fail "search result"
import json, sys
r = json.load(open(sys.argv[1]))
p = r["points"][r["pick_index"]]
assert p["provenance"] == "measured", p
json.dump(p["eval_config"], open(sys.argv[2] + "/pick_config.json", "w"))
open(sys.argv[2] + "/pick_acc", "w").write(repr(p["acc"]))
print("pick:", p["config"], "acc", p["acc"])
PY
"$bin" info -m "$tmp/pick.gguf" --json >"$tmp/info.json" || fail "info"
python3 - "$tmp/info.json" "$tmp/pick_acc" <<'PY' || fail "the file's provenance"
import json, sys
m = json.load(open(sys.argv[1]))["metadata"]
cfg, fig = json.loads(m["aellm.config"]), json.loads(m["aellm.figures"])
assert fig["provenance"] == "measured" and fig["by"].startswith("aellm search"), fig
assert abs(fig["objectives"]["acc"] - float(open(sys.argv[2]).read())) < 1e-12, fig
assert "inference" in cfg, cfg
PY
score() { # model file -> its perplexity on the task, as it is
    "$bin" eval -m "$1" --task "$tmp/task.json" --no-store --prompt 16 --gen 4 --max-reps 3 --json \
        2>"$tmp/e.err" | python3 -c "import json,sys; print(json.load(sys.stdin)['accuracy']['value'])" ||
        fail "eval $1: $(tail -1 "$tmp/e.err")"
}
want=$(python3 -c "import sys; print(1 / float(sys.argv[1]))" "$(cat "$tmp/pick_acc")") # 1/PPL
python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); assert abs(a - b) <= 1e-6 * b, (a, b)" \
    "$(score "$tmp/pick.gguf")" "$want" || fail "the written pick does not score what the search measured"
# apply from the point's eval_config: the same model
"$bin" apply --config "$tmp/pick_config.json" -o "$tmp/applied.gguf" --task "$tmp/task.json" \
    2>"$tmp/a.err" || fail "apply: $(tail -1 "$tmp/a.err")"
python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); assert abs(a - b) <= 1e-6 * b, (a, b)" \
    "$(score "$tmp/applied.gguf")" "$want" || fail "apply made another model"
# bad input: one line, non-zero, nothing written
echo '{"inference": {"wieghts": "q8_0"}}' >"$tmp/bad.json"
"$bin" apply --config "$tmp/bad.json" -o "$tmp/bad.gguf" 2>"$tmp/b.err" && fail "a bad key was accepted"
[ "$(wc -l <"$tmp/b.err")" = 1 ] && grep -q "wieghts" "$tmp/b.err" || fail "bad key message: $(cat "$tmp/b.err")"
"$bin" apply --config "$tmp/pick_config.json" 2>"$tmp/c.err" && fail "no output accepted"
grep -q "no output" "$tmp/c.err" || fail "missing -o message"
ls "$tmp"/bad.gguf* >/dev/null 2>&1 && fail "a file was left by a failed apply"
echo ok
