//! Helpers for end-to-end tests: find the `basalt` binary, start a server on a free loopback
//! port with a temporary data directory, and talk HTTP to it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Path of the `basalt` binary built by cargo for this test run.
///
/// Uses `BASALT_BIN` when set; otherwise the workspace's target directory (`CARGO_TARGET_DIR`
/// or `target/`) in the profile the tests were built with.
pub fn basalt_bin() -> PathBuf {
    if let Ok(p) = std::env::var("BASALT_BIN") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    // Integration test executables live in <target>/<profile>/deps/.
    let profile_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().and_then(|d| d.parent()).map(Path::to_path_buf))
        .unwrap_or_else(|| target.join("debug"));
    let bin = profile_dir.join(format!("basalt{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "the basalt binary is not at {}; run `cargo build -p basalt-server` or `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// Run `basalt` with arguments; returns (exit code, stdout, stderr).
pub fn run_basalt(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(basalt_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running basalt {args:?}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// A running `basalt serve` with a temporary data directory; killed on drop.
#[derive(Debug)]
pub struct TestServer {
    child: Child,
    /// HTTP address.
    pub http: SocketAddr,
    /// gRPC address.
    pub grpc: SocketAddr,
    /// Data directory (kept while the server lives).
    pub data_dir: tempfile::TempDir,
}

impl TestServer {
    /// Start a server on a new empty data directory and wait until it is healthy.
    pub fn start() -> TestServer {
        TestServer::start_in(tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}")))
    }

    /// Start a server on an existing data directory and wait until `/status/health` answers.
    pub fn start_in(data_dir: tempfile::TempDir) -> TestServer {
        TestServer::start_with(data_dir, &[])
    }

    /// [`TestServer::start_in`] with extra `basalt serve` flags.
    pub fn start_with(data_dir: tempfile::TempDir, extra_args: &[&str]) -> TestServer {
        let http: SocketAddr = format!("127.0.0.1:{}", free_port())
            .parse()
            .unwrap_or_else(|e| panic!("address: {e}"));
        let grpc: SocketAddr = format!("127.0.0.1:{}", free_port())
            .parse()
            .unwrap_or_else(|e| panic!("address: {e}"));
        let child = Command::new(basalt_bin())
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir.path())
            .arg("--http-addr")
            .arg(http.to_string())
            .arg("--grpc-addr")
            .arg(grpc.to_string())
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting basalt serve: {e}"));
        let mut server = TestServer {
            child,
            http,
            grpc,
            data_dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = server.get("/status/health") {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("basalt serve exited early with {status}");
            }
            assert!(
                Instant::now() < deadline,
                "basalt serve did not become healthy in 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kill the server with SIGKILL (no chance to flush anything) and keep its data directory
    /// for a restart with [`TestServer::start_in`].
    pub fn kill_and_keep(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let placeholder = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        std::mem::replace(&mut self.data_dir, placeholder)
    }

    /// Send SIGTERM, wait for the exit status, and keep the data directory for a restart.
    pub fn stop_keep(mut self) -> (std::process::ExitStatus, tempfile::TempDir) {
        let status = self.terminate();
        let placeholder = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        (status, std::mem::replace(&mut self.data_dir, placeholder))
    }

    /// Send SIGTERM and wait for the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.terminate()
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "basalt did not stop within 20 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's process id (to read its `/proc` entries).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The gRPC endpoint URL (`http://127.0.0.1:PORT`).
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// HTTP GET; returns (status, body).
    pub fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        http_request(self.http, "GET", path, None)
    }

    /// HTTP POST of a JSON body; returns (status, body).
    pub fn post(&self, path: &str, body: &str) -> std::io::Result<(u16, String)> {
        http_request(self.http, "POST", path, Some(body))
    }

    /// Any HTTP request with extra headers and a raw body; returns the whole response.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<HttpResponse> {
        http_send(self.http, method, path, headers, body)
    }

    /// Whether the server still answers `/status/health` with 200 and its process is alive.
    pub fn is_healthy(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
            && matches!(self.get("/status/health"), Ok((200, _)))
    }

    /// The HTTP base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.http)
    }
}

/// A whole HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header (lower-cased name, value) pairs, in order.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body text if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text()))
    }
}

/// Send one HTTP/1.1 request (one connection) with `headers` and a raw `body`.
///
/// The body is written from a second thread while the response is read, so a server that
/// answers early (413 for a body over its limit) and closes is still heard.
pub fn http_send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut writer = s.try_clone()?;
    let payload = [head.as_bytes(), body].concat();
    let write_thread = std::thread::spawn(move || {
        // An early answer may close the connection before the body is written: not an error.
        let _ = writer.write_all(&payload);
    });
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // A reset after the response arrived (server closed with unread body) ends it.
            Err(e) if !raw.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(e),
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Both);
    let _ = write_thread.join();
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> std::io::Result<HttpResponse> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            std::io::Error::other(format!(
                "bad HTTP response: {:.200}",
                String::from_utf8_lossy(raw)
            ))
        })?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head:.200}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk_bytes(&body);
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk_bytes(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..eol]).unwrap_or("0");
        let n =
            usize::from_str_radix(size.split(';').next().unwrap_or("0").trim(), 16).unwrap_or(0);
        let after = &rest[eol + 2..];
        if n == 0 || after.len() < n {
            break;
        }
        out.extend_from_slice(&after[..n]);
        rest = after[n..].strip_prefix(b"\r\n").unwrap_or(&after[n..]);
    }
    out
}

/// Load NDJSON `rows` into `data_dir` with the real `basalt load` (spec `spec`); panics with
/// the loader's output if it fails.
pub fn load_rows(data_dir: &Path, spec: &serde_json::Value, rows: &[serde_json::Value]) {
    let work = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let spec_path = work.path().join("spec.json");
    let data_path = work.path().join("rows.json");
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&spec_path, spec.to_string()).unwrap_or_else(|e| panic!("writing spec: {e}"));
    std::fs::write(&data_path, text).unwrap_or_else(|e| panic!("writing rows: {e}"));
    let data_dir = data_dir.to_string_lossy().into_owned();
    let spec_arg = spec_path.to_string_lossy().into_owned();
    let data_arg = data_path.to_string_lossy().into_owned();
    let (code, out, err) = run_basalt(&[
        "load",
        "--data-dir",
        &data_dir,
        "--spec",
        &spec_arg,
        "--progress",
        "none",
        &data_arg,
    ]);
    assert_eq!(code, 0, "basalt load failed:\n{out}\n{err}");
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 client (one request per connection).
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad HTTP response: {text:.200}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    // Undo chunked transfer encoding if used.
    let body = if text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(&body)
    } else {
        body
    };
    Ok((status, body))
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// The value of one Prometheus series (name with its labels, exactly as exposed) in a
/// `/metrics` text; panics naming the series when it is missing.
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("series {series} missing from:\n{text}"))
}
