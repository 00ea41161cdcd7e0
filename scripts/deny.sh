#!/usr/bin/env bash
# `cargo deny check` (deny.toml) with nothing fetched: the advisories come from the offline copy
# of the RustSec database in deny/advisory-db (refreshed by scripts/advisory-db-import.py),
# served to cargo-deny as the clone it would otherwise make. Needs cargo-deny and git.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# The date of the RustSec snapshot the copy was made from (deny/advisory-db/README.md).
snapshot=2026-08-21T00:00:00Z

clones=$(mktemp -d "${TMPDIR:-/tmp}/osprey-advisory-dbs.XXXXXX")
trap 'rm -rf "$clones"' EXIT
export OSPREY_ADVISORY_DB_CLONES=$clones

# Where cargo-deny looks for its clone: a folder named after the database URL, which it says
# when the folder is missing.
clone=$(cargo deny check --disable-fetch advisories 2>&1 | grep -o "$clones/advisory-db-[0-9a-f]*" | head -1 || true)
if [ -z "$clone" ]; then
  echo "scripts/deny.sh: cargo-deny did not say where it keeps the advisory database" >&2
  exit 1
fi
cp -r deny/advisory-db "$clone"
git -C "$clone" init -q
git -C "$clone" add -A
GIT_AUTHOR_DATE=$snapshot GIT_COMMITTER_DATE=$snapshot \
  git -C "$clone" -c user.name=osprey -c user.email=osprey@localhost commit -q -m "RustSec snapshot"

cargo deny check --disable-fetch --hide-inclusion-graph
