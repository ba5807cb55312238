//! Arrow pushes column-wise against the row path.
//!
//! A batch whose columns all have their fields' types goes column-wise (WAL record and sink
//! appends straight from the columns); the same batch with one column of a type that needs a
//! conversion (`UInt64` for a long dimension, read as the same longs) goes row by row. Both
//! must give the same push reports (rejects by reason and row included), the same query
//! answers, the same WAL record bytes, and the same rows after the WAL is replayed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod realtime_common;

use std::sync::Arc;
use std::time::Duration;

use arrow_array::types::Int16Type;
use arrow_array::{
    ArrayRef, DictionaryArray, Float64Array, Int64Array, LargeStringArray, RecordBatch,
    StringArray, StringViewArray, UInt64Array,
};
use arrow_schema::{Field, Schema};
use basalt_engine::engine::Engine;
use basalt_engine::realtime::wal::Wal;
use basalt_engine::realtime::{Clock, PushReport, RealtimeConfig};
use rand::Rng;
use realtime_common::{HOUR, T0, open, rng};
use serde_json::{Value, json};

fn spec(name: &str, rollup: bool) -> String {
    json!({
        "dataSource": name,
        "timestampSpec": {"column": "ts", "format": "millis"},
        "dimensionsSpec": {"dimensions": [
            "host", "region", "city", "tag",
            {"type": "long", "name": "core"},
            {"type": "double", "name": "load"}
        ]},
        "metricsSpec": [
            {"type": "count", "name": "count"},
            {"type": "longSum", "name": "n", "fieldName": "n"},
            {"type": "doubleSum", "name": "x", "fieldName": "x"},
            {"type": "doubleMax", "name": "xmax", "fieldName": "x"},
            {"type": "longMin", "name": "nmin", "fieldName": "n"}
        ],
        "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "minute",
                            "rollup": rollup}
    })
    .to_string()
}

/// Clock three hours after [`T0`]; rows of hour 0 are too late; no handoff during a test.
fn config(clock: &Clock) -> RealtimeConfig {
    RealtimeConfig {
        clock: clock.clone(),
        window_period: Duration::from_secs(86_400),
        late_data_max_lateness: Some(Duration::from_secs(90 * 60)),
        tick: Duration::from_millis(20),
        ..RealtimeConfig::default()
    }
}

/// `n` rows over hours 0..4 from [`T0`], with null (unreadable) times, nulls in every other
/// column, unicode and long strings, plain, large, view and dictionary-encoded strings, -0.0;
/// with `core` as Int64 (column-wise) or UInt64 (row by row), and `nan_at` a NaN in `x`.
fn batch(seed: u64, n: usize, core_unsigned: bool, nan_at: Option<usize>) -> RecordBatch {
    let mut r = rng(seed);
    let long_text = "é".repeat(100);
    let cities = [
        "Zürich",
        "東京",
        "São Paulo",
        "",
        long_text.as_str(),
        "Łódź 🚀",
    ];
    let mut ts = Vec::new();
    let (mut host, mut region, mut city, mut tag) = (vec![], vec![], vec![], vec![]);
    let (mut core, mut load, mut nn, mut x) = (vec![], vec![], vec![], vec![]);
    for i in 0..n {
        ts.push((r.random_range(0..40) != 0).then(|| T0 + r.random_range(0..4 * HOUR)));
        host.push((r.random_range(0..8) != 0).then(|| format!("host-{}", r.random_range(0..30))));
        region.push(match r.random_range(0..5) {
            0 => None,
            k => Some(k as i16 - 1),
        });
        city.push((r.random_range(0..6) != 0).then(|| cities[r.random_range(0..cities.len())]));
        tag.push((r.random_range(0..3) != 0).then(|| format!("t{}", r.random_range(0..4))));
        core.push((r.random_range(0..7) != 0).then(|| r.random_range(0..16u64)));
        load.push(match r.random_range(0..9) {
            0 => None,
            1 => Some(-0.0),
            k => Some(k as f64 * 0.25 - 1.0),
        });
        nn.push((r.random_range(0..6) != 0).then(|| r.random_range(-100..1000i64)));
        x.push(match nan_at {
            Some(at) if at == i => Some(f64::NAN),
            _ => (r.random_range(0..6) != 0).then(|| r.random_range(-50..500) as f64),
        });
    }
    let regions = StringArray::from(vec!["eu-west", "us-east", "ap-south", "ünï"]);
    let region = DictionaryArray::<Int16Type>::try_new(region.into(), Arc::new(regions)).unwrap();
    let core: ArrayRef = if core_unsigned {
        Arc::new(UInt64Array::from(core))
    } else {
        Arc::new(Int64Array::from(
            core.iter().map(|v| v.map(|v| v as i64)).collect::<Vec<_>>(),
        ))
    };
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("ts", Arc::new(Int64Array::from(ts))),
        ("host", Arc::new(StringArray::from(host))),
        ("region", Arc::new(region)),
        ("city", Arc::new(LargeStringArray::from(city))),
        ("tag", Arc::new(StringViewArray::from(tag))),
        ("core", core),
        ("load", Arc::new(Float64Array::from(load))),
        ("n", Arc::new(Int64Array::from(nn))),
        ("x", Arc::new(Float64Array::from(x))),
        ("unused", Arc::new(StringArray::from(vec!["z"; n]))),
    ];
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap()
}

/// Every stored row, grouped by all dimensions and minute.
fn answer(engine: &Engine, ds: &str) -> Value {
    let q = json!({
        "queryType": "groupBy", "dataSource": ds, "granularity": "minute",
        "intervals": ["2000-01-01/2100-01-01"],
        "dimensions": ["host", "region", "city", "tag", "core", "load"],
        "aggregations": [
            {"type": "longSum", "name": "rows", "fieldName": "count"},
            {"type": "longSum", "name": "n", "fieldName": "n"},
            {"type": "doubleSum", "name": "x", "fieldName": "x"},
            {"type": "doubleMax", "name": "xmax", "fieldName": "xmax"},
            {"type": "longMin", "name": "nmin", "fieldName": "nmin"}
        ]
    });
    engine.query_json(&q.to_string()).unwrap()
}

fn rows_in(answer: &Value) -> i64 {
    answer
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event"]["rows"].as_i64().unwrap())
        .sum()
}

fn create(engine: &Engine, name: &str, rollup: bool) {
    engine
        .data_dir()
        .catalog()
        .create_datasource(name, &spec(name, rollup))
        .unwrap();
}

#[test]
fn columnar_push_answers_like_row_push_before_and_after_replay() {
    for rollup in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::manual(T0 + 3 * HOUR);
        let engine = open(dir.path(), config(&clock));
        create(&engine, "f", rollup);
        create(&engine, "r", rollup);
        let mut reports: Vec<(PushReport, PushReport)> = Vec::new();
        for (k, nan_at) in [None, None, Some(17)].into_iter().enumerate() {
            let seed = 40 + k as u64 + 10 * u64::from(rollup);
            let fast = engine
                .push_arrow("f", &batch(seed, 3000, false, nan_at))
                .unwrap();
            let slow = engine
                .push_arrow("r", &batch(seed, 3000, true, nan_at))
                .unwrap();
            reports.push((fast, slow));
        }
        let mut accepted = 0;
        for (fast, slow) in &reports {
            assert_eq!(fast, slow);
            assert!(fast.rejected_by_reason["unparseable timestamp"] > 0);
            assert!(fast.rejected_by_reason["too late"] > 0);
            accepted += fast.accepted;
        }
        assert!(reports[2].0.rejected_by_reason["wrong type"] == 1);
        let before = answer(&engine, "f");
        assert_eq!(rows_in(&before), accepted as i64);
        assert_eq!(before, answer(&engine, "r"));
        drop(engine);

        // Replay: both datasources read back the same rows.
        let engine = open(dir.path(), config(&clock));
        assert_eq!(answer(&engine, "f"), before);
        assert_eq!(answer(&engine, "r"), before);
    }
}

#[test]
fn columnar_push_writes_the_row_paths_wal_record() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0 + 3 * HOUR);
    let engine = open(dir.path(), config(&clock));
    create(&engine, "d", false);
    // The same rows twice into the same sinks: column-wise, then row by row.
    let fast = engine
        .push_arrow("d", &batch(7, 2000, false, None))
        .unwrap();
    let slow = engine.push_arrow("d", &batch(7, 2000, true, None)).unwrap();
    assert_eq!(fast, slow);
    assert!(fast.accepted > 1000);
    drop(engine);
    let (_wal, recovery) = Wal::open(&dir.path().join("wal"), 64 << 20).unwrap();
    let records = recovery.records().unwrap();
    assert_eq!(records.len(), 2);
    assert!(records[0].1.len() > 2000 * 20);
    assert!(records[0].1 == records[1].1, "the WAL records differ");
}

#[test]
fn too_many_parse_errors_reject_a_columnar_push_like_a_row_push() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0 + 3 * HOUR);
    let rt = RealtimeConfig {
        max_parse_exceptions: 3,
        ..config(&clock)
    };
    let engine = open(dir.path(), rt);
    create(&engine, "d", false);
    let fast = engine
        .push_arrow("d", &batch(9, 500, false, None))
        .unwrap_err()
        .to_string();
    let slow = engine
        .push_arrow("d", &batch(9, 500, true, None))
        .unwrap_err()
        .to_string();
    assert_eq!(fast, slow);
    assert!(fast.contains("maxParseExceptions"), "{fast}");
    assert_eq!(rows_in(&answer(&engine, "d")), 0);
}
