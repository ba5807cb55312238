//! Binding: `sqlparser` expressions become [`Expr`]s over a scope's columns, with functions
//! resolved, literals and parameters typed, and unsupported constructs rejected with their
//! position.

use sqlparser::ast::{
    self, BinaryOperator, CeilFloorKind, DataType, DateTimeField, DuplicateTreatment, FunctionArg,
    FunctionArgExpr, FunctionArguments, InTarget, Spanned, UnaryOperator,
};

use crate::error::{Error, Result};
use crate::sql::SqlParameter;
use crate::sql::datum::{Datum, parse_sql_timestamp};
use crate::sql::expr::{AggCall, AggFunc, BinOp, Expr, Func, LikePattern, TimeFloorSpec};
use crate::table::SqlType;
use crate::time::Period;

/// The columns visible to an expression.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Column names.
    pub names: Vec<String>,
    /// Column types.
    pub types: Vec<SqlType>,
}

impl Scope {
    /// Resolve a column name: exact match first, then a unique case-insensitive match.
    pub fn resolve(&self, name: &str) -> Option<usize> {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return Some(i);
        }
        let mut found = self
            .names
            .iter()
            .enumerate()
            .filter(|(_, n)| n.eq_ignore_ascii_case(name));
        match (found.next(), found.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    }

    /// The time column, if the scope has one.
    pub fn time_col(&self) -> Option<usize> {
        self.names
            .iter()
            .position(|n| n == crate::schema::TIME_COLUMN)
    }
}

/// " at line L, column C" for a node with a known span.
pub fn position(span: sqlparser::tokenizer::Span) -> String {
    if span.start.line == 0 {
        String::new()
    } else {
        format!(" at line {}, column {}", span.start.line, span.start.column)
    }
}

/// An `Unsupported` error naming the construct and its position.
pub fn unsupported(what: &str, node: &impl Spanned) -> Error {
    Error::Unsupported(format!("{what} is not supported{}", position(node.span())))
}

/// Binds expressions for one statement.
#[derive(Debug)]
pub struct Binder<'a> {
    /// Dynamic parameter values, in order.
    pub params: &'a [SqlParameter],
    /// `CURRENT_TIMESTAMP`, fixed for the statement.
    pub now: i64,
    /// COUNT(DISTINCT) is approximate (Druid's `useApproximateCountDistinct`).
    pub approx_distinct: bool,
}

fn time_unit_period(unit: &str) -> Option<&'static str> {
    Some(match unit.to_ascii_uppercase().trim_end_matches('S') {
        "MILLISECOND" => "PT0.001S",
        "SECOND" => "PT1S",
        "MINUTE" => "PT1M",
        "HOUR" => "PT1H",
        "DAY" => "P1D",
        "WEEK" => "P1W",
        "MONTH" => "P1M",
        "QUARTER" => "P3M",
        "YEAR" => "P1Y",
        _ => return None,
    })
}

fn field_name(f: &DateTimeField) -> String {
    f.to_string().to_ascii_uppercase()
}

/// Map a SQL type name to a column type.
pub fn sql_type_of(dt: &DataType) -> Option<SqlType> {
    let s = dt.to_string().to_ascii_uppercase();
    let base = s.split('(').next().unwrap_or("").trim();
    Some(match base {
        "VARCHAR" | "CHAR" | "TEXT" | "STRING" | "CHARACTER VARYING" | "CHARACTER" => {
            SqlType::Varchar
        }
        "BIGINT" | "INT" | "INTEGER" | "SMALLINT" | "TINYINT" | "INT64" | "INT8" | "INT4" => {
            SqlType::Bigint
        }
        "DOUBLE" | "DOUBLE PRECISION" | "FLOAT" | "REAL" | "DECIMAL" | "NUMERIC" | "FLOAT8"
        | "FLOAT4" => SqlType::Double,
        "TIMESTAMP" | "DATE" | "DATETIME" => SqlType::Timestamp,
        "BOOLEAN" | "BOOL" => SqlType::Boolean,
        _ => return None,
    })
}

fn parameter_datum(p: &SqlParameter) -> Result<Datum> {
    use serde_json::Value;
    if p.value.is_null() {
        return Ok(Datum::Null);
    }
    let ty = p.type_name.to_ascii_uppercase();
    let bad = || {
        Error::invalid(format!(
            "parameter of type {} has an incompatible value {}",
            p.type_name, p.value
        ))
    };
    Ok(match ty.as_str() {
        "VARCHAR" | "CHAR" | "STRING" => match &p.value {
            Value::String(s) => Datum::Str(s.clone()),
            other => Datum::Str(other.to_string()),
        },
        "BIGINT" | "INTEGER" | "INT" | "SMALLINT" | "TINYINT" | "LONG" => Datum::Long(
            Datum::from_json(&p.value, SqlType::Bigint)
                .as_i64()
                .ok_or_else(bad)?,
        ),
        "DOUBLE" | "FLOAT" | "REAL" | "DECIMAL" => Datum::Double(
            Datum::from_json(&p.value, SqlType::Double)
                .as_f64()
                .ok_or_else(bad)?,
        ),
        "TIMESTAMP" | "DATE" => {
            let d = Datum::from_json(&p.value, SqlType::Timestamp);
            if d.is_null() {
                return Err(bad());
            }
            d
        }
        "BOOLEAN" => match &p.value {
            Value::Bool(b) => Datum::Bool(*b),
            _ => return Err(bad()),
        },
        other => {
            return Err(Error::invalid(format!(
                "parameter type `{other}` is not supported (VARCHAR, BIGINT, INTEGER, DOUBLE, FLOAT, TIMESTAMP, DATE, BOOLEAN)"
            )));
        }
    })
}

fn parse_interval(text: &str, unit: Option<&DateTimeField>) -> Option<Period> {
    let text = text.trim();
    let (num, unit_name) = match unit {
        Some(u) => (text.to_string(), field_name(u)),
        None => {
            let mut parts = text.split_whitespace();
            let n = parts.next()?.to_string();
            let u = parts.next()?.to_ascii_uppercase();
            (n, u)
        }
    };
    let n: i64 = num.parse().ok()?;
    let mut p = Period::default();
    match unit_name.trim_end_matches('S') {
        "YEAR" => p.years = n,
        "MONTH" => p.months = n,
        "WEEK" => p.weeks = n,
        "DAY" => p.days = n,
        "HOUR" => p.hours = n,
        "MINUTE" => p.minutes = n,
        "SECOND" => p.seconds = n,
        "MILLISECOND" => p.millis = n,
        _ => return None,
    }
    Some(p)
}

impl Binder<'_> {
    /// Bind an expression; `aggs` allows aggregate calls.
    pub fn bind(&self, e: &ast::Expr, scope: &Scope, aggs: bool) -> Result<Expr> {
        let b = |x: &ast::Expr| self.bind(x, scope, aggs);
        let bx = |x: &ast::Expr| -> Result<Box<Expr>> { Ok(Box::new(self.bind(x, scope, aggs)?)) };
        Ok(match e {
            ast::Expr::Identifier(id) => self.column(&id.value, scope, e)?,
            ast::Expr::CompoundIdentifier(parts) => {
                let last = parts.last().map(|p| p.value.clone()).unwrap_or_default();
                self.column(&last, scope, e)?
            }
            ast::Expr::Nested(x) => b(x)?,
            ast::Expr::Value(v) => self.value(&v.value, e)?,
            ast::Expr::TypedString(ts) => {
                let text = match &ts.value.value {
                    ast::Value::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                };
                match sql_type_of(&ts.data_type) {
                    Some(SqlType::Timestamp) => {
                        Expr::Lit(Datum::Ts(parse_sql_timestamp(&text).ok_or_else(|| {
                            Error::invalid(format!(
                                "invalid TIMESTAMP literal '{text}'{}",
                                position(e.span())
                            ))
                        })?))
                    }
                    Some(t) => Expr::Lit(Datum::Str(text).cast(t)),
                    None => return Err(unsupported(&format!("type {}", ts.data_type), e)),
                }
            }
            ast::Expr::Interval(iv) => {
                let text = match iv.value.as_ref() {
                    ast::Expr::Value(v) => match &v.value {
                        ast::Value::SingleQuotedString(s) => s.clone(),
                        ast::Value::Number(n, _) => n.clone(),
                        _ => String::new(),
                    },
                    _ => String::new(),
                };
                let p = parse_interval(&text, iv.leading_field.as_ref()).ok_or_else(|| {
                    Error::invalid(format!(
                        "unsupported INTERVAL literal `{e}`{} (use e.g. INTERVAL '1' DAY)",
                        position(e.span())
                    ))
                })?;
                Expr::Lit(Datum::Interval(p))
            }
            ast::Expr::UnaryOp { op, expr } => match op {
                UnaryOperator::Minus => match b(expr)? {
                    Expr::Lit(Datum::Long(v)) => Expr::Lit(Datum::Long(-v)),
                    Expr::Lit(Datum::Double(v)) => Expr::Lit(Datum::Double(-v)),
                    other => Expr::Neg(Box::new(other)),
                },
                UnaryOperator::Plus => b(expr)?,
                UnaryOperator::Not => Expr::Not(bx(expr)?),
                _ => return Err(unsupported(&format!("operator {op}"), e)),
            },
            ast::Expr::BinaryOp { left, op, right } => {
                let o = match op {
                    BinaryOperator::Plus => BinOp::Add,
                    BinaryOperator::Minus => BinOp::Sub,
                    BinaryOperator::Multiply => BinOp::Mul,
                    BinaryOperator::Divide => BinOp::Div,
                    BinaryOperator::Modulo => BinOp::Mod,
                    BinaryOperator::StringConcat => BinOp::Concat,
                    BinaryOperator::Gt => BinOp::Gt,
                    BinaryOperator::Lt => BinOp::Lt,
                    BinaryOperator::GtEq => BinOp::GtEq,
                    BinaryOperator::LtEq => BinOp::LtEq,
                    BinaryOperator::Eq => BinOp::Eq,
                    BinaryOperator::NotEq => BinOp::NotEq,
                    BinaryOperator::And => BinOp::And,
                    BinaryOperator::Or => BinOp::Or,
                    other => return Err(unsupported(&format!("operator {other}"), e)),
                };
                Expr::Bin(o, bx(left)?, bx(right)?)
            }
            ast::Expr::IsNull(x) => Expr::IsNull(bx(x)?, false),
            ast::Expr::IsNotNull(x) => Expr::IsNull(bx(x)?, true),
            ast::Expr::IsTrue(x) | ast::Expr::IsNotTrue(x) => {
                let t = Expr::Case(
                    vec![(b(x)?, Expr::Lit(Datum::Bool(true)))],
                    Some(Box::new(Expr::Lit(Datum::Bool(false)))),
                );
                if matches!(e, ast::Expr::IsTrue(_)) {
                    t
                } else {
                    Expr::Not(Box::new(t))
                }
            }
            ast::Expr::IsFalse(x) | ast::Expr::IsNotFalse(x) => {
                let t = Expr::Case(
                    vec![(Expr::Not(bx(x)?), Expr::Lit(Datum::Bool(true)))],
                    Some(Box::new(Expr::Lit(Datum::Bool(false)))),
                );
                if matches!(e, ast::Expr::IsFalse(_)) {
                    t
                } else {
                    Expr::Not(Box::new(t))
                }
            }
            ast::Expr::In {
                expr,
                target,
                negated,
                ..
            } => match target {
                InTarget::List(list) => Expr::InList(
                    bx(expr)?,
                    list.iter().map(b).collect::<Result<_>>()?,
                    *negated,
                ),
                _ => return Err(unsupported("IN with a subquery", e)),
            },
            ast::Expr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let x = b(expr)?;
                let r = Expr::Bin(
                    BinOp::And,
                    Box::new(Expr::Bin(BinOp::GtEq, Box::new(x.clone()), bx(low)?)),
                    Box::new(Expr::Bin(BinOp::LtEq, Box::new(x), bx(high)?)),
                );
                if *negated { Expr::Not(Box::new(r)) } else { r }
            }
            ast::Expr::Like {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            }
            | ast::Expr::ILike {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            } => {
                if *any {
                    return Err(unsupported("LIKE ANY", e));
                }
                let ci = matches!(e, ast::Expr::ILike { .. });
                let pat = match b(pattern)? {
                    Expr::Lit(Datum::Str(s)) => s,
                    _ => {
                        return Err(Error::invalid(format!(
                            "LIKE pattern must be a string literal{}",
                            position(pattern.span())
                        )));
                    }
                };
                let esc = match escape_char.as_deref().map(b).transpose()? {
                    None => None,
                    Some(Expr::Lit(Datum::Str(s))) if s.chars().count() == 1 => s.chars().next(),
                    Some(_) => {
                        return Err(Error::invalid(format!(
                            "LIKE ESCAPE must be one character{}",
                            position(e.span())
                        )));
                    }
                };
                let (arg, pat) = if ci {
                    (Expr::Call(Func::Lower, vec![b(expr)?]), pat.to_lowercase())
                } else {
                    (b(expr)?, pat)
                };
                Expr::Like(Box::new(arg), LikePattern::new(&pat, esc)?, *negated)
            }
            ast::Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let op = operand.as_deref().map(b).transpose()?;
                let mut whens = Vec::new();
                for w in conditions {
                    let c = b(&w.condition)?;
                    let c = match &op {
                        Some(o) => Expr::Bin(BinOp::Eq, Box::new(o.clone()), Box::new(c)),
                        None => c,
                    };
                    whens.push((c, b(&w.result)?));
                }
                Expr::Case(whens, else_result.as_deref().map(bx).transpose()?)
            }
            ast::Expr::Cast {
                expr, data_type, ..
            } => {
                let t = sql_type_of(data_type)
                    .ok_or_else(|| unsupported(&format!("CAST to {data_type}"), e))?;
                match b(expr)? {
                    Expr::Lit(d) => Expr::Lit(d.cast(t)),
                    x => Expr::Cast(Box::new(x), t),
                }
            }
            ast::Expr::Extract { field, expr, .. } => Expr::Call(
                Func::TimeExtract,
                vec![b(expr)?, Expr::Lit(Datum::Str(field_name(field)))],
            ),
            ast::Expr::Floor { expr, field } | ast::Expr::Ceil { expr, field } => {
                let floor = matches!(e, ast::Expr::Floor { .. });
                match field {
                    CeilFloorKind::DateTimeField(DateTimeField::NoDateTime) => {
                        Expr::Call(if floor { Func::Floor } else { Func::Ceil }, vec![b(expr)?])
                    }
                    CeilFloorKind::DateTimeField(f) => {
                        if !floor {
                            return Err(unsupported("CEIL(<timestamp> TO <unit>)", e));
                        }
                        let name = field_name(f);
                        let p = time_unit_period(&name).ok_or_else(|| {
                            Error::invalid(format!(
                                "FLOOR: unsupported time unit {name}{}",
                                position(e.span())
                            ))
                        })?;
                        Expr::TimeFloor(bx(expr)?, TimeFloorSpec::new(p, None, None)?)
                    }
                    CeilFloorKind::Scale(_) => {
                        return Err(unsupported("FLOOR/CEIL with a scale", e));
                    }
                }
            }
            ast::Expr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![b(expr)?];
                args.push(match substring_from {
                    Some(f) => b(f)?,
                    None => Expr::Lit(Datum::Long(1)),
                });
                if let Some(f) = substring_for {
                    args.push(b(f)?);
                }
                Expr::Call(Func::Substring, args)
            }
            ast::Expr::Trim {
                expr,
                trim_where,
                trim_what,
                trim_characters,
            } => {
                if trim_what.is_some() || trim_characters.is_some() {
                    return Err(unsupported("TRIM of characters other than spaces", e));
                }
                let f = match trim_where {
                    Some(ast::TrimWhereField::Leading) => Func::Ltrim,
                    Some(ast::TrimWhereField::Trailing) => Func::Rtrim,
                    _ => Func::Trim,
                };
                Expr::Call(f, vec![b(expr)?])
            }
            ast::Expr::Position { expr, r#in } => {
                Expr::Call(Func::Strpos, vec![b(r#in)?, b(expr)?])
            }
            ast::Expr::Function(f) => self.function(f, e, scope, aggs)?,
            ast::Expr::Subquery(_) | ast::Expr::Exists { .. } => {
                return Err(unsupported("a subquery expression", e));
            }
            other => {
                let text = other.to_string();
                let short: String = text.chars().take(40).collect();
                return Err(unsupported(&format!("expression `{short}`"), e));
            }
        })
    }

    fn column(&self, name: &str, scope: &Scope, node: &ast::Expr) -> Result<Expr> {
        match scope.resolve(name) {
            Some(i) => Ok(Expr::Col(i)),
            None => Err(Error::invalid(format!(
                "Column '{name}' not found in any table{} (available: {})",
                position(node.span()),
                scope.names.join(", ")
            ))),
        }
    }

    fn value(&self, v: &ast::Value, node: &ast::Expr) -> Result<Expr> {
        Ok(Expr::Lit(match v {
            ast::Value::Number(n, _) => match n.parse::<i64>() {
                Ok(i) => Datum::Long(i),
                Err(_) => Datum::Double(n.parse::<f64>().map_err(|_| {
                    Error::invalid(format!("invalid number {n}{}", position(node.span())))
                })?),
            },
            ast::Value::SingleQuotedString(s)
            | ast::Value::EscapedStringLiteral(s)
            | ast::Value::UnicodeStringLiteral(s) => Datum::Str(s.clone()),
            ast::Value::Boolean(b) => Datum::Bool(*b),
            ast::Value::Null => Datum::Null,
            ast::Value::Placeholder(p) => {
                let idx: usize = p.trim_start_matches(['?', '$']).parse().map_err(|_| {
                    Error::invalid(format!(
                        "unsupported placeholder `{p}`{}",
                        position(node.span())
                    ))
                })?;
                let param = idx
                    .checked_sub(1)
                    .and_then(|i| self.params.get(i))
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "no value for dynamic parameter #{idx}{} ({} given)",
                            position(node.span()),
                            self.params.len()
                        ))
                    })?;
                parameter_datum(param)?
            }
            other => return Err(unsupported(&format!("literal {other}"), node)),
        }))
    }

    fn function(
        &self,
        f: &ast::Function,
        node: &ast::Expr,
        scope: &Scope,
        aggs: bool,
    ) -> Result<Expr> {
        let name = f
            .name
            .0
            .last()
            .map(|p| p.to_string().trim_matches('"').to_ascii_uppercase())
            .unwrap_or_default();
        if f.over.is_some() {
            return Err(unsupported(
                &format!("window function {name}(...) OVER"),
                node,
            ));
        }
        let mut distinct = false;
        let mut star = false;
        let mut raw: Vec<&ast::Expr> = Vec::new();
        match &f.args {
            FunctionArguments::None => {}
            FunctionArguments::Subquery(_) => {
                return Err(unsupported("a subquery as a function argument", node));
            }
            FunctionArguments::List(list) => {
                distinct = matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct));
                for a in &list.args {
                    match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => raw.push(x),
                        FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => star = true,
                        _ => {
                            return Err(unsupported("named or qualified-wildcard arguments", node));
                        }
                    }
                }
            }
        }
        let arity = |lo: usize, hi: usize| -> Result<()> {
            if raw.len() < lo || raw.len() > hi {
                Err(Error::invalid(format!(
                    "{name} takes {} argument{}, found {}{}",
                    if lo == hi {
                        lo.to_string()
                    } else if hi == usize::MAX {
                        format!("at least {lo}")
                    } else {
                        format!("{lo} to {hi}")
                    },
                    if hi == 1 { "" } else { "s" },
                    raw.len(),
                    position(node.span())
                )))
            } else {
                Ok(())
            }
        };
        // Aggregates.
        let agg_func = match name.as_str() {
            "COUNT" if star => Some(AggFunc::CountStar),
            "COUNT" if distinct => Some(if self.approx_distinct {
                AggFunc::ApproxCountDistinct
            } else {
                AggFunc::CountDistinct
            }),
            "COUNT" => Some(AggFunc::Count),
            "SUM" => Some(AggFunc::Sum),
            "MIN" => Some(AggFunc::Min),
            "MAX" => Some(AggFunc::Max),
            "AVG" => Some(AggFunc::Avg),
            "APPROX_COUNT_DISTINCT"
            | "APPROX_COUNT_DISTINCT_DS_HLL"
            | "APPROX_COUNT_DISTINCT_BUILTIN" => Some(AggFunc::ApproxCountDistinct),
            "EARLIEST" => Some(AggFunc::Earliest),
            "LATEST" => Some(AggFunc::Latest),
            "APPROX_QUANTILE"
            | "APPROX_QUANTILE_DS"
            | "APPROX_QUANTILE_FIXED_BUCKETS"
            | "DS_QUANTILES_SKETCH" => {
                return Err(unsupported(
                    &format!("{name} (no quantile sketches in Basalt segments yet)"),
                    node,
                ));
            }
            _ => None,
        };
        if let Some(func) = agg_func {
            if !aggs {
                return Err(Error::invalid(format!(
                    "aggregate {name} is not allowed here{} (aggregates belong in SELECT, HAVING or ORDER BY of a grouped query)",
                    position(node.span())
                )));
            }
            if distinct && !matches!(name.as_str(), "COUNT") {
                return Err(unsupported(&format!("{name}(DISTINCT ...)"), node));
            }
            if func == AggFunc::CountStar {
                arity(0, 0)?;
            } else if matches!(func, AggFunc::Earliest | AggFunc::Latest) {
                arity(1, 2)?;
            } else {
                arity(1, 1)?;
            }
            let arg = match raw.first() {
                Some(x) if func != AggFunc::CountStar => Some(self.bind(x, scope, false)?),
                _ => None,
            };
            let filter = f
                .filter
                .as_deref()
                .map(|x| self.bind(x, scope, false))
                .transpose()?;
            let time_col = scope.time_col();
            if matches!(func, AggFunc::Earliest | AggFunc::Latest) && time_col.is_none() {
                return Err(Error::invalid(format!(
                    "{name} needs a __time column in its input{}",
                    position(node.span())
                )));
            }
            return Ok(Expr::Agg(Box::new(AggCall {
                func,
                arg,
                filter,
                time_col,
            })));
        }
        if f.filter.is_some() {
            return Err(Error::invalid(format!(
                "FILTER applies only to aggregates, not {name}{}",
                position(node.span())
            )));
        }
        let args: Vec<Expr> = raw
            .iter()
            .map(|x| self.bind(x, scope, aggs))
            .collect::<Result<_>>()?;
        let lit_str = |i: usize, what: &str| -> Result<Option<String>> {
            match args.get(i) {
                None | Some(Expr::Lit(Datum::Null)) => Ok(None),
                Some(Expr::Lit(d)) => Ok(d.as_string()),
                Some(_) => Err(Error::invalid(format!(
                    "{name}: the {what} must be a constant{}",
                    position(node.span())
                ))),
            }
        };
        let simple = |func: Func, lo: usize, hi: usize| -> Result<Expr> {
            arity(lo, hi)?;
            Ok(Expr::Call(func, args.clone()))
        };
        match name.as_str() {
            "CURRENT_TIMESTAMP" | "NOW" | "LOCALTIMESTAMP" => {
                arity(0, 0)?;
                Ok(Expr::Lit(Datum::Ts(self.now)))
            }
            "CURRENT_DATE" => {
                arity(0, 0)?;
                Ok(Expr::Lit(Datum::Ts(
                    self.now - self.now.rem_euclid(86_400_000),
                )))
            }
            "TIME_FLOOR" => {
                arity(2, 4)?;
                let period = lit_str(1, "period")?.ok_or_else(|| {
                    Error::invalid(format!(
                        "TIME_FLOOR: period must not be NULL{}",
                        position(node.span())
                    ))
                })?;
                let origin = match args.get(2) {
                    None | Some(Expr::Lit(Datum::Null)) => None,
                    Some(Expr::Lit(d)) => Some(d.as_ts().ok_or_else(|| {
                        Error::invalid(format!(
                            "TIME_FLOOR: invalid origin{}",
                            position(node.span())
                        ))
                    })?),
                    Some(_) => {
                        return Err(Error::invalid(format!(
                            "TIME_FLOOR: origin must be a constant{}",
                            position(node.span())
                        )));
                    }
                };
                let tz = lit_str(3, "time zone")?;
                let spec = TimeFloorSpec::new(&period, origin, tz.as_deref()).map_err(|e| {
                    Error::invalid(format!("TIME_FLOOR{}: {e}", position(node.span())))
                })?;
                Ok(Expr::TimeFloor(Box::new(args[0].clone()), spec))
            }
            "DATE_TRUNC" => {
                arity(2, 2)?;
                let unit = lit_str(0, "unit")?.unwrap_or_default();
                let p = time_unit_period(&unit).ok_or_else(|| {
                    Error::invalid(format!(
                        "DATE_TRUNC: unsupported unit '{unit}'{}",
                        position(node.span())
                    ))
                })?;
                Ok(Expr::TimeFloor(
                    Box::new(args[1].clone()),
                    TimeFloorSpec::new(p, None, None)?,
                ))
            }
            "TIME_EXTRACT" => {
                arity(1, 3)?;
                let mut a = vec![args[0].clone()];
                a.push(
                    args.get(1)
                        .cloned()
                        .unwrap_or(Expr::Lit(Datum::Str("MILLISECOND".into()))),
                );
                Ok(Expr::Call(Func::TimeExtract, a))
            }
            "LOWER" => simple(Func::Lower, 1, 1),
            "UPPER" => simple(Func::Upper, 1, 1),
            "CONCAT" => simple(Func::Concat, 1, usize::MAX),
            "SUBSTRING" | "SUBSTR" => simple(Func::Substring, 2, 3),
            "LENGTH" | "CHAR_LENGTH" | "CHARACTER_LENGTH" | "STRLEN" => simple(Func::Length, 1, 1),
            "TRIM" | "BTRIM" => simple(Func::Trim, 1, 1),
            "LTRIM" => simple(Func::Ltrim, 1, 1),
            "RTRIM" => simple(Func::Rtrim, 1, 1),
            "REPLACE" => simple(Func::Replace, 3, 3),
            "STRPOS" => simple(Func::Strpos, 2, 2),
            "LEFT" => simple(Func::Left, 2, 2),
            "RIGHT" => simple(Func::Right, 2, 2),
            "ABS" => simple(Func::Abs, 1, 1),
            "ROUND" => simple(Func::Round, 1, 2),
            "FLOOR" => simple(Func::Floor, 1, 1),
            "CEIL" | "CEILING" => simple(Func::Ceil, 1, 1),
            "POWER" | "POW" => simple(Func::Power, 2, 2),
            "SQRT" => simple(Func::Sqrt, 1, 1),
            "LN" => simple(Func::Ln, 1, 1),
            "LOG10" => simple(Func::Log10, 1, 1),
            "EXP" => simple(Func::Exp, 1, 1),
            "MOD" => simple(Func::Mod, 2, 2),
            "COALESCE" | "NVL" | "IFNULL" => simple(Func::Coalesce, 1, usize::MAX),
            "NULLIF" => simple(Func::NullIf, 2, 2),
            "GREATEST" => simple(Func::Greatest, 1, usize::MAX),
            "LEAST" => simple(Func::Least, 1, usize::MAX),
            "TIME_FORMAT" => {
                arity(1, 3)?;
                if let Some(tz) = lit_str(2, "time zone")?
                    && !tz.eq_ignore_ascii_case("UTC")
                {
                    return Err(unsupported(
                        "TIME_FORMAT with a time zone other than UTC",
                        node,
                    ));
                }
                Ok(Expr::Call(
                    Func::TimeFormat,
                    args.iter().take(2).cloned().collect(),
                ))
            }
            "TIME_PARSE" => {
                arity(1, 3)?;
                if let Some(tz) = lit_str(2, "time zone")?
                    && !tz.eq_ignore_ascii_case("UTC")
                {
                    return Err(unsupported(
                        "TIME_PARSE with a time zone other than UTC",
                        node,
                    ));
                }
                Ok(Expr::Call(
                    Func::TimeParse,
                    args.iter().take(2).cloned().collect(),
                ))
            }
            "MILLIS_TO_TIMESTAMP" => simple(Func::MillisToTimestamp, 1, 1),
            "TIMESTAMP_TO_MILLIS" => simple(Func::TimestampToMillis, 1, 1),
            "TIME_SHIFT" => {
                arity(3, 4)?;
                Ok(Expr::Call(
                    Func::TimeShift,
                    args.iter().take(3).cloned().collect(),
                ))
            }
            _ => Err(Error::invalid(format!(
                "unknown function {name}{}",
                position(node.span())
            ))),
        }
        .map(fold_constants)
    }
}

/// Evaluate calls whose arguments are all literals (so TIME_PARSE('…') can become an interval).
pub fn fold_constants(e: Expr) -> Expr {
    match &e {
        Expr::Call(_, args) if args.iter().all(|a| matches!(a, Expr::Lit(_))) => {
            match e.eval(&[]) {
                Ok(d) => Expr::Lit(d),
                Err(_) => e,
            }
        }
        _ => e,
    }
}
