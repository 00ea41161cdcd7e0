#!/usr/bin/env bash
# Audit detection, whole program: `osprey audit analyze` with the full catalogue on simulated
# traffic of a 50-node cluster, next to reading the same file (cat) as a floor; then memory
# over 1 and 10 million events streamed through stdin (it must stay flat).
# The per-core parse-only floor and catalogue rate come from
# `cargo bench -p osprey-audit --bench throughput`.
#
#   bench/audit.sh
#
# Needs hyperfine (Debian package).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/osprey-target}
cargo build --release -q -p osprey --manifest-path "$root/Cargo.toml"
osprey="$CARGO_TARGET_DIR/release/osprey"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One simulated hour at ~280 events/s on top of the cluster's own traffic: ~1 M events.
$osprey -q audit simulate --nodes 50 --duration 1h --rate 280 -o "$work/hour.jsonl"
events=$(wc -l < "$work/hour.jsonl")
bytes=$(stat -c %s "$work/hour.jsonl")
echo "input: $events events, $bytes bytes"

hyperfine -N --warmup 1 --runs 5 --export-markdown "$root/bench/audit.last.md" \
  -n "cat (read floor)" "cat $work/hour.jsonl" \
  -n "osprey audit analyze (full catalogue)" "$osprey -q audit analyze $work/hour.jsonl --format json"

for n in 1 10; do
  rate=$((n * 1000000 / 3600 + 1))
  /usr/bin/time -f "$n M events: %e s wall, %U s user, %M KiB peak RSS" \
    sh -c "$osprey -q audit simulate --nodes 50 --duration 1h --rate $rate | $osprey -q audit analyze - --format json > /dev/null" \
    2>&1 | tail -1
done
