//! `basalt.v1.QueryService`: native and SQL queries answered as streamed Arrow IPC.

use std::pin::Pin;
use std::sync::Arc;

use basalt_engine::engine::Engine;
use basalt_engine::query::spec::Query;
use basalt_engine::sql::{SqlParameter, SqlRequest};
use basalt_engine::table::SqlOutput;
use basalt_proto::v1::query_service_server::QueryService;
use basalt_proto::v1::{NativeQueryRequest, QueryResponse, SqlQueryRequest};
use serde_json::{Map, Value};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::convert::{CancelOnDrop, apply_deadline, grpc_timeout, status_from, table_to_ipc};

/// Result stream of a query call.
pub type QueryStream = Pin<Box<dyn Stream<Item = Result<QueryResponse, Status>> + Send>>;

/// The query service over one engine handle.
#[derive(Debug, Clone)]
pub struct QueryApi {
    engine: Arc<Engine>,
}

impl QueryApi {
    /// A service answering from `engine`.
    pub fn new(engine: Arc<Engine>) -> QueryApi {
        QueryApi { engine }
    }

    /// Run `work` on the blocking pool with a cancellation flag that is set if the call is
    /// dropped (client cancelled, deadline passed), then stream the table.
    async fn run(
        &self,
        query_id: String,
        work: impl FnOnce(
            &Engine,
            Arc<std::sync::atomic::AtomicBool>,
        ) -> basalt_engine::Result<SqlOutput>
        + Send
        + 'static,
    ) -> Result<Response<QueryStream>, Status> {
        let (guard, flag) = CancelOnDrop::new();
        let engine = self.engine.clone();
        let started = std::time::Instant::now();
        let table = tokio::task::spawn_blocking(move || work(&engine, flag))
            .await
            .map_err(|e| Status::internal(format!("query task failed: {e}")))?
            .map_err(status_from)?;
        guard.disarm();
        tracing::debug!(query_id, rows = table.num_rows(), elapsed = ?started.elapsed(), "grpc query");
        let pieces = table_to_ipc(&table)?;
        let first_id = query_id;
        let stream = tokio_stream::iter(pieces.into_iter().enumerate().map(move |(i, bytes)| {
            Ok(QueryResponse {
                arrow_ipc: bytes,
                query_id: if i == 0 {
                    first_id.clone()
                } else {
                    String::new()
                },
            })
        }));
        Ok(Response::new(Box::pin(stream)))
    }
}

/// A query id: the client's, or a new unique one.
fn query_id(context: &Map<String, Value>, key: &str) -> String {
    match context.get(key).and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => crate::http::sql::new_query_id(),
    }
}

#[tonic::async_trait]
impl QueryService for QueryApi {
    type NativeStream = QueryStream;
    type SqlStream = QueryStream;

    async fn native(
        &self,
        request: Request<NativeQueryRequest>,
    ) -> Result<Response<QueryStream>, Status> {
        let deadline = grpc_timeout(request.metadata());
        let mut value: Value = serde_json::from_str(&request.get_ref().query_json)
            .map_err(|e| Status::invalid_argument(format!("query_json is not valid JSON: {e}")))?;
        let Some(obj) = value.as_object_mut() else {
            return Err(Status::invalid_argument("query_json must be a JSON object"));
        };
        let context = obj
            .entry("context")
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(context) = context.as_object_mut() else {
            return Err(Status::invalid_argument(
                "query field `context` must be an object",
            ));
        };
        if let Some(d) = deadline {
            apply_deadline(context, d);
        }
        let id = query_id(context, "queryId");
        context.insert("queryId".into(), Value::from(id.clone()));
        let query = Query::from_value(&value).map_err(status_from)?;
        self.run(id, move |engine, flag| {
            engine.query_table(&query, Some(flag)).map(SqlOutput::Table)
        })
        .await
    }

    async fn sql(
        &self,
        request: Request<SqlQueryRequest>,
    ) -> Result<Response<QueryStream>, Status> {
        let deadline = grpc_timeout(request.metadata());
        let r = request.into_inner();
        let mut context = if r.context_json.trim().is_empty() {
            Map::new()
        } else {
            match serde_json::from_str::<Value>(&r.context_json) {
                Ok(Value::Object(m)) => m,
                Ok(_) => {
                    return Err(Status::invalid_argument(
                        "context_json must be a JSON object",
                    ));
                }
                Err(e) => {
                    return Err(Status::invalid_argument(format!(
                        "context_json is not valid JSON: {e}"
                    )));
                }
            }
        };
        if let Some(d) = deadline {
            apply_deadline(&mut context, d);
        }
        let id = query_id(&context, "sqlQueryId");
        context.insert("sqlQueryId".into(), Value::from(id.clone()));
        let mut parameters = Vec::with_capacity(r.parameters.len());
        for (i, p) in r.parameters.into_iter().enumerate() {
            let value = serde_json::from_str(&p.value_json).map_err(|e| {
                Status::invalid_argument(format!(
                    "parameters[{i}].value_json is not valid JSON: {e}"
                ))
            })?;
            parameters.push(SqlParameter {
                type_name: p.r#type,
                value,
            });
        }
        let req = SqlRequest {
            query: r.query,
            parameters,
            context,
        };
        self.run(id, move |engine, flag| engine.sql_output(&req, Some(flag)))
            .await
    }
}
