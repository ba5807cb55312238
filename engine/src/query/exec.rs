//! Query execution over a timeline snapshot.
//!
//! The plan for every aggregating query (timeseries, topN, groupBy) is the same pipeline:
//! 1. `SegmentScanExec`: the timeline snapshot gives the visible segments of the datasource
//!    for the query intervals (pruning by interval);
//! 2. `FilterExec`: per segment, rows = time range (block min/max of `__time`) ∩ filter
//!    (bitmaps for string dimensions, block-skipping row checks for numbers);
//! 3. `AggregateExec`: per segment, only blocks with matching rows are decoded; each matching
//!    row is bucketed by granularity and grouped by its dimension values (segment-local
//!    dictionary ids), aggregators update per-group states; segments run in parallel on all
//!    cores and their partial states are merged by value;
//! 4. the query type's finishing step (zero-fill, top-k, having/limit, post-aggregators) shapes
//!    Druid's JSON response.

pub mod groupby_exec;
pub mod metadata_exec;
pub mod newest_first;
pub mod scan_exec;
pub mod search_exec;
pub mod timeseries_exec;
pub mod topn_exec;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering as AtomicOrdering};
use std::time::Instant;

use roaring::RoaringBitmap;
use serde_json::Value;

use crate::column::frames::{FRAME, FrameBlock, FrameShape};
use crate::column::{Need, Values};
use crate::error::{Error, Result};
use crate::query::aggregator::{
    AggKind, AggState, AggregatorSpec, Run, SegmentAggContext, StateColumn,
};
use crate::query::filter::{Filter, time_rows};
use crate::query::granularity::QueryGranularity;
use crate::segment::format::{BLOCK_ROWS, ColumnMeta, ColumnType, StreamRole};
use crate::segment::{Segment, SegmentRef};
use crate::time::Interval;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Most entries of one segment's dense group tables (one per time bucket, one entry per
/// dictionary id): 16 MiB.
const DENSE_TABLES_MAX: usize = 1 << 22;

/// Deadline and cancellation of one query.
#[derive(Clone, Debug, Default)]
pub struct ExecContext {
    /// When the query must stop.
    pub deadline: Option<Instant>,
    /// Set to cancel.
    pub cancelled: Option<Arc<AtomicBool>>,
    /// Query id for messages.
    pub query_id: Option<String>,
}

impl ExecContext {
    /// Fail if the query timed out or was cancelled.
    pub fn check(&self) -> Result<()> {
        if let Some(d) = self.deadline
            && Instant::now() >= d
        {
            return Err(Error::Timeout(format!(
                "query{} exceeded its timeout",
                self.query_id
                    .as_deref()
                    .map(|q| format!(" `{q}`"))
                    .unwrap_or_default()
            )));
        }
        if let Some(c) = &self.cancelled
            && c.load(AtomicOrdering::Relaxed)
        {
            return Err(Error::Cancelled(format!(
                "query{} was cancelled",
                self.query_id
                    .as_deref()
                    .map(|q| format!(" `{q}`"))
                    .unwrap_or_default()
            )));
        }
        Ok(())
    }
}

/// One segment to read, with the parts of time the query sees in it.
#[derive(Clone, Debug)]
pub struct SegmentTask {
    /// The open segment.
    pub segment: SegmentRef,
    /// Segment id text (Druid style).
    pub id: String,
    /// Visible time ranges ∩ query intervals.
    pub intervals: Vec<Interval>,
    /// Blocks to read (`None` = all); set when a big segment is split across cores.
    pub blocks: Option<std::ops::Range<usize>>,
}

/// The elements of `v` at the positions `kept` names (ascending), in order.
pub fn take_at<T>(v: Vec<T>, kept: &[usize]) -> Vec<T> {
    let mut next = kept.iter().peekable();
    v.into_iter()
        .enumerate()
        .filter_map(|(i, x)| next.next_if_eq(&&i).map(|_| x))
        .collect()
}

/// Insert into `out` the rows `from..to` for which `hit` holds, a run of consecutive hits at a
/// time (matches come in runs in sorted data: far cheaper than one insert per row).
pub fn insert_runs(out: &mut RoaringBitmap, from: u32, to: u32, hit: impl Fn(u32) -> bool) {
    let mut i = from;
    while i < to {
        while i < to && !hit(i) {
            i += 1;
        }
        let start = i;
        while i < to && hit(i) {
            i += 1;
        }
        if start < i {
            out.insert_range(start..i);
        }
    }
}

/// Worker threads a query uses: the cores available to the process, read once (the standard
/// library reads the cgroup files on every call, a noticeable cost for millisecond queries).
pub fn query_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Split big segments into block ranges when there are fewer tasks than cores, so one big
/// query keeps every core busy. Only for operators that merge partial results by value.
pub fn split_for_parallelism(tasks: &[SegmentTask]) -> Vec<SegmentTask> {
    let threads = query_threads();
    if tasks.len() >= threads * 2 {
        return tasks.to_vec();
    }
    let mut out = Vec::new();
    for t in tasks {
        let blocks = t.segment.num_blocks();
        let pieces = threads.min(blocks / 2).max(1);
        if pieces <= 1 {
            out.push(t.clone());
            continue;
        }
        let per = blocks.div_ceil(pieces);
        let mut start = 0;
        while start < blocks {
            let end = (start + per).min(blocks);
            let mut piece = t.clone();
            piece.blocks = Some(start..end);
            out.push(piece);
            start = end;
        }
    }
    out
}

/// Run `f` over every task on all cores; results in task order.
pub fn parallel_map<T: Sync, R: Send>(
    tasks: &[T],
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let threads = query_threads().min(tasks.len());
    if threads <= 1 {
        return tasks.iter().map(&f).collect();
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let slots: Vec<parking_lot::Mutex<Option<Result<R>>>> = (0..tasks.len())
        .map(|_| parking_lot::Mutex::new(None))
        .collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    if failed.load(AtomicOrdering::Relaxed) {
                        break;
                    }
                    let i = next.fetch_add(1, AtomicOrdering::Relaxed);
                    if i >= tasks.len() {
                        break;
                    }
                    let r = f(&tasks[i]);
                    if r.is_err() {
                        failed.store(true, AtomicOrdering::Relaxed);
                    }
                    *slots[i].lock() = Some(r);
                }
            });
        }
    });
    let mut out = Vec::with_capacity(tasks.len());
    let mut first_err = None;
    for s in slots {
        match s.into_inner() {
            Some(Ok(r)) => out.push(r),
            Some(Err(e)) if first_err.is_none() => first_err = Some(e),
            Some(Err(_)) => {}
            None => {}
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Rows of a task that pass the time ranges and the filter.
pub fn task_rows(task: &SegmentTask, filter: Option<&Filter>) -> Result<RoaringBitmap> {
    let seg = &task.segment;
    let d = seg.directory();
    let whole_time = task
        .intervals
        .iter()
        .any(|iv| iv.start <= d.min_time && d.max_time < iv.end);
    let Some(f) = filter else {
        if whole_time {
            let mut all = RoaringBitmap::new();
            all.insert_range(0..seg.num_rows() as u32);
            return Ok(all);
        }
        return time_rows(seg, &task.intervals);
    };
    // The filter first: bitmaps are cheap, and the time check then only decodes the `__time`
    // blocks that still hold candidate rows (rows sorted by a dimension spread every block
    // over the whole interval).
    let rows = f.true_rows(seg, None)?;
    if whole_time || rows.is_empty() {
        return Ok(rows);
    }
    restrict_to_intervals(seg, rows, &task.intervals)
}

/// The block-relative rows of `rows` in block rows `base..base + n`, as the values a decoder
/// must produce: all of them when the block is fully selected, else the frames holding them.
pub fn block_need(rows: &RoaringBitmap, base: u32, n: u32) -> Need {
    let selected = rows.range_cardinality(base..base + n);
    if selected == u64::from(n) {
        return Need::ALL;
    }
    let mut ranges = Vec::new();
    selected_ranges(rows, base, n, false, &mut ranges);
    Need::ranges(&ranges)
}

/// The rows of `rows` in block rows `base..base + n` as block-relative half-open ranges of
/// consecutive rows, into `out` (cleared first); `full` says every row is selected.
pub fn selected_ranges(
    rows: &RoaringBitmap,
    base: u32,
    n: u32,
    full: bool,
    out: &mut Vec<(u32, u32)>,
) {
    out.clear();
    if full {
        out.push((0, n));
        return;
    }
    let mut it = rows.range(base..base + n);
    while let Some(r) = it.next_range() {
        out.push((r.start() - base, r.end() - base + 1));
    }
}

/// Keep the rows of `rows` whose `__time` lies in `intervals`, skipping and taking whole blocks
/// by their min/max.
fn restrict_to_intervals(
    seg: &Segment,
    rows: RoaringBitmap,
    intervals: &[Interval],
) -> Result<RoaringBitmap> {
    let Some(c) = seg.column(crate::schema::TIME_COLUMN) else {
        return Ok(RoaringBitmap::new());
    };
    let Some(stream) = c.stream(StreamRole::Long) else {
        return Ok(RoaringBitmap::new());
    };
    // Rows are taken a range of consecutive rows at a time: the filter's rows come in runs
    // (rows sorted by a filtered dimension), and so do their times within each run.
    let mut kept = RoaringBitmap::new();
    let inside = |t: i64| intervals.iter().any(|iv| iv.contains(t));
    for (b, meta) in stream.blocks.iter().enumerate() {
        let base = (b * BLOCK_ROWS) as u32;
        let end = base + meta.num_values;
        if rows.range_cardinality(base..end) == 0 {
            continue;
        }
        let (lo, hi) = (meta.min as i64, meta.max as i64);
        let mut it = rows.range(base..end);
        if intervals.iter().any(|iv| iv.start <= lo && hi < iv.end) {
            while let Some(r) = it.next_range() {
                kept.insert_range(r);
            }
            continue;
        }
        if !intervals.iter().any(|iv| iv.start <= hi && lo < iv.end) {
            continue;
        }
        let times =
            seg.read_longs_upto(c, StreamRole::Long, b, block_need(&rows, base, end - base))?;
        while let Some(r) = it.next_range() {
            insert_runs(&mut kept, *r.start(), *r.end() + 1, |i| {
                times.get((i - base) as usize).is_some_and(|&t| inside(t))
            });
        }
    }
    Ok(kept)
}

/// A grouping value, independent of any segment's dictionary.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DimValue {
    /// Null.
    Null,
    /// A string.
    Str(Arc<str>),
    /// A long.
    Long(i64),
    /// A double, by its bits (normalised so -0.0 is 0.0).
    Double(u64),
}

impl DimValue {
    /// As JSON.
    pub fn to_json(&self) -> Value {
        match self {
            DimValue::Null => Value::Null,
            DimValue::Str(s) => Value::from(&**s),
            DimValue::Long(i) => Value::from(*i),
            DimValue::Double(b) => crate::query::aggregator::json_f64(f64::from_bits(*b)),
        }
    }

    /// As JSON in a dimension's output type (Druid renders dimensions as strings by default).
    pub fn to_json_as(&self, t: crate::query::spec::OutputType) -> Value {
        use crate::query::spec::OutputType;
        match (self, t) {
            (DimValue::Null, _) => Value::Null,
            (DimValue::Long(i), OutputType::String) => Value::from(i.to_string()),
            (DimValue::Double(b), OutputType::String) => {
                let f = f64::from_bits(*b);
                Value::from(if f.fract() == 0.0 && f.abs() < 1e15 {
                    format!("{f:.1}")
                } else {
                    f.to_string()
                })
            }
            (DimValue::Str(s), OutputType::Long) => crate::query::filter::Num::parse(s)
                .map(|n| match n {
                    crate::query::filter::Num::I(i) => Value::from(i),
                    crate::query::filter::Num::F(f) => Value::from(f as i64),
                })
                .unwrap_or(Value::Null),
            (DimValue::Str(s), OutputType::Double) => s
                .trim()
                .parse::<f64>()
                .ok()
                .map(crate::query::aggregator::json_f64)
                .unwrap_or(Value::Null),
            (DimValue::Double(b), OutputType::Long) => Value::from(f64::from_bits(*b) as i64),
            (DimValue::Long(i), OutputType::Double) => {
                crate::query::aggregator::json_f64(*i as f64)
            }
            (v, _) => v.to_json(),
        }
    }

    /// Druid's ordering of dimension values: null first, then lexicographic (or numeric for
    /// numbers).
    pub fn cmp_druid(&self, other: &DimValue) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match (self, other) {
            (DimValue::Null, DimValue::Null) => Ordering::Equal,
            (DimValue::Null, _) => Ordering::Less,
            (_, DimValue::Null) => Ordering::Greater,
            (DimValue::Str(a), DimValue::Str(b)) => a.as_bytes().cmp(b.as_bytes()),
            (DimValue::Long(a), DimValue::Long(b)) => a.cmp(b),
            (DimValue::Double(a), DimValue::Double(b)) => {
                f64::from_bits(*a).total_cmp(&f64::from_bits(*b))
            }
            (a, b) => a.cmp(b),
        }
    }
}

/// Per-row values of a column for one block as strings (empty = null); used for
/// cardinality over dimensions and for search.
pub fn column_strings(
    seg: &Segment,
    col: Option<&ColumnMeta>,
    b: usize,
) -> Result<Vec<Vec<Arc<str>>>> {
    let n = seg.block_rows(b);
    let Some(c) = col else {
        return Ok(vec![Vec::new(); n]);
    };
    let base = (b * BLOCK_ROWS) as u32;
    Ok(match c.column_type {
        ColumnType::String | ColumnType::MultiString => {
            let dict = seg.dictionary(c)?;
            let mut cache: Vec<Option<Arc<str>>> = vec![None; dict.len() + 1];
            let mut get = |id: u32| -> Arc<str> {
                let slot = &mut cache[id as usize];
                slot.get_or_insert_with(|| Arc::from(dict.get(id as usize - 1).unwrap_or_default()))
                    .clone()
            };
            if c.column_type == ColumnType::String {
                seg.read_u32s(c, StreamRole::Ids, b)?
                    .into_iter()
                    .map(|id| if id == 0 { Vec::new() } else { vec![get(id)] })
                    .collect()
            } else {
                let lengths = seg.read_u32s(c, StreamRole::Lengths, b)?;
                let ids = seg.read_u32s(c, StreamRole::Ids, b)?;
                let mut pos = 0usize;
                let mut out = Vec::with_capacity(n);
                for l in lengths {
                    let end = (pos + l as usize).min(ids.len());
                    out.push(
                        ids[pos..end]
                            .iter()
                            .filter(|&&id| id > 0)
                            .map(|&id| get(id))
                            .collect(),
                    );
                    pos = end;
                }
                out
            }
        }
        ColumnType::Long | ColumnType::LongPair => {
            let nulls = seg.null_bitmap(c)?;
            seg.read_longs(c, StreamRole::Long, b)?
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    if nulls.contains(base + i as u32) {
                        Vec::new()
                    } else {
                        vec![Arc::from(v.to_string())]
                    }
                })
                .collect()
        }
        ColumnType::Double | ColumnType::DoublePair => {
            let nulls = seg.null_bitmap(c)?;
            seg.read_doubles(c, b)?
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    if nulls.contains(base + i as u32) {
                        Vec::new()
                    } else {
                        vec![Arc::from(v.to_string())]
                    }
                })
                .collect()
        }
        ColumnType::HllSketch => vec![Vec::new(); n],
    })
}

/// Grouping key of one result group: time bucket and dimension values.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupKey {
    /// Bucket start.
    pub bucket: i64,
    /// Dimension values in query order.
    pub dims: Vec<DimValue>,
}

/// Partial aggregation result: groups and their states.
pub type Groups = FastMap<GroupKey, Vec<AggState>>;

/// What to group by.
#[derive(Debug)]
pub struct Grouping<'a> {
    /// Time bucketing.
    pub granularity: &'a QueryGranularity,
    /// Dimension columns (input names).
    pub dims: &'a [String],
    /// Aggregators.
    pub aggs: &'a [AggregatorSpec],
    /// Max groups (ResourcesExhausted beyond).
    pub max_groups: u64,
    /// Keep only each time bucket's best groups of a segment (topN's over-fetch), chosen
    /// before the segment's groups are turned into keyed groups.
    pub top: Option<LocalTop>,
}

/// Each time bucket's `k` best groups of one segment by aggregator `agg`'s value (largest
/// first, smallest first if `inverted`); ties are broken arbitrarily, unless `exact`.
#[derive(Clone, Copy, Debug)]
pub struct LocalTop {
    /// Index of the ordering aggregator.
    pub agg: usize,
    /// Groups kept per bucket.
    pub k: usize,
    /// Smallest first.
    pub inverted: bool,
    /// Keep every group tied with the `k`-th value, and every group without a value: the cut
    /// of a groupBy whose limit is exact (see `GroupByExec`).
    pub exact: bool,
}

impl LocalTop {
    /// Order of two ordering values, best first (no value counts as the smallest).
    pub fn cmp(&self, x: Option<f64>, y: Option<f64>) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        let o = match (x, y) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        if self.inverted { o } else { o.reverse() }
    }

    /// Of groups `0..buckets.len()` (group `g` in time bucket `buckets[g]`, ordering value
    /// `values[g]`), the ones to keep, ascending.
    pub fn keep(&self, buckets: &[u64], values: &[Option<f64>]) -> Vec<usize> {
        let mut per_bucket: FastMap<u64, Vec<usize>> = FastMap::default();
        for (g, &b) in buckets.iter().enumerate() {
            per_bucket.entry(b).or_default().push(g);
        }
        let mut kept = Vec::new();
        for (_, mut groups) in per_bucket {
            if self.exact {
                // Groups without a value stay; of the others, the k best and their ties.
                let (nulls, mut valued): (Vec<usize>, Vec<usize>) =
                    groups.into_iter().partition(|&g| values[g].is_none());
                kept.extend(nulls);
                if self.k > 0 && valued.len() > self.k {
                    valued.select_nth_unstable_by(self.k - 1, |&a, &b| {
                        self.cmp(values[a], values[b])
                    });
                    let kth = values[valued[self.k - 1]];
                    let rest = valued.split_off(self.k);
                    valued.extend(
                        rest.into_iter()
                            .filter(|&g| self.cmp(values[g], kth).is_eq()),
                    );
                }
                kept.extend(valued);
                continue;
            }
            if self.k > 0 && groups.len() > self.k {
                groups.select_nth_unstable_by(self.k - 1, |&a, &b| self.cmp(values[a], values[b]));
                groups.truncate(self.k);
            }
            kept.extend(groups);
        }
        kept.sort_unstable();
        kept
    }

    /// Keep each bucket's best groups of one segment's partial groups (for those
    /// `aggregate_task` could not cut itself, as sketch values or keyed paths).
    pub fn trim(&self, groups: Groups, aggs: &[AggregatorSpec]) -> Groups {
        if groups.len() <= self.k {
            return groups;
        }
        let Some(agg) = aggs.get(self.agg) else {
            return groups;
        };
        let groups: Vec<_> = groups.into_iter().collect();
        let buckets: Vec<u64> = groups.iter().map(|(key, _)| key.bucket as u64).collect();
        // The ordering value, computed once per group.
        let values: Vec<Option<f64>> = groups
            .iter()
            .map(|(_, st)| agg.finalize_num(&st[self.agg]))
            .collect();
        take_at(groups, &self.keep(&buckets, &values))
            .into_iter()
            .collect()
    }
}

enum DimCodes {
    /// Per-row dictionary ids, and per id its value.
    Ids(Values<u32>),
    /// Per-row list of ids.
    Multi(Vec<u32>, Vec<u32>),
    /// Numbers (null flagged).
    Long(Values<i64>, Option<Vec<bool>>),
    Double(Values<f64>, Option<Vec<bool>>),
    /// Absent column.
    Null,
}

enum DimDict {
    Strings(Vec<Arc<str>>),
    None,
}

fn dim_dict(seg: &Segment, c: Option<&ColumnMeta>) -> Result<DimDict> {
    match c {
        Some(c) if matches!(c.column_type, ColumnType::String | ColumnType::MultiString) => {
            let dict = seg.dictionary(c)?;
            let mut v: Vec<Arc<str>> = Vec::with_capacity(dict.len() + 1);
            v.push(Arc::from(""));
            for i in 0..dict.len() {
                v.push(Arc::from(dict.get(i).ok_or_else(|| {
                    Error::corruption(
                        seg.path(),
                        format!("column `{}` dictionary entry {i}", c.name),
                        "UTF-8",
                        "invalid",
                    )
                })?));
            }
            Ok(DimDict::Strings(v))
        }
        _ => Ok(DimDict::None),
    }
}

/// Grouping codes of block `b`; only the rows `upto` names are meant to be read.
fn dim_codes(seg: &Segment, c: Option<&ColumnMeta>, b: usize, upto: Need) -> Result<DimCodes> {
    let Some(c) = c else {
        return Ok(DimCodes::Null);
    };
    let base = (b * BLOCK_ROWS) as u32;
    let n = seg.block_rows(b);
    Ok(match c.column_type {
        ColumnType::String => DimCodes::Ids(seg.read_u32s_upto(c, StreamRole::Ids, b, upto)?),
        ColumnType::MultiString => {
            let lengths = seg.read_u32s(c, StreamRole::Lengths, b)?;
            let ids = seg.read_u32s(c, StreamRole::Ids, b)?;
            let mut offsets = Vec::with_capacity(lengths.len() + 1);
            let mut pos = 0u32;
            offsets.push(0);
            for l in lengths {
                pos = pos.saturating_add(l).min(ids.len() as u32);
                offsets.push(pos);
            }
            DimCodes::Multi(offsets, ids)
        }
        ColumnType::Long | ColumnType::LongPair => DimCodes::Long(
            seg.read_longs_upto(c, StreamRole::Long, b, upto)?,
            crate::query::aggregator::block_nulls(&seg.null_bitmap(c)?, base, n),
        ),
        ColumnType::Double | ColumnType::DoublePair => DimCodes::Double(
            seg.read_doubles_upto(c, b, upto)?,
            crate::query::aggregator::block_nulls(&seg.null_bitmap(c)?, base, n),
        ),
        ColumnType::HllSketch => {
            return Err(Error::invalid(format!(
                "column `{}` is an HLL sketch and cannot be grouped on",
                c.name
            )));
        }
    })
}

/// Segment-local key code of one dimension value (0 = null for strings).
#[inline]
fn push_codes(codes: &DimCodes, i: usize, out: &mut Vec<u64>) {
    match codes {
        DimCodes::Ids(ids) => out.push(ids[i] as u64),
        DimCodes::Long(v, nulls) => {
            if nulls.as_ref().is_some_and(|n| n[i]) {
                out.push(u64::MAX);
                out.push(0);
            } else {
                out.push(0);
                out.push(v[i] as u64);
            }
        }
        DimCodes::Double(v, nulls) => {
            if nulls.as_ref().is_some_and(|n| n[i]) {
                out.push(u64::MAX);
                out.push(0);
            } else {
                out.push(0);
                let x = if v[i] == 0.0 { 0.0 } else { v[i] };
                out.push(x.to_bits());
            }
        }
        DimCodes::Null => out.push(0),
        DimCodes::Multi(..) => out.push(0),
    }
}

/// Aggregate the matching rows of one segment task into groups.
pub fn aggregate_task(
    task: &SegmentTask,
    filter: Option<&Filter>,
    grouping: &Grouping<'_>,
    ctx: &ExecContext,
) -> Result<Groups> {
    let seg = &task.segment;
    let rows = task_rows(task, filter)?;
    let mut out: Groups = Groups::default();
    if rows.is_empty() {
        return Ok(out);
    }
    let time_col = seg
        .column(crate::schema::TIME_COLUMN)
        .ok_or_else(|| Error::internal("segment without __time"))?;
    let dim_cols: Vec<Option<&ColumnMeta>> = grouping.dims.iter().map(|d| seg.column(d)).collect();
    let dicts: Vec<DimDict> = dim_cols
        .iter()
        .map(|c| dim_dict(seg, *c))
        .collect::<Result<_>>()?;
    let agg_ctx: Vec<SegmentAggContext> = grouping
        .aggs
        .iter()
        .map(|a| a.segment_context(seg))
        .collect::<Result<_>>()?;
    // Counts without a filter on this segment (say SQL's non-NULL counts of columns that have
    // no NULLs here) are all equal: the first is computed, the others copy it at the end.
    let twin_of: Vec<Option<usize>> = {
        let mut first_count = None;
        grouping
            .aggs
            .iter()
            .zip(&agg_ctx)
            .enumerate()
            .map(|(ai, (a, c))| {
                if !matches!(a.kind, AggKind::Count) || c.filter_rows.is_some() {
                    return None;
                }
                match first_count {
                    None => {
                        first_count = Some(ai);
                        None
                    }
                    Some(f) => Some(f),
                }
            })
            .collect()
    };
    let multi_dims: Vec<usize> = dim_cols
        .iter()
        .enumerate()
        .filter(|(_, c)| c.is_some_and(|c| c.column_type == ColumnType::MultiString))
        .map(|(i, _)| i)
        .collect();

    // Local groups keyed by segment-local codes: [bucket, codes...].
    let mut local: FastMap<Box<[u64]>, usize> = FastMap::default();
    let mut local_keys: Vec<Box<[u64]>> = Vec::new();
    let mut columns: Vec<StateColumn> = grouping.aggs.iter().map(|a| a.new_column()).collect();
    let mut key: Vec<u64> = Vec::with_capacity(1 + 2 * grouping.dims.len());
    let mut bucket_cache: Option<(i64, i64, i64)> = None; // (start, next, bucket)
    let mut last_key: Vec<u64> = Vec::new();
    let mut last_group = usize::MAX;
    // Per block: the selected rows (block-relative) and their group, one entry per row and
    // multi-value combination.
    let mut sel: Vec<u32> = Vec::with_capacity(BLOCK_ROWS);
    let mut gidx: Vec<u32> = Vec::with_capacity(BLOCK_ROWS);
    let mut runs: Vec<Run> = Vec::new();
    let mut id_pieces: Vec<Run> = Vec::new();
    let mut ranges: Vec<(u32, u32)> = Vec::new();

    // Grouped by at most one single-value string dimension, rows map to groups through a
    // dense table per time bucket indexed by dictionary id, a run of rows of one id and
    // bucket at a time; `__time` is decoded only if the block spans buckets or an
    // aggregator needs it.
    let needs_times = grouping
        .aggs
        .iter()
        .any(|a| matches!(a.kind, AggKind::LongPair(_) | AggKind::DoublePair(_)));
    let dense_ok = multi_dims.is_empty()
        && dim_cols.len() <= 1
        && dim_cols
            .iter()
            .all(|c| c.is_none_or(|c| c.column_type == ColumnType::String));
    let dense_card = dim_cols
        .first()
        .copied()
        .flatten()
        .map_or(0, |c| c.cardinality as usize);
    let mut dense_tables: FastMap<i64, Vec<u32>> = FastMap::default();
    // Aggregators that fold runs straight from a long column's frames.
    let frames_fields: Vec<Option<&ColumnMeta>> = grouping
        .aggs
        .iter()
        .map(|a| a.frames_field(seg))
        .collect::<Result<_>>()?;
    let time_blocks = time_col.stream(StreamRole::Long).map(|s| &s.blocks);

    for b in task.blocks.clone().unwrap_or(0..seg.num_blocks()) {
        let base = (b * BLOCK_ROWS) as u32;
        let n = seg.block_rows(b) as u32;
        let selected = rows.range_cardinality(base..base + n);
        if selected == 0 {
            continue;
        }
        let full = selected == u64::from(n);
        ctx.check()?;
        let upto = if full {
            Need::ALL
        } else {
            block_need(&rows, base, n)
        };
        let single_bucket = time_blocks.and_then(|blocks| blocks.get(b)).and_then(|m| {
            let (lo, hi) = (m.min as i64, m.max as i64);
            let s = grouping.granularity.bucket_start(lo);
            (hi < grouping.granularity.next(s)).then_some(s)
        });
        let times = if single_bucket.is_some() && !needs_times {
            Values::from(Vec::new())
        } else {
            seg.read_longs_upto(time_col, StreamRole::Long, b, upto)?
        };
        sel.clear();
        gidx.clear();
        if dense_ok {
            // The grouped ids: a frames block yields its runs frame by frame (a sorted
            // dimension's frames hold them without unpacking); other codecs decode the block.
            let id_col = dim_cols.first().copied().flatten();
            let id_frames = match id_col {
                Some(c) => seg.frame_block(c, StreamRole::Ids, b)?,
                None => None,
            };
            let ids = match (id_col, &id_frames) {
                (Some(c), None) => Some(seg.read_u32s_upto(c, StreamRole::Ids, b, upto)?),
                _ => None,
            };
            // Selected rows of one id come in runs when the segment is sorted by the
            // grouped dimension (one run per range of selected rows without one): first the
            // runs of one id (`group` holding the id), ...
            selected_ranges(&rows, base, n, full, &mut ranges);
            id_pieces.clear();
            for &(start, end) in &ranges {
                match (ids.as_ref(), &id_frames) {
                    (Some(v), _) => {
                        let v = v
                            .get(start as usize..end as usize)
                            .ok_or_else(|| Error::internal("selected rows past the block's ids"))?;
                        id_runs(v, start, &mut id_pieces, Ok)?
                    }
                    (None, Some(fb)) => {
                        let corrupt = |id: i64| {
                            Error::corruption(
                                seg.path(),
                                format!(
                                    "column `{}` block {b} dictionary id",
                                    id_col.map_or("", |c| c.name.as_str())
                                ),
                                format!("at most {dense_card}"),
                                id,
                            )
                        };
                        frame_id_runs(
                            fb,
                            start,
                            end,
                            dense_card as u32,
                            &mut id_pieces,
                            corrupt,
                            Ok,
                        )?
                    }
                    (None, None) => push_run(&mut id_pieces, start, end, 0),
                }
            }
            // ... then cut where the time bucket changes (blocks of one bucket need no
            // times), each piece folded as a slice into the group of its bucket and id.
            runs.clear();
            for piece in &id_pieces {
                let id = piece.group as usize;
                let mut at = piece.start;
                while at < piece.end {
                    let (bucket, until) = match single_bucket {
                        Some(bucket) => (bucket, piece.end),
                        None => {
                            let t = times.get(at as usize).copied().ok_or_else(|| {
                                Error::internal("selected rows past the block's times")
                            })?;
                            let (s, e) = match bucket_cache {
                                Some((s, e, _)) if t >= s && t < e => (s, e),
                                _ => {
                                    let s = grouping.granularity.bucket_start(t);
                                    let e = grouping.granularity.next(s);
                                    bucket_cache = Some((s, e, s));
                                    (s, e)
                                }
                            };
                            let mut until = at + 1;
                            while until < piece.end
                                && times.get(until as usize).is_some_and(|&t| t >= s && t < e)
                            {
                                until += 1;
                            }
                            (s, until)
                        }
                    };
                    // A table per bucket while they fit the budget (fine granularities over
                    // long segments have many buckets), then the keyed groups directly.
                    if !dense_tables.contains_key(&bucket)
                        && (dense_tables.len() + 1) * (dense_card + 1) <= DENSE_TABLES_MAX
                    {
                        dense_tables.insert(bucket, vec![u32::MAX; dense_card + 1]);
                    }
                    let has_dim = !dim_cols.is_empty();
                    let g = match dense_tables.get_mut(&bucket) {
                        Some(table) => DenseGroups {
                            table,
                            bucket,
                            has_dim,
                            key: &mut key,
                            local: &mut local,
                            local_keys: &mut local_keys,
                        }
                        .group(id, &mut columns, grouping)?,
                        None => {
                            key.clear();
                            key.push(bucket as u64);
                            if has_dim {
                                key.push(id as u64);
                            }
                            group_of(&key, &mut local, &mut local_keys, &mut columns, grouping)?
                                as u32
                        }
                    };
                    push_run(&mut runs, at, until, g);
                    at = until;
                }
            }
            // Short runs cost more as slices than row by row.
            let by_runs = runs.len() * 4 <= selected as usize;
            for (ai, a) in grouping.aggs.iter().enumerate() {
                if twin_of[ai].is_some() {
                    continue;
                }
                let filter_rows = agg_ctx[ai].filter_rows.as_ref();
                if by_runs
                    && filter_rows.is_none()
                    && let Some(c) = frames_fields[ai]
                    && let Some(fb) = seg.frame_block(c, StreamRole::Long, b)?
                    && a.update_runs_frames(&mut columns[ai], &fb, &runs)
                {
                    continue;
                }
                let input = a.block_input(seg, b, &times, &agg_ctx[ai], upto)?;
                if by_runs
                    && filter_rows.is_none()
                    && a.update_runs(&mut columns[ai], &input, &runs)
                {
                    continue;
                }
                if sel.is_empty() {
                    for r in &runs {
                        sel.extend(r.start..r.end);
                        gidx.extend(std::iter::repeat_n(r.group, (r.end - r.start) as usize));
                    }
                }
                a.update_batch(
                    &mut columns[ai],
                    &input,
                    &sel,
                    &gidx,
                    filter_rows.map(|f| (f, base)),
                )?;
            }
            continue;
        }
        let times = if times.is_empty() {
            seg.read_longs_upto(time_col, StreamRole::Long, b, upto)?
        } else {
            times
        };
        let codes: Vec<DimCodes> = dim_cols
            .iter()
            .map(|c| dim_codes(seg, *c, b, upto))
            .collect::<Result<_>>()?;
        for i in selected_rows(&rows, base, n, full) {
            let t = times[i];
            let bucket = match bucket_cache {
                Some((s, e, bk)) if t >= s && t < e => bk,
                _ => {
                    let s = grouping.granularity.bucket_start(t);
                    let e = grouping.granularity.next(s);
                    bucket_cache = Some((s, e, s));
                    s
                }
            };
            // Expand multi-value dimensions into one key per value combination.
            let combos: Vec<Vec<(usize, u64)>> = if multi_dims.is_empty() {
                Vec::new()
            } else {
                let mut combos: Vec<Vec<(usize, u64)>> = vec![Vec::new()];
                for &d in &multi_dims {
                    if let DimCodes::Multi(offsets, ids) = &codes[d] {
                        let vals = &ids[offsets[i] as usize..offsets[i + 1] as usize];
                        if vals.is_empty() {
                            for c in &mut combos {
                                c.push((d, 0));
                            }
                        } else {
                            let mut next = Vec::with_capacity(combos.len() * vals.len());
                            for c in &combos {
                                for &v in vals {
                                    let mut c2 = c.clone();
                                    c2.push((d, v as u64));
                                    next.push(c2);
                                }
                            }
                            combos = next;
                        }
                    }
                }
                combos
            };
            let n_combos = combos.len().max(1);
            for ci in 0..n_combos {
                key.clear();
                key.push(bucket as u64);
                for (d, c) in codes.iter().enumerate() {
                    if let DimCodes::Multi(..) = c {
                        let v = combos
                            .get(ci)
                            .map(Vec::as_slice)
                            .unwrap_or_default()
                            .iter()
                            .find(|(x, _)| *x == d)
                            .map(|(_, v)| *v)
                            .unwrap_or(0);
                        key.push(v);
                    } else {
                        push_codes(c, i, &mut key);
                    }
                }
                // Consecutive rows usually fall in the same group (rows are sorted): skip the
                // hash lookup then.
                let g = if last_group != usize::MAX && key == last_key {
                    last_group
                } else {
                    let g = group_of(&key, &mut local, &mut local_keys, &mut columns, grouping)?;
                    last_key.clone_from(&key);
                    last_group = g;
                    g
                };
                sel.push(i as u32);
                gidx.push(g as u32);
            }
        }
        // Aggregate the block column by column.
        for (ai, a) in grouping.aggs.iter().enumerate() {
            if twin_of[ai].is_some() {
                continue;
            }
            let input = a.block_input(seg, b, &times, &agg_ctx[ai], upto)?;
            a.update_batch(
                &mut columns[ai],
                &input,
                &sel,
                &gidx,
                agg_ctx[ai].filter_rows.as_ref().map(|f| (f, base)),
            )?;
        }
    }
    for (ai, twin) in twin_of.iter().enumerate() {
        if let Some(f) = *twin
            && let (StateColumn::Long(src), StateColumn::Long(_)) = (&columns[f], &columns[ai])
        {
            columns[ai] = StateColumn::Long(src.clone());
        }
    }
    // TopN keeps each bucket's best groups only: chosen here, before keys are built.
    let kept: Option<Vec<usize>> = grouping.top.and_then(|top| {
        if local_keys.len() <= top.k {
            return None;
        }
        let values = grouping
            .aggs
            .get(top.agg)?
            .column_nums(columns.get(top.agg)?)?;
        let buckets: Vec<u64> = local_keys.iter().map(|k| k[0]).collect();
        Some(top.keep(&buckets, &values))
    });
    let mut states: Vec<Vec<AggState>> = (0..local_keys.len())
        .map(|_| Vec::with_capacity(grouping.aggs.len()))
        .collect();
    for (a, col) in grouping.aggs.iter().zip(columns) {
        let col = match &kept {
            Some(kept) => a.column_select(col, kept),
            None => col,
        };
        for (g, st) in a.into_states(col).into_iter().enumerate() {
            states[g].push(st);
        }
    }
    let local_keys: Vec<Box<[u64]>> = match &kept {
        Some(kept) => take_at(local_keys, kept),
        None => local_keys,
    };
    out.reserve(local_keys.len());

    // Translate local codes into values.
    for (k, st) in local_keys.into_iter().zip(states) {
        let bucket = k[0] as i64;
        let mut dims = Vec::with_capacity(grouping.dims.len());
        let mut pos = 1usize;
        for (d, c) in dim_cols.iter().enumerate() {
            let ct = c.map(|c| c.column_type);
            match ct {
                Some(ColumnType::Long | ColumnType::LongPair) => {
                    dims.push(if k[pos] == u64::MAX {
                        DimValue::Null
                    } else {
                        DimValue::Long(k[pos + 1] as i64)
                    });
                    pos += 2;
                }
                Some(ColumnType::Double | ColumnType::DoublePair) => {
                    dims.push(if k[pos] == u64::MAX {
                        DimValue::Null
                    } else {
                        DimValue::Double(k[pos + 1])
                    });
                    pos += 2;
                }
                _ => {
                    let id = k[pos] as usize;
                    dims.push(match (&dicts[d], id) {
                        (_, 0) => DimValue::Null,
                        (DimDict::Strings(v), id) => v
                            .get(id)
                            .cloned()
                            .map(DimValue::Str)
                            .unwrap_or(DimValue::Null),
                        (DimDict::None, _) => DimValue::Null,
                    });
                    pos += 1;
                }
            }
        }
        let gk = GroupKey { bucket, dims };
        merge_into(&mut out, gk, st, grouping.aggs)?;
    }
    Ok(out)
}

/// Append rows `start..end` in `group` to `runs`, extending the last run if it ends at `start`
/// in the same group.
#[inline]
fn push_run(runs: &mut Vec<Run>, start: u32, end: u32, group: u32) {
    match runs.last_mut() {
        Some(last) if last.end == start && last.group == group => last.end = end,
        _ => runs.push(Run { start, end, group }),
    }
}

/// Split `ids`, the dictionary ids of the block rows from `start` on, into runs of equal ids,
/// each with the group `group_of(id)` gives, appended to `runs`.
#[inline]
fn id_runs(
    ids: &[u32],
    start: u32,
    runs: &mut Vec<Run>,
    mut group_of: impl FnMut(u32) -> Result<u32>,
) -> Result<()> {
    let mut i = 0;
    while i < ids.len() {
        let (first, id) = (i, ids[i]);
        i += 1;
        // Eight at a time while the whole chunk continues the run (runs are long in segments
        // sorted by this dimension).
        while let Some(chunk) = ids.get(i..i + 8) {
            if chunk.iter().fold(0, |acc, &x| acc | (x ^ id)) != 0 {
                break;
            }
            i += 8;
        }
        while i < ids.len() && ids[i] == id {
            i += 1;
        }
        push_run(runs, start + first as u32, start + i as u32, group_of(id)?);
    }
    Ok(())
}

/// [`id_runs`] for block rows `start..end` of an ids frames block, a frame at a time: frames
/// of runs (a sorted dimension's) are split at their exceptions without unpacking. Ids above
/// `cardinality` are a corruption error.
fn frame_id_runs(
    frames: &FrameBlock<'_>,
    start: u32,
    end: u32,
    cardinality: u32,
    runs: &mut Vec<Run>,
    corrupt: impl Fn(i64) -> Error,
    mut group_of: impl FnMut(u32) -> Result<u32>,
) -> Result<()> {
    let bad = |id: i64| Err(corrupt(id));
    let mut buf = [0u32; FRAME];
    let end = (end as usize).min(frames.len());
    let mut s = start as usize;
    while s < end {
        let f = s / FRAME;
        let at = f * FRAME;
        let len = frames.frame_len(f);
        let (lo, hi) = (s - at, end.min(at + len) - at);
        // Pieces `[a, b)` of the frame holding one id, clipped to `lo..hi`.
        let mut piece = |a: usize, b: usize, id: i64| -> Result<()> {
            let (a, b) = (a.max(lo), b.min(hi));
            if a >= b {
                return Ok(());
            }
            if !(0..=i64::from(cardinality)).contains(&id) {
                return bad(id);
            }
            push_run(runs, (at + a) as u32, (at + b) as u32, group_of(id as u32)?);
            Ok(())
        };
        match frames.shape(f) {
            FrameShape::Steps { base, exceptions } => {
                let (mut from, mut id) = (0usize, base);
                for &(pos, step) in exceptions {
                    piece(from, pos as usize, id)?;
                    (from, id) = (pos as usize, id.wrapping_add(step));
                }
                piece(from, len, id)?;
            }
            FrameShape::Constant { base, exceptions } => {
                let mut from = 0usize;
                for &(pos, v) in exceptions {
                    piece(from, pos as usize, base)?;
                    piece(pos as usize, pos as usize + 1, base.wrapping_add(v))?;
                    from = pos as usize + 1;
                }
                piece(from, len, base)?;
            }
            FrameShape::Packed => {
                let ids = &frames.decode_frame(f, &mut buf)[lo..hi];
                if let Some(&id) = ids.iter().find(|&&id| id > cardinality) {
                    return bad(i64::from(id));
                }
                id_runs(ids, (at + lo) as u32, runs, &mut group_of)?;
            }
        }
        s = at + hi;
    }
    Ok(())
}

/// Groups of one time bucket by the dictionary id of the one grouped string dimension (or of
/// no dimension: id 0), through a dense table of local group numbers (`u32::MAX` = not seen).
struct DenseGroups<'a> {
    table: &'a mut Vec<u32>,
    bucket: i64,
    has_dim: bool,
    key: &'a mut Vec<u64>,
    local: &'a mut FastMap<Box<[u64]>, usize>,
    local_keys: &'a mut Vec<Box<[u64]>>,
}

impl DenseGroups<'_> {
    /// The local group of dictionary id `id`, created if new.
    #[inline]
    fn group(
        &mut self,
        id: usize,
        columns: &mut [StateColumn],
        grouping: &Grouping<'_>,
    ) -> Result<u32> {
        let g = self.table.get(id).copied().unwrap_or(u32::MAX);
        if g != u32::MAX {
            return Ok(g);
        }
        self.key.clear();
        self.key.push(self.bucket as u64);
        if self.has_dim {
            self.key.push(id as u64);
        }
        let g = group_of(self.key, self.local, self.local_keys, columns, grouping)? as u32;
        if let Some(slot) = self.table.get_mut(id) {
            *slot = g;
        }
        Ok(g)
    }
}

/// The local group of a key (`[bucket, codes...]`), created with initial states if new.
fn group_of(
    key: &[u64],
    local: &mut FastMap<Box<[u64]>, usize>,
    local_keys: &mut Vec<Box<[u64]>>,
    columns: &mut [StateColumn],
    grouping: &Grouping<'_>,
) -> Result<usize> {
    if let Some(&g) = local.get(key) {
        return Ok(g);
    }
    if local.len() as u64 >= grouping.max_groups {
        return Err(Error::ResourcesExhausted(format!(
            "query produced more than {} groups (context maxGroupByRows)",
            grouping.max_groups
        )));
    }
    let g = local_keys.len();
    let k: Box<[u64]> = key.into();
    local.insert(k.clone(), g);
    local_keys.push(k);
    for (a, col) in grouping.aggs.iter().zip(columns.iter_mut()) {
        a.push_group(col);
    }
    Ok(g)
}

fn merge_into(
    out: &mut Groups,
    key: GroupKey,
    st: Vec<AggState>,
    aggs: &[AggregatorSpec],
) -> Result<()> {
    match out.get_mut(&key) {
        Some(existing) => {
            for ((a, e), s) in aggs.iter().zip(existing.iter_mut()).zip(st) {
                a.merge(e, s)?;
            }
        }
        None => {
            out.insert(key, st);
        }
    }
    Ok(())
}

/// Block-relative indexes of the selected rows of block `base..base + n`: a fully selected
/// block counts `0..n` without walking the bitmap.
enum SelectedRows<'a> {
    All(std::ops::Range<usize>),
    Some(roaring::bitmap::Iter<'a>, u32),
}

impl Iterator for SelectedRows<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        match self {
            SelectedRows::All(r) => r.next(),
            SelectedRows::Some(it, base) => it.next().map(|r| (r - *base) as usize),
        }
    }
}

fn selected_rows(rows: &RoaringBitmap, base: u32, n: u32, full: bool) -> SelectedRows<'_> {
    if full {
        SelectedRows::All(0..n as usize)
    } else {
        SelectedRows::Some(rows.range(base..base + n), base)
    }
}

/// Aggregate every task in parallel and merge the partial groups.
pub fn aggregate_all(
    tasks: &[SegmentTask],
    filter: Option<&Filter>,
    grouping: &Grouping<'_>,
    ctx: &ExecContext,
) -> Result<Groups> {
    if newest_first::applies(grouping) {
        return newest_first::aggregate(tasks, filter, grouping, ctx);
    }
    let tasks = split_for_parallelism(tasks);
    let partials = parallel_map(&tasks, |t| {
        let groups = aggregate_task(t, filter, grouping, ctx)?;
        Ok(match grouping.top {
            Some(top) => top.trim(groups, grouping.aggs),
            None => groups,
        })
    })?;
    let mut out = Groups::default();
    merge_partials(&mut out, partials, grouping, ctx)?;
    Ok(out)
}

/// Merge partial groups into `out`; fails once there are more groups than the query allows.
pub(crate) fn merge_partials(
    out: &mut Groups,
    partials: Vec<Groups>,
    grouping: &Grouping<'_>,
    ctx: &ExecContext,
) -> Result<()> {
    for p in partials {
        ctx.check()?;
        if out.is_empty() {
            *out = p;
        } else {
            for (k, st) in p {
                merge_into(out, k, st, grouping.aggs)?;
            }
        }
        if out.len() as u64 > grouping.max_groups {
            return Err(Error::ResourcesExhausted(format!(
                "query produced more than {} groups (context maxGroupByRows)",
                grouping.max_groups
            )));
        }
    }
    Ok(())
}

/// Finalize a group's aggregates into a JSON object (name → value).
pub fn finalize_row(aggs: &[AggregatorSpec], st: &[AggState]) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::with_capacity(aggs.len());
    finalize_into(aggs, st, &mut m);
    m
}

/// Add the finalized values of a group's states to `row`.
pub fn finalize_into(
    aggs: &[AggregatorSpec],
    st: &[AggState],
    row: &mut serde_json::Map<String, Value>,
) {
    for (a, s) in aggs.iter().zip(st) {
        row.insert(a.name.clone(), a.finalize(s));
    }
}

/// A JSON object of the given entries, built in place (`json!` would copy every value through
/// a serializer: a deep copy of whole result rows).
pub fn json_object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in entries {
        m.insert(k.to_owned(), v);
    }
    Value::Object(m)
}

/// A granularity's rendering of bucket timestamps, remembering the last one (results come
/// bucket by bucket).
#[derive(Debug, Default)]
pub struct TimestampText {
    last: Option<(i64, Value)>,
}

impl TimestampText {
    /// The JSON string of timestamp `t` as `granularity` renders it.
    pub fn get(&mut self, granularity: &QueryGranularity, t: i64) -> Value {
        match &self.last {
            Some((at, v)) if *at == t => v.clone(),
            _ => {
                let v = Value::String(granularity.format(t));
                self.last = Some((t, v.clone()));
                v
            }
        }
    }
}
