#!/usr/bin/env bash
# `aellm space`: the bundled space counts 1896414 valid configurations (derived
# by hand in tests/test_space.c); a configuration is checked with one-line
# errors naming the knob or the rule; equivalent configurations share an
# identity.
set -u
bin=$1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$bin" space --json | grep -q '"valid_points":[[:space:]]*1896414' || fail "valid point count"
"$bin" space --help | grep -q -- "--config" || fail "no --help"
echo '{"inference": {"weights": "int4", "group": 128}}' >"$tmp/a.json"
echo '{"inference": {"group": 128, "weights": "int4", "act_order": true}}' >"$tmp/b.json"
a=$("$bin" space --config "$tmp/a.json" | sed -n 's/^sha256 //p')
b=$("$bin" space --config "$tmp/b.json" | sed -n 's/^sha256 //p')
[ -n "$a" ] && [ "$a" = "$b" ] || fail "act_order is inactive without gptq: identities differ ($a vs $b)"
bad() { # words, config text
    echo "$2" >"$tmp/bad.json"
    "$bin" space --config "$tmp/bad.json" >/dev/null 2>"$tmp/err" && fail "accepted $2"
    [ "$(wc -l <"$tmp/err")" = 1 ] || fail "not one line: $(cat "$tmp/err")"
    grep -q -- "$1" "$tmp/err" || fail "'$1' not named: $(cat "$tmp/err")"
}
bad "inference.wieghts" '{"inference": {"wieghts": "int4"}}'
bad "inference.group" '{"inference": {"weights": "int4", "group": 48}}'
bad "SmoothQuant" '{"inference": {"weights": "int4", "method": "smoothquant"}}'
bad "QLoRA trains adapters over a 4-bit base" '{"finetuning": {"method": "qlora"}}'
bad "architecture.attention" '{"architecture": {"attention": "mlaa"}}'
bad "latent attention keeps an f32 latent cache" '{"architecture": {"attention": "mla"}, "inference": {"kv_cache": "q8_0"}}'
bad "architecture.moe_top_k" '{"architecture": {"moe_experts": 2, "moe_top_k": 4}}'
bad "malformed" '{"inference": '
echo "ok"
