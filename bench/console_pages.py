#!/usr/bin/env python3
"""Times the web console's pages against a running `osprey serve`, and what a first load
transfers.

console_pages.py URL TOKEN START END [REPEAT]

Signs in with TOKEN (the console's own sign-in form), then asks for each page REPEAT times
(default 10) over the scope START..END: the summary, the findings list (as it opens, filtered
by severity, sorted by count, its CSV export), a finding, the groups, a group, the profiles of
the cluster, a namespace, a subject, an address, a pod and a user agent, the graph page of the
cluster and its data at depth 1 and 2, and the settings. Prints the server time percentiles per
page (client side: request to last byte, loopback), then the bytes a first load of the
summary, of a finding and of the graph page transfers with every asset they load, gzip
accepted (the page, its stylesheet and scripts, cytoscape.js for the graph).
"""
import gzip
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from graph_queries import pct


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


opener = urllib.request.build_opener(NoRedirect)


def fetch(url, cookie=None, token=None, data=None, gzip_ok=False):
    headers = {}
    if cookie:
        headers["Cookie"] = f"osprey_session={cookie}"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if gzip_ok:
        headers["Accept-Encoding"] = "gzip"
    req = urllib.request.Request(url, data=data, headers=headers)
    started = time.perf_counter()
    try:
        with opener.open(req, timeout=120) as resp:
            body = resp.read()
            status, h = resp.status, resp.headers
    except urllib.error.HTTPError as e:
        body, status, h = e.read(), e.code, e.headers
    return time.perf_counter() - started, status, h, body


def main():
    base, token, start, end = sys.argv[1:5]
    repeat = int(sys.argv[5]) if len(sys.argv) > 5 else 10
    form = urllib.parse.urlencode({"token": token, "next": "/console/summary"}).encode()
    _, status, headers, _ = fetch(f"{base}/console/sign-in", data=form)
    cookie = re.search(r"osprey_session=([0-9a-f]+)", headers.get("Set-Cookie", ""))
    if status != 303 or not cookie:
        sys.exit(f"signing in: HTTP {status}")
    cookie = cookie.group(1)
    scope = urllib.parse.urlencode({"since": start, "until": end})

    def api(path):
        _, status, _, body = fetch(f"{base}{path}", token=token)
        if status != 200:
            sys.exit(f"{path}: HTTP {status}")
        return json.loads(body)

    findings = api("/v1/findings?limit=1")["findings"]
    groups = api(f"/v1/finding-groups?since={urllib.parse.quote(start)}")["groups"]
    pages = [
        ("summary", f"/console/summary?{scope}"),
        ("findings", f"/console/findings?{scope}"),
        ("findings high", f"/console/findings?{scope}&severity=high"),
        ("findings by count", f"/console/findings?{scope}&sort=count&order=desc&limit=200"),
        ("findings csv", f"/console/findings/export.csv?{scope}"),
        ("groups", f"/console/groups?{scope}"),
        ("settings", "/console/settings"),
    ]
    if findings:
        pages.append(("finding", f"/console/findings/{findings[0]['id']}"))
    if groups:
        pages.append(("group", f"/console/groups/{groups[0]['id']}"))
    for kind in ["cluster", "namespace", "subject", "ip", "pod", "user-agent"]:
        found = api(f"/v1/entities?type={kind}&limit=1")["entities"]
        if found:
            path = urllib.parse.quote(found[0]["id"], safe="/%")
            pages.append((f"profile {kind}", f"/console/entities/{path}?{scope}"))
            if kind == "cluster":
                pages.append(("graph page", f"/console/graph/{path}?{scope}"))
                entity = urllib.parse.quote(found[0]["id"], safe="")
                pages.append(("graph.json depth 1", f"/console/graph.json?entity={entity}&depth=1&{scope}"))
                pages.append(("graph.json depth 2", f"/console/graph.json?entity={entity}&depth=2&{scope}"))
    rows = []
    for name, path in pages:
        times, size = [], 0
        for _ in range(repeat):
            t, status, _, body = fetch(f"{base}{path}", cookie=cookie)
            if status != 200:
                sys.exit(f"{path}: HTTP {status}: {body[:200]!r}")
            times.append(t)
            size = len(body)
        rows.append((name, len(times), size, times))
    print(f"{'page':<20} {'requests':>8} {'bytes':>9} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, n, size, ts in rows:
        print(
            f"{name:<20} {n:>8} {size:>9} {pct(ts, 50) * 1000:>8.1f} {pct(ts, 95) * 1000:>8.1f} {max(ts) * 1000:>8.1f}"
        )

    # First loads: the page and what it loads, compressed as sent.
    def transferred(path, extra_assets):
        _, _, h, body = fetch(f"{base}{path}", cookie=cookie, gzip_ok=True)
        total = len(body)
        html = gzip.decompress(body) if h.get("Content-Encoding") == "gzip" else body
        assets = re.findall(rb'(?:src|href)="(/console/assets/[^"]+)"', html)
        for asset in sorted(set(a.decode() for a in assets)) + extra_assets:
            _, status, _, b = fetch(f"{base}{asset}", gzip_ok=True)
            if status != 200:
                sys.exit(f"{asset}: HTTP {status}")
            total += len(b)
        return total

    print()
    print(f"{'first load':<20} {'bytes sent (gzip accepted)':>28}")
    loads = [("summary", f"/console/summary?{scope}", [])]
    if findings:
        loads.append(("finding", f"/console/findings/{findings[0]['id']}", []))
    graph = next((p for n, p in pages if n == "graph page"), None)
    if graph:
        loads.append(("graph page", graph, ["/console/assets/cytoscape.min.js"]))
    for name, path, extra in loads:
        print(f"{name:<20} {transferred(path, extra):>28}")


if __name__ == "__main__":
    main()
