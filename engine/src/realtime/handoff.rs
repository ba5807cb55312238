//! Handoff: merge a closed sink's pieces into final segments, publish them atomically, drop the
//! sink, delete the WAL files no live sink needs.
//!
//! A sink is handed off when its interval closes (its end plus the window period), or earlier,
//! once it holds `max_rows_per_sink` rows: pushes then route the interval's rows to a new sink
//! (the next partition range of the same version), and the full one is handed off like a
//! closed one.
//!
//! Crash points, and why each is safe (see the `crate::realtime` docs for the marker rule):
//! - before the catalog commit: nothing is published; replay rebuilds the sink from the WAL
//!   (staged files are removed when the data directory opens);
//! - after the commit, before the sink is dropped or the WAL cleaned: replay finds the sink's
//!   marker segment in the catalog and skips its rows;
//! - after the WAL files are deleted: nothing to replay for the sink.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;

use super::index::{SINK_PARTITION_SPAN, Sink, SinkKey};
use super::{Shared, duration_ms, persist};
use crate::error::{Error, Result};
use crate::segment::{SegmentId, SegmentRef};

/// Hand off every sink whose window has passed (and retry handoffs that failed).
pub(crate) fn handoff_due(sh: &Shared) -> Result<()> {
    let now = sh.config.clock.now_ms();
    let window = duration_ms(sh.config.window_period);
    let due: Vec<(SinkKey, Arc<Mutex<Sink>>)> = {
        let mut state = sh.state.write();
        let mut due = Vec::new();
        for (k, s) in &state.sinks {
            let mut sk = s.lock();
            let closed = k.interval.end.saturating_add(window) <= now
                && sk.created_ms.saturating_add(window) <= now;
            if closed || sk.handing_off || sk.rows() >= sh.config.max_rows_per_sink {
                sk.handing_off = true;
                due.push((k.clone(), s.clone()));
            }
        }
        for (k, _) in &due {
            state.active.retain(|_, v| v != k);
        }
        due
    };
    let mut first_err = None;
    for (key, sink) in due {
        if let Err(e) = handoff_one(sh, &key, &sink) {
            tracing::error!(sink = %key.marker(), error = %e, "realtime handoff failed; will retry");
            first_err.get_or_insert(e);
            if sh.halted.load(Ordering::Acquire) {
                break;
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn handoff_one(sh: &Shared, key: &SinkKey, sink: &Arc<Mutex<Sink>>) -> Result<()> {
    let (schema, pieces): (_, Vec<SegmentRef>) = {
        let gate = sink.lock().persist_gate.clone();
        let _gate = gate.lock();
        sh.freeze_gated(sink)?;
        let sk = sink.lock();
        (
            sk.schema.clone(),
            sk.pieces.iter().map(|p| p.segment.clone()).collect(),
        )
    };
    if !pieces.is_empty() {
        // One output segment at a time is built, and one piece at a time is read: cut the
        // outputs so that both fit the builds' share of the memory budget.
        let largest = pieces.iter().map(|p| p.size_bytes()).max().unwrap_or(0);
        let writer_bytes = sh
            .memory
            .build_limit
            .saturating_sub(largest)
            .max(sh.memory.build_limit / 2);
        let _build = sh.build_memory(sh.memory.build_limit.max(largest));
        let outputs = persist::merge(
            &schema,
            key.interval,
            &pieces,
            sh.config.rows_per_segment,
            writer_bytes,
            &crate::segment::FinishOptions::default(),
            || sh.data.staging_path(),
        )?;
        if outputs.len() > SINK_PARTITION_SPAN as usize {
            for (p, _) in &outputs {
                let _ = std::fs::remove_file(p);
            }
            return Err(Error::ResourcesExhausted(format!(
                "handoff of {} would make {} segments, more than {SINK_PARTITION_SPAN}; raise rows_per_segment",
                key.marker(),
                outputs.len()
            )));
        }
        let n = outputs.len();
        let staged: Vec<_> = outputs
            .into_iter()
            .enumerate()
            .map(|(i, (path, stats))| {
                (
                    SegmentId {
                        datasource: key.datasource.clone(),
                        interval: key.interval,
                        version: key.version,
                        partition: key.first_partition + i as u32,
                    },
                    path,
                    stats.rows_out,
                )
            })
            .collect();
        let paths: Vec<_> = staged.iter().map(|(_, p, _)| p.clone()).collect();
        if let Err(e) = sh.data.publish(staged, None) {
            for p in paths {
                let _ = std::fs::remove_file(p);
            }
            return Err(e);
        }
        sh.counters
            .segments_published
            .fetch_add(n as u64, Ordering::Relaxed);
        tracing::info!(sink = %key.marker(), segments = n, "realtime handoff published");
    }
    if sh.config.fail_after_publish {
        sh.halted.store(true, Ordering::Release);
        return Err(Error::internal(
            "simulated crash after a handoff publish (fail_after_publish)",
        ));
    }
    // The timeline now shows the published segments; queries skip this sink's pieces from
    // here on, so dropping it cannot lose rows.
    let min_live = {
        let mut state = sh.state.write();
        state.sinks.remove(key);
        state
            .sinks
            .values()
            .map(|s| s.lock().first_wal_file)
            .min()
            .unwrap_or(u64::MAX)
    };
    for p in &sink.lock().pieces {
        let _ = std::fs::remove_file(&p.path);
    }
    sh.counters.handoffs.fetch_add(1, Ordering::Relaxed);
    sh.wal.remove_files_before(min_live)?;
    Ok(())
}
