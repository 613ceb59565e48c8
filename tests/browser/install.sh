#!/usr/bin/env bash
# Installs playwright-core (pinned by package-lock.json; it drives Debian's /usr/bin/chromium and
# downloads no browser) and the build page's browser check into DEST, by default tests/browser
# itself. Run by the CTest fixture `browser_install` with the build directory's browser/ as DEST,
# so a clean clone needs nothing but node, npm and chromium (scripts/deps.sh) and the npm
# registry. Does nothing more than copy the scripts when DEST already holds this exact lock
# file's install.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="${1:-$here}"
mkdir -p "$dest"
for file in package.json package-lock.json build_page.js fake_server.js; do
  [ "$here/$file" -ef "$dest/$file" ] || cp "$here/$file" "$dest/$file"
done
if [ -f "$dest/node_modules/.installed-lock" ] &&
  cmp -s "$dest/package-lock.json" "$dest/node_modules/.installed-lock"; then
  exit 0
fi
command -v npm >/dev/null || { echo "install.sh: npm not found: run scripts/deps.sh" >&2; exit 1; }
(cd "$dest" && npm ci --no-audit --no-fund --loglevel=error)
cp "$dest/package-lock.json" "$dest/node_modules/.installed-lock"
