//! Input streams for workloads: a Parquet file, or the TSBS generator.

use std::fs::File;
use std::path::Path;

use anyhow::Context;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Streams the record batches of a Parquet file (`batch_size` rows at most per batch), returning
/// the file's Arrow schema along with them.
pub fn parquet_batches_with_schema(
    path: &Path,
    batch_size: usize,
) -> anyhow::Result<(
    SchemaRef,
    impl Iterator<Item = anyhow::Result<RecordBatch>> + Send + use<>,
)> {
    let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("read Parquet metadata of {}", path.display()))?
        .with_batch_size(batch_size)
        .build()?;
    let schema = arrow_array::RecordBatchReader::schema(&reader);
    Ok((schema, reader.map(|b| b.map_err(anyhow::Error::from))))
}

/// Streams the record batches of a Parquet file; see [`parquet_batches_with_schema`].
pub fn parquet_batches(
    path: &Path,
    batch_size: usize,
) -> anyhow::Result<impl Iterator<Item = anyhow::Result<RecordBatch>> + Send + use<>> {
    Ok(parquet_batches_with_schema(path, batch_size)?.1)
}
