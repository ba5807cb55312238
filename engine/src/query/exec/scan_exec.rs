//! `ScanExec`: raw rows, in segment order or by `__time`.

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::query::exec::{ExecContext, SegmentTask, task_rows};
use crate::query::filter::Filter;
use crate::query::spec::ScanOrder;
use crate::schema::TIME_COLUMN;
use crate::segment::format::BLOCK_ROWS;

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

fn cell(batch: &arrow_array::RecordBatch, col: usize, row: usize) -> Value {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
    use arrow_schema::DataType;
    let a = batch.column(col);
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

impl ScanExec<'_> {
    /// Name shown by EXPLAIN.
    pub fn name(&self) -> &'static str {
        "ScanExec"
    }

    /// Run over the segment tasks (in timeline order).
    pub fn execute(&self, tasks: &[SegmentTask], ctx: &ExecContext) -> Result<Value> {
        let wanted = self.limit.map(|l| l.saturating_add(self.offset));
        let mut produced = 0u64;
        let mut out: Vec<SegmentEvents> = Vec::new();
        'tasks: for task in tasks {
            ctx.check()?;
            let seg = &task.segment;
            let rows = task_rows(task, self.filter)?;
            if rows.is_empty() {
                continue;
            }
            let names: Vec<String> = if self.columns.is_empty() {
                seg.columns().iter().map(|c| c.name.clone()).collect()
            } else {
                self.columns.to_vec()
            };
            let schema = seg.arrow_schema();
            let idx: Vec<Option<usize>> = names.iter().map(|n| schema.index_of(n).ok()).collect();
            let time_idx = schema.index_of(TIME_COLUMN).ok();
            let mut events = Vec::new();
            for b in 0..seg.num_blocks() {
                let base = (b * BLOCK_ROWS) as u32;
                let n = seg.block_rows(b) as u32;
                if rows.range_cardinality(base..base + n) == 0 {
                    continue;
                }
                ctx.check()?;
                let batch = seg.record_batch(b)?;
                for r in rows.range(base..base + n) {
                    let i = (r - base) as usize;
                    let t = match time_idx {
                        Some(ti) => cell(&batch, ti, i).as_i64().unwrap_or(0),
                        None => 0,
                    };
                    let ev = if self.compacted {
                        Value::Array(
                            idx.iter()
                                .map(|c| c.map(|c| cell(&batch, c, i)).unwrap_or(Value::Null))
                                .collect(),
                        )
                    } else {
                        let mut m = Map::new();
                        for (name, c) in names.iter().zip(&idx) {
                            m.insert(
                                name.clone(),
                                c.map(|c| cell(&batch, c, i)).unwrap_or(Value::Null),
                            );
                        }
                        Value::Object(m)
                    };
                    events.push((t, ev));
                    produced += 1;
                    if produced > self.max_rows {
                        return Err(Error::ResourcesExhausted(format!(
                            "scan would return more than {} rows (context maxScanRows); add a limit or narrow the filter",
                            self.max_rows
                        )));
                    }
                    if self.order == ScanOrder::None && wanted.is_some_and(|w| produced >= w) {
                        out.push((task.id.clone(), names.clone(), events));
                        break 'tasks;
                    }
                }
            }
            out.push((task.id.clone(), names, events));
        }
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
