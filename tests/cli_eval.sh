#!/usr/bin/env bash
# `aellm eval` end to end on stories260K: records for F32, Q8_0 and INT4
# GPTQ; a second eval of the same key is answered from the store without
# running (the very same record comes back); bad input gives one line, a
# non-zero exit and no record; an eval killed with SIGKILL at any moment
# leaves a store that passes integrity_check and holds whole records only.
# Skips (77) without data.
set -u
bin=$1 data=$(cd "$2" 2>/dev/null && pwd) || { echo "skip: data absent"; exit 77; }
dir=$data/stories260K
val=$data/tinystories/tinystories_val.txt
[ -f "$dir/stories260K.bin" ] && [ -f "$val" ] || { echo "skip: data absent"; exit 77; }
command -v sqlite3 >/dev/null || { echo "skip: sqlite3 CLI absent"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
db=$tmp/store.db
"$bin" convert -m "$dir/stories260K.bin" -z "$dir/tok512.bin" -o "$tmp/m.gguf" 2>/dev/null || fail "convert"
cat >"$tmp/ppl.json" <<JSON
{"name": "ppl-small", "kind": "perplexity", "data": "$val", "max_bytes": 16384, "n_ctx": 256}
JSON
lat=(--prompt 64 --gen 16 --max-reps 5 --threads 2)
count() { sqlite3 "$db" "select count(*) from evaluations"; }
field() { sed -n "s/.*\"$2\":[[:space:]]*\([^,}]*\).*/\1/p" "$1" | head -1; }

ev() { # name, config json, extra args...
    local name=$1 cfg=$2; shift 2
    echo "$cfg" >"$tmp/$name.cfg.json"
    "$bin" eval -m "$tmp/m.gguf" --task "$tmp/ppl.json" --config "$tmp/$name.cfg.json" --db "$db" \
        "${lat[@]}" --json "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" || fail "eval $name: $(tail -1 "$tmp/$name.err")"
}
ev f32 '{}'
ev q8 '{"inference": {"weights": "q8_0"}}'
ev gptq "{\"inference\": {\"weights\": \"int4\", \"method\": \"gptq\", \"calibration\": {\"file\": \"$val\", \"skip\": 393216, \"tokens\": 1024}}}"
[ "$(count)" = 3 ] || fail "expected 3 records, store has $(count)"
for n in f32 q8 gptq; do
    grep -q '"provenance":[[:space:]]*"measured"' "$tmp/$n.out" || fail "$n: no provenance"
    grep -q '"cached":[[:space:]]*false' "$tmp/$n.out" || fail "$n: first eval marked cached"
    echo "$n: ppl $(field "$tmp/$n.out" value) reps $(field "$tmp/$n.out" reps) energy $(field "$tmp/$n.out" joules_per_request) J"
done
# int4 must cost accuracy, f32 and q8_0 nearly none
awk -v a="$(field "$tmp/f32.out" value)" -v b="$(field "$tmp/q8.out" value)" -v c="$(field "$tmp/gptq.out" value)" \
    'BEGIN { exit !(b < a * 1.01 && c > a && c < 2 * a) }' || fail "perplexities out of order"

# EfficientLLM's six metrics in every record: q8_0 moves fewer bytes and
# compresses the weights (32 / 8.5 on the matrices; the embedding stays f32)
python3 - "$tmp/f32.out" "$tmp/q8.out" <<'PY' || fail "EfficientLLM metrics"
import json, sys
f, q = (json.load(open(p))["efficientllm"] for p in sys.argv[1:3])
for r in (f, q):
    for k in ("amu", "pcu", "latency_s", "throughput_tokens_per_s", "energy_j", "compression_rate"):
        assert isinstance(r[k], (int, float)) and r[k] > 0, (k, r)
    assert r["amu"] < 1.5 and r["pcu"] < 1.5, r  # utilisation cannot exceed the machine by much
assert f["compression_rate"] == 1 and 2 < q["compression_rate"] < 3.8, (f, q)  # embedding kept f32
assert q["bytes_moved"] < f["bytes_moved"] / 2, (f, q)
PY
# the same key again: from the store, the same record, nothing run
started=$(field "$tmp/q8.out" started_at)
ev q8again '{"inference": {"weights": "q8_0", "method": "rtn"}}'
grep -q '"cached":[[:space:]]*true' "$tmp/q8again.out" || fail "second eval was not cached"
[ "$(field "$tmp/q8again.out" started_at)" = "$started" ] || fail "cached record differs"
[ "$(count)" = 3 ] || fail "cached eval added a record"
ev q8force '{"inference": {"weights": "q8_0"}}' --force
[ "$(count)" = 3 ] || fail "--force must replace, not add"
grep -q '"cached":[[:space:]]*false' "$tmp/q8force.out" || fail "--force did not run"

# a different latency protocol is a different evaluation
ev q8short '{"inference": {"weights": "q8_0"}}' --prompt 32
[ "$(count)" = 4 ] || fail "a different prompt length reused the record"
grep -q '"n_prompt":[[:space:]]*32' "$tmp/q8short.out" || fail "--prompt 32 not measured"

# paired: the default is measured (under the paired protocol) first, then
# q8_0 interleaved with it; its objectives are the default's figures times
# the measured ratios
ev q8paired '{"inference": {"weights": "q8_0"}}' --paired
[ "$(count)" = 6 ] || fail "paired eval: expected the default and q8_0 added, store has $(count)"
q() { sqlite3 "$db" "$1"; }
pq="json_extract(protocol_json, '\$.latency.paired_with') IS NOT NULL"
dkey=$(q "select key from evaluations where $pq and json_extract(record_json, '\$.config.inference.weights') = 'f32'")
[ -n "$dkey" ] || fail "no paired record of the default"
[ "$(q "select json_extract(record_json, '\$.latency.paired.ratio_total.median') from evaluations where key = '$dkey'")" = 1 ] ||
    fail "the default is not its own reference"
check=$(q "select json_extract(e.record_json, '\$.latency.paired.reference_key') = d.key,
  abs(json_extract(e.record_json, '\$.latency.paired.total_s') - json_extract(e.record_json, '\$.latency.paired.ratio_total.median') * json_extract(d.record_json, '\$.latency.total_s.median')) < 1e-12 * e.latency_s,
  abs(e.latency_s - json_extract(e.record_json, '\$.latency.paired.total_s')) < 1e-15,
  abs(e.energy_j - json_extract(e.record_json, '\$.energy.paired.ratio.median') * json_extract(d.record_json, '\$.energy.joules_per_request')) < 1e-12 * e.energy_j,
  json_extract(e.record_json, '\$.memory.peak_bytes') < json_extract(d.record_json, '\$.memory.peak_bytes')
  from evaluations e, evaluations d where d.key = '$dkey' and e.key != d.key
  and json_extract(e.protocol_json, '\$.latency.paired_with') IS NOT NULL")
[ "$check" = "1|1|1|1|1" ] || fail "paired q8_0 record does not scale the default's figures ($check)"
echo "paired q8_0: ratio $(q "select json_extract(record_json, '\$.latency.paired.ratio_total.median') from evaluations where $pq and key != '$dkey'")"
q "delete from evaluations where json_extract(protocol_json, '\$.latency.n_prompt') = 32"
q "delete from evaluations where $pq"
[ "$(count)" = 3 ] || fail "cleanup left $(count) records"

# bad input: one line naming the problem, non-zero exit, nothing stored
bad() { # words, args...
    local words=$1; shift
    "$bin" eval -m "$tmp/m.gguf" --db "$db" "${lat[@]}" "$@" >"$tmp/bad.out" 2>"$tmp/bad.err" && fail "accepted: $*"
    [ "$(wc -l <"$tmp/bad.err")" = 1 ] || fail "not one line for $*: $(cat "$tmp/bad.err")"
    grep -q -- "$words" "$tmp/bad.err" || fail "error for $* does not name '$words': $(cat "$tmp/bad.err")"
    [ "$(count)" = 3 ] || fail "a failed eval wrote to the store ($*)"
}
echo '{"kind": "bogus", "data": "x.txt"}' >"$tmp/bogus.json"
bad "bogus" --task "$tmp/bogus.json"
bad "nosuchtask" --task nosuchtask
echo "{\"kind\": \"perplexity\", \"data\": \"$tmp/absent.txt\"}" >"$tmp/absent.json"
bad "absent.txt" --task "$tmp/absent.json"
printf '{"context": "a b", "continuation": " c"}\n{"context": "a b", "continuation" " c"}\n' >"$tmp/broken.jsonl"
echo "{\"kind\": \"continuation\", \"data\": \"$tmp/broken.jsonl\"}" >"$tmp/broken.json"
bad "broken.jsonl:2" --task "$tmp/broken.json"
echo '{"inference": {"kv_heads": 3}}' >"$tmp/heads.json"
bad "kv_heads" --task "$tmp/ppl.json" --config "$tmp/heads.json"
echo '{"inference": {"weights": "int4", "group": 48}}' >"$tmp/group.json"
bad "group" --task "$tmp/ppl.json" --config "$tmp/group.json"
bad "memory limit" --task "$tmp/ppl.json" --max-memory 64K
bad "power limit" --task "$tmp/ppl.json" --max-power 0.001
bad "no such model" --task "$tmp/ppl.json" -m "$tmp/none.gguf"

# SIGKILL at random moments of evals that would each store one record
for delay in 0.05 0.2 0.4 0.7 1.0; do
    "$bin" eval -m "$tmp/m.gguf" --task "$tmp/ppl.json" --db "$db" --force "${lat[@]}" \
        --config "$tmp/f32.cfg.json" >/dev/null 2>&1 &
    sleep "$delay"
    kill -9 $! 2>/dev/null
    wait $! 2>/dev/null
done
[ "$(sqlite3 "$db" 'pragma integrity_check')" = ok ] || fail "store corrupt after SIGKILL"
n=$(count)
[ "$n" -ge 3 ] || fail "records lost after SIGKILL"
# every record is whole: its JSON hashes to the stored digest and parses
sqlite3 "$db" "select key, record_sha256 from evaluations" | while IFS='|' read -r key sha; do
    got=$(sqlite3 "$db" "select record_json from evaluations where key='$key'" | tr -d '\n' | sha256sum | cut -d' ' -f1)
    [ "$got" = "$sha" ] || fail "record $key is not whole"
done || exit 1
echo "ok: $n whole records after 5 kills"
