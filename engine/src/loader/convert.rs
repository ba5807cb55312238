//! Typed conversion of input values, done once while reading so that bad rows are rejected with
//! their file and line, and the batches handed to the segment writer never fail conversion.
//!
//! The rules are the segment writer's (see [`crate::segment::SegmentWriter::push`]): a long
//! field takes integers, booleans (0/1), floats (truncated) and numeric text; a double field
//! takes numbers and numeric text but not NaN; strings take scalars (numbers rendered as the
//! writer renders them) and lists. A batch normalized here converts to the same values in the
//! writer, so a load gives the rows a single [`crate::segment::SegmentWriter`] would.

use std::borrow::Cow;
use std::sync::Arc;

use arrow_array::builder::{ArrayBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, ListArray, RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::input::InputValue;
use crate::schema::{DataSchema, DimensionType, MetricKind, TimestampSpec};

/// The value type an input field is converted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldKind {
    /// Strings (single or multi-value); also sketch inputs.
    Str,
    /// 64-bit integers.
    Long,
    /// 64-bit floats.
    Double,
}

/// One distinct input field the schema reads, with the type it is converted to.
#[derive(Clone, Debug)]
pub(crate) struct FieldTarget {
    pub name: String,
    pub kind: FieldKind,
}

/// What the loader reads from every row: the time and each distinct input field.
#[derive(Clone, Debug)]
pub(crate) struct FieldPlan {
    pub timestamp: TimestampSpec,
    pub fields: Vec<FieldTarget>,
    /// The timestamp column is also an input field: batches keep the field's column (the
    /// writer re-reads the time from it) instead of a separate millisecond column.
    pub time_is_field: bool,
}

impl FieldPlan {
    pub fn new(schema: &DataSchema) -> FieldPlan {
        let mut fields: Vec<FieldTarget> = Vec::new();
        let mut add = |name: &str, kind: FieldKind| match fields.iter_mut().find(|f| f.name == name)
        {
            // One field read as two types: keep strings, which the writer converts per column.
            Some(f) if f.kind != kind => f.kind = FieldKind::Str,
            Some(_) => {}
            None => fields.push(FieldTarget {
                name: name.to_string(),
                kind,
            }),
        };
        for d in &schema.dimensions {
            add(
                &d.name,
                match d.kind {
                    DimensionType::String => FieldKind::Str,
                    DimensionType::Long => FieldKind::Long,
                    DimensionType::Double => FieldKind::Double,
                },
            );
        }
        for m in &schema.metrics {
            let Some(f) = &m.field_name else { continue };
            let kind = match m.kind {
                MetricKind::HllSketch => FieldKind::Str,
                k if k.is_long() => FieldKind::Long,
                _ => FieldKind::Double,
            };
            add(f, kind);
        }
        let time_is_field = fields
            .iter()
            .any(|f| f.name == schema.timestamp_spec.column);
        FieldPlan {
            timestamp: schema.timestamp_spec.clone(),
            fields,
            time_is_field,
        }
    }

    /// The Arrow field of the normalized millisecond time column.
    pub fn time_field(&self) -> Field {
        Field::new(
            &self.timestamp.column,
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        )
    }
}

/// Druid-style rendering of a double as a string dimension value (as the writer does).
pub(crate) fn format_double(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.1}")
    } else {
        f.to_string()
    }
}

/// A rejected value: the reason's category (for counting) and the full message.
pub(crate) type Bad = (String, String);

fn bad_value(field: &str, v: &InputValue<'_>, what: &str) -> Bad {
    (
        format!("field `{field}`: not a {what}"),
        format!("field `{field}`: cannot read {} as a {what}", v.describe()),
    )
}

/// The writer's long conversion.
pub(crate) fn to_long(v: &InputValue<'_>, field: &str) -> Result<Option<i64>, Bad> {
    Ok(match v {
        InputValue::Null => None,
        InputValue::Long(i) => Some(*i),
        InputValue::Double(f) => {
            if f.is_finite() && f.abs() < 9.2e18 {
                Some(f.trunc() as i64)
            } else {
                return Err(bad_value(field, v, "long"));
            }
        }
        InputValue::Bool(b) => Some(i64::from(*b)),
        InputValue::Str(s) => parse_long_text(s, field)?,
        InputValue::List(l) if l.len() == 1 => to_long(&l[0], field)?,
        InputValue::List(l) if l.is_empty() => None,
        InputValue::List(_) => return Err(bad_value(field, v, "long")),
    })
}

/// The writer's long conversion of text (blank is null).
pub(crate) fn parse_long_text(s: &str, field: &str) -> Result<Option<i64>, Bad> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if let Ok(i) = t.parse::<i64>() {
        return Ok(Some(i));
    }
    match t.parse::<f64>() {
        Ok(f) if f.is_finite() && f.abs() < 9.2e18 => Ok(Some(f.trunc() as i64)),
        _ => Err(bad_value(field, &InputValue::Str(Cow::Borrowed(s)), "long")),
    }
}

/// The writer's double conversion.
pub(crate) fn to_double(v: &InputValue<'_>, field: &str) -> Result<Option<f64>, Bad> {
    let f = match v {
        InputValue::Null => return Ok(None),
        InputValue::Long(i) => *i as f64,
        InputValue::Double(f) => *f,
        InputValue::Bool(b) => f64::from(u8::from(*b)),
        InputValue::Str(s) => return parse_double_text(s, field),
        InputValue::List(l) if l.len() == 1 => return to_double(&l[0], field),
        InputValue::List(l) if l.is_empty() => return Ok(None),
        InputValue::List(_) => return Err(bad_value(field, v, "double")),
    };
    check_double(f, field)
}

fn check_double(f: f64, field: &str) -> Result<Option<f64>, Bad> {
    if f.is_nan() {
        return Err((
            format!("field `{field}`: NaN"),
            format!("field `{field}`: NaN is not a value"),
        ));
    }
    Ok(Some(if f == 0.0 { 0.0 } else { f }))
}

/// The writer's double conversion of text (blank is null).
pub(crate) fn parse_double_text(s: &str, field: &str) -> Result<Option<f64>, Bad> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    match t.parse::<f64>() {
        Ok(f) => check_double(f, field),
        Err(_) => Err(bad_value(
            field,
            &InputValue::Str(Cow::Borrowed(s)),
            "double",
        )),
    }
}

/// The writer's string conversion of a scalar (`None` for null).
pub(crate) fn scalar_string<'a>(v: &InputValue<'a>) -> Option<Cow<'a, str>> {
    match v {
        InputValue::Null | InputValue::List(_) => None,
        InputValue::Str(s) => Some(s.clone()),
        InputValue::Long(i) => Some(Cow::Owned(i.to_string())),
        InputValue::Double(f) => Some(Cow::Owned(format_double(*f))),
        InputValue::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
    }
}

/// Read one Arrow cell as the writer would (see [`crate::input::ArrowRows`]).
pub(crate) fn cell(a: &dyn Array, i: usize) -> InputValue<'_> {
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
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => match arrow_millis(a, i) {
            Some(ms) => InputValue::Long(ms),
            None => InputValue::Null,
        },
        DataType::Dictionary(k, _) => {
            macro_rules! dict {
                ($t:ty) => {{
                    let d = a.as_dictionary::<$t>();
                    match usize::try_from(d.keys().value(i)) {
                        Ok(key) if key < d.values().len() => cell(d.values().as_ref(), key),
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
            let o = l.value_offsets();
            let (s, e) = (o[i] as usize, o[i + 1] as usize);
            InputValue::List((s..e).map(|j| cell(l.values().as_ref(), j)).collect())
        }
        DataType::LargeList(_) => {
            let l = a.as_list::<i64>();
            let o = l.value_offsets();
            let (s, e) = (o[i] as usize, o[i + 1] as usize);
            InputValue::List((s..e).map(|j| cell(l.values().as_ref(), j)).collect())
        }
        _ => InputValue::Null,
    }
}

/// Milliseconds of a timestamp or date cell (`None` on overflow).
fn arrow_millis(a: &dyn Array, i: usize) -> Option<i64> {
    Some(match a.data_type() {
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            a.as_primitive::<TimestampMillisecondType>().value(i)
        }
        DataType::Timestamp(TimeUnit::Second, _) => a
            .as_primitive::<TimestampSecondType>()
            .value(i)
            .checked_mul(1000)?,
        DataType::Timestamp(TimeUnit::Microsecond, _) => a
            .as_primitive::<TimestampMicrosecondType>()
            .value(i)
            .div_euclid(1000),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => a
            .as_primitive::<TimestampNanosecondType>()
            .value(i)
            .div_euclid(1_000_000),
        DataType::Date32 => i64::from(a.as_primitive::<Date32Type>().value(i)) * 86_400_000,
        DataType::Date64 => a.as_primitive::<Date64Type>().value(i),
        _ => return None,
    })
}

fn time_bad(column: &str, why: String) -> Bad {
    (
        format!("timestamp `{column}`: unparseable"),
        format!("timestamp field `{column}`: {why}"),
    )
}

/// The missing-timestamp rule: `missingValue` or a rejection.
pub(crate) fn missing_time(ts: &TimestampSpec) -> Result<i64, Bad> {
    ts.missing_value.ok_or_else(|| {
        (
            format!("timestamp `{}`: missing", ts.column),
            format!("timestamp field `{}` is missing or null", ts.column),
        )
    })
}

/// The event time of an input value per the timestamp spec.
pub(crate) fn value_time(ts: &TimestampSpec, v: &InputValue<'_>) -> Result<i64, Bad> {
    let r = match v {
        InputValue::Null => return missing_time(ts),
        InputValue::Long(i) => ts.format.parse_i64(*i),
        InputValue::Double(f) => ts.format.parse_json(&serde_json::json!(f)),
        InputValue::Str(s) => ts.format.parse_str(s),
        other => {
            return Err(time_bad(
                &ts.column,
                format!("cannot read {} as a timestamp", other.describe()),
            ));
        }
    };
    r.map_err(|e| time_bad(&ts.column, strip_prefix(e.to_string())))
}

fn strip_prefix(s: String) -> String {
    s.strip_prefix("invalid argument: ")
        .map(str::to_string)
        .unwrap_or(s)
}

/// Event times of an Arrow time column (as the writer reads them); bad rows get a reason.
pub(crate) fn arrow_times(
    ts: &TimestampSpec,
    a: &dyn Array,
    out: &mut Vec<i64>,
    bad: &mut Vec<(usize, Bad)>,
) {
    out.clear();
    let n = a.len();
    match a.data_type() {
        DataType::Timestamp(TimeUnit::Millisecond, _) if a.null_count() == 0 => {
            out.extend_from_slice(a.as_primitive::<TimestampMillisecondType>().values());
            return;
        }
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => {
            for i in 0..n {
                let t = if a.is_null(i) {
                    missing_time(ts)
                } else {
                    arrow_millis(a, i)
                        .ok_or_else(|| time_bad(&ts.column, "timestamp out of range".to_string()))
                };
                push_time(out, bad, i, t);
            }
            return;
        }
        _ => {}
    }
    for i in 0..n {
        let t = value_time(ts, &cell(a, i));
        push_time(out, bad, i, t);
    }
}

fn push_time(out: &mut Vec<i64>, bad: &mut Vec<(usize, Bad)>, i: usize, t: Result<i64, Bad>) {
    match t {
        Ok(t) => out.push(t),
        Err(b) => {
            out.push(0);
            bad.push((i, b));
        }
    }
}

/// Accumulates one typed output column row by row.
#[derive(Debug)]
pub(crate) enum ColumnBuilder {
    Long(Int64Builder),
    Double(Float64Builder),
    Str(StrBuilder),
}

impl ColumnBuilder {
    pub fn new(kind: FieldKind) -> ColumnBuilder {
        match kind {
            FieldKind::Long => ColumnBuilder::Long(Int64Builder::new()),
            FieldKind::Double => ColumnBuilder::Double(Float64Builder::new()),
            FieldKind::Str => ColumnBuilder::Str(StrBuilder::default()),
        }
    }

    /// Convert and stage one value; on error nothing is staged.
    pub fn convert(&self, v: &InputValue<'_>, field: &str) -> Result<Staged, Bad> {
        Ok(match self {
            ColumnBuilder::Long(_) => Staged::Long(to_long(v, field)?),
            ColumnBuilder::Double(_) => Staged::Double(to_double(v, field)?),
            ColumnBuilder::Str(_) => match v {
                InputValue::List(items) => {
                    let mut out = Vec::with_capacity(items.len());
                    for it in items {
                        if matches!(it, InputValue::List(_)) {
                            return Err((
                                format!("field `{field}`: nested list"),
                                format!("field `{field}`: nested lists are not allowed"),
                            ));
                        }
                        if let Some(s) = scalar_string(it) {
                            out.push(s.into_owned());
                        }
                    }
                    Staged::List(out)
                }
                other => Staged::Str(scalar_string(other).map(Cow::into_owned)),
            },
        })
    }

    pub fn append(&mut self, v: Staged) {
        match (self, v) {
            (ColumnBuilder::Long(b), Staged::Long(v)) => b.append_option(v),
            (ColumnBuilder::Double(b), Staged::Double(v)) => b.append_option(v),
            (ColumnBuilder::Str(b), Staged::Str(v)) => b.push(v.as_deref()),
            (ColumnBuilder::Str(b), Staged::List(v)) => b.push_list(&v),
            (ColumnBuilder::Long(b), _) => b.append_null(),
            (ColumnBuilder::Double(b), _) => b.append_null(),
            (ColumnBuilder::Str(b), _) => b.push(None),
        }
    }

    pub fn append_null(&mut self) {
        match self {
            ColumnBuilder::Long(b) => b.append_null(),
            ColumnBuilder::Double(b) => b.append_null(),
            ColumnBuilder::Str(b) => b.push(None),
        }
    }

    pub fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Long(b) => Arc::new(b.finish()),
            ColumnBuilder::Double(b) => Arc::new(b.finish()),
            ColumnBuilder::Str(b) => b.finish(),
        }
    }
}

/// A converted value waiting to be appended.
#[derive(Debug)]
pub(crate) enum Staged {
    Long(Option<i64>),
    Double(Option<f64>),
    Str(Option<String>),
    List(Vec<String>),
}

/// Strings, single-valued unless some row is a list (then the column is `List<Utf8>`).
#[derive(Debug, Default)]
pub(crate) struct StrBuilder {
    values: StringBuilder,
    /// Number of values before each row, plus one final entry once finished.
    row_starts: Vec<i32>,
    row_valid: Vec<bool>,
    any_list: bool,
    any_null: bool,
}

impl StrBuilder {
    pub fn push(&mut self, v: Option<&str>) {
        self.row_starts.push(self.values.len() as i32);
        self.row_valid.push(v.is_some());
        match v {
            Some(s) => self.values.append_value(s),
            None => self.any_null = true,
        }
    }

    pub fn push_list(&mut self, v: &[String]) {
        self.row_starts.push(self.values.len() as i32);
        self.row_valid.push(true);
        self.any_list = true;
        for s in v {
            self.values.append_value(s);
        }
    }

    pub fn finish(&mut self) -> ArrayRef {
        let values = self.values.finish();
        let mut starts = std::mem::take(&mut self.row_starts);
        let valid = std::mem::take(&mut self.row_valid);
        let (any_list, any_null) = (self.any_list, self.any_null);
        self.any_list = false;
        self.any_null = false;
        if !any_list {
            if !any_null {
                return Arc::new(values);
            }
            let mut it = values.iter();
            let col: StringArray = valid
                .iter()
                .map(|&v| if v { it.next().flatten() } else { None })
                .collect();
            return Arc::new(col);
        }
        starts.push(values.len() as i32);
        let field = Arc::new(Field::new_list_field(DataType::Utf8, true));
        let offsets = OffsetBuffer::new(starts.into());
        let nulls = any_null.then(|| NullBuffer::from(valid));
        Arc::new(ListArray::new(field, offsets, Arc::new(values), nulls))
    }
}

/// Build a normalized batch: the time column (unless the time is a field) then the fields.
pub(crate) fn normalized_batch(
    plan: &FieldPlan,
    times: Vec<i64>,
    columns: Vec<(String, ArrayRef)>,
) -> crate::Result<RecordBatch> {
    let mut fields = Vec::with_capacity(columns.len() + 1);
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len() + 1);
    if !plan.time_is_field {
        fields.push(plan.time_field());
        arrays.push(Arc::new(TimestampMillisecondArray::from(times)));
    }
    for (name, a) in columns {
        fields.push(Field::new(name, a.data_type().clone(), true));
        arrays.push(a);
    }
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    RecordBatch::try_new(schema, arrays)
        .map_err(|e| crate::Error::internal(format!("building a normalized batch: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn conversions_follow_the_writer() {
        assert_eq!(to_long(&InputValue::Double(2.9), "x").unwrap(), Some(2));
        assert_eq!(parse_long_text(" 12 ", "x").unwrap(), Some(12));
        assert_eq!(parse_long_text("1e3", "x").unwrap(), Some(1000));
        assert_eq!(parse_long_text("", "x").unwrap(), None);
        let e = parse_long_text("abc", "x").unwrap_err();
        assert_eq!(e.0, "field `x`: not a long");
        assert!(e.1.contains("\"abc\""), "{}", e.1);
        assert!(parse_double_text("NaN", "y").is_err());
        assert_eq!(parse_double_text("-0.0", "y").unwrap(), Some(0.0));
        assert_eq!(scalar_string(&InputValue::Double(3.0)).unwrap(), "3.0");
        assert_eq!(scalar_string(&InputValue::Long(3)).unwrap(), "3");
    }

    #[test]
    fn strings_become_lists_only_when_needed() {
        let mut b = StrBuilder::default();
        b.push(Some("a"));
        b.push(None);
        let a = b.finish();
        assert_eq!(a.data_type(), &DataType::Utf8);
        assert_eq!(a.null_count(), 1);
        b.push(Some("a"));
        b.push_list(&["b".into(), "c".into()]);
        b.push(None);
        let a = b.finish();
        assert!(matches!(a.data_type(), DataType::List(_)));
        assert_eq!(
            cell(a.as_ref(), 1),
            InputValue::List(vec![
                InputValue::Str("b".into()),
                InputValue::Str("c".into())
            ])
        );
        assert_eq!(cell(a.as_ref(), 2), InputValue::Null);
    }
}
