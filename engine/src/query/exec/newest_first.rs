//! "Last value" queries read segments newest first and skip those that cannot change the answer.
//!
//! A dashboard's "latest reading per device" is a groupBy (or timeseries) bucketed `all`, by at
//! most one string dimension, whose aggregators are only `longLast`/`doubleLast` and
//! `longMax(__time)`. Once every group has a last value at time `t`, a segment whose rows are
//! all older than the oldest such `t` and whose dimension values are all known groups adds
//! nothing: its rows lose every last-value comparison and do not raise any `max(__time)`.
//! Segments are therefore aggregated newest first, a core's worth at a time, and each remaining
//! segment is tested (its time range from the directory, its values from the dictionary) before
//! it is read. The answer is the one the plain parallel merge gives.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::query::aggregator::{AggKind, AggState};
use crate::query::exec::{
    DimValue, ExecContext, Grouping, Groups, SegmentTask, aggregate_task, merge_partials,
    parallel_map, split_for_parallelism,
};
use crate::query::filter::Filter;
use crate::schema::{MetricKind, TIME_COLUMN};
use crate::segment::format::ColumnType;

/// Whether `grouping` is a last-value query this strategy answers.
pub fn applies(grouping: &Grouping<'_>) -> bool {
    grouping.granularity.is_all()
        && grouping.dims.len() <= 1
        && !grouping.aggs.is_empty()
        && grouping.aggs.iter().all(|a| {
            a.filter.is_none()
                && match &a.kind {
                    AggKind::LongPair(k) | AggKind::DoublePair(k) => {
                        matches!(k, MetricKind::LongLast | MetricKind::DoubleLast)
                    }
                    AggKind::Long(MetricKind::LongMax) => a.field.as_deref() == Some(TIME_COLUMN),
                    _ => false,
                }
        })
}

/// The latest time a task can hold: its segment's newest row, clipped to its intervals.
fn newest_time(t: &SegmentTask) -> i64 {
    let d = t.segment.directory();
    let clip = t
        .intervals
        .iter()
        .map(|i| i.end.saturating_sub(1))
        .max()
        .unwrap_or(i64::MIN);
    d.max_time.min(clip)
}

/// The oldest of the groups' last times (`None` when some group has no value yet).
fn oldest_last_time(groups: &Groups) -> Option<i64> {
    let mut oldest = i64::MAX;
    for states in groups.values() {
        for s in states {
            let t = match s {
                AggState::LongPair(Some((t, _))) | AggState::DoublePair(Some((t, _))) => *t,
                AggState::Long(Some(t)) => *t,
                _ => return None,
            };
            oldest = oldest.min(t);
        }
    }
    Some(oldest)
}

/// Whether every dimension value of `t`'s segment is a known group.
fn values_known(
    t: &SegmentTask,
    grouping: &Grouping<'_>,
    known: &HashSet<DimValue>,
) -> Result<bool> {
    let Some(dim) = grouping.dims.first() else {
        return Ok(true);
    };
    let seg = &t.segment;
    let Some(c) = seg.column(dim) else {
        // Absent column: every row groups under null.
        return Ok(known.contains(&DimValue::Null));
    };
    if c.column_type != ColumnType::String {
        return Ok(false);
    }
    if c.null_count > 0 && !known.contains(&DimValue::Null) {
        return Ok(false);
    }
    let dict = seg.dictionary(c)?;
    for i in 0..dict.len() {
        let v = dict.get(i).ok_or_else(|| {
            Error::corruption(
                seg.path(),
                format!("column `{dim}` dictionary entry {i}"),
                "UTF-8",
                "invalid",
            )
        })?;
        if !known.contains(&DimValue::Str(v.into())) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Aggregate `tasks` newest first, skipping the segments that cannot change the answer.
pub fn aggregate(
    tasks: &[SegmentTask],
    filter: Option<&Filter>,
    grouping: &Grouping<'_>,
    ctx: &ExecContext,
) -> Result<Groups> {
    let threads = crate::query::exec::query_threads();
    let mut order: Vec<(i64, &SegmentTask)> = tasks.iter().map(|t| (newest_time(t), t)).collect();
    order.sort_by_key(|o| std::cmp::Reverse(o.0));
    let mut out = Groups::default();
    let mut next = 0;
    while next < order.len() {
        ctx.check()?;
        // Next batch: up to one segment per core among those that may still matter.
        let oldest = oldest_last_time(&out);
        let known: HashSet<DimValue> = match oldest {
            Some(_) if !out.is_empty() => {
                out.keys().filter_map(|k| k.dims.first().cloned()).collect()
            }
            _ => HashSet::new(),
        };
        let mut batch: Vec<SegmentTask> = Vec::with_capacity(threads);
        while next < order.len() && batch.len() < threads {
            let (newest, t) = order[next];
            next += 1;
            let skip = !out.is_empty()
                && oldest.is_some_and(|o| newest < o)
                && values_known(t, grouping, &known)?;
            if !skip {
                batch.push(t.clone());
            }
        }
        if batch.is_empty() {
            continue;
        }
        let pieces = split_for_parallelism(&batch);
        let partials = parallel_map(&pieces, |p| aggregate_task(p, filter, grouping, ctx))?;
        merge_partials(&mut out, partials, grouping, ctx)?;
    }
    Ok(out)
}
