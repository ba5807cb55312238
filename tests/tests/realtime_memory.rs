//! The memory bound of realtime ingestion, against the real `basalt serve`: clients push far
//! more data than the configured memory budget (retrying on back-pressure), while the server
//! freezes, merges and hands off; the process's peak resident set (`VmHWM`) must stay under the
//! budget, and every acknowledged row must be stored exactly once.

#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use basalt_tests::{TestServer, http_send};
use serde_json::{Value, json};

/// The budget the server runs with, at least.
const MIN_BUDGET: u64 = 64 << 20;
/// What the budget gives ingestion past the server's baseline, at least.
const INGEST_SHARE: u64 = 32 << 20;
/// JSON pushed, in multiples of the budget. Every row has a unique `id`, so a row takes about
/// four times its JSON size in memory (its dictionary entry and index): in memory, this is
/// about eight budgets' worth of rows.
const PUSHED_BUDGETS: u64 = 2;
/// Client threads.
const CLIENTS: u64 = 4;
/// Rows per push.
const ROWS_PER_PUSH: u64 = 2000;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A `/proc/<pid>/status` field in bytes.
fn status_bytes(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = text.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

/// The baseline a server counts against its budget (its resident set at start and its code
/// not resident yet, see `basalt_engine::realtime::memory`), from `GET /status`.
fn baseline(server: &TestServer) -> u64 {
    let (status, body) = server.get("/status").unwrap();
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["memory"]["baselineBytes"].as_u64().unwrap()
}

#[test]
fn pushing_many_times_the_memory_budget_keeps_the_process_under_it() {
    // The budget: 64 MiB, or more for a build of the binary whose code alone is bigger (a
    // debug build): what matters is that far more than it is pushed.
    let probe = TestServer::start();
    let budget_bytes = MIN_BUDGET.max(baseline(&probe) + INGEST_SHARE);
    drop(probe);
    let dir = tempfile::tempdir().unwrap();
    let budget = budget_bytes.to_string();
    // Minute segments with a 1 s window: rows stamped over the last two minutes make the
    // server freeze, merge and hand off while the clients push.
    let server = TestServer::start_with(
        dir,
        &[
            "--memory-budget-bytes",
            &budget,
            "--window-period-secs",
            "1",
            "--log-level",
            "warn",
        ],
    );
    let pid = server.pid();
    let spec = json!({
        "dataSource": "mem",
        "timestampSpec": {"column": "ts", "format": "millis"},
        "dimensionsSpec": {"dimensions": ["id", "host", {"type": "long", "name": "n"}]},
        "metricsSpec": [{"type": "count", "name": "count"},
            {"type": "longSum", "name": "v", "fieldName": "v"}],
        "granularitySpec": {"segmentGranularity": "minute", "queryGranularity": "none",
            "rollup": false}
    });
    let (status, body) = server.post("/v1/datasources", &spec.to_string()).unwrap();
    assert_eq!(status, 201, "{body}");
    let start_rss = status_bytes(pid, "VmRSS:");

    let target = PUSHED_BUDGETS * budget_bytes;
    let pushed_bytes = Arc::new(AtomicU64::new(0));
    let throttled = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (addr, pushed_bytes, throttled) =
                (server.http, pushed_bytes.clone(), throttled.clone());
            std::thread::spawn(move || {
                let mut rows = 0u64;
                let mut batch = 0u64;
                while pushed_bytes.load(Ordering::Relaxed) < target {
                    let now = now_ms();
                    let mut body = String::new();
                    for i in 0..ROWS_PER_PUSH {
                        // Unique ids: every row adds a dictionary entry (the costly case).
                        let ts = now - ((i * 7919) % 120_000) as i64;
                        let _ = writeln!(
                            body,
                            r#"{{"ts":{ts},"id":"client{c}-batch{batch}-row{i}","host":"host-{}","n":{i},"v":1}}"#,
                            i % 100
                        );
                    }
                    batch += 1;
                    loop {
                        let r = http_send(addr, "POST", "/v1/ingest/mem", &[], body.as_bytes())
                            .unwrap();
                        match r.status {
                            200 => {
                                assert_eq!(
                                    r.json()["accepted"],
                                    json!(ROWS_PER_PUSH),
                                    "{}",
                                    r.text()
                                );
                                break;
                            }
                            // Back-pressure: retry the same rows shortly.
                            429 => {
                                throttled.fetch_add(1, Ordering::Relaxed);
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            s => panic!("push answered {s}: {}", r.text()),
                        }
                    }
                    rows += ROWS_PER_PUSH;
                    pushed_bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                }
                rows
            })
        })
        .collect();
    let rows: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    let elapsed = started.elapsed();
    let peak = status_bytes(pid, "VmHWM:");

    // Every acknowledged row is there once.
    let q = json!({"queryType": "timeseries", "dataSource": "mem", "intervals": ["2000/2100"],
        "granularity": "all", "aggregations": [{"type": "longSum", "name": "rows", "fieldName": "count"}]});
    let (status, body) = server.post("/druid/v2", &q.to_string()).unwrap();
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v[0]["result"]["rows"], json!(rows), "{body}");

    // Queries read segment and piece files through memory maps: those pages count in the
    // resident set too, but are the kernel's to reclaim and not part of the budget. Shown, not
    // asserted.
    let after_query = status_bytes(pid, "VmHWM:");
    let file = status_bytes(pid, "RssFile:");
    println!(
        "pushed {rows} rows, {} MiB of JSON ({}x the {} MiB budget) in {elapsed:.1?}, {} pushes \
         throttled; RSS at start {} MiB, peak RSS while pushing {} MiB; after a query over all \
         rows {} MiB ({} MiB of it mapped files)",
        pushed_bytes.load(Ordering::Relaxed) >> 20,
        pushed_bytes.load(Ordering::Relaxed) / budget_bytes,
        budget_bytes >> 20,
        throttled.load(Ordering::Relaxed),
        start_rss >> 20,
        peak >> 20,
        after_query >> 20,
        file >> 20,
    );
    assert!(
        pushed_bytes.load(Ordering::Relaxed) >= target,
        "pushed less than {PUSHED_BUDGETS} budgets"
    );
    assert!(
        peak < budget_bytes,
        "peak RSS {} MiB while pushing is over the {} MiB memory budget",
        peak >> 20,
        budget_bytes >> 20
    );
}
