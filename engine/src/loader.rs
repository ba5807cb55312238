//! The bulk loader behind `basalt load`: Parquet, CSV and JSON files in, segments published
//! atomically, with bounded memory, on all cores, resumable after a crash.
//!
//! A load runs in three phases, each checkpointed in the job manifest
//! (`<data-dir>/jobs/<job-id>/manifest.json`, see [`manifest`]):
//!
//! 1. **Ingest** ([`ingest`]): reader threads take *units* (a text file, or one Parquet row
//!    group), parse and convert rows by the schema ([`read`], [`convert`]) — bad rows are
//!    rejected with file, line and reason — and route them to their `segmentGranularity`
//!    interval as Arrow batches (*pieces*) tagged with their position in the input. Pieces wait
//!    in memory; when they pass half the memory budget, all of them are spilled to one *run*
//!    file ([`run`]) and the inputs read completely by then are recorded as done.
//! 2. **Build** ([`build`]): each interval becomes one or more right-sized partitions
//!    (`--rows-per-segment`, and what fits the budget). Pieces are fed to a
//!    [`crate::segment::SegmentWriter`] per partition in input order, so the result does not
//!    depend on thread timing or on where a crash interrupted a previous run. With rollup, a
//!    large interval is first repartitioned by a hash of the rollup key (truncated time and
//!    dimensions), so equal keys meet in one writer and roll up exactly as in a single pass.
//! 3. **Publish** ([`publish`]): one [`crate::storage::DataDir::publish`] of every segment —
//!    appended to the intervals' current versions, or as new versions replacing the covered
//!    intervals — then the job is marked done. A re-run of a done job does nothing.
//!
//! Memory: pieces in memory stay under half of `--memory`; builds run only as many writers at
//! once as the rest of the budget holds (each sized by an estimate of the writer's bytes per
//! row). Resume: a re-run reads only inputs not recorded as done, ignores pieces of unfinished
//! inputs left in runs, and keeps staged segments built from durable runs.

pub(crate) mod build;
pub(crate) mod convert;
pub(crate) mod ingest;
pub mod inputs;
pub mod manifest;
pub(crate) mod publish;
pub(crate) mod read;
pub mod rejects;
pub(crate) mod run;
pub mod spec;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::storage::DataDir;

pub use inputs::{InputFile, resolve_inputs};
pub use manifest::{JobState, Manifest, job_id};
pub use rejects::RejectStats;
pub use spec::{CsvOptions, InputFormat, LoadSpec};

/// Directory under the data directory holding one directory per load job.
pub const JOBS_DIR: &str = "jobs";

/// Default rows per segment partition (Druid's `targetRowsPerSegment` is 5 M too).
pub const DEFAULT_ROWS_PER_SEGMENT: u64 = 5_000_000;

/// Default rows per batch read from an input.
pub const DEFAULT_BATCH_ROWS: usize = 65_536;

/// How published segments relate to what is already there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadMode {
    /// Add partitions next to the existing data of each interval.
    Append,
    /// Publish new versions of the covered intervals, replacing their data atomically.
    Replace,
}

/// What to do with an input that cannot be read (missing, unreadable, corrupt, wrong format).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BadFilePolicy {
    /// Leave all of its rows out, name it in the summary, and go on.
    Skip,
    /// Stop the load without publishing anything.
    Abort,
}

/// Settings of one load (the CLI parses into this).
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// INPUT arguments: files, directories, glob patterns.
    pub inputs: Vec<String>,
    /// Overrides the spec's `dataSource`.
    pub datasource: Option<String>,
    /// Append or replace.
    pub mode: LoadMode,
    /// Memory budget in bytes.
    pub memory_bytes: u64,
    /// Reader and builder threads.
    pub threads: usize,
    /// Rejected rows tolerated before the load aborts.
    pub max_parse_errors: u64,
    /// Unreadable inputs: skip or abort.
    pub on_bad_file: BadFilePolicy,
    /// Target rows per segment partition.
    pub rows_per_segment: u64,
    /// Rows per batch read from an input.
    pub batch_rows: usize,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            inputs: Vec::new(),
            datasource: None,
            mode: LoadMode::Append,
            memory_bytes: 2 << 30,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_parse_errors: 0,
            on_bad_file: BadFilePolicy::Abort,
            rows_per_segment: DEFAULT_ROWS_PER_SEGMENT,
            batch_rows: DEFAULT_BATCH_ROWS,
        }
    }
}

impl LoadConfig {
    /// Check the settings.
    pub fn validate(&self) -> Result<()> {
        if self.inputs.is_empty() {
            return Err(Error::invalid("no INPUT given"));
        }
        if self.memory_bytes < 64 << 10 {
            return Err(Error::invalid(format!(
                "--memory {} is below the minimum of 64 KiB",
                self.memory_bytes
            )));
        }
        if self.threads == 0 || self.rows_per_segment == 0 || self.batch_rows == 0 {
            return Err(Error::invalid(
                "--threads, --rows-per-segment and the batch size must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Phase of a running load, for progress display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadPhase {
    /// Listing inputs, reading footers, resuming.
    Starting,
    /// Reading inputs.
    Reading,
    /// Building segments.
    Building,
    /// Publishing.
    Publishing,
    /// Finished.
    Done,
}

/// Live counters of a load, read by the CLI's progress display.
#[derive(Debug)]
pub struct LoadProgress {
    phase: AtomicU8,
    /// Inputs to read in this run.
    pub inputs_total: AtomicU64,
    /// Inputs read completely.
    pub inputs_done: AtomicU64,
    /// File bytes to read in this run.
    pub bytes_total: AtomicU64,
    /// File bytes read so far (compressed bytes for compressed inputs).
    pub bytes_read: Arc<AtomicU64>,
    /// Rows read (accepted and rejected).
    pub rows_read: AtomicU64,
    /// Rows rejected.
    pub rows_rejected: AtomicU64,
    /// Segments to build.
    pub segments_total: AtomicU64,
    /// Segments built.
    pub segments_done: AtomicU64,
    /// Bytes spilled to runs.
    pub bytes_spilled: AtomicU64,
}

impl Default for LoadProgress {
    fn default() -> Self {
        LoadProgress {
            phase: AtomicU8::new(0),
            inputs_total: AtomicU64::new(0),
            inputs_done: AtomicU64::new(0),
            bytes_total: AtomicU64::new(0),
            bytes_read: Arc::new(AtomicU64::new(0)),
            rows_read: AtomicU64::new(0),
            rows_rejected: AtomicU64::new(0),
            segments_total: AtomicU64::new(0),
            segments_done: AtomicU64::new(0),
            bytes_spilled: AtomicU64::new(0),
        }
    }
}

impl LoadProgress {
    /// The current phase.
    pub fn phase(&self) -> LoadPhase {
        match self.phase.load(Ordering::Relaxed) {
            0 => LoadPhase::Starting,
            1 => LoadPhase::Reading,
            2 => LoadPhase::Building,
            3 => LoadPhase::Publishing,
            _ => LoadPhase::Done,
        }
    }

    pub(crate) fn set_phase(&self, p: LoadPhase) {
        self.phase.store(p as u8, Ordering::Relaxed);
    }
}

/// What a load did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LoadSummary {
    /// Job id (the job directory's name).
    pub job_id: String,
    /// Datasource loaded.
    pub datasource: String,
    /// `append` or `replace`.
    pub mode: String,
    /// True when the job had already been published: nothing was done.
    pub already_done: bool,
    /// Input files.
    pub inputs: usize,
    /// Inputs whose rows were already durable from an interrupted earlier run.
    pub inputs_resumed: usize,
    /// Inputs skipped as unreadable: (path, reason).
    pub inputs_skipped: Vec<(PathBuf, String)>,
    /// Input bytes (file sizes).
    pub input_bytes: u64,
    /// Rows read.
    pub rows_read: u64,
    /// Rows ingested (read minus rejected and filtered).
    pub rows_ingested: u64,
    /// Rows outside `granularitySpec.intervals` (dropped, not errors).
    pub rows_filtered: u64,
    /// Rows rejected.
    pub rows_rejected: u64,
    /// Rejections by reason with examples.
    pub rejects: RejectStats,
    /// Rows stored after rollup.
    pub rows_stored: u64,
    /// Segments published.
    pub segments: u64,
    /// Segment intervals covered.
    pub intervals: u64,
    /// Bytes of the published segments.
    pub bytes: u64,
    /// Bytes written to spill runs in this run.
    pub bytes_spilled: u64,
    /// Wall time of this run, seconds.
    pub elapsed_secs: f64,
}

impl LoadSummary {
    /// Rows read per second of this run.
    pub fn rows_per_sec(&self) -> f64 {
        if self.elapsed_secs > 0.0 {
            self.rows_read as f64 / self.elapsed_secs
        } else {
            0.0
        }
    }
}

/// Run a load against an open data directory.
///
/// `spec_doc` is the spec document (see [`LoadSpec`]). Errors leave nothing published; the job
/// directory keeps what is durable so the same call resumes.
pub fn load(
    dir: &DataDir,
    spec_doc: &Value,
    cfg: &LoadConfig,
    progress: &LoadProgress,
) -> Result<LoadSummary> {
    let started = Instant::now();
    cfg.validate()?;
    let spec = LoadSpec::from_value(spec_doc, cfg.datasource.as_deref())?;
    let inputs = resolve_inputs(&cfg.inputs)?;
    let datasource = spec.schema.data_source.clone();
    let id = job_id(spec_doc, &datasource, cfg.mode, &inputs);
    let job_dir = manifest::job_dir(dir.root(), &id);
    std::fs::create_dir_all(&job_dir).map_err(|e| Error::io(&job_dir, e))?;
    let mut m = match Manifest::load(&job_dir)? {
        Some(m) => {
            if m.inputs != inputs || m.datasource != datasource || m.mode != cfg.mode {
                return Err(Error::internal(format!(
                    "job {id}: manifest does not match this load (hash collision?); remove {}",
                    job_dir.display()
                )));
            }
            m
        }
        None => Manifest::new(
            id.clone(),
            datasource.clone(),
            cfg.mode,
            spec_doc.clone(),
            inputs,
        ),
    };
    if m.state == JobState::Done {
        progress.set_phase(LoadPhase::Done);
        let mut summary: LoadSummary = m
            .summary
            .clone()
            .and_then(|s| serde_json::from_value(s).ok())
            .unwrap_or_default();
        summary.already_done = true;
        summary.elapsed_secs = started.elapsed().as_secs_f64();
        summary.bytes_spilled = 0;
        return Ok(summary);
    }
    m.attempt += 1;
    m.save(&job_dir)?;
    remove_unreferenced(&job_dir, &m)?;

    let job = Job {
        dir,
        spec: &spec,
        cfg,
        job_dir: job_dir.clone(),
        progress,
    };
    // Resuming a publish that may have committed.
    if m.state == JobState::Publishing && publish::finish_interrupted(&job, &mut m)? {
        return finish(&job, &mut m, started, 0);
    }
    let ingest_out = if m.state == JobState::Loading {
        Some(ingest::run(&job, &mut m)?)
    } else {
        None
    };
    let spilled = ingest_out.as_ref().map_or(0, |o| o.bytes_spilled);
    if m.state != JobState::Publishing {
        build::run(&job, &mut m, ingest_out)?;
    }
    publish::publish(&job, &mut m)?;
    finish(&job, &mut m, started, spilled)
}

/// Mark the job done with its summary and remove its working files.
fn finish(job: &Job<'_>, m: &mut Manifest, started: Instant, spilled: u64) -> Result<LoadSummary> {
    let mut s = LoadSummary {
        job_id: m.job_id.clone(),
        datasource: m.datasource.clone(),
        mode: match m.mode {
            LoadMode::Append => "append".into(),
            LoadMode::Replace => "replace".into(),
        },
        inputs: m.inputs.len(),
        input_bytes: m.inputs.iter().map(|i| i.size).sum(),
        ..LoadSummary::default()
    };
    for done in m.done_inputs.values() {
        if done.attempt < m.attempt {
            s.inputs_resumed += 1;
        }
        s.rows_read += done.stats.rows_read;
        s.rows_ingested += done.stats.rows_accepted;
        s.rows_filtered += done.stats.rows_filtered;
        s.rejects.merge(&done.stats.rejects);
    }
    s.rows_rejected = s.rejects.total();
    for (i, why) in &m.skipped_inputs {
        if let Some(f) = m.inputs.get(*i as usize) {
            s.inputs_skipped.push((f.path.clone(), why.clone()));
        }
    }
    let mut intervals: Vec<_> = m.built.iter().map(|b| b.interval).collect();
    intervals.dedup();
    s.intervals = intervals.len() as u64;
    s.segments = m.built.len() as u64;
    s.rows_stored = m.built.iter().map(|b| b.rows_out).sum();
    s.bytes = m.built.iter().map(|b| b.bytes).sum();
    s.bytes_spilled = spilled;
    s.elapsed_secs = started.elapsed().as_secs_f64();
    m.state = JobState::Done;
    m.summary =
        Some(serde_json::to_value(&s).map_err(|e| Error::internal(format!("summary: {e}")))?);
    // The segments now live in the data directory; the job keeps only its manifest.
    m.runs.clear();
    m.built.clear();
    m.plan.clear();
    m.save(&job.job_dir)?;
    remove_unreferenced(&job.job_dir, m)?;
    job.progress.set_phase(LoadPhase::Done);
    Ok(s)
}

/// Delete files of the job directory the manifest does not refer to (partial runs, stale
/// segments, temporary files).
fn remove_unreferenced(job_dir: &std::path::Path, m: &Manifest) -> Result<()> {
    let keep = m.referenced_files();
    for entry in std::fs::read_dir(job_dir).map_err(|e| Error::io(job_dir, e))? {
        let entry = entry.map_err(|e| Error::io(job_dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if keep.contains(&name) {
            continue;
        }
        let p = entry.path();
        let r = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        r.map_err(|e| Error::io(&p, e))?;
    }
    Ok(())
}

/// What the phases share.
#[derive(Debug)]
pub(crate) struct Job<'a> {
    pub dir: &'a DataDir,
    pub spec: &'a LoadSpec,
    pub cfg: &'a LoadConfig,
    pub job_dir: PathBuf,
    pub progress: &'a LoadProgress,
}

impl Job<'_> {
    /// Bytes of pieces held in memory before they are spilled.
    pub fn spill_threshold(&self) -> u64 {
        self.cfg.memory_bytes / 2
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn config_validation() {
        let mut c = LoadConfig {
            inputs: vec!["x".into()],
            ..LoadConfig::default()
        };
        c.validate().unwrap();
        c.memory_bytes = 10;
        assert!(c.validate().unwrap_err().to_string().contains("--memory"));
        c.memory_bytes = 1 << 30;
        c.threads = 0;
        assert!(c.validate().is_err());
    }
}
