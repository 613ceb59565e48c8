#!/usr/bin/env bash
# The step cache (SPEC section 8), measured two ways:
#  (a) the example pipeline (pipelines/example.yml) built twice in a row in a fresh clone: the
#      second build restores compile, test and lint from the cache and runs the rest (stamp,
#      zip, bake, params, upload). Reports both wall times, the ratio second/first, and what
#      each step of the second build took.
#  (b) the cost of keying a tree of 10,000 files: cold (no stat data: every file read and
#      hashed) and with the stat data cached (nothing read), as the step's log reports it.
# Medians of RUNS runs.
#
#   bench/cache.sh [RUNS]      (needs build/runner: scripts/build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
runner=$PWD/build/runner
[ -x "$runner" ] || { echo "cache.sh: build first (scripts/build.sh)" >&2; exit 1; }
command -v bc >/dev/null && command -v python3 >/dev/null ||
  { echo "cache.sh: needs bc and python3 (scripts/deps.sh)" >&2; exit 1; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

now() { date +%s.%N; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# A fresh Git repository holding the project's pipelines/, as tests/e2e_util.h makes it.
example_repo() {
  local dir=$1
  mkdir -p "$dir"
  cp -r pipelines "$dir/"
  rm -rf "$dir/pipelines/orders/dist"
  (cd "$dir" && git -c init.defaultBranch=main init -q . && git add -A &&
    GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@example.com GIT_COMMITTER_NAME=b \
      GIT_COMMITTER_EMAIL=b@example.com git commit -qm example)
}

echo "== (a) the example pipeline, twice in a row ($runs runs)"
: >"$out/first" && : >"$out/second"
for ((i = 1; i <= runs; i++)); do
  repo=$out/example-$i
  example_repo "$repo"
  for which in first second; do
    start=$(now)
    (cd "$repo" && "$runner" run pipelines/example.yml >"$out/$which-$i.log" 2>&1) ||
      { cat "$out/$which-$i.log"; exit 1; }
    echo "$(now) - $start" | bc -l >>"$out/$which"
  done
done
first=$(median <"$out/first")
second=$(median <"$out/second")
printf 'first build  %.3f s (median)\nsecond build %.3f s (median)\nratio second/first %.3f\n' \
  "$first" "$second" "$(echo "$second / $first" | bc -l)"
echo "the second build's steps (last run):"
python3 - "$repo/.runner/builds/orders-main-2/report.json" <<'PY'
import json, sys
for step in json.load(open(sys.argv[1]))["steps"]:
    cache = step.get("cache")
    how = "not cached" if cache is None else "cache hit" if cache["hit"] else "miss"
    print(f"  {step['id']:<8} {step['status']:<8} {step['duration_s'] * 1000:7.0f} ms  {how}")
PY

echo
echo "== (b) keying a tree of 10,000 files ($runs runs)"
tree=$out/tree
mkdir -p "$tree/src"
for ((d = 0; d < 100; d++)); do
  mkdir -p "$tree/src/d$d"
  for ((f = 0; f < 100; f++)); do echo "file $d/$f $RANDOM$RANDOM" >"$tree/src/d$d/f$f.c"; done
done
# A checkout is older than the racy window (a file changed within a second of being read is
# read again).
find "$tree/src" -type f -print0 | xargs -0 touch -d '-1 hour'
cat >"$tree/pipeline.yml" <<'YAML'
version: 1
project: keying
steps:
  - id: key
    cache: {inputs: ["src/**"]}
    run: "true"
YAML
(cd "$tree" && git -c init.defaultBranch=main init -q .)
key_ms() {  # the keying time the step's log reports, in ms
  grep -o 'input files read[^;]*; [0-9.]* ms' "$1" | sed 's/.*; //; s/ ms//'
}
: >"$out/cold" && : >"$out/warm"
for ((i = 1; i <= runs; i++)); do
  for which in cold warm; do
    rm -rf "$tree/.runner/cache/entries" "$tree/.runner/cache/blobs"
    [ "$which" = cold ] && rm -f "$tree/.runner/cache/stat-data"
    (cd "$tree" && "$runner" run >/dev/null)
    log=$(ls -t "$tree"/.runner/builds/*/logs/key.log | head -1)
    key_ms "$log" >>"$out/$which"
    grep -o '[0-9]* input files read' "$log" >"$out/$which-read"
  done
done
cold=$(median <"$out/cold")
warm=$(median <"$out/warm")
printf 'cold (no stat data)    %8.1f ms  (%s)\n' "$cold" "$(cat "$out/cold-read")"
printf 'stat data cached       %8.1f ms  (%s)\n' "$warm" "$(cat "$out/warm-read")"
printf 'ratio cached/cold      %8.3f\n' "$(echo "$warm / $cold" | bc -l)"
