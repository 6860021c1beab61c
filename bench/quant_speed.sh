#!/usr/bin/env bash
# Speed per weight format: pp512 and tg128 tokens/s of random-weight models of
# real shapes in every format aellm runs, as ratios to F32 measured in the
# same run (F32 is measured first and last; the ratio uses their mean, and
# both are printed so drift shows). Prints the markdown table of bench/README.md.
#
#   bench/quant_speed.sh [BUILD_DIR]        (default: build)
#   env: SHAPES="110M 1.1B" TYPES="f16 bf16 fp8_e4m3 int8 q8_0 q4_0 q4_1 int4s_g128 int4a_g128 nf4"
#        REPS=3 THREADS=2 MODELS_DIR=/tmp/aellm-bench-models
set -euo pipefail
build=${1:-build}
aellm=$build/aellm
shapes=${SHAPES:-110M 1.1B}
types=${TYPES:-f16 bf16 fp8_e4m3 int8 q8_0 q4_0 q4_1 int4s_g128 int4a_g128 nf4}
reps=${REPS:-3}
threads=${THREADS:-2}
dir=${MODELS_DIR:-/tmp/aellm-bench-models}
mkdir -p "$dir"
[ -x "$aellm" ] || { echo "no $aellm: build first" >&2; exit 1; }

jget() { sed -n "s/.*\"$1\":[[:space:]]*\([0-9.eE+-]*\).*/\1/p" | head -1; }
model() { # shape type -> path (made once, kept)
    local f=$dir/$1-$2.gguf
    [ -f "$f" ] || "$aellm" mkmodel --shape "$1" --type "$2" -o "$f" 2>/dev/null
    echo "$f"
}
speed() { # file -> "pp tg roofline size"
    local pp tg
    pp=$("$aellm" bench -m "$1" -p 512 -n 0 -r "$reps" -t "$threads" --no-bandwidth --json)
    tg=$("$aellm" bench -m "$1" -p 0 -n 128 -r "$reps" -t "$threads" --json)
    echo "$(echo "$pp" | jget pp_tps) $(echo "$tg" | jget tg_tps)" \
        "$(echo "$tg" | jget tg_roofline_fraction) $(echo "$tg" | jget size_bytes)"
}
r2() { python3 -c "print('%.2f' % ($1))"; }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; $threads threads; $reps repetitions after a warm-up; $(date -u +%F)"
echo
echo "| shape | type | size MiB | pp512 t/s | tg128 t/s | pp / F32 | tg / F32 | tg / roofline |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for shape in $shapes; do
    read -r fpp0 ftg0 froof fsize < <(speed "$(model "$shape" f32)")
    rows=()
    for type in $types; do
        read -r pp tg roof size < <(speed "$(model "$shape" "$type")")
        rows+=("$type $pp $tg $roof $size")
    done
    read -r fpp1 ftg1 _ _ < <(speed "$(model "$shape" f32)")
    fpp=$(python3 -c "print(($fpp0 + $fpp1) / 2)")
    ftg=$(python3 -c "print(($ftg0 + $ftg1) / 2)")
    printf "| %s | f32 | %.0f | %.1f (%.1f, %.1f) | %.2f (%.2f, %.2f) | 1.00 | 1.00 | %.0f %% |\n" \
        "$shape" "$(r2 "$fsize / 1048576")" "$fpp" "$fpp0" "$fpp1" "$ftg" "$ftg0" "$ftg1" \
        "$(r2 "100 * $froof")"
    for row in "${rows[@]}"; do
        read -r type pp tg roof size <<<"$row"
        printf "| %s | %s | %.0f | %.1f | %.2f | %s | %s | %.0f %% |\n" "$shape" "$type" \
            "$(r2 "$size / 1048576")" "$pp" "$tg" "$(r2 "$pp / $fpp")" "$(r2 "$tg / $ftg")" \
            "$(r2 "100 * $roof")"
    done
done
