//! `basalt.v1.IngestService`: client-streamed row batches, one acknowledgement.

use std::collections::BTreeMap;
use std::sync::Arc;

use basalt_engine::engine::Engine;
use basalt_proto::v1::ingest_service_server::IngestService;
use basalt_proto::v1::push_request::Rows;
use basalt_proto::v1::{PushRequest, PushResponse, RowError};
use serde_json::Value;
use tonic::{Request, Response, Status, Streaming};

use super::convert::{ipc_to_batches, status_from};

/// Rejected rows reported one by one in the acknowledgement (the rest are only counted).
pub const MAX_REPORTED_ERRORS: usize = 100;

/// The ingest service over one engine handle.
#[derive(Debug, Clone)]
pub struct IngestApi {
    engine: Arc<Engine>,
}

impl IngestApi {
    /// A service pushing into `engine`.
    pub fn new(engine: Arc<Engine>) -> IngestApi {
        IngestApi { engine }
    }
}

/// Running totals over one Push stream.
#[derive(Debug, Default)]
struct Totals {
    rows_seen: u64,
    accepted: u64,
    rejected: u64,
    by_reason: BTreeMap<String, u64>,
    errors: Vec<RowError>,
}

impl Totals {
    fn reject(&mut self, row: u64, reason_key: &str, reason: String) {
        self.rejected += 1;
        *self.by_reason.entry(reason_key.to_string()).or_default() += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(RowError { row, reason });
        }
    }

    /// Add an engine report for rows whose stream indexes are `index[i]`.
    fn add(&mut self, report: basalt_engine::realtime::PushReport, index: &[u64]) {
        self.accepted += report.accepted;
        self.rejected += report.rejected;
        for (reason, n) in report.rejected_by_reason {
            *self.by_reason.entry(reason).or_default() += n;
        }
        for e in report.errors {
            if self.errors.len() >= MAX_REPORTED_ERRORS {
                break;
            }
            let row = usize::try_from(e.row)
                .ok()
                .and_then(|i| index.get(i).copied())
                .unwrap_or(e.row);
            self.errors.push(RowError {
                row,
                reason: e.reason,
            });
        }
    }

    /// An error status that still tells the client what was durably accepted before it.
    fn fail(&self, status: Status) -> Status {
        Status::new(
            status.code(),
            format!(
                "{} ({} rows of earlier batches in this stream were accepted and are durable)",
                status.message(),
                self.accepted
            ),
        )
    }
}

#[tonic::async_trait]
impl IngestService for IngestApi {
    async fn push(
        &self,
        request: Request<Streaming<PushRequest>>,
    ) -> Result<Response<PushResponse>, Status> {
        let mut stream = request.into_inner();
        let mut totals = Totals::default();
        let mut datasource = String::new();
        while let Some(msg) = stream.message().await.map_err(|s| totals.fail(s))? {
            if datasource.is_empty() {
                if msg.datasource.is_empty() {
                    return Err(Status::invalid_argument(
                        "the first PushRequest must name the datasource",
                    ));
                }
                datasource = msg.datasource.clone();
            } else if !msg.datasource.is_empty() && msg.datasource != datasource {
                return Err(totals.fail(Status::invalid_argument(format!(
                    "one Push stream goes to one datasource: `{}` after `{datasource}`",
                    msg.datasource
                ))));
            }
            let engine = self.engine.clone();
            let ds = datasource.clone();
            match msg.rows {
                None => {}
                Some(Rows::Json(json)) => {
                    let mut rows = Vec::with_capacity(json.rows.len());
                    let mut index = Vec::with_capacity(json.rows.len());
                    for text in &json.rows {
                        let row_no = totals.rows_seen;
                        totals.rows_seen += 1;
                        match serde_json::from_str::<Value>(text) {
                            Ok(v) => {
                                rows.push(v);
                                index.push(row_no);
                            }
                            Err(e) => totals.reject(
                                row_no,
                                "malformed JSON",
                                format!("row is not valid JSON: {e}"),
                            ),
                        }
                    }
                    let report =
                        tokio::task::spawn_blocking(move || engine.push_json_rows(&ds, &rows))
                            .await
                            .map_err(|e| Status::internal(format!("push task failed: {e}")))?
                            .map_err(|e| totals.fail(status_from(e)))?;
                    totals.add(report, &index);
                }
                Some(Rows::ArrowIpc(bytes)) => {
                    let batches = ipc_to_batches(&bytes).map_err(|s| totals.fail(s))?;
                    for batch in batches {
                        let first = totals.rows_seen;
                        totals.rows_seen += batch.num_rows() as u64;
                        let index: Vec<u64> = (first..totals.rows_seen).collect();
                        let engine = engine.clone();
                        let ds = ds.clone();
                        let report =
                            tokio::task::spawn_blocking(move || engine.push_arrow(&ds, &batch))
                                .await
                                .map_err(|e| Status::internal(format!("push task failed: {e}")))?
                                .map_err(|e| totals.fail(status_from(e)))?;
                        totals.add(report, &index);
                    }
                }
            }
        }
        ::metrics::counter!(crate::metrics::ROWS_INGESTED_TOTAL, "datasource" => datasource.clone())
            .increment(totals.accepted);
        for (reason, n) in &totals.by_reason {
            ::metrics::counter!(
                crate::metrics::ROWS_REJECTED_TOTAL,
                "datasource" => datasource.clone(),
                "reason" => reason.clone()
            )
            .increment(*n);
        }
        Ok(Response::new(PushResponse {
            accepted: totals.accepted,
            rejected: totals.rejected,
            rejected_by_reason: totals.by_reason.into_iter().collect(),
            errors: totals.errors,
        }))
    }
}
