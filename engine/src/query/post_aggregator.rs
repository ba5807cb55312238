//! Post-aggregators: computed from the finalized aggregates of one result row.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::query::aggregator::json_f64;
use crate::query::json::Obj;

/// One post-aggregator.
#[derive(Clone, Debug, PartialEq)]
pub enum PostAggregator {
    /// `arithmetic`: `fn` over `fields`.
    Arithmetic {
        /// Output name.
        name: String,
        /// `+`, `-`, `*`, `/` or `quotient`.
        op: String,
        /// Operands.
        fields: Vec<PostAggregator>,
    },
    /// `fieldAccess` / `finalizingFieldAccess` / `hyperUniqueCardinality`: an aggregate's value.
    Field {
        /// Output name.
        name: String,
        /// The aggregate (or earlier post-aggregate) read.
        field: String,
    },
    /// `constant`.
    Constant {
        /// Output name.
        name: String,
        /// The value.
        value: f64,
    },
    /// `doubleGreatest`, `longGreatest`, `doubleLeast`, `longLeast`.
    Extreme {
        /// Output name.
        name: String,
        /// Greatest (true) or least.
        greatest: bool,
        /// Long output (true) or double.
        long: bool,
        /// Operands.
        fields: Vec<PostAggregator>,
    },
}

impl PostAggregator {
    /// Parse one post-aggregator.
    pub fn parse(v: &Value, path: &str) -> Result<PostAggregator> {
        let o = Obj::new(v, path)?;
        let t = o.req_str("type")?;
        let name = || -> Result<String> { Ok(o.opt_str("name")?.unwrap_or("").to_string()) };
        let fields = || -> Result<Vec<PostAggregator>> {
            let a = o.req_array("fields")?;
            a.iter()
                .enumerate()
                .map(|(i, f)| PostAggregator::parse(f, &format!("{}[{i}]", o.child("fields"))))
                .collect()
        };
        Ok(match t {
            "arithmetic" => {
                o.check_known(&["type", "name", "fn", "fields", "ordering"])?;
                let op = o.req_str("fn")?;
                if !["+", "-", "*", "/", "quotient", "pow"].contains(&op) {
                    return Err(Error::invalid(format!(
                        "{}: unsupported function `{op}` (expected +, -, *, /, quotient, pow)",
                        o.child("fn")
                    )));
                }
                PostAggregator::Arithmetic {
                    name: name()?,
                    op: op.to_string(),
                    fields: fields()?,
                }
            }
            "fieldAccess" | "finalizingFieldAccess" | "hyperUniqueCardinality" => {
                o.check_known(&["type", "name", "fieldName"])?;
                PostAggregator::Field {
                    name: name()?,
                    field: o.req_str("fieldName")?.to_string(),
                }
            }
            "constant" => {
                o.check_known(&["type", "name", "value"])?;
                let value = o.get("value").and_then(Value::as_f64).ok_or_else(|| {
                    Error::invalid(format!("{}: expected a number", o.child("value")))
                })?;
                PostAggregator::Constant {
                    name: name()?,
                    value,
                }
            }
            "doubleGreatest" | "longGreatest" | "doubleLeast" | "longLeast" => {
                o.check_known(&["type", "name", "fields"])?;
                PostAggregator::Extreme {
                    name: name()?,
                    greatest: t.ends_with("Greatest"),
                    long: t.starts_with("long"),
                    fields: fields()?,
                }
            }
            other => {
                return Err(Error::invalid(format!(
                    "{}: unsupported post-aggregator type `{other}`",
                    o.child("type")
                )));
            }
        })
    }

    /// Parse a list; each needs a name.
    pub fn parse_list(v: Option<&Value>, path: &str) -> Result<Vec<PostAggregator>> {
        let Some(v) = v else {
            return Ok(Vec::new());
        };
        let arr = v
            .as_array()
            .ok_or_else(|| Error::invalid(format!("{path}: expected an array")))?;
        let mut out = Vec::with_capacity(arr.len());
        for (i, p) in arr.iter().enumerate() {
            let pa = PostAggregator::parse(p, &format!("{path}[{i}]"))?;
            if pa.name().is_empty() {
                return Err(Error::invalid(format!(
                    "{path}[{i}].name: required field is missing"
                )));
            }
            out.push(pa);
        }
        Ok(out)
    }

    /// Output name.
    pub fn name(&self) -> &str {
        match self {
            PostAggregator::Arithmetic { name, .. }
            | PostAggregator::Field { name, .. }
            | PostAggregator::Constant { name, .. }
            | PostAggregator::Extreme { name, .. } => name,
        }
    }

    /// Names of the fields this reads (for validation).
    pub fn inputs(&self, out: &mut Vec<String>) {
        match self {
            PostAggregator::Field { field, .. } => out.push(field.clone()),
            PostAggregator::Arithmetic { fields, .. } | PostAggregator::Extreme { fields, .. } => {
                fields.iter().for_each(|f| f.inputs(out))
            }
            PostAggregator::Constant { .. } => {}
        }
    }

    fn eval(&self, row: &Map<String, Value>) -> Option<f64> {
        match self {
            PostAggregator::Constant { value, .. } => Some(*value),
            PostAggregator::Field { field, .. } => row.get(field).and_then(Value::as_f64),
            PostAggregator::Arithmetic { op, fields, .. } => {
                let mut vals = Vec::with_capacity(fields.len());
                for f in fields {
                    vals.push(f.eval(row)?);
                }
                let mut it = vals.into_iter();
                let first = it.next()?;
                Some(it.fold(first, |acc, x| match op.as_str() {
                    "+" => acc + x,
                    "-" => acc - x,
                    "*" => acc * x,
                    // Druid's `/` yields 0 on division by zero; `quotient` divides plainly.
                    "/" => {
                        if x == 0.0 {
                            0.0
                        } else {
                            acc / x
                        }
                    }
                    "quotient" => acc / x,
                    "pow" => acc.powf(x),
                    _ => f64::NAN,
                }))
            }
            PostAggregator::Extreme {
                greatest, fields, ..
            } => {
                let vals = fields.iter().filter_map(|f| f.eval(row));
                if *greatest {
                    vals.fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.max(x))))
                } else {
                    vals.fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.min(x))))
                }
            }
        }
    }

    /// Compute and insert into a result row (later post-aggregators may read earlier ones).
    pub fn apply(list: &[PostAggregator], row: &mut Map<String, Value>) {
        for p in list {
            let v = p.eval(row);
            let json = match (p, v) {
                (_, None) => Value::Null,
                (PostAggregator::Extreme { long: true, .. }, Some(x)) => Value::from(x as i64),
                (PostAggregator::Field { field, .. }, Some(_)) => {
                    row.get(field).cloned().unwrap_or(Value::Null)
                }
                (_, Some(x)) => json_f64(x),
            };
            row.insert(p.name().to_string(), json);
        }
    }
}
