//! `basalt`: the Basalt server and command-line tool.
//!
//! The binary is glue: it parses the command line into configuration, makes one engine call per
//! request or command, and renders the answer. All storage logic lives in `basalt-engine`.

mod http;
mod load_cmd;
mod metrics;
mod segment_cmd;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Basalt: a columnar OLAP database for time-series events.
#[derive(Debug, Parser)]
#[command(name = "basalt", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server on embedded defaults (data dir, embedded catalog, loopback ports).
    Serve(serve::ServeArgs),
    /// Bulk-load Parquet, CSV and JSON files into a datasource (parallel, bounded memory,
    /// resumable: re-run the same command after a crash).
    Load(load_cmd::LoadArgs),
    /// Inspect or verify segment files.
    Segment {
        #[command(subcommand)]
        command: SegmentCommand,
    },
}

#[derive(Debug, Subcommand)]
enum SegmentCommand {
    /// Show a segment's schema, interval, rows, and per-column sizes, encodings and cardinalities.
    Inspect {
        /// Path of the segment file.
        path: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = segment_cmd::Format::Text)]
        format: segment_cmd::Format,
    },
    /// Check every checksum and invariant of a segment; exits non-zero with the reason if any fails.
    Verify {
        /// Path of the segment file(s).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BASALT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Load(args) => load_cmd::run(args),
        Command::Segment { command } => match command {
            SegmentCommand::Inspect { path, format } => segment_cmd::inspect(&path, format),
            SegmentCommand::Verify { paths } => segment_cmd::verify(&paths),
        },
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
