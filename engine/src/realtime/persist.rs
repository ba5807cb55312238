//! Persisting sinks: freezing pending rows into immutable pieces, and merging pieces (for fewer
//! pieces, and for handoff) by reading their rolled-up rows back into a new writer.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, ArrayRef, RecordBatch};

use crate::aggregate::deserialize_hll;
use crate::error::{Error, Result};
use crate::input::InputValue;
use crate::realtime::index::{Piece, Sink};
use crate::schema::{DataSchema, DimensionType, MetricKind, TIME_COLUMN};
use crate::segment::format::{ColumnType, PartRole};
use crate::segment::writer::MetricState;
use crate::segment::writer::{dictionary_entry_bytes, writer_bytes_per_row};
use crate::segment::{FinishOptions, Segment, SegmentRef, SegmentStats, SegmentWriter};
use crate::time::Interval;

/// Freeze a sink's pending rows into a new piece written at `path`, all under the caller's
/// hold of the sink (used by WAL replay, where nothing runs concurrently; live freezes take the
/// rows out and call [`write_piece`] without the sink lock). Returns the rows frozen (0 if there
/// were none, and then no file is written).
pub fn freeze(sink: &mut Sink, path: PathBuf) -> Result<u64> {
    let rows = sink.pending.num_rows() as u64;
    if rows == 0 {
        return Ok(0);
    }
    let fresh = SegmentWriter::new(&sink.schema, sink.key.interval)?;
    let writer = std::mem::replace(&mut sink.pending, fresh);
    sink.pending_bytes = 0;
    sink.last_freeze = std::time::Instant::now();
    let segment = write_piece(writer, &path, &sink.key.marker(), rows)?;
    sink.pieces.push(Piece { segment, path });
    Ok(rows)
}

/// Write a writer's rows as a piece at `path` and open it. On failure the file is removed and
/// the error says the rows are lost from memory until a restart replays them from the WAL.
/// Pieces are scratch files (the WAL holds their rows until handoff): plain blocks, not synced.
pub fn write_piece(
    writer: SegmentWriter,
    path: &Path,
    sink: &crate::segment::SegmentId,
    rows: u64,
) -> Result<SegmentRef> {
    writer
        .finish_with(path, &FinishOptions::scratch())
        .and_then(|_| Segment::open(path).map(Arc::new))
        .map_err(|e| {
            let _ = std::fs::remove_file(path);
            Error::internal(format!(
                "freezing {rows} realtime rows of {sink} into {}: {e} (restart to replay them from the WAL)",
                path.display()
            ))
        })
}

/// Merge rolled-up `pieces` of `interval` into segments of at most `rows_per_segment` rows
/// each, written to paths from `next_path`. Returns each output's path and stats. An output
/// segment is also cut when its writer's [`SegmentWriter::estimated_bytes`] reaches
/// `max_writer_bytes` (so a merge stays inside a memory bound), and each piece's pages are
/// released once it is read.
///
/// Pieces of the sink's own schema are appended column by column
/// ([`SegmentWriter::append_segment_rows`]); any other piece (multi-value strings, a column
/// of another type) a row at a time through [`SegmentWriter::push_rolled`]. Both give the same
/// rows and states.
pub fn merge(
    schema: &DataSchema,
    interval: Interval,
    pieces: &[SegmentRef],
    rows_per_segment: u64,
    max_writer_bytes: u64,
    opts: &FinishOptions,
    mut next_path: impl FnMut() -> Result<PathBuf>,
) -> Result<Vec<(PathBuf, SegmentStats)>> {
    let limit = rows_per_segment.max(1) as usize;
    let full = |w: &SegmentWriter| {
        w.num_rows() > 0 && (w.num_rows() >= limit || w.estimated_bytes() >= max_writer_bytes)
    };
    // Each output writer's columns are sized once for the rows it will take (at most the
    // rows left, the row limit, and what the byte limit leaves room for by the pieces' average
    // row) instead of growing block by block.
    let mut rows_left: u64 = pieces.iter().map(|p| p.num_rows()).sum();
    let avg_row = (pieces.iter().map(|p| merge_bytes_of(p)).sum::<u64>() / rows_left.max(1)).max(1);
    let new_writer = |rows_left: u64| -> Result<SegmentWriter> {
        let mut w = SegmentWriter::new(schema, interval)?;
        let rows = rows_left
            .min(limit as u64)
            .min((max_writer_bytes / avg_row).saturating_add(1));
        w.reserve_rows(usize::try_from(rows).unwrap_or(usize::MAX));
        Ok(w)
    };
    let mut out = Vec::new();
    let mut writer = new_writer(rows_left)?;
    let mut dims: Vec<InputValue<'static>> = Vec::with_capacity(schema.dimensions.len());
    for seg in pieces {
        if writer.takes_segment(seg) {
            let n = seg.num_rows() as usize;
            let per_row = (merge_bytes_of(seg) / n.max(1) as u64).max(1);
            let mut start = 0;
            while start < n {
                if full(&writer) {
                    let done = std::mem::replace(&mut writer, new_writer(rows_left)?);
                    let path = next_path()?;
                    let stats = done.finish_with(&path, opts)?;
                    out.push((path, stats));
                }
                // As many rows as fit the row and byte limits (by the piece's average row),
                // a block at most, at least one.
                let room = max_writer_bytes.saturating_sub(writer.estimated_bytes()) / per_row;
                let take = (n - start)
                    .min(limit - writer.num_rows())
                    .min(crate::segment::format::BLOCK_ROWS)
                    .min((room as usize).max(1));
                writer.append_segment_rows(seg, start..start + take)?;
                start += take;
                rows_left = rows_left.saturating_sub(take as u64);
            }
            // Read through once: its pages need not stay in the resident set.
            seg.release_pages();
            continue;
        }
        for b in 0..seg.num_blocks() {
            let batch = seg.record_batch(b)?;
            let cols = Columns::new(schema, &batch, seg.path())?;
            for r in 0..batch.num_rows() {
                if full(&writer) {
                    let done = std::mem::replace(&mut writer, new_writer(rows_left)?);
                    let path = next_path()?;
                    let stats = done.finish_with(&path, opts)?;
                    out.push((path, stats));
                }
                dims.clear();
                let time = cols.row(r, &mut dims)?;
                let states = cols.states(r)?;
                writer.push_rolled(time, &dims, states)?;
                rows_left = rows_left.saturating_sub(1);
            }
        }
        seg.release_pages();
    }
    if writer.num_rows() > 0 {
        let path = next_path()?;
        let stats = writer.finish_with(&path, opts)?;
        out.push((path, stats));
    }
    Ok(out)
}

/// Estimated peak bytes that merging `seg` adds to a writer: its rows by
/// [`writer_bytes_per_row`], and each of its dictionary values as if new to the writer (see
/// [`dictionary_entry_bytes`]), as [`SegmentWriter::estimated_bytes`] counts them.
pub fn merge_bytes_of(seg: &Segment) -> u64 {
    let rows = seg.num_rows() * writer_bytes_per_row(seg.schema());
    let dictionaries: u64 = seg
        .columns()
        .iter()
        .filter_map(|c| {
            let part = c.part(PartRole::Dictionary)?;
            // The encoded dictionary holds the values' bytes plus an offset per value.
            let values = part.range.len.saturating_sub(4 * u64::from(c.cardinality));
            Some(
                u64::from(c.cardinality) * dictionary_entry_bytes(0)
                    + 3 * values
                    + 12 * if c.column_type == ColumnType::MultiString {
                        seg.num_rows()
                    } else {
                        0
                    },
            )
        })
        .sum();
    rows + dictionaries
}

/// Estimated peak bytes of merging `pieces` into one writer: what each adds
/// ([`merge_bytes_of`]), plus the largest piece's file (its pages are resident while it is
/// read, and released after).
pub fn merge_bytes(pieces: &[SegmentRef]) -> u64 {
    let written: u64 = pieces.iter().map(|p| merge_bytes_of(p)).sum();
    let largest = pieces.iter().map(|p| p.size_bytes()).max().unwrap_or(0);
    written + largest
}

/// The columns of a piece's record batch, in schema order.
struct Columns<'a> {
    schema: &'a DataSchema,
    time: ArrayRef,
    dims: Vec<Option<ArrayRef>>,
    metrics: Vec<Option<ArrayRef>>,
}

impl<'a> Columns<'a> {
    fn new(schema: &'a DataSchema, batch: &RecordBatch, path: &Path) -> Result<Columns<'a>> {
        let time = batch.column_by_name(TIME_COLUMN).cloned().ok_or_else(|| {
            Error::internal(format!("piece {} has no __time column", path.display()))
        })?;
        Ok(Columns {
            schema,
            time,
            dims: schema
                .dimensions
                .iter()
                .map(|d| batch.column_by_name(&d.name).cloned())
                .collect(),
            metrics: schema
                .metrics
                .iter()
                .map(|m| batch.column_by_name(&m.name).cloned())
                .collect(),
        })
    }

    fn row(&self, r: usize, out: &mut Vec<InputValue<'static>>) -> Result<i64> {
        let time = self
            .time
            .as_primitive_opt::<TimestampMillisecondType>()
            .map(|a| a.value(r))
            .ok_or_else(|| Error::internal("piece __time column is not a timestamp"))?;
        for (spec, col) in self.schema.dimensions.iter().zip(&self.dims) {
            let v = match col {
                None => InputValue::Null,
                Some(c) if c.is_null(r) => InputValue::Null,
                Some(c) => match spec.kind {
                    DimensionType::Long => c
                        .as_primitive_opt::<Int64Type>()
                        .map(|a| InputValue::Long(a.value(r)))
                        .unwrap_or(InputValue::Null),
                    DimensionType::Double => c
                        .as_primitive_opt::<Float64Type>()
                        .map(|a| InputValue::Double(a.value(r)))
                        .unwrap_or(InputValue::Null),
                    DimensionType::String => {
                        if let Some(a) = c.as_string_opt::<i32>() {
                            InputValue::Str(Cow::Owned(a.value(r).to_string()))
                        } else if let Some(l) = c.as_list_opt::<i32>() {
                            let items = l.value(r);
                            let strs = items.as_string_opt::<i32>().ok_or_else(|| {
                                Error::internal("piece multi-value column is not strings")
                            })?;
                            InputValue::List(
                                (0..strs.len())
                                    .filter(|&i| !strs.is_null(i))
                                    .map(|i| InputValue::Str(Cow::Owned(strs.value(i).to_string())))
                                    .collect(),
                            )
                        } else {
                            return Err(Error::internal(format!(
                                "piece column `{}` has an unexpected type",
                                spec.name
                            )));
                        }
                    }
                },
            };
            out.push(v);
        }
        Ok(time)
    }

    fn states(&self, r: usize) -> Result<Vec<MetricState>> {
        let mut out = Vec::with_capacity(self.metrics.len());
        for (spec, col) in self.schema.metrics.iter().zip(&self.metrics) {
            let Some(c) = col.as_ref().filter(|c| !c.is_null(r)) else {
                out.push(MetricState::Null);
                continue;
            };
            let bad = || {
                Error::internal(format!(
                    "piece metric `{}` has an unexpected type",
                    spec.name
                ))
            };
            out.push(match spec.kind {
                MetricKind::HllSketch => {
                    let a = c.as_binary_opt::<i32>().ok_or_else(bad)?;
                    MetricState::Hll(deserialize_hll(a.value(r))?)
                }
                k if k.is_first_last() => {
                    let s = c.as_struct_opt().ok_or_else(bad)?;
                    let t = s
                        .column(0)
                        .as_primitive_opt::<Int64Type>()
                        .ok_or_else(bad)?
                        .value(r);
                    if k.is_long() {
                        let v = s
                            .column(1)
                            .as_primitive_opt::<Int64Type>()
                            .ok_or_else(bad)?;
                        MetricState::LongPair(t, v.value(r))
                    } else {
                        let v = s
                            .column(1)
                            .as_primitive_opt::<Float64Type>()
                            .ok_or_else(bad)?;
                        MetricState::DoublePair(t, v.value(r))
                    }
                }
                k if k.is_long() => {
                    MetricState::Long(c.as_primitive_opt::<Int64Type>().ok_or_else(bad)?.value(r))
                }
                _ => MetricState::Double(
                    c.as_primitive_opt::<Float64Type>()
                        .ok_or_else(bad)?
                        .value(r),
                ),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::time::Interval;

    /// Merge as [`merge`] does, but every piece a row at a time (the reference).
    fn merge_by_rows(
        schema: &DataSchema,
        interval: Interval,
        pieces: &[SegmentRef],
        rows_per_segment: u64,
        mut next_path: impl FnMut() -> Result<PathBuf>,
    ) -> Result<Vec<(PathBuf, SegmentStats)>> {
        let mut out = Vec::new();
        let mut writer = SegmentWriter::new(schema, interval)?;
        let mut dims = Vec::new();
        for seg in pieces {
            for b in 0..seg.num_blocks() {
                let batch = seg.record_batch(b)?;
                let cols = Columns::new(schema, &batch, seg.path())?;
                for r in 0..batch.num_rows() {
                    if writer.num_rows() as u64 >= rows_per_segment {
                        let full =
                            std::mem::replace(&mut writer, SegmentWriter::new(schema, interval)?);
                        let path = next_path()?;
                        out.push((path.clone(), full.finish(&path)?));
                    }
                    dims.clear();
                    let time = cols.row(r, &mut dims)?;
                    writer.push_rolled(time, &dims, cols.states(r)?)?;
                }
            }
        }
        if writer.num_rows() > 0 {
            let path = next_path()?;
            out.push((path.clone(), writer.finish(&path)?));
        }
        Ok(out)
    }

    #[test]
    fn column_wise_merge_matches_the_row_by_row_merge() {
        let spec = serde_json::json!({
            "dataSource": "m",
            "timestampSpec": {"column": "ts", "format": "millis"},
            "dimensionsSpec": {"dimensions": ["host", {"type": "long", "name": "n"},
                {"type": "double", "name": "d"}]},
            "metricsSpec": [
                {"type": "count", "name": "count"},
                {"type": "longSum", "name": "v_sum", "fieldName": "v"},
                {"type": "doubleMax", "name": "x_max", "fieldName": "x"},
                {"type": "longFirst", "name": "v_first", "fieldName": "v"},
                {"type": "doubleLast", "name": "x_last", "fieldName": "x"},
                {"type": "HLLSketchBuild", "name": "hosts", "fieldName": "host"}
            ],
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "minute",
                "rollup": true}
        });
        let schema = DataSchema::from_json(&spec.to_string()).unwrap();
        let interval = Interval {
            start: 0,
            end: 3_600_000,
        };
        let dir = tempfile::tempdir().unwrap();
        let mut seq = 0;
        let mut next_path = || -> Result<PathBuf> {
            seq += 1;
            Ok(dir.path().join(format!("{seq}.bseg")))
        };
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        // Pieces of two blocks, one block, one row; nulls in every column.
        let mut pieces = Vec::new();
        for rows in [90_000usize, 3_000, 1] {
            let mut w = SegmentWriter::new(&schema, interval).unwrap();
            for _ in 0..rows {
                let r = next();
                let maybe = |v: InputValue<'static>| {
                    if r % 11 == 0 { InputValue::Null } else { v }
                };
                let host = if r % 13 == 0 {
                    InputValue::Null
                } else {
                    InputValue::Str(Cow::Owned(format!("h{}", (r >> 8) % 300)))
                };
                let v = maybe(InputValue::Long((r >> 20) as i64 % 1000 - 500));
                let x = maybe(InputValue::Double(((r >> 30) % 10_000) as f64 / 7.0));
                let fields = vec![
                    host.clone(),
                    maybe(InputValue::Long((r >> 12) as i64 % 7)),
                    maybe(InputValue::Double(((r >> 16) % 5) as f64 / 2.0)),
                    InputValue::Null,
                    v.clone(),
                    x.clone(),
                    v,
                    x,
                    host,
                ];
                w.push((r >> 40) as i64 % 3_600_000, &fields).unwrap();
            }
            let path = next_path().unwrap();
            w.finish_with(&path, &FinishOptions::scratch()).unwrap();
            pieces.push(Arc::new(Segment::open(&path).unwrap()));
        }
        assert_eq!(pieces[0].num_blocks(), 2, "rows {}", pieces[0].num_rows());
        for (limit, opts) in [
            (u64::MAX, FinishOptions::scratch()),
            (50_000, FinishOptions::default()),
        ] {
            let fast = merge(
                &schema,
                interval,
                &pieces,
                limit,
                u64::MAX,
                &opts,
                &mut next_path,
            )
            .unwrap();
            let slow = merge_by_rows(&schema, interval, &pieces, limit, &mut next_path).unwrap();
            assert_eq!(fast.len(), slow.len(), "limit {limit}");
            for ((fp, fs), (sp, ss)) in fast.iter().zip(&slow) {
                assert_eq!((fs.rows_in, fs.rows_out), (ss.rows_in, ss.rows_out));
                let f = Segment::open(fp).unwrap().to_record_batches().unwrap();
                let s = Segment::open(sp).unwrap().to_record_batches().unwrap();
                assert_eq!(f, s, "limit {limit}");
            }
        }
    }
}
