#!/usr/bin/env bash
# `aellm predict`: a named shape on a bundled profile and a model file on
# this machine (the bundled model) give predictions marked as such (int4 weights read fewer
# bytes and decode faster than f16), and bad input is one line and a
# non-zero exit, for predict and for search --hardware. Runs on the bundled
# model and profiles.
set -u
bin=$1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$bin" predict --shape Llama-2-7B --hardware a100-80gb --json >"$tmp/f16.json" 2>"$tmp/err" ||
    fail "predict: $(cat "$tmp/err")"
echo '{"inference": {"weights": "int4"}}' >"$tmp/int4.json"
"$bin" predict --shape Llama-2-7B --hardware a100-80gb --config "$tmp/int4.json" --json \
    >"$tmp/int4.json.out" 2>"$tmp/err" || fail "predict int4: $(cat "$tmp/err")"
"$bin" predict -p 32 -n 8 --json >"$tmp/here.json" 2>"$tmp/err" || fail "predict here: $(cat "$tmp/err")"
python3 - "$tmp/f16.json" "$tmp/int4.json.out" "$tmp/here.json" <<'PY' || fail "predictions"
import json, sys
f, q, h = (json.load(open(p)) for p in sys.argv[1:4])
for r in (f, q, h):
    assert r["provenance"] == "predicted" and r["source"].startswith("predicted"), r
    assert r["total_s"] > 0 and r["memory_bytes"] > 0 and r["energy_j"] > 0, r
assert f["hardware"] == "a100-80gb" and "gpt-fast" in f["source"], f
assert q["work"]["weight_bytes"] < f["work"]["weight_bytes"] / 3, (q, f)
assert q["decode_tokens_per_s"] > f["decode_tokens_per_s"], (q, f)
PY
bad() { # words, args...
    local words=$1; shift
    "$bin" "$@" >/dev/null 2>"$tmp/bad.err" && fail "accepted $*"
    [ "$(wc -l <"$tmp/bad.err")" = 1 ] || fail "not one line for $*: $(cat "$tmp/bad.err")"
    grep -q -- "$words" "$tmp/bad.err" || fail "'$words' not named for $*: $(cat "$tmp/bad.err")"
}
# calibrated here: the profile written whole, read back, and the prediction
# says it came from the measured kernel rates
"$bin" predict --calibrate "$tmp/calib.json" --types q4_0,f16 --rounds 1 --model-rounds 1 --json \
    >"$tmp/calib.out" || fail "calibrate"
python3 -c "
import json, sys
j = json.load(open('$tmp/calib.json'))
assert j['kernel_rates']['q4_0']['decode_bytes_per_s'] > 1e8, j['kernel_rates']
assert j['attention_rates']['f16']['prefill_flop_per_s'] > 1e8, j['attention_rates']
assert j['kernel_overhead_s'] > 0, j
# the whole held-in model per weight type over its kernels: near 1 on a quiet
# machine; the bounds catch a unit slip, not a loaded machine's noise
assert sorted(j['kernel_rates']) == ['f16', 'f32', 'q4_0'], j['kernel_rates']
for t, r in j['kernel_rates'].items():
    assert 0.05 < r['decode_scale'] < 50 and 0.05 < r['prefill_scale'] < 50, (t, r)
" || fail "calibration profile"
echo '{"inference": {"weights": "q4_0"}}' >"$tmp/q4.json"
"$bin" predict --hardware "$tmp/calib.json" --shape 110M --base-type q4_0 --config "$tmp/q4.json" \
    --json | grep -q 'kernel rates measured by aellm predict --calibrate' || fail "calibrated source"
ls "$tmp"/calib.json.* 2>/dev/null && fail "temporary file left"
bad "calib" predict --calibrate "$tmp/nodir/calib.json"
# a recalibration of a few kinds: those and f32, nothing else
"$bin" predict --calibrate "$tmp/few.json" --types q8_0,f16 --rounds 1 --model-rounds 0 --json \
    >/dev/null ||
    fail "calibrate --types"
python3 -c "
import json
j = json.load(open('$tmp/few.json'))
assert sorted(j['kernel_rates']) == ['f16', 'f32', 'q8_0'], j['kernel_rates']
assert sorted(j['attention_rates']) == ['f16', 'f32', 'q8_0'], j['attention_rates']
assert 'decode_scale' not in j['kernel_rates']['f16'], j  # --model-rounds 0: kernels only
" || fail "calibrate --types kept other kinds"
bad "'nope' is not a type" predict --calibrate "$tmp/x.json" --types f16,nope
bad "rounds" predict --calibrate "$tmp/x.json" --rounds -1
bad "model-rounds" predict --calibrate "$tmp/x.json" --model-rounds -2
bad "unknown model shape 'nope'" predict --shape nope
bad "not both" predict --shape 110M -m "$tmp/x.gguf"
bad "no such model file" predict -m "$tmp/x.gguf"
bad "nope.json" predict --shape 110M --hardware "$tmp/nope.json"
bad "prompt" predict --shape 110M -p 0
echo '{"inference": {"kv_share": 3}}' >"$tmp/share3.json"
bad "KV heads" predict --shape Llama-2-70B --hardware h100-sxm --config "$tmp/share3.json"
# a search for a deployment keeps to the device's memory unless told otherwise
"$bin" search --hardware l4 --shape Llama-2-7B --budget 3 --rounds 0 --ft-steps 2 --uptrain-steps 2 \
    --db "$tmp/l4.db" --json \
    >"$tmp/l4.json" 2>"$tmp/l4.err" || fail "search --hardware: $(tail -2 "$tmp/l4.err")"
python3 - "$tmp/l4.json" "$(dirname "$0")/../hardware/l4.json" <<'PY' || fail "search --hardware memory limit"
import json, sys
r = json.load(open(sys.argv[1]))
limit = r["context"]["max_memory_bytes"]
assert limit == json.load(open(sys.argv[2]))["mem_bytes"], limit
over = [p for p in r["points"] if p["memory_bytes"] > limit]
assert over, "no point over 24 GB: the f32 default of a 7B model should be (27 GB)"
assert all(p["violation"] > 0 for p in over), over
PY
bad "needs --hardware" search --shape Llama-2-7B --budget 3 --db "$tmp/s.db"
bad "nope.json" search --hardware "$tmp/nope.json" --budget 3 --db "$tmp/s.db"
bad "unknown model shape" search --hardware l4 --shape 8B --budget 3 --db "$tmp/s.db"
echo ok
