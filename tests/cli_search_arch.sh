#!/usr/bin/env bash
# aellm search over a space where the architecture stage applies: every
# attention variant (mha, gqa, mqa, mla at rank 16), then every expert layout
# of a small space over all three stages (dense, 4 experts top-1 and top-2,
# each as is and LoRA-fine-tuned),
# is measured end to end on
# the bundled model (converted, uptrained on the task's "train" file,
# quantized where the point says so, scored, timed); each converted model is
# made once and reused by its inference variants; the records state the KV
# saving and the uptraining tokens; the scored text never overlaps the
# uptraining text.
set -u
bin=$1
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
export OMP_NUM_THREADS=2 AELLM_CACHE_DIR=$tmp/cache
cat >"$tmp/space.json" <<'JSON'
{"version": 1, "description": "attention x weights, small enough to search whole",
 "stages": [
  {"name": "architecture", "knobs": [
    {"name": "attention", "type": "categorical", "options": ["mha", "gqa", "mqa", "mla"], "default": "mha"},
    {"name": "mla_rank", "type": "categorical", "options": [16], "default": 16,
     "active_when": {"architecture.attention": ["mla"]}}]},
  {"name": "inference", "knobs": [
    {"name": "weights", "type": "categorical", "options": ["f32", "q8_0"], "default": "f32"}]}]}
JSON
cat >"$tmp/task.json" <<JSON
{"name": "stories-arch", "kind": "perplexity", "data": "$src/tasks/data/stories_eval.txt",
 "train": "$src/tasks/data/stories_calib.txt"}
JSON
"$bin" search --space "$tmp/space.json" --task "$tmp/task.json" --budget 8 --rounds 0 --uptrain-steps 4 \
    --prompt 16 --gen 4 --max-reps 3 --db "$tmp/s.db" --json >"$tmp/out.json" 2>"$tmp/err" ||
    fail "search: $(tail -3 "$tmp/err")"
sqlite3 "$tmp/s.db" "select coalesce(json_extract(record_json, '$.config.architecture.attention'), 'mha'),
    json_extract(record_json, '$.config.inference.weights'),
    coalesce(json_extract(record_json, '$.architecture.kv_values_per_token'), 320),
    coalesce(json_extract(record_json, '$.architecture.uptrain_tokens'), 0),
    coalesce(json_extract(record_json, '$.architecture.reused'), 0),
    json_extract(record_json, '$.accuracy.value') from evaluations" >"$tmp/rows" || fail "store query"
python3 - "$tmp/rows" <<'PY' || fail "records: $(cat "$tmp/rows")"
import sys
rows = [l.strip().split("|") for l in open(sys.argv[1]) if l.strip()]
kv_values = {"mha": 320, "gqa": 160, "mqa": 80, "mla": 5 * (16 + 4 * 8)}  # per token, 5 layers
by = {}
for att, weights, kv, tokens, reused, ppl in rows:
    assert int(kv) == kv_values[att], (att, kv)
    if att != "mha":
        assert int(tokens) > 0, (att, tokens)  # uptrained, and the record says by how much
    by.setdefault(att, []).append(int(reused))
assert set(by) == {"mha", "gqa", "mqa", "mla"}, by
for att in ("gqa", "mqa", "mla"):  # converted once, every other variant reused it
    assert by[att].count(0) == 1, (att, by[att])
print("points per attention:", {a: len(v) for a, v in by.items()})
PY
cat >"$tmp/moe.json" <<'JSON'
{"version": 1, "description": "attention x experts",
 "stages": [
  {"name": "architecture", "knobs": [
    {"name": "moe_experts", "type": "categorical", "options": [1, 4], "default": 1},
    {"name": "moe_top_k", "type": "categorical", "options": [1, 2], "default": 1,
     "active_when": {"architecture.moe_experts": [4]}}]},
  {"name": "finetuning", "knobs": [
    {"name": "method", "type": "categorical", "options": ["none", "lora"], "default": "none"},
    {"name": "rank", "type": "categorical", "options": [4], "default": 4,
     "active_when": {"finetuning.method": ["lora"]}}]},
  {"name": "inference", "knobs": [
    {"name": "weights", "type": "categorical", "options": ["f32"], "default": "f32"}]}]}
JSON
"$bin" search --space "$tmp/moe.json" --task "$tmp/task.json" --budget 6 --rounds 0 --uptrain-steps 4 --ft-steps 4 \
    --prompt 16 --gen 4 --max-reps 3 --db "$tmp/m.db" --json >"$tmp/out.json" 2>"$tmp/err" ||
    fail "moe search: $(tail -3 "$tmp/err")"
sqlite3 "$tmp/m.db" "select coalesce(json_extract(record_json, '$.config.architecture.attention'), 'mha'),
    coalesce(json_extract(record_json, '$.config.architecture.moe_experts'), 1),
    coalesce(json_extract(record_json, '$.config.architecture.moe_top_k'), 0),
    coalesce(json_extract(record_json, '$.config.finetuning.method'), 'none'),
    coalesce(json_extract(record_json, '$.experts.active_params'), 0),
    coalesce(json_extract(record_json, '$.architecture.moe.router'), '-'),
    coalesce(json_extract(record_json, '$.experts.routed_slots'), 0),
    coalesce(json_extract(record_json, '$.architecture.uptrain_tokens'), 0),
    json_extract(record_json, '$.model.shape.n_params'),
    json_extract(record_json, '$.accuracy.value') from evaluations" >"$tmp/rows" || fail "store query"
python3 - "$tmp/rows" <<'PY' || fail "moe records: $(cat "$tmp/rows")"
import sys, math
rows = [l.strip().split("|") for l in open(sys.argv[1]) if l.strip()]
seen = set()
for att, E, k, ft, active, router, slots, tokens, params, ppl in rows:
    E, k = int(E), int(k)
    assert math.isfinite(float(ppl)), ppl
    seen.add((att, E, k, ft))
    if E == 1:
        continue
    assert 0 < int(float(active)) < int(float(params)), (active, params)  # a token skips experts
    assert router == "fitted", router   # on the task's train file
    assert float(slots) > 0, slots      # the record counts the expert load
    assert int(tokens) > 0, tokens      # uptrained
want = {("mha", 1, 0, f) for f in ("none", "lora")} | \
    {("mha", 4, k, f) for k in (1, 2) for f in ("none", "lora")}
assert seen == want, (seen, want)
print("measured:", sorted(seen))
PY
echo "ok"
