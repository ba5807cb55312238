//! Input rows: turning JSON objects and Arrow record batches into the values a segment writer
//! (or, later, the realtime index) takes.
//!
//! A row is presented as its timestamp plus one [`InputValue`] per *input field* of the schema:
//! first one per dimension (in declared order), then one per metric (in declared order; `count`
//! gets [`InputValue::Null`]). Conversion to the column's type happens in the writer, so JSON and
//! Arrow share one set of rules and one set of error messages.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, GenericStringArray, PrimitiveArray, RecordBatch, StringViewArray,
};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, TimeUnit};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::schema::{DataSchema, json_type};
use crate::time::TimestampFormat;

mod json_scan;

/// One input value before conversion to a column type.
#[derive(Clone, Debug, PartialEq)]
pub enum InputValue<'a> {
    /// Missing or null.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Long(i64),
    /// A floating-point number.
    Double(f64),
    /// A string.
    Str(Cow<'a, str>),
    /// A list (multi-value dimensions, several values for a sketch).
    List(Vec<InputValue<'a>>),
}

impl<'a> InputValue<'a> {
    /// Convert a JSON value; objects and nested lists are errors naming the field.
    pub fn from_json(v: &'a Value, field: &str) -> Result<InputValue<'a>> {
        Ok(match v {
            Value::Null => InputValue::Null,
            Value::Bool(b) => InputValue::Bool(*b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    InputValue::Long(i)
                } else if let Some(f) = n.as_f64() {
                    InputValue::Double(f)
                } else {
                    return Err(Error::invalid(format!(
                        "field `{field}`: number {n} is out of range"
                    )));
                }
            }
            Value::String(s) => InputValue::Str(Cow::Borrowed(s)),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::Array(_) | Value::Object(_) => {
                            return Err(Error::invalid(format!(
                                "field `{field}`: lists may hold only strings, numbers, booleans or null, found {}",
                                json_type(item)
                            )));
                        }
                        other => out.push(InputValue::from_json(other, field)?),
                    }
                }
                InputValue::List(out)
            }
            Value::Object(_) => {
                return Err(Error::invalid(format!(
                    "field `{field}`: expected a scalar or a list, found an object"
                )));
            }
        })
    }

    /// A short description for error messages.
    pub fn describe(&self) -> String {
        match self {
            InputValue::Null => "null".into(),
            InputValue::Bool(b) => b.to_string(),
            InputValue::Long(i) => i.to_string(),
            InputValue::Double(f) => f.to_string(),
            InputValue::Str(s) => {
                let s: String = s.chars().take(64).collect();
                format!("{s:?}")
            }
            InputValue::List(l) => format!("a list of {} values", l.len()),
        }
    }
}

/// The input field names of a schema, in the order rows present them.
pub fn input_fields(schema: &DataSchema) -> Vec<Option<&str>> {
    schema
        .dimensions
        .iter()
        .map(|d| Some(d.name.as_str()))
        .chain(schema.metrics.iter().map(|m| m.field_name.as_deref()))
        .collect()
}

/// Read one JSON object row: its timestamp and its input values (into `out`, cleared first).
pub fn json_row<'a>(
    schema: &DataSchema,
    row: &'a Map<String, Value>,
    out: &mut Vec<InputValue<'a>>,
) -> Result<i64> {
    out.clear();
    let ts = &schema.timestamp_spec;
    let time = match row.get(&ts.column) {
        None | Some(Value::Null) => ts.missing_value.ok_or_else(|| {
            Error::invalid(format!(
                "timestamp field `{}` is missing or null",
                ts.column
            ))
        })?,
        Some(v) => ts
            .format
            .parse_json(v)
            .map_err(|e| Error::invalid(format!("timestamp field `{}`: {e}", ts.column)))?,
    };
    for field in input_fields(schema) {
        let v = match field.and_then(|f| row.get(f).map(|v| (f, v))) {
            None => InputValue::Null,
            Some((f, v)) => InputValue::from_json(v, f)?,
        };
        out.push(v);
    }
    Ok(time)
}

/// Rows of an Arrow record batch, with its columns matched to the schema's fields by name.
///
/// Fields absent from the batch read as null. Supported column types: integers, floats,
/// booleans, UTF-8 (plain, large, view), dictionary-encoded strings, timestamps (for the time
/// column) and lists of those (multi-value dimensions).
#[derive(Debug)]
pub struct ArrowRows<'s> {
    schema: &'s DataSchema,
    time: ArrayRef,
    fields: Vec<Option<ArrayRef>>,
    num_rows: usize,
}

impl<'s> ArrowRows<'s> {
    /// Match `batch`'s columns to `schema`.
    pub fn new(schema: &'s DataSchema, batch: &RecordBatch) -> Result<ArrowRows<'s>> {
        let ts = &schema.timestamp_spec;
        let time = batch.column_by_name(&ts.column).cloned();
        let time = match time {
            Some(t) => t,
            None if ts.missing_value.is_some() => {
                arrow_array::new_null_array(&DataType::Int64, batch.num_rows())
            }
            None => {
                return Err(Error::invalid(format!(
                    "timestamp column `{}` is not in the input (columns: {})",
                    ts.column,
                    batch
                        .schema()
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        };
        check_supported(time.data_type(), &ts.column, true)?;
        let mut fields = Vec::new();
        for f in input_fields(schema) {
            let col = f.and_then(|f| batch.column_by_name(f).cloned());
            if let (Some(c), Some(name)) = (&col, f) {
                check_supported(c.data_type(), name, false)?;
            }
            fields.push(col);
        }
        Ok(ArrowRows {
            schema,
            time,
            fields,
            num_rows: batch.num_rows(),
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.num_rows
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.num_rows == 0
    }

    /// Read row `i`: its timestamp and input values (into `out`, cleared first).
    pub fn row<'b>(&'b self, i: usize, out: &mut Vec<InputValue<'b>>) -> Result<i64> {
        out.clear();
        let ts = &self.schema.timestamp_spec;
        let time = if self.time.is_null(i) {
            ts.missing_value.ok_or_else(|| {
                Error::invalid(format!("timestamp column `{}` is null", ts.column))
            })?
        } else {
            arrow_time(&self.time, i, self.schema)?
        };
        for col in &self.fields {
            out.push(match col {
                None => InputValue::Null,
                Some(c) => arrow_value(c, i),
            });
        }
        Ok(time)
    }
}

/// The columnar side of [`ArrowRows`], for the writer's fast path: whole columns as typed
/// slices instead of one [`InputValue`] per cell. Every value read here is the value
/// [`ArrowRows::row`] reads for the same cell.
impl<'s> ArrowRows<'s> {
    /// The timestamps of all rows in milliseconds, and the rows (ascending) whose timestamp
    /// cannot be read: their slot in the slice is meaningless, and they must go through
    /// [`ArrowRows::row`], which says why.
    pub(crate) fn times(&self) -> (Cow<'_, [i64]>, Vec<usize>) {
        let ts = &self.schema.timestamp_spec;
        let identity_numbers = matches!(
            ts.format,
            TimestampFormat::Auto | TimestampFormat::Iso | TimestampFormat::Millis
        );
        if self.time.null_count() == 0 {
            match self.time.data_type() {
                DataType::Timestamp(TimeUnit::Millisecond, _) => {
                    let a = self.time.as_primitive::<TimestampMillisecondType>();
                    return (Cow::Borrowed(a.values().as_ref()), Vec::new());
                }
                DataType::Int64 if identity_numbers => {
                    let a = self.time.as_primitive::<Int64Type>();
                    return (Cow::Borrowed(a.values().as_ref()), Vec::new());
                }
                _ => {}
            }
        }
        let mut bad = Vec::new();
        let times = (0..self.num_rows)
            .map(|i| {
                let t = if self.time.is_null(i) {
                    ts.missing_value
                } else {
                    arrow_time(&self.time, i, self.schema).ok()
                };
                t.unwrap_or_else(|| {
                    bad.push(i);
                    0
                })
            })
            .collect();
        (Cow::Owned(times), bad)
    }

    /// Input field `field` (an index into [`input_fields`]) as a whole column.
    pub(crate) fn field_view(&self, field: usize) -> ColumnView<'_> {
        match self.fields.get(field) {
            Some(Some(a)) => ColumnView::of(a),
            _ => ColumnView::Null,
        }
    }

    /// Append the input values of row `i` to `out`, read from `views` (every input field's
    /// [`ArrowRows::field_view`], in order): the values [`ArrowRows::row`] reads, without
    /// looking at each cell's Arrow type.
    pub(crate) fn append_values<'b>(
        &'b self,
        views: &[ColumnView<'b>],
        i: usize,
        out: &mut Vec<InputValue<'b>>,
    ) {
        let valid = |nulls: &Option<&NullBuffer>| nulls.is_none_or(|n| n.is_valid(i));
        for (f, view) in views.iter().enumerate() {
            out.push(match view {
                ColumnView::Null => InputValue::Null,
                ColumnView::Long { values, nulls } if valid(nulls) => InputValue::Long(values[i]),
                ColumnView::Double { values, nulls } if valid(nulls) => {
                    InputValue::Double(values[i])
                }
                ColumnView::Long { .. } | ColumnView::Double { .. } => InputValue::Null,
                ColumnView::Str(v) => v
                    .get(i)
                    .map_or(InputValue::Null, |s| InputValue::Str(Cow::Borrowed(s))),
                ColumnView::Rows => match self.fields.get(f) {
                    Some(Some(a)) => arrow_value(a, i),
                    _ => InputValue::Null,
                },
            });
        }
    }
}

/// In a dictionary-encoded [`StrView`], the key of a row that reads as null (its key is null or
/// out of range).
pub(crate) const NULL_KEY: u32 = u32::MAX;

/// A string column seen whole.
#[derive(Debug)]
pub(crate) enum StrView<'a> {
    Utf8(&'a GenericStringArray<i32>),
    LargeUtf8(&'a GenericStringArray<i64>),
    Utf8View(&'a StringViewArray),
    /// Dictionary-encoded: row `i` reads `values` at `keys[i]`, or null if that is [`NULL_KEY`].
    Dict {
        keys: Vec<u32>,
        values: Box<StrView<'a>>,
    },
}

impl<'a> StrView<'a> {
    /// Row `i`, `None` if null.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            StrView::Utf8(a) => (!a.is_null(i)).then(|| a.value(i)),
            StrView::LargeUtf8(a) => (!a.is_null(i)).then(|| a.value(i)),
            StrView::Utf8View(a) => (!a.is_null(i)).then(|| a.value(i)),
            StrView::Dict { keys, values } => match keys[i] {
                NULL_KEY => None,
                k => values.get(k as usize),
            },
        }
    }

    /// Number of rows (of the dictionary's values, for a dictionary).
    pub(crate) fn len(&self) -> usize {
        match self {
            StrView::Utf8(a) => a.len(),
            StrView::LargeUtf8(a) => a.len(),
            StrView::Utf8View(a) => a.len(),
            StrView::Dict { keys, .. } => keys.len(),
        }
    }
}

/// One input column seen whole, converted the way [`ArrowRows::row`] converts its cells:
/// integers, timestamps and dates as `i64` (timestamps and dates in milliseconds), floats as
/// `f64`, strings as a [`StrView`]. Values under a null slot are unspecified.
#[derive(Debug)]
pub(crate) enum ColumnView<'a> {
    /// Absent from the batch, or of Arrow type `Null`: every row is null.
    Null,
    /// Values that read as [`InputValue::Long`].
    Long {
        values: Cow<'a, [i64]>,
        nulls: Option<&'a NullBuffer>,
    },
    /// Values that read as [`InputValue::Double`].
    Double {
        values: Cow<'a, [f64]>,
        nulls: Option<&'a NullBuffer>,
    },
    /// Values that read as [`InputValue::Str`].
    Str(StrView<'a>),
    /// Anything else (booleans, lists, 64-bit unsigned integers): read row by row.
    Rows,
}

impl<'a> ColumnView<'a> {
    fn of(a: &'a ArrayRef) -> ColumnView<'a> {
        fn long<'a, T: arrow_array::ArrowPrimitiveType>(
            a: &'a ArrayRef,
            f: impl Fn(T::Native) -> i64,
        ) -> ColumnView<'a> {
            let p: &PrimitiveArray<T> = a.as_primitive::<T>();
            ColumnView::Long {
                values: Cow::Owned(p.values().iter().map(|&v| f(v)).collect()),
                nulls: p.nulls(),
            }
        }
        match a.data_type() {
            DataType::Null => ColumnView::Null,
            DataType::Int64 => {
                let p = a.as_primitive::<Int64Type>();
                ColumnView::Long {
                    values: Cow::Borrowed(p.values().as_ref()),
                    nulls: p.nulls(),
                }
            }
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                let p = a.as_primitive::<TimestampMillisecondType>();
                ColumnView::Long {
                    values: Cow::Borrowed(p.values().as_ref()),
                    nulls: p.nulls(),
                }
            }
            DataType::Date64 => {
                let p = a.as_primitive::<arrow_array::types::Date64Type>();
                ColumnView::Long {
                    values: Cow::Borrowed(p.values().as_ref()),
                    nulls: p.nulls(),
                }
            }
            DataType::Int8 => long::<Int8Type>(a, i64::from),
            DataType::Int16 => long::<Int16Type>(a, i64::from),
            DataType::Int32 => long::<Int32Type>(a, i64::from),
            DataType::UInt8 => long::<UInt8Type>(a, i64::from),
            DataType::UInt16 => long::<UInt16Type>(a, i64::from),
            DataType::UInt32 => long::<UInt32Type>(a, i64::from),
            DataType::Timestamp(TimeUnit::Second, _) => {
                long::<TimestampSecondType>(a, |v| v.saturating_mul(1000))
            }
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                long::<TimestampMicrosecondType>(a, |v| v.div_euclid(1000))
            }
            DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                long::<TimestampNanosecondType>(a, |v| v.div_euclid(1_000_000))
            }
            DataType::Date32 => {
                long::<arrow_array::types::Date32Type>(a, |v| i64::from(v) * 86_400_000)
            }
            DataType::Float64 => {
                let p = a.as_primitive::<Float64Type>();
                ColumnView::Double {
                    values: Cow::Borrowed(p.values().as_ref()),
                    nulls: p.nulls(),
                }
            }
            DataType::Float32 => {
                let p = a.as_primitive::<Float32Type>();
                ColumnView::Double {
                    values: Cow::Owned(p.values().iter().map(|&v| f64::from(v)).collect()),
                    nulls: p.nulls(),
                }
            }
            DataType::Utf8 => ColumnView::Str(StrView::Utf8(a.as_string::<i32>())),
            DataType::LargeUtf8 => ColumnView::Str(StrView::LargeUtf8(a.as_string::<i64>())),
            DataType::Utf8View => ColumnView::Str(StrView::Utf8View(a.as_string_view())),
            DataType::Dictionary(k, _) => {
                let view = match k.as_ref() {
                    DataType::Int8 => dictionary_view::<Int8Type>(a),
                    DataType::Int16 => dictionary_view::<Int16Type>(a),
                    DataType::Int32 => dictionary_view::<Int32Type>(a),
                    DataType::Int64 => dictionary_view::<Int64Type>(a),
                    DataType::UInt8 => dictionary_view::<UInt8Type>(a),
                    DataType::UInt16 => dictionary_view::<UInt16Type>(a),
                    DataType::UInt32 => dictionary_view::<UInt32Type>(a),
                    DataType::UInt64 => dictionary_view::<UInt64Type>(a),
                    _ => None,
                };
                view.map_or(ColumnView::Rows, ColumnView::Str)
            }
            _ => ColumnView::Rows,
        }
    }
}

fn dictionary_view<K: arrow_array::types::ArrowDictionaryKeyType>(
    a: &ArrayRef,
) -> Option<StrView<'_>> {
    use arrow_buffer::ArrowNativeType;
    let d = a.as_dictionary::<K>();
    let values = match ColumnView::of(d.values()) {
        ColumnView::Str(v @ (StrView::Utf8(_) | StrView::LargeUtf8(_) | StrView::Utf8View(_))) => v,
        _ => return None,
    };
    let n_values = values.len();
    if n_values >= NULL_KEY as usize {
        return None;
    }
    let keys = d.keys();
    let keys = (0..keys.len())
        .map(|i| {
            if keys.is_null(i) {
                return NULL_KEY;
            }
            match keys.value(i).to_usize() {
                Some(k) if k < n_values => k as u32,
                _ => NULL_KEY,
            }
        })
        .collect();
    Some(StrView::Dict {
        keys,
        values: Box::new(values),
    })
}

fn check_supported(dt: &DataType, name: &str, time: bool) -> Result<()> {
    let ok = match dt {
        DataType::Null
        | DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float32
        | DataType::Float64
        | DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View => true,
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => true,
        DataType::Dictionary(_, v) => matches!(
            v.as_ref(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ),
        DataType::List(f) | DataType::LargeList(f) if !time => {
            check_supported(f.data_type(), name, false).is_ok()
                && !matches!(f.data_type(), DataType::List(_) | DataType::LargeList(_))
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "column `{name}` has Arrow type {dt}, which cannot be ingested"
        )))
    }
}

fn arrow_time(a: &ArrayRef, i: usize, schema: &DataSchema) -> Result<i64> {
    let ts = &schema.timestamp_spec;
    let err = |e: Error| Error::invalid(format!("timestamp column `{}`: {e}", ts.column));
    Ok(match a.data_type() {
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            a.as_primitive::<TimestampMillisecondType>().value(i)
        }
        DataType::Timestamp(TimeUnit::Second, _) => a
            .as_primitive::<TimestampSecondType>()
            .value(i)
            .checked_mul(1000)
            .ok_or_else(|| err(Error::invalid("timestamp out of range")))?,
        DataType::Timestamp(TimeUnit::Microsecond, _) => a
            .as_primitive::<TimestampMicrosecondType>()
            .value(i)
            .div_euclid(1000),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => a
            .as_primitive::<TimestampNanosecondType>()
            .value(i)
            .div_euclid(1_000_000),
        DataType::Date32 => {
            i64::from(a.as_primitive::<arrow_array::types::Date32Type>().value(i)) * 86_400_000
        }
        DataType::Date64 => a.as_primitive::<arrow_array::types::Date64Type>().value(i),
        _ => match arrow_value(a, i) {
            InputValue::Long(v) => ts.format.parse_i64(v).map_err(err)?,
            InputValue::Double(v) => ts.format.parse_json(&serde_json::json!(v)).map_err(err)?,
            InputValue::Str(s) => ts.format.parse_str(&s).map_err(err)?,
            other => {
                return Err(err(Error::invalid(format!(
                    "cannot read {} as a timestamp",
                    other.describe()
                ))));
            }
        },
    })
}

fn arrow_value(a: &ArrayRef, i: usize) -> InputValue<'_> {
    if a.is_null(i) {
        return InputValue::Null;
    }
    match a.data_type() {
        DataType::Boolean => InputValue::Bool(a.as_boolean().value(i)),
        DataType::Int8 => InputValue::Long(a.as_primitive::<Int8Type>().value(i).into()),
        DataType::Int16 => InputValue::Long(a.as_primitive::<Int16Type>().value(i).into()),
        DataType::Int32 => InputValue::Long(a.as_primitive::<Int32Type>().value(i).into()),
        DataType::Int64 => InputValue::Long(a.as_primitive::<Int64Type>().value(i)),
        DataType::UInt8 => InputValue::Long(a.as_primitive::<UInt8Type>().value(i).into()),
        DataType::UInt16 => InputValue::Long(a.as_primitive::<UInt16Type>().value(i).into()),
        DataType::UInt32 => InputValue::Long(a.as_primitive::<UInt32Type>().value(i).into()),
        DataType::UInt64 => {
            let v = a.as_primitive::<UInt64Type>().value(i);
            match i64::try_from(v) {
                Ok(v) => InputValue::Long(v),
                Err(_) => InputValue::Double(v as f64),
            }
        }
        DataType::Float32 => InputValue::Double(a.as_primitive::<Float32Type>().value(i).into()),
        DataType::Float64 => InputValue::Double(a.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 => InputValue::Str(Cow::Borrowed(a.as_string::<i32>().value(i))),
        DataType::LargeUtf8 => InputValue::Str(Cow::Borrowed(a.as_string::<i64>().value(i))),
        DataType::Utf8View => InputValue::Str(Cow::Borrowed(a.as_string_view().value(i))),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            InputValue::Long(a.as_primitive::<TimestampMillisecondType>().value(i))
        }
        DataType::Timestamp(TimeUnit::Second, _) => InputValue::Long(
            a.as_primitive::<TimestampSecondType>()
                .value(i)
                .saturating_mul(1000),
        ),
        DataType::Timestamp(TimeUnit::Microsecond, _) => InputValue::Long(
            a.as_primitive::<TimestampMicrosecondType>()
                .value(i)
                .div_euclid(1000),
        ),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => InputValue::Long(
            a.as_primitive::<TimestampNanosecondType>()
                .value(i)
                .div_euclid(1_000_000),
        ),
        DataType::Date32 => InputValue::Long(
            i64::from(a.as_primitive::<arrow_array::types::Date32Type>().value(i)) * 86_400_000,
        ),
        DataType::Date64 => {
            InputValue::Long(a.as_primitive::<arrow_array::types::Date64Type>().value(i))
        }
        DataType::Dictionary(k, _) => {
            macro_rules! dict {
                ($t:ty) => {{
                    let d = a.as_dictionary::<$t>();
                    match usize::try_from(d.keys().value(i)) {
                        Ok(key) if key < d.values().len() => arrow_value(d.values(), key),
                        _ => InputValue::Null,
                    }
                }};
            }
            match k.as_ref() {
                DataType::Int8 => dict!(Int8Type),
                DataType::Int16 => dict!(Int16Type),
                DataType::Int32 => dict!(Int32Type),
                DataType::Int64 => dict!(Int64Type),
                DataType::UInt8 => dict!(UInt8Type),
                DataType::UInt16 => dict!(UInt16Type),
                DataType::UInt32 => dict!(UInt32Type),
                DataType::UInt64 => dict!(UInt64Type),
                _ => InputValue::Null,
            }
        }
        DataType::List(_) => {
            let l = a.as_list::<i32>();
            let offsets = l.value_offsets();
            let (s, e) = (offsets[i] as usize, offsets[i + 1] as usize);
            InputValue::List((s..e).map(|j| arrow_value(l.values(), j)).collect())
        }
        DataType::LargeList(_) => {
            let l = a.as_list::<i64>();
            let offsets = l.value_offsets();
            let (s, e) = (offsets[i] as usize, offsets[i + 1] as usize);
            InputValue::List((s..e).map(|j| arrow_value(l.values(), j)).collect())
        }
        _ => InputValue::Null,
    }
}

/// Reads JSON object rows of one schema straight from their text into [`InputValue`]s in one
/// pass over the bytes (no serde visitor, no intermediate [`Value`] tree), with strings borrowed
/// from the text (only strings with escapes are copied).
///
/// It is the fast path of realtime pushes. It reads what [`json_row`] reads, value for value,
/// for the rows it accepts; any row it does not take — invalid JSON, not an object, a nested
/// object or list, a timestamp that does not read in one step — gets `None`, and the caller
/// reads it with [`json_row`] (through a [`Value`]), which gives the full reason. So the fast
/// path never decides whether a row is rejected, only how quickly a good row is read.
#[derive(Debug)]
pub struct JsonRowReader<'s> {
    schema: &'s DataSchema,
    /// The fields rows are read for: name, the input slots it feeds (a field may feed several
    /// metrics), and whether it is the timestamp column.
    fields: Vec<(&'s str, FieldSlots)>,
    /// Index into `fields` by name.
    by_name: HashMap<&'s str, usize, foldhash::fast::RandomState>,
    /// Per field: whether its name needs no escapes in JSON, so a key can be compared with it
    /// byte for byte before it is read as a string.
    plain: Vec<bool>,
    slots: usize,
    /// The field index of each key of the last row read, in key order ([`NOT_A_FIELD`] for keys
    /// no field reads): rows of one push mostly list their keys in the same order, so a key is
    /// first compared with the field at its position in the last row, and looked up by hash
    /// only if that differs.
    last_order: RefCell<Vec<u32>>,
}

/// In [`JsonRowReader`]'s key order, a key that no field reads.
const NOT_A_FIELD: u32 = u32::MAX;

#[derive(Debug, Default)]
struct FieldSlots {
    slots: Vec<usize>,
    is_time: bool,
}

impl<'s> JsonRowReader<'s> {
    /// A reader for rows of `schema`.
    pub fn new(schema: &'s DataSchema) -> JsonRowReader<'s> {
        let mut fields: Vec<(&'s str, FieldSlots)> = Vec::new();
        let mut by_name: HashMap<&'s str, usize, foldhash::fast::RandomState> = HashMap::default();
        let mut field = |name: &'s str| -> usize {
            *by_name.entry(name).or_insert_with(|| {
                fields.push((name, FieldSlots::default()));
                fields.len() - 1
            })
        };
        let inputs = input_fields(schema);
        let slots = inputs.len();
        let mut fed = Vec::new();
        for (slot, name) in inputs.into_iter().enumerate() {
            if let Some(name) = name {
                fed.push((field(name), slot));
            }
        }
        let time = field(schema.timestamp_spec.column.as_str());
        for (f, slot) in fed {
            fields[f].1.slots.push(slot);
        }
        fields[time].1.is_time = true;
        let plain = fields
            .iter()
            .map(|(name, _)| json_scan::plain_key(name))
            .collect();
        JsonRowReader {
            schema,
            fields,
            by_name,
            plain,
            slots,
            last_order: RefCell::new(Vec::new()),
        }
    }

    /// Read one row: its timestamp, and its input values appended to `out` (one per input
    /// field of the schema). `None` means the fast path does not take this row; read it with
    /// [`json_row`] instead (`out` then holds unspecified values past its old length: truncate
    /// it).
    pub fn read<'a>(&self, text: &'a str, out: &mut Vec<InputValue<'a>>) -> Option<i64> {
        let start = out.len();
        out.resize(start + self.slots, InputValue::Null);
        let time = self.scan(text, &mut out[start..])?;
        let ts = &self.schema.timestamp_spec;
        match time {
            None | Some(InputValue::Null) => ts.missing_value,
            Some(InputValue::Long(v)) => ts.format.parse_i64(v).ok(),
            Some(InputValue::Str(s)) => ts.format.parse_str(&s).ok(),
            // Fractional numbers, booleans, lists: the general reader says what they mean.
            Some(_) => None,
        }
    }

    /// Scan one object row into `out` (one slot per input field); returns the timestamp
    /// field's value (`Some(None)` if the row has none), `None` if the fast path does not take
    /// the row. A key given twice keeps its last value, as in a [`Map`].
    fn scan<'a>(
        &self,
        text: &'a str,
        out: &mut [InputValue<'a>],
    ) -> Option<Option<InputValue<'a>>> {
        let mut sc = json_scan::Scanner::new(text);
        let mut time = None;
        let mut order = self.last_order.borrow_mut();
        sc.skip_ws();
        if !sc.eat(b'{') {
            return None;
        }
        sc.skip_ws();
        if !sc.eat(b'}') {
            let mut position = 0;
            loop {
                sc.skip_ws();
                // The field at this key's position in the last row, matched byte for byte.
                let guess = order
                    .get(position)
                    .and_then(|&f| self.fields.get(f as usize).map(|(name, _)| (f, name)))
                    .filter(|(f, name)| self.plain[*f as usize] && sc.eat_plain_key(name));
                let field = match guess {
                    Some((f, _)) => Some(f as usize),
                    None => {
                        if sc.peek() != Some(b'"') {
                            return None;
                        }
                        let key = sc.string()?;
                        self.field_of(&mut order, position, &key)
                    }
                };
                position += 1;
                sc.skip_ws();
                if !sc.eat(b':') {
                    return None;
                }
                sc.skip_ws();
                match field.map(|f| &self.fields[f].1) {
                    None => sc.skip_value(0)?,
                    Some(field) => {
                        let v = sc.field_value()?;
                        if field.is_time {
                            time = Some(v.clone());
                        }
                        if let Some((&last, rest)) = field.slots.split_last() {
                            for &slot in rest {
                                out[slot] = v.clone();
                            }
                            out[last] = v;
                        }
                    }
                }
                sc.skip_ws();
                if sc.eat(b'}') {
                    break;
                }
                if !sc.eat(b',') {
                    return None;
                }
            }
        }
        sc.skip_ws();
        sc.at_end().then_some(time)
    }

    /// The field the `position`-th key of a row names, if any.
    #[inline]
    fn field_of(&self, order: &mut Vec<u32>, position: usize, key: &str) -> Option<usize> {
        if let Some(&f) = order.get(position)
            && f != NOT_A_FIELD
            && self.fields[f as usize].0 == key
        {
            return Some(f as usize);
        }
        let f = self.by_name.get(key).copied();
        let code = f.map_or(NOT_A_FIELD, |f| f as u32);
        match order.get_mut(position) {
            Some(o) => *o = code,
            None => order.push(code),
        }
        f
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn schema(format: &str, missing: Option<i64>) -> DataSchema {
        let mut ts = serde_json::json!({"column": "ts", "format": format});
        if let Some(m) = missing {
            ts["missingValue"] = serde_json::json!(m);
        }
        let spec = serde_json::json!({
            "dataSource": "t",
            "timestampSpec": ts,
            "dimensionsSpec": {"dimensions": ["host", "tags", {"type": "long", "name": "n"}]},
            "metricsSpec": [
                {"type": "count", "name": "count"},
                {"type": "doubleSum", "name": "v_sum", "fieldName": "v"},
                {"type": "doubleMax", "name": "v_max", "fieldName": "v"}
            ],
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none", "rollup": false}
        });
        DataSchema::from_json(&spec.to_string()).unwrap()
    }

    /// The general reader's answer for `text`, as owned values (None: it rejects the row).
    fn general(schema: &DataSchema, text: &str) -> Option<(i64, Vec<InputValue<'static>>)> {
        let v: Value = serde_json::from_str(text).ok()?;
        let Value::Object(map) = &v else { return None };
        let mut out = Vec::new();
        let t = json_row(schema, map, &mut out).ok()?;
        Some((t, out.iter().map(owned).collect()))
    }

    fn owned(v: &InputValue<'_>) -> InputValue<'static> {
        match v {
            InputValue::Str(s) => InputValue::Str(Cow::Owned(s.to_string())),
            InputValue::List(l) => InputValue::List(l.iter().map(owned).collect()),
            InputValue::Null => InputValue::Null,
            InputValue::Bool(b) => InputValue::Bool(*b),
            InputValue::Long(i) => InputValue::Long(*i),
            InputValue::Double(f) => InputValue::Double(*f),
        }
    }

    fn fast(schema: &DataSchema, text: &str) -> Option<(i64, Vec<InputValue<'static>>)> {
        let mut out = Vec::new();
        let t = JsonRowReader::new(schema).read(text, &mut out)?;
        Some((t, out.iter().map(owned).collect()))
    }

    #[test]
    fn reads_what_the_general_reader_reads() {
        let s = schema("auto", None);
        let rows = [
            r#"{"ts": 1000, "host": "h1", "tags": ["a", "b"], "n": 5, "v": 1.5}"#,
            r#"{"ts": "2024-01-01T00:00:00Z", "host": "h\u00e9\"q\\", "v": "2.5", "n": "7"}"#,
            r#"{"ts": "1700000000000", "host": "日本語", "extra": {"deep": [1, [2]]}, "v": null}"#,
            r#"  {"host": "late", "ts": 5, "ts": 6, "v": 18446744073709551615}  "#,
            r#"{"ts": 7, "tags": [], "n": -0, "v": -1e308, "host": true}"#,
            r#"{"ts": 8, "\u0068ost": "escaped key", "tags": [null, 1, 2.5, "x"]}"#,
        ];
        for text in rows {
            let g = general(&s, text);
            assert!(g.is_some(), "{text}");
            assert_eq!(fast(&s, text), g, "{text}");
        }
        // Strings without escapes are borrowed from the text.
        let text = r#"{"ts": 1, "host": "plain", "tags": ["x"]}"#;
        let mut out = Vec::new();
        JsonRowReader::new(&s).read(text, &mut out).unwrap();
        assert!(matches!(&out[0], InputValue::Str(Cow::Borrowed("plain"))));
        assert!(
            matches!(&out[1], InputValue::List(l) if matches!(&l[0], InputValue::Str(Cow::Borrowed("x"))))
        );
    }

    #[test]
    fn one_reader_reads_rows_whose_keys_change_order() {
        // The reader guesses each key's field from the last row's key order; a wrong guess
        // (keys reordered, added, dropped, unknown) must not change what is read.
        let s = schema("auto", None);
        let reader = JsonRowReader::new(&s);
        let rows = [
            r#"{"ts": 1, "host": "a", "tags": ["x"], "n": 1, "v": 1.5}"#,
            r#"{"ts": 2, "host": "b", "tags": ["y"], "n": 2, "v": 2.5}"#,
            r#"{"v": 3.5, "n": 3, "tags": [], "host": "c", "ts": 3}"#,
            r#"{"ts": 4, "extra": 1, "host": "d", "v": 4.5}"#,
            r#"{"host": "e", "ts": 5}"#,
            r#"{"ts": 6, "host": "f", "tags": ["z"], "n": 6, "v": 6.5, "more": "m"}"#,
            r#"{"ts": 7, "host": "g", "host": "h", "n": 7}"#,
        ];
        let mut out = Vec::new();
        for text in rows {
            out.clear();
            let t = reader.read(text, &mut out);
            let fast = t.map(|t| (t, out.iter().map(owned).collect::<Vec<_>>()));
            assert_eq!(fast, general(&s, text), "{text}");
        }
        // Values are appended after what `out` holds.
        let mut out = vec![InputValue::Long(42)];
        assert_eq!(reader.read(rows[0], &mut out), Some(1));
        assert_eq!(out.len(), 1 + 6);
        assert_eq!(out[0], InputValue::Long(42));
    }

    #[test]
    fn leaves_unusual_and_bad_rows_to_the_general_reader() {
        let s = schema("auto", None);
        for text in [
            r#"{"ts": 1, "host": {"a": 1}}"#, // object value: general reader names it
            r#"{"ts": 1, "tags": [["nested"]]}"#, // nested list
            r#"{"ts": 1.5, "host": "h"}"#,    // fractional timestamp
            r#"{"ts": "yesterday"}"#,         // unparseable timestamp
            r#"{"host": "h"}"#,               // missing timestamp, no missingValue
            r#"{"ts": 1, "host": "h""#,       // truncated
            r#"{"ts": 1} {"ts": 2}"#,         // trailing data
            r#"[1, 2]"#,                      // not an object
            r#"{"ts": 1, "host": "\ud800"}"#, // lone surrogate
            "",
        ] {
            assert_eq!(fast(&s, text), None, "{text}");
        }
        // A missing timestamp takes missingValue, like the general reader.
        let s = schema("millis", Some(42));
        let text = r#"{"host": "h", "v": 1}"#;
        assert_eq!(fast(&s, text), general(&s, text));
        assert_eq!(fast(&s, text).map(|r| r.0), Some(42));
        // Numeric formats read number strings.
        let s = schema("posix", None);
        let text = r#"{"ts": "1700000000", "host": "h"}"#;
        assert_eq!(fast(&s, text).map(|r| r.0), Some(1_700_000_000_000));
        assert_eq!(fast(&s, text), general(&s, text));
    }

    /// Random row texts for the differential test: objects whose keys are the schema's fields
    /// and others, with values of every JSON kind (escapes, odd numbers, nesting), written with
    /// varied whitespace, and some of them damaged afterwards.
    mod row_texts {
        use proptest::prelude::*;

        fn scalar() -> impl Strategy<Value = String> {
            prop_oneof![
                3 => Just("null".to_string()),
                3 => Just("true".to_string()),
                3 => Just("false".to_string()),
                3 => any::<i64>().prop_map(|v| v.to_string()),
                3 => (0u64..1000).prop_map(|v| v.to_string()),
                3 => any::<u64>().prop_map(|v| v.to_string()),
                3 => any::<f64>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(|f| f.to_string()),
                3 => prop::sample::select(vec![
                    "-0", "0.0", "-0.0", "1e3", "1E-2", "2.5e+10", "9223372036854775807",
                    "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
                    "123456789012345678", "1234567890123456789", "18446744073709551616", "1.5",
                    "-7", "-0e0", "0e-0",
                ])
                .prop_map(str::to_string),
                3 => "[a-z0-9 _.:-]{0,8}".prop_map(|s| format!("\"{s}\"")),
                3 => prop::sample::select(vec![
                    r#""h\u00e9""#, r#""\"q\\""#, r#""\ud83d\ude00""#, r#""日本語""#,
                    r#""a\/b\n""#, r#""2024-01-01T00:00:00Z""#, r#""1700000000000""#,
                    r#""yesterday""#,
                ])
                .prop_map(str::to_string),
                // Not JSON (rarely, so that most rows are good).
                1 => prop::sample::select(vec![
                    "01", "1.", ".5", "-", "+1", "1e400", "-1e400", "1e", "0x1", "NaN", "tru",
                    r#""\ud800""#, r#""\x""#, "\"tab\tin\"", "\"unterminated", "'q'",
                ])
                .prop_map(str::to_string),
            ]
        }

        fn value() -> impl Strategy<Value = String> {
            scalar().prop_recursive(3, 16, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4)
                        .prop_map(|items| format!("[{}]", items.join(","))),
                    prop::collection::vec((key(), inner), 0..3).prop_map(|kv| {
                        let kv: Vec<String> =
                            kv.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                        format!("{{{}}}", kv.join(","))
                    }),
                ]
            })
        }

        fn key() -> impl Strategy<Value = String> {
            prop::sample::select(vec![
                r#""ts""#,
                r#""host""#,
                r#""tags""#,
                r#""n""#,
                r#""v""#,
                r#""extra""#,
                r#""\u0068ost""#,
                r#""t\u0073""#,
                r#""""#,
                r#""v ""#,
            ])
            .prop_map(str::to_string)
        }

        fn ws() -> impl Strategy<Value = String> {
            prop_oneof![
                300 => prop::sample::select(vec!["", "", "", " ", "\t", "\r\n", "  "]),
                1 => prop::sample::select(vec!["\u{a0}", "\u{b}", "\u{c}"]),
            ]
            .prop_map(str::to_string)
        }

        /// One row text.
        pub(super) fn row() -> impl Strategy<Value = String> {
            let field_value = prop_oneof![
                6 => scalar(),
                2 => prop::collection::vec(scalar(), 0..4)
                    .prop_map(|items| format!("[{}]", items.join(","))),
                1 => value(),
            ];
            let field = (ws(), key(), ws(), ws(), field_value, ws());
            // Mostly a usable timestamp first, so that most rows are good ones.
            let time = prop::option::weighted(
                0.85,
                prop::sample::select(vec![
                    "1700000000000",
                    "0",
                    "-5",
                    r#""2016-01-01T00:00:00Z""#,
                ]),
            );
            let object = (ws(), time, prop::collection::vec(field, 0..7), ws()).prop_map(
                |(lead, time, fields, trail)| {
                    let fields: Vec<String> = time
                        .map(|t| format!(r#""ts":{t}"#))
                        .into_iter()
                        .chain(
                            fields
                                .into_iter()
                                .map(|(a, k, b, c, v, d)| format!("{a}{k}{b}:{c}{v}{d}")),
                        )
                        .collect();
                    format!("{lead}{{{}}}{trail}", fields.join(","))
                },
            );
            let edit = prop_oneof![
                3 => Just(None),
                1 => (any::<prop::sample::Index>(), 0u8..4, any::<char>()).prop_map(Some),
            ];
            (object, edit, prop::bool::weighted(0.05)).prop_map(|(text, edit, bare)| {
                let mut text = if bare {
                    text.replace(['{', '}'], "")
                } else {
                    text
                };
                if let Some((at, how, c)) = edit {
                    let bounds: Vec<usize> = text
                        .char_indices()
                        .map(|(i, _)| i)
                        .chain([text.len()])
                        .collect();
                    let i = bounds[at.index(bounds.len())];
                    match how {
                        0 => text.truncate(i),
                        1 => text.insert(i, c),
                        2 => text.insert(i, *at.get(&[',', ':', '"', '\\', '[', '}'])),
                        _ => {
                            if i < text.len() {
                                text.remove(i);
                            }
                        }
                    }
                }
                text
            })
        }
    }

    /// The general reader's answer for `text` as a push sees it: the row, or the reject.
    fn general_or_reject(
        schema: &DataSchema,
        text: &str,
    ) -> std::result::Result<(i64, Vec<InputValue<'static>>), String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let Value::Object(map) = &v else {
            return Err("not an object".into());
        };
        let mut out = Vec::new();
        let t = json_row(schema, map, &mut out).map_err(|e| e.to_string())?;
        Ok((t, out.iter().map(owned).collect()))
    }

    /// Equality that tells doubles by their bits (so -0.0 and 0.0 differ, NaN equals NaN).
    fn same(a: &[InputValue<'_>], b: &[InputValue<'_>]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| match (x, y) {
                (InputValue::Double(x), InputValue::Double(y)) => x.to_bits() == y.to_bits(),
                (InputValue::List(x), InputValue::List(y)) => same(x, y),
                _ => x == y,
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]

        /// Whatever row the fast reader takes, it reads exactly as the general reader (through
        /// a serde_json `Value`) does; any row it leaves is one the general reader must judge,
        /// and it never panics. Rows the general reader accepts in the usual forms are taken.
        #[test]
        fn fast_reader_agrees_with_the_general_reader(text in row_texts::row(), format in 0..3usize) {
            let s = schema(["auto", "millis", "iso"][format], None);
            let reader = JsonRowReader::new(&s);
            let mut out = vec![InputValue::Long(-1)];
            let fast = reader.read(&text, &mut out);
            let general = general_or_reject(&s, &text);
            if let Some(t) = fast {
                let (gt, gv) = general.as_ref().map_err(|e| {
                    proptest::test_runner::TestCaseError::fail(format!(
                        "fast reader took {text:?}, general reader rejects it: {e}"
                    ))
                })?;
                proptest::prop_assert_eq!(t, *gt, "{:?}", text);
                proptest::prop_assert_eq!(&out[0], &InputValue::Long(-1));
                proptest::prop_assert!(same(&out[1..], gv), "{:?}: {:?} vs {:?}", text, &out[1..], gv);
            }
            // The same reader reads the next row correctly whatever the last one did to its
            // key-order guess.
            let good = r#"{"ts": 5, "host": "h", "tags": ["a"], "n": 1, "v": 2}"#;
            out.clear();
            proptest::prop_assert_eq!(reader.read(good, &mut out), Some(5));
            let (_, gv) = general_or_reject(&s, good).unwrap();
            proptest::prop_assert!(same(&out, &gv));
        }
    }

    #[test]
    fn fast_reader_takes_tsbs_rows_and_odd_numbers() {
        let s = schema("auto", None);
        for text in [
            r#"{"ts":1700000000000,"host":"host_1","tags":["a","b"],"n":-12,"v":3}"#,
            r#"{"ts":"2016-01-01T00:00:00Z","host":"h","n":0,"v":1.25e2,"extra":{"a":[1,{"b":null}]}}"#,
            r#"{"ts":1,"n":-0,"v":-0.0}"#,
            r#"{"ts":1,"n":9223372036854775807,"v":18446744073709551616}"#,
            r#"{"ts":1,"n":-9223372036854775808,"v":123456789012345678}"#,
            r#"{"ts":1,"host":"a\"b\\c\u00e9\n"}"#,
        ] {
            let f = fast(&s, text);
            assert!(f.is_some(), "{text}");
            let g = general(&s, text).unwrap();
            let f = f.unwrap();
            assert_eq!(f.0, g.0, "{text}");
            assert!(same(&f.1, &g.1), "{text}: {:?} vs {:?}", f.1, g.1);
        }
        let (_, v) = fast(&s, r#"{"ts":1,"n":-0}"#).unwrap();
        assert!(matches!(v[2], InputValue::Double(f) if f == 0.0 && f.is_sign_negative()));
    }
}

/// Arrow batches for the tests of the column-wise push path (realtime, WAL record, writer).
#[cfg(test)]
pub(crate) mod test_batches {
    use std::sync::Arc;

    use arrow_array::types::Int8Type;
    use arrow_array::{
        ArrayRef, DictionaryArray, Float64Array, Int32Array, Int64Array, LargeStringArray,
        RecordBatch, StringArray, StringViewArray,
    };
    use arrow_schema::{Field, Schema};

    use crate::schema::DataSchema;

    /// 2026-01-01T00:00:00Z.
    pub(crate) const T0: i64 = 1_767_225_600_000;
    pub(crate) const HOUR: i64 = 3_600_000;

    /// String, long and double dimensions; count, sum, max, first and last metrics.
    pub(crate) fn schema(rollup: bool) -> DataSchema {
        DataSchema::from_json(
            &serde_json::json!({
                "dataSource": "t",
                "timestampSpec": {"column": "ts", "format": "millis"},
                "dimensionsSpec": {"dimensions": [
                    "host", "region", "city", "tag",
                    {"type": "long", "name": "core"},
                    {"type": "double", "name": "load"}
                ]},
                "metricsSpec": [
                    {"type": "count", "name": "count"},
                    {"type": "longSum", "name": "n", "fieldName": "n"},
                    {"type": "doubleSum", "name": "x", "fieldName": "x"},
                    {"type": "doubleMax", "name": "xmax", "fieldName": "x"},
                    {"type": "longLast", "name": "nlast", "fieldName": "n"},
                    {"type": "doubleFirst", "name": "xfirst", "fieldName": "x"},
                    {"type": "doubleSum", "name": "ni", "fieldName": "n"}
                ],
                "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "minute",
                                    "rollup": rollup}
            })
            .to_string(),
        )
        .unwrap_or_else(|e| panic!("test schema: {e}"))
    }

    /// `n` rows over hours `0..hours` from [`T0`] of every string encoding (plain, large,
    /// view, dictionary with null keys), with nulls in every column but the time, unicode
    /// and long (multi-byte length) strings, -0.0 and integers of another width.
    pub(crate) fn batch(n: usize, hours: i64, seed: u64) -> RecordBatch {
        let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let mut next = move |m: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % m
        };
        let long_text = "ü".repeat(90);
        let cities = [
            "Zürich",
            "東京",
            "São Paulo",
            "",
            long_text.as_str(),
            "Łódź 🚀",
        ];
        let mut ts = Vec::new();
        let (mut host, mut region, mut city, mut tag) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut core, mut load, mut nn, mut x) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..n {
            ts.push(T0 + next(hours as u64 * HOUR as u64) as i64);
            host.push((next(8) != 0).then(|| format!("host-{}", next(30))));
            region.push(match next(5) {
                0 => None,
                k => Some(k as i8 - 1),
            });
            city.push(
                (next(6) != 0).then(|| cities[next(cities.len() as u64) as usize].to_string()),
            );
            tag.push((next(3) != 0).then(|| format!("t{}", next(4))));
            core.push((next(7) != 0).then(|| next(16) as i64 - 4));
            load.push(match next(9) {
                0 => None,
                1 => Some(-0.0),
                k => Some(k as f64 * 0.25 - 1.0),
            });
            nn.push((next(6) != 0).then(|| next(1000) as i32 - 100));
            x.push((next(6) != 0).then(|| next(500) as f64 - 50.0));
        }
        let regions = StringArray::from(vec!["eu-west", "us-east", "ap-south", "ünï"]);
        let region = DictionaryArray::<Int8Type>::try_new(region.into(), Arc::new(regions))
            .unwrap_or_else(|e| panic!("dictionary: {e}"));
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("ts", Arc::new(Int64Array::from(ts))),
            ("host", Arc::new(StringArray::from(host))),
            ("region", Arc::new(region)),
            ("city", Arc::new(LargeStringArray::from(city))),
            ("tag", Arc::new(StringViewArray::from(tag))),
            ("core", Arc::new(Int64Array::from(core))),
            ("load", Arc::new(Float64Array::from(load))),
            ("n", Arc::new(Int32Array::from(nn))),
            ("x", Arc::new(Float64Array::from(x))),
        ];
        let fields: Vec<Field> = columns
            .iter()
            .map(|(name, a)| Field::new(*name, a.data_type().clone(), *name != "ts"))
            .collect();
        RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns.into_iter().map(|(_, a)| a).collect(),
        )
        .unwrap_or_else(|e| panic!("test batch: {e}"))
    }
}
