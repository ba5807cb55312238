//! `server-load`: a bounded load test of a running `basalt serve` over loopback HTTP.
//!
//! N client threads, each with its own keep-alive-free HTTP/1.1 connections, run for a fixed
//! time and mix pushes (`POST /v1/ingest/{datasource}`, NDJSON TSBS-like rows stamped "now")
//! with native queries (`POST /druid/v2`: timeseries per minute, topN, groupBy). Every request's
//! latency is recorded per kind; any non-2xx answer or I/O error counts as an error.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Server HTTP address.
    pub http: SocketAddr,
    /// Concurrent clients.
    pub clients: usize,
    /// How long to run.
    pub duration: Duration,
    /// Share of requests that are pushes (0..=1).
    pub push_fraction: f64,
    /// Rows per push.
    pub rows_per_push: usize,
    /// Datasource to create and use.
    pub datasource: String,
}

/// The datasource spec the load test pushes into (TSBS cpu-like).
pub fn spec(datasource: &str) -> Value {
    json!({
        "dataSource": datasource,
        "timestampSpec": {"column": "ts", "format": "millis"},
        "dimensionsSpec": {"dimensions": ["hostname", "region", "service"]},
        "metricsSpec": [
            {"type": "count", "name": "count"},
            {"type": "doubleSum", "name": "usage_user", "fieldName": "usage_user"},
            {"type": "doubleMax", "name": "usage_user_max", "fieldName": "usage_user"},
            {"type": "longSum", "name": "requests", "fieldName": "requests"}
        ],
        "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "second", "rollup": true}
    })
}

/// One HTTP/1.1 request with `Connection: close`; returns (status, body).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP header end"))?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status"))?;
    Ok((status, buf[end + 4..].to_vec()))
}

/// Per-kind latencies (microseconds) and error count.
#[derive(Debug, Default, Clone)]
struct Samples {
    push_us: Vec<u64>,
    query_us: Vec<u64>,
    errors: u64,
    rows_pushed: u64,
    first_error: Option<String>,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

/// A tiny deterministic generator (xorshift) so clients need no RNG crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn queries(ds: &str) -> Vec<Vec<u8>> {
    let iv = "2000-01-01/2100-01-01";
    [
        json!({"queryType": "timeseries", "dataSource": ds, "intervals": [iv], "granularity": "minute",
            "aggregations": [{"type": "longSum", "name": "rows", "fieldName": "count"},
                             {"type": "doubleMax", "name": "max_user", "fieldName": "usage_user_max"}]}),
        json!({"queryType": "topN", "dataSource": ds, "intervals": [iv], "granularity": "all",
            "dimension": "hostname", "metric": "user", "threshold": 10,
            "aggregations": [{"type": "doubleSum", "name": "user", "fieldName": "usage_user"}]}),
        json!({"queryType": "groupBy", "dataSource": ds, "intervals": [iv], "granularity": "all",
            "dimensions": ["region", "service"],
            "aggregations": [{"type": "longSum", "name": "requests", "fieldName": "requests"}]}),
    ]
    .iter()
    .map(|q| q.to_string().into_bytes())
    .collect()
}

fn client(opts: &LoadOptions, seed: u64, stop: &AtomicBool) -> Samples {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut s = Samples::default();
    let qs = queries(&opts.datasource);
    let push_path = format!("/v1/ingest/{}", opts.datasource);
    while !stop.load(Ordering::Relaxed) {
        let push = rng.unit() < opts.push_fraction;
        let body = if push {
            let t = now_ms();
            let mut body = Vec::with_capacity(opts.rows_per_push * 120);
            for _ in 0..opts.rows_per_push {
                let h = rng.next() % 1000;
                let row = json!({"ts": t, "hostname": format!("host_{h}"),
                    "region": format!("r{}", h % 8), "service": format!("s{}", h % 20),
                    "usage_user": (rng.next() % 10_000) as f64 / 100.0, "requests": rng.next() % 100});
                body.extend_from_slice(row.to_string().as_bytes());
                body.push(b'\n');
            }
            body
        } else {
            qs[(rng.next() % qs.len() as u64) as usize].clone()
        };
        let started = Instant::now();
        let r = if push {
            http(opts.http, "POST", &push_path, &body)
        } else {
            http(opts.http, "POST", "/druid/v2", &body)
        };
        let us = started.elapsed().as_micros() as u64;
        match r {
            Ok((200..=299, _)) => {
                if push {
                    s.push_us.push(us);
                    s.rows_pushed += opts.rows_per_push as u64;
                } else {
                    s.query_us.push(us);
                }
            }
            Ok((status, body)) => {
                s.errors += 1;
                s.first_error.get_or_insert_with(|| {
                    format!("HTTP {status}: {}", String::from_utf8_lossy(&body))
                });
            }
            Err(e) => {
                s.errors += 1;
                s.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    s
}

/// Create the datasource (if missing) and run the load; returns a JSON summary.
pub fn run(opts: &LoadOptions) -> anyhow::Result<Value> {
    let (status, body) = http(
        opts.http,
        "POST",
        "/v1/datasources",
        spec(&opts.datasource).to_string().as_bytes(),
    )
    .context("creating the load-test datasource")?;
    if !(200..300).contains(&status) && status != 409 {
        bail!(
            "creating the datasource failed: HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let handles: Vec<_> = (0..opts.clients)
        .map(|i| {
            let opts = opts.clone();
            let stop = stop.clone();
            std::thread::spawn(move || client(&opts, i as u64 + 1, &stop))
        })
        .collect();
    std::thread::sleep(opts.duration);
    stop.store(true, Ordering::Relaxed);
    let mut all = Samples::default();
    for h in handles {
        let s = h
            .join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))?;
        all.push_us.extend(s.push_us);
        all.query_us.extend(s.query_us);
        all.errors += s.errors;
        all.rows_pushed += s.rows_pushed;
        if all.first_error.is_none() {
            all.first_error = s.first_error;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.push_us.sort_unstable();
    all.query_us.sort_unstable();
    let kind = |v: &[u64]| {
        json!({
            "requests": v.len(),
            "per_second": v.len() as f64 / elapsed,
            "p50_ms": percentile(v, 0.50),
            "p99_ms": percentile(v, 0.99),
            "max_ms": percentile(v, 1.0),
        })
    };
    Ok(json!({
        "clients": opts.clients,
        "seconds": elapsed,
        "errors": all.errors,
        "first_error": all.first_error,
        "requests_per_second": (all.push_us.len() + all.query_us.len()) as f64 / elapsed,
        "rows_pushed": all.rows_pushed,
        "rows_pushed_per_second": all.rows_pushed as f64 / elapsed,
        "push": kind(&all.push_us),
        "query": kind(&all.query_us),
    }))
}
