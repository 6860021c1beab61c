#!/usr/bin/env bash
# What weighing the cost of making a model changes (--weights tune=W): the
# same search over all three stages on a real model, first with the four
# efficiency objectives alone (tune 0, the default), then with tune weighed,
# on one store (the second search mostly reads the first's measurements).
# Prints each pick's configuration, its objectives and the seconds its model
# took to make, and how well the surrogates learnt that cost (held-out R2).
#
#   bench/tune_weight.sh BUILD_DIR [DATA_DIR]
#   env: MODEL=stories260K BUDGET=24 FT_STEPS=40 UPTRAIN_STEPS=40 TUNE=1 THREADS=2
set -euo pipefail
src=${AELLM_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
budget=${BUDGET:-24} ft=${FT_STEPS:-40} up=${UPTRAIN_STEPS:-40} threads=${THREADS:-2}
. "$src/bench/tinystories_task.sh"
model_args "${MODEL:-stories260K}"
common=("${m[@]}" --task "$work/task.json" --budget "$budget" --ft-steps "$ft"
    --uptrain-steps "$up" --max-acc-drop 0.05 --prompt 128 --gen 32 --max-reps 5
    --threads "$threads" --calib "$work/train.txt" --calib-skip 400000 --db "$work/s.db")
echo "machine: $(nproc) cores; $(date -u +%F); $("$aellm" --version)"
echo "${MODEL:-stories260K}, budget $budget, fine-tuning $ft and uptraining $up steps; accuracy floor 5 %"
for w in "acc=1,lat=1,mem=1,energy=1" "acc=1,lat=1,mem=1,energy=1,tune=${TUNE:-1}"; do
    "$aellm" search "${common[@]}" --weights "$w" --json >"$work/out.json" 2>"$work/err" ||
        { echo "search failed: $(tail -2 "$work/err")" >&2; exit 1; }
    python3 - "$work/out.json" "$w" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p = r["points"][r["pick_index"]]
cost = p.get("measurement", {}).get("production_s") or {}
stages = ", ".join(f"{k} {v:.1f} s" for k, v in cost.items() if k != "total") or "no stage"
measured = [q for q in r["points"] if q["provenance"] == "measured"]
front = [q for q in measured if q["on_front"]]
print(f"\nweights {sys.argv[2]}: {len(measured)} measured, {len(front)} on the front")
print(f"  pick: {json.dumps(p['config'], sort_keys=True)}")
print(f"  acc {p['acc']:.4f}  latency {p['latency_s']:.4f} s  memory {p['memory_bytes'] / 2**20:.2f} MiB"
      f"  energy {p['energy_j']:.3f} J  making the model {p['tune_s']:.1f} s ({stages})")
print(f"  front's making cost: {min(q['tune_s'] for q in front):.1f} to "
      f"{max(q['tune_s'] for q in front):.1f} s; held-out R2 of the tune surrogate "
      f"{r['heldout_r2']['tune']}")
PY
done
