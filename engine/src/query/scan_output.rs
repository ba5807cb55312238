//! The result of a scan query as typed columns.
//!
//! A scan can return millions of rows; building a JSON value per cell costs far more than
//! reading the segments. [`ScanOutput`] keeps each segment's rows as typed columns (numbers as
//! vectors, strings as dictionary ids into the segment's dictionary), and is written as Druid's
//! JSON straight from them ([`ScanOutput::write_json`]) or turned into the JSON value when a
//! caller needs one ([`ScanOutput::into_json`]).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::query::aggregator::json_f64;

/// One column of a batch of scan rows.
#[derive(Debug, Clone)]
pub enum ScanColumn {
    /// Absent from the segment: every row is null.
    Null,
    /// `__time` or a long column; `nulls[i]` marks null rows (`None`: no nulls).
    Long(Vec<i64>, Option<Vec<bool>>),
    /// A double column.
    Double(Vec<f64>, Option<Vec<bool>>),
    /// A single-value string column: ids into `dict` (id 0 is null).
    Str(Vec<u32>, Arc<Vec<String>>),
    /// Any other column (multi-value strings, sketches, complex metrics), one JSON cell per row.
    Json(Vec<Value>),
}

impl ScanColumn {
    /// Row `i` as a JSON value, as Druid's scan results carry it.
    pub fn json(&self, i: usize) -> Value {
        match self {
            ScanColumn::Null => Value::Null,
            ScanColumn::Long(v, nulls) => {
                if is_null(nulls, i) {
                    Value::Null
                } else {
                    Value::from(v[i])
                }
            }
            ScanColumn::Double(v, nulls) => {
                if is_null(nulls, i) {
                    Value::Null
                } else {
                    json_f64(v[i])
                }
            }
            ScanColumn::Str(ids, dict) => match ids[i] {
                0 => Value::Null,
                id => dict
                    .get(id as usize)
                    .map_or(Value::Null, |s| Value::String(s.clone())),
            },
            ScanColumn::Json(v) => v[i].clone(),
        }
    }

    /// The long value of row `i` (`None` when null or not a long column).
    pub fn long(&self, i: usize) -> Option<i64> {
        match self {
            ScanColumn::Long(v, nulls) if !is_null(nulls, i) => Some(v[i]),
            _ => None,
        }
    }

    /// The double value of row `i` (`None` when null or not a double column).
    pub fn double(&self, i: usize) -> Option<f64> {
        match self {
            ScanColumn::Double(v, nulls) if !is_null(nulls, i) => Some(v[i]),
            _ => None,
        }
    }

    /// The string of row `i` (`None` when null or not a single-value string column).
    pub fn str(&self, i: usize) -> Option<&str> {
        match self {
            ScanColumn::Str(ids, dict) if ids[i] != 0 => {
                dict.get(ids[i] as usize).map(String::as_str)
            }
            _ => None,
        }
    }

    /// Row `i` written as JSON (the same text as serializing [`ScanColumn::json`]).
    #[inline]
    pub fn write_json(&self, i: usize, out: &mut Vec<u8>) {
        match self {
            ScanColumn::Null => out.extend_from_slice(b"null"),
            ScanColumn::Long(v, nulls) => {
                if is_null(nulls, i) {
                    out.extend_from_slice(b"null");
                } else {
                    write_i64(out, v[i]);
                }
            }
            ScanColumn::Double(v, nulls) => {
                if is_null(nulls, i) {
                    out.extend_from_slice(b"null");
                } else {
                    write_f64(out, v[i]);
                }
            }
            ScanColumn::Str(ids, dict) => match ids[i] {
                0 => out.extend_from_slice(b"null"),
                id => match dict.get(id as usize) {
                    Some(s) => write_str(out, s),
                    None => out.extend_from_slice(b"null"),
                },
            },
            ScanColumn::Json(v) => write_value(out, &v[i]),
        }
    }

    /// Rows `start..start + len`.
    pub fn slice(&self, start: usize, len: usize) -> ScanColumn {
        let r = start..start + len;
        match self {
            ScanColumn::Null => ScanColumn::Null,
            ScanColumn::Long(v, n) => {
                ScanColumn::Long(v[r.clone()].to_vec(), n.as_ref().map(|n| n[r].to_vec()))
            }
            ScanColumn::Double(v, n) => {
                ScanColumn::Double(v[r.clone()].to_vec(), n.as_ref().map(|n| n[r].to_vec()))
            }
            ScanColumn::Str(ids, d) => ScanColumn::Str(ids[r].to_vec(), d.clone()),
            ScanColumn::Json(v) => ScanColumn::Json(v[r].to_vec()),
        }
    }

    /// The rows at `idx`, in that order.
    pub fn gather(&self, idx: &[usize]) -> ScanColumn {
        match self {
            ScanColumn::Null => ScanColumn::Null,
            ScanColumn::Long(v, n) => ScanColumn::Long(
                idx.iter().map(|&i| v[i]).collect(),
                n.as_ref().map(|n| idx.iter().map(|&i| n[i]).collect()),
            ),
            ScanColumn::Double(v, n) => ScanColumn::Double(
                idx.iter().map(|&i| v[i]).collect(),
                n.as_ref().map(|n| idx.iter().map(|&i| n[i]).collect()),
            ),
            ScanColumn::Str(ids, d) => {
                ScanColumn::Str(idx.iter().map(|&i| ids[i]).collect(), d.clone())
            }
            ScanColumn::Json(v) => ScanColumn::Json(idx.iter().map(|&i| v[i].clone()).collect()),
        }
    }
}

#[inline]
fn is_null(nulls: &Option<Vec<bool>>, i: usize) -> bool {
    nulls.as_ref().is_some_and(|n| n[i])
}

/// A long as JSON text.
#[inline]
pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    // Writing into memory cannot fail.
    let _ = serde_json::to_writer(&mut *out, &v);
}

/// A double as JSON text (`null` when not finite, as JSON has no such numbers).
#[inline]
pub fn write_f64(out: &mut Vec<u8>, v: f64) {
    let _ = serde_json::to_writer(&mut *out, &v);
}

/// A string as a JSON string literal.
#[inline]
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Any JSON value.
#[inline]
pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    let _ = serde_json::to_writer(&mut *out, v);
}

/// The rows a scan read from one segment.
#[derive(Debug, Clone)]
pub struct ScanBatch {
    /// Segment id.
    pub segment_id: Arc<str>,
    /// Column names, in output order.
    pub columns: Arc<Vec<String>>,
    /// One column per name.
    pub data: Vec<ScanColumn>,
    /// Row times, kept when the scan is ordered by time.
    pub times: Option<Vec<i64>>,
    /// Number of rows.
    pub rows: usize,
}

impl ScanBatch {
    /// Row `i` as a JSON event (an object, or an array for `compactedList`).
    pub fn event(&self, i: usize, compacted: bool) -> Value {
        if compacted {
            Value::Array(self.data.iter().map(|c| c.json(i)).collect())
        } else {
            let mut m = Map::new();
            for (name, c) in self.columns.iter().zip(&self.data) {
                m.insert(name.clone(), c.json(i));
            }
            Value::Object(m)
        }
    }

    /// Rows `start..start + len` as a batch of their own.
    pub fn slice(&self, start: usize, len: usize) -> ScanBatch {
        ScanBatch {
            segment_id: self.segment_id.clone(),
            columns: self.columns.clone(),
            data: self.data.iter().map(|c| c.slice(start, len)).collect(),
            times: self.times.as_ref().map(|t| t[start..start + len].to_vec()),
            rows: len,
        }
    }

    /// The rows at `idx` as a batch of their own.
    pub fn gather(&self, idx: &[usize]) -> ScanBatch {
        ScanBatch {
            segment_id: self.segment_id.clone(),
            columns: self.columns.clone(),
            data: self.data.iter().map(|c| c.gather(idx)).collect(),
            times: self
                .times
                .as_ref()
                .map(|t| idx.iter().map(|&i| t[i]).collect()),
            rows: idx.len(),
        }
    }
}

/// A scan's result: batches of rows, in result order.
#[derive(Debug, Clone, Default)]
pub struct ScanOutput {
    /// The batches, each from one segment.
    pub batches: Vec<ScanBatch>,
    /// `compactedList`: events are arrays, not objects.
    pub compacted: bool,
}

impl ScanOutput {
    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.rows).sum()
    }

    /// Druid's scan response: `[{"segmentId", "columns", "events"}, …]`.
    pub fn into_json(self) -> Value {
        let compacted = self.compacted;
        Value::Array(
            self.batches
                .into_iter()
                .map(|b| {
                    let events: Vec<Value> = (0..b.rows).map(|i| b.event(i, compacted)).collect();
                    json!({"segmentId": &*b.segment_id, "columns": &*b.columns, "events": events})
                })
                .collect(),
        )
    }

    /// Write Druid's scan response as JSON text (the same text as serializing
    /// [`ScanOutput::into_json`]).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        for (bi, b) in self.batches.iter().enumerate() {
            if bi > 0 {
                out.push(b',');
            }
            // serde_json writes object keys in sorted order.
            out.extend_from_slice(b"{\"columns\":");
            write_value(out, &json!(&*b.columns));
            out.extend_from_slice(b",\"events\":[");
            // Object keys are escaped once, in the order serde_json's map writes them.
            let mut order: Vec<usize> = (0..b.columns.len()).collect();
            order.sort_by(|&x, &y| b.columns[x].cmp(&b.columns[y]));
            order.dedup_by(|x, y| b.columns[*x] == b.columns[*y]);
            let keys: Vec<Vec<u8>> = order
                .iter()
                .map(|&c| {
                    let mut k = Vec::new();
                    write_str(&mut k, &b.columns[c]);
                    k.push(b':');
                    k
                })
                .collect();
            // A repeated name keeps its last column, as a map insert does.
            let sources: Vec<usize> = order
                .iter()
                .map(|&c| {
                    (0..b.columns.len())
                        .rev()
                        .find(|&j| b.columns[j] == b.columns[c])
                        .unwrap_or(c)
                })
                .collect();
            for i in 0..b.rows {
                if i > 0 {
                    out.push(b',');
                }
                if self.compacted {
                    out.push(b'[');
                    for (ci, c) in b.data.iter().enumerate() {
                        if ci > 0 {
                            out.push(b',');
                        }
                        c.write_json(i, out);
                    }
                    out.push(b']');
                } else {
                    out.push(b'{');
                    for (k, (key, &src)) in keys.iter().zip(&sources).enumerate() {
                        if k > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(key);
                        b.data[src].write_json(i, out);
                    }
                    out.push(b'}');
                }
            }
            out.extend_from_slice(b"],\"segmentId\":");
            write_str(out, &b.segment_id);
            out.push(b'}');
        }
        out.push(b']');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(compacted: bool) -> ScanOutput {
        let dict = Arc::new(vec![String::new(), "a\"b".into(), "ü\n".into()]);
        let batch = |id: &str, columns: &[&str], rows: usize, data: Vec<ScanColumn>| ScanBatch {
            segment_id: Arc::from(id),
            columns: Arc::new(columns.iter().map(|c| (*c).to_string()).collect()),
            data,
            times: None,
            rows,
        };
        ScanOutput {
            batches: vec![
                batch(
                    "ds_2016-01-01T00:00:00.000Z_2016-01-01T01:00:00.000Z_v1",
                    &["__time", "zeta", "alpha", "gone", "m", "alpha"],
                    3,
                    vec![
                        ScanColumn::Long(vec![1, 2, 3], None),
                        ScanColumn::Str(vec![1, 0, 2], dict.clone()),
                        ScanColumn::Double(
                            vec![1.5, f64::NAN, -0.0],
                            Some(vec![false, false, true]),
                        ),
                        ScanColumn::Null,
                        ScanColumn::Json(vec![json!(["x"]), Value::Null, json!(7)]),
                        ScanColumn::Long(
                            vec![i64::MIN, 0, i64::MAX],
                            Some(vec![false, true, false]),
                        ),
                    ],
                ),
                batch(
                    "s\"2",
                    &["b"],
                    1,
                    vec![ScanColumn::Double(vec![1e300], None)],
                ),
            ],
            compacted,
        }
    }

    #[test]
    fn written_json_is_the_serialized_value() {
        for compacted in [false, true] {
            let out = output(compacted);
            let mut text = Vec::new();
            out.write_json(&mut text);
            let expected = serde_json::to_vec(&out.clone().into_json()).unwrap_or_default();
            assert_eq!(
                String::from_utf8_lossy(&text),
                String::from_utf8_lossy(&expected),
                "compacted: {compacted}"
            );
        }
    }

    #[test]
    fn slices_and_gathers_keep_rows() {
        let out = output(true);
        let b = &out.batches[0];
        let s = b.slice(1, 2);
        assert_eq!(s.rows, 2);
        assert_eq!(s.event(0, true), b.event(1, true));
        assert_eq!(s.event(1, true), b.event(2, true));
        let g = b.gather(&[2, 0]);
        assert_eq!(g.event(0, false), b.event(2, false));
        assert_eq!(g.event(1, false), b.event(0, false));
    }
}
