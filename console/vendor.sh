#!/usr/bin/env bash
# The web console's front-end libraries: htmx (partial page updates) and cytoscape.js (the
# graph view). They come from the npm registry, pinned with their integrity in
# package-lock.json; their built files and licences are committed under console/vendor/ and
# embedded in the osprey binary, so `cargo build` never needs npm and the console needs no CDN.
#
#   console/vendor.sh           installs the locked packages in a scratch directory and copies
#                               their files into console/vendor/ (after changing the lock)
#   console/vendor.sh --check   installs them the same way and fails when a file in
#                               console/vendor/ differs from the locked package's, or is not one
#                               of them (scripts/test.sh runs this)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mode=${1:-copy}
case $mode in copy | --check) ;; *) echo "usage: console/vendor.sh [--check]" >&2; exit 2 ;; esac
command -v npm >/dev/null || { echo "console/vendor.sh: npm is not installed" >&2; exit 2; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp "$here/package.json" "$here/package-lock.json" "$scratch/"
# `npm ci` installs exactly the lock, checking each tarball against its integrity hash.
(cd "$scratch" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
# A file of a locked package (under node_modules/) and its name in console/vendor/.
files=(
  "htmx.org/dist/htmx.min.js htmx.min.js"
  "htmx.org/LICENSE htmx.LICENSE"
  "cytoscape/dist/cytoscape.min.js cytoscape.min.js"
  "cytoscape/LICENSE cytoscape.LICENSE"
)
status=0
expected=()
for f in "${files[@]}"; do
  read -r from to <<<"$f"
  expected+=("$to")
  if [ "$mode" = copy ]; then
    cp "$scratch/node_modules/$from" "$here/vendor/$to"
  elif ! cmp -s "$scratch/node_modules/$from" "$here/vendor/$to"; then
    echo "console/vendor/$to: not $from of the locked version (run console/vendor.sh)" >&2
    status=1
  fi
done
for f in "$here"/vendor/*; do
  name=$(basename "$f")
  if ! printf '%s\n' "${expected[@]}" | grep -qx "$name"; then
    echo "console/vendor/$name: not a file of a locked package (console/vendor.sh lists them)" >&2
    status=1
  fi
done
[ "$mode" = copy ] && echo "console/vendor/: ${#files[@]} files from package-lock.json"
exit $status
