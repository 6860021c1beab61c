#!/usr/bin/env bash
# `aellm quantize` end to end on stories260K: every precision and method
# writes a GGUF that generate and perplexity run; the 172-wide FFN rows get a
# padded last group and the report says so; the options are in the file's
# metadata; bad input gives one line, a non-zero exit and no file. Skips (77)
# without data.
set -u
bin=$1 data=$2 dir=$2/stories260K
val=$data/tinystories/tinystories_val.txt
[ -f "$dir/stories260K.bin" ] && [ -f "$val" ] || { echo "skip: data absent"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
head -c 16384 "$val" >"$tmp/eval.txt"
"$bin" convert -m "$dir/stories260K.bin" -z "$dir/tok512.bin" -o "$tmp/f32.gguf" 2>/dev/null || fail "convert"
ppl() { "$bin" perplexity -m "$1" -f "$tmp/eval.txt" -c 256 --json | sed -n 's/.*"ppl":[[:space:]]*\([0-9.]*\).*/\1/p'; }
base=$(ppl "$tmp/f32.gguf")

calib=(--calib "$val" --calib-skip 400000 --calib-tokens 1024 --calib-ctx 128)
run() { # name, quantize args... : quantize, then PPL must be finite and within 2x of F32's
    local name=$1; shift
    "$bin" quantize -m "$tmp/f32.gguf" -o "$tmp/$name.gguf" "$@" --json >"$tmp/$name.json" 2>"$tmp/$name.err" ||
        fail "quantize $name: $(cat "$tmp/$name.err")"
    local p; p=$(ppl "$tmp/$name.gguf")
    [ -n "$p" ] || fail "$name: no perplexity"
    python3 -c "import sys; sys.exit(0 if 0 < $p < 2 * $base else 1)" || fail "$name: PPL $p vs F32 $base"
    echo "$name: PPL $p (F32 $base)"
}
run q4_0_rtn --type int4 --group 32
run q4_0_gptq --type int4 --group 32 --method gptq "${calib[@]}"
run g128_awq --type int4 --group 128 --method awq "${calib[@]}"
run int8_sq --type int8 --method smoothquant "${calib[@]}"
run fp8 --type fp8 --fp8-scale tensor
run nf4 --type nf4

# q4_0 where rows are whole blocks, int4s_g32 (padded) for the 172-wide down rows
grep -q '"blk.0.ffn_down.weight",[^}]*"type":[[:space:]]*"int4s_g32"' <(tr -d '\n' <"$tmp/q4_0_rtn.json") ||
    fail "ffn_down not int4s_g32: $(cat "$tmp/q4_0_rtn.json")"
grep -q '"blk.0.attn_q.weight",[^}]*"type":[[:space:]]*"q4_0"' <(tr -d '\n' <"$tmp/q4_0_rtn.json") ||
    fail "attn_q not q4_0"
grep -q 'note' "$tmp/q4_0_rtn.json" || fail "no note about the padded group"
"$bin" info -m "$tmp/q4_0_gptq.gguf" --json | grep -q 'aellm.quantize' || fail "options not in metadata"
"$bin" info -m "$tmp/q4_0_gptq.gguf" --json | grep -q 'gptq' || fail "method not in metadata"
"$bin" generate -m "$tmp/g128_awq.gguf" --temp 0 -n 20 -q >/dev/null || fail "generate awq"
"$bin" bench -m "$tmp/int8_sq.gguf" -p 16 -n 8 -r 1 --no-bandwidth --json | grep -q tg_tps || fail "bench int8"
# the roofline's bytes a token reads, in each tensor's stored type: the int8
# file keeps its embedding f32; a decoded token reads one row of it, and all
# of it when it is also the output (tied, as stories260K's is)
"$bin" info -m "$tmp/int8_sq.gguf" --json >"$tmp/info.json" || fail "info int8"
"$bin" bench -m "$tmp/int8_sq.gguf" -p 0 -n 8 -r 1 --json >"$tmp/bench.json" || fail "bench int8 roofline"
python3 - "$tmp/info.json" "$tmp/bench.json" <<'PY' || fail "decode bytes"
import json, sys
info, bench = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
names = [t["name"] for t in info["tensors"]]
want = 0.0
for t in info["tensors"]:
    if t["name"] == "token_embd.weight" and "output.weight" not in names:
        want += t["bytes"]
    rows = t["shape"][1] if len(t["shape"]) > 1 else 1
    want += t["bytes"] / rows if t["name"] == "token_embd.weight" else t["bytes"]
want += bench["kv_bytes"] / 8 * (8 / 2)  # n_ctx 8; positions 0..7 on average half full
got = bench["decode_bytes_per_token"]
print("decode bytes per token %.0f, from the tensors %.0f" % (got, want))
assert abs(got - want) < 1, (got, want)
assert bench["mem_bw_best_pass"] >= bench["mem_bw_bytes_per_s"]
PY

# q4_0 matrices run in the decode layout (q4_0_r16) unless AELLM_REPACK=0: the
# ones whose rows come in whole groups of 16 (not the embedding, read by row;
# the output is tied), and perplexity is the same either way
"$bin" info -m "$tmp/q4_0_rtn.gguf" --json >"$tmp/info_q4.json" || fail "info q4_0"
"$bin" bench -m "$tmp/q4_0_rtn.gguf" -p 16 -n 8 -r 1 --no-bandwidth --json >"$tmp/r16.json" || fail "bench q4_0"
AELLM_REPACK=0 "$bin" bench -m "$tmp/q4_0_rtn.gguf" -p 16 -n 8 -r 1 --no-bandwidth --json >"$tmp/plain.json" ||
    fail "bench q4_0 plain"
python3 - "$tmp/info_q4.json" "$tmp/r16.json" "$tmp/plain.json" <<'PY' || fail "repacked count"
import json, sys
info, r16, plain = (json.load(open(a)) for a in sys.argv[1:4])
want = sum(1 for t in info["tensors"] if t["type"] == "q4_0" and t["name"] != "token_embd.weight"
           and len(t["shape"]) > 1 and t["shape"][1] % 16 == 0)
print("q4_0 matrices repacked %d of %d expected; plain %d" % (r16["q4_0_repacked"], want, plain["q4_0_repacked"]))
assert want > 0 and r16["q4_0_repacked"] == want and plain["q4_0_repacked"] == 0
PY
[ "$(ppl "$tmp/q4_0_rtn.gguf")" = "$(export AELLM_REPACK=0; ppl "$tmp/q4_0_rtn.gguf")" ] ||
    fail "ppl differs with the decode layout"

check_err() { # expected-substring, command...
    local want=$1; shift
    "$@" >/dev/null 2>"$tmp/err" && fail "succeeded: $*"
    [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "not one line: $(cat "$tmp/err")"
    grep -q -- "$want" "$tmp/err" || fail "message lacks '$want': $(cat "$tmp/err")"
}
q=("$bin" quantize -m "$tmp/f32.gguf" -o "$tmp/bad.gguf")
check_err "unknown weight type 'int3'" "${q[@]}" --type int3
check_err "group" "${q[@]}" --type int4 --group 48
check_err "group" "${q[@]}" --type int8 --group 64
check_err "needs --calib" "${q[@]}" --type int4 --method gptq
check_err "unknown --method" "${q[@]}" --type int4 --method magic
check_err "nosuch" "${q[@]}" --type int4 --method gptq --calib "$tmp/nosuch.txt"
check_err "past its end" "${q[@]}" --type int4 --method awq --calib "$tmp/eval.txt" --calib-skip 99999999
[ -e "$tmp/bad.gguf" ] && fail "a failed quantize left a file"
"$bin" quantize --help | grep -q usage || fail "--help"
echo "cli_quantize: all checks passed"
