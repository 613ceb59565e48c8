#!/usr/bin/env bash
# The runner's own overhead: 200 no-op steps in a chain and 200 independent ones, against
# `make -j` and `ninja` running the same commands through bash. Reports the median wall time
# of several runs, CPU seconds and peak memory, and the ratios runner/make and runner/ninja.
#
#   bench/overhead.sh [RUNS]      (needs build/runner: scripts/build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
steps=200
jobs=$(nproc)
runner=${RUNNER:-$PWD/build/runner}  # RUNNER=PATH: another build, to compare
[ -x "$runner" ] || { echo "overhead.sh: build first (scripts/build.sh)" >&2; exit 1; }
for tool in make ninja python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "overhead.sh: $tool not found (scripts/deps.sh)" >&2; exit 1; }
done

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# What one new file costs on $out's file system, in microseconds (the median of 200): the
# runner makes one per step (its live logs/STEP.log), make none. A tmpfs takes about 8; this
# machine's ext4 without a journal 15 to 30 when quiet, but 200 to 570 for minutes after a
# large deletion (anything's, this benchmark's own clean-up of a run just before included),
# when every new inode skips, one by one, those freed recently (ext4's recently_deleted).
create_cost() {
  python3 - "$(mktemp -d "$out/create.XXXXXX")" <<'PY'
import os, statistics, sys, time
times = []
for i in range(200):
    start = time.perf_counter()
    os.close(os.open(f"{sys.argv[1]}/f{i}", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644))
    times.append(time.perf_counter() - start)
print(round(statistics.median(times) * 1e6))
PY
}
create_before=$(create_cost)

# The same command everywhere: bash without start-up files, as the runner runs a `run` step.
cmd='bash --noprofile --norc -eo pipefail -c true'

write_inputs() {  # $1 = chain | parallel
  local shape=$1 dir=$out/$1 i
  mkdir -p "$dir"
  {
    echo "version: 1"
    echo "project: bench"
    echo "steps:"
    for ((i = 1; i <= steps; i++)); do
      if [ "$shape" = chain ]; then
        echo "  - {id: s$i, run: \"true\"}"
      else
        echo "  - {id: s$i, needs: [], run: \"true\"}"
      fi
    done
  } >"$dir/pipeline.yml"
  {
    echo "all: s$steps"
    [ "$shape" = parallel ] && { printf 'all:'; for ((i = 1; i <= steps; i++)); do printf ' s%d' "$i"; done; echo; }
    echo ".PHONY: all$(for ((i = 1; i <= steps; i++)); do printf ' s%d' "$i"; done)"
    for ((i = 1; i <= steps; i++)); do
      if [ "$shape" = chain ] && [ "$i" -gt 1 ]; then echo "s$i: s$((i - 1))"; else echo "s$i:"; fi
      printf '\t@%s\n' "$cmd"
    done
  } >"$dir/Makefile"
  {
    echo "rule sh"
    echo "  command = $cmd"
    for ((i = 1; i <= steps; i++)); do
      if [ "$shape" = chain ] && [ "$i" -gt 1 ]; then echo "build s$i: sh s$((i - 1))"; else echo "build s$i: sh"; fi
    done
    printf 'build all: phony'; for ((i = 1; i <= steps; i++)); do printf ' s%d' "$i"; done; echo
    echo "default all"
  } >"$dir/build.ninja"
}

# Runs "$@" once in $dir and appends "wall_us user_s sys_s max_rss_kb" to the file $1.
run_once() {
  local results=$1 dir=$2; shift 2
  local start end
  start=$(date +%s%N)
  (cd "$dir" && /usr/bin/time -o "$out/time" -f '%U %S %M' "$@" >/dev/null 2>&1)
  end=$(date +%s%N)
  echo "$(( (end - start) / 1000 )) $(tail -n 1 "$out/time")" >>"$results"
  # Moved aside, not deleted: this machine's ext4 has no journal, and there a new inode
  # skips, one by one, every inode freed in the last minute (ext4's recently_deleted), so
  # deleting a run's files just before the next run made the 200-step chain take 0.44 s
  # instead of 0.25 s. A team's state directory is not emptied before every build either.
  # Deleted once, at exit, after all the timing.
  if [ -d "$dir/.runner" ]; then mv "$dir/.runner" "$(mktemp -d "$out/kept.XXXXXX")/"; fi
}

# "median_wall_s cpu_s max_rss_kb" of the runs in file $1 (CPU and memory of the median run).
median() {
  sort -n "$1" | sed -n "$(( (runs + 1) / 2 ))p" |
    awk '{printf "%.3f %.3f %d\n", $1 / 1e6, $2 + $3, $4}'
}

printf '%-9s %-7s %9s %9s %10s\n' shape tool wall_s cpu_s max_rss_kb
for shape in chain parallel; do
  write_inputs "$shape"
  dir=$out/$shape
  # Interleaved, run by run: a machine whose speed drifts (a shared VM) moves every tool's
  # figures alike, not one tool's.
  for ((i = 0; i < runs; i++)); do
    run_once "$out/$shape.runner" "$dir" "$runner" run pipeline.yml -j "$jobs" --branch bench \
      --state-dir "$dir/.runner"
    run_once "$out/$shape.make" "$dir" make -s -j "$jobs" -f Makefile
    # ninja always reruns: the outputs are never created.
    run_once "$out/$shape.ninja" "$dir" ninja -j "$jobs"
  done
  read -r r_wall r_cpu r_rss < <(median "$out/$shape.runner")
  read -r m_wall m_cpu m_rss < <(median "$out/$shape.make")
  read -r n_wall n_cpu n_rss < <(median "$out/$shape.ninja")
  printf '%-9s %-7s %9s %9s %10s\n' "$shape" runner "$r_wall" "$r_cpu" "$r_rss"
  printf '%-9s %-7s %9s %9s %10s\n' "$shape" make "$m_wall" "$m_cpu" "$m_rss"
  printf '%-9s %-7s %9s %9s %10s\n' "$shape" ninja "$n_wall" "$n_cpu" "$n_rss"
  ratios+=("$(awk -v s="$shape" -v r="$r_wall" -v m="$m_wall" -v n="$n_wall" -v rc="$r_cpu" -v mc="$m_cpu" -v nc="$n_cpu" \
    'BEGIN {printf "%-9s wall runner/make %.2f  runner/ninja %.2f   cpu runner/make %.2f  runner/ninja %.2f", s, r/m, r/n, rc/mc, rc/nc}')")
done
echo
echo "ratios ($steps steps, -j $jobs, median of $runs runs):"
printf '%s\n' "${ratios[@]}"
echo "one new file on $(df --output=target "$out" | tail -n 1) ($(stat -f -c %T "$out")," \
  "where the runs were): ${create_before} us before the runs, $(create_cost) us after"
