//! Where protobuf types meet engine types: errors to `tonic::Status`, tables to Arrow IPC
//! stream pieces, Arrow IPC push payloads to record batches, gRPC deadlines to query timeouts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_ipc::reader::StreamDecoder;
use arrow_ipc::writer::StreamWriter;
use basalt_engine::Error as EngineError;
use basalt_engine::table::SqlOutput;
use tonic::Status;
use tonic::metadata::MetadataMap;

/// Rows per Arrow record batch sent to clients.
pub const RESULT_BATCH_ROWS: usize = 8192;

/// Map an engine error to a gRPC status. Client errors keep their message; internal errors are
/// logged and the client gets only the category.
pub fn status_from(e: EngineError) -> Status {
    match &e {
        EngineError::InvalidArgument(_) => Status::invalid_argument(e.to_string()),
        EngineError::NotFound(_) => Status::not_found(e.to_string()),
        EngineError::AlreadyExists(_) => Status::already_exists(e.to_string()),
        EngineError::Unsupported(_) => Status::unimplemented(e.to_string()),
        EngineError::ResourcesExhausted(_) => Status::resource_exhausted(e.to_string()),
        EngineError::Timeout(_) => Status::deadline_exceeded(e.to_string()),
        EngineError::Cancelled(_) => Status::cancelled(e.to_string()),
        _ => {
            tracing::error!(error = %e, "internal error");
            Status::internal("internal error; see the server log")
        }
    }
}

/// Encode an answer as Arrow IPC stream pieces: the schema, one piece per batch of at most
/// [`RESULT_BATCH_ROWS`] rows, and the end-of-stream marker. Concatenated they form one valid
/// Arrow IPC stream. A projected scan is converted straight from its columns.
pub fn table_to_ipc(table: &SqlOutput) -> Result<Vec<Vec<u8>>, Status> {
    let schema = table.arrow_schema();
    let internal = |e: arrow_schema::ArrowError| {
        tracing::error!(error = %e, "Arrow IPC encoding failed");
        Status::internal("encoding the result as Arrow IPC failed")
    };
    let mut pieces = Vec::new();
    let mut writer = StreamWriter::try_new(Vec::new(), &schema).map_err(internal)?;
    pieces.push(std::mem::take(writer.get_mut()));
    let mut failed: Option<Status> = None;
    table
        .for_each_record_batch(RESULT_BATCH_ROWS, |batch| {
            if let Err(e) = writer.write(&batch) {
                failed = Some(internal(e));
                return Err(EngineError::internal("Arrow IPC encoding failed"));
            }
            pieces.push(std::mem::take(writer.get_mut()));
            Ok(())
        })
        .map_err(|e| failed.take().unwrap_or_else(|| status_from(e)))?;
    writer.finish().map_err(internal)?;
    pieces.push(std::mem::take(writer.get_mut()));
    Ok(pieces)
}

/// Decode an Arrow IPC stream sent by a client into record batches.
pub fn ipc_to_batches(bytes: impl Into<arrow_buffer::Buffer>) -> Result<Vec<RecordBatch>, Status> {
    let mut buffer: arrow_buffer::Buffer = bytes.into();
    let invalid = |e: arrow_schema::ArrowError| {
        Status::invalid_argument(format!("arrow_ipc is not a valid Arrow IPC stream: {e}"))
    };
    if buffer.is_empty() {
        return Err(Status::invalid_argument(
            "arrow_ipc is not a valid Arrow IPC stream: it is empty (no schema message)",
        ));
    }
    // The decoder slices the record batches' arrays out of `buffer` (copying only what is
    // misaligned), where a reader over a byte slice would copy every array.
    let mut decoder = StreamDecoder::new();
    let mut batches = Vec::new();
    while !buffer.is_empty() {
        if let Some(batch) = decoder.decode(&mut buffer).map_err(invalid)? {
            batches.push(batch);
        }
    }
    decoder.finish().map_err(invalid)?;
    if decoder.schema().is_none() {
        return Err(Status::invalid_argument(
            "arrow_ipc is not a valid Arrow IPC stream: it has no schema message",
        ));
    }
    Ok(batches)
}

/// The client's deadline from the `grpc-timeout` header, if any.
pub fn grpc_timeout(metadata: &MetadataMap) -> Option<Duration> {
    let text = metadata.get("grpc-timeout")?.to_str().ok()?;
    if text.len() < 2 {
        return None;
    }
    let (digits, unit) = text.split_at(text.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Put a deadline into a query context object as Druid's `timeout` (milliseconds), keeping a
/// shorter timeout the query already asks for.
pub fn apply_deadline(context: &mut serde_json::Map<String, serde_json::Value>, d: Duration) {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
    let existing = context.get("timeout").and_then(|v| v.as_u64());
    let t = match existing {
        Some(e) if e > 0 && e < ms => e,
        _ => ms,
    };
    context.insert("timeout".into(), serde_json::Value::from(t));
}

/// Sets a cancellation flag when dropped: held by a call's future and then by its response
/// stream, so a client that cancels or disconnects stops the query it started.
#[derive(Debug)]
pub struct CancelOnDrop(pub Arc<AtomicBool>);

impl CancelOnDrop {
    /// A new, unset flag and its guard.
    pub fn new() -> (CancelOnDrop, Arc<AtomicBool>) {
        let flag = Arc::new(AtomicBool::new(false));
        (CancelOnDrop(flag.clone()), flag)
    }

    /// Forget the guard without cancelling (the query finished).
    pub fn disarm(self) {
        std::mem::forget(self);
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_engine::table::{SqlType, Table, TableColumn};
    use serde_json::json;

    #[test]
    fn timeout_header_units() {
        let mut m = MetadataMap::new();
        for (v, d) in [
            ("5S", Duration::from_secs(5)),
            ("250m", Duration::from_millis(250)),
            ("2M", Duration::from_secs(120)),
            ("7u", Duration::from_micros(7)),
        ] {
            m.insert("grpc-timeout", v.parse().unwrap_or_else(|_| panic!("{v}")));
            assert_eq!(grpc_timeout(&m), Some(d), "{v}");
        }
        m.insert("grpc-timeout", "x".parse().unwrap_or_else(|_| panic!("x")));
        assert_eq!(grpc_timeout(&m), None);
    }

    #[test]
    fn deadline_keeps_the_shorter_timeout() {
        let mut c = serde_json::Map::new();
        apply_deadline(&mut c, Duration::from_millis(500));
        assert_eq!(c["timeout"], json!(500));
        c.insert("timeout".into(), json!(100));
        apply_deadline(&mut c, Duration::from_millis(500));
        assert_eq!(c["timeout"], json!(100));
        c.insert("timeout".into(), json!(10_000));
        apply_deadline(&mut c, Duration::from_millis(500));
        assert_eq!(c["timeout"], json!(500));
    }

    #[test]
    fn ipc_pieces_concatenate_into_one_stream() -> Result<(), Status> {
        let table = Table {
            columns: vec![
                TableColumn {
                    name: "__time".into(),
                    sql_type: SqlType::Timestamp,
                },
                TableColumn {
                    name: "host".into(),
                    sql_type: SqlType::Varchar,
                },
                TableColumn {
                    name: "n".into(),
                    sql_type: SqlType::Bigint,
                },
            ],
            rows: (0..(RESULT_BATCH_ROWS as i64 + 5))
                .map(|i| {
                    vec![
                        json!("2024-01-01T00:00:00.000Z"),
                        if i % 3 == 0 {
                            json!(null)
                        } else {
                            json!(format!("h{i}"))
                        },
                        json!(i),
                    ]
                })
                .collect(),
        };
        let pieces = table_to_ipc(&SqlOutput::Table(table.clone()))?;
        assert_eq!(pieces.len(), 4, "schema + 2 batches + end marker");
        let all: Vec<u8> = pieces.concat();
        let batches = ipc_to_batches(all)?;
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, table.rows.len());
        assert_eq!(batches[0].schema().field(1).name(), "host");
        assert!(batches[0].column(1).is_null(0));
        Ok(())
    }

    fn two_batch_stream() -> (Vec<RecordBatch>, Vec<u8>) {
        use arrow_array::{Int64Array, StringArray};
        let schema = Arc::new(arrow_schema::Schema::new(vec![
            arrow_schema::Field::new("host", arrow_schema::DataType::Utf8, true),
            arrow_schema::Field::new("n", arrow_schema::DataType::Int64, false),
        ]));
        let batch = |hosts: Vec<Option<&str>>, ns: Vec<i64>| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(hosts)),
                    Arc::new(Int64Array::from(ns)),
                ],
            )
            .unwrap_or_else(|e| panic!("{e}"))
        };
        let batches = vec![
            batch(vec![Some("a"), None, Some("ünï")], vec![1, 2, 3]),
            batch(vec![Some("b")], vec![i64::MIN]),
        ];
        let mut ipc = Vec::new();
        let mut w = StreamWriter::try_new(&mut ipc, &schema).unwrap_or_else(|e| panic!("{e}"));
        for b in &batches {
            w.write(b).unwrap_or_else(|e| panic!("{e}"));
        }
        w.finish().unwrap_or_else(|e| panic!("{e}"));
        drop(w);
        (batches, ipc)
    }

    #[test]
    fn ipc_decodes_in_place_from_request_bytes() -> Result<(), Status> {
        let (batches, ipc) = two_batch_stream();
        let bytes = tonic::codegen::Bytes::from(ipc.clone());
        let range = bytes.as_ptr_range();
        let decoded = ipc_to_batches(bytes.clone())?;
        assert_eq!(decoded, batches);
        // Not copied: the arrays point into the request's bytes.
        let values = decoded[0].column(1).to_data().buffers()[0].as_ptr();
        assert!(range.contains(&values), "the array was copied");
        // Bytes that start at an odd address (a request's field rarely starts aligned): the
        // arrays are realigned, with the same values.
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&ipc);
        let odd = tonic::codegen::Bytes::from(shifted).slice(1..);
        assert_eq!(ipc_to_batches(odd)?, batches);
        Ok(())
    }

    #[test]
    fn bad_ipc_streams_get_a_clear_error() {
        let (_, ipc) = two_batch_stream();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("garbage", b"this is not arrow at all, just text".to_vec()),
            ("cut in a batch", ipc[..ipc.len() - 40].to_vec()),
            ("cut in the schema", ipc[..12].to_vec()),
        ];
        for (what, bytes) in cases {
            let e = ipc_to_batches(bytes).expect_err(what);
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{what}");
            assert!(
                e.message()
                    .starts_with("arrow_ipc is not a valid Arrow IPC stream"),
                "{what}: {}",
                e.message()
            );
        }
    }
}
