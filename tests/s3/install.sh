#!/usr/bin/env bash
# Installs the S3 test server (@20minutes/s3rver, pinned by package-lock.json) into DEST, by
# default tests/s3 itself. Run by the CTest fixture `s3rver_install` with the build directory as
# DEST, so a clean clone needs nothing but node and npm (scripts/deps.sh) and the npm registry.
# Does nothing when DEST already holds this exact lock file's install.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="${1:-$here}"
mkdir -p "$dest"
for file in package.json package-lock.json run.js fault_proxy.js; do
  [ "$here/$file" -ef "$dest/$file" ] || cp "$here/$file" "$dest/$file"
done
if [ -f "$dest/node_modules/.installed-lock" ] &&
  cmp -s "$dest/package-lock.json" "$dest/node_modules/.installed-lock"; then
  exit 0
fi
command -v npm >/dev/null || { echo "install.sh: npm not found: run scripts/deps.sh" >&2; exit 1; }
(cd "$dest" && npm ci --no-audit --no-fund --loglevel=error)
cp "$dest/package-lock.json" "$dest/node_modules/.installed-lock"
