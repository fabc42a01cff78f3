#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install dependencies, build, run every test suite: unit, integration (real mounts) and differential
# (kernel overlayfs vs stratafs), then unit + integration again under ASan/UBSan.
# Mount tests may skip only where FUSE or overlayfs is really absent; with CI=true a skip is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
if [ "${CI:-}" = true ]; then export STRATA_REQUIRE_MOUNT=1; fi
scripts/build.sh build
meson test -C build --print-errorlogs --suite unit --suite integration --suite differential
scripts/build.sh build-asan -Db_sanitize=address,undefined -Db_lundef=false
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C build-asan --print-errorlogs --suite unit --suite integration
echo "all suites passed"
