#!/usr/bin/env bash
# `runner worker` throughput: builds per minute of 30 short pipelines (one `run:` step) with 1,
# 2 and 3 workers on this machine, and the time from a hook's answer to its build's start
# (idle: the first delivery, every worker waiting; p50 and max over all, queueing included):
# `runner serve --queue` on a directory queue with file:// records (the local form;
# MOTO=1 uses moto_server's SQS FIFO and S3 instead).
#
#   bench/workers.sh      # BUILD=build COUNT=30 WORKERS="1 2 3" MOTO=0
#
# Each push is a commit on a branch of its own, so none supersedes another: all COUNT build.
# The deliveries are sent back to back once the workers are polling; the clock runs from the
# first delivery to the last record. A build's start is the time its step writes its first line,
# as the step's own `date` reads it. Each round has a fresh state, queue and records (so every
# worker clones the repository into its mirror once), workers poll with poll_wait 1s.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
COUNT=${COUNT:-30}
WORKERS=${WORKERS:-1 2 3}
MOTO=${MOTO:-0}
runner=$ROOT/$BUILD/runner
payload=$ROOT/../shared/testdata/github-webhooks/push-with-new-branch.payload.json
[ -x "$runner" ] || { echo "workers.sh: build first (scripts/build.sh)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

git -c init.defaultBranch=main init -q "$work/src"
cat > "$work/src/pipeline.yml" <<'YAML'
version: 1
steps:
  - id: build
    run: echo "$(date +%s.%N) $RUNNER_BUILD_ID" >> "$EVENTS_FILE"
YAML
export GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@example.com GIT_COMMITTER_NAME=b \
  GIT_COMMITTER_EMAIL=b@example.com
git -C "$work/src" add -A && git -C "$work/src" commit -qm initial
commit_list=
for i in $(seq 1 "$COUNT"); do
  git -C "$work/src" checkout -q -b "p$i" main
  echo "$i" > "$work/src/n.txt"
  git -C "$work/src" add -A && git -C "$work/src" commit -qm "push $i"
  commit_list+=" $(git -C "$work/src" rev-parse HEAD)"
done
git -C "$work/src" checkout -q main

export HOOK_SECRET="bench secret"
queue_of() { echo "file://$1/queue"; }
records_of() { echo "file://$1/records"; }
if [ "$MOTO" = 1 ]; then
  moto=$(ls ~/.pyenv/versions/*/bin/moto_server 2>/dev/null | tail -1 || command -v moto_server)
  [ -n "$moto" ] || { echo "workers.sh: MOTO=1 but no moto_server" >&2; exit 1; }
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$moto" -H 127.0.0.1 -p "$port" > "$work/moto.log" 2>&1 &
  pids+=($!)
  until curl -s "http://127.0.0.1:$port/" > /dev/null; do sleep 0.1; done
  export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 \
    AWS_ENDPOINT_URL_S3=http://127.0.0.1:$port AWS_EC2_METADATA_DISABLED=true
  sqs() {
    curl -s -X POST "http://127.0.0.1:$port/" -H "X-Amz-Target: AmazonSQS.$1" \
      -H 'Content-Type: application/x-amz-json-1.0' \
      -H 'Authorization: AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0' \
      -d "$2"
  }
  queue_of() {
    local name; name=q$(basename "$1").fifo
    sqs CreateQueue "{\"QueueName\":\"$name\",\"Attributes\":{\"FifoQueue\":\"true\"}}" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["QueueUrl"])'
  }
  records_of() {
    local bucket; bucket=r$(basename "$1" | tr -c 'a-z0-9\n' 'x')
    curl -s -X PUT "http://127.0.0.1:$port/$bucket" > /dev/null
    echo "s3://$bucket/runner/"
  }
fi

printf '%-8s %10s %12s %14s %14s %14s\n' workers seconds builds/min idle_start_ms start_p50_ms \
  start_max_ms
for n in $WORKERS; do
  round=$work/round$n
  mkdir -p "$round"
  export EVENTS_FILE=$round/events
  : > "$EVENTS_FILE"
  cat > "$round/serve.yml" <<YAML
listen: 127.0.0.1:0
state_dir: $round/state
queue: $(queue_of "$round")
records: $(records_of "$round")
poll_wait: 1s
visibility_timeout: 30s
log_interval: 1s
repos:
  - name: acme/orders
    clone_url: file://$work/src
    secret_env: HOOK_SECRET
YAML
  "$runner" serve --config "$round/serve.yml" > "$round/serve.out" 2>&1 &
  pids+=($!)
  until grep -qs '(port ' "$round/serve.out"; do sleep 0.05; done
  base=http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$round/serve.out" | head -1)
  for w in $(seq 1 "$n"); do
    "$runner" worker --config "$round/serve.yml" > "$round/worker$w.out" 2>&1 &
    pids+=($!)
  done
  for w in $(seq 1 "$n"); do
    until grep -qs 'taking builds' "$round/worker$w.out"; do sleep 0.05; done
  done

  # Bodies and signatures made before the clock starts.
  python3 - "$payload" "$work/src" "$round" "$COUNT" "$HOOK_SECRET" ${commit_list} <<'PY'
import hashlib, hmac, json, sys
payload, src, round_dir, count, secret = sys.argv[1:6]
commits = sys.argv[6:]
for i in range(1, int(count) + 1):
    p = json.load(open(payload))
    p.update(ref=f"refs/heads/p{i}", before="0" * 40, after=commits[i - 1], created=True,
             deleted=False)
    p["repository"].update(full_name="acme/orders", clone_url="file://" + src,
                           default_branch="main")
    body = json.dumps(p).encode()
    open(f"{round_dir}/body{i}", "wb").write(body)
    sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    open(f"{round_dir}/sig{i}", "w").write("sha256=" + sig)
PY
  first=$(date +%s.%N)
  : > "$round/answers"
  for i in $(seq 1 "$COUNT"); do
    curl -s -o "$round/answer$i" -X POST "$base/hooks/github" -H 'content-type: application/json' \
      -H 'x-github-event: push' -H "x-github-delivery: bench-$n-$i" \
      -H "x-hub-signature-256: $(cat "$round/sig$i")" --data-binary "@$round/body$i"
    echo "$(date +%s.%N) $i" >> "$round/answers"
  done
  for i in $(seq 1 "$COUNT"); do
    id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$round/answer$i")
    sed -i "s/ $i\$/ $id/" "$round/answers"
  done
  until [ "$(curl -s "$base/builds.json" | python3 -c '
import json, sys
print(sum(b["status"] == "success" for b in json.load(sys.stdin)["builds"]))')" -ge "$COUNT" ]; do
    sleep 0.2
  done
  last=$(date +%s.%N)
  python3 - "$n" "$first" "$last" "$COUNT" "$round/answers" "$EVENTS_FILE" <<'PY'
import sys
n, first, last, count = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
answers = [line.split() for line in open(sys.argv[5])]
answered = {id: float(t) for t, id in answers}
started = {line.split()[1]: float(line.split()[0]) for line in open(sys.argv[6])}
waits = sorted((started[i] - answered[i]) * 1000 for i in answered)
seconds = last - first
idle = (started[answers[0][1]] - answered[answers[0][1]]) * 1000
print(f"{n:<8} {seconds:10.1f} {count / seconds * 60:12.1f} {idle:14.0f} "
      f"{waits[len(waits) // 2]:14.0f} {waits[-1]:14.0f}")
PY
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
  [ "$MOTO" = 1 ] && { "$moto" -H 127.0.0.1 -p "$port" > "$work/moto.log" 2>&1 & pids+=($!);
    until curl -s "http://127.0.0.1:$port/" > /dev/null; do sleep 0.1; done; }
done
