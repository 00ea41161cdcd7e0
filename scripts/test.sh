#!/usr/bin/env bash
# Runs Osprey's whole test suite on a Debian machine with Rust installed:
#   1. installs the Debian packages the tests run (a real OCI registry, image tools, disk tools
#      (mke2fs, sfdisk, qemu-img), ClamAV's
#      harmless test files);
#   2. builds the benchmark images of ../shared/bench/build-images.sh once per machine
#      (cached in ~/.cache/osprey-bench), when that script is available;
#   3. runs every test of the workspace and checks that the fuzz targets still build.
# Tests start their own servers (docker-registry on free loopback ports, token servers).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

packages=(docker-registry skopeo umoci clamav-testfiles e2fsprogs fdisk qemu-utils)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  as_root apt-get update -q >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# A build cache outside the clone keeps CI warm between runs.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/osprey-target}

bench=${OSPREY_BENCH_IMAGES:-$HOME/.cache/osprey-bench}
builder="$root/../shared/bench/build-images.sh"
if [ ! -f "$bench/app/index.json" ] && [ -x "$builder" ]; then
  echo "== building benchmark images into $bench (once per machine)"
  as_root "$builder" "$bench"
fi
if [ -f "$bench/app/index.json" ]; then
  export OSPREY_BENCH_IMAGES=$bench OSPREY_REQUIRE_BENCH_IMAGES=1
fi

echo "== cargo test"
cargo test --workspace --locked

echo "== fuzz targets build"
cargo check --locked --manifest-path fuzz/Cargo.toml --bins
