//! Prometheus metrics: every series name in one place, the recorder, and the catalog gauges.
//!
//! Counters and histograms are recorded through the `metrics` facade (`metrics::counter!(NAME, …)`)
//! anywhere in the server; [`install_metrics`] installs the Prometheus recorder once per process
//! and `GET /metrics` renders it. Catalog gauges (segments, bytes, rows per datasource) are not
//! kept up to date on every publish: [`refresh_catalog_gauges`] recomputes them on each scrape,
//! and [`refresh_realtime_metrics`] copies realtime ingestion's counters and gauges.

use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};

use basalt_engine::engine::Engine;
use basalt_engine::realtime::RealtimeStats;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// HTTP requests served, labels `endpoint` (route template), `method`, `status`.
pub const HTTP_REQUESTS_TOTAL: &str = "basalt_http_requests_total";
/// HTTP request latency in seconds (histogram), labels `endpoint`, `method`.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "basalt_http_request_duration_seconds";
/// Result rows returned by queries, label `kind` (`native`, `sql`).
pub const QUERY_ROWS_TOTAL: &str = "basalt_query_rows_total";
/// Queries that failed, labels `kind` and `status` (HTTP status of the error).
pub const QUERY_ERRORS_TOTAL: &str = "basalt_query_errors_total";
/// Rows accepted by push ingestion, label `datasource`.
pub const ROWS_INGESTED_TOTAL: &str = "basalt_rows_ingested_total";
/// Rows rejected by push ingestion, labels `datasource`, `reason`.
pub const ROWS_REJECTED_TOTAL: &str = "basalt_rows_rejected_total";
/// Visible (queryable) segments, label `datasource`; recomputed on scrape.
pub const SEGMENTS: &str = "basalt_segments";
/// Bytes of visible segment files, label `datasource`; recomputed on scrape.
pub const SEGMENT_BYTES: &str = "basalt_segment_bytes";
/// Rows in visible segments, label `datasource`; recomputed on scrape.
pub const SEGMENT_ROWS: &str = "basalt_segment_rows";

/// Realtime ingestion's gauges and counters, from [`Engine::realtime_stats`] on each scrape:
/// (series name, help, whether it is a counter, its value in the stats).
type RealtimeSeries = (&'static str, &'static str, bool, fn(&RealtimeStats) -> u64);

/// Realtime ingestion series (no labels; rows accepted and rejected per datasource are
/// [`ROWS_INGESTED_TOTAL`] and [`ROWS_REJECTED_TOTAL`]).
const REALTIME_SERIES: &[RealtimeSeries] = &[
    (
        "basalt_realtime_rows_in_memory",
        "Pending realtime rows not yet frozen into pieces",
        false,
        |s| s.rows_in_memory,
    ),
    (
        "basalt_realtime_bytes_in_memory",
        "Accounted bytes of pending realtime rows and pushes in progress",
        false,
        |s| s.bytes_in_memory,
    ),
    (
        "basalt_realtime_peak_bytes_in_memory",
        "Highest basalt_realtime_bytes_in_memory since start",
        false,
        |s| s.peak_bytes_in_memory,
    ),
    (
        "basalt_realtime_build_bytes_in_memory",
        "Estimated bytes of the background merge or handoff in progress",
        false,
        |s| s.build_bytes_in_memory,
    ),
    (
        "basalt_realtime_sinks",
        "Live realtime sinks (datasource intervals taking rows)",
        false,
        |s| s.sinks,
    ),
    (
        "basalt_realtime_pieces",
        "Frozen realtime pieces on disk",
        false,
        |s| s.pieces,
    ),
    (
        "basalt_realtime_persists_total",
        "Freezes of pending rows into pieces",
        true,
        |s| s.persists,
    ),
    (
        "basalt_realtime_merges_total",
        "Merges of realtime pieces",
        true,
        |s| s.merges,
    ),
    (
        "basalt_realtime_rows_frozen_total",
        "Rows written into realtime pieces by freezes",
        true,
        |s| s.rows_frozen,
    ),
    (
        "basalt_realtime_rows_merged_total",
        "Rows written again by merges of realtime pieces",
        true,
        |s| s.rows_merged,
    ),
    (
        "basalt_realtime_handoffs_total",
        "Realtime handoffs published",
        true,
        |s| s.handoffs,
    ),
    (
        "basalt_realtime_segments_published_total",
        "Segments published by realtime handoffs",
        true,
        |s| s.segments_published,
    ),
    (
        "basalt_realtime_pushes_throttled_total",
        "Pushes refused for the realtime memory budget",
        true,
        |s| s.pushes_throttled,
    ),
    (
        "basalt_realtime_pushes_rejected_total",
        "Whole pushes rejected for too many parse errors",
        true,
        |s| s.pushes_rejected,
    ),
    (
        "basalt_realtime_rows_replayed_total",
        "Rows replayed from the WAL at start",
        true,
        |s| s.rows_replayed,
    ),
    (
        "basalt_realtime_wal_records_total",
        "WAL records appended since start",
        true,
        |s| s.wal_records,
    ),
    (
        "basalt_realtime_wal_truncated_bytes",
        "Bytes cut from a torn WAL tail at start",
        false,
        |s| s.wal_truncated_bytes,
    ),
    (
        "basalt_realtime_background_errors_total",
        "Errors in realtime background work (freeze, merge, handoff)",
        true,
        |s| s.background_errors,
    ),
];

/// Latency histogram buckets (seconds): 0.5 ms … 60 s.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Datasources whose gauges were set by the last refresh (to zero them once they are dropped).
static GAUGED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Install the Prometheus recorder as the process-wide `metrics` recorder (once; later calls
/// return the same handle) and return the handle that renders the exposition text.
pub fn install_metrics() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            // The bucket list is a non-empty constant, so this cannot fail; fall back to
            // summaries rather than panic if it ever did.
            let builder = match builder.set_buckets(&LATENCY_BUCKETS) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "latency buckets rejected; using summaries");
                    PrometheusBuilder::new()
                }
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if let Err(e) = metrics::set_global_recorder(recorder) {
                tracing::warn!(error = %e, "a metrics recorder was already installed");
            }
            describe();
            handle
        })
        .clone()
}

/// Register help text for every series.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS_TOTAL,
        "HTTP requests by endpoint, method and status"
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "HTTP request latency"
    );
    describe_counter!(QUERY_ROWS_TOTAL, "Result rows returned by queries");
    describe_counter!(QUERY_ERRORS_TOTAL, "Queries that failed, by HTTP status");
    describe_counter!(ROWS_INGESTED_TOTAL, "Rows accepted by push ingestion");
    describe_counter!(
        ROWS_REJECTED_TOTAL,
        "Rows rejected by push ingestion, by reason"
    );
    describe_gauge!(SEGMENTS, "Visible segments per datasource");
    describe_gauge!(
        SEGMENT_BYTES,
        metrics::Unit::Bytes,
        "Bytes of visible segment files per datasource"
    );
    describe_gauge!(SEGMENT_ROWS, "Rows in visible segments per datasource");
    for &(name, help, counter, _) in REALTIME_SERIES {
        if counter {
            describe_counter!(name, help);
        } else {
            describe_gauge!(name, help);
        }
    }
}

/// Set the realtime ingestion series from the engine's current stats.
pub fn refresh_realtime_metrics(engine: &Engine) {
    let stats = engine.realtime_stats();
    for &(name, _, counter, value) in REALTIME_SERIES {
        let v = value(&stats);
        if counter {
            metrics::counter!(name).absolute(v);
        } else {
            metrics::gauge!(name).set(v as f64);
        }
    }
}

/// Recompute the per-datasource segment gauges from the current timeline.
pub fn refresh_catalog_gauges(engine: &Engine) {
    let timeline = engine.data_dir().timeline();
    let current: BTreeSet<String> = timeline.datasources().into_iter().collect();
    let mut gauged = GAUGED.lock().unwrap_or_else(|p| p.into_inner());
    for gone in gauged.difference(&current) {
        for name in [SEGMENTS, SEGMENT_BYTES, SEGMENT_ROWS] {
            metrics::gauge!(name, "datasource" => gone.clone()).set(0.0);
        }
    }
    *gauged = current.clone();
    drop(gauged);
    for ds in current {
        let segments = timeline.segments(&ds);
        let bytes: u64 = segments.iter().map(|s| s.size_bytes).sum();
        let rows: u64 = segments.iter().map(|s| s.num_rows).sum();
        metrics::gauge!(SEGMENTS, "datasource" => ds.clone()).set(segments.len() as f64);
        metrics::gauge!(SEGMENT_BYTES, "datasource" => ds.clone()).set(bytes as f64);
        metrics::gauge!(SEGMENT_ROWS, "datasource" => ds).set(rows as f64);
    }
}
