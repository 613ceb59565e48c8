#!/bin/bash
# CodeDeploy ApplicationStart (as root): start the new version.
set -euo pipefail
systemctl restart orders.service
echo "ApplicationStart: orders.service restarted"
