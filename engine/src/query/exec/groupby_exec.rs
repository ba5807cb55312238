//! `GroupByExec`: aggregates per combination of dimension values, with having, ordering,
//! limit and subtotals.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::query::aggregator::{AggKind, AggState, AggregatorSpec};
use crate::query::exec::{
    DimValue, ExecContext, GroupKey, Grouping, LocalTop, SegmentTask, TimestampText, aggregate_all,
    finalize_into, json_object, parallel_map,
};
use crate::query::filter::{Filter, Num};
use crate::query::granularity::QueryGranularity;
use crate::query::post_aggregator::PostAggregator;
use crate::query::spec::{DimensionSpec, Having, LimitSpec, OrderByColumn};
use crate::schema::MetricKind;

/// The groupBy operator.
#[derive(Debug)]
pub struct GroupByExec<'a> {
    /// Filter.
    pub filter: Option<&'a Filter>,
    /// Bucketing.
    pub granularity: &'a QueryGranularity,
    /// Grouping dimensions.
    pub dimensions: &'a [DimensionSpec],
    /// Aggregators.
    pub aggregations: &'a [AggregatorSpec],
    /// Post-aggregators.
    pub post_aggregations: &'a [PostAggregator],
    /// Having.
    pub having: Option<&'a Having>,
    /// Ordering and limit.
    pub limit_spec: &'a LimitSpec,
    /// Subtotal sets (output names).
    pub subtotals: Option<&'a [Vec<String>]>,
    /// Max groups.
    pub max_groups: u64,
    /// Timestamp reported for granularity `all`.
    pub all_timestamp: i64,
    /// Order by the limitSpec columns before time (context `sortByDimsFirst`).
    pub sort_by_dims_first: bool,
}

/// Fewest groups per part when rows are built in parallel.
const ROWS_PER_PART: usize = 4096;

/// A groupBy row as values: time, dimensions' output values, aggregators' finalized values.
pub type GroupRow = (i64, Vec<Value>, Vec<Value>);

/// A group as values, with its key's dimension values for the natural order.
struct ValueRow {
    bucket: i64,
    key: Vec<DimValue>,
    dims: Vec<Value>,
    aggs: Vec<Value>,
}

/// Where a limitSpec column's values are: its name (in an event), else its aggregator or
/// dimension position (an aggregator replaces a dimension of the same name, as in an event).
struct ColumnAt<'a> {
    name: &'a str,
    agg: Option<usize>,
    dim: Option<usize>,
}

/// A group's output row, as the limitSpec orders it.
trait GroupedRow: Send {
    /// Time bucket and key dimension values (Druid's natural order).
    fn order_key(&self) -> (i64, &[DimValue]);
    /// The value of a limitSpec column.
    fn value(&self, c: &ColumnAt<'_>) -> Option<&Value>;
}

impl GroupedRow for ValueRow {
    fn order_key(&self) -> (i64, &[DimValue]) {
        (self.bucket, &self.key)
    }

    fn value(&self, c: &ColumnAt<'_>) -> Option<&Value> {
        match c.agg {
            Some(j) => self.aggs.get(j),
            None => c.dim.and_then(|i| self.dims.get(i)),
        }
    }
}

impl GroupedRow for OutRow {
    fn order_key(&self) -> (i64, &[DimValue]) {
        (self.bucket, &self.dims)
    }

    fn value(&self, c: &ColumnAt<'_>) -> Option<&Value> {
        self.event.get(c.name)
    }
}

/// Druid's natural order of groups: by time, then by dimension values.
fn natural_order(a: (i64, &[DimValue]), b: (i64, &[DimValue])) -> Ordering {
    a.0.cmp(&b.0).then_with(|| {
        for (x, y) in a.1.iter().zip(b.1) {
            let o = x.cmp_druid(y);
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    })
}

struct OutRow {
    bucket: i64,
    dims: Vec<DimValue>,
    event: Map<String, Value>,
}

/// Order of two output values under one limitSpec column (direction and null placement
/// included).
fn cmp_column(a: Option<&Value>, b: Option<&Value>, c: &OrderByColumn) -> Ordering {
    let a = a.unwrap_or(&Value::Null);
    let b = b.unwrap_or(&Value::Null);
    // With an explicit null order (SQL's), an empty string is a null, as SQL reads it.
    let null = |v: &Value| match v {
        Value::Null => true,
        Value::String(s) => c.nulls_first.is_some() && s.is_empty(),
        _ => false,
    };
    match (null(a), null(b)) {
        (true, true) => Ordering::Equal,
        (true, false) if c.nulls_come_first() => Ordering::Less,
        (true, false) => Ordering::Greater,
        (false, true) if c.nulls_come_first() => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => {
            let o = cmp_json(a, b, c.numeric);
            if c.descending { o.reverse() } else { o }
        }
    }
}

fn cmp_json(a: &Value, b: &Value, numeric: bool) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => x
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&y.as_f64().unwrap_or(0.0)),
        },
        (Value::String(x), Value::String(y)) if numeric => match (Num::parse(x), Num::parse(y)) {
            (Some(p), Some(q)) => p.cmp_num(q),
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (None, None) => x.cmp(y),
        },
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Number(_), Value::String(_)) => Ordering::Less,
        (Value::String(_), Value::Number(_)) => Ordering::Greater,
        _ => a.to_string().cmp(&b.to_string()),
    }
}

impl GroupByExec<'_> {
    /// Name shown by EXPLAIN.
    pub fn name(&self) -> &'static str {
        "GroupByExec"
    }

    /// The exact per-segment cut of a limited groupBy ordered first by its only aggregator, a
    /// max descending or a min ascending (granularity `all`, no having, no subtotals): each
    /// segment keeps the groups whose value is among its `limit + offset` best, ties and
    /// groups without a value included.
    ///
    /// A group of the answer reaches its extreme in some segment, where fewer than
    /// `limit + offset` groups beat it, so that segment keeps it and its value is exact; any
    /// other group's merged value is no better than its true one, so it cannot displace one of
    /// the answer. With a second aggregator a dropped partial would lose part of its value, so
    /// there is no cut then. Returns the cut and whether nulls come first in its order.
    fn local_top(&self) -> Option<(LocalTop, bool)> {
        let ls = self.limit_spec;
        let n = ls.limit?.checked_add(ls.offset)?;
        if n == 0
            || self.having.is_some()
            || self.subtotals.is_some()
            || !self.granularity.is_all()
            || self.aggregations.len() != 1
        {
            return None;
        }
        let first = ls.columns.first()?;
        let agg = &self.aggregations[0];
        if first.dimension != agg.name
            || self.dimensions.iter().any(|d| d.output_name == agg.name)
            || self.post_aggregations.iter().any(|p| p.name() == agg.name)
        {
            return None;
        }
        let kind = match &agg.kind {
            AggKind::Long(k) | AggKind::Double(k) => *k,
            _ => return None,
        };
        let max = matches!(kind, MetricKind::LongMax | MetricKind::DoubleMax);
        let min = matches!(kind, MetricKind::LongMin | MetricKind::DoubleMin);
        if !(max && first.descending || min && !first.descending) {
            return None;
        }
        Some((
            LocalTop {
                agg: 0,
                k: usize::try_from(n).ok()?,
                inverted: min,
                exact: true,
            },
            first.nulls_come_first(),
        ))
    }

    /// Aggregate over the tasks grouped by `dims`, each group made a row by `make` on all
    /// cores (for a wide result, 100 k groups of 20 columns, that is as much work as the
    /// aggregation), in Druid's natural order.
    fn grouped<R: GroupedRow>(
        &self,
        tasks: &[SegmentTask],
        ctx: &ExecContext,
        dims: &[&DimensionSpec],
        top: Option<LocalTop>,
        make: impl Fn(&GroupKey, &[AggState]) -> Option<R> + Sync,
    ) -> Result<Vec<R>> {
        let names: Vec<String> = dims.iter().map(|d| d.dimension.clone()).collect();
        let grouping = Grouping {
            granularity: self.granularity,
            dims: &names,
            aggs: self.aggregations,
            max_groups: self.max_groups,
            top,
        };
        let groups: Vec<_> = aggregate_all(tasks, self.filter, &grouping, ctx)?
            .into_iter()
            .collect();
        let part = groups.len().div_ceil(8).max(ROWS_PER_PART);
        let parts: Vec<_> = groups.chunks(part).collect();
        let built = parallel_map(&parts, |part| {
            ctx.check()?;
            Ok(part
                .iter()
                .filter_map(|(key, st)| make(key, st))
                .collect::<Vec<R>>())
        })?;
        drop(parts);
        drop(groups);
        let mut rows: Vec<R> = built.into_iter().flatten().collect();
        rows.sort_by(|a, b| natural_order(a.order_key(), b.order_key()));
        Ok(rows)
    }

    /// Where each limitSpec column's values are.
    fn columns_at(&self) -> Vec<ColumnAt<'_>> {
        self.limit_spec
            .columns
            .iter()
            .map(|c| ColumnAt {
                name: &c.dimension,
                agg: self.aggregations.iter().position(|a| a.name == c.dimension),
                dim: self
                    .dimensions
                    .iter()
                    .position(|d| d.output_name == c.dimension),
            })
            .collect()
    }

    /// Order rows by the limitSpec columns (within each time bucket unless
    /// `sortByDimsFirst`); a stable sort, so ties keep the natural order.
    fn sort_by_limit_spec<R: GroupedRow>(&self, rows: &mut [R]) {
        let ls = self.limit_spec;
        if ls.columns.is_empty() {
            return;
        }
        let at = self.columns_at();
        let dims_first = self.sort_by_dims_first;
        rows.sort_by(|a, b| {
            let (ta, tb) = (a.order_key().0, b.order_key().0);
            if !dims_first && ta != tb {
                return ta.cmp(&tb);
            }
            for (c, w) in ls.columns.iter().zip(&at) {
                let o = cmp_column(a.value(w), b.value(w), c);
                if o != Ordering::Equal {
                    return o;
                }
            }
            ta.cmp(&tb)
        });
    }

    /// The answer's rows: `run` gives the ordered rows (under the per-segment cut when there
    /// is one), then the limitSpec's offset and limit apply.
    fn answer<R: GroupedRow>(
        &self,
        run: impl Fn(Option<LocalTop>) -> Result<Vec<R>>,
    ) -> Result<impl Iterator<Item = R>> {
        self.check_order_columns()?;
        let top = self.local_top();
        let mut rows = run(top.map(|t| t.0))?;
        // With nulls first, a group whose values were dropped from every segment but its null
        // ones would show as null, and first: the cut holds when the first row is not null.
        if let Some((_, true)) = top
            && let Some(first) = self.columns_at().first()
            && rows
                .first()
                .is_some_and(|r| r.value(first).is_none_or(Value::is_null))
        {
            rows = run(None)?;
        }
        let ls = self.limit_spec;
        let limit = ls.limit.map(|l| l as usize).unwrap_or(usize::MAX);
        Ok(rows.into_iter().skip(ls.offset as usize).take(limit))
    }

    /// The output rows (every subtotal set) in the limitSpec's order, not yet limited.
    fn ordered_rows(
        &self,
        tasks: &[SegmentTask],
        ctx: &ExecContext,
        top: Option<LocalTop>,
    ) -> Result<Vec<OutRow>> {
        // Rows are finalized, post-aggregated and checked by `having` as they are made.
        let rows_of = |dims: &[&DimensionSpec], top: Option<LocalTop>| {
            self.grouped(tasks, ctx, dims, top, |key, st| {
                let mut event = Map::new();
                for (d, v) in dims.iter().zip(key.dims.iter()) {
                    event.insert(d.output_name.clone(), v.to_json_as(d.output_type));
                }
                finalize_into(self.aggregations, st, &mut event);
                PostAggregator::apply(self.post_aggregations, &mut event);
                if let Some(h) = self.having
                    && !h.matches(&event)
                {
                    return None;
                }
                Some(OutRow {
                    bucket: key.bucket,
                    dims: key.dims.clone(),
                    event,
                })
            })
        };
        let mut rows: Vec<OutRow> = Vec::new();
        match self.subtotals {
            None => {
                let dims: Vec<&DimensionSpec> = self.dimensions.iter().collect();
                rows = rows_of(&dims, top)?;
            }
            Some(sets) => {
                for set in sets {
                    let dims: Vec<&DimensionSpec> = self
                        .dimensions
                        .iter()
                        .filter(|d| set.contains(&d.output_name))
                        .collect();
                    let mut part = rows_of(&dims, None)?;
                    for r in &mut part {
                        for d in self.dimensions {
                            if !set.contains(&d.output_name) {
                                r.event.insert(d.output_name.clone(), Value::Null);
                            }
                        }
                    }
                    rows.extend(part);
                }
            }
        }
        self.sort_by_limit_spec(&mut rows);
        Ok(rows)
    }

    /// The time a row reports: the bucket, or the query's start for granularity `all`.
    fn row_time(&self, bucket: i64) -> i64 {
        if self.granularity.is_all() {
            self.all_timestamp
        } else {
            bucket
        }
    }

    /// Run over the segment tasks.
    pub fn execute(&self, tasks: &[SegmentTask], ctx: &ExecContext) -> Result<Value> {
        let mut stamps = TimestampText::default();
        let out: Vec<Value> = self
            .answer(|top| self.ordered_rows(tasks, ctx, top))?
            .map(|r| {
                json_object([
                    ("version", Value::from("v1")),
                    (
                        "timestamp",
                        stamps.get(self.granularity, self.row_time(r.bucket)),
                    ),
                    ("event", Value::Object(r.event)),
                ])
            })
            .collect();
        Ok(Value::Array(out))
    }

    /// Whether [`GroupByExec::execute_rows`] answers: no having, post-aggregators or
    /// subtotals.
    pub fn has_value_rows(&self) -> bool {
        self.having.is_none() && self.post_aggregations.is_empty() && self.subtotals.is_none()
    }

    /// Run over the segment tasks, each group a row of its time, its dimensions' output
    /// values and its aggregators' finalized values, in the limitSpec's order and limited,
    /// without the response's JSON objects; `None` unless [`GroupByExec::has_value_rows`].
    pub fn execute_rows(
        &self,
        tasks: &[SegmentTask],
        ctx: &ExecContext,
    ) -> Result<Option<Vec<GroupRow>>> {
        if !self.has_value_rows() {
            return Ok(None);
        }
        let dims: Vec<&DimensionSpec> = self.dimensions.iter().collect();
        let rows = self.answer(|top| {
            let mut rows = self.grouped(tasks, ctx, &dims, top, |key, st| {
                Some(ValueRow {
                    bucket: key.bucket,
                    dims: key
                        .dims
                        .iter()
                        .zip(self.dimensions)
                        .map(|(v, d)| v.to_json_as(d.output_type))
                        .collect(),
                    aggs: self
                        .aggregations
                        .iter()
                        .zip(st)
                        .map(|(a, s)| a.finalize(s))
                        .collect(),
                    key: key.dims.clone(),
                })
            })?;
            self.sort_by_limit_spec(&mut rows);
            Ok(rows)
        })?;
        Ok(Some(
            rows.map(|r| (self.row_time(r.bucket), r.dims, r.aggs))
                .collect(),
        ))
    }

    /// Every limitSpec column names an output column.
    fn check_order_columns(&self) -> Result<()> {
        for c in &self.limit_spec.columns {
            let known = self.dimensions.iter().any(|d| d.output_name == c.dimension)
                || self.aggregations.iter().any(|a| a.name == c.dimension)
                || self
                    .post_aggregations
                    .iter()
                    .any(|p| p.name() == c.dimension);
            if !known {
                return Err(Error::invalid(format!(
                    "limitSpec.columns: `{}` is not a dimension, aggregation or post-aggregation of the query",
                    c.dimension
                )));
            }
        }
        Ok(())
    }
}
