#!/usr/bin/env bash
# Runs every libFuzzer harness (tests/fuzz) for SECONDS each (default 180), two at a time, from a
# copy of its seed corpus. Builds build/fuzz first (clang++-19, RUNNER_FUZZ=ON). Crashes, leaks,
# timeouts and OOMs land in build/fuzz/findings/NAME/ with the log in build/fuzz/findings/NAME.log.
#   scripts/fuzz.sh [SECONDS] [NAME...]
set -euo pipefail

seconds=${1:-180}
shift || true
source_dir=$(cd "$(dirname "$0")/.." && pwd)
build=$source_dir/build/fuzz
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$source_dir" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++-19 -DRUNNER_FUZZ=ON -DBUILD_TESTING=OFF "${launcher[@]}" >/dev/null
cmake --build "$build" -j2 --target fuzzers

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for dir in "$source_dir"/tests/fuzz/corpus/*/; do names+=("$(basename "$dir")"); done
fi

run() {
  local name=$1
  local findings=$build/findings/$name corpus=$build/corpus/$name
  mkdir -p "$findings" "$corpus"
  cp -n "$source_dir/tests/fuzz/corpus/$name"/* "$corpus"/ 2>/dev/null || true
  # -fork with -ignore_crashes keeps going after a finding, so one run reports all it can.
  if "$build/tests/fuzz/${name}_fuzz" "$corpus" -max_total_time="$seconds" -rss_limit_mb=2048 \
    -timeout=10 -artifact_prefix="$findings/" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 \
    -ignore_ooms=1 >"$build/findings/$name.log" 2>&1; then
    :
  fi
  local found
  found=$(find "$findings" -type f | wc -l)
  echo "fuzz.sh: $name: ${seconds}s, $found finding(s) in $findings"
}

pids=()
for name in "${names[@]}"; do
  run "$name" &
  pids+=($!)
  if [ ${#pids[@]} -ge 2 ]; then
    wait "${pids[0]}"
    pids=("${pids[@]:1}")
  fi
done
for pid in "${pids[@]}"; do wait "$pid"; done
total=$(find "$build/findings" -mindepth 2 -type f | wc -l)
echo "fuzz.sh: $total finding(s) under $build/findings"
[ "$total" -eq 0 ]
