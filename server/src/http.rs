//! The HTTP API, shaped like Druid's so its clients work unchanged.
//!
//! Each handler decodes the request, makes one engine call on the blocking pool, and encodes
//! the answer. Engine errors become Druid-shaped JSON errors here, in one place.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use basalt_engine::Error as EngineError;
use basalt_engine::engine::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

/// Largest request body accepted (bytes).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Shared server state.
#[derive(Debug)]
pub struct AppState {
    /// The engine.
    pub engine: Arc<Engine>,
    /// Start time, for `/status`.
    pub started: Instant,
}

/// The HTTP routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/status/health", get(health))
        .route("/druid/v2", post(native_query))
        .route("/druid/v2/", post(native_query))
        .route("/druid/v2/datasources", get(list_datasources))
        .route("/druid/v2/datasources/{name}", get(get_datasource))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// A Druid-shaped error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error: &'static str,
    message: String,
    class: &'static str,
}

impl ApiError {
    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            error: "Invalid input",
            message: message.into(),
            class: "org.apache.druid.error.DruidException",
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        let (status, error, class) = match &e {
            EngineError::InvalidArgument(_) => (
                StatusCode::BAD_REQUEST,
                "Invalid input",
                "org.apache.druid.error.DruidException",
            ),
            EngineError::NotFound(_) => (
                StatusCode::NOT_FOUND,
                "Not found",
                "org.apache.druid.error.DruidException",
            ),
            EngineError::AlreadyExists(_) => (
                StatusCode::CONFLICT,
                "Conflict",
                "org.apache.druid.error.DruidException",
            ),
            EngineError::ResourcesExhausted(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "Resource limit exceeded",
                "org.apache.druid.query.ResourceLimitExceededException",
            ),
            EngineError::Timeout(_) => (
                StatusCode::GATEWAY_TIMEOUT,
                "Query timeout",
                "org.apache.druid.query.QueryTimeoutException",
            ),
            EngineError::Cancelled(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Query cancelled",
                "org.apache.druid.query.QueryInterruptedException",
            ),
            _ => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Unknown exception",
                "org.apache.druid.query.QueryException",
            ),
        };
        let message = match &e {
            // Internal details stay in the log; the client gets the category.
            EngineError::Internal(_) | EngineError::Io { .. } | EngineError::Catalog(_) => {
                tracing::error!(error = %e, "internal error");
                "internal error; see the server log".to_string()
            }
            other => other.to_string(),
        };
        ApiError {
            status,
            error,
            message,
            class,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({
                "error": self.error,
                "errorMessage": self.message,
                "errorClass": self.class,
                "host": null,
            })),
        )
            .into_response()
    }
}

async fn status(State(state): State<Arc<AppState>>) -> Json<Value> {
    let timeline = state.engine.data_dir().timeline();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": state.started.elapsed().as_secs(),
        "datasources": timeline.datasources().len(),
        "segments": timeline.num_segments(None),
    }))
}

async fn health() -> Json<bool> {
    Json(true)
}

#[derive(Debug, Deserialize)]
struct PrettyParam {
    pretty: Option<String>,
}

async fn native_query(
    State(state): State<Arc<AppState>>,
    Query(params): Query<PrettyParam>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let text = std::str::from_utf8(&body)
        .map_err(|e| ApiError::bad_request(format!("request body is not UTF-8: {e}")))?
        .to_string();
    let engine_state = state.clone();
    let result = tokio::task::spawn_blocking(move || engine_state.engine.query_json(&text))
        .await
        .map_err(|e| ApiError::from(EngineError::internal(format!("query task failed: {e}"))))??;
    let body = if params.pretty.is_some() {
        serde_json::to_vec_pretty(&result)
    } else {
        serde_json::to_vec(&result)
    }
    .map_err(|e| ApiError::from(EngineError::internal(format!("encoding the result: {e}"))))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn list_datasources(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let mut names = state.engine.data_dir().catalog().list_datasources()?;
    for d in state.engine.data_dir().timeline().datasources() {
        if !names.contains(&d) {
            names.push(d);
        }
    }
    names.sort();
    Ok(Json(json!(names)))
}

async fn get_datasource(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let spec = state.engine.data_dir().catalog().get_datasource(&name)?;
    let (mut dims, mut metrics) = (Vec::<String>::new(), Vec::<String>::new());
    if let Some(spec) = spec {
        if let Ok(schema) = basalt_engine::schema::DataSchema::from_json(&spec) {
            dims = schema.dimensions.iter().map(|d| d.name.clone()).collect();
            metrics = schema.metrics.iter().map(|m| m.name.clone()).collect();
        }
    } else if !state
        .engine
        .data_dir()
        .timeline()
        .datasources()
        .contains(&name)
    {
        return Err(EngineError::NotFound(format!("datasource `{name}` does not exist")).into());
    }
    Ok(Json(json!({"dimensions": dims, "metrics": metrics})))
}
