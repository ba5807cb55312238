//! Runtime values of the relational layer: one [`Datum`] per cell, with SQL comparison,
//! coercion and rendering into Druid's SQL result JSON.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

use serde_json::Value;

use crate::query::scan_output::ScanColumn;

use crate::table::SqlType;
use crate::time::{Period, format_iso_millis, parse_iso_timestamp};

/// One SQL value.
#[derive(Debug, Clone)]
pub enum Datum {
    /// SQL NULL.
    Null,
    /// BOOLEAN.
    Bool(bool),
    /// BIGINT.
    Long(i64),
    /// DOUBLE.
    Double(f64),
    /// VARCHAR.
    Str(String),
    /// TIMESTAMP: epoch milliseconds, UTC.
    Ts(i64),
    /// An `INTERVAL` literal (only for timestamp arithmetic).
    Interval(Period),
}

impl PartialEq for Datum {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Datum::Null, Datum::Null) => true,
            (Datum::Bool(a), Datum::Bool(b)) => a == b,
            (Datum::Long(a), Datum::Long(b)) => a == b,
            (Datum::Double(a), Datum::Double(b)) => a.to_bits() == b.to_bits(),
            (Datum::Str(a), Datum::Str(b)) => a == b,
            (Datum::Ts(a), Datum::Ts(b)) => a == b,
            (Datum::Interval(a), Datum::Interval(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Datum {}

impl Hash for Datum {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Datum::Null => {}
            Datum::Bool(b) => b.hash(state),
            Datum::Long(v) | Datum::Ts(v) => v.hash(state),
            Datum::Double(v) => v.to_bits().hash(state),
            Datum::Str(s) => s.hash(state),
            Datum::Interval(p) => p.hash(state),
        }
    }
}

impl Datum {
    /// Whether this is SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Datum::Null)
    }

    /// Numeric view (longs, doubles, timestamps, booleans, numeric text).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Datum::Long(v) | Datum::Ts(v) => Some(*v as f64),
            Datum::Double(v) => Some(*v),
            Datum::Bool(b) => Some(*b as i64 as f64),
            Datum::Str(s) => s.trim().parse::<f64>().ok(),
            Datum::Null | Datum::Interval(_) => None,
        }
    }

    /// Integer view (doubles truncate; numeric text parses).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Datum::Long(v) | Datum::Ts(v) => Some(*v),
            Datum::Double(v) => v.is_finite().then_some(*v as i64),
            Datum::Bool(b) => Some(*b as i64),
            Datum::Str(s) => s
                .trim()
                .parse::<i64>()
                .ok()
                .or_else(|| s.trim().parse::<f64>().ok().map(|f| f as i64)),
            Datum::Null | Datum::Interval(_) => None,
        }
    }

    /// Timestamp view: timestamps, epoch-millisecond numbers and ISO text.
    pub fn as_ts(&self) -> Option<i64> {
        match self {
            Datum::Ts(v) | Datum::Long(v) => Some(*v),
            Datum::Double(v) => v.is_finite().then_some(*v as i64),
            Datum::Str(s) => parse_sql_timestamp(s),
            _ => None,
        }
    }

    /// Text view (numbers and timestamps rendered as Druid renders them).
    pub fn as_string(&self) -> Option<String> {
        match self {
            Datum::Null => None,
            Datum::Bool(b) => Some(b.to_string()),
            Datum::Long(v) => Some(v.to_string()),
            Datum::Double(v) => Some(format_double(*v)),
            Datum::Str(s) => Some(s.clone()),
            Datum::Ts(t) => Some(format_sql_timestamp(*t)),
            Datum::Interval(p) => Some(format!("{p:?}")),
        }
    }

    /// Truth value for WHERE/HAVING/CASE: `None` is unknown.
    pub fn truth(&self) -> Option<bool> {
        match self {
            Datum::Null => None,
            Datum::Bool(b) => Some(*b),
            Datum::Long(v) => Some(*v != 0),
            Datum::Double(v) => Some(*v != 0.0),
            Datum::Str(s) => match s.to_ascii_lowercase().as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => s.trim().parse::<f64>().ok().map(|f| f != 0.0),
            },
            Datum::Ts(_) | Datum::Interval(_) => Some(true),
        }
    }

    /// Convert to `ty` (CAST semantics; unconvertible text becomes NULL as in Druid).
    pub fn cast(&self, ty: SqlType) -> Datum {
        if self.is_null() {
            return Datum::Null;
        }
        match ty {
            SqlType::Bigint => match self {
                Datum::Double(v) => {
                    if v.is_finite() {
                        Datum::Long(v.trunc() as i64)
                    } else {
                        Datum::Null
                    }
                }
                other => other.as_i64().map(Datum::Long).unwrap_or(Datum::Null),
            },
            SqlType::Double => self.as_f64().map(Datum::Double).unwrap_or(Datum::Null),
            SqlType::Varchar | SqlType::Other => {
                self.as_string().map(Datum::Str).unwrap_or(Datum::Null)
            }
            SqlType::Timestamp => self.as_ts().map(Datum::Ts).unwrap_or(Datum::Null),
            SqlType::Boolean => self.truth().map(Datum::Bool).unwrap_or(Datum::Null),
        }
    }

    /// Render as Druid's SQL API does (TIMESTAMP as ISO text, NULL as `null`).
    pub fn to_json(&self, ty: SqlType) -> Value {
        match self.cast(ty) {
            Datum::Null => Value::Null,
            Datum::Bool(b) => Value::Bool(b),
            Datum::Long(v) => Value::from(v),
            Datum::Double(v) => serde_json::Number::from_f64(v)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Datum::Str(s) => Value::String(s),
            Datum::Ts(t) => Value::String(format_iso_millis(t)),
            Datum::Interval(p) => Value::String(format!("{p:?}")),
        }
    }

    /// As JSON for a column of type `ty`, moving a string instead of copying it.
    pub fn into_json(self, ty: SqlType) -> Value {
        match (self, ty) {
            (Datum::Str(s), SqlType::Varchar | SqlType::Other) => Value::String(s),
            (Datum::Long(v), SqlType::Bigint) => Value::from(v),
            (d, ty) => d.to_json(ty),
        }
    }

    /// Row `i` of a scan column, for a column of type `ty`: the same datum as
    /// [`Datum::from_json`] of the cell's JSON value.
    pub fn from_scan(col: &ScanColumn, i: usize, ty: SqlType) -> Datum {
        let keep = matches!(ty, SqlType::Varchar | SqlType::Other);
        let d = match col {
            ScanColumn::Null => return Datum::Null,
            ScanColumn::Long(..) => match col.long(i) {
                Some(v) => Datum::Long(v),
                None => return Datum::Null,
            },
            ScanColumn::Double(..) => match col.double(i) {
                // JSON has no NaN or infinities: such a cell is null.
                Some(v) if v.is_finite() => Datum::Double(v),
                _ => return Datum::Null,
            },
            ScanColumn::Str(..) => match col.str(i) {
                Some(s) => Datum::Str(s.to_owned()),
                None => return Datum::Null,
            },
            ScanColumn::Json(v) => return Datum::from_json(&v[i], ty),
        };
        if keep { d } else { d.cast(ty) }
    }

    /// [`Datum::from_json`] for an owned cell: a string is moved, not copied.
    pub fn from_json_owned(v: Value, ty: SqlType) -> Datum {
        match (v, ty) {
            (Value::String(s), SqlType::Varchar | SqlType::Other) => Datum::Str(s),
            (v, ty) => Datum::from_json(&v, ty),
        }
    }

    /// Read a JSON cell of a column of type `ty` (as native results and tables carry them).
    pub fn from_json(v: &Value, ty: SqlType) -> Datum {
        match v {
            Value::Null => Datum::Null,
            Value::Bool(b) => Datum::Bool(*b).cast(ty),
            Value::Number(n) => {
                let d = match n.as_i64() {
                    Some(i) => Datum::Long(i),
                    None => Datum::Double(n.as_f64().unwrap_or(f64::NAN)),
                };
                if matches!(ty, SqlType::Varchar | SqlType::Other) {
                    d
                } else {
                    d.cast(ty)
                }
            }
            Value::String(s) => match ty {
                SqlType::Varchar | SqlType::Other => Datum::Str(s.clone()),
                other => Datum::Str(s.clone()).cast(other),
            },
            other => Datum::Str(other.to_string()),
        }
    }
}

/// SQL comparison; `None` when either side is NULL (or they cannot be compared).
pub fn compare(a: &Datum, b: &Datum) -> Option<Ordering> {
    use Datum::*;
    match (a, b) {
        (Null, _) | (_, Null) => None,
        (Str(x), Str(y)) => Some(x.cmp(y)),
        (Ts(x), Ts(y)) => Some(x.cmp(y)),
        (Ts(x), Str(s)) => parse_sql_timestamp(s).map(|y| x.cmp(&y)),
        (Str(s), Ts(y)) => parse_sql_timestamp(s).map(|x| x.cmp(y)),
        (Long(x), Long(y)) => Some(x.cmp(y)),
        (Bool(x), Bool(y)) => Some(x.cmp(y)),
        (Str(s), other) | (other, Str(s)) => {
            let swapped = matches!(a, Str(_));
            match (s.trim().parse::<f64>(), other.as_f64()) {
                (Ok(x), Some(y)) => {
                    let o = x.partial_cmp(&y);
                    if swapped { o } else { o.map(Ordering::reverse) }
                }
                _ => {
                    let t = other.as_string()?;
                    if swapped {
                        Some(s.as_str().cmp(t.as_str()))
                    } else {
                        Some(t.as_str().cmp(s.as_str()))
                    }
                }
            }
        }
        (x, y) => x.as_f64()?.partial_cmp(&y.as_f64()?),
    }
}

/// Total order for sorting: NULLs compare as the largest value (Calcite's default), and values
/// that cannot be compared order by type.
pub fn sort_compare(a: &Datum, b: &Datum) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => compare(a, b).unwrap_or(Ordering::Equal),
    }
}

/// Parse a SQL timestamp text: ISO-8601 with `T` or a space, optional fraction and zone; a bare
/// date is midnight UTC.
pub fn parse_sql_timestamp(s: &str) -> Option<i64> {
    let t = s.trim();
    if let Ok(v) = parse_iso_timestamp(t) {
        return Some(v);
    }
    let replaced = t.replacen(' ', "T", 1);
    if let Ok(v) = parse_iso_timestamp(&replaced) {
        return Some(v);
    }
    None
}

/// Format a timestamp as in `TIMESTAMP` literals and VARCHAR casts: `2000-01-01 00:00:00`
/// (with `.sss` when there are milliseconds).
pub fn format_sql_timestamp(t: i64) -> String {
    let iso = format_iso_millis(t);
    let body = iso.trim_end_matches('Z').replacen('T', " ", 1);
    body.strip_suffix(".000")
        .map(str::to_string)
        .unwrap_or(body)
}

/// Druid renders doubles in Java style: integral values keep a `.0`.
pub fn format_double(v: f64) -> String {
    if v.is_finite() && v == v.trunc() && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}
