#!/usr/bin/env bash
# A training run (LoRA with dropout) killed with SIGKILL at random moments and resumed from its
# checkpoint ends at the same losses as an uninterrupted run with the same
# seed (the checkpoint holds the weights, the optimiser's moments, the step
# and the data position; it is replaced atomically, so a kill while writing
# leaves the previous one).
set -u
bin=$1
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
export OMP_NUM_THREADS=2
args=(-d "$src/tasks/data/stories_eval.txt" --method lora --rank 8 --dropout 0.1 --steps 40 --seq-len 256 --batch 4
    --lr 2e-3 --heldout 0.05 --eval-max 4 -q --json)
mkdir -p "$tmp/a" "$tmp/b" # one file name: GGUF's general.name comes from it
"$bin" train "${args[@]}" -o "$tmp/a/model.gguf" >"$tmp/a.json" || fail "uninterrupted run"
# Eight runs killed at random moments (each resumes from the one before),
# then one left to finish: a loaded machine slows the runs, never the test's end.
kills=0
for attempt in $(seq 1 9); do
    "$bin" train "${args[@]}" -o "$tmp/b/model.gguf" --checkpoint-every 3 --resume >"$tmp/b.json" 2>"$tmp/err" &
    pid=$!
    [ "$attempt" -lt 9 ] && sleep "0.$((RANDOM % 9 + 1))"
    if [ "$attempt" -lt 9 ] && kill -9 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null
        kills=$((kills + 1))
        [ -e "$tmp/b/model.gguf" ] && fail "a killed run left an output"
        continue
    fi
    wait "$pid" || fail "resumed run: $(cat "$tmp/err")"
    break
done
[ -s "$tmp/b.json" ] || fail "the resumed run never finished"
python3 - "$tmp/a.json" "$tmp/b.json" "$kills" <<'PY' || fail "losses differ: $(cat "$tmp/a.json" "$tmp/b.json")"
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
print("killed %s times; resumed from step %d; train loss %.9f vs %.9f, held-out %.9f vs %.9f" % (
    sys.argv[3], b["resumed_from_step"], a["train_loss"], b["train_loss"], a["heldout_loss"], b["heldout_loss"]))
assert a["train_loss"] == b["train_loss"] and a["heldout_loss"] == b["heldout_loss"]
assert a["heldout_loss_before"] == b["heldout_loss_before"]
PY
[ "$kills" -ge 1 ] || fail "never killed mid-run (the run is too short)"
cmp -s "$tmp/a/model.gguf" "$tmp/b/model.gguf" || fail "the models differ"
# a checkpoint of another run is refused
"$bin" train "${args[@]}" --rank 4 -o "$tmp/c.gguf" --checkpoint "$tmp/b/model.gguf.ckpt" --resume \
    >/dev/null 2>"$tmp/err" && fail "resumed from another run's checkpoint"
grep -q "another run" "$tmp/err" || fail "unclear: $(cat "$tmp/err")"
echo "ok"
