#!/usr/bin/env bash
# `mpirun -n 3 aellm search` (rank 0 searching, two workers) with the
# deterministic stand-in evaluator: the store ends with the same
# configurations as a serial search with the same seed and --batch 2, none
# evaluated twice; a worker's evaluating process killed with SIGKILL
# mid-evaluation costs no record (its configuration goes to another rank);
# a worker rank killed outright is noticed by its silence and costs none
# either. Skips (77) without mpirun or an MPI build.
set -u
bin=$1
src=$(cd "$(dirname "$0")/.." && pwd)
standin=$src/scripts/evaluators/standin
command -v mpirun >/dev/null || { echo "skip: mpirun absent"; exit 77; }
command -v sqlite3 >/dev/null && command -v python3 >/dev/null || { echo "skip: sqlite3/python3 absent"; exit 77; }
"$bin" --version | grep -q "not built with MPI" && { echo "skip: aellm built without MPI"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
export OMP_NUM_THREADS=1 TMPDIR=$tmp
args=(search --evaluator "$standin" -t 1 --budget 14 --seed 3 --json)
configs() { sqlite3 "$1" 'select config_hash from evaluations order by 1'; }
mpi() { # db, log, extra args
    local db=$1 log=$2; shift 2
    STANDIN_LOG=$log STANDIN_SLEEP=0.4 timeout 600 mpirun --allow-run-as-root --oversubscribe \
        --enable-recovery -n 3 "$bin" "${args[@]}" --db "$db" "$@"
}
# The job process (an aellm child of a worker rank) that runs the stand-in
# whose pid is on the log's line N, and the worker rank above it.
job_of() { # pid -> the first aellm ancestor
    local p=$1
    while [ "$p" -gt 1 ]; do
        [ "$(cat /proc/"$p"/comm 2>/dev/null)" = aellm ] && { echo "$p"; return; }
        p=$(awk '{print $4}' /proc/"$p"/stat 2>/dev/null || echo 1)
    done
}
kill_at() { # log, line, what (job|rank) -> kills, prints the pid
    local log=$1 line=$2 what=$3 pid job
    for _ in $(seq 600); do
        [ "$(wc -l <"$log" 2>/dev/null || echo 0)" -ge "$line" ] && break
        sleep 0.1
    done
    pid=$(sed -n "${line}p" "$log" | awk '{print $2}')
    job=$(job_of "$pid")
    [ -n "$job" ] || return 1
    [ "$what" = rank ] && job=$(awk '{print $4}' /proc/"$job"/stat)
    kill -9 "$job" && echo "$job"
}

# ---- serial, batches of 2 ----
STANDIN_LOG=$tmp/serial.log "$bin" "${args[@]}" --db "$tmp/serial.db" --batch 2 >/dev/null 2>"$tmp/serial.err" ||
    fail "serial: $(tail -3 "$tmp/serial.err")"
configs "$tmp/serial.db" >"$tmp/serial.txt"
[ "$(wc -l <"$tmp/serial.txt")" = 14 ] || fail "serial: $(wc -l <"$tmp/serial.txt") records"

# ---- three ranks, a job process killed mid-evaluation ----
: >"$tmp/mpi.log"
kill_at "$tmp/mpi.log" 6 job >"$tmp/killed" &
killer=$!
mpi "$tmp/mpi.db" "$tmp/mpi.log" >"$tmp/mpi.json" 2>"$tmp/mpi.err" || fail "mpirun: $(tail -5 "$tmp/mpi.err")"
wait $killer || fail "the job process to kill was not found"
grep -q "distributed: 2 worker ranks on 1 node" "$tmp/mpi.err" || fail "no distributed banner: $(head -5 "$tmp/mpi.err")"
grep -q "lost a configuration (its process was killed by signal 9" "$tmp/mpi.err" ||
    fail "the killed job was not reported: $(grep -v '^ ' "$tmp/mpi.err" | tail -5)"
configs "$tmp/mpi.db" >"$tmp/mpi.txt"
diff "$tmp/serial.txt" "$tmp/mpi.txt" >/dev/null || fail "mpirun's configurations differ from the serial --batch 2 search"
[ "$(sqlite3 "$tmp/mpi.db" 'select count(distinct config_hash) from evaluations')" = 14 ] || fail "a configuration stored twice"
# every configuration ran once, the killed one twice (killed, then again)
[ "$(wc -l <"$tmp/mpi.log")" = 15 ] || fail "$(wc -l <"$tmp/mpi.log") evaluator runs for 14 records and one kill"
[ "$(awk '{print $1}' "$tmp/mpi.log" | sort | uniq -d | wc -l)" = 1 ] || fail "a configuration evaluated twice that was not killed"
[ "$(sqlite3 "$tmp/mpi.db" "select count(*) from evaluations where json_extract(record_json, '\$.placement.ranks_on_node') = 3")" = 14 ] ||
    fail "records do not say how many ranks shared the node"

# ---- a worker rank killed outright: noticed by its silence ----
: >"$tmp/rank.log"
kill_at "$tmp/rank.log" 6 rank >"$tmp/killed" &
killer=$!
mpi "$tmp/rank.db" "$tmp/rank.log" --worker-silence 5 >"$tmp/rank.json" 2>"$tmp/rank.err" ||
    fail "mpirun with a rank killed: $(tail -5 "$tmp/rank.err")"
wait $killer || fail "the worker rank to kill was not found"
grep -q "silent for 5 s: given up on" "$tmp/rank.err" || fail "the dead rank was not noticed: $(grep -v '^ ' "$tmp/rank.err" | tail -5)"
configs "$tmp/rank.db" | diff "$tmp/serial.txt" - >/dev/null || fail "with a rank killed, the configurations differ"
echo "ok: mpirun -n 3 = serial --batch 2 (14 configurations); a killed job and a killed rank cost no record"
