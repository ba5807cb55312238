//! `basalt.v1.IngestService`: client-streamed row batches, one acknowledgement.

use std::collections::BTreeMap;
use std::sync::Arc;

use basalt_engine::engine::Engine;
use basalt_proto::v1::ingest_service_server::IngestService;
use basalt_proto::v1::push_request::Rows;
use basalt_proto::v1::{PushRequest, PushResponse, RowError};
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
/// Lines of an NDJSON body: a last line without its newline counts, an empty end does not.
fn ndjson_lines(body: &[u8]) -> u64 {
    let newlines = body.iter().filter(|&&b| b == b'\n').count() as u64;
    newlines + u64::from(body.last().is_some_and(|&b| b != b'\n'))
}

#[derive(Debug, Default)]
struct Totals {
    rows_seen: u64,
    accepted: u64,
    rejected: u64,
    by_reason: BTreeMap<String, u64>,
    errors: Vec<RowError>,
}

impl Totals {
    /// Add an engine report for a batch whose first row is row `first` of the stream.
    fn add(&mut self, report: basalt_engine::realtime::PushReport, first: u64) {
        self.accepted += report.accepted;
        self.rejected += report.rejected;
        for (reason, n) in report.rejected_by_reason {
            *self.by_reason.entry(reason).or_default() += n;
        }
        for e in report.errors {
            if self.errors.len() >= MAX_REPORTED_ERRORS {
                break;
            }
            let row = first.saturating_add(e.row);
            self.errors.push(RowError {
                row,
                reason: e.reason,
            });
        }
    }

    /// Run one batch's engine push (of `rows` rows, as the stream numbers them) on the
    /// blocking pool and count its report; an engine error ends the call.
    async fn push(
        &mut self,
        rows: u64,
        push: impl FnOnce() -> basalt_engine::Result<basalt_engine::realtime::PushReport>
        + Send
        + 'static,
    ) -> Result<(), Status> {
        let first = self.rows_seen;
        self.rows_seen += rows;
        let report = tokio::task::spawn_blocking(push)
            .await
            .map_err(|e| Status::internal(format!("push task failed: {e}")))?
            .map_err(|e| self.fail(status_from(e)))?;
        self.add(report, first);
        Ok(())
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
                    // One engine call for the batch: it parses (rows that are not JSON are
                    // rejected with a reason, counted against maxParseExceptions), logs and
                    // indexes the rows.
                    let rows = json.rows;
                    let n = rows.len() as u64;
                    totals
                        .push(n, move || engine.push_json_texts(&ds, &rows))
                        .await?;
                }
                Some(Rows::Ndjson(body)) => {
                    // Rows are numbered by line over the stream (blank lines count).
                    let n = ndjson_lines(&body);
                    totals
                        .push(n, move || engine.push_ndjson(&ds, &body))
                        .await?;
                }
                Some(Rows::ArrowIpc(bytes)) => {
                    let batches = ipc_to_batches(bytes).map_err(|s| totals.fail(s))?;
                    for batch in batches {
                        let (engine, ds) = (engine.clone(), ds.clone());
                        let n = batch.num_rows() as u64;
                        totals
                            .push(n, move || engine.push_arrow(&ds, &batch))
                            .await?;
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
