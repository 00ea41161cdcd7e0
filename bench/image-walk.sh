#!/usr/bin/env bash
# Whole-image read: `osprey image inspect --files` (every layer streamed, blob digest and
# diff-id verified, whiteouts applied, merged tree built) on the bench app image, next to the
# floors: reading the bytes (cat) and listing the layers with GNU tar + gzip (no verification).
#
#   bench/image-walk.sh [BENCH_IMAGES_DIR]     (default ~/.cache/osprey-bench)
#
# Needs hyperfine (Debian package) and the images of scripts/build-bench-images.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
images=${1:-$HOME/.cache/osprey-bench}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/osprey-target}
cargo build --release -q -p osprey --manifest-path "$root/Cargo.toml"
osprey="$CARGO_TARGET_DIR/release/osprey"
layout="$images/app"
layers=$(python3 -c "
import json,sys
idx=json.load(open('$layout/index.json'))
m=json.load(open('$layout/blobs/sha256/'+idx['manifests'][0]['digest'].split(':')[1]))
print(' '.join('$layout/blobs/sha256/'+l['digest'].split(':')[1] for l in m['layers']))")
hyperfine --warmup 1 --runs 5 --export-markdown "$root/bench/image-walk.last.md" \
  -n "cat layer blobs (read floor)" "cat $layers > /dev/null" \
  -n "gzip -dc | tar -t (list floor)" "for l in $layers; do gzip -dc \$l | tar -t > /dev/null; done" \
  -n "osprey inspect --files oci-dir" "$osprey image inspect oci-dir:$layout:v1 --files --format json > /dev/null" \
  -n "osprey inspect --files docker-archive" "$osprey image inspect docker-archive:$images/app.tar --files --format json > /dev/null" \
  -n "osprey inspect (manifest+config only)" "$osprey image inspect oci-dir:$layout:v1 --format json > /dev/null"
