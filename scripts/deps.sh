#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install what strata needs to build and test on Debian 12 (run as root; a no-op when all is present).
set -euo pipefail
pkgs=(meson ninja-build pkg-config g++ libfuse3-dev fuse3 libgtest-dev libgmock-dev python3 attr
      fuse-overlayfs kmod libarchive-dev libzstd-dev zlib1g-dev umoci
      libssl-dev nlohmann-json3-dev skopeo docker-registry apache2-utils libcurl4-openssl-dev openssl
      podman runc uidmap busybox-static e2fsprogs mount)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Kernel overlayfs is the oracle of the differential tests.
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
