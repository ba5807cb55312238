//! Druid SQL: parsed with `sqlparser`, planned into native queries plus a small relational layer.
//!
//! A statement is parsed ([`sqlparser`], generic dialect: identifiers in double quotes, strings
//! in single quotes), its `?` placeholders numbered, and each SELECT planned by
//! [`planner::Planner`]: the FROM source (datasource, subquery, CTE, `INFORMATION_SCHEMA`,
//! `sys`), the WHERE clause split into native `intervals` (so segments are pruned), a native
//! filter and a relational residual, the aggregation pushed down into one native
//! timeseries/topN/groupBy query when every part is expressible (else a native scan feeds a
//! relational aggregation), then HAVING, projection, DISTINCT, ORDER BY and LIMIT/OFFSET over the
//! result. `EXPLAIN PLAN FOR` returns the native queries and relational steps without running
//! them.

pub mod bind;
pub mod datum;
pub mod expr;
pub mod metadata;
pub mod planner;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use parking_lot::Mutex;

use serde::Deserialize;
use serde_json::{Map, Value, json};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::table::{DatumTable, SqlOutput, SqlType, Table, TableColumn};

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

/// Strip a leading `EXPLAIN PLAN FOR` (any case, any whitespace); returns the rest.
fn strip_explain(sql: &str) -> Option<&str> {
    let mut rest = sql.trim_start();
    for word in ["EXPLAIN", "PLAN", "FOR"] {
        let head = rest.get(..word.len())?;
        if !head.eq_ignore_ascii_case(word) {
            return None;
        }
        rest = &rest[word.len()..];
        if !rest.starts_with(|c: char| c.is_whitespace()) {
            return None;
        }
        rest = rest.trim_start();
    }
    Some(rest)
}

/// Statements kept by [`StatementCache`] at most; it starts over when full.
const STATEMENT_CACHE_ENTRIES: usize = 512;
/// Longer statement texts are parsed every time rather than kept.
const STATEMENT_CACHE_MAX_TEXT: usize = 64 * 1024;

/// Parsed statements by their text: dashboards send the same SQL again and again, and
/// tokenizing and parsing were the largest part of SQL's fixed cost per statement.
///
/// Only the syntax tree is kept, which depends on the text alone. Everything that can change
/// between two runs of one text is bound on every run: the datasource's columns (so a
/// publish, a spec update or a drop is seen at once), the parameters, the context and the
/// clock (`CURRENT_TIMESTAMP`), so nothing kept can go stale.
#[derive(Debug, Default)]
pub(crate) struct StatementCache {
    parsed: Mutex<HashMap<String, Arc<sqlparser::ast::Query>>>,
}

impl StatementCache {
    /// The parsed statement `text`, from the cache or parsed now (errors are not kept).
    fn get_or_parse(&self, text: &str) -> Result<Arc<sqlparser::ast::Query>> {
        if let Some(q) = self.parsed.lock().get(text) {
            return Ok(q.clone());
        }
        let q = Arc::new(parse(text)?);
        if text.len() <= STATEMENT_CACHE_MAX_TEXT {
            let mut parsed = self.parsed.lock();
            if parsed.len() >= STATEMENT_CACHE_ENTRIES {
                parsed.clear();
            }
            parsed.insert(text.to_string(), q.clone());
        }
        Ok(q)
    }

    /// Number of statements kept.
    pub(crate) fn len(&self) -> usize {
        self.parsed.lock().len()
    }
}

/// Parse one SQL query statement, numbering `?` placeholders `?1`, `?2`, … in text order.
fn parse(sql: &str) -> Result<sqlparser::ast::Query> {
    let dialect = GenericDialect {};
    let mut tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| Error::invalid(format!("SQL parse error: {e}")))?;
    let mut n = 0;
    for t in &mut tokens {
        if let Token::Placeholder(p) = &mut t.token
            && p == "?"
        {
            n += 1;
            *p = format!("?{n}");
        }
    }
    let mut statements = Parser::new(&dialect)
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .map_err(|e| Error::invalid(format!("SQL parse error: {e}")))?;
    if statements.len() != 1 {
        return Err(Error::invalid(format!(
            "expected exactly one SQL statement, found {}",
            statements.len()
        )));
    }
    match statements.pop() {
        Some(sqlparser::ast::Statement::Query(q)) => Ok(*q),
        Some(other) => {
            let text = other.to_string();
            let word = text
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            Err(Error::Unsupported(format!(
                "{word} statements are not supported (only SELECT queries and EXPLAIN PLAN FOR)"
            )))
        }
        None => Err(Error::invalid("empty SQL statement".to_string())),
    }
}

fn native_context(request: &SqlRequest) -> Result<Map<String, Value>> {
    let mut ctx = Map::new();
    for (k, v) in &request.context {
        match k.as_str() {
            "timeout" => {
                let ms = match v {
                    Value::Number(n) => n.as_u64(),
                    Value::String(s) => s.parse::<u64>().ok(),
                    _ => None,
                }
                .ok_or_else(|| {
                    Error::invalid(format!("context.timeout: expected milliseconds, found {v}"))
                })?;
                ctx.insert("timeout".into(), json!(ms));
            }
            "sqlQueryId" | "queryId" => {
                ctx.insert("queryId".into(), v.clone());
            }
            "priority" | "maxScanRows" | "maxGroupByRows" => {
                ctx.insert(k.clone(), v.clone());
            }
            "sqlTimeZone" => {
                let tz = v.as_str().unwrap_or("");
                if !(tz.eq_ignore_ascii_case("UTC") || tz.eq_ignore_ascii_case("Etc/UTC")) {
                    return Err(Error::Unsupported(format!(
                        "context.sqlTimeZone `{tz}`: only UTC is supported (use TIME_FLOOR with a time zone argument)"
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(ctx)
}

/// Run one SQL statement against `engine`.
pub fn execute(
    engine: &Engine,
    request: &SqlRequest,
    cancelled: Option<Arc<AtomicBool>>,
) -> Result<Table> {
    Ok(execute_output(engine, request, cancelled)?.into_table())
}

/// Run a SQL statement; a plain scan's answer stays in typed columns.
pub fn execute_output(
    engine: &Engine,
    request: &SqlRequest,
    cancelled: Option<Arc<AtomicBool>>,
) -> Result<SqlOutput> {
    let text = request.query.trim().trim_end_matches(';');
    let (explain, text) = match strip_explain(text) {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let query = engine.sql_statements.get_or_parse(text)?;
    let approx_distinct = match request.context.get("useApproximateCountDistinct") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s != "false",
        Some(other) => {
            return Err(Error::invalid(format!(
                "context.useApproximateCountDistinct: expected a boolean, found {other}"
            )));
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let mut planner = planner::Planner {
        engine,
        binder: bind::Binder {
            params: &request.parameters,
            now,
            approx_distinct,
        },
        native_context: native_context(request)?,
        cancelled,
        ctes: Vec::new(),
        explain: explain.then(Vec::new),
        columnar_ok: true,
        columnar_out: None,
    };
    let rel = planner.run_query(&query)?;
    if let Some(scan) = planner.columnar_out.take() {
        return Ok(SqlOutput::Scan(scan));
    }
    if let Some(steps) = planner.explain {
        let mut resources: Vec<Value> = Vec::new();
        for s in &steps {
            if let Some(ds) = s.pointer("/query/dataSource") {
                let r = json!({"name": ds, "type": "DATASOURCE"});
                if !resources.contains(&r) {
                    resources.push(r);
                }
            }
        }
        return Ok(SqlOutput::Table(Table {
            columns: vec![
                TableColumn {
                    name: "PLAN".into(),
                    sql_type: SqlType::Varchar,
                },
                TableColumn {
                    name: "RESOURCES".into(),
                    sql_type: SqlType::Varchar,
                },
            ],
            rows: vec![vec![
                Value::String(Value::Array(steps).to_string()),
                Value::String(Value::Array(resources).to_string()),
            ]],
        }));
    }
    let planner::Relation { names, types, rows } = rel;
    Ok(SqlOutput::Rows(DatumTable {
        columns: names
            .into_iter()
            .zip(types)
            .map(|(name, sql_type)| TableColumn { name, sql_type })
            .collect(),
        rows,
    }))
}
