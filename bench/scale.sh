#!/usr/bin/env bash
# Scale-out (issue 17): evaluations per hour and front quality of
#  1. the search on 1, 2 and 3 MPI ranks with aellm's own engine (rank 0
#     coordinates; 2 ranks = 1 worker measuring with batches of 1, 3 ranks = 2
#     workers, batches of 2), each rank's engine on one thread;
#  2. batch B = 1, 2, 4 serially, with the deterministic stand-in evaluator
#     (scripts/evaluators/standin: timing noise cannot blur the comparison),
#     over several seeds.
# Front quality is the hypervolume of each run's measured feasible front, all
# runs of a part normalised over the union of their measured points, as a
# share of the union's own front (1.0: the run found everything any run
# found).
#   bench/scale.sh [BUDGET]     (default 16; env SEEDS="1 2 3", RANKS="1 2 3",
#                               PROMPT=64 GEN=16, PARTS="1 2", BIN=build/aellm)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$src/build/aellm}
budget=${1:-16}
seeds=${SEEDS:-1 2 3}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
lat=(-t 1 --prompt "${PROMPT:-64}" --gen "${GEN:-16}" --max-reps 10)
parts=${PARTS:-1 2}
echo "bench/scale.sh: budget $budget, $(nproc --all) cores, $(date -u '+%Y-%m-%d %H:%M UTC'), $("$bin" --version | tail -1)"

hv() { # JSON outputs... -> one line per file: share of the union front's hypervolume
    python3 "$src/bench/front_share.py" "$@"
}

if [[ " $parts " == *" 1 "* ]]; then
echo "== 1. ranks, aellm's engine (stories260K, stories-ppl, P=${PROMPT:-64} G=${GEN:-16}, paired) =="
printf '%-8s %-8s %8s %8s %12s\n' ranks batch evals "wall s" "evals/hour"
ranks=${RANKS:-1 2 3}
for n in $ranks; do
    out=$tmp/ranks$n.json
    start=$(date +%s.%N)
    if [ "$n" = 1 ]; then
        "$bin" search --db "$tmp/r$n.db" "${lat[@]}" --budget "$budget" --batch 1 --json >"$out" 2>"$tmp/r$n.err"
    else
        mpirun --allow-run-as-root --oversubscribe --enable-recovery -n "$n" \
            "$bin" search --db "$tmp/r$n.db" "${lat[@]}" --budget "$budget" --json >"$out" 2>"$tmp/r$n.err"
    fi
    end=$(date +%s.%N)
    python3 - "$out" "$start" "$end" "$n" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); t = float(sys.argv[3]) - float(sys.argv[2]); n = int(sys.argv[4])
print("%-8d %-8d %8d %8.0f %12.0f" % (n, max(1, n - 1), r["evaluations"], t, r["evaluations"] * 3600 / t))
PY
done
files=()
for n in $ranks; do files+=("$tmp/ranks$n.json"); done
echo "front quality (share of the union front's hypervolume), ranks $ranks: $(hv "${files[@]}" | tr '\n' ' ')"
fi
[[ " $parts " == *" 2 "* ]] || exit 0

echo "== 2. batch B serially, stand-in evaluator, seeds $seeds =="
printf '%-6s %-6s %8s %10s\n' batch seed wall_s share
files=()
for seed in $seeds; do
    for b in 1 2 4; do
        out=$tmp/b$b-s$seed.json
        start=$(date +%s.%N)
        "$bin" search --db "$tmp/b$b-s$seed.db" -t 1 --evaluator "$src/scripts/evaluators/standin" \
            --budget "$budget" --batch "$b" --seed "$seed" --json >"$out" 2>/dev/null
        end=$(date +%s.%N)
        echo "$b $seed $(python3 -c "print('%.1f' % ($end - $start))")" >>"$tmp/walls"
        files+=("$out")
    done
done
hv "${files[@]}" >"$tmp/shares"
paste -d' ' "$tmp/walls" "$tmp/shares" | awk '{printf "%-6s %-6s %8s %10.3f\n", $1, $2, $3, $4; s[$1]+=$4; c[$1]++}
    END {for (b in s) printf "batch %s: mean share %.3f over %d seeds\n", b, s[b]/c[b], c[b]}' | sort -k1,1 -s
