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
use crate::segment::writer::MetricState;
use crate::segment::{Segment, SegmentRef, SegmentStats, SegmentWriter};
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
pub fn write_piece(
    writer: SegmentWriter,
    path: &Path,
    sink: &crate::segment::SegmentId,
    rows: u64,
) -> Result<SegmentRef> {
    writer
        .finish(path)
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
/// each, written to paths from `next_path`. Returns each output's path and stats.
pub fn merge(
    schema: &DataSchema,
    interval: Interval,
    pieces: &[SegmentRef],
    rows_per_segment: u64,
    mut next_path: impl FnMut() -> Result<PathBuf>,
) -> Result<Vec<(PathBuf, SegmentStats)>> {
    let mut out = Vec::new();
    let mut writer = SegmentWriter::new(schema, interval)?;
    let mut dims: Vec<InputValue<'static>> = Vec::with_capacity(schema.dimensions.len());
    for seg in pieces {
        for b in 0..seg.num_blocks() {
            let batch = seg.record_batch(b)?;
            let cols = Columns::new(schema, &batch, seg.path())?;
            for r in 0..batch.num_rows() {
                if writer.num_rows() as u64 >= rows_per_segment.max(1) {
                    let full =
                        std::mem::replace(&mut writer, SegmentWriter::new(schema, interval)?);
                    let path = next_path()?;
                    let stats = full.finish(&path)?;
                    out.push((path, stats));
                }
                dims.clear();
                let time = cols.row(r, &mut dims)?;
                let states = cols.states(r)?;
                writer.push_rolled(time, &dims, states)?;
            }
        }
    }
    if writer.num_rows() > 0 {
        let path = next_path()?;
        let stats = writer.finish(&path)?;
        out.push((path, stats));
    }
    Ok(out)
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
