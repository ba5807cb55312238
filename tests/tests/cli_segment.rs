//! End-to-end: `basalt segment inspect|verify` and `basalt serve` as a user runs them.

#![allow(clippy::unwrap_used)]

use basalt_engine::schema::DataSchema;
use basalt_engine::segment::SegmentWriter;
use basalt_engine::time::Interval;
use basalt_tests::{TestServer, run_basalt};
use serde_json::json;

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_451_606_400_000; // 2016-01-01T00:00:00Z

fn build_segment(path: &std::path::Path) {
    let schema = DataSchema::from_value(&json!({
        "dataSource": "cpu",
        "timestampSpec": {"column": "ts", "format": "millis"},
        "dimensionsSpec": {"dimensions": ["host", "tags", {"type": "long", "name": "core"}]},
        "metricsSpec": [
            {"type": "count", "name": "count"},
            {"type": "doubleSum", "name": "usage", "fieldName": "usage"},
            {"type": "HLLSketchBuild", "name": "users", "fieldName": "user"}
        ],
        "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "minute", "rollup": true}
    }))
    .unwrap();
    let mut w = SegmentWriter::new(&schema, Interval::new(T0, T0 + HOUR).unwrap()).unwrap();
    for i in 0..500i64 {
        let row = json!({
            "ts": T0 + i * 7_000,
            "host": format!("host_{}", i % 7),
            "tags": ["a", format!("t{}", (i % 7) % 3)],
            "core": (i % 7) % 4,
            "usage": i as f64 / 10.0,
            "user": format!("u{}", i % 13),
        });
        w.push_json(row.as_object().unwrap()).unwrap();
    }
    w.finish(path).unwrap();
}

#[test]
fn inspect_shows_schema_rows_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cpu.bseg");
    build_segment(&path);
    let p = path.to_str().unwrap();

    let (code, out, err) = run_basalt(&["segment", "inspect", p]);
    assert_eq!(code, 0, "stderr: {err}");
    assert!(out.contains("datasource  cpu"), "{out}");
    assert!(
        out.contains("2016-01-01T00:00:00.000Z/2016-01-01T01:00:00.000Z"),
        "{out}"
    );
    for col in ["__time", "host", "tags", "core", "count", "usage", "users"] {
        assert!(
            out.lines().any(|l| l.starts_with(col)),
            "column {col} missing:\n{out}"
        );
    }
    assert!(out.contains("string (multi-value)"), "{out}");

    let (code, out, _) = run_basalt(&["segment", "inspect", "--format", "json", p]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["datasource"], "cpu");
    // 500 rows over 7 hosts, rolled up per minute: fewer rows than input.
    let rows = v["rows"].as_u64().unwrap();
    assert!(rows > 0 && rows < 500, "{rows}");
    let host = v["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "host")
        .unwrap();
    assert_eq!(host["cardinality"], 7);
    assert_eq!(v["schema"]["granularitySpec"]["queryGranularity"], "minute");
}

#[test]
fn verify_passes_then_reports_damage_with_nonzero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cpu.bseg");
    build_segment(&path);
    let p = path.to_str().unwrap();
    let (code, out, _) = run_basalt(&["segment", "verify", p]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok"), "{out}");

    // Flip one byte in the data region: a block or part checksum must catch it.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[40] ^= 0x5a;
    let bad = dir.path().join("bad.bseg");
    std::fs::write(&bad, &bytes).unwrap();
    let (code, out, _) = run_basalt(&["segment", "verify", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("FAILED") && out.contains("checksum") && out.contains("bad.bseg"),
        "{out}"
    );

    // Truncated file.
    let cut = dir.path().join("cut.bseg");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (code, out, _) = run_basalt(&["segment", "verify", cut.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        out.contains("cut.bseg") && out.contains("footer magic"),
        "{out}"
    );

    // Missing file: inspect fails with a message naming it.
    let (code, _, err) = run_basalt(&["segment", "inspect", "/nonexistent/x.bseg"]);
    assert_ne!(code, 0);
    assert!(err.contains("/nonexistent/x.bseg"), "{err}");
}

#[test]
fn serve_answers_health_and_stops_on_sigterm() {
    let server = TestServer::start();
    let (status, body) = server.get("/status/health").unwrap();
    assert_eq!((status, body.trim()), (200, "true"));
    let (status, body) = server.get("/status").unwrap();
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["segments"], 0);
    assert!(server.data_dir.path().join("catalog.sqlite").exists());
    let status = server.stop();
    assert!(status.success(), "{status}");
}
