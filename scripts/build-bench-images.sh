#!/usr/bin/env bash
# Builds the two real container images that Osprey's end-to-end tests and benchmarks read, from
# Debian's packages and the public package registries alone (no container engine, no registry):
#
#   scripts/build-bench-images.sh OUTDIR
#
# OUTDIR gets
#   debian-base/          OCI layout, tag v1: Debian 12 (debootstrap --variant=minbase), one layer
#   app/                  OCI layout, tag v1, three layers:
#                           1. the base above;
#                           2. apt: python3, pip, nodejs, npm, two Java libraries;
#                           3. app: old pip packages in /usr/local, an npm project in /app with
#                              old dependencies, two Go programs; deletes files of layer 2
#                              (whiteouts)
#   debian-base.tar, app.tar   the same images as `docker save` archives
#   app.packages.txt      what the app layer installed, to check a scanner's recall against
#   .builder              the SHA-256 of this script (scripts/test.sh rebuilds when it changes)
#
# Needs root (debootstrap, chroot) and ~3 GB of disk; 10-15 minutes on 2 cores, mostly
# downloads. Installs what it runs from Debian when missing.
set -euo pipefail
out=${1:?usage: scripts/build-bench-images.sh OUTDIR}
mirror=${OSPREY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$out"; out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/osprey-bench.XXXXXX")
cleanup() {
  umount "$work/app/proc" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The pip packages of the app layer: old versions on purpose (they have known advisories).
# crates/vuln/tests/oracle/osv_oracle.py and scripts/testdata-import.py read this line.
pip_pkgs="requests==2.19.1 urllib3==1.24.1 Django==2.2.0 PyYAML==5.3 Jinja2==2.10 MarkupSafe==1.1.1 idna==2.7 chardet==3.0.4 certifi==2018.4.16 Flask==1.0 Werkzeug==0.14.1 pillow==9.0.0 cryptography==3.3.2"
npm_deps='"lodash":"4.17.15","minimist":"1.2.0","express":"4.16.0","jsonwebtoken":"8.5.0","axios":"0.21.0","moment":"2.29.1","handlebars":"4.5.0","node-fetch":"2.6.0"'
go_programs="docker-registry skopeo"

install_tools() {
  # PyYAML, MarkupSafe and Pillow of those versions come as sources: pip builds them.
  local want=(debootstrap umoci skopeo rsync docker-registry python3-pip python3-dev gcc libjpeg-dev zlib1g-dev)
  local missing=()
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Runs a step quietly, showing the end of its log when it fails.
quiet() {
  local log=$1; shift
  "$@" >"$log" 2>&1 || { tail -25 "$log"; exit 1; }
}

base_rootfs() {
  echo "== debootstrap bookworm (minbase)"
  quiet "$work/debootstrap.log" debootstrap --variant=minbase bookworm "$work/base" "$mirror"
}

apt_rootfs() {
  echo "== apt layer"
  cp -a "$work/base" "$work/app"
  cp /etc/resolv.conf "$work/app/etc/resolv.conf"
  mount -t proc proc "$work/app/proc"
  quiet "$work/apt.log" chroot "$work/app" /bin/sh -c 'apt-get update -q &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      python3 python3-pip nodejs npm libcommons-lang3-java libjackson2-databind-java ca-certificates'
}

app_rootfs() {
  echo "== app layer: pip packages, an npm project, Go programs"
  local site="$work/app/usr/local/lib/python3.11/dist-packages"
  mkdir -p "$site"
  # shellcheck disable=SC2086 # one word per package
  quiet "$work/pip.log" python3 -m pip install --no-deps --no-compile --target "$site" $pip_pkgs
  mkdir -p "$work/app/app"
  printf '{"name":"shop-frontend","version":"1.0.0","private":true,\n "dependencies":{%s}}\n' \
    "$npm_deps" >"$work/app/app/package.json"
  # npm runs inside the image (nothing of Node's is needed on the host) and trusts what the
  # host trusts (a site's own certificate authority included), through a copy removed after.
  cp /etc/ssl/certs/ca-certificates.crt "$work/app/tmp/host-ca.crt"
  quiet "$work/npm.log" chroot "$work/app" /usr/bin/env NODE_EXTRA_CA_CERTS=/tmp/host-ca.crt /bin/sh -c \
    'cd /app && npm install --no-audit --no-fund --ignore-scripts --cache /tmp/npm-cache'
  rm -rf "$work/app/tmp/npm-cache" "$work/app/tmp/host-ca.crt"
  umount "$work/app/proc"
  for p in $go_programs; do cp "$(command -v "$p")" "$work/app/app/$p"; done
  rm -f "$work/app/etc/resolv.conf"
  {
    echo "# pip (in /usr/local/lib/python3.11/dist-packages)"
    tr ' ' '\n' <<<"$pip_pkgs"
    echo "# npm (in /app, direct dependencies; node_modules holds the full tree)"
    tr ',' '\n' <<<"$npm_deps"
    echo "# go binaries"
    for p in $go_programs; do echo "/app/$p"; done
  } >"$out/app.packages.txt"
}

# One OCI layout NAME (tag v1) from one rootfs per layer, then its docker archive.
layout() {
  local name=$1; shift
  local dir="$out/$name" n=0
  rm -rf "$dir"
  umoci init --layout "$dir"
  umoci new --image "$dir:v1"
  for layer in "$@"; do
    n=$((n + 1))
    local bundle="$work/bundle-$name-$n"
    umoci unpack --image "$dir:v1" "$bundle" >/dev/null
    case $layer in
      base) rsync -aH "$work/base/" "$bundle/rootfs/" ;;
      apt) rsync -aH --delete --exclude=/app --exclude=/usr/local "$work/app/" "$bundle/rootfs/" ;;
      app)
        rsync -aH --delete "$work/app/" "$bundle/rootfs/"
        # Files of the apt layer this one deletes: the image must not report them.
        rm -rf "$bundle/rootfs/usr/share/doc/python3"* "$bundle/rootfs/var/lib/apt/lists/"*
        ;;
    esac
    umoci repack --image "$dir:v1" "$bundle"
    rm -rf "$bundle"
  done
  umoci gc --layout "$dir"
  rm -f "$out/$name.tar"
  skopeo copy -q "oci:$dir:v1" "docker-archive:$out/$name.tar:bench/$name:v1"
}

install_tools
base_rootfs
apt_rootfs
app_rootfs
echo "== OCI layouts and docker archives"
layout debian-base base
layout app base apt app
sha256sum "$0" | cut -d' ' -f1 >"$out/.builder"
ls -la "$out"
