//! The incremental index: one *sink* per (datasource, segment interval, version, first
//! partition) holding the rows pushed for that interval until handoff.
//!
//! A sink keeps new rows in a [`SegmentWriter`] (columnar, dictionaries growing as values
//! arrive) and, on a *freeze*, turns them into an immutable, memory-mapped piece: sorted and
//! rolled up by `queryGranularity` and the dimensions, with the schema's metric aggregators
//! (HLL sketches included). Pieces are what queries read; handoff merges them into final
//! segments. Rows are validated here, before the WAL sees them, so a row is either rejected with
//! a reason or certain to be appended.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::input::{ColumnView, InputValue, JsonRowReader};
use crate::loader::convert::{to_double, to_long};
use crate::schema::{DataSchema, DimensionType, MetricKind};
use crate::segment::{SegmentId, SegmentRef, SegmentWriter, Version};
use crate::time::Interval;

/// Partitions each sink reserves in its interval's version: its handoff publishes partitions
/// `first_partition .. first_partition + SINK_PARTITION_SPAN` at most.
pub const SINK_PARTITION_SPAN: u32 = 1024;

/// The identity of a sink; also the identity of the first segment its handoff publishes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SinkKey {
    /// The datasource.
    pub datasource: String,
    /// The segment-granularity interval.
    pub interval: Interval,
    /// The version its segments are published with.
    pub version: Version,
    /// The first partition its segments are published with.
    pub first_partition: u32,
}

impl SinkKey {
    /// The id of the first segment this sink's handoff publishes: once the catalog holds it,
    /// the sink's rows are published (the handoff marker).
    pub fn marker(&self) -> SegmentId {
        SegmentId {
            datasource: self.datasource.clone(),
            interval: self.interval,
            version: self.version,
            partition: self.first_partition,
        }
    }
}

/// An immutable piece of a sink: a rolled-up segment file in the realtime scratch directory.
#[derive(Debug, Clone)]
pub struct Piece {
    /// The open (memory-mapped) segment.
    pub segment: SegmentRef,
    /// Its file.
    pub path: PathBuf,
}

/// Rows of one datasource interval waiting for handoff.
#[derive(Debug)]
pub struct Sink {
    /// Identity.
    pub key: SinkKey,
    /// The datasource schema rows are read with.
    pub schema: Arc<DataSchema>,
    /// Rows since the last freeze.
    pub pending: SegmentWriter,
    /// Accounted bytes of `pending`.
    pub pending_bytes: u64,
    /// Frozen pieces.
    pub pieces: Vec<Piece>,
    /// Oldest WAL file holding rows of this sink.
    pub first_wal_file: u64,
    /// Wall-clock time (clock ms) the sink was created.
    pub created_ms: i64,
    /// Last freeze (or creation).
    pub last_freeze: Instant,
    /// Handoff has started: no new rows.
    pub handing_off: bool,
    /// Rows appended in all (before rollup).
    pub rows_in: u64,
    /// Held by whoever freezes this sink, for the whole freeze: the pending rows are taken out
    /// under the sink lock and written to a piece outside it (pushes go on meanwhile), so a
    /// query that must see every acknowledged row takes this gate to wait for a freeze in
    /// flight.
    pub persist_gate: Arc<parking_lot::Mutex<()>>,
}

impl Sink {
    /// Rows held: the frozen pieces' (rolled up) and the pending ones (as pushed).
    pub fn rows(&self) -> u64 {
        self.pieces
            .iter()
            .map(|p| p.segment.num_rows())
            .sum::<u64>()
            + self.pending.num_rows() as u64
    }

    /// A new, empty sink.
    pub fn new(key: SinkKey, schema: Arc<DataSchema>, wal_file: u64, now_ms: i64) -> Result<Sink> {
        let pending = SegmentWriter::new(&schema, key.interval)?;
        Ok(Sink {
            key,
            schema,
            pending,
            pending_bytes: 0,
            pieces: Vec::new(),
            first_wal_file: wal_file,
            created_ms: now_ms,
            last_freeze: Instant::now(),
            handing_off: false,
            rows_in: 0,
            persist_gate: Arc::default(),
        })
    }
}

/// A row that failed validation: a short reason (the counting key) and the full message.
#[derive(Debug, Clone)]
pub struct Reject {
    /// Category, e.g. `unparseable timestamp`.
    pub reason: &'static str,
    /// Full message naming the field and value.
    pub message: String,
}

impl Reject {
    /// A reject with a category and a message.
    pub fn new(reason: &'static str, message: impl Into<String>) -> Reject {
        Reject {
            reason,
            message: message.into(),
        }
    }

    /// The same reject with `prefix` before its message (e.g. the line it came from).
    pub fn prefixed(self, prefix: &str) -> Reject {
        Reject {
            reason: self.reason,
            message: format!("{prefix}{}", self.message),
        }
    }
}

/// Read one JSON row: object check, timestamp, input values.
pub fn parse_json_row<'a>(
    schema: &DataSchema,
    row: &'a Value,
) -> std::result::Result<(i64, Vec<InputValue<'a>>), Reject> {
    let Value::Object(map) = row else {
        return Err(Reject::new(
            "not a JSON object",
            format!(
                "row is {}, not a JSON object",
                crate::schema::json_type(row)
            ),
        ));
    };
    let mut values = Vec::new();
    match crate::input::json_row(schema, map, &mut values) {
        Ok(t) => Ok((t, values)),
        Err(e) => {
            let msg = match e {
                Error::InvalidArgument(m) => m,
                other => other.to_string(),
            };
            let reason = if msg.starts_with("timestamp field") {
                if msg.contains("missing or null") {
                    "missing timestamp"
                } else {
                    "unparseable timestamp"
                }
            } else {
                "wrong type"
            };
            Err(Reject::new(reason, msg))
        }
    }
}

/// Reject reason of a row whose text is not JSON (its message is the JSON parser's).
pub const INVALID_JSON: &str = "invalid JSON";

/// Read one row from its JSON text and validate it, appending its input values to `out`:
/// the fast [`JsonRowReader`], and the general reader (through a [`Value`]) for any row the
/// fast one does not take, so every reject has the general reader's reason. Text that is not
/// JSON (or not UTF-8) is rejected as `invalid JSON`. On a reject `out` may hold values past
/// its old length: the caller cuts it back.
pub fn read_json_text<'a>(
    reader: &JsonRowReader<'_>,
    schema: &DataSchema,
    text: &'a [u8],
    out: &mut Vec<InputValue<'a>>,
) -> std::result::Result<i64, Reject> {
    match std::str::from_utf8(text) {
        Ok(s) => read_json_str(reader, schema, s, out),
        Err(_) => read_json_general(schema, text, out),
    }
}

/// [`read_json_text`] of a text already known to be UTF-8.
pub fn read_json_str<'a>(
    reader: &JsonRowReader<'_>,
    schema: &DataSchema,
    text: &'a str,
    out: &mut Vec<InputValue<'a>>,
) -> std::result::Result<i64, Reject> {
    let start = out.len();
    if let Some(t) = reader.read(text, out) {
        validate_values(schema, &out[start..])?;
        return Ok(t);
    }
    out.truncate(start);
    read_json_general(schema, text.as_bytes(), out)
}

/// The general reader of [`read_json_text`]: values owned, every reason spelled out.
fn read_json_general<'a>(
    schema: &DataSchema,
    text: &[u8],
    out: &mut Vec<InputValue<'a>>,
) -> std::result::Result<i64, Reject> {
    let v: Value =
        serde_json::from_slice(text).map_err(|e| Reject::new(INVALID_JSON, e.to_string()))?;
    let (t, vals) = parse_json_row(schema, &v)?;
    validate_values(schema, &vals)?;
    out.extend(vals.iter().map(|v| -> InputValue<'a> { to_owned_value(v) }));
    Ok(t)
}

/// Check that every input value converts to its column as the segment writer will convert it,
/// so appending the row cannot fail.
pub fn validate_values(
    schema: &DataSchema,
    values: &[InputValue<'_>],
) -> std::result::Result<(), Reject> {
    let n_dims = schema.dimensions.len();
    if values.len() != n_dims + schema.metrics.len() {
        return Err(Reject::new(
            "internal",
            "row has the wrong number of fields",
        ));
    }
    let wrong = |(_, msg): (String, String)| Reject::new("wrong type", msg);
    // Values that already have their column's type convert without a check (the common
    // case); the rest go through the conversions, which say what is wrong.
    let long_ok = |v: &InputValue<'_>| matches!(v, InputValue::Long(_) | InputValue::Null);
    let double_ok = |v: &InputValue<'_>| match v {
        InputValue::Double(f) => !f.is_nan(),
        InputValue::Long(_) | InputValue::Null => true,
        _ => false,
    };
    for (d, v) in schema.dimensions.iter().zip(values) {
        match d.kind {
            DimensionType::String => {
                if let InputValue::List(items) = v
                    && items.iter().any(|i| matches!(i, InputValue::List(_)))
                {
                    return Err(Reject::new(
                        "wrong type",
                        format!("field `{}`: nested lists are not allowed", d.name),
                    ));
                }
            }
            DimensionType::Long if long_ok(v) => {}
            DimensionType::Long => {
                to_long(v, &d.name).map_err(wrong)?;
            }
            DimensionType::Double if double_ok(v) => {}
            DimensionType::Double => {
                to_double(v, &d.name).map_err(wrong)?;
            }
        }
    }
    for (m, v) in schema.metrics.iter().zip(&values[n_dims..]) {
        match m.kind {
            MetricKind::Count | MetricKind::HllSketch => {}
            k if k.is_long() && long_ok(v) => {}
            k if k.is_long() => {
                let field = m.field_name.as_deref().unwrap_or(&m.name);
                to_long(v, field).map_err(wrong)?;
            }
            _ if double_ok(v) => {}
            _ => {
                let field = m.field_name.as_deref().unwrap_or(&m.name);
                to_double(v, field).map_err(wrong)?;
            }
        }
    }
    Ok(())
}

/// Longest rendering of a number or a boolean as a string value.
const SCALAR_TEXT: usize = 24;

/// An upper bound of what appending one row adds to a writer's
/// [`SegmentWriter::estimated_bytes`]: the per-row estimate, plus, for each value of a string
/// dimension (`string_dims` has one entry per dimension), a new dictionary entry. A push
/// reserves this much before it appends, and gives back what the writers did not take.
pub fn row_bytes(per_row: u64, string_dims: &[bool], values: &[InputValue<'_>]) -> u64 {
    fn entry(v: &InputValue<'_>) -> u64 {
        match v {
            InputValue::Null => 0,
            InputValue::Str(s) => crate::segment::writer::dictionary_entry_bytes(s.len()),
            InputValue::List(items) => items.iter().map(|i| entry(i) + 12).sum::<u64>(),
            _ => crate::segment::writer::dictionary_entry_bytes(SCALAR_TEXT),
        }
    }
    per_row
        + string_dims
            .iter()
            .zip(values)
            .filter(|(s, _)| **s)
            .map(|(_, v)| entry(v))
            .sum::<u64>()
}

/// [`row_bytes`] summed over rows `rows` of input columns seen whole (one per input field, as
/// [`crate::input::ArrowRows::field_view`] gives them): the same bound, computed column by
/// column instead of from each row's input values.
pub(crate) fn column_row_bytes(
    per_row: u64,
    string_dims: &[bool],
    views: &[ColumnView<'_>],
    rows: &[u32],
) -> u64 {
    use crate::segment::writer::dictionary_entry_bytes;
    let entry = |s: &str| dictionary_entry_bytes(s.len());
    let valid = |nulls: &Option<&arrow_buffer::NullBuffer>, r: u32| {
        nulls.is_none_or(|n| n.is_valid(r as usize))
    };
    let mut total = per_row * rows.len() as u64;
    for (_, view) in string_dims.iter().zip(views).filter(|(s, _)| **s) {
        total += match view {
            ColumnView::Null => 0,
            ColumnView::Str(v) => rows
                .iter()
                .map(|&r| v.get(r as usize).map_or(0, entry))
                .sum::<u64>(),
            ColumnView::Long { nulls, .. } | ColumnView::Double { nulls, .. } => {
                rows.iter().filter(|&&r| valid(nulls, r)).count() as u64
                    * dictionary_entry_bytes(SCALAR_TEXT)
            }
            // Read row by row (lists, booleans): at most a list's worth per row is not known
            // here; such columns do not go column-wise (see `writer::takes_arrow_columns`).
            ColumnView::Rows => rows.len() as u64 * dictionary_entry_bytes(SCALAR_TEXT),
        };
    }
    total
}

/// Write an input value as compact JSON (the WAL row encoding). Non-finite doubles are written
/// as their text, which reads back to the same value and the same string rendering.
pub fn write_json_value(out: &mut Vec<u8>, v: &InputValue<'_>) {
    use std::io::Write as _;
    match v {
        InputValue::Null => out.extend_from_slice(b"null"),
        InputValue::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        InputValue::Long(i) => {
            let _ = write!(out, "{i}");
        }
        InputValue::Double(f) => {
            if f.is_finite() {
                let _ = serde_json::to_writer(&mut *out, f);
            } else {
                let _ = serde_json::to_writer(&mut *out, &f.to_string());
            }
        }
        InputValue::Str(s) => {
            let _ = serde_json::to_writer(&mut *out, &**s);
        }
        InputValue::List(items) => {
            out.push(b'[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_value(out, it);
            }
            out.push(b']');
        }
    }
}

/// Read a WAL row back: `[time, value…]`.
pub fn read_wal_row(v: &Value) -> Result<(i64, Vec<InputValue<'_>>)> {
    let bad = || Error::internal("WAL row is not [time, values…]");
    let Value::Array(items) = v else {
        return Err(bad());
    };
    let time = items.first().and_then(Value::as_i64).ok_or_else(bad)?;
    let mut values = Vec::with_capacity(items.len().saturating_sub(1));
    for it in &items[1..] {
        values.push(InputValue::from_json(it, "wal")?);
    }
    Ok((time, values))
}

/// Make an owned copy of an input value.
pub fn to_owned_value(v: &InputValue<'_>) -> InputValue<'static> {
    match v {
        InputValue::Null => InputValue::Null,
        InputValue::Bool(b) => InputValue::Bool(*b),
        InputValue::Long(i) => InputValue::Long(*i),
        InputValue::Double(f) => InputValue::Double(*f),
        InputValue::Str(s) => InputValue::Str(Cow::Owned(s.to_string())),
        InputValue::List(items) => InputValue::List(items.iter().map(to_owned_value).collect()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The memory bound of rows computed column by column is the sum of the rows' own
    /// bounds.
    #[test]
    fn column_row_bytes_sums_row_bytes() {
        use crate::input::test_batches::{batch, schema};
        use crate::input::{ArrowRows, ColumnView};
        let schema = schema(false);
        let b = batch(500, 2, 9);
        let rows = ArrowRows::new(&schema, &b).unwrap();
        let width = schema.dimensions.len() + schema.metrics.len();
        let views: Vec<ColumnView<'_>> = (0..width).map(|f| rows.field_view(f)).collect();
        let string_dims: Vec<bool> = schema
            .dimensions
            .iter()
            .map(|d| d.kind == DimensionType::String)
            .collect();
        let per_row = crate::segment::writer::writer_bytes_per_row(&schema);
        let picked: Vec<u32> = (0..500).filter(|r| r % 3 != 0).collect();
        let mut values = Vec::new();
        let expected: u64 = picked
            .iter()
            .map(|&r| {
                rows.row(r as usize, &mut values).unwrap();
                row_bytes(per_row, &string_dims, &values)
            })
            .sum();
        assert_eq!(
            column_row_bytes(per_row, &string_dims, &views, &picked),
            expected
        );
    }
}
