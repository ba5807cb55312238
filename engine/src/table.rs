//! Tabular query results: named, typed columns and rows of JSON values.
//!
//! SQL answers are tables, and native query results are flattened into tables for the gRPC API
//! (Arrow IPC) and for SQL planned on top of native queries. Values are kept as JSON in the shape
//! Druid's SQL API renders them (`TIMESTAMP` as ISO-8601 text with milliseconds and `Z`), and
//! converted to Arrow on demand.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::query::scan_output::{ScanBatch, ScanColumn};

/// The SQL type of a result column, named as Druid's SQL API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    /// Milliseconds since the epoch, UTC.
    Timestamp,
    /// 64-bit signed integer.
    Bigint,
    /// 64-bit float.
    Double,
    /// Text.
    Varchar,
    /// True/false.
    Boolean,
    /// Anything else (sketches, arrays), rendered as JSON text.
    Other,
}

impl SqlType {
    /// The SQL type name (`sqlTypesHeader`, INFORMATION_SCHEMA).
    pub fn sql_name(self) -> &'static str {
        match self {
            SqlType::Timestamp => "TIMESTAMP",
            SqlType::Bigint => "BIGINT",
            SqlType::Double => "DOUBLE",
            SqlType::Varchar => "VARCHAR",
            SqlType::Boolean => "BOOLEAN",
            SqlType::Other => "OTHER",
        }
    }

    /// The Druid runtime type name (`typesHeader`).
    pub fn druid_name(self) -> &'static str {
        match self {
            SqlType::Timestamp | SqlType::Bigint | SqlType::Boolean => "LONG",
            SqlType::Double => "DOUBLE",
            SqlType::Varchar => "STRING",
            SqlType::Other => "COMPLEX",
        }
    }

    /// The Arrow type this column is exported as.
    pub fn arrow_type(self) -> DataType {
        match self {
            SqlType::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            SqlType::Bigint => DataType::Int64,
            SqlType::Double => DataType::Float64,
            SqlType::Boolean => DataType::Boolean,
            SqlType::Varchar | SqlType::Other => DataType::Utf8,
        }
    }
}

/// One result column.
#[derive(Debug, Clone, PartialEq)]
pub struct TableColumn {
    /// Column name (alias).
    pub name: String,
    /// Its type.
    pub sql_type: SqlType,
}

/// A tabular result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Columns, in output order.
    pub columns: Vec<TableColumn>,
    /// Rows; each has one value per column (`null` for SQL NULL).
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    /// The Arrow schema of [`Table::to_record_batch`].
    pub fn arrow_schema(&self) -> Arc<Schema> {
        arrow_schema_of(&self.columns)
    }

    /// Convert rows `range` into one Arrow record batch.
    pub fn to_record_batch_range(&self, range: std::ops::Range<usize>) -> Result<RecordBatch> {
        let rows = self
            .rows
            .get(range.clone())
            .ok_or_else(|| Error::internal(format!("row range {range:?} out of bounds")))?;
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.columns.len());
        for (i, col) in self.columns.iter().enumerate() {
            let cell = |r: &Vec<Value>| r.get(i).cloned().unwrap_or(Value::Null);
            let array: ArrayRef = match col.sql_type {
                SqlType::Timestamp => {
                    let mut b =
                        TimestampMillisecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
                    for r in rows {
                        b.append_option(timestamp_millis(&cell(r)));
                    }
                    Arc::new(b.finish())
                }
                SqlType::Bigint => {
                    let mut b = Int64Builder::with_capacity(rows.len());
                    for r in rows {
                        b.append_option(match cell(r) {
                            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
                            Value::Bool(v) => Some(v as i64),
                            _ => None,
                        });
                    }
                    Arc::new(b.finish())
                }
                SqlType::Double => {
                    let mut b = Float64Builder::with_capacity(rows.len());
                    for r in rows {
                        b.append_option(cell(r).as_f64());
                    }
                    Arc::new(b.finish())
                }
                SqlType::Boolean => {
                    let mut b = BooleanBuilder::with_capacity(rows.len());
                    for r in rows {
                        b.append_option(match cell(r) {
                            Value::Bool(v) => Some(v),
                            Value::Number(n) => n.as_f64().map(|f| f != 0.0),
                            _ => None,
                        });
                    }
                    Arc::new(b.finish())
                }
                SqlType::Varchar | SqlType::Other => {
                    let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 8);
                    for r in rows {
                        match cell(r) {
                            Value::Null => b.append_null(),
                            Value::String(s) => b.append_value(s),
                            other => b.append_value(other.to_string()),
                        }
                    }
                    Arc::new(b.finish())
                }
            };
            arrays.push(array);
        }
        RecordBatch::try_new(self.arrow_schema(), arrays)
            .map_err(|e| Error::internal(format!("building a result batch: {e}")))
    }

    /// Convert all rows into one Arrow record batch.
    pub fn to_record_batch(&self) -> Result<RecordBatch> {
        self.to_record_batch_range(0..self.rows.len())
    }
}

/// The Arrow schema of result columns: every field nullable, typed by its SQL type.
fn arrow_schema_of(columns: &[TableColumn]) -> Arc<Schema> {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(&c.name, c.sql_type.arrow_type(), true))
            .collect::<Vec<_>>(),
    ))
}

/// The output type of a native aggregator.
fn aggregator_type(a: &crate::query::aggregator::AggregatorSpec) -> SqlType {
    use crate::query::aggregator::AggKind;
    match &a.kind {
        AggKind::Count | AggKind::Long(_) | AggKind::LongPair(_) => SqlType::Bigint,
        AggKind::Double(_) | AggKind::DoublePair(_) => SqlType::Double,
        AggKind::Hll { round: true, .. } => SqlType::Bigint,
        AggKind::Hll { .. } => SqlType::Double,
    }
}

fn dimension_type(d: &crate::query::spec::DimensionSpec) -> SqlType {
    use crate::query::spec::OutputType;
    match d.output_type {
        OutputType::String => SqlType::Varchar,
        OutputType::Long => SqlType::Bigint,
        OutputType::Double => SqlType::Double,
    }
}

fn col(name: &str, sql_type: SqlType) -> TableColumn {
    TableColumn {
        name: name.to_string(),
        sql_type,
    }
}

/// A cell normalized to its column type's rendering (timestamps as ISO text).
pub(crate) fn cell(v: Option<&Value>, t: SqlType) -> Value {
    match (v, t) {
        (None, _) | (Some(Value::Null), _) => Value::Null,
        (Some(Value::Number(n)), SqlType::Timestamp) => n
            .as_i64()
            .map(|ms| Value::String(crate::time::format_iso_millis(ms)))
            .unwrap_or(Value::Null),
        // Bucket timestamps of zoned granularities carry an offset: render them in UTC.
        (Some(Value::String(t)), SqlType::Timestamp) if !t.ends_with('Z') => {
            match crate::time::parse_iso_timestamp(t) {
                Ok(ms) => Value::String(crate::time::format_iso_millis(ms)),
                Err(_) => Value::String(t.clone()),
            }
        }
        (Some(v), SqlType::Other) if !v.is_string() => Value::String(v.to_string()),
        (Some(v), _) => v.clone(),
    }
}

/// The type of a column inferred from its values (first non-null wins; VARCHAR when all null).
fn infer_type(values: impl Iterator<Item = Value>) -> SqlType {
    for v in values {
        match v {
            Value::Null => continue,
            Value::Bool(_) => return SqlType::Boolean,
            Value::Number(n) if n.is_i64() || n.is_u64() => return SqlType::Bigint,
            Value::Number(_) => return SqlType::Double,
            Value::String(_) => return SqlType::Varchar,
            _ => return SqlType::Other,
        }
    }
    SqlType::Varchar
}

impl Table {
    /// Flatten a native query's Druid JSON result into a table.
    ///
    /// timeseries: `__time` + aggregators + post-aggregators, one row per bucket (the grand
    /// total row has a null `__time`); topN: `__time` + the dimension + metrics, one row per
    /// entry; groupBy: `__time` (the bucket; the query interval start for granularity `all`) +
    /// dimensions + metrics; scan: the listed columns (or those the result names); timeBoundary:
    /// `__time`, `minTime`, `maxTime`; search: `__time`, `dimension`, `value`, `count`;
    /// segmentMetadata: `id`, `intervals`, `numRows`, `size`, `columns` (JSON text);
    /// dataSourceMetadata: `__time`, `maxIngestedEventTime`.
    pub fn from_native(q: &crate::query::spec::Query, result: &Value) -> Result<Table> {
        use crate::query::spec::Query;
        let items: &[Value] = result.as_array().map(Vec::as_slice).unwrap_or(&[]);
        let time = || col(crate::schema::TIME_COLUMN, SqlType::Timestamp);
        let metric_cols = |aggs: &[crate::query::aggregator::AggregatorSpec],
                           posts: &[crate::query::post_aggregator::PostAggregator]|
         -> Vec<TableColumn> {
            aggs.iter()
                .map(|a| col(&a.name, aggregator_type(a)))
                .chain(posts.iter().map(|p| col(p.name(), SqlType::Double)))
                .collect()
        };
        let row_of = |columns: &[TableColumn], ts: Option<&Value>, obj: &Value| -> Vec<Value> {
            columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i == 0 && c.name == crate::schema::TIME_COLUMN {
                        cell(ts, SqlType::Timestamp)
                    } else {
                        cell(obj.get(&c.name), c.sql_type)
                    }
                })
                .collect()
        };
        let mut table = Table::default();
        match q {
            Query::Timeseries {
                aggregations,
                post_aggregations,
                ..
            } => {
                table.columns = vec![time()];
                table
                    .columns
                    .extend(metric_cols(aggregations, post_aggregations));
                for it in items {
                    table
                        .rows
                        .push(row_of(&table.columns, it.get("timestamp"), &it["result"]));
                }
            }
            Query::TopN {
                dimension,
                aggregations,
                post_aggregations,
                ..
            } => {
                table.columns = vec![
                    time(),
                    col(&dimension.output_name, dimension_type(dimension)),
                ];
                table
                    .columns
                    .extend(metric_cols(aggregations, post_aggregations));
                for it in items {
                    for r in it["result"].as_array().into_iter().flatten() {
                        table
                            .rows
                            .push(row_of(&table.columns, it.get("timestamp"), r));
                    }
                }
            }
            Query::GroupBy {
                dimensions,
                aggregations,
                post_aggregations,
                ..
            } => {
                table.columns = vec![time()];
                table.columns.extend(
                    dimensions
                        .iter()
                        .map(|d| col(&d.output_name, dimension_type(d))),
                );
                table
                    .columns
                    .extend(metric_cols(aggregations, post_aggregations));
                for it in items {
                    table
                        .rows
                        .push(row_of(&table.columns, it.get("timestamp"), &it["event"]));
                }
            }
            Query::Scan { columns, .. } => {
                let mut names: Vec<String> = columns.clone();
                if names.is_empty() {
                    for it in items {
                        for n in it["columns"].as_array().into_iter().flatten() {
                            if let Some(s) = n.as_str()
                                && !names.iter().any(|x| x == s)
                            {
                                names.push(s.to_string());
                            }
                        }
                    }
                }
                let mut raw: Vec<Vec<Value>> = Vec::new();
                for it in items {
                    let batch_cols: Vec<&str> = it["columns"]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    for ev in it["events"].as_array().into_iter().flatten() {
                        raw.push(
                            names
                                .iter()
                                .map(|n| match ev {
                                    Value::Array(vals) => batch_cols
                                        .iter()
                                        .position(|c| c == n)
                                        .and_then(|i| vals.get(i))
                                        .cloned()
                                        .unwrap_or(Value::Null),
                                    other => other.get(n).cloned().unwrap_or(Value::Null),
                                })
                                .collect(),
                        );
                    }
                }
                table.columns = names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| {
                        let t = if n == crate::schema::TIME_COLUMN {
                            SqlType::Timestamp
                        } else {
                            infer_type(raw.iter().map(|r| r[i].clone()))
                        };
                        col(n, t)
                    })
                    .collect();
                let types: Vec<SqlType> = table.columns.iter().map(|c| c.sql_type).collect();
                table.rows = raw
                    .into_iter()
                    .map(|r| {
                        r.iter()
                            .zip(&types)
                            .map(|(v, t)| cell(Some(v), *t))
                            .collect()
                    })
                    .collect();
            }
            Query::TimeBoundary { .. } => {
                table.columns = vec![
                    time(),
                    col("minTime", SqlType::Timestamp),
                    col("maxTime", SqlType::Timestamp),
                ];
                for it in items {
                    table
                        .rows
                        .push(row_of(&table.columns, it.get("timestamp"), &it["result"]));
                }
            }
            Query::Search { .. } => {
                table.columns = vec![
                    time(),
                    col("dimension", SqlType::Varchar),
                    col("value", SqlType::Varchar),
                    col("count", SqlType::Bigint),
                ];
                for it in items {
                    for r in it["result"].as_array().into_iter().flatten() {
                        table
                            .rows
                            .push(row_of(&table.columns, it.get("timestamp"), r));
                    }
                }
            }
            Query::SegmentMetadata { .. } => {
                table.columns = vec![
                    col("id", SqlType::Varchar),
                    col("intervals", SqlType::Other),
                    col("numRows", SqlType::Bigint),
                    col("size", SqlType::Bigint),
                    col("columns", SqlType::Other),
                ];
                for it in items {
                    table.rows.push(
                        table
                            .columns
                            .iter()
                            .map(|c| cell(it.get(&c.name), c.sql_type))
                            .collect(),
                    );
                }
            }
            Query::DataSourceMetadata { .. } => {
                table.columns = vec![time(), col("maxIngestedEventTime", SqlType::Timestamp)];
                for it in items {
                    table
                        .rows
                        .push(row_of(&table.columns, it.get("timestamp"), &it["result"]));
                }
            }
        }
        Ok(table)
    }
}

/// A timestamp cell (ISO text or epoch milliseconds) as epoch milliseconds.
fn timestamp_millis(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => crate::time::parse_iso_timestamp(s).ok(),
        _ => None,
    }
}

/// A SQL result whose rows are a native scan's typed columns, shown through a projection: a
/// plain `SELECT columns FROM datasource WHERE … LIMIT …` is answered without a value per
/// cell, and rendered straight from the columns.
#[derive(Debug, Clone)]
pub struct ScanTable {
    /// Output columns.
    pub columns: Vec<TableColumn>,
    /// For each output column, the scan column it shows.
    pub projection: Vec<usize>,
    /// The scan's rows.
    pub scan: crate::query::scan_output::ScanOutput,
}

impl ScanTable {
    /// The rows as Arrow record batches of at most `max_rows` rows (`f` is called per batch),
    /// with the same schema and values as [`Table::to_record_batch`] of the materialized table.
    pub fn for_each_record_batch(
        &self,
        max_rows: usize,
        mut f: impl FnMut(RecordBatch) -> Result<()>,
    ) -> Result<()> {
        let schema = arrow_schema_of(&self.columns);
        let max_rows = max_rows.max(1);
        for batch in &self.scan.batches {
            let cells = ScanCells::new(self, batch);
            let mut start = 0;
            while start < batch.rows {
                let end = (start + max_rows).min(batch.rows);
                let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.columns.len());
                for (i, c) in self.columns.iter().enumerate() {
                    let col = self.projection.get(i).and_then(|&k| batch.data.get(k));
                    let array: ArrayRef = match (col, c.sql_type) {
                        (Some(col @ ScanColumn::Long(..)), SqlType::Timestamp) => {
                            let mut b = TimestampMillisecondBuilder::with_capacity(end - start)
                                .with_timezone("UTC");
                            (start..end).for_each(|r| b.append_option(col.long(r)));
                            Arc::new(b.finish())
                        }
                        (Some(col @ ScanColumn::Long(..)), SqlType::Bigint) => {
                            let mut b = Int64Builder::with_capacity(end - start);
                            (start..end).for_each(|r| b.append_option(col.long(r)));
                            Arc::new(b.finish())
                        }
                        (Some(col @ ScanColumn::Double(..)), SqlType::Double) => {
                            let mut b = Float64Builder::with_capacity(end - start);
                            // JSON has no NaN or infinities: the SQL answer is NULL there.
                            (start..end).for_each(|r| {
                                b.append_option(col.double(r).filter(|v| v.is_finite()))
                            });
                            Arc::new(b.finish())
                        }
                        (Some(col @ ScanColumn::Str(..)), SqlType::Varchar) => {
                            let mut b =
                                StringBuilder::with_capacity(end - start, (end - start) * 8);
                            (start..end).for_each(|r| b.append_option(col.str(r)));
                            Arc::new(b.finish())
                        }
                        _ => {
                            // Anything else converts cell by cell, as the table path does.
                            let one = Table {
                                columns: vec![c.clone()],
                                rows: (start..end)
                                    .map(|row| vec![RowRef::Scan { cells: &cells, row }.value(i)])
                                    .collect(),
                            };
                            one.to_record_batch()?.column(0).clone()
                        }
                    };
                    arrays.push(array);
                }
                f(RecordBatch::try_new(schema.clone(), arrays)
                    .map_err(|e| Error::internal(format!("building a result batch: {e}")))?)?;
                start = end;
            }
        }
        Ok(())
    }

    /// Call `f` on every row, in order.
    pub fn for_each_row(&self, mut f: impl FnMut(RowRef<'_>)) {
        for batch in &self.scan.batches {
            let cells = ScanCells::new(self, batch);
            for row in 0..batch.rows {
                f(RowRef::Scan { cells: &cells, row });
            }
        }
    }
}

/// The columns of one scan batch as a projected scan shows them, each column's kind resolved
/// once per batch rather than once per cell.
#[derive(Debug)]
pub struct ScanCells<'a> {
    /// For each output column: the scan column (`None`: absent) and the SQL type.
    sources: Vec<(Option<&'a ScanColumn>, SqlType)>,
    cells: Vec<ScanCell<'a>>,
}

/// How one output column of a batch is written.
#[derive(Debug)]
enum ScanCell<'a> {
    /// Every row is NULL.
    Null,
    /// A long shown as BIGINT; `true` in the mask is NULL.
    Long(&'a [i64], Option<&'a [bool]>),
    /// A long shown as TIMESTAMP.
    Time(&'a [i64], Option<&'a [bool]>),
    /// A double shown as DOUBLE.
    Double(&'a [f64], Option<&'a [bool]>),
    /// Dictionary ids (0 is NULL) and each dictionary entry's JSON text.
    Str(&'a [u32], EscapedDict<'a>),
    /// Anything else, converted through a datum as the table path does.
    Other(&'a ScanColumn, SqlType),
}

/// A dictionary's entries as JSON string literals: escaped once for the batch when the batch
/// has at least as many rows as the dictionary has entries, else escaped per cell.
#[derive(Debug)]
enum EscapedDict<'a> {
    /// Entry `i` is `text[ends[i - 1]..ends[i]]` (entry 0 starts at 0).
    Escaped { text: Vec<u8>, ends: Vec<usize> },
    /// The entries as they are.
    Raw(&'a [String]),
}

impl<'a> ScanCells<'a> {
    /// Resolve the output columns of `table` over `batch`.
    pub fn new(table: &'a ScanTable, batch: &'a ScanBatch) -> Self {
        let sources: Vec<(Option<&'a ScanColumn>, SqlType)> = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let col = table.projection.get(i).and_then(|&k| batch.data.get(k));
                (col, c.sql_type)
            })
            .collect();
        let cells = sources
            .iter()
            .map(|&(col, ty)| match (col, ty) {
                (None | Some(ScanColumn::Null), _) => ScanCell::Null,
                (Some(ScanColumn::Long(v, n)), SqlType::Bigint) => ScanCell::Long(v, n.as_deref()),
                (Some(ScanColumn::Long(v, n)), SqlType::Timestamp) => {
                    ScanCell::Time(v, n.as_deref())
                }
                (Some(ScanColumn::Double(v, n)), SqlType::Double) => {
                    ScanCell::Double(v, n.as_deref())
                }
                (Some(ScanColumn::Str(ids, dict)), SqlType::Varchar) => {
                    let dict = if dict.len() <= batch.rows {
                        let mut text = Vec::with_capacity(dict.len() * 16);
                        let mut ends = Vec::with_capacity(dict.len());
                        for s in dict.iter() {
                            crate::query::scan_output::write_str(&mut text, s);
                            ends.push(text.len());
                        }
                        EscapedDict::Escaped { text, ends }
                    } else {
                        EscapedDict::Raw(dict)
                    };
                    ScanCell::Str(ids, dict)
                }
                (Some(col), ty) => ScanCell::Other(col, ty),
            })
            .collect();
        ScanCells { sources, cells }
    }
}

/// A SQL answer's rows as the planner computed them: typed datums, rendered straight into the
/// response (the same text as their JSON values, [`crate::sql::datum::Datum::into_json`]).
#[derive(Debug, Clone, Default)]
pub struct DatumTable {
    /// Output columns.
    pub columns: Vec<TableColumn>,
    /// Rows, one datum per column.
    pub rows: Vec<Vec<crate::sql::datum::Datum>>,
}

impl DatumTable {
    /// A row's cells as JSON values.
    fn json_row(&self, row: &[crate::sql::datum::Datum]) -> Vec<Value> {
        self.columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                row.get(i)
                    .map_or(Value::Null, |d| d.clone().into_json(c.sql_type))
            })
            .collect()
    }
}

/// A SQL answer: a table of values, rows of datums, or a projected scan.
#[derive(Debug, Clone)]
pub enum SqlOutput {
    /// Rows of values.
    Table(Table),
    /// Rows of datums.
    Rows(DatumTable),
    /// A projected scan.
    Scan(ScanTable),
}

/// One row of a [`SqlOutput`], to render.
#[derive(Debug, Clone, Copy)]
pub enum RowRef<'a> {
    /// A row of values.
    Values(&'a [Value]),
    /// A row of datums, of `columns`' types.
    Datums(&'a [crate::sql::datum::Datum], &'a [TableColumn]),
    /// Row `row` of a scan batch, shown through a projected scan's columns.
    Scan {
        /// The batch's columns as the projected scan shows them.
        cells: &'a ScanCells<'a>,
        /// Row within the batch.
        row: usize,
    },
}

/// `true` when row `row` is NULL under a null mask.
#[inline]
fn masked(nulls: Option<&[bool]>, row: usize) -> bool {
    nulls.is_some_and(|n| n.get(row).copied().unwrap_or(true))
}

impl RowRef<'_> {
    /// Cell `i` as the JSON value the SQL API renders (`null` for SQL NULL).
    pub fn value(&self, i: usize) -> Value {
        match *self {
            RowRef::Values(v) => v.get(i).cloned().unwrap_or(Value::Null),
            RowRef::Datums(row, columns) => match (row.get(i), columns.get(i)) {
                (Some(d), Some(c)) => d.clone().into_json(c.sql_type),
                _ => Value::Null,
            },
            RowRef::Scan { cells, row } => match cells.sources.get(i) {
                Some(&(Some(col), ty)) => {
                    crate::sql::datum::Datum::from_scan(col, row, ty).into_json(ty)
                }
                _ => Value::Null,
            },
        }
    }

    /// Cell `i` written as JSON text (the same text as serializing [`RowRef::value`]).
    #[inline]
    pub fn write_json(&self, i: usize, out: &mut Vec<u8>) {
        use crate::query::scan_output::{write_f64, write_i64, write_str, write_value};
        match *self {
            RowRef::Values(v) => match v.get(i) {
                None | Some(Value::Null) => out.extend_from_slice(b"null"),
                Some(v) => write_value(out, v),
            },
            RowRef::Datums(row, columns) => {
                use crate::sql::datum::Datum;
                let (Some(d), Some(c)) = (row.get(i), columns.get(i)) else {
                    out.extend_from_slice(b"null");
                    return;
                };
                // The common cells directly; the rest as `into_json` renders them.
                match (d, c.sql_type) {
                    (Datum::Null, _) => out.extend_from_slice(b"null"),
                    (Datum::Long(v), SqlType::Bigint) => write_i64(out, *v),
                    (Datum::Double(v), SqlType::Double) => write_f64(out, *v),
                    (Datum::Ts(t), SqlType::Timestamp) => {
                        crate::time::write_iso_millis_json(out, *t)
                    }
                    (Datum::Str(s), SqlType::Varchar | SqlType::Other) => write_str(out, s),
                    (d, ty) => match d.clone().into_json(ty) {
                        Value::Null => out.extend_from_slice(b"null"),
                        v => write_value(out, &v),
                    },
                }
            }
            RowRef::Scan { cells, row } => match cells.cells.get(i) {
                None | Some(ScanCell::Null) => out.extend_from_slice(b"null"),
                Some(ScanCell::Long(v, nulls)) => match v.get(row) {
                    Some(&x) if !masked(*nulls, row) => write_i64(out, x),
                    _ => out.extend_from_slice(b"null"),
                },
                Some(ScanCell::Time(v, nulls)) => match v.get(row) {
                    Some(&t) if !masked(*nulls, row) => crate::time::write_iso_millis_json(out, t),
                    _ => out.extend_from_slice(b"null"),
                },
                Some(ScanCell::Double(v, nulls)) => match v.get(row) {
                    Some(&x) if !masked(*nulls, row) => write_f64(out, x),
                    _ => out.extend_from_slice(b"null"),
                },
                Some(ScanCell::Str(ids, dict)) => match ids.get(row).map(|&id| id as usize) {
                    None | Some(0) => out.extend_from_slice(b"null"),
                    Some(id) => match dict {
                        // Entry `id` (>= 1) ends where entry `id - 1` ended.
                        EscapedDict::Escaped { text, ends } => {
                            match (ends.get(id - 1), ends.get(id)) {
                                (Some(&start), Some(&end)) => {
                                    out.extend_from_slice(&text[start..end])
                                }
                                _ => out.extend_from_slice(b"null"),
                            }
                        }
                        EscapedDict::Raw(d) => match d.get(id) {
                            Some(s) => write_str(out, s),
                            None => out.extend_from_slice(b"null"),
                        },
                    },
                },
                Some(ScanCell::Other(col, ty)) => write_value(
                    out,
                    &crate::sql::datum::Datum::from_scan(col, row, *ty).into_json(*ty),
                ),
            },
        }
    }
}

impl SqlOutput {
    /// The output columns.
    pub fn columns(&self) -> &[TableColumn] {
        match self {
            SqlOutput::Table(t) => &t.columns,
            SqlOutput::Rows(t) => &t.columns,
            SqlOutput::Scan(s) => &s.columns,
        }
    }

    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        match self {
            SqlOutput::Table(t) => t.rows.len(),
            SqlOutput::Rows(t) => t.rows.len(),
            SqlOutput::Scan(s) => s.scan.num_rows(),
        }
    }

    /// Call `f` on every row, in order.
    pub fn for_each_row(&self, mut f: impl FnMut(RowRef<'_>)) {
        match self {
            SqlOutput::Table(t) => t.rows.iter().for_each(|r| f(RowRef::Values(r))),
            SqlOutput::Rows(t) => t.rows.iter().for_each(|r| f(RowRef::Datums(r, &t.columns))),
            SqlOutput::Scan(s) => s.for_each_row(f),
        }
    }

    /// The Arrow schema of the record batches.
    pub fn arrow_schema(&self) -> Arc<Schema> {
        match self {
            SqlOutput::Table(t) => t.arrow_schema(),
            SqlOutput::Rows(t) => arrow_schema_of(&t.columns),
            SqlOutput::Scan(s) => arrow_schema_of(&s.columns),
        }
    }

    /// The rows as Arrow record batches of at most `max_rows` rows, in order (`f` is called per
    /// batch, so a large answer is not converted all at once).
    pub fn for_each_record_batch(
        &self,
        max_rows: usize,
        mut f: impl FnMut(RecordBatch) -> Result<()>,
    ) -> Result<()> {
        match self {
            SqlOutput::Table(t) => {
                let max_rows = max_rows.max(1);
                let mut start = 0;
                while start < t.rows.len() {
                    let end = (start + max_rows).min(t.rows.len());
                    f(t.to_record_batch_range(start..end)?)?;
                    start = end;
                }
                Ok(())
            }
            SqlOutput::Rows(t) => {
                for chunk in t.rows.chunks(max_rows.max(1)) {
                    let part = Table {
                        columns: t.columns.clone(),
                        rows: chunk.iter().map(|r| t.json_row(r)).collect(),
                    };
                    f(part.to_record_batch()?)?;
                }
                Ok(())
            }
            SqlOutput::Scan(s) => s.for_each_record_batch(max_rows, f),
        }
    }

    /// The answer as a table of values.
    pub fn into_table(self) -> Table {
        match self {
            SqlOutput::Table(t) => t,
            SqlOutput::Rows(t) => {
                let rows = t
                    .rows
                    .into_iter()
                    .map(|r| {
                        let mut r = r.into_iter();
                        t.columns
                            .iter()
                            .map(|c| r.next().map_or(Value::Null, |d| d.into_json(c.sql_type)))
                            .collect()
                    })
                    .collect();
                Table {
                    columns: t.columns,
                    rows,
                }
            }
            SqlOutput::Scan(s) => {
                let mut rows = Vec::with_capacity(s.scan.num_rows());
                let width = s.columns.len();
                s.for_each_row(|r| {
                    rows.push((0..width).map(|i| r.value(i)).collect());
                });
                Table {
                    columns: s.columns,
                    rows,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::scan_output::{ScanBatch, ScanColumn, ScanOutput};

    /// Typed columns with nulls, a NaN, an absent column, complex cells, columns shown twice
    /// and under other types, over two batches.
    fn scan_table() -> ScanTable {
        let col = |name: &str, sql_type| TableColumn {
            name: name.into(),
            sql_type,
        };
        let dict = Arc::new(vec![String::new(), "a".into(), "b,\"c\"".into()]);
        let names = Arc::new(
            ["__time", "host", "n", "x", "gone", "m"]
                .map(String::from)
                .to_vec(),
        );
        let batch = |id: &str, rows: usize, data: Vec<ScanColumn>| ScanBatch {
            segment_id: Arc::from(id),
            columns: names.clone(),
            data,
            times: None,
            rows,
        };
        ScanTable {
            columns: vec![
                col("__time", SqlType::Timestamp),
                col("host", SqlType::Varchar),
                col("n", SqlType::Bigint),
                col("x", SqlType::Double),
                col("gone", SqlType::Varchar),
                col("m", SqlType::Other),
                col("n_double", SqlType::Double),
                col("n_text", SqlType::Varchar),
                col("x_long", SqlType::Bigint),
                col("t_long", SqlType::Bigint),
            ],
            projection: vec![0, 1, 2, 3, 4, 5, 2, 2, 3, 0],
            scan: ScanOutput {
                batches: vec![
                    batch(
                        "s1",
                        3,
                        vec![
                            ScanColumn::Long(vec![1_451_606_400_000, -1, 5], None),
                            ScanColumn::Str(vec![1, 0, 2], dict.clone()),
                            ScanColumn::Long(vec![3, 0, -7], Some(vec![false, true, false])),
                            ScanColumn::Double(vec![1.5, f64::NAN, 1e300], None),
                            ScanColumn::Null,
                            ScanColumn::Json(vec![
                                serde_json::json!(["a"]),
                                Value::Null,
                                serde_json::json!(2.5),
                            ]),
                        ],
                    ),
                    batch(
                        "s2",
                        2,
                        vec![
                            ScanColumn::Long(vec![0, 7], None),
                            ScanColumn::Str(vec![0, 1], dict),
                            ScanColumn::Long(vec![i64::MAX, 1], None),
                            ScanColumn::Double(vec![-0.0, 2.75], Some(vec![false, true])),
                            ScanColumn::Null,
                            ScanColumn::Json(vec![serde_json::json!({"k": 1}), Value::Null]),
                        ],
                    ),
                ],
                compacted: true,
            },
        }
    }

    /// Datums of every kind under every column type: each cell is written as the text of its
    /// JSON value, and the Arrow batches are the table's.
    #[test]
    fn datum_rows_render_as_their_json_values() -> Result<()> {
        use crate::sql::datum::Datum;
        let types = [
            SqlType::Timestamp,
            SqlType::Bigint,
            SqlType::Double,
            SqlType::Varchar,
            SqlType::Boolean,
            SqlType::Other,
        ];
        let datums = [
            Datum::Null,
            Datum::Bool(true),
            Datum::Long(-7),
            Datum::Long(i64::MAX),
            Datum::Double(2.5),
            Datum::Double(-0.0),
            Datum::Double(f64::NAN),
            Datum::Double(1e300),
            Datum::Str("a,\"b\"\n".into()),
            Datum::Str("2016-01-01T00:00:00.000Z".into()),
            Datum::Str(String::new()),
            Datum::Ts(1_451_606_400_123),
            Datum::Ts(-62_135_596_800_001),
        ];
        let columns: Vec<TableColumn> = types
            .iter()
            .enumerate()
            .map(|(i, t)| TableColumn {
                name: format!("c{i}"),
                sql_type: *t,
            })
            .collect();
        let rows: Vec<Vec<Datum>> = datums
            .iter()
            .map(|d| types.iter().map(|_| d.clone()).collect())
            .collect();
        let out = SqlOutput::Rows(DatumTable {
            columns: columns.clone(),
            rows: rows.clone(),
        });
        let table = out.clone().into_table();
        assert_eq!(table.rows.len(), datums.len());
        let mut r = 0;
        out.for_each_row(|row| {
            for (i, c) in columns.iter().enumerate() {
                let mut text = Vec::new();
                row.write_json(i, &mut text);
                let want = rows[r][i].clone().into_json(c.sql_type);
                assert_eq!(row.value(i), want, "row {r} column {c:?}");
                assert_eq!(
                    text,
                    serde_json::to_vec(&want).unwrap_or_default(),
                    "row {r} column {c:?}"
                );
                assert_eq!(table.rows[r][i], want);
            }
            r += 1;
        });
        assert_eq!(r, datums.len());
        let mut batches = Vec::new();
        out.for_each_record_batch(4, |b| {
            batches.push(b);
            Ok(())
        })?;
        let got = arrow_select::concat::concat_batches(&out.arrow_schema(), &batches)
            .map_err(|e| Error::internal(e.to_string()))?;
        assert_eq!(got, table.to_record_batch()?);
        Ok(())
    }

    #[test]
    fn projected_scan_batches_equal_the_table_batches() -> Result<()> {
        let scan = SqlOutput::Scan(scan_table());
        let table = scan.clone().into_table();
        assert_eq!(table.rows.len(), 5);
        let expected = table.to_record_batch()?;
        for max_rows in [1, 2, 8192] {
            let mut batches = Vec::new();
            scan.for_each_record_batch(max_rows, |b| {
                batches.push(b);
                Ok(())
            })?;
            assert!(batches.iter().all(|b| b.num_rows() <= max_rows));
            let got = arrow_select::concat::concat_batches(&scan.arrow_schema(), &batches)
                .map_err(|e| Error::internal(e.to_string()))?;
            assert_eq!(got, expected, "max_rows {max_rows}");
        }
        Ok(())
    }
}
