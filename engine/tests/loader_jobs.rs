//! Load jobs: append vs replace, idempotent re-runs, bad rows and bad files, resuming.

#![allow(clippy::unwrap_used)]

mod loader_common;

use std::io::Write;
use std::path::{Path, PathBuf};

use basalt_engine::loader::{BadFilePolicy, LoadMode};
use basalt_engine::storage::DataDir;
use basalt_engine::time::Interval;
use loader_common::*;

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn in_hours(ev: &[Event], from: i64, to: i64) -> Vec<Event> {
    ev.iter()
        .filter(|e| e.ts >= T0 + from * HOUR && e.ts < T0 + to * HOUR)
        .cloned()
        .collect()
}

#[test]
fn append_adds_and_replace_swaps_covered_intervals() {
    let spec = spec(false);
    let inputs = tempfile::tempdir().unwrap();
    let a = events(600, 4, 10); // hours 0-3
    let b: Vec<Event> = events(400, 4, 11)
        .into_iter()
        .map(|mut e| {
            e.ts += 2 * HOUR; // hours 2-5
            e
        })
        .collect();
    let c = events(300, 2, 12); // hours 0-1
    let (fa, fb, fc) = (
        inputs.path().join("a.json"),
        inputs.path().join("b.csv"),
        inputs.path().join("c.json"),
    );
    write_json(&fa, &a);
    write_csv(&fb, &b, ',');
    write_json(&fc, &c);
    let data = tempfile::tempdir().unwrap();

    load(data.path(), &spec, std::slice::from_ref(&fa), |_| {}).unwrap();
    let s = load(data.path(), &spec, std::slice::from_ref(&fb), |c| {
        c.rows_per_segment = 70
    })
    .unwrap();
    assert!(s.segments > 4, "{s:?}");
    let a_and_b: Vec<Event> = a.iter().chain(&b).cloned().collect();
    assert_eq!(
        served_rows(data.path(), "cpu"),
        reference_rows(&spec, &a_and_b)
    );
    {
        // Appended partitions joined the existing version of hours 2 and 3.
        let dir = DataDir::open(data.path()).unwrap();
        let hour2 = Interval::new(T0 + 2 * HOUR, T0 + 3 * HOUR).unwrap();
        let segs = dir.timeline().lookup("cpu", hour2);
        let versions: std::collections::BTreeSet<_> =
            segs.iter().map(|s| s.record.id.version).collect();
        assert_eq!(versions.len(), 1);
        assert!(segs.len() > 1);
    }

    // Replace hours 0-1 with c: hours 2-5 keep a and b.
    let replace = |c: &mut basalt_engine::loader::LoadConfig| c.mode = LoadMode::Replace;
    let s = load(data.path(), &spec, std::slice::from_ref(&fc), replace).unwrap();
    assert!(!s.already_done);
    let mut expected: Vec<Event> = c.clone();
    expected.extend(in_hours(&a_and_b, 2, 6));
    let after_replace = served_rows(data.path(), "cpu");
    assert_eq!(after_replace, reference_rows(&spec, &expected));

    // The same command again: nothing happens.
    let again = load(data.path(), &spec, std::slice::from_ref(&fc), replace).unwrap();
    assert!(again.already_done);
    assert_eq!(served_rows(data.path(), "cpu"), after_replace);
    // Re-running a finished append does not duplicate either.
    let again = load(data.path(), &spec, std::slice::from_ref(&fb), |c| {
        c.rows_per_segment = 70
    })
    .unwrap();
    assert!(again.already_done);
    assert_eq!(served_rows(data.path(), "cpu"), after_replace);
}

#[test]
fn append_refuses_intervals_of_another_granularity() {
    let inputs = tempfile::tempdir().unwrap();
    let f = inputs.path().join("a.json");
    write_json(&f, &events(100, 3, 5));
    let data = tempfile::tempdir().unwrap();
    let mut daily = spec(true);
    daily["granularitySpec"]["segmentGranularity"] = "day".into();
    load(data.path(), &daily, std::slice::from_ref(&f), |_| {}).unwrap();
    let before = served_rows(data.path(), "cpu");
    let err = load(data.path(), &spec(true), std::slice::from_ref(&f), |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot append"), "{err}");
    assert_eq!(served_rows(data.path(), "cpu"), before);
}

#[test]
fn bad_rows_are_counted_by_reason_and_limit_aborts_without_publishing() {
    let inputs = tempfile::tempdir().unwrap();
    let ev = events(300, 2, 6);
    let csv = inputs.path().join("a.csv");
    write_csv(&csv, &ev, ',');
    let mut f = std::fs::OpenOptions::new().append(true).open(&csv).unwrap();
    writeln!(f, "{},host_1,notanumber,1,u1", T0).unwrap();
    writeln!(f, "{},host_1,2,NaN,u1", T0).unwrap();
    writeln!(f, "yesterday,host_1,2,3,u1").unwrap();
    writeln!(f, "{},host_1,2", T0).unwrap();
    writeln!(f, "{},host_1,notanumber,1,u1", T0 + 1).unwrap();
    drop(f);
    let json = inputs.path().join("b.json");
    write_json(&json, &ev[..10]);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&json)
        .unwrap();
    writeln!(f, "{{\"ts\": {T0}, \"host\": {{\"nested\": 1}}}}").unwrap();
    writeln!(f, "[1, 2]").unwrap();
    writeln!(f, "{{\"host\": \"no time\"}}").unwrap();
    drop(f);
    let inputs_list = [csv.clone(), json.clone()];

    let data = tempfile::tempdir().unwrap();
    let err = load(data.path(), &spec(true), &inputs_list, |c| {
        c.max_parse_errors = 3
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("too many rejected rows"), "{err}");
    assert!(err.contains("not a long"), "{err}");
    assert!(served_rows(data.path(), "cpu").is_empty());

    let s = load(data.path(), &spec(true), &inputs_list, |c| {
        c.max_parse_errors = 8
    })
    .unwrap();
    assert_eq!(s.rows_rejected, 8, "{:#?}", s.rejects);
    assert_eq!(s.rows_ingested, 310);
    assert_eq!(s.rows_read, 318);
    let r = &s.rejects.by_reason;
    assert_eq!(r["field `core`: not a long"], 2);
    assert_eq!(r["field `usage`: NaN"], 1);
    assert_eq!(r["timestamp `ts`: unparseable"], 1);
    assert_eq!(r["timestamp `ts`: missing"], 1);
    assert_eq!(r["CSV: wrong number of fields"], 1);
    assert_eq!(r["invalid JSON object"], 1);
    assert_eq!(r["field `host`: not a scalar or list"], 1);
    let ex = &s.rejects.examples["field `core`: not a long"];
    assert!(ex[0].contains("a.csv:302"), "{ex:?}");
    assert!(ex[0].contains("\"notanumber\""), "{ex:?}");
    let mut good: Vec<Event> = ev.clone();
    good.extend(ev[..10].iter().cloned());
    assert_eq!(
        served_rows(data.path(), "cpu"),
        reference_rows(&spec(true), &good)
    );
}

/// A gzip file whose second half is garbage: rows decode until the damage.
fn corrupt_gzip(path: &Path, ev: &[Event]) {
    write_json(path, ev);
    let mut bytes = std::fs::read(path).unwrap();
    let n = bytes.len();
    for b in &mut bytes[n / 2..n - 8] {
        *b = 0x55;
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn bad_files_are_skipped_whole_or_abort_the_load() {
    let spec = spec(true);
    let inputs = tempfile::tempdir().unwrap();
    let good = events(800, 5, 7);
    let fa = inputs.path().join("a.json");
    let fb = inputs.path().join("b.json.gz");
    let fc = inputs.path().join("c.parquet");
    let fd = inputs.path().join("d.csv");
    write_json(&fa, &good[..400]);
    corrupt_gzip(&fb, &events(3000, 5, 8));
    std::fs::write(&fc, b"PAR1 this is not parquet at all PAR1").unwrap();
    write_csv(&fd, &good[400..], ',');
    let all: Vec<PathBuf> = vec![fa, fb.clone(), fc.clone(), fd];
    let small = |c: &mut basalt_engine::loader::LoadConfig| {
        c.memory_bytes = 64 << 10;
        c.batch_rows = 64;
    };

    // Abort (the default): nothing is published, the error names the file.
    let data = tempfile::tempdir().unwrap();
    let err = load(data.path(), &spec, &all, small)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("c.parquet") || err.contains("b.json.gz"),
        "{err}"
    );
    assert!(served_rows(data.path(), "cpu").is_empty());

    // Skip: the good files' rows, none of the damaged file's (even those read before the
    // damage, some of them already spilled).
    let s = load(data.path(), &spec, &all, |c| {
        small(c);
        c.on_bad_file = BadFilePolicy::Skip;
    })
    .unwrap();
    let skipped: Vec<&PathBuf> = s.inputs_skipped.iter().map(|(p, _)| p).collect();
    assert_eq!(skipped, [&fb, &fc], "{s:?}");
    assert_eq!(s.rows_ingested, 800);
    assert_eq!(
        served_rows(data.path(), "cpu"),
        reference_rows(&spec, &good)
    );
}

#[test]
fn an_aborted_load_resumes_without_rereading_done_inputs() {
    let spec = spec(true);
    let inputs = tempfile::tempdir().unwrap();
    let ev = events(3000, 6, 9);
    let mut files = Vec::new();
    for (i, part) in ev.chunks(500).enumerate() {
        let f = inputs.path().join(format!("p{i}.json"));
        write_json(&f, part);
        files.push(f);
    }
    // The last file is damaged: the first run aborts after spilling the others.
    let bad = inputs.path().join("z.json.gz");
    corrupt_gzip(&bad, &events(2000, 6, 99));
    files.push(bad);
    let data = tempfile::tempdir().unwrap();
    let small = |c: &mut basalt_engine::loader::LoadConfig| {
        c.memory_bytes = 64 << 10;
        c.batch_rows = 100;
        c.threads = 1;
    };
    load(data.path(), &spec, &files, small).unwrap_err();
    assert!(served_rows(data.path(), "cpu").is_empty());
    // Same job (the bad-file policy is not part of its identity): resumes.
    let s = load(data.path(), &spec, &files, |c| {
        small(c);
        c.on_bad_file = BadFilePolicy::Skip;
    })
    .unwrap();
    assert!(s.inputs_resumed >= 3, "{s:?}");
    assert_eq!(s.rows_ingested, 3000);
    assert_eq!(
        served_rows(data.path(), "cpu"),
        sorted(reference_rows(&spec, &ev))
    );
}
