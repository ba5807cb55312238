//! TopN over segments with more values than its per-segment cut (1 000): every segment's best
//! groups are chosen before they become keyed groups, and a segment sorted by the dimension is
//! folded run by run straight from its frames. The answers must equal the exact ones, worked
//! out here from the rows.

#![allow(clippy::unwrap_used)]

use basalt_engine::engine::Engine;
use basalt_engine::schema::DataSchema;
use basalt_engine::segment::format::{Codec, StreamRole};
use basalt_engine::segment::{Segment, SegmentId, SegmentWriter};
use basalt_engine::time::Interval;
use std::collections::BTreeMap;

use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_451_606_400_000; // 2016-01-01T00:00:00Z
const HOSTS: u64 = 1_500;
const ROWS_PER_HOST: u64 = 240;

/// One row per host every 15 s for an hour: a gauge per host, walking in small steps from a
/// level that has no order with the host (so the column is stored as frames, as TSBS's are).
fn rows(hour: i64) -> Vec<(String, i64, i64)> {
    let mut out = Vec::new();
    for h in 0..HOSTS {
        let mut v = ((h * 7_919 + hour as u64 * 104_729) % HOSTS) as i64 * 1_000;
        for i in 0..ROWS_PER_HOST {
            let x = (hour as u64 * HOSTS + h) * ROWS_PER_HOST + i;
            let x = (x ^ (x >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            v += ((x >> 40) % 11) as i64 - 5;
            out.push((
                format!("h{h:04}"),
                T0 + hour * HOUR + (i as i64) * 15_000,
                v,
            ));
        }
    }
    out
}

fn setup(hours: i64) -> (tempfile::TempDir, Engine, Vec<(String, i64, i64)>) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let schema = DataSchema::from_value(&json!({
        "dataSource": "cpu",
        "timestampSpec": {"column": "ts", "format": "millis"},
        "dimensionsSpec": {
            "dimensions": ["host", {"type": "long", "name": "__time"}, {"type": "long", "name": "v"}],
            "forceSegmentSortByTime": false
        },
        "metricsSpec": [],
        "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none", "rollup": false}
    }))
    .unwrap();
    engine
        .data_dir()
        .catalog()
        .create_datasource("cpu", &schema.to_json().to_string())
        .unwrap();
    let version = engine.data_dir().allocate_version("cpu").unwrap();
    let mut staged = Vec::new();
    let mut all = Vec::new();
    for h in 0..hours {
        let iv = Interval::new(T0 + h * HOUR, T0 + (h + 1) * HOUR).unwrap();
        let mut w = SegmentWriter::new(&schema, iv).unwrap();
        for (host, ts, v) in rows(h) {
            let row = json!({"ts": ts, "host": host, "v": v});
            w.push_json(row.as_object().unwrap()).unwrap();
            all.push((host, ts, v));
        }
        let path = engine.data_dir().staging_path().unwrap();
        let stats = w.finish(&path).unwrap();
        // The grouped ids and the values are frames blocks: the paths under test.
        let seg = Segment::open(&path).unwrap();
        for (col, role) in [("host", StreamRole::Ids), ("v", StreamRole::Long)] {
            let c = seg.column(col).unwrap();
            for b in &c.stream(role).unwrap().blocks {
                assert_eq!(b.codec, Codec::Frames, "{col}");
            }
        }
        let id = SegmentId {
            datasource: "cpu".into(),
            interval: iv,
            version,
            partition: 0,
        };
        staged.push((id, path, stats.rows_out));
    }
    engine.data_dir().publish(staged, None).unwrap();
    (dir, engine, all)
}

fn q(engine: &Engine, v: Value) -> Value {
    engine
        .query_json(&v.to_string())
        .unwrap_or_else(|e| panic!("{e}\nquery: {v}"))
}

/// Each host's `fold` of its values in `[from, to)`.
fn per_host(
    rows: &[(String, i64, i64)],
    (from, to): (i64, i64),
    fold: fn(i64, i64) -> i64,
) -> BTreeMap<String, i64> {
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    for (host, ts, v) in rows {
        if (from..to).contains(ts) {
            out.entry(host.clone())
                .and_modify(|acc| *acc = fold(*acc, *v))
                .or_insert(*v);
        }
    }
    out
}

/// Check a topN answer against the exact per-host values: the top `n` values in order (hosts
/// that tie may come in any order), each with a host that has that value.
fn check_top(
    got: &[(String, i64)],
    exact: &BTreeMap<String, i64>,
    smallest_first: bool,
    n: usize,
    what: &str,
) {
    let mut values: Vec<i64> = exact.values().copied().collect();
    values.sort_by_key(|&v| if smallest_first { v } else { -v });
    values.truncate(n);
    let got_values: Vec<i64> = got.iter().map(|(_, v)| *v).collect();
    assert_eq!(got_values, values, "{what}");
    for (host, v) in got {
        assert_eq!(exact.get(host), Some(v), "{what}: {host}");
    }
}

fn actual(result: &Value, metric: &str) -> Vec<(String, i64)> {
    result[0]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let v = &r[metric];
            let v = v.as_i64().unwrap_or_else(|| v.as_f64().unwrap() as i64);
            (r["host"].as_str().unwrap().to_owned(), v)
        })
        .collect()
}

fn iso(t: i64) -> String {
    let s = (t - T0) / 1000;
    format!(
        "2016-01-01T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

#[test]
fn topn_cut_before_keys_matches_the_exact_top() {
    let (_dir, engine, rows) = setup(3);
    // Whole segments, and a window that cuts the first and last hour (rows checked by time).
    for (from, to) in [
        (T0, T0 + 3 * HOUR),
        (T0 + 20 * 60_000, T0 + 2 * HOUR + 1_000_000),
    ] {
        let interval = format!("{}/{}", iso(from), iso(to));
        for (agg, fold, inverted) in [
            ("longMax", i64::max as fn(i64, i64) -> i64, false),
            ("longMin", i64::min as fn(i64, i64) -> i64, true),
        ] {
            let res = q(
                &engine,
                json!({
                    "queryType": "topN", "dataSource": "cpu", "granularity": "all",
                    "intervals": [interval], "dimension": "host", "threshold": 7,
                    "metric": if inverted { json!({"type": "inverted", "metric": "m"}) } else { json!("m") },
                    "aggregations": [{"type": agg, "name": "m", "fieldName": "v"}]
                }),
            );
            check_top(
                &actual(&res, "m"),
                &per_host(&rows, (from, to), fold),
                inverted,
                7,
                &format!("{agg} over {interval}"),
            );
        }
    }
}

#[test]
fn topn_sums_in_one_segment_are_exact() {
    let (_dir, engine, rows) = setup(1);
    let interval = format!("{}/{}", iso(T0), iso(T0 + HOUR));
    for agg in ["longSum", "doubleSum"] {
        let res = q(
            &engine,
            json!({
                "queryType": "topN", "dataSource": "cpu", "granularity": "all",
                "intervals": [interval], "dimension": "host", "threshold": 5,
                "metric": "s",
                "aggregations": [
                    {"type": agg, "name": "s", "fieldName": "v"},
                    {"type": "count", "name": "n"}
                ]
            }),
        );
        check_top(
            &actual(&res, "s"),
            &per_host(&rows, (T0, T0 + HOUR), i64::wrapping_add),
            false,
            5,
            agg,
        );
        for r in res[0]["result"].as_array().unwrap() {
            assert_eq!(r["n"], json!(ROWS_PER_HOST), "{r}");
        }
    }
    // Per 10-minute bucket: each bucket's own top 3 (rows of one host spread over buckets).
    let res = q(
        &engine,
        json!({
            "queryType": "topN", "dataSource": "cpu", "granularity": "ten_minute",
            "intervals": [interval], "dimension": "host", "threshold": 3,
            "metric": "m",
            "aggregations": [{"type": "longMax", "name": "m", "fieldName": "v"}]
        }),
    );
    let buckets = res.as_array().unwrap();
    assert_eq!(buckets.len(), 6);
    for (b, bucket) in buckets.iter().enumerate() {
        let from = T0 + b as i64 * 600_000;
        let got = actual(&Value::Array(vec![bucket.clone()]), "m");
        check_top(
            &got,
            &per_host(&rows, (from, from + 600_000), i64::max),
            false,
            3,
            &format!("bucket {b}"),
        );
    }
}
