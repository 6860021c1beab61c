#!/usr/bin/env bash
# `aellm search` end to end on stories260K with a small budget: the budget
# holds, the front is measured (predicted points marked), a second run with
# the same store repeats no evaluation, and a search killed with SIGKILL
# resumes from the store. Skips (77) without data.
set -u
bin=$1 data=$(cd "$2" 2>/dev/null && pwd) || { echo "skip: data absent"; exit 77; }
val=$data/tinystories/tinystories_val.txt
[ -f "$data/stories260K/stories260K.bin" ] && [ -f "$val" ] || { echo "skip: data absent"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cat >"$tmp/task.json" <<JSON
{"name": "ppl-tiny", "kind": "perplexity", "data": "$val", "max_bytes": 8192, "n_ctx": 256}
JSON
args=(search --task "$tmp/task.json" --db "$tmp/s.db" --budget 8 --rounds 1
    --calib "$val" --calib-skip 393216 --prompt 32 --gen 8 --max-reps 4 --threads 2)
run() { "$bin" "${args[@]}" "$@"; }
field() { sed -n "s/.*\"$2\":[[:space:]]*\([0-9.]*\).*/\1/p" "$1" | head -1; }
run --json --csv "$tmp/points.csv" >"$tmp/a.json" 2>"$tmp/a.err" || fail "search: $(tail -1 "$tmp/a.err")"
n=$(field "$tmp/a.json" evaluations)
[ -n "$n" ] && [ "$n" -le 8 ] && [ "$n" -ge 3 ] || fail "evaluations $n outside [3, 8]"
grep -q '"provenance":[[:space:]]*"measured"' "$tmp/a.json" || fail "no measured point"
grep -q '"efficiency_definition"' "$tmp/a.json" || fail "no efficiency definition"
grep -q '"inference.weights":[[:space:]]*{' "$tmp/a.json" || fail "no per-knob sensitivity"
[ "$(sqlite3 "$tmp/s.db" 'select count(*) from evaluations')" = "$n" ] || fail "store holds not $n records"
head -1 "$tmp/points.csv" | grep -q '^index,provenance' || fail "csv header"
# the same search again: everything from the store, nothing new
run --json >"$tmp/b.json" 2>/dev/null || fail "second search"
[ "$(field "$tmp/b.json" from_store)" = "$n" ] || fail "second run measured again"
[ "$(sqlite3 "$tmp/s.db" 'select count(*) from evaluations')" = "$n" ] || fail "second run added records"
# killed mid-way with another seed, then resumed: no evaluation twice
# (aellm itself in the background, not a shell function: a killed subshell
# would leave aellm running and writing beside the resumed search)
"$bin" "${args[@]}" --seed 7 --json >/dev/null 2>&1 &
sleep 3; kill -9 $! 2>/dev/null; wait $! 2>/dev/null
before=$(sqlite3 "$tmp/s.db" 'select count(*) from evaluations')
run --seed 7 --json >"$tmp/c.json" 2>/dev/null || fail "resumed search"
after=$(sqlite3 "$tmp/s.db" 'select count(*) from evaluations')
used=$(field "$tmp/c.json" evaluations); cached=$(field "$tmp/c.json" from_store)
[ $((after - before)) = $((used - cached)) ] || fail "resume: $((after - before)) new records for $((used - cached)) fresh evaluations"
[ "$(sqlite3 "$tmp/s.db" 'pragma integrity_check')" = ok ] || fail "store corrupt"
# baselines side by side: random search, one technique at a time, the
# EfficientLLM rules (MQA on this 8 GB limit; LoRA reported as not
# applicable), the guidelines, no exhaustive above the cap
run --baselines --exhaustive-max 1 --max-memory 8G >"$tmp/d.txt" 2>"$tmp/d.err" || fail "baselines: $(tail -1 "$tmp/d.err")"
for row in '^random ' '^default ' '^single-tech ' '^efficientllm ' '^guidelines ' '^exhaustive .*(skipped)' \
    '^inference-only ' '^finetuning-only .*(skipped)' '^architecture-only .*(skipped)' \
    'MQA: KV heads pooled to one' 'lora: skipped' 'kv_cache: ' 'quantization: ' 'no single preference weighs most -> all four scenarios'; do
    grep -q "$row" "$tmp/d.txt" || fail "baselines output lacks '$row'"
done
# and as JSON: ten rows, every evaluation within the store
run --baselines --exhaustive-max 1 --max-memory 8G --json >"$tmp/e.json" 2>/dev/null || fail "baselines --json"
[ "$(grep -o '"hypervolume_ratio":' "$tmp/e.json" | wc -l)" = 10 ] || fail "baselines --json lacks rows"
grep -q '"method":[[:space:]]*"guidelines"' "$tmp/e.json" || fail "no guidelines row in JSON"
[ "$(sqlite3 "$tmp/s.db" 'pragma integrity_check')" = ok ] || fail "store corrupt after baselines"
# surrogates saved by one search warm-start another's; a missing file is one clear line
run --save-surrogates "$tmp/sg" >/dev/null 2>"$tmp/f.err" || fail "save surrogates: $(tail -1 "$tmp/f.err")"
for o in acc latency memory energy; do [ -s "$tmp/sg.$o.surr" ] || fail "no $o surrogate file"; done
ls "$tmp"/sg.*.tmp >/dev/null 2>&1 && fail "temporary surrogate files left"
run --seed 3 --transfer-from "$tmp/sg" --json >"$tmp/g.json" 2>"$tmp/g.err" || fail "transfer: $(tail -1 "$tmp/g.err")"
grep -q '"heldout_r2"' "$tmp/g.json" || fail "transfer run printed no result"
run --transfer-from "$tmp/nothing" >/dev/null 2>"$tmp/h.err" && fail "missing surrogates accepted"
grep -q "nothing.acc.surr" "$tmp/h.err" || fail "missing surrogates: $(cat "$tmp/h.err")"
echo "ok: $n evaluations; resumed run used $used ($cached from the store)"
