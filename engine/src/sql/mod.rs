//! Druid SQL: parsed with `sqlparser`, planned into native queries plus a small relational layer.

use serde::Deserialize;
use serde_json::{Map, Value};

/// A SQL request, as Druid's `POST /druid/v2/sql` body carries it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SqlRequest {
    /// The SQL text.
    pub query: String,
    /// Values for the `?` placeholders, in order.
    #[serde(default)]
    pub parameters: Vec<SqlParameter>,
    /// Query context (`sqlQueryId`, `timeout`, `sqlTimeZone`, `useApproximateCountDistinct`, …).
    #[serde(default)]
    pub context: Map<String, Value>,
}

/// A typed dynamic parameter: `{"type": "VARCHAR", "value": "foo"}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SqlParameter {
    /// SQL type name (VARCHAR, BIGINT, DOUBLE, TIMESTAMP, BOOLEAN, …).
    #[serde(rename = "type")]
    pub type_name: String,
    /// The value.
    pub value: Value,
}
