#!/usr/bin/env python3
"""Writes deny/advisory-db/, the offline copy of the RustSec advisory database that
`cargo deny check advisories` reads (scripts/deny.sh), from RustSec's OSV export (the
rustsec/advisory-db repository's `osv` branch, `crates/*.json`; CC0-1.0).

    scripts/advisory-db-import.py OSV_DIR

cargo-deny reads the advisory-db layout: `crates/<crate>/<ID>.md`, a TOML front matter in a
```toml fence, then the title and the description. RustSec's OSV records carry the same facts;
each affected range [introduced, fixed) becomes its complement as version requirements:
`unaffected` below the first introduced version, `patched` from each fixed version up to the
next introduced one. Refresh the copy with a newer export whenever dependencies change.
"""
import json
import os
import re
import shutil
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
OUT = os.path.join(ROOT, "deny", "advisory-db")


def toml_str(s):
    return json.dumps(s, ensure_ascii=False)


def toml_list(items):
    return "[" + ", ".join(toml_str(i) for i in items) + "]"


def semver_key(v):
    core, _, pre = v.split("+", 1)[0].partition("-")
    nums = [int(x) for x in core.split(".")]
    # A release sorts after its pre-releases; "0.0.0-0" is the lowest version there is.
    return nums, (0, pre) if pre else (1, "")


def requirements(events):
    """The versions outside [introduced, fixed) intervals: (unaffected, patched) requirements."""
    intervals, start = [], None
    for e in events:
        if "introduced" in e:
            start = e["introduced"]
        elif "fixed" in e and start is not None:
            intervals.append((start, e["fixed"]))
            start = None
    if start is not None:
        intervals.append((start, None))  # affected from here on, no fix
    intervals.sort(key=lambda i: semver_key(i[0]))
    unaffected, patched = [], []
    lowest = intervals[0][0] if intervals else None
    if lowest and semver_key(lowest) > semver_key("0.0.0-0"):
        unaffected.append(f"< {lowest}")
    for n, (_, fixed) in enumerate(intervals):
        if fixed is None:
            continue
        nxt = intervals[n + 1][0] if n + 1 < len(intervals) else None
        patched.append(f">= {fixed}, < {nxt}" if nxt else f">= {fixed}")
    return unaffected, patched


def advisory(record):
    (affected,) = record["affected"]
    specific = affected.get("database_specific") or {}
    crate = affected["package"]["name"]
    events = [e for r in affected.get("ranges") or [] if r["type"] == "SEMVER" for e in r["events"]]
    unaffected, patched = requirements(events)
    url = next((r["url"] for r in record.get("references") or [] if r["type"] != "PACKAGE"), None)
    lines = ["```toml", "[advisory]", f"id = {toml_str(record['id'])}", f"package = {toml_str(crate)}",
             f"date = {toml_str(record['published'][:10])}"]
    if url:
        lines.append(f"url = {toml_str(url)}")
    if specific.get("categories"):
        lines.append(f"categories = {toml_list(specific['categories'])}")
    if record.get("aliases"):
        lines.append(f"aliases = {toml_list(record['aliases'])}")
    if specific.get("cvss"):
        lines.append(f"cvss = {toml_str(specific['cvss'])}")
    if specific.get("informational"):
        lines.append(f"informational = {toml_str(specific['informational'])}")
    if record.get("withdrawn"):
        lines.append(f"withdrawn = {toml_str(record['withdrawn'][:10])}")
    lines += ["", "[versions]", f"patched = {toml_list(patched)}"]
    if unaffected:
        lines.append(f"unaffected = {toml_list(unaffected)}")
    lines += ["```", "", f"# {record.get('summary') or record['id']}", "", (record.get("details") or "").strip(), ""]
    return crate, "\n".join(lines)


def main():
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        sys.exit("usage: scripts/advisory-db-import.py OSV_DIR (RustSec's OSV export: crates/*.json)")
    src = sys.argv[1]
    if os.path.exists(os.path.join(OUT, "crates")):
        shutil.rmtree(os.path.join(OUT, "crates"))  # README.md stays
    n = 0
    for d, _, files in os.walk(src):
        for f in sorted(files):
            if not re.match(r"^RUSTSEC-\d{4}-\d{4}\.json$", f):
                continue
            with open(os.path.join(d, f)) as fh:
                record = json.load(fh)
            crate, text = advisory(record)
            path = os.path.join(OUT, "crates", crate, f"{record['id']}.md")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as out:
                out.write(text)
            n += 1
    for lic in ("LICENSE.txt", "LICENSE"):
        p = os.path.join(src, lic)
        if os.path.exists(p):
            shutil.copy2(p, os.path.join(OUT, "LICENSE.txt"))
    print(f"{OUT}: {n} advisories", file=sys.stderr)


if __name__ == "__main__":
    main()
