//! Metadata queries: `TimeBoundaryExec`, `SegmentMetadataExec`, `DataSourceMetadataExec`.

use serde_json::{Map, Value, json};

use crate::error::Result;
use crate::query::exec::{ExecContext, SegmentTask, parallel_map, task_rows};
use crate::query::filter::Filter;
use crate::schema::TIME_COLUMN;
use crate::segment::format::{BLOCK_ROWS, ColumnType, StreamRole};
use crate::time::format_iso_millis;

/// timeBoundary: earliest and latest `__time` of the matching rows.
#[derive(Debug)]
pub struct TimeBoundaryExec<'a> {
    /// Filter.
    pub filter: Option<&'a Filter>,
    /// `minTime` or `maxTime` only.
    pub bound: Option<&'a str>,
}

impl TimeBoundaryExec<'_> {
    /// Name shown by EXPLAIN.
    pub fn name(&self) -> &'static str {
        "TimeBoundaryExec"
    }

    /// Run.
    pub fn execute(&self, tasks: &[SegmentTask], ctx: &ExecContext) -> Result<Value> {
        let per = parallel_map(tasks, |task| -> Result<Option<(i64, i64)>> {
            ctx.check()?;
            let seg = &task.segment;
            let d = seg.directory();
            let whole = self.filter.is_none()
                && task
                    .intervals
                    .iter()
                    .any(|iv| iv.start <= d.min_time && d.max_time < iv.end);
            if whole {
                return Ok((d.num_rows > 0).then_some((d.min_time, d.max_time)));
            }
            let rows = task_rows(task, self.filter)?;
            if rows.is_empty() {
                return Ok(None);
            }
            let Some(c) = seg.column(TIME_COLUMN) else {
                return Ok(None);
            };
            let (mut lo, mut hi) = (i64::MAX, i64::MIN);
            for b in 0..seg.num_blocks() {
                let base = (b * BLOCK_ROWS) as u32;
                let n = seg.block_rows(b) as u32;
                if rows.range_cardinality(base..base + n) == 0 {
                    continue;
                }
                let times = seg.read_longs(c, StreamRole::Long, b)?;
                for r in rows.range(base..base + n) {
                    let t = times[(r - base) as usize];
                    lo = lo.min(t);
                    hi = hi.max(t);
                }
            }
            Ok(Some((lo, hi)))
        })?;
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for (a, b) in per.into_iter().flatten() {
            lo = lo.min(a);
            hi = hi.max(b);
        }
        if lo > hi {
            return Ok(Value::Array(vec![]));
        }
        let mut result = Map::new();
        if self.bound != Some("maxTime") {
            result.insert("minTime".into(), Value::from(format_iso_millis(lo)));
        }
        if self.bound != Some("minTime") {
            result.insert("maxTime".into(), Value::from(format_iso_millis(hi)));
        }
        let ts = if self.bound == Some("maxTime") {
            hi
        } else {
            lo
        };
        Ok(json!([{"timestamp": format_iso_millis(ts), "result": Value::Object(result)}]))
    }
}

/// segmentMetadata: columns, sizes and row counts per segment (or merged).
#[derive(Debug)]
pub struct SegmentMetadataExec<'a> {
    /// Merge all segments into one result.
    pub merge: bool,
    /// Requested analyses.
    pub analysis_types: &'a [String],
}

fn type_signature(t: ColumnType) -> &'static str {
    match t {
        ColumnType::HllSketch => "COMPLEX<HLLSketch>",
        other => type_name(other),
    }
}

fn type_name(t: ColumnType) -> &'static str {
    match t {
        ColumnType::Long | ColumnType::LongPair => "LONG",
        ColumnType::Double | ColumnType::DoublePair => "DOUBLE",
        ColumnType::String | ColumnType::MultiString => "STRING",
        ColumnType::HllSketch => "HLLSketch",
    }
}

impl SegmentMetadataExec<'_> {
    /// Name shown by EXPLAIN.
    pub fn name(&self) -> &'static str {
        "SegmentMetadataExec"
    }

    /// Run.
    pub fn execute(&self, tasks: &[SegmentTask], _ctx: &ExecContext) -> Result<Value> {
        let want = |a: &str| {
            self.analysis_types
                .iter()
                .any(|t| t.eq_ignore_ascii_case(a))
        };
        let mut results: Vec<Value> = Vec::new();
        for task in tasks {
            let seg = &task.segment;
            let mut columns = Map::new();
            for c in seg.columns() {
                let mut m = Map::new();
                m.insert(
                    "typeSignature".into(),
                    Value::from(type_signature(c.column_type)),
                );
                m.insert("type".into(), Value::from(type_name(c.column_type)));
                m.insert(
                    "hasMultipleValues".into(),
                    Value::from(c.column_type == ColumnType::MultiString),
                );
                m.insert("hasNulls".into(), Value::from(c.null_count > 0));
                m.insert(
                    "size".into(),
                    Value::from(if want("size") { c.stored_bytes() } else { 0 }),
                );
                let (card, min, max) =
                    if matches!(c.column_type, ColumnType::String | ColumnType::MultiString) {
                        let dict = seg.dictionary(c)?;
                        let min = if dict.is_empty() {
                            Value::Null
                        } else {
                            dict.get(0).map(Value::from).unwrap_or(Value::Null)
                        };
                        let max = if dict.is_empty() {
                            Value::Null
                        } else {
                            dict.get(dict.len() - 1)
                                .map(Value::from)
                                .unwrap_or(Value::Null)
                        };
                        (Value::from(c.cardinality), min, max)
                    } else {
                        (Value::Null, Value::Null, Value::Null)
                    };
                m.insert(
                    "cardinality".into(),
                    if want("cardinality") {
                        card
                    } else {
                        Value::Null
                    },
                );
                m.insert(
                    "minValue".into(),
                    if want("minmax") { min } else { Value::Null },
                );
                m.insert(
                    "maxValue".into(),
                    if want("minmax") { max } else { Value::Null },
                );
                m.insert("errorMessage".into(), Value::Null);
                columns.insert(c.name.clone(), Value::Object(m));
            }
            results.push(json!({
                "id": task.id,
                "intervals": if want("interval") { json!([seg.interval().to_string()]) } else { Value::Null },
                "columns": Value::Object(columns),
                "size": seg.size_bytes(),
                "numRows": seg.num_rows(),
                "aggregators": null,
                "timestampSpec": null,
                "queryGranularity": null,
                "rollup": if want("rollup") { Value::from(seg.directory().rollup) } else { Value::Null },
            }));
        }
        if !self.merge || results.len() <= 1 {
            return Ok(Value::Array(results));
        }
        // Merge: sum sizes and rows, union intervals, combine column info.
        let mut merged_cols: Map<String, Value> = Map::new();
        let mut intervals: Vec<Value> = Vec::new();
        let (mut size, mut rows) = (0u64, 0u64);
        let mut ids = Vec::new();
        for r in &results {
            ids.push(r["id"].as_str().unwrap_or_default().to_string());
            size += r["size"].as_u64().unwrap_or(0);
            rows += r["numRows"].as_u64().unwrap_or(0);
            if let Some(iv) = r["intervals"].as_array() {
                intervals.extend(iv.iter().cloned());
            }
            if let Some(cols) = r["columns"].as_object() {
                for (name, c) in cols {
                    match merged_cols.get_mut(name) {
                        None => {
                            merged_cols.insert(name.clone(), c.clone());
                        }
                        Some(m) => {
                            let add =
                                m["size"].as_u64().unwrap_or(0) + c["size"].as_u64().unwrap_or(0);
                            m["size"] = Value::from(add);
                            if c["hasMultipleValues"] == Value::Bool(true) {
                                m["hasMultipleValues"] = Value::Bool(true);
                            }
                            if c["hasNulls"] == Value::Bool(true) {
                                m["hasNulls"] = Value::Bool(true);
                            }
                            if let (Some(a), Some(b)) =
                                (m["cardinality"].as_u64(), c["cardinality"].as_u64())
                            {
                                m["cardinality"] = Value::from(a.max(b));
                            }
                            if let (Some(a), Some(b)) =
                                (m["minValue"].as_str(), c["minValue"].as_str())
                                && b < a
                            {
                                m["minValue"] = Value::from(b);
                            }
                            if let (Some(a), Some(b)) =
                                (m["maxValue"].as_str(), c["maxValue"].as_str())
                                && b > a
                            {
                                m["maxValue"] = Value::from(b);
                            }
                        }
                    }
                }
            }
        }
        Ok(json!([{
            "id": "merged",
            "intervals": if want("interval") { Value::from(intervals) } else { Value::Null },
            "columns": Value::Object(merged_cols),
            "size": size,
            "numRows": rows,
            "aggregators": null,
            "timestampSpec": null,
            "queryGranularity": null,
            "rollup": null,
        }]))
    }
}

/// dataSourceMetadata: the latest event time ingested.
#[derive(Debug)]
pub struct DataSourceMetadataExec;

impl DataSourceMetadataExec {
    /// Name shown by EXPLAIN.
    pub fn name(&self) -> &'static str {
        "DataSourceMetadataExec"
    }

    /// Run.
    pub fn execute(&self, tasks: &[SegmentTask], _ctx: &ExecContext) -> Result<Value> {
        let max = tasks
            .iter()
            .filter(|t| t.segment.num_rows() > 0)
            .map(|t| t.segment.directory().max_time)
            .max();
        Ok(match max {
            None => json!([]),
            Some(m) => json!([{
                "timestamp": format_iso_millis(m),
                "result": {"maxIngestedEventTime": format_iso_millis(m)}
            }]),
        })
    }
}
