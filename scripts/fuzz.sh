#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang 14 (build dir build-fuzz, -DPTYHUB_FUZZ=ON) and runs
# them: every target, or only TARGET, for SECONDS each (default 30), starting from the seed corpus in
# fuzz/corpus/<target>/ and its dictionary fuzz/<target>.dict. New inputs are kept in
# build-fuzz/corpus/<target>/ (never written back to the repository).
#
# Fails (exit 1) on any crash, timeout, leak or sanitizer report: the crashing input is printed into the
# log as hex and base64 and kept under build-fuzz/artifacts/<target>/. Per target it prints the
# executions and executions per second (docs/reliability.md).
#
# Usage: scripts/fuzz.sh [TARGET] [SECONDS]     TARGET "" or "all" means every target.
# Environment: PTYHUB_FUZZ_JOBS (default 1) runs that many targets at once.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${1:-}"
seconds="${2:-30}"
[ "$target" = "all" ] && target=""
build=build-fuzz

# target:max_len — the largest input worth trying for each parser.
targets=(
  envelope:8192
  jwt:8192
  output_frame:4096
  request_head:16384
  git:4096
  config:8192
  handoff_state:8192
  redis_url:512
  redis_entries:8192
)

selected=()
for entry in "${targets[@]}"; do
  name="${entry%%:*}"
  if [ -z "$target" ] || [ "$target" = "$name" ] || [ "$target" = "${name}_fuzz" ]; then selected+=("$entry"); fi
done
if [ ${#selected[@]} -eq 0 ]; then
  echo "fuzz.sh: unknown target '$target' (known: ${targets[*]%%:*})" >&2
  exit 2
fi

scripts/install-deps.sh
export CC=clang-14 CXX=clang++-14
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPTYHUB_FUZZ=ON -DPTYHUB_BUILD_TESTS=OFF \
  -DPTYHUB_WEB_CLIENT=OFF >/dev/null
build_targets=()
for entry in "${selected[@]}"; do build_targets+=("${entry%%:*}_fuzz"); done
cmake --build "$build" -j "$(nproc)" --target "${build_targets[@]}"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

# Prints a kept input as hex and base64, so the log alone is enough to reproduce it.
show_input() {
  local file="$1"
  echo "---- input $file ($(stat -c %s "$file") bytes)"
  echo "hex:"
  od -An -tx1 -v "$file" | head -c 65536
  echo "base64:"
  base64 -w 76 "$file" | head -c 65536
  echo
}

# Runs one target for $seconds; returns 1 on any finding.
run_one() {
  local name="$1" max_len="$2"
  local bin="$build/fuzz/${name}_fuzz" corpus="$build/corpus/$name" artifacts="$build/artifacts/$name"
  local log="$build/logs/$name.log" dict=()
  mkdir -p "$corpus" "$artifacts" "$build/logs"
  rm -f "$artifacts"/*
  [ -f "fuzz/$name.dict" ] && dict=(-dict="fuzz/$name.dict")
  local status=0
  # -timeout=25: an input that runs for 25 s is a finding; a shorter stall can be the machine's (a virtual
  # machine paused for 12 s stopped two targets at once in one long run), and slow units alone are not kept
  # as findings.
  "$bin" "${dict[@]}" -max_len="$max_len" -max_total_time="$seconds" -timeout=25 -report_slow_units=60 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" "fuzz/corpus/$name" >"$log" 2>&1 || status=$?
  local runs rate
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  printf 'fuzz: %-14s %10s execs  %7s exec/s  %4ss  corpus %s files\n' "$name" "${runs:-?}" "${rate:-?}" "$seconds" \
    "$(find "$corpus" -type f | wc -l)"
  local found=("$artifacts"/*)
  if [ "$status" -ne 0 ] || [ -e "${found[0]}" ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log"; then
    echo "fuzz: $name FAILED (exit $status); its log:" >&2
    grep -vE '^#[0-9]+ +(NEW|REDUCE|pulse|INITED)' "$log" | tail -80 >&2
    for file in "${found[@]}"; do [ -e "$file" ] && show_input "$file" >&2; done
    return 1
  fi
}

failed=0
jobs="${PTYHUB_FUZZ_JOBS:-1}"
if [ "$jobs" -le 1 ]; then
  for entry in "${selected[@]}"; do run_one "${entry%%:*}" "${entry##*:}" || failed=1; done
else
  pids=()
  for entry in "${selected[@]}"; do
    run_one "${entry%%:*}" "${entry##*:}" &
    pids+=($!)
    if [ ${#pids[@]} -ge "$jobs" ]; then wait "${pids[0]}" || failed=1; pids=("${pids[@]:1}"); fi
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
fi
if [ "$failed" -ne 0 ]; then
  echo "fuzz: FAILED (inputs above, files under $build/artifacts/)" >&2
  exit 1
fi
echo "fuzz: all clean"
