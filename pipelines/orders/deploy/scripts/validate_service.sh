#!/bin/bash
# CodeDeploy ValidateService (as root): the deployment succeeds only if the service is up and
# is the build this revision carries. A failure here lets CodeDeploy roll back.
set -euo pipefail
readonly service=orders
readonly prefix=/opt/orders

# Wait for the unit to settle (up to 60 s), then require it active.
for _ in $(seq 60); do
  state=$(systemctl is-active "$service.service" || true)
  [ "$state" = activating ] || break
  sleep 1
done
if [ "$state" != active ]; then
  echo "ValidateService: $service.service is $state" >&2
  journalctl -u "$service.service" -n 50 --no-pager >&2 || true
  exit 1
fi

# The running binary is the one this revision was built as: the commit it reports is the one
# build.json (written by the pipeline) names.
expected=$(sed -n 's/.*"commit": *"\([^"]*\)".*/\1/p' "$prefix/build.json")
actual=$("$prefix/bin/orders" --version)
if [ "$actual" != "orders $expected" ]; then
  echo "ValidateService: running '$actual', expected 'orders $expected'" >&2
  exit 1
fi

# A smoke test of the service's one function.
total=$("$prefix/bin/orders" 100 23)
if [ "$total" != 123 ]; then
  echo "ValidateService: orders 100 23 printed '$total', expected 123" >&2
  exit 1
fi
echo "ValidateService: $actual healthy"
