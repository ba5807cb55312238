//! Reading inputs into normalized Arrow batches: the time in milliseconds and each input field
//! converted to its type, bad rows rejected with their line and reason.
//!
//! A *unit* is what one reader thread reads at a time: a whole text file, or one row group of
//! a Parquet file. Batches carry their first row's position in the input so a load can put rows
//! back in input order wherever they were read (the order rollup combines metrics in).

pub(crate) mod csv;
pub(crate) mod json;
pub(crate) mod parquet;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use arrow_array::RecordBatch;

use crate::error::Result;
use crate::loader::convert::FieldPlan;
use crate::loader::inputs::Compression;
use crate::loader::rejects::RejectStats;
use crate::loader::spec::InputFormat;
use crate::schema::DataSchema;

/// What readers share.
#[derive(Debug)]
pub(crate) struct ReadCtx<'a> {
    pub schema: &'a DataSchema,
    pub plan: &'a FieldPlan,
    /// Rows per batch.
    pub batch_rows: usize,
    /// File bytes consumed, for progress.
    pub bytes: Arc<AtomicU64>,
    /// Set when the load is aborting: readers stop at the next batch.
    pub cancelled: &'a AtomicBool,
}

/// A normalized batch of accepted rows.
#[derive(Debug)]
pub(crate) struct ReadBatch {
    /// Position (row number, counting rejected rows) of the batch's first row in its input.
    pub row_offset: u64,
    /// Time column (unless the time is also a field) then the fields, converted.
    pub batch: RecordBatch,
    /// Event time of each row, in milliseconds.
    pub times: Vec<i64>,
}

/// Receives batches; an error stops the read (e.g. too many parse errors).
pub(crate) type Emit<'e> = dyn FnMut(ReadBatch, &mut RejectStats) -> Result<()> + 'e;

/// One unit of reading work.
#[derive(Clone, Debug)]
pub(crate) enum UnitKind {
    /// A whole text file.
    Text(InputFormat, Compression),
    /// One Parquet row group, whose first row is at `row_offset` in the file.
    ParquetRowGroup {
        layout: Arc<parquet::ParquetLayout>,
        row_group: usize,
        row_offset: u64,
        rows: u64,
        bytes: u64,
    },
}

/// Read one unit of `path`, emitting batches; rejected rows go to `rejects`.
pub(crate) fn read_unit(
    ctx: &ReadCtx<'_>,
    path: &Path,
    kind: &UnitKind,
    rejects: &mut RejectStats,
    emit: &mut Emit<'_>,
) -> Result<()> {
    match kind {
        UnitKind::Text(InputFormat::Csv(opts), c) => {
            csv::read_csv(ctx, path, *c, opts, rejects, emit)
        }
        UnitKind::Text(InputFormat::Json, c) => json::read_json(ctx, path, *c, rejects, emit),
        UnitKind::Text(InputFormat::Parquet, _) => Err(crate::Error::internal(
            "Parquet files are read by row group",
        )),
        UnitKind::ParquetRowGroup {
            layout,
            row_group,
            row_offset,
            rows,
            bytes,
        } => parquet::read_row_group(
            ctx,
            path,
            layout,
            *row_group,
            *row_offset,
            *rows,
            *bytes,
            rejects,
            emit,
        ),
    }
}

/// `file:line` for examples.
pub(crate) fn location(path: &Path, line: u64) -> String {
    format!("{}:{line}", path.display())
}
