#!/usr/bin/env bash
# CTest's fuzz_smoke: builds the libFuzzer harnesses in BUILD_ROOT/fuzz (clang++-19,
# RUNNER_FUZZ=ON, Ninja, -j2), replays every regression input under tests/fuzz/regressions/NAME/,
# then runs each harness for a few seconds from a copy of its seed corpus. Fails on any crash,
# leak, timeout or out-of-memory.
#   tests/fuzz/smoke.sh BUILD_ROOT SOURCE_DIR
set -euo pipefail

build_root=$1
source_dir=$2
build=$build_root/fuzz
seconds=${FUZZ_SMOKE_SECONDS:-5}

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$source_dir" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++-19 -DRUNNER_FUZZ=ON -DBUILD_TESTING=OFF "${launcher[@]}" >/dev/null
cmake --build "$build" -j2 --target fuzzers

failed=()
for corpus in "$source_dir"/tests/fuzz/corpus/*/; do
  name=$(basename "$corpus")
  harness=$build/tests/fuzz/${name}_fuzz
  log=$build/smoke/$name.log
  work=$build/smoke/$name
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp "$corpus"/* "$work/corpus/"

  regressions=()
  if [ -d "$source_dir/tests/fuzz/regressions/$name" ]; then
    for input in "$source_dir/tests/fuzz/regressions/$name"/*; do
      [ -f "$input" ] && regressions+=("$input")
    done
  fi
  if [ ${#regressions[@]} -gt 0 ] &&
    ! "$harness" -rss_limit_mb=2048 -timeout=10 "${regressions[@]}" >"$log.regressions" 2>&1; then
    echo "smoke: $name: a regression input fails (log: $log.regressions)"
    tail -n 30 "$log.regressions"
    failed+=("$name")
    continue
  fi

  # A fixed seed: the same mutations on every machine, so a red run reproduces.
  if "$harness" "$work/corpus" -seed=1 -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="$work/artifacts/" >"$log" 2>&1; then
    echo "smoke: $name: ok (${#regressions[@]} regression inputs, ${seconds}s)"
  else
    echo "smoke: $name: FAILED (log: $log; input in $work/artifacts)"
    tail -n 30 "$log"
    failed+=("$name")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "smoke: failed: ${failed[*]}"
  exit 1
fi
