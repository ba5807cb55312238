//! Handoff and late data: query results equal a reference before, during and after handoff.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod realtime_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use basalt_engine::realtime::{Clock, RealtimeConfig};
use realtime_common::*;

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = std::time::Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn handoff_publishes_exactly_once_even_for_queries_across_the_switch() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0 + 30 * 60_000);
    let cfg = RealtimeConfig {
        rows_per_segment: 700, // several partitions per handoff
        max_rows_in_memory: 300,
        max_pieces_per_sink: 3,
        ..config(&clock)
    };
    let engine = Arc::new(open(dir.path(), cfg));
    create(&engine, "m", false);
    let mut rng = rng(11);
    // Hours 0..3 of data (hour 2 and 3 "in the future" relative to the clock is fine).
    let mut all = Vec::new();
    for _ in 0..8 {
        let batch = rows(&mut rng, 400, T0, 4 * HOUR);
        assert_eq!(engine.push_json_rows("m", &batch).unwrap().accepted, 400);
        all.extend(batch);
        // Each query freezes the pending rows into a piece; pieces pile up and get merged.
        assert_eq!(query(&engine, "m"), reference(&all));
    }
    let expected = reference(&all);
    assert_eq!(query(&engine, "m"), expected, "before handoff");
    assert_eq!(engine.data_dir().timeline().num_segments(Some("m")), 0);

    // Query continuously from another thread while handoffs happen.
    let stop = Arc::new(AtomicBool::new(false));
    let checker = {
        let (engine, stop, expected) = (engine.clone(), stop.clone(), expected.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(query(&engine, "m"), expected, "during handoff (query {n})");
                n += 1;
            }
            n
        })
    };
    // Close hours 0 and 1 (end + window passed), then all.
    clock.set(T0 + 2 * HOUR + 11 * 60_000);
    wait_for("two handoffs", || engine.realtime_stats().handoffs >= 2);
    assert_eq!(query(&engine, "m"), expected, "between handoffs");
    clock.set(T0 + 4 * HOUR + 11 * 60_000);
    wait_for("four handoffs", || engine.realtime_stats().handoffs >= 4);
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let queries = checker.join().unwrap();
    assert!(queries > 0);
    let stats = engine.realtime_stats();
    assert_eq!(stats.sinks, 0, "{stats:?}");
    assert_eq!(query(&engine, "m"), expected, "after handoff");
    // Published: 4 intervals, 3200 rows, several partitions each (rows_per_segment = 700).
    let segs = engine
        .data_dir()
        .catalog()
        .used_segments(Some("m"))
        .unwrap();
    assert_eq!(segs.iter().map(|s| s.num_rows).sum::<u64>(), 3200);
    assert!(segs.len() >= 6, "{} segments", segs.len());
    assert!(stats.merges >= 1, "{stats:?}");
    // Merged rows were frozen first; each was written again a bounded number of times.
    assert!(stats.rows_merged >= 2, "{stats:?}");
    assert!(stats.rows_frozen >= 3200, "{stats:?}");
    // The WAL holds nothing that still needs replay: a reopen replays zero rows and agrees.
    drop(engine);
    let engine = open(dir.path(), config(&clock));
    assert_eq!(engine.realtime_stats().rows_replayed, 0);
    assert_eq!(query(&engine, "m"), expected, "after reopen");
}

#[test]
fn late_rows_become_a_new_partition_or_are_rejected_as_too_late() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0 + 30 * 60_000);
    let cfg = RealtimeConfig {
        late_data_max_lateness: Some(Duration::from_secs(3 * 3600)),
        ..config(&clock)
    };
    let engine = open(dir.path(), cfg);
    create(&engine, "m", true);
    let mut rng = rng(12);
    let first = rows(&mut rng, 500, T0, HOUR);
    engine.push_json_rows("m", &first).unwrap();
    clock.set(T0 + HOUR + 11 * 60_000);
    wait_for("handoff", || engine.realtime_stats().handoffs >= 1);
    let segs = engine
        .data_dir()
        .catalog()
        .used_segments(Some("m"))
        .unwrap();
    assert_eq!(segs.len(), 1);
    let version = segs[0].id.version;

    // Late rows for the handed-off hour, within the lateness: accepted, visible at once.
    let late = rows(&mut rng, 200, T0, HOUR);
    assert_eq!(engine.push_json_rows("m", &late).unwrap().accepted, 200);
    let both: Vec<_> = first.iter().chain(&late).collect();
    assert_eq!(
        query(&engine, "m"),
        reference(both.clone()),
        "late rows before their handoff"
    );
    // They are handed off as a new partition of the same version (earlier data stays visible).
    clock.advance(Duration::from_secs(11 * 60));
    wait_for("late handoff", || engine.realtime_stats().handoffs >= 2);
    let segs = engine
        .data_dir()
        .catalog()
        .used_segments(Some("m"))
        .unwrap();
    assert_eq!(segs.len(), 2, "{segs:?}");
    assert!(segs.iter().all(|s| s.id.version == version));
    assert_ne!(segs[0].id.partition, segs[1].id.partition);
    assert_eq!(
        query(&engine, "m"),
        reference(both.clone()),
        "late rows after their handoff"
    );

    // Beyond the lateness: rejected and counted, never silently dropped.
    clock.set(T0 + 4 * HOUR + 1);
    let too_late = rows(&mut rng, 50, T0, HOUR);
    let fresh = rows(&mut rng, 10, T0 + 4 * HOUR, 60_000);
    let mut mixed = too_late.clone();
    mixed.extend(fresh.clone());
    let r = engine.push_json_rows("m", &mixed).unwrap();
    assert_eq!((r.accepted, r.rejected), (10, 50));
    assert_eq!(r.rejected_by_reason.get("too late"), Some(&50));
    assert_eq!(
        engine.realtime_stats().rejected_by_reason.get("too late"),
        Some(&50)
    );
    let expected: Vec<_> = both.into_iter().chain(&fresh).collect();
    assert_eq!(query(&engine, "m"), reference(expected));
}

#[test]
fn rollup_and_sketches_survive_persist_merge_and_handoff() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0 + 30 * 60_000);
    let cfg = RealtimeConfig {
        max_rows_in_memory: 100,
        max_pieces_per_sink: 2,
        ..config(&clock)
    };
    let engine = open(dir.path(), cfg);
    create(&engine, "m", true);
    let mut rng = rng(13);
    let mut all = Vec::new();
    for _ in 0..10 {
        let b = rows(&mut rng, 300, T0, HOUR);
        engine.push_json_rows("m", &b).unwrap();
        engine.realtime_tick().unwrap();
        all.extend(b);
    }
    let users: std::collections::BTreeSet<&str> =
        all.iter().map(|r| r["user"].as_str().unwrap()).collect();
    let distinct = |engine: &basalt_engine::engine::Engine| {
        let q = serde_json::json!({"queryType": "timeseries", "dataSource": "m", "granularity": "all",
            "intervals": ["2000-01-01/2100-01-01"],
            "aggregations": [{"type": "HLLSketchMerge", "name": "u", "fieldName": "users"},
                             {"type": "count", "name": "stored"}]});
        let out = engine.query_json(&q.to_string()).unwrap();
        (
            out[0]["result"]["u"].as_f64().unwrap(),
            out[0]["result"]["stored"].as_i64().unwrap(),
        )
    };
    let (before, stored_before) = distinct(&engine);
    assert!(
        (before - users.len() as f64).abs() <= 1.0,
        "{before} vs {}",
        users.len()
    );
    assert_eq!(query(&engine, "m"), reference(&all));
    clock.set(T0 + HOUR + 11 * 60_000);
    wait_for("handoff", || engine.realtime_stats().handoffs >= 1);
    let (after, stored_after) = distinct(&engine);
    assert!((after - users.len() as f64).abs() <= 1.0, "{after}");
    assert_eq!(query(&engine, "m"), reference(&all));
    // Rollup across pieces at handoff: the final segment has no more rows than the pieces.
    assert!(
        stored_after <= stored_before,
        "{stored_after} > {stored_before}"
    );
    assert!(stored_after < all.len() as i64, "rollup merged nothing");
}

/// A sink that reaches `max_rows_per_sink` is handed off with its interval still open: its rows
/// are published as partitions of the interval, later rows go to a new sink, the WAL files only
/// the full sink needed are deleted, and every query (and a reopen) sees each row once.
#[test]
fn a_full_sink_is_handed_off_before_its_interval_closes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0 + 30 * 60_000);
    let cfg = RealtimeConfig {
        max_rows_per_sink: 500,
        max_rows_in_memory: 200,
        wal_file_bytes: 8 << 10,
        ..config(&clock)
    };
    let engine = Arc::new(open(dir.path(), cfg.clone()));
    create(&engine, "m", false);
    let mut rng = rng(21);
    // WAL files present, and the sequence number of the newest.
    let wal_files = || {
        let seqs: Vec<u64> = std::fs::read_dir(dir.path().join("wal"))
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.strip_suffix(".wal")?.parse().ok()
            })
            .collect();
        (seqs.len(), seqs.into_iter().max().unwrap_or(0))
    };
    let mut all = Vec::new();
    let mut most_wal_files = 0;
    // Hour 0 stays open throughout (the clock does not move). A sink is full after three
    // pushes; the last push's rows stay in a live sink.
    for i in 0..13 {
        let batch = rows(&mut rng, 200, T0, HOUR);
        assert_eq!(engine.push_json_rows("m", &batch).unwrap().accepted, 200);
        all.extend(batch);
        engine.realtime_tick().unwrap();
        assert_eq!(query(&engine, "m"), reference(&all), "after push {i}");
        most_wal_files = most_wal_files.max(wal_files().0);
    }
    let stats = engine.realtime_stats();
    assert!(stats.handoffs >= 3, "{stats:?}");
    assert_eq!(stats.sinks, 1, "{stats:?}");
    let segs = engine
        .data_dir()
        .catalog()
        .used_segments(Some("m"))
        .unwrap();
    assert_eq!(segs.len() as u64, stats.segments_published, "{segs:?}");
    assert!(segs.iter().all(|s| s.id.interval == segs[0].id.interval
        && s.id.interval.start == T0
        && s.id.version == segs[0].id.version));
    let mut partitions: Vec<u32> = segs.iter().map(|s| s.id.partition).collect();
    partitions.sort_unstable();
    partitions.dedup();
    assert_eq!(partitions.len(), segs.len(), "{segs:?}");
    // Each handoff took at least max_rows_per_sink rows (no rollup: rows as pushed).
    let published: u64 = segs.iter().map(|s| s.num_rows).sum();
    assert!(
        published >= 500 * stats.handoffs,
        "{published} rows, {stats:?}"
    );
    // The WAL moved through several files (one per two pushes) but only ever held about what
    // the live sink needs: each handoff deleted the files of the sink it published.
    let (files, newest) = wal_files();
    assert!(newest >= 6, "{newest}");
    assert!(
        most_wal_files <= 3 && files <= 2,
        "{most_wal_files}, {files}"
    );
    assert_eq!(query(&engine, "m"), reference(&all), "after the pushes");

    // A reopen replays only the live sink's rows, and still sees each row once.
    drop(engine);
    let engine = open(dir.path(), cfg);
    let replayed = engine.realtime_stats().rows_replayed;
    assert_eq!(replayed, 2600 - published, "{published} published");
    assert_eq!(replayed, 200);
    assert_eq!(query(&engine, "m"), reference(&all), "after reopen");
}
