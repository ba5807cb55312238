//! Basalt engine: the storage and query core of Basalt, with no network code.
//!
//! - [`schema`]: datasource specs in Druid's `dataSchema` JSON shape, and input-row parsing.
//! - [`time`]: intervals, granularities and timestamp parsing (UTC milliseconds).
//! - [`aggregate`]: metric aggregators shared by ingest-time rollup and (later) queries.
//! - [`segment`]: the immutable, memory-mapped segment format: writer, reader, verify.
//! - [`column`], [`dictionary`], [`bitmap`]: the on-disk structures a segment is made of.
//! - [`catalog`]: the embedded, crash-safe catalog of published segments.
//! - [`timeline`]: versioned intervals; which segments a query sees.
//! - [`storage`]: the data directory, segment files and atomic publishing.
//! - [`sql`]: Druid SQL planned into native queries; [`table`]: tabular results (→ Arrow).
//! - [`realtime`]: push ingestion: WAL, incremental index, persists, handoff.
//! - [`loader`]: the bulk loader (`basalt load`): files in, segments published atomically.

pub mod admin;
pub mod aggregate;
pub mod bitmap;
pub mod catalog;
pub mod column;
pub mod dictionary;
pub mod engine;
pub mod error;
pub mod input;
pub mod loader;
pub mod query;
pub mod realtime;
pub mod schema;
pub mod segment;
pub mod sql;
pub mod storage;
pub mod table;
pub mod time;
pub mod timeline;

pub use error::{Error, Result};
