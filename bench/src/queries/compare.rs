//! Comparing results across systems: Basalt's Druid-shaped responses and the peers' rows are
//! both flattened into rows of named JSON values, then compared as the query's [`Check`] says.

use std::cmp::Ordering;

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::queries::defs::Check;

/// Examples of differing rows kept per comparison.
const MAX_EXAMPLES: usize = 5;

/// One result row: column name → value (times as epoch milliseconds).
pub type Row = Map<String, Value>;

/// Flattens a Druid native response into rows:
/// - timeseries `[{timestamp, result: {..}}]` → `__time` + the result's fields;
/// - topN `[{timestamp, result: [{..}, ..]}]` → one row per entry, with `__time`;
/// - groupBy `[{version, timestamp, event: {..}}]` → `__time` + the event's fields;
/// - scan `[{segmentId, columns, events}]` (`list` or `compactedList`) → one row per event.
pub fn basalt_rows(response: &Value) -> anyhow::Result<Vec<Row>> {
    let items = response
        .as_array()
        .context("a native query response is a JSON array")?;
    let mut rows = Vec::new();
    for item in items {
        let time = item.get("timestamp").map(druid_time);
        let with_time = |fields: &Map<String, Value>| {
            let mut row = Map::new();
            if let Some(t) = &time {
                row.insert("__time".to_owned(), t.clone());
            }
            row.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
            row
        };
        if let Some(events) = item.get("events").and_then(Value::as_array) {
            let columns: Vec<&str> = item
                .get("columns")
                .and_then(Value::as_array)
                .map(|c| c.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for e in events {
                match e {
                    Value::Array(values) => rows.push(
                        columns
                            .iter()
                            .zip(values)
                            .map(|(c, v)| ((*c).to_owned(), v.clone()))
                            .collect(),
                    ),
                    Value::Object(m) => rows.push(m.clone()),
                    other => bail!("scan event is neither an array nor an object: {other}"),
                }
            }
        } else if let Some(event) = item.get("event").and_then(Value::as_object) {
            rows.push(with_time(event));
        } else if let Some(result) = item.get("result") {
            match result {
                Value::Object(m) => rows.push(with_time(m)),
                Value::Array(entries) => {
                    for e in entries {
                        rows.push(with_time(
                            e.as_object().context("topN entry is not an object")?,
                        ));
                    }
                }
                other => bail!("unexpected `result`: {other}"),
            }
        } else {
            bail!("unrecognized response item: {item}");
        }
    }
    Ok(rows)
}

/// A Druid ISO-8601 timestamp as epoch milliseconds (left as is if it does not parse).
pub fn druid_time(v: &Value) -> Value {
    v.as_str()
        .and_then(|s| basalt_engine::time::parse_iso_timestamp(s).ok())
        .map_or_else(|| v.clone(), Value::from)
}

/// The rows a peer sent (`{"columns": [..], "data": [[..], ..]}`), its `timestamp` column named
/// `__time` as in Basalt.
pub fn peer_rows(columns: &[String], data: &[Value]) -> anyhow::Result<Vec<Row>> {
    let names: Vec<&str> = columns
        .iter()
        .map(|c| if c == "timestamp" { "__time" } else { c })
        .collect();
    data.iter()
        .map(|r| {
            let values = r.as_array().context("a peer row is an array")?;
            Ok(names
                .iter()
                .zip(values)
                .map(|(c, v)| ((*c).to_owned(), v.clone()))
                .collect())
        })
        .collect()
}

/// `rows` as value lists in the order of `columns`; fails on a column the rows lack.
pub fn project(rows: &[Row], columns: &[String], who: &str) -> anyhow::Result<Vec<Vec<Value>>> {
    if let Some(first) = rows.first() {
        let missing: Vec<&String> = columns.iter().filter(|c| !first.contains_key(*c)).collect();
        if !missing.is_empty() {
            let have: Vec<&String> = first.keys().collect();
            bail!("{who}: no column(s) {missing:?} in the result (columns: {have:?})");
        }
    }
    Ok(rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| r.get(c).cloned().unwrap_or(Value::Null))
                .collect()
        })
        .collect())
}

/// How one peer's result compared with Basalt's.
#[derive(Debug, Clone, Serialize)]
pub struct Agreement {
    pub peer: String,
    pub basalt_rows: usize,
    pub peer_rows: usize,
    /// What was compared: `rows`, `values` or `column <name>`.
    pub compared: String,
    pub ok: bool,
    /// Rows (or values) that differ.
    pub differing: usize,
    /// A few differences, or why values could not be compared.
    pub notes: Vec<String>,
}

/// Compares Basalt's rows with a peer's. `peer_data` is `None` when the peer only sent a count.
pub fn agreement(
    check: &Check,
    columns: &[String],
    peer: &str,
    basalt: &[Row],
    peer_count: usize,
    peer_data: Option<&[Row]>,
) -> Agreement {
    let mut out = Agreement {
        peer: peer.to_owned(),
        basalt_rows: basalt.len(),
        peer_rows: peer_count,
        compared: "rows".to_owned(),
        ok: basalt.len() == peer_count,
        differing: 0,
        notes: Vec::new(),
    };
    if !out.ok {
        out.notes.push(format!(
            "row counts differ: Basalt {}, {peer} {peer_count}",
            basalt.len()
        ));
    }
    let (rel_tol, sort, columns): (f64, bool, Vec<String>) = match check {
        Check::Rows => return out,
        Check::Ordered { rel_tol } => (*rel_tol, false, columns.to_vec()),
        Check::Unordered { rel_tol } => (*rel_tol, true, columns.to_vec()),
        Check::Column { column } => (0.0, false, vec![column.clone()]),
    };
    let Some(peer_data) = peer_data else {
        out.notes.push(format!(
            "{peer} sent no rows (too many): values not compared"
        ));
        return out;
    };
    let projected = project(basalt, &columns, "Basalt")
        .and_then(|b| Ok((b, project(peer_data, &columns, peer)?)));
    let (mut ours, mut theirs) = match projected {
        Ok(p) => p,
        Err(e) => {
            out.ok = false;
            out.notes.push(format!("{e:#}"));
            return out;
        }
    };
    out.compared = match check {
        Check::Column { column } => format!("column {column}"),
        _ => "values".to_owned(),
    };
    if sort {
        ours.sort_by(|a, b| cmp_rows(a, b));
        theirs.sort_by(|a, b| cmp_rows(a, b));
    }
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        let same = a.iter().zip(b).all(|(x, y)| values_match(x, y, rel_tol));
        if !same {
            out.differing += 1;
            if out.notes.len() < MAX_EXAMPLES {
                out.notes.push(format!(
                    "row {i}: Basalt {} vs {peer} {} ({})",
                    Value::from(a.clone()),
                    Value::from(b.clone()),
                    columns.join(", ")
                ));
            }
        }
    }
    if ours.len() != theirs.len() {
        // Still worth knowing whether the common prefix agrees (e.g. a limit not applied).
        out.notes.push(format!(
            "the first {} rows compared: {}",
            ours.len().min(theirs.len()),
            if out.differing == 0 {
                "they agree"
            } else {
                "they differ"
            }
        ));
    }
    if out.differing > 0 {
        out.ok = false;
        out.notes
            .insert(0, format!("{} of the compared rows differ", out.differing));
    }
    out
}

/// Equal strings or nulls; numbers equal, or within `rel_tol` of the larger magnitude.
pub fn values_match(a: &Value, b: &Value, rel_tol: f64) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(i), Some(j)) = (x.as_i64(), y.as_i64())
                && i == j
            {
                return true;
            }
            let (Some(x), Some(y)) = (x.as_f64(), y.as_f64()) else {
                return false;
            };
            x == y || (x - y).abs() <= rel_tol * x.abs().max(y.abs())
        }
        _ => a == b,
    }
}

/// A total order on rows: null < bool < number < string < others, column by column.
fn cmp_rows(a: &[Value], b: &[Value]) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            _ => 4,
        }
    }
    for (x, y) in a.iter().zip(b) {
        let o = match (x, y) {
            (Value::Number(p), Value::Number(q)) => match (p.as_i64(), q.as_i64()) {
                (Some(i), Some(j)) => i.cmp(&j),
                _ => p
                    .as_f64()
                    .unwrap_or(f64::NAN)
                    .total_cmp(&q.as_f64().unwrap_or(f64::NAN)),
            },
            (Value::String(p), Value::String(q)) => p.cmp(q),
            (Value::Bool(p), Value::Bool(q)) => p.cmp(q),
            _ => rank(x)
                .cmp(&rank(y))
                .then_with(|| x.to_string().cmp(&y.to_string())),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cols(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn flattens_every_response_shape() -> anyhow::Result<()> {
        let ts = json!([
            {"timestamp": "2016-01-01T00:01:00.000Z", "result": {"m": 3}},
        ]);
        let rows = basalt_rows(&ts)?;
        assert_eq!(rows[0]["__time"], json!(1_451_606_460_000_i64));
        assert_eq!(rows[0]["m"], json!(3));

        let topn = json!([{"timestamp": "2016-01-01T00:00:00.000Z",
                           "result": [{"h": "a", "m": 2}, {"h": "b", "m": 1}]}]);
        assert_eq!(basalt_rows(&topn)?.len(), 2);

        let gb = json!([{"version": "v1", "timestamp": "2016-01-01T00:00:00.000Z",
                         "event": {"hostname": "h", "x": 1.5}}]);
        assert_eq!(basalt_rows(&gb)?[0]["x"], json!(1.5));

        let scan = json!([{"segmentId": "s", "columns": ["__time", "a"],
                           "events": [[1, "x"], [2, "y"]]}]);
        let rows = basalt_rows(&scan)?;
        assert_eq!(rows[1]["a"], json!("y"));
        Ok(())
    }

    #[test]
    fn compares_with_tolerance_and_order() -> anyhow::Result<()> {
        let columns = cols(&["__time", "v"]);
        let ours = basalt_rows(&json!([
            {"timestamp": "2016-01-01T00:00:00.000Z", "result": {"v": 1.0}},
            {"timestamp": "2016-01-01T00:01:00.000Z", "result": {"v": 2}},
        ]))?;
        let theirs = peer_rows(
            &cols(&["timestamp", "v"]),
            &[
                json!([1_451_606_460_000_i64, 2]),
                json!([1_451_606_400_000_i64, 1.000_000_000_1]),
            ],
        )?;
        let ordered = agreement(
            &Check::Ordered { rel_tol: 1e-9 },
            &columns,
            "duckdb",
            &ours,
            2,
            Some(&theirs),
        );
        assert!(!ordered.ok && ordered.differing == 2);
        let unordered = agreement(
            &Check::Unordered { rel_tol: 1e-9 },
            &columns,
            "duckdb",
            &ours,
            2,
            Some(&theirs),
        );
        assert!(unordered.ok, "{unordered:?}");
        let exact = agreement(
            &Check::Unordered { rel_tol: 0.0 },
            &columns,
            "duckdb",
            &ours,
            2,
            Some(&theirs),
        );
        assert!(!exact.ok);
        let counts = agreement(&Check::Rows, &columns, "duckdb", &ours, 3, None);
        assert!(!counts.ok && counts.notes[0].contains("row counts differ"));
        Ok(())
    }

    #[test]
    fn missing_columns_are_mismatches() -> anyhow::Result<()> {
        let ours = basalt_rows(&json!([{"timestamp": "2016-01-01T00:00:00Z", "result": {}}]))?;
        let theirs = peer_rows(&cols(&["v"]), &[json!([1])])?;
        let a = agreement(
            &Check::Ordered { rel_tol: 0.0 },
            &cols(&["v"]),
            "clickhouse",
            &ours,
            1,
            Some(&theirs),
        );
        assert!(!a.ok && a.notes[0].contains("no column"));
        Ok(())
    }
}
