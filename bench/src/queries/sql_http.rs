//! `tsbs-queries --basalt-sql`: each query as Druid SQL through a real `basalt serve` (child
//! process on loopback), timed against the same query in native JSON through the same server.
//!
//! Per query: one warm-up of each form (the SQL answer is the one compared with DuckDB's),
//! then `runs` rounds, each running native (`POST /druid/v2`) then SQL (`POST /druid/v2/sql`).
//! The timed SQL requests ask for the result shape of the native query: `resultFormat: array`
//! (one JSON array per row) when the native query is a `compactedList` scan, `object`
//! otherwise; the warm-up answers compared with DuckDB are `object` rows. Times are wall time from sending the request until the whole
//! response body has arrived (one fresh HTTP/1.1 connection per request); the JSON is parsed
//! off the clock.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::queries::compare::{Agreement, Row, agreement, druid_time};
use crate::queries::defs::{Check, QueryDef};
use crate::queries::median;
use crate::server_load::http;

/// A `basalt serve` child process; killed when dropped.
#[derive(Debug)]
pub struct BasaltServer {
    child: Child,
    /// Its HTTP address.
    pub http: SocketAddr,
    /// Its gRPC address.
    pub grpc: SocketAddr,
    /// Where its output goes.
    pub log: PathBuf,
}

fn free_port() -> anyhow::Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").context("bind a free loopback port")?;
    Ok(l.local_addr()?)
}

impl BasaltServer {
    /// Starts `binary serve` on `data_dir` with free loopback ports and waits until
    /// `GET /status/health` answers 200 (at most two minutes).
    pub fn spawn(binary: &Path, data_dir: &Path) -> anyhow::Result<Self> {
        Self::spawn_with(binary, data_dir, &[])
    }

    /// [`BasaltServer::spawn`] with more `serve` arguments (e.g. `--fsync always`).
    pub fn spawn_with(binary: &Path, data_dir: &Path, extra_args: &[&str]) -> anyhow::Result<Self> {
        let http_addr = free_port()?;
        let grpc_addr = free_port()?;
        let log = std::env::temp_dir().join(format!("basalt-bench-serve-{}.log", http_addr.port()));
        let out =
            std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let child = Command::new(binary)
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--http-addr")
            .arg(http_addr.to_string())
            .arg("--grpc-addr")
            .arg(grpc_addr.to_string())
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("start {} serve", binary.display()))?;
        let mut server = Self {
            child,
            http: http_addr,
            grpc: grpc_addr,
            log,
        };
        let t0 = Instant::now();
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "basalt serve exited with {status} while starting (log: {})",
                    server.log.display()
                );
            }
            if let Ok((200, _)) = http(server.http, "GET", "/status/health", b"") {
                return Ok(server);
            }
            if t0.elapsed() > Duration::from_secs(120) {
                bail!(
                    "basalt serve not healthy after 120 s (log: {})",
                    server.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Peak RSS of the server process so far (`VmHWM`).
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }
}

impl Drop for BasaltServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Undoes `Transfer-Encoding: chunked` when the body looks chunked (hex size line first).
fn dechunk(body: Vec<u8>) -> Vec<u8> {
    let looks_chunked = body
        .iter()
        .position(|&b| b == b'\r')
        .is_some_and(|i| i > 0 && body[..i].iter().all(u8::is_ascii_hexdigit))
        && !body.starts_with(b"[")
        && !body.starts_with(b"{");
    if !looks_chunked {
        return body;
    }
    let mut out = Vec::with_capacity(body.len());
    let mut rest = &body[..];
    while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
        let Ok(size) = usize::from_str_radix(&String::from_utf8_lossy(&rest[..i]), 16) else {
            return body;
        };
        if size == 0 || rest.len() < i + 2 + size {
            break;
        }
        out.extend_from_slice(&rest[i + 2..i + 2 + size]);
        rest = &rest[(i + 4 + size).min(rest.len())..];
    }
    out
}

/// POSTs `body`; returns the elapsed milliseconds and the body (an error for non-2xx).
fn post(addr: SocketAddr, path: &str, body: &[u8]) -> anyhow::Result<(f64, Vec<u8>)> {
    let t0 = Instant::now();
    let (status, resp) = http(addr, "POST", path, body).with_context(|| format!("POST {path}"))?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    let resp = dechunk(resp);
    if !(200..300).contains(&status) {
        bail!("HTTP {status}: {}", String::from_utf8_lossy(&resp));
    }
    Ok((ms, resp))
}

/// POSTs `body`; returns the elapsed milliseconds and the parsed JSON (an error for non-2xx).
fn post_json(addr: SocketAddr, path: &str, body: &[u8]) -> anyhow::Result<(f64, Value)> {
    let (ms, resp) = post(addr, path, body)?;
    let v = serde_json::from_slice(&resp).with_context(|| format!("response of POST {path}"))?;
    Ok((ms, v))
}

/// A native scan batch, for counting its rows without building them.
#[derive(Deserialize)]
struct CountedBatch {
    #[serde(default)]
    events: Vec<IgnoredAny>,
}

/// Rows of a response counted without building them (for queries checked by row count only,
/// whose answers can be millions of rows): native scan batches' events, or SQL rows.
fn count_rows(resp: &[u8], native: bool) -> anyhow::Result<usize> {
    Ok(if native {
        serde_json::from_slice::<Vec<CountedBatch>>(resp)?
            .iter()
            .map(|b| b.events.len())
            .sum()
    } else {
        serde_json::from_slice::<Vec<IgnoredAny>>(resp)?.len()
    })
}

/// The SQL result format with the native result's shape: rows as arrays for a
/// `compactedList` scan, objects otherwise.
fn matching_format(native: &Value) -> &'static str {
    if native.get("resultFormat").and_then(Value::as_str) == Some("compactedList") {
        "array"
    } else {
        "object"
    }
}

/// The SQL request body; it carries the native query's result-size limits (`maxScanRows`,
/// `maxGroupByRows`) so both forms run under the same caps.
fn sql_body(sql: &str, native: &Value, format: &str) -> Vec<u8> {
    let mut context = Map::new();
    for k in ["maxScanRows", "maxGroupByRows"] {
        if let Some(v) = native.pointer(&format!("/context/{k}")) {
            context.insert(k.to_owned(), v.clone());
        }
    }
    json!({"query": sql, "resultFormat": format, "context": context})
        .to_string()
        .into_bytes()
}

/// SQL `object` rows, time columns as epoch milliseconds.
fn sql_rows(v: &Value, time_columns: &[String]) -> anyhow::Result<Vec<Row>> {
    let items = v
        .as_array()
        .context("an SQL object response is a JSON array")?;
    items
        .iter()
        .map(|r| {
            let mut row: Map<String, Value> =
                r.as_object().context("an SQL row is an object")?.clone();
            for c in time_columns {
                if let Some(t) = row.get_mut(c) {
                    *t = druid_time(t);
                }
            }
            Ok(row)
        })
        .collect()
}

/// Native vs SQL through the server for one query.
#[derive(Debug, Clone, Serialize, Default)]
pub struct SqlVsNative {
    pub sql: String,
    pub native_ms: Vec<f64>,
    pub sql_ms: Vec<f64>,
    pub native_median_ms: Option<f64>,
    pub sql_median_ms: Option<f64>,
    /// SQL median over native median, minus one, in percent.
    pub overhead_pct: Option<f64>,
    pub native_rows: Option<usize>,
    pub sql_rows: Option<usize>,
    pub native_error: Option<String>,
    pub sql_error: Option<String>,
    /// The SQL answer against DuckDB's (the peer's rows of the main run).
    pub vs_duckdb: Option<Agreement>,
}

/// Measures `q` through `server`; `duckdb` is DuckDB's (row count, rows) when it ran.
pub fn measure(
    server: &BasaltServer,
    q: &QueryDef,
    runs: usize,
    duckdb: Option<&(usize, Option<Vec<Row>>)>,
) -> SqlVsNative {
    let native = q.basalt.to_string().into_bytes();
    let sql = sql_body(&q.druid, &q.basalt, matching_format(&q.basalt));
    let sql_objects = sql_body(&q.druid, &q.basalt, "object");
    let mut out = SqlVsNative {
        sql: q.druid.clone(),
        ..SqlVsNative::default()
    };
    let count_only = matches!(q.check, Check::Rows);
    let native_first = if count_only {
        post(server.http, "/druid/v2", &native).and_then(|(_, b)| count_rows(&b, true))
    } else {
        post_json(server.http, "/druid/v2", &native).map(|(_, v)| {
            crate::queries::compare::basalt_rows(&v)
                .map(|r| r.len())
                .unwrap_or(0)
        })
    };
    match native_first {
        Ok(n) => out.native_rows = Some(n),
        Err(e) => out.native_error = Some(format!("{e:#}")),
    }
    let mut ours: Option<Vec<Row>> = None;
    let sql_first = if count_only {
        post(server.http, "/druid/v2/sql", &sql)
            .and_then(|(_, b)| count_rows(&b, false))
            .map(|n| vec![Row::new(); n])
    } else {
        post_json(server.http, "/druid/v2/sql", &sql_objects)
            .and_then(|(_, v)| sql_rows(&v, &q.time_columns))
    };
    match sql_first {
        Ok(rows) => {
            out.sql_rows = Some(rows.len());
            ours = Some(rows);
        }
        Err(e) => out.sql_error = Some(format!("{e:#}")),
    }
    if let (Some(rows), Some((count, peer_rows))) = (&ours, duckdb) {
        let stand_in;
        let basalt: &[Row] = if count_only {
            stand_in = vec![Row::new(); rows.len()];
            &stand_in
        } else {
            rows
        };
        out.vs_duckdb = Some(agreement(
            &q.check,
            &q.columns,
            "duckdb",
            basalt,
            *count,
            peer_rows.as_deref(),
        ));
    }
    drop(ours);
    for _ in 0..runs {
        if out.native_error.is_none() {
            match post(server.http, "/druid/v2", &native) {
                Ok((ms, _)) => out.native_ms.push(ms),
                Err(e) => out.native_error = Some(format!("{e:#}")),
            }
        }
        if out.sql_error.is_none() {
            match post(server.http, "/druid/v2/sql", &sql) {
                Ok((ms, _)) => out.sql_ms.push(ms),
                Err(e) => out.sql_error = Some(format!("{e:#}")),
            }
        }
    }
    out.native_median_ms = median(&out.native_ms);
    out.sql_median_ms = median(&out.sql_ms);
    out.overhead_pct = out
        .native_median_ms
        .zip(out.sql_median_ms)
        .map(|(n, s)| (s / n - 1.0) * 100.0);
    out
}

/// The per-query results as a Markdown table.
pub fn markdown_table(rows: &[(String, SqlVsNative)]) -> String {
    let ms = |m: Option<f64>, e: &Option<String>| match (m, e) {
        (Some(m), _) if m >= 100.0 => format!("{m:.0}"),
        (Some(m), _) => format!("{m:.1}"),
        (None, Some(_)) => "error".to_owned(),
        (None, None) => "-".to_owned(),
    };
    let mut out = String::from(
        "| query | native ms | SQL ms | SQL overhead | rows | SQL = DuckDB |\n|---|--:|--:|--:|--:|---|\n",
    );
    for (name, r) in rows {
        let agree = match (&r.vs_duckdb, &r.sql_error) {
            (_, Some(e)) => format!("SQL failed: {}", e.chars().take(120).collect::<String>()),
            (Some(a), None) if a.ok => format!("yes ({})", a.compared),
            (Some(a), None) => format!("**no**: {}", a.notes.first().map_or("", String::as_str)),
            (None, None) => "not compared".to_owned(),
        };
        out.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {agree} |\n",
            ms(r.native_median_ms, &r.native_error),
            ms(r.sql_median_ms, &r.sql_error),
            r.overhead_pct
                .map_or("-".to_owned(), |p| format!("{p:+.1} %")),
            r.sql_rows.map_or("-".to_owned(), |n| n.to_string()),
        ));
    }
    out
}
