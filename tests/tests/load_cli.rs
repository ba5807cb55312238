//! End-to-end: `basalt load` as a user runs it — killed with SIGKILL at random moments and
//! re-run until done, it publishes exactly what an uninterrupted load publishes; a running
//! server sees loaded segments without a restart.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use arrow_array::Array;
use basalt_engine::segment::Segment;
use basalt_engine::storage::DataDir;
use basalt_engine::time::Interval;
use basalt_tests::{TestServer, basalt_bin, run_basalt};
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_451_606_400_000; // 2016-01-01T00:00:00Z

fn spec() -> Value {
    json!({
        "dataSource": "cpu",
        "timestampSpec": {"column": "ts", "format": "millis"},
        "dimensionsSpec": {"dimensions": ["host", {"type": "long", "name": "core"}]},
        "metricsSpec": [
            {"type": "count", "name": "count"},
            {"type": "doubleSum", "name": "usage", "fieldName": "usage"},
            {"type": "HLLSketchBuild", "name": "users", "fieldName": "user"}
        ],
        "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "minute", "rollup": true}
    })
}

/// xorshift: deterministic data, reproducible delays from a printed seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// `files` inputs (JSON and CSV alternating) of `rows` rows each over 12 hours.
fn write_inputs(dir: &Path, files: usize, rows: usize) -> Vec<String> {
    let mut rng = Rng(42);
    let mut out = Vec::new();
    for f in 0..files {
        let json = f % 2 == 0;
        let path = dir.join(if json {
            format!("part{f}.json")
        } else {
            format!("part{f}.csv")
        });
        let mut text = String::new();
        if !json {
            text.push_str("ts,host,core,usage,user\n");
        }
        for _ in 0..rows {
            let ts = T0 + (rng.next() % (12 * HOUR as u64)) as i64;
            let host = format!("host_{}", rng.next() % 6);
            let core = rng.next() % 3;
            let usage = rng.next() % 100;
            let user = format!("u{}", rng.next() % 20);
            if json {
                text.push_str(
                    &json!({"ts": ts, "host": host, "core": core, "usage": usage, "user": user})
                        .to_string(),
                );
                text.push('\n');
            } else {
                text.push_str(&format!("{ts},{host},{core},{usage},{user}\n"));
            }
        }
        std::fs::write(&path, text).unwrap();
        out.push(path.to_str().unwrap().to_string());
    }
    out
}

fn load_args<'a>(spec: &'a str, data: &'a str, inputs: &'a [String]) -> Vec<&'a str> {
    let mut args = vec![
        "load",
        "--spec",
        spec,
        "--data-dir",
        data,
        "--memory",
        "64KiB",
        "--batch-rows",
        "40",
        "--rows-per-segment",
        "400",
        "--threads",
        "2",
        "--progress",
        "none",
    ];
    args.extend(inputs.iter().map(String::as_str));
    args
}

/// Every row the timeline of `cpu` shows, as sorted strings.
fn served_rows(data: &Path) -> Vec<String> {
    let dir = DataDir::open(data).unwrap();
    let mut rows = Vec::new();
    for v in dir.timeline().lookup("cpu", Interval::ETERNITY) {
        let seg = Segment::open(&dir.segment_path(&v.record)).unwrap();
        for b in seg.to_record_batches().unwrap() {
            for i in 0..b.num_rows() {
                let cells: Vec<String> = b
                    .columns()
                    .iter()
                    .map(|c| format!("{:?}", c.slice(i, 1)).replace('\n', ""))
                    .collect();
                rows.push(cells.join("|"));
            }
        }
    }
    rows.sort();
    rows
}

#[test]
fn sigkill_at_random_moments_then_rerun_gives_the_uninterrupted_result() {
    let inputs_dir = tempfile::tempdir().unwrap();
    let inputs = write_inputs(inputs_dir.path(), 8, 1500);
    let spec_path = inputs_dir.path().join("spec.json");
    std::fs::write(&spec_path, spec().to_string()).unwrap();
    let spec_s = spec_path.to_str().unwrap();

    // Reference: one uninterrupted run.
    let reference_dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let (code, out, err) = run_basalt(&load_args(
        spec_s,
        reference_dir.path().to_str().unwrap(),
        &inputs,
    ));
    let full = t.elapsed();
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("rows read   12000"), "{out}");
    let expected = served_rows(reference_dir.path());
    assert!(!expected.is_empty());

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill delays seed: {seed} (full run took {full:?})");
    let mut rng = Rng(seed);
    let data = tempfile::tempdir().unwrap();
    let data_s = data.path().to_str().unwrap();
    let args = load_args(spec_s, data_s, &inputs);
    let mut kills = 0;
    let mut finished_early = false;
    for _ in 0..6 {
        let mut child = Command::new(basalt_bin())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = Duration::from_millis(rng.next() % (full.as_millis() as u64 / 2).max(50));
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_some() {
            finished_early = true;
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
    }
    eprintln!("killed {kills} times (finished early: {finished_early})");
    let (code, out, err) = run_basalt(&args);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(served_rows(data.path()), expected);
    // Running it once more changes nothing.
    let (code, out, _) = run_basalt(&args);
    assert_eq!(code, 0);
    assert!(out.contains("already published"), "{out}");
    assert_eq!(served_rows(data.path()), expected);
}

#[test]
fn running_server_sees_loaded_segments_and_cli_reports_errors() {
    let inputs_dir = tempfile::tempdir().unwrap();
    let inputs = write_inputs(inputs_dir.path(), 2, 500);
    let spec_path = inputs_dir.path().join("spec.json");
    std::fs::write(&spec_path, spec().to_string()).unwrap();
    let server = TestServer::start();
    let data: PathBuf = server.data_dir.path().to_path_buf();
    let mut args = load_args(spec_path.to_str().unwrap(), data.to_str().unwrap(), &inputs);
    args.push("--json");
    let (code, out, err) = run_basalt(&args);
    assert_eq!(code, 0, "{out}\n{err}");
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["rows_read"], 1000);
    let q = json!({"queryType": "timeseries", "dataSource": "cpu", "intervals": ["2016-01-01/2016-01-02"],
        "granularity": "all", "aggregations": [{"type": "longSum", "name": "rows", "fieldName": "count"}]});
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = server.post("/druid/v2", &q.to_string()).unwrap();
        if status == 200 {
            let v: Value = serde_json::from_str(&body).unwrap();
            if v[0]["result"]["rows"] == 1000 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "server never saw the load: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Usage errors are clear and publish nothing.
    let (code, _, err) = run_basalt(&[
        "load",
        "--spec",
        spec_path.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "/no/such/file.json",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("no such file"), "{err}");
    let (code, _, err) = run_basalt(&[
        "load",
        "--spec",
        spec_path.to_str().unwrap(),
        "--memory",
        "lots",
        inputs[0].as_str(),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("512MiB"), "{err}");
}
