//! A limited groupBy ordered first by its only aggregator (max descending, min ascending) cuts
//! each segment's groups to its best before merging. The answers must equal the exact ones,
//! worked out here from the rows, with many ties (values clamped to 0..=100), groups without a
//! value, nulls placed first or last, offsets, and a second ordering column or none.

#![allow(clippy::unwrap_used)]

use std::cmp::Ordering;
use std::collections::BTreeMap;

use basalt_engine::engine::{AggRows, Engine};
use basalt_engine::query::spec::Query;
use serde_json::{Value, json};

mod sql_support;

use sql_support::{HOUR, T0};
const HOURS: i64 = 4;
const HOSTS: u64 = 300;
const ROWS_PER_HOST: u64 = 20;
/// Null in hours 0 and 1, low in hours 2 and 3 where better hosts crowd it out of the segments'
/// tops: with nulls first, its merged value would read null if the cut were trusted blindly.
const CROWDED: &str = "h0299";

struct Row {
    host: String,
    ts: i64,
    v: Option<i64>,
}

fn value(h: u64, hour: i64, i: u64) -> Option<i64> {
    let host = format!("h{h:04}");
    if host == CROWDED {
        return (hour >= 2).then_some(1 + i as i64 % 3);
    }
    if h % 37 == 5 && hour == 1 {
        return None; // every row of the hour
    }
    if h % 53 == 7 && i.is_multiple_of(3) {
        return None; // some rows
    }
    if h % 101 == 11 && hour < 2 {
        return None; // no value in the first two hours
    }
    let x = (hour as u64 * HOSTS + h) * ROWS_PER_HOST + i;
    let x = (x ^ (x >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
    let level = ((h * 7_919 + hour as u64 * 104_729) % 160) as i64 - 30;
    Some((level + (x % 21) as i64 - 10).clamp(0, 100))
}

fn setup() -> (tempfile::TempDir, Engine, Vec<Row>) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let mut json_rows = Vec::new();
    let mut all = Vec::new();
    for hour in 0..HOURS {
        for h in 0..HOSTS {
            let host = format!("h{h:04}");
            for i in 0..ROWS_PER_HOST {
                let ts = T0 + hour * HOUR + (i as i64) * 60_000;
                let v = value(h, hour, i);
                let mut row = json!({"ts": ts, "host": host, "rack": format!("r{}", h % 7)});
                if let Some(v) = v {
                    row["v"] = json!(v);
                    row["d"] = json!(v as f64 / 4.0);
                }
                json_rows.push(row);
                all.push(Row {
                    host: host.clone(),
                    ts,
                    v,
                });
            }
        }
    }
    // One segment per hour.
    sql_support::publish(
        &engine,
        json!({
            "dataSource": "cpu",
            "timestampSpec": {"column": "ts", "format": "millis"},
            "dimensionsSpec": {
                "dimensions": ["host", "rack", {"type": "long", "name": "v"}, {"type": "double", "name": "d"}]
            },
            "metricsSpec": [],
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none", "rollup": false}
        }),
        &json_rows,
    );
    (dir, engine, all)
}

/// One ordering case.
struct Case {
    /// `longMax`, `longMin`, `doubleMax`, `doubleMin`.
    agg: &'static str,
    descending: bool,
    null_order: Option<bool>,
    limit: usize,
    offset: usize,
    /// Hosts ascending as the second ordering column.
    by_host: bool,
    /// Group by rack too (a second dimension, the same groups).
    with_rack: bool,
    window: (i64, i64),
}

fn iso(t: i64) -> String {
    basalt_engine::time::format_iso_millis(t)
}

/// The exact answer: (host, value) in order.
fn expected(rows: &[Row], c: &Case) -> Vec<(String, Option<i64>)> {
    let max = c.agg.ends_with("Max");
    let mut per_host: BTreeMap<&str, Option<i64>> = BTreeMap::new();
    for r in rows {
        if !(c.window.0..c.window.1).contains(&r.ts) {
            continue;
        }
        let e = per_host.entry(&r.host).or_insert(None);
        if let Some(v) = r.v {
            *e = Some(match *e {
                None => v,
                Some(a) if max => a.max(v),
                Some(a) => a.min(v),
            });
        }
    }
    let nulls_first = c.null_order.unwrap_or(!c.descending);
    let mut out: Vec<(String, Option<i64>)> = per_host
        .into_iter()
        .map(|(h, v)| (h.to_owned(), v))
        .collect();
    // Stable: hosts stay ascending among ties.
    out.sort_by(|(_, a), (_, b)| match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) if nulls_first => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) if nulls_first => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) if c.descending => y.cmp(x),
        (Some(x), Some(y)) => x.cmp(y),
    });
    out.into_iter().skip(c.offset).take(c.limit).collect()
}

fn run(engine: &Engine, c: &Case) -> Vec<(String, Option<i64>)> {
    let mut column = json!({"dimension": "m",
        "direction": if c.descending { "descending" } else { "ascending" }});
    if let Some(first) = c.null_order {
        column["nullOrder"] = json!(if first { "first" } else { "last" });
    }
    let mut columns = vec![column];
    if c.by_host {
        columns.push(json!("host"));
    }
    let mut dims = vec![json!("host")];
    if c.with_rack {
        dims.push(json!("rack"));
    }
    let field = if c.agg.starts_with("long") { "v" } else { "d" };
    let q = json!({
        "queryType": "groupBy", "dataSource": "cpu",
        "intervals": [format!("{}/{}", iso(c.window.0), iso(c.window.1))],
        "granularity": "all", "dimensions": dims,
        "aggregations": [{"type": c.agg, "name": "m", "fieldName": field}],
        "limitSpec": {"type": "default", "limit": c.limit, "offset": c.offset, "columns": columns}
    });
    let result = engine
        .query_json(&q.to_string())
        .unwrap_or_else(|e| panic!("{e}\nquery: {q}"));
    // The rows SQL reads (values, no response JSON) take the same cut and give the same rows.
    let parsed = Query::from_value(&q).unwrap();
    let Some(AggRows::GroupBy(rows)) = engine.query_rows(&parsed, None).unwrap() else {
        panic!("no groupBy rows: {q}");
    };
    let events: Vec<Value> = rows
        .into_iter()
        .map(|(_, dims, aggs)| {
            let mut e = json!({"host": dims[0], "m": aggs[0]});
            if c.with_rack {
                e["rack"] = dims[1].clone();
            }
            json!({"event": e})
        })
        .collect();
    let strip = |r: &Value| json!({"event": r["event"]});
    assert_eq!(
        events,
        result
            .as_array()
            .unwrap()
            .iter()
            .map(strip)
            .collect::<Vec<_>>(),
        "{q}"
    );
    result
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let e = &r["event"];
            let v = match &e["m"] {
                Value::Null => None,
                // Doubles are a quarter of the long value: compare in long units.
                v if c.agg.starts_with("double") => Some((v.as_f64().unwrap() * 4.0) as i64),
                v => Some(v.as_i64().unwrap()),
            };
            (e["host"].as_str().unwrap().to_owned(), v)
        })
        .collect()
}

#[test]
fn limited_groupby_cut_per_segment_is_exact() {
    let (_dir, engine, rows) = setup();
    let whole = (T0, T0 + HOURS * HOUR);
    let cutting_edges = (T0 + 17 * 60_000, T0 + 3 * HOUR + 5 * 60_000);
    // Every group has a value in each of these segments: with nulls first, the cut stands.
    let last_two = (T0 + 2 * HOUR, T0 + 4 * HOUR);
    let mut checked = 0;
    for agg in ["longMax", "longMin", "doubleMax", "doubleMin"] {
        // The cut applies to max descending and min ascending; the other directions are
        // checked too (no cut, same answer).
        for descending in [true, false] {
            for null_order in [None, Some(true), Some(false)] {
                for (limit, offset) in [(10, 0), (5, 3), (1, 0), (290, 0), (400, 0)] {
                    for by_host in [true, false] {
                        for (with_rack, window) in [
                            (false, whole),
                            (true, whole),
                            (false, cutting_edges),
                            (false, last_two),
                        ] {
                            let c = Case {
                                agg,
                                descending,
                                null_order,
                                limit,
                                offset,
                                by_host,
                                with_rack,
                                window,
                            };
                            let want = expected(&rows, &c);
                            let got = run(&engine, &c);
                            let what = format!(
                                "{agg} desc={descending} nulls={null_order:?} limit={limit} \
                                 offset={offset} by_host={by_host} rack={with_rack} {window:?}"
                            );
                            if by_host {
                                assert_eq!(got, want, "{what}");
                            } else {
                                // Hosts that tie may come in any order: the values are exact,
                                // and each host has its value.
                                let values = |x: &[(String, Option<i64>)]| {
                                    x.iter().map(|(_, v)| *v).collect::<Vec<_>>()
                                };
                                assert_eq!(values(&got), values(&want), "{what}");
                                let all = expected(
                                    &rows,
                                    &Case {
                                        limit: usize::MAX,
                                        offset: 0,
                                        ..c
                                    },
                                );
                                let exact: BTreeMap<_, _> = all.into_iter().collect();
                                for (h, v) in &got {
                                    assert_eq!(exact.get(h), Some(v), "{what}: {h}");
                                }
                            }
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(checked, 4 * 2 * 3 * 5 * 2 * 4);
}

/// The host crowded out of hours 2 and 3's tops is null in hours 0 and 1: with nulls first, a
/// max descending over them must still report its real value, not null.
#[test]
fn a_group_null_in_one_segment_and_cut_from_another_keeps_its_value() {
    let (_dir, engine, rows) = setup();
    for window in [(T0, T0 + 3 * HOUR), (T0, T0 + HOURS * HOUR)] {
        let c = Case {
            agg: "longMax",
            descending: true,
            null_order: Some(true),
            limit: 400,
            offset: 0,
            by_host: true,
            with_rack: false,
            window,
        };
        let got = run(&engine, &c);
        let want = expected(&rows, &c);
        assert_eq!(got, want, "{window:?}");
        let crowded = got.iter().find(|(h, _)| h == CROWDED).unwrap();
        assert_eq!(crowded.1, Some(3));
        // And a short limit, where the cut drops it from hour 2.
        let c = Case { limit: 10, ..c };
        assert_eq!(run(&engine, &c), expected(&rows, &c), "{window:?}");
    }
}
