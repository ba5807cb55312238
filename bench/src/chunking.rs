//! Cutting a time-ordered batch stream into segment-granularity chunks, and processing the
//! chunks on a pool of worker threads.
//!
//! This is the engine-independent half of the `build-segments` workload: the producer (Parquet
//! decoding or the generator) feeds a [`TimeSplitter`], and [`run_parallel`] hands each chunk
//! (e.g. one hour) to whichever worker is free.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, bail};
use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMillisecondType};
use arrow_schema::{DataType, TimeUnit};

/// All rows of one time bucket `[start_ms, end_ms)`, as zero-copy slices of the input batches.
#[derive(Debug, Clone)]
pub struct TimeChunk {
    pub start_ms: i64,
    pub end_ms: i64,
    pub batches: Vec<RecordBatch>,
}

impl TimeChunk {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// Splits a stream of time-ordered batches into [`TimeChunk`]s of `granularity_ms` aligned to the
/// Unix epoch (UTC hours, days, ...). Fails on rows out of time order.
#[derive(Debug)]
pub struct TimeSplitter<I> {
    inner: I,
    time_column: String,
    granularity_ms: i64,
    current: Option<TimeChunk>,
    ready: VecDeque<TimeChunk>,
    last_ts: i64,
    done: bool,
}

impl<I> TimeSplitter<I>
where
    I: Iterator<Item = anyhow::Result<RecordBatch>>,
{
    /// `time_column` must be a millisecond timestamp or an Int64 of epoch milliseconds.
    pub fn new(inner: I, time_column: &str, granularity_ms: i64) -> Self {
        assert!(granularity_ms > 0, "granularity must be positive");
        Self {
            inner,
            time_column: time_column.to_owned(),
            granularity_ms,
            current: None,
            ready: VecDeque::new(),
            last_ts: i64::MIN,
            done: false,
        }
    }

    fn split(&mut self, batch: &RecordBatch) -> anyhow::Result<()> {
        let col = batch
            .column_by_name(&self.time_column)
            .with_context(|| format!("no time column {:?}", self.time_column))?;
        let ts: &[i64] = match col.data_type() {
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                col.as_primitive::<TimestampMillisecondType>().values()
            }
            DataType::Int64 => col.as_primitive::<Int64Type>().values(),
            other => bail!("time column {:?} has type {other}", self.time_column),
        };
        if col.null_count() > 0 {
            bail!("time column {:?} has nulls", self.time_column);
        }
        let out_of_order = ts.first().is_some_and(|&first| first < self.last_ts)
            || ts.windows(2).any(|w| w[1] < w[0]);
        if out_of_order {
            bail!("input is not ordered by {:?}", self.time_column);
        }
        let mut pos = 0;
        while pos < ts.len() {
            let start = ts[pos].div_euclid(self.granularity_ms) * self.granularity_ms;
            let end = start + self.granularity_ms;
            let len = ts[pos..].partition_point(|&t| t < end);
            let slice = batch.slice(pos, len);
            match &mut self.current {
                Some(chunk) if chunk.start_ms == start => chunk.batches.push(slice),
                current => {
                    let next = TimeChunk {
                        start_ms: start,
                        end_ms: end,
                        batches: vec![slice],
                    };
                    if let Some(full) = current.replace(next) {
                        self.ready.push_back(full);
                    }
                }
            }
            pos += len;
        }
        if let Some(&last) = ts.last() {
            self.last_ts = last;
        }
        Ok(())
    }
}

impl<I> Iterator for TimeSplitter<I>
where
    I: Iterator<Item = anyhow::Result<RecordBatch>>,
{
    type Item = anyhow::Result<TimeChunk>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(chunk) = self.ready.pop_front() {
                return Some(Ok(chunk));
            }
            if self.done {
                return None;
            }
            match self.inner.next() {
                Some(Ok(batch)) => {
                    if let Err(e) = self.split(&batch) {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                None => {
                    self.done = true;
                    return self.current.take().map(Ok);
                }
            }
        }
    }
}

/// Feeds `chunks` to `threads` workers running `work`, from the calling thread, keeping at most
/// one chunk queued (memory: one chunk per worker, one queued, one being assembled). Returns the workers' results in completion order, or the first error
/// (from the input or a worker), after stopping the other workers at their next chunk.
pub fn run_parallel<T, F>(
    chunks: impl Iterator<Item = anyhow::Result<TimeChunk>>,
    threads: usize,
    work: F,
) -> anyhow::Result<Vec<T>>
where
    T: Send,
    F: Fn(TimeChunk) -> anyhow::Result<T> + Sync,
{
    let threads = threads.max(1);
    let failed = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<TimeChunk>(1);
        let rx = Arc::new(Mutex::new(rx));
        let workers: Vec<_> = (0..threads)
            .map(|i| {
                // Each worker owns a handle on the receiver: when all have exited (e.g. all
                // failed), the receiver is dropped and the producer's send fails instead of
                // blocking.
                let rx = Arc::clone(&rx);
                let (work, failed) = (&work, &failed);
                std::thread::Builder::new()
                    .name(format!("bench-worker-{i}"))
                    .spawn_scoped(scope, move || -> anyhow::Result<Vec<T>> {
                        let mut out = Vec::new();
                        loop {
                            let next = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                            let Ok(chunk) = next else { break };
                            if failed.load(Ordering::Relaxed) {
                                break;
                            }
                            match work(chunk) {
                                Ok(r) => out.push(r),
                                Err(e) => {
                                    failed.store(true, Ordering::Relaxed);
                                    return Err(e);
                                }
                            }
                        }
                        Ok(out)
                    })
                    .expect("spawn worker thread")
            })
            .collect();
        drop(rx);

        let mut first_err = None;
        for chunk in chunks {
            if failed.load(Ordering::Relaxed) {
                break;
            }
            match chunk {
                Ok(chunk) => {
                    if tx.send(chunk).is_err() {
                        break; // every worker has exited
                    }
                }
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    first_err = Some(e);
                    break;
                }
            }
        }
        drop(tx);

        let mut results = Vec::new();
        for handle in workers {
            match handle.join() {
                Ok(Ok(mut r)) => results.append(&mut r),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(results),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsbs::{TIME_COLUMN, TsbsConfig, tsbs_batches};

    fn cfg() -> TsbsConfig {
        // 3 hosts, 3 hours; batches of 333 epochs do not line up with hours (360 epochs).
        let mut cfg = TsbsConfig::new(3, 3, 1_451_606_400_000 + 1_800_000, 5);
        cfg.batch_rows = 999;
        cfg
    }

    #[test]
    fn splits_into_aligned_hours() -> anyhow::Result<()> {
        let cfg = cfg();
        let chunks: Vec<TimeChunk> =
            TimeSplitter::new(tsbs_batches(&cfg).map(Ok), TIME_COLUMN, 3_600_000)
                .collect::<anyhow::Result<_>>()?;
        // Starts at half past: 4 hour buckets, the first and last half full.
        assert_eq!(chunks.len(), 4);
        let rows: Vec<usize> = chunks.iter().map(TimeChunk::rows).collect();
        assert_eq!(rows, vec![540, 1080, 1080, 540]);
        for c in &chunks {
            assert_eq!(c.start_ms % 3_600_000, 0);
            assert_eq!(c.end_ms - c.start_ms, 3_600_000);
            for b in &c.batches {
                let ts = b.column(0).as_primitive::<TimestampMillisecondType>();
                assert!(
                    ts.values()
                        .iter()
                        .all(|&t| (c.start_ms..c.end_ms).contains(&t))
                );
            }
        }
        Ok(())
    }

    #[test]
    fn rejects_unordered_input() {
        let batches: Vec<_> = tsbs_batches(&cfg()).collect();
        let reversed = batches.into_iter().rev().map(Ok);
        let result: anyhow::Result<Vec<_>> =
            TimeSplitter::new(reversed, TIME_COLUMN, 3_600_000).collect();
        assert!(result.is_err());
    }

    #[test]
    fn pool_processes_every_chunk() -> anyhow::Result<()> {
        let splitter = TimeSplitter::new(tsbs_batches(&cfg()).map(Ok), TIME_COLUMN, 3_600_000);
        let mut done = run_parallel(splitter, 2, |c| Ok((c.start_ms, c.rows())))?;
        done.sort();
        let total: usize = done.iter().map(|(_, r)| r).sum();
        assert_eq!(total as u64, cfg().rows());
        assert_eq!(done.len(), 4);
        Ok(())
    }

    #[test]
    fn pool_stops_on_worker_error() {
        let chunks = (0..100).map(|i| {
            Ok(TimeChunk {
                start_ms: i,
                end_ms: i + 1,
                batches: vec![],
            })
        });
        let result = run_parallel(chunks, 2, |c| {
            if c.start_ms == 3 {
                bail!("chunk 3 failed")
            }
            Ok(c.start_ms)
        });
        assert!(result.is_err_and(|e| e.to_string() == "chunk 3 failed"));

        let all_fail = (0..100).map(|i| {
            Ok(TimeChunk {
                start_ms: i,
                end_ms: i + 1,
                batches: vec![],
            })
        });
        assert!(run_parallel(all_fail, 2, |_| -> anyhow::Result<()> { bail!("no") }).is_err());
    }
}
