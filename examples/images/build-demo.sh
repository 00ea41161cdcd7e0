#!/usr/bin/env bash
# Rebuilds examples/images/demo, the small OCI image layout the README's first command inspects.
# Two layers: a slice of a real Debian 12 root file system (os-release, dpkg status, passwd),
# then an "app" layer with npm and pip package metadata that also deletes /etc/motd (a whiteout).
#
#   examples/images/build-demo.sh [DEBIAN_BASE_LAYOUT]
#
# DEBIAN_BASE_LAYOUT defaults to the debian-base image of scripts/build-bench-images.sh.
# Needs umoci (Debian package).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base=${1:-$HOME/.cache/osprey-bench/debian-base}
out="$here/demo"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

umoci unpack --rootless --image "$base:v1" "$work/debian" >/dev/null
src="$work/debian/rootfs"

rm -rf "$out"; umoci init --layout "$out"; umoci new --image "$out:v1"

umoci unpack --rootless --image "$out:v1" "$work/b1" >/dev/null
r="$work/b1/rootfs"
mkdir -p "$r/etc" "$r/usr/lib" "$r/usr/bin" "$r/var/lib/dpkg" "$r/tmp" "$r/root"
for l in bin lib sbin; do ln -s "usr/$l" "$r/$l"; done
cp -a "$src/usr/lib/os-release" "$r/usr/lib/os-release"
ln -s ../usr/lib/os-release "$r/etc/os-release"
cp -a "$src/etc/debian_version" "$src/etc/passwd" "$src/etc/group" "$r/etc/"
cp -a "$src/var/lib/dpkg/status" "$r/var/lib/dpkg/status"
echo "Welcome to the Osprey demo image." > "$r/etc/motd"
umoci repack --image "$out:v1" --history.created_by "ADD debian-12-slice.tar /" "$work/b1"

umoci unpack --rootless --image "$out:v1" "$work/b2" >/dev/null
r="$work/b2/rootfs"
rm "$r/etc/motd"
mkdir -p "$r/app/node_modules/lodash" "$r/usr/local/lib/python3.11/dist-packages/requests-2.19.1.dist-info"
cat > "$r/app/package.json" <<'JSON'
{"name": "demo-shop", "version": "1.0.0", "private": true, "dependencies": {"lodash": "4.17.15"}}
JSON
cat > "$r/app/node_modules/lodash/package.json" <<'JSON'
{"name": "lodash", "version": "4.17.15", "license": "MIT", "description": "Lodash modular utilities."}
JSON
cat > "$r/usr/local/lib/python3.11/dist-packages/requests-2.19.1.dist-info/METADATA" <<'META'
Metadata-Version: 2.1
Name: requests
Version: 2.19.1
Summary: Python HTTP for Humans.
License: Apache 2.0
META
printf '#!/bin/sh\necho "demo shop"\n' > "$r/app/run"; chmod 755 "$r/app/run"
umoci repack --image "$out:v1" --history.created_by "COPY app /app && pip install requests==2.19.1 && rm /etc/motd" "$work/b2"

umoci config --image "$out:v1" --config.entrypoint /app/run --config.workingdir /app --config.user 1000:1000 \
  --config.label org.opencontainers.image.title=osprey-demo --config.env NODE_ENV=production
umoci gc --layout "$out"
du -sh "$out"
