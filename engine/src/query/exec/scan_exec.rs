//! `ScanExec`: raw rows, in segment order or by `__time`.

use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use roaring::RoaringBitmap;
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::query::aggregator::block_nulls;
use crate::query::exec::{ExecContext, SegmentTask, parallel_map, task_rows};
use crate::query::filter::Filter;
use crate::query::spec::ScanOrder;
use crate::schema::TIME_COLUMN;
use crate::segment::Segment;
use crate::segment::format::{BLOCK_ROWS, ColumnMeta, ColumnType, StreamRole};

/// Events of one segment: (segment id, column names, (time, event)).
type SegmentEvents = (String, Vec<String>, Vec<(i64, Value)>);

/// The scan operator.
#[derive(Debug)]
pub struct ScanExec<'a> {
    /// Filter.
    pub filter: Option<&'a Filter>,
    /// Columns (empty = all).
    pub columns: &'a [String],
    /// Row limit.
    pub limit: Option<u64>,
    /// Rows skipped.
    pub offset: u64,
    /// Ordering.
    pub order: ScanOrder,
    /// `compactedList` output.
    pub compacted: bool,
    /// Most rows that may be materialized.
    pub max_rows: u64,
}

fn cell(a: &dyn arrow_array::Array, row: usize) -> Value {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
    use arrow_schema::DataType;
    if a.is_null(row) {
        return Value::Null;
    }
    match a.data_type() {
        DataType::Timestamp(..) => {
            Value::from(a.as_primitive::<TimestampMillisecondType>().value(row))
        }
        DataType::Int64 => Value::from(a.as_primitive::<Int64Type>().value(row)),
        DataType::Float64 => {
            crate::query::aggregator::json_f64(a.as_primitive::<Float64Type>().value(row))
        }
        DataType::Utf8 => Value::from(a.as_string::<i32>().value(row)),
        DataType::List(_) => {
            let l = a.as_list::<i32>().value(row);
            let s = l.as_string::<i32>();
            Value::Array((0..s.len()).map(|i| Value::from(s.value(i))).collect())
        }
        DataType::Binary => {
            let bytes = a.as_binary::<i32>().value(row);
            match crate::aggregate::deserialize_hll(bytes) {
                Ok(s) => crate::query::aggregator::json_f64(s.estimate()),
                Err(_) => Value::Null,
            }
        }
        DataType::Struct(_) => {
            let s = a.as_struct();
            let v = s.column(1);
            match v.data_type() {
                DataType::Int64 => Value::from(v.as_primitive::<Int64Type>().value(row)),
                _ => crate::query::aggregator::json_f64(v.as_primitive::<Float64Type>().value(row)),
            }
        }
        _ => Value::Null,
    }
}

/// How one output column of a segment is read: the common types straight from their
/// decoded blocks, the rest through Arrow.
enum ColumnSource<'s> {
    /// Not in this segment: null.
    Absent,
    /// `__time` or a long column, with its null rows.
    Long(&'s ColumnMeta, RoaringBitmap),
    /// A double column, with its null rows.
    Double(&'s ColumnMeta, RoaringBitmap),
    /// A single-value string column: its dictionary by id (index 0 = null).
    Str(&'s ColumnMeta, Vec<&'s str>),
    /// Anything else, exported as an Arrow array per block.
    Arrow(&'s ColumnMeta),
}

/// One block of one output column, decoded.
enum Cells<'a, 's> {
    Null,
    Long(Vec<i64>, Option<Vec<bool>>),
    Double(Vec<f64>, Option<Vec<bool>>),
    Str(Vec<u32>, &'a [&'s str]),
    Arrow(arrow_array::ArrayRef),
}

impl Cells<'_, '_> {
    #[inline]
    fn value(&self, i: usize) -> Value {
        match self {
            Cells::Null => Value::Null,
            Cells::Long(v, nulls) => {
                if nulls.as_ref().is_some_and(|n| n[i]) {
                    Value::Null
                } else {
                    Value::from(v[i])
                }
            }
            Cells::Double(v, nulls) => {
                if nulls.as_ref().is_some_and(|n| n[i]) {
                    Value::Null
                } else {
                    crate::query::aggregator::json_f64(v[i])
                }
            }
            Cells::Str(ids, dict) => match dict.get(ids[i] as usize) {
                Some(s) if ids[i] != 0 => Value::String((*s).to_string()),
                _ => Value::Null,
            },
            Cells::Arrow(a) => cell(a.as_ref(), i),
        }
    }
}

impl<'s> ColumnSource<'s> {
    fn new(seg: &'s Segment, c: Option<&'s ColumnMeta>) -> Result<ColumnSource<'s>> {
        let Some(c) = c else {
            return Ok(ColumnSource::Absent);
        };
        Ok(match c.column_type {
            ColumnType::Long => ColumnSource::Long(c, seg.null_bitmap(c)?),
            ColumnType::Double => ColumnSource::Double(c, seg.null_bitmap(c)?),
            ColumnType::String => {
                let dict = seg.dictionary(c)?;
                let mut v = Vec::with_capacity(dict.len() + 1);
                v.push("");
                for i in 0..dict.len() {
                    v.push(dict.get(i).ok_or_else(|| {
                        Error::corruption(
                            seg.path(),
                            format!("column `{}` dictionary entry {i}", c.name),
                            "UTF-8",
                            "invalid",
                        )
                    })?);
                }
                ColumnSource::Str(c, v)
            }
            _ => ColumnSource::Arrow(c),
        })
    }

    /// Block `b` decoded; only rows `0..upto` are meant to be read.
    fn block<'a>(&'a self, seg: &'s Segment, b: usize, upto: usize) -> Result<Cells<'a, 's>> {
        let base = (b * BLOCK_ROWS) as u32;
        let n = seg.block_rows(b);
        Ok(match self {
            ColumnSource::Absent => Cells::Null,
            ColumnSource::Long(c, nulls) => Cells::Long(
                seg.read_longs_upto(c, StreamRole::Long, b, upto)?,
                block_nulls(nulls, base, n),
            ),
            ColumnSource::Double(c, nulls) => Cells::Double(
                seg.read_doubles_upto(c, b, upto)?,
                block_nulls(nulls, base, n),
            ),
            ColumnSource::Str(c, dict) => {
                Cells::Str(seg.read_u32s_upto(c, StreamRole::Ids, b, upto)?, dict)
            }
            ColumnSource::Arrow(c) => Cells::Arrow(seg.column_array(c, b)?),
        })
    }
}

impl ScanExec<'_> {
    /// Name shown by EXPLAIN.
    pub fn name(&self) -> &'static str {
        "ScanExec"
    }

    /// The events of one segment task, at most `stop_after` of them. Every block's rows are
    /// counted into `produced` before they are built, failing beyond `max_rows`.
    fn scan_task(
        &self,
        task: &SegmentTask,
        ctx: &ExecContext,
        stop_after: Option<u64>,
        produced: &AtomicU64,
    ) -> Result<SegmentEvents> {
        let seg = &task.segment;
        let names: Vec<String> = if self.columns.is_empty() {
            seg.columns().iter().map(|c| c.name.clone()).collect()
        } else {
            self.columns.to_vec()
        };
        let rows = task_rows(task, self.filter)?;
        let mut events = Vec::new();
        if rows.is_empty() {
            return Ok((task.id.clone(), names, events));
        }
        let sources: Vec<ColumnSource<'_>> = names
            .iter()
            .map(|n| ColumnSource::new(seg, seg.column(n)))
            .collect::<Result<_>>()?;
        // The time of each event, only needed to order them.
        let time_source = if self.order == ScanOrder::None {
            ColumnSource::Absent
        } else {
            ColumnSource::new(seg, seg.column(TIME_COLUMN))?
        };
        let mut left = stop_after.unwrap_or(u64::MAX);
        for b in 0..seg.num_blocks() {
            if left == 0 {
                break;
            }
            let base = (b * BLOCK_ROWS) as u32;
            let n = seg.block_rows(b) as u32;
            let take = rows.range_cardinality(base..base + n).min(left);
            if take == 0 {
                continue;
            }
            ctx.check()?;
            let before = produced.fetch_add(take, AtomicOrdering::Relaxed);
            if before.saturating_add(take) > self.max_rows {
                return Err(Error::ResourcesExhausted(format!(
                    "scan would return more than {} rows (context maxScanRows); add a limit or narrow the filter",
                    self.max_rows
                )));
            }
            left -= take;
            // Decode up to the last row taken.
            let upto = rows
                .range(base..base + n)
                .nth((take - 1) as usize)
                .map_or(n as usize, |r| (r - base) as usize + 1);
            let cells: Vec<Cells<'_, '_>> = sources
                .iter()
                .map(|s| s.block(seg, b, upto))
                .collect::<Result<_>>()?;
            let times = time_source.block(seg, b, upto)?;
            events.reserve(take as usize);
            for r in rows.range(base..base + n).take(take as usize) {
                let i = (r - base) as usize;
                let t = match &times {
                    Cells::Long(v, _) => v[i],
                    _ => 0,
                };
                let ev = if self.compacted {
                    Value::Array(cells.iter().map(|c| c.value(i)).collect())
                } else {
                    let mut m = Map::new();
                    for (name, c) in names.iter().zip(&cells) {
                        m.insert(name.clone(), c.value(i));
                    }
                    Value::Object(m)
                };
                events.push((t, ev));
            }
        }
        Ok((task.id.clone(), names, events))
    }

    /// Run over the segment tasks (in timeline order).
    pub fn execute(&self, tasks: &[SegmentTask], ctx: &ExecContext) -> Result<Value> {
        let wanted = self.limit.map(|l| l.saturating_add(self.offset));
        let produced = AtomicU64::new(0);
        let out: Vec<SegmentEvents> = if self.order == ScanOrder::None && wanted.is_some() {
            // A limit in segment order: read segments one after another until it is reached.
            let mut out = Vec::new();
            for task in tasks {
                ctx.check()?;
                let done = produced.load(AtomicOrdering::Relaxed);
                let left = wanted.map(|w| w.saturating_sub(done));
                if left == Some(0) {
                    break;
                }
                out.push(self.scan_task(task, ctx, left, &produced)?);
            }
            out
        } else {
            // Every matching row is needed: segments in parallel, results in task order.
            parallel_map(tasks, |task| {
                ctx.check()?;
                self.scan_task(task, ctx, None, &produced)
            })?
        };
        if self.order != ScanOrder::None {
            // Global order by time across segments, then offset/limit.
            let mut all: Vec<(i64, String, Vec<String>, Value)> = Vec::new();
            for (id, names, events) in out {
                for (t, e) in events {
                    all.push((t, id.clone(), names.clone(), e));
                }
            }
            all.sort_by_key(|x| x.0);
            if self.order == ScanOrder::Descending {
                all.reverse();
            }
            let limit = self.limit.unwrap_or(u64::MAX) as usize;
            let mut result: Vec<Value> = Vec::new();
            for (_, id, names, e) in all.into_iter().skip(self.offset as usize).take(limit) {
                result.push(json!({"segmentId": id, "columns": names, "events": [e]}));
            }
            return Ok(Value::Array(merge_batches(result)));
        }
        // Apply offset and limit across segments in order.
        let mut skip = self.offset as usize;
        let mut left = self.limit.unwrap_or(u64::MAX) as usize;
        let mut result = Vec::new();
        for (id, names, events) in out {
            if left == 0 {
                break;
            }
            let skip_here = skip.min(events.len());
            skip -= skip_here;
            let evs: Vec<Value> = events
                .into_iter()
                .map(|(_, e)| e)
                .skip(skip_here)
                .take(left)
                .collect();
            if evs.is_empty() {
                continue;
            }
            left -= evs.len();
            result.push(json!({"segmentId": id, "columns": names, "events": evs}));
        }
        Ok(Value::Array(result))
    }
}

/// Merge consecutive single-event batches of the same segment into one batch.
fn merge_batches(batches: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for mut b in batches {
        let same = out
            .last()
            .is_some_and(|last| last["segmentId"] == b["segmentId"]);
        if same {
            let new_events = match b.get_mut("events") {
                Some(Value::Array(a)) => std::mem::take(a),
                _ => Vec::new(),
            };
            if let Some(Value::Array(evs)) = out.last_mut().and_then(|l| l.get_mut("events")) {
                evs.extend(new_events);
            }
            continue;
        }
        out.push(b);
    }
    out
}
