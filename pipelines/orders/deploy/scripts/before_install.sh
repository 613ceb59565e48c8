#!/bin/bash
# CodeDeploy BeforeInstall (as root): make room for the new revision. CodeDeploy copies the
# revision's files right after this, then runs AfterInstall.
set -euo pipefail
readonly service=orders
readonly prefix=/opt/orders

# The service's own user: no login shell, no home.
if ! id -u "$service" >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$service"
fi

# Stop the running version. The previous revision's ApplicationStop does not exist on a first
# deployment and may have failed on a later one, so do not rely on it.
if systemctl is-active --quiet "$service.service"; then
  systemctl stop "$service.service"
fi

# Remove the previous revision's files, so that a file dropped from the revision does not
# linger on the instance. State lives in /var/lib/orders (systemd's StateDirectory) and stays.
rm -rf "${prefix:?}/bin" "${prefix:?}/systemd" "${prefix:?}/build.json"
install -d -m 0755 -o root -g root "$prefix"
echo "BeforeInstall: $prefix ready"
