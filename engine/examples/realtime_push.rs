//! Raw engine push rate with the WAL on (fsync always): TSBS cpu-only-like rows, batches of
//! 5000, through `push_ndjson` (the HTTP path after decompression) and `push_json_rows`.
//!
//! `cargo run --release -p basalt-engine --example realtime_push -- [rows] [data_dir]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use basalt_engine::engine::Engine;
use serde_json::{Value, json};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let total: usize = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile_dir(args.get(2));
    let engine = Engine::open(&dir).unwrap();
    let fields = [
        "usage_user",
        "usage_system",
        "usage_idle",
        "usage_nice",
        "usage_iowait",
        "usage_irq",
        "usage_softirq",
        "usage_steal",
        "usage_guest",
        "usage_guest_nice",
    ];
    let tags = [
        "hostname",
        "region",
        "datacenter",
        "rack",
        "os",
        "arch",
        "team",
        "service",
        "service_version",
        "service_environment",
    ];
    let mut metrics = vec![json!({"type": "count", "name": "count"})];
    metrics.extend(
        fields
            .iter()
            .map(|f| json!({"type": "doubleSum", "name": f, "fieldName": f})),
    );
    let spec = json!({
        "dataSource": "cpu",
        "timestampSpec": {"column": "ts", "format": "millis"},
        "dimensionsSpec": {"dimensions": tags},
        "metricsSpec": metrics,
        "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none", "rollup": false}
    });
    engine
        .data_dir()
        .catalog()
        .create_datasource("cpu", &spec.to_string())
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let start = now - now % 3_600_000;
    let hosts = 4000;
    let row = |i: usize| -> Value {
        let h = i % hosts;
        let mut o = serde_json::Map::new();
        o.insert(
            "ts".into(),
            json!(start + (i / hosts) as i64 * 10_000 % 3_600_000),
        );
        o.insert("hostname".into(), json!(format!("host_{h}")));
        for (k, t) in tags.iter().enumerate().skip(1) {
            o.insert((*t).into(), json!(format!("{t}_{}", (h * 7 + k) % 10)));
        }
        for (k, f) in fields.iter().enumerate() {
            o.insert((*f).into(), json!(((i * 31 + k * 17) % 100) as f64));
        }
        Value::Object(o)
    };
    let batch = 5000;
    let mut bodies = Vec::new();
    let mut json_bytes = 0usize;
    for b in 0..total.div_ceil(batch) {
        let mut body = Vec::new();
        for i in b * batch..((b + 1) * batch).min(total) {
            body.extend_from_slice(row(i).to_string().as_bytes());
            body.push(b'\n');
        }
        json_bytes += body.len();
        bodies.push(body);
    }
    let t = Instant::now();
    let mut accepted = 0;
    for body in &bodies {
        accepted += engine.push_ndjson("cpu", body).unwrap().accepted;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "push_ndjson: {accepted} rows in {secs:.2} s = {:.0} rows/s, {:.1} MB/s of NDJSON (fsync always, batches of {batch})",
        accepted as f64 / secs,
        json_bytes as f64 / secs / 1e6
    );
    let values: Vec<Vec<Value>> = (0..total.div_ceil(batch))
        .map(|b| (b * batch..((b + 1) * batch).min(total)).map(row).collect())
        .collect();
    let t = Instant::now();
    let mut accepted = 0;
    for v in &values {
        accepted += engine.push_json_rows("cpu", v).unwrap().accepted;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "push_json_rows: {accepted} rows in {secs:.2} s = {:.0} rows/s (parsed JSON values)",
        accepted as f64 / secs
    );
    let t = Instant::now();
    let q = json!({"queryType": "timeseries", "dataSource": "cpu", "granularity": "all",
        "intervals": ["2000-01-01/2100-01-01"], "aggregations": [{"type": "longSum", "name": "n", "fieldName": "count"}]});
    let out = engine.query_json(&q.to_string()).unwrap();
    println!(
        "query after push: {} in {:.0} ms; stats {:?}",
        out[0]["result"],
        t.elapsed().as_secs_f64() * 1e3,
        engine.realtime_stats()
    );
}

fn tempfile_dir(arg: Option<&String>) -> std::path::PathBuf {
    match arg {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            let p = std::env::temp_dir().join(format!("basalt-rt-bench-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            p
        }
    }
}
