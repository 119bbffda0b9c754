#!/usr/bin/env bash
# Builds and runs every test (unit and integration, with the real daemon, real PTYs and a real
# WebSocket client). With PTYHUB_SANITIZE=1 it builds and runs them under AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
if [ "${PTYHUB_SANITIZE:-0}" = "1" ]; then
  build=build-asan
  flags=(-DCMAKE_BUILD_TYPE=Debug -DPTYHUB_SANITIZE=ON)
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
else
  build=build-test
  flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
fi
cmake -S . -B "$build" -G Ninja "${flags[@]}" >/dev/null
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" --output-on-failure -j 2 "$@"
