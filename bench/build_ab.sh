#!/usr/bin/env bash
# Decode of two builds of aellm on the same GGUF files, alternating run by run (the VM's
# speed drifts over minutes): tg tokens/s and the roofline fraction of each run (its
# tokens/s against the memory bandwidth measured right before and after it, by the same
# `aellm bench`), a markdown table, then per model the median over the pairs of B / A and
# how many pairs B won. For a change that only a rebuild can switch (a kernel's layout, a
# compiler flag): build the base in another tree, e.g.
#   git worktree add /tmp/base REV && cmake -S /tmp/base -B /tmp/base/build -DCMAKE_BUILD_TYPE=Release
#   cmake --build /tmp/base/build -j --target aellm_cli
#
#   bench/build_ab.sh BUILD_A BUILD_B
#   env: SHAPES="1.1B" TYPES="f32 f16" PAIRS=6 TG=48 THREADS=2
#        MODELS_DIR=/tmp/aellm-bench-models   (GGUF files are made once, kept)
set -euo pipefail
if [ $# -ne 2 ] || [ "$1" = --help ] || [ "$1" = -h ]; then
    echo "usage: bench/build_ab.sh BUILD_A BUILD_B   (env: SHAPES TYPES PAIRS TG THREADS MODELS_DIR)" >&2
    exit 2
fi
a=$1/aellm
b=$2/aellm
shapes=${SHAPES:-1.1B}
types=${TYPES:-f32 f16}
pairs=${PAIRS:-6}
tg=${TG:-48}
threads=${THREADS:-2}
dir=${MODELS_DIR:-/tmp/aellm-bench-models}
case "$pairs$tg$threads" in *[!0-9]*) echo "PAIRS, TG and THREADS must be numbers" >&2; exit 2 ;; esac
for x in "$a" "$b"; do [ -x "$x" ] || { echo "no $x: build first" >&2; exit 1; }; done
mkdir -p "$dir"
runs=$(mktemp)
trap 'rm -f "$runs"' EXIT

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc --all) cores; $threads threads; tg$tg, $pairs pairs, A and B alternating; $(date -u +%F)"
echo "A: $1 ($(git -C "$1/.." rev-parse --short HEAD 2>/dev/null || echo '?'))  B: $2 ($(git -C "$2/.." rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo
echo "| shape | type | pair | build | tg t/s | tg / roofline | bandwidth GB/s |"
echo "| --- | --- | ---: | --- | ---: | ---: | ---: |"
for shape in $shapes; do
    for type in $types; do
        f=$dir/$shape-$type.gguf
        [ -f "$f" ] || "$b" mkmodel --shape "$shape" --type "$type" -o "$f" 2>/dev/null
        for p in $(seq "$pairs"); do
            for side in A B; do
                bin=$a
                [ "$side" = B ] && bin=$b
                "$bin" bench -m "$f" -p 0 -n "$tg" -r 1 -t "$threads" --json | tr -d '\n\t ' |
                    python3 -c 'import json, sys
j = json.load(sys.stdin)
shape, type_, pair, side, runs = sys.argv[1:]
print("| %s | %s | %s | %s | %.2f | %.0f %% | %.1f |" % (shape, type_, pair, side, j["tg_tps"],
      100 * j["tg_roofline_fraction"], j["mem_bw_bytes_per_s"] / 1e9))
with open(runs, "a") as f:
    f.write("%s %s %s %s %r %r\n" % (shape, type_, pair, side, j["tg_tps"],
                                    j["tg_roofline_fraction"]))' "$shape" "$type" "$p" "$side" "$runs"
            done
        done
    done
done
echo
python3 - "$runs" <<'PY'
import collections, statistics as st, sys
by = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    shape, type_, pair, side, tps, frac = line.split()
    by[(shape, type_)].setdefault(side, []).append((int(pair), float(tps), float(frac)))
for (shape, type_), d in by.items():
    a, b = sorted(d["A"]), sorted(d["B"])
    print("%s %s: tg B / A, median of %d pairs: %.3f (B faster in %d); tg / roofline median "
          "A %.0f %%, B %.0f %%" % (shape, type_, len(a), st.median(y[1] / x[1] for x, y in zip(a, b)),
                                    sum(y[1] > x[1] for x, y in zip(a, b)),
                                    100 * st.median(x[2] for x in a), 100 * st.median(y[2] for y in b)))
PY
