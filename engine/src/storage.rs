//! The data directory: segment files, the catalog, and atomic publishing.
//!
//! Layout of `<data_dir>`:
//!
//! ```text
//! catalog.sqlite (+ -wal, -shm)      the catalog (see crate::catalog)
//! staging/                           segments being written; emptied on open
//! segments/<datasource>/<start-ms>_<end-ms>/<version>/<partition>.bseg
//! ```
//!
//! The catalog stores each segment's path relative to the data directory, `/`-separated.
//!
//! **Crash-safety invariant: a segment is visible iff its catalog row is committed.** Publishing
//! goes (1) fsync each staged file, (2) rename it to its final path and fsync the directories it
//! changed, (3) insert all rows in one catalog transaction, (4) swap in a new timeline snapshot.
//! A crash before (3) commits leaves files without rows — *orphans* — which nothing reads and
//! [`DataDir::cleanup_orphans`] removes (open runs it); a crash after (3) loses nothing, because
//! open rebuilds the timeline from the catalog. A failed (3) removes the files renamed in (2).
//! Files of segments marked unused keep their rows and are *not* orphans; deleting them is a
//! separate, later cleanup step.
//!
//! One process owns a data directory at a time; within it, publishes, drops and orphan cleanup
//! are serialized so file moves, catalog commits and timeline swaps happen in one order.

use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::catalog::{Catalog, SegmentRecord};
use crate::error::{Error, Result};
use crate::segment::{SegmentId, Version};
use crate::time::Interval;
use crate::timeline::{Timeline, TimelineHandle};

/// Directory under the data directory holding published segment files.
pub const SEGMENTS_DIR: &str = "segments";
/// Directory under the data directory where writers build segments before publishing.
pub const STAGING_DIR: &str = "staging";
/// File extension of segment files.
pub const SEGMENT_FILE_EXTENSION: &str = "bseg";
/// Longest datasource name, in bytes (a path component on common filesystems).
pub const MAX_DATASOURCE_NAME_BYTES: usize = 255;

/// Check that `name` can be a datasource name, which is also a directory name on disk.
///
/// Rejected: empty, longer than [`MAX_DATASOURCE_NAME_BYTES`] bytes, containing `/`, `\` or NUL,
/// and `.` / `..`.
pub fn validate_datasource_name(name: &str) -> Result<()> {
    let why = if name.is_empty() {
        "it is empty"
    } else if name.len() > MAX_DATASOURCE_NAME_BYTES {
        "it is longer than 255 bytes"
    } else if name.contains('/') {
        "it contains '/'"
    } else if name.contains('\\') {
        "it contains '\\'"
    } else if name.contains('\0') {
        "it contains a NUL byte"
    } else if name == "." || name == ".." {
        "'.' and '..' are reserved path names"
    } else {
        return Ok(());
    };
    Err(Error::invalid(format!(
        "invalid datasource name {name:?}: {why}"
    )))
}

/// The path of a segment file relative to the data directory, `/`-separated, as the catalog
/// stores it: `segments/<datasource>/<start-ms>_<end-ms>/<version>/<partition>.bseg`.
pub fn relative_segment_path(id: &SegmentId) -> Result<String> {
    validate_datasource_name(&id.datasource)?;
    Ok(format!(
        "{SEGMENTS_DIR}/{}/{}_{}/{}/{}.{SEGMENT_FILE_EXTENSION}",
        id.datasource, id.interval.start, id.interval.end, id.version.0, id.partition
    ))
}

/// An open data directory: catalog, segment files and the current timeline.
#[derive(Debug)]
pub struct DataDir {
    root: PathBuf,
    catalog: Catalog,
    timeline: TimelineHandle,
    /// Serializes publish, drop and orphan cleanup (see the module docs).
    write_lock: Mutex<()>,
    /// Makes staging paths unique within this process.
    staging_seq: AtomicU64,
    /// The catalog's `data_version` at the last [`DataDir::refresh_if_changed`].
    seen_data_version: AtomicI64,
}

impl DataDir {
    /// Open (creating if needed) the data directory at `path`: create `segments/` and
    /// `staging/`, open the catalog, empty `staging/`, remove orphan segment files, and build
    /// the timeline from the catalog's used segments.
    pub fn open(path: &Path) -> Result<DataDir> {
        for dir in [
            path.to_path_buf(),
            path.join(SEGMENTS_DIR),
            path.join(STAGING_DIR),
        ] {
            fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        sync_dir(path)?;
        let catalog = Catalog::open(path)?;
        let dir = DataDir {
            root: path.to_path_buf(),
            catalog,
            timeline: TimelineHandle::default(),
            write_lock: Mutex::new(()),
            staging_seq: AtomicU64::new(0),
            seen_data_version: AtomicI64::new(i64::MIN),
        };
        let staged = dir.clear_staging()?;
        let orphans = dir.cleanup_orphans()?;
        dir.refresh()?;
        let timeline = dir.timeline();
        tracing::info!(
            path = %path.display(),
            segments = timeline.num_segments(None),
            datasources = timeline.datasources().len(),
            staged_removed = staged,
            orphans_removed = orphans,
            "opened data directory"
        );
        Ok(dir)
    }

    /// Open a data directory that another process may own (a running `basalt serve`): like
    /// [`DataDir::open`] but leaves `staging/` and orphan files alone, since they may belong to
    /// the owner's publish in progress. Publishing from here is safe (the catalog serializes
    /// commits across processes); the owner sees the new segments through
    /// [`DataDir::refresh_if_changed`].
    pub fn open_shared(path: &Path) -> Result<DataDir> {
        for dir in [
            path.to_path_buf(),
            path.join(SEGMENTS_DIR),
            path.join(STAGING_DIR),
        ] {
            fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        let catalog = Catalog::open(path)?;
        let dir = DataDir {
            root: path.to_path_buf(),
            catalog,
            timeline: TimelineHandle::default(),
            write_lock: Mutex::new(()),
            staging_seq: AtomicU64::new(0),
            seen_data_version: AtomicI64::new(i64::MIN),
        };
        dir.refresh()?;
        Ok(dir)
    }

    /// Rebuild the timeline if another process committed to the catalog since the last call
    /// (checked with [`Catalog::data_version`], which costs no table read). Returns whether it
    /// refreshed. A server calls this periodically so segments published by `basalt load`
    /// become visible without a restart.
    pub fn refresh_if_changed(&self) -> Result<bool> {
        let version = self.catalog.data_version()?;
        if self.seen_data_version.swap(version, Ordering::AcqRel) == version {
            return Ok(false);
        }
        self.refresh()?;
        Ok(true)
    }

    /// Changes a cached datasource spec must be checked against: datasource registrations
    /// changed through this process's catalog handle, and the catalog's `data_version` at the
    /// last [`DataDir::refresh_if_changed`] (changes by other processes, seen once a refresh
    /// notices them). Read it before the spec.
    pub fn datasource_epoch(&self) -> (u64, i64) {
        (
            self.catalog.datasource_changes(),
            self.seen_data_version.load(Ordering::Acquire),
        )
    }

    /// The data directory's root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// A snapshot of the current timeline; later publishes do not change it.
    pub fn timeline(&self) -> Arc<Timeline> {
        self.timeline.snapshot()
    }

    /// Absolute path of a published segment's file.
    pub fn segment_path(&self, record: &SegmentRecord) -> PathBuf {
        let mut path = self.root.clone();
        path.extend(record.path.split('/'));
        path
    }

    /// A new, unique file path under `staging/` for a writer to build a segment in. The file
    /// does not exist yet. Staging is per process: it is emptied when the directory is opened.
    pub fn staging_path(&self) -> Result<PathBuf> {
        let seq = self.staging_seq.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = self
            .root
            .join(STAGING_DIR)
            .join(format!("{}-{nanos}-{seq}.tmp", std::process::id()));
        if path.exists() {
            return Err(Error::internal(format!(
                "staging path {} already exists",
                path.display()
            )));
        }
        Ok(path)
    }

    /// A new segment version for `datasource` (see [`Catalog::allocate_version`]).
    pub fn allocate_version(&self, datasource: &str) -> Result<Version> {
        validate_datasource_name(datasource)?;
        self.catalog.allocate_version(datasource)
    }

    /// Publish staged segment files atomically: all become visible together, or none does.
    ///
    /// `staged` holds, per segment, its id, the staged file (on the data directory's filesystem,
    /// normally from [`DataDir::staging_path`]) and its row count. Each file is fsynced and moved
    /// to its final path, then one catalog transaction commits every row (and, with `replace`,
    /// marks the older segments within those intervals unused — see [`Catalog::publish`]), then
    /// the timeline snapshot is swapped. Returns the published records.
    ///
    /// On error nothing becomes visible and no final file is left behind; staged files that
    /// were already moved are deleted, so the caller must rebuild them to retry. An id that is
    /// already in the catalog fails with [`Error::AlreadyExists`] before any file is touched.
    pub fn publish(
        &self,
        staged: Vec<(SegmentId, PathBuf, u64)>,
        replace: Option<&[Interval]>,
    ) -> Result<Vec<SegmentRecord>> {
        let _guard = self.write_lock.lock();

        // 1. Validate everything before touching a file.
        let mut seen = HashSet::with_capacity(staged.len());
        let mut plan = Vec::with_capacity(staged.len());
        for (id, file, num_rows) in staged {
            let rel = relative_segment_path(&id)?;
            if id.interval.is_empty() {
                return Err(Error::invalid(format!(
                    "segment {id}: interval {} is empty",
                    id.interval
                )));
            }
            if !seen.insert(id.clone()) {
                return Err(Error::AlreadyExists(format!(
                    "segment {id} (twice in one publish)"
                )));
            }
            if self.catalog.get_segment(&id)?.is_some() {
                return Err(Error::AlreadyExists(format!("segment {id}")));
            }
            plan.push((id, file, num_rows, rel));
        }

        // 2. Make the staged bytes durable, then move them into place.
        let mut records = Vec::with_capacity(plan.len());
        let mut moved: Vec<PathBuf> = Vec::with_capacity(plan.len());
        let mut dirs_to_sync = BTreeSet::new();
        let result = (|| -> Result<()> {
            for (id, file, num_rows, rel) in plan {
                let size_bytes = sync_file(&file)?;
                let record = SegmentRecord {
                    id,
                    path: rel,
                    size_bytes,
                    num_rows,
                };
                let dest = self.segment_path(&record);
                if dest.exists() {
                    // No catalog row (checked above, under the write lock): a crash leftover.
                    fs::remove_file(&dest).map_err(|e| Error::io(&dest, e))?;
                }
                let parent = parent_of(&dest)?.to_path_buf();
                self.create_dirs(&parent, &mut dirs_to_sync)?;
                fs::rename(&file, &dest).map_err(|e| {
                    Error::io(
                        &file,
                        std::io::Error::new(
                            e.kind(),
                            format!("moving staged segment to {}: {e}", dest.display()),
                        ),
                    )
                })?;
                moved.push(dest);
                dirs_to_sync.insert(parent);
                records.push(record);
            }
            for dir in &dirs_to_sync {
                sync_dir(dir)?;
            }
            Ok(())
        })();

        // 3. Commit: from here on the segments exist.
        let result = result.and_then(|()| self.catalog.publish(&records, replace));
        if let Err(e) = result {
            self.remove_published_files(&moved);
            return Err(e);
        }

        // 4. Show them to new queries.
        let datasources: BTreeSet<&str> =
            records.iter().map(|r| r.id.datasource.as_str()).collect();
        self.refresh_datasources(datasources).map_err(|e| {
            Error::Catalog(format!(
                "{} segments were published, but refreshing the timeline failed \
                 (reopen or call refresh): {e}",
                records.len()
            ))
        })?;
        tracing::debug!(
            segments = records.len(),
            replace = replace.is_some(),
            "published"
        );
        Ok(records)
    }

    /// Mark unused every used segment of `datasource` lying within `interval`, and refresh the
    /// timeline. Returns how many segments were dropped. Files stay until unused-segment cleanup.
    pub fn drop_interval(&self, datasource: &str, interval: Interval) -> Result<usize> {
        validate_datasource_name(datasource)?;
        let _guard = self.write_lock.lock();
        let n = self.catalog.drop_interval(datasource, interval)?;
        self.refresh_datasources([datasource])?;
        Ok(n)
    }

    /// Unregister a datasource and mark its segments unused (see [`Catalog::drop_datasource`]),
    /// and refresh the timeline.
    pub fn drop_datasource(&self, datasource: &str) -> Result<()> {
        let _guard = self.write_lock.lock();
        self.catalog.drop_datasource(datasource)?;
        self.refresh_datasources([datasource])
    }

    /// Rebuild the whole timeline from the catalog's used segments. Needed only after changing
    /// segments through [`DataDir::catalog`] directly.
    pub fn refresh(&self) -> Result<()> {
        let used = self.catalog.used_segments(None)?;
        self.timeline
            .replace(Arc::new(Timeline::from_records(used)));
        Ok(())
    }

    fn refresh_datasources<'a>(
        &self,
        datasources: impl IntoIterator<Item = &'a str>,
    ) -> Result<()> {
        let mut timeline = Timeline::clone(&self.timeline.snapshot());
        for ds in datasources {
            timeline = timeline.with_datasource(ds, self.catalog.used_segments(Some(ds))?);
        }
        self.timeline.replace(Arc::new(timeline));
        Ok(())
    }

    /// Remove files under `segments/` that have no catalog row (used or unused) — leftovers of
    /// publishes that crashed before committing — and the directories left empty. Returns how
    /// many files were removed. [`DataDir::open`] calls it.
    pub fn cleanup_orphans(&self) -> Result<usize> {
        let _guard = self.write_lock.lock();
        let known = self.catalog.all_segment_paths()?;
        let segments_dir = self.root.join(SEGMENTS_DIR);
        let mut removed = 0;
        // Depth-first walk; directories are revisited after their children to prune empty ones.
        let mut stack = vec![(segments_dir.clone(), SEGMENTS_DIR.to_string(), false)];
        while let Some((dir, rel, children_done)) = stack.pop() {
            if children_done {
                if dir != segments_dir && is_empty_dir(&dir)? {
                    fs::remove_dir(&dir).map_err(|e| Error::io(&dir, e))?;
                }
                continue;
            }
            stack.push((dir.clone(), rel.clone(), true));
            for entry in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
                let entry = entry.map_err(|e| Error::io(&dir, e))?;
                let path = entry.path();
                let file_type = entry.file_type().map_err(|e| Error::io(&path, e))?;
                // A name that is not UTF-8 cannot be in the catalog: `None` means orphan.
                let child_rel = entry.file_name().to_str().map(|n| format!("{rel}/{n}"));
                if file_type.is_dir() {
                    match child_rel {
                        Some(child_rel) => stack.push((path, child_rel, false)),
                        None => {
                            tracing::warn!(path = %path.display(), "removing orphan directory");
                            fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
                        }
                    }
                } else if !child_rel.is_some_and(|r| known.contains(&r)) {
                    tracing::warn!(path = %path.display(), "removing orphan segment file");
                    fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Delete everything under `staging/`. Only safe when no writer is using it: at open.
    fn clear_staging(&self) -> Result<usize> {
        let staging = self.root.join(STAGING_DIR);
        let mut removed = 0;
        for entry in fs::read_dir(&staging).map_err(|e| Error::io(&staging, e))? {
            let entry = entry.map_err(|e| Error::io(&staging, e))?;
            let path = entry.path();
            let file_type = entry.file_type().map_err(|e| Error::io(&path, e))?;
            if file_type.is_dir() {
                fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
            } else {
                fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            }
            removed += 1;
        }
        Ok(removed)
    }

    /// Create `dir` and missing ancestors; remember the parents whose entries changed.
    fn create_dirs(&self, dir: &Path, dirs_to_sync: &mut BTreeSet<PathBuf>) -> Result<()> {
        if dir.is_dir() {
            return Ok(());
        }
        let parent = parent_of(dir)?;
        self.create_dirs(parent, dirs_to_sync)?;
        match fs::create_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) => return Err(Error::io(dir, e)),
        }
        dirs_to_sync.insert(parent.to_path_buf());
        Ok(())
    }

    /// Best-effort rollback of a failed publish: delete moved files and prune empty dirs.
    fn remove_published_files(&self, moved: &[PathBuf]) {
        let segments_dir = self.root.join(SEGMENTS_DIR);
        for file in moved {
            if let Err(e) = fs::remove_file(file) {
                // Left as an orphan; the next open removes it.
                tracing::warn!(path = %file.display(), error = %e, "cannot remove unpublished segment");
                continue;
            }
            let mut dir = file.parent();
            while let Some(d) = dir {
                if d == segments_dir || !d.starts_with(&segments_dir) || fs::remove_dir(d).is_err()
                {
                    break;
                }
                dir = d.parent();
            }
        }
    }
}

fn parent_of(path: &Path) -> Result<&Path> {
    path.parent()
        .ok_or_else(|| Error::internal(format!("{} has no parent directory", path.display())))
}

fn is_empty_dir(dir: &Path) -> Result<bool> {
    let mut entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    Ok(entries.next().is_none())
}

/// fsync a regular file; returns its size.
fn sync_file(path: &Path) -> Result<u64> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::invalid(format!(
            "staged segment {} is not a regular file",
            path.display()
        )));
    }
    file.sync_all().map_err(|e| Error::io(path, e))?;
    Ok(meta.len())
}

/// fsync a directory so the entries created or renamed in it survive a crash.
fn sync_dir(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let dir = File::open(path).map_err(|e| Error::io(path, e))?;
        dir.sync_all().map_err(|e| Error::io(path, e))?;
    }
    #[cfg(not(unix))]
    let _ = path; // Directory handles cannot be fsynced here; NTFS journals metadata.
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn iv(start: i64, end: i64) -> Interval {
        Interval { start, end }
    }

    fn id(ds: &str, start: i64, end: i64, version: Version, partition: u32) -> SegmentId {
        SegmentId {
            datasource: ds.to_string(),
            interval: iv(start, end),
            version,
            partition,
        }
    }

    /// Write `bytes` to a fresh staging file.
    fn stage(dir: &DataDir, bytes: &[u8]) -> PathBuf {
        let path = dir.staging_path().unwrap();
        fs::write(&path, bytes).unwrap();
        path
    }

    fn count_files(dir: &Path) -> usize {
        let mut n = 0;
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                n += count_files(&entry.path());
            } else {
                n += 1;
            }
        }
        n
    }

    fn visible_versions(dir: &DataDir, ds: &str, q: Interval) -> Vec<(i64, i64, u64)> {
        dir.timeline()
            .lookup(ds, q)
            .iter()
            .map(|v| (v.visible.start, v.visible.end, v.record.id.version.0))
            .collect()
    }

    #[test]
    fn data_dir_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<DataDir>();
        assert_send_sync::<Arc<Timeline>>();
    }

    #[test]
    fn datasource_names() {
        validate_datasource_name("wikipedia").unwrap();
        validate_datasource_name("a.b-c_d é").unwrap();
        validate_datasource_name(&"x".repeat(255)).unwrap();
        for bad in ["", ".", "..", "a/b", "a\\b", "a\0b", &"x".repeat(256)] {
            let err = validate_datasource_name(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{bad:?}: {err}");
        }
        let err = validate_datasource_name("a/b").unwrap_err().to_string();
        assert!(err.contains("\"a/b\"") && err.contains("'/'"), "{err}");
    }

    #[test]
    fn publish_then_reopen_sees_segments() {
        let tmp = tempfile::tempdir().unwrap();
        let published;
        {
            let dir = DataDir::open(tmp.path()).unwrap();
            assert!(dir.timeline().is_empty());
            let v = dir.allocate_version("wiki").unwrap();
            let a = stage(&dir, b"segment-a");
            let b = stage(&dir, b"segment-bb");
            assert_ne!(a, b);
            published = dir
                .publish(
                    vec![
                        (id("wiki", 0, 3_600_000, v, 0), a.clone(), 7),
                        (id("wiki", 0, 3_600_000, v, 1), b.clone(), 8),
                    ],
                    None,
                )
                .unwrap();
            assert!(!a.exists() && !b.exists());
            assert_eq!(
                published[0].path,
                format!("segments/wiki/0_3600000/{}/0.bseg", v.0)
            );
            assert_eq!(published[0].size_bytes, 9);
            assert_eq!(published[1].num_rows, 8);
            assert_eq!(
                fs::read(dir.segment_path(&published[1])).unwrap(),
                b"segment-bb"
            );
            assert_eq!(dir.timeline().lookup("wiki", iv(0, 10)).len(), 2);
        }
        let dir = DataDir::open(tmp.path()).unwrap();
        let got: Vec<SegmentRecord> = dir
            .timeline()
            .lookup("wiki", iv(0, 3_600_000))
            .into_iter()
            .map(|v| v.record)
            .collect();
        assert_eq!(got, published);
        assert_eq!(fs::read(dir.segment_path(&got[0])).unwrap(), b"segment-a");
    }

    #[test]
    fn orphans_and_staging_are_removed_on_open() {
        let tmp = tempfile::tempdir().unwrap();
        let kept;
        {
            let dir = DataDir::open(tmp.path()).unwrap();
            let v = dir.allocate_version("ds").unwrap();
            let f = stage(&dir, b"kept");
            kept = dir
                .publish(vec![(id("ds", 0, 10, v, 0), f, 1)], None)
                .unwrap();
            // A crash between rename and commit leaves a file with no row...
            let orphan = tmp.path().join("segments/ds/10_20/5/0.bseg");
            fs::create_dir_all(orphan.parent().unwrap()).unwrap();
            fs::write(&orphan, b"orphan").unwrap();
            // ...next to a committed segment, plus a half-written staging file.
            fs::write(
                tmp.path().join(format!("segments/ds/0_10/{}/9.bseg", v.0)),
                b"x",
            )
            .unwrap();
            stage(&dir, b"half-written");
        }
        let dir = DataDir::open(tmp.path()).unwrap();
        assert!(!tmp.path().join("segments/ds/10_20").exists());
        assert_eq!(count_files(&tmp.path().join(SEGMENTS_DIR)), 1);
        assert_eq!(count_files(&tmp.path().join(STAGING_DIR)), 0);
        assert_eq!(fs::read(dir.segment_path(&kept[0])).unwrap(), b"kept");
        assert_eq!(dir.timeline().num_segments(None), 1);
        assert_eq!(dir.cleanup_orphans().unwrap(), 0);
    }

    #[test]
    fn replace_overshadows_older_versions() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        let v1 = dir.allocate_version("ds").unwrap();
        let staged = vec![
            (id("ds", 0, 10, v1, 0), stage(&dir, b"1"), 1),
            (id("ds", 10, 20, v1, 0), stage(&dir, b"2"), 1),
            (id("ds", 20, 30, v1, 0), stage(&dir, b"3"), 1),
        ];
        let old = dir.publish(staged, None).unwrap();
        let before = dir.timeline();
        let v2 = dir.allocate_version("ds").unwrap();
        assert!(v2 > v1);
        let new = dir
            .publish(
                vec![(id("ds", 0, 20, v2, 0), stage(&dir, b"compacted"), 2)],
                Some(&[iv(0, 20)]),
            )
            .unwrap();
        assert_eq!(
            visible_versions(&dir, "ds", iv(0, 30)),
            vec![(0, 20, v2.0), (20, 30, v1.0)]
        );
        // The snapshot taken before the publish is unchanged.
        assert_eq!(before.lookup("ds", iv(0, 30)).len(), 3);
        let unused: Vec<_> = dir.catalog().unused_segments(Some("ds")).unwrap();
        assert_eq!(unused, old[..2].to_vec());
        // Replaced files stay (they have rows) until unused-segment cleanup.
        assert!(dir.segment_path(&old[0]).exists());
        assert_eq!(dir.cleanup_orphans().unwrap(), 0);
        assert!(dir.segment_path(&new[0]).exists());

        assert_eq!(dir.drop_interval("ds", iv(0, 20)).unwrap(), 1);
        assert_eq!(
            visible_versions(&dir, "ds", iv(0, 30)),
            vec![(20, 30, v1.0)]
        );
    }

    #[test]
    fn failed_publish_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        let v = dir.allocate_version("ds").unwrap();
        let first = dir
            .publish(
                vec![(id("ds", 0, 10, v, 0), stage(&dir, b"original"), 1)],
                None,
            )
            .unwrap();
        let before = dir.timeline();

        // A duplicate id: rejected before any file moves; the committed file is untouched.
        let fresh = stage(&dir, b"fresh");
        let dup = stage(&dir, b"impostor");
        let err = dir
            .publish(
                vec![
                    (id("ds", 10, 20, v, 0), fresh.clone(), 1),
                    (id("ds", 0, 10, v, 0), dup.clone(), 1),
                ],
                None,
            )
            .unwrap_err();
        assert!(matches!(err, Error::AlreadyExists(_)), "{err}");
        assert!(fresh.exists() && dup.exists());
        assert_eq!(fs::read(dir.segment_path(&first[0])).unwrap(), b"original");
        assert!(!tmp.path().join("segments/ds/10_20").exists());
        assert_eq!(dir.catalog().used_segments(None).unwrap(), first);
        assert!(Arc::ptr_eq(&before, &dir.timeline()));

        // The catalog transaction itself fails (replace spanning two datasources) after the
        // files were moved: they are removed again, with their directories.
        let err = dir
            .publish(
                vec![
                    (id("ds", 10, 20, v, 0), fresh, 1),
                    (id("other", 0, 10, v, 0), dup, 1),
                ],
                Some(&[iv(0, 20)]),
            )
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
        assert_eq!(count_files(&tmp.path().join(SEGMENTS_DIR)), 1);
        assert!(!tmp.path().join("segments/ds/10_20").exists());
        assert!(!tmp.path().join("segments/other").exists());
        assert_eq!(dir.catalog().used_segments(None).unwrap(), first);
        assert_eq!(dir.timeline().num_segments(None), 1);

        // A missing staged file fails cleanly too.
        let err = dir
            .publish(
                vec![(id("ds", 30, 40, v, 0), tmp.path().join("nope"), 1)],
                None,
            )
            .unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        // Bad names never reach the filesystem.
        let err = dir
            .publish(vec![(id("..", 0, 10, v, 0), stage(&dir, b"x"), 1)], None)
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
        assert_eq!(count_files(&tmp.path().join(SEGMENTS_DIR)), 1);
    }

    #[test]
    fn drop_datasource_hides_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        let v = dir.allocate_version("ds").unwrap();
        dir.publish(vec![(id("ds", 0, 10, v, 0), stage(&dir, b"x"), 1)], None)
            .unwrap();
        dir.drop_datasource("ds").unwrap();
        assert!(dir.timeline().is_empty());
        assert!(matches!(dir.drop_datasource("ds"), Err(Error::NotFound(_))));
    }
}
