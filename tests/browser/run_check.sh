#!/usr/bin/env bash
# The browser check against the fake server: page_fixture writes the pages, fake_server.js
# serves them, build_page.js drives chromium. Run by CTest from the installed DEST.
# Usage: run_check.sh PAGE_FIXTURE DEST
set -euo pipefail
fixture="$1"
dest="$2"
work="$(mktemp -d)"
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
"$fixture" "$work"
coproc server { exec node "$dest/fake_server.js" "$work"; }
server_pid=$server_PID
read -r port <&"${server[0]}"
node "$dest/build_page.js" "http://127.0.0.1:$port" orders-hostile-158 bake \
  "$dest/build_page.png" let-me-in
