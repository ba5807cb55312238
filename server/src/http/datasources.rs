//! `/v1/datasources`: create, list, describe and drop datasources, and drop intervals.
//!
//! Druid has no push API, so these endpoints are Basalt's own. A datasource is created from a
//! Druid `dataSchema` (bare, or wrapped as `{"dataSchema": {...}}`), validated by the engine's
//! schema parser before it is registered in the catalog.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use basalt_engine::catalog::SegmentRecord;
use basalt_engine::engine::Engine;
use basalt_engine::schema::DataSchema;
use basalt_engine::storage::validate_datasource_name;
use basalt_engine::time::Interval;
use basalt_engine::{Error as EngineError, Result as EngineResult};
use serde_json::{Value, json};

use super::error::{ApiError, JsonBody};
use super::{AppState, blocking};

/// `POST /v1/datasources`: register a datasource from its `dataSchema`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let spec = match body.get("dataSchema") {
        Some(inner @ Value::Object(_)) => inner.clone(),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "dataSchema: expected a JSON object, found {}",
                json_kind(other)
            )));
        }
        None if body.is_object() => body,
        None => {
            return Err(ApiError::bad_request(format!(
                "expected a dataSchema JSON object, found {}",
                json_kind(&body)
            )));
        }
    };
    match spec.get("dataSource") {
        Some(Value::String(_)) => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "dataSource: expected a string, found {}",
                json_kind(other)
            )));
        }
        None => {
            return Err(ApiError::bad_request(
                "dataSource: missing; the dataSchema must name its datasource",
            ));
        }
    }
    let schema = DataSchema::from_value(&spec)?;
    validate_datasource_name(&schema.data_source)?;
    let normalized = schema.to_json();
    let name = schema.data_source.clone();
    let text = normalized.to_string();
    blocking(&state, move |engine| -> EngineResult<_> {
        engine.data_dir().catalog().create_datasource(&name, &text)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"dataSource": schema.data_source, "spec": normalized})),
    ))
}

/// `GET /v1/datasources`: every datasource with its segment, row and byte counts.
pub async fn list(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    blocking(&state, |engine| -> EngineResult<_> {
        let timeline = engine.data_dir().timeline();
        let mut names = engine.data_dir().catalog().list_datasources()?;
        for d in timeline.datasources() {
            if !names.contains(&d) {
                names.push(d);
            }
        }
        names.sort();
        let out: Vec<Value> = names
            .iter()
            .map(|name| {
                let segments = timeline.segments(name);
                json!({
                    "name": name,
                    "segments": segments.len(),
                    "rows": segments.iter().map(|s| s.num_rows).sum::<u64>(),
                    "sizeBytes": segments.iter().map(|s| s.size_bytes).sum::<u64>(),
                })
            })
            .collect();
        Ok(Json(Value::Array(out)))
    })
    .await
}

/// `GET /v1/datasources/{name}`: spec, visible segments and totals.
pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    blocking(&state, move |engine| -> EngineResult<_> {
        let spec = engine.data_dir().catalog().get_datasource(&name)?;
        let segments = engine.data_dir().timeline().segments(&name);
        if spec.is_none() && segments.is_empty() {
            return Err(not_found(&name));
        }
        let spec: Value = match spec {
            Some(text) => serde_json::from_str(&text).map_err(|e| {
                EngineError::internal(format!("stored spec of `{name}` is not JSON: {e}"))
            })?,
            None => Value::Null,
        };
        Ok(Json(json!({
            "name": name,
            "spec": spec,
            "segments": segments.iter().map(segment_json).collect::<Vec<_>>(),
            "totalRows": segments.iter().map(|s| s.num_rows).sum::<u64>(),
            "totalSizeBytes": segments.iter().map(|s| s.size_bytes).sum::<u64>(),
        })))
    })
    .await
}

/// `DELETE /v1/datasources/{name}`: unregister it and drop its segments.
pub async fn drop_datasource(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    blocking(&state, move |engine| -> EngineResult<_> {
        engine
            .data_dir()
            .drop_datasource(&name)
            .map_err(|e| match e {
                EngineError::NotFound(_) => not_found(&name),
                other => other,
            })?;
        Ok(Json(json!({"dataSource": name, "dropped": true})))
    })
    .await
}

/// `DELETE /v1/datasources/{name}/intervals/{interval}`: drop the segments lying within the
/// interval. The interval is `start_end` (`_` for `/`) or URL-encoded `start%2Fend`.
pub async fn drop_interval(
    State(state): State<Arc<AppState>>,
    Path((name, interval)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let interval = parse_path_interval(&interval)?;
    blocking(&state, move |engine| -> EngineResult<_> {
        ensure_exists(engine, &name)?;
        let n = engine.data_dir().drop_interval(&name, interval)?;
        Ok(Json(json!({
            "dataSource": name,
            "interval": interval.to_string(),
            "droppedSegments": n,
        })))
    })
    .await
}

/// Parse an interval from a path segment: `start_end` or `start/end` (after URL decoding).
pub fn parse_path_interval(text: &str) -> Result<Interval, ApiError> {
    let text = if text.contains('/') {
        text.to_string()
    } else {
        text.replacen('_', "/", 1)
    };
    Interval::parse(&text).map_err(ApiError::from)
}

fn ensure_exists(engine: &Engine, name: &str) -> EngineResult<()> {
    if engine.data_dir().catalog().get_datasource(name)?.is_some()
        || engine
            .data_dir()
            .timeline()
            .datasources()
            .iter()
            .any(|d| d == name)
    {
        Ok(())
    } else {
        Err(not_found(name))
    }
}

fn not_found(name: &str) -> EngineError {
    EngineError::NotFound(format!("datasource `{name}` does not exist"))
}

fn segment_json(s: &SegmentRecord) -> Value {
    json!({
        "id": s.id.to_string(),
        "interval": s.id.interval.to_string(),
        "version": s.id.version.0,
        "partition": s.id.partition,
        "rows": s.num_rows,
        "sizeBytes": s.size_bytes,
    })
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_intervals() {
        let a = parse_path_interval("2016-01-01_2016-01-02").map_err(|e| e.message);
        let b = parse_path_interval("2016-01-01/2016-01-02").map_err(|e| e.message);
        assert_eq!(a, b);
        assert!(a.is_ok());
        let bad = parse_path_interval("yesterday")
            .err()
            .map(|e| (e.status, e.message));
        assert!(
            matches!(&bad, Some((StatusCode::BAD_REQUEST, m)) if m.contains("invalid interval")),
            "{bad:?}"
        );
    }
}
