//! `SearchExec`: dimension values containing the search strings, with row counts.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::error::Result;
use crate::query::exec::{ExecContext, SegmentTask, json_object, parallel_map, task_rows};
use crate::query::filter::Filter;
use crate::query::granularity::QueryGranularity;
use crate::query::spec::StringOrdering;
use crate::schema::TIME_COLUMN;
use crate::segment::format::{BLOCK_ROWS, ColumnKind, ColumnType, StreamRole};

/// The search operator.
#[derive(Debug)]
pub struct SearchExec<'a> {
    /// Filter.
    pub filter: Option<&'a Filter>,
    /// Bucketing.
    pub granularity: &'a QueryGranularity,
    /// Dimensions searched (None = every string dimension).
    pub dimensions: Option<&'a [String]>,
    /// Substrings that must all be contained.
    pub needles: &'a [String],
    /// Case-sensitive.
    pub case_sensitive: bool,
    /// Max results per bucket.
    pub limit: usize,
    /// Timestamp for granularity `all`.
    pub all_timestamp: i64,
    /// Ordering of values within a bucket.
    pub sort: StringOrdering,
}

type Counts = BTreeMap<(i64, String, String), u64>;

impl SearchExec<'_> {
    /// Name shown by EXPLAIN.
    pub fn name(&self) -> &'static str {
        "SearchExec"
    }

    fn matches(&self, v: &str) -> bool {
        if self.case_sensitive {
            self.needles.iter().all(|n| v.contains(n.as_str()))
        } else {
            let lv = v.to_lowercase();
            self.needles.iter().all(|n| lv.contains(&n.to_lowercase()))
        }
    }

    /// Run.
    pub fn execute(&self, tasks: &[SegmentTask], ctx: &ExecContext) -> Result<Value> {
        let partials = parallel_map(tasks, |task| -> Result<Counts> {
            ctx.check()?;
            let seg = &task.segment;
            let mut counts = Counts::new();
            let rows = task_rows(task, self.filter)?;
            if rows.is_empty() {
                return Ok(counts);
            }
            let Some(tc) = seg.column(TIME_COLUMN) else {
                return Ok(counts);
            };
            let mut times: Vec<i64> = Vec::new();
            let need_times = !self.granularity.is_all();
            if need_times {
                for b in 0..seg.num_blocks() {
                    times.extend(seg.read_longs(tc, StreamRole::Long, b)?);
                }
            }
            for c in seg.columns() {
                if c.kind != ColumnKind::Dimension
                    || !matches!(c.column_type, ColumnType::String | ColumnType::MultiString)
                {
                    continue;
                }
                if let Some(ds) = self.dimensions
                    && !ds.contains(&c.name)
                {
                    continue;
                }
                let dict = seg.dictionary(c)?;
                let index = seg.bitmap_index(c)?;
                for i in 0..dict.len() {
                    let Some(v) = dict.get(i) else { continue };
                    if !self.matches(v) {
                        continue;
                    }
                    let value_rows = match &index {
                        Some(ix) => ix.bitmap(i + 1, seg.path(), &c.name)? & &rows,
                        None => {
                            let pred = crate::query::filter::Pred::StrEq(vec![v.to_string()]);
                            let f = Filter::Leaf {
                                column: c.name.clone(),
                                pred,
                                null_matches: false,
                            };
                            f.true_rows(seg, Some(&rows))?
                        }
                    };
                    if value_rows.is_empty() {
                        continue;
                    }
                    if need_times {
                        for r in value_rows.iter() {
                            let t = times.get(r as usize).copied().unwrap_or(0);
                            let bucket = self.granularity.bucket_start(t);
                            *counts
                                .entry((bucket, c.name.clone(), v.to_string()))
                                .or_default() += 1;
                        }
                    } else {
                        *counts
                            .entry((self.all_timestamp, c.name.clone(), v.to_string()))
                            .or_default() += value_rows.len();
                    }
                }
            }
            let _ = BLOCK_ROWS;
            Ok(counts)
        })?;
        let mut total = Counts::new();
        for p in partials {
            for (k, v) in p {
                *total.entry(k).or_default() += v;
            }
        }
        // Druid orders hits by value (with the requested comparator), then by dimension.
        let mut per_bucket: BTreeMap<i64, Vec<(String, String, u64)>> = BTreeMap::new();
        for ((bucket, dim, value), count) in total {
            per_bucket
                .entry(bucket)
                .or_default()
                .push((dim, value, count));
        }
        Ok(Value::Array(
            per_bucket
                .into_iter()
                .map(|(b, mut hits)| {
                    hits.sort_by(|x, y| self.sort.compare(&x.1, &y.1).then_with(|| x.0.cmp(&y.0)));
                    hits.truncate(self.limit);
                    let r: Vec<Value> = hits
                        .into_iter()
                        .map(|(d, v, c)| json!({"dimension": d, "value": v, "count": c}))
                        .collect();
                    json_object([
                        ("timestamp", Value::String(self.granularity.format(b))),
                        ("result", Value::Array(r)),
                    ])
                })
                .collect(),
        ))
    }
}
