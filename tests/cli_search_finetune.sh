#!/usr/bin/env bash
# aellm search over a space where the fine-tuning stage applies: on the
# bundled model, with a task whose "train" file is bundled text, every
# fine-tuning method of the space is measured end to end (trained, merged,
# quantized where the point says so, scored, timed), each fine-tuned model is
# trained once and reused by its inference variants, and the records state the
# training cost.
set -u
bin=$1
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
export OMP_NUM_THREADS=2 AELLM_CACHE_DIR=$tmp/cache
cat >"$tmp/space.json" <<'JSON'
{"version": 1, "description": "fine-tuning x weights, small enough to search whole",
 "stages": [
  {"name": "finetuning", "knobs": [
    {"name": "method", "type": "categorical", "options": ["none", "full", "lora", "rslora", "dora", "qlora"], "default": "none"},
    {"name": "rank", "type": "categorical", "options": [4], "default": 4,
     "active_when": {"finetuning.method": ["lora", "rslora", "dora", "qlora"]}}]},
  {"name": "inference", "knobs": [
    {"name": "weights", "type": "categorical", "options": ["f32", "q8_0", "nf4"], "default": "f32"}]}],
 "rules": [{"when": {"finetuning.method": ["qlora"]}, "require": {"inference.weights": ["nf4"]},
            "why": "QLoRA trains adapters over a 4-bit base"}]}
JSON
cat >"$tmp/task.json" <<JSON
{"name": "stories-ft", "kind": "perplexity", "data": "$src/tasks/data/stories_eval.txt",
 "train": "$src/tasks/data/stories_calib.txt"}
JSON
"$bin" search --space "$tmp/space.json" --task "$tmp/task.json" --budget 16 --rounds 1 --ft-steps 6 \
    --prompt 16 --gen 4 --max-reps 4 --db "$tmp/s.db" --baselines --json >"$tmp/out.json" 2>"$tmp/err" ||
    fail "search: $(tail -3 "$tmp/err")"
python3 - "$tmp/out.json" <<'PY' || fail "search result"
import json, sys
r = json.load(open(sys.argv[1]))
methods = {p["config"].get("finetuning", {}).get("method", "none") for p in r["points"]}
assert methods >= {"none", "full", "lora", "rslora", "dora", "qlora"}, methods
# every measured fine-tuned point says what making its model cost
for p in r["points"]:
    if p["provenance"] != "measured":
        continue
    tuned = p["config"].get("finetuning", {}).get("method", "none") != "none"
    cost = p["measurement"].get("production_s")
    if tuned:
        assert cost and cost["finetuning"] > 0 and cost["total"] >= cost["finetuning"], p
    else:
        assert not cost or "finetuning" not in cost, p
    # the fifth objective is that total
    assert abs(p["tune_s"] - (cost["total"] if cost else 0)) < 1e-9, p
assert r["context"]["weights"]["tune"] == 0, r["context"]
PY
# the store's fine-tuned points plotted by what making them cost
"$bin" report --store "$tmp/s.db" -o "$tmp/r.html" --svg "$tmp/tune.svg" --x tune --y acc \
    >/dev/null 2>"$tmp/rerr" || fail "report by making cost: $(cat "$tmp/rerr")"
grep -q '</svg>' "$tmp/tune.svg" || fail "no plot by making cost"
sqlite3 "$tmp/s.db" "select json_extract(record_json, '$.config.finetuning.method'),
    json_extract(record_json, '$.finetuning.wall_s'), json_extract(record_json, '$.finetuning.reused'),
    json_extract(record_json, '$.finetuning.trainable_params'), json_extract(record_json, '$.finetuning.energy_source')
    from evaluations where json_extract(record_json, '$.config.finetuning.method') is not null" >"$tmp/rows" ||
    fail "store query"
python3 - "$tmp/rows" <<'PY' || fail "records: $(cat "$tmp/rows")"
import sys
rows = [l.strip().split("|") for l in open(sys.argv[1]) if l.strip()]
by = {}
for method, wall, reused, trainable, src in rows:
    assert float(wall) > 0 and int(trainable) > 0 and src, (method, wall, trainable, src)
    by.setdefault(method, []).append(int(reused))
assert set(by) == {"full", "lora", "rslora", "dora", "qlora"}, by
for method, reused in by.items():  # trained once, every other variant reused it
    assert reused.count(0) == 1, (method, reused)
print("fine-tuned models per method:", {m: len(v) for m, v in by.items()})
PY

# the bundled space: fine-tuning and attention conversion apply there, so a
# task without training data holds both at their defaults and says so;
# --train must open
"$bin" search --budget 3 --rounds 0 --prompt 8 --gen 2 --max-reps 3 --db "$tmp/d.db" \
    >"$tmp/out2" 2>"$tmp/err2" || fail "default-space search: $(tail -3 "$tmp/err2")"
grep -q "finetuning held at its default: task stories-ppl names no training data" "$tmp/err2" ||
    fail "no hold message: $(head -5 "$tmp/err2")"
grep -q "architecture held at its default: task stories-ppl" "$tmp/err2" ||
    fail "no hold message for the architecture stage: $(head -5 "$tmp/err2")"
"$bin" search --train "$tmp/nope.txt" --budget 3 --db "$tmp/d.db" >/dev/null 2>"$tmp/err3" &&
    fail "a missing --train file was accepted"
grep -q "nope.txt: cannot open the training data" "$tmp/err3" || fail "error: $(cat "$tmp/err3")"
"$bin" search --max-reps 2 --budget 3 --db "$tmp/d.db" >/dev/null 2>"$tmp/err4" &&
    fail "--max-reps below the fewest timed runs was accepted"
grep -q -- "--max-reps must be >= 3" "$tmp/err4" || fail "error: $(cat "$tmp/err4")"
echo "ok"
