//! The engine handle: one data directory, its catalog and timeline, open segments, and the
//! entry points the server calls (`query_json`, `explain_json`).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::query::exec::groupby_exec::GroupByExec;
use crate::query::exec::metadata_exec::{
    DataSourceMetadataExec, SegmentMetadataExec, TimeBoundaryExec,
};
use crate::query::exec::scan_exec::ScanExec;
use crate::query::exec::search_exec::SearchExec;
use crate::query::exec::timeseries_exec::TimeseriesExec;
use crate::query::exec::topn_exec::TopNExec;
use crate::query::exec::{ExecContext, SegmentTask};
use crate::query::spec::{Query, QueryBase};
use crate::schema::TIME_COLUMN;
use crate::segment::{Segment, SegmentId, SegmentRef};
use crate::storage::DataDir;
use crate::time::Interval;

/// A timeseries' or groupBy's result as rows of values ([`Engine::query_rows`]).
#[derive(Debug)]
pub enum AggRows {
    /// Per bucket: its time (none for the grand total) and the aggregators' values.
    Timeseries(Vec<crate::query::exec::timeseries_exec::TimedValues>),
    /// Per group: its time, its dimensions' output values and the aggregators' values.
    GroupBy(Vec<crate::query::exec::groupby_exec::GroupRow>),
}

/// A native query's result: Druid's response JSON, or a scan's rows as typed columns.
#[derive(Debug)]
pub enum QueryOutput {
    /// Response JSON.
    Json(Value),
    /// A scan's rows.
    Scan(crate::query::scan_output::ScanOutput),
}

impl QueryOutput {
    /// Druid's response JSON.
    pub fn into_json(self) -> Value {
        match self {
            QueryOutput::Json(v) => v,
            QueryOutput::Scan(s) => s.into_json(),
        }
    }

    /// Write Druid's response as compact JSON text.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            QueryOutput::Json(v) => crate::query::scan_output::write_value(out, v),
            QueryOutput::Scan(s) => s.write_json(out),
        }
    }

    /// Number of result rows: scan events, or the response array's entries.
    pub fn num_rows(&self) -> usize {
        match self {
            QueryOutput::Json(v) => v.as_array().map_or(1, Vec::len),
            QueryOutput::Scan(s) => s.num_rows(),
        }
    }
}

/// Engine settings.
#[derive(Clone, Debug, Default)]
pub struct EngineConfig {
    /// Realtime ingestion (WAL, memory bounds, handoff).
    pub realtime: crate::realtime::RealtimeConfig,
}

/// The Basalt engine over one data directory.
#[derive(Debug)]
pub struct Engine {
    data: Arc<DataDir>,
    open_segments: Mutex<HashMap<SegmentId, SegmentRef>>,
    /// SQL column lists of datasources, by name (see `crate::sql::metadata`).
    pub(crate) sql_columns: Mutex<HashMap<String, crate::sql::metadata::ColumnsEntry>>,
    /// Parsed SQL statements, by text (see `crate::sql::StatementCache`).
    pub(crate) sql_statements: crate::sql::StatementCache,
    pub(crate) realtime: crate::realtime::Realtime,
}

impl Engine {
    /// Open (or create) a data directory with default settings.
    pub fn open(path: &Path) -> Result<Engine> {
        Engine::open_with(path, EngineConfig::default())
    }

    /// Open (or create) a data directory: replays the realtime WAL and starts realtime
    /// background work.
    pub fn open_with(path: &Path, config: EngineConfig) -> Result<Engine> {
        config.realtime.validate()?;
        let data = Arc::new(DataDir::open(path)?);
        Ok(Engine {
            realtime: crate::realtime::Realtime::open(data.clone(), config.realtime)?,
            data,
            open_segments: Mutex::new(HashMap::new()),
            sql_columns: Mutex::new(HashMap::new()),
            sql_statements: crate::sql::StatementCache::default(),
        })
    }

    /// The data directory (catalog, timeline, publishing).
    pub fn data_dir(&self) -> &DataDir {
        &self.data
    }

    /// The open segment of a catalog record (cached).
    pub(crate) fn open_segment(
        &self,
        record: &crate::catalog::SegmentRecord,
    ) -> Result<SegmentRef> {
        self.segment(record)
    }

    fn segment(&self, record: &crate::catalog::SegmentRecord) -> Result<SegmentRef> {
        if let Some(s) = self.open_segments.lock().get(&record.id) {
            return Ok(s.clone());
        }
        let seg = Arc::new(Segment::open(&self.data.segment_path(record))?);
        let mut cache = self.open_segments.lock();
        // Forget segments that are no longer used so their files can be unmapped.
        if cache.len() > 4096 {
            let timeline = self.data.timeline();
            cache.retain(|id, _| {
                timeline
                    .lookup(&id.datasource, id.interval)
                    .iter()
                    .any(|v| &v.record.id == id)
            });
        }
        cache.insert(record.id.clone(), seg.clone());
        Ok(seg)
    }

    /// The segments a query reads: visible parts ∩ query intervals, in time order.
    fn tasks(&self, base: &QueryBase) -> Result<Vec<SegmentTask>> {
        let ds = &base.data_source;
        // Realtime pieces before the timeline snapshot (see crate::realtime: exactly once).
        let realtime = self.realtime.query_pieces(ds)?;
        let timeline = self.data.timeline();
        let known = self.data.catalog().get_datasource(ds)?.is_some()
            || timeline.datasources().iter().any(|d| d == ds);
        if !known {
            return Err(Error::NotFound(format!("datasource `{ds}` does not exist")));
        }
        let mut by_id: Vec<(SegmentId, crate::catalog::SegmentRecord, Vec<Interval>)> = Vec::new();
        for iv in &base.intervals {
            for v in timeline.lookup(ds, *iv) {
                let Some(part) = v.visible.intersect(iv) else {
                    continue;
                };
                match by_id.iter_mut().find(|(id, _, _)| *id == v.record.id) {
                    Some((_, _, ivs)) => ivs.push(part),
                    None => by_id.push((v.record.id.clone(), v.record.clone(), vec![part])),
                }
            }
        }
        by_id.sort_by(|a, b| {
            (a.0.interval.start, a.0.version, a.0.partition).cmp(&(
                b.0.interval.start,
                b.0.version,
                b.0.partition,
            ))
        });
        let mut tasks = by_id
            .into_iter()
            .map(|(id, record, intervals)| {
                Ok(SegmentTask {
                    segment: self.segment(&record)?,
                    id: id.to_string(),
                    intervals,
                    blocks: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        crate::realtime::Realtime::add_tasks(&realtime, &timeline, &base.intervals, &mut tasks);
        Ok(tasks)
    }

    /// Known columns of a datasource: from its registered spec and its visible segments.
    fn known_columns(&self, ds: &str, tasks: &[SegmentTask]) -> Result<BTreeSet<String>> {
        let mut cols = BTreeSet::new();
        cols.insert(TIME_COLUMN.to_string());
        if let Some(spec) = self.data.catalog().get_datasource(ds)?
            && let Ok(schema) = crate::schema::DataSchema::from_json(&spec)
        {
            cols.extend(schema.dimensions.iter().map(|d| d.name.clone()));
            cols.extend(schema.metrics.iter().map(|m| m.name.clone()));
        }
        for t in tasks {
            cols.extend(t.segment.columns().iter().map(|c| c.name.clone()));
        }
        // Segments that the query's intervals do not touch still define the schema.
        for r in self.data.timeline().segments(ds).iter().take(64) {
            if let Ok(seg) = self.segment(r) {
                cols.extend(seg.columns().iter().map(|c| c.name.clone()));
            }
        }
        Ok(cols)
    }

    fn validate_columns(&self, q: &Query, tasks: &[SegmentTask]) -> Result<()> {
        let base = q.base();
        let known = self.known_columns(&base.data_source, tasks)?;
        if known.len() <= 1 {
            // Nothing ingested yet and no registered spec: nothing to check against.
            return Ok(());
        }
        let check = |col: &str, path: &str| -> Result<()> {
            if known.contains(col) {
                Ok(())
            } else {
                Err(Error::invalid(format!(
                    "{path}: unknown column `{col}` in datasource `{}` (columns: {})",
                    base.data_source,
                    known.iter().cloned().collect::<Vec<_>>().join(", ")
                )))
            }
        };
        if let Some(f) = &base.filter {
            let mut cols = Vec::new();
            f.columns(&mut cols);
            for c in cols {
                check(&c, "filter")?;
            }
        }
        let aggs = match q {
            Query::Timeseries { aggregations, .. }
            | Query::TopN { aggregations, .. }
            | Query::GroupBy { aggregations, .. } => aggregations.as_slice(),
            _ => &[],
        };
        for (i, a) in aggs.iter().enumerate() {
            if let Some(f) = &a.field {
                check(f, &format!("aggregations[{i}].fieldName"))?;
            }
            let mut cols = Vec::new();
            a.columns(&mut cols);
            for c in cols {
                check(&c, &format!("aggregations[{i}]"))?;
            }
        }
        match q {
            Query::TopN { dimension, .. } => check(&dimension.dimension, "dimension")?,
            Query::GroupBy { dimensions, .. } => {
                for (i, d) in dimensions.iter().enumerate() {
                    check(&d.dimension, &format!("dimensions[{i}]"))?;
                }
            }
            Query::Scan { columns, .. } => {
                for (i, c) in columns.iter().enumerate() {
                    check(c, &format!("columns[{i}]"))?;
                }
            }
            Query::Search {
                dimensions: Some(ds),
                ..
            } => {
                for (i, c) in ds.iter().enumerate() {
                    check(c, &format!("searchDimensions[{i}]"))?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn exec_context(base: &QueryBase, cancelled: Option<Arc<AtomicBool>>) -> ExecContext {
        ExecContext {
            deadline: base
                .context
                .timeout_ms
                .filter(|&t| t > 0)
                .map(|t| Instant::now() + Duration::from_millis(t)),
            cancelled,
            query_id: base.context.query_id.clone(),
        }
    }

    /// Run a Druid native query given as JSON text, keeping a scan's rows as typed columns.
    pub fn query_json_output(&self, text: &str) -> Result<QueryOutput> {
        let q = Query::from_json(text)?;
        self.query_output(&q, None)
    }

    /// Run a Druid native query given as JSON text; the result is Druid's response JSON.
    pub fn query_json(&self, text: &str) -> Result<Value> {
        let q = Query::from_json(text)?;
        self.query(&q, None)
    }

    /// Run a SQL query; the answer is a typed table. `cancelled` stops it when set.
    pub fn sql(
        &self,
        request: &crate::sql::SqlRequest,
        cancelled: Option<Arc<AtomicBool>>,
    ) -> Result<crate::table::Table> {
        crate::sql::execute(self, request, cancelled)
    }

    /// Run a SQL query; a plain scan's answer stays in typed columns (rendered without a
    /// value per cell). `cancelled` stops it when set.
    pub fn sql_output(
        &self,
        request: &crate::sql::SqlRequest,
        cancelled: Option<Arc<AtomicBool>>,
    ) -> Result<crate::table::SqlOutput> {
        crate::sql::execute_output(self, request, cancelled)
    }

    /// Number of parsed SQL statements kept for their text to be run again.
    pub fn sql_statements_cached(&self) -> usize {
        self.sql_statements.len()
    }

    /// Run a native query and flatten its result into a table (one row per result row; the
    /// timestamp as a `__time` column where the query type has one).
    pub fn query_table(
        &self,
        q: &Query,
        cancelled: Option<Arc<AtomicBool>>,
    ) -> Result<crate::table::Table> {
        let result = self.query(q, cancelled)?;
        crate::table::Table::from_native(q, &result)
    }

    /// Run a parsed query; `cancelled` stops it when set. The result is Druid's response JSON.
    pub fn query(&self, q: &Query, cancelled: Option<Arc<AtomicBool>>) -> Result<Value> {
        Ok(self.query_output(q, cancelled)?.into_json())
    }

    /// Run a timeseries or groupBy as rows of values (no response JSON: the SQL layer's
    /// path); `None` for other queries and those with post-aggregators (or a groupBy's having
    /// or subtotals).
    pub fn query_rows(
        &self,
        q: &Query,
        cancelled: Option<Arc<AtomicBool>>,
    ) -> Result<Option<AggRows>> {
        let base = q.base();
        let timeseries = timeseries_exec(q).filter(TimeseriesExec::has_value_rows);
        let group_by = group_by_exec(q).filter(GroupByExec::has_value_rows);
        if timeseries.is_none() && group_by.is_none() {
            return Ok(None);
        }
        let ctx = Self::exec_context(base, cancelled);
        let tasks = self.tasks(base)?;
        self.validate_columns(q, &tasks)?;
        ctx.check()?;
        Ok(match (timeseries, group_by) {
            (Some(t), _) => t.execute_rows(&tasks, &ctx)?.map(AggRows::Timeseries),
            (_, Some(g)) => g.execute_rows(&tasks, &ctx)?.map(AggRows::GroupBy),
            _ => None,
        })
    }

    /// Run a parsed query, keeping a scan's rows as typed columns (written as JSON by
    /// [`QueryOutput::write_json`] without a JSON value per cell).
    pub fn query_output(
        &self,
        q: &Query,
        cancelled: Option<Arc<AtomicBool>>,
    ) -> Result<QueryOutput> {
        let base = q.base();
        let ctx = Self::exec_context(base, cancelled);
        let tasks = self.tasks(base)?;
        self.validate_columns(q, &tasks)?;
        ctx.check()?;
        let filter = base.filter.as_ref();
        let all_timestamp = base.intervals.first().map(|i| i.start).unwrap_or(0);
        let value = match q {
            Query::Timeseries { .. } | Query::GroupBy { .. } => {
                match (timeseries_exec(q), group_by_exec(q)) {
                    (Some(t), _) => t.execute(&tasks, &ctx),
                    (_, Some(g)) => g.execute(&tasks, &ctx),
                    _ => Err(Error::internal(
                        "timeseries or groupBy without its operator",
                    )),
                }
            }
            Query::TopN {
                granularity,
                dimension,
                threshold,
                metric,
                aggregations,
                post_aggregations,
                ..
            } => TopNExec {
                filter,
                granularity,
                dimension,
                threshold: *threshold,
                metric,
                aggregations,
                post_aggregations,
                max_groups: base.context.max_group_by_rows,
                all_timestamp,
            }
            .execute(&tasks, &ctx),
            Query::Scan {
                columns,
                limit,
                offset,
                order,
                compacted,
                ..
            } => {
                return Ok(QueryOutput::Scan(
                    ScanExec {
                        filter,
                        columns,
                        limit: *limit,
                        offset: *offset,
                        order: *order,
                        compacted: *compacted,
                        max_rows: base.context.max_scan_rows,
                    }
                    .execute_columns(&tasks, &ctx)?,
                ));
            }
            Query::TimeBoundary { bound, .. } => TimeBoundaryExec {
                filter,
                bound: bound.as_deref(),
            }
            .execute(&tasks, &ctx),
            Query::SegmentMetadata {
                merge,
                analysis_types,
                ..
            } => SegmentMetadataExec {
                merge: *merge,
                analysis_types,
            }
            .execute(&tasks, &ctx),
            Query::Search {
                granularity,
                dimensions,
                needles,
                case_sensitive,
                limit,
                sort,
                ..
            } => SearchExec {
                filter,
                granularity,
                dimensions: dimensions.as_deref(),
                needles,
                case_sensitive: *case_sensitive,
                limit: *limit,
                all_timestamp,
                sort: *sort,
            }
            .execute(&tasks, &ctx),
            Query::DataSourceMetadata { .. } => DataSourceMetadataExec.execute(&tasks, &ctx),
        }?;
        Ok(QueryOutput::Json(value))
    }

    /// Explain a query: the segments chosen, how the filter is evaluated in each, and the
    /// operators.
    pub fn explain_json(&self, text: &str) -> Result<Value> {
        let q = Query::from_json(text)?;
        let base = q.base();
        let tasks = self.tasks(base)?;
        self.validate_columns(&q, &tasks)?;
        let operator = match &q {
            Query::Timeseries { .. } => "TimeseriesExec",
            Query::TopN { .. } => "TopNExec",
            Query::GroupBy { .. } => "GroupByExec",
            Query::Scan { .. } => "ScanExec",
            Query::TimeBoundary { .. } => "TimeBoundaryExec",
            Query::SegmentMetadata { .. } => "SegmentMetadataExec",
            Query::Search { .. } => "SearchExec",
            Query::DataSourceMetadata { .. } => "DataSourceMetadataExec",
        };
        let segments: Vec<Value> = tasks
            .iter()
            .map(|t| {
                json!({
                    "id": t.id,
                    "rows": t.segment.num_rows(),
                    "visible": t.intervals.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
                    "timeFilter": if t.intervals.iter().any(|iv| iv.start <= t.segment.directory().min_time && t.segment.directory().max_time < iv.end) {
                        "whole segment"
                    } else {
                        "block min/max of __time"
                    },
                    "filter": base.filter.as_ref().map(|f| f.explain(&t.segment)),
                })
            })
            .collect();
        let mut operators = vec![json!({"name": "SegmentScanExec", "segments": tasks.len()})];
        if base.filter.is_some() {
            operators.push(json!({"name": "FilterExec"}));
        }
        if matches!(
            q,
            Query::Timeseries { .. } | Query::TopN { .. } | Query::GroupBy { .. }
        ) {
            operators.push(json!({"name": "AggregateExec", "parallel": true}));
        }
        operators.push(json!({"name": operator}));
        Ok(json!({
            "queryType": q.type_name(),
            "dataSource": base.data_source,
            "intervals": base.intervals.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
            "operators": operators,
            "segments": segments,
        }))
    }
}

/// The operator of a timeseries query.
fn timeseries_exec(q: &Query) -> Option<TimeseriesExec<'_>> {
    let Query::Timeseries {
        base,
        granularity,
        aggregations,
        post_aggregations,
        descending,
        limit,
    } = q
    else {
        return None;
    };
    Some(TimeseriesExec {
        intervals: &base.intervals,
        filter: base.filter.as_ref(),
        granularity,
        aggregations,
        post_aggregations,
        descending: *descending,
        skip_empty_buckets: base.context.skip_empty_buckets,
        limit: *limit,
        grand_total: base.context.grand_total,
    })
}

/// The operator of a groupBy query.
fn group_by_exec(q: &Query) -> Option<GroupByExec<'_>> {
    let Query::GroupBy {
        base,
        granularity,
        dimensions,
        aggregations,
        post_aggregations,
        having,
        limit_spec,
        subtotals,
    } = q
    else {
        return None;
    };
    Some(GroupByExec {
        filter: base.filter.as_ref(),
        granularity,
        dimensions,
        aggregations,
        post_aggregations,
        having: having.as_ref(),
        limit_spec,
        subtotals: subtotals.as_deref(),
        max_groups: base.context.max_group_by_rows,
        all_timestamp: base.intervals.first().map(|i| i.start).unwrap_or(0),
        sort_by_dims_first: base.context.sort_by_dims_first,
    })
}
