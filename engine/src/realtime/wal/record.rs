//! The payload of a WAL record: the accepted rows of one push, grouped by the sink they go to.
//!
//! Two encodings, told apart by the first byte (see docs/FORMAT.md, "Realtime WAL"):
//!
//! - **binary** (first byte [`BINARY_RECORD_TAG`], written since WAL record format 2): compact
//!   and length-prefixed, read back with strings borrowed from the payload;
//! - **JSON** (first byte `{`, format 1, no longer written): `{"ds":…,"g":[{"s":start,"e":end,
//!   "v":version,"p":partition,"r":[[time,value…],…]}]}`. Logs written by earlier versions still
//!   replay.
//!
//! ```text
//! PAYLOAD := TAG(u8 = 2) DATASOURCE:STR GROUPS:UVAR GROUP*
//! GROUP   := START:i64 END:i64 VERSION:u64 FIRST_PARTITION:u32   (fixed width, little-endian)
//!            ROWS:UVAR VALUES_PER_ROW:UVAR ROW*
//! ROW     := TIME:SVAR (delta from the previous row's time in the group; the first row's
//!            from START) VALUE*VALUES_PER_ROW
//! VALUE   := 0 (null) | 1 (false) | 2 (true) | 3 SVAR (long) | 4 f64 (LE bits, double)
//!          | 5 STR (string) | 6 UVAR VALUE* (list of that many values, none of them lists)
//! STR     := UVAR (byte length) UTF-8 bytes
//! UVAR    := LEB128 unsigned; SVAR := zigzag then LEB128
//! ```
//!
//! The record's length and CRC-32C framing ([`super`]) is the same for both encodings.

use std::borrow::Cow;
use std::path::Path;

use arrow_buffer::NullBuffer;
use serde_json::Value;

use super::{FramedRecord, RECORD_HEADER_SIZE};
use crate::error::{Error, Result};
use crate::input::{ColumnView, InputValue};
use crate::realtime::index::{read_wal_row, to_owned_value};

/// First byte of a binary payload (WAL record format 2).
pub const BINARY_RECORD_TAG: u8 = 2;
/// First byte of a JSON payload (WAL record format 1, read but no longer written).
pub const JSON_RECORD_TAG: u8 = b'{';

const VALUE_NULL: u8 = 0;
const VALUE_FALSE: u8 = 1;
const VALUE_TRUE: u8 = 2;
const VALUE_LONG: u8 = 3;
const VALUE_DOUBLE: u8 = 4;
const VALUE_STR: u8 = 5;
const VALUE_LIST: u8 = 6;

/// The sink a group of rows goes to (the fields of its [`crate::realtime::index::SinkKey`]
/// besides the datasource).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupKey {
    /// Interval start (ms).
    pub start: i64,
    /// Interval end (ms).
    pub end: i64,
    /// Version.
    pub version: u64,
    /// First partition.
    pub first_partition: u32,
}

/// Rows of one sink in a record.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordGroup<'a> {
    /// The sink.
    pub key: GroupKey,
    /// (time, input values) per row.
    pub rows: Vec<(i64, Vec<InputValue<'a>>)>,
}

/// A decoded record.
#[derive(Clone, Debug, PartialEq)]
pub struct Record<'a> {
    /// The datasource.
    pub datasource: Cow<'a, str>,
    /// Rows by sink.
    pub groups: Vec<RecordGroup<'a>>,
}

/// Builds a binary payload: [`RecordEncoder::group`] for each sink, then
/// [`RecordEncoder::row`] for each of its rows.
#[derive(Debug)]
pub struct RecordEncoder {
    buf: Vec<u8>,
    prev_time: i64,
    values_per_row: usize,
    rows_left: u64,
    groups_left: u64,
}

impl RecordEncoder {
    /// A record for `datasource` with `groups` groups; `capacity` is a hint of its size.
    pub fn new(datasource: &str, groups: usize, capacity: usize) -> RecordEncoder {
        // Written after the room for the record header (see [`RecordEncoder::finish_framed`]).
        let mut buf = FramedRecord::buffer(capacity);
        buf.push(BINARY_RECORD_TAG);
        put_str(&mut buf, datasource);
        put_uvar(&mut buf, groups as u64);
        RecordEncoder {
            buf,
            prev_time: 0,
            values_per_row: 0,
            rows_left: 0,
            groups_left: groups as u64,
        }
    }

    /// Start the next group: `rows` rows of `values_per_row` values each follow.
    pub fn group(&mut self, key: GroupKey, rows: usize, values_per_row: usize) {
        debug_assert!(self.rows_left == 0 && self.groups_left > 0);
        self.groups_left = self.groups_left.saturating_sub(1);
        let b = &mut self.buf;
        b.extend_from_slice(&key.start.to_le_bytes());
        b.extend_from_slice(&key.end.to_le_bytes());
        b.extend_from_slice(&key.version.to_le_bytes());
        b.extend_from_slice(&key.first_partition.to_le_bytes());
        put_uvar(b, rows as u64);
        put_uvar(b, values_per_row as u64);
        self.prev_time = key.start;
        self.values_per_row = values_per_row;
        self.rows_left = rows as u64;
    }

    /// Add a row to the current group (`values.len()` must be the group's `values_per_row`).
    pub fn row(&mut self, time: i64, values: &[InputValue<'_>]) {
        debug_assert!(self.rows_left > 0 && values.len() == self.values_per_row);
        self.rows_left = self.rows_left.saturating_sub(1);
        put_svar(&mut self.buf, time.wrapping_sub(self.prev_time));
        self.prev_time = time;
        let b = &mut self.buf;
        for v in values {
            // The common values inline (no call per value); lists and long strings through
            // `put_value`. The bytes are `put_value`'s either way.
            match v {
                InputValue::Null => b.push(VALUE_NULL),
                InputValue::Long(i) => {
                    b.push(VALUE_LONG);
                    put_svar(b, *i);
                }
                InputValue::Double(f) => {
                    b.push(VALUE_DOUBLE);
                    b.extend_from_slice(&f.to_bits().to_le_bytes());
                }
                InputValue::Str(s) if s.len() < 0x80 => {
                    // A one-byte length.
                    b.extend_from_slice(&[VALUE_STR, s.len() as u8]);
                    b.extend_from_slice(s.as_bytes());
                }
                other => put_value(b, other),
            }
        }
    }

    /// Add a row to the current group from input columns seen whole: row `row` of `views`
    /// (one per input field), written as [`RecordEncoder::row`] writes the input values
    /// [`crate::input::ArrowRows::row`] reads for it. Columns read row by row
    /// ([`ColumnView::Rows`]) are not taken: the caller sends such batches down the row path.
    pub(crate) fn arrow_row(&mut self, time: i64, views: &[ColumnView<'_>], row: usize) {
        debug_assert!(self.rows_left > 0 && views.len() == self.values_per_row);
        self.rows_left = self.rows_left.saturating_sub(1);
        put_svar(&mut self.buf, time.wrapping_sub(self.prev_time));
        self.prev_time = time;
        let b = &mut self.buf;
        let valid = |nulls: &Option<&NullBuffer>| nulls.is_none_or(|n| n.is_valid(row));
        for view in views {
            match view {
                ColumnView::Long { values, nulls } if valid(nulls) => {
                    b.push(VALUE_LONG);
                    put_svar(b, values[row]);
                }
                ColumnView::Double { values, nulls } if valid(nulls) => {
                    b.push(VALUE_DOUBLE);
                    b.extend_from_slice(&values[row].to_bits().to_le_bytes());
                }
                ColumnView::Str(v) => match v.get(row) {
                    Some(s) if s.len() < 0x80 => {
                        b.extend_from_slice(&[VALUE_STR, s.len() as u8]);
                        b.extend_from_slice(s.as_bytes());
                    }
                    Some(s) => {
                        b.push(VALUE_STR);
                        put_str(b, s);
                    }
                    None => b.push(VALUE_NULL),
                },
                ColumnView::Null
                | ColumnView::Long { .. }
                | ColumnView::Double { .. }
                | ColumnView::Rows => b.push(VALUE_NULL),
            }
        }
    }

    /// The payload (copied out of the record buffer).
    pub fn finish(self) -> Vec<u8> {
        debug_assert!(self.rows_left == 0 && self.groups_left == 0);
        self.buf[RECORD_HEADER_SIZE..].to_vec()
    }

    /// The record, framed for [`super::Wal::append_framed`] (no copy of the payload).
    pub fn finish_framed(self) -> Result<FramedRecord> {
        debug_assert!(self.rows_left == 0 && self.groups_left == 0);
        FramedRecord::seal(self.buf)
    }
}

#[inline]
fn put_uvar(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

#[inline]
fn put_svar(b: &mut Vec<u8>, v: i64) {
    put_uvar(b, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    put_uvar(b, s.len() as u64);
    b.extend_from_slice(s.as_bytes());
}

fn put_value(b: &mut Vec<u8>, v: &InputValue<'_>) {
    match v {
        InputValue::Null => b.push(VALUE_NULL),
        InputValue::Bool(false) => b.push(VALUE_FALSE),
        InputValue::Bool(true) => b.push(VALUE_TRUE),
        InputValue::Long(i) => {
            b.push(VALUE_LONG);
            put_svar(b, *i);
        }
        InputValue::Double(f) => {
            b.push(VALUE_DOUBLE);
            b.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        InputValue::Str(s) => {
            b.push(VALUE_STR);
            put_str(b, s);
        }
        InputValue::List(items) => {
            b.push(VALUE_LIST);
            put_uvar(b, items.len() as u64);
            for it in items {
                put_value(b, it);
            }
        }
    }
}

/// Reads a binary payload; every error names what it expected.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> std::result::Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| format!("{what} at offset {} runs past the payload", self.pos))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn fixed<const N: usize>(&mut self, what: &str) -> std::result::Result<[u8; N], String> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self, what: &str) -> std::result::Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    fn uvar(&mut self, what: &str) -> std::result::Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8(what)?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!(
            "{what} at offset {} is an overlong varint",
            self.pos
        ))
    }

    fn svar(&mut self, what: &str) -> std::result::Result<i64, String> {
        let u = self.uvar(what)?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// A count of items each at least one byte long (so a corrupt count cannot make a huge
    /// allocation).
    fn count(&mut self, what: &str) -> std::result::Result<usize, String> {
        let n = self.uvar(what)?;
        let left = (self.bytes.len() - self.pos) as u64;
        if n > left {
            return Err(format!(
                "{what} {n} at offset {} is more than the {left} bytes left",
                self.pos
            ));
        }
        Ok(n as usize)
    }

    fn str(&mut self, what: &str) -> std::result::Result<&'a str, String> {
        let n = self.count(what)?;
        let s = self.take(n, what)?;
        std::str::from_utf8(s).map_err(|e| format!("{what} is not UTF-8: {e}"))
    }

    fn value(&mut self, in_list: bool) -> std::result::Result<InputValue<'a>, String> {
        Ok(match self.u8("value tag")? {
            VALUE_NULL => InputValue::Null,
            VALUE_FALSE => InputValue::Bool(false),
            VALUE_TRUE => InputValue::Bool(true),
            VALUE_LONG => InputValue::Long(self.svar("long value")?),
            VALUE_DOUBLE => InputValue::Double(f64::from_bits(u64::from_le_bytes(
                self.fixed("double value")?,
            ))),
            VALUE_STR => InputValue::Str(Cow::Borrowed(self.str("string value")?)),
            VALUE_LIST if !in_list => {
                let n = self.count("list length")?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(true)?);
                }
                InputValue::List(items)
            }
            t => return Err(format!("unknown value tag {t} at offset {}", self.pos - 1)),
        })
    }
}

fn decode_binary(bytes: &[u8]) -> std::result::Result<Record<'_>, String> {
    let mut r = Reader { bytes, pos: 1 };
    let datasource = Cow::Borrowed(r.str("datasource")?);
    let n_groups = r.count("group count")?;
    let mut groups = Vec::with_capacity(n_groups);
    for _ in 0..n_groups {
        let key = GroupKey {
            start: i64::from_le_bytes(r.fixed("group start")?),
            end: i64::from_le_bytes(r.fixed("group end")?),
            version: u64::from_le_bytes(r.fixed("group version")?),
            first_partition: u32::from_le_bytes(r.fixed("group partition")?),
        };
        let n_rows = r.count("row count")?;
        let per_row = r.count("values per row")?;
        let mut rows = Vec::with_capacity(n_rows);
        let mut time = key.start;
        for _ in 0..n_rows {
            time = time.wrapping_add(r.svar("row time")?);
            let mut values = Vec::with_capacity(per_row);
            for _ in 0..per_row {
                values.push(r.value(false)?);
            }
            rows.push((time, values));
        }
        groups.push(RecordGroup { key, rows });
    }
    if r.pos != bytes.len() {
        return Err(format!(
            "{} bytes after the last group",
            bytes.len() - r.pos
        ));
    }
    Ok(Record { datasource, groups })
}

fn decode_json(bytes: &[u8]) -> std::result::Result<Record<'static>, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("JSON payload: {e}"))?;
    let datasource = v.get("ds").and_then(Value::as_str).unwrap_or_default();
    let mut groups = Vec::new();
    for g in v.get("g").and_then(Value::as_array).into_iter().flatten() {
        let num = |k: &str| g.get(k).and_then(Value::as_i64);
        let (Some(start), Some(end), Some(version), Some(p)) =
            (num("s"), num("e"), num("v"), num("p"))
        else {
            return Err(format!(
                "JSON group without s, e, v, p: {}",
                g.to_string().chars().take(80).collect::<String>()
            ));
        };
        let mut rows = Vec::new();
        for row in g.get("r").and_then(Value::as_array).into_iter().flatten() {
            let (t, vals) = read_wal_row(row).map_err(|e| e.to_string())?;
            rows.push((t, vals.iter().map(to_owned_value).collect()));
        }
        groups.push(RecordGroup {
            key: GroupKey {
                start,
                end,
                version: version as u64,
                first_partition: p as u32,
            },
            rows,
        });
    }
    Ok(Record {
        datasource: Cow::Owned(datasource.to_string()),
        groups,
    })
}

/// Decode a payload of either encoding. `path` and `file_seq` name the record in errors.
pub fn decode<'a>(payload: &'a [u8], path: &Path, file_seq: u64) -> Result<Record<'a>> {
    let res = match payload.first() {
        Some(&BINARY_RECORD_TAG) => decode_binary(payload),
        Some(&JSON_RECORD_TAG) => decode_json(payload),
        other => Err(format!("unknown payload tag {other:?}")),
    };
    res.map_err(|found| {
        Error::corruption(
            path,
            format!("WAL record payload in file {file_seq}"),
            "a binary (tag 2) or JSON (tag '{') record of rows",
            found,
        )
    })
}

/// Encode a record in the JSON format (format 1). Not written any more; kept so tests can
/// check that logs of that format still replay.
pub fn encode_json(record: &Record<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"{\"ds\":");
    let _ = serde_json::to_writer(&mut out, &*record.datasource);
    out.extend_from_slice(b",\"g\":[");
    for (gi, g) in record.groups.iter().enumerate() {
        if gi > 0 {
            out.push(b',');
        }
        let k = g.key;
        out.extend_from_slice(
            format!(
                "{{\"s\":{},\"e\":{},\"v\":{},\"p\":{},\"r\":[",
                k.start, k.end, k.version, k.first_partition
            )
            .as_bytes(),
        );
        for (ri, (t, vals)) in g.rows.iter().enumerate() {
            if ri > 0 {
                out.push(b',');
            }
            out.push(b'[');
            out.extend_from_slice(t.to_string().as_bytes());
            for v in vals {
                out.push(b',');
                crate::realtime::index::write_json_value(&mut out, v);
            }
            out.push(b']');
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"]}");
    out
}

/// Encode a whole record in the binary format.
pub fn encode(record: &Record<'_>) -> Vec<u8> {
    let mut enc = RecordEncoder::new(&record.datasource, record.groups.len(), 256);
    for g in &record.groups {
        let per_row = g.rows.first().map_or(0, |r| r.1.len());
        enc.group(g.key, g.rows.len(), per_row);
        for (t, vals) in &g.rows {
            enc.row(*t, vals);
        }
    }
    enc.finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A record encoded from an Arrow batch's columns ([`RecordEncoder::arrow_row`]) is byte
    /// for byte the record of the same rows' input values ([`RecordEncoder::row`]): nulls in
    /// every column, unicode and long strings, dictionary-encoded strings, several groups, and
    /// rows taken out of order; and it reads back to those values.
    #[test]
    fn arrow_rows_encode_like_input_values() {
        use crate::input::test_batches::{HOUR, T0, batch, schema};
        use crate::input::{ArrowRows, ColumnView};
        let schema = schema(true);
        let b = batch(700, 3, 5);
        let rows = ArrowRows::new(&schema, &b).unwrap();
        let width = schema.dimensions.len() + schema.metrics.len();
        let views: Vec<ColumnView<'_>> = (0..width).map(|f| rows.field_view(f)).collect();
        let (times, _) = rows.times();
        // One group per hour, its rows backwards.
        let groups: Vec<(GroupKey, Vec<usize>)> = (0..3)
            .map(|h| {
                let start = T0 + h * HOUR;
                let key = GroupKey {
                    start,
                    end: start + HOUR,
                    version: 1_000 + h as u64,
                    first_partition: 1024 * h as u32,
                };
                let rows = (0..rows.len())
                    .rev()
                    .filter(|&i| times[i] >= start && times[i] < start + HOUR)
                    .collect();
                (key, rows)
            })
            .collect();
        let mut by_column = RecordEncoder::new("dß", groups.len(), 16);
        let mut by_value = RecordEncoder::new("dß", groups.len(), 16);
        let mut expected = Vec::new();
        let mut values = Vec::new();
        for (key, group) in &groups {
            by_column.group(*key, group.len(), width);
            by_value.group(*key, group.len(), width);
            let mut decoded_rows = Vec::new();
            for &i in group {
                by_column.arrow_row(times[i], &views, i);
                let t = rows.row(i, &mut values).unwrap();
                by_value.row(t, &values);
                decoded_rows.push((t, values.iter().map(to_owned_value).collect::<Vec<_>>()));
            }
            expected.push(RecordGroup {
                key: *key,
                rows: decoded_rows,
            });
        }
        let bytes = by_column.finish();
        assert_eq!(bytes, by_value.finish());
        let long = "ü".repeat(90);
        assert!(values.iter().any(|v| matches!(v, InputValue::Null)));
        assert!(bytes.windows(long.len()).any(|w| w == long.as_bytes()));
        let decoded = decode(&bytes, Path::new("wal"), 1).unwrap();
        assert_eq!(decoded.groups, expected);
    }

    fn sample() -> Record<'static> {
        let s = |x: &str| InputValue::Str(Cow::Owned(x.to_string()));
        Record {
            datasource: Cow::Borrowed("cpu \"quoted\" ✓"),
            groups: vec![
                RecordGroup {
                    key: GroupKey {
                        start: 1_700_000_000_000,
                        end: 1_700_003_600_000,
                        version: 42,
                        first_partition: 1024,
                    },
                    rows: vec![
                        (
                            1_700_000_000_123,
                            vec![
                                s("host_1"),
                                InputValue::Long(-5),
                                InputValue::Double(2.5),
                                InputValue::Null,
                            ],
                        ),
                        (
                            1_700_000_000_001,
                            vec![
                                InputValue::List(vec![s("a"), s(""), InputValue::Null]),
                                InputValue::Long(i64::MIN),
                                InputValue::Double(f64::NEG_INFINITY),
                                InputValue::Bool(true),
                            ],
                        ),
                    ],
                },
                RecordGroup {
                    key: GroupKey {
                        start: -3_600_000,
                        end: 0,
                        version: u64::MAX,
                        first_partition: 0,
                    },
                    rows: vec![(
                        -1,
                        vec![
                            s(&format!("日本 {}", "long string ".repeat(12))),
                            InputValue::Long(i64::MAX),
                            InputValue::Double(-0.0),
                            InputValue::Bool(false),
                        ],
                    )],
                },
            ],
        }
    }

    /// The framed record is the payload behind the header the log writes: length and
    /// CRC-32C of the payload.
    #[test]
    fn framed_record_holds_the_payload_and_its_header() {
        let rec = sample();
        let payload = encode(&rec);
        let mut enc = RecordEncoder::new(&rec.datasource, rec.groups.len(), 0);
        for g in &rec.groups {
            enc.group(g.key, g.rows.len(), g.rows[0].1.len());
            for (t, vals) in &g.rows {
                enc.row(*t, vals);
            }
        }
        let framed = enc.finish_framed().unwrap();
        assert_eq!(framed.payload(), &payload[..]);
        let head = &framed.0[..RECORD_HEADER_SIZE];
        assert_eq!(head[..4], (payload.len() as u32).to_le_bytes());
        assert_eq!(head[4..], crc32c::crc32c(&payload).to_le_bytes());
    }

    /// The encoder's inline cases write exactly `put_value`'s bytes.
    #[test]
    fn rows_are_encoded_as_put_value_writes_them() {
        let rec = sample();
        let mut reference = FramedRecord::buffer(0);
        reference.push(BINARY_RECORD_TAG);
        put_str(&mut reference, &rec.datasource);
        put_uvar(&mut reference, rec.groups.len() as u64);
        let mut enc = RecordEncoder::new(&rec.datasource, rec.groups.len(), 0);
        for g in &rec.groups {
            enc.group(g.key, g.rows.len(), g.rows[0].1.len());
            let b = &mut reference;
            b.extend_from_slice(&g.key.start.to_le_bytes());
            b.extend_from_slice(&g.key.end.to_le_bytes());
            b.extend_from_slice(&g.key.version.to_le_bytes());
            b.extend_from_slice(&g.key.first_partition.to_le_bytes());
            put_uvar(b, g.rows.len() as u64);
            put_uvar(b, g.rows[0].1.len() as u64);
            let mut prev = g.key.start;
            for (t, vals) in &g.rows {
                enc.row(*t, vals);
                put_svar(b, t.wrapping_sub(prev));
                prev = *t;
                for v in vals {
                    put_value(b, v);
                }
            }
        }
        assert_eq!(enc.finish(), reference[RECORD_HEADER_SIZE..]);
    }

    #[test]
    fn binary_round_trip() {
        let rec = sample();
        let bytes = encode(&rec);
        assert_eq!(bytes[0], BINARY_RECORD_TAG);
        let back = decode(&bytes, Path::new("wal"), 1).unwrap();
        assert_eq!(back, rec);
        // Strings are borrowed from the payload.
        assert!(matches!(back.datasource, Cow::Borrowed(_)));
        assert!(matches!(
            &back.groups[0].rows[0].1[0],
            InputValue::Str(Cow::Borrowed(_))
        ));
        // Compact: smaller than the JSON encoding of the same rows.
        assert!(bytes.len() < encode_json(&rec).len());
    }

    #[test]
    fn json_records_still_decode() {
        // Written by the format-1 encoder: the same rows (non-finite doubles read back as their
        // text, which the writer converts like the number).
        let text = br#"{"ds":"ev","g":[{"s":0,"e":3600000,"v":7,"p":1024,"r":[[5,"a",["x","y"],3,1.5,null,true]]}]}"#;
        let rec = decode(text, Path::new("wal"), 1).unwrap();
        assert_eq!(rec.datasource, "ev");
        assert_eq!(rec.groups.len(), 1);
        let g = &rec.groups[0];
        assert_eq!(
            g.key,
            GroupKey {
                start: 0,
                end: 3_600_000,
                version: 7,
                first_partition: 1024
            }
        );
        let s = |x: &str| InputValue::Str(Cow::Owned(x.to_string()));
        assert_eq!(
            g.rows,
            vec![(
                5,
                vec![
                    s("a"),
                    InputValue::List(vec![s("x"), s("y")]),
                    InputValue::Long(3),
                    InputValue::Double(1.5),
                    InputValue::Null,
                    InputValue::Bool(true),
                ]
            )]
        );
        // The test encoder writes exactly that format.
        let mut finite = sample();
        finite.groups[0].rows[1].1[2] = InputValue::Double(1e300);
        // Format 1 wrote versions as JSON numbers read back as i64.
        finite.groups[1].key.version = 9;
        let json = encode_json(&finite);
        assert_eq!(json[0], JSON_RECORD_TAG);
        assert_eq!(decode(&json, Path::new("wal"), 1).unwrap(), finite);
    }

    #[test]
    fn damaged_payloads_are_corruption_errors() {
        let bytes = encode(&sample());
        // Every truncation fails cleanly (never a panic or a huge allocation).
        for cut in 0..bytes.len() {
            let err = decode(&bytes[..cut], Path::new("wal"), 1).unwrap_err();
            assert!(matches!(err, Error::Corruption { .. }), "{cut}: {err}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode(&extra, Path::new("wal"), 1).is_err());
        let mut bad_tag = bytes.clone();
        bad_tag[0] = 9;
        assert!(decode(&bad_tag, Path::new("wal"), 1).is_err());
        // Flipping any byte never panics.
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xa5;
            let _ = decode(&b, Path::new("wal"), 1);
        }
    }
}
