//! Backward compatibility, shared by the `golden_vN` tests: the committed segment of format
//! version N in `testdata/golden_vN/` opens, verifies and reads back exactly the rows in
//! `expected.json`, with every build from now on.
//!
//! A version's files are written once, while it is the newest and unreleased, by its ignored
//! `regenerate` test:
//!
//! ```text
//! cargo test -p basalt-engine --test golden_v2 -- --ignored regenerate
//! ```
//!
//! Never regenerate them once the version is released: the point is that today's reader opens
//! yesterday's bytes. A new format version gets a new `golden_vN` directory and test.

#![allow(clippy::unwrap_used, dead_code)]

use std::path::PathBuf;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use basalt_engine::aggregate::deserialize_hll;
use basalt_engine::schema::DataSchema;
use basalt_engine::segment::format::{
    DIRECTORY_VERSION, FOOTER_MAGIC_OFFSET, FOOTER_SIZE, FOOTER_VERSION_OFFSET, FORMAT_VERSION,
    HEADER_SIZE, HEADER_VERSION_OFFSET, OLDEST_SUPPORTED_FORMAT_VERSION, SEGMENT_MAGIC,
};
use basalt_engine::segment::{Segment, SegmentWriter, verify_file, verify_segment};
use basalt_engine::time::Interval;
use serde_json::{Map, Value, json};

/// The directory version the golden files were written with (1 for every format version so far).
const GOLDEN_DIRECTORY_VERSION: u32 = 1;

/// 2024-01-01T00:00:00Z.
const T0: i64 = 1_704_067_200_000;
const MINUTE: i64 = 60_000;
const DAY: i64 = 86_400_000;

fn golden_dir(version: u32) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("testdata/golden_v{version}"))
}

pub fn segment_path(version: u32) -> PathBuf {
    golden_dir(version).join("segment.bseg")
}

fn expected_path(version: u32) -> PathBuf {
    golden_dir(version).join("expected.json")
}

/// Every column type, rollup on, queryGranularity minute.
fn schema_json() -> Value {
    json!({
        "dataSource": "golden",
        "timestampSpec": {"column": "ts", "format": "millis"},
        "dimensionsSpec": {"dimensions": [
            {"type": "string", "name": "country"},
            {"type": "string", "name": "tags", "multiValueHandling": "SORTED_ARRAY"},
            {"type": "long", "name": "port"},
            {"type": "double", "name": "ratio"}
        ]},
        "metricsSpec": [
            {"type": "count", "name": "count"},
            {"type": "longSum", "name": "bytes_sum", "fieldName": "bytes"},
            {"type": "doubleSum", "name": "latency_sum", "fieldName": "latency"},
            {"type": "longMin", "name": "bytes_min", "fieldName": "bytes"},
            {"type": "doubleMax", "name": "latency_max", "fieldName": "latency"},
            {"type": "longFirst", "name": "bytes_first", "fieldName": "bytes"},
            {"type": "longLast", "name": "bytes_last", "fieldName": "bytes"},
            {"type": "doubleFirst", "name": "latency_first", "fieldName": "latency"},
            {"type": "doubleLast", "name": "latency_last", "fieldName": "latency"},
            {"type": "HLLSketchBuild", "name": "users", "fieldName": "user"}
        ],
        "granularitySpec": {"segmentGranularity": "day", "queryGranularity": "minute", "rollup": true}
    })
}

/// Fixed input rows: nulls in every column (missing fields, empty lists), multi-value rows with
/// duplicates and unsorted values, non-ASCII strings, negative numbers, and rows that roll up
/// into one (same minute, same dimensions) with first/last decided by time, not input order.
/// Doubles are binary fractions so their JSON text is exact.
fn input_rows() -> Vec<Map<String, Value>> {
    let rows = vec![
        json!({"ts": T0 + 5_000, "country": "DE", "tags": ["b", "a"], "port": 80, "ratio": 0.5,
               "bytes": 100, "latency": 1.25, "user": "alice"}),
        // Same minute and dimensions as the first row (tags sort to the same list): rolls up.
        // Earlier timestamp, so it is `first`.
        json!({"ts": T0 + 1_000, "country": "DE", "tags": ["a", "b"], "port": 80, "ratio": 0.5,
               "bytes": 40, "latency": 3.5, "user": "bob"}),
        json!({"ts": T0 + 59_999, "country": "DE", "tags": ["a", "b"], "port": 80, "ratio": 0.5,
               "bytes": -7, "latency": 0.125, "user": "alice"}),
        json!({"ts": T0 + 2 * MINUTE + 30_000, "country": "FR", "tags": "solo", "port": 443,
               "ratio": -2.75, "bytes": 9_000_000_000_i64, "latency": 10.0, "user": "carol"}),
        json!({"ts": T0 + 2 * MINUTE + 31_000, "tags": ["x", "x", "y"], "port": 443,
               "bytes": 1, "latency": 2.0, "user": "dave"}),
        json!({"ts": T0 + 3 * MINUTE, "country": "Ünïcødé", "tags": [], "ratio": 0.0009765625,
               "bytes": 0, "user": "erin"}),
        json!({"ts": T0 + 3 * MINUTE + 1, "country": "JP", "port": 8080, "ratio": 0.0,
               "latency": 7.75}),
        // All dimensions null; metrics with missing inputs.
        json!({"ts": T0 + 3 * MINUTE + 2}),
        json!({"ts": T0 + 3 * MINUTE + 3}),
        json!({"ts": T0 + 60 * MINUTE, "country": "US", "tags": ["z", "y", "x"], "port": -1,
               "ratio": 1024.0, "bytes": i64::MIN / 4, "latency": -0.5, "user": "frank"}),
        json!({"ts": T0 + 60 * MINUTE + 59_000, "country": "US", "tags": ["x", "y", "z"],
               "port": -1, "ratio": 1024.0, "bytes": 5, "latency": 64.0, "user": "grace"}),
        json!({"ts": T0 + 60 * MINUTE + 10_000, "country": "US", "tags": ["y", "z", "x"],
               "port": -1, "ratio": 1024.0, "latency": 8.0, "user": "frank"}),
        json!({"ts": T0 + DAY - 1, "country": "BR", "tags": ["a"], "port": 22, "ratio": 3.0,
               "bytes": 12, "latency": 0.25, "user": "heidi"}),
    ];
    rows.into_iter()
        .map(|r| match r {
            Value::Object(m) => m,
            _ => unreachable!(),
        })
        .collect()
}

fn write_segment(path: &std::path::Path) {
    let schema = DataSchema::from_value(&schema_json()).unwrap();
    let mut w = SegmentWriter::new(&schema, Interval::new(T0, T0 + DAY).unwrap()).unwrap();
    for row in input_rows() {
        w.push_json(&row).unwrap();
    }
    w.finish(path).unwrap();
}

/// One cell as JSON: timestamps and longs as integers, doubles as numbers, strings, multi-value
/// strings as arrays, HLL sketches as their estimate rounded, first/last pairs as
/// `[time, value]`, null as null.
fn cell(c: &ArrayRef, r: usize) -> Value {
    if c.is_null(r) {
        return Value::Null;
    }
    match c.data_type() {
        DataType::Timestamp(..) => json!(c.as_primitive::<TimestampMillisecondType>().value(r)),
        DataType::Int64 => json!(c.as_primitive::<Int64Type>().value(r)),
        DataType::Float64 => json!(c.as_primitive::<Float64Type>().value(r)),
        DataType::Utf8 => json!(c.as_string::<i32>().value(r)),
        DataType::List(_) => {
            let l = c.as_list::<i32>().value(r);
            let s = l.as_string::<i32>();
            Value::Array((0..s.len()).map(|i| json!(s.value(i))).collect())
        }
        DataType::Binary => {
            let sketch = deserialize_hll(c.as_binary::<i32>().value(r)).unwrap();
            json!(sketch.estimate().round() as i64)
        }
        DataType::Struct(_) => {
            let s = c.as_struct();
            let pair: [ArrayRef; 2] = [s.column(0).clone(), s.column(1).clone()];
            Value::Array(pair.iter().map(|a| cell(a, r)).collect())
        }
        other => panic!("unexpected column type {other}"),
    }
}

/// A stable name for an exported Arrow type (Arrow's own `Display` may change between releases).
fn type_name(t: &DataType) -> &'static str {
    match t {
        DataType::Timestamp(arrow_schema::TimeUnit::Millisecond, Some(tz)) if &**tz == "UTC" => {
            "timestamp_ms_utc"
        }
        DataType::Int64 => "long",
        DataType::Float64 => "double",
        DataType::Utf8 => "string",
        DataType::List(f) if f.data_type() == &DataType::Utf8 => "string_list",
        DataType::Binary => "hll_sketch",
        DataType::Struct(f) if f.len() == 2 && f[1].data_type() == &DataType::Int64 => "long_pair",
        DataType::Struct(f) if f.len() == 2 && f[1].data_type() == &DataType::Float64 => {
            "double_pair"
        }
        other => panic!("unexpected column type {other}"),
    }
}

/// The segment's rows as the `expected.json` document.
fn to_json(seg: &Segment, batches: &[RecordBatch], version: u32) -> Value {
    let schema = seg.arrow_schema();
    let columns: Vec<Value> = schema
        .fields()
        .iter()
        .map(|f| json!({"name": f.name(), "type": type_name(f.data_type())}))
        .collect();
    let mut rows = Vec::new();
    for b in batches {
        assert_eq!(b.schema(), schema);
        for r in 0..b.num_rows() {
            rows.push(Value::Array(
                b.columns().iter().map(|c| cell(c, r)).collect(),
            ));
        }
    }
    json!({
        "format_version": version,
        "datasource": seg.directory().datasource,
        "interval": [seg.interval().start, seg.interval().end],
        "num_rows": seg.num_rows(),
        "columns": columns,
        "rows": rows,
    })
}

fn expected(version: u32) -> Value {
    let text = std::fs::read_to_string(expected_path(version)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Compare row by row so a failure names the row and column.
fn assert_same(got: &Value, want: &Value) {
    for key in [
        "format_version",
        "datasource",
        "interval",
        "num_rows",
        "columns",
    ] {
        assert_eq!(got[key], want[key], "`{key}` differs from expected.json");
    }
    let names: Vec<&Value> = want["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["name"])
        .collect();
    let (g, w) = (
        got["rows"].as_array().unwrap(),
        want["rows"].as_array().unwrap(),
    );
    assert_eq!(g.len(), w.len(), "row count");
    for (i, (gr, wr)) in g.iter().zip(w).enumerate() {
        for (c, name) in names.iter().enumerate() {
            assert_eq!(gr[c], wr[c], "row {i} column {name}");
        }
    }
    assert_eq!(got, want);
}

/// The committed golden segment opens (memory-mapped), passes full verification and reads back
/// exactly the expected rows.
pub fn segment_reads_back_expected_rows(version: u32) {
    let path = segment_path(version);
    let seg = Segment::open(&path).unwrap();
    let report = verify_segment(&seg).unwrap();
    let want = expected(version);
    assert_eq!(report.rows, want["num_rows"].as_u64().unwrap());
    assert_eq!(verify_file(&path).unwrap(), report);
    let batches = seg.to_record_batches().unwrap();
    assert_same(&to_json(&seg, &batches, version), &want);

    // The same bytes through the in-memory path.
    let mem = Segment::from_bytes(std::fs::read(&path).unwrap(), "golden").unwrap();
    verify_segment(&mem).unwrap();
    assert_eq!(mem.to_record_batches().unwrap(), batches);

    // It still is the rich file it was meant to be.
    let d = seg.directory();
    assert!(d.rollup);
    assert_eq!(d.datasource, "golden");
    assert!(seg.num_rows() >= 8 && seg.num_rows() < input_rows().len() as u64);
    for c in seg.columns().iter().skip(1).filter(|c| c.name != "count") {
        assert!(c.null_count > 0, "column `{}` should hold a null", c.name);
    }
}

/// The header and footer say the golden file's format version, and this build still reads it.
pub fn header_and_footer(version: u32) {
    assert!(
        (OLDEST_SUPPORTED_FORMAT_VERSION..=FORMAT_VERSION).contains(&version),
        "this build reads format versions {OLDEST_SUPPORTED_FORMAT_VERSION}..={FORMAT_VERSION}, \
         which drops version {version}: released segments would become unreadable"
    );
    let bytes = std::fs::read(segment_path(version)).unwrap();
    let len = bytes.len();
    assert!(len > HEADER_SIZE + FOOTER_SIZE);
    assert!(
        len < 64 << 10,
        "the golden file should stay small ({len} bytes)"
    );
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());

    // Header: magic, format version, flags (zero).
    assert_eq!(&bytes[..SEGMENT_MAGIC.len()], b"BSLTSEG\x01");
    assert_eq!(&bytes[..SEGMENT_MAGIC.len()], &SEGMENT_MAGIC);
    assert_eq!(HEADER_VERSION_OFFSET, 8);
    assert_eq!(u32_at(HEADER_VERSION_OFFSET), version);
    assert_eq!(u32_at(HEADER_VERSION_OFFSET + 4), 0, "header flags");

    // Footer: directory offset, length, CRC-32C, format version, magic.
    assert_eq!(FOOTER_SIZE, 32);
    let footer = len - FOOTER_SIZE;
    assert_eq!(&bytes[footer + FOOTER_MAGIC_OFFSET..], &SEGMENT_MAGIC);
    assert_eq!(u32_at(footer + FOOTER_VERSION_OFFSET), version);
    let (dir_off, dir_len) = (u64_at(footer) as usize, u64_at(footer + 8) as usize);
    assert_eq!(
        dir_off + dir_len,
        footer,
        "the directory ends where the footer starts"
    );
    let dir = &bytes[dir_off..footer];
    assert_eq!(
        crc32c::crc32c(dir),
        u32_at(footer + 16),
        "directory CRC-32C"
    );

    // Directory: its own version first.
    assert_eq!(
        u32::from_le_bytes(dir[..4].try_into().unwrap()),
        GOLDEN_DIRECTORY_VERSION
    );
    const { assert!(GOLDEN_DIRECTORY_VERSION <= DIRECTORY_VERSION) };
}

/// Today's writer, given the same input rows, still produces the rows of `expected.json`
/// (the bytes may differ: encoders evolve; the rows must not).
pub fn current_writer_reproduces_golden_rows(version: u32) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("now.bseg");
    write_segment(&path);
    let seg = Segment::open(&path).unwrap();
    verify_segment(&seg).unwrap();
    let mut got = to_json(&seg, &seg.to_record_batches().unwrap(), FORMAT_VERSION);
    // An older golden file says its version; a newer writer writes a newer version.
    got["format_version"] = json!(version);
    assert_same(&got, &expected(version));
}

/// Writes `testdata/golden_v{version}/{segment.bseg,expected.json}`. Run only to create the
/// golden files of a new, unreleased format version (see the module docs); never for a released
/// one.
pub fn regenerate(version: u32) {
    assert_eq!(
        FORMAT_VERSION, version,
        "this build writes format version {FORMAT_VERSION}; golden_v{version} must hold version \
         {version} bytes. Add a golden_v{FORMAT_VERSION} directory and test instead."
    );
    std::fs::create_dir_all(golden_dir(version)).unwrap();
    write_segment(&segment_path(version));
    let seg = Segment::open(&segment_path(version)).unwrap();
    verify_segment(&seg).unwrap();
    let doc = to_json(&seg, &seg.to_record_batches().unwrap(), version);
    let mut text = serde_json::to_string_pretty(&doc).unwrap();
    text.push('\n');
    std::fs::write(expected_path(version), text).unwrap();
}
