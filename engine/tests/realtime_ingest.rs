//! Realtime push: visibility, parse errors, maxParseExceptions, back-pressure, formats.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod realtime_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use basalt_engine::Error;
use basalt_engine::realtime::{Clock, FsyncPolicy, RealtimeConfig};
use realtime_common::*;
use serde_json::json;

#[test]
fn acknowledged_rows_are_visible_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0 + 10 * 60_000);
    let engine = open(dir.path(), config(&clock));
    create(&engine, "m", true);
    let mut rng = rng(1);
    let mut all = Vec::new();
    for round in 0..10 {
        let batch = rows(&mut rng, 500, T0, 10 * 60_000);
        let report = engine.push_json_rows("m", &batch).unwrap();
        assert_eq!(report.accepted, 500, "round {round}: {report:?}");
        let acked = Instant::now();
        all.extend(batch);
        // Poll as a dashboard would; the rows must show up within 1 s of the acknowledgement.
        loop {
            if query(&engine, "m") == reference(&all) {
                break;
            }
            assert!(
                acked.elapsed() < Duration::from_secs(1),
                "round {round}: not visible after 1 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let stats = engine.realtime_stats();
    assert_eq!(stats.rows_accepted, 5000);
    assert!(stats.wal_records >= 10);
}

#[test]
fn visible_without_a_query_forcing_it() {
    // The background thread freezes pending rows within intermediate_persist_period, so a
    // query that only reads pieces (not freezing) would see them too: check the stats.
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0 + 10 * 60_000);
    let cfg = RealtimeConfig {
        intermediate_persist_period: Duration::from_millis(200),
        ..config(&clock)
    };
    let engine = open(dir.path(), cfg);
    create(&engine, "m", true);
    let batch = rows(&mut rng(2), 1000, T0, 60_000);
    engine.push_json_rows("m", &batch).unwrap();
    let t = Instant::now();
    while engine.realtime_stats().rows_in_memory > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "not frozen within 1 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(engine.realtime_stats().persists >= 1);
    assert_eq!(query(&engine, "m"), reference(&batch));
}

#[test]
fn parse_errors_are_counted_by_reason_and_the_rest_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0 + 10 * 60_000);
    let engine = open(dir.path(), config(&clock));
    create(&engine, "m", false);
    let good = rows(&mut rng(3), 3, T0, 60_000);
    let batch = vec![
        good[0].clone(),
        json!({"ts": "yesterday", "host": "a", "n": 1, "x": 1.0}),
        json!({"host": "a", "n": 1}),
        good[1].clone(),
        json!({"ts": T0, "host": "a", "n": "many", "x": 1.0}),
        json!({"ts": T0, "host": "a", "core": {"a": 1}}),
        json!([1, 2, 3]),
        good[2].clone(),
    ];
    let report = engine.push_json_rows("m", &batch).unwrap();
    assert_eq!(report.accepted, 3);
    assert_eq!(report.rejected, 5);
    let by = &report.rejected_by_reason;
    assert_eq!(by.get("unparseable timestamp"), Some(&1), "{by:?}");
    assert_eq!(by.get("missing timestamp"), Some(&1), "{by:?}");
    assert_eq!(by.get("wrong type"), Some(&2), "{by:?}");
    assert_eq!(by.get("not a JSON object"), Some(&1), "{by:?}");
    let rows_with_errors: Vec<u64> = report.errors.iter().map(|e| e.row).collect();
    assert_eq!(rows_with_errors, vec![1, 2, 4, 5, 6]);
    assert!(
        report.errors[2].reason.contains("`n`"),
        "{:?}",
        report.errors[2]
    );
    assert_eq!(query(&engine, "m"), reference(&good));

    // NDJSON: a bad line rejects that line only; row = line number.
    let mut body = Vec::new();
    let more = rows(&mut rng(4), 2, T0, 60_000);
    body.extend_from_slice(more[0].to_string().as_bytes());
    body.extend_from_slice(b"\n{\"ts\": 1, broken\n\n");
    body.extend_from_slice(more[1].to_string().as_bytes());
    body.push(b'\n');
    let report = engine.push_ndjson("m", &body).unwrap();
    assert_eq!((report.accepted, report.rejected), (2, 1));
    assert_eq!(report.errors[0].row, 1);
    assert_eq!(report.rejected_by_reason.get("invalid JSON"), Some(&1));
    let all: Vec<_> = good.iter().chain(&more).collect();
    assert_eq!(query(&engine, "m"), reference(all));
    let stats = engine.realtime_stats();
    assert_eq!(stats.rows_rejected, 6);
    assert_eq!(stats.rejected_by_reason.get("wrong type"), Some(&2));
}

#[test]
fn too_many_parse_errors_reject_the_whole_push() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0 + 10 * 60_000);
    let cfg = RealtimeConfig {
        max_parse_exceptions: 2,
        ..config(&clock)
    };
    let engine = open(dir.path(), cfg);
    create(&engine, "m", false);
    let mut batch = rows(&mut rng(5), 10, T0, 60_000);
    batch[3] = json!({"ts": "bad"});
    batch[5] = json!({"ts": "bad"});
    // Two errors: allowed.
    assert_eq!(engine.push_json_rows("m", &batch).unwrap().accepted, 8);
    batch[7] = json!({"ts": "bad"});
    let err = engine.push_json_rows("m", &batch).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert!(
        err.to_string().contains("unparseable timestamp: 3"),
        "{err}"
    );
    assert_eq!(
        total(&engine, "m"),
        8,
        "nothing of the rejected push is stored"
    );
    assert_eq!(engine.realtime_stats().pushes_rejected, 1);
}

#[test]
fn unknown_datasource_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), RealtimeConfig::default());
    let err = engine
        .push_json_rows("nope", &[json!({"ts": 1})])
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    let err = engine.push_ndjson("nope", b"{}").unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
}

#[test]
fn a_dropped_datasource_is_not_pushed_to_from_a_cached_schema() {
    // Pushes cache the datasource's schema; dropping the datasource must still be noticed.
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0 + 10 * 60_000);
    let engine = open(dir.path(), config(&clock));
    create(&engine, "d", false);
    let row = json!({"ts": T0, "host": "h", "region": "eu", "core": 1, "n": 1, "x": 1.0});
    assert_eq!(
        engine
            .push_json_rows("d", std::slice::from_ref(&row))
            .unwrap()
            .accepted,
        1
    );
    engine.drop_datasource("d").unwrap();
    let err = engine.push_json_rows("d", &[row]).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
}

#[test]
fn arrow_push_matches_json_push() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0 + 10 * 60_000);
    let engine = open(dir.path(), config(&clock));
    create(&engine, "a", true);
    create(&engine, "j", true);
    let batch = rows(&mut rng(6), 300, T0, 60_000);
    let col = |k: &str| batch.iter().map(|r| r[k].clone()).collect::<Vec<_>>();
    let schema = Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Int64, false),
        Field::new("host", DataType::Utf8, true),
        Field::new("region", DataType::Utf8, true),
        Field::new("core", DataType::Int64, true),
        Field::new("n", DataType::Int64, true),
        Field::new("x", DataType::Float64, true),
        Field::new("user", DataType::Utf8, true),
    ]));
    let ints = |k: &str| {
        Arc::new(Int64Array::from(
            col(k)
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect::<Vec<_>>(),
        ))
    };
    let strs = |k: &str| {
        Arc::new(StringArray::from(
            col(k)
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect::<Vec<_>>(),
        ))
    };
    let rb = RecordBatch::try_new(
        schema,
        vec![
            ints("ts"),
            strs("host"),
            strs("region"),
            ints("core"),
            ints("n"),
            Arc::new(Float64Array::from(
                col("x")
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect::<Vec<_>>(),
            )),
            strs("user"),
        ],
    )
    .unwrap();
    assert_eq!(engine.push_arrow("a", &rb).unwrap().accepted, 300);
    assert_eq!(engine.push_json_rows("j", &batch).unwrap().accepted, 300);
    assert_eq!(query(&engine, "a"), reference(&batch));
    assert_eq!(query(&engine, "a"), query(&engine, "j"));
}

#[test]
fn memory_budget_gives_back_pressure_not_growth() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0 + 10 * 60_000);
    let budget = 2 << 20;
    let cfg = RealtimeConfig {
        memory_budget_bytes: budget,
        max_bytes_in_memory: budget / 2,
        max_rows_in_memory: u64::MAX,
        intermediate_persist_period: Duration::from_secs(3600),
        fsync: FsyncPolicy::Interval(Duration::from_millis(50)),
        // Freezes come from the memory limits (a throttled push wakes the thread), not a timer.
        tick: Duration::from_secs(5),
        ..config(&clock)
    };
    let engine = open(dir.path(), cfg);
    create(&engine, "m", false);
    let mut rng = rng(7);
    let mut accepted = Vec::new();
    let mut throttled = 0;
    let mut pushed_bytes = 0usize;
    // Push ~20x the budget of JSON, in batches that fit the budget with what a push holds
    // while it runs (its parsed rows, and a bound of what its rows add to the index).
    while pushed_bytes < 20 * budget as usize {
        let batch = rows(&mut rng, 300, T0, 10 * 60_000);
        pushed_bytes += batch.iter().map(|r| r.to_string().len()).sum::<usize>();
        match engine.push_json_rows("m", &batch) {
            Ok(r) => {
                assert_eq!(r.accepted, 300);
                accepted.extend(batch);
            }
            Err(Error::ResourcesExhausted(_)) => {
                throttled += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("{e}"),
        }
        let s = engine.realtime_stats();
        assert!(
            s.bytes_in_memory <= budget,
            "{} > {budget}",
            s.bytes_in_memory
        );
    }
    let s = engine.realtime_stats();
    assert!(s.peak_bytes_in_memory <= budget, "{s:?}");
    assert!(
        s.peak_bytes_in_memory > budget / 2,
        "the budget was never approached: {s:?}"
    );
    assert!(s.persists >= 5, "{s:?}");
    assert_eq!(s.pushes_throttled, throttled);
    assert!(
        throttled > 0,
        "pushing 20x the budget never met back-pressure"
    );
    // Every accepted row is queryable, exactly once.
    assert_eq!(query(&engine, "m"), reference(&accepted));
    // A batch bigger than the whole budget can never fit: a clear, retryable error.
    let huge = rows(&mut rng, 20_000, T0, 60_000);
    let err = engine.push_json_rows("m", &huge).unwrap_err();
    assert!(
        matches!(err, Error::ResourcesExhausted(_)) && err.to_string().contains("smaller batch"),
        "{err}"
    );
}

#[test]
fn json_texts_push_like_json_rows_and_invalid_json_is_a_parse_error() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0 + 10 * 60_000);
    let cfg = RealtimeConfig {
        max_parse_exceptions: 2,
        ..config(&clock)
    };
    let engine = open(dir.path(), cfg);
    create(&engine, "t", true);
    create(&engine, "j", true);
    let mut batch = rows(&mut rng(41), 300, T0, 10 * 60_000);
    // Escapes and non-ASCII strings, numbers as strings: the fast reader and the general one
    // must agree.
    batch[0]["host"] = json!("h\"quoted\"\\ é 日本");
    batch[1]["n"] = json!("17");
    batch[2]["core"] = json!("3");
    let mut texts: Vec<String> = batch.iter().map(|r| r.to_string()).collect();
    texts[3] = r#"{"ts": 1767225600000, "host": "\u0068\u0031", "region": "eu", "core": 1, "n": 5, "x": 2.0, "user": "u1"}"#.to_string();
    batch[3] = serde_json::from_str(&texts[3]).unwrap();
    let r = engine.push_json_texts("t", &texts).unwrap();
    assert_eq!((r.accepted, r.rejected), (300, 0), "{r:?}");
    assert_eq!(engine.push_json_rows("j", &batch).unwrap().accepted, 300);
    assert_eq!(query(&engine, "t"), query(&engine, "j"));
    assert!(query(&engine, "t").contains_key("h\"quoted\"\\ é 日本"));

    // Invalid JSON rejects that row with a reason; the rest goes on.
    let more = rows(&mut rng(42), 3, T0, 60_000);
    let texts = vec![
        more[0].to_string(),
        "{not json".to_string(),
        more[1].to_string(),
        r#"{"ts": 1767225600000, "host": {"nested": true}}"#.to_string(),
        more[2].to_string(),
    ];
    let r = engine.push_json_texts("t", &texts).unwrap();
    assert_eq!((r.accepted, r.rejected), (3, 2), "{r:?}");
    assert_eq!(r.rejected_by_reason.get("invalid JSON"), Some(&1), "{r:?}");
    assert_eq!(r.rejected_by_reason.get("wrong type"), Some(&1), "{r:?}");
    assert_eq!(
        r.errors.iter().map(|e| e.row).collect::<Vec<_>>(),
        vec![1, 3]
    );
    assert!(r.errors[0].reason.contains("not valid JSON"), "{r:?}");
    // Invalid JSON counts against maxParseExceptions like any parse error.
    let bad = vec!["[".to_string(), "{".to_string(), "nope".to_string()];
    let err = engine.push_json_texts("t", &bad).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert!(err.to_string().contains("invalid JSON: 3"), "{err}");
    assert_eq!(
        total(&engine, "t"),
        303,
        "nothing of the rejected push is stored"
    );
}
