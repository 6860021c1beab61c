#!/usr/bin/env bash
# The CLI end to end on stories260K: greedy output of the llama2.c file and of
# the GGUF that `aellm convert` writes both equal llama2.c's reference text;
# bad input gives a one-line error and a non-zero exit. Skips (77) without data.
set -u
bin=$1 data=$2 dir=$2/stories260K
[ -f "$dir/stories260K.bin" ] || { echo "skip: $dir absent"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$bin" generate -m "$dir/stories260K.bin" -z "$dir/tok512.bin" --temp 0 -n 200 -q >"$tmp/a.txt" || fail "generate (llama2.c)"
cmp "$tmp/a.txt" "$dir/expected_greedy_200.txt" || fail "llama2.c greedy output differs"
"$bin" convert -m "$dir/stories260K.bin" -z "$dir/tok512.bin" -o "$tmp/m.gguf" 2>/dev/null || fail "convert"
"$bin" generate -m "$tmp/m.gguf" --temp 0 -n 200 -q >"$tmp/b.txt" || fail "generate (gguf)"
cmp "$tmp/b.txt" "$dir/expected_greedy_200.txt" || fail "GGUF greedy output differs"
"$bin" generate -m "$tmp/m.gguf" --temp 0 -n 5 --json | grep -q '"generated_tokens"' || fail "--json"

# bad input: one line on stderr, non-zero exit, no output file left behind
check_err() { # expected-substring, command...
    local want=$1; shift
    "$@" >/dev/null 2>"$tmp/err" && fail "succeeded: $*"
    [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "not one line: $(cat "$tmp/err")"
    grep -q -- "$want" "$tmp/err" || fail "message lacks '$want': $(cat "$tmp/err")"
}
printf 'GGUF\x09\x00\x00\x00' >"$tmp/badver.gguf"
check_err "version" "$bin" info -m "$tmp/badver.gguf"
head -c 1000 "$tmp/m.gguf" >"$tmp/trunc.gguf"
check_err "trunc.gguf" "$bin" generate -m "$tmp/trunc.gguf" -n 1
check_err "nosuch" "$bin" generate -m "$tmp/nosuch.bin" -n 1
check_err "unknown option" "$bin" generate --bogus
check_err "not a valid integer" "$bin" generate -n abc
check_err "unknown type" "$bin" convert -m "$dir/stories260K.bin" -o "$tmp/x.gguf" --type q3_z
[ -e "$tmp/x.gguf" ] && fail "convert left a file after failing"
for c in demo generate perplexity bench convert info mkmodel; do
    "$bin" $c --help | grep -q usage || fail "$c --help"
done
echo "cli_generate: all checks passed"
