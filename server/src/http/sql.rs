//! `POST /druid/v2/sql` and `DELETE /druid/v2/sql/{id}`: Druid's SQL API.
//!
//! The body is Druid's (`query`, `resultFormat`, `header`, `typesHeader`, `sqlTypesHeader`,
//! `parameters`, `context`); the answer is the engine's [`Table`] rendered in the requested
//! result format, with Druid's header rows and trailing blank line for the line formats. Every
//! running query is registered under its `sqlQueryId` so a `DELETE` can cancel it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use basalt_engine::sql::{SqlParameter, SqlRequest};
use basalt_engine::table::{SqlOutput, TableColumn};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::AppState;
use super::error::{ApiError, RawBody, parse_json};
use crate::metrics;

/// Response header carrying the query id.
pub const QUERY_ID_HEADER: &str = "X-Druid-SQL-Query-Id";
/// Response header telling that the first row(s) are a header.
pub const HEADER_INCLUDED_HEADER: &str = "X-Druid-SQL-Header-Included";

/// Druid's SQL request body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SqlBody {
    query: String,
    #[serde(default)]
    result_format: Option<String>,
    #[serde(default)]
    header: bool,
    #[serde(default)]
    types_header: bool,
    #[serde(default)]
    sql_types_header: bool,
    #[serde(default)]
    parameters: Vec<SqlParameter>,
    #[serde(default)]
    context: Map<String, Value>,
}

/// Druid's SQL result formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultFormat {
    /// A JSON array of objects.
    Object,
    /// A JSON array of arrays.
    Array,
    /// One JSON object per line, then a blank line.
    ObjectLines,
    /// One JSON array per line, then a blank line.
    ArrayLines,
    /// Comma-separated values, then a blank line.
    Csv,
}

impl ResultFormat {
    /// Parse a `resultFormat` value (Druid accepts any letter case).
    pub fn parse(name: &str) -> Result<ResultFormat, ApiError> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "object" => ResultFormat::Object,
            "array" => ResultFormat::Array,
            "objectlines" => ResultFormat::ObjectLines,
            "arraylines" => ResultFormat::ArrayLines,
            "csv" => ResultFormat::Csv,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "resultFormat: unsupported result format {name:?}; supported: object, array, \
                     objectLines, arrayLines, csv"
                )));
            }
        })
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            ResultFormat::Object | ResultFormat::Array => "application/json",
            ResultFormat::ObjectLines | ResultFormat::ArrayLines => "text/plain",
            ResultFormat::Csv => "text/csv",
        }
    }
}

/// Which header rows to write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeaderSpec {
    /// Column names (`header`).
    pub names: bool,
    /// Druid runtime types (`typesHeader`).
    pub types: bool,
    /// SQL types (`sqlTypesHeader`).
    pub sql_types: bool,
}

/// Render `table` in `format` with the requested header rows.
///
/// Cells are written straight into the output buffer; in the object formats each column's
/// `"name":` is escaped once, not once per row.
pub fn render(table: &SqlOutput, format: ResultFormat, header: HeaderSpec) -> Vec<u8> {
    let columns = table.columns();
    let width = columns.len();
    let mut out: Vec<u8> = Vec::with_capacity(64 + table.num_rows() * width * 16);
    match format {
        ResultFormat::Object | ResultFormat::ObjectLines => {
            let lines = format == ResultFormat::ObjectLines;
            let keys: Vec<Vec<u8>> = columns
                .iter()
                .map(|c| {
                    let mut k = json_string(&c.name).into_bytes();
                    k.push(b':');
                    k
                })
                .collect();
            if !lines {
                out.push(b'[');
            }
            if header.names {
                // The header row: each column's types, or null.
                out.push(b'{');
                for (i, (key, c)) in keys.iter().zip(columns).enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(key);
                    if !header.types && !header.sql_types {
                        out.extend_from_slice(b"null");
                        continue;
                    }
                    let mut m = String::from("{");
                    if header.types {
                        let _ = write!(m, "\"type\":{}", json_string(c.sql_type.druid_name()));
                    }
                    if header.sql_types {
                        if header.types {
                            m.push(',');
                        }
                        let _ = write!(m, "\"sqlType\":{}", json_string(c.sql_type.sql_name()));
                    }
                    m.push('}');
                    out.extend_from_slice(m.as_bytes());
                }
                out.push(b'}');
                if lines {
                    out.push(b'\n');
                }
            }
            // Rows are written inline, without a call through a closure per cell.
            let mut first = !header.names;
            table.for_each_row(|row| {
                if !lines && !first {
                    out.push(b',');
                }
                first = false;
                out.push(b'{');
                for (i, key) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(key);
                    row.write_json(i, &mut out);
                }
                out.push(b'}');
                if lines {
                    out.push(b'\n');
                }
            });
            if lines {
                out.push(b'\n');
            } else {
                out.push(b']');
            }
        }
        ResultFormat::Array | ResultFormat::ArrayLines => {
            let lines = format == ResultFormat::ArrayLines;
            if !lines {
                out.push(b'[');
            }
            let mut n = 0usize;
            let mut row_start = |out: &mut Vec<u8>| {
                if !lines && n > 0 {
                    out.push(b',');
                }
                n += 1;
                out.push(b'[');
            };
            let row_end = |out: &mut Vec<u8>| {
                out.push(b']');
                if lines {
                    out.push(b'\n');
                }
            };
            for cells in header_rows(columns, header) {
                row_start(&mut out);
                for (i, c) in cells.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(json_string(c).as_bytes());
                }
                row_end(&mut out);
            }
            table.for_each_row(|row| {
                row_start(&mut out);
                for i in 0..width {
                    if i > 0 {
                        out.push(b',');
                    }
                    row.write_json(i, &mut out);
                }
                row_end(&mut out);
            });
            if lines {
                out.push(b'\n');
            } else {
                out.push(b']');
            }
        }
        ResultFormat::Csv => {
            for row in header_rows(columns, header) {
                let cells: Vec<String> = row.iter().map(|s| csv_field(s)).collect();
                out.extend_from_slice(cells.join(",").as_bytes());
                out.push(b'\n');
            }
            table.for_each_row(|row| {
                let cells: Vec<String> = (0..width).map(|i| csv_cell(&row.value(i))).collect();
                out.extend_from_slice(cells.join(",").as_bytes());
                out.push(b'\n');
            });
            out.push(b'\n');
        }
    }
    out
}

/// The header rows of the array and CSV formats: names, then Druid types, then SQL types.
fn header_rows(columns: &[TableColumn], header: HeaderSpec) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    if !header.names {
        return rows;
    }
    rows.push(columns.iter().map(|c| c.name.clone()).collect());
    if header.types {
        rows.push(
            columns
                .iter()
                .map(|c| c.sql_type.druid_name().to_string())
                .collect(),
        );
    }
    if header.sql_types {
        rows.push(
            columns
                .iter()
                .map(|c| c.sql_type.sql_name().to_string())
                .collect(),
        );
    }
    rows
}

fn json_string(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// A CSV cell: SQL NULL is an empty field; strings as they are; anything else as JSON text.
fn csv_cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => csv_field(s),
        other => csv_field(&other.to_string()),
    }
}

/// Quote a CSV field when it contains a separator, quote or line break (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Queries in flight, by `sqlQueryId`, with the flag that cancels each.
#[derive(Debug, Default)]
pub struct QueryRegistry {
    running: Mutex<HashMap<String, Arc<AtomicBool>>>,
}

impl QueryRegistry {
    /// Register a running query; fails if a query with this id is already running. The guard
    /// unregisters it and sets its cancel flag when dropped (also when the client goes away).
    pub fn register(self: &Arc<Self>, id: &str) -> Result<RunningQuery, ApiError> {
        let flag = Arc::new(AtomicBool::new(false));
        let mut running = self.running.lock();
        if running.contains_key(id) {
            return Err(ApiError::bad_request(format!(
                "context.sqlQueryId: a query with id {id:?} is already running"
            )));
        }
        running.insert(id.to_string(), flag.clone());
        Ok(RunningQuery {
            registry: self.clone(),
            id: id.to_string(),
            flag,
        })
    }

    /// Cancel the running query `id`; false if there is none.
    pub fn cancel(&self, id: &str) -> bool {
        match self.running.lock().get(id) {
            Some(flag) => {
                flag.store(true, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }
}

/// A registered query; see [`QueryRegistry::register`].
#[derive(Debug)]
pub struct RunningQuery {
    registry: Arc<QueryRegistry>,
    id: String,
    flag: Arc<AtomicBool>,
}

impl RunningQuery {
    /// The flag the engine polls.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.flag.clone()
    }
}

impl Drop for RunningQuery {
    fn drop(&mut self) {
        self.flag.store(true, Ordering::Relaxed);
        self.registry.running.lock().remove(&self.id);
    }
}

/// A new query id: 128 random bits (from the standard library's randomly keyed hasher and a
/// process counter) in UUID text form.
pub(crate) fn new_query_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut words = [0u64; 2];
    for w in &mut words {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        *w = h.finish();
    }
    let hex = format!("{:016x}{:016x}", words[0], words[1]);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `POST /druid/v2/sql`.
pub async fn sql_query(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let plain_text = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    let body: SqlBody = if plain_text {
        let text = std::str::from_utf8(&body)
            .map_err(|e| ApiError::bad_request(format!("the SQL text is not UTF-8: {e}")))?;
        SqlBody {
            query: text.to_string(),
            result_format: None,
            header: false,
            types_header: false,
            sql_types_header: false,
            parameters: Vec::new(),
            context: Map::new(),
        }
    } else {
        parse_json(&body)?
    };
    let format = match &body.result_format {
        Some(f) => ResultFormat::parse(f)?,
        None => ResultFormat::Object,
    };
    if !body.header && (body.types_header || body.sql_types_header) {
        return Err(ApiError::bad_request(
            "typesHeader and sqlTypesHeader can only be set when header is true",
        ));
    }
    if body.query.trim().is_empty() {
        return Err(ApiError::bad_request("query: the SQL text is empty"));
    }
    let mut context = body.context;
    let id = match context.get("sqlQueryId") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) | None | Some(Value::Null) => new_query_id(),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "context.sqlQueryId: expected a string, found {other}"
            )));
        }
    };
    context.insert("sqlQueryId".into(), Value::String(id.clone()));
    let request = SqlRequest {
        query: body.query,
        parameters: body.parameters,
        context,
    };
    let header_spec = HeaderSpec {
        names: body.header,
        types: body.types_header,
        sql_types: body.sql_types_header,
    };

    let running = state.sql_queries.register(&id)?;
    let flag = running.flag();
    let engine_state = state.clone();
    let result = tokio::task::spawn_blocking(move || {
        let output = engine_state.engine.sql_output(&request, Some(flag))?;
        let bytes = render(&output, format, header_spec);
        Ok::<_, basalt_engine::Error>((output.num_rows(), bytes))
    })
    .await;
    drop(running);
    let (rows, bytes) = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            let err = ApiError::from(e);
            ::metrics::counter!(metrics::QUERY_ERRORS_TOTAL, "kind" => "sql", "status" => err.status.as_str().to_string()).increment(1);
            let mut response = err.into_response();
            if let Ok(v) = HeaderValue::from_str(&id) {
                response.headers_mut().insert(QUERY_ID_HEADER, v);
            }
            return Ok(response);
        }
        Err(e) => return Err(ApiError::internal("running a SQL query", e)),
    };
    ::metrics::counter!(metrics::QUERY_ROWS_TOTAL, "kind" => "sql").increment(rows as u64);
    let mut response = ([(header::CONTENT_TYPE, format.content_type())], bytes).into_response();
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(QUERY_ID_HEADER, v);
    }
    if header_spec.names {
        response
            .headers_mut()
            .insert(HEADER_INCLUDED_HEADER, HeaderValue::from_static("yes"));
    }
    Ok(response)
}

/// `DELETE /druid/v2/sql/{id}`: 202 when a running query was cancelled, 404 otherwise.
pub async fn cancel_sql(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.sql_queries.cancel(&id) {
        Ok(StatusCode::ACCEPTED)
    } else {
        Err(ApiError::not_found(format!(
            "no running SQL query with id {id:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use basalt_engine::query::scan_output::{ScanBatch, ScanColumn, ScanOutput};
    use basalt_engine::table::{ScanTable, SqlType, Table, TableColumn};
    use serde_json::json;

    use super::*;

    fn table() -> Table {
        Table {
            columns: vec![
                TableColumn {
                    name: "__time".into(),
                    sql_type: SqlType::Timestamp,
                },
                TableColumn {
                    name: "host".into(),
                    sql_type: SqlType::Varchar,
                },
                TableColumn {
                    name: "n".into(),
                    sql_type: SqlType::Bigint,
                },
                TableColumn {
                    name: "avg".into(),
                    sql_type: SqlType::Double,
                },
            ],
            rows: vec![
                vec![
                    json!("2016-01-01T00:00:00.000Z"),
                    json!("a,\"b\""),
                    json!(3),
                    json!(1.5),
                ],
                vec![
                    json!("2016-01-01T01:00:00.000Z"),
                    Value::Null,
                    json!(0),
                    Value::Null,
                ],
            ],
        }
    }

    fn text(format: ResultFormat, names: bool, types: bool, sql_types: bool) -> String {
        let bytes = render(
            &SqlOutput::Table(table()),
            format,
            HeaderSpec {
                names,
                types,
                sql_types,
            },
        );
        String::from_utf8(bytes).unwrap_or_default()
    }

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap_or_else(|e| json!(format!("not JSON ({e}): {s}")))
    }

    #[test]
    fn object_format() {
        let plain = text(ResultFormat::Object, false, false, false);
        assert_eq!(
            parse(&plain),
            json!([
                {"__time": "2016-01-01T00:00:00.000Z", "host": "a,\"b\"", "n": 3, "avg": 1.5},
                {"__time": "2016-01-01T01:00:00.000Z", "host": null, "n": 0, "avg": null}
            ])
        );
        // Column order is kept.
        assert!(plain.starts_with(r#"[{"__time":"#), "{plain}");
        let header = parse(&text(ResultFormat::Object, true, false, false));
        assert_eq!(
            header[0],
            json!({"__time": null, "host": null, "n": null, "avg": null})
        );
        assert_eq!(header.as_array().map(Vec::len), Some(3));
        let typed = parse(&text(ResultFormat::Object, true, true, true));
        assert_eq!(
            typed[0],
            json!({
                "__time": {"type": "LONG", "sqlType": "TIMESTAMP"},
                "host": {"type": "STRING", "sqlType": "VARCHAR"},
                "n": {"type": "LONG", "sqlType": "BIGINT"},
                "avg": {"type": "DOUBLE", "sqlType": "DOUBLE"}
            })
        );
        let sql_only = parse(&text(ResultFormat::Object, true, false, true));
        assert_eq!(sql_only[0]["n"], json!({"sqlType": "BIGINT"}));
    }

    #[test]
    fn array_format() {
        assert_eq!(
            parse(&text(ResultFormat::Array, false, false, false)),
            json!([
                ["2016-01-01T00:00:00.000Z", "a,\"b\"", 3, 1.5],
                ["2016-01-01T01:00:00.000Z", null, 0, null]
            ])
        );
        let full = parse(&text(ResultFormat::Array, true, true, true));
        assert_eq!(full[0], json!(["__time", "host", "n", "avg"]));
        assert_eq!(full[1], json!(["LONG", "STRING", "LONG", "DOUBLE"]));
        assert_eq!(full[2], json!(["TIMESTAMP", "VARCHAR", "BIGINT", "DOUBLE"]));
        assert_eq!(full.as_array().map(Vec::len), Some(5));
        let types = parse(&text(ResultFormat::Array, true, false, true));
        assert_eq!(
            types[1],
            json!(["TIMESTAMP", "VARCHAR", "BIGINT", "DOUBLE"])
        );
    }

    #[test]
    fn line_formats_end_with_a_blank_line() {
        assert_eq!(
            text(ResultFormat::ObjectLines, false, false, false),
            "{\"__time\":\"2016-01-01T00:00:00.000Z\",\"host\":\"a,\\\"b\\\"\",\"n\":3,\"avg\":1.5}\n\
             {\"__time\":\"2016-01-01T01:00:00.000Z\",\"host\":null,\"n\":0,\"avg\":null}\n\n"
        );
        assert_eq!(
            text(ResultFormat::ArrayLines, true, false, false),
            "[\"__time\",\"host\",\"n\",\"avg\"]\n\
             [\"2016-01-01T00:00:00.000Z\",\"a,\\\"b\\\"\",3,1.5]\n\
             [\"2016-01-01T01:00:00.000Z\",null,0,null]\n\n"
        );
        let header_only = text(ResultFormat::ObjectLines, true, true, false);
        assert!(
            header_only.starts_with("{\"__time\":{\"type\":\"LONG\"},"),
            "{header_only}"
        );
    }

    #[test]
    fn csv_format() {
        assert_eq!(
            text(ResultFormat::Csv, true, true, true),
            "__time,host,n,avg\n\
             LONG,STRING,LONG,DOUBLE\n\
             TIMESTAMP,VARCHAR,BIGINT,DOUBLE\n\
             2016-01-01T00:00:00.000Z,\"a,\"\"b\"\"\",3,1.5\n\
             2016-01-01T01:00:00.000Z,,0,\n\n"
        );
        assert_eq!(
            text(ResultFormat::Csv, false, false, false).lines().count(),
            3
        );
    }

    #[test]
    fn empty_tables() {
        let empty = SqlOutput::Table(Table {
            columns: table().columns,
            rows: Vec::new(),
        });
        let spec = HeaderSpec::default();
        assert_eq!(render(&empty, ResultFormat::Object, spec), b"[]");
        assert_eq!(render(&empty, ResultFormat::Array, spec), b"[]");
        assert_eq!(render(&empty, ResultFormat::ObjectLines, spec), b"\n");
        assert_eq!(render(&empty, ResultFormat::Csv, spec), b"\n");
    }

    /// A projected scan: typed columns with nulls, a NaN, an absent column, complex cells,
    /// columns shown twice and a long shown as DOUBLE and VARCHAR.
    fn scan_table() -> ScanTable {
        let col = |name: &str, sql_type| TableColumn {
            name: name.into(),
            sql_type,
        };
        let dict = Arc::new(vec![String::new(), "a,\"b\"".into(), "é\n".into()]);
        let batch = |id: &str, rows: usize, data: Vec<ScanColumn>| ScanBatch {
            segment_id: Arc::from(id),
            columns: Arc::new(vec![
                "__time".into(),
                "host".into(),
                "n".into(),
                "x".into(),
                "gone".into(),
                "m".into(),
            ]),
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
                col("n_as_double", SqlType::Double),
                col("n_as_text", SqlType::Varchar),
                col("host_again", SqlType::Varchar),
                col("time_as_long", SqlType::Bigint),
            ],
            projection: vec![0, 1, 2, 3, 4, 5, 2, 2, 1, 0],
            scan: ScanOutput {
                batches: vec![
                    batch(
                        "s1",
                        3,
                        vec![
                            ScanColumn::Long(
                                vec![1_451_606_400_000, -1, 253_402_300_800_000],
                                None,
                            ),
                            ScanColumn::Str(vec![1, 0, 2], dict.clone()),
                            ScanColumn::Long(vec![3, 0, -7], Some(vec![false, true, false])),
                            ScanColumn::Double(vec![1.5, f64::NAN, 1e300], None),
                            ScanColumn::Null,
                            ScanColumn::Json(vec![json!(["a", "b"]), Value::Null, json!(2.5)]),
                        ],
                    ),
                    batch(
                        "s2",
                        1,
                        vec![
                            ScanColumn::Long(vec![0], None),
                            ScanColumn::Str(vec![0], dict),
                            ScanColumn::Long(vec![i64::MAX], None),
                            ScanColumn::Double(vec![-0.0], Some(vec![false])),
                            ScanColumn::Null,
                            ScanColumn::Json(vec![json!({"k": 1})]),
                        ],
                    ),
                ],
                compacted: true,
            },
        }
    }

    #[test]
    fn projected_scan_renders_as_its_table() {
        let scan = SqlOutput::Scan(scan_table());
        let table = SqlOutput::Table(scan.clone().into_table());
        assert_eq!(table.num_rows(), 4);
        for format in [
            ResultFormat::Object,
            ResultFormat::Array,
            ResultFormat::ObjectLines,
            ResultFormat::ArrayLines,
            ResultFormat::Csv,
        ] {
            for (names, types, sql_types) in [(false, false, false), (true, true, true)] {
                let spec = HeaderSpec {
                    names,
                    types,
                    sql_types,
                };
                let a = String::from_utf8(render(&scan, format, spec)).unwrap_or_default();
                let b = String::from_utf8(render(&table, format, spec)).unwrap_or_default();
                assert_eq!(a, b, "{format:?}");
            }
        }
        // The cells are the SQL API's: ISO timestamps, NULLs, non-finite doubles as null.
        let rows = parse(
            &String::from_utf8(render(&scan, ResultFormat::Array, HeaderSpec::default()))
                .unwrap_or_default(),
        );
        assert_eq!(
            rows[0],
            json!([
                "2016-01-01T00:00:00.000Z",
                "a,\"b\"",
                3,
                1.5,
                null,
                "[\"a\",\"b\"]",
                3.0,
                "3",
                "a,\"b\"",
                1_451_606_400_000_i64
            ])
        );
        assert_eq!(
            rows[1],
            json!([
                "1969-12-31T23:59:59.999Z",
                null,
                null,
                null,
                null,
                null,
                null,
                null,
                null,
                -1
            ])
        );
        assert_eq!(rows[3][2], json!(i64::MAX));
    }

    #[test]
    fn result_format_names() {
        for (name, f) in [
            ("object", ResultFormat::Object),
            ("ARRAY", ResultFormat::Array),
            ("objectLines", ResultFormat::ObjectLines),
            ("arrayLines", ResultFormat::ArrayLines),
            ("csv", ResultFormat::Csv),
        ] {
            assert_eq!(ResultFormat::parse(name).ok(), Some(f));
        }
        let e = ResultFormat::parse("parquet")
            .err()
            .map(|e| (e.status, e.message));
        assert!(
            matches!(&e, Some((StatusCode::BAD_REQUEST, m)) if m.contains("\"parquet\"") && m.contains("arrayLines")),
            "{e:?}"
        );
    }

    #[test]
    fn registry_cancels_registered_queries_only() {
        let registry = Arc::new(QueryRegistry::default());
        assert!(!registry.cancel("q1"));
        let running = registry.register("q1");
        assert!(running.is_ok());
        let Ok(running) = running else { return };
        let flag = running.flag();
        assert!(registry.register("q1").is_err(), "duplicate id accepted");
        assert!(!flag.load(Ordering::Relaxed));
        assert!(registry.cancel("q1"));
        assert!(flag.load(Ordering::Relaxed));
        drop(running);
        assert!(!registry.cancel("q1"), "finished query still registered");
        assert!(
            registry.register("q1").is_ok(),
            "id not reusable after finish"
        );
    }

    #[test]
    fn generated_query_ids_are_unique_uuid_text() {
        let a = new_query_id();
        let b = new_query_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }
}
