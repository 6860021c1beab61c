#!/usr/bin/env bash
# Decode speed with the weights read into private huge-page memory (aellm's
# default) against the file mapping (AELLM_MMAP=1), alternating run by run
# so that both see the same moments of a drifting machine. Prints each
# pair's tg tokens/s and roofline fraction, and the median pair ratio.
#
#   bench/mmap_ab.sh [BUILD_DIR]        (default: build)
#   env: SHAPE=1.1B TYPES="f32 f16" PAIRS=3 GEN=48 THREADS=2
#        MODELS_DIR=/tmp/aellm-bench-models   (GGUF files are made once, kept)
set -euo pipefail
build=${1:-build}
aellm=$build/aellm
shape=${SHAPE:-1.1B}
types=${TYPES:-f32 f16}
pairs=${PAIRS:-3}
gen=${GEN:-48}
threads=${THREADS:-2}
dir=${MODELS_DIR:-/tmp/aellm-bench-models}
mkdir -p "$dir"
[ -x "$aellm" ] || { echo "no $aellm: build first" >&2; exit 1; }

run() { # file, AELLM_MMAP value -> "t/s fraction"
    AELLM_MMAP=$2 "$aellm" bench -m "$1" -p 0 -n "$gen" -r 1 -t "$threads" --json |
        python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["tg_tps"], j["tg_roofline_fraction"])'
}

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc --all) cores; $threads threads; tg$gen, $pairs pairs; $(date -u +%F)"
echo
echo "| shape | type | pair | mmap t/s | private t/s | ratio | mmap / roofline | private / roofline |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
ratios=()
for type in $types; do
    f=$dir/$shape-$type.gguf
    [ -f "$f" ] || "$aellm" mkmodel --shape "$shape" --type "$type" -o "$f" 2>/dev/null
    for p in $(seq "$pairs"); do
        read -r m_tps m_frac < <(run "$f" 1)
        read -r p_tps p_frac < <(run "$f" 0)
        r=$(python3 -c "print('%.2f' % ($p_tps / $m_tps))")
        ratios+=("$r")
        python3 -c "print('| $shape | $type | $p | %.2f | %.2f | $r | %.0f %% | %.0f %% |' % ($m_tps, $p_tps, 100 * $m_frac, 100 * $p_frac))"
    done
done
echo
python3 -c "import statistics as s; r=[${ratios[*]/%/,}]; print('median pair ratio (private / mmap): %.2f over %d pairs, %d slower' % (s.median(r), len(r), sum(x < 1 for x in r)))"
