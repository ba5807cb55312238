//! Phase 2: turn pieces into right-sized segments, one [`SegmentWriter`] per partition, as many
//! at once as the memory budget holds.
//!
//! Partitions of an interval: `ceil(rows / target)`, where the target is `--rows-per-segment`
//! or fewer if a writer of that many rows would not fit the budget. Without rollup, partitions
//! take consecutive rows in input order. With rollup, rows are first repartitioned by a hash of
//! their rollup key (time truncated to `queryGranularity`, then every dimension as the writer
//! reads it), so all rows that roll up together meet in one writer — the union of the
//! partitions equals what one writer fed every row would store.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use arrow_array::{RecordBatch, UInt32Array};

use crate::error::{Error, Result};
use crate::input::{ArrowRows, InputValue};
use crate::loader::convert::{scalar_string, to_double, to_long};
use crate::loader::ingest::{IngestOutput, Piece, PieceLoc, load_run_pieces};
use crate::loader::manifest::{BuiltSegment, JobState, Manifest, PlannedInterval};
use crate::loader::run::RunWriter;
use crate::loader::{Job, LoadPhase};
use crate::schema::{DataSchema, DimensionType};
use crate::segment::SegmentWriter;
use crate::time::Interval;

pub use crate::segment::writer::writer_bytes_per_row;

/// Rows of one partition: (piece, first row, row count), in input order.
type Sources = Vec<(Arc<Piece>, usize, usize)>;

/// One segment to build: pieces (or row ranges of pieces) in input order.
#[derive(Debug)]
struct Task {
    interval: Interval,
    partition: u32,
    sources: Sources,
    rows: u64,
}

/// Build every segment of the plan that is not built yet.
pub fn run(job: &Job<'_>, m: &mut Manifest, ingest: Option<IngestOutput>) -> Result<()> {
    job.progress.set_phase(LoadPhase::Building);
    let schema = &job.spec.schema;
    let (pieces, durable) = match ingest {
        Some(out) => {
            let durable = !m.runs.is_empty()
                && out
                    .pieces
                    .iter()
                    .all(|p| matches!(p.loc, PieceLoc::Run { .. }));
            (out.pieces, durable)
        }
        None => (load_run_pieces(&job.job_dir, m)?, true),
    };
    let in_memory: u64 = pieces
        .iter()
        .filter(|p| matches!(p.loc, PieceLoc::Mem(_)))
        .map(|p| p.mem_bytes)
        .sum();
    let budget = job
        .cfg
        .memory_bytes
        .saturating_sub(in_memory)
        .max(job.cfg.memory_bytes / 4);
    let per_row = writer_bytes_per_row(schema);
    let target = job.cfg.rows_per_segment.min((budget / per_row).max(1));

    let mut by_interval: BTreeMap<Interval, Vec<Piece>> = BTreeMap::new();
    for p in pieces {
        by_interval.entry(p.interval).or_default().push(p);
    }
    for list in by_interval.values_mut() {
        list.sort_by_key(Piece::key);
    }
    if m.plan.is_empty() {
        m.plan = by_interval
            .iter()
            .map(|(iv, list)| {
                let rows: u64 = list.iter().map(|p| p.rows).sum();
                PlannedInterval {
                    interval: *iv,
                    rows,
                    partitions: rows.div_ceil(target).max(1) as u32,
                }
            })
            .collect();
        if durable {
            m.state = JobState::Built;
            m.save(&job.job_dir)?;
        }
    }
    let plan: BTreeMap<Interval, u32> = m.plan.iter().map(|p| (p.interval, p.partitions)).collect();
    if plan.len() != by_interval.len() || by_interval.keys().any(|iv| !plan.contains_key(iv)) {
        return Err(Error::internal(
            "the job's build plan does not match its spilled rows; remove the job directory",
        ));
    }

    // Tasks, skipping segments already built.
    let done: Vec<(Interval, u32)> = m.built.iter().map(|b| (b.interval, b.partition)).collect();
    let mut tasks: Vec<Task> = Vec::new();
    let rollup = schema.granularity.rollup;
    for (iv, list) in by_interval {
        let k = plan[&iv];
        if (0..k).all(|p| done.contains(&(iv, p))) {
            continue;
        }
        let parts: Vec<Sources> = if k == 1 {
            vec![
                list.into_iter()
                    .map(|p| {
                        let n = p.rows as usize;
                        (Arc::new(p), 0, n)
                    })
                    .collect(),
            ]
        } else if rollup {
            repartition(job, iv, list, k)?
        } else {
            split_in_order(list, k)
        };
        for (p, sources) in parts.into_iter().enumerate() {
            if done.contains(&(iv, p as u32)) {
                continue;
            }
            let rows = sources.iter().map(|s| s.2 as u64).sum();
            tasks.push(Task {
                interval: iv,
                partition: p as u32,
                sources,
                rows,
            });
        }
    }
    job.progress
        .segments_total
        .store((tasks.len() + m.built.len()) as u64, Ordering::Relaxed);
    job.progress
        .segments_done
        .store(m.built.len() as u64, Ordering::Relaxed);
    // Biggest first packs the budget best.
    tasks.sort_by(|a, b| b.rows.cmp(&a.rows).then(a.interval.cmp(&b.interval)));

    let gate = MemoryGate::new(budget);
    let next = AtomicUsize::new(0);
    let shared = Mutex::new((m.clone(), Vec::<(u32, String)>::new(), None::<Error>));
    let tasks: Vec<Mutex<Option<Task>>> = tasks.into_iter().map(|t| Mutex::new(Some(t))).collect();
    let threads = job.cfg.threads.min(tasks.len()).max(1);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(slot) = tasks.get(i) else { return };
                    let Some(task) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() else {
                        continue;
                    };
                    if shared.lock().unwrap_or_else(|p| p.into_inner()).2.is_some() {
                        return;
                    }
                    let need = (task.rows * per_row).min(budget);
                    gate.acquire(need);
                    let res = build_one(job, schema, task);
                    gate.release(need);
                    let mut sh = shared.lock().unwrap_or_else(|p| p.into_inner());
                    match res {
                        Ok((seg, rejected)) => {
                            sh.1.extend(rejected);
                            sh.0.built.push(seg);
                            job.progress.segments_done.fetch_add(1, Ordering::Relaxed);
                            if durable && let Err(e) = sh.0.save(&job.job_dir) {
                                sh.2.get_or_insert(e);
                            }
                        }
                        Err(e) => {
                            sh.2.get_or_insert(e);
                        }
                    }
                }
            });
        }
    });
    let (manifest, rejected, err) = shared.into_inner().unwrap_or_else(|p| p.into_inner());
    *m = manifest;
    if let Some(e) = err {
        return Err(e);
    }
    m.built.sort_by_key(|b| (b.interval, b.partition));
    // Rows the writer refused (not expected after conversion at read time, but counted).
    for (input, reason) in rejected {
        if let Some(d) = m.done_inputs.get_mut(&input) {
            d.stats.rows_accepted = d.stats.rows_accepted.saturating_sub(1);
            d.stats.rejects.add("rejected by the segment writer", || {
                format!("{}: {reason}", m.inputs[input as usize].path.display())
            });
        }
    }
    let total: u64 = m
        .done_inputs
        .values()
        .map(|d| d.stats.rejects.total())
        .sum();
    if total > job.cfg.max_parse_errors {
        return Err(Error::invalid(format!(
            "too many rejected rows: {total} (--max-parse-errors {}); aborting without publishing anything",
            job.cfg.max_parse_errors
        )));
    }
    Ok(())
}

fn build_one(
    job: &Job<'_>,
    schema: &DataSchema,
    task: Task,
) -> Result<(BuiltSegment, Vec<(u32, String)>)> {
    let mut w = SegmentWriter::new(schema, task.interval)?;
    let mut rejected = Vec::new();
    for (piece, start, len) in task.sources {
        let batch = piece.load()?;
        let batch = if start == 0 && len == batch.num_rows() {
            batch
        } else {
            batch.slice(start, len)
        };
        let report = w.add_batch(&batch)?;
        rejected.extend(report.rejected.into_iter().map(|(_, r)| (piece.input, r)));
        // Drop in-memory rows as soon as they are in the writer.
        drop(piece);
    }
    let file = format!(
        "seg-{}-{}-{}.bseg",
        task.interval.start, task.interval.end, task.partition
    );
    let path = job.job_dir.join(&file);
    let stats = w.finish(&path)?;
    sync_file(&path)?;
    Ok((
        BuiltSegment {
            interval: task.interval,
            partition: task.partition,
            file,
            rows_in: stats.rows_in,
            rows_out: stats.rows_out,
            bytes: stats.bytes,
        },
        rejected,
    ))
}

fn sync_file(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(path, e))
}

/// `k` partitions of consecutive rows (pieces in input order, cut at row boundaries).
fn split_in_order(list: Vec<Piece>, k: u32) -> Vec<Sources> {
    let total: u64 = list.iter().map(|p| p.rows).sum();
    let k = u64::from(k);
    let mut parts: Vec<Sources> = (0..k).map(|_| Vec::new()).collect();
    let mut row: u64 = 0;
    for p in list {
        let p = Arc::new(p);
        let mut start = 0u64;
        while start < p.rows {
            let global = row + start;
            let part = (global * k / total).min(k - 1);
            let part_end = ((part + 1) * total).div_ceil(k);
            let end = (part_end - row).min(p.rows).max(start + 1);
            parts[part as usize].push((p.clone(), start as usize, (end - start) as usize));
            start = end;
        }
        row += p.rows;
    }
    parts
}

/// Hash-partition an interval's rows by rollup key into `k` partitions, through a run file.
fn repartition(
    job: &Job<'_>,
    interval: Interval,
    list: Vec<Piece>,
    k: u32,
) -> Result<Vec<Sources>> {
    let schema = &job.spec.schema;
    let file = format!("repart-{}-{}.arrows", interval.start, interval.end);
    let path = job.job_dir.join(&file);
    let mut w = RunWriter::create(&path)?;
    for p in &list {
        let batch = p.load()?;
        let rows = ArrowRows::new(schema, &batch)?;
        let mut values = Vec::new();
        let mut idx: Vec<Vec<u32>> = (0..k).map(|_| Vec::new()).collect();
        for i in 0..rows.len() {
            let part = match rows.row(i, &mut values) {
                Ok(t) => (rollup_hash(schema, t, &values) % u64::from(k)) as usize,
                // The writer will reject the row; any partition will do.
                Err(_) => 0,
            };
            idx[part].push(i as u32);
        }
        for (part, rows_of_part) in idx.into_iter().enumerate() {
            if rows_of_part.is_empty() {
                continue;
            }
            let b = take(&batch, rows_of_part)?;
            w.write_piece(interval, part as u32, p.input, p.row_offset, &b)?;
        }
    }
    drop(list);
    let index = w.finish()?;
    let path = Arc::new(path);
    let mut parts: Vec<Sources> = (0..k).map(|_| Vec::new()).collect();
    for meta in index {
        let part = meta.partition as usize;
        let piece = Piece::from_run(path.clone(), meta);
        let n = piece.rows as usize;
        parts[part].push((Arc::new(piece), 0, n));
    }
    Ok(parts)
}

fn take(batch: &RecordBatch, idx: Vec<u32>) -> Result<RecordBatch> {
    arrow_select::take::take_record_batch(batch, &UInt32Array::from(idx))
        .map_err(|e| Error::internal(format!("repartitioning a batch: {e}")))
}

/// A hash equal for rows that roll up together (it may also be equal for some that do not).
fn rollup_hash(schema: &DataSchema, time: i64, values: &[InputValue<'_>]) -> u64 {
    let mut h = DefaultHasher::new();
    schema
        .granularity
        .query_granularity
        .truncate(time)
        .hash(&mut h);
    for (d, v) in schema.dimensions.iter().zip(values) {
        match d.kind {
            DimensionType::String => {
                let mut strs: Vec<String> = match v {
                    InputValue::List(items) => items
                        .iter()
                        .filter_map(|it| scalar_string(it).map(|s| s.into_owned()))
                        .collect(),
                    other => scalar_string(other)
                        .map(|s| s.into_owned())
                        .into_iter()
                        .collect(),
                };
                strs.sort();
                strs.dedup();
                strs.hash(&mut h);
            }
            DimensionType::Long => to_long(v, "").ok().flatten().hash(&mut h),
            DimensionType::Double => to_double(v, "")
                .ok()
                .flatten()
                .map(f64::to_bits)
                .hash(&mut h),
        }
    }
    h.finish()
}

/// Lets builds run only while their estimated memory fits the budget.
#[derive(Debug)]
struct MemoryGate {
    free: Mutex<u64>,
    cv: Condvar,
}

impl MemoryGate {
    fn new(budget: u64) -> MemoryGate {
        MemoryGate {
            free: Mutex::new(budget),
            cv: Condvar::new(),
        }
    }

    fn acquire(&self, n: u64) {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free < n {
            free = self.cv.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= n;
    }

    fn release(&self, n: u64) {
        *self.free.lock().unwrap_or_else(|p| p.into_inner()) += n;
        self.cv.notify_all();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn piece(input: u32, rows: u64) -> Piece {
        Piece {
            interval: Interval::new(0, 10).unwrap(),
            input,
            row_offset: 0,
            rows,
            mem_bytes: 0,
            loc: PieceLoc::Mem(RecordBatch::new_empty(Arc::new(
                arrow_schema::Schema::empty(),
            ))),
        }
    }

    #[test]
    fn split_in_order_covers_every_row_once() {
        for (sizes, k) in [
            (vec![10u64, 5, 7], 3u32),
            (vec![1, 1, 1], 2),
            (vec![100], 7),
            (vec![3, 4], 1),
        ] {
            let list: Vec<Piece> = sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| piece(i as u32, n))
                .collect();
            let total: u64 = sizes.iter().sum();
            let parts = split_in_order(list, k);
            assert_eq!(parts.len(), k as usize);
            let mut seen: Vec<(u32, usize)> = Vec::new();
            for part in &parts {
                let rows: usize = part.iter().map(|s| s.2).sum();
                assert!(rows as u64 <= total.div_ceil(u64::from(k)), "{sizes:?} {k}");
                for (p, start, len) in part {
                    seen.extend((*start..start + len).map(|r| (p.input, r)));
                }
            }
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len() as u64, total);
        }
    }
}
