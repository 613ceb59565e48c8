#!/usr/bin/env bash
# `runner serve` under load: signed GitHub push deliveries at a steady rate, and in a
# burst, while 50 browsers follow a running build's live log; the time to answer each delivery
# (p50, p99, max) and deliveries per second, against plain static servers from Debian on the
# same machine answering GETs of a file the size of the delivery: `python3 -m http.server` and,
# when installed, nginx (nginx-light, scripts/deps.sh).
#
#   bench/serve.sh       # BUILD=build ROUNDS=2 COUNT=400 RATE=40 BURST=600 SENDERS=8 CLIENTS=50
#
# The server gets one repository (a local Git repository, a file:// clone URL), jobs: 1, no
# token (no commit statuses). One push starts a build whose step prints a timestamped line
# every 50 ms until a gate file exists; CLIENTS server-sent-event clients follow that step's log
# for the whole run. Then each round sends, interleaved runner / python / nginx:
#   rate   COUNT requests, open loop at RATE per second;
#   burst  BURST requests from SENDERS senders, each sending its next as soon as it is answered.
# Every delivery has its own X-GitHub-Delivery and pushes the same branch, so each supersedes
# the queued one before it: the queue grows, only the first build runs. Every request is on a
# connection of its own, as GitHub's are; a delivery counts as an error unless answered 202, a
# GET unless answered 200 with the whole file. The static servers hold CLIENTS idle connections
# meanwhile. Latencies are pooled over the rounds; req/s is the median run. CPU is the server
# process's (its threads; nginx: master and workers) during the run, per request; the
# runner's includes streaming the log to the followers. "slow" counts answers that took 1 s or
# more: a connection the kernel dropped for a full listen queue (python's is 5 long) is retried
# by its client after 1 s. "fsync_ms" is the p50 of a write and fsync next to the state, just
# before the run: the deliveries' times follow it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-2}
COUNT=${COUNT:-400}
RATE=${RATE:-40}
BURST=${BURST:-600}
SENDERS=${SENDERS:-8}
CLIENTS=${CLIENTS:-50}
PAYLOAD=${PAYLOAD:-$ROOT/../shared/testdata/github-webhooks/push-with-new-branch.payload.json}
runner=$ROOT/$BUILD/runner
load=$ROOT/bench/serve_load.js

[ -x "$runner" ] || { echo "serve.sh: build first (scripts/build.sh)" >&2; exit 1; }
for tool in node python3 git; do
  command -v "$tool" >/dev/null || { echo "serve.sh: $tool not found (scripts/deps.sh)" >&2; exit 1; }
done
[ -f "$PAYLOAD" ] || { echo "serve.sh: no payload at $PAYLOAD (set PAYLOAD)" >&2; exit 1; }
nginx=$(command -v nginx || true)

# --- cleanup: everything started here runs in a session of its own, ended by its id ----------
tmp=$(mktemp -d)
sessions=()  # session ids (= the pids of the processes started with setsid)
cleanup() {
  local sid
  for sid in "${sessions[@]}"; do kill -TERM -- "-$sid" 2>/dev/null || true; done
  for sid in "${sessions[@]}"; do wait "$sid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
# start NAME COMMAND...: runs COMMAND in a new session, output to $tmp/NAME.out and .err; sets
# $started to its pid.
start() {
  local name=$1; shift
  setsid "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  started=$!
  sessions+=("$started")
}
# await TEXT FILE [SECONDS]: waits until FILE contains TEXT (an extended regex).
await() {
  local i
  for ((i = 0; i < ${3:-30} * 10; i++)); do
    grep -Eq "$1" "$2" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
# cpu_us PID...: user + system CPU of those processes so far, in microseconds, from
# /proc/PID/stat (clock ticks, 10 ms; the process's threads, those that ended included).
# cpu_ns_single PID...: the same from /proc/PID/schedstat, to the nanosecond, but only the main
# thread's: for nginx, whose processes have one thread each and use a few ticks in a run.
clk_tck=$(getconf CLK_TCK)
cpu_us() {
  local pid ticks=0 stat fields
  for pid in "$@"; do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    read -ra fields <<<"${stat##*) }"  # the fields after the command name, from field 3
    ticks=$((ticks + fields[11] + fields[12]))
  done
  echo $((ticks * 1000000 / clk_tck))
}
cpu_us_single() {
  local pid ns=0 on_cpu _
  for pid in "$@"; do
    read -r on_cpu _ <"/proc/$pid/schedstat" 2>/dev/null || continue
    ns=$((ns + on_cpu))
  done
  echo $((ns / 1000))
}

# fsync_probe: how long a 4 KB write and its fsync take where the state is: p50 and max of 40.
# The server syncs its queue before it answers a delivery: 6 fsyncs for each one here (the
# build number, the new entry, the superseded entry: each file and its directory).
fsync_probe() {  # [--p50]: the p50 alone
  python3 - "$tmp" "$@" <<'PY'
import os, sys, time
path = os.path.join(sys.argv[1], "fsync.probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
times = []
for _ in range(40):
    start = time.perf_counter()
    os.pwrite(fd, b"x" * 4096, 0)
    os.fsync(fd)
    times.append((time.perf_counter() - start) * 1000)
os.close(fd)
os.remove(path)
times.sort()
print(f"{times[len(times) // 2]:.2f}" if sys.argv[2:] == ["--p50"] else
      f"p50 {times[len(times) // 2]:.2f} ms, max {times[-1]:.2f} ms")
PY
}

# --- inputs: the repository, the delivery, the static file -----------------------------------
mkdir -p "$tmp/src" "$tmp/gate" "$tmp/static" "$tmp/results" "$tmp/nginx"
cat >"$tmp/src/pipeline.yml" <<'YAML'
version: 1
steps:
  - id: build
    run: |
      n=0
      until [ -e "$GATE_DIR/all" ]; do
        n=$((n+1)); echo "line $n $EPOCHREALTIME"; sleep 0.05
      done
      echo finished
YAML
git() { command git -C "$tmp/src" -c user.name=bench -c user.email=bench@example.com "$@"; }
git init -q -b main
git add pipeline.yml && git commit -qm pipeline
before=$(git rev-parse HEAD)
echo "int main() {}" >"$tmp/src/main.c"
git add main.c && git commit -qm main.c
after=$(git rev-parse HEAD)
unset -f git

node "$load" payload "$PAYLOAD" "$tmp/push.json" "file://$tmp/src" "$before" "$after"
bytes=$(stat -c %s "$tmp/push.json")
cp "$tmp/push.json" "$tmp/static/push.json"  # the static servers answer the same bytes
chmod 755 "$tmp" "$tmp/static"               # nginx's workers (nobody, when run as root) read it

BENCH_HOOK_SECRET=$(head -c 24 /dev/urandom | base64)
export BENCH_HOOK_SECRET
cat >"$tmp/serve.yml" <<YAML
listen: 127.0.0.1:0
url: http://ci.bench.test
state_dir: $tmp/state
jobs: 1
stop_grace: 5s
repos:
  - name: acme/orders
    clone_url: file://$tmp/src
    secret_env: BENCH_HOOK_SECRET
YAML

# --- the servers -----------------------------------------------------------------------------
GATE_DIR=$tmp/gate start runner "$runner" serve --config "$tmp/serve.yml"
runner_pid=$started
await '\(port [0-9]+\)' "$tmp/runner.out" ||
  { echo "serve.sh: runner serve did not start:" >&2; cat "$tmp/runner.err" >&2; exit 1; }
runner_url=http://127.0.0.1:$(sed -nE 's/.*\(port ([0-9]+)\).*/\1/p' "$tmp/runner.out")

start python python3 -u -m http.server --bind 127.0.0.1 --directory "$tmp/static" 0
python_pid=$started
await 'port [0-9]+' "$tmp/python.out" ||
  { echo "serve.sh: python3 -m http.server did not start:" >&2; cat "$tmp/python.err" >&2; exit 1; }
python_url=http://127.0.0.1:$(sed -nE 's/.* port ([0-9]+) .*/\1/p' "$tmp/python.out")

tools=(runner python)
if [ -n "$nginx" ]; then
  # nginx takes no port 0: a free one, just released. Debian's defaults otherwise (worker
  # processes: auto, sendfile, an access log).
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat >"$tmp/nginx/nginx.conf" <<CONF
worker_processes auto;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events { worker_connections 1024; }
http {
  sendfile on;
  tcp_nopush on;
  default_type application/json;
  access_log $tmp/nginx/access.log;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  server { listen 127.0.0.1:$port; root $tmp/static; }
}
CONF
  start nginx "$nginx" -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" -g 'daemon off;'
  nginx_sid=$started
  for _ in $(seq 50); do (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null ||
    { echo "serve.sh: nginx did not start:" >&2; cat "$tmp/nginx.err" "$tmp/nginx/error.log" >&2; exit 1; }
  nginx_url=http://127.0.0.1:$port
  tools+=(nginx)
fi

echo "runner serve $runner_url, python3 -m http.server $python_url${nginx:+, nginx $nginx_url}"
echo "delivery: $bytes bytes; $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "state on $(df -T "$tmp" | awk 'NR == 2 {print $2}'): write + fsync $(fsync_probe)"

# --- the running build and its followers -----------------------------------------------------
answer=$(node "$load" send-one "$runner_url/hooks/github" "$tmp/push.json" BENCH_HOOK_SECRET)
build=$(sed -nE 's/^202 .*"id":"([^"]+)".*/\1/p' <<<"$answer")
[ -n "$build" ] || { echo "serve.sh: the first push was answered: $answer" >&2; exit 1; }
start follow node "$load" follow --url "$runner_url/events/$build/build" --clients "$CLIENTS" \
  --ready "$tmp/follow.ready" --phases "$tmp/phases" --report "$tmp/follow.json"
follow_pid=$started
await ready "$tmp/follow.ready" 60 ||
  { echo "serve.sh: the build's log never reached the followers:" >&2; cat "$tmp/runner.err" "$tmp/follow.err" >&2; exit 1; }
cpu0=$(cpu_us "$runner_pid"); sleep 2; cpu1=$(cpu_us "$runner_pid")
echo "build $build running, $CLIENTS clients following its log: runner serve uses $(( (cpu1 - cpu0) / 20000 ))% of a CPU with no deliveries"

# --- the load --------------------------------------------------------------------------------
# run TOOL MODE ROUND: one load run, its result in $tmp/results/TOOL-MODE-ROUND.json and the
# server's CPU microseconds meanwhile in .cpu, the fsync probe's p50 just before in .fsync.
run() {
  local tool=$1 mode=$2 round=$3 label=$1-$2-$3 pids
  local shape=(--count "$COUNT" --rate "$RATE")
  [ "$mode" = burst ] && shape=(--count "$BURST" --concurrency "$SENDERS")
  local target
  case $tool in
    runner) target=(--url "$runner_url/hooks/github" --method POST --body "$tmp/push.json"
                    --secret-env BENCH_HOOK_SECRET --expect 202) ;;
    python) target=(--url "$python_url/push.json" --expect-bytes "$bytes" --idle "$CLIENTS") ;;
    nginx) target=(--url "$nginx_url/push.json" --expect-bytes "$bytes" --idle "$CLIENTS") ;;
  esac
  local cpu=cpu_us
  case $tool in
    runner) pids=("$runner_pid") ;;
    python) pids=("$python_pid") ;;
    nginx) mapfile -t pids < <(ps -o pid= -s "$nginx_sid" | tr -d ' '); cpu=cpu_us_single ;;
  esac
  fsync_probe --p50 >"$tmp/results/$label.fsync"
  local before_cpu
  before_cpu=$($cpu "${pids[@]}")
  node "$load" load --label "$label" "${shape[@]}" "${target[@]}" --phases "$tmp/phases" \
    --out "$tmp/results/$label.json"
  echo $(($($cpu "${pids[@]}") - before_cpu)) >"$tmp/results/$label.cpu"
}

started_at=$(date +%s)
for ((round = 1; round <= ROUNDS; round++)); do
  for mode in rate burst; do
    for tool in "${tools[@]}"; do
      echo "round $round: $mode $tool ..." >&2
      run "$tool" "$mode" "$round"
    done
  done
done
echo "load: $(($(date +%s) - started_at)) s" >&2
echo "after the load: write + fsync $(fsync_probe); load average $(cut -d' ' -f1-3 /proc/loadavg)"

# The followers' account of each run, then the report.
kill -TERM "$follow_pid"
wait "$follow_pid" || true
node "$load" report --results "$tmp/results" --follow "$tmp/follow.json" \
  --rate-title "steady rate: $COUNT requests per run at $RATE/s, open loop, a new connection each; runner: $CLIENTS live log clients, static: $CLIENTS idle connections" \
  --burst-title "burst: $BURST requests per run from $SENDERS senders as fast as answered, a new connection each"

# --- stop ------------------------------------------------------------------------------------
# Open the gate (the build's step ends), then SIGTERM: the server stops taking hooks and waits
# for the running build.
touch "$tmp/gate/all"
kill -TERM "$runner_pid"
status=0
wait "$runner_pid" || status=$?
[ "$status" -eq 0 ] || { echo "serve.sh: runner serve exited $status:" >&2; tail -n 20 "$tmp/runner.err" >&2; }
kill -TERM "$python_pid"
wait "$python_pid" 2>/dev/null || true
if [ -n "$nginx" ]; then
  kill -TERM "$nginx_sid"
  wait "$nginx_sid" 2>/dev/null || true
fi
echo
report=$tmp/state/builds/$build/report.json
echo "first build: $(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).status)' "$report"); runner serve exited $status"
echo "queue after the run: $(node "$load" queue "$tmp/state/queue")"

# Nothing started here may be left: no process in any of the sessions, after up to 5 s. An
# exited process that PID 1 has not reaped yet (state Z: runner's __watchdog exits just after
# the server, by design, and is reparented) is reported, not counted.
# in_sessions [STATE_PATTERN]: "PID STATE ARGS" of the processes in our sessions.
in_sessions() {
  ps -e -o pid=,sid=,stat=,args= | awk -v sessions="${sessions[*]}" -v want="${1:-.}" '
    BEGIN { n = split(sessions, s, " "); for (i = 1; i <= n; i++) ours[s[i]] = 1 }
    ($2 in ours) && $3 ~ want { $2 = ""; print }'
}
for _ in $(seq 50); do
  [ -z "$(in_sessions)" ] && break
  sleep 0.1
done
left=$(in_sessions '^[^Z]')
if [ -n "$left" ]; then
  echo "left running:"; echo "$left"
  exit 1
fi
sessions=()  # all gone: the trap must not signal their ids, which may be reused by now
zombies=$(in_sessions '^Z')
echo "left running: nothing${zombies:+ (exited, not yet reaped by PID 1: $(echo "$zombies" | tr -s ' ' | tr '\n' ';'))}"
