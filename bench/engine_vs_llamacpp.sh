#!/usr/bin/env bash
# Engine speed: pp512 / tg128 tokens/s for random-weight 110M and 1.1B models
# in F32, F16, Q8_0 and Q4_0, aellm beside llama.cpp's llama-bench on the same
# GGUF files, repetitions alternating between the two, plus the decode
# roofline from the memory bandwidth read before and after each of aellm's
# tg runs (sustained over 0.3 s, as a run's tokens/s is; median over the
# runs, and the spread of each run against the readings around it; the
# fraction of the best single pass beside it). Prints the machine's SIMD flags,
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
llama_tps() { # file, -p N, -n N -> "avg sd" (repetitions: $reps)
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
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc --all) cores; $threads threads; $reps repetitions, alternating aellm / llama.cpp, each after its own warm-up; $(date -u +%F)"
echo "cpu flags: $simd_flags"
echo "aellm kernels: $("$aellm" bench --shape 260K -p 0 -n 4 -r 1 --no-bandwidth --json | jget kernel_isa)${AELLM_ISA:+ (AELLM_ISA=$AELLM_ISA)}; OpenBLAS core: ${openblas_core:-?}${OPENBLAS_CORETYPE:+ (OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE)}"
[ -n "${LLAMA_BENCH:-}" ] && echo "llama.cpp: $LLAMA_BENCH (commit $(llama_commit)), llama-bench -t $threads -r 1 per repetition"
echo
echo "| shape | type | size MiB | aellm pp512 | aellm tg128 | llama.cpp pp512 | llama.cpp tg128 | pp ratio | tg ratio | tg / roofline (per run) | tg / best pass | bandwidth GB/s (spread) | best pass GB/s |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
runs=$(mktemp)
trap 'rm -f "$runs"' EXIT
for shape in $shapes; do
    for type in $types; do
        f=$dir/$shape-$type.gguf
        [ -f "$f" ] || "$aellm" mkmodel --shape "$shape" --type "$type" -o "$f" 2>/dev/null
        # Repetitions alternate between the engines (aellm, llama.cpp, aellm, ...),
        # each run one timed repetition after its own warm-up, so that both see
        # the same moments of a VM whose speed drifts by tens of percent over
        # minutes; the ratios are medians of the paired runs.
        : >"$runs"
        for r in $(seq "$reps"); do
            echo "a_pp $("$aellm" bench -m "$f" -p 512 -n 0 -r 1 -t "$threads" --no-bandwidth --json | jget pp_tps)" >>"$runs"
            [ -n "${LLAMA_BENCH:-}" ] && echo "l_pp $(reps=1 llama_tps "$f" 512 0 | cut -d' ' -f1)" >>"$runs"
        done
        for r in $(seq "$reps"); do
            echo "a_tg $("$aellm" bench -m "$f" -p 0 -n 128 -r 1 -t "$threads" --json | tr -d '\n\t ')" >>"$runs"
            [ -n "${LLAMA_BENCH:-}" ] && echo "l_tg $(reps=1 llama_tps "$f" 0 128 | cut -d' ' -f1)" >>"$runs"
        done
        python3 - "$runs" "$shape" "$type" <<'PY'
import json, statistics as st, sys
runs = {"a_pp": [], "l_pp": [], "a_tg": [], "l_tg": []}
for line in open(sys.argv[1]):
    k, v = line.split(" ", 1)
    runs[k].append(json.loads(v) if k == "a_tg" else float(v))
a_tg = [j["tg_tps"] for j in runs["a_tg"]]
frac = [j["tg_roofline_fraction"] for j in runs["a_tg"]]
frac_best = [j["tg_best_pass_fraction"] for j in runs["a_tg"]]
best = [j["mem_bw_best_pass"] for j in runs["a_tg"]]
bw = [j["mem_bw_min"] for j in runs["a_tg"]] + [j["mem_bw_max"] for j in runs["a_tg"]]
size = runs["a_tg"][0]["size_bytes"] / 1048576
mean = lambda v: sum(v) / len(v)
def ratio(a, l):
    return "%.2f" % st.median(x / y for x, y in zip(a, l)) if l else "-"
def peer(v, fmt):
    return fmt % mean(v) if v else "-"
print("| %s | %s | %.0f | %.1f | %.1f | %s | %s | %s | %s | %.0f %% (%.0f-%.0f) | %.0f %% | %.1f (%.1f-%.1f, %d) | %.1f |" % (
    sys.argv[2], sys.argv[3], size, mean(runs["a_pp"]), mean(a_tg),
    peer(runs["l_pp"], "%.2f"), peer(runs["l_tg"], "%.2f"),
    ratio(runs["a_pp"], runs["l_pp"]), ratio(a_tg, runs["l_tg"]),
    100 * st.median(frac), 100 * min(frac), 100 * max(frac), 100 * st.median(frac_best),
    st.median(bw) / 1e9, min(bw) / 1e9, max(bw) / 1e9, len(bw), st.median(best) / 1e9))
PY
    done
done
