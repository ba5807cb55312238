#!/usr/bin/env python3
"""Peer systems for Basalt's benchmarks: DuckDB and ClickHouse (embedded, via chdb).

Subcommands:

  load --parquet FILE --workdir DIR --json OUT.json [--peer NAME ...] [--duckdb-sorted]
      Loads the TSBS cpu Parquet file into each peer, each in a fresh child process (so that
      its peak RSS is its own), and writes load times and on-disk sizes to OUT.json.

  query --workdir DIR --queries QUERIES.json --json OUT.json [--peer NAME ...] [--runs N]
      Runs the queries of QUERIES.json (a list of {"name", "sql": {peer: SQL}, "time_columns"})
      on each peer's database from `load` (each peer in a child process): one warm-up run, then
      N timed runs; writes per query the times, their median, the row count and the rows.

  query --workdir DIR --peer NAME --serve
      The same, driven one request at a time: reads JSON lines on stdin, answers one JSON line
      per request on stdout (used by `basalt-bench tsbs-queries`, which interleaves the systems
      run by run). Requests: {"op": "info"}, {"op": "run", "sql", "collect", "max_rows",
      "time_columns"}, {"op": "rss"}. Logs go to stderr.

Peers (all from PyPI: `pip install duckdb chdb`):

  duckdb             CREATE TABLE cpu AS SELECT * FROM read_parquet(...); CHECKPOINT.
                     Size: the database file after the checkpoint.
  duckdb_sorted      Same, ORDER BY hostname, timestamp (only with --duckdb-sorted).
  clickhouse         MergeTree ORDER BY (hostname, timestamp), tags LowCardinality(String),
                     fields Int64, timestamp DateTime64(3, 'UTC'), every column CODEC(ZSTD(1));
                     INSERT ... SELECT FROM file(..., Parquet), then OPTIMIZE TABLE cpu FINAL.
                     Size: sum(bytes_on_disk) of the active parts.

Peak memory is `resource.getrusage(RUSAGE_SELF).ru_maxrss` of the child process that ran the
peer (that includes the Python interpreter and the peer library, about 100 MB for chdb).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TAGS = [
    "hostname",
    "region",
    "datacenter",
    "rack",
    "os",
    "arch",
    "team",
    "service",
    "service_version",
    "service_environment",
]
FIELDS = [
    "usage_user",
    "usage_system",
    "usage_idle",
    "usage_nice",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
]
COLUMNS = ["timestamp", *TAGS, *FIELDS]

PEERS = ["duckdb", "clickhouse"]
OPTIONAL_PEERS = ["duckdb_sorted"]

# ClickHouse column codec; ClickHouse's default is LZ4, we ask for zstd on every column.
CLICKHOUSE_CODEC = "ZSTD(1)"


class MissingPackage(RuntimeError):
    pass


def require(module: str):
    """Imports `module`, or fails with the pip command that installs it."""
    try:
        return __import__(module)
    except ImportError as e:
        raise MissingPackage(
            f"Python package {module!r} is missing ({e}); install it with: "
            f"{sys.executable} -m pip install {module}"
        ) from e


def sql_string(text: str) -> str:
    """A SQL string literal (single quotes doubled)."""
    return "'" + text.replace("'", "''") + "'"


def peak_rss_bytes() -> int:
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def fresh_dir(path: Path) -> Path:
    """Empties `path` (a directory this script owns) and recreates it."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def log(msg: str) -> None:
    print(f"[peers] {msg}", flush=True)


# --- DuckDB -----------------------------------------------------------------------------------


def load_duckdb(parquet: Path, workdir: Path, sorted_by_host: bool) -> dict:
    duckdb = require("duckdb")
    name = "duckdb_sorted" if sorted_by_host else "duckdb"
    db_path = fresh_dir(workdir / name) / "cpu.duckdb"
    order = " ORDER BY hostname, timestamp" if sorted_by_host else ""

    con = duckdb.connect(str(db_path))
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    t0 = time.perf_counter()
    con.execute(
        f"CREATE TABLE cpu AS SELECT * FROM read_parquet({sql_string(str(parquet))}){order}"
    )
    t1 = time.perf_counter()
    con.execute("CHECKPOINT")
    t2 = time.perf_counter()
    rows = con.execute("SELECT count(*) FROM cpu").fetchone()[0]
    con.close()

    wal = db_path.with_name(db_path.name + ".wal")
    size = db_path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    return {
        "system": "DuckDB",
        "version": duckdb.__version__,
        "threads": int(threads),
        "ddl": f"CREATE TABLE cpu AS SELECT * FROM read_parquet(...){order}",
        "rows": rows,
        "insert_seconds": t1 - t0,
        "checkpoint_seconds": t2 - t1,
        "load_seconds": t2 - t0,
        "bytes_on_disk": size,
        "bytes_per_row": size / rows if rows else None,
        "path": str(db_path),
    }


# --- ClickHouse (chdb) ------------------------------------------------------------------------


def clickhouse_ddl(codec: str) -> str:
    cols = [f"timestamp DateTime64(3, 'UTC') CODEC({codec})"]
    cols += [f"{t} LowCardinality(String) CODEC({codec})" for t in TAGS]
    cols += [f"{f} Int64 CODEC({codec})" for f in FIELDS]
    body = ",\n    ".join(cols)
    return f"CREATE TABLE cpu (\n    {body}\n) ENGINE = MergeTree ORDER BY (hostname, timestamp)"


def load_clickhouse(parquet: Path, workdir: Path) -> dict:
    require("chdb")
    from chdb import session as chs

    db_dir = fresh_dir(workdir / "clickhouse")
    sess = chs.Session(str(db_dir))

    def scalar(sql: str):
        return json.loads(sess.query(sql, "JSONCompact").bytes())["data"][0][0]

    try:
        version = scalar("SELECT version()")
        threads = scalar("SELECT getSetting('max_threads')")
        sess.query("CREATE DATABASE IF NOT EXISTS bench")
        sess.query("USE bench")
        ddl = clickhouse_ddl(CLICKHOUSE_CODEC)
        sess.query(ddl)
        cols = ", ".join(COLUMNS)
        t0 = time.perf_counter()
        sess.query(
            f"INSERT INTO cpu ({cols}) SELECT {cols} FROM file({sql_string(str(parquet))}, Parquet)"
        )
        t1 = time.perf_counter()
        parts_before = scalar(
            "SELECT count() FROM system.parts WHERE active AND database = 'bench' AND table = 'cpu'"
        )
        sess.query("OPTIMIZE TABLE cpu FINAL")
        t2 = time.perf_counter()
        rows = scalar("SELECT count() FROM cpu")
        parts = json.loads(
            sess.query(
                "SELECT count(), sum(rows), sum(bytes_on_disk), "
                "sum(data_compressed_bytes), sum(data_uncompressed_bytes) "
                "FROM system.parts WHERE active AND database = 'bench' AND table = 'cpu'",
                "JSONCompact",
            ).bytes()
        )["data"][0]
        columns = json.loads(
            sess.query(
                "SELECT name, data_compressed_bytes, data_uncompressed_bytes "
                "FROM system.columns WHERE database = 'bench' AND table = 'cpu'",
                "JSONCompact",
            ).bytes()
        )["data"]
    finally:
        sess.close()

    size = int(parts[2])
    return {
        "system": "ClickHouse (chdb)",
        "version": version,
        "chdb_version": require("chdb").__version__,
        "threads": int(threads),
        "ddl": ddl,
        "rows": int(rows),
        "insert_seconds": t1 - t0,
        "optimize_seconds": t2 - t1,
        "load_seconds": t2 - t0,
        "parts_after_insert": int(parts_before),
        "parts": int(parts[0]),
        "bytes_on_disk": size,
        "bytes_per_row": size / int(rows) if rows else None,
        "data_compressed_bytes": int(parts[3]),
        "data_uncompressed_bytes": int(parts[4]),
        "columns": {
            name: {"compressed_bytes": int(c), "uncompressed_bytes": int(u)}
            for name, c, u in columns
        },
        "directory_bytes": dir_bytes(db_dir),
        "path": str(db_dir),
    }


# --- queries ----------------------------------------------------------------------------------


class DuckDBPeer:
    """A DuckDB database from `load`, opened read-only; results as Arrow tables."""

    def __init__(self, workdir: Path, name: str = "duckdb"):
        duckdb = require("duckdb")
        db_path = workdir / name / "cpu.duckdb"
        if not db_path.is_file():
            raise FileNotFoundError(f"{db_path} does not exist: run `peers.py load` first")
        self.name = name
        self.con = duckdb.connect(str(db_path), read_only=True)
        # Time buckets (date_trunc on TIMESTAMP WITH TIME ZONE) are taken in the session's zone.
        self.con.execute("SET TimeZone = 'UTC'")
        self.info = {
            "system": "DuckDB" + (" (sorted by hostname, timestamp)" if "sorted" in name else ""),
            "version": duckdb.__version__,
            "threads": int(self.con.sql("SELECT current_setting('threads')").fetchall()[0][0]),
            "path": str(db_path),
            "result_format": "Arrow table (relation.to_arrow_table())",
        }

    def run(self, sql: str):
        return self.con.sql(sql).to_arrow_table()

    def close(self) -> None:
        self.con.close()


class ClickHousePeer:
    """The chdb session directory from `load` (database `bench`); results as Arrow tables."""

    def __init__(self, workdir: Path):
        chdb = require("chdb")
        from chdb import session as chs

        db_dir = workdir / "clickhouse"
        if not db_dir.is_dir():
            raise FileNotFoundError(f"{db_dir} does not exist: run `peers.py load` first")
        self.name = "clickhouse"
        self.sess = chs.Session(str(db_dir))
        self.sess.query("USE bench")

        def scalar(sql: str):
            return json.loads(self.sess.query(sql, "JSONCompact").bytes())["data"][0][0]

        self.info = {
            "system": "ClickHouse (chdb)",
            "version": scalar("SELECT version()"),
            "chdb_version": chdb.__version__,
            "threads": int(scalar("SELECT getSetting('max_threads')")),
            "path": str(db_dir),
            "result_format": "Arrow table (session.query(sql, 'ArrowTable'))",
        }

    def run(self, sql: str):
        return self.sess.query(sql, "ArrowTable")

    def close(self) -> None:
        self.sess.close()


def open_query_peer(peer: str, workdir: Path):
    if peer in ("duckdb", "duckdb_sorted"):
        return DuckDBPeer(workdir, peer)
    if peer == "clickhouse":
        return ClickHousePeer(workdir)
    raise ValueError(f"unknown peer {peer!r}")


def table_rows(table, time_columns: list[str]) -> tuple[list[str], list[list]]:
    """An Arrow result as (column names, rows) of JSON values: timestamps become epoch
    milliseconds (columns in `time_columns` holding integers are ClickHouse `DateTime` seconds),
    dictionaries their values, binaries UTF-8 text, decimals floats, NaN null."""
    pa = require("pyarrow")
    names = list(table.column_names)
    columns = []
    for name, col in zip(names, table.columns):
        t = col.type
        if pa.types.is_dictionary(t):
            col = col.cast(t.value_type)
            t = col.type
        if pa.types.is_timestamp(t):
            col = col.cast(pa.timestamp("ms", t.tz), safe=False).cast(pa.int64())
        elif pa.types.is_date(t):
            col = col.cast(pa.timestamp("ms")).cast(pa.int64())
        elif name in time_columns and pa.types.is_integer(t):
            col = col.cast(pa.int64())
            values = [None if v is None else v * 1000 for v in col.to_pylist()]
            columns.append(values)
            continue
        elif pa.types.is_decimal(t):
            col = col.cast(pa.float64())
        values = col.to_pylist()
        if pa.types.is_binary(t) or pa.types.is_large_binary(t):
            values = [None if v is None else v.decode("utf-8", "replace") for v in values]
        elif pa.types.is_floating(t):
            values = [None if v is None or math.isnan(v) else v for v in values]
        columns.append(values)
    rows = [list(r) for r in zip(*columns)] if columns else []
    return names, rows


def run_request(peer, req: dict) -> dict:
    """Runs `req["sql"]` `req["runs"]` times (default 1), each timed from the call until the
    result is a materialized Arrow table; returns the times and, with `collect`, the last
    result's rows (when there are at most `max_rows`)."""
    sql = req["sql"]
    times = []
    table = None
    for _ in range(int(req.get("runs", 1))):
        table = None  # free the previous result first: each run allocates its own
        t0 = time.perf_counter()
        table = peer.run(sql)
        times.append((time.perf_counter() - t0) * 1000.0)
    resp: dict = {"ok": True, "ms": times, "rows": table.num_rows if table is not None else 0}
    if req.get("collect") and table is not None:
        max_rows = req.get("max_rows")
        resp["columns"] = list(table.column_names)
        if max_rows is None or table.num_rows <= int(max_rows):
            _, resp["data"] = table_rows(table, req.get("time_columns") or [])
    return resp


def serve(peer_name: str, workdir: Path) -> int:
    """JSON lines on stdin, one JSON line answered per request on stdout."""
    # The protocol keeps the real stdout; anything the peer library prints goes to stderr.
    proto = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        peer = open_query_peer(peer_name, workdir)
    except Exception as e:  # noqa: BLE001 - reported to the driver, which fails the run
        proto.write(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}) + "\n")
        proto.flush()
        return 1
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                req = json.loads(line)
                op = req.get("op")
                if op == "info":
                    resp = {"ok": True, "peer": peer_name, **peer.info}
                elif op == "run":
                    resp = run_request(peer, req)
                elif op == "rss":
                    resp = {"ok": True, "peak_rss_bytes": peak_rss_bytes()}
                else:
                    resp = {"ok": False, "error": f"unknown op {op!r}"}
            except Exception as e:  # noqa: BLE001 - a failed query is an answer, not a crash
                resp = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            proto.write(json.dumps(resp) + "\n")
            proto.flush()
    finally:
        peer.close()
    return 0


class PeerClient:
    """Drives `peers.py query --serve` in a child process."""

    def __init__(self, peer: str, workdir: Path):
        self.peer = peer
        self.proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "query",
                "--serve",
                "--peer",
                peer,
                "--workdir",
                str(workdir),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def request(self, req: dict) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"peer {self.peer} exited ({self.proc.wait()})")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait()


def cmd_query(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir).resolve()
    if args.serve:
        if not args.peer or len(args.peer) != 1:
            print("error: --serve needs exactly one --peer", file=sys.stderr)
            return 2
        return serve(args.peer[0], workdir)
    if not args.queries or not args.json:
        print("error: --queries and --json are required (or --serve)", file=sys.stderr)
        return 2
    queries = json.loads(Path(args.queries).read_text())
    peers = args.peer or list(PEERS)
    results: dict[str, dict] = {}
    for peer in peers:
        log(f"{peer}: {len(queries)} queries, 1 warm-up + {args.runs} runs each")
        client = PeerClient(peer, workdir)
        try:
            info = client.request({"op": "info"})
            if not info.get("ok"):
                print(f"error: peer {peer}: {info.get('error')}", file=sys.stderr)
                return 1
            per_query = {}
            for q in queries:
                sql = q["sql"].get(peer) or q["sql"].get("duckdb" if "duckdb" in peer else peer)
                if sql is None:
                    continue
                base = {"op": "run", "sql": sql, "time_columns": q.get("time_columns", [])}
                warm = client.request({**base, "collect": True, "max_rows": args.max_rows})
                if not warm.get("ok"):
                    per_query[q["name"]] = {"error": warm.get("error")}
                    log(f"{peer}: {q['name']}: {warm.get('error')}")
                    continue
                timed = client.request({**base, "runs": args.runs})
                times = timed.get("ms", [])
                per_query[q["name"]] = {
                    "sql": sql,
                    "ms": times,
                    "median_ms": statistics.median(times) if times else None,
                    "rows": warm["rows"],
                    "columns": warm.get("columns"),
                    "data": warm.get("data"),
                }
                log(f"{peer}: {q['name']}: median {per_query[q['name']]['median_ms']:.1f} ms")
            rss = client.request({"op": "rss"})
            info.pop("ok", None)
            results[peer] = {
                **info,
                "queries": per_query,
                "peak_rss_bytes": rss.get("peak_rss_bytes"),
            }
        finally:
            client.close()
    doc = {"runs": args.runs, "warmup": 1, "python": platform.python_version(), "peers": results}
    Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    log(f"wrote {args.json}")
    return 0


# --- driver -----------------------------------------------------------------------------------


def run_one(peer: str, parquet: Path, workdir: Path) -> dict:
    """Loads one peer in this process and returns its measurements."""
    if peer == "duckdb":
        result = load_duckdb(parquet, workdir, sorted_by_host=False)
    elif peer == "duckdb_sorted":
        result = load_duckdb(parquet, workdir, sorted_by_host=True)
    elif peer == "clickhouse":
        result = load_clickhouse(parquet, workdir)
    else:
        raise ValueError(f"unknown peer {peer!r}")
    result["peak_rss_bytes"] = peak_rss_bytes()
    return result


def cmd_load_one(args: argparse.Namespace) -> int:
    """Child process: run one peer, write its JSON to --json."""
    result = run_one(args.peer, Path(args.parquet), Path(args.workdir))
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    parquet = Path(args.parquet).resolve()
    if not parquet.is_file():
        print(f"error: Parquet file {parquet} does not exist", file=sys.stderr)
        return 2
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    peers = args.peer or list(PEERS)
    if args.duckdb_sorted and "duckdb_sorted" not in peers:
        peers.append("duckdb_sorted")

    # Fail early, before any long load, if a package is missing.
    for module in sorted({"chdb" if p == "clickhouse" else "duckdb" for p in peers}):
        require(module)

    results: dict[str, dict] = {}
    for peer in peers:
        out = workdir / f"{peer}.json"
        out.unlink(missing_ok=True)
        log(f"{peer}: loading {parquet}")
        # A child per peer: isolated peak RSS, and a crash in one peer does not lose the others.
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "_load-one",
                "--peer",
                peer,
                "--parquet",
                str(parquet),
                "--workdir",
                str(workdir),
                "--json",
                str(out),
            ],
            check=False,
        )
        if proc.returncode != 0 or not out.exists():
            print(f"error: peer {peer} failed (exit {proc.returncode})", file=sys.stderr)
            return 1
        results[peer] = json.loads(out.read_text())
        r = results[peer]
        log(
            f"{peer}: {r['rows']} rows in {r['load_seconds']:.2f} s, "
            f"{r['bytes_on_disk'] / 2**20:.1f} MiB ({r['bytes_per_row']:.2f} bytes/row), "
            f"peak RSS {r['peak_rss_bytes'] / 2**20:.0f} MiB"
        )

    doc = {
        "parquet": str(parquet),
        "parquet_bytes": parquet.stat().st_size,
        "python": platform.python_version(),
        "peers": results,
    }
    Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    log(f"wrote {args.json}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    load = sub.add_parser("load", help="load a Parquet file into the peers, measure size and time")
    load.add_argument("--parquet", required=True, help="TSBS cpu Parquet file")
    load.add_argument("--workdir", required=True, help="directory for the peers' databases")
    load.add_argument("--json", required=True, help="where to write the results")
    load.add_argument(
        "--peer",
        action="append",
        choices=PEERS + OPTIONAL_PEERS,
        help="only this peer (repeatable); default: " + ", ".join(PEERS),
    )
    load.add_argument(
        "--duckdb-sorted",
        action="store_true",
        help="also load DuckDB sorted by (hostname, timestamp), like ClickHouse's ORDER BY",
    )
    load.set_defaults(func=cmd_load)

    query = sub.add_parser("query", help="time SQL queries on the loaded peers")
    query.add_argument("--workdir", required=True, help="the peers' databases (from `load`)")
    query.add_argument("--queries", help='JSON list of {"name", "sql": {peer: SQL}}')
    query.add_argument("--json", help="where to write the results")
    query.add_argument(
        "--peer",
        action="append",
        choices=PEERS + OPTIONAL_PEERS,
        help="only this peer (repeatable); default: " + ", ".join(PEERS),
    )
    query.add_argument("--runs", type=int, default=5, help="timed runs after one warm-up")
    query.add_argument(
        "--max-rows", type=int, default=200_000, help="largest result whose rows are kept"
    )
    query.add_argument(
        "--serve", action="store_true", help="answer JSON-line requests on stdin (one --peer)"
    )
    query.set_defaults(func=cmd_query)

    one = sub.add_parser("_load-one", help=argparse.SUPPRESS)
    one.add_argument("--peer", required=True, choices=PEERS + OPTIONAL_PEERS)
    one.add_argument("--parquet", required=True)
    one.add_argument("--workdir", required=True)
    one.add_argument("--json", required=True)
    one.set_defaults(func=cmd_load_one)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except MissingPackage as e:
        print(f"error: {e}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
