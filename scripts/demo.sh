#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Self-contained demo (no network): build stratafs, make three image-like layers, mount their union, change it,
# and show that the upper directory it wrote mounts unchanged with the kernel's overlayfs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build >/dev/null
bin=$PWD/build/stratafs
strata=$PWD/build/strata
t=$(mktemp -d /tmp/strata-demo.XXXXXX)
cleanup() {
  for m in "$t/merged" "$t/kernel" "$t/store/containers/demo/merged"; do
    if mountpoint -q "$m"; then umount "$m"; fi
  done
  rm -rf "$t"
}
trap cleanup EXIT
mkdir -p "$t"/{base,app,config,upper,work,merged,kernel,kwork}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# Three layers, bottom to top: a base system, an application, a configuration layer that deletes and hides.
mkdir -p "$t/base/etc" "$t/base/usr/bin" "$t/base/var/cache/apt"
echo 'NAME="Demo Linux"' > "$t/base/etc/os-release"
printf '#!/bin/sh\necho hello from the base layer\n' > "$t/base/usr/bin/hello"; chmod 755 "$t/base/usr/bin/hello"
for i in 1 2 3; do echo "cached $i" > "$t/base/var/cache/apt/pkg$i.deb"; done
echo "motd v1" > "$t/base/etc/motd"
mkdir -p "$t/app/usr/bin" "$t/app/var/cache/apt"
printf '#!/bin/sh\necho hello from the app layer\n' > "$t/app/usr/bin/hello"; chmod 755 "$t/app/usr/bin/hello"
setfattr -n trusted.overlay.opaque -v y "$t/app/var/cache/apt"      # the app layer emptied the apt cache
mkdir -p "$t/config/etc"
mknod "$t/config/etc/motd" c 0 0                                     # and the config layer deleted motd

step "mount: stratafs -o lowerdir=config:app:base,upperdir=upper,workdir=work merged"
"$bin" -o "lowerdir=$t/config:$t/app:$t/base,upperdir=$t/upper,workdir=$t/work" "$t/merged"
(cd "$t/merged" && find . | sort | sed 's/^/  /')
step "the top layer wins, whiteouts and opaque directories hide what is below"
"$t/merged/usr/bin/hello"
ls -A "$t/merged/var/cache/apt" | sed 's/^/  apt cache: /'; echo "  (empty: opaque in the app layer)"
[ -e "$t/merged/etc/motd" ] || echo "  etc/motd: gone (whiteout in the config layer)"

step "change the union: copy-up on write, whiteouts on delete"
echo 'NAME="Demo Linux, patched"' > "$t/merged/etc/os-release"
rm "$t/merged/usr/bin/hello"
mkdir "$t/merged/srv" && echo "data" > "$t/merged/srv/state"
echo "  the lower layers are untouched:"; sed 's/^/    base: /' "$t/base/etc/os-release"
echo "  the upper holds exactly the change:"
(cd "$t/upper" && find . -mindepth 1 | sort | while read -r f; do
  if [ -c "$f" ]; then echo "    $f  (whiteout 0/0)"; else echo "    $f"; fi; done)

step "unmount, then mount the same upper with the kernel's overlayfs"
view=$(cd "$t/merged" && find . -printf '%p %M %s\n' | sort)
umount "$t/merged"
mount -t overlay overlay -o "lowerdir=$t/config:$t/app:$t/base,upperdir=$t/upper,workdir=$t/work" "$t/kernel"
kview=$(cd "$t/kernel" && find . -printf '%p %M %s\n' | sort)
umount "$t/kernel"
if [ "$view" = "$kview" ]; then echo "  identical tree under kernel overlayfs ($(echo "$view" | wc -l) entries)"
else diff <(echo "$view") <(echo "$kview"); echo "  MISMATCH"; exit 1; fi

step "strata: an OCI image (built here with umoci: base layer + app layer), pulled into a store, mounted by name"
export STRATA_ROOT=$t/store
umoci init --layout "$t/layout" && umoci new --image "$t/layout:demo"
umoci unpack --image "$t/layout:demo" "$t/bundle" >/dev/null
cp -a "$t/base/." "$t/bundle/rootfs/" && umoci repack --image "$t/layout:demo" "$t/bundle"
rm -rf "$t/bundle" && umoci unpack --image "$t/layout:demo" "$t/bundle" >/dev/null
cp -a "$t/app/usr/." "$t/bundle/rootfs/usr/" && rm "$t/bundle/rootfs/etc/motd"
umoci repack --image "$t/layout:demo" "$t/bundle"
"$strata" pull oci:"$t/layout:demo"
"$strata" pull oci:"$t/layout:demo"     # again: every layer is already in the store
"$strata" images
mnt=$("$strata" mount --name demo localhost/layout:demo)
echo "  mounted at $mnt:"; "$mnt/usr/bin/hello"
[ -e "$mnt/etc/motd" ] || echo "  etc/motd: deleted by the app layer"
"$strata" umount demo
