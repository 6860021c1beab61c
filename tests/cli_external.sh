#!/usr/bin/env bash
# The external evaluator (--evaluator) in eval and search, with the stand-in
# scripts/evaluators/standin: a good record is stored under a key holding
# the command and answered from the store the second time; a slow evaluator
# is killed at --evaluator-timeout; a crashing one and a lying one (missing
# field, NaN, negative latency, a log line before the JSON) each give one
# line naming the configuration, a failure in the store and no evaluation;
# a failure is not run again unless --retry-failed; a search goes on past
# failures and hangs, and a rerun repeats nothing.
set -u
bin=$1
src=$(cd "$(dirname "$0")/.." && pwd)
standin=$src/scripts/evaluators/standin
command -v sqlite3 >/dev/null || { echo "skip: sqlite3 CLI absent"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 absent"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
db=$tmp/store.db
export STANDIN_LOG=$tmp/runs.log OMP_NUM_THREADS=1
: >"$STANDIN_LOG"
q() { sqlite3 "$db" "$1"; }
runs() { wc -l <"$STANDIN_LOG"; }
ev() { "$bin" eval --task stories-ppl --db "$db" -t 1 "$@"; }

# ---- a good evaluator ----
ev --evaluator "$standin" --json >"$tmp/good.json" 2>"$tmp/good.err" || fail "good: $(tail -1 "$tmp/good.err")"
[ "$(q 'select count(*) from evaluations')" = 1 ] || fail "good: not stored"
[ "$(q 'select engine_version from evaluations')" = "external:$standin" ] ||
    fail "good: the key's engine is not the evaluator: $(q 'select engine_version from evaluations')"
grep -q '"obtained":[[:space:]]*"predicted"' "$tmp/good.json" || fail "good: provenance not recorded"
grep -q '"identity":[[:space:]]*"standin 1"' "$tmp/good.json" || fail "good: identity not recorded"
ev --evaluator "$standin" >"$tmp/again.out" 2>&1 || fail "good again"
grep -q '^cached' "$tmp/again.out" || fail "good: not answered from the store: $(cat "$tmp/again.out")"
[ "$(runs)" = 1 ] || fail "good: the evaluator ran $(runs) times for one configuration"

# ---- bad evaluators: one line naming the configuration, a failure, no evaluation ----
bad() { # name, expected message part, evaluator command, extra args
    local name=$1 says=$2 cmd=$3; shift 3
    local before; before=$(q 'select count(*) from failures')
    if ev --evaluator "$cmd" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"; then fail "$name: exit 0"; fi
    [ "$(wc -l <"$tmp/$name.err")" -ge 1 ] || fail "$name: no message"
    grep -q "failed on configuration {\"inference\"" "$tmp/$name.err" ||
        fail "$name: the message does not name the configuration: $(cat "$tmp/$name.err")"
    grep -q -- "$says" "$tmp/$name.err" || fail "$name: expected '$says' in: $(cat "$tmp/$name.err")"
    [ "$(q 'select count(*) from evaluations')" = 1 ] || fail "$name: an evaluation was stored"
    [ "$(q 'select count(*) from failures')" = $((before + 1)) ] || fail "$name: no failure stored"
}
start=$(date +%s)
bad slow "timed out after 1 s" "STANDIN_SLEEP=30 $standin" --evaluator-timeout 1
[ $(($(date +%s) - start)) -lt 20 ] || fail "slow: not killed at the timeout"
bad crash "exited with status 3" "STANDIN_FAIL_ON=f32 $standin"
bad missing "the record lacks latency.total_s" "STANDIN_LIE=missing $standin"
bad nan "not JSON" "STANDIN_LIE=nan $standin"
bad negative "latency.total_s is -" "STANDIN_LIE=negative $standin"
bad text "not JSON" "STANDIN_LIE=text $standin"
bad absent "status 127" "$tmp/no-such-evaluator"

# ---- a failure is not run again unless asked ----
n=$(runs)
if ev --evaluator "STANDIN_FAIL_ON=f32 $standin" 2>"$tmp/again.err"; then fail "failed again: exit 0"; fi
grep -q "failed before" "$tmp/again.err" || fail "failed again: $(cat "$tmp/again.err")"
[ "$(runs)" = "$n" ] || fail "a failed configuration was run again"
ev --evaluator "STANDIN_FAIL_ON=f32 $standin" --retry-failed >/dev/null 2>&1 && fail "retry: exit 0"
[ "$(runs)" = $((n + 1)) ] || fail "--retry-failed did not run it again"

# ---- a search goes on past failures and hangs; a rerun repeats nothing ----
sdb=$tmp/search.db
: >"$STANDIN_LOG"
search() {
    STANDIN_FAIL_ON='"q4_0"' STANDIN_HANG_ON='"kv_cache": "q8_0", "kv_heads": 2' "$bin" search --db "$sdb" -t 1 \
        --evaluator "$standin" --evaluator-timeout 6 --budget 12 --rounds 2 --json "$@"
}
search >"$tmp/s1.json" 2>"$tmp/s1.err" || fail "search: $(tail -3 "$tmp/s1.err")"
grep -q "^failed: .*exited with status 3" "$tmp/s1.err" || fail "search: no crash reported (the space changed?)"
grep -q '^failed: .*timed out after 6 s' "$tmp/s1.err" || fail "search: no hang reported (the space changed?)"
evals=$(sqlite3 "$sdb" 'select count(*) from evaluations')
fails=$(sqlite3 "$sdb" 'select count(*) from failures')
[ "$evals" = 12 ] || fail "search: $evals evaluations stored, budget 12"
[ "$fails" -ge 1 ] || fail "search: no failure stored"
[ "$(sqlite3 "$sdb" 'select count(*) from evaluations where latency_s > 0 and accuracy > 0 and
      peak_mem_bytes > 0 and energy_j >= 0 and record_json is not null')" = 12 ] ||
    fail "search: a record is incomplete"
[ "$(runs)" = $((evals + fails)) ] || fail "search: $(runs) runs for $evals records and $fails failures"
search >"$tmp/s2.json" 2>"$tmp/s2.err" || fail "search again: $(tail -3 "$tmp/s2.err")"
[ "$(runs)" = $((evals + fails)) ] || fail "search again: ran the evaluator $(( $(runs) - evals - fails )) more times"
# ---- scripts/evaluators/llamacpp with stand-ins for llama.cpp's tools ----
# (the real llama.cpp run is bench/llamacpp_evaluator.sh): the model is made
# by aellm apply for real; the stand-ins check their arguments and print what
# llama-perplexity and llama-bench print.
fake=$tmp/fakellama
mkdir -p "$fake"
cat >"$fake/llama-perplexity" <<'SH'
#!/bin/sh
case " $* " in *" -m "*model.gguf*" -f "*" -c "*" -ctk f32 -ctv f32 "*) ;; *) echo "bad args: $*" >&2; exit 1 ;; esac
echo "Final estimate: PPL = 7.2500 +/- 0.1250" >&2
SH
cat >"$fake/llama-bench" <<'SH'
#!/bin/sh
case " $* " in *" -p 64 -n 16 "*) ;; *) echo "bad args: $*" >&2; exit 1 ;; esac
echo '[{"build_commit": "fake01", "n_prompt": 64, "n_gen": 0, "avg_ns": 20000000},'
echo ' {"build_commit": "fake01", "n_prompt": 0, "n_gen": 16, "avg_ns": 80000000}]'
SH
chmod +x "$fake"/llama-*
LLAMA_CPP=$fake AELLM=$bin ev --evaluator "$src/scripts/evaluators/llamacpp" --prompt 64 --gen 16 \
    --json --db "$tmp/llama.db" >"$tmp/llama.json" 2>"$tmp/llama.err" || fail "llamacpp: $(tail -3 "$tmp/llama.err")"
python3 - "$tmp/llama.json" <<'PY' || fail "llamacpp: wrong record: $(cat "$tmp/llama.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["accuracy"]["value"] == 7.25 and r["accuracy"]["obtained"] == "measured"
assert abs(r["latency"]["total_s"]["median"] - 0.1) < 1e-12
assert r["memory"]["peak_bytes"] > 0 and r["evaluator"]["identity"] == "llama.cpp fake01"
PY
# aellm's own weight types are refused by name, and stored as failed
echo '{"inference": {"weights": "nf4"}}' >"$tmp/int4.json"
if LLAMA_CPP=$fake AELLM=$bin ev --evaluator "$src/scripts/evaluators/llamacpp" --config \
    "$tmp/int4.json" --db "$tmp/llama.db" >/dev/null 2>"$tmp/llama4.err"; then
    fail "llamacpp: int4 measured"
fi
grep -q "llama.cpp cannot run weights nf4" "$tmp/llama4.err" || fail "llamacpp int4: $(tail -2 "$tmp/llama4.err")"

echo "ok: external evaluator: good, slow, crashing, lying (4 ways), absent; search with $fails failures"
