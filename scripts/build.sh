#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Configure (once) and build into build/ (or $1 with extra meson options after it).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
[ -f "$dir/build.ninja" ] || meson setup "$dir" "$@" >/dev/null
ninja -C "$dir"
