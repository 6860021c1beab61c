#!/usr/bin/env bash
# Decode of two setups of aellm on the same GGUF files, alternating run by run (the VM's speed
# drifts over minutes): each run's tg tokens/s, roofline fraction (its tokens/s against the
# memory bandwidth read right before and after it by the same `aellm bench`), bandwidth,
# share of the threads' time at barriers and of product steps stolen; a markdown table, then
# per model the median over the pairs of B / A and how many pairs B won. The one driver behind
# bench/build_ab.sh (two builds), bench/decode_split_ab.sh (static or stealing split) and
# bench/mmap_ab.sh (file mapping or private memory).
#
#   bench/decode_ab.sh 'LABEL_A=COMMAND_A' 'LABEL_B=COMMAND_B'
#   COMMAND: the aellm binary, after any VAR=value it needs (split at spaces), e.g.
#     bench/decode_ab.sh 'static=AELLM_DECODE_SPLIT=static build/aellm' 'steal=build/aellm'
#   env: SHAPES="1.1B" TYPES="f32 f16" PAIRS=6 TG=48 THREADS=2
#        MODELS_DIR=/tmp/aellm-bench-models   (GGUF files are made once, kept)
set -euo pipefail
usage="usage: bench/decode_ab.sh 'LABEL_A=COMMAND_A' 'LABEL_B=COMMAND_B'   (env: SHAPES TYPES PAIRS TG THREADS MODELS_DIR)"
if [ $# -ne 2 ] || [ "$1" = --help ] || [ "$1" = -h ]; then
    echo "$usage" >&2
    exit 2
fi
labels=() cmds=()
for side in "$1" "$2"; do
    case "$side" in
    [A-Za-z0-9_]*=?*) ;;
    *) echo "decode_ab: '$side' is not LABEL=COMMAND" >&2; exit 2 ;;
    esac
    labels+=("${side%%=*}")
    cmds+=("${side#*=}")
done
shapes=${SHAPES:-1.1B}
types=${TYPES:-f32 f16}
pairs=${PAIRS:-6}
tg=${TG:-48}
threads=${THREADS:-2}
dir=${MODELS_DIR:-/tmp/aellm-bench-models}
case "$pairs$tg$threads" in *[!0-9]*) echo "PAIRS, TG and THREADS must be numbers" >&2; exit 2 ;; esac
for c in "${cmds[@]}"; do
    read -ra words <<<"$c"
    [ -x "${words[-1]}" ] || { echo "decode_ab: no ${words[-1]}: build first" >&2; exit 1; }
done
mkmodel_bin=${words[-1]} # B's binary makes any missing model
mkdir -p "$dir"
runs=$(mktemp)
trap 'rm -f "$runs"' EXIT

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc --all) cores; $threads threads; tg$tg, $pairs pairs, ${labels[0]} and ${labels[1]} alternating; $(date -u +%F)"
echo "${labels[0]}: ${cmds[0]}   ${labels[1]}: ${cmds[1]}"
echo
echo "| shape | type | pair | setup | tg t/s | tg / roofline | bandwidth GB/s | barrier wait | steps stolen |"
echo "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
for shape in $shapes; do
    for type in $types; do
        f=$dir/$shape-$type.gguf
        [ -f "$f" ] || "$mkmodel_bin" mkmodel --shape "$shape" --type "$type" -o "$f" 2>/dev/null
        for p in $(seq "$pairs"); do
            for s in 0 1; do
                read -ra words <<<"${cmds[$s]}"
                env "${words[@]}" bench -m "$f" -p 0 -n "$tg" -r 1 -t "$threads" --json |
                    tr -d '\n\t ' | python3 -c 'import json, sys
j = json.load(sys.stdin)
shape, type_, pair, side, label, runs = sys.argv[1:]
print("| %s | %s | %s | %s | %.2f | %.0f %% | %.1f | %.1f %% | %.1f %% |" % (shape, type_, pair,
      label, j["tg_tps"], 100 * j["tg_roofline_fraction"], j["mem_bw_bytes_per_s"] / 1e9,
      100 * j["decode_wait_fraction"], 100 * j["decode_stolen_fraction"]))
with open(runs, "a") as f:
    f.write("%s %s %s %s %r %r %r\n" % (shape, type_, pair, side, j["tg_tps"],
                                       j["tg_roofline_fraction"], j["decode_wait_fraction"]))' \
                    "$shape" "$type" "$p" "$s" "${labels[$s]}" "$runs"
            done
        done
    done
done
echo
python3 - "$runs" "${labels[@]}" <<'PY'
import collections, statistics as st, sys
by = collections.defaultdict(lambda: ([], []))
for line in open(sys.argv[1]):
    shape, type_, pair, side, tps, frac, wait = line.split()
    by[(shape, type_)][int(side)].append((int(pair), float(tps), float(frac), float(wait)))
la, lb = sys.argv[2:4]
for (shape, type_), (a, b) in by.items():
    a, b = sorted(a), sorted(b)
    med = lambda v, k: 100 * st.median(x[k] for x in v)
    print("%s %s: tg %s / %s, median of %d pairs: %.3f (%s faster in %d); tg / roofline median "
          "%s %.0f %%, %s %.0f %%; barrier wait median %s %.1f %%, %s %.1f %%" % (
              shape, type_, lb, la, len(a), st.median(y[1] / x[1] for x, y in zip(a, b)), lb,
              sum(y[1] > x[1] for x, y in zip(a, b)), la, med(a, 2), lb, med(b, 2), la, med(a, 3),
              lb, med(b, 3)))
PY
