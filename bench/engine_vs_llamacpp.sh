#!/usr/bin/env bash
# Engine speed: pp512 / tg128 tokens/s for random-weight 110M and 1.1B models
# in F32, F16, Q8_0 and Q4_0, aellm beside llama.cpp's llama-bench on the same
# GGUF files in the same run, plus the decode roofline from the memory
# bandwidth measured between aellm's tg runs (median, and each run against
# the measurements around it: the spread). Prints the machine's SIMD flags,
# the kernel ISA aellm chose and OpenBLAS's core, then a markdown table (the
# one in bench/README.md).
#
#   bench/engine_vs_llamacpp.sh [BUILD_DIR]        (default: build)
#   env: LLAMA_BENCH=/path/to/llama-bench  compare with llama.cpp (optional)
#        ISA=avx2   cap aellm at AVX2 (AELLM_ISA=avx2, OpenBLAS's Haswell
#                   kernels) for a same-ISA comparison on an AVX-512 machine;
#                   with LLAMA_SRC=/path/to/llama.cpp and no LLAMA_BENCH,
#                   builds an AVX2-only llama-bench there (build-avx2:
#                   GGML_NATIVE=OFF, GGML_AVX2=ON, AVX-512 off) and uses it
#        LLAMA_COMMIT=...  the peer's commit, when its tree has no .git
#        SHAPES="110M 1.1B" TYPES="f32 f16 q8_0 q4_0" REPS=3 THREADS=2
#        MODELS_DIR=/tmp/aellm-bench-models   (GGUF files are made once, kept)
set -euo pipefail
build=${1:-build}
aellm=$build/aellm
shapes=${SHAPES:-110M 1.1B}
types=${TYPES:-f32 f16 q8_0 q4_0}
reps=${REPS:-3}
threads=${THREADS:-2}
isa=${ISA:-}
dir=${MODELS_DIR:-/tmp/aellm-bench-models}
mkdir -p "$dir"
[ -x "$aellm" ] || { echo "no $aellm: build first" >&2; exit 1; }

if [ "$isa" = avx2 ]; then
    export AELLM_ISA=avx2 OPENBLAS_CORETYPE=Haswell
    if [ -z "${LLAMA_BENCH:-}" ] && [ -n "${LLAMA_SRC:-}" ]; then
        b=$LLAMA_SRC/build-avx2
        if [ ! -x "$b/bin/llama-bench" ]; then
            echo "building an AVX2-only llama-bench in $b ..." >&2
            cmake -S "$LLAMA_SRC" -B "$b" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF \
                -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF \
                -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF \
                -DGGML_AVX_VNNI=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
                -DLLAMA_BUILD_SERVER=OFF >/dev/null
            cmake --build "$b" -j"$(nproc --all)" --target llama-bench >/dev/null
        fi
        LLAMA_BENCH=$b/bin/llama-bench
    fi
elif [ -n "$isa" ]; then
    export AELLM_ISA=$isa
fi

jget() { sed -n "s/.*\"$1\":[[:space:]]*\"\{0,1\}\([0-9A-Za-z.eE+-]*\).*/\1/p" | head -1; }

# llama-bench -o csv: fields include n_prompt, n_gen, avg_ts, stddev_ts
llama_tps() { # file, -p N, -n N -> "avg sd"
    "$LLAMA_BENCH" -m "$1" -t "$threads" -r "$reps" -p "$2" -n "$3" -o csv 2>/dev/null |
        python3 -c 'import csv,sys
rows=list(csv.DictReader(sys.stdin)); r=rows[-1]
print("%.2f %.2f" % (float(r["avg_ts"]), float(r["stddev_ts"])))'
}

# The peer's commit: its git tree, a COMMIT file beside its build, or LLAMA_COMMIT.
llama_commit() {
    local d
    d=$(cd "$(dirname "$LLAMA_BENCH")" && pwd)
    git -C "$d" rev-parse --short HEAD 2>/dev/null && return
    for f in "$d/../../COMMIT" "$d/../COMMIT"; do [ -f "$f" ] && { head -c 12 "$f"; return; }; done
    echo "${LLAMA_COMMIT:-unknown}"
}

simd_flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' |
    grep -E '^(sse4_2|avx|avx2|fma|f16c|avx512.*|avx_vnni|amx.*)$' | tr '\n' ' ')
openblas_core=$(OPENBLAS_VERBOSE=2 "$aellm" bench --shape 260K -p 32 -n 0 -r 1 --no-bandwidth 2>&1 |
    sed -n 's/^Core: //p' | head -1)
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc --all) cores; $threads threads; $reps repetitions after a warm-up; $(date -u +%F)"
echo "cpu flags: $simd_flags"
echo "aellm kernels: $("$aellm" bench --shape 260K -p 0 -n 4 -r 1 --no-bandwidth --json | jget kernel_isa)${AELLM_ISA:+ (AELLM_ISA=$AELLM_ISA)}; OpenBLAS core: ${openblas_core:-?}${OPENBLAS_CORETYPE:+ (OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE)}"
[ -n "${LLAMA_BENCH:-}" ] && echo "llama.cpp: $LLAMA_BENCH (commit $(llama_commit)), llama-bench -t $threads -r $reps"
echo
echo "| shape | type | size MiB | aellm pp512 | aellm tg128 | llama.cpp pp512 | llama.cpp tg128 | pp ratio | tg ratio | tg / roofline (per run) | bandwidth GB/s (spread) |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
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
        size=$(echo "$tg" | jget size_bytes)
        if [ -n "${LLAMA_BENCH:-}" ]; then
            r_pp=$(python3 -c "print('%.2f' % ($a_pp / $l_pp))")
            r_tg=$(python3 -c "print('%.2f' % ($a_tg / $l_tg))")
        fi
        roof=$(echo "$tg" | python3 -c 'import json,sys
j=json.load(sys.stdin)
print("%.0f %% (%.0f-%.0f) | %.1f (%.1f-%.1f, %d)" % (100*j["tg_roofline_fraction"],
      100*j["tg_roofline_fraction_min"], 100*j["tg_roofline_fraction_max"],
      j["mem_bw_bytes_per_s"]/1e9, j["mem_bw_min"]/1e9, j["mem_bw_max"]/1e9, j["mem_bw_samples"]))')
        printf "| %s | %s | %.0f | %.1f | %.1f | %s | %s | %s | %s | %s |\n" "$shape" "$type" \
            "$(python3 -c "print($size / 1048576)")" "$a_pp" "$a_tg" "$l_pp" "$l_tg" "$r_pp" "$r_tg" \
            "$roof"
    done
done
