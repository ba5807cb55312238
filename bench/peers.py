#!/usr/bin/env python3
"""Peer systems for Basalt's benchmarks: DuckDB and ClickHouse (embedded, via chdb).

Subcommands:

  load --parquet FILE --workdir DIR --json OUT.json [--peer NAME ...] [--duckdb-sorted]
      Loads the TSBS cpu Parquet file into each peer, each in a fresh child process (so that
      its peak RSS is its own), and writes load times and on-disk sizes to OUT.json.

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
import platform
import resource
import shutil
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
