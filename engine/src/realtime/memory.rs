//! The memory budget of realtime ingestion, and how it is shared.
//!
//! `memory_budget_bytes` is split once, when ingestion opens:
//!
//! ```text
//! budget = baseline + rows + builds
//! ```
//!
//! - **baseline**: memory the budget must cover but ingestion does not count. With
//!   [`RealtimeConfig::budget_covers_process`] (the server sets it) it is the process's resident
//!   set when ingestion opens, plus its executable code not resident yet, plus
//!   [`UNCOUNTED_ALLOWANCE`] (runtime threads, connection and request buffers, the allocator's
//!   slack); otherwise 0, and the budget bounds only what ingestion counts.
//! - **rows**: pending rows (each sink's writer, by [`SegmentWriter::estimated_bytes`], which
//!   covers sorting and encoding them when they are frozen) and pushes in progress (the request
//!   and its parsed values). A push that would pass it fails with the retryable
//!   `ResourcesExhausted`, before anything of it is stored.
//! - **builds**: one background build at a time (a merge of pieces, a handoff's output
//!   segment), sized to fit: merges take only the pieces that fit, a handoff cuts its output
//!   into segments that fit (fewer rows than `rows_per_segment` if need be).
//!
//! What is counted is an estimate, and the allocator may keep freed memory for a while (the
//! server's mimalloc purges freed pages after a delay). So a process-wide budget is also
//! checked against the process itself: a push is refused (the same retryable
//! `ResourcesExhausted`) while the process's anonymous resident memory is above
//! [`MemoryPlan::anonymous_ceiling`], the budget less the file-backed part of the baseline, and
//! every sink is frozen; as long as ingestion holds pending rows it can release (else the
//! memory is not ingestion's to give back, and pushes go on).
//!
//! [`SegmentWriter::estimated_bytes`]: crate::segment::SegmentWriter::estimated_bytes
//! [`RealtimeConfig::budget_covers_process`]: super::RealtimeConfig::budget_covers_process

use std::sync::OnceLock;

use crate::error::{Error, Result};

/// Memory of the process that ingestion does not count but the budget covers, on top of the
/// resident set measured at open: threads started later, connection and request buffers.
pub const UNCOUNTED_ALLOWANCE: u64 = 8 << 20;

/// Share of what the baseline leaves that background builds get (1 / BUILD_SHARE_DIVISOR).
pub const BUILD_SHARE_DIVISOR: u64 = 4;

/// The budget, split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryPlan {
    /// The configured bound.
    pub budget: u64,
    /// Memory covered but not counted.
    pub baseline: u64,
    /// Bound of pending rows and pushes in progress.
    pub rows_limit: u64,
    /// Bound of one background build.
    pub build_limit: u64,
    /// With a process-wide budget: the bound of the process's anonymous resident memory (the
    /// budget less its code and other file-backed pages).
    pub anonymous_ceiling: Option<u64>,
}

impl MemoryPlan {
    /// Split `budget` over a `baseline`; an error if the baseline leaves too little.
    pub fn new(budget: u64, baseline: u64) -> Result<MemoryPlan> {
        Self::with_ceiling(budget, baseline, None)
    }

    /// Split the budget for the whole process whose memory `process` describes (see
    /// [`ProcessMemory`]); the baseline also gets [`UNCOUNTED_ALLOWANCE`].
    pub fn for_process(budget: u64, process: ProcessMemory) -> Result<MemoryPlan> {
        let file_backed =
            process.resident.saturating_sub(process.anonymous) + process.unresident_code;
        Self::with_ceiling(
            budget,
            process.resident + process.unresident_code + UNCOUNTED_ALLOWANCE,
            Some(budget.saturating_sub(file_backed)),
        )
    }

    fn with_ceiling(budget: u64, baseline: u64, ceiling: Option<u64>) -> Result<MemoryPlan> {
        let available = budget.saturating_sub(baseline);
        // Less than this cannot hold a useful push and a build.
        const MIN_AVAILABLE: u64 = 1 << 20;
        if available < MIN_AVAILABLE {
            return Err(Error::invalid(format!(
                "realtime config: memory_budget_bytes ({budget}) leaves {available} bytes for \
                 ingestion after the process's baseline of {baseline} bytes; it needs at least \
                 {MIN_AVAILABLE} more than the baseline"
            )));
        }
        let build_limit = available / BUILD_SHARE_DIVISOR;
        Ok(MemoryPlan {
            budget,
            baseline,
            rows_limit: available - build_limit,
            build_limit,
            anonymous_ceiling: ceiling,
        })
    }
}

/// What a process-wide budget starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessMemory {
    /// Resident set (`VmRSS`).
    pub resident: u64,
    /// Its anonymous part (`RssAnon`).
    pub anonymous: u64,
    /// The executable's code not resident yet: code pages count in the resident set once run,
    /// and a server runs more of its code as it goes (merges, handoffs, queries).
    pub unresident_code: u64,
}

/// The memory of this process now, if the platform tells it.
pub fn process_memory() -> Option<ProcessMemory> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(kb_field)
    };
    let exe = std::fs::read_link("/proc/self/exe").ok();
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    Some(ProcessMemory {
        resident: field("VmRSS:")?,
        anonymous: field("RssAnon:")?,
        unresident_code: exe.map_or(0, |exe| unresident_code(&smaps, &exe.to_string_lossy())),
    })
}

/// The anonymous resident memory of this process (`RssAnon`), if the platform tells it.
///
/// Checked on every push, so it is read from `/proc/self/statm`, resident less shared pages:
/// the kernel's count of anonymous pages, the one `RssAnon` shows, at a fraction of the cost of
/// producing `/proc/self/status` (which walks every thread and mapping summary). The file is
/// opened once and read again from offset 0 each time (the kernel produces its text afresh on
/// every read from the start), which saves the path lookup of an open.
pub fn process_anonymous_bytes() -> Option<u64> {
    static STATM: OnceLock<Option<(std::fs::File, u64)>> = OnceLock::new();
    let statm = STATM.get_or_init(|| {
        let page = page_size()?;
        let file = std::fs::File::open("/proc/self/statm").ok()?;
        Some((file, page))
    });
    match statm {
        #[cfg(unix)]
        Some((file, page)) => {
            use std::os::unix::fs::FileExt;
            let mut buf = [0u8; 256];
            let n = file.read_at(&mut buf, 0).ok()?;
            let text = std::str::from_utf8(buf.get(..n)?).ok()?;
            statm_anonymous_pages(text).map(|pages| pages * page)
        }
        _ => {
            let status = std::fs::read_to_string("/proc/self/status").ok()?;
            status
                .lines()
                .find(|l| l.starts_with("RssAnon:"))
                .and_then(kb_field)
        }
    }
}

/// Anonymous resident pages from the text of `/proc/<pid>/statm` (`size resident shared …`,
/// in pages; `shared` counts the file-backed and shared-memory pages of `resident`).
fn statm_anonymous_pages(statm: &str) -> Option<u64> {
    let mut fields = statm.split_whitespace().skip(1);
    let resident: u64 = fields.next()?.parse().ok()?;
    let shared: u64 = fields.next()?.parse().ok()?;
    resident.checked_sub(shared)
}

/// The size of the pages `/proc/self/statm` counts: the first mapping's `KernelPageSize` in
/// `/proc/self/smaps` (read once).
fn page_size() -> Option<u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    smaps
        .lines()
        .find(|l| l.starts_with("KernelPageSize:"))
        .and_then(kb_field)
        .filter(|&b| b > 0)
}

/// Bytes of the executable mappings of `exe` in `smaps` (the text of `/proc/<pid>/smaps`)
/// that are not resident.
fn unresident_code(smaps: &str, exe: &str) -> u64 {
    let mut total = 0;
    let mut in_code = false;
    let mut size = 0;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            // A mapping's header: range, permissions, offset, device, inode, path.
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            in_code = perms.contains('x') && path == exe;
            size = 0;
        } else if in_code && first == "Size:" {
            size = kb_field(line).unwrap_or(0);
        } else if in_code && first == "Rss:" {
            total += size.saturating_sub(kb_field(line).unwrap_or(0));
        }
    }
    total
}

fn kb_field(line: &str) -> Option<u64> {
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_split_after_the_baseline() {
        let p = MemoryPlan::new(100 << 20, 20 << 20).map_err(|e| e.to_string());
        assert_eq!(
            p,
            Ok(MemoryPlan {
                budget: 100 << 20,
                baseline: 20 << 20,
                rows_limit: 60 << 20,
                build_limit: 20 << 20,
                anonymous_ceiling: None,
            })
        );
        // A whole process: 30 MiB resident (10 of it anonymous), 6 MiB of code to come.
        let process = ProcessMemory {
            resident: 30 << 20,
            anonymous: 10 << 20,
            unresident_code: 6 << 20,
        };
        let p = MemoryPlan::for_process(100 << 20, process).map_err(|e| e.to_string());
        let baseline = (36 << 20) + UNCOUNTED_ALLOWANCE;
        assert_eq!(p.as_ref().map(|p| p.baseline), Ok(baseline));
        assert_eq!(p.map(|p| p.anonymous_ceiling), Ok(Some(74 << 20)));
        assert!(MemoryPlan::new(20 << 20, 20_000_000).is_err());
    }

    #[test]
    fn statm_gives_resident_less_shared_pages() {
        assert_eq!(
            statm_anonymous_pages("5000 1200 300 40 0 900 0\n"),
            Some(900)
        );
        assert_eq!(statm_anonymous_pages("5000 1200"), None);
        assert_eq!(statm_anonymous_pages(""), None);
    }

    /// The cheap reading agrees with `RssAnon`.
    #[cfg(target_os = "linux")]
    #[test]
    fn anonymous_bytes_match_rss_anon() {
        let fast = process_anonymous_bytes().map(|b| b as i64);
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let slow = status
            .lines()
            .find(|l| l.starts_with("RssAnon:"))
            .and_then(kb_field)
            .map(|b| b as i64);
        let (Some(fast), Some(slow)) = (fast, slow) else {
            panic!("no reading: {fast:?} {slow:?}");
        };
        assert!(
            (fast - slow).abs() < 32 << 20,
            "statm {fast} vs status {slow}"
        );
        // The file is kept open and read again: a later reading sees memory touched since.
        // (Other tests run in this process meanwhile: margins are wide.)
        let block = std::hint::black_box(vec![1u8; 256 << 20]);
        let after = process_anonymous_bytes().unwrap_or(0) as i64;
        assert!(
            after - fast > 192 << 20,
            "before {fast}, after touching 256 MiB {after}"
        );
        drop(block);
    }

    #[test]
    fn unresident_code_counts_executable_mappings_of_the_binary() {
        let smaps = "\
55d0-55e0 r--p 00000000 08:01 123 /usr/bin/basalt
Size:                100 kB
Rss:                  60 kB
55e0-5600 r-xp 00010000 08:01 123 /usr/bin/basalt
Size:               2000 kB
Rss:                 500 kB
7f00-7f10 r-xp 00000000 08:01 456 /usr/lib/libc.so.6
Size:               1000 kB
Rss:                 900 kB
7f20-7f30 rw-p 00000000 00:00 0
Size:                 40 kB
Rss:                  40 kB
";
        assert_eq!(unresident_code(smaps, "/usr/bin/basalt"), 1500 * 1024);
        assert_eq!(unresident_code(smaps, "/other"), 0);
    }
}
