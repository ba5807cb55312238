//! Delimited text (CSV, TSV): header or declared columns, typed parsing by the schema.
//!
//! Empty fields are null. With `listDelimiter`, string fields containing it become multi-value.

use std::path::Path;
use std::sync::atomic::Ordering;

use crate::error::{Error, Result};
use crate::loader::convert::{
    ColumnBuilder, FieldKind, missing_time, normalized_batch, parse_double_text, parse_long_text,
};
use crate::loader::inputs::{Compression, open_text};
use crate::loader::read::{Emit, ReadBatch, ReadCtx, location};
use crate::loader::rejects::RejectStats;
use crate::loader::spec::CsvOptions;

enum Parsed {
    Long(Option<i64>),
    Double(Option<f64>),
    Str,
}

pub(crate) fn read_csv(
    ctx: &ReadCtx<'_>,
    path: &Path,
    compression: Compression,
    opts: &CsvOptions,
    rejects: &mut RejectStats,
    emit: &mut Emit<'_>,
) -> Result<()> {
    let reader = open_text(path, compression, ctx.bytes.clone())?;
    let mut csv = ::csv::ReaderBuilder::new()
        .delimiter(opts.delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let io_err = |e: ::csv::Error| -> Error {
        match e.into_kind() {
            ::csv::ErrorKind::Io(io) => Error::io(path, io),
            other => Error::invalid(format!("{}: {other:?}", path.display())),
        }
    };
    let mut record = ::csv::ByteRecord::new();
    for _ in 0..opts.skip_header_rows {
        if !csv.read_byte_record(&mut record).map_err(io_err)? {
            return Ok(());
        }
    }
    let columns: Vec<String> = match &opts.columns {
        Some(c) => c.clone(),
        None => {
            if !csv.read_byte_record(&mut record).map_err(io_err)? {
                return Ok(());
            }
            record
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let s = String::from_utf8_lossy(f);
                    let s = s.trim();
                    // A UTF-8 byte-order mark may precede the first name.
                    if i == 0 {
                        s.trim_start_matches('\u{feff}').to_string()
                    } else {
                        s.to_string()
                    }
                })
                .collect()
        }
    };
    let index_of = |name: &str| columns.iter().position(|c| c == name);
    let ts = &ctx.plan.timestamp;
    let time_idx = index_of(&ts.column);
    if time_idx.is_none() && ts.missing_value.is_none() {
        return Err(Error::invalid(format!(
            "{}: timestamp column `{}` is not among the columns ({})",
            path.display(),
            ts.column,
            columns.join(", ")
        )));
    }
    let targets: Vec<(Option<usize>, FieldKind, &str)> = ctx
        .plan
        .fields
        .iter()
        .map(|f| (index_of(&f.name), f.kind, f.name.as_str()))
        .collect();
    let mut builders: Vec<ColumnBuilder> =
        targets.iter().map(|t| ColumnBuilder::new(t.1)).collect();
    let mut times: Vec<i64> = Vec::with_capacity(ctx.batch_rows);
    let mut parsed: Vec<Parsed> = Vec::with_capacity(targets.len());
    let mut row: u64 = 0;
    let mut batch_start: u64 = 0;
    let mut list_buf: Vec<String> = Vec::new();

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
        if !csv.read_byte_record(&mut record).map_err(io_err)? {
            break;
        }
        let this = row;
        row += 1;
        let line = record.position().map_or(this + 1, |p| p.line());
        if record.len() != columns.len() {
            rejects.add("CSV: wrong number of fields", || {
                format!(
                    "{}: expected {} fields, found {}",
                    location(path, line),
                    columns.len(),
                    record.len()
                )
            });
            continue;
        }
        let text = |i: usize| -> std::result::Result<&str, ()> {
            std::str::from_utf8(record.get(i).unwrap_or_default()).map_err(|_| ())
        };
        // Convert everything first so a bad field rejects the row without side effects.
        let time = match time_idx {
            None => missing_time(ts),
            Some(i) => match text(i) {
                Err(()) => Err(("invalid UTF-8".to_string(), "invalid UTF-8".to_string())),
                Ok(s) if s.trim().is_empty() => missing_time(ts),
                Ok(s) => ts.format.parse_str(s).map_err(|e| {
                    (
                        format!("timestamp `{}`: unparseable", ts.column),
                        format!("timestamp field `{}`: {}", ts.column, strip(e)),
                    )
                }),
            },
        };
        let time = match time {
            Ok(t) => t,
            Err((reason, msg)) => {
                rejects.add(&reason, || format!("{}: {msg}", location(path, line)));
                continue;
            }
        };
        parsed.clear();
        let mut bad = None;
        for (idx, kind, name) in &targets {
            let s = match idx {
                None => "",
                Some(i) => match text(*i) {
                    Ok(s) => s,
                    Err(()) => {
                        bad = Some((
                            "invalid UTF-8".to_string(),
                            format!("field `{name}`: invalid UTF-8"),
                        ));
                        break;
                    }
                },
            };
            let p = match kind {
                FieldKind::Long => parse_long_text(s, name).map(Parsed::Long),
                FieldKind::Double => parse_double_text(s, name).map(Parsed::Double),
                FieldKind::Str => Ok(Parsed::Str),
            };
            match p {
                Ok(p) => parsed.push(p),
                Err(b) => {
                    bad = Some(b);
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
        for ((b, p), (idx, _, _)) in builders.iter_mut().zip(parsed.drain(..)).zip(&targets) {
            match (b, p) {
                (ColumnBuilder::Long(b), Parsed::Long(v)) => b.append_option(v),
                (ColumnBuilder::Double(b), Parsed::Double(v)) => b.append_option(v),
                (ColumnBuilder::Str(b), Parsed::Str) => {
                    let s = idx.and_then(|i| text(i).ok()).unwrap_or_default();
                    if s.is_empty() {
                        b.push(None);
                    } else if let Some(d) =
                        opts.list_delimiter.as_deref().filter(|d| s.contains(*d))
                    {
                        list_buf.clear();
                        list_buf.extend(s.split(d).map(str::to_string));
                        b.push_list(&list_buf);
                    } else {
                        b.push(Some(s));
                    }
                }
                (b, _) => b.append_null(),
            }
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

fn strip(e: Error) -> String {
    let s = e.to_string();
    s.strip_prefix("invalid argument: ")
        .map(str::to_string)
        .unwrap_or(s)
}
