//! Differential test of the segment writer's column-wise Arrow path.
//!
//! Random schemas and random batches of many Arrow types (plain, large, view and
//! dictionary-encoded strings, integers of every width, floats, timestamps of every unit, lists,
//! booleans, all-null and absent columns), with nulls, values that do not convert (NaN, ±inf,
//! 1e19 into a long, non-numeric strings) and timestamps that are null, unreadable or outside the
//! interval, go into three writers:
//!
//! - `SegmentWriter::add_batch` (the column-wise path, falling back to the row path per row);
//! - the reference: every row through `ArrowRows::row` and `SegmentWriter::push`;
//! - the same rows as JSON objects through `SegmentWriter::push_json`.
//!
//! All three must accept and reject the same rows (the first two with the same reasons), and
//! produce segments that read back the same (`to_record_batches`); the first two byte for byte.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    ArrowPrimitiveType, Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    TimestampSecondType, UInt8Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, BooleanArray, DictionaryArray, Float64Array, Int64Array, LargeStringArray,
    NullArray, PrimitiveArray, RecordBatch, StringArray, StringViewArray,
    TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
    TimestampSecondArray,
};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field, Schema};
use basalt_engine::input::{ArrowRows, InputValue, input_fields};
use basalt_engine::schema::DataSchema;
use basalt_engine::segment::{BatchReport, Segment, SegmentWriter, verify_segment};
use basalt_engine::time::Interval;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

const DAY: i64 = 86_400_000;
const T0: i64 = 1_700_000_000_000 / DAY * DAY;

/// What an input column holds, before choosing its Arrow type.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Domain {
    Str,
    /// Strings or lists of strings.
    Multi,
    Long,
    Double,
}

/// A generated schema and its input batches.
struct Case {
    schema_json: Value,
    batches: Vec<RecordBatch>,
}

fn gen_schema(rng: &mut StdRng) -> (Value, Vec<(String, Domain)>) {
    let mut dims: Vec<(Value, String, Domain)> = Vec::new();
    for i in 0..rng.random_range(0..4) {
        let multi = rng.random_bool(0.3);
        let handling = ["SORTED_ARRAY", "SORTED_SET", "ARRAY"][rng.random_range(0..3)];
        let name = format!("s{i}");
        dims.push((
            json!({"type": "string", "name": name, "multiValueHandling": handling,
                   "createBitmapIndex": rng.random_bool(0.8)}),
            name,
            if multi { Domain::Multi } else { Domain::Str },
        ));
    }
    for i in 0..rng.random_range(0..3) {
        let name = format!("l{i}");
        dims.push((json!({"type": "long", "name": name}), name, Domain::Long));
    }
    for i in 0..rng.random_range(0..3) {
        let name = format!("d{i}");
        dims.push((
            json!({"type": "double", "name": name}),
            name,
            Domain::Double,
        ));
    }
    for i in (1..dims.len()).rev() {
        let j = rng.random_range(0..=i);
        dims.swap(i, j);
    }
    let mut dim_json: Vec<Value> = dims.iter().map(|d| d.0.clone()).collect();
    let force_time = rng.random_bool(0.5);
    if !force_time {
        let pos = rng.random_range(0..=dim_json.len());
        dim_json.insert(pos, json!({"type": "long", "name": "__time"}));
    }
    let mut metrics = Vec::new();
    for (i, k) in [
        "count",
        "longSum",
        "doubleSum",
        "longMin",
        "doubleMax",
        "longFirst",
        "longLast",
        "doubleFirst",
        "doubleLast",
        "HLLSketchBuild",
    ]
    .iter()
    .enumerate()
    {
        if !rng.random_bool(0.4) {
            continue;
        }
        let name = format!("m{i}");
        metrics.push(match *k {
            "count" => json!({"type": k, "name": name}),
            "HLLSketchBuild" => {
                let field = if rng.random_bool(0.5) { "user" } else { "tags" };
                json!({"type": k, "name": name, "fieldName": field})
            }
            k if k.starts_with("long") => json!({"type": k, "name": name, "fieldName": "lv"}),
            _ => json!({"type": k, "name": name, "fieldName": "dv"}),
        });
    }
    let query_gran = ["none", "minute", "hour"][rng.random_range(0..3)];
    let format = ["millis", "posix"][rng.random_range(0..2)];
    let mut ts = json!({"column": "ts", "format": format});
    if rng.random_bool(0.3) {
        ts["missingValue"] = json!(T0 + 5);
    }
    let schema = json!({
        "dataSource": "fastpath",
        "timestampSpec": ts,
        "dimensionsSpec": {"dimensions": dim_json, "forceSegmentSortByTime": force_time},
        "metricsSpec": metrics,
        "granularitySpec": {"segmentGranularity": "day", "queryGranularity": query_gran,
                            "rollup": rng.random_bool(0.5)}
    });
    let mut inputs: Vec<(String, Domain)> = dims.into_iter().map(|d| (d.1, d.2)).collect();
    inputs.push(("lv".into(), Domain::Long));
    inputs.push(("dv".into(), Domain::Double));
    inputs.push(("user".into(), Domain::Str));
    inputs.push(("tags".into(), Domain::Multi));
    (schema, inputs)
}

/// One of `items`: with probability `p_common` one of the first `common`, else any.
fn pick<T: Copy>(rng: &mut StdRng, items: &[T], common: usize, p_common: f64) -> T {
    let k = if rng.random_bool(p_common) {
        common
    } else {
        items.len()
    };
    items[rng.random_range(0..k)]
}

fn strings(rng: &mut StdRng, n: usize, null_p: f64) -> Vec<Option<String>> {
    // Few distinct values (dictionary interning, runs) and the empty string.
    let pool = ["a", "b", "c", "", "é", "zz", "host_10", "host_9"];
    let run = rng.random_range(1..6);
    let mut out = Vec::with_capacity(n);
    let mut cur = None;
    for i in 0..n {
        if i % run == 0 {
            cur = if rng.random_bool(null_p) {
                None
            } else {
                Some(pool[rng.random_range(0..pool.len())].to_string())
            };
        }
        out.push(cur.clone());
    }
    out
}

fn nullable<T>(
    rng: &mut StdRng,
    n: usize,
    null_p: f64,
    mut f: impl FnMut(&mut StdRng) -> T,
) -> Vec<Option<T>> {
    (0..n)
        .map(|_| {
            if rng.random_bool(null_p) {
                None
            } else {
                Some(f(rng))
            }
        })
        .collect()
}

/// A primitive array with `v`'s nulls and `garbage` under them (Arrow leaves those slots
/// unspecified; the writer must not read them).
fn with_garbage<T: ArrowPrimitiveType>(v: Vec<Option<T::Native>>, garbage: T::Native) -> ArrayRef {
    let nulls = NullBuffer::from(v.iter().map(Option::is_some).collect::<Vec<bool>>());
    let values: Vec<T::Native> = v.iter().map(|x| x.unwrap_or(garbage)).collect();
    Arc::new(PrimitiveArray::<T>::new(values.into(), Some(nulls)))
}

/// A string-ish column; `fast` keeps to the types the column-wise path takes.
fn string_column(rng: &mut StdRng, n: usize, null_p: f64, multi: bool, fast: bool) -> ArrayRef {
    let choice = if fast {
        [0, 1, 2, 3, 4, 6][rng.random_range(0..6)]
    } else {
        rng.random_range(0..if multi { 8 } else { 7 })
    };
    match choice {
        0 => Arc::new(StringArray::from(strings(rng, n, null_p))),
        1 => Arc::new(LargeStringArray::from(strings(rng, n, null_p))),
        2 => Arc::new(StringViewArray::from(strings(rng, n, null_p))),
        3 => {
            let v = strings(rng, n, null_p);
            Arc::new(DictionaryArray::<Int32Type>::from_iter(
                v.iter().map(|s| s.as_deref()),
            ))
        }
        4 => {
            // Dictionary with a null value in the dictionary.
            let values: ArrayRef = Arc::new(StringArray::from(vec![
                Some("x"),
                None,
                Some("y"),
                Some(""),
            ]));
            let keys = nullable(rng, n, null_p, |r| r.random_range(0u8..4));
            let keys = arrow_array::UInt8Array::from(keys);
            Arc::new(DictionaryArray::<UInt8Type>::try_new(keys, values).unwrap())
        }
        5 => with_garbage::<Int64Type>(nullable(rng, n, null_p, |r| r.random_range(-3i64..3)), 77),
        6 => Arc::new(NullArray::new(n)),
        _ => {
            let mut b = ListBuilder::new(StringBuilder::new());
            for _ in 0..n {
                if rng.random_bool(null_p) {
                    b.append(false);
                    continue;
                }
                for _ in 0..rng.random_range(0..4) {
                    if rng.random_bool(0.1) {
                        b.values().append_null();
                    } else {
                        b.values()
                            .append_value(["p", "q", "r", ""][rng.random_range(0..4)]);
                    }
                }
                b.append(true);
            }
            Arc::new(b.finish())
        }
    }
}

/// A long-ish column; `fast` keeps to the types the column-wise path takes.
fn long_column(rng: &mut StdRng, n: usize, null_p: f64, fast: bool) -> ArrayRef {
    let small =
        |r: &mut StdRng| r.random_range(-50i64..50) * [1, 1_000_000_007][r.random_range(0..2)];
    let choice = if fast {
        [0, 1, 2, 3, 5, 6, 7, 8][rng.random_range(0..8)]
    } else {
        rng.random_range(0..11)
    };
    match choice {
        0 | 1 => with_garbage::<Int64Type>(nullable(rng, n, null_p, small), -9),
        2 => {
            with_garbage::<Int32Type>(nullable(rng, n, null_p, |r| r.random_range(-1000..1000)), 5)
        }
        3 => {
            with_garbage::<UInt32Type>(nullable(rng, n, null_p, |r| r.random_range(0..u32::MAX)), 5)
        }
        4 => with_garbage::<UInt64Type>(
            nullable(rng, n, null_p, |r| {
                [3u64, u64::MAX, 1 << 63][r.random_range(0..3)]
            }),
            5,
        ),
        5 => with_garbage::<Float64Type>(
            nullable(rng, n, null_p, |r| {
                // Mostly fine; some that fail as a long (non-finite, too large).
                pick(
                    r,
                    &[1.75, -2.5, 0.0, 1e12, f64::NAN, f64::INFINITY, 1e19, -0.0],
                    4,
                    0.9,
                )
            }),
            f64::NAN,
        ),
        6 => with_garbage::<Float32Type>(
            nullable(rng, n, null_p, |r| r.random_range(-100..100) as f32 / 4.0),
            f32::INFINITY,
        ),
        7 => with_garbage::<TimestampSecondType>(
            nullable(rng, n, null_p, |r| r.random_range(0..2_000_000_000i64)),
            i64::MAX,
        ),
        8 => with_garbage::<Date32Type>(nullable(rng, n, null_p, |r| r.random_range(0..20_000)), 3),
        9 => Arc::new(BooleanArray::from(nullable(rng, n, null_p, |r| {
            r.random_bool(0.5)
        }))),
        _ => Arc::new(StringArray::from(nullable(rng, n, null_p, |r| {
            ["12", " 7 ", "1.5", "x", ""][r.random_range(0..5)].to_string()
        }))),
    }
}

/// A double-ish column; `fast` keeps to the types the column-wise path takes.
fn double_column(rng: &mut StdRng, n: usize, null_p: f64, fast: bool) -> ArrayRef {
    match rng.random_range(0..if fast { 6 } else { 7 }) {
        0 | 1 => with_garbage::<Float64Type>(
            nullable(rng, n, null_p, |r| {
                pick(
                    r,
                    &[1.5, -0.0, 0.0, 2.25, 1e300, -7.0, f64::INFINITY, f64::NAN],
                    6,
                    0.9,
                )
            }),
            f64::NAN,
        ),
        2 => with_garbage::<Float32Type>(
            nullable(rng, n, null_p, |r| {
                pick(r, &[0.5f32, -0.0, 3.0, f32::NAN], 3, 0.95)
            }),
            -0.0,
        ),
        3 => with_garbage::<Int64Type>(
            nullable(rng, n, null_p, |r| r.random_range(-100i64..100)),
            1,
        ),
        4 => with_garbage::<Int16Type>(
            nullable(rng, n, null_p, |r| r.random_range(-100i16..100)),
            1,
        ),
        5 => Arc::new(NullArray::new(n)),
        _ => Arc::new(StringArray::from(nullable(rng, n, null_p, |r| {
            pick(r, &["0.25", "NaN", "y", "-3"], 1, 0.9).to_string()
        }))),
    }
}

/// The time column: mostly inside the day, some outside, some null, some unreadable.
fn time_column(rng: &mut StdRng, n: usize, posix: bool) -> ArrayRef {
    let span = [1, 60_000, 3_600_000 * 3, DAY][rng.random_range(0..4)];
    let null_p = [0.0, 0.05][rng.random_range(0..2)];
    let bad_p = [0.0, 0.05][rng.random_range(0..2)];
    let millis: Vec<Option<i64>> = (0..n)
        .map(|_| {
            if rng.random_bool(null_p) {
                None
            } else if rng.random_bool(bad_p) {
                Some([T0 - 1, T0 + DAY, T0 - DAY][rng.random_range(0..3)])
            } else {
                Some(T0 + rng.random_range(0..span))
            }
        })
        .collect();
    let overflow_p = if rng.random_bool(0.2) { 0.05 } else { 0.0 };
    let scaled = |div: i64| -> Vec<Option<i64>> {
        millis
            .iter()
            .map(|t| t.map(|t| t.div_euclid(div)))
            .collect()
    };
    match rng.random_range(0..5) {
        _ if posix => {
            // Int64 seconds under the `posix` format; some overflow when scaled to millis.
            let mut v = scaled(1000);
            for x in v.iter_mut() {
                if rng.random_bool(overflow_p) {
                    *x = Some(i64::MAX / 10);
                }
            }
            Arc::new(Int64Array::from(v))
        }
        0 => Arc::new(TimestampMillisecondArray::from(millis).with_timezone("UTC")),
        1 => {
            let mut v = scaled(1000);
            for x in v.iter_mut() {
                if rng.random_bool(overflow_p) {
                    *x = Some(i64::MAX / 10);
                }
            }
            Arc::new(TimestampSecondArray::from(v))
        }
        2 => Arc::new(TimestampMicrosecondArray::from(
            millis
                .iter()
                .map(|t| t.map(|t| t * 1000 + 999))
                .collect::<Vec<_>>(),
        )),
        3 => Arc::new(TimestampNanosecondArray::from(
            millis
                .iter()
                .map(|t| t.map(|t| t * 1_000_000 - 1))
                .collect::<Vec<_>>(),
        )),
        _ => Arc::new(Int64Array::from(millis)),
    }
}

fn gen_case(seed: u64, max_rows: usize) -> Case {
    let mut rng = StdRng::seed_from_u64(seed);
    let (schema_json, inputs) = gen_schema(&mut rng);
    let posix = schema_json["timestampSpec"]["format"] == "posix";
    let mut batches = Vec::new();
    for _ in 0..rng.random_range(1..4) {
        let n = rng.random_range(0..=max_rows);
        let null_p = [0.0, 0.1, 0.5][rng.random_range(0..3)];
        // Mostly types the column-wise path takes (with bad values among them), so that it
        // runs; otherwise any type, so the whole batch takes the row path.
        let fast = rng.random_bool(0.7);
        let mut fields = vec![];
        let mut columns = vec![];
        let time = time_column(&mut rng, n, posix);
        fields.push(Field::new("ts", time.data_type().clone(), true));
        columns.push(time);
        for (name, domain) in &inputs {
            if rng.random_bool(0.1) {
                continue; // absent: reads as null
            }
            let c = match domain {
                Domain::Str => string_column(&mut rng, n, null_p, false, fast),
                Domain::Multi => string_column(&mut rng, n, null_p, true, fast),
                Domain::Long => long_column(&mut rng, n, null_p, fast),
                Domain::Double => double_column(&mut rng, n, null_p, fast),
            };
            fields.push(Field::new(name, c.data_type().clone(), true));
            columns.push(c);
        }
        let schema = Arc::new(Schema::new(fields));
        batches.push(RecordBatch::try_new(schema, columns).unwrap());
    }
    Case {
        schema_json,
        batches,
    }
}

/// The reference path: every row through `ArrowRows::row` and `push`.
fn push_rows(w: &mut SegmentWriter, schema: &DataSchema, batch: &RecordBatch) -> BatchReport {
    let rows = ArrowRows::new(schema, batch).unwrap();
    let mut report = BatchReport::default();
    let mut values = Vec::new();
    for i in 0..rows.len() {
        match rows.row(i, &mut values).and_then(|t| w.push(t, &values)) {
            Ok(()) => report.accepted += 1,
            Err(e) => report.rejected.push((i, e.to_string())),
        }
    }
    report
}

fn to_json(v: &InputValue<'_>) -> Value {
    match v {
        InputValue::Null => Value::Null,
        InputValue::Bool(b) => json!(b),
        InputValue::Long(i) => json!(i),
        // NaN and ±inf have no JSON number: as strings they parse to the same double.
        InputValue::Double(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or_else(|| json!(f.to_string())),
        InputValue::Str(s) => json!(s),
        InputValue::List(items) => Value::Array(items.iter().map(to_json).collect()),
    }
}

/// The rows of `batch` as JSON objects (timestamps as milliseconds, or a string that does not
/// parse where the Arrow timestamp does not read).
fn json_rows(schema: &DataSchema, batch: &RecordBatch) -> Vec<Map<String, Value>> {
    let rows = ArrowRows::new(schema, batch).unwrap();
    let names = input_fields(schema);
    let mut values = Vec::new();
    (0..rows.len())
        .map(|i| {
            let mut obj = Map::new();
            let t = rows.row(i, &mut values);
            obj.insert(
                "ts".into(),
                t.map_or_else(|_| json!("not a timestamp"), |t| json!(t)),
            );
            for (name, v) in names.iter().zip(&values) {
                if let Some(name) = name {
                    obj.insert((*name).to_string(), to_json(v));
                }
            }
            obj
        })
        .collect()
}

fn finish(w: SegmentWriter, dir: &std::path::Path, name: &str) -> (Vec<u8>, Vec<RecordBatch>) {
    let path = dir.join(name);
    w.finish(&path).unwrap();
    let seg = Segment::open(&path).unwrap();
    verify_segment(&seg).unwrap();
    (
        std::fs::read(&path).unwrap(),
        seg.to_record_batches().unwrap(),
    )
}

/// Assert that two segments read back the same, naming the first column and row that differ.
fn assert_same_rows(got: &[RecordBatch], want: &[RecordBatch], what: &str, ctx: &str) {
    assert_eq!(got.len(), want.len(), "blocks vs {what}: {ctx}");
    for (b, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.schema(), w.schema(), "schema vs {what}: {ctx}");
        for (c, field) in g.schema().fields().iter().enumerate() {
            let (x, y) = (g.column(c), w.column(c));
            if x.as_ref() == y.as_ref() {
                continue;
            }
            let row = (0..x.len().min(y.len()))
                .find(|&r| x.slice(r, 1).as_ref() != y.slice(r, 1).as_ref())
                .unwrap_or(x.len().min(y.len()));
            let show = |a: &ArrayRef| {
                if row < a.len() {
                    format!("{:?}", a.slice(row, 1))
                } else {
                    "(none)".to_string()
                }
            };
            panic!(
                "column `{}` block {b} row {row} differs from the {what} segment: {} vs {}\n{ctx}",
                field.name(),
                show(x),
                show(y)
            );
        }
    }
}

fn run_case(seed: u64, max_rows: usize) {
    let case = gen_case(seed, max_rows);
    let schema = DataSchema::from_value(&case.schema_json).unwrap();
    // The JSON rows carry milliseconds whatever the Arrow input's format.
    let mut json_schema_json = case.schema_json.clone();
    json_schema_json["timestampSpec"]["format"] = json!("millis");
    let json_schema = DataSchema::from_value(&json_schema_json).unwrap();
    let interval = Interval::new(T0, T0 + DAY).unwrap();
    let mut fast = SegmentWriter::new(&schema, interval).unwrap();
    let mut slow = SegmentWriter::new(&schema, interval).unwrap();
    let mut from_json = SegmentWriter::new(&json_schema, interval).unwrap();
    let ctx = || format!("seed {seed}, schema {}", case.schema_json);
    for batch in &case.batches {
        let got = fast.add_batch(batch).unwrap();
        let want = push_rows(&mut slow, &schema, batch);
        assert_eq!(got, want, "{}", ctx());
        let mut json_rejected = Vec::new();
        for (i, row) in json_rows(&schema, batch).iter().enumerate() {
            if from_json.push_json(row).is_err() {
                json_rejected.push(i);
            }
        }
        let rejected: Vec<usize> = got.rejected.iter().map(|(i, _)| *i).collect();
        assert_eq!(json_rejected, rejected, "{}", ctx());
    }
    let dir = tempfile::tempdir().unwrap();
    let (fast_bytes, fast_rows) = finish(fast, dir.path(), "fast.bseg");
    let (slow_bytes, slow_rows) = finish(slow, dir.path(), "slow.bseg");
    let (_, json_rows) = finish(from_json, dir.path(), "json.bseg");
    assert_same_rows(&fast_rows, &slow_rows, "row path", &ctx());
    assert_same_rows(&fast_rows, &json_rows, "JSON", &ctx());
    assert!(fast_bytes == slow_bytes, "segment bytes differ: {}", ctx());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]
    #[test]
    fn arrow_batches_match_row_path_and_json(seed in any::<u64>()) {
        run_case(seed, 200);
    }
}

#[test]
fn empty_and_tiny_batches() {
    for seed in 0..40 {
        run_case(seed, 2);
    }
}

#[test]
fn batches_spanning_blocks() {
    run_case(11, 70_000);
}

/// The case the column-wise path exists for: all-valid plain columns, no row falls back.
#[test]
fn clean_batch_takes_every_row() {
    let schema = DataSchema::from_value(&json!({
        "dataSource": "t",
        "timestampSpec": {"column": "ts", "format": "millis"},
        "dimensionsSpec": {"dimensions": ["host", {"type": "long", "name": "v"}]},
        "metricsSpec": [{"type": "count", "name": "n"}],
        "granularitySpec": {"segmentGranularity": "day", "queryGranularity": "none", "rollup": false}
    }))
    .unwrap();
    let n = 1000;
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("ts", DataType::Int64, false),
            Field::new("host", DataType::Utf8, false),
            Field::new("v", DataType::Int64, false),
        ])),
        vec![
            Arc::new(Int64Array::from_iter_values((0..n).map(|i| T0 + i))),
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("h{}", i % 7)),
            )),
            Arc::new(Int64Array::from_iter_values(0..n)),
        ],
    )
    .unwrap();
    let mut w = SegmentWriter::new(&schema, Interval::new(T0, T0 + DAY).unwrap()).unwrap();
    let report = w.add_batch(&batch).unwrap();
    assert_eq!(report.accepted, n as u64);
    assert!(report.rejected.is_empty());
    let mut slow = SegmentWriter::new(&schema, Interval::new(T0, T0 + DAY).unwrap()).unwrap();
    assert_eq!(push_rows(&mut slow, &schema, &batch), report);
    let dir = tempfile::tempdir().unwrap();
    let (a, rows) = finish(w, dir.path(), "a.bseg");
    let (b, _) = finish(slow, dir.path(), "b.bseg");
    assert_eq!(a, b);
    assert_eq!(rows.iter().map(|b| b.num_rows()).sum::<usize>(), n as usize);
}

/// A bad row in the middle of a batch is rejected alone, with its reason, and the rows around it
/// keep their order (first/last depend on arrival order).
#[test]
fn bad_rows_are_rejected_in_place() {
    let schema = DataSchema::from_value(&json!({
        "dataSource": "t",
        "timestampSpec": {"column": "ts", "format": "millis"},
        "dimensionsSpec": {"dimensions": ["k"]},
        "metricsSpec": [
            {"type": "longFirst", "name": "first", "fieldName": "v"},
            {"type": "longLast", "name": "last", "fieldName": "v"},
            {"type": "doubleSum", "name": "sum", "fieldName": "d"}
        ],
        "granularitySpec": {"segmentGranularity": "day", "queryGranularity": "day", "rollup": true}
    }))
    .unwrap();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("ts", DataType::Int64, true),
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Float64, true),
            Field::new("d", DataType::Float64, true),
        ])),
        vec![
            Arc::new(Int64Array::from(vec![
                Some(T0),
                Some(T0),
                None,
                Some(T0 + DAY),
                Some(T0),
                Some(T0),
            ])),
            Arc::new(StringArray::from(vec!["a"; 6])),
            Arc::new(Float64Array::from(vec![
                1.0,
                f64::INFINITY,
                2.0,
                3.0,
                4.0,
                5.0,
            ])),
            Arc::new(Float64Array::from(vec![1.0, 1.0, 1.0, 1.0, f64::NAN, 1.0])),
        ],
    )
    .unwrap();
    let mut w = SegmentWriter::new(&schema, Interval::new(T0, T0 + DAY).unwrap()).unwrap();
    let report = w.add_batch(&batch).unwrap();
    assert_eq!(report.accepted, 2);
    let rejected: Vec<usize> = report.rejected.iter().map(|(i, _)| *i).collect();
    assert_eq!(rejected, vec![1, 2, 3, 4]);
    assert!(report.rejected[0].1.contains("as a long"), "{report:?}");
    assert!(report.rejected[1].1.contains("null"), "{report:?}");
    assert!(report.rejected[2].1.contains("outside"), "{report:?}");
    assert!(report.rejected[3].1.contains("NaN"), "{report:?}");
    let dir = tempfile::tempdir().unwrap();
    let (_, rows) = finish(w, dir.path(), "a.bseg");
    assert_eq!(rows.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    let value = |name: &str| {
        let pair = rows[0].column_by_name(name).unwrap().as_struct();
        pair.column_by_name("value")
            .unwrap()
            .as_primitive::<Int64Type>()
            .value(0)
    };
    // Rows 0 and 5 remain, in arrival order: first 1, last 5.
    assert_eq!(value("first"), 1);
    assert_eq!(value("last"), 5);
}

/// A dictionary much larger than the rows that use it (interned row by row, not cached per key),
/// and one small enough to be cached, give the same segment as the row path.
#[test]
fn large_and_small_dictionaries() {
    let schema = DataSchema::from_value(&json!({
        "dataSource": "t",
        "timestampSpec": {"column": "ts", "format": "millis"},
        "dimensionsSpec": {"dimensions": ["big", "small"]},
        "granularitySpec": {"segmentGranularity": "day", "queryGranularity": "none", "rollup": false}
    }))
    .unwrap();
    let dict = |n: usize, keys: Vec<Option<u32>>| -> ArrayRef {
        let values: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..n).map(|i| format!("v{i}")),
        ));
        let keys = arrow_array::UInt32Array::from(keys);
        Arc::new(DictionaryArray::<UInt32Type>::try_new(keys, values).unwrap())
    };
    let keys: Vec<Option<u32>> = (0..20u32)
        .map(|i| (i % 7 != 3).then_some(i * 997 % 5000))
        .collect();
    let small_keys: Vec<Option<u32>> = (0..20u32).map(|i| Some(i % 3)).collect();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("ts", DataType::Int64, false),
            Field::new("big", dict(5000, vec![None]).data_type().clone(), true),
            Field::new("small", dict(3, vec![None]).data_type().clone(), true),
        ])),
        vec![
            Arc::new(Int64Array::from_iter_values((0..20).map(|i| T0 + i))),
            dict(5000, keys),
            dict(3, small_keys),
        ],
    )
    .unwrap();
    let interval = Interval::new(T0, T0 + DAY).unwrap();
    let mut fast = SegmentWriter::new(&schema, interval).unwrap();
    let mut slow = SegmentWriter::new(&schema, interval).unwrap();
    assert_eq!(
        fast.add_batch(&batch).unwrap(),
        push_rows(&mut slow, &schema, &batch)
    );
    let dir = tempfile::tempdir().unwrap();
    let (a, rows) = finish(fast, dir.path(), "a.bseg");
    let (b, _) = finish(slow, dir.path(), "b.bseg");
    assert_eq!(a, b);
    let big = rows[0].column_by_name("big").unwrap();
    assert_eq!(big.len(), 20);
    assert_eq!(big.null_count(), 3);
    assert!(
        big.as_string::<i32>()
            .iter()
            .flatten()
            .all(|v| v.starts_with('v'))
    );
}
