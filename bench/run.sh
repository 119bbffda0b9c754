#!/usr/bin/env bash
# bench/run.sh: installs what the benchmark needs (apt-get, npm), builds ptyhubd (Release) and the
# local-PTY helper pty_local, runs the whole suite and writes bench/results/results.md and results.json.
#
#   bench/run.sh                     # build the work tree, 3 runs of everything (about 10-13 minutes)
#   BENCH_REF=HEAD bench/run.sh      # build that commit (git archive) instead of the work tree
#   BENCH_DAEMON=/path/ptyhubd bench/run.sh   # measure an existing binary, build only pty_local
#   bench/run.sh --runs 1 --only throughput,echo   # options are passed to bench.mjs
#
# Before/after in one run: --baseline REF (or BENCH_BASELINE_REF=REF) also builds REF (git archive into
# build-bench-baseline/, BENCH_BASELINE_BUILD_DIR) and runs every chosen scenario against both daemons
# in turn (baseline, work tree, baseline, work tree, ...; a fresh daemon each time), then prints a
# before/after table: for fan-out each figure's median and every run's value (peak RSS, per-subscriber
# median/slowest MB/s, aggregate, CPU per GB, complete), for other scenarios the medians side by side.
# BENCH_BASELINE_DAEMON=/path/ptyhubd compares with an existing binary instead. "After" is the work tree,
# or BENCH_REF / BENCH_DAEMON when given.
#
#   bench/run.sh --baseline main --only fanout     # 3 + 3 fan-out runs, about 3-4 minutes plus builds
#
# Scenarios (--only): throughput echo echoMany fanout streams idle churn slow close shutdown cluster upgrade. Other options:
# --runs N, --nice N, --quiet-wait SECONDS, --retries N, --daemon-env K=V, --close-sizes 50,500,2000,
# --shutdown-sizes 1000, --upgrade-sizes 10,200,1000, --upgrade-full-rings 200.
# Traffic goes to 127.0.0.1 only; every step has a timeout. The bench reports figures; it never fails on them.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
build=${BENCH_BUILD_DIR:-$root/build-bench-release}

# --baseline REF (or BENCH_BASELINE_REF) is taken here; every other option goes to bench.mjs.
baseline_ref=${BENCH_BASELINE_REF:-}
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --baseline) [ $# -ge 2 ] || { echo "run.sh: --baseline needs a commit" >&2; exit 2; }; baseline_ref=$2; shift 2 ;;
    --baseline=*) baseline_ref=${1#--baseline=}; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
if [ -n "$baseline_ref" ] && ! git -C "$root" rev-parse --verify -q "$baseline_ref^{commit}" >/dev/null; then
  echo "run.sh: --baseline $baseline_ref: not a commit" >&2; exit 2
fi

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
# build_daemon REF BUILD_DIR TARGETS...: configures and builds REF (git archive into BUILD_DIR/source;
# extracted again only when REF names another commit) or, with REF empty, the work tree.
build_daemon() {
  local ref=$1 dir=$2; shift 2
  local source_dir=$root
  if [ -n "$ref" ]; then
    local commit; commit=$(git -C "$root" rev-parse --verify "$ref^{commit}")
    source_dir=$dir/source
    if [ "$(cat "$source_dir/.bench-commit" 2>/dev/null)" != "$commit" ]; then
      rm -rf "$source_dir" && mkdir -p "$source_dir"
      git -C "$root" archive "$commit" | tar -x -C "$source_dir"
      echo "$commit" > "$source_dir/.bench-commit"
    fi
    mkdir -p "$source_dir/bench"
    cmp -s "$here/CMakeLists.txt" "$source_dir/bench/CMakeLists.txt" || cp "$here/CMakeLists.txt" "$source_dir/bench/"
    cmp -s "$here/pty_local.cpp" "$source_dir/bench/pty_local.cpp" || cp "$here/pty_local.cpp" "$source_dir/bench/"
    grep -q PTYHUB_BUILD_BENCH "$source_dir/CMakeLists.txt" || printf '\nadd_subdirectory(bench)\n' >> "$source_dir/CMakeLists.txt"
    echo "run.sh: building $ref (${commit:0:7}) in $dir" >&2
  fi
  cmake -S "$source_dir" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPTYHUB_BUILD_TESTS=OFF \
    -DPTYHUB_BUILD_BENCH=ON >/dev/null
  ninja -C "$dir" -j2 "$@" >/dev/null
}

# describe REF: "REF (abc1234)"; the work tree: "work tree (abc1234, with uncommitted changes)"
describe() {
  if [ -n "$1" ]; then echo "$1 ($(git -C "$root" rev-parse --short "$1^{commit}"))"; return; fi
  local state=""; [ -n "$(git -C "$root" status --porcelain --untracked-files=no)" ] && state=", with uncommitted changes"
  echo "work tree ($(git -C "$root" rev-parse --short HEAD)$state)"
}

targets=(pty_local)
[ -z "${BENCH_DAEMON:-}" ] && targets+=(ptyhubd)
build_daemon "${BENCH_REF:-}" "$build" "${targets[@]}"
daemon=${BENCH_DAEMON:-$build/src/ptyhubd}
label=${BENCH_DAEMON:-$(describe "${BENCH_REF:-}")}

compare=()
if [ -n "${BENCH_BASELINE_DAEMON:-}" ]; then
  compare=(--baseline-daemon "$BENCH_BASELINE_DAEMON" --baseline-label "$BENCH_BASELINE_DAEMON" --label "$label")
elif [ -n "$baseline_ref" ]; then
  baseline_build=${BENCH_BASELINE_BUILD_DIR:-$root/build-bench-baseline}
  build_daemon "$baseline_ref" "$baseline_build" ptyhubd
  compare=(--baseline-daemon "$baseline_build/src/ptyhubd" --baseline-label "$(describe "$baseline_ref")" --label "$label")
fi

# --- run ---------------------------------------------------------------------------------------------
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true  # 500 connections + 500 PTYs + pidfds
exec node "$here/bench.mjs" --daemon "$daemon" --helper "$build/bench/pty_local" --out "$here/results" \
  ${compare[@]+"${compare[@]}"} ${args[@]+"${args[@]}"}
