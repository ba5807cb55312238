//! Running the peer systems (DuckDB, ClickHouse via chdb) through `bench/peers.py`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// Where `peers.py` lives and which Python runs it.
#[derive(Debug, Clone)]
pub struct PeersScript {
    pub python: String,
    pub script: PathBuf,
}

impl Default for PeersScript {
    fn default() -> Self {
        Self {
            python: "python3".to_owned(),
            script: Path::new(env!("CARGO_MANIFEST_DIR")).join("peers.py"),
        }
    }
}

/// Options of `peers.py load`.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Also load a DuckDB table sorted by (hostname, timestamp).
    pub duckdb_sorted: bool,
    /// Only these peers (names as peers.py knows them); all when empty.
    pub only: Vec<String>,
}

impl PeersScript {
    /// Runs `peers.py load` on `parquet`, keeping the peers' databases under `workdir`, and
    /// returns the JSON it wrote. The script's own output goes to this process's stderr.
    pub fn load(
        &self,
        parquet: &Path,
        workdir: &Path,
        opts: &LoadOptions,
    ) -> anyhow::Result<serde_json::Value> {
        std::fs::create_dir_all(workdir)
            .with_context(|| format!("create {}", workdir.display()))?;
        let out = workdir.join("peers-load.json");
        let mut cmd = Command::new(&self.python);
        cmd.arg(&self.script)
            .arg("load")
            .arg("--parquet")
            .arg(parquet)
            .arg("--workdir")
            .arg(workdir)
            .arg("--json")
            .arg(&out);
        if opts.duckdb_sorted {
            cmd.arg("--duckdb-sorted");
        }
        for peer in &opts.only {
            cmd.arg("--peer").arg(peer);
        }
        // peers.py reports progress on stdout; keep ours clean for the summary.
        cmd.stdout(std::process::Stdio::inherit());
        eprintln!("running {cmd:?}");
        let status = cmd
            .status()
            .with_context(|| format!("run {} {}", self.python, self.script.display()))?;
        if !status.success() {
            bail!("peers.py load failed ({status}); see its output above");
        }
        let text =
            std::fs::read_to_string(&out).with_context(|| format!("read {}", out.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parse {}", out.display()))
    }
}
