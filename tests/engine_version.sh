#!/usr/bin/env bash
# cmake/engine_version.cmake: the engine version follows the sources that
# measure (a kernel, the measurement layer, a public header of theirs, the build
# flags) and not the search (nor its headers), the CLI or the documentation; the file is not
# rewritten when nothing changed. Usage: engine_version.sh CMAKE SOURCE_DIR
set -u
cmake=$1 script=$2/cmake/engine_version.cmake
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
mkdir -p "$tmp"/src/{core,kernels,measure,optimize,cli} "$tmp"/include/aellm
for f in src/core/a.c src/kernels/k.c src/measure/m.c src/optimize/o.c src/cli/c.c \
         include/aellm/h.h include/aellm/search.h CMakeLists.txt README.md; do echo "/* $f */" >"$tmp/$f"; done
ver() { "$cmake" -DSRC="$tmp" -DOUT="$tmp/v.h" -DVERSION=9.9.9 -P "$script" || fail "script"; cat "$tmp/v.h"; }
base=$(ver)
echo "$base" | grep -q '"9.9.9+src\.[0-9a-f]\{16\}"' || fail "format: $base"
touch -d '2000-01-01' "$tmp/v.h"; before=$(stat -c %Y "$tmp/v.h")
[ "$(ver)" = "$base" ] || fail "unstable"
[ "$(stat -c %Y "$tmp/v.h")" = "$before" ] || fail "rewritten though unchanged"
for f in src/optimize/o.c src/cli/c.c include/aellm/search.h README.md; do
    echo "// edit" >>"$tmp/$f"
    [ "$(ver)" = "$base" ] || fail "$f changed the engine version"
done
for f in src/core/a.c src/kernels/k.c src/measure/m.c include/aellm/h.h CMakeLists.txt; do
    cp "$tmp/$f" "$tmp/$f.orig"; echo "// edit" >>"$tmp/$f"
    [ "$(ver)" != "$base" ] || fail "$f did not change the engine version"
    mv "$tmp/$f.orig" "$tmp/$f"
done
[ "$(ver)" = "$base" ] || fail "restored sources give another version"
echo "ok: $base"
