#!/usr/bin/env bash
# One command for the whole test suite: install what is needed, build, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
cd build
exec ctest --output-on-failure -j "$(nproc)" "$@"
