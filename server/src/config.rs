//! Server configuration: built-in defaults, then a TOML file, then `BASALT_*` environment
//! variables, then command-line flags — each layer overrides the one before.
//!
//! ```toml
//! data_dir = "./basalt-data"
//!
//! [http]
//! addr = "127.0.0.1:8888"
//!
//! [grpc]
//! addr = "127.0.0.1:50051"
//!
//! [shutdown]
//! drain_timeout_secs = 10
//!
//! [log]
//! level = "info"      # a tracing filter, e.g. "info,basalt_engine=debug"
//! format = "text"     # or "json"
//!
//! [realtime]
//! fsync = "always"                 # or "interval" (with fsync_interval_ms)
//! fsync_interval_ms = 100
//! max_rows_in_memory = 150000      # pending rows of one interval before they are frozen
//! max_bytes_in_memory = 268435456  # pending bytes of the node before everything is frozen
//!                                   # (unset: at most half of memory_budget_bytes; used up to
//!                                   # half of what the budget gives pending rows)
//! memory_budget_bytes = 1073741824 # bound of the server process: less its baseline (resident
//!                                   # memory and code at start, + 8 MiB), 3/4 for pending rows
//!                                   # and pushes in progress, 1/4 for a merge or handoff build;
//!                                   # a push that does not fit gets a retryable "resources
//!                                   # exhausted" (see docs/API.md, "Memory budget")
//! intermediate_persist_period_ms = 1000
//! window_period_secs = 600         # late-row window after an interval ends, before handoff
//! late_data_max_lateness_secs = 86400  # older rows are rejected "too late"; unset = any age
//! max_parse_exceptions = 1000      # more bad rows than this reject the whole push
//! max_rows_per_sink = 5000000      # rows of one interval's sink that hand it off early
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use basalt_engine::engine::EngineConfig;
use basalt_engine::realtime::{FsyncPolicy, RealtimeConfig};
use serde::Deserialize;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per event.
    Json,
}

/// The whole server configuration after layering.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Data directory (segments, catalog, WAL); created if missing.
    pub data_dir: PathBuf,
    /// HTTP listen address.
    pub http_addr: SocketAddr,
    /// gRPC listen address.
    pub grpc_addr: SocketAddr,
    /// How long in-flight requests may run after a shutdown signal before they are cut.
    pub drain_timeout: Duration,
    /// tracing filter directive.
    pub log_level: String,
    /// Log output format.
    pub log_format: LogFormat,
    /// Realtime ingestion settings.
    pub realtime: RealtimeConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from("./basalt-data"),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8888)),
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            drain_timeout: Duration::from_secs(10),
            log_level: "info".to_string(),
            log_format: LogFormat::Text,
            realtime: RealtimeConfig::default(),
        }
    }
}

/// The TOML file's shape; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    #[serde(default)]
    http: FileAddr,
    #[serde(default)]
    grpc: FileAddr,
    #[serde(default)]
    shutdown: FileShutdown,
    #[serde(default)]
    log: FileLog,
    #[serde(default)]
    realtime: FileRealtime,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRealtime {
    fsync: Option<String>,
    fsync_interval_ms: Option<u64>,
    max_rows_in_memory: Option<u64>,
    max_bytes_in_memory: Option<u64>,
    memory_budget_bytes: Option<u64>,
    intermediate_persist_period_ms: Option<u64>,
    window_period_secs: Option<u64>,
    late_data_max_lateness_secs: Option<u64>,
    max_parse_exceptions: Option<u64>,
    max_rows_per_sink: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAddr {
    addr: Option<SocketAddr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShutdown {
    drain_timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLog {
    level: Option<String>,
    format: Option<LogFormat>,
}

/// Flags of `basalt serve`; each overrides the file and the environment.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file (also `BASALT_CONFIG`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory (segments, catalog); created if missing [default: ./basalt-data]
    /// (also `BASALT_DATA_DIR`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// HTTP listen address [default: 127.0.0.1:8888] (also `BASALT_HTTP_ADDR`).
    #[arg(long)]
    pub http_addr: Option<SocketAddr>,
    /// gRPC listen address [default: 127.0.0.1:50051] (also `BASALT_GRPC_ADDR`).
    #[arg(long)]
    pub grpc_addr: Option<SocketAddr>,
    /// Seconds to let in-flight requests finish after SIGINT/SIGTERM [default: 10]
    /// (also `BASALT_DRAIN_TIMEOUT_SECS`).
    #[arg(long)]
    pub drain_timeout_secs: Option<u64>,
    /// Log filter, e.g. `info` or `info,basalt_engine=debug` [default: info] (also `BASALT_LOG`).
    #[arg(long)]
    pub log_level: Option<String>,
    /// Log format [default: text] (also `BASALT_LOG_FORMAT`).
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// WAL fsync policy: `always` (before every acknowledgement) or `interval:MS`
    /// [default: always] (also `BASALT_FSYNC`).
    #[arg(long)]
    pub fsync: Option<String>,
    /// Memory bound of the server process in bytes: its baseline at start, then pending rows,
    /// pushes in progress and background builds; a push that does not fit is refused with a
    /// retryable error [default: 1 GiB] (also `BASALT_MEMORY_BUDGET_BYTES`).
    #[arg(long)]
    pub memory_budget_bytes: Option<u64>,
    /// Seconds after an interval ends that it still takes rows before handoff [default: 600]
    /// (also `BASALT_WINDOW_PERIOD_SECS`).
    #[arg(long)]
    pub window_period_secs: Option<u64>,
    /// Freeze pending realtime rows at least this often, in milliseconds [default: 1000]
    /// (also `BASALT_PERSIST_PERIOD_MS`).
    #[arg(long)]
    pub persist_period_ms: Option<u64>,
    /// Pending rows of one interval that trigger a freeze [default: 150000]
    /// (also `BASALT_MAX_ROWS_IN_MEMORY`).
    #[arg(long)]
    pub max_rows_in_memory: Option<u64>,
    /// Rows of one interval's sink that hand it off before the interval closes
    /// [default: 5000000] (also `BASALT_MAX_ROWS_PER_SINK`).
    #[arg(long)]
    pub max_rows_per_sink: Option<u64>,
}

/// Parse an fsync policy: `always`, `interval` (100 ms) or `interval:MS`.
fn parse_fsync(what: &str, v: &str) -> anyhow::Result<FsyncPolicy> {
    let v = v.trim().to_ascii_lowercase();
    if v == "always" {
        return Ok(FsyncPolicy::Always);
    }
    if v == "interval" {
        return Ok(FsyncPolicy::Interval(Duration::from_millis(100)));
    }
    if let Some(ms) = v.strip_prefix("interval:")
        && let Ok(ms) = ms.parse::<u64>()
        && ms > 0
    {
        return Ok(FsyncPolicy::Interval(Duration::from_millis(ms)));
    }
    bail!("{what} = {v:?}: expected `always`, `interval` or `interval:MS`")
}

impl ServerConfig {
    /// Layer defaults, the TOML file (from `--config` or `BASALT_CONFIG`), the environment and
    /// the flags.
    pub fn load(args: &ServeArgs) -> anyhow::Result<ServerConfig> {
        Self::load_from(args, &|k| std::env::var(k).ok())
    }

    /// [`ServerConfig::load`] with an explicit environment (for tests).
    pub fn load_from(
        args: &ServeArgs,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<ServerConfig> {
        let mut c = ServerConfig::default();
        let file = args
            .config
            .clone()
            .or_else(|| env("BASALT_CONFIG").map(PathBuf::from));
        let mut max_bytes_set = false;
        if let Some(path) = file {
            max_bytes_set = c.apply_file(&path)?;
        }
        c.apply_env(env)?;
        c.apply_args(args)?;
        // The freeze threshold (default 256 MiB) follows a smaller memory budget unless it was
        // set as well: `--memory-budget-bytes 64MiB` alone is a valid configuration.
        let rt = &mut c.realtime;
        if !max_bytes_set && rt.max_bytes_in_memory > rt.memory_budget_bytes {
            rt.max_bytes_in_memory = (rt.memory_budget_bytes / 2).max(1);
        }
        c.realtime.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(c)
    }

    /// Apply the file; returns whether it set `max_bytes_in_memory`.
    fn apply_file(&mut self, path: &Path) -> anyhow::Result<bool> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        let f: FileConfig = toml::from_str(&text)
            .with_context(|| format!("config file {} is not valid", path.display()))?;
        if let Some(v) = f.data_dir {
            self.data_dir = v;
        }
        if let Some(v) = f.http.addr {
            self.http_addr = v;
        }
        if let Some(v) = f.grpc.addr {
            self.grpc_addr = v;
        }
        if let Some(v) = f.shutdown.drain_timeout_secs {
            self.drain_timeout = Duration::from_secs(v);
        }
        if let Some(v) = f.log.level {
            self.log_level = v;
        }
        if let Some(v) = f.log.format {
            self.log_format = v;
        }
        let r = f.realtime;
        let rt = &mut self.realtime;
        if let Some(v) = r.fsync {
            rt.fsync = parse_fsync("[realtime] fsync", &v)?;
            if let (FsyncPolicy::Interval(_), Some(ms)) = (rt.fsync, r.fsync_interval_ms) {
                rt.fsync = FsyncPolicy::Interval(Duration::from_millis(ms.max(1)));
            }
        }
        if let Some(v) = r.max_rows_in_memory {
            rt.max_rows_in_memory = v;
        }
        if let Some(v) = r.max_bytes_in_memory {
            rt.max_bytes_in_memory = v;
        }
        if let Some(v) = r.memory_budget_bytes {
            rt.memory_budget_bytes = v;
        }
        if let Some(v) = r.intermediate_persist_period_ms {
            rt.intermediate_persist_period = Duration::from_millis(v);
        }
        if let Some(v) = r.window_period_secs {
            rt.window_period = Duration::from_secs(v);
        }
        if let Some(v) = r.late_data_max_lateness_secs {
            rt.late_data_max_lateness = Some(Duration::from_secs(v));
        }
        if let Some(v) = r.max_parse_exceptions {
            rt.max_parse_exceptions = v;
        }
        if let Some(v) = r.max_rows_per_sink {
            rt.max_rows_per_sink = v;
        }
        Ok(r.max_bytes_in_memory.is_some())
    }

    fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        fn parse<T: std::str::FromStr>(name: &str, v: &str) -> anyhow::Result<T>
        where
            T::Err: std::fmt::Display,
        {
            match v.parse() {
                Ok(x) => Ok(x),
                Err(e) => bail!("environment variable {name}={v:?} is not valid: {e}"),
            }
        }
        if let Some(v) = env("BASALT_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = env("BASALT_HTTP_ADDR") {
            self.http_addr = parse("BASALT_HTTP_ADDR", &v)?;
        }
        if let Some(v) = env("BASALT_GRPC_ADDR") {
            self.grpc_addr = parse("BASALT_GRPC_ADDR", &v)?;
        }
        if let Some(v) = env("BASALT_DRAIN_TIMEOUT_SECS") {
            self.drain_timeout = Duration::from_secs(parse("BASALT_DRAIN_TIMEOUT_SECS", &v)?);
        }
        if let Some(v) = env("BASALT_LOG") {
            self.log_level = v;
        }
        if let Some(v) = env("BASALT_LOG_FORMAT") {
            self.log_format = match v.to_ascii_lowercase().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => bail!("environment variable BASALT_LOG_FORMAT={v:?} must be text or json"),
            };
        }
        if let Some(v) = env("BASALT_FSYNC") {
            self.realtime.fsync = parse_fsync("BASALT_FSYNC", &v)?;
        }
        if let Some(v) = env("BASALT_MEMORY_BUDGET_BYTES") {
            self.realtime.memory_budget_bytes = parse("BASALT_MEMORY_BUDGET_BYTES", &v)?;
        }
        if let Some(v) = env("BASALT_WINDOW_PERIOD_SECS") {
            self.realtime.window_period =
                Duration::from_secs(parse("BASALT_WINDOW_PERIOD_SECS", &v)?);
        }
        if let Some(v) = env("BASALT_PERSIST_PERIOD_MS") {
            self.realtime.intermediate_persist_period =
                Duration::from_millis(parse("BASALT_PERSIST_PERIOD_MS", &v)?);
        }
        if let Some(v) = env("BASALT_MAX_ROWS_IN_MEMORY") {
            self.realtime.max_rows_in_memory = parse("BASALT_MAX_ROWS_IN_MEMORY", &v)?;
        }
        if let Some(v) = env("BASALT_MAX_ROWS_PER_SINK") {
            self.realtime.max_rows_per_sink = parse("BASALT_MAX_ROWS_PER_SINK", &v)?;
        }
        Ok(())
    }

    fn apply_args(&mut self, a: &ServeArgs) -> anyhow::Result<()> {
        if let Some(v) = &a.fsync {
            self.realtime.fsync = parse_fsync("--fsync", v)?;
        }
        if let Some(v) = a.memory_budget_bytes {
            self.realtime.memory_budget_bytes = v;
        }
        if let Some(v) = a.window_period_secs {
            self.realtime.window_period = Duration::from_secs(v);
        }
        if let Some(v) = a.persist_period_ms {
            self.realtime.intermediate_persist_period = Duration::from_millis(v);
        }
        if let Some(v) = a.max_rows_in_memory {
            self.realtime.max_rows_in_memory = v;
        }
        if let Some(v) = a.max_rows_per_sink {
            self.realtime.max_rows_per_sink = v;
        }
        if let Some(v) = &a.data_dir {
            self.data_dir = v.clone();
        }
        if let Some(v) = a.http_addr {
            self.http_addr = v;
        }
        if let Some(v) = a.grpc_addr {
            self.grpc_addr = v;
        }
        if let Some(v) = a.drain_timeout_secs {
            self.drain_timeout = Duration::from_secs(v);
        }
        if let Some(v) = &a.log_level {
            self.log_level = v.clone();
        }
        if let Some(v) = a.log_format {
            self.log_format = v;
        }
        Ok(())
    }

    /// The engine's configuration (validated when the engine opens). The memory budget of a
    /// server bounds the whole process (`budget_covers_process`).
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            realtime: RealtimeConfig {
                budget_covers_process: true,
                ..self.realtime.clone()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn a_small_memory_budget_alone_is_valid() -> anyhow::Result<()> {
        let args = ServeArgs {
            memory_budget_bytes: Some(64 << 20),
            ..ServeArgs::default()
        };
        let c = ServerConfig::load_from(&args, &env_of(&[]))?;
        assert_eq!(c.realtime.memory_budget_bytes, 64 << 20);
        assert_eq!(c.realtime.max_bytes_in_memory, 32 << 20);
        let c = ServerConfig::load_from(
            &ServeArgs::default(),
            &env_of(&[("BASALT_MEMORY_BUDGET_BYTES", "100000000")]),
        )?;
        assert_eq!(c.realtime.max_bytes_in_memory, 50_000_000);
        // Both set, inconsistently: still an error.
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[realtime]\nmax_bytes_in_memory = 200000000\nmemory_budget_bytes = 100000000\n",
        )?;
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        assert!(ServerConfig::load_from(&args, &env_of(&[])).is_err());
        Ok(())
    }

    #[test]
    fn defaults_without_anything() -> anyhow::Result<()> {
        let c = ServerConfig::load_from(&ServeArgs::default(), &env_of(&[]))?;
        assert_eq!(c.data_dir, PathBuf::from("./basalt-data"));
        assert_eq!(c.realtime.fsync, FsyncPolicy::Always);
        assert_eq!(c.http_addr.to_string(), "127.0.0.1:8888");
        assert_eq!(c.grpc_addr.to_string(), "127.0.0.1:50051");
        Ok(())
    }

    #[test]
    fn file_then_env_then_flags() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("basalt.toml");
        std::fs::write(
            &path,
            r#"
data_dir = "/from/file"
[http]
addr = "127.0.0.1:1001"
[grpc]
addr = "127.0.0.1:1002"
[shutdown]
drain_timeout_secs = 3
[log]
format = "json"
[realtime]
fsync = "interval"
fsync_interval_ms = 250
window_period_secs = 30
"#,
        )?;
        let args = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        };
        // File only.
        let c = ServerConfig::load_from(&args, &env_of(&[]))?;
        assert_eq!(c.data_dir, PathBuf::from("/from/file"));
        assert_eq!(c.http_addr.port(), 1001);
        assert_eq!(c.grpc_addr.port(), 1002);
        assert_eq!(c.drain_timeout, Duration::from_secs(3));
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(
            c.realtime.fsync,
            FsyncPolicy::Interval(Duration::from_millis(250))
        );
        assert_eq!(c.realtime.window_period, Duration::from_secs(30));
        // Environment overrides the file.
        let env = env_of(&[
            ("BASALT_HTTP_ADDR", "127.0.0.1:2001"),
            ("BASALT_DATA_DIR", "/from/env"),
        ]);
        let c = ServerConfig::load_from(&args, &env)?;
        assert_eq!(c.http_addr.port(), 2001);
        assert_eq!(c.grpc_addr.port(), 1002);
        assert_eq!(c.data_dir, PathBuf::from("/from/env"));
        // Flags override both.
        let args = ServeArgs {
            config: Some(path),
            http_addr: Some("127.0.0.1:3001".parse()?),
            ..ServeArgs::default()
        };
        let c = ServerConfig::load_from(&args, &env)?;
        assert_eq!(c.http_addr.port(), 3001);
        let bad = ServeArgs {
            fsync: Some("sometimes".into()),
            ..ServeArgs::default()
        };
        let e = ServerConfig::load_from(&bad, &env_of(&[]))
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(e.contains("--fsync"), "{e}");
        assert_eq!(c.data_dir, PathBuf::from("/from/env"));
        Ok(())
    }

    #[test]
    fn config_file_from_env_and_clear_errors() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[grpc]\naddr = \"127.0.0.1:4002\"\n")?;
        let p = path.to_string_lossy().to_string();
        let c = ServerConfig::load_from(&ServeArgs::default(), &env_of(&[("BASALT_CONFIG", &p)]))?;
        assert_eq!(c.grpc_addr.port(), 4002);

        std::fs::write(&path, "[grpc]\nadress = \"x\"\n")?;
        let e = ServerConfig::load_from(&ServeArgs::default(), &env_of(&[("BASALT_CONFIG", &p)]))
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(e.contains("adress"), "{e}");

        let e = ServerConfig::load_from(
            &ServeArgs::default(),
            &env_of(&[("BASALT_HTTP_ADDR", "nowhere")]),
        )
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
        assert!(e.contains("BASALT_HTTP_ADDR"), "{e}");
        let e = ServerConfig::load_from(
            &ServeArgs {
                config: Some(dir.path().join("missing.toml")),
                ..ServeArgs::default()
            },
            &env_of(&[]),
        )
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
        assert!(e.contains("missing.toml"), "{e}");
        Ok(())
    }
}
