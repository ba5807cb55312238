//! The job manifest: what a load has made durable, so a re-run resumes instead of redoing.
//!
//! `<data-dir>/jobs/<job-id>/manifest.json`, replaced atomically (write, fsync, rename, fsync
//! the directory) at every checkpoint. The job id hashes what the load *is* — spec, datasource,
//! mode and the input files with their sizes — so re-running the same command finds the same
//! job, and anything else starts a new one.
//!
//! States: `loading` (inputs listed in `done_inputs` have all their rows in the listed runs)
//! → `built` (every input done; `plan` fixed; segments in `built` are staged) → `publishing`
//! (the exact segment ids being published) → `done`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::loader::LoadMode;
use crate::loader::inputs::InputFile;
use crate::loader::rejects::RejectStats;
use crate::segment::SegmentId;
use crate::time::Interval;

/// File name of the manifest in a job directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Manifest format version (bump on incompatible changes).
pub const MANIFEST_VERSION: u32 = 1;

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Reading inputs.
    Loading,
    /// All inputs spilled; building segments from the runs.
    Built,
    /// Publishing `publish`.
    Publishing,
    /// Published.
    Done,
}

/// A spill run that counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// File name in the job directory.
    pub file: String,
    /// Attempt that wrote it.
    pub attempt: u32,
}

/// Per-input counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputStats {
    /// Rows read (accepted + rejected + filtered).
    pub rows_read: u64,
    /// Rows kept for the load.
    pub rows_accepted: u64,
    /// Rows outside `granularitySpec.intervals`.
    pub rows_filtered: u64,
    /// File bytes.
    pub bytes: u64,
    /// Rejected rows.
    pub rejects: RejectStats,
}

/// An input whose rows are all in runs written by `attempt`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputDone {
    /// Attempt whose runs hold the input's rows (pieces of other attempts are stale).
    pub attempt: u32,
    /// Its counters.
    pub stats: InputStats,
}

/// How many partitions an interval is built as.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedInterval {
    /// The segment interval.
    pub interval: Interval,
    /// Input rows.
    pub rows: u64,
    /// Partitions (segments).
    pub partitions: u32,
}

/// A staged segment in the job directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuiltSegment {
    /// Its interval.
    pub interval: Interval,
    /// Partition within the load (renumbered at publish for appends).
    pub partition: u32,
    /// File name in the job directory.
    pub file: String,
    /// Rows in, after rollup, file bytes.
    pub rows_in: u64,
    /// Rows stored.
    pub rows_out: u64,
    /// File size.
    pub bytes: u64,
}

/// The segments being published.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishRecord {
    /// One id per built segment, same order as `built`.
    pub ids: Vec<SegmentId>,
    /// Intervals replaced (replace mode).
    pub replace: Option<Vec<Interval>>,
}

/// The manifest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// The job id.
    pub job_id: String,
    /// Target datasource.
    pub datasource: String,
    /// Append or replace.
    pub mode: LoadMode,
    /// The spec document as given.
    pub spec: Value,
    /// Inputs, in load order (indexes below refer to this list).
    pub inputs: Vec<InputFile>,
    /// Where the job is.
    pub state: JobState,
    /// Runs of the command so far (the current one included).
    pub attempt: u32,
    /// Spill runs that count.
    pub runs: Vec<RunRecord>,
    /// Inputs whose rows are durable in `runs`.
    pub done_inputs: BTreeMap<u32, InputDone>,
    /// Inputs skipped as unreadable, with the reason.
    pub skipped_inputs: BTreeMap<u32, String>,
    /// Partitions per interval, fixed once every input is done.
    pub plan: Vec<PlannedInterval>,
    /// Staged segments.
    pub built: Vec<BuiltSegment>,
    /// Set while publishing.
    pub publish: Option<PublishRecord>,
    /// Final summary once done.
    pub summary: Option<Value>,
}

impl Manifest {
    /// A fresh manifest.
    pub fn new(
        job_id: String,
        datasource: String,
        mode: LoadMode,
        spec: Value,
        inputs: Vec<InputFile>,
    ) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            job_id,
            datasource,
            mode,
            spec,
            inputs,
            state: JobState::Loading,
            attempt: 0,
            runs: Vec::new(),
            done_inputs: BTreeMap::new(),
            skipped_inputs: BTreeMap::new(),
            plan: Vec::new(),
            built: Vec::new(),
            publish: None,
            summary: None,
        }
    }

    /// Read the manifest of a job directory, if there is one.
    pub fn load(job_dir: &Path) -> Result<Option<Manifest>> {
        let path = job_dir.join(MANIFEST_FILE);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let m: Manifest = serde_json::from_slice(&text)
            .map_err(|e| Error::corruption(&path, "job manifest", "a manifest JSON document", e))?;
        if m.version != MANIFEST_VERSION {
            return Err(Error::Incompatible {
                path,
                reason: format!(
                    "job manifest version {} (this basalt reads {MANIFEST_VERSION}); remove the job directory to start over",
                    m.version
                ),
            });
        }
        Ok(Some(m))
    }

    /// Replace the manifest durably.
    pub fn save(&self, job_dir: &Path) -> Result<()> {
        let path = job_dir.join(MANIFEST_FILE);
        let tmp = job_dir.join(format!("{MANIFEST_FILE}.tmp"));
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::internal(format!("encoding the job manifest: {e}")))?;
        let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(&bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        sync_dir(job_dir)
    }

    /// Names of the files in the job directory the manifest refers to.
    pub fn referenced_files(&self) -> Vec<String> {
        let mut v: Vec<String> = self.runs.iter().map(|r| r.file.clone()).collect();
        v.extend(self.built.iter().map(|b| b.file.clone()));
        v.push(MANIFEST_FILE.to_string());
        v
    }
}

/// fsync a directory (no-op where directories cannot be fsynced).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let d = File::open(dir).map_err(|e| Error::io(dir, e))?;
        d.sync_all().map_err(|e| Error::io(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The job id: a stable 64-bit FNV-1a hash (hex) of the canonical JSON of what the load is.
pub fn job_id(spec: &Value, datasource: &str, mode: LoadMode, inputs: &[InputFile]) -> String {
    let identity = serde_json::json!({
        "spec": spec,
        "datasource": datasource,
        "mode": mode,
        "inputs": inputs,
    });
    let mut text = String::new();
    canonical_json(&identity, &mut text);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// JSON with object keys sorted, whatever the map type.
fn canonical_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                canonical_json(&m[*k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Path of a job directory.
pub fn job_dir(data_dir: &Path, job_id: &str) -> PathBuf {
    data_dir.join(crate::loader::JOBS_DIR).join(job_id)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn job_id_is_stable_and_sensitive() {
        let inputs = vec![InputFile {
            path: "/a.csv".into(),
            size: 10,
        }];
        let a = job_id(
            &json!({"x": 1, "y": [1, 2]}),
            "ds",
            LoadMode::Append,
            &inputs,
        );
        let b = job_id(
            &json!({"y": [1, 2], "x": 1}),
            "ds",
            LoadMode::Append,
            &inputs,
        );
        assert_eq!(a, b);
        assert_eq!(a.len(), 16);
        assert_ne!(
            a,
            job_id(
                &json!({"x": 1, "y": [1, 2]}),
                "ds",
                LoadMode::Replace,
                &inputs
            )
        );
        let bigger = vec![InputFile {
            path: "/a.csv".into(),
            size: 11,
        }];
        assert_ne!(
            a,
            job_id(
                &json!({"x": 1, "y": [1, 2]}),
                "ds",
                LoadMode::Append,
                &bigger
            )
        );
    }

    #[test]
    fn saves_and_loads() {
        let d = tempfile::tempdir().unwrap();
        assert!(Manifest::load(d.path()).unwrap().is_none());
        let mut m = Manifest::new(
            "j".into(),
            "ds".into(),
            LoadMode::Replace,
            json!({}),
            vec![],
        );
        m.runs.push(RunRecord {
            file: "run-1-0.arrows".into(),
            attempt: 1,
        });
        m.save(d.path()).unwrap();
        let back = Manifest::load(d.path()).unwrap().unwrap();
        assert_eq!(back.runs, m.runs);
        assert_eq!(back.mode, LoadMode::Replace);
        std::fs::write(d.path().join(MANIFEST_FILE), b"{oops").unwrap();
        assert!(matches!(
            Manifest::load(d.path()),
            Err(Error::Corruption { .. })
        ));
    }
}
