#!/usr/bin/env bash
# Vulnerability data and matching, whole program: `osprey db build` of the feeds in the folder
# OSPREY_BENCH_VULNDB names (laid out as testdata/vulndb, its default; RESULTS.md used the whole
# feeds; target < 10 s), `osprey db info` (opening the database), and
# `osprey sbom scan` / `osprey image scan` of the bench app image against that database.
# The library-level numbers (open < 20 ms, match of 2,500 packages < 50 ms, and a synthetic
# 500,000-advisory database) come from `cargo bench -p osprey-vuln --bench matching`.
#
#   bench/vuln.sh [BENCH_IMAGES_DIR]     (default ~/.cache/osprey-bench)
#
# Needs hyperfine (Debian package) and the images of scripts/build-bench-images.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
images=${1:-$HOME/.cache/osprey-bench}
corpus=${OSPREY_BENCH_VULNDB:-$root/testdata/vulndb}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/osprey-target}
cargo build --release -q -p osprey --manifest-path "$root/Cargo.toml"
osprey="$CARGO_TARGET_DIR/release/osprey"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build="$osprey db build --out $work/vuln.db \
  --osv $corpus/golang-vulndb/osv $corpus/rustsec/osv $corpus/pypa/osv \
  --alpine-secdb $corpus/alpine-secdb --rubysec $corpus/rubysec \
  --debian-tracker $corpus/debian-security-tracker"
$build >/dev/null 2>&1
ls -l "$work/vuln.db"
export OSPREY_DB="$work/vuln.db" OSPREY_CACHE_DIR="$work/cache"
$osprey sbom "docker-archive:$images/app.tar" --format cyclonedx-json -o "$work/app.cdx.json"
python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['components']), 'components in the SBOM')" "$work/app.cdx.json"

# -N: no shell in between (db info takes milliseconds); hyperfine discards the output.
hyperfine -N --warmup 1 --runs 10 --export-markdown "$root/bench/vuln.last.md" \
  -n "db build (corpus)" "$build" \
  -n "db info" "$osprey db info --format json" \
  -n "sbom scan (app SBOM)" "$osprey sbom scan $work/app.cdx.json --format json" \
  -n "image scan (app, layer cache warm)" "$osprey image scan docker-archive:$images/app.tar --format json"
/usr/bin/time -f "db build: %e s wall, %U s user, %M KiB peak RSS" $build >/dev/null 2>"$work/time" || true
tail -1 "$work/time"
