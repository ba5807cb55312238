//! The `load` workload: `basalt load` on the TSBS data at two input sizes (Parquet, and
//! optionally the same data as CSV), each run as its own process so its peak RSS is its own,
//! next to DuckDB and ClickHouse loading the same Parquet file.
//!
//! Per run: wall seconds, rows/s, input MB/s, CPU seconds of the process (and rows per
//! CPU-second, which stays meaningful on a busy machine), peak RSS (`VmHWM`, polled), spill
//! bytes, segments and their bytes — with the memory budget, to show peak RSS stays within it
//! whatever the input size.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde::Serialize;
use serde_json::{Value, json};

use crate::build_segments::tsbs_data_schema_json;
use crate::prefetch::prefetch;
use crate::tsbs::{TsbsConfig, tsbs_batches, tsbs_schema};
use crate::tsbs_files::{ParquetOptions, write_csv, write_parquet};

/// One `basalt load` run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadRun {
    /// Label, e.g. `parquet-24h`.
    pub name: String,
    pub input: PathBuf,
    pub input_bytes: u64,
    pub rows: u64,
    pub seconds: f64,
    pub rows_per_second: f64,
    pub mb_per_second: f64,
    /// User + system CPU seconds of the `basalt load` process.
    pub cpu_seconds: f64,
    /// Rows per CPU-second (per core).
    pub rows_per_cpu_second: f64,
    pub peak_rss_bytes: u64,
    /// `--memory` given to the loader.
    pub memory_budget: String,
    pub threads: usize,
    /// The loader's own summary (`basalt load --json`).
    pub summary: Value,
}

/// Settings of the workload.
#[derive(Debug, Clone)]
pub struct LoadBenchOptions {
    /// The `basalt` binary.
    pub basalt: PathBuf,
    /// Full-size Parquet input.
    pub parquet: PathBuf,
    /// Directory for generated inputs (the smaller size, CSV) and the data directories.
    pub workdir: PathBuf,
    /// Hours of the full-size data (the smaller size is half).
    pub tsbs: TsbsConfig,
    /// Also load CSV of both sizes (generated if missing).
    pub csv: bool,
    pub memory: String,
    pub threads: usize,
}

/// The load spec: the `build-segments` schema; CSV timestamps are RFC 3339.
pub fn tsbs_load_spec(csv: bool) -> Value {
    let mut spec = tsbs_data_schema_json();
    if csv {
        spec["timestampSpec"]["format"] = json!("iso");
    }
    spec
}

/// Generate the TSBS data with `hours` hours to `path` (Parquet or CSV) unless it exists.
fn ensure_input(cfg: &TsbsConfig, hours: u32, path: &Path, csv: bool) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let mut cfg = TsbsConfig::new(cfg.hosts, hours, cfg.start_ms, cfg.seed);
    cfg.batch_rows = TsbsConfig::DEFAULT_BATCH_ROWS;
    cfg.validate()?;
    println!("load: generating {} ({} rows)", path.display(), cfg.rows());
    let batches = prefetch(tsbs_batches(&cfg), 2);
    if csv {
        write_csv(path, tsbs_schema(), batches)?;
    } else {
        write_parquet(
            path,
            tsbs_schema(),
            batches,
            &ParquetOptions {
                row_group_rows: cfg.rows_per_batch(),
                zstd_level: 3,
                sorted_by: Some(0),
                threads: 2,
            },
        )?;
    }
    Ok(())
}

/// Run every load; returns the runs.
pub fn run(opts: &LoadBenchOptions, hours: u32) -> anyhow::Result<Vec<LoadRun>> {
    std::fs::create_dir_all(&opts.workdir)?;
    let half = hours / 2;
    let mut inputs: Vec<(String, PathBuf, bool)> = Vec::new();
    let small_parquet = opts.workdir.join(format!("cpu-{half}h.parquet"));
    ensure_input(&opts.tsbs, half, &small_parquet, false)?;
    inputs.push((format!("parquet-{half}h"), small_parquet, false));
    inputs.push((format!("parquet-{hours}h"), opts.parquet.clone(), false));
    if opts.csv {
        for h in [half, hours] {
            let p = opts.workdir.join(format!("cpu-{h}h.csv"));
            ensure_input(&opts.tsbs, h, &p, true)?;
            inputs.push((format!("csv-{h}h"), p, true));
        }
    }
    let mut runs = Vec::new();
    for (name, input, csv) in inputs {
        let spec_path = opts
            .workdir
            .join(if csv { "spec-csv.json" } else { "spec.json" });
        std::fs::write(&spec_path, tsbs_load_spec(csv).to_string())?;
        let data = opts.workdir.join(format!("data-{name}"));
        if data.exists() {
            std::fs::remove_dir_all(&data)?;
        }
        let run = run_one(opts, &name, &input, &spec_path, &data)?;
        println!(
            "load {name}: {} rows in {:.1} s = {:.0} rows/s, {:.1} MB/s; {:.1} CPU-s = {:.0} rows/CPU-s; peak RSS {:.0} MiB (budget {})",
            run.rows,
            run.seconds,
            run.rows_per_second,
            run.mb_per_second,
            run.cpu_seconds,
            run.rows_per_cpu_second,
            run.peak_rss_bytes as f64 / (1 << 20) as f64,
            opts.memory
        );
        std::fs::remove_dir_all(&data).ok();
        runs.push(run);
    }
    Ok(runs)
}

fn run_one(
    opts: &LoadBenchOptions,
    name: &str,
    input: &Path,
    spec: &Path,
    data: &Path,
) -> anyhow::Result<LoadRun> {
    let input_bytes = std::fs::metadata(input)
        .with_context(|| format!("input {}", input.display()))?
        .len();
    let started = Instant::now();
    let child = Command::new(&opts.basalt)
        .arg("load")
        .arg("--spec")
        .arg(spec)
        .arg("--data-dir")
        .arg(data)
        .args([
            "--memory",
            &opts.memory,
            "--threads",
            &opts.threads.to_string(),
        ])
        .args(["--json", "--progress", "none"])
        .arg(input)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", opts.basalt.display()))?;
    let pid = child.id();
    // Poll the child's peak RSS and CPU time until it exits.
    let (tx, rx) = std::sync::mpsc::channel();
    let poller = std::thread::spawn(move || {
        let mut peak = 0u64;
        let mut cpu = 0f64;
        while rx.try_recv().is_err() {
            if let Some(v) = status_kib(pid, "VmHWM:") {
                peak = peak.max(v * 1024);
            }
            if let Some(c) = cpu_seconds(pid) {
                cpu = c;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (peak, cpu)
    });
    let out = child.wait_with_output()?;
    let seconds = started.elapsed().as_secs_f64();
    let _ = tx.send(());
    let (peak, cpu) = poller
        .join()
        .map_err(|_| anyhow::anyhow!("RSS poller panicked"))?;
    ensure!(
        out.status.success(),
        "basalt load {name} failed: {}",
        out.status
    );
    let summary: Value =
        serde_json::from_slice(&out.stdout).context("basalt load --json output")?;
    let rows = summary["rows_read"].as_u64().unwrap_or_default();
    Ok(LoadRun {
        name: name.to_string(),
        input: input.to_path_buf(),
        input_bytes,
        rows,
        seconds,
        rows_per_second: rows as f64 / seconds,
        mb_per_second: input_bytes as f64 / 1e6 / seconds,
        cpu_seconds: cpu,
        rows_per_cpu_second: if cpu > 0.0 { rows as f64 / cpu } else { 0.0 },
        peak_rss_bytes: peak,
        memory_budget: opts.memory.clone(),
        threads: opts.threads,
        summary,
    })
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime of a process, assuming the usual 100 clock ticks per second.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesized command name; utime and stime are fields 14 and 15.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
