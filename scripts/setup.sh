#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install what is needed, build, and run the example
# pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
exec build/runner run pipelines/example.yml "$@"
