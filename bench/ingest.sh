#!/usr/bin/env bash
# Sustained webhook ingest of `osprey serve` on loopback, for SQLite and PostgreSQL:
#   1. one simulated hour of a 50-node cluster (`osprey audit simulate`, ~1.4 M events, unique
#      audit ids), posted as EventList batches of 400 (the API server's default) from 8
#      connections by bench/ingest-load, as fast as the server answers, for SECONDS (the input
#      is sent again with new audit ids when it runs out first): events/s accepted and
#      the latency of the answers (p50/p99/max), with the full detection catalogue behind;
#   2. overload: the same with --max-pending-events 1000000, so detection falls behind and the
#      webhook answers 429; the server's peak RSS is sampled every 0.2 s in both runs (it must
#      stay flat: batches beyond the backlog are refused, not buffered). The backlog is larger
#      than the time clients wait after a 429 (Retry-After, 2 s) times the detection rate, or
#      the accepted rate would measure the clients' wait rather than detection.
#
#   Every run also reports detection: while the load ran (accepted less what was still
#   waiting at its end), in the second half of the load (the steady state of an overload run,
#   once its backlog has filled), and alone (the rate at which the rest was worked off after
#   it), and the mean time of a detection round's phases (osprey_detector_round_seconds).
#
#   3. PostgreSQL with the bus (--bus, NATS JetStream): the webhook's batches go through
#      JetStream to the detector (one server; the scale-out's own path), and its overload:
#      --bus-max-mb 16, so the webhook answers 429 once 16 MB of batches wait on the bus.
#
#   bench/ingest.sh [SECONDS] [RUN...]
#
# RUN names the runs to make (default all): sqlite, postgres, sqlite-overload,
# postgres-overload, postgres-bus, postgres-bus-overload. OSPREY_BENCH_BIN: a directory holding
# the osprey and osprey-ingest-load binaries to measure instead of building this tree's
# (to compare two builds in one sitting). OSPREY_BENCH_SERVE_ARGS: more `osprey serve` arguments
# for every run (`--graph-retention-days 0`: detection without the graph). OSPREY_BENCH_PERF=1: each run's server is recorded
# with `perf record -g` into perf-RUN.data in the current directory.
#
# PostgreSQL: OSPREY_BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test); each
# run uses a new schema, dropped afterwards. NATS: OSPREY_BENCH_NATS_URL (default
# nats://127.0.0.1:4222); the run's streams are left on it (empty once detected).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
shift || true
runs=" ${*:-sqlite postgres sqlite-overload postgres-overload postgres-bus postgres-bus-overload} "
if [ -n "${OSPREY_BENCH_BIN:-}" ]; then
  bin=$OSPREY_BENCH_BIN
else
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/osprey-target}
  cargo build --release -q --locked -p osprey -p osprey-ingest-load --manifest-path "$root/Cargo.toml"
  bin=$CARGO_TARGET_DIR/release
fi
osprey="$bin/osprey"
load="$bin/osprey-ingest-load"
pg=${OSPREY_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

$osprey -q audit simulate --nodes 50 --duration 1h --rate 400 -o "$work/events.jsonl"
echo "input: $(wc -l < "$work/events.jsonl") events, $(stat -c %s "$work/events.jsonl") bytes"

# detected ADDR: events detected so far by the server at ADDR.
detected() {
  curl -sf "http://$1/metrics" | awk '/^osprey_audit_events_detected_total / {print $2}'
}

# run NAME MAX_PENDING [--database URL]
run() {
  local name=$1 max=$2; shift 2
  case $runs in *" $name "*) ;; *) return 0 ;; esac
  local data="$work/data-$name"
  # shellcheck disable=SC2086 # OSPREY_BENCH_SERVE_ARGS is a list of words
  "$osprey" serve --data "$data" --listen 127.0.0.1:0 --max-pending-events "$max" "$@" \
    ${OSPREY_BENCH_SERVE_ARGS:-} 2> "$work/serve-$name.log" &
  server=$!
  local perf=
  if [ "${OSPREY_BENCH_PERF:-}" = 1 ]; then
    perf record -q -g -p "$server" -o "perf-$name.data" 2>/dev/null &
    perf=$!
  fi
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
  # The detected count halfway through and at the end: the second half's rate is detection
  # once the backlog has filled (steady state), unlike the whole run's.
  ( sleep "$((seconds / 2))"; echo "$(date +%s.%N) $(detected "$addr")" > "$work/half-$name" ) &
  local halfway=$!
  local result
  result=$("$load" --url "http://$addr" --cluster "$id" --token "$token" \
    --events "$work/events.jsonl" --batch 400 --concurrency 8 --seconds "$seconds" --repeat)
  local end steady=
  end="$(date +%s.%N) $(detected "$addr")"
  wait "$halfway" || true
  if [ -s "$work/half-$name" ]; then
    steady=" detected_per_second_second_half=$(echo "$end" | awk -v h="$(cat "$work/half-$name")" \
      '{split(h, a, " "); printf "%d", ($2 - a[2]) / ($1 - a[1])}')"
  fi
  local lag
  lag=$(curl -sf "http://$addr/metrics" |
    awk '/^osprey_detector_lag_events / {l=$2} /^osprey_bus_backlog_batches / {b=" bus_backlog_batches=" $2}
         /^osprey_detector_round_seconds_(sum|count)/ {match($0, /phase="[a-z]+"/); p=substr($0, RSTART+7, RLENGTH-8);
           if ($0 ~ /_sum/) s[p]=$2; else c[p]=$2}
         END {r=""; for (p in s) if (c[p] > 0) r=r sprintf(" %s_ms=%.1f", p, 1000*s[p]/c[p]); print l b (r ? " round_mean" r : "")}')
  # Detection alone: the rate at which the server works off what is left once the load stops
  # (at most 60 s; without a bus).
  local drain=
  local left=${lag%% *}
  if [ "${left:-0}" -gt 0 ] && [[ $* != *--bus* ]]; then
    local t0 now n
    t0=$(date +%s.%N)
    for _ in $(seq 600); do
      n=$(curl -sf "http://$addr/metrics" | awk '/^osprey_detector_lag_events / {print $2}')
      [ "${n:-1}" -eq 0 ] && break
      sleep 0.1
    done
    now=$(date +%s.%N)
    drain=" drain_events_per_second=$(echo "($left - ${n:-0}) / ($now - $t0)" | bc)"
  fi
  [ -n "$perf" ] && { kill -INT "$perf"; wait "$perf" 2>/dev/null || true; }
  kill "$server"; wait "$server" 2>/dev/null || true
  server=
  kill "$sampler" 2>/dev/null || true
  # Detection while the load ran: what was accepted less what was still waiting at its end.
  local during
  during=$(echo "$result" | python3 -c 'import json,sys; r=json.load(sys.stdin); left=int(sys.argv[1]) if sys.argv[1].isdigit() else 0; print(int((r["events"] - left) / r["seconds"]))' "${lag%% *}")
  echo "$name: $result detected_per_second_under_load=$during$steady peak_rss_kib=$(cat "$work/peak-$name" 2>/dev/null || echo ?) detector_lag_at_end=$lag$drain"
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
pg_run() { # NAME MAX [ARGS...]: a run on a new schema, made only when the run is wanted
  case $runs in *" $1 "*) ;; *) return 0 ;; esac
  local name=$1 max=$2; shift 2
  run "$name" "$max" --database "$(schema "${name//-/_}")" "$@"
}
pg_run postgres 2000000
run sqlite-overload 1000000
pg_run postgres-overload 1000000
pg_run postgres-bus 2000000 --bus "${OSPREY_BENCH_NATS_URL:-nats://127.0.0.1:4222}"
pg_run postgres-bus-overload 2000000 --bus "${OSPREY_BENCH_NATS_URL:-nats://127.0.0.1:4222}" --bus-max-mb 16
