//! `ScanExec`: raw rows, in segment order or by `__time`.

use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use roaring::RoaringBitmap;
use std::sync::Arc;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::query::aggregator::block_nulls;
use crate::query::exec::{ExecContext, SegmentTask, parallel_map, task_rows};
use crate::query::filter::Filter;
use crate::query::scan_output::{ScanBatch, ScanColumn, ScanOutput};
use crate::query::spec::ScanOrder;
use crate::schema::TIME_COLUMN;
use crate::segment::Segment;
use crate::segment::format::{BLOCK_ROWS, ColumnMeta, ColumnType, StreamRole};

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

/// How one output column of a segment is read and collected: the common types straight from
/// their decoded blocks, the rest through Arrow.
enum ColumnSource<'s> {
    /// Not in this segment: null.
    Absent,
    /// `__time` or a long column, with its null rows.
    Long {
        meta: &'s ColumnMeta,
        null_rows: RoaringBitmap,
        values: Vec<i64>,
        nulls: Option<Vec<bool>>,
    },
    /// A double column, with its null rows.
    Double {
        meta: &'s ColumnMeta,
        null_rows: RoaringBitmap,
        values: Vec<f64>,
        nulls: Option<Vec<bool>>,
    },
    /// A single-value string column: dictionary ids (0 = null).
    Str { meta: &'s ColumnMeta, ids: Vec<u32> },
    /// Anything else, exported as an Arrow array per block.
    Arrow {
        meta: &'s ColumnMeta,
        cells: Vec<Value>,
    },
}

/// Append the values at `sel` of a decoded block, and their null flags.
fn append_values<T: Copy + Default>(
    values: &mut Vec<T>,
    nulls: &mut Option<Vec<bool>>,
    block: &[T],
    block_nulls: Option<Vec<bool>>,
    sel: &[usize],
) {
    let before = values.len();
    if sel.len() == block.len() {
        values.extend_from_slice(block);
    } else {
        values.extend(sel.iter().map(|&i| block[i]));
    }
    match block_nulls {
        None => {
            if let Some(n) = nulls.as_mut() {
                n.resize(values.len(), false);
            }
        }
        Some(bn) => {
            let n = nulls.get_or_insert_with(|| vec![false; before]);
            n.extend(sel.iter().map(|&i| bn[i]));
        }
    }
}

impl<'s> ColumnSource<'s> {
    fn new(
        seg: &'s Segment,
        c: Option<&'s ColumnMeta>,
        capacity: usize,
    ) -> Result<ColumnSource<'s>> {
        let Some(c) = c else {
            return Ok(ColumnSource::Absent);
        };
        Ok(match c.column_type {
            ColumnType::Long => ColumnSource::Long {
                meta: c,
                null_rows: seg.null_bitmap(c)?,
                values: Vec::with_capacity(capacity),
                nulls: None,
            },
            ColumnType::Double => ColumnSource::Double {
                meta: c,
                null_rows: seg.null_bitmap(c)?,
                values: Vec::with_capacity(capacity),
                nulls: None,
            },
            ColumnType::String => ColumnSource::Str {
                meta: c,
                ids: Vec::with_capacity(capacity),
            },
            _ => ColumnSource::Arrow {
                meta: c,
                cells: Vec::with_capacity(capacity),
            },
        })
    }

    /// Append the rows `sel` of block `b` (`upto` = the values to decode, covering them).
    fn append(
        &mut self,
        seg: &'s Segment,
        b: usize,
        upto: crate::column::Need,
        sel: &[usize],
    ) -> Result<()> {
        let base = (b * BLOCK_ROWS) as u32;
        let n = seg.block_rows(b);
        match self {
            ColumnSource::Absent => {}
            ColumnSource::Long {
                meta,
                null_rows,
                values,
                nulls,
            } => {
                let block = seg.read_longs_upto(meta, StreamRole::Long, b, upto)?;
                append_values(values, nulls, &block, block_nulls(null_rows, base, n), sel);
            }
            ColumnSource::Double {
                meta,
                null_rows,
                values,
                nulls,
            } => {
                let block = seg.read_doubles_upto(meta, b, upto)?;
                append_values(values, nulls, &block, block_nulls(null_rows, base, n), sel);
            }
            ColumnSource::Str { meta, ids } => {
                let block = seg.read_u32s_upto(meta, StreamRole::Ids, b, upto)?;
                if sel.len() == block.len() {
                    ids.extend_from_slice(&block);
                } else {
                    ids.extend(sel.iter().map(|&i| block[i]));
                }
            }
            ColumnSource::Arrow { meta, cells } => {
                let a = seg.column_array(meta, b)?;
                cells.extend(sel.iter().map(|&i| cell(a.as_ref(), i)));
            }
        }
        Ok(())
    }

    /// The collected column. A string column keeps only the dictionary entries its rows use
    /// when that is fewer than the whole dictionary.
    fn finish_with(self, seg: &'s Segment) -> Result<ScanColumn> {
        Ok(match self {
            ColumnSource::Absent => ScanColumn::Null,
            ColumnSource::Long { values, nulls, .. } => ScanColumn::Long(values, nulls),
            ColumnSource::Double { values, nulls, .. } => ScanColumn::Double(values, nulls),
            ColumnSource::Str { meta, mut ids } => {
                let dict = seg.dictionary(meta)?;
                let entry = |i: usize| -> Result<String> {
                    dict.get(i).map(str::to_owned).ok_or_else(|| {
                        Error::corruption(
                            seg.path(),
                            format!("column `{}` dictionary entry {i}", meta.name),
                            "UTF-8",
                            "invalid",
                        )
                    })
                };
                let mut strings = vec![String::new()];
                if ids.len() < dict.len() {
                    // Few rows: renumber the ids used, in order of first use.
                    let mut remap: std::collections::HashMap<u32, u32> = Default::default();
                    for id in ids.iter_mut() {
                        if *id == 0 {
                            continue;
                        }
                        let next = strings.len() as u32;
                        let new = *remap.entry(*id).or_insert(next);
                        if new == next {
                            strings.push(entry(*id as usize - 1)?);
                        }
                        *id = new;
                    }
                } else {
                    strings.reserve(dict.len());
                    for i in 0..dict.len() {
                        strings.push(entry(i)?);
                    }
                    if let Some(&bad) = ids.iter().find(|&&id| id as usize > dict.len()) {
                        return Err(Error::corruption(
                            seg.path(),
                            format!("column `{}` dictionary id", meta.name),
                            format!("at most {}", dict.len()),
                            bad.to_string(),
                        ));
                    }
                }
                ScanColumn::Str(ids, Arc::new(strings))
            }
            ColumnSource::Arrow { cells, .. } => ScanColumn::Json(cells),
        })
    }
}

impl ScanExec<'_> {
    /// Name shown by EXPLAIN.
    pub fn name(&self) -> &'static str {
        "ScanExec"
    }

    /// The rows of one segment task, at most `stop_after` of them, as one batch. Every
    /// block's rows are counted into `produced` before they are read, failing beyond
    /// `max_rows`.
    fn scan_task(
        &self,
        task: &SegmentTask,
        ctx: &ExecContext,
        stop_after: Option<u64>,
        produced: &AtomicU64,
    ) -> Result<ScanBatch> {
        let seg = &task.segment;
        let names: Vec<String> = if self.columns.is_empty() {
            seg.columns().iter().map(|c| c.name.clone()).collect()
        } else {
            self.columns.to_vec()
        };
        let rows = task_rows(task, self.filter)?;
        let total = rows.len().min(stop_after.unwrap_or(u64::MAX)) as usize;
        let mut batch = ScanBatch {
            segment_id: Arc::from(task.id.as_str()),
            columns: Arc::new(names),
            data: Vec::new(),
            times: None,
            rows: 0,
        };
        if total == 0 {
            batch.data = batch.columns.iter().map(|_| ScanColumn::Null).collect();
            if self.order != ScanOrder::None {
                batch.times = Some(Vec::new());
            }
            return Ok(batch);
        }
        let mut sources: Vec<ColumnSource<'_>> = batch
            .columns
            .iter()
            .map(|n| ColumnSource::new(seg, seg.column(n), total))
            .collect::<Result<_>>()?;
        // The time of each row, only needed to order them.
        let mut time_source = if self.order == ScanOrder::None {
            ColumnSource::Absent
        } else {
            ColumnSource::new(seg, seg.column(TIME_COLUMN), total)?
        };
        let mut left = total as u64;
        let mut sel: Vec<usize> = Vec::new();
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
            sel.clear();
            sel.extend(
                rows.range(base..base + n)
                    .take(take as usize)
                    .map(|r| (r - base) as usize),
            );
            let upto = if sel.len() == n as usize {
                crate::column::Need::ALL
            } else {
                crate::column::Need::positions(sel.iter().copied())
            };
            for s in sources.iter_mut().chain(std::iter::once(&mut time_source)) {
                s.append(seg, b, upto, &sel)?;
            }
        }
        batch.rows = total - left as usize;
        batch.data = sources
            .into_iter()
            .map(|s| s.finish_with(seg))
            .collect::<Result<_>>()?;
        if self.order != ScanOrder::None {
            batch.times = Some(match time_source.finish_with(seg)? {
                ScanColumn::Long(v, _) => v,
                _ => vec![0; batch.rows],
            });
        }
        Ok(batch)
    }

    /// Run over the segment tasks (in timeline order): Druid's scan response.
    pub fn execute(&self, tasks: &[SegmentTask], ctx: &ExecContext) -> Result<Value> {
        Ok(self.execute_columns(tasks, ctx)?.into_json())
    }

    /// Run over the segment tasks (in timeline order), keeping the rows as typed columns.
    pub fn execute_columns(&self, tasks: &[SegmentTask], ctx: &ExecContext) -> Result<ScanOutput> {
        let wanted = self.limit.map(|l| l.saturating_add(self.offset));
        let produced = AtomicU64::new(0);
        let out: Vec<ScanBatch> = if self.order == ScanOrder::None && wanted.is_some() {
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
        let limit = self.limit.unwrap_or(u64::MAX) as usize;
        let mut batches = Vec::new();
        if self.order != ScanOrder::None {
            // Global order by time across segments (ties in task and row order; reversed
            // for descending), then offset/limit; consecutive rows of one segment form a batch.
            let mut all: Vec<(i64, usize, usize)> = Vec::new();
            for (bi, b) in out.iter().enumerate() {
                if let Some(times) = &b.times {
                    all.extend(times.iter().enumerate().map(|(i, &t)| (t, bi, i)));
                }
            }
            all.sort_by_key(|x| x.0);
            if self.order == ScanOrder::Descending {
                all.reverse();
            }
            let picked: Vec<(usize, usize)> = all
                .into_iter()
                .skip(self.offset as usize)
                .take(limit)
                .map(|(_, bi, i)| (bi, i))
                .collect();
            let mut start = 0;
            while start < picked.len() {
                let bi = picked[start].0;
                let end = picked[start..]
                    .iter()
                    .position(|p| p.0 != bi)
                    .map_or(picked.len(), |k| start + k);
                let idx: Vec<usize> = picked[start..end].iter().map(|p| p.1).collect();
                let mut g = out[bi].gather(&idx);
                g.times = None;
                batches.push(g);
                start = end;
            }
        } else {
            // Offset and limit across segments in order.
            let mut skip = self.offset as usize;
            let mut left = limit;
            for b in out {
                if left == 0 {
                    break;
                }
                let skip_here = skip.min(b.rows);
                skip -= skip_here;
                let take = (b.rows - skip_here).min(left);
                if take == 0 {
                    continue;
                }
                left -= take;
                batches.push(if skip_here == 0 && take == b.rows {
                    b
                } else {
                    b.slice(skip_here, take)
                });
            }
        }
        Ok(ScanOutput {
            batches,
            compacted: self.compacted,
        })
    }
}
