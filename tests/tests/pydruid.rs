//! End-to-end with a real Druid client nobody here wrote: `pydruid` (PyPI) runs timeseries,
//! topN, groupBy and a SQL query against the real `basalt serve` over data loaded with
//! `basalt load`, and `tests/python/test_pydruid.py` checks every number against values it
//! computes from the loaded rows.
//!
//! Skipped (with a printed message) only when `CI` is unset and `pydruid` is not importable;
//! under CI it must run. Install: `python3 -m pip install pydruid`.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use basalt_tests::{TestServer, load_rows};
use serde_json::{Value, json};

const MINUTE: i64 = 60_000;
const T0: i64 = 1_451_606_400_000; // 2016-01-01T00:00:00Z

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn pydruid_importable() -> bool {
    Command::new(python())
        .args(["-c", "import pydruid.client, pydruid.db"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn pydruid_queries_match_the_loaded_data() {
    let in_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    if !pydruid_importable() {
        assert!(
            !in_ci,
            "CI is set but pydruid is not importable by {}: install it with `python3 -m pip install pydruid`",
            python()
        );
        eprintln!(
            "SKIPPED pydruid_queries_match_the_loaded_data: pydruid is not installed \
             (python3 -m pip install pydruid)"
        );
        return;
    }
    let spec = json!({
        "dataSource": "cpu",
        "timestampSpec": {"column": "ts", "format": "millis"},
        "dimensionsSpec": {"dimensions": ["host", "region"]},
        "metricsSpec": [
            {"type": "count", "name": "count"},
            {"type": "doubleSum", "name": "usage", "fieldName": "usage"}
        ],
        "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "minute", "rollup": true}
    });
    // 6 hosts × 180 minutes, one row per host and minute; usage from a fixed recurrence.
    let mut rows: Vec<Value> = Vec::new();
    let mut x: u64 = 12345;
    for m in 0..180i64 {
        for h in 0..6i64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            rows.push(json!({
                "ts": T0 + m * MINUTE,
                "host": format!("h{h}"),
                "region": if h % 2 == 0 { "eu" } else { "us" },
                "usage": ((x >> 33) % 10_000) as f64 / 100.0,
            }));
        }
    }
    let data = tempfile::tempdir().unwrap();
    load_rows(data.path(), &spec, &rows);
    let server = TestServer::start_in(data);

    let work = tempfile::tempdir().unwrap();
    let rows_path = work.path().join("rows.json");
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&rows_path, text).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/test_pydruid.py");
    let mut cmd = Command::new(python());
    cmd.arg(&script)
        .arg("--url")
        .arg(server.url())
        .arg("--data")
        .arg(&rows_path);
    cmd.arg("--require-sql");
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "pydruid checks failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains(", 0 wrong"), "{stdout}");
}
