//! `basalt`: the Basalt server and command-line tool.
//!
//! The binary is glue: it parses the command line into configuration, makes one engine call per
//! request or command, and renders the answer. All storage logic lives in `basalt-engine`.

mod client_cmd;
mod config;
mod grpc;
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
    Serve(config::ServeArgs),
    /// Run a SQL query on a running server (gRPC) and print the result.
    Sql(client_cmd::SqlArgs),
    /// Run a Druid native query (JSON file) on a running server (gRPC) and print the result.
    Query(client_cmd::QueryArgs),
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

fn init_logging(filter: &str, format: config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        config::LogFormat::Text => builder.init(),
        config::LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `serve` takes its log settings from its layered configuration; other commands from
    // BASALT_LOG.
    let mut server_config = None;
    match &cli.command {
        Command::Serve(args) => match config::ServerConfig::load(args) {
            Ok(c) => {
                init_logging(&c.log_level, c.log_format);
                server_config = Some(c);
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::FAILURE;
            }
        },
        _ => {
            let level = std::env::var("BASALT_LOG").unwrap_or_else(|_| "info".into());
            init_logging(&level, config::LogFormat::Text);
        }
    }
    let result = match cli.command {
        Command::Serve(_) => match server_config {
            Some(c) => serve::run(c),
            None => Err(anyhow::anyhow!("no server configuration")),
        },
        Command::Sql(args) => client_cmd::sql(args),
        Command::Query(args) => client_cmd::query(args),
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
