#!/usr/bin/env bash
# Installs playwright-core (pinned by package-lock.json; it drives Debian's /usr/bin/chromium and
# downloads no browser) and the build page's browser check into DEST, by default tests/browser
# itself. Run by the CTest fixture `PagesBrowserInstall` with the build directory's browser/ as
# DEST, so a clean clone needs nothing but node, npm and chromium (scripts/deps.sh) and the npm
# registry.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec "$here/../npm_install.sh" "$here" "${1:-$here}" build_page.js fake_server.js
