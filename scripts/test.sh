#!/usr/bin/env bash
# Runs Osprey's whole test suite on a Debian machine with Rust installed, and nothing else:
#   1. installs the Debian packages the tests run (a real OCI registry, image tools, disk tools,
#      ClamAV's harmless test files, PostgreSQL and NATS when none is running), cargo-deny and
#      cargo-machete;
#   2. checks formatting, lints (clippy, warnings are errors) and dependencies (cargo deny:
#      licences, bans, sources, and advisories against the offline copy in deny/advisory-db;
#      cargo machete: no unused dependency; the console's embedded front-end files against
#      console/package-lock.json, with npm from Debian);
#   3. builds the two real images of scripts/build-bench-images.sh once per machine (cached in
#      ~/.cache/osprey-bench, rebuilt when the script changes);
#   4. uses the PostgreSQL (OSPREY_TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test)
#      and the NATS server with JetStream (OSPREY_TEST_NATS_URL, default nats://127.0.0.1:4222)
#      that answer, or starts its own on free ports and stops them at the end;
#   5. runs every test of the workspace and checks that the fuzz targets still build;
#   6. runs the web console's browser tests (console/tests/run.sh: Debian's chromium driven by
#      playwright-core against `osprey serve --demo`; screenshots in target/console-test).
# Tests start their own registries (docker-registry on free loopback ports) and token servers.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
apt_install() {
  local missing=()
  for p in "$@"; do installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return
  echo "== installing ${missing[*]}"
  as_root apt-get update -q >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# What this script started, stopped on any exit.
started=()
work=$(mktemp -d "${TMPDIR:-/tmp}/osprey-test.XXXXXX")
stop_services() {
  if [ -n "${images_pid:-}" ]; then kill "$images_pid" 2>/dev/null || true; wait "$images_pid" 2>/dev/null || true; fi
  for s in "${started[@]}"; do
    case $s in
      postgres) as_root runuser -u postgres -- "$pg_bin/pg_ctl" -D "$work/pg" -m fast stop >/dev/null 2>&1 || true ;;
      nats) kill "$nats_pid" 2>/dev/null && wait "$nats_pid" 2>/dev/null || true ;;
    esac
  done
  rm -rf "$work"
}
trap stop_services EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

apt_install docker-registry skopeo umoci clamav-testfiles e2fsprogs fdisk qemu-utils postgresql-client python3 chromium

# The two real images the end-to-end tests read, built once per machine (rebuilt when the
# builder changes). A build (10-15 minutes, mostly downloads) runs beside the compilation below
# and is waited for before the tests.
bench=${OSPREY_BENCH_IMAGES:-$HOME/.cache/osprey-bench}
images_pid=""
if [ "$(cat "$bench/.builder" 2>/dev/null)" != "$(sha256sum scripts/build-bench-images.sh | cut -d' ' -f1)" ] \
  || [ ! -f "$bench/app.tar" ]; then
  echo "== building the benchmark images into $bench in the background ($work/images.log)"
  as_root scripts/build-bench-images.sh "$bench" >"$work/images.log" 2>&1 &
  images_pid=$!
fi
wait_images() {
  [ -n "$images_pid" ] || return 0
  if ! wait "$images_pid"; then
    echo "building the benchmark images failed:"; tail -25 "$work/images.log"; exit 1
  fi
  images_pid=""
}

# A build cache outside the clone keeps CI warm between runs.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/osprey-target}

echo "== commit subjects"
# At most 72 characters, saying what changed (the why goes in the body); checked from the first
# commit made under the rule on.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  if git rev-parse -q --verify '7eb730c^{commit}' >/dev/null; then range=7eb730c..HEAD; else range=-1; fi
  long=$(git log --format=%s "$range" | python3 -c 'import sys; [print(l, end="") for l in sys.stdin if len(l.rstrip("\n")) > 72]')
  if [ -n "$long" ]; then
    echo "commit subjects longer than 72 characters:"; echo "$long"; exit 1
  fi
fi

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo deny check"
if ! cargo deny --version >/dev/null 2>&1; then
  echo "== installing cargo-deny"
  cargo install --locked --quiet cargo-deny@0.19.0
fi
scripts/deny.sh

echo "== cargo machete (unused dependencies)"
if ! cargo machete --version >/dev/null 2>&1; then
  echo "== installing cargo-machete"
  cargo install --locked --quiet cargo-machete@0.9.2
fi
cargo machete

echo "== console assets (console/vendor.sh --check against package-lock.json)"
command -v npm >/dev/null || apt_install npm
console/vendor.sh --check

echo "== benchmark images"
wait_images
export OSPREY_BENCH_IMAGES=$bench OSPREY_REQUIRE_BENCH_IMAGES=1

echo "== PostgreSQL"
export OSPREY_TEST_DATABASE_URL=${OSPREY_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
if psql "$OSPREY_TEST_DATABASE_URL" -qAtc 'select 1' >/dev/null 2>&1; then
  echo "using $OSPREY_TEST_DATABASE_URL"
else
  apt_install postgresql
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  port=$(free_port)
  mkdir -p "$work/pg"
  chown postgres "$work" "$work/pg"
  as_root runuser -u postgres -- "$pg_bin/initdb" -D "$work/pg" -U postgres --auth=trust >/dev/null
  started+=(postgres)
  as_root runuser -u postgres -- "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
    -o "-p $port -k $work/pg -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
  as_root runuser -u postgres -- "$pg_bin/createdb" -h 127.0.0.1 -p "$port" test
  export OSPREY_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/test"
  echo "started PostgreSQL on $OSPREY_TEST_DATABASE_URL"
fi

echo "== NATS with JetStream"
export OSPREY_TEST_NATS_URL=${OSPREY_TEST_NATS_URL:-nats://127.0.0.1:4222}
# A NATS server greets with an INFO line; JetStream is on when it says "jetstream":true.
nats_answers() {
  python3 - "$1" <<'EOF'
import socket, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
try:
    with socket.create_connection((u.hostname, u.port or 4222), timeout=3) as s:
        sys.exit(0 if b'"jetstream":true' in s.recv(4096) else 1)
except OSError:
    sys.exit(1)
EOF
}
if nats_answers "$OSPREY_TEST_NATS_URL"; then
  echo "using $OSPREY_TEST_NATS_URL"
else
  apt_install nats-server
  port=$(free_port)
  mkdir -p "$work/nats"
  nats-server -js -a 127.0.0.1 -p "$port" -sd "$work/nats" >"$work/nats.log" 2>&1 &
  nats_pid=$!
  started+=(nats)
  export OSPREY_TEST_NATS_URL="nats://127.0.0.1:$port"
  for _ in $(seq 100); do nats_answers "$OSPREY_TEST_NATS_URL" && break; sleep 0.1; done
  nats_answers "$OSPREY_TEST_NATS_URL" || { cat "$work/nats.log"; exit 1; }
  echo "started NATS on $OSPREY_TEST_NATS_URL"
fi

echo "== cargo test"
cargo test --workspace --locked

echo "== console in a browser (console/tests/run.sh)"
command -v npm >/dev/null || apt_install npm
console/tests/run.sh "$CARGO_TARGET_DIR/debug/osprey" "$root/target/console-test"

echo "== fuzz targets build"
cargo check --locked --manifest-path fuzz/Cargo.toml --bins
