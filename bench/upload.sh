#!/usr/bin/env bash
# Upload benchmark (issue 5): runner's upload step against `aws s3 cp` (Debian's AWS CLI v2)
# and `rclone copy`, each with its default settings, to the same local S3-compatible server
# (s3rver from tests/s3, on 127.0.0.1), for two workloads: one 1 GiB file and a tree of 1000
# small files (4 to 64 KiB), over https: nginx terminates TLS in front of s3rver.
#
#   bench/upload.sh          # BUILD=build RUNS=3 by default; SIZE_MIB=1024 FILES=1000
#   TOOLS="runner aws" bench/upload.sh   # a subset of the tools (runner always first)
#
# The server caps wall time (about 200 MB/s for a single PUT, and it re-reads a multipart
# object at completion), so the figure to compare is the client's CPU time (user + sys, the
# runner's `runner __step` child included), reported per GiB sent; wall time is shown side by
# side. Runs are interleaved (runner, aws, rclone, runner, ...); the median of each is reported
# with ratios to runner's (above 1: runner is better). Every run writes to a fresh prefix,
# removed at exit, so no tool can skip work that an earlier run did.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
RUNS=${RUNS:-3}
SIZE_MIB=${SIZE_MIB:-1024}
FILES=${FILES:-1000}
OUT=$ROOT/bench/out/upload
AWS=/usr/bin/aws
mkdir -p "$OUT"

for tool in "$BUILD/runner" "$AWS" rclone node /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "upload.sh: $tool not found (scripts/deps.sh)" >&2; exit 1; }
done
tests/s3/install.sh "$BUILD/s3rver" >/dev/null

# --- data (made once; delete bench/out/upload/data to rebuild) ------------------------------
DATA=$OUT/data
if [ ! -f "$DATA/.complete-$SIZE_MIB-$FILES" ]; then
  echo "making $DATA ..." >&2
  rm -rf "$DATA"
  mkdir -p "$DATA/big" "$DATA/small"
  head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom > "$DATA/big/big.bin"
  for i in $(seq 1 "$FILES"); do
    head -c "$(( (RANDOM % 61 + 4) * 1024 ))" /dev/urandom > "$DATA/small/f$(printf %04d "$i").bin"
  done
  touch "$DATA/.complete-$SIZE_MIB-$FILES"
fi
big_bytes=$(stat -c %s "$DATA/big/big.bin")
small_bytes=$(du -sb --exclude='.complete*' "$DATA/small" | cut -f1)

# --- the server ------------------------------------------------------------------------------
# The last run's objects are moved aside and deleted only at exit, after the timing: this
# machine's ext4 has no journal, and there every file made skips, one by one, each inode freed
# in the last minutes, so a deletion just before (or between) runs slowed the server's writes
# and with them every tool's (the runner's 1000 files took 3.3 s instead of 1.9 s).
TRASH=$OUT/trash
mkdir -p "$TRASH"
for old in "$OUT/s3data" "$OUT/state"; do
  if [ -e "$old" ]; then mv "$old" "$(mktemp -d "$TRASH/old.XXXXXX")/"; fi
done
mkdir -p "$OUT/s3data" "$OUT/home"
NODE_OPTIONS=--openssl-legacy-provider setsid node "$BUILD/s3rver/run.js" -s -d "$OUT/s3data" \
  -a 127.0.0.1 -p 0 --configure-bucket bkt > "$OUT/s3rver.log" 2>&1 &
server=$!
trap 'kill -- -$server 2>/dev/null || kill $server 2>/dev/null; wait $server 2>/dev/null || true; rm -rf "$TRASH" "$OUT/s3data" "$OUT/state"' EXIT
for _ in $(seq 100); do
  grep -q "listening on" "$OUT/s3rver.log" 2>/dev/null && break
  sleep 0.1
done
port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$OUT/s3rver.log")
[ -n "$port" ] || { echo "upload.sh: s3rver did not start:" >&2; cat "$OUT/s3rver.log" >&2; exit 1; }
PLAIN=http://127.0.0.1:$port

# --- TLS in front of it ------------------------------------------------------------------------
# Real S3 is https, and over TLS a client may leave the payload unsigned (the AWS CLI and runner
# both do): nginx-light terminates TLS with a self-signed certificate for 127.0.0.1, which the
# tools trust through AWS_CA_BUNDLE (runner, aws) and --ca-cert (rclone). Host goes through
# unchanged, so s3rver still verifies the signatures. nginx's CPU is no client's.
TLS=$OUT/tls
rm -rf "$TLS" && mkdir -p "$TLS"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$TLS/key.pem" -out "$TLS/cert.pem" 2>/dev/null
tls_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$TLS/nginx.conf" <<CONF
worker_processes 1;
pid $TLS/nginx.pid;
error_log $TLS/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $TLS/body;
  proxy_temp_path $TLS/proxy;
  fastcgi_temp_path $TLS/fastcgi;
  uwsgi_temp_path $TLS/uwsgi;
  scgi_temp_path $TLS/scgi;
  server {
    listen 127.0.0.1:$tls_port ssl;
    ssl_certificate $TLS/cert.pem;
    ssl_certificate_key $TLS/key.pem;
    client_max_body_size 0;
    location / {
      proxy_pass $PLAIN;
      proxy_set_header Host \$http_host;
      proxy_http_version 1.1;
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_read_timeout 300s;
    }
  }
}
CONF
setsid nginx -p "$TLS" -e "$TLS/error.log" -c "$TLS/nginx.conf" -g 'daemon off; master_process off;' \
  > "$TLS/nginx.out" 2>&1 &
proxy=$!
trap 'kill -- -$server 2>/dev/null || kill $server 2>/dev/null; kill $proxy 2>/dev/null; wait $server $proxy 2>/dev/null || true; rm -rf "$TRASH" "$OUT/s3data" "$OUT/state"' EXIT
for _ in $(seq 50); do (: <"/dev/tcp/127.0.0.1/$tls_port") 2>/dev/null && break; sleep 0.1; done
(: <"/dev/tcp/127.0.0.1/$tls_port") 2>/dev/null ||
  { echo "upload.sh: nginx did not start:" >&2; cat "$TLS/nginx.out" "$TLS/error.log" >&2; exit 1; }
ENDPOINT=https://127.0.0.1:$tls_port
CA=$TLS/cert.pem

# Only the variables the tools need (NOTES.md: no profile, no CA bundle for rclone).
unset AWS_PROFILE AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE AWS_CA_BUNDLE AWS_SESSION_TOKEN
export HOME=$OUT/home AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=
export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other
export RCLONE_CONFIG_BENCH_ENDPOINT=$ENDPOINT RCLONE_CONFIG_BENCH_REGION=us-east-1
export RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=S3RVER RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=S3RVER
export RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true

# --- one run ---------------------------------------------------------------------------------
# run TOOL WORKLOAD N: uploads, appends "wall cpu" to $OUT/TOOL-WORKLOAD.times.
run() {
  local tool=$1 workload=$2 n=$3 prefix="$1/$2/$3"
  local src=$DATA/big/big.bin
  [ "$workload" = small ] && src=$DATA/small
  local cmd
  case $tool in
    runner)
      local files='[big/big.bin]'
      [ "$workload" = small ] && files='[small/]'
      cat > "$OUT/upload-$workload.yml" <<YAML
version: 1
project: bench
steps:
  - id: publish
    dir: bench/out/upload/data
    upload:
      to: s3://bkt/$prefix/
      endpoint: $ENDPOINT
      files: $files
YAML
      cmd=(env AWS_CA_BUNDLE="$CA" "$BUILD/runner" run "$OUT/upload-$workload.yml" --workspace "$ROOT"
           --state-dir "$OUT/state" --branch bench --commit 0000000000000000000000000000000000000000
           --build-number "$RANDOM$RANDOM")
      ;;
    aws)
      if [ "$workload" = small ]; then
        cmd=(env AWS_CA_BUNDLE="$CA" "$AWS" --endpoint-url "$ENDPOINT" s3 cp --recursive --only-show-errors "$src" "s3://bkt/$prefix/")
      else
        cmd=(env AWS_CA_BUNDLE="$CA" "$AWS" --endpoint-url "$ENDPOINT" s3 cp --only-show-errors "$src" "s3://bkt/$prefix/")
      fi
      ;;
    rclone)
      cmd=(rclone --ca-cert "$CA" copy "$src" "bench:bkt/$prefix/")
      ;;
  esac
  sync
  if ! /usr/bin/time -f "%e %U %S" -o "$OUT/time" "${cmd[@]}" > "$OUT/$tool.out" 2>&1; then
    echo "upload.sh: $tool failed on $workload:" >&2
    tail -20 "$OUT/$tool.out" >&2
    exit 1
  fi
  awk '{printf "%s %.3f\n", $1, $2 + $3}' "$OUT/time" >> "$OUT/$tool-$workload.times"
  # Check what arrived; it stays until exit (see TRASH above).
  local count
  count=$("$AWS" --endpoint-url "$PLAIN" s3 ls --recursive "s3://bkt/$prefix/" | grep -vc manifest.json || true)
  local want=1
  [ "$workload" = small ] && want=$FILES
  [ "$count" -eq "$want" ] || { echo "upload.sh: $tool stored $count objects, not $want" >&2; exit 1; }
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

read -ra tools <<< "${TOOLS:-runner aws rclone}"
[ "${tools[0]}" = runner ] || { echo "upload.sh: TOOLS must start with runner (the ratios are to it)" >&2; exit 1; }
rm -f "$OUT"/*.times
echo "server $ENDPOINT (nginx TLS in front of s3rver $PLAIN); $(nproc) CPUs; $RUNS runs each, interleaved"
for workload in big small; do
  for n in $(seq 1 "$RUNS"); do
    for tool in "${tools[@]}"; do run "$tool" "$workload" "$n"; done
  done
done

# --- report ----------------------------------------------------------------------------------
echo
printf '%-26s %-7s %8s %8s %10s %8s %8s\n' workload tool wall_s cpu_s cpu_s/GiB wall_x cpu_x
for workload in big small; do
  bytes=$big_bytes
  label="1 file, $((big_bytes / 1048576)) MiB"
  if [ "$workload" = small ]; then
    bytes=$small_bytes
    label="$FILES files, $((small_bytes / 1048576)) MiB"
  fi
  runner_wall=$(cut -d' ' -f1 "$OUT/runner-$workload.times" | median)
  runner_cpu=$(cut -d' ' -f2 "$OUT/runner-$workload.times" | median)
  for tool in "${tools[@]}"; do
    wall=$(cut -d' ' -f1 "$OUT/$tool-$workload.times" | median)
    cpu=$(cut -d' ' -f2 "$OUT/$tool-$workload.times" | median)
    awk -v l="$label" -v t="$tool" -v w="$wall" -v c="$cpu" -v b="$bytes" -v rw="$runner_wall" \
      -v rc="$runner_cpu" 'BEGIN {
        printf "%-26s %-7s %8.2f %8.2f %10.2f %8.2f %8.2f\n", l, t, w, c, c / (b / 1073741824),
          w / rw, c / rc }'
  done
done
echo "(wall_x, cpu_x: the tool's figure over runner's; above 1 means runner is faster or cheaper)"
