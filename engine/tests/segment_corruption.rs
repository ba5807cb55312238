//! Damaged segment files: opening, verifying or exporting one never panics and never returns
//! wrong data; it fails with a typed error (`Corruption` or `Incompatible`) that names the file
//! and the check that failed.
//!
//! - truncation at (nearly) every length;
//! - seeded random damage (byte flips, 0x00/0xFF fills) anywhere in the file, compared against
//!   the original rows: the only acceptable outcomes are an error or identical rows;
//! - newer/older format and directory versions → `Incompatible`;
//! - garbage directories whose checksum was recomputed (so only the structural checks stand
//!   between the bytes and the decoders);
//! - structured garbage in the decoded directory (fields at boundary values, roles, types and
//!   codecs changed, parts and blocks dropped, duplicated or borrowed from other columns),
//!   re-encoded with a valid checksum;
//! - garbage parts and blocks whose checksums were recomputed (so the decoders themselves —
//!   pco, zstd, roaring, dictionary, blobs — see hostile bytes), and length fields that claim
//!   gigabytes: a file of a few KiB must not make the reader reserve them (a failed allocation
//!   aborts the process; a counting global allocator checks the largest single request).
//!
//! Every fuzz iteration runs under `catch_unwind`; a panic is recorded with its seed, the
//! damage done and a backtrace, and the test fails listing them. To replay one case, run the
//! named test with `BASALT_FUZZ_SEED=<seed>` (only that seed runs).

#![allow(clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::Once;
use std::time::Instant;

use arrow_array::RecordBatch;
use basalt_engine::Error;
use basalt_engine::schema::DataSchema;
use basalt_engine::segment::format::{
    ByteRange, DIRECTORY_VERSION, Directory, FOOTER_SIZE, FOOTER_VERSION_OFFSET, FORMAT_VERSION,
    HEADER_SIZE, HEADER_VERSION_OFFSET, OLDEST_SUPPORTED_FORMAT_VERSION,
};
use basalt_engine::segment::{Segment, SegmentWriter, verify_file, verify_segment};
use basalt_engine::time::Interval;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

const DAY: i64 = 86_400_000;
const T0: i64 = 1_700_000_000_000 / DAY * DAY;
/// The name given to `Segment::from_bytes`; every error must mention it.
const NAME: &str = "damaged-under-test.bseg";

/// Bytes of the header that no check covers: the `flags` word after the format version. The
/// writer always writes zero and the reader ignores it, so damage there is invisible (and
/// harmless: the rows come back identical). Any other undetected change fails the tests.
const UNCHECKED_HEADER_FLAGS: std::ops::Range<usize> = HEADER_VERSION_OFFSET + 4..HEADER_SIZE;

// ---------------------------------------------------------------------------------------------
// Building the segments under test.

fn schema(rollup: bool) -> DataSchema {
    DataSchema::from_value(&json!({
        "dataSource": "corruption",
        "timestampSpec": {"column": "ts", "format": "millis"},
        "dimensionsSpec": {"dimensions": [
            {"type": "string", "name": "country"},
            {"type": "string", "name": "tags", "multiValueHandling": "SORTED_ARRAY"},
            {"type": "long", "name": "port"},
            {"type": "double", "name": "ratio"}
        ]},
        "metricsSpec": [
            {"type": "count", "name": "count"},
            {"type": "longSum", "name": "bytes", "fieldName": "lv"},
            {"type": "doubleMax", "name": "latency_max", "fieldName": "dv"},
            {"type": "longFirst", "name": "bytes_first", "fieldName": "lv"},
            {"type": "doubleLast", "name": "latency_last", "fieldName": "dv"},
            {"type": "HLLSketchBuild", "name": "users", "fieldName": "user"}
        ],
        "granularitySpec": {
            "segmentGranularity": "day",
            "queryGranularity": if rollup { "minute" } else { "none" },
            "rollup": rollup
        }
    }))
    .unwrap()
}

/// `n` input rows with nulls in every column (missing fields, empty lists).
fn rows(n: usize, seed: u64) -> Vec<Map<String, Value>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let countries = ["DE", "FR", "US", "JP", "é", "BR"];
    let tags = ["a", "b", "c", "dd", "zz"];
    (0..n)
        .map(|_| {
            let mut row = Map::new();
            row.insert("ts".into(), json!(T0 + rng.random_range(0..DAY)));
            if rng.random_bool(0.85) {
                row.insert(
                    "country".into(),
                    json!(countries[rng.random_range(0..countries.len())]),
                );
            }
            match rng.random_range(0..4) {
                0 => {}
                1 => {
                    row.insert("tags".into(), json!(tags[rng.random_range(0..tags.len())]));
                }
                _ => {
                    let len = rng.random_range(0..4);
                    let v: Vec<&str> = (0..len)
                        .map(|_| tags[rng.random_range(0..tags.len())])
                        .collect();
                    row.insert("tags".into(), json!(v));
                }
            }
            if rng.random_bool(0.8) {
                row.insert("port".into(), json!(rng.random_range(1i64..5) * 1000 + 80));
            }
            if rng.random_bool(0.8) {
                row.insert(
                    "ratio".into(),
                    json!(rng.random_range(-50i64..50) as f64 / 4.0),
                );
            }
            if rng.random_bool(0.9) {
                row.insert("lv".into(), json!(rng.random_range(-1000i64..100_000)));
            }
            if rng.random_bool(0.9) {
                row.insert(
                    "dv".into(),
                    json!(rng.random_range(0i64..4000) as f64 / 8.0),
                );
            }
            if rng.random_bool(0.9) {
                row.insert(
                    "user".into(),
                    json!(format!("u{}", rng.random_range(0..200))),
                );
            }
            row
        })
        .collect()
}

/// Write a segment of `n` rows and return its bytes.
fn build(n: usize, rollup: bool, seed: u64) -> Vec<u8> {
    let schema = schema(rollup);
    let mut w = SegmentWriter::new(&schema, Interval::new(T0, T0 + DAY).unwrap()).unwrap();
    for row in rows(n, seed) {
        w.push_json(&row).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.bseg");
    w.finish(&path).unwrap();
    std::fs::read(&path).unwrap()
}

/// The original segment with its rows, checked to be healthy.
struct Fixture {
    bytes: Vec<u8>,
    batches: Vec<RecordBatch>,
}

impl Fixture {
    fn new(n: usize, rollup: bool, seed: u64) -> Fixture {
        let bytes = build(n, rollup, seed);
        let seg = Segment::from_bytes(bytes.clone(), NAME).unwrap();
        verify_segment(&seg).unwrap();
        let batches = seg.to_record_batches().unwrap();
        Fixture { bytes, batches }
    }

    fn small() -> Fixture {
        let f = Fixture::new(400, true, 1);
        let seg = Segment::from_bytes(f.bytes.clone(), NAME).unwrap();
        assert!(seg.num_rows() > 300, "rollup must keep most rows");
        assert_eq!(seg.num_blocks(), 1);
        for c in seg.columns().iter().skip(1).filter(|c| c.name != "count") {
            assert!(c.null_count > 0, "column `{}` should have nulls", c.name);
        }
        f
    }
}

// ---------------------------------------------------------------------------------------------
// Byte surgery helpers.

fn le_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().unwrap())
}

/// `(offset, len)` of the directory, read from the footer of an undamaged file.
fn directory_span(bytes: &[u8]) -> (usize, usize) {
    let footer = &bytes[bytes.len() - FOOTER_SIZE..];
    (le_u64(&footer[0..]) as usize, le_u64(&footer[8..]) as usize)
}

/// Replace the directory bytes (which end where the footer starts) and fix the footer's
/// directory length and checksum, so the file passes the directory checksum again.
fn replace_directory(bytes: &[u8], new_dir: &[u8]) -> Vec<u8> {
    let (off, _) = directory_span(bytes);
    let mut footer = bytes[bytes.len() - FOOTER_SIZE..].to_vec();
    footer[8..16].copy_from_slice(&(new_dir.len() as u64).to_le_bytes());
    footer[16..20].copy_from_slice(&crc32c::crc32c(new_dir).to_le_bytes());
    let mut out = bytes[..off].to_vec();
    out.extend_from_slice(new_dir);
    out.extend_from_slice(&footer);
    out
}

/// Every checksummed range of the directory, in the order the writer lays them out.
fn ranges_mut(d: &mut Directory) -> Vec<&mut ByteRange> {
    let mut out = Vec::new();
    for c in &mut d.columns {
        for p in &mut c.parts {
            out.push(&mut p.range);
        }
        for s in &mut c.streams {
            for b in &mut s.blocks {
                out.push(&mut b.range);
            }
        }
    }
    out
}

/// A file taken apart: header, directory and the bytes of every part and block.
struct Parts {
    header: Vec<u8>,
    directory: Directory,
    chunks: Vec<Vec<u8>>,
}

impl Parts {
    fn split(bytes: &[u8]) -> Parts {
        let (off, len) = directory_span(bytes);
        let mut directory = Directory::decode(&bytes[off..off + len], Path::new(NAME)).unwrap();
        let chunks = ranges_mut(&mut directory)
            .into_iter()
            .map(|r| bytes[r.offset as usize..(r.offset + r.len) as usize].to_vec())
            .collect();
        Parts {
            header: bytes[..HEADER_SIZE].to_vec(),
            directory,
            chunks,
        }
    }

    /// Lay the chunks out again with fresh offsets, lengths and checksums, then the directory
    /// and a footer with its checksum: the result passes every checksum.
    fn assemble(&self) -> Vec<u8> {
        let mut out = self.header.clone();
        let mut directory = self.directory.clone();
        for (r, chunk) in ranges_mut(&mut directory).into_iter().zip(&self.chunks) {
            *r = ByteRange {
                offset: out.len() as u64,
                len: chunk.len() as u64,
                crc: crc32c::crc32c(chunk),
            };
            out.extend_from_slice(chunk);
        }
        let dir = directory.encode();
        let dir_range = ByteRange {
            offset: out.len() as u64,
            len: dir.len() as u64,
            crc: crc32c::crc32c(&dir),
        };
        out.extend_from_slice(&dir);
        out.extend_from_slice(&basalt_engine::segment::format::encode_footer(&dir_range));
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Allocation tracking: a damaged file of a few KiB must not make the reader reserve gigabytes
// (on a smaller machine that aborts the process, which no `Result` can report).

/// The largest single allocation a reader of a hostile file may make. Generous: a whole block of
/// 65 536 8-byte values is 512 KiB.
const MAX_SINGLE_ALLOCATION: usize = 256 << 20;

thread_local! {
    static LARGEST_ALLOCATION: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, recording the largest request made on each thread.
struct TrackingAllocator;

// SAFETY: every call is forwarded unchanged to `System`, which upholds the `GlobalAlloc`
// contract; the bookkeeping only touches a const-initialised thread-local `Cell` (no allocation,
// no destructor) and is skipped if the thread-local is gone.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for TrackingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation(new_size);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: TrackingAllocator = TrackingAllocator;

fn note_allocation(size: usize) {
    let _ = LARGEST_ALLOCATION.try_with(|m| {
        if size > m.get() {
            m.set(size);
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Panic capture.

thread_local! {
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static CAPTURED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Install (once per process) a panic hook that, on threads inside [`guarded`], records the
/// message, location and a backtrace instead of printing them; other threads keep the default.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CAPTURING.with(Cell::get) {
                let bt = Backtrace::force_capture();
                CAPTURED.with(|c| *c.borrow_mut() = Some(format!("{info}\nbacktrace:\n{bt}")));
            } else {
                default(info);
            }
        }));
    });
}

/// Run `f`, turning a panic into `Err(message with backtrace)`, and an allocation larger than
/// [`MAX_SINGLE_ALLOCATION`] into `Ok(Err(..))`.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<Result<T, String>, String> {
    guarded_with_limit(MAX_SINGLE_ALLOCATION, f)
}

/// [`guarded`] with another allocation limit.
fn guarded_with_limit<T>(
    limit: usize,
    f: impl FnOnce() -> Result<T, String>,
) -> Result<Result<T, String>, String> {
    install_panic_hook();
    CAPTURING.with(|c| c.set(true));
    LARGEST_ALLOCATION.with(|m| m.set(0));
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    let largest = LARGEST_ALLOCATION.with(Cell::get);
    CAPTURING.with(|c| c.set(false));
    let r = r.map_err(|_| {
        CAPTURED
            .with(|c| c.borrow_mut().take())
            .unwrap_or_else(|| "panic (no message captured)".into())
    })?;
    if largest > limit {
        return Ok(Err(format!(
            "HUGE ALLOCATION: reading the damaged file allocated {largest} bytes at once \
             (limit {limit}); otherwise {}",
            match &r {
                Ok(_) => "the outcome was acceptable".to_string(),
                Err(e) => e.clone(),
            }
        )));
    }
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// Judging one damaged file.

/// How far a damaged file got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// `Segment::open`/`from_bytes` refused it.
    RejectedAtOpen,
    /// It opened, and `verify_segment` or `to_record_batches` refused it.
    RejectedLater,
    /// Everything succeeded and the rows are identical to the original.
    AcceptedIdentical,
    /// Everything succeeded with different rows (only acceptable when the damage was made to
    /// look legitimate, i.e. checksums were recomputed over changed data).
    AcceptedDifferent,
    /// `verify_segment` refused it, but `to_record_batches` exported different rows without an
    /// error (only acceptable when checksums were recomputed: export trusts what verify checks).
    ExportedDifferentVerifyRejected,
}

/// Check that an error is typed and well formed; `name` is the path it must mention.
fn check_error(e: &Error, name: &str, stage: &str) -> Result<(), String> {
    if !matches!(e, Error::Corruption { .. } | Error::Incompatible { .. }) {
        return Err(format!(
            "{stage}: expected a Corruption or Incompatible error, got {e:?}"
        ));
    }
    let msg = e.to_string();
    if !msg.contains(name) {
        return Err(format!(
            "{stage}: error does not name the file `{name}`: {msg}"
        ));
    }
    match e {
        Error::Corruption {
            check,
            expected,
            found,
            ..
        } if check.trim().is_empty() || expected.is_empty() || found.is_empty() => Err(format!(
            "{stage}: corruption error without a check, expected or found: {e:?}"
        )),
        Error::Corruption { .. } if !msg.contains("check failed") => Err(format!(
            "{stage}: corruption message does not name the failed check: {msg}"
        )),
        Error::Incompatible { reason, .. } if reason.trim().is_empty() => Err(format!(
            "{stage}: incompatible error without a reason: {e:?}"
        )),
        _ => Ok(()),
    }
}

/// Judge the result of opening a damaged file, then verify and export it. `strict` demands that any rows
/// exported without an error equal `original` (damage that does not fix up checksums).
fn judge_segment(
    seg: Result<Segment, Error>,
    name: &str,
    original: &[RecordBatch],
    strict: bool,
) -> Result<Outcome, String> {
    let seg = match seg {
        Err(e) => {
            check_error(&e, name, "open")?;
            return Ok(Outcome::RejectedAtOpen);
        }
        Ok(s) => s,
    };
    let verified = verify_segment(&seg);
    let exported = seg.to_record_batches();
    if let Err(e) = &verified {
        check_error(e, name, "verify_segment")?;
    }
    match (&verified, &exported) {
        (_, Err(e)) => {
            check_error(e, name, "to_record_batches")?;
            if verified.is_ok() {
                return Err(format!(
                    "verify_segment passed but to_record_batches failed: {e}"
                ));
            }
            Ok(Outcome::RejectedLater)
        }
        (_, Ok(batches)) if batches.as_slice() == original => Ok(if verified.is_ok() {
            Outcome::AcceptedIdentical
        } else {
            Outcome::RejectedLater
        }),
        (v, Ok(batches)) => {
            if strict {
                return Err(format!(
                    "WRONG DATA: to_record_batches returned rows that differ from the original \
                     without an error (verify_segment said {v:?}); first difference: {}",
                    first_difference(original, batches)
                ));
            }
            Ok(if v.is_ok() {
                Outcome::AcceptedDifferent
            } else {
                Outcome::ExportedDifferentVerifyRejected
            })
        }
    }
}

fn judge_bytes(bytes: Vec<u8>, original: &[RecordBatch], strict: bool) -> Result<Outcome, String> {
    judge_segment(Segment::from_bytes(bytes, NAME), NAME, original, strict)
}

/// Same as [`judge_bytes`] through a real file and `Segment::open` (the mmap path), plus
/// `verify_file`.
fn judge_file(
    bytes: &[u8],
    original: &[RecordBatch],
    strict: bool,
    dir: &Path,
) -> Result<Outcome, String> {
    let path = dir.join("damaged.bseg");
    std::fs::write(&path, bytes).unwrap();
    let name = path.display().to_string();
    let outcome = judge_segment(Segment::open(&path), &name, original, strict)?;
    // A rejected file fails verify_file (= open + verify) too, and an accepted one passes it.
    match (verify_file(&path), outcome) {
        (
            Err(e),
            Outcome::RejectedAtOpen
            | Outcome::RejectedLater
            | Outcome::ExportedDifferentVerifyRejected,
        ) => check_error(&e, &name, "verify_file")?,
        (Ok(_), Outcome::AcceptedIdentical | Outcome::AcceptedDifferent) => {}
        (r, o) => return Err(format!("verify_file said {r:?} but the outcome was {o:?}")),
    }
    std::fs::remove_file(&path).unwrap();
    Ok(outcome)
}

fn first_difference(a: &[RecordBatch], b: &[RecordBatch]) -> String {
    if a.len() != b.len() {
        return format!("{} batches vs {}", a.len(), b.len());
    }
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if x.schema() != y.schema() {
            return format!("batch {i} schema {:?} vs {:?}", x.schema(), y.schema());
        }
        if x.num_rows() != y.num_rows() {
            return format!("batch {i}: {} rows vs {}", x.num_rows(), y.num_rows());
        }
        for (c, (p, q)) in x.columns().iter().zip(y.columns()).enumerate() {
            if p != q {
                let name = x.schema().field(c).name().clone();
                for r in 0..p.len() {
                    if p.slice(r, 1) != q.slice(r, 1) {
                        return format!(
                            "batch {i} column `{name}` row {r}: {:?} vs {:?}",
                            p.slice(r, 1),
                            q.slice(r, 1)
                        );
                    }
                }
                return format!("batch {i} column `{name}` differs");
            }
        }
    }
    "none found".into()
}

/// Offsets where `a` and `b` differ (same length).
fn changed_offsets(a: &[u8], b: &[u8]) -> Vec<usize> {
    a.iter()
        .zip(b)
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .map(|(i, _)| i)
        .collect()
}

/// Seeds to run: `BASALT_FUZZ_SEED` replays one, otherwise `base..base + n`.
fn seeds(base: u64, n: u64) -> Vec<u64> {
    match std::env::var("BASALT_FUZZ_SEED") {
        Ok(s) => vec![s.parse().expect("BASALT_FUZZ_SEED must be a u64")],
        Err(_) => (base..base + n).collect(),
    }
}

/// Collects failures and outcome counts of a fuzz loop; panics at the end if any failed.
#[derive(Default)]
struct Tally {
    failures: Vec<String>,
    counts: std::collections::BTreeMap<String, usize>,
}

impl Tally {
    fn count(&mut self, what: impl Into<String>) {
        *self.counts.entry(what.into()).or_default() += 1;
    }

    fn fail(&mut self, msg: String) {
        self.failures.push(msg);
    }

    fn finish(self, test: &str, started: Instant) {
        eprintln!(
            "{test}: {:?} in {:.2?}, {} failures",
            self.counts,
            started.elapsed(),
            self.failures.len()
        );
        if !self.failures.is_empty() {
            let panics = self.failures.iter().filter(|f| f.contains("PANIC")).count();
            let mut msg = format!(
                "{test}: {} failing cases ({panics} panics); replay one with \
                 BASALT_FUZZ_SEED=<seed> cargo test -p basalt-engine --test segment_corruption \
                 {test}\n",
                self.failures.len()
            );
            for f in self.failures.iter().take(5) {
                let _ = writeln!(msg, "---\n{f}");
            }
            panic!("{msg}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Damage.

/// One random damage to `bytes` in place; returns a description for failure messages.
fn damage(rng: &mut StdRng, bytes: &mut [u8], tail_start: usize) -> String {
    let len = bytes.len();
    // Aim a good share of the damage at the header and at the directory + footer, which are
    // small but where every byte matters.
    let (lo, hi) = match rng.random_range(0..10) {
        0..=1 => (0, HEADER_SIZE),
        2..=5 => (tail_start, len),
        _ => (0, len),
    };
    match rng.random_range(0..4) {
        0 | 1 => {
            let n = rng.random_range(1..=8);
            let mut flips = Vec::new();
            for _ in 0..n {
                let at = rng.random_range(lo..hi);
                let x = rng.random_range(1..=255u8);
                bytes[at] ^= x;
                flips.push((at, x));
            }
            format!("xor {flips:?}")
        }
        k => {
            let fill = if k == 2 { 0x00 } else { 0xFF };
            let at = rng.random_range(lo..hi);
            let n = rng.random_range(1..=64).min(len - at);
            bytes[at..at + n].fill(fill);
            format!("fill {fill:#04x} over {at}..{}", at + n)
        }
    }
}

/// Random damage to the file and every outcome judged strictly: error or identical rows.
fn random_damage_loop(test: &str, f: &Fixture, base_seed: u64, iterations: u64) {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let (dir_off, _) = directory_span(&f.bytes);
    let mut tally = Tally::default();
    for seed in seeds(base_seed, iterations) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut bytes = f.bytes.clone();
        let what = damage(&mut rng, &mut bytes, dir_off);
        let changed = changed_offsets(&f.bytes, &bytes);
        if changed.is_empty() {
            tally.count("no-op damage");
            continue;
        }
        // Every 50th case goes through a real file and mmap.
        let via_file = seed % 50 == 0;
        let r = guarded(|| {
            if via_file {
                judge_file(&bytes, &f.batches, true, tmp.path())
            } else {
                judge_bytes(bytes.clone(), &f.batches, true)
            }
        });
        match r {
            Err(p) => tally.fail(format!("PANIC at seed {seed} ({what}):\n{p}")),
            Ok(Err(e)) => tally.fail(format!("seed {seed} ({what}): {e}")),
            Ok(Ok(Outcome::AcceptedIdentical)) => {
                if changed.iter().all(|o| UNCHECKED_HEADER_FLAGS.contains(o)) {
                    tally.count("undetected (header flags only)");
                } else {
                    tally.fail(format!(
                        "seed {seed} ({what}): damage at offsets {changed:?} went undetected \
                         (rows identical, but no check covers these bytes)"
                    ));
                }
            }
            Ok(Ok(o)) => tally.count(format!("{o:?}")),
        }
    }
    tally.finish(test, started);
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
fn fixture_round_trips_through_split_and_assemble() {
    let f = Fixture::small();
    assert_eq!(Parts::split(&f.bytes).assemble(), f.bytes);
}

/// Truncation at every length of the last 200 bytes and every 7th length before.
#[test]
fn truncated_files_are_rejected() {
    let f = Fixture::small();
    let len = f.bytes.len();
    let tmp = tempfile::tempdir().unwrap();
    let mut n = 0;
    let mut tally = Tally::default();
    let started = Instant::now();
    for cut in (0..len).filter(|&l| l + 200 >= len || l % 7 == 0) {
        n += 1;
        let bytes = f.bytes[..cut].to_vec();
        let r = guarded(|| {
            let seg = Segment::from_bytes(bytes.clone(), NAME);
            match &seg {
                Err(Error::Corruption { check, .. })
                    if check == "file size" || check.starts_with("footer magic") => {}
                Err(e) => return Err(format!("unexpected error for a truncated file: {e:?}")),
                Ok(_) => return Err("truncated file opened".into()),
            }
            let o = judge_segment(seg, NAME, &f.batches, true)?;
            if cut % 97 == 0 || cut + 3 >= len {
                judge_file(&bytes, &f.batches, true, tmp.path())?;
            }
            Ok(o)
        });
        match r {
            Err(p) => tally.fail(format!("PANIC at truncation to {cut} of {len} bytes:\n{p}")),
            Ok(Err(e)) => tally.fail(format!("truncation to {cut} of {len} bytes: {e}")),
            Ok(Ok(o)) => tally.count(format!("{o:?}")),
        }
    }
    assert!(n > 300, "only {n} truncations");
    tally.finish("truncated_files_are_rejected", started);
}

#[test]
fn random_damage_is_detected_or_harmless() {
    let f = Fixture::small();
    random_damage_loop("random_damage_is_detected_or_harmless", &f, 0, 4000);
}

/// More than one block (65 536 rows per block): damage in the second block, the block table
/// and the directory of a larger file.
#[test]
fn random_damage_in_a_two_block_segment() {
    let f = Fixture::new(70_000, false, 2);
    let seg = Segment::from_bytes(f.bytes.clone(), NAME).unwrap();
    assert_eq!(seg.num_blocks(), 2);
    assert_eq!(f.batches.len(), 2);

    // Truncation: all of the last 200 lengths and ~100 spread over the rest.
    let len = f.bytes.len();
    let step = len / 100;
    let mut tally = Tally::default();
    let started = Instant::now();
    for cut in (0..len).filter(|&l| l + 200 >= len || l % step == 0) {
        let bytes = f.bytes[..cut].to_vec();
        match guarded(|| judge_bytes(bytes, &f.batches, true)) {
            Err(p) => tally.fail(format!("PANIC at truncation to {cut}:\n{p}")),
            Ok(Err(e)) => tally.fail(format!("truncation to {cut}: {e}")),
            Ok(Ok(Outcome::RejectedAtOpen)) => tally.count("truncation rejected"),
            Ok(Ok(o)) => tally.fail(format!("truncation to {cut}: {o:?}")),
        }
    }
    // Damage aimed at each block of each stream at least once, then random damage.
    let mut directory = Parts::split(&f.bytes).directory;
    for (i, r) in ranges_mut(&mut directory).into_iter().enumerate() {
        if r.len == 0 {
            continue;
        }
        let mut bytes = f.bytes.clone();
        let at = r.offset as usize + (i * 7919) % r.len as usize;
        bytes[at] ^= 0x20;
        match guarded(|| judge_bytes(bytes, &f.batches, true)) {
            Err(p) => tally.fail(format!("PANIC flipping byte {at}:\n{p}")),
            Ok(Err(e)) => tally.fail(format!("flipping byte {at}: {e}")),
            Ok(Ok(Outcome::RejectedLater)) => tally.count("part flip rejected"),
            Ok(Ok(o)) => tally.fail(format!("flipping byte {at} (in a checksummed part): {o:?}")),
        }
    }
    tally.finish("random_damage_in_a_two_block_segment (targeted)", started);
    random_damage_loop("random_damage_in_a_two_block_segment", &f, 1_000_000, 60);
}

fn patch_u32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn expect_incompatible(bytes: Vec<u8>, what: &str) {
    let e = Segment::from_bytes(bytes, NAME).expect_err(what);
    assert!(
        matches!(e, Error::Incompatible { .. }),
        "{what}: expected Incompatible, got {e:?}"
    );
    assert!(e.to_string().contains(NAME), "{what}: {e}");
}

#[test]
fn newer_and_older_format_versions_are_incompatible() {
    let f = Fixture::small();
    let len = f.bytes.len();
    let footer_version = len - FOOTER_SIZE + FOOTER_VERSION_OFFSET;
    for (v, word) in [(FORMAT_VERSION + 1, "newer"), (u32::MAX, "newer")]
        .into_iter()
        .chain((OLDEST_SUPPORTED_FORMAT_VERSION > 0).then_some((0, "older")))
    {
        let mut both = f.bytes.clone();
        patch_u32(&mut both, HEADER_VERSION_OFFSET, v);
        patch_u32(&mut both, footer_version, v);
        let e = Segment::from_bytes(both.clone(), NAME).unwrap_err();
        assert!(matches!(e, Error::Incompatible { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains(NAME) && msg.contains(word) && msg.contains(&v.to_string()),
            "{msg}"
        );

        // The mmap path and verify_file say the same, naming the real file.
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("future.bseg");
        std::fs::write(&path, &both).unwrap();
        for e in [
            Segment::open(&path).unwrap_err(),
            verify_file(&path).unwrap_err(),
        ] {
            assert!(matches!(e, Error::Incompatible { .. }), "{e:?}");
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        }

        let mut head = f.bytes.clone();
        patch_u32(&mut head, HEADER_VERSION_OFFSET, v);
        expect_incompatible(head, "header version only");
        let mut foot = f.bytes.clone();
        patch_u32(&mut foot, footer_version, v);
        expect_incompatible(foot, "footer version only");
    }
}

#[test]
fn newer_directory_version_is_incompatible() {
    let f = Fixture::small();
    let (off, len) = directory_span(&f.bytes);
    let dir = &f.bytes[off..off + len];
    assert_eq!(
        &dir[..4],
        &DIRECTORY_VERSION.to_le_bytes(),
        "directory starts with its version"
    );
    for v in [DIRECTORY_VERSION + 1, u32::MAX, 0] {
        let mut d = dir.to_vec();
        patch_u32(&mut d, 0, v);
        let bytes = replace_directory(&f.bytes, &d);
        let e = Segment::from_bytes(bytes, NAME).unwrap_err();
        assert!(
            matches!(e, Error::Incompatible { .. }),
            "directory version {v}: {e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains(NAME) && msg.contains("directory version"),
            "{msg}"
        );
    }
    // Without the checksum fix-up the same change is caught as corruption first.
    let mut bytes = f.bytes.clone();
    patch_u32(&mut bytes, off, DIRECTORY_VERSION + 1);
    let e = Segment::from_bytes(bytes, NAME).unwrap_err();
    assert!(
        matches!(&e, Error::Corruption { check, .. } if check == "directory checksum"),
        "{e:?}"
    );
}

#[test]
fn checksum_failures_name_the_file_and_the_part() {
    let f = Fixture::small();
    let directory = Parts::split(&f.bytes).directory;
    let col = directory.columns[1].name.clone();
    let r = directory.columns[1].streams[0].blocks[0].range;
    let mut bytes = f.bytes.clone();
    bytes[r.offset as usize] ^= 1;
    let seg = Segment::from_bytes(bytes, NAME).unwrap();
    let e = verify_segment(&seg).unwrap_err();
    match &e {
        Error::Corruption { check, .. } => {
            assert_eq!(check, &format!("column `{col}` block 0 checksum"), "{e}")
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    assert!(e.to_string().contains(NAME));
    assert!(seg.to_record_batches().is_err());
}

/// Garbage directories whose checksum is recomputed: only the structural checks at open and
/// verification stand between the garbage and the decoders. Nothing may panic; errors are
/// typed; and if `verify_segment` accepts the file, the rows must be the original rows (the
/// directory cannot legitimately describe different data in the same blocks).
#[test]
fn garbage_directories_with_valid_checksums_are_rejected() {
    let f = Fixture::small();
    let (off, len) = directory_span(&f.bytes);
    let dir = f.bytes[off..off + len].to_vec();
    let mut tally = Tally::default();
    let started = Instant::now();
    for seed in seeds(10_000, 2500) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut d = dir.clone();
        let what = match rng.random_range(0..8) {
            0..=3 => {
                let n = rng.random_range(1..=8);
                let mut flips = Vec::new();
                for _ in 0..n {
                    let at = rng.random_range(0..d.len());
                    let x = rng.random_range(1..=255u8);
                    d[at] ^= x;
                    flips.push((at, x));
                }
                format!("directory xor {flips:?}")
            }
            4 | 5 => {
                let fill = if rng.random_bool(0.5) { 0x00 } else { 0xFF };
                let at = rng.random_range(0..d.len());
                let n = rng.random_range(1..=16).min(d.len() - at);
                d[at..at + n].fill(fill);
                format!("directory fill {fill:#04x} over {at}..{}", at + n)
            }
            6 => {
                let at = rng.random_range(0..d.len());
                let n = rng.random_range(1..=8).min(d.len() - at);
                d.drain(at..at + n);
                format!("directory delete {at}..{}", at + n)
            }
            _ => {
                let at = rng.random_range(0..=d.len());
                let ins: Vec<u8> = (0..rng.random_range(1..=8)).map(|_| rng.random()).collect();
                d.splice(at..at, ins.iter().copied());
                format!("directory insert {ins:?} at {at}")
            }
        };
        if d == dir {
            tally.count("no-op damage");
            continue;
        }
        let bytes = replace_directory(&f.bytes, &d);
        match guarded(|| judge_bytes(bytes, &f.batches, false)) {
            Err(p) => tally.fail(format!("PANIC at seed {seed} ({what}):\n{p}")),
            Ok(Err(e)) => tally.fail(format!("seed {seed} ({what}): {e}")),
            Ok(Ok(Outcome::AcceptedDifferent)) => tally.fail(format!(
                "WRONG DATA at seed {seed} ({what}): verify_segment accepted a directory that \
                 changes the rows"
            )),
            Ok(Ok(o)) => tally.count(format!("{o:?}")),
        }
    }
    tally.finish(
        "garbage_directories_with_valid_checksums_are_rejected",
        started,
    );
}

/// Hostile parts and blocks: damage one part or block and recompute its checksum (and the
/// directory's), so the decoders — pco, zstd, blobs, roaring, dictionary — see the bytes.
/// Nothing may panic, errors are typed, and a file `verify_segment` accepts must export.
#[test]
fn hostile_parts_with_valid_checksums_never_panic() {
    let f = Fixture::small();
    let parts = Parts::split(&f.bytes);
    let mut tally = Tally::default();
    let started = Instant::now();
    for seed in seeds(20_000, 2500) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut p = Parts {
            header: parts.header.clone(),
            directory: parts.directory.clone(),
            chunks: parts.chunks.clone(),
        };
        let i = rng.random_range(0..p.chunks.len());
        let c = &mut p.chunks[i];
        let what = match rng.random_range(0..10) {
            _ if c.is_empty() => {
                let n = rng.random_range(1..=16);
                c.extend((0..n).map(|_| rng.random::<u8>()));
                format!("chunk {i}: {n} random bytes into an empty chunk")
            }
            0..=3 => {
                let n = rng.random_range(1..=8);
                let mut flips = Vec::new();
                for _ in 0..n {
                    let at = rng.random_range(0..c.len());
                    let x = rng.random_range(1..=255u8);
                    c[at] ^= x;
                    flips.push((at, x));
                }
                format!("chunk {i} xor {flips:?}")
            }
            4 | 5 => {
                let fill = if rng.random_bool(0.5) { 0x00 } else { 0xFF };
                let at = rng.random_range(0..c.len());
                let n = rng.random_range(1..=32).min(c.len() - at);
                c[at..at + n].fill(fill);
                format!("chunk {i} fill {fill:#04x} over {at}..{}", at + n)
            }
            6 => {
                let keep = rng.random_range(0..c.len());
                c.truncate(keep);
                format!("chunk {i} truncated to {keep}")
            }
            7 => {
                let n = rng.random_range(1..=16);
                c.extend((0..n).map(|_| rng.random::<u8>()));
                format!("chunk {i} extended by {n} random bytes")
            }
            8 => {
                let n = rng.random_range(0..=c.len() + 16);
                *c = (0..n).map(|_| rng.random()).collect();
                format!("chunk {i} replaced by {n} random bytes")
            }
            _ => {
                let j = rng.random_range(0..p.chunks.len());
                p.chunks.swap(i, j);
                format!("chunks {i} and {j} swapped")
            }
        };
        if p.chunks == parts.chunks {
            tally.count("no-op damage");
            continue;
        }
        let bytes = p.assemble();
        match guarded(|| judge_bytes(bytes, &f.batches, false)) {
            Err(e) => tally.fail(format!("PANIC at seed {seed} ({what}):\n{e}")),
            Ok(Err(e)) => tally.fail(format!("seed {seed} ({what}): {e}")),
            Ok(Ok(o)) => tally.count(format!("{o:?}")),
        }
    }
    tally.finish("hostile_parts_with_valid_checksums_never_panic", started);
}

fn judge_case(
    tally: &mut Tally,
    bytes: Vec<u8>,
    what: &str,
    original: &[RecordBatch],
    allocation_limit: usize,
) {
    match guarded_with_limit(allocation_limit, || judge_bytes(bytes, original, false)) {
        Err(p) => tally.fail(format!("PANIC at {what}:\n{p}")),
        Ok(Err(e)) => tally.fail(format!("{what}: {e}")),
        Ok(Ok(o)) => tally.count(format!("{what}: {o:?}")),
    }
}

/// Length and count fields a file controls must not make the reader reserve memory the file has
/// not earned: a few KiB of hostile bytes that reserve gigabytes abort the process (allocation
/// failure is not a `Result`) on a machine with less memory than this one.
#[test]
fn hostile_length_fields_do_not_reserve_gigabytes() {
    let f = Fixture::small();
    let parts = Parts::split(&f.bytes);
    let mut tally = Tally::default();
    let started = Instant::now();
    let chunk_of = |column: &str, role: &str| {
        let mut d = parts.directory.clone();
        let mut i = 0;
        for c in &mut d.columns {
            for p in &c.parts {
                if c.name == column && format!("{:?}", p.role) == role {
                    return i;
                }
                i += 1;
            }
            for s in &c.streams {
                for _ in &s.blocks {
                    if c.name == column && format!("{:?}", s.role) == role {
                        return i;
                    }
                    i += 1;
                }
            }
        }
        panic!("no {role} chunk in column `{column}`")
    };

    // 1. A pco block whose header hints at 2^40 values (the values themselves are the original
    //    ones, so the file is otherwise valid). pco caps its preallocation from the hint at
    //    4 GiB unless the caller lowers the cap; the block holds 400 values.
    let i = chunk_of("port", "Long");
    let values: Vec<i64> = pco::standalone::simple_decompress(&parts.chunks[i]).unwrap();
    let fc = pco::standalone::FileCompressor::default().with_n_hint(1 << 40);
    let mut block = Vec::new();
    fc.write_header(&mut block).unwrap();
    fc.chunk_compressor(&values, &pco::ChunkConfig::default())
        .unwrap()
        .write(&mut block)
        .unwrap();
    fc.write_footer(&mut block).unwrap();
    let mut p = Parts {
        header: parts.header.clone(),
        directory: parts.directory.clone(),
        chunks: parts.chunks.clone(),
    };
    p.chunks[i] = block;
    judge_case(
        &mut tally,
        p.assemble(),
        "pco n_hint 2^40",
        &f.batches,
        MAX_SINGLE_ALLOCATION,
    );

    // 2. A sketch (blob) block whose plain-length header says 4 GiB (the largest it accepts).
    let i = chunk_of("users", "Blob");
    let mut p = Parts {
        header: parts.header.clone(),
        directory: parts.directory.clone(),
        chunks: parts.chunks.clone(),
    };
    p.chunks[i][..8].copy_from_slice(&(1u64 << 32).to_le_bytes());
    judge_case(
        &mut tally,
        p.assemble(),
        "blob block length 4 GiB",
        &f.batches,
        MAX_SINGLE_ALLOCATION,
    );

    // 3. A directory promising 2^28 values in the (not row-aligned) multi-value id block, with
    //    the zstd codec: the zstd decoder is given 2^28 * 4 bytes of capacity. zstd reserves it
    //    fallibly (`try_reserve_exact`, so no abort) and touches only what it writes, so only
    //    the error is checked here, not the size of the reservation.
    let mut p = Parts {
        header: parts.header.clone(),
        directory: parts.directory.clone(),
        chunks: parts.chunks.clone(),
    };
    let tags = p
        .directory
        .columns
        .iter_mut()
        .find(|c| c.name == "tags")
        .unwrap();
    let ids = tags
        .streams
        .iter_mut()
        .find(|s| format!("{:?}", s.role) == "Ids")
        .unwrap();
    ids.blocks[0].codec = basalt_engine::segment::format::Codec::Zstd;
    ids.blocks[0].num_values = 1 << 28;
    judge_case(
        &mut tally,
        p.assemble(),
        "multi-value id block of 2^28 values (zstd)",
        &f.batches,
        usize::MAX,
    );
    tally.finish("hostile_length_fields_do_not_reserve_gigabytes", started);
}

/// A boundary or random value for a count, length or offset field.
fn odd_u64(rng: &mut StdRng) -> u64 {
    const EDGES: [u64; 13] = [
        0,
        1,
        2,
        399,
        400,
        401,
        65_535,
        65_536,
        65_537,
        u32::MAX as u64,
        u32::MAX as u64 + 1,
        i64::MAX as u64,
        u64::MAX,
    ];
    if rng.random_bool(0.8) {
        EDGES[rng.random_range(0..EDGES.len())]
    } else {
        rng.random()
    }
}

/// One structured change to a decoded directory: a field set to a boundary value, a role, type
/// or codec changed, parts or blocks dropped, duplicated or swapped between columns. Such
/// directories are re-encoded with a valid checksum, so they reach the structural checks and
/// the decoders. Returns a description.
fn mutate_directory(rng: &mut StdRng, d: &mut Directory) -> String {
    use basalt_engine::segment::format::{Codec, ColumnKind, ColumnType, PartRole, StreamRole};
    let nc = d.columns.len();
    let c = rng.random_range(0..nc);
    let name = d.columns[c].name.clone();
    match rng.random_range(0..18) {
        0 => {
            let v = odd_u64(rng);
            d.num_rows = v;
            format!("num_rows = {v}")
        }
        1 => {
            let (a, b) = (odd_u64(rng) as i64, odd_u64(rng) as i64);
            d.interval_start = a;
            d.interval_end = b;
            format!("interval = {a}..{b}")
        }
        2 => {
            let (a, b) = (odd_u64(rng) as i64, odd_u64(rng) as i64);
            d.min_time = a;
            d.max_time = b;
            format!("min/max time = {a}..{b}")
        }
        3 => {
            let j = rng.random_range(0..nc);
            d.columns.swap(c, j);
            format!("columns {c} and {j} swapped")
        }
        4 => {
            let k = [ColumnKind::Time, ColumnKind::Dimension, ColumnKind::Metric]
                [rng.random_range(0..3)];
            d.columns[c].kind = k;
            format!("`{name}` kind = {k:?}")
        }
        5 => {
            let t = [
                ColumnType::Long,
                ColumnType::Double,
                ColumnType::String,
                ColumnType::MultiString,
                ColumnType::HllSketch,
                ColumnType::LongPair,
                ColumnType::DoublePair,
            ][rng.random_range(0..7)];
            d.columns[c].column_type = t;
            format!("`{name}` type = {t:?}")
        }
        6 => {
            let v = odd_u64(rng);
            d.columns[c].null_count = v;
            format!("`{name}` null_count = {v}")
        }
        7 => {
            let v = odd_u64(rng) as u32;
            d.columns[c].cardinality = v;
            format!("`{name}` cardinality = {v}")
        }
        8 => {
            let col = &mut d.columns[c];
            if col.parts.is_empty() {
                return "no-op".into();
            }
            let p = rng.random_range(0..col.parts.len());
            match rng.random_range(0..3) {
                0 => {
                    col.parts.remove(p);
                    format!("`{name}` part {p} removed")
                }
                1 => {
                    let dup = col.parts[p];
                    col.parts.push(dup);
                    format!("`{name}` part {p} duplicated")
                }
                _ => {
                    let r = [
                        PartRole::Dictionary,
                        PartRole::BitmapIndex,
                        PartRole::NullBitmap,
                    ][rng.random_range(0..3)];
                    col.parts[p].role = r;
                    format!("`{name}` part {p} role = {r:?}")
                }
            }
        }
        9 => {
            // Give a column another column's part (range and checksum included).
            let j = rng.random_range(0..nc);
            if d.columns[j].parts.is_empty() {
                return "no-op".into();
            }
            let p = d.columns[j].parts[rng.random_range(0..d.columns[j].parts.len())];
            let other = d.columns[j].name.clone();
            let col = &mut d.columns[c];
            if let Some(slot) = col.parts.iter_mut().find(|x| x.role == p.role) {
                slot.range = p.range;
            } else {
                col.parts.push(p);
            }
            format!("`{name}` takes the {:?} part of `{other}`", p.role)
        }
        10 => {
            let col = &mut d.columns[c];
            if col.streams.is_empty() {
                return "no-op".into();
            }
            let s = rng.random_range(0..col.streams.len());
            let r = [
                StreamRole::Long,
                StreamRole::Double,
                StreamRole::Ids,
                StreamRole::Lengths,
                StreamRole::Blob,
                StreamRole::PairTime,
            ][rng.random_range(0..6)];
            col.streams[s].role = r;
            format!("`{name}` stream {s} role = {r:?}")
        }
        11 => {
            let col = &mut d.columns[c];
            if col.streams.is_empty() || col.streams.iter().any(|s| s.blocks.is_empty()) {
                return "no-op".into();
            }
            let s = rng.random_range(0..col.streams.len());
            match rng.random_range(0..3) {
                0 => {
                    col.streams.remove(s);
                    format!("`{name}` stream {s} removed")
                }
                1 => {
                    let dup = col.streams[s].clone();
                    col.streams.push(dup);
                    format!("`{name}` stream {s} duplicated")
                }
                _ => {
                    let dup = col.streams[s].blocks[0];
                    col.streams[s].blocks.push(dup);
                    format!("`{name}` stream {s} block 0 duplicated")
                }
            }
        }
        12 | 13 => {
            let col = &mut d.columns[c];
            if col.streams.is_empty() || col.streams.iter().any(|s| s.blocks.is_empty()) {
                return "no-op".into();
            }
            let s = rng.random_range(0..col.streams.len());
            let b = &mut col.streams[s].blocks[0];
            match rng.random_range(0..5) {
                0 => {
                    let k = [Codec::Plain, Codec::Pco, Codec::Zstd][rng.random_range(0..3)];
                    b.codec = k;
                    format!("`{name}` stream {s} block 0 codec = {k:?}")
                }
                1 => {
                    let v = odd_u64(rng) as u32;
                    b.num_values = v;
                    format!("`{name}` stream {s} block 0 num_values = {v}")
                }
                2 => {
                    let (lo, hi) = (odd_u64(rng), odd_u64(rng));
                    b.min = lo;
                    b.max = hi;
                    format!("`{name}` stream {s} block 0 min/max = {lo}/{hi}")
                }
                3 => {
                    let v = odd_u64(rng);
                    b.range.offset = v;
                    format!("`{name}` stream {s} block 0 offset = {v}")
                }
                _ => {
                    let v = odd_u64(rng);
                    b.range.len = v;
                    format!("`{name}` stream {s} block 0 len = {v}")
                }
            }
        }
        14 | 15 => {
            // Give a block another block's metadata (range, checksum, codec, count, min/max).
            let j = rng.random_range(0..nc);
            let has_blocks = |c: &basalt_engine::segment::format::ColumnMeta| {
                !c.streams.is_empty() && c.streams.iter().all(|s| !s.blocks.is_empty())
            };
            if !has_blocks(&d.columns[c]) || !has_blocks(&d.columns[j]) {
                return "no-op".into();
            }
            let other = d.columns[j].name.clone();
            let sj = rng.random_range(0..d.columns[j].streams.len());
            let meta = d.columns[j].streams[sj].blocks[0];
            let col = &mut d.columns[c];
            let s = rng.random_range(0..col.streams.len());
            if rng.random_bool(0.5) {
                col.streams[s].blocks[0] = meta;
                format!("`{name}` stream {s} block 0 = `{other}` stream {sj} block 0")
            } else {
                col.streams[s].blocks[0].range = meta.range;
                format!("`{name}` stream {s} block 0 range = `{other}` stream {sj} block 0 range")
            }
        }
        16 => {
            let n = rng.random_range(0..=d.sort_order.len());
            d.sort_order.truncate(n);
            if rng.random_bool(0.5) {
                d.sort_order.push(name.clone());
            }
            format!("sort order = {:?}", d.sort_order)
        }
        _ => {
            let tag = rng.random();
            let bytes: Vec<u8> = (0..rng.random_range(0..32)).map(|_| rng.random()).collect();
            d.extensions
                .push(basalt_engine::segment::format::Extension { tag, bytes });
            format!("extension {tag} added")
        }
    }
}

/// Structured garbage in the directory (see [`mutate_directory`]), one to three changes at a
/// time, with a valid directory checksum. Nothing may panic or reserve gigabytes, errors are
/// typed, and if verification passes, the export must succeed.
#[test]
fn structured_directory_garbage_never_panics() {
    let f = Fixture::small();
    let parts = Parts::split(&f.bytes);
    let original = parts.directory.clone();
    let mut tally = Tally::default();
    let started = Instant::now();
    for seed in seeds(30_000, 2500) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut directory = original.clone();
        let what: Vec<String> = (0..rng.random_range(1..=3))
            .map(|_| mutate_directory(&mut rng, &mut directory))
            .collect();
        if directory == original {
            tally.count("no-op damage");
            continue;
        }
        let bytes = replace_directory(&f.bytes, &directory.encode());
        match guarded(|| judge_bytes(bytes, &f.batches, false)) {
            Err(e) => tally.fail(format!("PANIC at seed {seed} ({what:?}):\n{e}")),
            Ok(Err(e)) => tally.fail(format!("seed {seed} ({what:?}): {e}")),
            Ok(Ok(o)) => tally.count(format!("{o:?}")),
        }
    }
    tally.finish("structured_directory_garbage_never_panics", started);
}
