//! Phase 3: give the staged segments their ids and publish them in one catalog transaction.
//!
//! Ids: in replace mode every segment gets one new version, and the covered intervals are
//! replaced. In append mode a segment joins the version already visible for exactly its
//! interval, after its highest partition (Druid's append), or gets a new version where the
//! interval has no data; an interval overlapping data of a different interval (another
//! `segmentGranularity`) is refused rather than shadowing that data.
//!
//! Exactly once: the ids are recorded in the manifest before publishing, and files are handed
//! to [`DataDir::publish`] as hard links, keeping the staged originals. A re-run that finds the
//! job `publishing` checks whether the catalog has its first id *as this job's file* (same
//! inode): then the publish committed and only the manifest lags; otherwise it publishes again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::loader::manifest::{JobState, Manifest, PublishRecord};
use crate::loader::{Job, LoadMode, LoadPhase};
use crate::segment::{SegmentId, Version};
use crate::storage::DataDir;
use crate::time::Interval;

/// Publish the built segments (nothing if there are none).
pub fn publish(job: &Job<'_>, m: &mut Manifest) -> Result<()> {
    job.progress.set_phase(LoadPhase::Publishing);
    if m.built.is_empty() {
        return Ok(());
    }
    register_datasource(job)?;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (ids, replace) = assign_ids(job.dir, m)?;
        m.publish = Some(PublishRecord {
            ids: ids.clone(),
            replace: replace.clone(),
        });
        m.state = JobState::Publishing;
        m.save(&job.job_dir)?;
        let mut staged = Vec::with_capacity(ids.len());
        for (i, (id, b)) in ids.iter().zip(&m.built).enumerate() {
            let original = job.job_dir.join(&b.file);
            staged.push((
                id.clone(),
                link_for_publish(&job.job_dir, &original, i)?,
                b.rows_out,
            ));
        }
        match job.dir.publish(staged, replace.as_deref()) {
            Ok(_) => return Ok(()),
            // Someone appended to the same interval meanwhile: take the next partitions.
            Err(Error::AlreadyExists(_)) if m.mode == LoadMode::Append && attempts < 5 => {
                tracing::info!("partition numbers taken by a concurrent publish; retrying");
            }
            Err(e) => return Err(e),
        }
    }
}

/// For a job found `publishing`: true if its publish had committed. If staged files are gone
/// (a publish without hard links that failed after moving them), the job goes back to building
/// (from its runs) or to loading.
pub fn finish_interrupted(job: &Job<'_>, m: &mut Manifest) -> Result<bool> {
    let Some(rec) = m.publish.clone() else {
        return Ok(false);
    };
    if let (Some(id), Some(b)) = (rec.ids.first(), m.built.first())
        && let Some((record, _)) = job.dir.catalog().get_segment(id)?
    {
        let published = job.dir.segment_path(&record);
        let staged = job.job_dir.join(&b.file);
        if !staged.exists() || same_file(&published, &staged) {
            return Ok(true);
        }
    }
    if m.built.iter().all(|b| job.job_dir.join(&b.file).exists()) {
        return Ok(false);
    }
    m.publish = None;
    if m.runs.is_empty() {
        m.state = JobState::Loading;
        m.done_inputs.clear();
        m.plan.clear();
        m.built.clear();
    } else {
        m.state = JobState::Built;
        m.built.retain(|b| job.job_dir.join(&b.file).exists());
    }
    m.save(&job.job_dir)?;
    Ok(false)
}

#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(a: &Path, b: &Path) -> bool {
    a.exists() && b.exists()
}

/// A hard link to hand to `publish` (which moves it), keeping the staged original; the
/// original itself if links are not possible here.
fn link_for_publish(job_dir: &Path, original: &Path, i: usize) -> Result<PathBuf> {
    let link = job_dir.join(format!("publish-{i}.bseg"));
    match std::fs::remove_file(&link) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&link, e)),
    }
    match std::fs::hard_link(original, &link) {
        Ok(()) => Ok(link),
        Err(e) => {
            tracing::debug!(error = %e, "no hard links; publishing the staged file itself");
            Ok(original.to_path_buf())
        }
    }
}

/// Register the datasource with the load's schema, or update its spec if it changed.
fn register_datasource(job: &Job<'_>) -> Result<()> {
    let schema = &job.spec.schema;
    let spec = schema.to_json().to_string();
    let catalog = job.dir.catalog();
    match catalog.get_datasource(&schema.data_source)? {
        None => match catalog.create_datasource(&schema.data_source, &spec) {
            Ok(()) | Err(Error::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        },
        Some(existing) if existing == spec => Ok(()),
        Some(_) => catalog.update_datasource_spec(&schema.data_source, &spec),
    }
}

/// Segment ids for `m.built` (same order) and the intervals to replace.
fn assign_ids(dir: &DataDir, m: &Manifest) -> Result<(Vec<SegmentId>, Option<Vec<Interval>>)> {
    let ds = &m.datasource;
    let mut intervals: Vec<Interval> = m.built.iter().map(|b| b.interval).collect();
    intervals.dedup();
    match m.mode {
        LoadMode::Replace => {
            let version = dir.allocate_version(ds)?;
            let mut next: BTreeMap<Interval, u32> = BTreeMap::new();
            let ids = m
                .built
                .iter()
                .map(|b| {
                    let p = next.entry(b.interval).or_default();
                    *p += 1;
                    SegmentId {
                        datasource: ds.clone(),
                        interval: b.interval,
                        version,
                        partition: *p - 1,
                    }
                })
                .collect();
            Ok((ids, Some(intervals)))
        }
        LoadMode::Append => {
            let timeline = dir.timeline();
            let unused = dir.catalog().unused_segments(Some(ds))?;
            let mut fresh: Option<Version> = None;
            let mut start: BTreeMap<Interval, (Version, u32)> = BTreeMap::new();
            for iv in &intervals {
                let visible = timeline.lookup(ds, *iv);
                let (version, first) = if visible.is_empty() {
                    let v = match fresh {
                        Some(v) => v,
                        None => *fresh.insert(dir.allocate_version(ds)?),
                    };
                    (v, 0)
                } else {
                    let v = visible[0].record.id.version;
                    if let Some(other) = visible
                        .iter()
                        .find(|s| s.record.id.interval != *iv || s.record.id.version != v)
                    {
                        return Err(Error::invalid(format!(
                            "cannot append to {iv}: it overlaps segment {} of another interval or version; \
                             load with --mode replace, or with the segmentGranularity of the existing data",
                            other.record.id
                        )));
                    }
                    let max_used = visible.iter().map(|s| s.record.id.partition).max();
                    let max_unused = unused
                        .iter()
                        .filter(|r| r.id.interval == *iv && r.id.version == v)
                        .map(|r| r.id.partition)
                        .max();
                    let next = max_used.max(max_unused).map_or(0, |p| p + 1);
                    (v, next)
                };
                start.insert(*iv, (version, first));
            }
            let ids = m
                .built
                .iter()
                .map(|b| {
                    let (version, first) = start[&b.interval];
                    SegmentId {
                        datasource: ds.clone(),
                        interval: b.interval,
                        version,
                        partition: first + b.partition,
                    }
                })
                .collect();
            Ok((ids, None))
        }
    }
}
