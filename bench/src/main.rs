//! `basalt-bench`: Basalt's benchmark runner. See `bench/README.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

/// Queries allocate and free large column buffers block after block; mimalloc reuses them where
/// glibc returns them to the kernel and faults them in again. `basalt serve` keeps glibc (one
/// arena per core), whose footprint its memory budget bounds; in-process timings use mimalloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use basalt_bench::build_segments::{
    BuildSummary, ColumnBytes, build_hourly_segments, column_bytes, compare_with_peers,
    tsbs_data_schema_json,
};
use basalt_bench::peers::{LoadOptions, PeersScript};
use basalt_bench::prefetch::prefetch;
use basalt_bench::report::{RunInfo, peak_rss_bytes, write_result};
use basalt_bench::source::parquet_batches;
use basalt_bench::timefmt::{format_rfc3339_ms, parse_rfc3339_ms};
use basalt_bench::tsbs::{TsbsConfig, tsbs_batches, tsbs_schema};
use basalt_bench::tsbs_files::{FileStats, ParquetOptions, write_csv, write_parquet};
use basalt_engine::schema::DataSchema;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;

const DEFAULT_RESULTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/results");
const DEFAULT_DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data");
const DEFAULT_PARQUET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/cpu.parquet");
const DEFAULT_PEERS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/peers");
const DEFAULT_SEGMENTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/segments");
const DEFAULT_BASALT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/basalt-tsbs");

#[derive(Debug, Parser)]
#[command(name = "basalt-bench", version, about = "Basalt benchmark runner")]
struct Cli {
    /// Directory for the results JSON files (`<workload>-<UTC stamp>.json`).
    #[arg(long, global = true, default_value = DEFAULT_RESULTS_DIR)]
    results_dir: PathBuf,
    /// Do not write a results file (e.g. for smoke runs).
    #[arg(long, global = true)]
    no_results: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate the TSBS devops cpu-only dataset to DIR/cpu.parquet (or cpu.csv).
    GenTsbs(GenTsbsArgs),
    /// Load a Parquet file into the peers (DuckDB, ClickHouse via chdb) with bench/peers.py and
    /// record load times and on-disk sizes.
    PeersLoad(PeersLoadArgs),
    /// Build hourly Basalt segments from the TSBS data (rows/s, bytes/row, peak RSS) and compare
    /// sizes and load times with the peers loading the same Parquet file.
    BuildSegments(BuildSegmentsArgs),
    /// Run the TSBS devops queries (and Druid-style topN, timeseries, count distinct) on Basalt
    /// and the peers side by side: medians, ratios, result agreement.
    TsbsQueries(TsbsQueriesArgs),
    /// Bulk-load the TSBS data with `basalt load` at two input sizes (Parquet, optionally CSV):
    /// rows/s, MB/s, peak RSS against the memory budget; peers load the same Parquet.
    Load(LoadArgs),
    /// Start `basalt serve` and drive it with concurrent HTTP clients mixing pushes and native
    /// queries for a fixed time: throughput, p50/p99 latency, errors.
    ServerLoad(ServerLoadArgs),
    /// Sustained realtime push rate with fsync on: TSBS rows from N clients over gRPC (JSON,
    /// Arrow), HTTP NDJSON and in-process; rows/s, MB/s, latency, peak RSS, push-to-queryable.
    Push(PushArgs),
}

/// Options of `push`.
#[derive(Debug, Args)]
struct PushArgs {
    /// The `basalt` binary to start (default: next to this benchmark binary).
    #[arg(long)]
    basalt_bin: Option<PathBuf>,
    /// Concurrent client threads.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Seconds per mode.
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    /// Rows per push (rounded down to whole TSBS timestamps).
    #[arg(long, default_value_t = 1000)]
    rows_per_push: usize,
    /// TSBS hosts (rows per timestamp).
    #[arg(long, default_value_t = 100)]
    hosts: u32,
    /// Modes to run, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "engine,grpc-json,grpc-ndjson,grpc-arrow,http"
    )]
    modes: Vec<basalt_bench::push_bench::PushMode>,
}

/// Options of `server-load`.
#[derive(Debug, Args)]
struct ServerLoadArgs {
    /// The `basalt` binary to start (default: next to this benchmark binary).
    #[arg(long)]
    basalt_bin: Option<PathBuf>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Share of requests that are pushes.
    #[arg(long, default_value_t = 0.5)]
    push_fraction: f64,
    /// Rows per push.
    #[arg(long, default_value_t = 1000)]
    rows_per_push: usize,
}

/// Which TSBS data to generate.
#[derive(Debug, Args)]
struct TsbsArgs {
    /// Number of hosts.
    #[arg(long, default_value_t = 4000)]
    hosts: u32,
    /// Hours of data (one row per host every 10 s).
    #[arg(long, default_value_t = 24)]
    hours: u32,
    /// First timestamp, RFC 3339 UTC.
    #[arg(long, default_value = "2016-01-01T00:00:00Z")]
    start: String,
    /// Seed of the random tags and walks; same seed, same data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Rows per batch (and per Parquet row group), rounded down to whole timestamps.
    #[arg(long, default_value_t = TsbsConfig::DEFAULT_BATCH_ROWS)]
    batch_rows: usize,
}

impl TsbsArgs {
    fn config(&self) -> anyhow::Result<TsbsConfig> {
        let mut cfg = TsbsConfig::new(
            self.hosts,
            self.hours,
            parse_rfc3339_ms(&self.start)?,
            self.seed,
        );
        cfg.batch_rows = self.batch_rows;
        cfg.validate()?;
        Ok(cfg)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// DIR/cpu.parquet, zstd, one row group per batch.
    Parquet,
    /// DIR/cpu.csv with a header line and RFC 3339 timestamps.
    Csv,
    /// Generate and discard (measures the generator alone).
    None,
}

#[derive(Debug, Args)]
struct GenTsbsArgs {
    #[command(flatten)]
    tsbs: TsbsArgs,
    /// Output directory.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    out: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Parquet)]
    format: Format,
    /// zstd level of the Parquet output.
    #[arg(long, default_value_t = 3)]
    zstd_level: i32,
    /// Threads encoding Parquet columns (generation runs on one more thread).
    #[arg(long, default_value_t = default_threads())]
    threads: usize,
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[derive(Debug, Args)]
struct PeersLoadArgs {
    /// The Parquet file to load.
    #[arg(long, default_value = DEFAULT_PARQUET)]
    parquet: PathBuf,
    /// Where the peers keep their databases (recreated on every run).
    #[arg(long, default_value = DEFAULT_PEERS_DIR)]
    workdir: PathBuf,
    /// Python interpreter with the `duckdb` and `chdb` packages.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Also load a DuckDB table sorted by (hostname, timestamp), like ClickHouse's ORDER BY.
    #[arg(long)]
    duckdb_sorted: bool,
    /// Only this peer (repeatable): duckdb, clickhouse.
    #[arg(long = "peer")]
    peers: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Source {
    /// Read --parquet (what the peers load too).
    Parquet,
    /// Generate in memory (--hosts, --hours, ...); no peers.
    Gen,
}

#[derive(Debug, Args)]
struct BuildSegmentsArgs {
    #[arg(long, value_enum, default_value_t = Source::Parquet)]
    source: Source,
    /// Input Parquet file (from `gen-tsbs`), with --source parquet.
    #[arg(long, default_value = DEFAULT_PARQUET)]
    parquet: PathBuf,
    #[command(flatten)]
    tsbs: TsbsArgs,
    /// Directory for the segment files (one per hour; existing files are overwritten).
    #[arg(long, default_value = DEFAULT_SEGMENTS_DIR)]
    out: PathBuf,
    /// Worker threads, each building whole hours.
    #[arg(long, default_value_t = default_threads())]
    threads: usize,
    /// Verify every segment after the run (off the clock).
    #[arg(long)]
    verify: bool,
    /// Skip the peers.
    #[arg(long)]
    no_peers: bool,
    /// Reuse this peers.py result instead of loading the peers again (recorded in the results).
    #[arg(long, conflicts_with = "no_peers")]
    peers_json: Option<PathBuf>,
    /// Where the peers keep their databases.
    #[arg(long, default_value = DEFAULT_PEERS_DIR)]
    peers_workdir: PathBuf,
    /// Python interpreter with the `duckdb` and `chdb` packages.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Also load a DuckDB table sorted by (hostname, timestamp).
    #[arg(long)]
    duckdb_sorted: bool,
}

#[derive(Debug, Args)]
struct TsbsQueriesArgs {
    /// Basalt data directory: the TSBS data is published there as datasource `cpu` (hourly
    /// segments) unless it already is.
    #[arg(long, default_value = DEFAULT_BASALT_DIR)]
    data_dir: PathBuf,
    /// The TSBS Parquet file (generated with the --hosts/--hours/--start/--seed below if
    /// missing and needed).
    #[arg(long, default_value = DEFAULT_PARQUET)]
    parquet: PathBuf,
    /// The data the Parquet file holds (query parameters are drawn from it).
    #[command(flatten)]
    tsbs: TsbsArgs,
    /// Seed of the queries' random parameters (hosts, time windows).
    #[arg(long, default_value_t = 1)]
    query_seed: u64,
    /// Timed runs per query and system, after one warm-up run.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Only this query (repeatable).
    #[arg(long = "query")]
    queries: Vec<String>,
    /// Peer to run (repeatable): duckdb, clickhouse, duckdb_sorted. Default: duckdb and
    /// clickhouse.
    #[arg(long = "peer")]
    peers: Vec<String>,
    /// Run Basalt alone.
    #[arg(long, conflicts_with = "peers")]
    no_peers: bool,
    /// Where the peers keep their databases (loaded with `peers-load` if missing).
    #[arg(long, default_value = DEFAULT_PEERS_DIR)]
    peers_workdir: PathBuf,
    /// Python interpreter with the `duckdb`, `chdb` and `pyarrow` packages.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Threads building Basalt's segments during setup.
    #[arg(long, default_value_t = default_threads())]
    threads: usize,
    /// Drop Basalt's `cpu` datasource and publish it again.
    #[arg(long)]
    rebuild: bool,
    /// Largest result whose rows the peers send back for the value checks.
    #[arg(long, default_value_t = 200_000)]
    max_check_rows: usize,
    /// Only write the queries (Basalt JSON and SQL) to this file, the input of
    /// `peers.py query --queries`; run nothing.
    #[arg(long)]
    dump_queries: Option<PathBuf>,
    /// Also run each query as Druid SQL and as native JSON through `basalt serve` (started on
    /// --data-dir as a child process) and time them against each other over loopback HTTP.
    #[arg(long)]
    basalt_sql: bool,
    /// The `basalt` binary for --basalt-sql (default: `basalt` next to this program).
    #[arg(long)]
    basalt_bin: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cfg!(debug_assertions) {
        eprintln!("warning: debug build; use `cargo run --release -p basalt-bench` for numbers");
    }
    let workload = match &cli.command {
        Command::GenTsbs(_) => "gen-tsbs",
        Command::PeersLoad(_) => "peers-load",
        Command::BuildSegments(_) => "build-segments",
        Command::TsbsQueries(_) => "tsbs-queries",
        Command::Load(_) => "load",
        Command::ServerLoad(_) => "server-load",
        Command::Push(_) => "push",
    };
    // Collected first: the start time and load average describe the run, not its aftermath.
    let run = RunInfo::collect(workload);
    let result = match &cli.command {
        Command::GenTsbs(args) => gen_tsbs(args)?,
        Command::PeersLoad(args) => peers_load(args)?,
        Command::BuildSegments(args) => build_segments(args)?,
        Command::TsbsQueries(args) => tsbs_queries(args)?,
        Command::Load(args) => load_workload(args)?,
        Command::ServerLoad(args) => server_load(args)?,
        Command::Push(args) => push(args)?,
    };
    if !cli.no_results {
        let path = write_result(&cli.results_dir, &run, &result)?;
        println!("results: {}", path.display());
    }
    Ok(())
}

fn gen_tsbs(args: &GenTsbsArgs) -> anyhow::Result<serde_json::Value> {
    let cfg = args.tsbs.config()?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("create {}", args.out.display()))?;
    println!(
        "gen-tsbs: {} hosts x {} h from {} (seed {}): {} rows, {:?}",
        cfg.hosts,
        args.tsbs.hours,
        format_rfc3339_ms(cfg.start_ms),
        cfg.seed,
        cfg.rows(),
        args.format,
    );
    let started = Instant::now();
    // Generation runs one batch ahead on its own thread, overlapping with encoding.
    let batches = prefetch(tsbs_batches(&cfg), 2);
    let stats: Option<FileStats> = match args.format {
        Format::Parquet => Some(write_parquet(
            &args.out.join("cpu.parquet"),
            tsbs_schema(),
            batches,
            &ParquetOptions {
                row_group_rows: cfg.rows_per_batch(),
                zstd_level: args.zstd_level,
                sorted_by: Some(0),
                threads: args.threads,
            },
        )?),
        Format::Csv => Some(write_csv(
            &args.out.join("cpu.csv"),
            tsbs_schema(),
            batches,
        )?),
        Format::None => {
            let rows: usize = batches.map(|b| b.num_rows()).sum();
            anyhow::ensure!(rows as u64 == cfg.rows(), "generated {rows} rows");
            None
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let rows = cfg.rows();
    let peak = peak_rss_bytes();
    println!(
        "generated {rows} rows in {seconds:.2} s ({:.2} M rows/s), peak RSS {}",
        rows as f64 / seconds / 1e6,
        fmt_bytes(peak),
    );
    if let Some(s) = &stats {
        println!(
            "wrote {} ({}, {:.2} bytes/row)",
            s.path.display(),
            fmt_bytes(Some(s.bytes)),
            s.bytes as f64 / rows as f64
        );
    }
    Ok(json!({
        "dataset": "tsbs-devops-cpu-only",
        "config": cfg,
        "start": format_rfc3339_ms(cfg.start_ms),
        "format": format!("{:?}", args.format).to_lowercase(),
        "zstd_level": (args.format == Format::Parquet).then_some(args.zstd_level),
        "threads": args.threads,
        "rows": rows,
        "seconds": seconds,
        "rows_per_second": rows as f64 / seconds,
        "file": stats,
        "bytes_per_row": stats.as_ref().map(|s| s.bytes as f64 / rows as f64),
        "peak_rss_bytes": peak,
    }))
}

fn peers_load(args: &PeersLoadArgs) -> anyhow::Result<serde_json::Value> {
    let script = PeersScript {
        python: args.python.clone(),
        ..PeersScript::default()
    };
    let parquet = absolute(&args.parquet)?;
    let result = script.load(
        &parquet,
        &args.workdir,
        &LoadOptions {
            duckdb_sorted: args.duckdb_sorted,
            only: args.peers.clone(),
        },
    )?;
    print_peers(&result);
    Ok(result)
}

fn build_segments(args: &BuildSegmentsArgs) -> anyhow::Result<serde_json::Value> {
    let schema_json = tsbs_data_schema_json();
    let schema = DataSchema::from_json(&schema_json.to_string())?;
    let (summary, runs, source) = match args.source {
        Source::Parquet => {
            let parquet = absolute(&args.parquet)?;
            println!(
                "build-segments: {} -> {} ({} threads)",
                parquet.display(),
                args.out.display(),
                args.threads
            );
            let batches = parquet_batches(&parquet, 1 << 17)?;
            let (summary, runs) = build_hourly_segments(&schema, batches, &args.out, args.threads)?;
            (summary, runs, json!({"parquet": parquet}))
        }
        Source::Gen => {
            let cfg = args.tsbs.config()?;
            println!(
                "build-segments: generated TSBS, {} rows -> {} ({} threads)",
                cfg.rows(),
                args.out.display(),
                args.threads
            );
            // The generator runs ahead on its own thread.
            let batches = prefetch(tsbs_batches(&cfg), 2).map(Ok);
            let (summary, runs) = build_hourly_segments(&schema, batches, &args.out, args.threads)?;
            (summary, runs, json!({"generated": cfg}))
        }
    };
    print_build(&summary);

    let verified = if args.verify {
        let t0 = Instant::now();
        let mut rows = 0;
        for r in &runs {
            rows += basalt_engine::segment::verify_file(&r.path)
                .with_context(|| format!("verify {}", r.path.display()))?
                .rows;
        }
        anyhow::ensure!(
            rows == summary.rows_out,
            "verified {rows} rows, wrote {}",
            summary.rows_out
        );
        println!(
            "verified {} segments ({rows} rows) in {:.2} s",
            runs.len(),
            t0.elapsed().as_secs_f64()
        );
        true
    } else {
        false
    };

    let columns = column_bytes(runs.iter().map(|r| r.path.as_path()))?;
    print_columns(&columns, summary.rows);

    let peers = if let Some(path) = &args.peers_json {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        Some(serde_json::from_str::<serde_json::Value>(&text)?)
    } else if args.no_peers || args.source == Source::Gen {
        None
    } else {
        let script = PeersScript {
            python: args.python.clone(),
            ..PeersScript::default()
        };
        let opts = LoadOptions {
            duckdb_sorted: args.duckdb_sorted,
            only: Vec::new(),
        };
        Some(script.load(&absolute(&args.parquet)?, &args.peers_workdir, &opts)?)
    };
    let compare = peers.as_ref().map(|p| compare_with_peers(&summary, p));
    if let Some(p) = &peers {
        print_peers(p);
    }
    if let Some(cmp) = &compare {
        for (name, c) in cmp {
            let f = |key: &str| {
                c.get(key)
                    .and_then(serde_json::Value::as_f64)
                    .unwrap_or(f64::NAN)
            };
            println!(
                "basalt / {name}: bytes {:.2}x, load time {:.2}x",
                f("basalt_bytes_ratio"),
                f("basalt_load_time_ratio")
            );
        }
    }
    Ok(json!({
        "dataset": "tsbs-devops-cpu-only",
        "source": source,
        "data_schema": schema_json,
        "summary": summary,
        "verified": verified,
        "column_bytes": columns,
        "segments": runs,
        "peers": peers,
        "peers_reused_from": args.peers_json,
        "compare": compare,
    }))
}

fn tsbs_queries(args: &TsbsQueriesArgs) -> anyhow::Result<serde_json::Value> {
    let peers = if args.no_peers {
        Vec::new()
    } else if args.peers.is_empty() {
        vec!["duckdb".to_owned(), "clickhouse".to_owned()]
    } else {
        args.peers.clone()
    };
    basalt_bench::queries::run(&basalt_bench::queries::Options {
        data_dir: absolute(&args.data_dir)?,
        parquet: absolute(&args.parquet)?,
        tsbs: args.tsbs.config()?,
        peers_workdir: absolute(&args.peers_workdir)?,
        script: PeersScript {
            python: args.python.clone(),
            ..PeersScript::default()
        },
        peers,
        seed: args.query_seed,
        runs: args.runs,
        only: args.queries.clone(),
        threads: args.threads,
        rebuild: args.rebuild,
        max_check_rows: args.max_check_rows,
        dump_queries: args.dump_queries.clone(),
        basalt_sql: if args.basalt_sql {
            Some(match &args.basalt_bin {
                Some(b) => absolute(b)?,
                None => std::env::current_exe()?
                    .parent()
                    .context("this program's directory")?
                    .join("basalt"),
            })
        } else {
            None
        },
    })
}

fn print_build(s: &BuildSummary) {
    println!(
        "built {} segments, {} rows in {:.2} s wall ({:.2} M rows/s); writer time {:.2} s \
         (add {:.2} + finish {:.2}) = {:.2} M rows/s per core",
        s.segments,
        s.rows,
        s.wall_seconds,
        s.rows_per_second_wall / 1e6,
        s.writer_seconds,
        s.add_seconds,
        s.finish_seconds,
        s.rows_per_second_per_core / 1e6,
    );
    println!(
        "basalt: {} ({:.2} bytes/row), peak RSS {}",
        fmt_bytes(Some(s.bytes)),
        s.bytes_per_row,
        fmt_bytes(s.peak_rss_bytes)
    );
}

/// Prints the per-column storage of the segments, largest first.
fn print_columns(columns: &BTreeMap<String, ColumnBytes>, rows: u64) {
    let mut by_size: Vec<(&String, &ColumnBytes)> = columns.iter().collect();
    by_size.sort_by_key(|(_, c)| std::cmp::Reverse(c.get("total").copied().unwrap_or(0)));
    println!(
        "{:<22} {:>12} {:>10}  parts",
        "column", "bytes", "bytes/row"
    );
    for (name, c) in by_size {
        let total = c.get("total").copied().unwrap_or(0);
        let parts: Vec<String> = c
            .iter()
            .filter(|(k, _)| *k != "total")
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!(
            "{name:<22} {total:>12} {:>10.3}  {}",
            total as f64 / rows.max(1) as f64,
            parts.join(", ")
        );
    }
}

/// Prints one line per peer from the JSON peers.py writes.
fn print_peers(result: &serde_json::Value) {
    let Some(peers) = result.get("peers").and_then(|p| p.as_object()) else {
        return;
    };
    println!(
        "{:<16} {:>10} {:>14} {:>10} {:>12}",
        "peer", "load s", "bytes", "bytes/row", "peak RSS"
    );
    for (name, p) in peers {
        let num = |key: &str| p.get(key).and_then(serde_json::Value::as_f64);
        println!(
            "{:<16} {:>10.2} {:>14} {:>10.2} {:>12}",
            name,
            num("load_seconds").unwrap_or(f64::NAN),
            num("bytes_on_disk").map_or("-".to_owned(), |b| format!("{b:.0}")),
            num("bytes_per_row").unwrap_or(f64::NAN),
            fmt_bytes(num("peak_rss_bytes").map(|b| b as u64)),
        );
    }
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolve {}", path.display()))
}

fn fmt_bytes(bytes: Option<u64>) -> String {
    match bytes {
        None => "n/a".to_owned(),
        Some(b) if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64),
        Some(b) => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
    }
}

#[derive(Debug, Args)]
struct LoadArgs {
    /// The full-size TSBS Parquet file (the half-size one is generated next to the runs).
    #[arg(long, default_value = DEFAULT_PARQUET)]
    parquet: PathBuf,
    /// The data the Parquet file holds (the smaller input is the first half of its hours).
    #[command(flatten)]
    tsbs: TsbsArgs,
    /// Generated inputs and data directories.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/data/load"))]
    workdir: PathBuf,
    /// The `basalt` binary (default: next to this one).
    #[arg(long)]
    basalt: Option<PathBuf>,
    /// Also load the same data as CSV (both sizes; generated if missing, ~1.3 GB per 12 h).
    #[arg(long)]
    csv: bool,
    /// The loader's memory budget.
    #[arg(long, default_value = "2GiB")]
    memory: String,
    #[arg(long, default_value_t = default_threads())]
    threads: usize,
    /// Skip the peers.
    #[arg(long)]
    no_peers: bool,
    /// Reuse this peers.py result instead of loading the peers again.
    #[arg(long, conflicts_with = "no_peers")]
    peers_json: Option<PathBuf>,
    #[arg(long, default_value = DEFAULT_PEERS_DIR)]
    peers_workdir: PathBuf,
    #[arg(long, default_value = "python3")]
    python: String,
}

fn load_workload(args: &LoadArgs) -> anyhow::Result<serde_json::Value> {
    let basalt = match &args.basalt {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("basalt"),
    };
    anyhow::ensure!(
        basalt.exists(),
        "{} not found; build it with `cargo build --release -p basalt-server`",
        basalt.display()
    );
    let opts = basalt_bench::load_bench::LoadBenchOptions {
        basalt,
        parquet: absolute(&args.parquet)?,
        workdir: absolute(&args.workdir)?,
        tsbs: args.tsbs.config()?,
        csv: args.csv,
        memory: args.memory.clone(),
        threads: args.threads,
    };
    let runs = basalt_bench::load_bench::run(&opts, args.tsbs.hours)?;
    let peers = if let Some(path) = &args.peers_json {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        Some(serde_json::from_str::<serde_json::Value>(&text)?)
    } else if args.no_peers {
        None
    } else {
        let script = PeersScript {
            python: args.python.clone(),
            ..PeersScript::default()
        };
        let opts = LoadOptions {
            duckdb_sorted: false,
            only: Vec::new(),
        };
        Some(script.load(&absolute(&args.parquet)?, &args.peers_workdir, &opts)?)
    };
    if let Some(p) = &peers {
        print_peers(p);
    }
    Ok(json!({
        "dataset": "tsbs-devops-cpu-only",
        "load_spec": basalt_bench::load_bench::tsbs_load_spec(false),
        "runs": runs,
        "peers": peers,
        "peers_reused_from": args.peers_json,
    }))
}

fn server_load(args: &ServerLoadArgs) -> anyhow::Result<serde_json::Value> {
    use basalt_bench::server_load::{LoadOptions, run};
    let bin = match &args.basalt_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .map(|d| d.join("basalt"))
            .context("no directory for the basalt binary")?,
    };
    let dir = std::env::temp_dir().join(format!("basalt-server-load-{}", std::process::id()));
    let free = || -> anyhow::Result<std::net::SocketAddr> {
        Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
    };
    let (http, grpc) = (free()?, free()?);
    let mut child = std::process::Command::new(&bin)
        .args(["serve", "--data-dir"])
        .arg(&dir)
        .args([
            "--http-addr",
            &http.to_string(),
            "--grpc-addr",
            &grpc.to_string(),
        ])
        .args(["--log-level", "warn"])
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    while basalt_bench::server_load::http(http, "GET", "/status/health", b"").is_err() {
        anyhow::ensure!(Instant::now() < deadline, "the server did not come up");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let opts = LoadOptions {
        http,
        clients: args.clients,
        duration: std::time::Duration::from_secs(args.seconds),
        push_fraction: args.push_fraction,
        rows_per_push: args.rows_per_push,
        datasource: "load".into(),
    };
    println!(
        "server-load: {} clients, {} s, {:.0}% pushes of {} rows",
        args.clients,
        args.seconds,
        args.push_fraction * 100.0,
        args.rows_per_push
    );
    let result = run(&opts);
    let rss = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|k| k.parse::<u64>().ok())
            })
        });
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let mut result = result?;
    result["server_peak_rss_mib"] = json!(rss.map(|k| k / 1024));
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(result)
}

fn push(args: &PushArgs) -> anyhow::Result<serde_json::Value> {
    let basalt = match &args.basalt_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("basalt"),
    };
    let server_modes = args
        .modes
        .iter()
        .any(|m| *m != basalt_bench::push_bench::PushMode::Engine);
    anyhow::ensure!(
        !server_modes || basalt.exists(),
        "{} not found; build it with `cargo build --release -p basalt-server`",
        basalt.display()
    );
    basalt_bench::push_bench::run(&basalt_bench::push_bench::PushOptions {
        basalt,
        clients: args.clients,
        seconds: args.seconds,
        rows_per_push: args.rows_per_push,
        hosts: args.hosts,
        modes: args.modes.clone(),
    })
}
