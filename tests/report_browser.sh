#!/usr/bin/env bash
# The explorer runs in a real browser: headless Chromium loads a report of two
# searches and of a store-like overlay, its script must draw points (the page
# sets <body data-rendered="N">) and record no error (window.onerror and
# console.error write into the page), and a screenshot must be a real picture.
# Usage: report_browser.sh AELLM CHROMIUM
set -u
bin=$1 chromium=$2
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
browse() { # flags... : headless, sandbox off (CI runs as root), its own profile
    timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --user-data-dir="$tmp/profile" --virtual-time-budget=5000 "$@" 2>>"$tmp/chromium.log"
}

"$bin" report "$here/data/report_search.json" "$here/data/report_search_a100.json" \
    -o "$tmp/r.html" 2>"$tmp/err" >/dev/null || fail "report: $(cat "$tmp/err")"
browse --dump-dom "file://$tmp/r.html" >"$tmp/dom.html" || fail "chromium: $(tail -3 "$tmp/chromium.log")"
body=$(grep -o '<body[^>]*>' "$tmp/dom.html" | head -1)
n=$(echo "$body" | sed -n 's/.*data-rendered="\([0-9]*\)".*/\1/p')
[ -n "$n" ] && [ "$n" -gt 0 ] || fail "nothing drawn: $body"
[ "$n" = 18 ] || fail "$n points drawn, 18 expected"
echo "$body" | grep -q 'data-errors="0"' ||
    fail "script errors: $(sed -n '/<pre id="errors"/,/<\/pre>/p' "$tmp/dom.html" | head -5)"
grep -q '<pre id="errors" hidden=""></pre>' "$tmp/dom.html" || fail "error box not empty"
grep -q 'class="point"' "$tmp/dom.html" || fail "no point in the DOM"
grep -q 'search, random, inference-only' "$tmp/dom.html" || fail "baseline labels not drawn"
# the A100 search's points: accuracy measured, efficiency predicted there (dashed)
grep -q 'stroke-dasharray="2,1.5"' "$tmp/dom.html" || fail "targeted points not marked"

browse --window-size=1400,1000 --screenshot="$tmp/shot.png" "file://$tmp/r.html" >/dev/null ||
    fail "screenshot: $(tail -3 "$tmp/chromium.log")"
[ "$(head -c 8 "$tmp/shot.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "screenshot not a PNG"
# a blank page compresses to a few KB; a drawn report is tens of KB
[ "$(stat -c %s "$tmp/shot.png")" -gt 30000 ] || fail "screenshot looks blank ($(stat -c %s "$tmp/shot.png") bytes)"
echo "ok: $n points drawn, no script error"
