#!/bin/bash
# CodeDeploy AfterInstall (as root): the files are in /opt/orders; install the unit and check
# that the binary runs on this host before anything is started.
set -euo pipefail
readonly service=orders
readonly prefix=/opt/orders

chown -R root:root "$prefix"
chmod 0755 "$prefix/bin/orders"
install -m 0644 -o root -g root "$prefix/systemd/$service.service" \
  "/etc/systemd/system/$service.service"
systemctl daemon-reload
systemctl enable "$service.service"

# Fails the deployment here, before the start, if the binary cannot run (libc, architecture).
"$prefix/bin/orders" --self-test
echo "AfterInstall: $("$prefix/bin/orders" --version) installed"
