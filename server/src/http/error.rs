//! Druid-shaped HTTP errors, in one place: every failure of every endpoint becomes
//! `{"error", "errorMessage", "errorClass", "host"}` with the status that fits, including
//! rejected request bodies (too large, not UTF-8, malformed JSON, wrong field types).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use basalt_engine::Error as EngineError;
use serde::de::DeserializeOwned;
use serde_json::json;

/// Druid's generic exception class for user errors.
const DRUID_EXCEPTION: &str = "org.apache.druid.error.DruidException";

/// A Druid-shaped error response.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Short category (`error`).
    pub error: &'static str,
    /// What went wrong, for the client (`errorMessage`).
    pub message: String,
    /// Druid exception class (`errorClass`), for clients that switch on it.
    pub class: &'static str,
}

impl ApiError {
    /// 400: the request is invalid; `message` names the field and why.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            error: "Invalid input",
            message: message.into(),
            class: DRUID_EXCEPTION,
        }
    }

    /// 404: the named thing does not exist.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            error: "Not found",
            message: message.into(),
            class: DRUID_EXCEPTION,
        }
    }

    /// 413: the request body (or its decompressed form) is larger than `limit` bytes.
    pub fn too_large(what: &str, limit: usize) -> ApiError {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            error: "Request too large",
            message: format!("{what} is larger than the limit of {limit} bytes"),
            class: DRUID_EXCEPTION,
        }
    }

    /// 500 for a failure inside the server; the details go to the log, not the client.
    pub fn internal(context: &str, detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "{context}");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "Unknown exception",
            message: format!("internal error while {context}; see the server log"),
            class: "org.apache.druid.query.QueryException",
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        let (status, error, class) = match &e {
            EngineError::InvalidArgument(_) => {
                (StatusCode::BAD_REQUEST, "Invalid input", DRUID_EXCEPTION)
            }
            EngineError::Unsupported(_) => (
                StatusCode::BAD_REQUEST,
                "Unsupported operation",
                "org.apache.druid.query.QueryUnsupportedException",
            ),
            EngineError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found", DRUID_EXCEPTION),
            EngineError::AlreadyExists(_) => (StatusCode::CONFLICT, "Conflict", DRUID_EXCEPTION),
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
            EngineError::Internal(_)
            | EngineError::Io { .. }
            | EngineError::Catalog(_)
            | EngineError::Corruption { .. }
            | EngineError::Incompatible { .. } => {
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
        let mut response = (
            self.status,
            Json(json!({
                "error": self.error,
                "errorMessage": self.message,
                "errorClass": self.class,
                "host": null,
            })),
        )
            .into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

/// `Retry-After` (seconds) sent with every 429.
pub const RETRY_AFTER_SECONDS: &str = "1";

/// The raw request body, with the size-limit and read failures mapped to Druid errors (413 for
/// a body over the route's limit).
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit_hint = req
            .extensions()
            .get::<BodyLimit>()
            .map(|l| l.0)
            .unwrap_or(super::MAX_BODY_BYTES);
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(RawBody(b)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::too_large("the request body", limit_hint))
            }
            Err(rejection) => Err(ApiError {
                status: rejection.status(),
                error: "Invalid input",
                message: format!("cannot read the request body: {}", rejection.body_text()),
                class: DRUID_EXCEPTION,
            }),
        }
    }
}

/// The body limit a route applies, as a request extension so the 413 message can state it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// A JSON request body decoded into `T`; malformed JSON and wrong field types become a 400
/// naming the line, column and field, in Druid's error shape (not axum's plain-text rejection).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Decode a JSON body, with a Druid-shaped 400 on failure.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the request body is empty; expected a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data if path != "." => {
                ApiError::bad_request(format!("invalid request: field `{path}`: {inner}"))
            }
            serde_json::error::Category::Data => {
                ApiError::bad_request(format!("invalid request: {inner}"))
            }
            _ => ApiError::bad_request(format!("malformed JSON in the request body: {inner}")),
        }
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request(format!("malformed JSON in the request body: {e}")))?;
    Ok(value)
}

/// Fallback for unknown paths: a Druid-shaped 404 naming the path.
pub async fn unknown_route(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no endpoint at {}", uri.path()))
}

/// A method the route does not serve: a Druid-shaped 405.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        error: "Method not allowed",
        message: format!("{method} is not supported on {}", uri.path()),
        class: DRUID_EXCEPTION,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Req {
        #[allow(dead_code)]
        header: bool,
    }

    #[test]
    fn json_errors_name_the_problem() {
        let e = parse_json::<Req>(b"{\"header\": ").err();
        let e = e.map(|e| (e.status, e.message));
        assert!(
            matches!(&e, Some((StatusCode::BAD_REQUEST, m)) if m.starts_with("malformed JSON")),
            "{e:?}"
        );
        let e = parse_json::<Req>(br#"{"header": "yes"}"#).err();
        let e = e.map(|e| (e.status, e.message));
        assert!(
            matches!(&e, Some((StatusCode::BAD_REQUEST, m)) if m.contains("field `header`: invalid type: string \"yes\", expected a boolean")),
            "{e:?}"
        );
        let e = parse_json::<Req>(b"  ").err().map(|e| e.message);
        assert!(matches!(&e, Some(m) if m.contains("empty")), "{e:?}");
    }

    #[test]
    fn engine_errors_map_to_druid_statuses() {
        let cases = [
            (EngineError::invalid("x"), 400),
            (EngineError::Unsupported("x".into()), 400),
            (EngineError::NotFound("x".into()), 404),
            (EngineError::AlreadyExists("x".into()), 409),
            (EngineError::ResourcesExhausted("x".into()), 429),
            (EngineError::Timeout("x".into()), 504),
            (EngineError::internal("secret detail"), 500),
        ];
        for (e, status) in cases {
            let api = ApiError::from(e);
            assert_eq!(api.status.as_u16(), status, "{api:?}");
            assert!(!api.message.contains("secret"), "{api:?}");
        }
    }
}
