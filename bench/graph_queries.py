#!/usr/bin/env python3
"""Times the investigation graph's queries against a running `osprey serve`.

graph_queries.py URL TOKEN START END [REPEAT]

Picks the entities to ask about through the API (`GET /v1/entities`: the cluster, its
namespaces, the subjects, addresses and pods, up to 10 of each), then asks for each one's
profile over the scope START..END REPEAT times (default 10), and for the finding groups, and
prints the latency percentiles per entity type (client side: request to last byte, loopback).
"""
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def get(url, token):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            body = resp.read()
    except urllib.error.HTTPError as e:
        sys.exit(f"{url}: HTTP {e.code}: {e.read().decode(errors='replace')}")
    return time.perf_counter() - started, json.loads(body)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    base, token, start, end = sys.argv[1:5]
    repeat = int(sys.argv[5]) if len(sys.argv) > 5 else 10
    scope = urllib.parse.urlencode({"start": start, "end": end})
    rows = []
    for kind in ["cluster", "namespace", "subject", "ip", "pod", "user-agent"]:
        _, found = get(f"{base}/v1/entities?type={kind}&limit=10", token)
        ids = [e["id"] for e in found["entities"]]
        times, calls = [], 0
        for _ in range(repeat):
            for entity in ids:
                path = urllib.parse.quote(entity, safe="/%")
                t, profile = get(f"{base}/v1/entities/{path}?{scope}", token)
                times.append(t)
                calls = max(calls, profile["api_calls"]["total"])
        if times:
            rows.append((f"profile {kind}", len(ids), len(times), calls, times))
    times, groups = [], 0
    for _ in range(repeat):
        t, answer = get(f"{base}/v1/finding-groups?since={urllib.parse.quote(start)}", token)
        times.append(t)
        groups = len(answer["groups"])
    rows.append(("finding groups", groups, len(times), 0, times))
    print(f"{'query':<20} {'entities':>8} {'requests':>8} {'max calls':>10} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, n, reqs, calls, ts in rows:
        print(
            f"{name:<20} {n:>8} {reqs:>8} {calls:>10} {pct(ts, 50) * 1000:>8.1f} {pct(ts, 95) * 1000:>8.1f} {max(ts) * 1000:>8.1f}"
        )


if __name__ == "__main__":
    main()
