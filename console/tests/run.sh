#!/usr/bin/env bash
# The console's browser tests: starts `osprey serve --demo` on a free loopback port with a
# scratch data directory, waits until the demo is set up, runs browser.mjs in Debian's
# chromium (playwright-core from package-lock.json here), and stops the server.
#
#   console/tests/run.sh OSPREY_BINARY [OUT_DIR]
# Screenshots go to OUT_DIR (default: target/console-test under the repository).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:?usage: console/tests/run.sh OSPREY_BINARY [OUT_DIR]}
out=${2:-$root/target/console-test}
[ -x "$bin" ] || { echo "console/tests/run.sh: $bin: not an executable" >&2; exit 2; }
[ -x "${OSPREY_CHROMIUM:-/usr/bin/chromium}" ] || { echo "console/tests/run.sh: no chromium (apt-get install chromium)" >&2; exit 2; }
# playwright-core, exactly as locked (no browser download: Debian's chromium is used).
if ! cmp -s "$here/package-lock.json" "$here/node_modules/.package-lock.json" 2>/dev/null; then
  (cd "$here" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/osprey-console.XXXXXX")
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$root" && exec "$bin" serve --data "$work/data" --listen "127.0.0.1:$port" --demo) >"$work/serve.log" 2>&1 &
server=$!
# The demo is ready when its summary ends (detection and the triggered scan are done).
for _ in $(seq 600); do
  grep -q "demo: the API is described at" "$work/serve.log" && break
  if ! kill -0 "$server" 2>/dev/null; then cat "$work/serve.log"; echo "console/tests/run.sh: the server stopped" >&2; exit 1; fi
  sleep 0.5
done
grep -q "demo: the API is described at" "$work/serve.log" || { cat "$work/serve.log"; echo "console/tests/run.sh: the demo was not ready in 300 s" >&2; exit 1; }
rm -rf "$out"
node "$here/browser.mjs" "http://127.0.0.1:$port" "$work/data" "$out" || { tail -20 "$work/serve.log"; exit 1; }
