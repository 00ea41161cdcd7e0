#!/usr/bin/env python3
"""Copies the test data Osprey's tests read into testdata/, from a checkout of the public
sources it was taken from (laid out as CORPUS/{pkgdb,vulndb,k8s-audit,malware-hashes,yara}).

    scripts/testdata-import.py CORPUS

What is taken, and why only that (the repository keeps its test data within ~25 MB):
- pkgdb/: every package-database fixture except the peer tools' golden outputs;
- vulndb/: the advisories about the packages the vulnerability tests match (the Go modules and
  crates of pkgdb's binaries, the bench app image's pip packages, the gems of pkgdb's
  Gemfile.lock) plus a fixed slice of other records so the databases are not trivially small;
  the Alpine secdb of the three releases the tests use; the Debian DSA/DLA lists from 2022 on.
  Matching is per package name, so the oracle's answers (crates/vuln/tests/oracle) on this
  subset are the answers on the whole feeds;
- k8s-audit/: the Falco trace files and the audit2rbac logs, whole;
- malware-hashes/: ten ESET campaigns' sample lists (BSD-2-Clause);
- yara/reversinglabs: the ReversingLabs rule set (MIT).
Sources and licences are in testdata/NOTICE. Nothing is fetched: CORPUS must exist.
"""
import json
import os
import re
import shutil
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
OUT = os.path.join(ROOT, "testdata")
PIP = os.path.join(ROOT, "scripts", "build-bench-images.sh")


def copytree(src, dst, ignore=None):
    if os.path.exists(dst):
        shutil.rmtree(dst)
    shutil.copytree(src, dst, symlinks=True, ignore=ignore)


def pep503(n):
    return re.sub(r"[-_.]+", "-", n).lower()


def osv_subset(src, dst, wanted, normalize=lambda n: n, extra=0):
    """Every record naming a wanted package, plus the first `extra` others by file name."""
    files = sorted(
        os.path.relpath(os.path.join(d, f), src) for d, _, fs in os.walk(src) for f in fs if f.endswith(".json")
    )
    taken = others = 0
    for f in files:
        with open(os.path.join(src, f)) as fh:
            record = json.load(fh)
        names = {normalize((a.get("package") or {}).get("name") or "") for a in record.get("affected") or []}
        if names & wanted or others < extra:
            others += 0 if names & wanted else 1
            os.makedirs(os.path.dirname(os.path.join(dst, f)), exist_ok=True)
            shutil.copy2(os.path.join(src, f), os.path.join(dst, f))
            taken += 1
    os.makedirs(dst, exist_ok=True)
    for lic in ("LICENSE", "LICENSE.txt"):
        if os.path.exists(os.path.join(src, lic)):
            shutil.copy2(os.path.join(src, lic), os.path.join(dst, lic))
    print(f"{dst}: {taken} records", file=sys.stderr)


def tracker_since(src, dst, year):
    """The advisories of a DSA/DLA list dated `year` or later (the list is newest first)."""
    keep, out = True, []
    with open(src) as fh:
        for line in fh:
            m = re.match(r"^\[\d\d \w\w\w (\d{4})\]", line)
            if m:
                keep = int(m.group(1)) >= year
            if keep:
                out.append(line)
    with open(dst, "w") as fh:
        fh.writelines(out)


def derive_hash_lists(eset):
    """The ESET hashes again in the two other list formats Osprey reads: ClamAV's .hsb/.hdb
    (malware-sigs/ioc.*) and LOKI's `hash;description` (malware-hashes/hash-iocs.txt)."""
    found = {}  # hash -> campaign
    for campaign in sorted(os.listdir(eset)):
        for algo in ("sha256", "md5", "sha1"):
            p = os.path.join(eset, campaign, f"samples.{algo}")
            if os.path.exists(p):
                with open(p, errors="replace") as fh:
                    for h in re.findall(r"\b[0-9a-fA-F]{32,64}\b", fh.read()):
                        if len(h) in (32, 40, 64):
                            found.setdefault(h.lower(), campaign)
    sigs = os.path.join(OUT, "malware-sigs")
    os.makedirs(sigs, exist_ok=True)
    for ext, size in (("hsb", 64), ("hdb", 32)):
        hashes = sorted(h for h in found if len(h) == size)
        with open(os.path.join(sigs, f"ioc.{ext}"), "w") as fh:
            for i, h in enumerate(hashes, 1):
                fh.write(f"{h}:*:Ioc.Eset.{ext}.{i}:73\n")
    with open(os.path.join(OUT, "malware-hashes", "hash-iocs.txt"), "w") as fh:
        fh.write("# ESET malware-ioc sample hashes in LOKI's hash;description format\n")
        for h, campaign in sorted(found.items()):
            fh.write(f"{h};ESET {campaign}\n")


def main():
    if len(sys.argv) != 2 or not os.path.isdir(os.path.join(sys.argv[1], "pkgdb")):
        sys.exit("usage: scripts/testdata-import.py CORPUS (a folder holding pkgdb/, vulndb/, ...)")
    corpus = os.path.abspath(sys.argv[1])
    os.makedirs(OUT, exist_ok=True)

    copytree(os.path.join(corpus, "pkgdb"), os.path.join(OUT, "pkgdb"),
             ignore=lambda d, names: ["goldens"] if d == os.path.join(corpus, "pkgdb") else [])
    copytree(os.path.join(corpus, "k8s-audit", "falco-trace-files"), os.path.join(OUT, "k8s-audit", "falco-trace-files"))
    copytree(os.path.join(corpus, "k8s-audit", "audit2rbac"), os.path.join(OUT, "k8s-audit", "audit2rbac"))
    copytree(os.path.join(corpus, "yara", "reversinglabs"), os.path.join(OUT, "yara", "reversinglabs"))

    eset_src = os.path.join(corpus, "malware-hashes", "eset-malware-ioc")
    eset_dst = os.path.join(OUT, "malware-hashes", "eset-malware-ioc")
    if os.path.exists(eset_dst):
        shutil.rmtree(eset_dst)
    os.makedirs(eset_dst)
    shutil.copy2(os.path.join(eset_src, "LICENSE"), eset_dst)
    campaigns = sorted(d for d in os.listdir(eset_src) if os.path.isdir(os.path.join(eset_src, d)))
    for c in campaigns[::12]:
        copytree(os.path.join(eset_src, c), os.path.join(eset_dst, c))
    derive_hash_lists(eset_dst)
    sigs = os.path.join(OUT, "malware-sigs")
    os.makedirs(sigs, exist_ok=True)
    for f in ("own.hdb", "own.hsb", "own.ndb", "small.yar"):
        shutil.copy2(os.path.join(corpus, "malware-sigs", f), sigs)

    vulndb, out = os.path.join(corpus, "vulndb"), os.path.join(OUT, "vulndb")
    if os.path.exists(out):
        shutil.rmtree(out)
    go, crates = set(), set()
    with open(os.path.join(ROOT, "crates", "vuln", "tests", "oracle", "binaries.tsv")) as fh:
        for line in fh:
            if line.startswith("#") or not line.strip():
                continue
            eco, name, _ = line.rstrip("\n").split("\t")
            (go if eco == "Go" else crates).add(name)
    osv_subset(os.path.join(vulndb, "golang-vulndb", "osv"), os.path.join(out, "golang-vulndb", "osv"), go, extra=40)
    osv_subset(os.path.join(vulndb, "rustsec", "osv"), os.path.join(out, "rustsec", "osv"),
               {c.lower().replace("_", "-") for c in crates}, lambda n: n.lower().replace("_", "-"), extra=120)
    with open(PIP) as fh:
        pip = re.search(r'pip_pkgs="([^"]+)"', fh.read()).group(1).split()
    osv_subset(os.path.join(vulndb, "pypa", "osv"), os.path.join(out, "pypa", "osv"),
               {pep503(p.split("==")[0]) for p in pip}, pep503, extra=40)

    gems = set()
    with open(os.path.join(corpus, "pkgdb", "ruby", "syft-Gemfile.lock")) as fh:
        for line in fh:
            m = re.match(r"^    ([A-Za-z0-9_.-]+) \(([^)]+)\)$", line)
            if m:
                gems.add(m.group(1))
    rubysec = os.path.join(vulndb, "rubysec")
    for g in sorted(gems):
        if os.path.isdir(os.path.join(rubysec, "gems", g)):
            copytree(os.path.join(rubysec, "gems", g), os.path.join(out, "rubysec", "gems", g))
    copytree(os.path.join(rubysec, "rubies", "ruby"), os.path.join(out, "rubysec", "rubies", "ruby"))
    shutil.copy2(os.path.join(rubysec, "LICENSE.txt"), os.path.join(out, "rubysec"))

    for release in ("v3.4", "v3.10", "v3.11"):
        copytree(os.path.join(vulndb, "alpine-secdb", release), os.path.join(out, "alpine-secdb", release))

    os.makedirs(os.path.join(out, "debian-security-tracker"))
    for name in ("DSA.list", "DLA.list"):
        tracker_since(os.path.join(vulndb, "debian-security-tracker", name),
                      os.path.join(out, "debian-security-tracker", name), 2022)


if __name__ == "__main__":
    main()
