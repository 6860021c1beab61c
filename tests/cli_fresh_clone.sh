#!/usr/bin/env bash
# A fresh clone's main job: the built `aellm`, copied with the bundled files of
# the tree (models/, tasks/, space/, hardware/, configs/) into a folder with no
# ../shared anywhere above it and no AELLM_* variable set, runs the README's
# `aellm search` to the end with a small budget: a front and a pick are
# printed, the exit status is 0, and nothing comes from outside the copy.
set -u
bin=$1
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
for up in "$tmp" "$(dirname "$tmp")" /; do
    [ -e "$up/../shared/data" ] && { echo "SKIP: $up/../shared/data exists above the copy"; exit 77; }
done
tree=$tmp/aellm
mkdir -p "$tree/build"
cp -r "$src/models" "$src/tasks" "$src/space" "$src/hardware" "$src/configs" "$tree/" || fail "copy"
cp "$bin" "$tree/build/aellm" || fail "copy binary"
cd "$tree" || fail "cd"
run() { env -u AELLM_DATA -u AELLM_MODEL -u AELLM_TOKENIZER -u AELLM_HOME -u AELLM_SPACE \
    -u AELLM_TASKS_DIR -u AELLM_HARDWARE_DIR ./build/aellm "$@"; }
run search --budget 5 --rounds 1 --prompt 32 --gen 8 --max-reps 6 >"$tmp/out" 2>"$tmp/err"
status=$?
[ $status = 0 ] || fail "exit status $status: $(tail -3 "$tmp/err")"
grep -q ' front ' "$tmp/out" || fail "no front printed: $(cat "$tmp/out")"
grep -q '^pick #' "$tmp/out" || fail "no pick printed: $(cat "$tmp/out")"
grep -q 'efficiency score' "$tmp/out" || fail "no efficiency score"
if grep -q 'shared' "$tmp/out" "$tmp/err"; then fail "read ../shared: $(grep shared "$tmp/out" "$tmp/err")"; fi
grep -q "calibration text: $tree/tasks/data/stories_calib.txt" "$tmp/err" ||
    fail "calibration text not the copy's: $(head -3 "$tmp/err")"
# the model and task are the copy's own, not the source tree's
run eval --task stories-ppl --db "$tmp/e.db" --prompt 16 --gen 4 --max-reps 3 --json >"$tmp/eval.json" ||
    fail "eval of the bundled task"
grep -q "\"path\":[[:space:]]*\"$tree/models/stories260K/stories260K.bin\"" "$tmp/eval.json" ||
    fail "model not the copy's: $(grep '"path"' "$tmp/eval.json")"
# the README's example: a calibrated configuration, calibration text bundled too
run eval --task stories-ppl --config configs/int4-gptq.json --db "$tmp/e.db" --prompt 16 --gen 4 \
    --max-reps 3 >"$tmp/gptq.txt" 2>&1 || fail "eval of configs/int4-gptq.json: $(tail -2 "$tmp/gptq.txt")"
grep -q "method gptq" "$tmp/gptq.txt" || fail "not a GPTQ configuration: $(cat "$tmp/gptq.txt")"
# a task that needs the shared data says how to get past it
run eval --task tinystories-ppl --db "$tmp/e.db" >/dev/null 2>"$tmp/err2" && fail "tinystories-ppl ran without data"
grep -q "AELLM_DATA" "$tmp/err2" && grep -q "stories-ppl" "$tmp/err2" || fail "unhelpful error: $(cat "$tmp/err2")"
echo "ok"
