//! Writing the generated TSBS data to files: Parquet (zstd) and CSV.
//!
//! Both writers take any stream of [`RecordBatch`]es with the [`tsbs_schema`] and write to a
//! temporary name first, renaming on success, so an interrupted run never leaves a truncated file
//! under the final name.
//!
//! [`tsbs_schema`]: crate::tsbs::tsbs_schema

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use anyhow::{Context, bail, ensure};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves,
};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use serde::Serialize;

use crate::timefmt::format_rfc3339_ms;

/// What a writer produced.
#[derive(Debug, Clone, Serialize)]
pub struct FileStats {
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
    /// Parquet only: number of row groups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_groups: Option<usize>,
}

/// Parquet writer settings.
#[derive(Debug, Clone)]
pub struct ParquetOptions {
    /// Rows per row group (the writer cuts row groups at this size).
    pub row_group_rows: usize,
    /// zstd level (1..=22).
    pub zstd_level: i32,
    /// Index of a column the rows are sorted by, recorded in the row-group metadata.
    pub sorted_by: Option<usize>,
    /// Threads encoding the columns of a row group.
    pub threads: usize,
}

/// Writes `batches` to `path` as one Parquet file with arrow-rs's Arrow writer.
///
/// The file is set up by `parquet::arrow::ArrowWriter` (schema conversion, embedded Arrow
/// schema, properties); its row groups are then encoded with the writer's own per-column
/// encoders (`ArrowColumnWriter`), spread over `opts.threads` threads. Columns are encoded
/// independently and appended in schema order, so the bytes do not depend on the thread count.
pub fn write_parquet(
    path: &Path,
    schema: SchemaRef,
    batches: impl Iterator<Item = RecordBatch>,
    opts: &ParquetOptions,
) -> anyhow::Result<FileStats> {
    ensure!(opts.row_group_rows > 0, "row group size must be > 0");
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(opts.zstd_level)?))
        .set_max_row_group_row_count(Some(opts.row_group_rows))
        .set_sorting_columns(opts.sorted_by.map(|idx| {
            vec![SortingColumn {
                column_idx: idx as i32,
                descending: false,
                nulls_first: false,
            }]
        }))
        .build();
    let tmp = tmp_path(path);
    let file = File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    let out = BufWriter::with_capacity(8 << 20, file);
    let (mut writer, factory) =
        ArrowWriter::try_new(out, schema.clone(), Some(props))?.into_serialized_writer()?;

    let mut rows = 0u64;
    let mut row_groups = 0usize;
    let mut group: Vec<RecordBatch> = Vec::new();
    let mut group_rows = 0usize;
    for batch in batches {
        ensure!(
            batch.schema() == schema,
            "batch schema differs from the file schema"
        );
        rows += batch.num_rows() as u64;
        let mut offset = 0;
        while offset < batch.num_rows() {
            let take = (opts.row_group_rows - group_rows).min(batch.num_rows() - offset);
            group.push(batch.slice(offset, take));
            group_rows += take;
            offset += take;
            if group_rows == opts.row_group_rows {
                encode_row_group(
                    &mut writer,
                    &factory,
                    row_groups,
                    &schema,
                    &group,
                    opts.threads,
                )?;
                row_groups += 1;
                group.clear();
                group_rows = 0;
            }
        }
    }
    if group_rows > 0 {
        encode_row_group(
            &mut writer,
            &factory,
            row_groups,
            &schema,
            &group,
            opts.threads,
        )?;
        row_groups += 1;
    }
    writer
        .into_inner()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    finish_tmp(&tmp, path)?;
    Ok(FileStats {
        path: path.to_owned(),
        rows,
        bytes: std::fs::metadata(path)?.len(),
        row_groups: Some(row_groups),
    })
}

/// Encodes `batches` as row group `index`, columns in parallel, and appends it to `writer`.
fn encode_row_group<W: Write + Send>(
    writer: &mut SerializedFileWriter<W>,
    factory: &ArrowRowGroupWriterFactory,
    index: usize,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    threads: usize,
) -> anyhow::Result<()> {
    let column_writers = factory.create_column_writers(index)?;
    ensure!(
        column_writers.len() == schema.fields().len(),
        "nested schemas are not supported"
    );
    let todo = Mutex::new(column_writers.into_iter().enumerate());
    let done = Mutex::new(Vec::with_capacity(schema.fields().len()));
    let encode_one = |col: usize, mut w: ArrowColumnWriter| -> anyhow::Result<ArrowColumnChunk> {
        let field = &schema.fields()[col];
        for batch in batches {
            for leaf in compute_leaves(field, batch.column(col))? {
                w.write(&leaf)?;
            }
        }
        Ok(w.close()?)
    };
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let next = todo.lock().unwrap_or_else(PoisonError::into_inner).next();
                    let Some((col, w)) = next else { break };
                    let chunk = encode_one(col, w);
                    done.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((col, chunk));
                }
            });
        }
    });
    let mut chunks = done.into_inner().unwrap_or_else(PoisonError::into_inner);
    chunks.sort_by_key(|(col, _)| *col);
    let mut row_group = writer.next_row_group()?;
    for (_, chunk) in chunks {
        chunk?.append_to_row_group(&mut row_group)?;
    }
    row_group.close()?;
    Ok(())
}

/// Writes `batches` to `path` as CSV: a header line, then one line per row; timestamps as
/// RFC 3339 UTC (`2016-01-01T00:00:00Z`), strings unquoted (the TSBS values need no quoting).
///
/// Supports the column types of the TSBS schema: millisecond timestamps, UTF-8 strings, Int64.
pub fn write_csv(
    path: &Path,
    schema: SchemaRef,
    batches: impl Iterator<Item = RecordBatch>,
) -> anyhow::Result<FileStats> {
    for field in schema.fields() {
        match field.data_type() {
            DataType::Timestamp(arrow_schema::TimeUnit::Millisecond, _)
            | DataType::Utf8
            | DataType::Int64 => {}
            other => bail!("CSV writer: unsupported type {other} of {}", field.name()),
        }
    }
    let tmp = tmp_path(path);
    let file = File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    let mut out = BufWriter::with_capacity(8 << 20, file);
    let header: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    writeln!(out, "{}", header.join(","))?;

    let small_ints: Vec<String> = (0..=100).map(|i: i64| i.to_string()).collect();
    let mut last_ts: Option<(i64, String)> = None;
    let mut rows = 0u64;
    for batch in batches {
        for row in 0..batch.num_rows() {
            for (c, col) in batch.columns().iter().enumerate() {
                if c > 0 {
                    out.write_all(b",")?;
                }
                if col.is_null(row) {
                    continue;
                }
                match col.data_type() {
                    DataType::Timestamp(..) => {
                        let ms = col.as_primitive::<TimestampMillisecondType>().value(row);
                        if last_ts.as_ref().is_none_or(|(t, _)| *t != ms) {
                            last_ts = Some((ms, format_rfc3339_ms(ms)));
                        }
                        if let Some((_, text)) = &last_ts {
                            out.write_all(text.as_bytes())?;
                        }
                    }
                    DataType::Utf8 => {
                        let s = col.as_string::<i32>().value(row);
                        if s.contains([',', '"', '\n', '\r']) {
                            bail!("CSV writer: value {s:?} would need quoting");
                        }
                        out.write_all(s.as_bytes())?;
                    }
                    _ => {
                        let v = col.as_primitive::<Int64Type>().value(row);
                        match usize::try_from(v).ok().and_then(|i| small_ints.get(i)) {
                            Some(text) => out.write_all(text.as_bytes())?,
                            None => write!(out, "{v}")?,
                        }
                    }
                }
            }
            out.write_all(b"\n")?;
        }
        rows += batch.num_rows() as u64;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    finish_tmp(&tmp, path)?;
    Ok(FileStats {
        path: path.to_owned(),
        rows,
        bytes: std::fs::metadata(path)?.len(),
        row_groups: None,
    })
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    path.with_file_name(name)
}

fn finish_tmp(tmp: &Path, path: &Path) -> anyhow::Result<()> {
    std::fs::rename(tmp, path)
        .with_context(|| format!("rename {} -> {}", tmp.display(), path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::parquet_batches;
    use crate::tsbs::{TsbsConfig, tsbs_batches, tsbs_schema};

    fn read_all(path: &Path) -> anyhow::Result<Vec<RecordBatch>> {
        parquet_batches(path, 1 << 20)?.collect()
    }

    fn cfg() -> TsbsConfig {
        let mut cfg = TsbsConfig::new(5, 1, 1_451_606_400_000, 7);
        cfg.batch_rows = 500;
        cfg
    }

    fn opts() -> ParquetOptions {
        ParquetOptions {
            row_group_rows: 500,
            zstd_level: 1,
            sorted_by: Some(0),
            threads: 2,
        }
    }

    #[test]
    fn parquet_round_trips_and_is_deterministic() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let (a, b) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
        let stats = write_parquet(&a, tsbs_schema(), tsbs_batches(&cfg()), &opts())?;
        let one_thread = ParquetOptions {
            threads: 1,
            ..opts()
        };
        write_parquet(&b, tsbs_schema(), tsbs_batches(&cfg()), &one_thread)?;
        assert_eq!(stats.rows, cfg().rows());
        assert_eq!(stats.row_groups, Some(4)); // 1800 rows / 500
        assert_eq!(
            std::fs::read(&a)?,
            std::fs::read(&b)?,
            "same seed, same bytes"
        );

        // Row groups are cut at `row_group_rows` whatever the batch size.
        let mut small_batches = cfg();
        small_batches.batch_rows = 35;
        write_parquet(&b, tsbs_schema(), tsbs_batches(&small_batches), &opts())?;
        assert_eq!(
            std::fs::read(&a)?,
            std::fs::read(&b)?,
            "batching does not matter"
        );

        let read = read_all(&a)?;
        let rows: usize = read.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows as u64, cfg().rows());
        assert_eq!(read[0].schema(), tsbs_schema());
        let expected: Vec<RecordBatch> = tsbs_batches(&cfg()).collect();
        // One read batch spans the whole file; compare the leading rows of the first batch.
        assert_eq!(read[0].slice(0, 500), expected[0]);
        Ok(())
    }

    #[test]
    fn csv_has_header_and_iso_timestamps() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("cpu.csv");
        let stats = write_csv(&path, tsbs_schema(), tsbs_batches(&cfg()))?;
        let text = std::fs::read_to_string(&path)?;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len() as u64, stats.rows + 1);
        assert!(lines[0].starts_with("timestamp,hostname,region,"));
        assert!(lines[0].ends_with(",usage_guest_nice"));
        assert!(lines[1].starts_with("2016-01-01T00:00:00Z,host_0,"));
        assert!(lines[6].starts_with("2016-01-01T00:00:10Z,host_0,"));
        assert!(lines.iter().all(|l| l.split(',').count() == 21));
        Ok(())
    }
}
