#!/usr/bin/env bash
# SIGKILL soak (issue 18): `aellm search`, `aellm quantize` and `aellm train`
# killed at random moments, KILLS times each (default 50), each kill followed
# by a rerun of the same command. Reads as: after every kill the store passes
# PRAGMA integrity_check, no record it held is lost, no stored evaluation is
# run again (its finished_at would change), and no output file is ever half
# written (an output is absent or byte-identical to an uninterrupted run's);
# temporaries a killed writer leaves are removed by the next writer.
#   usage: bash bench/kill_soak.sh [BUILD_DIR]   (KILLS=50 OUT=dir to keep files)
set -u
build=${1:-build}
bin=$(cd "$build" && pwd)/aellm
src=$(cd "$(dirname "$0")/.." && pwd)
K=${KILLS:-50}
tmp=${OUT:-$(mktemp -d)}
mkdir -p "$tmp"
[ -x "$bin" ] || { echo "no $bin (build first)"; exit 1; }
# one thread (-t 1): a soak is not timed, and OpenMP threads spinning at
# barriers on a busy machine would make each run minutes long
export OMP_WAIT_POLICY=passive
model=$src/models/stories260K/stories260K.bin tok=$src/models/stories260K/tok512.bin
text=$src/tasks/data/stories_calib.txt
fail() { echo "FAIL: $*"; exit 1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
pick() { # a random moment in [20 ms, $1 ms], as seconds for sleep (no interpreter to start)
    local ms=$((20 + (RANDOM * 32768 + RANDOM) % ($1 > 20 ? $1 - 20 : 1)))
    printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}
rows=()

# killed_at_random T_MS STDOUT STDERR CMD...: runs CMD and sends SIGKILL at a
# random moment; true if the kill landed, false if CMD had finished (well).
killed_at_random() {
    local t=$1 out=$2 err=$3
    shift 3
    "$@" >"$out" 2>"$err" &
    local pid=$!
    sleep "$(pick "$t")"
    if kill -9 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null
        return 0
    fi
    wait "$pid" || fail "$1 $2: $(tail -n 2 "$err")"
    return 1
}

# ---- search: the store ----
snapshot() { # key|finished_at of every record, sorted
    [ -e "$1" ] && sqlite3 "$1" "SELECT key || '|' || finished_at FROM evaluations ORDER BY key" || true
}
soak_search() {
    local args=(search -t 1 -m "$model" -z "$tok" --budget 8 --rounds 1 -p 32 -n 8 --max-reps 3 -s 1 --json)
    local t0 t kills=0 resumes=0 done_=0 lost=0 repeated=0 bad=0 db=$tmp/search.db
    t0=$(now_ms)
    "$bin" "${args[@]}" --db "$tmp/search_ref.db" >/dev/null 2>&1 || fail "search: uninterrupted run"
    t=$(($(now_ms) - t0))
    rm -f "$db"*
    : >"$tmp/old.snap"
    while [ "$kills" -lt "$K" ]; do
        if killed_at_random "$t" "$tmp/search.json" "$tmp/search.err" "$bin" "${args[@]}" --db "$db"; then
            kills=$((kills + 1))
        else
            done_=$((done_ + 1))
        fi
        if [ -e "$db" ]; then
            [ "$(sqlite3 "$db" 'PRAGMA integrity_check')" = ok ] || bad=$((bad + 1))
        fi
        snapshot "$db" >"$tmp/new.snap"
        # lost: a key that was there and is not; repeated: a key whose finished_at moved
        lost=$((lost + $(join -t'|' -v1 <(cut -d'|' -f1 "$tmp/old.snap") <(cut -d'|' -f1 "$tmp/new.snap") | wc -l)))
        repeated=$((repeated + $(join -t'|' "$tmp/old.snap" "$tmp/new.snap" | awk -F'|' '$2 != $3' | wc -l)))
        [ -s "$tmp/old.snap" ] && resumes=$((resumes + 1))
        if grep -q '"evaluations"' "$tmp/search.json" 2>/dev/null; then # a finished search: begin anew
            rm -f "$db"*
            : >"$tmp/new.snap"
        fi
        mv "$tmp/new.snap" "$tmp/old.snap"
        printf '\rsearch: %d kills, %d finished' "$kills" "$done_" >&2
    done
    echo >&2
    rows+=("search $kills $resumes $done_ $lost $repeated $bad 0 0")
}

# ---- quantize and train: the output file ----
# run_killed NAME OUT REF T CMD...: runs CMD, kills it at a random moment;
# then OUT must be absent or identical to REF.
half=0 left=0
check_output() {
    local out=$1 ref=$2
    if [ -e "$out" ] && ! cmp -s "$out" "$ref"; then half=$((half + 1)); fi
}
soak_quantize() {
    local out=$tmp/q.gguf ref=$tmp/q_ref/q.gguf t0 t kills=0 done_=0 # one name: it is in the GGUF
    local args=(quantize -t 1 -m "$model" -z "$tok" --type int4 --method awq --calib "$text" --calib-tokens 4096 --calib-ctx 128)
    half=0 left=0
    mkdir -p "$tmp/q_ref"
    t0=$(now_ms)
    "$bin" "${args[@]}" -o "$ref" >/dev/null 2>&1 || fail "quantize: uninterrupted run"
    t=$((($(now_ms) - t0) * 6 / 5))
    while [ "$kills" -lt "$K" ]; do
        rm -f "$out"
        if killed_at_random "$t" /dev/null "$tmp/q.err" "$bin" "${args[@]}" -o "$out"; then
            kills=$((kills + 1))
        else
            done_=$((done_ + 1))
        fi
        check_output "$out" "$ref"
        left=$(find "$tmp" -maxdepth 1 -name 'q.gguf.tmp-*' | wc -l)
        printf '\rquantize: %d kills, %d finished' "$kills" "$done_" >&2
    done
    echo >&2
    "$bin" "${args[@]}" -o "$out" >/dev/null 2>&1 || fail "quantize: the last run"
    cmp -s "$out" "$ref" || half=$((half + 1))
    left=$(find "$tmp" -maxdepth 1 -name 'q.gguf.tmp-*' | wc -l) # after a clean run: none
    rows+=("quantize $kills 0 $done_ 0 0 0 $half $left")
}
soak_train() {
    local dir=$tmp/train ref=$tmp/train_ref t0 t kills=0 resumes=0 done_=0 bad=0
    local args=(train -t 1 -m "$model" -z "$tok" -d "$text" --method lora --steps 24 --seq-len 128 --batch 4 --heldout 0.05 --eval-max 2 -q --json)
    half=0 left=0
    mkdir -p "$dir" "$ref" # one file name: GGUF's general.name comes from it
    t0=$(now_ms)
    "$bin" "${args[@]}" -o "$ref/model.gguf" >"$tmp/train_ref.json" 2>/dev/null || fail "train: uninterrupted run"
    t=$((($(now_ms) - t0) * 11 / 10))
    while [ "$kills" -lt "$K" ]; do
        [ -e "$dir/model.gguf.ckpt" ] && resumes=$((resumes + 1))
        if killed_at_random "$t" "$tmp/train.json" "$tmp/train.err" \
            "$bin" "${args[@]}" -o "$dir/model.gguf" --checkpoint-every 2 --resume; then
            kills=$((kills + 1))
            check_output "$dir/model.gguf" "$ref/model.gguf"
        else
            done_=$((done_ + 1))
            # resumed or not, the same model and losses as the uninterrupted run
            cmp -s "$dir/model.gguf" "$ref/model.gguf" || bad=$((bad + 1))
            python3 -c "import json,sys; a,b=(json.load(open(f)) for f in sys.argv[1:]); sys.exit(a['train_loss']!=b['train_loss'] or a['heldout_loss']!=b['heldout_loss'])" \
                "$tmp/train_ref.json" "$tmp/train.json" || bad=$((bad + 1))
            rm -f "$dir"/model.gguf*
        fi
        printf '\rtrain: %d kills, %d finished' "$kills" "$done_" >&2
    done
    echo >&2
    # the last run finishes: it removes what killed writers left
    "$bin" "${args[@]}" -o "$dir/model.gguf" --checkpoint-every 2 --resume >"$tmp/train.json" 2>"$tmp/train.err" ||
        fail "train: the last run: $(cat "$tmp/train.err")"
    cmp -s "$dir/model.gguf" "$ref/model.gguf" || bad=$((bad + 1))
    left=$(find "$dir" -maxdepth 1 -name '*.tmp-*' | wc -l)
    rows+=("train $kills $resumes $done_ 0 0 $bad $half $left")
}

start=$(date +%s)
soak_search
soak_quantize
soak_train
printf '%-9s %6s %8s %9s %13s %14s %19s %13s %12s\n' command kills resumes finished records_lost evals_repeated integrity_failures half_written temporaries
for r in "${rows[@]}"; do
    # shellcheck disable=SC2086
    printf '%-9s %6s %8s %9s %13s %14s %19s %13s %12s\n' $r
done
echo "(train's integrity_failures: finished runs whose model or losses differ from an uninterrupted run's)"
echo "$K kills each in $(($(date +%s) - start)) s; files: $tmp"
