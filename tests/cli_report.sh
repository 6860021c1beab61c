#!/usr/bin/env bash
# `aellm report`: two searches (fixtures written by aellm search --json: one
# with baselines on this machine, one predicted for Llama-2-7B on an A100)
# become a self-contained HTML explorer with the data embedded and nothing
# loaded from the network, a valid SVG and a PNG; bad inputs are one line, a
# non-zero exit, and no output file (nor its temporary) left behind.
# Usage: cli_report.sh AELLM [SHARED_DATA]
set -u
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
fixture=$here/data/report_search.json a100=$here/data/report_search_a100.json
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$bin" report "$fixture" "$a100" -o "$tmp/r.html" --svg "$tmp/r.svg" --png "$tmp/r.png" \
    --title 'a <b>&amp; title' --json >"$tmp/sum.json" 2>"$tmp/err" || fail "report: $(cat "$tmp/err")"
python3 - "$tmp/sum.json" "$tmp/r.html" <<'PY' || fail "summary or embedded data"
import json, re, sys
s = json.load(open(sys.argv[1]))
assert len(s["datasets"]) == 2 and s["points"] == 18, s
assert "Llama-2-7B on a100-80gb" in s["datasets"][1], s
html = open(sys.argv[2]).read()
m = re.search(r'<script type="application/json" id="aellm-data">(.*?)</script>', html, re.S)
assert m, "no embedded data"
data = json.loads(m.group(1))
assert [len(d["points"]) for d in data["datasets"]] == [10, 8], data.keys()
assert data["datasets"][0]["baselines"][0]["point_index"] >= 0
assert "<b>" not in html.split("<body")[1].split("<main")[0], "title not escaped"
PY
# self-contained: no script, stylesheet, image or font fetched from anywhere
grep -Eiq '<(script|img|iframe)[^>]*src=|<link[^>]*href=|url\(|@import|src="https?:|href="https?:' \
    "$tmp/r.html" && fail "the HTML loads something: $(grep -Eio '(src|href)="[^"]*"|url\([^)]*\)' "$tmp/r.html" | head -3)"
if command -v xmllint >/dev/null; then
    xmllint --noout "$tmp/r.svg" 2>"$tmp/err" || fail "invalid SVG: $(head -3 "$tmp/err")"
fi
grep -q '<svg' "$tmp/r.svg" && grep -q '</svg>' "$tmp/r.svg" || fail "not an SVG"
[ "$(head -c 8 "$tmp/r.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "not a PNG"
[ "$(stat -c %s "$tmp/r.png")" -gt 10000 ] || fail "PNG too small to hold a plot"
"$bin" report "$fixture" --svg "$tmp/m.svg" --x memory --y energy >/dev/null 2>"$tmp/err" ||
    fail "memory/energy plot: $(cat "$tmp/err")"
ls "$tmp"/*.tmp "$tmp"/*.html.* "$tmp"/*.svg.* "$tmp"/*.png.* 2>/dev/null && fail "a temporary file left behind"

bad() { # words, args... (must fail with one line naming `words`, writing no output)
    local words=$1; shift
    rm -f "$tmp/out.html" "$tmp/out.svg"
    "$bin" report "$@" >/dev/null 2>"$tmp/bad.err" && fail "accepted $*"
    [ "$(wc -l <"$tmp/bad.err")" = 1 ] || fail "not one line for $*: $(cat "$tmp/bad.err")"
    grep -q -- "$words" "$tmp/bad.err" || fail "'$words' not named for $*: $(cat "$tmp/bad.err")"
    ls "$tmp"/out.* 2>/dev/null && fail "output left behind by $*"
    return 0
}
echo '{"points": [' >"$tmp/broken.json"
echo '{"evaluations": 3}' >"$tmp/other.json"
echo '{"points": [{"acc": 1, "latency_s": 2}]}' >"$tmp/partial.json"
bad "missing.json: cannot open: No such file" "$tmp/missing.json" -o "$tmp/out.html"
bad "broken.json: not valid JSON" "$tmp/broken.json" -o "$tmp/out.html" --svg "$tmp/out.svg"
bad "other.json: not an aellm search result" "$fixture" "$tmp/other.json" -o "$tmp/out.html"
bad "partial.json: point 0 has no number \"memory_bytes\"" "$tmp/partial.json" -o "$tmp/out.html"
bad "nope.db" --store "$tmp/nope.db" -o "$tmp/out.html"
bad "no input" -o "$tmp/out.html"
bad "no output" "$fixture"
bad "unknown objective 'speed'" "$fixture" --svg "$tmp/out.svg" --x speed
bad "unknown option" "$fixture" -o "$tmp/out.html" --nope
[ -e "$tmp/nope.db" ] && fail "--store created a missing store"
"$bin" report --help | grep -q -- '--store' || fail "--help"
echo ok
