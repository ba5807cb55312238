//! Realtime ingestion: durable pushes, rows queryable at once, handoff into immutable segments.
//!
//! Data flow (see docs/ARCHITECTURE.md, "Realtime ingestion"):
//!
//! 1. **Push** ([`crate::engine::Engine::push_json_rows`], `push_ndjson`, `push_arrow`): every
//!    row is parsed and validated against the datasource schema; bad rows are rejected with a
//!    reason (counted per reason). If more than `max_parse_exceptions` rows of one push fail to
//!    parse, the whole push is rejected (`InvalidArgument`) and nothing of it is stored. Rows
//!    whose segment interval ended more than `late_data_max_lateness` ago are rejected as
//!    `too late` (these are not parse errors).
//! 2. **WAL** ([`wal`]): the accepted rows of a push become one checksummed record, grouped by
//!    the sink they go to. The push returns once the record is durable (`FsyncPolicy::Always`,
//!    group commit) or at once (`FsyncPolicy::Interval`, a background fsync).
//! 3. **Incremental index** ([`index`]): rows are appended to their *sink* (one per datasource
//!    and segment interval). A query freezes pending rows into a rolled-up piece first, so an
//!    acknowledged row is visible to the next query.
//! 4. **Persist** ([`persist`]): a background thread freezes pending rows when a sink passes
//!    `max_rows_in_memory`, the node passes `max_bytes_in_memory`, or `intermediate_persist_period`
//!    passes; pieces are memory-mapped files under `<data>/realtime/`, so memory is released.
//!    Many pieces of a sink are merged into one, on a second thread that also runs handoffs (so
//!    a build never holds up freezes). Pushes beyond `memory_budget_bytes` of pending rows fail
//!    with the retryable [`Error::ResourcesExhausted`].
//! 5. **Handoff** ([`handoff`]): once `interval end + window_period` (and `sink creation +
//!    window_period`, for late sinks) has passed on the clock, or the sink holds
//!    `max_rows_per_sink` rows, the sink's pieces are merged into final segments and published
//!    atomically; then the sink is dropped and WAL files no live sink needs are deleted.
//!
//! **Exactly once, for queries and across crashes.** Every sink has a fixed identity
//! ([`index::SinkKey`]: datasource, interval, version, first partition), chosen when it is
//! created and written into every WAL record with its rows. Its handoff publishes segments with
//! that version and partitions from that first one, so the catalog row of the first segment (the
//! *marker*) is committed in the same transaction as the handed-off data. Replay skips the rows
//! of every sink whose marker is in the catalog — whether or not the WAL was cleaned up before a
//! crash. A query takes the realtime pieces first, then the timeline snapshot, and skips the
//! pieces of any sink whose marker is in that snapshot: a sink is removed only after its publish
//! swapped the timeline, so each row is read from exactly one place.

pub mod handoff;
pub mod index;
pub mod memory;
pub mod persist;
pub mod wal;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow_array::RecordBatch;
use parking_lot::{Condvar, Mutex, RwLock};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::input::{ArrowRows, ColumnView, InputValue, JsonRowReader};
use crate::query::exec::SegmentTask;
use crate::schema::DataSchema;
use crate::segment::{SegmentId, SegmentRef, Version, writer};
use crate::storage::DataDir;
use crate::time::Interval;
use crate::timeline::Timeline;

use index::{Reject, Sink, SinkKey};
use wal::Wal;

/// Directory under the data directory holding realtime pieces (scratch: emptied on open).
pub const REALTIME_DIR: &str = "realtime";

/// When the WAL is fsynced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// Before every push is acknowledged (group commit shares one fsync among concurrent pushes).
    #[default]
    Always,
    /// By a background thread at this period; a crash may lose acknowledged rows of the last
    /// period.
    Interval(Duration),
}

/// The wall clock realtime ingestion reads (interval closing, lateness). Tests use a manual one.
#[derive(Clone, Debug, Default)]
pub struct Clock(Option<Arc<AtomicI64>>);

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(None)
    }

    /// A clock that stays at `start_ms` until moved with [`Clock::set`] or [`Clock::advance`].
    pub fn manual(start_ms: i64) -> Clock {
        Clock(Some(Arc::new(AtomicI64::new(start_ms))))
    }

    /// Now, in UTC milliseconds.
    pub fn now_ms(&self) -> i64 {
        match &self.0 {
            Some(t) => t.load(Ordering::Acquire),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        }
    }

    /// Set a manual clock (no effect on the system clock).
    pub fn set(&self, ms: i64) {
        if let Some(t) = &self.0 {
            t.store(ms, Ordering::Release);
        }
    }

    /// Move a manual clock forward (no effect on the system clock).
    pub fn advance(&self, d: Duration) {
        if let Some(t) = &self.0 {
            t.fetch_add(d.as_millis() as i64, Ordering::AcqRel);
        }
    }
}

/// Realtime ingestion settings.
#[derive(Clone, Debug)]
pub struct RealtimeConfig {
    /// When the WAL is fsynced.
    pub fsync: FsyncPolicy,
    /// Pending (not yet frozen) rows of one sink that trigger a freeze.
    pub max_rows_in_memory: u64,
    /// Pending bytes of the node that trigger freezing every sink.
    pub max_bytes_in_memory: u64,
    /// The memory bound of ingestion (see [`memory`] for how it is shared): pending rows and
    /// pushes in progress get most of it (a push that would pass their share fails with the
    /// retryable `ResourcesExhausted`), background merges and handoffs the rest.
    pub memory_budget_bytes: u64,
    /// Whether `memory_budget_bytes` bounds the whole process: its resident memory when
    /// ingestion opens (plus [`memory::UNCOUNTED_ALLOWANCE`]) is then taken off the budget
    /// first. A server sets it; an engine embedded in a larger process leaves it off.
    pub budget_covers_process: bool,
    /// Pending rows older than this are frozen.
    pub intermediate_persist_period: Duration,
    /// How long after its interval ends (or, for late rows, after it was created) a sink
    /// keeps taking rows before it is handed off.
    pub window_period: Duration,
    /// Rows whose segment interval ended longer ago than this are rejected as `too late`;
    /// `None` accepts any age.
    pub late_data_max_lateness: Option<Duration>,
    /// Parse errors a push may have; one more rejects the whole push.
    pub max_parse_exceptions: u64,
    /// Per-row errors listed in a [`PushReport`] (the counts cover all).
    pub max_reported_errors: usize,
    /// Rows per final segment at handoff (more rows give more partitions).
    pub rows_per_segment: u64,
    /// Rows (rolled up, as frozen; pending rows as pushed) at which a sink is handed off
    /// while its interval is still open, like a full segment in Druid's streaming ingestion:
    /// later rows of the interval go to a new sink, published as further partitions. Bounds
    /// what one sink holds in the WAL and in scratch pieces (otherwise an interval's rows, an
    /// hour of them at full push rate, all wait for the interval to close) and the work of
    /// each handoff.
    pub max_rows_per_sink: u64,
    /// Pieces a sink may have before they are merged into one. Queries read every piece, but
    /// a handoff rewrites them all anyway, and a sink is handed off once it holds
    /// `max_rows_per_sink` rows: a fast sink lives seconds, so merging its pieces early mostly
    /// duplicates the handoff's work. The default leaves a full sink of default-sized freezes
    /// (150 k rows into 5 M) about one merge round.
    pub max_pieces_per_sink: usize,
    /// Size at which the WAL moves on to a new file.
    pub wal_file_bytes: u64,
    /// How often the background thread looks for work.
    pub tick: Duration,
    /// The clock.
    pub clock: Clock,
    /// Testing: stop right after a handoff's publish, before the sink is dropped and the WAL
    /// cleaned (simulates a crash at that point).
    #[doc(hidden)]
    pub fail_after_publish: bool,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        RealtimeConfig {
            fsync: FsyncPolicy::Always,
            max_rows_in_memory: 150_000,
            max_bytes_in_memory: 256 << 20,
            memory_budget_bytes: 1 << 30,
            budget_covers_process: false,
            intermediate_persist_period: Duration::from_secs(1),
            window_period: Duration::from_secs(600),
            late_data_max_lateness: None,
            max_parse_exceptions: u64::MAX,
            max_reported_errors: 100,
            rows_per_segment: 5_000_000,
            max_rows_per_sink: 5_000_000,
            max_pieces_per_sink: 24,
            wal_file_bytes: 64 << 20,
            tick: Duration::from_millis(100),
            clock: Clock::system(),
            fail_after_publish: false,
        }
    }
}

impl RealtimeConfig {
    /// Check the settings are usable together.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::invalid(format!("realtime config: {m}")));
        if self.max_rows_in_memory == 0 {
            return bad("max_rows_in_memory must be at least 1");
        }
        if self.max_bytes_in_memory == 0 || self.memory_budget_bytes == 0 {
            return bad("max_bytes_in_memory and memory_budget_bytes must be positive");
        }
        if self.max_bytes_in_memory > self.memory_budget_bytes {
            return bad("max_bytes_in_memory must not exceed memory_budget_bytes");
        }
        if self.max_rows_per_sink == 0 {
            return bad("max_rows_per_sink must be at least 1");
        }
        if self.rows_per_segment == 0 {
            return bad("rows_per_segment must be at least 1");
        }
        if self.max_pieces_per_sink < 2 {
            return bad("max_pieces_per_sink must be at least 2");
        }
        if self.wal_file_bytes < 4096 {
            return bad("wal_file_bytes must be at least 4096");
        }
        if self.tick.is_zero() {
            return bad("tick must be positive");
        }
        if let FsyncPolicy::Interval(d) = self.fsync
            && d.is_zero()
        {
            return bad("an fsync interval must be positive");
        }
        Ok(())
    }
}

/// One rejected row of a push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// The row's index in the batch (for NDJSON, its 0-based line number).
    pub row: u64,
    /// Why it was rejected.
    pub reason: String,
}

/// The outcome of a push.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushReport {
    /// Rows stored (durable when the push returned, under `FsyncPolicy::Always`).
    pub accepted: u64,
    /// Rows rejected.
    pub rejected: u64,
    /// Rejected rows per reason category (`unparseable timestamp`, `wrong type`, `too late`…).
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// The first rejected rows with their full reasons.
    pub errors: Vec<RowError>,
}

/// Counters and gauges of realtime ingestion (for `/metrics`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RealtimeStats {
    /// Pending rows in memory (not yet frozen).
    pub rows_in_memory: u64,
    /// Accounted bytes of pending rows and of pushes in progress.
    pub bytes_in_memory: u64,
    /// Highest `bytes_in_memory` seen.
    pub peak_bytes_in_memory: u64,
    /// Bytes held by the background build in progress (a merge or a handoff), by estimate.
    pub build_bytes_in_memory: u64,
    /// The memory budget's split (see [`memory`]): its baseline, the bound of
    /// `bytes_in_memory` and the bound of a build.
    pub memory_plan: Option<memory::MemoryPlan>,
    /// Live sinks.
    pub sinks: u64,
    /// Frozen pieces on disk.
    pub pieces: u64,
    /// Freezes done.
    pub persists: u64,
    /// Piece merges done.
    pub merges: u64,
    /// Rows written into pieces by freezes (rows as pushed, before rollup).
    pub rows_frozen: u64,
    /// Rows written by merges (rolled-up rows of the merged pieces): over `rows_frozen`, how
    /// many times a frozen row is written again before handoff.
    pub rows_merged: u64,
    /// Handoffs published.
    pub handoffs: u64,
    /// Segments published by handoffs.
    pub segments_published: u64,
    /// Rows accepted.
    pub rows_accepted: u64,
    /// Rows rejected, all reasons.
    pub rows_rejected: u64,
    /// Rows rejected per reason.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Pushes refused for the memory budget.
    pub pushes_throttled: u64,
    /// Whole pushes rejected for too many parse errors.
    pub pushes_rejected: u64,
    /// Rows replayed from the WAL at open.
    pub rows_replayed: u64,
    /// Bytes cut from a torn WAL tail at open.
    pub wal_truncated_bytes: u64,
    /// WAL records appended since open.
    pub wal_records: u64,
    /// Errors in background work (freeze, merge, handoff).
    pub background_errors: u64,
}

/// Routing state: which sinks exist. Pushes hold it for reading while they route, log and
/// append; creating a sink and starting a handoff hold it for writing.
#[derive(Debug, Default)]
struct State {
    sinks: BTreeMap<SinkKey, Arc<Mutex<Sink>>>,
    /// The sink taking rows for each (datasource, interval start).
    active: HashMap<(String, i64), SinkKey>,
}

#[derive(Debug, Default)]
struct Counters {
    persists: AtomicU64,
    merges: AtomicU64,
    rows_frozen: AtomicU64,
    rows_merged: AtomicU64,
    handoffs: AtomicU64,
    segments_published: AtomicU64,
    rows_accepted: AtomicU64,
    rows_rejected: AtomicU64,
    pushes_throttled: AtomicU64,
    pushes_rejected: AtomicU64,
    rows_replayed: AtomicU64,
    wal_truncated_bytes: AtomicU64,
    wal_records: AtomicU64,
    background_errors: AtomicU64,
    bytes_in_memory: AtomicU64,
    peak_bytes: AtomicU64,
    build_bytes: AtomicU64,
    rows_in_memory: AtomicU64,
}

/// A cached schema: (datasource epoch checked at, spec text, parsed schema).
type SchemaEntry = ((u64, i64), String, Arc<DataSchema>);

/// Shared between the engine handle and the background threads.
#[derive(Debug)]
pub(crate) struct Shared {
    config: RealtimeConfig,
    /// The memory budget, split.
    memory: memory::MemoryPlan,
    /// Pending and in-progress bytes past which every sink is frozen: `max_bytes_in_memory`,
    /// at most half of the rows' share of the budget.
    freeze_bytes: u64,
    data: Arc<DataDir>,
    wal: Wal,
    state: RwLock<State>,
    /// Parsed schemas by datasource, with the datasource epoch they were last checked at and
    /// the spec text they were parsed from.
    schemas: Mutex<HashMap<String, SchemaEntry>>,
    counters: Counters,
    rejected_by_reason: Mutex<BTreeMap<String, u64>>,
    scratch: PathBuf,
    piece_seq: AtomicU64,
    stop: Mutex<bool>,
    wake: Condvar,
    /// Set by a simulated crash (`fail_after_publish`): no more background work.
    halted: AtomicBool,
    /// Held for a whole round of builds ([`Shared::build_due`]), which runs on the build
    /// thread and on callers of `Engine::realtime_tick`: merges and handoffs work outside the
    /// sink locks, so only one round may run at a time. Freezes do not take it.
    work: Mutex<()>,
}

/// The realtime node of one engine: owns the background threads.
#[derive(Debug)]
pub struct Realtime {
    shared: Arc<Shared>,
    /// The freezing thread and the build thread.
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// A realtime piece a query reads, with the sink it belongs to.
#[derive(Debug, Clone)]
pub(crate) struct QueryPiece {
    segment: SegmentRef,
    key: SinkKey,
    n: usize,
}

/// The rows of one push after validation, their input values laid out flat (or left in the
/// Arrow batch's columns).
struct Accepted<'a> {
    /// Input values per row (dimensions, then metrics).
    width: usize,
    /// `width` values per row of `rows`, in order (empty when `columns` is set).
    values: Vec<InputValue<'a>>,
    rows: Vec<AcceptedRow>,
    /// Set for an Arrow batch pushed column-wise: the rows' input values are the cells of
    /// their batch rows ([`AcceptedRow::row`]) in these columns.
    columns: Option<ArrowColumns<'a>>,
}

/// The columns of an Arrow batch pushed column-wise (see [`Realtime::push_arrow`]).
#[derive(Clone, Copy)]
struct ArrowColumns<'a> {
    /// One per input field, every one taken by [`writer::takes_arrow_columns`].
    views: &'a [ColumnView<'a>],
    /// Event time per batch row (meaningful for the accepted rows).
    times: &'a [i64],
}

/// One accepted row.
struct AcceptedRow {
    /// Index of the row in the push (for NDJSON, its 0-based line number).
    row: u64,
    time: i64,
    /// Its segment interval.
    interval: Interval,
}

impl<'a> Accepted<'a> {
    /// Bytes of the buffers (their capacity).
    fn buffer_bytes(&self) -> u64 {
        (self.values.capacity() * std::mem::size_of::<InputValue<'_>>()
            + self.rows.capacity() * std::mem::size_of::<AcceptedRow>()) as u64
    }

    /// The input values of accepted row `n`.
    fn row_values(&self, n: usize) -> &[InputValue<'a>] {
        &self.values[n * self.width..(n + 1) * self.width]
    }
}

/// What a push holds at most while it runs, in multiples of its input's size (the input, its
/// parsed values, its WAL record, its rows' share of a sink), for the process memory check.
const PUSH_EXPANSION: u64 = 4;

/// Bytes a background build holds (for the stats); given back when dropped.
pub(crate) struct BuildMemory<'s> {
    shared: &'s Shared,
    bytes: u64,
}

impl Drop for BuildMemory<'_> {
    fn drop(&mut self) {
        self.shared
            .counters
            .build_bytes
            .fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// Bytes a push holds against the rows' share of the budget; given back when dropped.
struct Reservation<'s> {
    shared: &'s Shared,
    bytes: u64,
}

impl<'s> Reservation<'s> {
    fn new(shared: &'s Shared) -> Reservation<'s> {
        Reservation { shared, bytes: 0 }
    }

    /// Hold `bytes` more, or fail with `ResourcesExhausted` (see [`Shared::try_reserve`]).
    fn grow(&mut self, bytes: u64) -> Result<()> {
        self.shared.try_reserve(bytes)?;
        self.bytes += bytes;
        Ok(())
    }

    /// Hand `bytes` of the reservation over to whoever now holds them (the sinks) and give
    /// the rest back; bytes past the reservation are counted too.
    fn keep(mut self, bytes: u64) {
        if bytes > self.bytes {
            self.shared.add_memory(bytes - self.bytes, 0);
        } else {
            self.shared.release_memory(self.bytes - bytes, 0);
        }
        self.bytes = 0;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.shared.release_memory(self.bytes, 0);
    }
}

/// The reject of an Arrow row that [`ArrowRows::row`] cannot read.
fn arrow_reject(e: Error) -> Reject {
    let msg = match e {
        Error::InvalidArgument(m) => m,
        other => other.to_string(),
    };
    Reject::new(
        if msg.contains("time") {
            "unparseable timestamp"
        } else {
            "wrong type"
        },
        msg,
    )
}

/// Count a rejected row in a push's report.
fn reject(report: &mut PushReport, cfg: &RealtimeConfig, row: u64, r: &Reject) {
    report.rejected += 1;
    add_reason(&mut report.rejected_by_reason, r.reason, 1);
    if report.errors.len() < cfg.max_reported_errors {
        report.errors.push(RowError {
            row,
            reason: format!("{}: {}", r.reason, r.message),
        });
    }
}

impl Realtime {
    /// Open realtime ingestion over `data`: empty the scratch directory, replay the WAL into
    /// sinks (skipping sinks already handed off), start the background threads.
    pub(crate) fn open(data: Arc<DataDir>, config: RealtimeConfig) -> Result<Realtime> {
        config.validate()?;
        let root = data.root().to_path_buf();
        let scratch = root.join(REALTIME_DIR);
        if scratch.exists() {
            std::fs::remove_dir_all(&scratch).map_err(|e| Error::io(&scratch, e))?;
        }
        std::fs::create_dir_all(&scratch).map_err(|e| Error::io(&scratch, e))?;
        let plan = if config.budget_covers_process {
            // Without a way to measure it, assume a small server's resident set.
            const UNKNOWN_BASELINE: u64 = 64 << 20;
            match memory::process_memory() {
                Some(p) => memory::MemoryPlan::for_process(config.memory_budget_bytes, p)?,
                None => memory::MemoryPlan::new(
                    config.memory_budget_bytes,
                    UNKNOWN_BASELINE + memory::UNCOUNTED_ALLOWANCE,
                )?,
            }
        } else {
            memory::MemoryPlan::new(config.memory_budget_bytes, 0)?
        };
        let freeze_bytes = config.max_bytes_in_memory.min(plan.rows_limit / 2).max(1);
        tracing::info!(
            budget = plan.budget,
            baseline = plan.baseline,
            rows = plan.rows_limit,
            builds = plan.build_limit,
            freeze_at = freeze_bytes,
            "realtime memory budget"
        );
        let (wal, recovery) = Wal::open(&root.join(wal::WAL_DIR), config.wal_file_bytes)?;
        let shared = Arc::new(Shared {
            memory: plan,
            freeze_bytes,
            config,
            data,
            wal,
            state: RwLock::new(State::default()),
            schemas: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            rejected_by_reason: Mutex::new(BTreeMap::new()),
            scratch,
            piece_seq: AtomicU64::new(0),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            halted: AtomicBool::new(false),
            work: Mutex::new(()),
        });
        shared
            .counters
            .wal_truncated_bytes
            .store(recovery.truncated_bytes, Ordering::Relaxed);
        shared.replay(recovery)?;
        // Threads already started are stopped by `Realtime::drop` if a later one fails.
        let realtime = Realtime {
            shared: shared.clone(),
            threads: Mutex::new(Vec::new()),
        };
        type Loop = fn(Arc<Shared>);
        let threads: [(&str, Loop); 2] = [
            ("basalt-realtime", Shared::run),
            ("basalt-rt-build", Shared::run_builds),
        ];
        for (name, f) in threads {
            let sh = shared.clone();
            let t = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || f(sh))
                .map_err(|e| Error::internal(format!("cannot start the thread {name}: {e}")))?;
            realtime.threads.lock().push(t);
        }
        Ok(realtime)
    }

    /// Push JSON rows (objects) to `datasource`.
    pub fn push_json_rows(&self, datasource: &str, rows: &[Value]) -> Result<PushReport> {
        let schema = self.shared.schema(datasource)?;
        // A JSON value tree takes roughly this much per field of a row.
        const VALUE_TREE_BYTES_PER_FIELD: u64 = 64;
        let input = (rows.len() * (schema.dimensions.len() + schema.metrics.len() + 1)) as u64
            * VALUE_TREE_BYTES_PER_FIELD;
        let mut rows = rows.iter().enumerate();
        self.shared
            .push(datasource, &schema, input, rows.len(), |out| {
                let (i, v) = rows.next()?;
                let res = index::parse_json_row(&schema, v).and_then(|(t, vals)| {
                    index::validate_values(&schema, &vals)?;
                    out.extend(vals);
                    Ok(t)
                });
                Some((i as u64, res))
            })
    }

    /// Push newline-delimited JSON; blank lines are skipped, a bad line rejects that row only.
    pub fn push_ndjson(&self, datasource: &str, body: &[u8]) -> Result<PushReport> {
        let schema = self.shared.schema(datasource)?;
        let reader = JsonRowReader::new(&schema);
        let hint = body.len() / 256;
        let line_error = |i: usize, r: Reject| {
            if r.reason == index::INVALID_JSON {
                r.prefixed(&format!("line {}: ", i + 1))
            } else {
                r
            }
        };
        // A body that is UTF-8 as a whole is checked once, not line by line.
        if let Ok(text) = std::str::from_utf8(body) {
            let mut lines = text
                .split('\n')
                .enumerate()
                .filter(|(_, line)| !line.bytes().all(|b| b.is_ascii_whitespace()));
            return self
                .shared
                .push(datasource, &schema, body.len() as u64, hint, |out| {
                    let (i, line) = lines.next()?;
                    let res = index::read_json_str(&reader, &schema, line, out);
                    Some((i as u64, res.map_err(|r| line_error(i, r))))
                });
        }
        let mut lines = body
            .split(|&b| b == b'\n')
            .enumerate()
            .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace));
        self.shared
            .push(datasource, &schema, body.len() as u64, hint, |out| {
                let (i, line) = lines.next()?;
                let res = index::read_json_text(&reader, &schema, line, out);
                Some((i as u64, res.map_err(|r| line_error(i, r))))
            })
    }

    /// Push rows given as JSON texts (one object each); a row that is not valid JSON is
    /// rejected as `invalid JSON` (a parse error, counted against `max_parse_exceptions`) and
    /// the rest go on. Report rows are indexes into `rows`.
    pub fn push_json_texts<S: AsRef<str>>(
        &self,
        datasource: &str,
        rows: &[S],
    ) -> Result<PushReport> {
        let schema = self.shared.schema(datasource)?;
        let reader = JsonRowReader::new(&schema);
        let input: usize = rows.iter().map(|r| r.as_ref().len() + 24).sum();
        let mut rows = rows.iter().enumerate();
        self.shared
            .push(datasource, &schema, input as u64, rows.len(), |out| {
                let (i, text) = rows.next()?;
                let res = index::read_json_str(&reader, &schema, text.as_ref(), out).map_err(|r| {
                    if r.reason == index::INVALID_JSON {
                        r.prefixed("row is not valid JSON: ")
                    } else {
                        r
                    }
                });
                Some((i as u64, res))
            })
    }

    /// Push an Arrow record batch; columns are matched to the schema's fields by name.
    ///
    /// A batch whose every column already has its field's type (see
    /// [`writer::takes_arrow_columns`]) goes column-wise: its rows' values are never read
    /// one by one into [`InputValue`]s, but encoded into the WAL record and appended to the
    /// sinks straight from the columns, with the same WAL bytes, rows and rejects as the row
    /// path. Any other batch goes row by row.
    pub fn push_arrow(&self, datasource: &str, batch: &RecordBatch) -> Result<PushReport> {
        let schema = self.shared.schema(datasource)?;
        let rows = ArrowRows::new(&schema, batch)?;
        // Whole columns: a cell is read without looking at its Arrow type. Rows whose time
        // does not read go through `ArrowRows::row`, which says why.
        let width = schema.dimensions.len() + schema.metrics.len();
        let views: Vec<ColumnView<'_>> = (0..width).map(|f| rows.field_view(f)).collect();
        let (times, bad_times) = rows.times();
        let input = batch_bytes(batch);
        if rows.len() < u32::MAX as usize && writer::takes_arrow_columns(&schema, &views) {
            // The rows whose time does not read are rejects (with `ArrowRows::row`'s reason);
            // should one read after all, the batch goes row by row.
            let mut scratch = Vec::new();
            let bad: Option<Vec<(usize, Reject)>> = bad_times
                .iter()
                .map(|&i| {
                    rows.row(i, &mut scratch)
                        .err()
                        .map(|e| (i, arrow_reject(e)))
                })
                .collect();
            if let Some(bad) = bad {
                let columns = ArrowColumns {
                    views: &views,
                    times: &times,
                };
                return self.shared.push_columns(
                    datasource,
                    &schema,
                    input,
                    rows.len(),
                    columns,
                    bad,
                );
            }
        }
        let mut bad_times = bad_times.into_iter().peekable();
        let mut slow = Vec::new();
        let mut next = 0..rows.len();
        self.shared
            .push(datasource, &schema, input, rows.len(), |out| {
                let i = next.next()?;
                let read = if bad_times.next_if_eq(&i).is_some() {
                    slow.clear();
                    rows.row(i, &mut slow).inspect(|_| out.append(&mut slow))
                } else {
                    rows.append_values(&views, i, out);
                    Ok(times[i])
                };
                let res = match read {
                    Ok(t) => {
                        let start = out.len() - width;
                        index::validate_values(&schema, &out[start..]).map(|()| t)
                    }
                    Err(e) => Err(arrow_reject(e)),
                };
                Some((i as u64, res))
            })
    }

    /// Graceful shutdown: make the WAL durable, freeze every pending row, stop the background
    /// thread. Pushes still work afterwards (their pieces are frozen by queries).
    pub fn flush(&self) -> Result<()> {
        self.stop_thread();
        self.shared.wal.sync_all()?;
        self.shared.freeze_all()
    }

    /// Current counters.
    pub fn stats(&self) -> RealtimeStats {
        self.shared.stats()
    }

    /// How the memory budget is shared (see [`memory`]).
    pub fn memory_plan(&self) -> memory::MemoryPlan {
        self.shared.memory
    }

    /// Force the background work of one tick now (freeze, merge, handoff as due).
    pub fn run_once(&self) -> Result<()> {
        self.shared.tick()
    }

    /// The realtime pieces of `datasource`, pending rows frozen first. Call before taking the
    /// timeline snapshot the query reads (see the module docs).
    pub(crate) fn query_pieces(&self, datasource: &str) -> Result<Vec<QueryPiece>> {
        self.shared.query_pieces(datasource)
    }

    /// Add the tasks of `pieces` to a query's segment tasks: pieces of sinks already published
    /// in `timeline` are skipped, and each piece is clipped to the query intervals and to what
    /// newer versions do not overshadow.
    pub(crate) fn add_tasks(
        pieces: &[QueryPiece],
        timeline: &Timeline,
        intervals: &[Interval],
        tasks: &mut Vec<SegmentTask>,
    ) {
        for p in pieces {
            let k = &p.key;
            let visible = timeline.lookup(&k.datasource, k.interval);
            if visible.iter().any(|v| v.record.id == k.marker()) {
                continue;
            }
            let mut parts = vec![k.interval];
            for v in visible.iter().filter(|v| v.record.id.version > k.version) {
                parts = parts
                    .into_iter()
                    .flat_map(|iv| subtract(iv, v.visible))
                    .collect();
            }
            let mut clipped = Vec::new();
            for q in intervals {
                for part in &parts {
                    if let Some(x) = part.intersect(q) {
                        clipped.push(x);
                    }
                }
            }
            if clipped.is_empty() {
                continue;
            }
            tasks.push(SegmentTask {
                segment: p.segment.clone(),
                id: format!("{}_realtime{}", k.marker(), p.n),
                intervals: clipped,
                blocks: None,
            });
        }
        tasks.sort_by_key(|t| t.segment.interval().start);
    }

    fn stop_thread(&self) {
        *self.shared.stop.lock() = true;
        self.shared.wake.notify_all();
        for t in std::mem::take(&mut *self.threads.lock()) {
            let _ = t.join();
        }
    }
}

impl Drop for Realtime {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// The bytes of a record batch's values, for the memory budget. Not
/// `RecordBatch::get_array_memory_size`: arrays decoded in place from a request share its
/// buffer, and that counts the whole buffer once per array.
fn batch_bytes(batch: &RecordBatch) -> u64 {
    batch
        .columns()
        .iter()
        .map(|c| {
            let data = c.to_data();
            data.get_slice_memory_size()
                .unwrap_or_else(|_| c.get_array_memory_size())
        })
        .sum::<usize>() as u64
}

/// `a` minus `b`: zero, one or two intervals.
fn subtract(a: Interval, b: Interval) -> Vec<Interval> {
    if b.end <= a.start || b.start >= a.end {
        return vec![a];
    }
    let mut out = Vec::new();
    if a.start < b.start {
        out.push(Interval {
            start: a.start,
            end: b.start,
        });
    }
    if b.end < a.end {
        out.push(Interval {
            start: b.end,
            end: a.end,
        });
    }
    out
}

fn add_reason(map: &mut BTreeMap<String, u64>, reason: &str, n: u64) {
    *map.entry(reason.to_string()).or_insert(0) += n;
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Shared {
    /// The schema of `datasource`: cached, and read again from the catalog only when a
    /// datasource registration may have changed ([`DataDir::datasource_epoch`]).
    fn schema(&self, datasource: &str) -> Result<Arc<DataSchema>> {
        let epoch = self.data.datasource_epoch();
        if let Some((e, _, s)) = self.schemas.lock().get(datasource)
            && *e == epoch
        {
            return Ok(s.clone());
        }
        let spec = self
            .data
            .catalog()
            .get_datasource(datasource)?
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "datasource `{datasource}` does not exist; create it from a dataSchema first"
                ))
            })?;
        let mut cache = self.schemas.lock();
        if let Some((e, text, s)) = cache.get_mut(datasource)
            && *text == spec
        {
            *e = epoch;
            return Ok(s.clone());
        }
        let schema = Arc::new(DataSchema::from_json(&spec)?);
        cache.insert(datasource.to_string(), (epoch, spec, schema.clone()));
        Ok(schema)
    }

    /// Push the rows `next` reads: each call appends one row's input values to the buffer it
    /// is given and returns the row's index and time (or why the row is rejected, having
    /// appended nothing that counts: the buffer is cut back), `None` after the last row.
    /// `input_bytes` is the size of the request being read (held while the push runs),
    /// `rows_hint` sizes the buffer. Both count against the memory budget while the push
    /// runs: past it, the push fails with `ResourcesExhausted` and stores nothing.
    fn push<'a>(
        &self,
        datasource: &str,
        schema: &Arc<DataSchema>,
        input_bytes: u64,
        rows_hint: usize,
        mut next: impl FnMut(
            &mut Vec<InputValue<'a>>,
        ) -> Option<(u64, std::result::Result<i64, Reject>)>,
    ) -> Result<PushReport> {
        let cfg = &self.config;
        let now = cfg.clock.now_ms();
        let mut report = PushReport::default();
        let mut parse_errors = 0u64;
        let width = schema.dimensions.len() + schema.metrics.len();
        let rows_hint = rows_hint.min(self.memory.rows_limit as usize / 64);
        self.check_process_memory(input_bytes)?;
        let mut in_flight = Reservation::new(self);
        in_flight.grow(input_bytes)?;
        let mut accepted = Accepted {
            width,
            values: Vec::with_capacity(rows_hint.saturating_mul(width)),
            rows: Vec::with_capacity(rows_hint),
            columns: None,
        };
        let mut buffers = 0u64;
        loop {
            let held = accepted.buffer_bytes();
            if held > buffers {
                in_flight.grow(held - buffers)?;
                buffers = held;
            }
            let start = accepted.values.len();
            let Some((i, res)) = next(&mut accepted.values) else {
                break;
            };
            let res = match res {
                Ok(_) if accepted.values.len() != start + width => Err(Reject::new(
                    "internal",
                    "row has the wrong number of fields",
                )),
                other => other,
            };
            match res {
                Ok(t) => match self.accept_time(schema, now, i, t) {
                    Ok(row) => accepted.rows.push(row),
                    Err(r) => {
                        accepted.values.truncate(start);
                        reject(&mut report, cfg, i, &r);
                    }
                },
                Err(r) => {
                    accepted.values.truncate(start);
                    parse_errors += 1;
                    reject(&mut report, cfg, i, &r);
                }
            }
        }
        self.settle(datasource, schema, &accepted, parse_errors, report, now)
    }

    /// [`Shared::push`] of an Arrow batch's rows column-wise: `columns` are every input
    /// field's column (see [`Realtime::push_arrow`]), `bad` the rows (ascending) whose time
    /// does not read, with their rejects. The same checks, rejects and memory accounting as
    /// [`Shared::push`] of the batch's rows, without reading values row by row.
    fn push_columns(
        &self,
        datasource: &str,
        schema: &Arc<DataSchema>,
        input_bytes: u64,
        n_rows: usize,
        columns: ArrowColumns<'_>,
        bad: Vec<(usize, Reject)>,
    ) -> Result<PushReport> {
        let cfg = &self.config;
        let now = cfg.clock.now_ms();
        let mut report = PushReport::default();
        let mut parse_errors = 0u64;
        let width = schema.dimensions.len() + schema.metrics.len();
        let rows_hint = n_rows.min(self.memory.rows_limit as usize / 64);
        self.check_process_memory(input_bytes)?;
        let mut in_flight = Reservation::new(self);
        in_flight.grow(input_bytes)?;
        let mut accepted = Accepted {
            width,
            values: Vec::new(),
            rows: Vec::with_capacity(rows_hint),
            columns: Some(columns),
        };
        let mut buffers = 0u64;
        let mut bad = bad.into_iter().peekable();
        for i in 0..n_rows {
            let held = accepted.buffer_bytes();
            if held > buffers {
                in_flight.grow(held - buffers)?;
                buffers = held;
            }
            if let Some((_, r)) = bad.next_if(|(b, _)| *b == i) {
                parse_errors += 1;
                reject(&mut report, cfg, i as u64, &r);
                continue;
            }
            let t = columns.times.get(i).copied().unwrap_or_default();
            match self.accept_time(schema, now, i as u64, t) {
                Ok(row) => accepted.rows.push(row),
                Err(r) => reject(&mut report, cfg, i as u64, &r),
            }
        }
        self.settle(datasource, schema, &accepted, parse_errors, report, now)
    }

    /// Row `i` of a push with time `t`, routed to its segment interval, or its reject if that
    /// interval closed more than `late_data_max_lateness` before `now`.
    fn accept_time(
        &self,
        schema: &DataSchema,
        now: i64,
        i: u64,
        t: i64,
    ) -> std::result::Result<AcceptedRow, Reject> {
        let interval = schema.granularity.segment_granularity.bucket(t);
        if let Some(late) = self.config.late_data_max_lateness
            && interval.end.saturating_add(duration_ms(late)) < now
        {
            return Err(Reject::new(
                "too late",
                format!(
                    "timestamp {} is in segment interval {interval}, which closed more than {late:?} ago",
                    crate::time::format_iso_millis(t)
                ),
            ));
        }
        Ok(AcceptedRow {
            row: i,
            time: t,
            interval,
        })
    }

    /// The end of a push whose rows have been read: refuse it past `maxParseExceptions`, or
    /// append its accepted rows, make the WAL durable as configured, count.
    fn settle(
        &self,
        datasource: &str,
        schema: &Arc<DataSchema>,
        accepted: &Accepted<'_>,
        parse_errors: u64,
        mut report: PushReport,
        now: i64,
    ) -> Result<PushReport> {
        let cfg = &self.config;
        if parse_errors > cfg.max_parse_exceptions {
            self.counters
                .pushes_rejected
                .fetch_add(1, Ordering::Relaxed);
            let reasons: Vec<String> = report
                .rejected_by_reason
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            let first: Vec<String> = report
                .errors
                .iter()
                .take(5)
                .map(|e| format!("row {}: {}", e.row, e.reason))
                .collect();
            return Err(Error::invalid(format!(
                "push to `{datasource}` rejected: {parse_errors} rows failed to parse, more than maxParseExceptions ({}); nothing was stored. Reasons: {}. First errors: {}",
                cfg.max_parse_exceptions,
                reasons.join(", "),
                first.join("; ")
            )));
        }

        let ticket = if accepted.rows.is_empty() {
            None
        } else {
            self.append(datasource, schema, accepted, now, &mut report)?
        };
        if let Some(t) = ticket
            && cfg.fsync == FsyncPolicy::Always
        {
            self.wal.sync_to(t)?;
        }
        self.counters
            .rows_accepted
            .fetch_add(report.accepted, Ordering::Relaxed);
        self.counters
            .rows_rejected
            .fetch_add(report.rejected, Ordering::Relaxed);
        if !report.rejected_by_reason.is_empty() {
            let mut m = self.rejected_by_reason.lock();
            for (k, v) in &report.rejected_by_reason {
                add_reason(&mut m, k, *v);
            }
        }
        Ok(report)
    }

    /// Route accepted rows to sinks, write the WAL record, append to the sinks. Returns the
    /// WAL ticket.
    ///
    /// Pushes run this concurrently: each holds the routing state for reading (a handoff,
    /// which takes it for writing, cannot close a sink between a push's WAL record and its
    /// rows reaching the sink), and the locks of its sinks, in interval order, across the WAL
    /// append and the appends to the sinks, so each sink takes rows in WAL order. Parsing and
    /// encoding the WAL record happen before any sink lock.
    fn append(
        &self,
        datasource: &str,
        schema: &Arc<DataSchema>,
        accepted: &Accepted<'_>,
        now: i64,
        report: &mut PushReport,
    ) -> Result<Option<u64>> {
        let cfg = &self.config;
        let width = accepted.width;
        let per_row = crate::segment::writer::writer_bytes_per_row(schema);
        let string_dims: Vec<bool> = schema
            .dimensions
            .iter()
            .map(|d| d.kind == crate::schema::DimensionType::String)
            .collect();
        // For a column-wise push, the batch row of each accepted row.
        let batch_rows: Vec<u32> = match accepted.columns {
            Some(_) => accepted.rows.iter().map(|r| r.row as u32).collect(),
            None => Vec::new(),
        };
        let total: u64 = match accepted.columns {
            Some(c) => index::column_row_bytes(per_row, &string_dims, c.views, &batch_rows),
            None => (0..accepted.rows.len())
                .map(|n| index::row_bytes(per_row, &string_dims, accepted.row_values(n)))
                .sum(),
        };
        // Reserve a bound of what the rows add to the sinks before taking anything; what the
        // sinks' writers did not take is given back at the end.
        let mut reserved = Reservation::new(self);
        reserved.grow(total)?;

        // Route: one group per interval, sinks created under the write lock if need be.
        let wal_file = self.wal.current_file();
        let mut starts: Vec<i64> = accepted.rows.iter().map(|r| r.interval.start).collect();
        starts.sort_unstable();
        starts.dedup();
        let mut conflicts: Vec<(usize, Reject)> = Vec::new();
        let state = self.state.read();
        let found: Vec<Option<(Arc<Mutex<Sink>>, SinkKey)>> = starts
            .iter()
            .map(|&start| {
                let k = state.active.get(&(datasource.to_string(), start))?;
                Some((state.sinks.get(k)?.clone(), k.clone()))
            })
            .collect();
        let (state, routes) = if found.iter().all(Option::is_some) {
            (state, found)
        } else {
            drop(state);
            let mut state = self.state.write();
            let mut routes = Vec::with_capacity(starts.len());
            for &start in &starts {
                let interval = accepted
                    .rows
                    .iter()
                    .find(|r| r.interval.start == start)
                    .map(|r| r.interval)
                    .ok_or_else(|| Error::internal("an interval without rows"))?;
                match self.sink_for(&mut state, datasource, schema, interval, wal_file, now) {
                    Ok(route) => routes.push(Some(route)),
                    Err(r) => {
                        for (n, row) in accepted.rows.iter().enumerate() {
                            if row.interval.start == start {
                                conflicts.push((n, r.clone()));
                            }
                        }
                        routes.push(None);
                    }
                }
            }
            (parking_lot::RwLockWriteGuard::downgrade(state), routes)
        };
        // Rows of each group, in push order.
        let mut groups: Vec<(Arc<Mutex<Sink>>, SinkKey, Vec<u32>)> = Vec::new();
        let mut group_of: Vec<Option<usize>> = Vec::with_capacity(routes.len());
        for route in routes {
            group_of.push(route.map(|(sink, key)| {
                groups.push((sink, key, Vec::new()));
                groups.len() - 1
            }));
        }
        let mut last = (i64::MIN, None);
        for (n, row) in accepted.rows.iter().enumerate() {
            let g = if last.0 == row.interval.start {
                last.1
            } else {
                let at = starts.binary_search(&row.interval.start).ok();
                let g = at.and_then(|at| group_of[at]);
                last = (row.interval.start, g);
                g
            };
            if let Some(g) = g {
                groups[g].2.push(n as u32);
            }
        }
        conflicts.sort_by_key(|(n, _)| *n);
        for (n, r) in &conflicts {
            reject(report, cfg, accepted.rows[*n].row, r);
        }
        if groups.is_empty() {
            return Ok(None);
        }
        // The WAL record (binary, see `wal::record`), one group per sink.
        let mut enc = wal::record::RecordEncoder::new(
            datasource,
            groups.len(),
            accepted.rows.len() * (width * 10 + 4) + 64,
        );
        for (_, key, rows) in &groups {
            enc.group(
                wal::record::GroupKey {
                    start: key.interval.start,
                    end: key.interval.end,
                    version: key.version.0,
                    first_partition: key.first_partition,
                },
                rows.len(),
                width,
            );
            match accepted.columns {
                Some(c) => {
                    for &n in rows {
                        let row = &accepted.rows[n as usize];
                        enc.arrow_row(row.time, c.views, row.row as usize);
                    }
                }
                None => {
                    for &n in rows {
                        let n = n as usize;
                        enc.row(accepted.rows[n].time, accepted.row_values(n));
                    }
                }
            }
        }
        let record = enc.finish_framed()?;
        // For a column-wise push, the batch rows of each group.
        let group_batch_rows: Vec<Vec<u32>> = match accepted.columns {
            Some(_) => groups
                .iter()
                .map(|(_, _, rows)| rows.iter().map(|&n| batch_rows[n as usize]).collect())
                .collect(),
            None => Vec::new(),
        };
        // Sinks in interval order (as `groups`), then the WAL, then the rows.
        let mut sinks: Vec<_> = groups.iter().map(|(s, _, _)| s.lock()).collect();
        let ticket = self.wal.append_framed(&record)?;
        self.counters.wal_records.fetch_add(1, Ordering::Relaxed);
        let mut added_rows = 0u64;
        let mut added_bytes = 0u64;
        for (g, (s, (_, _, rows))) in sinks.iter_mut().zip(&groups).enumerate() {
            if let (Some(c), Some(group_rows)) = (accepted.columns, group_batch_rows.get(g)) {
                match s.pending.append_arrow_rows(c.views, c.times, group_rows) {
                    Ok(()) => {
                        let n = rows.len() as u64;
                        s.rows_in += n;
                        added_rows += n;
                        report.accepted += n;
                    }
                    Err(e) => {
                        // Checked before the WAL append (the columns' types, the routing); the
                        // rows are in the WAL, and replay will take or reject them row by row.
                        tracing::error!(rows = rows.len(), error = %e, "realtime rows failed after validation");
                        report.rejected += rows.len() as u64;
                        add_reason(
                            &mut report.rejected_by_reason,
                            "wrong type",
                            rows.len() as u64,
                        );
                    }
                }
            } else {
                for &n in rows {
                    let n = n as usize;
                    let row = &accepted.rows[n];
                    match s.pending.push(row.time, accepted.row_values(n)) {
                        Ok(()) => {
                            s.rows_in += 1;
                            added_rows += 1;
                            report.accepted += 1;
                        }
                        Err(e) => {
                            // Validation should have caught it; the row is in the WAL, and
                            // replay will reject it the same way.
                            tracing::error!(row = row.row, error = %e, "realtime row failed after validation");
                            report.rejected += 1;
                            add_reason(&mut report.rejected_by_reason, "wrong type", 1);
                        }
                    }
                }
            }
            let estimate = s.pending.estimated_bytes();
            added_bytes += estimate.saturating_sub(s.pending_bytes);
            s.pending_bytes = estimate;
            s.first_wal_file = s.first_wal_file.min(ticket.file_seq);
        }
        // The sinks hold what they took; the rest of the reservation goes back.
        reserved.keep(added_bytes);
        drop(sinks);
        drop(state);
        self.counters
            .rows_in_memory
            .fetch_add(added_rows, Ordering::AcqRel);
        Ok(Some(ticket.seq))
    }

    /// Whether the process is over its anonymous memory ceiling (see [`memory`]) while
    /// ingestion holds memory it can release (pending rows, a build).
    fn over_process_memory(&self, more: u64) -> bool {
        let Some(ceiling) = self.memory.anonymous_ceiling else {
            return false;
        };
        let holds = self.counters.bytes_in_memory.load(Ordering::Acquire) > 0
            || self.counters.build_bytes.load(Ordering::Acquire) > 0;
        holds
            && memory::process_anonymous_bytes()
                .is_some_and(|anon| anon.saturating_add(more) > ceiling)
    }

    /// Refuse a push of `input_bytes` (retryably) unless the process has room under its memory
    /// ceiling for it (its input, parsed values and rows: [`PUSH_EXPANSION`] times its input)
    /// and for a background build that may start meanwhile; the background thread is woken to
    /// freeze.
    fn check_process_memory(&self, input_bytes: u64) -> Result<()> {
        let build = self
            .memory
            .build_limit
            .saturating_sub(self.counters.build_bytes.load(Ordering::Acquire));
        let room = input_bytes
            .saturating_mul(PUSH_EXPANSION)
            .saturating_add(build);
        if !self.over_process_memory(room) {
            return Ok(());
        }
        self.counters
            .pushes_throttled
            .fetch_add(1, Ordering::Relaxed);
        self.wake.notify_all();
        Err(Error::ResourcesExhausted(format!(
            "the process is at its memory budget ({} bytes); retry shortly",
            self.memory.budget
        )))
    }

    /// Count `bytes` more against the rows' share of the budget, or fail with the retryable
    /// `ResourcesExhausted` (counted as a throttled push) if they do not fit.
    fn try_reserve(&self, bytes: u64) -> Result<()> {
        let limit = self.memory.rows_limit;
        let used = self
            .counters
            .bytes_in_memory
            .fetch_add(bytes, Ordering::AcqRel);
        if used.saturating_add(bytes) > limit {
            self.counters
                .bytes_in_memory
                .fetch_sub(bytes, Ordering::AcqRel);
            self.counters
                .pushes_throttled
                .fetch_add(1, Ordering::Relaxed);
            self.wake.notify_all();
            return Err(Error::ResourcesExhausted(format!(
                "realtime ingestion is over its memory budget ({used} of {limit} bytes for pending rows and pushes in progress, the push needs {bytes} more); retry shortly{}",
                if bytes > limit {
                    " with a smaller batch"
                } else {
                    ""
                }
            )));
        }
        self.counters
            .peak_bytes
            .fetch_max(used + bytes, Ordering::AcqRel);
        Ok(())
    }

    /// Count `bytes` as held by the background build in progress, until the guard drops.
    pub(crate) fn build_memory(&self, bytes: u64) -> BuildMemory<'_> {
        self.counters.build_bytes.fetch_add(bytes, Ordering::AcqRel);
        BuildMemory {
            shared: self,
            bytes,
        }
    }

    fn add_memory(&self, bytes: u64, rows: u64) {
        let now = self
            .counters
            .bytes_in_memory
            .fetch_add(bytes, Ordering::AcqRel)
            + bytes;
        self.counters.peak_bytes.fetch_max(now, Ordering::AcqRel);
        self.counters
            .rows_in_memory
            .fetch_add(rows, Ordering::AcqRel);
    }

    fn release_memory(&self, bytes: u64, rows: u64) {
        let _ =
            self.counters
                .bytes_in_memory
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                    Some(b.saturating_sub(bytes))
                });
        let _ =
            self.counters
                .rows_in_memory
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                    Some(b.saturating_sub(rows))
                });
    }

    /// The active sink of (datasource, interval), created if needed.
    fn sink_for(
        &self,
        state: &mut State,
        datasource: &str,
        schema: &Arc<DataSchema>,
        interval: Interval,
        wal_file: u64,
        now: i64,
    ) -> std::result::Result<(Arc<Mutex<Sink>>, SinkKey), Reject> {
        let akey = (datasource.to_string(), interval.start);
        if let Some(k) = state.active.get(&akey)
            && let Some(s) = state.sinks.get(k)
        {
            return Ok((s.clone(), k.clone()));
        }
        let key = self
            .new_sink_key(state, datasource, interval)
            .map_err(|e| match e {
                Error::InvalidArgument(m) => Reject::new("segment interval conflict", m),
                other => Reject::new("internal", other.to_string()),
            })?;
        let sink = Sink::new(key.clone(), schema.clone(), wal_file, now)
            .map_err(|e| Reject::new("internal", e.to_string()))?;
        let sink = Arc::new(Mutex::new(sink));
        state.sinks.insert(key.clone(), sink.clone());
        state.active.insert(akey, key.clone());
        Ok((sink, key))
    }

    /// Choose the identity of a new sink: the version of the interval's published segments (so
    /// handoffs append partitions and keep earlier data visible) or a new one, and the first
    /// partition past every partition published or reserved.
    fn new_sink_key(&self, state: &State, datasource: &str, interval: Interval) -> Result<SinkKey> {
        // A live sink of the same interval (being handed off) fixes the version.
        let live = state
            .sinks
            .keys()
            .filter(|k| k.datasource == datasource && k.interval == interval)
            .max_by_key(|k| k.first_partition);
        let timeline = self.data.timeline();
        let visible = timeline.lookup(datasource, interval);
        if let Some(v) = visible.iter().find(|v| v.record.id.interval != interval) {
            return Err(Error::invalid(format!(
                "segment interval {interval} overlaps published segment {} of another interval; \
                 realtime rows need the datasource's segmentGranularity to match its segments",
                v.record.id
            )));
        }
        let version = match (live, visible.iter().map(|v| v.record.id.version).max()) {
            (Some(k), _) => k.version,
            (None, Some(v)) => v,
            (None, None) => self.data.allocate_version(datasource)?,
        };
        let mut first = 0u32;
        let catalog = self.data.catalog();
        for rec in catalog
            .used_segments(Some(datasource))?
            .into_iter()
            .chain(catalog.unused_segments(Some(datasource))?)
        {
            if rec.id.interval == interval && rec.id.version == version {
                first = first.max(rec.id.partition.saturating_add(1));
            }
        }
        for k in state.sinks.keys() {
            if k.datasource == datasource && k.interval == interval && k.version == version {
                first = first.max(k.first_partition.saturating_add(index::SINK_PARTITION_SPAN));
            }
        }
        if first > u32::MAX - index::SINK_PARTITION_SPAN {
            return Err(Error::ResourcesExhausted(format!(
                "no partitions left in {datasource} {interval} version {}",
                version.0
            )));
        }
        Ok(SinkKey {
            datasource: datasource.to_string(),
            interval,
            version: Version(version.0),
            first_partition: first,
        })
    }

    /// Replay recovered WAL records into sinks.
    fn replay(&self, recovery: wal::Recovery) -> Result<()> {
        let mut state = self.state.write();
        let mut published: HashMap<SinkKey, bool> = HashMap::new();
        let mut replayed = 0u64;
        let wal_dir = self.data.root().join(wal::WAL_DIR);
        recovery.replay(|file_seq, payload| {
            let record = wal::record::decode(payload, &wal_dir, file_seq)?;
            let ds: &str = &record.datasource;
            let Ok(schema) = self.schema(ds) else {
                tracing::warn!(
                    datasource = ds,
                    "skipping WAL rows of a datasource that no longer exists"
                );
                return Ok(());
            };
            for g in &record.groups {
                let s = g.key.start;
                let key = SinkKey {
                    datasource: ds.to_string(),
                    interval: Interval {
                        start: s,
                        end: g.key.end,
                    },
                    version: Version(g.key.version),
                    first_partition: g.key.first_partition,
                };
                let done = match published.get(&key) {
                    Some(d) => *d,
                    None => {
                        let d = self.data.catalog().get_segment(&key.marker())?.is_some();
                        published.insert(key.clone(), d);
                        d
                    }
                };
                if done {
                    continue;
                }
                let sink = match state.sinks.get(&key) {
                    Some(s) => s.clone(),
                    None => {
                        let sink = Arc::new(Mutex::new(Sink::new(
                            key.clone(),
                            schema.clone(),
                            file_seq,
                            self.config.clock.now_ms(),
                        )?));
                        state.sinks.insert(key.clone(), sink.clone());
                        let akey = (ds.to_string(), s);
                        let newer = state
                            .active
                            .get(&akey)
                            .is_none_or(|k| k.first_partition < key.first_partition);
                        if newer {
                            state.active.insert(akey, key.clone());
                        }
                        sink
                    }
                };
                let mut sk = sink.lock();
                let mut rows = 0;
                for (t, vals) in &g.rows {
                    match sk.pending.push(*t, vals) {
                        Ok(()) => {
                            sk.rows_in += 1;
                            rows += 1;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "skipping a WAL row that does not fit the current schema")
                        }
                    }
                }
                replayed += rows;
                let estimate = sk.pending.estimated_bytes();
                let added = estimate.saturating_sub(sk.pending_bytes);
                sk.pending_bytes = estimate;
                self.add_memory(added, rows);
                if sk.pending.num_rows() as u64 >= self.config.max_rows_in_memory
                    || self.counters.bytes_in_memory.load(Ordering::Acquire) >= self.freeze_bytes
                {
                    self.freeze_locked(&mut sk)?;
                }
            }
            Ok(())
        })?;
        self.counters
            .rows_replayed
            .store(replayed, Ordering::Relaxed);
        if replayed > 0 {
            tracing::info!(
                rows = replayed,
                sinks = state.sinks.len(),
                "replayed realtime WAL"
            );
        }
        Ok(())
    }

    fn piece_path(&self) -> PathBuf {
        let n = self.piece_seq.fetch_add(1, Ordering::Relaxed);
        self.scratch.join(format!("piece-{n}.bseg"))
    }

    /// Freeze pending rows while holding the sink (WAL replay only: nothing runs concurrently).
    fn freeze_locked(&self, sink: &mut Sink) -> Result<()> {
        let bytes = sink.pending_bytes;
        let rows = sink.pending.num_rows() as u64;
        if rows == 0 {
            return Ok(());
        }
        let res = persist::freeze(sink, self.piece_path());
        self.release_memory(bytes, rows);
        res?;
        self.counters.persists.fetch_add(1, Ordering::Relaxed);
        self.counters.rows_frozen.fetch_add(rows, Ordering::Relaxed);
        Ok(())
    }

    /// Freeze a sink's pending rows into a piece without blocking its pushes (see
    /// [`Shared::freeze_gated`]).
    fn freeze(&self, sink: &Mutex<Sink>) -> Result<()> {
        let gate = sink.lock().persist_gate.clone();
        let _gate = gate.lock();
        self.freeze_gated(sink)
    }

    /// Freeze, for a caller holding the sink's `persist_gate`: the pending rows are swapped for
    /// an empty writer under the sink lock, then sorted, rolled up and written outside it, so
    /// pushes to the sink go on meanwhile. Their bytes stay accounted until the piece is
    /// written (the memory budget counts the freeze in flight).
    fn freeze_gated(&self, sink: &Mutex<Sink>) -> Result<()> {
        let (writer, bytes, rows, marker) = {
            let mut sk = sink.lock();
            let rows = sk.pending.num_rows() as u64;
            if rows == 0 {
                return Ok(());
            }
            let fresh = crate::segment::SegmentWriter::new(&sk.schema, sk.key.interval)?;
            let writer = std::mem::replace(&mut sk.pending, fresh);
            let bytes = std::mem::take(&mut sk.pending_bytes);
            sk.last_freeze = Instant::now();
            (writer, bytes, rows, sk.key.marker())
        };
        let path = self.piece_path();
        let res = persist::write_piece(writer, &path, &marker, rows);
        self.release_memory(bytes, rows);
        let segment = res?;
        sink.lock().pieces.push(index::Piece { segment, path });
        self.counters.persists.fetch_add(1, Ordering::Relaxed);
        self.counters.rows_frozen.fetch_add(rows, Ordering::Relaxed);
        Ok(())
    }

    fn sinks(&self) -> Vec<Arc<Mutex<Sink>>> {
        self.state.read().sinks.values().cloned().collect()
    }

    fn freeze_all(&self) -> Result<()> {
        for s in self.sinks() {
            self.freeze(&s)?;
        }
        Ok(())
    }

    fn query_pieces(&self, datasource: &str) -> Result<Vec<QueryPiece>> {
        let sinks: Vec<Arc<Mutex<Sink>>> = self
            .state
            .read()
            .sinks
            .iter()
            .filter(|(k, _)| k.datasource == datasource)
            .map(|(_, s)| s.clone())
            .collect();
        let mut out = Vec::new();
        for s in sinks {
            // Through the gate: a freeze in flight holds rows that are in no piece yet.
            let gate = s.lock().persist_gate.clone();
            let _gate = gate.lock();
            self.freeze_gated(&s)?;
            let s = s.lock();
            for (n, p) in s.pieces.iter().enumerate() {
                out.push(QueryPiece {
                    segment: p.segment.clone(),
                    key: s.key.clone(),
                    n,
                });
            }
        }
        Ok(out)
    }

    fn stats(&self) -> RealtimeStats {
        let c = &self.counters;
        let (sinks, pieces) = {
            let sinks = self.sinks();
            let pieces = sinks.iter().map(|s| s.lock().pieces.len() as u64).sum();
            (sinks.len() as u64, pieces)
        };
        RealtimeStats {
            rows_in_memory: c.rows_in_memory.load(Ordering::Relaxed),
            bytes_in_memory: c.bytes_in_memory.load(Ordering::Relaxed),
            peak_bytes_in_memory: c.peak_bytes.load(Ordering::Relaxed),
            build_bytes_in_memory: c.build_bytes.load(Ordering::Relaxed),
            memory_plan: Some(self.memory),
            sinks,
            pieces,
            persists: c.persists.load(Ordering::Relaxed),
            merges: c.merges.load(Ordering::Relaxed),
            rows_frozen: c.rows_frozen.load(Ordering::Relaxed),
            rows_merged: c.rows_merged.load(Ordering::Relaxed),
            handoffs: c.handoffs.load(Ordering::Relaxed),
            segments_published: c.segments_published.load(Ordering::Relaxed),
            rows_accepted: c.rows_accepted.load(Ordering::Relaxed),
            rows_rejected: c.rows_rejected.load(Ordering::Relaxed),
            rejected_by_reason: self.rejected_by_reason.lock().clone(),
            pushes_throttled: c.pushes_throttled.load(Ordering::Relaxed),
            pushes_rejected: c.pushes_rejected.load(Ordering::Relaxed),
            rows_replayed: c.rows_replayed.load(Ordering::Relaxed),
            wal_truncated_bytes: c.wal_truncated_bytes.load(Ordering::Relaxed),
            wal_records: c.wal_records.load(Ordering::Relaxed),
            background_errors: c.background_errors.load(Ordering::Relaxed),
        }
    }

    /// Wait for the next tick (or a wake-up); false once stopped.
    fn wait_tick(&self) -> bool {
        let mut stop = self.stop.lock();
        if *stop {
            return false;
        }
        self.wake.wait_for(&mut stop, self.config.tick);
        !*stop
    }

    fn count_error(&self, e: &Error, what: &str) {
        tracing::error!(error = %e, "realtime {what} failed");
        self.counters
            .background_errors
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The freezing thread: interval fsyncs and freezes, every tick or sooner when woken. It
    /// never waits for a build, so pending rows keep being frozen (and memory released) while
    /// a merge or a handoff runs on the build thread.
    fn run(self: Arc<Self>) {
        let mut last_sync = Instant::now();
        while self.wait_tick() {
            if let FsyncPolicy::Interval(d) = self.config.fsync
                && last_sync.elapsed() >= d
            {
                last_sync = Instant::now();
                if let Err(e) = self.wal.sync_all() {
                    self.count_error(&e, "WAL fsync");
                }
            }
            if let Err(e) = self.freeze_due() {
                self.count_error(&e, "freeze");
            }
        }
    }

    /// The build thread: merges and handoffs, every tick.
    fn run_builds(self: Arc<Self>) {
        while self.wait_tick() {
            if let Err(e) = self.build_due() {
                self.count_error(&e, "background build");
            }
        }
    }

    /// One round of background work: freezes, then merges and handoffs.
    fn tick(&self) -> Result<()> {
        let frozen = self.freeze_due();
        let built = self.build_due();
        frozen.and(built)
    }

    /// Freeze the sinks that are due: past `max_rows_in_memory` or the persist period, or all
    /// of them when pending rows pass `freeze_bytes` or the process its memory ceiling.
    fn freeze_due(&self) -> Result<()> {
        if self.halted.load(Ordering::Acquire) {
            return Ok(());
        }
        let cfg = &self.config;
        let over_bytes = self.counters.bytes_in_memory.load(Ordering::Acquire) >= self.freeze_bytes
            || self.over_process_memory(0);
        let mut first_err = None;
        for s in self.sinks() {
            let due = {
                let sk = s.lock();
                over_bytes
                    || sk.pending.num_rows() as u64 >= cfg.max_rows_in_memory
                    || sk.last_freeze.elapsed() >= cfg.intermediate_persist_period
            };
            if due && let Err(e) = self.freeze(&s) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Merges of sinks with too many pieces, then handoffs that are due: one round at a time
    /// (`work`).
    fn build_due(&self) -> Result<()> {
        let _work = self.work.lock();
        if self.halted.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut first_err = None;
        for s in self.sinks() {
            if s.lock().pieces.len() > self.config.max_pieces_per_sink
                && let Err(e) = self.merge_pieces(&s)
            {
                first_err.get_or_insert(e);
            }
        }
        if let Err(e) = handoff::handoff_due(self) {
            first_err.get_or_insert(e);
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Merge a sink's smallest pieces into one, without holding the sink: the pieces are read
    /// and merged outside the lock, then swapped for the merged one (a query sees either the old
    /// pieces or the new one, never both). Only pieces whose merge fits the builds' share of the
    /// memory budget are taken ([`persist::merge_bytes`]); when not even the two smallest fit,
    /// the pieces wait for handoff.
    ///
    /// Which pieces ([`merge_take`]): the two smallest, then the next smallest for as long as
    /// each is no larger than those taken together. Pieces so grow geometrically and a row is
    /// rewritten about log(rows of the sink) times, where merging a fixed share of the pieces
    /// would rewrite the largest piece every few freezes (a cost that grows with the square of
    /// the sink's rows). Such a run is merged once it has [`MERGE_FAN_IN`] pieces, or when the
    /// memory bound is what ends it (the merged piece is then as large as a merge may make
    /// it); a shorter run waits for more pieces. Merging two pieces of unequal size as soon as
    /// the count passes the limit would rewrite the larger again and again as small pieces come
    /// in, one at a time, until it reaches the bound.
    ///
    /// Merges and handoffs run only inside [`Shared::build_due`], one round at a time
    /// (`work`), so the pieces taken here are still in the sink when the merge is swapped in
    /// (freezes, on their own thread, only add pieces).
    fn merge_pieces(&self, sink: &Mutex<Sink>) -> Result<()> {
        let limit = self.memory.build_limit;
        let (schema, interval, take, bytes) = {
            let sk = sink.lock();
            let mut order: Vec<&index::Piece> = sk.pieces.iter().collect();
            order.sort_by_key(|p| p.segment.num_rows());
            let sizes: Vec<u64> = order.iter().map(|p| p.segment.num_rows()).collect();
            let fan_in = MERGE_FAN_IN.min(self.config.max_pieces_per_sink);
            let n = merge_take(&sizes, fan_in, |n| {
                let segs: Vec<SegmentRef> = order[..n].iter().map(|p| p.segment.clone()).collect();
                persist::merge_bytes(&segs) <= limit
            });
            let take: Vec<index::Piece> = order[..n].iter().map(|p| (*p).clone()).collect();
            let segs: Vec<SegmentRef> = take.iter().map(|p| p.segment.clone()).collect();
            (
                sk.schema.clone(),
                sk.key.interval,
                take,
                persist::merge_bytes(&segs),
            )
        };
        if take.len() < 2 {
            return Ok(());
        }
        let segs: Vec<SegmentRef> = take.iter().map(|p| p.segment.clone()).collect();
        let _build = self.build_memory(bytes);
        let merged = persist::merge(
            &schema,
            interval,
            &segs,
            u64::MAX,
            limit,
            &crate::segment::FinishOptions::scratch(),
            || Ok(self.piece_path()),
        )?;
        let mut new_pieces = Vec::new();
        for (path, _) in merged {
            let segment = Arc::new(crate::segment::Segment::open(&path)?);
            new_pieces.push(index::Piece { segment, path });
        }
        {
            let mut sk = sink.lock();
            sk.pieces.retain(|p| !take.iter().any(|t| t.path == p.path));
            sk.pieces.extend(new_pieces);
        }
        for p in &take {
            let _ = std::fs::remove_file(&p.path);
        }
        self.counters.merges.fetch_add(1, Ordering::Relaxed);
        let merged: u64 = take.iter().map(|p| p.segment.num_rows()).sum();
        self.counters
            .rows_merged
            .fetch_add(merged, Ordering::Relaxed);
        Ok(())
    }
}

/// Pieces a merge takes at least, unless the memory bound ends its run (see
/// [`Shared::merge_pieces`]); at most the sink's `max_pieces_per_sink`.
const MERGE_FAN_IN: usize = 4;

/// How many of the smallest pieces to merge (0: none yet), given their sizes in ascending
/// order and whether a merge of the first `n` fits the memory bound: the run of
/// [`merge_run`] as far as it fits, if it has `fan_in` pieces or the bound ended it (with at
/// least two).
fn merge_take(ascending: &[u64], fan_in: usize, fits: impl Fn(usize) -> bool) -> usize {
    let want = merge_run(ascending);
    let mut take = 0;
    for n in 1..=want {
        if !fits(n) {
            return if take >= 2 { take } else { 0 };
        }
        take = n;
    }
    if take >= fan_in.max(2) { take } else { 0 }
}

/// How many of the smallest pieces to merge, given their sizes in ascending order: the two
/// smallest, and each next one no larger than the sum of those before it.
fn merge_run(ascending: &[u64]) -> usize {
    let mut taken = 0;
    let mut sum = 0u64;
    for &rows in ascending {
        if taken >= 2 && rows > sum {
            break;
        }
        sum = sum.saturating_add(rows);
        taken += 1;
    }
    taken
}

/// Keys of the sinks, for tests and diagnostics: (datasource, interval, version, partition).
pub fn sink_marker(key: &SinkKey) -> SegmentId {
    key.marker()
}

/// The realtime scratch directory of a data directory.
pub fn scratch_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(REALTIME_DIR)
}

impl crate::engine::Engine {
    /// Push JSON rows (objects) to a registered datasource. Returns when the accepted rows are
    /// durable (per the fsync policy); see [`PushReport`] for what was rejected and why.
    pub fn push_json_rows(&self, datasource: &str, rows: &[Value]) -> Result<PushReport> {
        self.realtime.push_json_rows(datasource, rows)
    }

    /// Push newline-delimited JSON (already decompressed); a bad line rejects that row only.
    pub fn push_ndjson(&self, datasource: &str, body: &[u8]) -> Result<PushReport> {
        self.realtime.push_ndjson(datasource, body)
    }

    /// Push an Arrow record batch; columns are matched to the schema's fields by name.
    pub fn push_arrow(&self, datasource: &str, batch: &RecordBatch) -> Result<PushReport> {
        self.realtime.push_arrow(datasource, batch)
    }

    /// Push rows given as JSON texts, one object each (the gRPC JSON rows): one call for the
    /// whole batch. A text that is not valid JSON rejects that row only, as a parse error.
    pub fn push_json_texts<S: AsRef<str>>(
        &self,
        datasource: &str,
        rows: &[S],
    ) -> Result<PushReport> {
        self.realtime.push_json_texts(datasource, rows)
    }

    /// Graceful shutdown of realtime ingestion: WAL durable, memory frozen to pieces,
    /// background work stopped.
    pub fn flush_realtime(&self) -> Result<()> {
        self.realtime.flush()
    }

    /// Realtime counters and gauges (for `/metrics`).
    pub fn realtime_stats(&self) -> RealtimeStats {
        self.realtime.stats()
    }

    /// How realtime ingestion shares its memory budget (see [`memory`]).
    pub fn realtime_memory_plan(&self) -> memory::MemoryPlan {
        self.realtime.memory_plan()
    }

    /// Run one round of realtime background work now (freezes, merges, handoffs that are due).
    pub fn realtime_tick(&self) -> Result<()> {
        self.realtime.run_once()
    }
}

#[cfg(test)]
mod tests {
    use super::{MERGE_FAN_IN, batch_bytes, merge_run, merge_take};

    #[test]
    #[allow(clippy::unwrap_used)]
    fn batch_bytes_count_shared_request_buffers_once() {
        use std::sync::Arc;

        use arrow_array::{Int64Array, RecordBatch, StringArray};
        use arrow_schema::{DataType, Field, Schema};
        let schema = Arc::new(Schema::new(
            (0..10)
                .map(|i| Field::new(format!("c{i}"), DataType::Int64, false))
                .chain([Field::new("s", DataType::Utf8, false)])
                .collect::<Vec<_>>(),
        ));
        let mut columns: Vec<arrow_array::ArrayRef> = (0..10)
            .map(|i| Arc::new(Int64Array::from_iter_values(i..i + 1000)) as _)
            .collect();
        columns.push(Arc::new(StringArray::from_iter_values(
            (0..1000).map(|i| format!("host_{i}")),
        )));
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        let mut ipc = Vec::new();
        let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut ipc, &schema).unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
        drop(w);
        // Decoded in place: every array slices the one buffer.
        let mut buffer = arrow_buffer::Buffer::from(ipc.clone());
        let mut decoder = arrow_ipc::reader::StreamDecoder::new();
        let decoded = loop {
            if let Some(b) = decoder.decode(&mut buffer).unwrap() {
                break b;
            }
        };
        let values =
            10 * 1000 * 8 + 1001 * 4 + (0..1000).map(|i| format!("host_{i}").len()).sum::<usize>();
        assert_eq!(batch_bytes(&decoded), values as u64);
        assert_eq!(batch_bytes(&batch), values as u64);
        assert!(decoded.get_array_memory_size() > 10 * ipc.len());
    }

    #[test]
    fn merge_run_takes_pieces_of_comparable_size() {
        assert_eq!(merge_run(&[5, 5, 5, 5]), 4);
        assert_eq!(merge_run(&[1, 1, 2, 4, 100]), 4);
        assert_eq!(merge_run(&[1, 1, 3]), 2);
        // Always at least two, even when the second is much larger.
        assert_eq!(merge_run(&[1, 1000, 5000]), 2);
        assert_eq!(merge_run(&[7]), 1);
        assert_eq!(merge_run(&[]), 0);
    }

    /// Rows rewritten by merges per row frozen, and the pieces left, for a sink fed `freezes`
    /// pieces (sizes cycled from `sizes`) and merged as [`Shared::merge_pieces`] does whenever
    /// it has more than `max_pieces`, with merges bounded to `cap` rows.
    fn simulate(freezes: u64, sizes: &[u64], max_pieces: usize, cap: u64) -> (f64, usize) {
        simulate_with(
            freezes,
            sizes,
            max_pieces,
            cap,
            MERGE_FAN_IN.min(max_pieces),
        )
    }

    fn simulate_with(
        freezes: u64,
        sizes: &[u64],
        max_pieces: usize,
        cap: u64,
        fan_in: usize,
    ) -> (f64, usize) {
        let mut pieces: Vec<u64> = Vec::new();
        let (mut rewritten, mut frozen) = (0u64, 0u64);
        for i in 0..freezes {
            let size = sizes[i as usize % sizes.len()];
            pieces.push(size);
            frozen += size;
            if pieces.len() > max_pieces {
                pieces.sort_unstable();
                let n = merge_take(&pieces, fan_in, |n| pieces[..n].iter().sum::<u64>() <= cap);
                if n > 0 {
                    let merged: u64 = pieces.drain(..n).sum();
                    rewritten += merged;
                    pieces.push(merged);
                }
            }
        }
        (rewritten as f64 / frozen as f64, pieces.len())
    }

    fn rewrites_per_row(freezes: u64, max_pieces: usize) -> f64 {
        let (rewrites, pieces) = simulate(freezes, &[1], max_pieces, u64::MAX);
        assert!(pieces <= max_pieces + MERGE_FAN_IN, "{pieces}");
        rewrites
    }

    #[test]
    fn merge_take_waits_for_a_full_run_unless_the_bound_ends_it() {
        let all = |_: usize| true;
        assert_eq!(merge_take(&[5, 5, 5, 5, 9], 4, all), 5);
        // A run of three waits for a fourth piece.
        assert_eq!(merge_take(&[1, 1, 2, 9, 9], 4, all), 0);
        assert_eq!(merge_take(&[1, 1, 1, 2, 9], 4, all), 4);
        // A small piece is not merged into a much larger one.
        assert_eq!(merge_take(&[1, 6, 9, 9], 4, all), 0);
        // The bound ends the run: what fits is merged, if two or more.
        assert_eq!(merge_take(&[3, 3, 3, 3], 4, |n| n <= 3), 3);
        assert_eq!(merge_take(&[3, 3, 3, 3], 4, |n| n <= 2), 2);
        assert_eq!(merge_take(&[3, 3, 3, 3], 4, |n| n <= 1), 0);
        // With a fan-in of two, any two smallest are merged (as when max_pieces_per_sink = 2).
        assert_eq!(merge_take(&[1, 6, 9], 2, all), 2);
        assert_eq!(merge_take(&[7], 4, all), 0);
        assert_eq!(merge_take(&[], 4, all), 0);
    }

    #[test]
    fn bounded_merges_wait_for_runs_of_comparable_pieces() {
        // Freezes of varied sizes (a query freezes whatever is pending) into merges bounded to
        // 3.9 times the largest freeze, as in a fast sink; then small, query-sized freezes.
        // Against merging the two smallest whenever the count passes the limit (a fan-in of
        // two), which reaches the bound in steps of one small piece, rewriting the growing
        // piece each time: fewer rewrites, about as many pieces left.
        for (sizes, cap) in [
            (&[180, 180, 120, 60, 180, 150][..], 700),
            (&[20, 50, 10][..], 1000),
        ] {
            let (rewrites, pieces) = simulate(600, sizes, 8, cap);
            let (pairwise, pairwise_pieces) = simulate_with(600, sizes, 8, cap, 2);
            eprintln!(
                "{sizes:?} cap {cap}: {rewrites:.2} rewrites, {pieces} pieces; pairwise {pairwise:.2}, {pairwise_pieces}"
            );
            assert!(rewrites < 0.7 * pairwise, "{rewrites} vs {pairwise}");
            assert!(
                pieces <= pairwise_pieces + pairwise_pieces / 5 + 2,
                "{pieces} vs {pairwise_pieces}"
            );
        }
    }

    #[test]
    fn merges_rewrite_a_row_a_logarithmic_number_of_times() {
        // Ten times the freezes may cost a few more rewrites per row, not ten times as many.
        let short = rewrites_per_row(1_000, 8);
        let long = rewrites_per_row(10_000, 8);
        assert!(short < 6.0, "{short}");
        assert!(long < 12.0, "{long}");
    }
}
