#!/usr/bin/env bash
# The soak and fault run (docs/reliability.md): starts its own ptyhubd (loopback, port 0, a temporary HOME
# and secret), loads it for SECONDS (default 60) with everything scripts/soak.py lists, lowers its
# RLIMIT_NOFILE until accept and openpty fail, fills its repos_root (a 4 MiB tmpfs in a private mount
# namespace, when unshare and mount allow one; else that phase is skipped) with a clone that does not fit,
# and checks that its fds, children, zombies and RSS come back to where they were. Exit 1 when they do not,
# when the daemon died, or when a git operation on the full disk did not end as a clear failure.
#
# Usage: scripts/soak.sh [SECONDS] [extra soak.py options]
# The daemon is build-test/src/ptyhubd (built here when missing), or PTYHUB_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
bin="${PTYHUB_BIN:-build-test/src/ptyhubd}"
if [ -z "${PTYHUB_BIN:-}" ]; then
  if [ ! -f build-test/CMakeCache.txt ]; then
    cmake -S . -B build-test -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  cmake --build build-test -j "$(nproc)" --target ptyhubd
fi
exec python3 scripts/soak.py --bin "$bin" --seconds "$seconds" "$@"
