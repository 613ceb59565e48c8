#!/usr/bin/env bash
# Packaging benchmark (issue 3): runner's zip step against Info-ZIP `zip -r -6` and
# `bsdtar --format zip` on a tree like a service revision: a few thousand source-like text
# files plus one large, partly compressible binary, about 150 MB in all.
#
#   bench/zip.sh            # BUILD=build RUNS=3 by default
#
# runner's zip runs as a user runs it, through `$BUILD/runner run bench/out/zip.yml`. The runs
# are interleaved (a, b, c, a, b, c, ...) and the median of each tool is reported, so that
# load from other processes on the machine hits every tool alike. Figures: wall time, CPU
# (user+sys), peak RSS, archive size, and each as a ratio to runner's.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
RUNS=${RUNS:-3}
OUT=$ROOT/bench/out
TREE=$OUT/tree
mkdir -p "$OUT"

# --- the tree (made once; delete bench/out/tree to rebuild) --------------------------------
if [ ! -f "$TREE/.complete" ]; then
  echo "making $TREE ..." >&2
  rm -rf "$TREE"
  mkdir -p "$TREE/src" "$TREE/bin"
  # ~3000 headers: real source text in nested directories.
  (cd /usr/include && find . -name '*.h' -type f | LC_ALL=C sort > "$OUT/headers.list")
  head -n 3000 "$OUT/headers.list" > "$OUT/headers.pick"
  tar -C /usr/include -cf - -T "$OUT/headers.pick" | tar -C "$TREE/src" -xf -
  # ~115 MB of shared libraries end to end: machine code, symbol tables, some zero padding.
  find /usr/lib/x86_64-linux-gnu -maxdepth 1 -name '*.so*' -type f -size +100k | LC_ALL=C sort \
    > "$OUT/libs.list"
  (set +o pipefail; xargs cat < "$OUT/libs.list" 2>/dev/null | head -c 115000000 > "$TREE/bin/service.bin")
  chmod +x "$TREE/bin/service.bin"
  touch "$TREE/.complete"
fi
files=$(find "$TREE" -type f | wc -l)
bytes=$(du -sb --exclude=.complete "$TREE" | cut -f1)
echo "tree: $files files, $((bytes / 1000000)) MB ($(nproc) CPUs)"

# --- how to run runner's zip ----------------------------------------------------------------
cat > "$OUT/zip.yml" <<'YAML'
version: 1
project: bench
steps:
  - id: package
    dir: bench/out
    zip:
      dest: runner.zip
      files: [tree/]
      exclude: ["**/.complete"]
      level: 6
YAML
[ -x "$BUILD/runner" ] || { echo "zip.sh: build first (scripts/build.sh)" >&2; exit 1; }
runner_cmd=("$BUILD/runner" run "$OUT/zip.yml" --workspace "$ROOT" --state-dir "$OUT/state")
via="runner run bench/out/zip.yml"
echo "runner's zip via: $via"

run_tool() {  # name -> appends "wall cpu rss size" to $OUT/NAME.times
  local name=$1 zip=$OUT/$1.zip
  rm -f "$zip"
  case $name in
    runner) /usr/bin/time -f "%e %U %S %M" -o "$OUT/time" "${runner_cmd[@]}" >/dev/null 2>&1 ;;
    zip) (cd "$OUT" && /usr/bin/time -f "%e %U %S %M" -o "$OUT/time" zip -r -6 -q zip.zip tree -x 'tree/.complete') ;;
    bsdtar) (cd "$OUT" && /usr/bin/time -f "%e %U %S %M" -o "$OUT/time" bsdtar --format zip --exclude .complete -cf bsdtar.zip tree) ;;
  esac
  read -r wall user sys rss < <(tail -n1 "$OUT/time")
  echo "$wall $(echo "$user + $sys" | bc) $rss $(stat -c %s "$zip")" >> "$OUT/$name.times"
}

tools=(runner zip bsdtar)
for t in "${tools[@]}"; do rm -f "$OUT/$t.times"; done
for ((r = 1; r <= RUNS; r++)); do
  for t in "${tools[@]}"; do run_tool "$t"; done
done
unzip -tq "$OUT/runner.zip" >/dev/null || { echo "runner.zip fails unzip -t" >&2; exit 1; }

median() {  # file column
  sort -n -k"$2" "$1" | awk -v c="$2" '{v[NR]=$c} END {print v[int((NR+1)/2)]}'
}
r_wall=$(median "$OUT/runner.times" 1)
r_cpu=$(median "$OUT/runner.times" 2)
r_size=$(median "$OUT/runner.times" 4)
printf '\n%-8s %9s %9s %9s %12s %11s %11s %11s\n' tool wall_s cpu_s rss_MB size_bytes wall/runner \
  cpu/runner size/runner
for t in "${tools[@]}"; do
  wall=$(median "$OUT/$t.times" 1)
  cpu=$(median "$OUT/$t.times" 2)
  rss=$(median "$OUT/$t.times" 3)
  size=$(median "$OUT/$t.times" 4)
  printf '%-8s %9.2f %9.2f %9.1f %12d %11.2f %11.2f %11.4f\n' "$t" "$wall" "$cpu" \
    "$(echo "$rss / 1024" | bc -l)" "$size" "$(echo "$wall / $r_wall" | bc -l)" \
    "$(echo "$cpu / $r_cpu" | bc -l)" "$(echo "$size / $r_size" | bc -l)"
done
echo "(median of $RUNS interleaved runs; ratios > 1 mean runner is faster or smaller)"
