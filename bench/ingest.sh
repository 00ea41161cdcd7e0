#!/usr/bin/env bash
# Sustained webhook ingest of `osprey serve` on loopback, for SQLite and PostgreSQL:
#   1. one simulated hour of a 50-node cluster (`osprey audit simulate`, ~1.4 M events, unique
#      audit ids), posted as EventList batches of 400 (the API server's default) from 8
#      connections by bench/ingest-load, as fast as the server answers: events/s accepted and
#      the latency of the answers (p50/p99/max), with the full detection catalogue behind;
#   2. overload: the same with --max-pending-events 100000, so detection falls behind and the
#      webhook answers 429; the server's peak RSS is sampled every 0.2 s in both runs (it must
#      stay flat: batches beyond the backlog are refused, not buffered).
#
#   3. PostgreSQL with the bus (--bus, NATS JetStream): the webhook's batches go through
#      JetStream to the detector (one server; the scale-out's own path), and its overload:
#      --bus-max-mb 16, so the webhook answers 429 once 16 MB of batches wait on the bus.
#
#   bench/ingest.sh [SECONDS]
#
# PostgreSQL: OSPREY_BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test); each
# run uses a new schema, dropped afterwards. NATS: OSPREY_BENCH_NATS_URL (default
# nats://127.0.0.1:4222); the run's streams are left on it (empty once detected).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/osprey-target}
cargo build --release -q --locked -p osprey -p osprey-ingest-load --manifest-path "$root/Cargo.toml"
osprey="$CARGO_TARGET_DIR/release/osprey"
load="$CARGO_TARGET_DIR/release/osprey-ingest-load"
pg=${OSPREY_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

$osprey -q audit simulate --nodes 50 --duration 1h --rate 400 -o "$work/events.jsonl"
echo "input: $(wc -l < "$work/events.jsonl") events, $(stat -c %s "$work/events.jsonl") bytes"

# run NAME MAX_PENDING [--database URL]
run() {
  local name=$1 max=$2; shift 2
  local data="$work/data-$name"
  "$osprey" serve --data "$data" --listen 127.0.0.1:0 --max-pending-events "$max" "$@" \
    2> "$work/serve-$name.log" &
  server=$!
  local addr=
  for _ in $(seq 100); do
    addr=$(sed -n 's|^osprey: listening on http://\([^ ]*\).*|\1|p' "$work/serve-$name.log")
    [ -n "$addr" ] && break
    sleep 0.1
  done
  [ -n "$addr" ] || { cat "$work/serve-$name.log"; exit 1; }
  local admin cluster
  admin=$(cat "$data/admin-token")
  cluster=$(curl -sf -H "Authorization: Bearer $admin" -d "{\"name\":\"bench-$name\"}" "http://$addr/v1/clusters")
  local id token
  id=$(echo "$cluster" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  token=$(echo "$cluster" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ingest_token"])')
  local peak=0
  ( while kill -0 "$server" 2>/dev/null; do
      rss=$(awk '/VmRSS/ {print $2}' "/proc/$server/status" 2>/dev/null || echo 0)
      [ "${rss:-0}" -gt "$peak" ] && peak=$rss && echo "$peak" > "$work/peak-$name"
      sleep 0.2
    done ) &
  local sampler=$!
  local result
  result=$("$load" --url "http://$addr" --cluster "$id" --token "$token" \
    --events "$work/events.jsonl" --batch 400 --concurrency 8 --seconds "$seconds")
  local lag
  lag=$(curl -sf "http://$addr/metrics" |
    awk '/^osprey_detector_lag_events / {l=$2} /^osprey_bus_backlog_batches / {b=" bus_backlog_batches=" $2} END {print l b}')
  kill "$server"; wait "$server" 2>/dev/null || true
  server=
  kill "$sampler" 2>/dev/null || true
  echo "$name: $result peak_rss_kib=$(cat "$work/peak-$name" 2>/dev/null || echo ?) detector_lag_at_end=$lag"
}

schema() {
  local s="osprey_bench_$1_$$"
  psql "$pg" -qc "CREATE SCHEMA $s" >/dev/null
  echo "$pg?options=-c%20search_path%3D$s"
}
drop_schemas() {
  psql "$pg" -Atc "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'osprey_bench_%_$$'" |
    while read -r s; do psql "$pg" -qc "SET client_min_messages TO warning; DROP SCHEMA $s CASCADE" >/dev/null; done
}
trap 'cleanup; drop_schemas' EXIT

run sqlite 2000000
run postgres 2000000 --database "$(schema pg)"
run sqlite-overload 100000
run postgres-overload 100000 --database "$(schema pgo)"
run postgres-bus 2000000 --database "$(schema pgb)" --bus "${OSPREY_BENCH_NATS_URL:-nats://127.0.0.1:4222}"
run postgres-bus-overload 2000000 --database "$(schema pgbo)" --bus "${OSPREY_BENCH_NATS_URL:-nats://127.0.0.1:4222}" --bus-max-mb 16
