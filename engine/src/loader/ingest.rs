//! Phase 1: read every pending input on all cores, route rows to their segment intervals, and
//! keep them as in-memory pieces, spilled to run files whenever they pass half the budget.
//!
//! Invariant: an input is recorded as done in the manifest only once every one of its rows is
//! in a run listed there (runs are fsynced and renamed before the manifest that lists them).
//! An input that fails leaves no piece behind: its in-memory pieces are dropped at once and its
//! spilled pieces never count, because pieces count only for inputs recorded as done.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use arrow_array::{RecordBatch, UInt32Array};

use crate::error::{Error, Result};
use crate::loader::convert::{FieldKind, FieldPlan};
use crate::loader::inputs::detect;
use crate::loader::manifest::{InputDone, InputStats, Manifest, RunRecord};
use crate::loader::read::parquet::ParquetLayout;
use crate::loader::read::{ReadBatch, ReadCtx, UnitKind, read_unit};
use crate::loader::rejects::RejectStats;
use crate::loader::run::{PieceMeta, RunWriter, read_index, read_piece};
use crate::loader::spec::InputFormat;
use crate::loader::{BadFilePolicy, Job, LoadPhase};
use crate::time::Interval;

/// Rows of one input routed to one interval.
#[derive(Debug)]
pub struct Piece {
    /// The segment interval.
    pub interval: Interval,
    /// Input index.
    pub input: u32,
    /// Position of the first source row in the input (orders pieces).
    pub row_offset: u64,
    /// Rows.
    pub rows: u64,
    /// Bytes in memory.
    pub mem_bytes: u64,
    /// Where the rows are.
    pub loc: PieceLoc,
}

/// Where a piece's rows are.
#[derive(Debug, Clone)]
pub enum PieceLoc {
    /// In memory.
    Mem(RecordBatch),
    /// In a run file.
    Run {
        /// The run file.
        path: Arc<PathBuf>,
        /// Where in it.
        meta: PieceMeta,
    },
}

impl Piece {
    /// The rows.
    pub fn load(&self) -> Result<RecordBatch> {
        match &self.loc {
            PieceLoc::Mem(b) => Ok(b.clone()),
            PieceLoc::Run { path, meta } => read_piece(path, meta),
        }
    }

    /// The order rows are fed to writers in: input order.
    pub fn key(&self) -> (u32, u64) {
        (self.input, self.row_offset)
    }

    /// A piece read from a run's index.
    pub fn from_run(path: Arc<PathBuf>, meta: PieceMeta) -> Piece {
        Piece {
            interval: meta.interval,
            input: meta.input,
            row_offset: meta.row_offset,
            rows: meta.rows,
            mem_bytes: meta.mem_bytes,
            loc: PieceLoc::Run { path, meta },
        }
    }
}

/// What phase 1 hands to the build.
#[derive(Debug)]
pub struct IngestOutput {
    /// Every piece of every done input.
    pub pieces: Vec<Piece>,
    /// Bytes of pieces written to runs in this run.
    pub bytes_spilled: u64,
}

/// Pieces of done inputs in the manifest's runs (pieces of unfinished inputs are stale).
pub(crate) fn load_run_pieces(job_dir: &Path, m: &Manifest) -> Result<Vec<Piece>> {
    let mut out = Vec::new();
    for run in &m.runs {
        let path = Arc::new(job_dir.join(&run.file));
        for meta in read_index(&path)? {
            let valid = m
                .done_inputs
                .get(&meta.input)
                .is_some_and(|d| d.attempt == run.attempt);
            if valid {
                out.push(Piece::from_run(path.clone(), meta));
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Default)]
struct InputState {
    units_left: usize,
    failed: bool,
    complete: bool,
    durable: bool,
    stats: InputStats,
}

#[derive(Debug)]
struct State {
    mem: Vec<Piece>,
    mem_bytes: u64,
    spilling: bool,
    spilled: Vec<Piece>,
    run_seq: u32,
    inputs: Vec<InputState>,
    manifest: Manifest,
    fatal: Option<Error>,
    bytes_spilled: u64,
}

struct Shared<'j, 'a> {
    job: &'j Job<'a>,
    state: Mutex<State>,
    cv: Condvar,
    cancelled: AtomicBool,
    rejected: AtomicU64,
    all_rejects: Mutex<RejectStats>,
    next_unit: AtomicUsize,
}

/// Run phase 1 for the inputs the manifest does not list as done.
pub fn run(job: &Job<'_>, m: &mut Manifest) -> Result<IngestOutput> {
    job.progress.set_phase(LoadPhase::Starting);
    let spilled = load_run_pieces(&job.job_dir, m)?;
    let plan = FieldPlan::new(&job.spec.schema);
    let str_fields: Vec<(String, FieldKind)> = plan
        .fields
        .iter()
        .map(|f| (f.name.clone(), f.kind))
        .collect();

    // Units of work, in input order.
    let mut units: Vec<(u32, UnitKind)> = Vec::new();
    let mut inputs: Vec<InputState> = (0..m.inputs.len()).map(|_| InputState::default()).collect();
    let mut pending_bytes = 0;
    let mut pending_inputs = 0;
    for (i, input) in m.inputs.iter().enumerate() {
        let idx = i as u32;
        if m.done_inputs.contains_key(&idx) || m.skipped_inputs.contains_key(&idx) {
            inputs[i].complete = true;
            inputs[i].durable = true;
            continue;
        }
        let planned = plan_units(&input.path, job.spec.input_format.as_ref(), &str_fields);
        match planned {
            Ok(list) => {
                inputs[i].units_left = list.len();
                if list.is_empty() {
                    inputs[i].complete = true;
                }
                pending_bytes += input.size;
                pending_inputs += 1;
                units.extend(list.into_iter().map(|u| (idx, u)));
            }
            Err(e) => match job.cfg.on_bad_file {
                BadFilePolicy::Abort => return Err(bad_file_abort(&input.path, &e)),
                BadFilePolicy::Skip => {
                    tracing::warn!(input = %input.path.display(), error = %e, "skipping unreadable input");
                    inputs[i].failed = true;
                    m.skipped_inputs.insert(idx, e.to_string());
                }
            },
        }
    }
    let p = job.progress;
    p.inputs_total.store(pending_inputs, Ordering::Relaxed);
    p.bytes_total.store(pending_bytes, Ordering::Relaxed);
    p.set_phase(LoadPhase::Reading);

    let prior_rejects: u64 = m
        .done_inputs
        .values()
        .map(|d| d.stats.rejects.total())
        .sum();
    let mut all_rejects = RejectStats::default();
    for d in m.done_inputs.values() {
        all_rejects.merge(&d.stats.rejects);
    }
    let shared = Shared {
        job,
        state: Mutex::new(State {
            mem: Vec::new(),
            mem_bytes: 0,
            spilling: false,
            spilled,
            run_seq: 0,
            inputs,
            manifest: m.clone(),
            fatal: None,
            bytes_spilled: 0,
        }),
        cv: Condvar::new(),
        cancelled: AtomicBool::new(false),
        rejected: AtomicU64::new(prior_rejects),
        all_rejects: Mutex::new(all_rejects),
        next_unit: AtomicUsize::new(0),
    };
    let threads = job.cfg.threads.min(units.len()).max(1);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| reader_thread(&shared, &plan, &units));
        }
    });

    let mut st = lock(&shared.state);
    if let Some(e) = st.fatal.take() {
        *m = st.manifest.clone();
        return Err(e);
    }
    // Record skipped inputs; inputs read completely are done once their rows are durable.
    for (i, input) in st.inputs.iter().enumerate() {
        if input.failed && !st.manifest.skipped_inputs.contains_key(&(i as u32)) {
            return Err(Error::internal(format!(
                "input {i} failed without a reason"
            )));
        }
    }
    let spill_mode = !st.spilled.is_empty() || st.bytes_spilled > 0 || !st.manifest.runs.is_empty();
    if spill_mode {
        // Make everything durable so building can resume without reading again.
        st.spilling = true;
        st = spill(&shared, st, true)?;
    }
    let attempt = st.manifest.attempt;
    let finished: Vec<(u32, InputStats)> = st
        .inputs
        .iter_mut()
        .enumerate()
        .filter(|(_, s)| s.complete && !s.failed && !s.durable)
        .map(|(i, s)| (i as u32, std::mem::take(&mut s.stats)))
        .collect();
    for (i, stats) in finished {
        // In memory only: recorded for the summary, saved only with the staged segments.
        st.manifest
            .done_inputs
            .insert(i, InputDone { attempt, stats });
    }
    *m = st.manifest.clone();
    let mut pieces = std::mem::take(&mut st.spilled);
    pieces.append(&mut st.mem);
    let valid = |p: &Piece| m.done_inputs.contains_key(&p.input);
    pieces.retain(valid);
    Ok(IngestOutput {
        pieces,
        bytes_spilled: st.bytes_spilled,
    })
}

fn bad_file_abort(path: &Path, e: &Error) -> Error {
    Error::invalid(format!(
        "input {} cannot be read: {e}; aborting without publishing anything \
         (re-run with --on-bad-file skip to load the other inputs)",
        path.display()
    ))
}

/// Split an input into units: one per Parquet row group, one per text file.
fn plan_units(
    path: &Path,
    format: Option<&InputFormat>,
    fields: &[(String, FieldKind)],
) -> Result<Vec<UnitKind>> {
    let (format, compression) = detect(path, format)?;
    if format != InputFormat::Parquet {
        return Ok(vec![UnitKind::Text(format, compression)]);
    }
    let layout: Arc<ParquetLayout> = Arc::new(crate::loader::read::parquet::open(path, fields)?);
    let mut offset = 0;
    let mut out = Vec::new();
    for (rg, &(rows, bytes)) in layout.row_groups.iter().enumerate() {
        if rows > 0 {
            out.push(UnitKind::ParquetRowGroup {
                layout: layout.clone(),
                row_group: rg,
                row_offset: offset,
                rows,
                bytes,
            });
        }
        offset += rows;
    }
    Ok(out)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn reader_thread(shared: &Shared<'_, '_>, plan: &FieldPlan, units: &[(u32, UnitKind)]) {
    let job = shared.job;
    let ctx = ReadCtx {
        schema: &job.spec.schema,
        plan,
        batch_rows: job.cfg.batch_rows,
        bytes: job.progress.bytes_read.clone(),
        cancelled: &shared.cancelled,
    };
    loop {
        if shared.cancelled.load(Ordering::Relaxed) {
            return;
        }
        let u = shared.next_unit.fetch_add(1, Ordering::Relaxed);
        let Some((input, kind)) = units.get(u) else {
            return;
        };
        let input = *input;
        if lock(&shared.state).inputs[input as usize].failed {
            continue;
        }
        let path = lock(&shared.state).manifest.inputs[input as usize]
            .path
            .clone();
        let mut rejects = RejectStats::default();
        let mut counted_rejects = 0u64;
        let mut stats = InputStats::default();
        let mut too_many = false;
        let res = read_unit(&ctx, &path, kind, &mut rejects, &mut |rb, rejects| {
            let new = rejects.total() - counted_rejects;
            counted_rejects += new;
            let total = shared.rejected.fetch_add(new, Ordering::Relaxed) + new;
            let p = job.progress;
            p.rows_rejected.fetch_add(new, Ordering::Relaxed);
            p.rows_read
                .fetch_add(rb.batch.num_rows() as u64 + new, Ordering::Relaxed);
            if total > job.cfg.max_parse_errors {
                too_many = true;
                return Err(Error::Cancelled("too many parse errors".into()));
            }
            let rows = rb.batch.num_rows() as u64;
            let (routed, filtered) = route(job, rb)?;
            stats.rows_read += rows;
            stats.rows_filtered += filtered;
            stats.rows_accepted += rows - filtered;
            push(shared, input, routed)
        });
        // Rejections after the last batch.
        let new = rejects.total() - counted_rejects;
        let total = shared.rejected.fetch_add(new, Ordering::Relaxed) + new;
        job.progress.rows_rejected.fetch_add(new, Ordering::Relaxed);
        job.progress.rows_read.fetch_add(new, Ordering::Relaxed);
        counted_rejects += new;
        stats.rows_read += rejects.total();
        if too_many || (res.is_ok() && total > job.cfg.max_parse_errors) {
            lock(&shared.all_rejects).merge(&rejects);
            let all = lock(&shared.all_rejects).clone();
            let mut msg = format!(
                "too many rejected rows: {} (--max-parse-errors {}); aborting without publishing anything. Reasons:",
                all.total(),
                job.cfg.max_parse_errors
            );
            for line in all.describe(10) {
                msg.push_str("\n  ");
                msg.push_str(&line);
            }
            set_fatal(shared, Error::invalid(msg));
            return;
        }
        if shared.cancelled.load(Ordering::Relaxed) {
            // Another thread is aborting the load; this unit may be partial.
            return;
        }
        match res {
            Ok(()) => {
                let mut st = lock(&shared.state);
                let size = st.manifest.inputs[input as usize].size;
                let s = &mut st.inputs[input as usize];
                if s.failed {
                    shared
                        .rejected
                        .fetch_sub(counted_rejects, Ordering::Relaxed);
                    continue;
                }
                merge_stats(&mut s.stats, &stats, &rejects);
                s.units_left -= 1;
                if s.units_left == 0 {
                    s.complete = true;
                    s.stats.bytes = size;
                    job.progress.inputs_done.fetch_add(1, Ordering::Relaxed);
                }
                drop(st);
                lock(&shared.all_rejects).merge(&rejects);
            }
            Err(e) => {
                if matches!(e, Error::Cancelled(_)) {
                    return;
                }
                match job.cfg.on_bad_file {
                    BadFilePolicy::Abort => {
                        set_fatal(shared, bad_file_abort(&path, &e));
                        return;
                    }
                    BadFilePolicy::Skip => {
                        tracing::warn!(input = %path.display(), error = %e, "skipping unreadable input");
                        let mut st = lock(&shared.state);
                        let earlier = st.inputs[input as usize].stats.rejects.total();
                        shared
                            .rejected
                            .fetch_sub(counted_rejects + earlier, Ordering::Relaxed);
                        st.inputs[input as usize].failed = true;
                        st.manifest.skipped_inputs.insert(input, e.to_string());
                        let before = st.mem.len();
                        let mut freed = 0;
                        st.mem.retain(|p| {
                            let keep = p.input != input;
                            if !keep {
                                freed += p.mem_bytes;
                            }
                            keep
                        });
                        if st.mem.len() != before {
                            st.mem_bytes -= freed;
                            shared.cv.notify_all();
                        }
                    }
                }
            }
        }
    }
}

fn merge_stats(into: &mut InputStats, unit: &InputStats, rejects: &RejectStats) {
    into.rows_read += unit.rows_read;
    into.rows_accepted += unit.rows_accepted;
    into.rows_filtered += unit.rows_filtered;
    into.rejects.merge(rejects);
}

fn set_fatal(shared: &Shared<'_, '_>, e: Error) {
    let mut st = lock(&shared.state);
    if st.fatal.is_none() {
        st.fatal = Some(e);
    }
    shared.cancelled.store(true, Ordering::Relaxed);
    shared.cv.notify_all();
}

/// Batches of one interval: (interval, first source row, rows).
type Routed = Vec<(Interval, u64, RecordBatch)>;

/// Split a batch by segment interval, dropping rows outside `granularitySpec.intervals`.
fn route(job: &Job<'_>, rb: ReadBatch) -> Result<(Routed, u64)> {
    let gran = job.spec.schema.granularity.segment_granularity;
    let filter = job.spec.intervals.as_deref();
    let keep = |t: i64| filter.is_none_or(|ivs| ivs.iter().any(|iv| iv.contains(t)));
    let times = &rb.times;
    let n = times.len();
    if n == 0 {
        return Ok((Vec::new(), 0));
    }
    let first = gran.bucket(times[0]);
    if times.iter().all(|&t| first.contains(t) && keep(t)) {
        return Ok((vec![(first, rb.row_offset, rb.batch)], 0));
    }
    let mut groups: BTreeMap<i64, (Interval, Vec<u32>)> = BTreeMap::new();
    let mut filtered = 0;
    let mut current = first;
    for (i, &t) in times.iter().enumerate() {
        if !keep(t) {
            filtered += 1;
            continue;
        }
        if !current.contains(t) {
            current = gran.bucket(t);
        }
        groups
            .entry(current.start)
            .or_insert_with(|| (current, Vec::new()))
            .1
            .push(i as u32);
    }
    let mut out = Vec::with_capacity(groups.len());
    for (_, (iv, idx)) in groups {
        let b = arrow_select::take::take_record_batch(&rb.batch, &UInt32Array::from(idx))
            .map_err(|e| Error::internal(format!("splitting a batch by interval: {e}")))?;
        out.push((iv, rb.row_offset, b));
    }
    Ok((out, filtered))
}

/// Add pieces of `input`; spills when memory passes the threshold. Blocks while another thread
/// spills and memory is over the threshold (back-pressure).
fn push(shared: &Shared<'_, '_>, input: u32, routed: Routed) -> Result<()> {
    if routed.is_empty() {
        return Ok(());
    }
    let threshold = shared.job.spill_threshold();
    let mut st = lock(&shared.state);
    while st.spilling && st.mem_bytes > threshold && !shared.cancelled.load(Ordering::Relaxed) {
        st = shared.cv.wait(st).unwrap_or_else(|p| p.into_inner());
    }
    if shared.cancelled.load(Ordering::Relaxed) {
        return Err(Error::Cancelled("load aborted".into()));
    }
    if st.inputs[input as usize].failed {
        return Ok(());
    }
    for (interval, row_offset, batch) in routed {
        let mem_bytes = batch.get_array_memory_size() as u64;
        st.mem_bytes += mem_bytes;
        st.mem.push(Piece {
            interval,
            input,
            row_offset,
            rows: batch.num_rows() as u64,
            mem_bytes,
            loc: PieceLoc::Mem(batch),
        });
    }
    if st.mem_bytes > threshold && !st.spilling {
        st.spilling = true;
        match spill(shared, st, false) {
            Ok(_) => {}
            Err(e) => {
                set_fatal(shared, e);
                return Err(Error::Cancelled("load aborted".into()));
            }
        }
    }
    Ok(())
}

/// Write every in-memory piece to a new run, then record the run and the inputs it completes.
/// Called with `spilling` set by the caller.
fn spill<'s>(
    shared: &'s Shared<'_, '_>,
    mut st: MutexGuard<'s, State>,
    final_spill: bool,
) -> Result<MutexGuard<'s, State>> {
    let job = shared.job;
    let mut pieces = std::mem::take(&mut st.mem);
    let bytes: u64 = pieces.iter().map(|p| p.mem_bytes).sum();
    let ready: Vec<u32> = st
        .inputs
        .iter()
        .enumerate()
        .filter(|(_, s)| s.complete && !s.durable && !s.failed)
        .map(|(i, _)| i as u32)
        .collect();
    let attempt = st.manifest.attempt;
    let seq = st.run_seq;
    st.run_seq += 1;
    drop(st);

    let result = (|| -> Result<Option<(String, Vec<PieceMeta>, u64)>> {
        if pieces.is_empty() {
            return Ok(None);
        }
        pieces.sort_by_key(|p| (p.interval, p.input, p.row_offset));
        let file = format!("run-{attempt}-{seq:05}.arrows");
        let path = job.job_dir.join(&file);
        let mut w = RunWriter::create(&path)?;
        for p in &pieces {
            if let PieceLoc::Mem(b) = &p.loc {
                w.write_piece(p.interval, 0, p.input, p.row_offset, b)?;
            }
        }
        let index = w.finish()?;
        let size = std::fs::metadata(&path)
            .map_err(|e| Error::io(&path, e))?
            .len();
        Ok(Some((file, index, size)))
    })();

    let mut st = lock(&shared.state);
    st.mem_bytes -= bytes;
    let outcome = (|| -> Result<()> {
        let written = result?;
        if let Some((file, index, size)) = written {
            let path = Arc::new(job.job_dir.join(&file));
            st.spilled
                .extend(index.into_iter().map(|m| Piece::from_run(path.clone(), m)));
            st.manifest.runs.push(RunRecord { file, attempt });
            st.bytes_spilled += size;
            job.progress
                .bytes_spilled
                .fetch_add(size, Ordering::Relaxed);
        }
        for i in &ready {
            let s = &mut st.inputs[*i as usize];
            if s.failed {
                continue;
            }
            s.durable = true;
            let stats = std::mem::take(&mut s.stats);
            st.manifest
                .done_inputs
                .insert(*i, InputDone { attempt, stats });
        }
        // Skips are recorded with the checkpoint too (their pieces never count).
        st.manifest.save(&job.job_dir)?;
        tracing::debug!(
            bytes,
            inputs_done = ready.len(),
            final_spill,
            "spilled pieces to a run"
        );
        Ok(())
    })();
    st.spilling = false;
    shared.cv.notify_all();
    outcome.map(|()| st)
}
