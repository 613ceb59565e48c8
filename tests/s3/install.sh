#!/usr/bin/env bash
# Installs the S3 test server (@20minutes/s3rver, pinned by package-lock.json) into DEST, by
# default tests/s3 itself. Run by the CTest fixture `s3rver_install` with the build directory as
# DEST, so a clean clone needs nothing but node and npm (scripts/deps.sh) and the npm registry.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec "$here/../npm_install.sh" "$here" "${1:-$here}" run.js fault_proxy.js
