//! `push`: sustained realtime push rate, with the WAL fsynced before every acknowledgement.
//!
//! Rows are TSBS devops cpu-only rows ([`crate::tsbs`]: 10 tags, 10 cpu fields) stamped around
//! the current time, pushed into the TSBS datasource schema (no rollup) by N client threads for
//! a fixed time. Modes, each on a fresh data directory:
//!
//! - `engine`: in-process `Engine::push_ndjson` (no network): the engine's own ceiling;
//! - `grpc-json`: `IngestService.Push` over loopback, one request of JSON row texts per push;
//! - `grpc-arrow`: the same with the rows as one Arrow IPC stream per push;
//! - `grpc-ndjson`: the same with the rows as one NDJSON text per push (the `ndjson` field);
//! - `http`: `POST /v1/ingest/{datasource}` with an NDJSON body (one connection per push).
//!
//! The server modes start the real `basalt serve` (release build, `--fsync always`). Reported
//! per mode: rows/s, MB/s of JSON (the NDJSON text of the rows, also for Arrow, so modes compare),
//! per-push latency p50/p99, server peak RSS (`VmHWM`), and push-to-queryable latency: once a
//! second a marker row with a unique host name is pushed and a native query polled until it
//! counts it (measured from the acknowledgement; the brief promises ≤ 1 s).
//!
//! **Per core.** Clients and server share the machine's cores, so rows/s alone does not say
//! what one core of the server does. Each mode also reads the CPU time (utime + stime from
//! `/proc/<pid>/stat`) of the server process — for `engine`, of this process, which then runs
//! the engine and its callers — at the start and the end of the timed window, and reports
//! `rows_per_server_cpu_second` = rows accepted in the window / server CPU seconds in the
//! window: the rows one fully busy core of the server ingests per second. The client side's
//! CPU seconds (this process, in server modes) are reported too.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch};
use basalt_proto::v1::ingest_service_client::IngestServiceClient;
use basalt_proto::v1::push_request::Rows;
use basalt_proto::v1::{JsonRows, PushRequest};
use serde_json::{Value, json};

use crate::build_segments::tsbs_data_schema_json;
use crate::queries::sql_http::BasaltServer;
use crate::server_load::http;
use crate::tsbs::{FIELD_NAMES, TAG_NAMES, TIME_COLUMN, TsbsConfig, tsbs_batches};

/// The datasource pushed into.
pub const DATASOURCE: &str = "push";

/// How rows travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PushMode {
    /// In-process `Engine::push_ndjson`.
    Engine,
    /// gRPC `IngestService.Push`, JSON row texts.
    GrpcJson,
    /// gRPC `IngestService.Push`, Arrow IPC.
    GrpcArrow,
    /// gRPC `IngestService.Push`, one NDJSON text.
    GrpcNdjson,
    /// HTTP `POST /v1/ingest/{datasource}`, NDJSON.
    Http,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// The `basalt` binary (server modes).
    pub basalt: PathBuf,
    /// Client threads.
    pub clients: usize,
    /// Seconds per mode.
    pub seconds: u64,
    /// Rows per push (rounded down to whole TSBS timestamps, at least one).
    pub rows_per_push: usize,
    /// TSBS hosts (rows per timestamp).
    pub hosts: u32,
    /// Modes to run, in order.
    pub modes: Vec<PushMode>,
}

/// One push, pre-encoded in every form.
#[derive(Debug)]
struct Batch {
    rows: usize,
    /// NDJSON text (HTTP body, engine push).
    ndjson: Vec<u8>,
    /// One JSON text per row (gRPC JSON).
    texts: Vec<String>,
    /// Arrow IPC stream (gRPC Arrow).
    ipc: Vec<u8>,
}

/// Pre-generated pushes, cycled by the clients (the schema has no rollup, so repeated rows are
/// stored like new ones).
fn make_batches(opts: &PushOptions, now_ms: i64) -> anyhow::Result<Vec<Batch>> {
    let hosts = opts.hosts.max(1);
    // ~8 minutes of data before now: one or two hourly sinks, nothing "too late".
    let start = now_ms - 8 * 60_000;
    let mut cfg = TsbsConfig::new(hosts, 1, start, 1);
    cfg.end_ms = now_ms;
    cfg.batch_rows = opts.rows_per_push.max(hosts as usize);
    cfg.validate()?;
    let mut out = Vec::new();
    for batch in tsbs_batches(&cfg) {
        out.push(encode_batch(&batch)?);
    }
    if out.is_empty() {
        bail!("no TSBS rows generated");
    }
    Ok(out)
}

fn encode_batch(batch: &RecordBatch) -> anyhow::Result<Batch> {
    use std::fmt::Write as _;
    let schema = batch.schema();
    let col = |name: &str| -> anyhow::Result<&Arc<dyn Array>> {
        let i = schema.index_of(name)?;
        Ok(batch.column(i))
    };
    let time = col(TIME_COLUMN)?.as_primitive::<TimestampMillisecondType>();
    let tags = TAG_NAMES
        .iter()
        .map(|t| Ok(col(t)?.as_string::<i32>()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let fields = FIELD_NAMES
        .iter()
        .map(|f| Ok(col(f)?.as_primitive::<Int64Type>()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut texts = Vec::with_capacity(batch.num_rows());
    let mut ndjson = Vec::new();
    for r in 0..batch.num_rows() {
        let mut s = String::with_capacity(400);
        let _ = write!(s, "{{\"{TIME_COLUMN}\":{}", time.value(r));
        for (name, a) in TAG_NAMES.iter().zip(&tags) {
            let _ = write!(s, ",\"{name}\":{}", Value::from(a.value(r)));
        }
        for (name, a) in FIELD_NAMES.iter().zip(&fields) {
            let _ = write!(s, ",\"{name}\":{}", a.value(r));
        }
        s.push('}');
        ndjson.extend_from_slice(s.as_bytes());
        ndjson.push(b'\n');
        texts.push(s);
    }
    let mut ipc = Vec::new();
    {
        let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut ipc, &schema)?;
        w.write(batch)?;
        w.finish()?;
    }
    Ok(Batch {
        rows: batch.num_rows(),
        ndjson,
        texts,
        ipc,
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn percentile_ms(sorted_us: &[u64], p: f64) -> Option<f64> {
    if sorted_us.is_empty() {
        return None;
    }
    let i = ((sorted_us.len() - 1) as f64 * p).round() as usize;
    Some(sorted_us[i.min(sorted_us.len() - 1)] as f64 / 1000.0)
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// User + system CPU seconds used so far by process `pid` (`None`: this process), from
/// `/proc/<pid>/stat` (fields 14 and 15, counted after the parenthesized command name, which may
/// hold spaces).
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let rest = text.get(text.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / CLOCK_TICKS_PER_SECOND)
}

/// The pid of this process's child started with `--data-dir <dir>` (the `basalt serve` of a
/// mode), from `/proc/self/task/*/children` and the children's command lines.
fn server_pid(dir: &std::path::Path) -> Option<u32> {
    let mut want = b"--data-dir\0".to_vec();
    want.extend_from_slice(dir.as_os_str().as_encoded_bytes());
    want.push(0);
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    for task in tasks.flatten() {
        let Ok(children) = std::fs::read_to_string(task.path().join("children")) else {
            continue;
        };
        for pid in children
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
        {
            let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            if cmd.windows(want.len()).any(|w| w == want.as_slice()) {
                return Some(pid);
            }
        }
    }
    None
}

/// CPU seconds of the server and of this process over the timed window.
#[derive(Debug, Clone, Copy)]
struct CpuWindow {
    server: Option<f64>,
    this: Option<f64>,
}

impl CpuWindow {
    /// Readings now; `server` is the server's pid (`None` in engine mode: this process).
    fn read(server: Option<u32>) -> CpuWindow {
        CpuWindow {
            server: server.map_or_else(|| cpu_seconds(None), |p| cpu_seconds(Some(p))),
            this: cpu_seconds(None),
        }
    }

    /// The CPU seconds used from `self` to `end`: (server, clients). In engine mode the
    /// server is this process and there is no separate client figure.
    fn until(self, end: CpuWindow, engine_mode: bool) -> (Option<f64>, Option<f64>) {
        let d = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
        let server = d(self.server, end.server);
        let clients = if engine_mode {
            None
        } else {
            d(self.this, end.this)
        };
        (server, clients)
    }
}

/// What one client did.
#[derive(Debug, Default)]
struct ClientStats {
    rows: u64,
    json_bytes: u64,
    push_us: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

impl ClientStats {
    fn error(&mut self, e: String) {
        self.errors += 1;
        self.first_error.get_or_insert(e);
    }
}

/// Pushes one batch by `mode`; returns accepted rows.
trait Pusher {
    fn push(&mut self, batch: &Batch) -> Result<u64, String>;
}

struct EnginePusher(Arc<basalt_engine::engine::Engine>);

impl Pusher for EnginePusher {
    fn push(&mut self, batch: &Batch) -> Result<u64, String> {
        self.0
            .push_ndjson(DATASOURCE, &batch.ndjson)
            .map(|r| r.accepted)
            .map_err(|e| e.to_string())
    }
}

struct HttpPusher(std::net::SocketAddr);

impl Pusher for HttpPusher {
    fn push(&mut self, batch: &Batch) -> Result<u64, String> {
        let (status, body) = http(
            self.0,
            "POST",
            &format!("/v1/ingest/{DATASOURCE}"),
            &batch.ndjson,
        )
        .map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
        }
        let v: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        Ok(v["accepted"].as_u64().unwrap_or(0))
    }
}

struct GrpcPusher {
    runtime: tokio::runtime::Runtime,
    client: IngestServiceClient<tonic::transport::Channel>,
    mode: PushMode,
}

impl GrpcPusher {
    fn connect(addr: std::net::SocketAddr, mode: PushMode) -> anyhow::Result<GrpcPusher> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = runtime
            .block_on(IngestServiceClient::connect(format!("http://{addr}")))
            .context("connecting to the gRPC port")?
            .max_encoding_message_size(usize::MAX);
        Ok(GrpcPusher {
            runtime,
            client,
            mode,
        })
    }
}

impl Pusher for GrpcPusher {
    fn push(&mut self, batch: &Batch) -> Result<u64, String> {
        let rows = match self.mode {
            PushMode::GrpcArrow => Rows::ArrowIpc(batch.ipc.clone().into()),
            PushMode::GrpcNdjson => Rows::Ndjson(batch.ndjson.clone().into()),
            _ => Rows::Json(JsonRows {
                rows: batch.texts.clone(),
            }),
        };
        let req = PushRequest {
            datasource: DATASOURCE.into(),
            rows: Some(rows),
        };
        let client = &mut self.client;
        self.runtime
            .block_on(client.push(tokio_stream::iter(vec![req])))
            .map(|r| r.into_inner().accepted)
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
    }
}

fn run_client(
    mut pusher: Box<dyn Pusher + Send>,
    batches: &[Batch],
    first: usize,
    stop: &AtomicBool,
) -> ClientStats {
    let mut s = ClientStats::default();
    let mut i = first;
    while !stop.load(Ordering::Relaxed) {
        let b = &batches[i % batches.len()];
        i += 1;
        let t = Instant::now();
        match pusher.push(b) {
            Ok(accepted) => {
                s.push_us.push(t.elapsed().as_micros() as u64);
                s.rows += accepted;
                s.json_bytes += b.ndjson.len() as u64;
                if accepted != b.rows as u64 {
                    s.error(format!("{accepted} of {} rows accepted", b.rows));
                }
            }
            Err(e) => {
                s.error(e);
                // Back-pressure is retryable: do not spin.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    s
}

/// Once a second: push a marker row, poll until a query counts it. Returns milliseconds from
/// the acknowledgement to the first answer that counts it.
fn run_markers(
    mut pusher: Box<dyn Pusher + Send>,
    query: &dyn Fn(&str) -> Result<u64, String>,
    stop: &AtomicBool,
) -> (Vec<u64>, Option<String>) {
    let mut out = Vec::new();
    let mut err = None;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(1000));
        n += 1;
        let host = format!("marker_{n}");
        let row = json!({TIME_COLUMN: now_ms(), "hostname": host, "usage_user": 1}).to_string();
        let mut batch = Batch {
            rows: 1,
            ndjson: format!("{row}\n").into_bytes(),
            texts: vec![row],
            ipc: Vec::new(),
        };
        if let Ok(b) = marker_ipc(&host) {
            batch.ipc = b;
        }
        if let Err(e) = pusher.push(&batch) {
            err.get_or_insert(format!("marker push: {e}"));
            continue;
        }
        let acked = Instant::now();
        loop {
            match query(&host) {
                Ok(c) if c > 0 => {
                    out.push(acked.elapsed().as_micros() as u64);
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    err.get_or_insert(format!("marker query: {e}"));
                    break;
                }
            }
            if acked.elapsed() > Duration::from_secs(30) {
                err.get_or_insert(format!("marker {host} not visible after 30 s"));
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    (out, err)
}

fn marker_ipc(host: &str) -> anyhow::Result<Vec<u8>> {
    use arrow_array::{ArrayRef, Int64Array, StringArray, TimestampMillisecondArray};
    let batch = RecordBatch::try_from_iter(vec![
        (
            TIME_COLUMN,
            Arc::new(TimestampMillisecondArray::from(vec![now_ms()])) as ArrayRef,
        ),
        (
            "hostname",
            Arc::new(StringArray::from(vec![host])) as ArrayRef,
        ),
        (
            "usage_user",
            Arc::new(Int64Array::from(vec![1i64])) as ArrayRef,
        ),
    ])?;
    let mut ipc = Vec::new();
    let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut ipc, &batch.schema())?;
    w.write(&batch)?;
    w.finish()?;
    drop(w);
    Ok(ipc)
}

fn count_query(host: &str) -> String {
    json!({"queryType": "timeseries", "dataSource": DATASOURCE, "intervals": ["2000/2100"],
        "granularity": "all", "filter": {"type": "selector", "dimension": "hostname", "value": host},
        "aggregations": [{"type": "count", "name": "n"}]})
    .to_string()
}

fn count_of(answer: &Value) -> u64 {
    answer[0]["result"]["n"].as_u64().unwrap_or(0)
}

fn spec() -> String {
    let mut spec = tsbs_data_schema_json();
    spec["dataSource"] = json!(DATASOURCE);
    spec.to_string()
}

/// Counts the rows of a host (the marker check).
type CountQuery = Box<dyn Fn(&str) -> Result<u64, String> + Send + Sync>;

/// Run one mode; returns its JSON summary.
fn run_mode(
    opts: &PushOptions,
    mode: PushMode,
    batches: &Arc<Vec<Batch>>,
) -> anyhow::Result<Value> {
    let dir =
        std::env::temp_dir().join(format!("basalt-push-bench-{}-{mode:?}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut server = None;
    let mut engine = None;
    let make: Box<dyn Fn() -> anyhow::Result<Box<dyn Pusher + Send>>> = match mode {
        PushMode::Engine => {
            use basalt_engine::engine::{Engine, EngineConfig};
            let e = Arc::new(Engine::open_with(&dir, EngineConfig::default())?);
            e.create_datasource(&spec())?;
            engine = Some(e.clone());
            Box::new(move || Ok(Box::new(EnginePusher(e.clone())) as Box<dyn Pusher + Send>))
        }
        _ => {
            let s = BasaltServer::spawn_with(
                &opts.basalt,
                &dir,
                &["--fsync", "always", "--log-level", "warn"],
            )?;
            let (status, body) = http(s.http, "POST", "/v1/datasources", spec().as_bytes())?;
            if !(200..300).contains(&status) {
                bail!(
                    "creating the datasource: HTTP {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
            let (h, g) = (s.http, s.grpc);
            server = Some(s);
            Box::new(move || {
                Ok(match mode {
                    PushMode::Http => Box::new(HttpPusher(h)) as Box<dyn Pusher + Send>,
                    _ => Box::new(GrpcPusher::connect(g, mode)?),
                })
            })
        }
    };
    let query: CountQuery = match (&engine, &server) {
        (Some(e), _) => {
            let e = e.clone();
            Box::new(move |host: &str| {
                e.query_json(&count_query(host))
                    .map(|v| count_of(&v))
                    .map_err(|e| e.to_string())
            })
        }
        (None, Some(s)) => {
            let addr = s.http;
            Box::new(move |host: &str| {
                let (status, body) = http(addr, "POST", "/druid/v2", count_query(host).as_bytes())
                    .map_err(|e| e.to_string())?;
                if status != 200 {
                    return Err(format!("HTTP {status}"));
                }
                let v: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
                Ok(count_of(&v))
            })
        }
        _ => bail!("no engine or server"),
    };
    let pushers = (0..opts.clients.max(1))
        .map(|_| make())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let marker_pusher = make()?;
    let pid = match &server {
        Some(_) => Some(server_pid(&dir).context("finding the pid of basalt serve")?),
        None => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_start = CpuWindow::read(pid);
    let started = Instant::now();
    let (stats, markers) = std::thread::scope(|scope| {
        let handles: Vec<_> = pushers
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let (stop, batches) = (&stop, batches.clone());
                let first = i * batches.len() / opts.clients.max(1);
                scope.spawn(move || run_client(p, &batches, first, stop))
            })
            .collect();
        let markers = scope.spawn(|| run_markers(marker_pusher, &*query, &stop));
        std::thread::sleep(Duration::from_secs(opts.seconds));
        stop.store(true, Ordering::Relaxed);
        let stats: Vec<ClientStats> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect();
        let markers = markers.join().unwrap_or_default();
        (stats, markers)
    });
    let elapsed = started.elapsed().as_secs_f64();
    let (server_cpu, client_cpu) = cpu_start.until(CpuWindow::read(pid), engine.is_some());
    let peak_rss = match (&server, &engine) {
        (Some(s), _) => s.peak_rss_bytes(),
        _ => crate::report::peak_rss_bytes(),
    };
    let mut push_us: Vec<u64> = stats.iter().flat_map(|s| s.push_us.clone()).collect();
    push_us.sort_unstable();
    let rows: u64 = stats.iter().map(|s| s.rows).sum();
    let json_bytes: u64 = stats.iter().map(|s| s.json_bytes).sum();
    let errors: u64 = stats.iter().map(|s| s.errors).sum();
    let first_error = stats
        .iter()
        .find_map(|s| s.first_error.clone())
        .or(markers.1.clone());
    let mut visible = markers.0.clone();
    visible.sort_unstable();
    drop(server);
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
    let per_cpu = server_cpu.filter(|c| *c > 0.0).map(|c| rows as f64 / c);
    let result = json!({
        "mode": mode,
        "clients": opts.clients,
        "seconds": elapsed,
        "rows": rows,
        "rows_per_second": rows as f64 / elapsed,
        "server_cpu_seconds": server_cpu,
        "rows_per_server_cpu_second": per_cpu,
        "client_cpu_seconds": client_cpu,
        "json_mb_per_second": json_bytes as f64 / elapsed / 1e6,
        "pushes": push_us.len(),
        "push_p50_ms": percentile_ms(&push_us, 0.5),
        "push_p99_ms": percentile_ms(&push_us, 0.99),
        "errors": errors,
        "first_error": first_error,
        "peak_rss_bytes": peak_rss,
        "visible_after_ack_p50_ms": percentile_ms(&visible, 0.5),
        "visible_after_ack_max_ms": percentile_ms(&visible, 1.0),
        "markers": visible.len(),
    });
    println!(
        "{:<10} {:>9.0} rows/s {:>9.0} rows/server-CPU-s ({:.1} server CPU-s, {:.1} client CPU-s) {:>7.1} MB/s JSON  push p50 {:>7.1} ms p99 {:>7.1} ms  rss {:>6} MiB  visible p50 {:>6.1} ms max {:>6.1} ms  errors {}",
        format!("{mode:?}"),
        rows as f64 / elapsed,
        per_cpu.unwrap_or(f64::NAN),
        server_cpu.unwrap_or(f64::NAN),
        client_cpu.unwrap_or(f64::NAN),
        json_bytes as f64 / elapsed / 1e6,
        percentile_ms(&push_us, 0.5).unwrap_or(f64::NAN),
        percentile_ms(&push_us, 0.99).unwrap_or(f64::NAN),
        peak_rss.map_or(0, |b| b >> 20),
        percentile_ms(&visible, 0.5).unwrap_or(f64::NAN),
        percentile_ms(&visible, 1.0).unwrap_or(f64::NAN),
        errors,
    );
    Ok(result)
}

/// Run every requested mode; returns the JSON result.
pub fn run(opts: &PushOptions) -> anyhow::Result<Value> {
    let batches = Arc::new(make_batches(opts, now_ms())?);
    let rows: usize = batches.iter().map(|b| b.rows).sum();
    let bytes: usize = batches.iter().map(|b| b.ndjson.len()).sum();
    println!(
        "push: {} clients, {} s per mode, {} rows per push, {} distinct rows ({:.0} bytes of JSON per row), fsync always",
        opts.clients,
        opts.seconds,
        batches[0].rows,
        rows,
        bytes as f64 / rows.max(1) as f64
    );
    let mut results = Vec::new();
    for &mode in &opts.modes {
        results.push(run_mode(opts, mode, &batches)?);
    }
    Ok(json!({
        "dataset": "tsbs-devops-cpu-only",
        "clients": opts.clients,
        "seconds_per_mode": opts.seconds,
        "rows_per_push": batches[0].rows,
        "json_bytes_per_row": bytes as f64 / rows.max(1) as f64,
        "fsync": "always",
        "modes": results,
    }))
}
