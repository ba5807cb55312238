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
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
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
#[derive(Debug, Clone, PartialEq)]
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
        if let Some(path) = file {
            c.apply_file(&path)?;
        }
        c.apply_env(env)?;
        c.apply_args(args);
        Ok(c)
    }

    fn apply_file(&mut self, path: &Path) -> anyhow::Result<()> {
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
        Ok(())
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
        Ok(())
    }

    fn apply_args(&mut self, a: &ServeArgs) {
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
    fn defaults_without_anything() -> anyhow::Result<()> {
        let c = ServerConfig::load_from(&ServeArgs::default(), &env_of(&[]))?;
        assert_eq!(c, ServerConfig::default());
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
