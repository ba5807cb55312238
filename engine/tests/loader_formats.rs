//! The loader reads every format and compression into exactly the rows one `SegmentWriter` fed
//! every event stores — with rollup, across many intervals and files, with and without
//! spilling and repartitioning.

#![allow(clippy::unwrap_used)]

mod loader_common;

use std::path::PathBuf;

use basalt_engine::loader::LoadMode;
use loader_common::*;

/// The same events split over files of every format and compression.
fn files_of_every_format(dir: &std::path::Path, ev: &[Event]) -> Vec<PathBuf> {
    let names = [
        "a.parquet",
        "b.csv",
        "c.csv.gz",
        "d.tsv.zst",
        "e.json",
        "f.jsonl.gz",
        "g.ndjson.zst",
    ];
    let chunk = ev.len().div_ceil(names.len());
    let mut out = Vec::new();
    for (name, part) in names.iter().zip(ev.chunks(chunk)) {
        let path = dir.join(name);
        if name.contains(".parquet") {
            write_parquet(&path, part);
        } else if name.contains(".csv") {
            write_csv(&path, part, ',');
        } else if name.contains(".tsv") {
            write_csv(&path, part, '\t');
        } else {
            write_json(&path, part);
        }
        out.push(path);
    }
    out
}

#[test]
fn every_format_and_compression_loads_the_reference_rows() {
    let ev = events(3500, 30, 1);
    let spec = spec(true);
    let expected = reference_rows(&spec, &ev);
    let inputs = tempfile::tempdir().unwrap();
    let files = files_of_every_format(inputs.path(), &ev);

    // Roomy memory: everything stays in memory, one segment per hour.
    let data = tempfile::tempdir().unwrap();
    let s = load(data.path(), &spec, &files, |_| {}).unwrap();
    assert_eq!(s.rows_read, 3500);
    assert_eq!(s.rows_ingested, 3500);
    assert_eq!(s.rows_rejected, 0);
    assert_eq!(s.intervals, 30);
    assert_eq!(s.segments, 30, "{s:?}");
    assert_eq!(s.bytes_spilled, 0);
    assert_eq!(served_rows(data.path(), "cpu"), expected);
    assert_eq!(s.rows_stored as usize, expected.len());

    // Each file alone gives its share of rows too (formats are not just averaged out).
    for f in &files {
        let d = tempfile::tempdir().unwrap();
        let s = load(d.path(), &spec, std::slice::from_ref(f), |_| {}).unwrap();
        assert_eq!(s.rows_ingested, 500, "{}", f.display());
    }
}

#[test]
fn rollup_across_spills_and_partitions_equals_one_writer() {
    // Few hours, many rows per hour: rows that roll up together are spread over many files,
    // runs and partitions.
    let ev = events(4000, 3, 2);
    let spec = spec(true);
    let expected = reference_rows(&spec, &ev);
    let inputs = tempfile::tempdir().unwrap();
    let files = files_of_every_format(inputs.path(), &ev);
    let data = tempfile::tempdir().unwrap();
    let s = load(data.path(), &spec, &files, |c| {
        c.memory_bytes = 128 << 10;
        c.batch_rows = 97;
        c.rows_per_segment = 300;
        c.mode = LoadMode::Replace;
    })
    .unwrap();
    assert!(s.bytes_spilled > 0, "{s:?}");
    assert!(s.segments > s.intervals, "{s:?}");
    assert_eq!(s.intervals, 3);
    assert_eq!(served_rows(data.path(), "cpu"), expected);
}

#[test]
fn without_rollup_partitions_keep_every_row() {
    let ev = events(2000, 4, 3);
    let spec = spec(false);
    let expected = reference_rows(&spec, &ev);
    assert_eq!(expected.len(), 2000);
    let inputs = tempfile::tempdir().unwrap();
    let files = files_of_every_format(inputs.path(), &ev);
    let data = tempfile::tempdir().unwrap();
    let s = load(data.path(), &spec, &files, |c| {
        c.memory_bytes = 128 << 10;
        c.batch_rows = 50;
        c.rows_per_segment = 128;
    })
    .unwrap();
    assert!(s.bytes_spilled > 0, "{s:?}");
    assert_eq!(s.rows_stored, 2000);
    assert!(s.segments >= 2000 / 128, "{s:?}");
    assert_eq!(served_rows(data.path(), "cpu"), expected);
}

#[test]
fn directories_globs_and_interval_filter() {
    let ev = events(1200, 48, 4);
    let inputs = tempfile::tempdir().unwrap();
    let sub = inputs.path().join("day");
    std::fs::create_dir(&sub).unwrap();
    write_json(&sub.join("x.json"), &ev[..600]);
    write_csv(&sub.join("y.csv"), &ev[600..], ',');
    std::fs::write(sub.join("_SUCCESS"), b"").unwrap();
    // Only the first day.
    let mut spec = spec(true);
    spec["granularitySpec"]["intervals"] = serde_json::json!(["2016-01-01/2016-01-02"]);
    let first_day: Vec<Event> = ev
        .iter()
        .filter(|e| e.ts < T0 + 24 * HOUR)
        .cloned()
        .collect();
    let expected = reference_rows(&spec, &first_day);
    let data = tempfile::tempdir().unwrap();
    let s = load(data.path(), &spec, &[inputs.path().to_path_buf()], |_| {}).unwrap();
    assert_eq!(s.inputs, 2);
    assert_eq!(s.rows_filtered as usize, ev.len() - first_day.len());
    assert_eq!(served_rows(data.path(), "cpu"), expected);

    let data = tempfile::tempdir().unwrap();
    let pattern = format!("{}/day/*.json", inputs.path().display());
    let s = load(data.path(), &spec, &[PathBuf::from(pattern)], |_| {}).unwrap();
    assert_eq!(s.inputs, 1);
    assert_eq!(s.rows_read, 600);
}
