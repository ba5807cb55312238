//! The embedded, crash-safe catalog of datasources and published segments.
//!
//! The catalog is one SQLite database, `<data_dir>/catalog.sqlite`, opened in WAL mode with
//! `synchronous=FULL`, so a committed transaction survives `kill -9` and power loss. It is the
//! single source of truth for *which segments exist*: a segment is part of the database exactly
//! when its row in `segments` is committed (see [`crate::storage`] for how files follow rows).
//!
//! Tables (schema version [`SCHEMA_VERSION`], stored in `PRAGMA user_version`):
//!
//! - `datasources(name PRIMARY KEY, spec TEXT (JSON), created_at)` — registered datasources.
//! - `segments(datasource, start_ms, end_ms, version, partition, path, size_bytes, num_rows, used,
//!   created_at)`, primary key `(datasource, start_ms, end_ms, version, partition)`, plus the index
//!   `(datasource, used, start_ms, end_ms)` that every "used segments of a datasource" query walks.
//!   `used = 0` rows are overshadowed or dropped segments whose files await cleanup.
//! - `versions(datasource PRIMARY KEY, last_version)` — the last version handed out per datasource,
//!   so [`Catalog::allocate_version`] stays strictly increasing across restarts and clock steps.
//!
//! Every mutation is one SQLite transaction; multi-row writes use cached prepared statements so
//! publishing 10^5 segments is one fsync, not 10^5.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::segment::{SegmentId, Version};
use crate::time::Interval;

/// File name of the catalog database inside the data directory.
pub const CATALOG_FILE_NAME: &str = "catalog.sqlite";

/// Current catalog schema version (`PRAGMA user_version`).
///
/// - 1: `datasources`, `segments` (+ `segments_by_datasource_used` index), `versions`.
pub const SCHEMA_VERSION: i64 = 1;

/// How long a statement waits on a lock held by another connection before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Prepared statements kept per connection; the hot ones are few, this just avoids eviction.
const STATEMENT_CACHE_CAPACITY: usize = 32;

/// Schema version 1, created in one transaction on first open.
const SCHEMA_V1: &str = "
CREATE TABLE datasources (
    name       TEXT    NOT NULL PRIMARY KEY,
    spec       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE segments (
    datasource TEXT    NOT NULL,
    start_ms   INTEGER NOT NULL,
    end_ms     INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    partition  INTEGER NOT NULL,
    path       TEXT    NOT NULL,
    size_bytes INTEGER NOT NULL,
    num_rows   INTEGER NOT NULL,
    used       INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (datasource, start_ms, end_ms, version, partition)
) WITHOUT ROWID;
CREATE INDEX segments_by_datasource_used ON segments (datasource, used, start_ms, end_ms);
CREATE TABLE versions (
    datasource   TEXT    NOT NULL PRIMARY KEY,
    last_version INTEGER NOT NULL
);
";

/// Columns of `segments` read back into a [`SegmentRecord`], in [`record_from_row`] order.
const SEGMENT_COLUMNS: &str =
    "datasource, start_ms, end_ms, version, partition, path, size_bytes, num_rows";

/// One published segment as the catalog stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRecord {
    /// The segment's identity.
    pub id: SegmentId,
    /// Location of the segment file relative to the data directory, `/`-separated.
    pub path: String,
    /// Size of the segment file in bytes.
    pub size_bytes: u64,
    /// Number of (rolled-up) rows in the segment.
    pub num_rows: u64,
}

/// The embedded catalog: datasources, segments and version allocation, in SQLite.
///
/// All methods take `&self`; one connection is shared behind a mutex (SQLite serializes writers
/// anyway, and the catalog is not on the per-row path).
pub struct Catalog {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Datasource registrations changed through this handle (created, updated, dropped),
    /// counted after each commit: see [`Catalog::datasource_changes`].
    datasource_changes: AtomicU64,
}

impl fmt::Debug for Catalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Catalog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Catalog {
    /// Open (creating or migrating if needed) the catalog at `<data_dir>/catalog.sqlite`.
    ///
    /// Fails with [`Error::Incompatible`] if the file was written by a newer schema version.
    pub fn open(data_dir: &Path) -> Result<Catalog> {
        let path = data_dir.join(CATALOG_FILE_NAME);
        let ctx = |what: &str, e: rusqlite::Error| {
            Error::Catalog(format!("{what} {}: {e}", path.display()))
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn =
            Connection::open_with_flags(&path, flags).map_err(|e| ctx("cannot open", e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| ctx("cannot set busy_timeout on", e))?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(|e| ctx("cannot enable WAL journal on", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Catalog(format!(
                "cannot enable WAL journal on {}: sqlite kept journal_mode={mode}",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| ctx("cannot set synchronous=FULL on", e))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        migrate(&mut conn, &path)?;
        Ok(Catalog {
            path,
            conn: Mutex::new(conn),
            datasource_changes: AtomicU64::new(0),
        })
    }

    /// Path of the SQLite file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Wrap a SQLite error with what was being done and the catalog file.
    fn err<'a>(
        &'a self,
        what: impl fmt::Display + 'a,
    ) -> impl FnOnce(rusqlite::Error) -> Error + 'a {
        move |e| Error::Catalog(format!("{what} in {}: {e}", self.path.display()))
    }

    // ----- datasources -------------------------------------------------------------------------

    /// Register a datasource with its spec (a JSON document).
    ///
    /// Fails with [`Error::AlreadyExists`] if the name is taken, [`Error::InvalidArgument`] if
    /// `spec_json` is not JSON.
    pub fn create_datasource(&self, name: &str, spec_json: &str) -> Result<()> {
        check_json(name, spec_json)?;
        let conn = self.conn.lock();
        let res = conn.execute(
            "INSERT INTO datasources (name, spec, created_at) VALUES (?1, ?2, ?3)",
            params![name, spec_json, now_millis()],
        );
        match res {
            Ok(_) => {
                self.datasource_changes.fetch_add(1, Ordering::AcqRel);
                Ok(())
            }
            Err(e) if is_constraint(&e) => {
                Err(Error::AlreadyExists(format!("datasource `{name}`")))
            }
            Err(e) => Err(self.err(format_args!("creating datasource `{name}`"))(e)),
        }
    }

    /// The spec JSON of a datasource, or `None` if it is not registered.
    pub fn get_datasource(&self, name: &str) -> Result<Option<String>> {
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare_cached("SELECT spec FROM datasources WHERE name = ?1")
            .map_err(self.err(format_args!("reading datasource `{name}`")))?;
        stmt.query_row(params![name], |row| row.get(0))
            .optional()
            .map_err(self.err(format_args!("reading datasource `{name}`")))
    }

    /// Names of all registered datasources, sorted.
    pub fn list_datasources(&self) -> Result<Vec<String>> {
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare_cached("SELECT name FROM datasources ORDER BY name")
            .map_err(self.err("listing datasources"))?;
        let rows = stmt
            .query_map([], |row| row.get(0))
            .map_err(self.err("listing datasources"))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(self.err("listing datasources"))
    }

    /// Replace the spec of a registered datasource. [`Error::NotFound`] if it is not registered.
    pub fn update_datasource_spec(&self, name: &str, spec_json: &str) -> Result<()> {
        check_json(name, spec_json)?;
        let conn = self.conn.lock();
        let n = conn
            .execute(
                "UPDATE datasources SET spec = ?2 WHERE name = ?1",
                params![name, spec_json],
            )
            .map_err(self.err(format_args!("updating datasource `{name}`")))?;
        if n == 0 {
            return Err(Error::NotFound(format!("datasource `{name}`")));
        }
        self.datasource_changes.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// How many times datasource registrations were changed through this handle. Read it
    /// before reading a spec: a cached spec is current while this count (and the catalog's
    /// `data_version`, for changes by other processes) stays the same.
    pub fn datasource_changes(&self) -> u64 {
        self.datasource_changes.load(Ordering::Acquire)
    }

    /// Unregister a datasource and mark all its segments unused, in one transaction.
    ///
    /// A datasource that was never registered but has used segments is dropped too;
    /// [`Error::NotFound`] if there is neither a registration nor a used segment.
    /// Version history is kept, so a re-created datasource still gets newer versions.
    pub fn drop_datasource(&self, name: &str) -> Result<()> {
        let mut conn = self.conn.lock();
        let what = &format!("dropping datasource `{name}`");
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err(what))?;
        let registered = tx
            .execute("DELETE FROM datasources WHERE name = ?1", params![name])
            .map_err(self.err(what))?;
        let segments = tx
            .execute(
                "UPDATE segments SET used = 0 WHERE datasource = ?1 AND used = 1",
                params![name],
            )
            .map_err(self.err(what))?;
        if registered == 0 && segments == 0 {
            return Err(Error::NotFound(format!("datasource `{name}`")));
        }
        tx.commit().map_err(self.err(what))?;
        self.datasource_changes.fetch_add(1, Ordering::AcqRel);
        tracing::info!(datasource = name, segments, "dropped datasource");
        Ok(())
    }

    // ----- versions ----------------------------------------------------------------------------

    /// Hand out a new segment version for `datasource`.
    ///
    /// The result is at least the current time in microseconds and strictly greater than every
    /// version this catalog has handed out for the datasource before, even across restarts and
    /// wall-clock steps backwards (the last one is persisted in the same transaction).
    pub fn allocate_version(&self, datasource: &str) -> Result<Version> {
        let mut conn = self.conn.lock();
        let what = &format!("allocating a version for `{datasource}`");
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err(what))?;
        let last: Option<i64> = tx
            .query_row(
                "SELECT last_version FROM versions WHERE datasource = ?1",
                params![datasource],
                |row| row.get(0),
            )
            .optional()
            .map_err(self.err(what))?;
        let floor = match last {
            Some(last) => last.checked_add(1).ok_or_else(|| {
                Error::ResourcesExhausted(format!(
                    "versions of datasource `{datasource}` exhausted (last {last})"
                ))
            })?,
            None => 1,
        };
        let version = floor.max(now_micros());
        tx.execute(
            "INSERT INTO versions (datasource, last_version) VALUES (?1, ?2)
             ON CONFLICT (datasource) DO UPDATE SET last_version = excluded.last_version",
            params![datasource, version],
        )
        .map_err(self.err(what))?;
        tx.commit().map_err(self.err(what))?;
        // `version >= 1`, so the conversion cannot fail; keep it checked anyway.
        u64::try_from(version)
            .map(Version)
            .map_err(|_| Error::internal(format!("allocated negative version {version}")))
    }

    // ----- segments ----------------------------------------------------------------------------

    /// Publish segments atomically: one transaction inserts every record, or none.
    ///
    /// Fails with [`Error::AlreadyExists`] naming the first record whose id is already in the
    /// catalog (used or not) or repeated within `segments`.
    ///
    /// With `replace = Some(intervals)` the same transaction marks unused every used segment of
    /// the (single) datasource being published whose version is lower than the lowest published
    /// version and whose interval lies within the union of `intervals`. That is how re-ingestion
    /// and compaction swap data without a window where both or neither are visible. Segments
    /// only partly inside stay used (the timeline trims them). Replacing requires at least one
    /// record, all of one datasource; to remove data without replacing it use
    /// [`Catalog::drop_interval`].
    pub fn publish(&self, segments: &[SegmentRecord], replace: Option<&[Interval]>) -> Result<()> {
        for rec in segments {
            check_record(rec)?;
        }
        let replace_plan = match replace {
            None => None,
            Some(intervals) => Some(replace_plan(segments, intervals)?),
        };
        if segments.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.lock();
        let what = &format!("publishing {} segments", segments.len());
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err(what))?;
        let created_at = now_millis();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO segments (datasource, start_ms, end_ms, version, partition, path,
                                           size_bytes, num_rows, used, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9)",
                )
                .map_err(self.err(what))?;
            for rec in segments {
                let res = insert.execute(params![
                    rec.id.datasource,
                    rec.id.interval.start,
                    rec.id.interval.end,
                    to_i64("version", rec.id.version.0)?,
                    rec.id.partition,
                    rec.path,
                    to_i64("size_bytes", rec.size_bytes)?,
                    to_i64("num_rows", rec.num_rows)?,
                    created_at,
                ]);
                match res {
                    Ok(_) => {}
                    // Dropping `tx` without commit rolls every insert back.
                    Err(e) if is_constraint(&e) => {
                        return Err(Error::AlreadyExists(format!("segment {}", rec.id)));
                    }
                    Err(e) => return Err(self.err(format_args!("publishing {}", rec.id))(e)),
                }
            }
        }
        let mut replaced = 0usize;
        if let Some((datasource, below, intervals)) = replace_plan {
            let mut mark = tx
                .prepare_cached(
                    "UPDATE segments SET used = 0
                     WHERE datasource = ?1 AND used = 1 AND version < ?2
                       AND start_ms >= ?3 AND end_ms <= ?4",
                )
                .map_err(self.err(what))?;
            let below = to_i64("version", below.0)?;
            for iv in intervals {
                replaced += mark
                    .execute(params![datasource, below, iv.start, iv.end])
                    .map_err(self.err(what))?;
            }
        }
        tx.commit().map_err(self.err(what))?;
        tracing::debug!(published = segments.len(), replaced, "published segments");
        Ok(())
    }

    /// All used segments, of one datasource or of all, ordered by (datasource, start, end,
    /// version, partition) for the datasource form and unordered-but-deterministic otherwise.
    pub fn used_segments(&self, datasource: Option<&str>) -> Result<Vec<SegmentRecord>> {
        self.segments_where(true, datasource)
    }

    /// All unused (overshadowed or dropped) segments still in the catalog, for cleanup.
    pub fn unused_segments(&self, datasource: Option<&str>) -> Result<Vec<SegmentRecord>> {
        self.segments_where(false, datasource)
    }

    fn segments_where(&self, used: bool, datasource: Option<&str>) -> Result<Vec<SegmentRecord>> {
        let conn = self.conn.lock();
        let what = &format!(
            "reading {} segments{}",
            if used { "used" } else { "unused" },
            datasource.map(|d| format!(" of `{d}`")).unwrap_or_default()
        );
        let sql = match datasource {
            Some(_) => format!(
                "SELECT {SEGMENT_COLUMNS} FROM segments WHERE datasource = ?1 AND used = ?2 \
                 ORDER BY start_ms, end_ms, version, partition"
            ),
            None => format!("SELECT {SEGMENT_COLUMNS} FROM segments WHERE used = ?2"),
        };
        let mut stmt = conn.prepare_cached(&sql).map_err(self.err(what))?;
        let rows = stmt
            .query_map(params![datasource.unwrap_or(""), used], record_from_row)
            .map_err(self.err(what))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err(what))
    }

    /// SQLite's `PRAGMA data_version` for this connection: it changes whenever *another*
    /// connection (e.g. `basalt load` in another process) commits to the catalog, and not for
    /// this connection's own commits. Cheap: no table is read.
    pub fn data_version(&self) -> Result<i64> {
        let conn = self.conn.lock();
        conn.query_row("PRAGMA data_version", [], |row| row.get(0))
            .map_err(self.err("reading data_version"))
    }

    /// The catalog row of one segment (used or not), if any.
    pub fn get_segment(&self, id: &SegmentId) -> Result<Option<(SegmentRecord, bool)>> {
        let conn = self.conn.lock();
        let what = &format!("reading segment {id}");
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {SEGMENT_COLUMNS}, used FROM segments
                 WHERE datasource = ?1 AND start_ms = ?2 AND end_ms = ?3 AND version = ?4
                   AND partition = ?5"
            ))
            .map_err(self.err(what))?;
        stmt.query_row(
            params![
                id.datasource,
                id.interval.start,
                id.interval.end,
                to_i64("version", id.version.0)?,
                id.partition
            ],
            |row| Ok((record_from_row(row)?, row.get::<_, bool>(8)?)),
        )
        .optional()
        .map_err(self.err(what))
    }

    /// Relative paths of every segment row, used or not: the files that are *not* orphans.
    pub fn all_segment_paths(&self) -> Result<std::collections::HashSet<String>> {
        let conn = self.conn.lock();
        let what = "listing segment paths";
        let mut stmt = conn
            .prepare_cached("SELECT path FROM segments")
            .map_err(self.err(what))?;
        let rows = stmt
            .query_map([], |row| row.get(0))
            .map_err(self.err(what))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(self.err(what))
    }

    /// Mark the given segments unused in one transaction; returns how many were used before.
    /// Unknown ids are ignored.
    pub fn mark_unused(&self, ids: &[SegmentId]) -> Result<usize> {
        self.for_each_id(
            ids,
            "marking segments unused",
            "UPDATE segments SET used = 0
             WHERE datasource = ?1 AND start_ms = ?2 AND end_ms = ?3 AND version = ?4
               AND partition = ?5 AND used = 1",
        )
    }

    /// Delete the rows of unused segments (after their files are gone); returns how many rows
    /// went. Used segments and unknown ids are left alone.
    pub fn delete_unused(&self, ids: &[SegmentId]) -> Result<usize> {
        self.for_each_id(
            ids,
            "deleting unused segments",
            "DELETE FROM segments
             WHERE datasource = ?1 AND start_ms = ?2 AND end_ms = ?3 AND version = ?4
               AND partition = ?5 AND used = 0",
        )
    }

    fn for_each_id(&self, ids: &[SegmentId], what: &str, sql: &str) -> Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err(what))?;
        let mut changed = 0;
        {
            let mut stmt = tx.prepare_cached(sql).map_err(self.err(what))?;
            for id in ids {
                changed += stmt
                    .execute(params![
                        id.datasource,
                        id.interval.start,
                        id.interval.end,
                        to_i64("version", id.version.0)?,
                        id.partition
                    ])
                    .map_err(self.err(format_args!("{what} ({id})")))?;
            }
        }
        tx.commit().map_err(self.err(what))?;
        Ok(changed)
    }

    /// Mark unused every used segment of `datasource` whose interval lies within `interval`;
    /// returns how many. Segments only partly inside are kept.
    pub fn drop_interval(&self, datasource: &str, interval: Interval) -> Result<usize> {
        let conn = self.conn.lock();
        conn.execute(
            "UPDATE segments SET used = 0
             WHERE datasource = ?1 AND used = 1 AND start_ms >= ?2 AND end_ms <= ?3",
            params![datasource, interval.start, interval.end],
        )
        .map_err(self.err(format_args!(
            "dropping interval {interval} of `{datasource}`"
        )))
    }
}

/// Create or upgrade the schema. Runs in one transaction so a crash leaves the old version.
fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let ctx =
        |e: rusqlite::Error| Error::Catalog(format!("migrating schema of {}: {e}", path.display()));
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Exclusive)
        .map_err(ctx)?;
    let found: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(ctx)?;
    if found > SCHEMA_VERSION {
        return Err(Error::Incompatible {
            path: path.to_path_buf(),
            reason: format!(
                "catalog schema version {found} is newer than this build supports \
                 ({SCHEMA_VERSION})"
            ),
        });
    }
    if found < 0 {
        return Err(Error::corruption(
            path,
            "catalog schema version",
            format!("0..={SCHEMA_VERSION}"),
            found,
        ));
    }
    if found == 0 {
        tx.execute_batch(SCHEMA_V1).map_err(ctx)?;
    }
    // Future migrations: `if found < 2 { ... }`, each step idempotent within this transaction.
    if found != SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(ctx)?;
        tracing::info!(path = %path.display(), from = found, to = SCHEMA_VERSION, "catalog schema migrated");
    }
    tx.commit().map_err(ctx)
}

/// Decode a row selected with [`SEGMENT_COLUMNS`].
fn record_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SegmentRecord> {
    let unsigned = |idx: usize| -> rusqlite::Result<u64> {
        let v: i64 = row.get(idx)?;
        u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(idx, v))
    };
    Ok(SegmentRecord {
        id: SegmentId {
            datasource: row.get(0)?,
            interval: Interval {
                start: row.get(1)?,
                end: row.get(2)?,
            },
            version: Version(unsigned(3)?),
            partition: row.get(4)?,
        },
        path: row.get(5)?,
        size_bytes: unsigned(6)?,
        num_rows: unsigned(7)?,
    })
}

/// Check a record is well-formed before it reaches the database.
fn check_record(rec: &SegmentRecord) -> Result<()> {
    if rec.id.datasource.is_empty() {
        return Err(Error::invalid(format!(
            "segment {}: datasource name is empty",
            rec.id
        )));
    }
    if rec.id.interval.is_empty() {
        return Err(Error::invalid(format!(
            "segment {}: interval {} is empty",
            rec.id, rec.id.interval
        )));
    }
    if rec.path.is_empty() {
        return Err(Error::invalid(format!("segment {}: path is empty", rec.id)));
    }
    to_i64("version", rec.id.version.0)?;
    to_i64("size_bytes", rec.size_bytes)?;
    to_i64("num_rows", rec.num_rows)?;
    Ok(())
}

/// For a replacing publish: the datasource, the version below which segments are replaced, and
/// the replace intervals merged into sorted, disjoint, non-adjacent intervals.
fn replace_plan(
    segments: &[SegmentRecord],
    intervals: &[Interval],
) -> Result<(String, Version, Vec<Interval>)> {
    let Some(first) = segments.first() else {
        return Err(Error::invalid(
            "replace needs at least one segment to publish (use drop_interval to remove data)",
        ));
    };
    let datasource = &first.id.datasource;
    if let Some(other) = segments.iter().find(|r| &r.id.datasource != datasource) {
        return Err(Error::invalid(format!(
            "replace publishes one datasource at a time, got `{datasource}` and `{}`",
            other.id.datasource
        )));
    }
    let below = segments
        .iter()
        .map(|r| r.id.version)
        .min()
        .unwrap_or(first.id.version);
    let mut sorted: Vec<Interval> = intervals
        .iter()
        .filter(|iv| !iv.is_empty())
        .copied()
        .collect();
    sorted.sort_by_key(|iv| (iv.start, iv.end));
    let mut merged: Vec<Interval> = Vec::with_capacity(sorted.len());
    for iv in sorted {
        match merged.last_mut() {
            Some(last) if iv.start <= last.end => last.end = last.end.max(iv.end),
            _ => merged.push(iv),
        }
    }
    Ok((datasource.clone(), below, merged))
}

fn check_json(name: &str, spec_json: &str) -> Result<()> {
    serde_json::from_str::<serde_json::Value>(spec_json)
        .map(|_| ())
        .map_err(|e| {
            Error::invalid(format!(
                "spec of datasource `{name}` is not valid JSON: {e}"
            ))
        })
}

fn to_i64(field: &str, v: u64) -> Result<i64> {
    i64::try_from(v)
        .map_err(|_| Error::invalid(format!("{field} {v} exceeds the catalog's i64 range")))
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation)
}

/// Wall-clock milliseconds since the epoch (0 if the clock is before 1970).
fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Wall-clock microseconds since the epoch (0 if the clock is before 1970).
fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn iv(start: i64, end: i64) -> Interval {
        Interval { start, end }
    }

    fn rec(ds: &str, start: i64, end: i64, version: u64, partition: u32) -> SegmentRecord {
        SegmentRecord {
            id: SegmentId {
                datasource: ds.to_string(),
                interval: iv(start, end),
                version: Version(version),
                partition,
            },
            path: format!("segments/{ds}/{start}_{end}/{version}/{partition}.bseg"),
            size_bytes: 1000 + u64::from(partition),
            num_rows: 10,
        }
    }

    fn ids(recs: &[SegmentRecord]) -> Vec<SegmentId> {
        let mut v: Vec<_> = recs.iter().map(|r| r.id.clone()).collect();
        v.sort();
        v
    }

    #[test]
    fn open_creates_schema_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        {
            let cat = Catalog::open(dir.path()).unwrap();
            cat.create_datasource("wiki", r#"{"a":1}"#).unwrap();
        }
        let cat = Catalog::open(dir.path()).unwrap();
        assert_eq!(cat.list_datasources().unwrap(), vec!["wiki".to_string()]);
        let conn = cat.conn.lock();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode.to_ascii_lowercase(), "wal");
    }

    #[test]
    fn newer_schema_is_incompatible() {
        let dir = tempfile::tempdir().unwrap();
        {
            let cat = Catalog::open(dir.path()).unwrap();
            cat.conn
                .lock()
                .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        let err = Catalog::open(dir.path()).unwrap_err();
        assert!(matches!(err, Error::Incompatible { .. }), "{err}");
    }

    #[test]
    fn datasource_crud() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(dir.path()).unwrap();
        cat.create_datasource("b", "{}").unwrap();
        cat.create_datasource("a", r#"{"x":1}"#).unwrap();
        assert!(matches!(
            cat.create_datasource("a", "{}"),
            Err(Error::AlreadyExists(_))
        ));
        assert!(matches!(
            cat.create_datasource("c", "{not json"),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(cat.list_datasources().unwrap(), vec!["a", "b"]);
        assert_eq!(
            cat.get_datasource("a").unwrap().as_deref(),
            Some(r#"{"x":1}"#)
        );
        assert_eq!(cat.get_datasource("zz").unwrap(), None);
        cat.update_datasource_spec("a", r#"{"x":2}"#).unwrap();
        assert_eq!(
            cat.get_datasource("a").unwrap().as_deref(),
            Some(r#"{"x":2}"#)
        );
        assert!(matches!(
            cat.update_datasource_spec("zz", "{}"),
            Err(Error::NotFound(_))
        ));

        cat.publish(&[rec("a", 0, 10, 1, 0), rec("b", 0, 10, 1, 0)], None)
            .unwrap();
        cat.drop_datasource("a").unwrap();
        assert_eq!(cat.list_datasources().unwrap(), vec!["b"]);
        assert_eq!(
            ids(&cat.used_segments(None).unwrap()),
            ids(&[rec("b", 0, 10, 1, 0)])
        );
        assert_eq!(
            ids(&cat.unused_segments(Some("a")).unwrap()),
            ids(&[rec("a", 0, 10, 1, 0)])
        );
        assert!(matches!(cat.drop_datasource("a"), Err(Error::NotFound(_))));
        // Re-creating is allowed after a drop.
        cat.create_datasource("a", "{}").unwrap();
    }

    #[test]
    fn versions_strictly_increase_and_survive_restart_and_clock_steps() {
        let dir = tempfile::tempdir().unwrap();
        let mut last = Version(0);
        {
            let cat = Catalog::open(dir.path()).unwrap();
            for _ in 0..100 {
                let v = cat.allocate_version("wiki").unwrap();
                assert!(v > last, "{v:?} <= {last:?}");
                last = v;
            }
            assert!(last.0 >= u64::try_from(now_micros()).unwrap() - 60_000_000);
            // Simulate a version handed out by a clock far in the future, then a step back.
            let future = now_micros() + 3_600_000_000;
            cat.conn
                .lock()
                .execute(
                    "UPDATE versions SET last_version = ?1 WHERE datasource = 'wiki'",
                    params![future],
                )
                .unwrap();
            last = Version(u64::try_from(future).unwrap());
        }
        let cat = Catalog::open(dir.path()).unwrap();
        let v = cat.allocate_version("wiki").unwrap();
        assert_eq!(v.0, last.0 + 1);
        // Other datasources are independent and start at "now".
        let other = cat.allocate_version("other").unwrap();
        assert!(other < v);
    }

    #[test]
    fn publish_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(dir.path()).unwrap();
        cat.publish(&[rec("ds", 0, 10, 1, 0)], None).unwrap();
        // Second batch contains a duplicate of an existing id: nothing of it is inserted.
        let batch = [
            rec("ds", 10, 20, 1, 0),
            rec("ds", 0, 10, 1, 0),
            rec("ds", 20, 30, 1, 0),
        ];
        let err = cat.publish(&batch, None).unwrap_err();
        assert!(matches!(err, Error::AlreadyExists(_)), "{err}");
        assert!(err.to_string().contains("ds_"), "{err}");
        assert_eq!(
            cat.used_segments(Some("ds")).unwrap(),
            vec![rec("ds", 0, 10, 1, 0)]
        );
        // Duplicates within one batch are rejected the same way.
        let err = cat
            .publish(&[rec("ds", 30, 40, 1, 0), rec("ds", 30, 40, 1, 0)], None)
            .unwrap_err();
        assert!(matches!(err, Error::AlreadyExists(_)), "{err}");
        assert_eq!(cat.used_segments(None).unwrap().len(), 1);
        // Empty intervals are invalid.
        assert!(matches!(
            cat.publish(&[rec("ds", 5, 5, 2, 0)], None),
            Err(Error::InvalidArgument(_))
        ));
        // Records round-trip exactly.
        let r = rec("ds", -86_400_000, 0, 7, 3);
        cat.publish(std::slice::from_ref(&r), None).unwrap();
        assert_eq!(cat.get_segment(&r.id).unwrap(), Some((r.clone(), true)));
    }

    #[test]
    fn replace_marks_older_segments_within_intervals_unused() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(dir.path()).unwrap();
        let old = [
            rec("ds", 0, 10, 1, 0),
            rec("ds", 0, 10, 1, 1),
            rec("ds", 10, 20, 1, 0),
            rec("ds", 15, 25, 1, 0), // partly outside the replace intervals: stays used
            rec("ds", 20, 30, 5, 0), // newer than the replacement: stays used
            rec("other", 0, 10, 1, 0),
        ];
        cat.publish(&old, None).unwrap();
        let new = [rec("ds", 0, 20, 3, 0), rec("ds", 0, 20, 3, 1)];
        // Two adjacent intervals act as their union [0, 30).
        cat.publish(&new, Some(&[iv(0, 10), iv(10, 30)])).unwrap();
        let used = ids(&cat.used_segments(None).unwrap());
        let expected = ids(&[
            rec("ds", 15, 25, 1, 0),
            rec("ds", 20, 30, 5, 0),
            rec("other", 0, 10, 1, 0),
            new[0].clone(),
            new[1].clone(),
        ]);
        // (15, 25) lies within [0, 30): replaced too.
        let expected: Vec<_> = expected
            .into_iter()
            .filter(|id| id.interval != iv(15, 25))
            .collect();
        assert_eq!(used, expected);
        assert_eq!(cat.unused_segments(Some("ds")).unwrap().len(), 4);

        // Replace across datasources, or with nothing, is rejected.
        assert!(matches!(
            cat.publish(
                &[rec("a", 0, 1, 9, 0), rec("b", 0, 1, 9, 0)],
                Some(&[iv(0, 1)])
            ),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            cat.publish(&[], Some(&[iv(0, 1)])),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn replace_keeps_partially_covered_segments() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(dir.path()).unwrap();
        cat.publish(&[rec("ds", 0, 20, 1, 0)], None).unwrap();
        cat.publish(&[rec("ds", 0, 10, 2, 0)], Some(&[iv(0, 10)]))
            .unwrap();
        assert_eq!(cat.used_segments(Some("ds")).unwrap().len(), 2);
    }

    #[test]
    fn drop_interval_mark_unused_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(dir.path()).unwrap();
        let recs = [
            rec("ds", 0, 10, 1, 0),
            rec("ds", 10, 20, 1, 0),
            rec("ds", 5, 15, 2, 0),
            rec("ds", 20, 30, 1, 0),
        ];
        cat.publish(&recs, None).unwrap();
        assert_eq!(cat.drop_interval("ds", iv(0, 20)).unwrap(), 3);
        assert_eq!(cat.drop_interval("ds", iv(0, 20)).unwrap(), 0);
        assert_eq!(
            ids(&cat.used_segments(Some("ds")).unwrap()),
            ids(&recs[3..])
        );
        assert_eq!(
            cat.mark_unused(&[recs[3].id.clone(), recs[0].id.clone()])
                .unwrap(),
            1
        );
        assert!(cat.used_segments(None).unwrap().is_empty());
        assert_eq!(cat.all_segment_paths().unwrap().len(), 4);
        assert_eq!(cat.delete_unused(&ids(&recs)).unwrap(), 4);
        assert!(cat.unused_segments(None).unwrap().is_empty());
        assert_eq!(cat.get_segment(&recs[0].id).unwrap(), None);
    }

    /// 100k segments published in batches of 10k, then loaded back. Prints timings.
    #[test]
    fn hundred_thousand_segments() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(dir.path()).unwrap();
        const TOTAL: u32 = 100_000;
        const BATCH: u32 = 10_000;
        const HOUR: i64 = 3_600_000;
        let start = Instant::now();
        for b in 0..TOTAL / BATCH {
            let batch: Vec<_> = (b * BATCH..(b + 1) * BATCH)
                .map(|i| {
                    let hour = i64::from(i / 4);
                    rec(
                        "metrics",
                        hour * HOUR,
                        (hour + 1) * HOUR,
                        1_700_000_000_000_000,
                        i % 4,
                    )
                })
                .collect();
            cat.publish(&batch, None).unwrap();
        }
        let publish = start.elapsed();
        let start = Instant::now();
        let all = cat.used_segments(None).unwrap();
        let load_all = start.elapsed();
        let start = Instant::now();
        let one = cat.used_segments(Some("metrics")).unwrap();
        let load_one = start.elapsed();
        eprintln!(
            "catalog 100k: publish {TOTAL} in batches of {BATCH}: {publish:?}; \
             used_segments(None): {load_all:?}; used_segments(Some): {load_one:?}"
        );
        assert_eq!(all.len(), TOTAL as usize);
        assert_eq!(one.len(), TOTAL as usize);
        assert_eq!(one[0], rec("metrics", 0, HOUR, 1_700_000_000_000_000, 0));
        // Replace a day's worth on top of 100k rows.
        let start = Instant::now();
        let new = rec("metrics", 0, 24 * HOUR, 1_800_000_000_000_000, 0);
        cat.publish(&[new], Some(&[iv(0, 24 * HOUR)])).unwrap();
        eprintln!("catalog 100k: replace one day: {:?}", start.elapsed());
        assert_eq!(
            cat.used_segments(Some("metrics")).unwrap().len(),
            TOTAL as usize - 96 + 1
        );
    }
}
