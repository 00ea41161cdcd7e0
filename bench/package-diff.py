#!/usr/bin/env python3
"""Package sets of CycloneDX SBOMs side by side: per ecosystem, how many packages each tool
found, and which ones only some tools found. Packages are compared by (ecosystem, name,
version) taken from their purls, normalised (PyPI names per PEP 503, npm scopes, Maven
group:artifact, rpm/deb epochs folded into the version).

    package-diff.py osprey.cdx.json trivy.cdx.json syft.cdx.json
"""
import json
import re
import sys
from collections import defaultdict
from urllib.parse import unquote


def components(doc):
    stack = list(doc.get("components", []))
    while stack:
        c = stack.pop()
        stack.extend(c.get("components", []))
        yield c


def key(purl):
    m = re.match(r"pkg:([^/]+)/(.+?)(?:@([^?#]*))?(?:\?([^#]*))?(?:#.*)?$", purl)
    if not m:
        return None
    kind, path, version, quals = m.group(1), unquote(m.group(2)), unquote(m.group(3) or ""), m.group(4) or ""
    q = dict(p.split("=", 1) for p in quals.split("&") if "=" in p)
    parts = path.split("/")
    name = parts[-1]
    namespace = "/".join(parts[:-1])
    if kind in ("deb", "rpm", "apk"):
        epoch = q.get("epoch")
        if epoch and epoch != "0" and ":" not in version:
            version = f"{epoch}:{version}"
        return (kind, name, version)
    if kind == "pypi":
        return (kind, re.sub(r"[-_.]+", "-", name).lower(), version)
    if kind == "maven":
        return (kind, f"{namespace}:{name}", version)
    if kind == "golang":
        # Toolchain and module versions are spelled v1.2.3, 1.2.3 or go1.2.3; "(devel)" means none.
        version = "" if version == "(devel)" else re.sub(r"^(go|v)", "", version)
        return (kind, f"{namespace}/{name}" if namespace else name, version)
    if kind in ("npm", "composer"):
        return (kind, f"{namespace}/{name}" if namespace else name, version)
    if kind == "oci":
        return None
    return (kind, name, version)


def load(path):
    with open(path) as f:
        doc = json.load(f)
    out = set()
    for c in components(doc):
        p = c.get("purl")
        if p:
            k = key(p)
            if k:
                out.add(k)
    return out


def main(paths):
    names = [p.rsplit("/", 1)[-1].split("-")[0] for p in paths]
    sets = [load(p) for p in paths]
    union = set().union(*sets)
    by_kind = defaultdict(lambda: [set() for _ in sets])
    for i, s in enumerate(sets):
        for k in s:
            by_kind[k[0]][i].add(k)
    width = max(len(n) for n in names) + 2
    print(f"{'ecosystem':<10}" + "".join(f"{n:>{width}}" for n in names) + f"{'union':>8}" + "".join(f"{'miss:' + n:>{width + 6}}" for n in names))
    for kind in sorted(by_kind):
        per = by_kind[kind]
        u = set().union(*per)
        print(f"{kind:<10}" + "".join(f"{len(s):>{width}}" for s in per) + f"{len(u):>8}" + "".join(f"{len(u - s):>{width + 6}}" for s in per))
    print(f"{'total':<10}" + "".join(f"{len(s):>{width}}" for s in sets) + f"{len(union):>8}" + "".join(f"{len(union - s):>{width + 6}}" for s in sets))
    first = names[0]
    for i, n in enumerate(names[1:], 1):
        only = sorted(sets[i] - sets[0])
        if only:
            print(f"\nfound by {n} but not {first} ({len(only)}):")
            for k in only[:40]:
                print("  ", *k)
            if len(only) > 40:
                print(f"   … {len(only) - 40} more")


if __name__ == "__main__":
    main(sys.argv[1:])
