#!/usr/bin/env bash
# bench/run.sh: installs what the benchmark needs (apt-get, npm), builds ptyhubd (Release) and the
# local-PTY helper pty_local, runs the whole suite and writes bench/results/results.md and results.json.
#
#   bench/run.sh                     # build the work tree, 3 runs of everything (about 10-13 minutes)
#   BENCH_REF=HEAD bench/run.sh      # build that commit (git archive) instead of the work tree
#   BENCH_DAEMON=/path/ptyhubd bench/run.sh   # measure an existing binary, build only pty_local
#   bench/run.sh --runs 1 --only throughput,echo   # options are passed to bench.mjs
#
# Scenarios (--only): throughput echo echoMany fanout streams idle churn slow. Other options:
# --runs N, --nice N, --quiet-wait SECONDS, --retries N, --daemon-env K=V.
# Traffic goes to 127.0.0.1 only; every step has a timeout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
build=${BENCH_BUILD_DIR:-$root/build-bench-release}

# --- what it needs -----------------------------------------------------------------------------------
bash "$root/scripts/install-deps.sh"
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 18 ] || ! command -v npm >/dev/null; then
  echo "run.sh: installing nodejs and npm" >&2
  export DEBIAN_FRONTEND=noninteractive
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

# --- build -------------------------------------------------------------------------------------------
source_dir=$root
if [ -n "${BENCH_REF:-}" ]; then
  source_dir=$build/source
  rm -rf "$source_dir" && mkdir -p "$source_dir"
  git -C "$root" archive "$BENCH_REF" | tar -x -C "$source_dir"
  mkdir -p "$source_dir/bench"
  cp "$here/CMakeLists.txt" "$here/pty_local.cpp" "$source_dir/bench/"
  grep -q PTYHUB_BUILD_BENCH "$source_dir/CMakeLists.txt" || printf '\nadd_subdirectory(bench)\n' >> "$source_dir/CMakeLists.txt"
  echo "run.sh: building $BENCH_REF ($(git -C "$root" rev-parse --short "$BENCH_REF"))" >&2
fi
cmake -S "$source_dir" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPTYHUB_BUILD_TESTS=OFF \
  -DPTYHUB_BUILD_BENCH=ON >/dev/null
targets=(pty_local)
[ -z "${BENCH_DAEMON:-}" ] && targets+=(ptyhubd)
ninja -C "$build" -j2 "${targets[@]}" >/dev/null
daemon=${BENCH_DAEMON:-$build/src/ptyhubd}

# --- run ---------------------------------------------------------------------------------------------
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true  # 500 connections + 500 PTYs + pidfds
exec node "$here/bench.mjs" --daemon "$daemon" --helper "$build/bench/pty_local" --out "$here/results" "$@"
