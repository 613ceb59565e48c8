#!/usr/bin/env bash
# Installs the npm packages a test tool pins (SRC/package.json and package-lock.json) into DEST
# with `npm ci`, after copying those two files and the tool's own FILEs there. Does nothing more
# than copy the files when DEST already holds this exact lock file's install, so a test fixture
# may call it every run. Needs node and npm (scripts/deps.sh) and the npm registry.
# Usage: npm_install.sh SRC DEST FILE...
set -euo pipefail
src="$1"
dest="$2"
shift 2
mkdir -p "$dest"
for file in package.json package-lock.json "$@"; do
  [ "$src/$file" -ef "$dest/$file" ] || cp "$src/$file" "$dest/$file"
done
if [ -f "$dest/node_modules/.installed-lock" ] &&
  cmp -s "$dest/package-lock.json" "$dest/node_modules/.installed-lock"; then
  exit 0
fi
command -v npm >/dev/null || { echo "npm_install.sh: npm not found: run scripts/deps.sh" >&2; exit 1; }
(cd "$dest" && npm ci --no-audit --no-fund --loglevel=error)
cp "$dest/package-lock.json" "$dest/node_modules/.installed-lock"
