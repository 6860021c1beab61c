#!/usr/bin/env bash
# The sanitizer build's last test: every ASan/UBSan report any process of the
# suite wrote (tests/CMakeLists.txt points them at one folder) fails the run,
# and is printed so the log shows it.
set -u
dir=$1
shopt -s nullglob
reports=("$dir"/*)
[ ${#reports[@]} -eq 0 ] && { echo "no sanitizer reports"; exit 0; }
for r in "${reports[@]}"; do echo "=== $r"; head -n 40 "$r"; done
echo "FAIL: ${#reports[@]} sanitizer report(s)"
exit 1
