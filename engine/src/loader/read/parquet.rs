//! Parquet: streamed one row group at a time with arrow-rs, reading only the columns the schema
//! needs; string columns the schema reads as strings are decoded as dictionaries (no per-row
//! string copies when the file is dictionary-encoded, which is the common case).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};

use crate::error::{Error, Result};
use crate::input::ArrowRows;
use crate::loader::convert::{Bad, FieldKind, arrow_times, cell, to_double, to_long};
use crate::loader::read::{Emit, ReadBatch, ReadCtx};
use crate::loader::rejects::RejectStats;

/// Row groups of a Parquet file: (rows, compressed bytes) each.
#[derive(Clone, Debug)]
pub(crate) struct ParquetLayout {
    pub meta: ArrowReaderMetadata,
    pub row_groups: Vec<(u64, u64)>,
}

fn parquet_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::invalid(format!("{}: cannot read Parquet: {e}", path.display()))
}

/// Read a Parquet footer and choose how its columns are decoded.
pub(crate) fn open(path: &Path, ctx_fields: &[(String, FieldKind)]) -> Result<ParquetLayout> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
        .map_err(|e| parquet_err(path, e))?;
    // Read string columns that feed string fields as dictionaries.
    let schema = meta.schema();
    let mut changed = false;
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let wants_str = ctx_fields
                .iter()
                .any(|(n, k)| n == f.name() && *k == FieldKind::Str);
            match f.data_type() {
                DataType::Utf8 | DataType::LargeUtf8 if wants_str => {
                    changed = true;
                    f.as_ref().clone().with_data_type(DataType::Dictionary(
                        Box::new(DataType::Int32),
                        Box::new(f.data_type().clone()),
                    ))
                }
                _ => f.as_ref().clone(),
            }
        })
        .collect();
    let meta = if changed {
        let hint = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        ArrowReaderMetadata::try_new(
            meta.metadata().clone(),
            ArrowReaderOptions::new().with_schema(hint),
        )
        .map_err(|e| parquet_err(path, e))?
    } else {
        meta
    };
    let row_groups = meta
        .metadata()
        .row_groups()
        .iter()
        .map(|rg| {
            (
                rg.num_rows().max(0) as u64,
                rg.compressed_size().max(0) as u64,
            )
        })
        .collect();
    Ok(ParquetLayout { meta, row_groups })
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn read_row_group(
    ctx: &ReadCtx<'_>,
    path: &Path,
    layout: &ParquetLayout,
    row_group: usize,
    row_offset: u64,
    rows: u64,
    bytes: u64,
    rejects: &mut RejectStats,
    emit: &mut Emit<'_>,
) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let arrow_schema = layout.meta.schema().clone();
    let plan = ctx.plan;
    let wanted =
        |name: &str| name == plan.timestamp.column || plan.fields.iter().any(|f| f.name == name);
    let roots: Vec<usize> = arrow_schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| wanted(f.name()))
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::roots(layout.meta.parquet_schema(), roots);
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, layout.meta.clone())
        .with_projection(mask)
        .with_row_groups(vec![row_group])
        .with_batch_size(ctx.batch_rows)
        .build()
        .map_err(|e| parquet_err(path, e))?;
    let bytes_per_row = if rows == 0 {
        0.0
    } else {
        bytes as f64 / rows as f64
    };
    let mut offset = row_offset;
    let mut checked = false;
    let mut times = Vec::new();
    let mut bad: Vec<(usize, Bad)> = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| parquet_err(path, e))?;
        if !checked {
            // Unusable columns (types the writer cannot take, no time column) fail the file.
            ArrowRows::new(ctx.schema, &batch)
                .map_err(|e| Error::invalid(format!("{}: {e}", path.display())))?;
            checked = true;
        }
        let n = batch.num_rows();
        bad.clear();
        match batch.column_by_name(&plan.timestamp.column) {
            Some(t) => arrow_times(&plan.timestamp, t.as_ref(), &mut times, &mut bad),
            None => {
                times.clear();
                let t = plan.timestamp.missing_value.unwrap_or_default();
                times.resize(n, t);
            }
        }
        let mut columns: Vec<(Field, ArrayRef)> = Vec::new();
        if !plan.time_is_field {
            columns.push((
                plan.time_field(),
                Arc::new(arrow_array::TimestampMillisecondArray::from(times.clone())),
            ));
        }
        for f in &plan.fields {
            let Some(col) = batch.column_by_name(&f.name) else {
                continue;
            };
            let col = normalize(col, f.kind, &f.name, &mut bad);
            columns.push((Field::new(&f.name, col.data_type().clone(), true), col));
        }
        let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns.into_iter().unzip();
        let mut out = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
            .map_err(|e| Error::internal(format!("normalizing a Parquet batch: {e}")))?;
        let mut out_times = std::mem::take(&mut times);
        if !bad.is_empty() {
            bad.sort_by_key(|b| b.0);
            let mut keep = vec![true; n];
            let mut last = usize::MAX;
            for (i, (reason, msg)) in bad.drain(..) {
                if i == last {
                    continue;
                }
                last = i;
                keep[i] = false;
                let row = offset + i as u64;
                rejects.add(&reason, || format!("{} row {row}: {msg}", path.display()));
            }
            out =
                arrow_select::filter::filter_record_batch(&out, &BooleanArray::from(keep.clone()))
                    .map_err(|e| Error::internal(format!("filtering rejected rows: {e}")))?;
            out_times = out_times
                .into_iter()
                .zip(&keep)
                .filter_map(|(t, k)| k.then_some(t))
                .collect();
        }
        ctx.bytes
            .fetch_add((n as f64 * bytes_per_row) as u64, Ordering::Relaxed);
        let first = offset;
        offset += n as u64;
        if out.num_rows() > 0 {
            emit(
                ReadBatch {
                    row_offset: first,
                    batch: out,
                    times: out_times,
                },
                rejects,
            )?;
        }
        if ctx.cancelled.load(Ordering::Relaxed) {
            break;
        }
    }
    Ok(())
}

/// Convert a column to its field's type where the conversion can fail (text or floats into
/// numbers, NaN); columns that always convert are kept as they are.
fn normalize(col: &ArrayRef, kind: FieldKind, name: &str, bad: &mut Vec<(usize, Bad)>) -> ArrayRef {
    let n = col.len();
    match (kind, col.data_type()) {
        (FieldKind::Str, _) => col.clone(),
        (
            FieldKind::Long,
            DataType::Null
            | DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::Timestamp(..)
            | DataType::Date32
            | DataType::Date64,
        ) => col.clone(),
        (
            FieldKind::Double,
            DataType::Null
            | DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64,
        ) => col.clone(),
        (FieldKind::Double, DataType::Float64)
            if !col
                .as_primitive::<arrow_array::types::Float64Type>()
                .values()
                .iter()
                .any(|v| v.is_nan()) =>
        {
            col.clone()
        }
        (FieldKind::Long, _) => {
            let out: Int64Array = (0..n)
                .map(|i| match to_long(&cell(col.as_ref(), i), name) {
                    Ok(v) => v,
                    Err(b) => {
                        bad.push((i, b));
                        None
                    }
                })
                .collect();
            Arc::new(out)
        }
        (FieldKind::Double, _) => {
            let out: Float64Array = (0..n)
                .map(|i| match to_double(&cell(col.as_ref(), i), name) {
                    Ok(v) => v,
                    Err(b) => {
                        bad.push((i, b));
                        None
                    }
                })
                .collect();
            Arc::new(out)
        }
    }
}
