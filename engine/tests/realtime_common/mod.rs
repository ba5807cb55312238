//! Helpers shared by the realtime tests: a datasource, random rows, and a reference.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use basalt_engine::engine::{Engine, EngineConfig};
use basalt_engine::realtime::{Clock, RealtimeConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// 2026-01-01T00:00:00Z.
pub const T0: i64 = 1_767_225_600_000;
pub const HOUR: i64 = 3_600_000;

pub fn spec(name: &str, rollup: bool) -> String {
    json!({
        "dataSource": name,
        "timestampSpec": {"column": "ts", "format": "millis"},
        "dimensionsSpec": {"dimensions": ["host", "region", {"type": "long", "name": "core"}]},
        "metricsSpec": [
            {"type": "count", "name": "count"},
            {"type": "longSum", "name": "n", "fieldName": "n"},
            {"type": "doubleSum", "name": "x", "fieldName": "x"},
            {"type": "longMax", "name": "nmax", "fieldName": "n"},
            {"type": "HLLSketchBuild", "name": "users", "fieldName": "user"}
        ],
        "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "minute", "rollup": rollup}
    })
    .to_string()
}

pub fn config(clock: &Clock) -> RealtimeConfig {
    RealtimeConfig {
        clock: clock.clone(),
        window_period: Duration::from_secs(600),
        tick: Duration::from_millis(20),
        ..RealtimeConfig::default()
    }
}

pub fn open(path: &Path, rt: RealtimeConfig) -> Engine {
    Engine::open_with(path, EngineConfig { realtime: rt }).unwrap()
}

pub fn create(engine: &Engine, name: &str, rollup: bool) {
    engine
        .data_dir()
        .catalog()
        .create_datasource(name, &spec(name, rollup))
        .unwrap();
}

/// `n` random rows within `[start, start + span)`; `n` and `x` are integers so sums are exact.
pub fn rows(rng: &mut StdRng, n: usize, start: i64, span: i64) -> Vec<Value> {
    (0..n)
        .map(|_| {
            let region = ["eu", "us", "ap"][rng.random_range(0..3)];
            json!({
                "ts": start + rng.random_range(0..span),
                "host": format!("h{}", rng.random_range(0..20)),
                "region": region,
                "core": rng.random_range(0..4),
                "n": rng.random_range(0..100),
                "x": rng.random_range(0..1000) as f64,
                "user": format!("u{}", rng.random_range(0..50)),
            })
        })
        .collect()
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Per host: (rows, sum n, sum x, max n) — what the engine must report.
pub type Reference = BTreeMap<String, (i64, i64, f64, i64)>;

pub fn reference<'a>(rows: impl IntoIterator<Item = &'a Value>) -> Reference {
    let mut r = Reference::new();
    for row in rows {
        let e = r
            .entry(row["host"].as_str().unwrap().to_string())
            .or_insert((0, 0, 0.0, i64::MIN));
        e.0 += 1;
        e.1 += row["n"].as_i64().unwrap();
        e.2 += row["x"].as_f64().unwrap();
        e.3 = e.3.max(row["n"].as_i64().unwrap());
    }
    r
}

/// The same numbers from the engine (groupBy host over all time).
pub fn query(engine: &Engine, ds: &str) -> Reference {
    let q = json!({
        "queryType": "groupBy", "dataSource": ds, "granularity": "all",
        "intervals": ["2000-01-01/2100-01-01"],
        "dimensions": ["host"],
        "aggregations": [
            {"type": "longSum", "name": "rows", "fieldName": "count"},
            {"type": "longSum", "name": "n", "fieldName": "n"},
            {"type": "doubleSum", "name": "x", "fieldName": "x"},
            {"type": "longMax", "name": "nmax", "fieldName": "nmax"}
        ]
    });
    let out = engine.query_json(&q.to_string()).unwrap();
    let mut r = Reference::new();
    for row in out.as_array().unwrap() {
        let e = &row["event"];
        r.insert(
            e["host"].as_str().unwrap().to_string(),
            (
                e["rows"].as_i64().unwrap(),
                e["n"].as_i64().unwrap(),
                e["x"].as_f64().unwrap(),
                e["nmax"].as_i64().unwrap(),
            ),
        );
    }
    r
}

/// Total rows (sum of counts) the engine reports.
pub fn total(engine: &Engine, ds: &str) -> i64 {
    query(engine, ds).values().map(|v| v.0).sum()
}
