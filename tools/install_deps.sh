#!/usr/bin/env bash
# Installs kvsim's build dependencies from Debian's archive, only those missing.
# Idempotent; prints nothing when everything is already installed.
set -euo pipefail

# python3-matplotlib draws the reports (tools/report); chromium renders them in the tests;
# python3-pandas backs the Python module (tools/python/kvsim); Open MPI builds and tests
# `mpirun ... kvsim plan` (optional for a build: kvsim builds without it).
packages=(cmake g++ make libboost-program-options-dev libfmt-dev libyaml-cpp-dev
          libeigen3-dev libgtest-dev libgmock-dev python3-matplotlib python3-pandas chromium
          libopenmpi-dev openmpi-bin)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y -qq "${missing[@]}" >/dev/null; then
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
