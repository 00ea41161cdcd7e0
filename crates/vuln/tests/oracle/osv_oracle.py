#!/usr/bin/env python3
"""An independent oracle for the corpus match tests: which advisories of
testdata/vulndb affect which installed packages, computed in Python with
`packaging` (PEP 440) and small ports of SemVer, RubyGems and apk-tools ordering written
from their specifications -- not from Osprey's Rust code.

It writes crates/vuln/tests/expected/*.tsv (ecosystem, name, version, advisory ids), which
tests/corpus.rs compares with Osprey's matcher. Regenerate after a corpus change with:

    python3 -m venv /tmp/oracle && /tmp/oracle/bin/pip install packaging pyyaml
    /tmp/oracle/bin/python crates/vuln/tests/oracle/osv_oracle.py
"""
import json
import os
import re
import sys
from functools import cmp_to_key

import yaml
from packaging.version import Version, InvalidVersion

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
CORPUS = os.path.join(ROOT, "testdata")
VULNDB = os.path.join(CORPUS, "vulndb")
OUT = os.path.join(HERE, "..", "expected")


def cmp(a, b):
    return (a > b) - (a < b)


# --- SemVer 2 (Go and crates.io) -------------------------------------------------------
def semver_key(v):
    v = v.strip()
    if v.startswith("go"):
        v = v[2:]
    v = v.lstrip("v").split("+", 1)[0]
    core, _, pre = v.partition("-")
    nums = [int(x) for x in core.split(".")]
    while len(nums) < 3:
        nums.append(0)
    return nums, pre


def semver_cmp(a, b):
    (na, pa), (nb, pb) = semver_key(a), semver_key(b)
    if na != nb:
        return cmp(na, nb)
    if pa == pb:
        return 0
    if not pa:
        return 1
    if not pb:
        return -1
    for x, y in zip(pa.split("."), pb.split(".")):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            return cmp(int(x), int(y))
        if x.isdigit():
            return -1
        if y.isdigit():
            return 1
        return cmp(x, y)
    return cmp(len(pa.split(".")), len(pb.split(".")))


# --- PEP 440 ----------------------------------------------------------------------------
def pep440_cmp(a, b):
    return cmp(Version(a), Version(b))


# --- RubyGems ---------------------------------------------------------------------------
def gem_segments(v):
    segs = []
    for part in re.findall(r"[0-9]+|[a-z]+", v.strip().lower()):
        segs.append(int(part) if part.isdigit() else part)
    # Trailing zeros do not count (1.0 == 1); drop them after the last string too.
    while len(segs) > 1 and segs[-1] == 0:
        segs.pop()
    return segs


def gem_cmp(a, b):
    sa, sb = gem_segments(a), gem_segments(b)
    for i in range(max(len(sa), len(sb))):
        x = sa[i] if i < len(sa) else 0
        y = sb[i] if i < len(sb) else 0
        if x == y:
            continue
        if isinstance(x, str) and isinstance(y, int):
            return -1
        if isinstance(x, int) and isinstance(y, str):
            return 1
        return cmp(x, y)
    return 0


def gem_bump(v):
    segs = [s for s in re.findall(r"[0-9]+|[a-z]+", v)]
    while any(not s.isdigit() for s in segs):
        segs.pop()
    if len(segs) > 1:
        segs.pop()
    segs[-1] = str(int(segs[-1]) + 1)
    return ".".join(segs)


def gem_satisfies(version, requirement):
    for part in requirement.split(","):
        part = part.strip()
        m = re.match(r"^(~>|>=|<=|!=|>|<|=)?\s*(.+)$", part)
        op, target = m.group(1) or "=", m.group(2).strip()
        c = gem_cmp(version, target)
        ok = {
            "=": c == 0, "!=": c != 0, ">": c > 0, "<": c < 0, ">=": c >= 0, "<=": c <= 0,
            "~>": c >= 0 and gem_cmp(version, gem_bump(target)) < 0,
        }[op]
        if not ok:
            return False
    return True


# --- apk (apk-tools' version.c, from its documented token rules) ------------------------
SUFFIX_ORDER = {"alpha": 1, "beta": 2, "pre": 3, "rc": 4, "cvs": 6, "svn": 7, "git": 8, "hg": 9, "p": 10}
KINDS = ["initial", "digit", "letter", "suffix", "suffix_no", "hash", "revision", "end"]


def apk_tokens(v):
    toks = []
    m = re.match(r"[0-9]+", v)
    toks.append(("initial", m.group(0)))
    rest = v[m.end():]
    while rest:
        if m := re.match(r"\.([0-9]+)", rest):
            toks.append(("digit", m.group(1)))
        elif m := re.match(r"[a-z]", rest):
            toks.append(("letter", m.group(0)))
        elif m := re.match(r"_([a-z]+)([0-9]*)", rest):
            toks.append(("suffix", m.group(1)))
            if m.group(2):
                toks.append(("suffix_no", m.group(2)))
        elif m := re.match(r"~([0-9a-f]+)", rest):
            toks.append(("hash", m.group(1)))
        elif m := re.match(r"-r([0-9]+)", rest):
            toks.append(("revision", m.group(1)))
        else:
            raise ValueError(v)
        rest = rest[m.end():]
    toks.append(("end", ""))
    return toks


def apk_cmp(a, b):
    ta, tb = apk_tokens(a), apk_tokens(b)
    for (ka, va), (kb, vb) in zip(ta, tb):
        if ka != kb:
            # A pre-release suffix is older than anything; else the side that goes on with
            # an earlier kind of token is newer.
            if ka == "suffix" and SUFFIX_ORDER[va] < 5:
                return -1
            if kb == "suffix" and SUFFIX_ORDER[vb] < 5:
                return 1
            return -1 if KINDS.index(ka) > KINDS.index(kb) else 1
        if ka == "end":
            return 0
        if ka == "suffix":
            c = cmp(SUFFIX_ORDER[va], SUFFIX_ORDER[vb])
        elif ka == "letter" or ka == "hash" or (ka == "digit" and (va.startswith("0") or vb.startswith("0"))):
            c = cmp(va, vb)
        else:
            c = cmp(int(va), int(vb))
        if c:
            return c
    return 0


# --- OSV ranges -------------------------------------------------------------------------
def in_range(version, events, vcmp):
    key = cmp_to_key(lambda x, y: -1 if x == "0" else (1 if y == "0" else vcmp(x, y)))
    evs = sorted(((k, v) for e in events for k, v in e.items()), key=lambda kv: key(kv[1]))
    affected = False
    for kind, v in evs:
        if kind == "introduced" and (v == "0" or vcmp(v, version) <= 0):
            affected = True
        elif kind == "fixed" and vcmp(v, version) <= 0:
            affected = False
        elif kind == "last_affected" and vcmp(v, version) < 0:
            affected = False
    return affected


def osv_affects(record, ecosystem, name, version, vcmp, normalize):
    for a in record.get("affected") or []:
        pkg = a.get("package") or {}
        if pkg.get("ecosystem") != ecosystem or normalize(pkg.get("name", "")) != normalize(name):
            continue
        for v in a.get("versions") or []:
            try:
                if vcmp(v, version) == 0:
                    return True
            except (InvalidVersion, ValueError):
                pass
        for r in a.get("ranges") or []:
            if r.get("type") in ("ECOSYSTEM", "SEMVER"):
                try:
                    if in_range(version, r.get("events") or [], vcmp):
                        return True
                except (InvalidVersion, ValueError):
                    pass
    return False


def load_osv(directory):
    records = []
    for root, _, files in os.walk(directory):
        for f in files:
            if f.endswith(".json"):
                with open(os.path.join(root, f)) as fh:
                    r = json.load(fh)
                if not r.get("withdrawn"):
                    records.append(r)
    return records


def informational(r):
    return any((a.get("database_specific") or {}).get("informational") for a in r.get("affected") or [])


def write(name, rows):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name)
    with open(path, "w") as fh:
        fh.write("# ecosystem\tname\tversion\tadvisories (written by tests/oracle/osv_oracle.py)\n")
        for eco, n, v, ids in rows:
            fh.write(f"{eco}\t{n}\t{v}\t{','.join(sorted(ids))}\n")
    print(f"{path}: {len(rows)} packages, {sum(len(r[3]) for r in rows)} matches", file=sys.stderr)


def pep503(n):
    return re.sub(r"[-_.]+", "-", n).lower()


def osv_rows(ecosystem, records, packages, vcmp, normalize=lambda n: n, skip=lambda r: False):
    rows = []
    for n, v in packages:
        ids = {r["id"] for r in records if not skip(r) and osv_affects(r, ecosystem, n, v, vcmp, normalize)}
        rows.append((ecosystem, n, v, ids))
    return rows


def main():
    # PyPI: the pip packages of the bench app image (scripts/build-bench-images.sh).
    with open(os.path.join(ROOT, "scripts", "build-bench-images.sh")) as fh:
        pip = re.search(r'pip_pkgs="([^"]+)"', fh.read()).group(1).split()
    pypi = [tuple(p.split("==")) for p in pip]
    write("pypi-app.tsv", osv_rows("PyPI", load_osv(os.path.join(VULNDB, "pypa", "osv")), pypi, pep440_cmp, pep503))

    # Go and crates.io: the modules of the binaries in pkgdb (as `go version -m` and
    # cargo-auditable state them; the list is in tests/oracle/binaries.tsv).
    go, crates = [], []
    with open(os.path.join(HERE, "binaries.tsv")) as fh:
        for line in fh:
            if line.startswith("#") or not line.strip():
                continue
            eco, n, v = line.rstrip("\n").split("\t")
            (go if eco == "Go" else crates).append((n, v))
    write("go-binaries.tsv", osv_rows("Go", load_osv(os.path.join(VULNDB, "golang-vulndb", "osv")), go, semver_cmp))
    write("crates-binaries.tsv", osv_rows("crates.io", load_osv(os.path.join(VULNDB, "rustsec", "osv")), crates, semver_cmp,
                                          lambda n: n.lower().replace("_", "-"), informational))

    # RubyGems: the gems of pkgdb/ruby/syft-Gemfile.lock against RubySec.
    gems = []
    with open(os.path.join(CORPUS, "pkgdb", "ruby", "syft-Gemfile.lock")) as fh:
        for line in fh:
            m = re.match(r"^    ([A-Za-z0-9_.-]+) \(([^)]+)\)$", line)
            if m:
                gems.append((m.group(1), m.group(2)))
    advisories = []
    for root, _, files in os.walk(os.path.join(VULNDB, "rubysec", "gems")):
        for f in files:
            if f.endswith(".yml"):
                with open(os.path.join(root, f)) as fh:
                    advisories.append(yaml.safe_load(fh))
    rows = []
    for n, v in sorted(set(gems)):
        ids = set()
        for a in advisories:
            if a.get("gem") != n:
                continue
            safe = list(a.get("patched_versions") or []) + list(a.get("unaffected_versions") or [])
            if not any(gem_satisfies(v, req) for req in safe):
                ids.add(f"CVE-{a['cve']}" if a.get("cve") else (f"GHSA-{a['ghsa']}" if a.get("ghsa") else f"OSVDB-{a['osvdb']}"))
        rows.append(("RubyGems", n, v, ids))
    write("rubygems-gemfile.tsv", rows)

    # Alpine: installed databases against the secdb of their release, by origin package.
    for fixture, release in [("image-alpine-310", "v3.10"), ("image-alpine-311", "v3.11"), ("trivy-apk", "v3.4")]:
        pkgs = []
        with open(os.path.join(CORPUS, "pkgdb", "apk", fixture, "lib", "apk", "db", "installed")) as fh:
            for stanza in fh.read().split("\n\n"):
                fields = dict(line.split(":", 1) for line in stanza.splitlines() if len(line) > 2 and line[1] == ":")
                if "P" in fields and "V" in fields:
                    pkgs.append((fields.get("o", fields["P"]), fields["V"]))
        secfixes = {}
        for repo in ("main", "community"):
            p = os.path.join(VULNDB, "alpine-secdb", release, f"{repo}.yaml")
            if not os.path.exists(p):
                continue
            with open(p) as fh:
                doc = yaml.load(fh, Loader=yaml.BaseLoader)  # every scalar a string
            for entry in doc.get("packages") or []:
                pkg = entry["pkg"]
                for fixed, ids in (pkg.get("secfixes") or {}).items():
                    secfixes.setdefault(pkg["name"], []).append((fixed, ids or []))
        rows = []
        for origin, v in sorted(set(pkgs)):
            ids = set()
            for fixed, lines in secfixes.get(origin, []):
                if fixed == "0":
                    continue
                try:
                    if apk_cmp(v, fixed) < 0:
                        for line in lines:
                            ids.update(t for t in line.split() if re.match(r"^[A-Z][A-Z0-9]*-[0-9A-Za-z.-]+$", t))
                except ValueError:
                    pass  # a fixed version apk-tools would reject: the feed's typo
            rows.append((f"Alpine:{release}", origin, v, ids))
        write(f"alpine-{fixture}.tsv", rows)

    # apk ordering, pair by pair: every fixed version of each secdb v3.10 / v3.11 package
    # against the others, and every installed version against its origin's fixed versions.
    pairs = set()
    for release in ("v3.10", "v3.11"):
        for repo in ("main", "community"):
            with open(os.path.join(VULNDB, "alpine-secdb", release, f"{repo}.yaml")) as fh:
                doc = yaml.load(fh, Loader=yaml.BaseLoader)
            for entry in doc.get("packages") or []:
                versions = [v for v in (entry["pkg"].get("secfixes") or {}) if v != "0"]
                for a in versions:
                    for b in versions:
                        if a < b:
                            pairs.add((a, b))
    with open(os.path.join(OUT, "apk-order.tsv"), "w") as fh:
        fh.write("# a\tb\tcmp(a, b) by tests/oracle/osv_oracle.py (apk-tools rules)\n")
        n = 0
        for a, b in sorted(pairs):
            try:
                c = apk_cmp(a, b)
            except ValueError:
                continue  # not an apk version (a feed typo)
            fh.write(f"{a}\t{b}\t{c}\n")
            n += 1
    print(f"apk-order.tsv: {n} pairs", file=sys.stderr)


if __name__ == "__main__":
    main()
