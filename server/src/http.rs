//! The HTTP API, shaped like Druid's so its clients work unchanged.
//!
//! Each handler decodes the request, makes one engine call on the blocking pool, and encodes
//! the answer. Engine errors and rejected bodies become Druid-shaped JSON errors in one place,
//! [`error`]. Children: [`sql`] (Druid SQL API and cancellation), `datasources` (`/v1/datasources`
//! management), `ingest` (`/v1/ingest/{datasource}` NDJSON push). Every request is counted and
//! timed for `GET /metrics` ([`crate::metrics`]).

mod datasources;
pub mod error;
pub mod ingest;
pub mod sql;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use basalt_engine::Error as EngineError;
use basalt_engine::engine::Engine;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::metrics;
pub use error::ApiError;
use error::{BodyLimit, RawBody};

/// Largest request body accepted (bytes), except by the ingest endpoint
/// ([`ingest::body_limit`]).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Shared server state.
#[derive(Debug)]
pub struct AppState {
    /// The engine.
    pub engine: Arc<Engine>,
    /// Start time, for `/status`.
    pub started: Instant,
    /// Renders `GET /metrics` (from [`crate::metrics::install_metrics`]).
    pub metrics: PrometheusHandle,
    /// SQL queries in flight, for `DELETE /druid/v2/sql/{id}`.
    pub sql_queries: Arc<sql::QueryRegistry>,
}

impl AppState {
    /// State over `engine`, started now, rendering metrics with `metrics`.
    pub fn new(engine: Arc<Engine>, metrics: PrometheusHandle) -> AppState {
        AppState {
            engine,
            started: Instant::now(),
            metrics,
            sql_queries: Arc::default(),
        }
    }
}

/// The HTTP routes.
pub fn router(state: Arc<AppState>) -> Router {
    let ingest_limit = ingest::body_limit(&state.engine, ingest::MAX_INGEST_BODY_BYTES);
    Router::new()
        .route("/status", get(status))
        .route("/status/health", get(health))
        .route("/metrics", get(render_metrics))
        .route("/druid/v2", post(native_query))
        .route("/druid/v2/", post(native_query))
        .route("/druid/v2/datasources", get(list_datasources))
        .route("/druid/v2/datasources/{name}", get(get_datasource))
        .route("/druid/v2/sql", post(sql::sql_query))
        .route("/druid/v2/sql/", post(sql::sql_query))
        .route("/druid/v2/sql/{id}", delete(sql::cancel_sql))
        .route(
            "/v1/datasources",
            get(datasources::list).post(datasources::create),
        )
        .route(
            "/v1/datasources/{name}",
            get(datasources::get).delete(datasources::drop_datasource),
        )
        .route(
            "/v1/datasources/{name}/intervals/{interval}",
            delete(datasources::drop_interval),
        )
        .route(
            "/v1/ingest/{datasource}",
            post(ingest::ingest)
                .layer::<_, Infallible>(DefaultBodyLimit::max(ingest_limit))
                .layer::<_, Infallible>(Extension(BodyLimit(ingest_limit))),
        )
        .fallback(error::unknown_route)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(track_request))
        .with_state(state)
}

/// Count every request by endpoint (route template), method and status, and time it.
async fn track_request(req: Request, next: Next) -> Response {
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().as_str().to_string();
    let start = Instant::now();
    let response = next.run(req).await;
    ::metrics::counter!(
        metrics::HTTP_REQUESTS_TOTAL,
        "endpoint" => endpoint.clone(),
        "method" => method.clone(),
        "status" => response.status().as_str().to_string()
    )
    .increment(1);
    ::metrics::histogram!(
        metrics::HTTP_REQUEST_DURATION_SECONDS,
        "endpoint" => endpoint,
        "method" => method
    )
    .record(start.elapsed().as_secs_f64());
    response
}

/// Run an engine call that touches disk or runs a query on the blocking pool.
pub(crate) async fn blocking<T, E>(
    state: &Arc<AppState>,
    f: impl FnOnce(&Engine) -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    let st = state.clone();
    tokio::task::spawn_blocking(move || f(&st.engine).map_err(Into::into))
        .await
        .map_err(|e| ApiError::internal("running an engine task", e))?
}

/// `GET /metrics`: Prometheus text exposition.
async fn render_metrics(State(state): State<Arc<AppState>>) -> Response {
    metrics::refresh_catalog_gauges(&state.engine);
    metrics::refresh_realtime_metrics(&state.engine);
    state.metrics.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn status(State(state): State<Arc<AppState>>) -> Json<Value> {
    let timeline = state.engine.data_dir().timeline();
    let memory = state.engine.realtime_memory_plan();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": state.started.elapsed().as_secs(),
        "datasources": timeline.datasources().len(),
        "segments": timeline.num_segments(None),
        "memory": {
            "budgetBytes": memory.budget,
            "baselineBytes": memory.baseline,
            "rowsLimitBytes": memory.rows_limit,
            "buildLimitBytes": memory.build_limit,
        },
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
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let text = std::str::from_utf8(&body)
        .map_err(|e| ApiError::bad_request(format!("request body is not UTF-8: {e}")))?
        .to_string();
    let pretty = params.pretty.is_some();
    // The response is encoded on the blocking pool too: a scan's rows are written straight
    // from their columns.
    let (rows, body) = blocking(&state, move |engine| {
        let output = engine.query_json_output(&text)?;
        let rows = output.num_rows();
        let body = if pretty {
            serde_json::to_vec_pretty(&output.into_json()).map_err(|e| {
                EngineError::internal(format!("encoding the result: {e}"))
            })?
        } else {
            let mut out = Vec::new();
            output.write_json(&mut out);
            out
        };
        Ok::<_, EngineError>((rows, body))
    })
    .await
    .inspect_err(|e| {
        ::metrics::counter!(metrics::QUERY_ERRORS_TOTAL, "kind" => "native", "status" => e.status.as_str().to_string()).increment(1);
    })?;
    ::metrics::counter!(metrics::QUERY_ROWS_TOTAL, "kind" => "native").increment(rows as u64);
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn list_datasources(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    blocking(&state, |engine| {
        let mut names = engine.data_dir().catalog().list_datasources()?;
        for d in engine.data_dir().timeline().datasources() {
            if !names.contains(&d) {
                names.push(d);
            }
        }
        names.sort();
        Ok::<_, EngineError>(Json(json!(names)))
    })
    .await
}

async fn get_datasource(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    blocking(&state, move |engine| -> Result<_, EngineError> {
        let spec = engine.data_dir().catalog().get_datasource(&name)?;
        let (mut dims, mut metrics) = (Vec::<String>::new(), Vec::<String>::new());
        if let Some(spec) = spec {
            if let Ok(schema) = basalt_engine::schema::DataSchema::from_json(&spec) {
                dims = schema.dimensions.iter().map(|d| d.name.clone()).collect();
                metrics = schema.metrics.iter().map(|m| m.name.clone()).collect();
            }
        } else if !engine.data_dir().timeline().datasources().contains(&name) {
            return Err(EngineError::NotFound(format!(
                "datasource `{name}` does not exist"
            )));
        }
        Ok(Json(json!({"dimensions": dims, "metrics": metrics})))
    })
    .await
}
