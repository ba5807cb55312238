//! A peer answering SQL in a child process: `peers.py query --serve --peer NAME`, one JSON
//! request per line on its stdin, one JSON answer per line on its stdout.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::peers::PeersScript;

/// One running peer.
#[derive(Debug)]
pub struct PeerServer {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

/// A peer's answer to one `run` request.
#[derive(Debug, Clone)]
pub struct PeerRun {
    /// Milliseconds of each run (query until the result is a materialized Arrow table).
    pub ms: Vec<f64>,
    pub rows: usize,
    pub columns: Vec<String>,
    /// The rows, when asked for and not too many.
    pub data: Option<Vec<Value>>,
}

impl PeerServer {
    /// Starts `peer` on the databases under `workdir`; returns it with its `info` answer
    /// (system, version, threads).
    pub fn spawn(
        script: &PeersScript,
        peer: &str,
        workdir: &Path,
    ) -> anyhow::Result<(Self, Value)> {
        let mut child = Command::new(&script.python)
            .arg(&script.script)
            .args(["query", "--serve", "--peer", peer, "--workdir"])
            .arg(workdir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("start {} {}", script.python, script.script.display()))?;
        let stdin = child.stdin.take().context("peer stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("peer stdout")?);
        let mut server = Self {
            name: peer.to_owned(),
            child,
            stdin: Some(stdin),
            stdout,
        };
        let info = server.request(&json!({"op": "info"}))?;
        Ok((server, info))
    }

    /// Sends one request and reads its answer; fails if the answer is not `ok`.
    pub fn request(&mut self, req: &Value) -> anyhow::Result<Value> {
        let stdin = self.stdin.as_mut().context("peer closed")?;
        writeln!(stdin, "{req}")
            .and_then(|()| stdin.flush())
            .with_context(|| format!("write to peer {}", self.name))?;
        let mut line = String::new();
        let n = self
            .stdout
            .read_line(&mut line)
            .with_context(|| format!("read from peer {}", self.name))?;
        if n == 0 {
            bail!("peer {} exited ({:?})", self.name, self.child.wait());
        }
        let answer: Value = serde_json::from_str(&line)
            .with_context(|| format!("peer {} answered {line:?}", self.name))?;
        if answer.get("ok") != Some(&Value::Bool(true)) {
            bail!(
                "{}",
                answer
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("request failed")
            );
        }
        Ok(answer)
    }

    /// Runs `sql` `runs` times; with `collect`, also returns the last result's rows (at most
    /// `max_rows`).
    pub fn run(
        &mut self,
        sql: &str,
        runs: usize,
        collect: bool,
        max_rows: usize,
        time_columns: &[String],
    ) -> anyhow::Result<PeerRun> {
        let a = self.request(&json!({
            "op": "run",
            "sql": sql,
            "runs": runs,
            "collect": collect,
            "max_rows": max_rows,
            "time_columns": time_columns,
        }))?;
        Ok(PeerRun {
            ms: a
                .get("ms")
                .and_then(Value::as_array)
                .map(|v| v.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default(),
            rows: a.get("rows").and_then(Value::as_u64).unwrap_or(0) as usize,
            columns: a
                .get("columns")
                .and_then(Value::as_array)
                .map(|v| {
                    v.iter()
                        .filter_map(|c| c.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            data: a.get("data").and_then(Value::as_array).cloned(),
        })
    }

    /// The peer process's peak RSS so far, bytes.
    pub fn peak_rss_bytes(&mut self) -> Option<u64> {
        self.request(&json!({"op": "rss"}))
            .ok()
            .and_then(|a| a.get("peak_rss_bytes").and_then(Value::as_u64))
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        // End of input ends the server loop.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}
