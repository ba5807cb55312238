//! Setting up the `tsbs-queries` workload: the TSBS Parquet file, Basalt's data directory with
//! the data published as hourly segments, and the peers' databases. Every step is skipped when
//! its output is already there.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use basalt_engine::engine::Engine;
use basalt_engine::schema::DataSchema;
use basalt_engine::segment::SegmentId;
use basalt_engine::time::Interval;
use serde_json::{Value, json};

use crate::build_segments::{build_hourly_segments, tsbs_data_schema_json};
use crate::peers::{LoadOptions, PeersScript};
use crate::prefetch::prefetch;
use crate::source::parquet_batches;
use crate::tsbs::{TsbsConfig, tsbs_batches, tsbs_schema};
use crate::tsbs_files::{ParquetOptions, write_parquet};

/// The datasource the TSBS data is published as.
pub const DATASOURCE: &str = "cpu";

/// Writes the TSBS Parquet file at `path` from `cfg` unless it exists (as `gen-tsbs` does with
/// its default options). Returns what was done.
pub fn ensure_parquet(path: &Path, cfg: &TsbsConfig, threads: usize) -> anyhow::Result<Value> {
    if path.is_file() {
        return Ok(json!({"path": path, "generated": false}));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    println!(
        "setup: {} is missing; generating it ({} rows)",
        path.display(),
        cfg.rows()
    );
    let t0 = Instant::now();
    let stats = write_parquet(
        path,
        tsbs_schema(),
        prefetch(tsbs_batches(cfg), 2),
        &ParquetOptions {
            row_group_rows: cfg.rows_per_batch(),
            zstd_level: 3,
            sorted_by: Some(0),
            threads,
        },
    )?;
    Ok(json!({
        "path": path,
        "generated": true,
        "seconds": t0.elapsed().as_secs_f64(),
        "bytes": stats.bytes,
    }))
}

/// Makes sure `engine`'s data directory holds the TSBS data as datasource `cpu`: registers the
/// data schema and publishes one segment per hour of `parquet`, all in one atomic publish.
/// Skipped when the datasource already has `expect_rows` rows; `rebuild` drops it first.
pub fn ensure_basalt_data(
    engine: &Engine,
    parquet: &Path,
    expect_rows: u64,
    threads: usize,
    rebuild: bool,
) -> anyhow::Result<Value> {
    let dir = engine.data_dir();
    let existing = dir.timeline().segments(DATASOURCE);
    let rows: u64 = existing.iter().map(|s| s.num_rows).sum();
    if !existing.is_empty() && !rebuild {
        ensure!(
            rows == expect_rows,
            "datasource `{DATASOURCE}` in {} has {rows} rows in {} segments, expected \
             {expect_rows}: pass --rebuild to publish it again",
            dir.root().display(),
            existing.len()
        );
        println!(
            "setup: Basalt data dir {} already has `{DATASOURCE}` ({} segments, {rows} rows)",
            dir.root().display(),
            existing.len()
        );
        return Ok(json!({"published": false, "segments": existing.len(), "rows": rows}));
    }
    if !existing.is_empty() || dir.catalog().get_datasource(DATASOURCE)?.is_some() {
        println!("setup: dropping datasource `{DATASOURCE}` (--rebuild)");
        dir.drop_datasource(DATASOURCE)?;
    }

    let spec = tsbs_data_schema_json();
    dir.catalog()
        .create_datasource(DATASOURCE, &spec.to_string())?;
    let schema = DataSchema::from_json(&spec.to_string())?;

    // Built next to `staging/` paths (same filesystem), then moved into place by the publish.
    let staging = staging_dir(dir.root());
    println!(
        "setup: building hourly segments of {} into {} ({threads} threads)",
        parquet.display(),
        staging.display()
    );
    let t0 = Instant::now();
    let (summary, runs) = build_hourly_segments(
        &schema,
        parquet_batches(parquet, 1 << 17)?,
        &staging,
        threads,
    )?;
    let built = t0.elapsed().as_secs_f64();
    if summary.rows != expect_rows {
        bail!(
            "{} holds {} rows, expected {expect_rows} (check --hosts/--hours/--start)",
            parquet.display(),
            summary.rows
        );
    }

    let version = dir.allocate_version(DATASOURCE)?;
    let mut staged = Vec::with_capacity(runs.len());
    for r in &runs {
        let id = SegmentId {
            datasource: DATASOURCE.to_owned(),
            interval: Interval::new(r.start_ms, r.end_ms)?,
            version,
            partition: 0,
        };
        staged.push((id, r.path.clone(), r.rows_out));
    }
    let t1 = Instant::now();
    let records = dir.publish(staged, None)?;
    let published = t1.elapsed().as_secs_f64();
    std::fs::remove_dir_all(&staging).ok();
    println!(
        "setup: published {} segments ({} rows, {:.1} MiB) in {built:.1} s build + {published:.2} s publish",
        records.len(),
        summary.rows_out,
        summary.bytes as f64 / (1 << 20) as f64
    );
    Ok(json!({
        "published": true,
        "segments": records.len(),
        "rows": summary.rows_out,
        "bytes": summary.bytes,
        "version": version.0,
        "build_seconds": built,
        "publish_seconds": published,
        "build": summary,
    }))
}

fn staging_dir(root: &Path) -> PathBuf {
    root.join("staging")
        .join(format!("tsbs-queries-{}", std::process::id()))
}

/// The peers whose databases are missing under `workdir` (`peers.py load` output).
pub fn missing_peers(workdir: &Path, peers: &[String]) -> Vec<String> {
    peers
        .iter()
        .filter(|p| {
            let present = match p.as_str() {
                "duckdb" | "duckdb_sorted" => workdir.join(p.as_str()).join("cpu.duckdb").is_file(),
                _ => workdir.join(p.as_str()).is_dir(),
            };
            !present
        })
        .cloned()
        .collect()
}

/// Loads the peers that are missing under `workdir` from `parquet` (`peers-load`); reuses the
/// others.
pub fn ensure_peers(
    script: &PeersScript,
    parquet: &Path,
    workdir: &Path,
    peers: &[String],
) -> anyhow::Result<Value> {
    let missing = missing_peers(workdir, peers);
    if missing.is_empty() {
        println!(
            "setup: reusing the peers' databases in {}",
            workdir.display()
        );
        return Ok(json!({"loaded": [], "workdir": workdir}));
    }
    println!(
        "setup: loading {} into {}",
        missing.join(", "),
        workdir.display()
    );
    let load = script.load(
        parquet,
        workdir,
        &LoadOptions {
            duckdb_sorted: false,
            only: missing.clone(),
        },
    )?;
    Ok(json!({"loaded": missing, "workdir": workdir, "load": load}))
}
