#!/usr/bin/env bash
# Fuzzing (issue 18): builds the libFuzzer harnesses of fuzz/ (clang, ASan +
# UBSan, -DAELLM_FUZZ=ON), prepares a seed corpus for each from the repository
# and ../shared/data, runs every fuzzer for SECONDS and prints one table.
#
#   bench/fuzz.sh [SECONDS]              (default 600 per fuzzer)
#   env: BUILD=/tmp/aellm-fuzz  JOBS=1 (fuzzers run at once)  FUZZERS="gguf llama2c ..."
#        DATA=../shared/data  BUILD_JOBS=2  NO_BUILD=1 (reuse the build as it is)
#
# Reading the table: "execs" is libFuzzer's stat::number_of_executed_units
# summed over the run (a fuzzer that crashes is restarted on its corpus until
# SECONDS are used, at most 50 times), "edges" the last "cov:" it printed
# (coverage counters of the instrumented library and harness: a plateau means
# the seeds and mutations reach nothing new), "crashes" the artifacts this run
# wrote (crash-*, leak-*, timeout-*, oom-* under $BUILD/fuzz-artifacts/NAME/,
# paths listed after the table: reproduce with `$BUILD/fuzz/fuzz_NAME FILE`),
# "exit" the status of the last run (0: time ran out with no finding).
# Corpora grow in $BUILD/fuzz-corpus/NAME across runs; logs are in
# $BUILD/fuzz-logs/.
set -euo pipefail
trap 'echo "bench/fuzz.sh: failed at line $LINENO" >&2' ERR
seconds=${1:-600}
src=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-/tmp/aellm-fuzz}
data=${DATA:-$src/../shared/data}
jobs=${JOBS:-1}
all="gguf gguf_model gguf_vocab llama2c tokenizer_bin config space hardware task_spec
     task_choice task_continuation task_gsm8k task_text kld_base surrogate external_record"
fuzzers=${FUZZERS:-$all}

# ---- build ----
if [ -z "${NO_BUILD:-}" ]; then
    CC=${CC:-clang} cmake -S "$src" -B "$build" -DAELLM_FUZZ=ON -DCMAKE_BUILD_TYPE=Release \
        >"$build.cmake.log" 2>&1 || { cat "$build.cmake.log" >&2; exit 1; }
    cmake --build "$build" --target fuzzers -j"${BUILD_JOBS:-2}" >"$build.build.log" 2>&1 ||
        { tail -40 "$build.build.log" >&2; exit 1; }
fi

# ---- seeds: $build/fuzz-seeds/NAME, rebuilt every run (small files only) ----
seeds=$build/fuzz-seeds
rm -rf "$seeds"
mkdir -p "$seeds" "$build/fuzz-corpus" "$build/fuzz-artifacts" "$build/fuzz-logs" "$build/fuzz-dicts"
for n in $all; do mkdir -p "$seeds/$n" "$build/fuzz-corpus/$n" "$build/fuzz-artifacts/$n"; done
# the seed makers' exits are not under test
ASAN_OPTIONS=detect_leaks=0 "$build/fuzz/fuzz_mkseeds" "$build/fuzz-mkseeds"
cp "$build"/fuzz-mkseeds/gguf_model/* "$seeds/gguf_model/"
cp "$build"/fuzz-mkseeds/gguf_model/* "$build"/fuzz-mkseeds/gguf_vocab/* "$seeds/gguf/"
cp "$build"/fuzz-mkseeds/gguf_vocab/* "$seeds/gguf_vocab/"
for n in llama2c kld_base surrogate; do cp "$build"/fuzz-mkseeds/$n/* "$seeds/$n/"; done
# the real stories260K as GGUF, made by the CLI: q4_0, and aellm's int4s_g32
# for its 172-wide rows (longer than max_len: libFuzzer keeps its first bytes)
tok=$src/models/stories260K/tok512.bin
if [ -f "$src/models/stories260K/stories260K.bin" ]; then
    ASAN_OPTIONS=detect_leaks=0 OMP_NUM_THREADS=1 "$build/aellm" quantize -t 1 \
        -m "$src/models/stories260K/stories260K.bin" -z "$tok" --type int4 \
        -o "$build/fuzz-mkseeds/stories260K.gguf" >/dev/null 2>&1
    cp "$build/fuzz-mkseeds/stories260K.gguf" "$seeds/gguf/"
    cp "$build/fuzz-mkseeds/stories260K.gguf" "$seeds/gguf_model/"
    head -c 4096 "$src/models/stories260K/stories260K.bin" |
        { printf '\003'; cat; } >"$seeds/llama2c/stories260K-raw-header"
fi
# tokenizer.bin: two bytes of vocabulary size, then the file
prefixed() { { printf "$1"; cat "$2"; } >"$3"; }
[ -f "$tok" ] && prefixed '\000\002' "$tok" "$seeds/tokenizer_bin/tok512"
[ -f "$data/babyllama/tok105.bin" ] && prefixed '\151\000' "$data/babyllama/tok105.bin" "$seeds/tokenizer_bin/tok105"
cp "$src"/configs/*.json "$src"/fuzz/seeds/config/*.json "$seeds/config/"
cp "$src"/space/*.json "$src"/fuzz/seeds/space/*.json "$seeds/space/"
cp "$src"/hardware/*.json "$src"/fuzz/seeds/hardware/*.json "$seeds/hardware/"
cp "$src"/tasks/*.json "$src"/fuzz/seeds/task_spec/*.json "$seeds/task_spec/"
cp "$src"/fuzz/seeds/external/*.json "$seeds/external_record/"
# task data: a selector byte (the harness's format choice), then the first
# lines of each real data set
head_of() { # NAME SELECTOR FILE LINES
    [ -f "$3" ] && { printf "$2"; head -n "$4" "$3" | head -c 3000; } >"$seeds/$1/$(basename "$3").$4"
    return 0
}
head_of task_choice '\001' "$data/hellaswag/hellaswag_val_full.txt" 12
head_of task_choice '\000' "$data/hellaswag/hellaswag_val_full.txt" 6
head_of task_choice '\002' "$data/arc/arc_easy.jsonl" 3
head_of task_choice '\000' "$data/mc-misc/copa.jsonl" 4
head_of task_choice '\000' "$data/mc-misc/piqa.jsonl" 2
head_of task_choice '\003' "$data/mc-misc/winogrande.jsonl" 3
head_of task_choice '\004' "$data/mmlu/zero_shot_mmlu_val.json" 2
head_of task_continuation '\002' "$data/lambada/lambada_test.jsonl" 2
head_of task_continuation '\001' "$data/lambada/lambada_openai_llmfoundry.jsonl" 2
head_of task_continuation '\003' "$data/tinystories/tinystories_sample.txt" 20
head_of task_continuation '\000' "$src/tasks/data/stories_eval.txt" 12
head_of task_gsm8k '\001' "$data/gsm8k/test.jsonl" 3
head_of task_gsm8k '\044' "$data/gsm8k/test.jsonl" 1
head_of task_text '\000\005' "$src/tasks/data/stories_eval.txt" 10
head_of task_text '\001\202' "$data/tinystories/tinystories_sample.txt" 10
head_of task_text '\002\011' "$data/wikitext-2/test.txt" 20
# dictionaries: the JSON fuzzers get the JSON syntax beside their keys
cp "$src/fuzz/gguf.dict" "$build/fuzz-dicts/gguf.dict"
for d in config space hardware task external; do
    cat "$src/fuzz/json.dict" "$src/fuzz/$d.dict" >"$build/fuzz-dicts/$d.dict"
done

dict_of() {
    case $1 in
    gguf | gguf_model | gguf_vocab) echo gguf ;;
    config | space | hardware) echo "$1" ;;
    task_*) echo task ;;
    external_record) echo external ;;
    esac
}
max_len_of() {
    case $1 in
    gguf | gguf_model) echo 131072 ;;
    gguf_vocab | tokenizer_bin | kld_base | surrogate) echo 32768 ;;
    *) echo 8192 ;;
    esac
}

# ---- running ----
tmp=/dev/shm
[ -w "$tmp" ] || tmp=/tmp
export AELLM_FUZZ_TMP=$tmp/aellm-fuzz-run-$$ OMP_NUM_THREADS=1
trap 'rm -rf "$AELLM_FUZZ_TMP"' EXIT
stamp=$build/fuzz-logs/.start-$$
touch "$stamp"

# One fuzzer for the whole time: restarted after a finding (libFuzzer stops at
# the first) until the time is used; one result line into its .result file.
run_one() {
    set +e # a fuzzer's failure is a row of the table, not the end of the script
    local n=$1 bin=$build/fuzz/fuzz_$1 log=$build/fuzz-logs/$1.log start end left execs=0 rc=0 runs=0 units
    local dict
    dict=$(dict_of "$n")
    : >"$log"
    start=$(date +%s)
    end=$((start + seconds))
    while left=$((end - $(date +%s))) && [ "$left" -gt 0 ] && [ "$runs" -lt 50 ]; do
        runs=$((runs + 1))
        rc=0
        LSAN_OPTIONS=suppressions=$src/fuzz/lsan.supp:print_suppressions=0 \
            "$bin" -max_total_time="$left" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10 \
            -max_len="$(max_len_of "$n")" -artifact_prefix="$build/fuzz-artifacts/$n/" \
            ${dict:+-dict="$build/fuzz-dicts/$dict.dict"} \
            "$build/fuzz-corpus/$n" "$seeds/$n" >>"$log" 2>&1 || rc=$?
        units=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        execs=$((execs + ${units:-0}))
        # only the last run's units were just added; earlier ones were summed before
        sed -i 's/^stat::number_of_executed_units:/stat::counted_units:/' "$log"
    done
    local cov crashes
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    crashes=$(find "$build/fuzz-artifacts/$n" -type f -newer "$stamp" \
        \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
    echo "$n $(($(date +%s) - start)) $execs ${cov:-0} $crashes $rc" >"$build/fuzz-logs/$n.result"
}

echo "fuzzing $(echo $fuzzers | wc -w) fuzzers for ${seconds} s each, $jobs at a time; $(date -u '+%F %H:%M') UTC" >&2
for n in $fuzzers; do
    [ -x "$build/fuzz/fuzz_$n" ] || { echo "no fuzzer fuzz_$n" >&2; exit 1; }
    rm -f "$build/fuzz-logs/$n.result"
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
    run_one "$n" &
done
wait

printf "| fuzzer | seconds | executions | edges (cov) | crashes | exit |\n"
printf "| --- | ---: | ---: | ---: | ---: | ---: |\n"
for n in $fuzzers; do
    read -r name secs execs cov crashes rc <"$build/fuzz-logs/$n.result" ||
        { name=$n secs=- execs=- cov=- crashes=- rc="no result"; }
    printf "| %s | %s | %s | %s | %s | %s |\n" "$name" "$secs" "$execs" "$cov" "$crashes" "$rc"
done
found=$(find "$build/fuzz-artifacts" -type f -newer "$stamp" | sort)
rm -f "$stamp"
if [ -n "$found" ]; then
    echo
    echo "artifacts of this run:"
    echo "$found"
fi
