//! `basalt load`: bulk-load Parquet, CSV and JSON files into a datasource.
//!
//! Glue over [`basalt_engine::loader::load`]: parse flags into a [`LoadConfig`], show progress
//! (a bar on a terminal, a plain line every few seconds otherwise), print the summary.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use basalt_engine::loader::{
    BadFilePolicy, DEFAULT_BATCH_ROWS, DEFAULT_ROWS_PER_SEGMENT, LoadConfig, LoadMode, LoadPhase,
    LoadProgress, LoadSummary,
};
use basalt_engine::storage::DataDir;

/// Arguments of `basalt load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// The load spec: Druid's dataSchema (or a full ingestion spec), plus `inputFormat` when
    /// the format cannot be told from file names.
    #[arg(long)]
    pub spec: PathBuf,
    /// Datasource name (overrides the spec's dataSource).
    #[arg(long)]
    pub datasource: Option<String>,
    /// Data directory (the same as `basalt serve`'s); a running server sees the new segments.
    #[arg(long, env = "BASALT_DATA_DIR", default_value = "./basalt-data")]
    pub data_dir: PathBuf,
    /// append: add to existing data; replace: new versions of the covered intervals.
    #[arg(long, value_enum, default_value_t = Mode::Append)]
    pub mode: Mode,
    /// Memory budget, e.g. 512MiB, 2GiB, 8G.
    #[arg(long, default_value = "2GiB", value_parser = parse_bytes)]
    pub memory: u64,
    /// Reader and builder threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Rejected rows tolerated; one more aborts the load without publishing.
    #[arg(long, default_value_t = 0)]
    pub max_parse_errors: u64,
    /// An unreadable or corrupt input: skip it (named in the summary) or abort the load.
    #[arg(long, value_enum, default_value_t = OnBadFile::Abort)]
    pub on_bad_file: OnBadFile,
    /// Target rows per segment.
    #[arg(long, default_value_t = DEFAULT_ROWS_PER_SEGMENT)]
    pub rows_per_segment: u64,
    /// Rows per batch read from an input.
    #[arg(long, default_value_t = DEFAULT_BATCH_ROWS, hide = true)]
    pub batch_rows: usize,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Progress display: auto (a bar on a terminal, plain lines otherwise), plain, none.
    #[arg(long, value_enum, default_value_t = Progress::Auto)]
    pub progress: Progress,
    /// Seconds between plain progress lines.
    #[arg(long, default_value_t = 10.0)]
    pub progress_interval: f64,
    /// Input files, directories or glob patterns (Parquet, CSV/TSV, NDJSON; .gz/.zst).
    #[arg(required = true)]
    pub inputs: Vec<String>,
}

/// `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Add partitions to the intervals' current data.
    Append,
    /// Replace the covered intervals atomically.
    Replace,
}

/// `--on-bad-file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnBadFile {
    /// Leave the file out and go on.
    Skip,
    /// Stop without publishing.
    Abort,
}

/// `--progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Progress {
    /// Bar on a terminal, plain lines otherwise.
    Auto,
    /// Plain lines.
    Plain,
    /// Nothing.
    None,
}

/// Parse `512MiB`, `2GiB`, `8G`, `100M`, `65536`, … (K/M/G/T are binary multiples too).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size like 512MiB or 2GiB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => return Err(format!("unknown size unit `{other}` in `{s}`")),
    };
    Ok((num * mult as f64) as u64)
}

/// Run `basalt load`.
pub fn run(args: LoadArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.spec)
        .with_context(|| format!("reading spec {}", args.spec.display()))?;
    let spec: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("spec {} is not valid JSON", args.spec.display()))?;
    let cfg = LoadConfig {
        inputs: args.inputs.clone(),
        datasource: args.datasource.clone(),
        mode: match args.mode {
            Mode::Append => LoadMode::Append,
            Mode::Replace => LoadMode::Replace,
        },
        memory_bytes: args.memory,
        threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        max_parse_errors: args.max_parse_errors,
        on_bad_file: match args.on_bad_file {
            OnBadFile::Skip => BadFilePolicy::Skip,
            OnBadFile::Abort => BadFilePolicy::Abort,
        },
        rows_per_segment: args.rows_per_segment,
        batch_rows: args.batch_rows,
    };
    let dir = DataDir::open_shared(&args.data_dir)
        .with_context(|| format!("opening data directory {}", args.data_dir.display()))?;
    let progress = Arc::new(LoadProgress::default());
    let stop = Arc::new(AtomicBool::new(false));
    let display = match args.progress {
        Progress::None => None,
        Progress::Plain => Some(false),
        Progress::Auto => Some(std::io::stderr().is_terminal()),
    };
    let reporter = display.map(|bar| {
        let (p, s) = (progress.clone(), stop.clone());
        let every = Duration::from_secs_f64(args.progress_interval.max(0.1));
        std::thread::spawn(move || report_progress(&p, &s, bar, every))
    });
    let result = basalt_engine::loader::load(&dir, &spec, &cfg, &progress);
    stop.store(true, Ordering::Relaxed);
    if let Some(r) = reporter {
        let _ = r.join();
    }
    let summary = result.map_err(anyhow::Error::from)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(ExitCode::SUCCESS)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn report_progress(p: &LoadProgress, stop: &AtomicBool, bar: bool, every: Duration) {
    let started = Instant::now();
    if bar {
        let pb = indicatif::ProgressBar::new(0);
        let style = indicatif::ProgressStyle::with_template(
            "{spinner} {prefix:>9} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
        pb.set_style(style);
        while !stop.load(Ordering::Relaxed) {
            let phase = p.phase();
            match phase {
                LoadPhase::Building | LoadPhase::Publishing | LoadPhase::Done => {
                    pb.set_prefix(if phase == LoadPhase::Building {
                        "building"
                    } else {
                        "publishing"
                    });
                    pb.set_length(p.segments_total.load(Ordering::Relaxed));
                    pb.set_position(p.segments_done.load(Ordering::Relaxed));
                    pb.set_message("segments");
                }
                _ => {
                    pb.set_prefix("reading");
                    pb.set_length(p.bytes_total.load(Ordering::Relaxed));
                    pb.set_position(p.bytes_read.load(Ordering::Relaxed));
                    pb.set_message(format!(
                        "{:.1} M rows, files {}/{}, rejected {}",
                        p.rows_read.load(Ordering::Relaxed) as f64 / 1e6,
                        p.inputs_done.load(Ordering::Relaxed),
                        p.inputs_total.load(Ordering::Relaxed),
                        p.rows_rejected.load(Ordering::Relaxed),
                    ));
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        pb.finish_and_clear();
        return;
    }
    let mut next = started + every;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if Instant::now() < next {
            continue;
        }
        next += every;
        let secs = started.elapsed().as_secs_f64();
        let rows = p.rows_read.load(Ordering::Relaxed);
        let (read, total) = (
            p.bytes_read.load(Ordering::Relaxed),
            p.bytes_total.load(Ordering::Relaxed),
        );
        let line = match p.phase() {
            LoadPhase::Starting => "load: starting".to_string(),
            LoadPhase::Reading => {
                let pct = if total > 0 {
                    100.0 * read as f64 / total as f64
                } else {
                    0.0
                };
                let rate = mb(read) / secs;
                let eta = if rate > 0.0 && total > read {
                    format!(", ETA {:.0} s", mb(total - read) / rate)
                } else {
                    String::new()
                };
                format!(
                    "load: reading {pct:.0}% ({:.1}/{:.1} MB, {rate:.1} MB/s), {:.2} M rows ({:.2} M rows/s), files {}/{}, rejected {}{eta}",
                    mb(read),
                    mb(total),
                    rows as f64 / 1e6,
                    rows as f64 / 1e6 / secs,
                    p.inputs_done.load(Ordering::Relaxed),
                    p.inputs_total.load(Ordering::Relaxed),
                    p.rows_rejected.load(Ordering::Relaxed),
                )
            }
            LoadPhase::Building => format!(
                "load: building segments {}/{}",
                p.segments_done.load(Ordering::Relaxed),
                p.segments_total.load(Ordering::Relaxed)
            ),
            LoadPhase::Publishing => "load: publishing".to_string(),
            LoadPhase::Done => continue,
        };
        eprintln!("{line}");
    }
}

fn print_summary(s: &LoadSummary) {
    if s.already_done {
        println!(
            "job {} was already published: nothing to do ({} segments, {} rows into `{}`)",
            s.job_id, s.segments, s.rows_stored, s.datasource
        );
        return;
    }
    println!(
        "loaded into `{}` ({} mode), job {}",
        s.datasource, s.mode, s.job_id
    );
    println!(
        "  inputs      {} files, {:.1} MB{}",
        s.inputs,
        mb(s.input_bytes),
        if s.inputs_resumed > 0 {
            format!(
                " ({} already loaded by an interrupted run)",
                s.inputs_resumed
            )
        } else {
            String::new()
        }
    );
    println!("  rows read   {}", s.rows_read);
    println!("  ingested    {}", s.rows_ingested);
    if s.rows_filtered > 0 {
        println!(
            "  filtered    {} (outside granularitySpec.intervals)",
            s.rows_filtered
        );
    }
    println!("  rejected    {}", s.rows_rejected);
    for line in s.rejects.describe(10) {
        println!("    {line}");
    }
    for (path, why) in &s.inputs_skipped {
        println!("  skipped     {}: {why}", path.display());
    }
    println!(
        "  stored      {} rows after rollup in {} segments over {} intervals, {:.1} MB",
        s.rows_stored,
        s.segments,
        s.intervals,
        mb(s.bytes)
    );
    println!(
        "  time        {:.2} s: {:.0} rows/s, {:.1} MB/s{}",
        s.elapsed_secs,
        s.rows_per_sec(),
        mb(s.input_bytes) / s.elapsed_secs.max(1e-9),
        if s.bytes_spilled > 0 {
            format!(", {:.1} MB spilled", mb(s.bytes_spilled))
        } else {
            String::new()
        }
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("8G").unwrap(), 8 << 30);
        assert_eq!(parse_bytes("1.5k").unwrap(), 1536);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("3 parsecs").is_err());
    }
}
