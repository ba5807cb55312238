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
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, c.sql_type.arrow_type(), true))
                .collect::<Vec<_>>(),
        ))
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
                    let mut b = TimestampMillisecondBuilder::with_capacity(rows.len())
                        .with_timezone("UTC");
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

/// A timestamp cell (ISO text or epoch milliseconds) as epoch milliseconds.
fn timestamp_millis(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => crate::time::parse_iso_timestamp(s).ok(),
        _ => None,
    }
}
