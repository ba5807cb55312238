//! `TopNExec`: the top values of one dimension per time bucket.
//!
//! Each segment's partial groups are cut to its top `max(threshold, 1000)` values by the
//! ordering metric before merging (Druid's over-fetch rule), then the merged groups are ranked.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::query::aggregator::AggregatorSpec;
use crate::query::exec::{
    DimValue, ExecContext, Grouping, Groups, LocalTop, SegmentTask, aggregate_task, finalize_row,
    json_object, parallel_map,
};
use crate::query::filter::{Filter, Num};
use crate::query::granularity::QueryGranularity;
use crate::query::post_aggregator::PostAggregator;
use crate::query::spec::{DimensionSpec, StringOrdering, TopNMetric};

/// A dimension value with its finalized row.
type RankedRow = (DimValue, Map<String, Value>);

/// Minimum values kept per segment before merging.
pub const MIN_TOPN_OVERFETCH: usize = 1000;

/// The topN operator.
#[derive(Debug)]
pub struct TopNExec<'a> {
    /// Filter.
    pub filter: Option<&'a Filter>,
    /// Bucketing.
    pub granularity: &'a QueryGranularity,
    /// The dimension.
    pub dimension: &'a DimensionSpec,
    /// How many values per bucket.
    pub threshold: usize,
    /// Ordering.
    pub metric: &'a TopNMetric,
    /// Aggregators.
    pub aggregations: &'a [AggregatorSpec],
    /// Post-aggregators.
    pub post_aggregations: &'a [PostAggregator],
    /// Max groups.
    pub max_groups: u64,
    /// Timestamp reported for granularity `all` (the start of the query intervals).
    pub all_timestamp: i64,
}

fn cmp_values(a: &Value, b: &Value) -> Ordering {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn cmp_dim(a: &DimValue, b: &DimValue, ordering: StringOrdering) -> Ordering {
    let text = |v: &DimValue| -> Option<String> {
        match v {
            DimValue::Null => None,
            DimValue::Str(s) => Some(s.to_string()),
            DimValue::Long(i) => Some(i.to_string()),
            DimValue::Double(d) => Some(f64::from_bits(*d).to_string()),
        }
    };
    match (text(a), text(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => {
            if matches!(
                (a, b),
                (
                    DimValue::Long(_) | DimValue::Double(_),
                    DimValue::Long(_) | DimValue::Double(_)
                )
            ) && ordering == StringOrdering::Numeric
            {
                let n = |v: &DimValue| match v {
                    DimValue::Long(i) => Num::I(*i),
                    DimValue::Double(d) => Num::F(f64::from_bits(*d)),
                    _ => Num::I(0),
                };
                return n(a).cmp_num(n(b));
            }
            ordering.compare(&x, &y)
        }
    }
}

impl TopNExec<'_> {
    /// Name shown by EXPLAIN.
    pub fn name(&self) -> &'static str {
        "TopNExec"
    }

    fn metric_agg(&self) -> Option<usize> {
        match self.metric {
            TopNMetric::Numeric { metric, .. } => {
                self.aggregations.iter().position(|a| &a.name == metric)
            }
            TopNMetric::Dimension { .. } => None,
        }
    }

    /// The per-segment cut: each bucket's top `k` groups by the ordering aggregate.
    fn local_top(&self, k: usize) -> Option<LocalTop> {
        Some(LocalTop {
            agg: self.metric_agg()?,
            k,
            inverted: matches!(self.metric, TopNMetric::Numeric { inverted: true, .. }),
            exact: false,
        })
    }

    /// Run over the segment tasks.
    pub fn execute(&self, tasks: &[SegmentTask], ctx: &ExecContext) -> Result<Value> {
        if let TopNMetric::Numeric { metric, .. } = self.metric
            && !self.aggregations.iter().any(|a| &a.name == metric)
            && !self.post_aggregations.iter().any(|p| p.name() == metric)
        {
            return Err(Error::invalid(format!(
                "metric: `{metric}` is not an aggregation or post-aggregation of the query"
            )));
        }
        let dims = vec![self.dimension.dimension.clone()];
        let top = self.local_top(self.threshold.max(MIN_TOPN_OVERFETCH));
        let grouping = Grouping {
            granularity: self.granularity,
            dims: &dims,
            aggs: self.aggregations,
            max_groups: self.max_groups,
            top,
        };
        let tasks = crate::query::exec::split_for_parallelism(tasks);
        let partials = parallel_map(&tasks, |t| {
            aggregate_task(t, self.filter, &grouping, ctx).map(|g| match top {
                Some(top) => top.trim(g, self.aggregations),
                None => g,
            })
        })?;
        let mut merged = Groups::default();
        for p in partials {
            for (key, st) in p {
                match merged.get_mut(&key) {
                    Some(e) => {
                        for ((a, x), y) in self.aggregations.iter().zip(e.iter_mut()).zip(st) {
                            a.merge(x, y)?;
                        }
                    }
                    None => {
                        merged.insert(key, st);
                    }
                }
            }
        }
        let mut per_bucket: BTreeMap<i64, Vec<RankedRow>> = BTreeMap::new();
        for (key, st) in merged {
            let mut row = finalize_row(self.aggregations, &st);
            PostAggregator::apply(self.post_aggregations, &mut row);
            let dim = key.dims.into_iter().next().unwrap_or(DimValue::Null);
            per_bucket.entry(key.bucket).or_default().push((dim, row));
        }
        let mut out = Vec::with_capacity(per_bucket.len());
        for (bucket, mut rows) in per_bucket {
            match self.metric {
                TopNMetric::Numeric { metric, inverted } => rows.sort_by(|(da, a), (db, b)| {
                    let o = cmp_values(
                        a.get(metric).unwrap_or(&Value::Null),
                        b.get(metric).unwrap_or(&Value::Null),
                    );
                    let o = if *inverted { o } else { o.reverse() };
                    o.then_with(|| da.cmp_druid(db))
                }),
                TopNMetric::Dimension {
                    ordering,
                    inverted,
                    previous_stop,
                } => {
                    if let Some(stop) = previous_stop {
                        let stop = DimValue::Str(std::sync::Arc::from(stop.as_str()));
                        rows.retain(|(d, _)| {
                            let o = cmp_dim(d, &stop, *ordering);
                            if *inverted {
                                o == Ordering::Less
                            } else {
                                o == Ordering::Greater
                            }
                        });
                    }
                    rows.sort_by(|(da, _), (db, _)| {
                        let o = cmp_dim(da, db, *ordering);
                        if *inverted { o.reverse() } else { o }
                    })
                }
            }
            rows.truncate(self.threshold);
            let result: Vec<Value> = rows
                .into_iter()
                .map(|(dim, mut row)| {
                    row.insert(
                        self.dimension.output_name.clone(),
                        dim.to_json_as(self.dimension.output_type),
                    );
                    Value::Object(row)
                })
                .collect();
            let ts = if self.granularity.is_all() {
                self.all_timestamp
            } else {
                bucket
            };
            out.push(json_object([
                ("timestamp", Value::String(self.granularity.format(ts))),
                ("result", Value::Array(result)),
            ]));
        }
        Ok(Value::Array(out))
    }
}
