//! Run metadata (machine, commit, command line), process memory, and the JSON results files.
//!
//! Every workload writes `<results dir>/<workload>-<YYYY-MM-DDTHHMMSSZ>.json` shaped as
//! `{"run": RunInfo, "result": <workload-specific>}`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::Serialize;

use crate::timefmt::{format_file_stamp, format_rfc3339_ms};

/// The machine a run happened on.
#[derive(Debug, Clone, Serialize)]
pub struct MachineInfo {
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: Option<String>,
    /// Logical CPUs listed in /proc/cpuinfo.
    pub logical_cpus: Option<usize>,
    /// CPUs this process may run on (`std::thread::available_parallelism`).
    pub available_parallelism: usize,
    /// `MemTotal` from /proc/meminfo, bytes.
    pub memory_bytes: Option<u64>,
    /// Kernel release (/proc/sys/kernel/osrelease).
    pub kernel: Option<String>,
    /// 1-minute load average when the run started (/proc/loadavg): other work on the machine.
    pub load_average_1m: Option<f64>,
}

impl MachineInfo {
    pub fn collect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map(|(_, v)| v.trim().to_owned());
        let logical = cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count();
        let memory_bytes = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| proc_kb_field(&text, "MemTotal:"));
        Self {
            cpu_model,
            logical_cpus: (logical > 0).then_some(logical),
            available_parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_bytes,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .map(|s| s.trim().to_owned()),
            load_average_1m: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse().ok()),
        }
    }
}

/// Who ran what, where and when.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub workload: String,
    /// Start of the run, RFC 3339 UTC.
    pub started_at: String,
    /// `git rev-parse HEAD` of the source tree, when available.
    pub git_commit: Option<String>,
    /// Whether tracked files differ from that commit.
    pub git_dirty: Option<bool>,
    /// The command line, as given.
    pub command_line: Vec<String>,
    pub bench_version: &'static str,
    /// `release` or `debug`; numbers from debug builds are meaningless.
    pub build_profile: &'static str,
    pub machine: MachineInfo,
}

impl RunInfo {
    pub fn collect(workload: &str) -> Self {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"));
        let commit = git(src, &["rev-parse", "HEAD"]);
        let dirty = commit
            .as_ref()
            .and_then(|_| git(src, &["status", "--porcelain", "--untracked-files=no"]))
            .map(|out| !out.is_empty());
        Self {
            workload: workload.to_owned(),
            started_at: format_rfc3339_ms(now_ms()),
            git_commit: commit,
            git_dirty: dirty,
            command_line: std::env::args().collect(),
            bench_version: env!("CARGO_PKG_VERSION"),
            build_profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            machine: MachineInfo::collect(),
        }
    }
}

/// Runs git in `dir`; `None` if git is missing, fails, or prints nothing on a query that should.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Peak resident set size of this process so far (`VmHWM`), bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    proc_status_field("VmHWM:")
}

/// Current resident set size of this process (`VmRSS`), bytes.
pub fn current_rss_bytes() -> Option<u64> {
    proc_status_field("VmRSS:")
}

fn proc_status_field(key: &str) -> Option<u64> {
    proc_kb_field(&std::fs::read_to_string("/proc/self/status").ok()?, key)
}

/// Parses a `Key:   123 kB` line of a /proc file into bytes.
fn proc_kb_field(text: &str, key: &str) -> Option<u64> {
    let rest = text.lines().find_map(|l| l.strip_prefix(key))?;
    let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

/// Writes `{"run": run, "result": result}` to `dir/<workload>-<stamp>.json` (atomically) and
/// returns the path.
pub fn write_result(
    dir: &Path,
    run: &RunInfo,
    result: &serde_json::Value,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let path = dir.join(format!(
        "{}-{}.json",
        run.workload,
        format_file_stamp(now_ms())
    ));
    let tmp = path.with_extension("json.tmp");
    let doc = serde_json::json!({ "run": run, "result": result });
    std::fs::write(&tmp, serde_json::to_string_pretty(&doc)? + "\n")
        .with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("rename to {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_fields() {
        let text = "Name:\tx\nVmHWM:\t  1234 kB\nVmRSS:\t 10 kB\n";
        assert_eq!(proc_kb_field(text, "VmHWM:"), Some(1234 * 1024));
        assert_eq!(proc_kb_field(text, "VmSwap:"), None);
    }

    #[test]
    fn reads_own_memory_and_machine() {
        // Current first: other tests allocate concurrently, and the peak only grows.
        let cur = current_rss_bytes().expect("Linux /proc/self/status");
        let peak = peak_rss_bytes().expect("Linux /proc/self/status");
        assert!(peak >= cur && cur > 0);
        let m = MachineInfo::collect();
        assert!(m.available_parallelism >= 1);
        assert!(m.memory_bytes.is_some());
    }
}
