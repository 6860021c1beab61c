#!/usr/bin/env bash
# Engine speed: pp512 / tg128 tokens/s for random-weight 110M and 1.1B models
# in F32, F16, Q8_0 and Q4_0, aellm beside llama.cpp's llama-bench on the same
# GGUF files in the same run, plus the decode roofline from the measured
# memory bandwidth. Prints a markdown table (the one in bench/README.md).
#
#   bench/engine_vs_llamacpp.sh [BUILD_DIR]        (default: build)
#   env: LLAMA_BENCH=/path/to/llama-bench  compare with llama.cpp (optional)
#        SHAPES="110M 1.1B" TYPES="f32 f16 q8_0 q4_0" REPS=3 THREADS=2
#        MODELS_DIR=/tmp/aellm-bench-models   (GGUF files are made once, kept)
set -euo pipefail
build=${1:-build}
aellm=$build/aellm
shapes=${SHAPES:-110M 1.1B}
types=${TYPES:-f32 f16 q8_0 q4_0}
reps=${REPS:-3}
threads=${THREADS:-2}
dir=${MODELS_DIR:-/tmp/aellm-bench-models}
mkdir -p "$dir"
[ -x "$aellm" ] || { echo "no $aellm: build first" >&2; exit 1; }

jget() { sed -n "s/.*\"$1\":[[:space:]]*\([0-9.eE+-]*\).*/\1/p" | head -1; }

# llama-bench -o csv: fields include n_prompt, n_gen, avg_ts, stddev_ts
llama_tps() { # file, -p N, -n N -> "avg sd"
    "$LLAMA_BENCH" -m "$1" -t "$threads" -r "$reps" -p "$2" -n "$3" -o csv 2>/dev/null |
        python3 -c 'import csv,sys
rows=list(csv.DictReader(sys.stdin)); r=rows[-1]
print("%.2f %.2f" % (float(r["avg_ts"]), float(r["stddev_ts"])))'
}

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; $threads threads; $reps repetitions after a warm-up; $(date -u +%F)"
[ -n "${LLAMA_BENCH:-}" ] && echo "llama.cpp: $LLAMA_BENCH (commit $(git -C "$(dirname "$LLAMA_BENCH")" rev-parse --short HEAD 2>/dev/null || echo unknown)), llama-bench -t $threads -r $reps"
echo
echo "| shape | type | size MiB | aellm pp512 | aellm tg128 | llama.cpp pp512 | llama.cpp tg128 | pp ratio | tg ratio | tg / roofline |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for shape in $shapes; do
    for type in $types; do
        f=$dir/$shape-$type.gguf
        [ -f "$f" ] || "$aellm" mkmodel --shape "$shape" --type "$type" -o "$f" 2>/dev/null
        # each aellm test runs right beside llama.cpp's same test, so both see the
        # same machine (a VM's speed drifts by tens of percent over minutes)
        l_pp="-" l_tg="-" r_pp="-" r_tg="-"
        pp=$("$aellm" bench -m "$f" -p 512 -n 0 -r "$reps" -t "$threads" --no-bandwidth --json)
        [ -n "${LLAMA_BENCH:-}" ] && read -r l_pp _ < <(llama_tps "$f" 512 0)
        tg=$("$aellm" bench -m "$f" -p 0 -n 128 -r "$reps" -t "$threads" --json)
        [ -n "${LLAMA_BENCH:-}" ] && read -r l_tg _ < <(llama_tps "$f" 0 128)
        a_pp=$(echo "$pp" | jget pp_tps); a_tg=$(echo "$tg" | jget tg_tps)
        roof=$(echo "$tg" | jget tg_roofline_fraction); size=$(echo "$tg" | jget size_bytes)
        if [ -n "${LLAMA_BENCH:-}" ]; then
            r_pp=$(python3 -c "print('%.2f' % ($a_pp / $l_pp))")
            r_tg=$(python3 -c "print('%.2f' % ($a_tg / $l_tg))")
        fi
        printf "| %s | %s | %.0f | %.1f | %.1f | %s | %s | %s | %s | %.0f %% |\n" "$shape" "$type" \
            "$(python3 -c "print($size / 1048576)")" "$a_pp" "$a_tg" "$l_pp" "$l_tg" "$r_pp" "$r_tg" \
            "$(python3 -c "print(100 * $roof)")"
    done
done
