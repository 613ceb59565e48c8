#!/usr/bin/env bash
# Installs every Debian package runner needs to build, test and benchmark. Idempotent: when all
# are present it does nothing (and needs no network).
set -euo pipefail

packages=(
  # build
  g++ cmake ninja-build pkg-config
  libyaml-dev libgit2-dev nlohmann-json3-dev libcli11-dev libfmt-dev libssl-dev
  libcurl4-openssl-dev libarchive-dev zlib1g-dev libdeflate-dev libxml2-dev libre2-dev
  # runner serve: HTTP with Boost.Beast (header-only)
  libboost1.74-dev
  # the fuzz build (tests/fuzz): clang 14 cannot compile <expected> with libstdc++ 12
  clang-19 libclang-rt-19-dev
  # steps run by the tests and the example pipeline
  packer
  # tests
  libgtest-dev libgmock-dev git bash libxml2-utils bsdutils procps
  zip unzip awscli
  # the fake smart-HTTP Git server (tests/git/http_git_server.py)
  python3
  # the build page's browser test (driven by npm's playwright-core)
  chromium
  # benchmarks
  make libarchive-tools time bc rclone nginx-light
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$package")
  fi
done
# The S3 test server (tests/s3: @20minutes/s3rver, installed by npm ci) and its fault proxy
# need node and npm. A machine may already have both from elsewhere (NodeSource's nodejs bundles
# npm and conflicts with Debian's npm package): install Debian's only when npm is missing.
command -v npm >/dev/null || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps.sh: run as root or install sudo" >&2; exit 1; }
  sudo=(sudo)
fi
echo "deps.sh: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
  "${missing[@]}"
