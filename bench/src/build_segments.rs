//! Workload `build-segments`: Basalt's segment builder on the TSBS cpu data.
//!
//! The input (a Parquet file, or the generator) is read on the calling thread, cut into hourly
//! chunks, and each hour is built into one segment file by one of `threads` workers
//! (`SegmentWriter::add_batch` for every slice, then `finish`). Measured: wall time, the time
//! the workers spent inside the segment writer (load rows/s per core), segment bytes and
//! bytes/row, peak RSS. The peers load the same Parquet file for the side-by-side comparison.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use arrow_array::RecordBatch;
use basalt_engine::schema::DataSchema;
use basalt_engine::segment::{Segment, SegmentWriter};
use basalt_engine::time::Interval;
use serde::Serialize;
use serde_json::json;

use crate::chunking::{TimeChunk, TimeSplitter, run_parallel};
use crate::report::peak_rss_bytes;
use crate::timefmt::format_file_stamp;
use crate::tsbs::{FIELD_NAMES, TAG_NAMES, TIME_COLUMN};

/// One hour in milliseconds: the segment granularity of this workload.
pub const HOUR_MS: i64 = 3_600_000;

/// The Druid `dataSchema` of the TSBS cpu data: the 10 tags as string dimensions, the 10 fields
/// as long dimensions, no metrics, no rollup, hourly segments; rows sorted by
/// (hostname, __time) like ClickHouse's `ORDER BY (hostname, timestamp)` (Druid's
/// `forceSegmentSortByTime: false` with `__time` listed second).
pub fn tsbs_data_schema_json() -> serde_json::Value {
    let mut dims: Vec<serde_json::Value> = Vec::new();
    dims.push(json!(TAG_NAMES[0]));
    dims.push(json!({"type": "long", "name": "__time"}));
    dims.extend(TAG_NAMES[1..].iter().map(|t| json!(t)));
    dims.extend(
        FIELD_NAMES
            .iter()
            .map(|f| json!({"type": "long", "name": f})),
    );
    json!({
        "dataSource": "cpu",
        "timestampSpec": {"column": TIME_COLUMN, "format": "millis"},
        "dimensionsSpec": {"dimensions": dims, "forceSegmentSortByTime": false},
        "metricsSpec": [],
        "granularitySpec": {
            "segmentGranularity": "hour",
            "queryGranularity": "none",
            "rollup": false
        }
    })
}

/// What building one segment took.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentRun {
    pub start_ms: i64,
    pub end_ms: i64,
    pub path: PathBuf,
    pub rows_in: u64,
    pub rows_out: u64,
    pub bytes: u64,
    /// Seconds in `add_batch` calls.
    pub add_seconds: f64,
    /// Seconds in `finish` (sort, encode, write).
    pub finish_seconds: f64,
}

/// Totals of a `build-segments` run.
#[derive(Debug, Clone, Serialize)]
pub struct BuildSummary {
    pub segments: usize,
    pub threads: usize,
    pub rows: u64,
    pub rows_out: u64,
    pub bytes: u64,
    pub bytes_per_row: f64,
    /// Wall time from the first read to the last segment written.
    pub wall_seconds: f64,
    /// Rows per wall-clock second (all threads, including reading the input).
    pub rows_per_second_wall: f64,
    /// Seconds the workers spent in the segment writer, summed over threads.
    pub writer_seconds: f64,
    pub add_seconds: f64,
    pub finish_seconds: f64,
    /// Rows per second of writer time: the per-core build rate.
    pub rows_per_second_per_core: f64,
    pub peak_rss_bytes: Option<u64>,
}

/// Builds one segment per hour of `batches` into `out_dir` on `threads` workers.
pub fn build_hourly_segments(
    schema: &DataSchema,
    batches: impl Iterator<Item = anyhow::Result<RecordBatch>>,
    out_dir: &Path,
    threads: usize,
) -> anyhow::Result<(BuildSummary, Vec<SegmentRun>)> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("create {}", out_dir.display()))?;
    let started = Instant::now();
    let chunks = TimeSplitter::new(batches, TIME_COLUMN, HOUR_MS);
    let mut runs = run_parallel(chunks, threads, |chunk| build_one(schema, chunk, out_dir))?;
    let wall = started.elapsed().as_secs_f64();
    runs.sort_by_key(|r| r.start_ms);

    let rows: u64 = runs.iter().map(|r| r.rows_in).sum();
    let bytes: u64 = runs.iter().map(|r| r.bytes).sum();
    let add: f64 = runs.iter().map(|r| r.add_seconds).sum();
    let finish: f64 = runs.iter().map(|r| r.finish_seconds).sum();
    let summary = BuildSummary {
        segments: runs.len(),
        threads,
        rows,
        rows_out: runs.iter().map(|r| r.rows_out).sum(),
        bytes,
        bytes_per_row: bytes as f64 / rows.max(1) as f64,
        wall_seconds: wall,
        rows_per_second_wall: rows as f64 / wall,
        writer_seconds: add + finish,
        add_seconds: add,
        finish_seconds: finish,
        rows_per_second_per_core: rows as f64 / (add + finish),
        peak_rss_bytes: peak_rss_bytes(),
    };
    Ok((summary, runs))
}

fn build_one(schema: &DataSchema, chunk: TimeChunk, out_dir: &Path) -> anyhow::Result<SegmentRun> {
    let TimeChunk {
        start_ms,
        end_ms,
        batches,
    } = chunk;
    let path = out_dir.join(format!(
        "cpu_{}_{}.seg",
        format_file_stamp(start_ms),
        format_file_stamp(end_ms)
    ));
    let t0 = Instant::now();
    let mut writer = SegmentWriter::new(schema, Interval::new(start_ms, end_ms)?)?;
    // Consume the slices so their memory is released as the writer takes the rows.
    for batch in batches {
        let report = writer.add_batch(&batch)?;
        if let Some((row, reason)) = report.rejected.first() {
            bail!(
                "segment {}: {} rows rejected, first (row {row}): {reason}",
                path.display(),
                report.rejected.len()
            );
        }
    }
    let t1 = Instant::now();
    let stats = writer.finish(&path)?;
    let t2 = Instant::now();
    Ok(SegmentRun {
        start_ms,
        end_ms,
        path,
        rows_in: stats.rows_in,
        rows_out: stats.rows_out,
        bytes: stats.bytes,
        add_seconds: (t1 - t0).as_secs_f64(),
        finish_seconds: (t2 - t1).as_secs_f64(),
    })
}

/// Bytes of one column summed over segments, by what they hold: block streams (values, ids,
/// lengths, ...) and the other parts (dictionary, bitmap index, null bitmap).
pub type ColumnBytes = BTreeMap<String, u64>;

/// Per-column storage breakdown of the segments at `paths` (read from their directories, off the
/// clock), plus `"(file overhead)"`: headers, directories and footers.
pub fn column_bytes<'a>(
    paths: impl IntoIterator<Item = &'a Path>,
) -> anyhow::Result<BTreeMap<String, ColumnBytes>> {
    let mut out: BTreeMap<String, ColumnBytes> = BTreeMap::new();
    let mut overhead = 0u64;
    for path in paths {
        let seg = Segment::open(path).with_context(|| format!("open {}", path.display()))?;
        let mut in_columns = 0u64;
        for col in seg.columns() {
            let entry = out.entry(col.name.clone()).or_default();
            for stream in &col.streams {
                let len: u64 = stream.blocks.iter().map(|b| b.range.len).sum();
                *entry.entry(format!("{:?}", stream.role)).or_default() += len;
                in_columns += len;
            }
            for part in &col.parts {
                *entry.entry(format!("{:?}", part.role)).or_default() += part.range.len;
                in_columns += part.range.len;
            }
        }
        overhead += std::fs::metadata(path)?.len().saturating_sub(in_columns);
    }
    for entry in out.values_mut() {
        let total = entry.values().sum();
        entry.insert("total".to_owned(), total);
    }
    out.insert(
        "(file overhead)".to_owned(),
        BTreeMap::from([("total".to_owned(), overhead)]),
    );
    Ok(out)
}

/// `ours / theirs` when both are present and `theirs` is non-zero.
pub fn ratio(ours: f64, theirs: Option<f64>) -> Option<f64> {
    theirs.filter(|t| *t != 0.0).map(|t| ours / t)
}

/// Side-by-side ratios of a build summary against the peers' JSON (see `peers.py`): storage
/// (bytes) and load time, Basalt over peer (below 1 means Basalt is smaller / faster).
pub fn compare_with_peers(
    summary: &BuildSummary,
    peers: &serde_json::Value,
) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    let Some(peers) = peers.get("peers").and_then(|p| p.as_object()) else {
        return out;
    };
    for (name, p) in peers {
        let num = |key: &str| p.get(key).and_then(serde_json::Value::as_f64);
        out.insert(
            name.clone(),
            json!({
                "bytes_on_disk": num("bytes_on_disk"),
                "bytes_per_row": num("bytes_per_row"),
                "load_seconds": num("load_seconds"),
                "basalt_bytes_ratio": ratio(summary.bytes as f64, num("bytes_on_disk")),
                "basalt_load_time_ratio": ratio(summary.wall_seconds, num("load_seconds")),
            }),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsbs::{TsbsConfig, tsbs_batches};

    #[test]
    fn schema_parses_and_sorts_by_host_then_time() -> anyhow::Result<()> {
        let schema = DataSchema::from_json(&tsbs_data_schema_json().to_string())?;
        assert_eq!(schema.dimensions.len(), 20);
        assert!(schema.metrics.is_empty());
        let order = schema.sort_order();
        assert_eq!(order[0], Some(0), "hostname first");
        assert_eq!(order[1], None, "then __time");
        Ok(())
    }

    #[test]
    fn builds_one_segment_per_hour() -> anyhow::Result<()> {
        let schema = DataSchema::from_json(&tsbs_data_schema_json().to_string())?;
        let mut cfg = TsbsConfig::new(3, 2, 1_451_606_400_000, 1);
        cfg.batch_rows = 500;
        let dir = std::env::temp_dir().join(format!("basalt-bench-seg-{}", std::process::id()));
        let (summary, runs) = build_hourly_segments(&schema, tsbs_batches(&cfg).map(Ok), &dir, 2)?;
        assert_eq!(summary.segments, 2);
        assert_eq!(summary.rows, cfg.rows());
        assert_eq!(summary.rows_out, cfg.rows(), "no rollup");
        for r in &runs {
            assert_eq!(r.rows_in, 3 * 360);
            assert_eq!(std::fs::metadata(&r.path)?.len(), r.bytes);
            let report = basalt_engine::segment::verify_file(&r.path)?;
            assert_eq!(report.rows, r.rows_out);
        }
        let cols = column_bytes(runs.iter().map(|r| r.path.as_path()))?;
        let total: u64 = cols.values().map(|c| c["total"]).sum();
        assert_eq!(
            total, summary.bytes,
            "the breakdown accounts for every byte"
        );
        assert!(cols.contains_key("hostname") && cols.contains_key("usage_idle"));
        Ok(())
    }

    #[test]
    fn ratios_against_peers() {
        let summary = BuildSummary {
            segments: 1,
            threads: 1,
            rows: 10,
            rows_out: 10,
            bytes: 50,
            bytes_per_row: 5.0,
            wall_seconds: 2.0,
            rows_per_second_wall: 5.0,
            writer_seconds: 2.0,
            add_seconds: 1.0,
            finish_seconds: 1.0,
            rows_per_second_per_core: 5.0,
            peak_rss_bytes: None,
        };
        let peers = json!({"peers": {"clickhouse": {"bytes_on_disk": 100, "load_seconds": 4.0}}});
        let cmp = compare_with_peers(&summary, &peers);
        assert_eq!(cmp["clickhouse"]["basalt_bytes_ratio"], json!(0.5));
        assert_eq!(cmp["clickhouse"]["basalt_load_time_ratio"], json!(0.5));
    }
}
