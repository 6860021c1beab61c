#!/usr/bin/env bash
# KV-cache precision at depth: generation speed after D tokens are already
# cached, per KV element type, on one model (the table in bench/README.md).
#
#   bench/kv_depth.sh [BUILD_DIR]        (default: build)
#   env: MODEL=/tmp/aellm-bench-models/110M-q4_0.gguf (made with mkmodel if absent)
#        DEPTHS="0 896" KV_TYPES="f32 f16 q8_0" N=64 REPS=3 THREADS=2
set -euo pipefail
build=${1:-build}
aellm=$build/aellm
model=${MODEL:-/tmp/aellm-bench-models/110M-q4_0.gguf}
depths=${DEPTHS:-0 896}
[ -x "$aellm" ] || { echo "no $aellm: build first" >&2; exit 1; }
if [ ! -f "$model" ]; then
    mkdir -p "$(dirname "$model")"
    "$aellm" mkmodel --shape 110M --type q4_0 -o "$model" 2>/dev/null
fi
jget() { sed -n "s/.*\"$1\":[[:space:]]*\([0-9.eE+-]*\).*/\1/p" | head -1; }

echo "model: $model; tg${N:-64}, ${REPS:-3} repetitions, ${THREADS:-2} threads; $(date -u +%F)"
echo
printf "| KV type | KV bytes (deepest) |"; for d in $depths; do printf " tg t/s, depth %s |" "$d"; done; echo
printf "| --- | ---: |"; for _ in $depths; do printf " ---: |"; done; echo
for kv in ${KV_TYPES:-f32 f16 q8_0}; do
    row="" bytes=0
    for d in $depths; do
        out=$("$aellm" bench -m "$model" -p 0 -n "${N:-64}" -r "${REPS:-3}" -t "${THREADS:-2}" \
            --depth "$d" --kv-type "$kv" --no-bandwidth --json | tr -d '\n')
        row="$row $(printf '%.0f' "$(echo "$out" | jget tg_tps)") |"
        bytes=$(echo "$out" | jget kv_bytes)
    done
    printf "| %s | %.1f MiB |%s\n" "$kv" "$(python3 -c "print($bytes / 1048576)")" "$row"
done
