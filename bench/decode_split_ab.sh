#!/usr/bin/env bash
# Decode with the static split of each product's rows (AELLM_DECODE_SPLIT=static) against the
# default, where a thread done with its share takes half of what a slower one has left: tg
# tokens/s, the roofline fraction and the share of the threads' time spent waiting at the
# barriers that end each group of products, the two alternating run by run (the VM's speed
# drifts over minutes). Prints a markdown table and the medians.
#
#   bench/decode_split_ab.sh [BUILD_DIR]        (default: build)
#   env: SHAPES="1.1B" TYPES="f32 q4_0" PAIRS=4 TG=128 THREADS=2
#        MODELS_DIR=/tmp/aellm-bench-models   (GGUF files are made once, kept)
set -euo pipefail
build=${1:-build}
aellm=$build/aellm
shapes=${SHAPES:-1.1B}
types=${TYPES:-f32 q4_0}
pairs=${PAIRS:-4}
tg=${TG:-128}
threads=${THREADS:-2}
dir=${MODELS_DIR:-/tmp/aellm-bench-models}
case "$pairs$tg$threads" in *[!0-9]*) echo "PAIRS, TG and THREADS must be numbers" >&2; exit 2 ;; esac
[ -x "$aellm" ] || { echo "no $aellm: build first" >&2; exit 1; }
mkdir -p "$dir"
runs=$(mktemp)
trap 'rm -f "$runs"' EXIT

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc --all) cores; $threads threads; tg$tg, $pairs pairs, static and steal alternating; $(date -u +%F)"
echo
echo "| shape | type | pair | split | tg t/s | tg / roofline | barrier wait | steps stolen |"
echo "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |"
for shape in $shapes; do
    for type in $types; do
        f=$dir/$shape-$type.gguf
        [ -f "$f" ] || "$aellm" mkmodel --shape "$shape" --type "$type" -o "$f" 2>/dev/null
        for p in $(seq "$pairs"); do
            for split in static steal; do
                AELLM_DECODE_SPLIT=$split "$aellm" bench -m "$f" -p 0 -n "$tg" -r 1 \
                    -t "$threads" --json | tr -d '\n\t ' |
                    python3 -c 'import json, sys
j = json.load(sys.stdin)
shape, type_, pair, split, runs = sys.argv[1:]
print("| %s | %s | %s | %s | %.2f | %.0f %% | %.1f %% | %.1f %% |" % (shape, type_, pair, split,
      j["tg_tps"], 100 * j["tg_roofline_fraction"], 100 * j["decode_wait_fraction"],
      100 * j["decode_stolen_fraction"]))
with open(runs, "a") as f:
    f.write("%s %s %s %s %r %r\n" % (shape, type_, pair, split, j["tg_tps"],
                                    j["decode_wait_fraction"]))' "$shape" "$type" "$p" "$split" "$runs"
            done
        done
    done
done
echo
python3 - "$runs" <<'PY'
import collections, statistics as st, sys
by = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    shape, type_, pair, split, tps, wait = line.split()
    by[(shape, type_)].setdefault(split, []).append((int(pair), float(tps), float(wait)))
for (shape, type_), d in by.items():
    s, t = sorted(d["static"]), sorted(d["steal"])
    ratio = st.median(b[1] / a[1] for a, b in zip(s, t))
    print("%s %s: barrier wait median %.1f %% static, %.1f %% steal; tg steal / static, median "
          "of %d pairs: %.3f" % (shape, type_, 100 * st.median(a[2] for a in s),
                                  100 * st.median(b[2] for b in t), len(s), ratio))
PY
