#!/usr/bin/env python3
"""pydruid against a running Basalt server: a real Druid client nobody here wrote.

Runs timeseries, topN and groupBy through `pydruid.client.PyDruid` and a SQL query through the
`pydruid.db` DB-API, and checks every number against values computed here from the rows that
were loaded (`--data`, newline-delimited JSON with ts (ms), host, region, usage).

Started by tests/tests/pydruid.rs; by hand:
    python3 tests/python/test_pydruid.py --url http://127.0.0.1:8888 --data rows.json
Exit status 0 when every check passes, 1 otherwise.
"""

import argparse
import json
import sys
# pydruid.client does `import urllib` and then uses urllib.request / urllib.error, which only
# exist once something imports the submodules (pydruid 0.6.9): import them first.
import urllib.error  # noqa: F401
import urllib.request  # noqa: F401
from collections import defaultdict
from datetime import datetime, timezone
from urllib.parse import urlparse

from pydruid.client import PyDruid
from pydruid.utils.aggregators import doublesum, longsum
from pydruid.utils.filters import Dimension

HOUR_MS = 3_600_000
TOLERANCE = 1e-6


def iso(ms):
    """Druid's timestamp text: milliseconds and Z."""
    t = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class Checks:
    def __init__(self):
        self.failed = []
        self.passed = 0

    def equal(self, name, got, want):
        if isinstance(want, float) or isinstance(got, float):
            ok = got is not None and abs(float(got) - float(want)) <= TOLERANCE * max(1.0, abs(want))
        else:
            ok = got == want
        if ok:
            self.passed += 1
        else:
            self.failed.append(f"{name}: got {got!r}, want {want!r}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True, help="server base URL, e.g. http://127.0.0.1:8888")
    p.add_argument("--data", required=True, help="the NDJSON rows that were loaded")
    p.add_argument("--datasource", default="cpu")
    p.add_argument("--require-sql", action="store_true",
                   help="fail (instead of skipping) when the server has no SQL")
    args = p.parse_args()

    rows = [json.loads(line) for line in open(args.data) if line.strip()]
    if not rows:
        print("no rows in --data", file=sys.stderr)
        return 1
    start = min(r["ts"] for r in rows) // HOUR_MS * HOUR_MS
    end = (max(r["ts"] for r in rows) // HOUR_MS + 1) * HOUR_MS
    interval = f"{iso(start)}/{iso(end)}"
    ds = args.datasource
    client = PyDruid(args.url, "druid/v2")
    checks = Checks()

    # timeseries, hourly buckets.
    by_hour = defaultdict(lambda: [0, 0.0])
    for r in rows:
        b = by_hour[r["ts"] // HOUR_MS * HOUR_MS]
        b[0] += 1
        b[1] += r["usage"]
    ts = client.timeseries(
        datasource=ds, granularity="hour", intervals=interval,
        aggregations={"rows": longsum("count"), "usage": doublesum("usage")},
    )
    got = [(e["timestamp"], e["result"]["rows"], e["result"]["usage"]) for e in ts.result]
    checks.equal("timeseries buckets", [g[0] for g in got], [iso(h) for h in sorted(by_hour)])
    for (t, n, u), h in zip(got, sorted(by_hour)):
        checks.equal(f"timeseries rows {t}", n, by_hour[h][0])
        checks.equal(f"timeseries usage {t}", u, by_hour[h][1])

    # topN: the 3 hosts with the most usage, in region eu or us.
    by_host = defaultdict(float)
    for r in rows:
        by_host[r["host"]] += r["usage"]
    want_top = sorted(by_host.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    top = client.topn(
        datasource=ds, granularity="all", intervals=interval, dimension="host",
        metric="usage", threshold=3, aggregations={"usage": doublesum("usage")},
    )
    got_top = [(e["host"], e["usage"]) for e in top.result[0]["result"]]
    checks.equal("topN hosts", [h for h, _ in got_top], [h for h, _ in want_top])
    for (h, u), (_, w) in zip(got_top, want_top):
        checks.equal(f"topN usage {h}", u, w)

    # groupBy region, with a filter, per hour.
    want_group = defaultdict(lambda: [0, 0.0])
    for r in rows:
        if r["host"] != "h3":
            g = want_group[(r["ts"] // HOUR_MS * HOUR_MS, r["region"])]
            g[0] += 1
            g[1] += r["usage"]
    group = client.groupby(
        datasource=ds, granularity="hour", intervals=interval, dimensions=["region"],
        filter=~(Dimension("host") == "h3"),
        aggregations={"rows": longsum("count"), "usage": doublesum("usage")},
    )
    got_group = {(e["timestamp"], e["event"]["region"]): e["event"] for e in group.result}
    checks.equal("groupBy keys", sorted(got_group),
                 sorted((iso(t), reg) for t, reg in want_group))
    for (t, reg), (n, u) in want_group.items():
        event = got_group.get((iso(t), reg), {})
        checks.equal(f"groupBy rows {iso(t)} {reg}", event.get("rows"), n)
        checks.equal(f"groupBy usage {iso(t)} {reg}", event.get("usage"), u)

    # SQL through the DB-API (expected to work once the server has SQL).
    from pydruid.db import connect
    from pydruid.db.exceptions import Error as DbError
    url = urlparse(args.url)
    conn = connect(host=url.hostname, port=url.port, path="/druid/v2/sql/", scheme=url.scheme)
    cur = conn.cursor()
    try:
        cur.execute(
            f'SELECT host, SUM("count") AS n, SUM(usage) AS u FROM {ds} '
            "WHERE region = 'eu' GROUP BY host ORDER BY host"
        )
        got_sql = [(r.host, r.n, r.u) for r in cur.fetchall()]
    except DbError as e:
        if args.require_sql:
            checks.failed.append(f"SQL query failed: {e}")
        else:
            print(f"SKIP SQL checks: the server has no SQL yet ({e})")
        got_sql = None
    if got_sql is not None:
        eu_hosts = sorted({r["host"] for r in rows if r["region"] == "eu"})
        want_sql = [(h, sum(1 for r in rows if r["host"] == h),
                     sum(r["usage"] for r in rows if r["host"] == h)) for h in eu_hosts]
        checks.equal("SQL hosts", [g[0] for g in got_sql], [w[0] for w in want_sql])
        for (h, n, u), (_, wn, wu) in zip(got_sql, want_sql):
            checks.equal(f"SQL n {h}", n, wn)
            checks.equal(f"SQL u {h}", u, wu)

    for f in checks.failed:
        print("FAIL", f)
    print(f"pydruid checks: {checks.passed} ok, {len(checks.failed)} wrong")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
