//! Property test: random schemas and rows → segment → read back equals a naive rolled-up,
//! sorted reference computed row by row.

#![allow(clippy::unwrap_used)]

use std::cmp::Ordering;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch};
use basalt_engine::aggregate::{deserialize_hll, hll_update_str, merge_hll, new_hll};
use basalt_engine::schema::DataSchema;
use basalt_engine::segment::{Segment, SegmentWriter, verify_segment};
use basalt_engine::time::{Granularity, Interval};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const DAY: i64 = 86_400_000;
const T0: i64 = 1_700_000_000_000 / DAY * DAY;

#[derive(Clone, Debug)]
enum DimKind {
    Str { multi: bool, handling: &'static str },
    Long,
    Double,
}

#[derive(Clone, Debug)]
struct Case {
    schema_json: Value,
    dims: Vec<(String, DimKind)>,
    metrics: Vec<(String, &'static str, Option<String>)>,
    query_gran: Granularity,
    rollup: bool,
    sort: Vec<Option<usize>>,
    rows: Vec<serde_json::Map<String, Value>>,
}

fn gen_case(seed: u64, max_rows: usize) -> Case {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut dims = Vec::new();
    for i in 0..rng.random_range(0..4) {
        let multi = rng.random_bool(0.4);
        let handling = ["SORTED_ARRAY", "SORTED_SET", "ARRAY"][rng.random_range(0..3)];
        dims.push((format!("s{i}"), DimKind::Str { multi, handling }));
    }
    for i in 0..rng.random_range(0..3) {
        dims.push((format!("l{i}"), DimKind::Long));
    }
    for i in 0..rng.random_range(0..2) {
        dims.push((format!("d{i}"), DimKind::Double));
    }
    // Shuffle declared order.
    for i in (1..dims.len()).rev() {
        let j = rng.random_range(0..=i);
        dims.swap(i, j);
    }
    let kinds = [
        "count",
        "longSum",
        "doubleSum",
        "longMin",
        "longMax",
        "doubleMin",
        "doubleMax",
        "longFirst",
        "longLast",
        "doubleFirst",
        "doubleLast",
        "HLLSketchBuild",
    ];
    let mut metrics = Vec::new();
    for (i, k) in kinds.iter().enumerate() {
        if rng.random_bool(0.5) {
            let field = if *k == "count" {
                None
            } else if *k == "HLLSketchBuild" {
                Some(if rng.random_bool(0.5) {
                    "user".to_string()
                } else {
                    "tags".to_string()
                })
            } else if k.starts_with("long") {
                Some("lv".to_string())
            } else {
                Some("dv".to_string())
            };
            metrics.push((format!("m{i}"), *k, field));
        }
    }
    let query_gran =
        [Granularity::None, Granularity::Minute, Granularity::Hour][rng.random_range(0..3)];
    let rollup = rng.random_bool(0.6);
    let force_time = rng.random_bool(0.5);
    let time_pos = rng.random_range(0..=dims.len());
    let mut sort: Vec<Option<usize>> = (0..dims.len()).map(Some).collect();
    sort.insert(if force_time { 0 } else { time_pos }, None);

    let mut dim_json: Vec<Value> = dims
        .iter()
        .map(|(name, k)| match k {
            DimKind::Str { handling, .. } => {
                json!({"type": "string", "name": name, "multiValueHandling": handling})
            }
            DimKind::Long => json!({"type": "long", "name": name}),
            DimKind::Double => json!({"type": "double", "name": name}),
        })
        .collect();
    if !force_time {
        dim_json.insert(time_pos, json!({"type": "long", "name": "__time"}));
    }
    let metric_json: Vec<Value> = metrics
        .iter()
        .map(|(name, k, f)| match f {
            Some(f) => json!({"type": k, "name": name, "fieldName": f}),
            None => json!({"type": k, "name": name}),
        })
        .collect();
    let schema_json = json!({
        "dataSource": "prop",
        "timestampSpec": {"column": "ts", "format": "millis"},
        "dimensionsSpec": {"dimensions": dim_json, "forceSegmentSortByTime": force_time},
        "metricsSpec": metric_json,
        "granularitySpec": {"segmentGranularity": "day", "queryGranularity": query_gran.name(), "rollup": rollup}
    });

    let n = rng.random_range(0..=max_rows);
    let time_span = [1, 10, 3_600_000 * 3, DAY][rng.random_range(0..4)];
    let pool = ["a", "b", "c", "", "é", "zz"];
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        let mut row = serde_json::Map::new();
        row.insert("ts".into(), json!(T0 + rng.random_range(0..time_span)));
        for (name, k) in &dims {
            if rng.random_bool(0.15) {
                continue; // missing → null
            }
            let v = match k {
                DimKind::Str { multi: true, .. } if rng.random_bool(0.5) => {
                    let len = rng.random_range(0..4);
                    Value::Array(
                        (0..len)
                            .map(|_| json!(pool[rng.random_range(0..pool.len())]))
                            .collect(),
                    )
                }
                DimKind::Str { .. } => json!(pool[rng.random_range(0..pool.len())]),
                DimKind::Long => json!(rng.random_range(-3i64..3) * 1_000_000_007),
                DimKind::Double => json!([-1.5, 0.0, 2.25, 1e300][rng.random_range(0..4)]),
            };
            row.insert(name.clone(), v);
        }
        if rng.random_bool(0.9) {
            row.insert("lv".into(), json!(rng.random_range(-100i64..100)));
        }
        if rng.random_bool(0.9) {
            row.insert(
                "dv".into(),
                json!(rng.random_range(-100i64..100) as f64 / 8.0),
            );
        }
        if rng.random_bool(0.9) {
            row.insert(
                "user".into(),
                json!(format!("u{}", rng.random_range(0..50))),
            );
        }
        if rng.random_bool(0.5) {
            row.insert(
                "tags".into(),
                json!(["x", format!("t{}", rng.random_range(0..5))]),
            );
        }
        rows.push(row);
    }
    Case {
        schema_json,
        dims,
        metrics,
        query_gran,
        rollup,
        sort,
        rows,
    }
}

/// A reference value, comparable across reference and segment.
#[derive(Clone, Debug, PartialEq)]
enum V {
    Null,
    Strs(Vec<String>),
    Long(i64),
    Double(f64),
    Pair(i64, f64),
    Hll(f64),
}

fn cmp_key(a: &V, b: &V) -> Ordering {
    match (a, b) {
        (V::Null, V::Null) => Ordering::Equal,
        (V::Null, _) => Ordering::Less,
        (_, V::Null) => Ordering::Greater,
        (V::Strs(x), V::Strs(y)) => x.cmp(y),
        (V::Long(x), V::Long(y)) => x.cmp(y),
        (V::Double(x), V::Double(y)) => x.total_cmp(y),
        _ => Ordering::Equal,
    }
}

fn str_value(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn reference(case: &Case) -> Vec<Vec<V>> {
    // Each row: [time, dims..., metric states...]; metric states as V (HLL as list of strings).
    struct Acc {
        key: Vec<V>,
        metrics: Vec<Option<(i64, f64)>>,
        hll: Vec<Vec<String>>,
    }
    let mut accs: Vec<Acc> = Vec::new();
    for row in &case.rows {
        let t = row["ts"].as_i64().unwrap();
        let mut key = vec![V::Long(case.query_gran.truncate(t))];
        for (name, k) in &case.dims {
            let v = row.get(name).cloned().unwrap_or(Value::Null);
            key.push(match k {
                DimKind::Str { handling, .. } => {
                    let mut strs: Vec<String> = match &v {
                        Value::Array(a) => a.iter().filter_map(str_value).collect(),
                        other => str_value(other).into_iter().collect(),
                    };
                    if *handling != "ARRAY" && strs.len() > 1 {
                        strs.sort();
                        if *handling == "SORTED_SET" {
                            strs.dedup();
                        }
                    }
                    if strs.is_empty() {
                        V::Null
                    } else {
                        V::Strs(strs)
                    }
                }
                DimKind::Long => v.as_i64().map(V::Long).unwrap_or(V::Null),
                DimKind::Double => v
                    .as_f64()
                    .map(|f| V::Double(if f == 0.0 { 0.0 } else { f }))
                    .unwrap_or(V::Null),
            });
        }
        let mut metrics = Vec::new();
        let mut hll = Vec::new();
        for (_, kind, field) in &case.metrics {
            let input = field.as_ref().and_then(|f| row.get(f));
            match *kind {
                "count" => metrics.push(Some((0, 1.0))),
                "HLLSketchBuild" => {
                    let vals: Vec<String> = match input {
                        Some(Value::Array(a)) => a.iter().filter_map(str_value).collect(),
                        Some(v) => str_value(v).into_iter().collect(),
                        None => vec![],
                    };
                    hll.push(vals);
                    metrics.push(None);
                }
                _ => metrics.push(input.and_then(Value::as_f64).map(|x| (t, x))),
            }
        }
        if case.rollup
            && let Some(acc) = accs.iter_mut().find(|a| {
                a.key
                    .iter()
                    .zip(&key)
                    .all(|(x, y)| cmp_key(x, y) == Ordering::Equal)
            })
        {
            for (i, (_, kind, _)) in case.metrics.iter().enumerate() {
                let (a, b) = (acc.metrics[i], metrics[i]);
                acc.metrics[i] = match (a, b) {
                    (None, x) | (x, None) => x,
                    (Some(a), Some(b)) => Some(match *kind {
                        "count" | "longSum" | "doubleSum" => (0, a.1 + b.1),
                        "longMin" | "doubleMin" => (0, a.1.min(b.1)),
                        "longMax" | "doubleMax" => (0, a.1.max(b.1)),
                        "longFirst" | "doubleFirst" => {
                            if b.0 < a.0 {
                                b
                            } else {
                                a
                            }
                        }
                        "longLast" | "doubleLast" => {
                            if b.0 >= a.0 {
                                b
                            } else {
                                a
                            }
                        }
                        _ => a,
                    }),
                };
            }
            let mut hi = 0;
            for (_, kind, _) in &case.metrics {
                if *kind == "HLLSketchBuild" {
                    acc.hll[hi].extend(hll[hi].iter().cloned());
                    hi += 1;
                }
            }
            continue;
        }
        accs.push(Acc { key, metrics, hll });
    }
    // Stable sort by the sort order.
    accs.sort_by(|a, b| {
        for k in &case.sort {
            let idx = match k {
                None => 0,
                Some(i) => i + 1,
            };
            let o = cmp_key(&a.key[idx], &b.key[idx]);
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    accs.into_iter()
        .map(|a| {
            let mut out = a.key;
            let mut hi = 0;
            for (i, (_, kind, _)) in case.metrics.iter().enumerate() {
                out.push(match *kind {
                    "HLLSketchBuild" => {
                        let vals = &a.hll[hi];
                        hi += 1;
                        if vals.is_empty() {
                            V::Null
                        } else {
                            let mut s = new_hll(12).unwrap();
                            for v in vals {
                                hll_update_str(&mut s, v);
                            }
                            V::Hll(merge_hll(12, [&s]).unwrap().estimate())
                        }
                    }
                    k if k.ends_with("First") || k.ends_with("Last") => match a.metrics[i] {
                        None => V::Null,
                        Some((t, v)) => V::Pair(t, v),
                    },
                    k if k.starts_with("long") || k == "count" => match a.metrics[i] {
                        None => V::Null,
                        Some((_, v)) => V::Long(v as i64),
                    },
                    _ => match a.metrics[i] {
                        None => V::Null,
                        Some((_, v)) => V::Double(v),
                    },
                });
            }
            out
        })
        .collect()
}

fn read_back(batches: &[RecordBatch]) -> Vec<Vec<V>> {
    let mut rows = Vec::new();
    for batch in batches {
        for r in 0..batch.num_rows() {
            let mut row = Vec::new();
            for c in batch.columns() {
                if c.is_null(r) {
                    row.push(V::Null);
                    continue;
                }
                row.push(match c.data_type() {
                    arrow_schema::DataType::Timestamp(..) => {
                        V::Long(c.as_primitive::<TimestampMillisecondType>().value(r))
                    }
                    arrow_schema::DataType::Int64 => {
                        V::Long(c.as_primitive::<Int64Type>().value(r))
                    }
                    arrow_schema::DataType::Float64 => {
                        V::Double(c.as_primitive::<Float64Type>().value(r))
                    }
                    arrow_schema::DataType::Utf8 => {
                        V::Strs(vec![c.as_string::<i32>().value(r).to_string()])
                    }
                    arrow_schema::DataType::List(_) => {
                        let l = c.as_list::<i32>().value(r);
                        let s = l.as_string::<i32>();
                        V::Strs((0..s.len()).map(|i| s.value(i).to_string()).collect())
                    }
                    arrow_schema::DataType::Binary => V::Hll(
                        deserialize_hll(c.as_binary::<i32>().value(r))
                            .unwrap()
                            .estimate(),
                    ),
                    arrow_schema::DataType::Struct(_) => {
                        let s = c.as_struct();
                        let t = s.column(0).as_primitive::<Int64Type>().value(r);
                        let v = s.column(1);
                        let v = match v.data_type() {
                            arrow_schema::DataType::Int64 => {
                                v.as_primitive::<Int64Type>().value(r) as f64
                            }
                            _ => v.as_primitive::<Float64Type>().value(r),
                        };
                        V::Pair(t, v)
                    }
                    other => panic!("unexpected type {other}"),
                });
            }
            rows.push(row);
        }
    }
    rows
}

fn values_match(a: &V, b: &V) -> bool {
    match (a, b) {
        (V::Double(x), V::Double(y)) => x == y || (x - y).abs() <= 1e-9 * x.abs().max(1.0),
        (V::Hll(x), V::Hll(y)) => (x - y).abs() <= 0.02 * x.max(*y) + 1.0,
        (V::Pair(t1, x), V::Pair(t2, y)) => t1 == t2 && (x - y).abs() < 1e-9,
        _ => a == b,
    }
}

fn run_case(seed: u64, max_rows: usize) {
    let case = gen_case(seed, max_rows);
    let schema = DataSchema::from_value(&case.schema_json).unwrap();
    let interval = Interval::new(T0, T0 + DAY).unwrap();
    let mut w = SegmentWriter::new(&schema, interval).unwrap();
    for row in &case.rows {
        w.push_json(row).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.bseg");
    let stats = w.finish(&path).unwrap();
    let want = reference(&case);
    assert_eq!(stats.rows_in as usize, case.rows.len());
    assert_eq!(
        stats.rows_out as usize,
        want.len(),
        "seed {seed}: rolled-up row count"
    );
    let seg = Segment::open(&path).unwrap();
    verify_segment(&seg).unwrap();
    let got = read_back(&seg.to_record_batches().unwrap());
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.len(), w.len());
        for (c, (x, y)) in g.iter().zip(w).enumerate() {
            assert!(
                values_match(x, y),
                "seed {seed} row {i} column {c}: segment {x:?} reference {y:?}\nschema {}",
                case.schema_json
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, ..ProptestConfig::default() })]
    #[test]
    fn random_segments_match_reference(seed in any::<u64>()) {
        run_case(seed, 300);
    }
}

#[test]
fn empty_and_single_row_segments() {
    for seed in 0..40 {
        run_case(seed, 1);
    }
}

#[test]
fn larger_segment_spans_several_blocks() {
    run_case(7, 150_000);
}
