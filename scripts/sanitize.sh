#!/usr/bin/env bash
# The test suite under AddressSanitizer + UndefinedBehaviorSanitizer: builds
# with clang into ${BUILD:-build-sanitize} with -DAELLM_SANITIZE=ON and runs
# ctest there (clang: its UBSan writes its reports where ASan's go).
# Every process's reports go to one folder that the suite's last test
# requires empty, so a report from a CLI run inside a shell test fails too.
#   bash scripts/sanitize.sh                 # the whole suite (13 min on 2 cores, and the build)
#   bash scripts/sanitize.sh -R 'file|gguf'  # ctest arguments pass through
#   SANITIZER=thread bash scripts/sanitize.sh -R 'kernels|forward'
#       ThreadSanitizer instead, with LLVM's libomp and its Archer tool, which
#       tells TSan how OpenMP's barriers order the threads (build-tsan)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${SANITIZER:-address}" = thread ]; then
    build=${BUILD:-build-tsan} option=-DAELLM_SANITIZE_THREAD=ON
else
    build=${BUILD:-build-sanitize} option=-DAELLM_SANITIZE=ON
fi
CC=${CC:-clang} cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "$option" >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
start=$(date +%s)
status=0
ctest --test-dir "$build" --output-on-failure "$@" || status=$?
echo "sanitizer suite: $(($(date +%s) - start)) s, exit $status"
exit $status
