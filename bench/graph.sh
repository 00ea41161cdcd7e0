#!/usr/bin/env bash
# Investigation-graph queries on a store of ten million audit events: one simulated day of a
# 50-node cluster (`osprey audit simulate`), stored with its graph
#   - SQLite: built offline by `osprey graph build` (the server's own detection), then served
#     by `osprey serve --data`;
#   - PostgreSQL: sent through a server's webhook by `osprey audit import`, on a new schema;
# then bench/graph_queries.py asks for the profiles of the cluster, its namespaces, subjects,
# addresses, pods and user agents over the whole day, and for the finding groups, and prints
# the latency percentiles; then bench/console_pages.py times every page of the web console over
# the same day and what a first load transfers. Goals: profile p95 < 50 ms, group listing
# < 100 ms (issue 16); every console page p95 < 100 ms, a first load < 500 KB (issue 17).
#
#   bench/graph.sh [EVENTS] [RUN...]
#
# EVENTS: events to simulate (default 10000000); RUN: sqlite, postgres (default both).
# OSPREY_BENCH_DAYS: days of history (default 1); with more, the EVENTS are spread over them
# (the cluster's own traffic, ~34,000 events an hour, is the floor) and the profiles are asked
# for the last day, so each checks what it saw against the 45 days of baseline before it.
# OSPREY_BENCH_ATTACKS: attack stories the simulator injects half-way (space-separated:
# anonymous-admin token-theft crypto-miner), so the store holds findings and groups.
# OSPREY_BENCH_BIN: a directory holding the osprey binary to measure instead of building this
# tree's. PostgreSQL: OSPREY_BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
events=${1:-10000000}
shift || true
runs=" ${*:-sqlite postgres} "
if [ -n "${OSPREY_BENCH_BIN:-}" ]; then
  bin=$OSPREY_BENCH_BIN
else
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/osprey-target}
  cargo build --release -q --locked -p osprey --manifest-path "$root/Cargo.toml"
  bin=$CARGO_TARGET_DIR/release
fi
osprey="$bin/osprey"
pg=${OSPREY_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
work=$(mktemp -d)
server=
schema=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  [ -n "$schema" ] && psql "$pg" -qc "SET client_min_messages TO warning; DROP SCHEMA $schema CASCADE" >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# The simulator's rate is the average (the cluster's own traffic topped up to it).
days=${OSPREY_BENCH_DAYS:-1}
rate=$((events / (86400 * days)))
[ "$rate" -ge 1 ] || rate=1
day_start=2026-01-01T00:00:00Z
day_end=2026-01-02T00:00:00Z
history_start=$(date -u -d "2026-01-02 00:00:00 UTC - $days days" +%Y-%m-%dT%H:%M:%SZ)
attacks=()
for a in ${OSPREY_BENCH_ATTACKS:-}; do attacks+=(--attack "$a"); done
simulate() {
  "$osprey" -q audit simulate --nodes 50 --duration "$((24 * days))h" --rate "$rate" --start "$history_start" "${attacks[@]}"
}

# serve DATA [ARGS...]: starts a server, sets $addr.
serve() {
  local data=$1; shift
  "$osprey" serve --data "$data" --listen 127.0.0.1:0 --scan-workers 0 "$@" 2> "$work/serve.log" &
  server=$!
  addr=
  for _ in $(seq 300); do
    addr=$(sed -n 's|^osprey: listening on http://\([^ ]*\).*|\1|p' "$work/serve.log")
    [ -n "$addr" ] && break
    sleep 0.1
  done
  [ -n "$addr" ] || { cat "$work/serve.log"; exit 1; }
}
stop() { kill "$server"; wait "$server" 2>/dev/null || true; server=; }
caught_up() {
  until curl -sf "http://$addr/metrics" | grep -qx 'osprey_detector_lag_events 0'; do sleep 1; done
}

if [[ $runs == *" sqlite "* ]]; then
  echo "== SQLite: osprey graph build"
  t0=$(date +%s)
  simulate | "$osprey" graph build --db "$work/sqlite" --cluster bench -
  echo "built in $(( $(date +%s) - t0 )) s; store $(du -sh "$work/sqlite" | cut -f1)"
  serve "$work/sqlite"
  python3 "$root/bench/graph_queries.py" "http://$addr" "$(cat "$work/sqlite/admin-token")" "$day_start" "$day_end"
  python3 "$root/bench/console_pages.py" "http://$addr" "$(cat "$work/sqlite/admin-token")" "$day_start" "$day_end"
  stop
fi

if [[ $runs == *" postgres "* ]]; then
  echo "== PostgreSQL: osprey audit import into osprey serve"
  schema=osprey_bench_graph_$$
  psql "$pg" -qc "CREATE SCHEMA $schema" >/dev/null
  serve "$work/pg" --database "$pg?options=-c%20search_path%3D$schema" --max-pending-events 4000000
  admin=$(cat "$work/pg/admin-token")
  cluster=$(curl -sf -H "Authorization: Bearer $admin" -d '{"name":"bench"}' "http://$addr/v1/clusters")
  id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$cluster")
  token=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["ingest_token"])' <<<"$cluster")
  t0=$(date +%s)
  simulate | "$osprey" -q audit import --server "http://$addr" --cluster "$id" --token "$token" -
  caught_up
  echo "stored and detected in $(( $(date +%s) - t0 )) s"
  python3 "$root/bench/graph_queries.py" "http://$addr" "$admin" "$day_start" "$day_end"
  python3 "$root/bench/console_pages.py" "http://$addr" "$admin" "$day_start" "$day_end"
  stop
fi
