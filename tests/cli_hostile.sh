#!/usr/bin/env bash
# Inputs a hostile or careless user gives (issue 18), each a regression test of
# a defect found by trying them: every one must end in one line naming the
# path and the problem, a non-zero exit, no crash, nothing written in the
# wrong place. Runs on the bundled model, so it needs no ../shared.
set -u
bin=$1
src=$(cd "$(dirname "$0")/.." && pwd)
model=$src/models/stories260K/stories260K.bin tok=$src/models/stories260K/tok512.bin
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cd "$tmp" || exit 1
mkdir adir

# must_refuse NAME PATTERN CMD...: non-zero exit (not a signal), one stderr
# line matching PATTERN, nothing on it about memory.
must_refuse() {
    local name=$1 pattern=$2; shift 2
    "$@" >out.txt 2>err.txt
    local rc=$?
    [ $rc -ne 0 ] || fail "$name: exit 0"
    [ $rc -lt 128 ] || fail "$name: killed by signal $((rc - 128)): $(head -c 300 err.txt)"
    grep -qi "out of memory\|AddressSanitizer\|runtime error" err.txt && fail "$name: $(head -c 300 err.txt)"
    grep -q -- "$pattern" err.txt || fail "$name: expected '$pattern' in: $(cat err.txt)"
    echo "ok: $name: $(head -n 1 err.txt)"
}

# A directory where a file is expected is named as one, never sized by ftell.
must_refuse "--config DIR" "adir: is a directory" "$bin" eval -m "$model" -z "$tok" --task stories-ppl --config adir --no-store
must_refuse "space -s DIR" "adir: is a directory" "$bin" space -s adir
must_refuse "space -c DIR" "adir: is a directory" "$bin" space -c adir
must_refuse "quantize --calib DIR" "adir: is a directory" "$bin" quantize -m "$model" -z "$tok" -o q.gguf --type int4 --method gptq --calib adir
[ ! -e q.gguf ] || fail "quantize --calib DIR left q.gguf"
must_refuse "convert -z DIR" "adir: is a directory" "$bin" convert -m "$model" -z adir -o c.gguf
must_refuse "search --transfer-from DIR" "adir.acc.surr: " "$bin" search -m "$model" -z "$tok" --transfer-from adir --budget 3 --db s.db
must_refuse "eval --task DIR" "adir: is a directory" "$bin" eval -m "$model" -z "$tok" --task adir --no-store
must_refuse "perplexity -f DIR" "adir: is a directory" "$bin" perplexity -m "$model" -z "$tok" -f adir
must_refuse "train -d DIR" "adir: is a directory" "$bin" train -m "$model" -z "$tok" -d adir -o t.gguf

# The atomic writer never replaces what is not a regular file (as root,
# `-o /dev/null` used to become a GGUF file; a FIFO stands in for the device).
mkfifo fifo.gguf
must_refuse "quantize -o FIFO" "fifo.gguf: exists and is not a regular file" "$bin" quantize -m "$model" -z "$tok" -o fifo.gguf --type q8_0
[ -p fifo.gguf ] || fail "quantize replaced the FIFO"
must_refuse "convert -o DIR" "adir: exists and is not a regular file" "$bin" convert -m "$model" -z "$tok" -o adir
[ -d adir ] || fail "convert replaced the directory"
ls adir/* >/dev/null 2>&1 && fail "temporary files left in adir"
ls fifo.gguf.* >/dev/null 2>&1 && fail "temporary files left beside the FIFO"

# perplexity's counts must be positive.
head -c 4000 "$src/tasks/data/stories_calib.txt" >t.txt 2>/dev/null || printf 'Once upon a time there was a cat.%.0s\n' {1..50} >t.txt
# (-t 0 is every command's "all cores", so only a negative count is wrong.)
for opt in "-c 0" "-c -5" "-b 0" "-b -1" "-t -2" "--chunks 0" "--chunks -1"; do
    # shellcheck disable=SC2086
    must_refuse "perplexity $opt" "perplexity: " "$bin" perplexity -m "$model" -z "$tok" -f t.txt $opt
done

# eval finds the model unreadable before it creates a store.
must_refuse "eval on a missing model" "nomodel.bin" "$bin" eval -m nomodel.bin --task stories-ppl --db e.db
[ ! -e e.db ] || fail "eval created e.db for a missing model"
printf 'not a model' >bad.bin
must_refuse "eval on a garbage model" "bad.bin" "$bin" eval -m bad.bin -z "$tok" --task stories-ppl --db e.db
[ ! -e e.db ] || fail "eval created e.db for an unreadable model"

# search checks that its outputs can be written before it searches.
must_refuse "search --csv unwritable" "nodir/x.csv" "$bin" search -m "$model" -z "$tok" --budget 3 --db s2.db --csv nodir/x.csv
must_refuse "search --save-surrogates unwritable" "nodir/s" "$bin" search -m "$model" -z "$tok" --budget 3 --db s3.db --save-surrogates nodir/s
must_refuse "search -o unwritable" "nodir/m.gguf" "$bin" search -m "$model" -z "$tok" --budget 3 --db s4.db -o nodir/m.gguf
for db in s2.db s3.db s4.db; do
    [ ! -e $db ] || [ "$(sqlite3 $db 'select count(*) from evaluations' 2>/dev/null || echo 0)" = 0 ] ||
        fail "search evaluated before finding its output unwritable ($db)"
done
echo "all hostile inputs refused"
