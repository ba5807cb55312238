//! Compare an engine response with the reference's expected response (see the markers in
//! [`super::reference`]).
//!
//! Numbers: an expected integer needs an integer equal to it; an expected plain double needs the
//! same double; `$float` allows a relative error of 1e-9 of the summed magnitude; `$approx`
//! allows 3% + 2. Everything else is exact, with one leniency that is counted and reported: a
//! grouping value Druid prints as a string (`"17"` for long dimension 17) may come back as the
//! number.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Map, Value};

/// How many times a long dimension value came back as a number instead of Druid's string.
pub static NUMERIC_STRING_LENIENCY: AtomicUsize = AtomicUsize::new(0);

/// Relative tolerance for sums of doubles.
pub const FLOAT_REL_TOL: f64 = 1e-9;
/// Relative tolerance for HLL estimates.
pub const HLL_REL_TOL: f64 = 0.03;
/// Absolute slack for HLL estimates.
pub const HLL_ABS_TOL: f64 = 2.0;

fn marker<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_object().and_then(|o| o.get(key))
}

/// Compare; `Err` names the JSON path of the first difference.
pub fn compare(expected: &Value, actual: &Value) -> Result<(), String> {
    cmp_at(expected, actual, "$")
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "double",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn cmp_at(e: &Value, a: &Value, path: &str) -> Result<(), String> {
    let mismatch = || Err(format!("at {path}: expected {e}, got {a}"));
    if let Some(o) = e.as_object() {
        if o.contains_key("$any") {
            return Ok(());
        }
        if let Some(x) = o.get("$float") {
            let x = x.as_f64().unwrap();
            let scale = o.get("scale").and_then(Value::as_f64).unwrap_or(0.0);
            return match a {
                Value::Number(n) if n.is_f64() => {
                    let y = n.as_f64().unwrap();
                    let tol = FLOAT_REL_TOL * x.abs().max(scale).max(1e-12);
                    if (x - y).abs() <= tol {
                        Ok(())
                    } else {
                        mismatch()
                    }
                }
                _ => Err(format!(
                    "at {path}: expected a double near {x}, got {} {a}",
                    type_name(a)
                )),
            };
        }
        if let Some(x) = o.get("$approx") {
            let x = x.as_f64().unwrap();
            let round = o.get("round").and_then(Value::as_bool).unwrap_or(false);
            let Some(y) = a.as_f64() else {
                return mismatch();
            };
            if round && !(a.is_i64() || a.is_u64()) {
                return Err(format!(
                    "at {path}: expected a rounded (integer) estimate near {x}, got {a}"
                ));
            }
            return if (x - y).abs() <= HLL_REL_TOL * x.abs() + HLL_ABS_TOL {
                Ok(())
            } else {
                mismatch()
            };
        }
        if let Some(alts) = o.get("$oneOf") {
            let alts = alts.as_array().unwrap();
            return if alts.iter().any(|alt| cmp_at(alt, a, path).is_ok()) {
                Ok(())
            } else {
                mismatch()
            };
        }
        if let Some(m) = o.get("$multiset") {
            return multiset(m, a, path);
        }
        if let Some(m) = o.get("$ranked") {
            return ranked(m, a, path);
        }
        if let Some(m) = o.get("$subset") {
            return subset(m, a, path);
        }
        if let Some(m) = o.get("$scan") {
            return scan(m, a, path);
        }
        if let Some(m) = o.get("$search") {
            // A bucket with no hits may be printed with an empty result or left out.
            let Some(arr) = a.as_array() else {
                return mismatch();
            };
            let kept: Vec<Value> = arr
                .iter()
                .filter(|b| {
                    b.get("result")
                        .and_then(Value::as_array)
                        .is_none_or(|r| !r.is_empty())
                })
                .cloned()
                .collect();
            return cmp_at(m, &Value::Array(kept), path);
        }
        if let Some(m) = o.get("$segmentMetadata") {
            return segment_metadata(m, a, path);
        }
    }
    match (e, a) {
        (Value::Object(eo), Value::Object(ao)) => {
            for (k, ev) in eo {
                match ao.get(k) {
                    Some(av) => cmp_at(ev, av, &format!("{path}.{k}"))?,
                    None if marker(ev, "$any").is_some() => {}
                    None => {
                        return Err(format!(
                            "at {path}: missing key `{k}` (expected {ev}); got {a}"
                        ));
                    }
                }
            }
            for k in ao.keys() {
                if !eo.contains_key(k) {
                    return Err(format!("at {path}: unexpected key `{k}`; got {a}"));
                }
            }
            Ok(())
        }
        (Value::Array(ea), Value::Array(aa)) => {
            if ea.len() != aa.len() {
                return Err(format!(
                    "at {path}: expected {} elements, got {}",
                    ea.len(),
                    aa.len()
                ));
            }
            for (i, (x, y)) in ea.iter().zip(aa).enumerate() {
                cmp_at(x, y, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (Value::Number(x), Value::Number(y)) => {
            let same = if x.is_f64() {
                y.is_f64() && x.as_f64() == y.as_f64()
            } else {
                !y.is_f64() && x.as_i128() == y.as_i128()
            };
            if same { Ok(()) } else { mismatch() }
        }
        (Value::String(s), Value::Number(n))
            if !n.is_f64() && s.parse::<i64>().ok() == n.as_i64() =>
        {
            NUMERIC_STRING_LENIENCY.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        _ if e == a => Ok(()),
        _ => mismatch(),
    }
}

fn ptr_key(v: &Value, ptrs: &[Value]) -> String {
    ptrs.iter()
        .map(|p| {
            v.pointer(p.as_str().unwrap())
                .map_or("<missing>".to_string(), canonical)
        })
        .collect::<Vec<_>>()
        .join("\u{1}")
}

/// A text form in which numbers that the leniencies treat as equal look alike.
fn canonical(v: &Value) -> String {
    match v {
        Value::Number(n) if !n.is_f64() => format!("\"{n}\""),
        other => other.to_string(),
    }
}

/// Match each actual row with a distinct expected row; `ids` narrow the candidates.
fn match_rows(
    expected: &[Value],
    actual: &[Value],
    ids: &[Value],
    path: &str,
) -> Result<(), String> {
    let mut by_id: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, e) in expected.iter().enumerate() {
        by_id.entry(ptr_key(e, ids)).or_default().push(i);
    }
    for (j, a) in actual.iter().enumerate() {
        let cands = by_id.get_mut(&ptr_key(a, ids));
        let Some(cands) = cands else {
            return Err(format!(
                "at {path}[{j}]: unexpected row {a} (no expected row has its identity)"
            ));
        };
        let mut last_err = String::new();
        let pos =
            cands.iter().position(
                |&i| match cmp_at(&expected[i], a, &format!("{path}[{j}]")) {
                    Ok(()) => true,
                    Err(e) => {
                        last_err = e;
                        false
                    }
                },
            );
        match pos {
            Some(p) => {
                cands.swap_remove(p);
            }
            None if cands.is_empty() => {
                return Err(format!(
                    "at {path}[{j}]: row {a} appears more often than expected"
                ));
            }
            None => {
                return Err(format!(
                    "at {path}[{j}]: row {a} matches no expected row: {last_err}"
                ));
            }
        }
    }
    Ok(())
}

fn multiset(m: &Value, a: &Value, path: &str) -> Result<(), String> {
    let rows = m["rows"].as_array().unwrap();
    let ids = m["ids"].as_array().unwrap();
    let Some(arr) = a.as_array() else {
        return Err(format!("at {path}: expected an array, got {a}"));
    };
    if arr.len() != rows.len() {
        return Err(format!(
            "at {path}: expected {} rows, got {}",
            rows.len(),
            arr.len()
        ));
    }
    match_rows(rows, arr, ids, path)
}

/// Rows sorted by `keys` then cut by offset/limit; ties make several answers right: each actual
/// row must exist in the full expected list, and the keys at each position must agree.
fn ranked(m: &Value, a: &Value, path: &str) -> Result<(), String> {
    let rows = m["rows"].as_array().unwrap();
    let keys = m["keys"].as_array().unwrap();
    let ids = m["ids"].as_array().unwrap();
    let offset = m["offset"].as_u64().unwrap() as usize;
    let limit = m["limit"]
        .as_u64()
        .unwrap_or(u64::MAX)
        .min(usize::MAX as u64) as usize;
    let Some(arr) = a.as_array() else {
        return Err(format!("at {path}: expected an array, got {a}"));
    };
    let want = rows.len().saturating_sub(offset).min(limit);
    if arr.len() != want {
        return Err(format!(
            "at {path}: expected {want} rows (of {} before offset {offset} / limit {limit}), got {}",
            rows.len(),
            arr.len()
        ));
    }
    for (i, row) in arr.iter().enumerate() {
        let exp = &rows[offset + i];
        for k in keys {
            let k = k.as_str().unwrap();
            let (Some(ev), Some(av)) = (exp.pointer(k), row.pointer(k)) else {
                return Err(format!("at {path}[{i}]: sort key {k} missing in {row}"));
            };
            cmp_at(ev, av, &format!("{path}[{i}] sort key {k}"))?;
        }
    }
    // Membership: ranked rows compare against all rows that share their identity.
    let mut by_id: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, e) in rows.iter().enumerate() {
        by_id.entry(ptr_key(e, ids)).or_default().push(i);
    }
    for (j, row) in arr.iter().enumerate() {
        let cands = by_id
            .get_mut(&ptr_key(row, ids))
            .ok_or_else(|| format!("at {path}[{j}]: unexpected row {row}"))?;
        let mut last_err = String::new();
        let pos =
            cands
                .iter()
                .position(|&i| match cmp_at(&rows[i], row, &format!("{path}[{j}]")) {
                    Ok(()) => true,
                    Err(e) => {
                        last_err = e;
                        false
                    }
                });
        match pos {
            Some(p) => {
                cands.swap_remove(p);
            }
            None => {
                return Err(format!(
                    "at {path}[{j}]: row {row} matches no expected row: {last_err}"
                ));
            }
        }
    }
    Ok(())
}

/// Any `count` rows of `rows` (a limit without an order).
fn subset(m: &Value, a: &Value, path: &str) -> Result<(), String> {
    let rows = m["rows"].as_array().unwrap();
    let count = m["count"].as_u64().unwrap() as usize;
    let ids = m["ids"].as_array().map(Vec::as_slice).unwrap_or_default();
    let Some(arr) = a.as_array() else {
        return Err(format!("at {path}: expected an array, got {a}"));
    };
    if arr.len() != count {
        return Err(format!(
            "at {path}: expected {count} rows, got {}",
            arr.len()
        ));
    }
    match_rows(rows, arr, ids, path)
}

/// Scan values: a one-element multi-value may print as a string, none as null.
fn normalize_scan_value(v: &Value) -> Value {
    match v {
        Value::Array(a) if a.is_empty() => Value::Null,
        Value::Array(a) if a.len() == 1 => a[0].clone(),
        other => other.clone(),
    }
}

fn scan(m: &Value, a: &Value, path: &str) -> Result<(), String> {
    let columns: Vec<String> = m["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let exact = m["columnsExact"].as_bool().unwrap();
    let compacted = m["compacted"].as_bool().unwrap();
    let Some(batches) = a.as_array() else {
        return Err(format!(
            "at {path}: expected an array of scan batches, got {a}"
        ));
    };
    let mut events = Vec::new();
    for (bi, b) in batches.iter().enumerate() {
        let bpath = format!("{path}[{bi}]");
        let Some(bcols) = b.get("columns").and_then(Value::as_array) else {
            return Err(format!("at {bpath}: batch without `columns`: {b}"));
        };
        let bcols: Vec<String> = bcols
            .iter()
            .map(|c| c.as_str().unwrap_or("?").to_string())
            .collect();
        if b.get("segmentId").is_none() {
            return Err(format!("at {bpath}: batch without `segmentId`"));
        }
        let same = if exact {
            bcols == columns
        } else {
            let mut x = bcols.clone();
            let mut y = columns.clone();
            x.sort();
            y.sort();
            x == y
        };
        if !same {
            return Err(format!(
                "at {bpath}.columns: expected {columns:?}, got {bcols:?}"
            ));
        }
        let Some(evs) = b.get("events").and_then(Value::as_array) else {
            return Err(format!("at {bpath}: batch without `events`"));
        };
        for (ei, ev) in evs.iter().enumerate() {
            let obj: Map<String, Value> = if compacted {
                let Some(vals) = ev.as_array() else {
                    return Err(format!(
                        "at {bpath}.events[{ei}]: compactedList event is not an array: {ev}"
                    ));
                };
                if vals.len() != bcols.len() {
                    return Err(format!(
                        "at {bpath}.events[{ei}]: {} values for {} columns",
                        vals.len(),
                        bcols.len()
                    ));
                }
                bcols
                    .iter()
                    .cloned()
                    .zip(vals.iter().map(normalize_scan_value))
                    .collect()
            } else {
                let Some(o) = ev.as_object() else {
                    return Err(format!(
                        "at {bpath}.events[{ei}]: list event is not an object: {ev}"
                    ));
                };
                o.iter()
                    .map(|(k, v)| (k.clone(), normalize_scan_value(v)))
                    .collect()
            };
            events.push(Value::Object(obj));
        }
    }
    // Expected events with unchecked columns dropped on both sides.
    let strip = |v: &Value, drop: &[String]| -> Value {
        let mut o = v.as_object().unwrap().clone();
        for d in drop {
            o.remove(d);
        }
        Value::Object(o)
    };
    let spec = &m["events"];
    let (kind, inner) = spec.as_object().unwrap().iter().next().unwrap();
    let rows = inner["rows"].as_array().unwrap();
    let drop: Vec<String> = rows
        .first()
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter(|(_, v)| marker(v, "$any").is_some())
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    let rows: Vec<Value> = rows.iter().map(|r| strip(r, &drop)).collect();
    let events: Vec<Value> = events.iter().map(|r| strip(r, &drop)).collect();
    let mut inner = inner.clone();
    inner["rows"] = Value::Array(rows);
    let mut wrapped = Map::new();
    wrapped.insert(kind.clone(), inner);
    cmp_at(
        &Value::Object(wrapped),
        &Value::Array(events),
        &format!("{path} (events)"),
    )
}

fn segment_metadata(m: &Value, a: &Value, path: &str) -> Result<(), String> {
    let merge = m["merge"].as_bool().unwrap();
    let segs = m["segments"].as_array().unwrap();
    let Some(arr) = a.as_array() else {
        return Err(format!("at {path}: expected an array, got {a}"));
    };
    if arr.len() != segs.len() {
        return Err(format!(
            "at {path}: expected {} analyses, got {}: {a}",
            segs.len(),
            arr.len()
        ));
    }
    if merge {
        for (e, x) in segs.iter().zip(arr) {
            cmp_at(
                &e["numRows"],
                x.get("numRows").unwrap_or(&Value::Null),
                &format!("{path}[0].numRows"),
            )?;
        }
        return Ok(());
    }
    let mut want: HashMap<String, Value> = segs
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_string(), s["numRows"].clone()))
        .collect();
    for (i, x) in arr.iter().enumerate() {
        let id = x.get("id").and_then(Value::as_str).unwrap_or("?");
        let Some(n) = want.remove(id) else {
            return Err(format!(
                "at {path}[{i}]: unexpected or repeated segment id {id}"
            ));
        };
        cmp_at(
            &n,
            x.get("numRows").unwrap_or(&Value::Null),
            &format!("{path}[{i}].numRows"),
        )?;
    }
    Ok(())
}
