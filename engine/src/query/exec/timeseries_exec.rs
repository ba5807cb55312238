//! `TimeseriesExec`: aggregates per time bucket, zero-filling empty buckets.

use serde_json::Value;

use crate::error::Result;
use crate::query::aggregator::AggState;
use crate::query::aggregator::AggregatorSpec;
use crate::query::exec::{
    ExecContext, GroupKey, Grouping, Groups, SegmentTask, aggregate_all, finalize_row, json_object,
};
use crate::query::filter::Filter;
use crate::query::granularity::QueryGranularity;
use crate::query::post_aggregator::PostAggregator;
use crate::time::Interval;

/// A row of a timeseries: its bucket's time (none for the grand total) and the aggregators'
/// finalized values.
pub type TimedValues = (Option<i64>, Vec<Value>);

/// Most buckets a timeseries may zero-fill.
pub const MAX_BUCKETS: usize = 1_000_000;

/// The timeseries operator.
#[derive(Debug)]
pub struct TimeseriesExec<'a> {
    /// Query intervals.
    pub intervals: &'a [Interval],
    /// Filter.
    pub filter: Option<&'a Filter>,
    /// Bucketing.
    pub granularity: &'a QueryGranularity,
    /// Aggregators.
    pub aggregations: &'a [AggregatorSpec],
    /// Post-aggregators.
    pub post_aggregations: &'a [PostAggregator],
    /// Newest first.
    pub descending: bool,
    /// Omit empty buckets.
    pub skip_empty_buckets: bool,
    /// Most rows returned.
    pub limit: Option<u64>,
    /// Append a grand-total row (timestamp null).
    pub grand_total: bool,
}

impl TimeseriesExec<'_> {
    /// Name shown by EXPLAIN.
    pub fn name(&self) -> &'static str {
        "TimeseriesExec"
    }

    /// Run over the segment tasks.
    pub fn execute(&self, tasks: &[SegmentTask], ctx: &ExecContext) -> Result<Value> {
        let (buckets, groups) = self.buckets(tasks, ctx)?;
        let mut out = Vec::with_capacity(buckets.len() + 1);
        for bucket in buckets {
            let key = GroupKey {
                bucket,
                dims: vec![],
            };
            let mut row = match groups.get(&key) {
                Some(st) => finalize_row(self.aggregations, st),
                None => {
                    let empty: Vec<_> = self.aggregations.iter().map(|a| a.init()).collect();
                    finalize_row(self.aggregations, &empty)
                }
            };
            PostAggregator::apply(self.post_aggregations, &mut row);
            out.push(json_object([
                ("timestamp", Value::String(self.granularity.format(bucket))),
                ("result", Value::Object(row)),
            ]));
        }
        if self.grand_total {
            let mut row = finalize_row(self.aggregations, &self.grand_total_states(tasks, ctx)?);
            PostAggregator::apply(self.post_aggregations, &mut row);
            out.push(json_object([
                ("timestamp", Value::Null),
                ("result", Value::Object(row)),
            ]));
        }
        Ok(Value::Array(out))
    }

    /// Whether [`TimeseriesExec::execute_rows`] answers: no post-aggregators.
    pub fn has_value_rows(&self) -> bool {
        self.post_aggregations.is_empty()
    }

    /// Run over the segment tasks, each bucket a row of its time and its aggregators'
    /// finalized values in order (the grand total's time is `None`), without the response's
    /// JSON objects; `None` when the query has post-aggregators.
    pub fn execute_rows(
        &self,
        tasks: &[SegmentTask],
        ctx: &ExecContext,
    ) -> Result<Option<Vec<TimedValues>>> {
        if !self.has_value_rows() {
            return Ok(None);
        }
        let finalize = |st: &[AggState]| -> Vec<Value> {
            self.aggregations
                .iter()
                .zip(st)
                .map(|(a, s)| a.finalize(s))
                .collect()
        };
        let (buckets, groups) = self.buckets(tasks, ctx)?;
        let empty: Vec<AggState> = self.aggregations.iter().map(|a| a.init()).collect();
        let mut out = Vec::with_capacity(buckets.len() + 1);
        for bucket in buckets {
            let key = GroupKey {
                bucket,
                dims: vec![],
            };
            let st = groups.get(&key).map_or(empty.as_slice(), Vec::as_slice);
            out.push((Some(bucket), finalize(st)));
        }
        if self.grand_total {
            out.push((None, finalize(&self.grand_total_states(tasks, ctx)?)));
        }
        Ok(Some(out))
    }

    /// The states of the one grand-total row.
    fn grand_total_states(
        &self,
        tasks: &[SegmentTask],
        ctx: &ExecContext,
    ) -> Result<Vec<AggState>> {
        let all = QueryGranularity::All;
        let totals = aggregate_all(
            tasks,
            self.filter,
            &Grouping {
                granularity: &all,
                dims: &[],
                aggs: self.aggregations,
                max_groups: 1,
                top: None,
            },
            ctx,
        )?;
        Ok(match totals.into_values().next() {
            Some(st) => st,
            None => self.aggregations.iter().map(|a| a.init()).collect(),
        })
    }

    /// The buckets to report, in order and limited, and the aggregated groups.
    fn buckets(&self, tasks: &[SegmentTask], ctx: &ExecContext) -> Result<(Vec<i64>, Groups)> {
        let grouping = Grouping {
            granularity: self.granularity,
            dims: &[],
            aggs: self.aggregations,
            max_groups: MAX_BUCKETS as u64,
            top: None,
        };
        let mut groups = aggregate_all(tasks, self.filter, &grouping, ctx)?;
        let mut buckets: Vec<i64> = if self.granularity.is_all() {
            // One bucket, reported at the start of the query intervals.
            let start = self.intervals.first().map(|i| i.start).unwrap_or(0);
            let all_key = groups.keys().next().map(|k| k.bucket);
            if let Some(k) = all_key
                && k != start
                && let Some(st) = groups.remove(&GroupKey {
                    bucket: k,
                    dims: vec![],
                })
            {
                groups.insert(
                    GroupKey {
                        bucket: start,
                        dims: vec![],
                    },
                    st,
                );
            }
            if groups.is_empty() && self.skip_empty_buckets {
                vec![]
            } else {
                vec![start]
            }
        } else if self.skip_empty_buckets {
            groups.keys().map(|k| k.bucket).collect()
        } else {
            // Druid fills the empty buckets inside each segment's data interval (its earliest to
            // latest row, clipped to the query intervals), whatever the filter; time with no
            // segment gets no buckets.
            let mut b: Vec<i64> = groups.keys().map(|k| k.bucket).collect();
            for t in tasks {
                let d = t.segment.directory();
                if d.num_rows == 0 {
                    continue;
                }
                let data = Interval {
                    start: d.min_time,
                    end: d.max_time.saturating_add(1),
                };
                for iv in &t.intervals {
                    if let Some(clip) = iv.intersect(&data) {
                        b.extend(self.granularity.bucket_starts(clip, MAX_BUCKETS)?);
                    }
                }
                if b.len() > MAX_BUCKETS {
                    return Err(crate::error::Error::ResourcesExhausted(format!(
                        "timeseries would return more than {MAX_BUCKETS} buckets; use a coarser granularity or skipEmptyBuckets"
                    )));
                }
            }
            b
        };
        buckets.sort_unstable();
        buckets.dedup();
        if self.descending {
            buckets.reverse();
        }
        if let Some(l) = self.limit {
            buckets.truncate(l.min(usize::MAX as u64) as usize);
        }
        Ok((buckets, groups))
    }
}
