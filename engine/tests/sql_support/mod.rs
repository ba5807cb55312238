//! Fixed datasets for the SQL tests: `events` (10 hand-checkable rows over three hourly
//! segments, with NULLs) and `cpu` (TSBS-like: 3 hosts × 1 row/minute over 3 hours).

#![allow(dead_code)]

use basalt_engine::engine::Engine;
use basalt_engine::schema::DataSchema;
use basalt_engine::segment::{SegmentId, SegmentWriter};
use basalt_engine::time::Interval;
use serde_json::{Value, json};

/// One hour in milliseconds.
pub const HOUR: i64 = 3_600_000;
/// 2000-01-01T00:00:00Z.
pub const T0: i64 = 946_684_800_000;

/// Write `rows` (objects with a `ts` millis field) into hourly segments of `schema` and publish.
pub fn publish(engine: &Engine, schema_json: Value, rows: &[Value]) {
    let schema = DataSchema::from_value(&schema_json).unwrap();
    let ds = schema.data_source.clone();
    engine
        .data_dir()
        .catalog()
        .create_datasource(&ds, &schema.to_json().to_string())
        .unwrap();
    let version = engine.data_dir().allocate_version(&ds).unwrap();
    let mut hours: Vec<i64> = rows
        .iter()
        .map(|r| r["ts"].as_i64().unwrap().div_euclid(HOUR) * HOUR)
        .collect();
    hours.sort_unstable();
    hours.dedup();
    let mut staged = Vec::new();
    for h in hours {
        let iv = Interval::new(h, h + HOUR).unwrap();
        let mut w = SegmentWriter::new(&schema, iv).unwrap();
        for r in rows {
            if iv.contains(r["ts"].as_i64().unwrap()) {
                w.push_json(r.as_object().unwrap()).unwrap();
            }
        }
        let path = engine.data_dir().staging_path().unwrap();
        let stats = w.finish(&path).unwrap();
        let id = SegmentId {
            datasource: ds.clone(),
            interval: iv,
            version,
            partition: 0,
        };
        staged.push((id, path, stats.rows_out));
    }
    engine.data_dir().publish(staged, None).unwrap();
}

/// The `events` datasource rows.
pub fn events_rows() -> Vec<Value> {
    let m = 60_000;
    let row =
        |min: i64, sec: i64, channel: &str, page: Value, user: &str, added: Value, price: Value| {
            json!({"ts": T0 + min * m + sec * 1000, "channel": channel, "page": page, "user": user,
               "added": added, "price": price})
        };
    vec![
        row(0, 0, "#en", json!("Foo"), "alice", json!(10), json!(1.5)),
        row(10, 0, "#en", json!("Bar"), "bob", json!(20), json!(2.5)),
        row(20, 0, "#fr", json!("Foo"), "alice", json!(30), Value::Null),
        row(50, 0, "#fr", Value::Null, "carol", json!(5), json!(4.0)),
        row(65, 0, "#en", json!("Baz"), "bob", json!(15), json!(0.5)),
        row(90, 0, "#de", json!("Foo"), "dave", Value::Null, json!(3.0)),
        row(105, 0, "#en", json!("Bar"), "alice", json!(25), json!(1.0)),
        row(120, 0, "#fr", json!("Qux"), "bob", json!(40), json!(10.0)),
        row(150, 0, "#de", Value::Null, "carol", json!(0), Value::Null),
        row(179, 59, "#en", json!("Foo"), "eve", json!(50), json!(2.0)),
    ]
}

/// Publish `events`.
pub fn build_events(engine: &Engine) {
    publish(
        engine,
        json!({
            "dataSource": "events",
            "timestampSpec": {"column": "ts", "format": "millis"},
            "dimensionsSpec": {"dimensions": ["channel", "page", "user",
                {"type": "long", "name": "added"}, {"type": "double", "name": "price"}]},
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none", "rollup": false}
        }),
        &events_rows(),
    );
}

/// Number of hosts in `cpu`.
pub const HOSTS: i64 = 3;
/// Minutes of data in `cpu`.
pub const MINUTES: i64 = 180;

/// The `cpu` rows: deterministic pseudo-random usage per host and minute.
pub fn cpu_rows(seed: u64) -> Vec<Value> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut rows = Vec::new();
    for minute in 0..MINUTES {
        for h in 0..HOSTS {
            let r = next();
            let usage = (r % 10_000) as f64 / 100.0;
            let region = if h == 0 { "us-east-1" } else { "eu-west-1" };
            let mut row = json!({
                "ts": T0 + minute * 60_000 + (r % 7) as i64 * 1000,
                "hostname": format!("host_{h}"),
                "region": region,
                "usage_user": usage,
                "usage_system": ((r >> 20) % 5000) as f64 / 100.0,
                "requests": (r >> 33) % 1000,
            });
            if r % 11 == 0 {
                row["usage_system"] = Value::Null;
            }
            rows.push(row);
        }
    }
    rows
}

/// Publish `cpu`.
pub fn build_cpu(engine: &Engine, seed: u64) {
    publish(
        engine,
        json!({
            "dataSource": "cpu",
            "timestampSpec": {"column": "ts", "format": "millis"},
            "dimensionsSpec": {"dimensions": ["hostname", "region",
                {"type": "double", "name": "usage_user"}, {"type": "double", "name": "usage_system"},
                {"type": "long", "name": "requests"}]},
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none", "rollup": false}
        }),
        &cpu_rows(seed),
    );
}

/// Render a table cell for sqllogictest: NULL, integers, doubles rounded to 6 decimals.
pub fn render(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::String(s) if s.is_empty() => "(empty)".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            let s = format!("{f:.6}");
            let s = s.trim_end_matches('0').trim_end_matches('.').to_string();
            if s == "-0" { "0".into() } else { s }
        }
        other => other.to_string(),
    }
}

/// Run `q` through `Engine::sql` with no parameters or context; panics with the SQL on error.
pub fn sql(engine: &Engine, q: &str) -> basalt_engine::table::Table {
    engine
        .sql(
            &basalt_engine::sql::SqlRequest {
                query: q.into(),
                ..basalt_engine::sql::SqlRequest::default()
            },
            None,
        )
        .unwrap_or_else(|e| panic!("{e}\nSQL: {q}"))
}
