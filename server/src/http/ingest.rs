//! `POST /v1/ingest/{datasource}`: push newline-delimited JSON rows.
//!
//! The body may be `Content-Encoding: gzip` or `zstd`; it is decompressed on the blocking pool
//! with a bound on the decompressed size (413 past it, so a small compressed bomb cannot
//! exhaust memory), then handed to the engine's push call in one piece. The answer counts
//! accepted and rejected rows, rejected rows by reason, and the first per-row errors.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use basalt_engine::engine::Engine;
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, RawBody};
use crate::metrics;

/// Largest compressed or plain request body accepted by the ingest endpoint (bytes), with the
/// default memory budget (see [`body_limit`]).
pub const MAX_INGEST_BODY_BYTES: usize = 256 * 1024 * 1024;
/// Largest decompressed body accepted (bytes), with the default memory budget.
pub const MAX_INGEST_DECOMPRESSED_BYTES: usize = 256 * 1024 * 1024;
/// Share of the memory for pending rows and pushes in progress that one body may take
/// (1 / BODY_SHARE_DIVISOR): a push holds its body, its parsed values and its rows' bytes, so a
/// bigger one could never be taken.
pub const BODY_SHARE_DIVISOR: u64 = 8;

/// The ingest endpoint's limit on a body, plain or decompressed: `max`, or a
/// [`BODY_SHARE_DIVISOR`]th of what the engine's memory budget leaves for pushes, if less.
pub fn body_limit(engine: &Engine, max: usize) -> usize {
    let share = engine.realtime_memory_plan().rows_limit / BODY_SHARE_DIVISOR;
    max.min(usize::try_from(share).unwrap_or(usize::MAX))
}

/// How the request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEncoding {
    /// As is.
    Identity,
    /// gzip (RFC 1952).
    Gzip,
    /// Zstandard.
    Zstd,
}

impl BodyEncoding {
    /// From the `Content-Encoding` header; 415 for anything else.
    pub fn from_headers(headers: &HeaderMap) -> Result<BodyEncoding, ApiError> {
        let Some(v) = headers.get(header::CONTENT_ENCODING) else {
            return Ok(BodyEncoding::Identity);
        };
        let text = v.to_str().unwrap_or("").trim().to_ascii_lowercase();
        match text.as_str() {
            "" | "identity" => Ok(BodyEncoding::Identity),
            "gzip" | "x-gzip" => Ok(BodyEncoding::Gzip),
            "zstd" => Ok(BodyEncoding::Zstd),
            _ => Err(ApiError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                error: "Unsupported media type",
                message: format!(
                    "Content-Encoding {:?} is not supported; use gzip, zstd or none",
                    String::from_utf8_lossy(v.as_bytes())
                ),
                class: "org.apache.druid.error.DruidException",
            }),
        }
    }
}

/// Decompress `body` (a plain body is used as it is, not copied), failing with 413 past
/// `limit` decompressed bytes and 400 on a corrupt stream.
pub fn decode_body(
    body: &[u8],
    encoding: BodyEncoding,
    limit: usize,
) -> Result<Cow<'_, [u8]>, ApiError> {
    let reader: Box<dyn Read + '_> = match encoding {
        BodyEncoding::Identity => {
            if body.len() > limit {
                return Err(ApiError::too_large("the request body", limit));
            }
            return Ok(Cow::Borrowed(body));
        }
        BodyEncoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(body)),
        BodyEncoding::Zstd => Box::new(zstd::stream::read::Decoder::new(body).map_err(|e| {
            ApiError::bad_request(format!("cannot start zstd decoding of the body: {e}"))
        })?),
    };
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    // Read one byte past the limit to tell "exactly at the limit" from "over it".
    let read = reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            ApiError::bad_request(format!(
                "the {} request body is corrupt: {e}",
                match encoding {
                    BodyEncoding::Gzip => "gzip",
                    _ => "zstd",
                }
            ))
        })?;
    if read > limit {
        return Err(ApiError::too_large("the decompressed request body", limit));
    }
    Ok(Cow::Owned(out))
}

/// What one push did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PushOutcome {
    /// Rows accepted (durable when acknowledged).
    pub accepted: u64,
    /// Rows rejected.
    pub rejected: u64,
    /// Rejected rows by reason.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Per-row errors: (1-based row number in the body, reason).
    pub errors: Vec<(u64, String)>,
}

impl PushOutcome {
    /// The response body.
    pub fn to_json(&self) -> Value {
        json!({
            "accepted": self.accepted,
            "rejected": self.rejected,
            "rejectedByReason": self.rejected_by_reason,
            "errors": self.errors.iter().map(|(row, reason)| json!({"row": row, "reason": reason})).collect::<Vec<_>>(),
        })
    }
}

/// The engine's push call: returns once the accepted rows are durable (write-ahead log).
fn push(engine: &Engine, datasource: &str, rows: &[u8]) -> Result<PushOutcome, ApiError> {
    let r = engine.push_ndjson(datasource, rows)?;
    Ok(PushOutcome {
        accepted: r.accepted,
        rejected: r.rejected,
        rejected_by_reason: r.rejected_by_reason,
        errors: r.errors.into_iter().map(|e| (e.row, e.reason)).collect(),
    })
}

/// `POST /v1/ingest/{datasource}`.
pub async fn ingest(
    State(state): State<Arc<AppState>>,
    Path(datasource): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<Value>, ApiError> {
    let encoding = BodyEncoding::from_headers(&headers)?;
    let st = state.clone();
    let ds = datasource.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let limit = body_limit(&st.engine, MAX_INGEST_DECOMPRESSED_BYTES);
        let rows = decode_body(&body, encoding, limit)?;
        push(&st.engine, &ds, &rows)
    })
    .await
    .map_err(|e| ApiError::internal("running a push", e))??;
    ::metrics::counter!(metrics::ROWS_INGESTED_TOTAL, "datasource" => datasource.clone())
        .increment(outcome.accepted);
    for (reason, n) in &outcome.rejected_by_reason {
        ::metrics::counter!(
            metrics::ROWS_REJECTED_TOTAL,
            "datasource" => datasource.clone(),
            "reason" => reason.clone()
        )
        .increment(*n);
    }
    Ok(Json(outcome.to_json()))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn gzip_and_zstd_bodies_decode_within_the_limit() {
        let text = b"{\"a\":1}\n{\"a\":2}\n".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        assert!(gz.write_all(&text).is_ok());
        let gz = gz.finish().unwrap_or_default();
        let zs = zstd::encode_all(&text[..], 3).unwrap_or_default();
        for (body, enc) in [
            (&text[..], BodyEncoding::Identity),
            (&gz[..], BodyEncoding::Gzip),
            (&zs[..], BodyEncoding::Zstd),
        ] {
            let out = decode_body(body, enc, text.len()).map_err(|e| e.message);
            assert_eq!(out.as_deref(), Ok(&text[..]), "{enc:?}");
            // A plain body is not copied.
            if enc == BodyEncoding::Identity {
                assert!(matches!(
                    decode_body(body, enc, text.len()),
                    Ok(Cow::Borrowed(_))
                ));
            }
            let over = decode_body(body, enc, text.len() - 1)
                .err()
                .map(|e| e.status);
            assert_eq!(over, Some(StatusCode::PAYLOAD_TOO_LARGE), "{enc:?}");
        }
        let corrupt = decode_body(b"not gzip", BodyEncoding::Gzip, 100).err();
        assert_eq!(corrupt.map(|e| e.status), Some(StatusCode::BAD_REQUEST));
    }

    #[test]
    fn outcome_json_shape() {
        let o = PushOutcome {
            accepted: 3,
            rejected: 1,
            rejected_by_reason: [("unparseable timestamp".to_string(), 1)].into(),
            errors: vec![(2, "unparseable timestamp".into())],
        };
        assert_eq!(
            o.to_json(),
            json!({"accepted": 3, "rejected": 1, "rejectedByReason": {"unparseable timestamp": 1},
                   "errors": [{"row": 2, "reason": "unparseable timestamp"}]})
        );
    }
}
