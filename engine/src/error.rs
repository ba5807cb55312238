//! The engine's one error type.
//!
//! Variants are categories, not call sites: each maps to exactly one HTTP status and one gRPC code
//! in the server. Messages say what failed, where, and why.

use std::path::PathBuf;

/// Result alias used across the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure the engine can report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller sent something invalid (bad spec, bad query, bad row). Names the field.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A named thing (datasource, segment, column) does not exist.
    #[error("not found: {0}")]
    NotFound(String),

    /// A named thing already exists.
    #[error("already exists: {0}")]
    AlreadyExists(String),

    /// Bytes on disk failed a check: names the file, the check, expected and found.
    #[error("corrupt file {path}: {check} check failed: expected {expected}, found {found}")]
    Corruption {
        /// The damaged file.
        path: PathBuf,
        /// Which check failed (e.g. "footer magic", "column `x` block 3 checksum").
        check: String,
        /// What the check expected.
        expected: String,
        /// What it found.
        found: String,
    },

    /// A file written by a newer (or unknown) format version.
    #[error("incompatible file {path}: {reason}")]
    Incompatible {
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        reason: String,
    },

    /// A valid request that uses something Basalt does not support (yet), e.g. a SQL join.
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// A limit was hit (memory, rows, time). Retryable or needs a bigger limit.
    #[error("resources exhausted: {0}")]
    ResourcesExhausted(String),

    /// A query ran past its timeout.
    #[error("query timeout: {0}")]
    Timeout(String),

    /// A query was cancelled by its client.
    #[error("query cancelled: {0}")]
    Cancelled(String),

    /// An operating-system I/O failure, with the path it concerned.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The embedded catalog failed.
    #[error("catalog error: {0}")]
    Catalog(String),

    /// A bug in Basalt: an invariant that should always hold did not.
    #[error("internal error (this is a bug): {0}")]
    Internal(String),
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }

    /// Shorthand for [`Error::Internal`].
    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
    }

    /// Wrap an I/O error with the path it concerned.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Build a [`Error::Corruption`].
    pub fn corruption(
        path: impl Into<PathBuf>,
        check: impl Into<String>,
        expected: impl ToString,
        found: impl ToString,
    ) -> Self {
        Error::Corruption {
            path: path.into(),
            check: check.into(),
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Catalog(e.to_string())
    }
}
