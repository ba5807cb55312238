//! Crash consistency at engine level: the engine is dropped at random points of push, persist
//! and handoff (including right after a handoff's publish, before the sink is dropped and the
//! WAL cleaned), the WAL tail is torn, and after every reopen each acknowledged row is present
//! exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod realtime_common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use basalt_engine::realtime::{Clock, RealtimeConfig};
use rand::Rng;
use realtime_common::*;
use serde_json::Value;

fn newest_wal(dir: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.pop().unwrap()
}

#[test]
fn acknowledged_rows_survive_random_crashes_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0 + 5 * 60_000);
    let mut rng = rng(21);
    let mut acked: Vec<Value> = Vec::new();
    let mut hour = 0i64; // the newest hour being written
    let mut crashed_after_publish = 0;
    let mut torn = 0;
    for round in 0..14 {
        let fail_after_publish = round % 3 == 1;
        let cfg = RealtimeConfig {
            max_rows_in_memory: rng.random_range(50..400),
            max_pieces_per_sink: 3,
            rows_per_segment: 500,
            // Some rounds hand full sinks off before their hour closes.
            max_rows_per_sink: rng.random_range(300..3000),
            fail_after_publish,
            ..config(&clock)
        };
        let engine = open(dir.path(), cfg);
        if round == 0 {
            create(&engine, "m", rng.random_bool(0.5));
        }
        assert_eq!(
            query(&engine, "m"),
            reference(&acked),
            "round {round}: after reopen"
        );
        let pushes = rng.random_range(1..6);
        for _ in 0..pushes {
            // Rows for the current and the previous hour (late but within the window).
            let start = T0 + (hour - 1).max(0) * HOUR;
            let n = rng.random_range(1..300);
            let batch = rows(&mut rng, n, start, 2 * HOUR);
            let r = engine.push_json_rows("m", &batch).unwrap();
            assert_eq!(r.accepted as usize, batch.len());
            acked.extend(batch);
            if rng.random_bool(0.3) {
                let _ = engine.realtime_tick();
            }
        }
        if rng.random_bool(0.6) {
            // Close an hour: handoffs run in the background (and may crash after publishing).
            hour += 1;
            clock.set(T0 + hour * HOUR + 11 * 60_000);
            let wait = rng.random_range(0..120);
            std::thread::sleep(Duration::from_millis(wait));
            if fail_after_publish {
                let t = std::time::Instant::now();
                while engine.realtime_stats().segments_published == 0
                    && t.elapsed() < Duration::from_secs(10)
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                if engine.realtime_stats().segments_published > 0 {
                    crashed_after_publish += 1;
                }
            }
        }
        // A push that never got acknowledged: its record is torn by the crash.
        let torn_push = rng.random_bool(0.4);
        let wal = newest_wal(dir.path());
        let before = fs::metadata(&wal).unwrap().len();
        if torn_push {
            let batch = rows(&mut rng, 50, T0 + (hour + 2) * HOUR, HOUR);
            engine.push_json_rows("m", &batch).unwrap();
        }
        drop(engine); // the crash
        if torn_push {
            let wal = newest_wal(dir.path());
            let after = fs::metadata(&wal).unwrap().len();
            if after > before {
                let cut = rng.random_range(1..after - before);
                OpenOptions::new()
                    .write(true)
                    .open(&wal)
                    .unwrap()
                    .set_len(after - cut)
                    .unwrap();
                torn += 1;
            }
        } else if rng.random_bool(0.3) {
            // Garbage after the last record (a torn header).
            let mut f = OpenOptions::new()
                .append(true)
                .open(newest_wal(dir.path()))
                .unwrap();
            f.write_all(&[7, 0, 0]).unwrap();
            torn += 1;
        }
    }
    let engine = open(dir.path(), config(&clock));
    assert_eq!(query(&engine, "m"), reference(&acked), "final");
    // Close everything; after handoff the data still matches and nothing is left to replay.
    clock.set(T0 + (hour + 5) * HOUR);
    let t = std::time::Instant::now();
    while engine.realtime_stats().sinks > 0 {
        assert!(t.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        query(&engine, "m"),
        reference(&acked),
        "after final handoff"
    );
    drop(engine);
    let engine = open(dir.path(), config(&clock));
    assert_eq!(engine.realtime_stats().rows_replayed, 0);
    assert_eq!(query(&engine, "m"), reference(&acked));
    assert!(
        crashed_after_publish >= 1,
        "the publish crash point was never hit"
    );
    assert!(torn >= 1, "no torn tail was tested");
}

#[test]
fn wal_records_of_the_json_format_still_replay() {
    use basalt_engine::input::{InputValue, json_row};
    use basalt_engine::realtime::wal::{self, Wal, record};
    use basalt_engine::schema::DataSchema;

    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0 + 10 * 60_000);
    let engine = open(dir.path(), config(&clock));
    create(&engine, "m", false);
    let first = rows(&mut rng(31), 200, T0, 10 * 60_000);
    assert_eq!(engine.push_json_rows("m", &first).unwrap().accepted, 200);
    drop(engine); // a crash: the rows are only in the WAL

    // Append a record in the format-1 (JSON) encoding, as earlier versions wrote them, for the
    // same sink as the binary record the push wrote.
    let wal_dir = dir.path().join(wal::WAL_DIR);
    let (wal, recovery) = Wal::open(&wal_dir, 64 << 20).unwrap();
    let records = recovery.records().unwrap();
    assert_eq!(records.len(), 1);
    let payload = &records[0].1;
    assert_eq!(payload[0], record::BINARY_RECORD_TAG);
    let written = record::decode(payload, &wal_dir, 1).unwrap();
    assert_eq!(written.datasource, "m");
    assert_eq!(written.groups.len(), 1);
    assert_eq!(written.groups[0].rows.len(), 200);
    let schema = DataSchema::from_json(&spec("m", false)).unwrap();
    let second = rows(&mut rng(32), 150, T0, 10 * 60_000);
    let parsed: Vec<(i64, Vec<InputValue<'_>>)> = second
        .iter()
        .map(|r| {
            let mut out = Vec::new();
            let t = json_row(&schema, r.as_object().unwrap(), &mut out).unwrap();
            (t, out)
        })
        .collect();
    let old = record::Record {
        datasource: "m".into(),
        groups: vec![record::RecordGroup {
            key: written.groups[0].key,
            rows: parsed,
        }],
    };
    let json = record::encode_json(&old);
    assert_eq!(json[0], b'{');
    let ticket = wal.append(&json).unwrap();
    wal.sync_to(ticket.seq).unwrap();
    drop(wal);

    // Both encodings replay into the one sink, every row once.
    let engine = open(dir.path(), config(&clock));
    assert_eq!(engine.realtime_stats().rows_replayed, 350);
    assert_eq!(query(&engine, "m"), reference(first.iter().chain(&second)));
    assert_eq!(engine.realtime_stats().sinks, 1);
}
