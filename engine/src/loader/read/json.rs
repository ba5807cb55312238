//! Newline-delimited JSON: one object per line; blank lines are skipped.

use std::io::BufRead;
use std::path::Path;
use std::sync::atomic::Ordering;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::input::InputValue;
use crate::loader::convert::{ColumnBuilder, Staged, missing_time, normalized_batch};
use crate::loader::inputs::{Compression, open_text};
use crate::loader::read::{Emit, ReadBatch, ReadCtx, location};
use crate::loader::rejects::RejectStats;

pub(crate) fn read_json(
    ctx: &ReadCtx<'_>,
    path: &Path,
    compression: Compression,
    rejects: &mut RejectStats,
    emit: &mut Emit<'_>,
) -> Result<()> {
    let mut reader = open_text(path, compression, ctx.bytes.clone())?;
    let ts = &ctx.plan.timestamp;
    let mut builders: Vec<ColumnBuilder> = ctx
        .plan
        .fields
        .iter()
        .map(|f| ColumnBuilder::new(f.kind))
        .collect();
    let mut times: Vec<i64> = Vec::with_capacity(ctx.batch_rows);
    let mut staged: Vec<Staged> = Vec::with_capacity(builders.len());
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut line: u64 = 0;
    let mut row: u64 = 0;
    let mut batch_start: u64 = 0;

    let mut flush = |times: &mut Vec<i64>,
                     builders: &mut Vec<ColumnBuilder>,
                     batch_start: u64,
                     rejects: &mut RejectStats|
     -> Result<()> {
        let t = std::mem::take(times);
        let cols = builders
            .iter_mut()
            .zip(&ctx.plan.fields)
            .map(|(b, f)| (f.name.clone(), b.finish()))
            .collect();
        let batch = normalized_batch(ctx.plan, t.clone(), cols)?;
        emit(
            ReadBatch {
                row_offset: batch_start,
                batch,
                times: t,
            },
            rejects,
        )
    };

    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        line += 1;
        let text = buf.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let this = row;
        row += 1;
        let obj: Map<String, Value> = match serde_json::from_slice(text) {
            Ok(o) => o,
            Err(e) => {
                rejects.add("invalid JSON object", || {
                    format!("{}: {e}", location(path, line))
                });
                continue;
            }
        };
        let time = match obj.get(&ts.column) {
            None | Some(Value::Null) => missing_time(ts),
            Some(v) => ts.format.parse_json(v).map_err(|e| {
                let s = e.to_string();
                let s = s
                    .strip_prefix("invalid argument: ")
                    .unwrap_or(&s)
                    .to_string();
                (
                    format!("timestamp `{}`: unparseable", ts.column),
                    format!("timestamp field `{}`: {s}", ts.column),
                )
            }),
        };
        let time = match time {
            Ok(t) => t,
            Err((reason, msg)) => {
                rejects.add(&reason, || format!("{}: {msg}", location(path, line)));
                continue;
            }
        };
        staged.clear();
        let mut bad = None;
        for (b, f) in builders.iter().zip(&ctx.plan.fields) {
            let v = match obj.get(&f.name) {
                None => InputValue::Null,
                Some(v) => match InputValue::from_json(v, &f.name) {
                    Ok(v) => v,
                    Err(e) => {
                        let s = e.to_string();
                        let s = s
                            .strip_prefix("invalid argument: ")
                            .unwrap_or(&s)
                            .to_string();
                        bad = Some((format!("field `{}`: not a scalar or list", f.name), s));
                        break;
                    }
                },
            };
            match b.convert(&v, &f.name) {
                Ok(s) => staged.push(s),
                Err(e) => {
                    bad = Some(e);
                    break;
                }
            }
        }
        if let Some((reason, msg)) = bad {
            rejects.add(&reason, || format!("{}: {msg}", location(path, line)));
            continue;
        }
        if times.is_empty() {
            batch_start = this;
        }
        times.push(time);
        for (b, s) in builders.iter_mut().zip(staged.drain(..)) {
            b.append(s);
        }
        if times.len() >= ctx.batch_rows {
            flush(&mut times, &mut builders, batch_start, rejects)?;
            if ctx.cancelled.load(Ordering::Relaxed) {
                return Ok(());
            }
        }
    }
    if !times.is_empty() {
        flush(&mut times, &mut builders, batch_start, rejects)?;
    }
    Ok(())
}
