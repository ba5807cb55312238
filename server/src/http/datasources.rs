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
    let text = spec.to_string();
    let info = blocking(&state, move |engine| -> EngineResult<_> {
        let name = engine.create_datasource(&text)?;
        engine.datasource_info(&name)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"dataSource": info.name, "spec": info.spec})),
    ))
}

/// `GET /v1/datasources`: every datasource with its segment, row and byte counts.
pub async fn list(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    blocking(&state, |engine| -> EngineResult<_> {
        let mut out = Vec::new();
        for name in engine.datasource_names()? {
            let info = engine.datasource_info(&name)?;
            out.push(json!({
                "name": info.name,
                "segments": info.segments.len(),
                "rows": info.num_rows,
                "sizeBytes": info.size_bytes,
            }));
        }
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
        let info = engine.datasource_info(&name)?;
        Ok(Json(json!({
            "name": info.name,
            "spec": info.spec,
            "segments": info.segments.iter().map(segment_json).collect::<Vec<_>>(),
            "totalRows": info.num_rows,
            "totalSizeBytes": info.size_bytes,
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
        engine.drop_datasource(&name).map_err(|e| match e {
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
        let n = engine.drop_interval_of(&name, interval)?;
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
