//! Shared by the `loader_*` tests: generated events, files in every format, a reference built
//! by one `SegmentWriter`, and the rows a data directory serves.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use basalt_engine::loader::{LoadConfig, LoadProgress, LoadSummary};
use basalt_engine::schema::DataSchema;
use basalt_engine::segment::{Segment, SegmentWriter};
use basalt_engine::storage::DataDir;
use basalt_engine::time::Interval;
use serde_json::{Value, json};

pub const HOUR: i64 = 3_600_000;
pub const T0: i64 = 1_451_606_400_000; // 2016-01-01T00:00:00Z

/// One generated event.
#[derive(Clone, Debug)]
pub struct Event {
    pub ts: i64,
    pub host: String,
    pub core: i64,
    pub usage: f64,
    pub user: String,
}

/// `n` events over `hours` hours, deterministic in `seed`; values are integers so sums are
/// exact in any order.
pub fn events(n: usize, hours: i64, seed: u64) -> Vec<Event> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|_| Event {
            ts: T0 + (next() % (hours as u64 * HOUR as u64)) as i64,
            host: format!("host_{}", next() % 5),
            core: (next() % 3) as i64,
            usage: (next() % 100) as f64,
            user: format!("u{}", next() % 17),
        })
        .collect()
}

pub fn spec(rollup: bool) -> Value {
    json!({
        "dataSource": "cpu",
        "timestampSpec": {"column": "ts", "format": "millis"},
        "dimensionsSpec": {"dimensions": ["host", {"type": "long", "name": "core"}]},
        "metricsSpec": [
            {"type": "count", "name": "count"},
            {"type": "doubleSum", "name": "usage", "fieldName": "usage"},
            {"type": "doubleMax", "name": "peak", "fieldName": "usage"},
            {"type": "longFirst", "name": "first_core", "fieldName": "core"},
            {"type": "HLLSketchBuild", "name": "users", "fieldName": "user"}
        ],
        "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "minute", "rollup": rollup}
    })
}

pub fn write_json(path: &Path, ev: &[Event]) {
    let mut out = Vec::new();
    for e in ev {
        writeln!(
            out,
            "{}",
            json!({"ts": e.ts, "host": e.host, "core": e.core, "usage": e.usage, "user": e.user})
        )
        .unwrap();
    }
    write_maybe_compressed(path, &out);
}

pub fn write_csv(path: &Path, ev: &[Event], delim: char) {
    let mut out = Vec::new();
    writeln!(out, "ts{delim}host{delim}core{delim}usage{delim}user").unwrap();
    for e in ev {
        writeln!(
            out,
            "{}{delim}{}{delim}{}{delim}{}{delim}{}",
            e.ts, e.host, e.core, e.usage, e.user
        )
        .unwrap();
    }
    write_maybe_compressed(path, &out);
}

fn write_maybe_compressed(path: &Path, bytes: &[u8]) {
    let name = path.to_str().unwrap();
    let data = if name.ends_with(".gz") {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    } else if name.ends_with(".zst") {
        zstd::encode_all(bytes, 1).unwrap()
    } else {
        bytes.to_vec()
    };
    std::fs::write(path, data).unwrap();
}

/// Parquet with a millisecond timestamp column and small row groups.
pub fn write_parquet(path: &Path, ev: &[Event]) {
    let batch = RecordBatch::try_from_iter([
        (
            "ts",
            Arc::new(TimestampMillisecondArray::from(
                ev.iter().map(|e| e.ts).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        (
            "host",
            Arc::new(StringArray::from(
                ev.iter().map(|e| e.host.clone()).collect::<Vec<_>>(),
            )),
        ),
        (
            "core",
            Arc::new(Int64Array::from(
                ev.iter().map(|e| e.core).collect::<Vec<_>>(),
            )),
        ),
        (
            "usage",
            Arc::new(Float64Array::from(
                ev.iter().map(|e| e.usage).collect::<Vec<_>>(),
            )),
        ),
        (
            "user",
            Arc::new(StringArray::from(
                ev.iter().map(|e| e.user.clone()).collect::<Vec<_>>(),
            )),
        ),
        ("extra", Arc::new(Int64Array::from(vec![7; ev.len()]))),
    ])
    .unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(700))
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// What one writer per hour, fed every event in order, stores: rows as strings, sorted.
pub fn reference_rows(spec: &Value, ev: &[Event]) -> Vec<String> {
    let schema = DataSchema::from_value(spec).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut hours: Vec<i64> = ev.iter().map(|e| e.ts - e.ts.rem_euclid(HOUR)).collect();
    hours.sort();
    hours.dedup();
    let mut rows = Vec::new();
    for (i, h) in hours.iter().enumerate() {
        let mut w = SegmentWriter::new(&schema, Interval::new(*h, h + HOUR).unwrap()).unwrap();
        for e in ev.iter().filter(|e| e.ts >= *h && e.ts < h + HOUR) {
            let row = json!({"ts": e.ts, "host": e.host, "core": e.core, "usage": e.usage, "user": e.user});
            w.push_json(row.as_object().unwrap()).unwrap();
        }
        let path = dir.path().join(format!("{i}.bseg"));
        w.finish(&path).unwrap();
        rows.extend(segment_rows(&path));
    }
    rows.sort();
    rows
}

/// Every row of a segment file, one string per row.
pub fn segment_rows(path: &Path) -> Vec<String> {
    let seg = Segment::open(path).unwrap();
    let mut out = Vec::new();
    for b in seg.to_record_batches().unwrap() {
        for i in 0..b.num_rows() {
            let cells: Vec<String> = b
                .columns()
                .iter()
                .zip(b.schema().fields())
                .map(|(c, f)| format!("{}={:?}", f.name(), c.slice(i, 1)).replace('\n', ""))
                .collect();
            out.push(cells.join("|"));
        }
    }
    out
}

/// Rows of the segments a datasource's timeline shows, sorted.
pub fn served_rows(data_dir: &Path, ds: &str) -> Vec<String> {
    let dir = DataDir::open(data_dir).unwrap();
    let mut rows = Vec::new();
    for v in dir.timeline().lookup(ds, Interval::ETERNITY) {
        rows.extend(segment_rows(&dir.segment_path(&v.record)));
    }
    rows.sort();
    rows
}

/// Run a load with test-sized settings.
pub fn load(
    data_dir: &Path,
    spec: &Value,
    inputs: &[PathBuf],
    tweak: impl FnOnce(&mut LoadConfig),
) -> basalt_engine::Result<LoadSummary> {
    let mut cfg = LoadConfig {
        inputs: inputs
            .iter()
            .map(|p| p.to_str().unwrap().to_string())
            .collect(),
        threads: 2,
        ..LoadConfig::default()
    };
    tweak(&mut cfg);
    let dir = DataDir::open_shared(data_dir).unwrap();
    basalt_engine::loader::load(&dir, spec, &cfg, &LoadProgress::default())
}
