//! Bound scalar and aggregate expressions of the relational layer, their static types and their
//! evaluation over one row with SQL three-valued logic.

use std::cmp::Ordering;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::query::granularity::QueryGranularity;
use crate::sql::datum::{Datum, compare, format_sql_timestamp};
use crate::table::SqlType;
use crate::time::{Period, format_iso_millis};

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `=`
    Eq,
    /// `<>`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `AND`
    And,
    /// `OR`
    Or,
    /// `||`
    Concat,
}

impl BinOp {
    /// Whether this is a comparison.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::NotEq | BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq
        )
    }

    /// The comparison with its operands swapped (`a < b` ⇔ `b > a`).
    pub fn flip(self) -> BinOp {
        match self {
            BinOp::Lt => BinOp::Gt,
            BinOp::LtEq => BinOp::GtEq,
            BinOp::Gt => BinOp::Lt,
            BinOp::GtEq => BinOp::LtEq,
            other => other,
        }
    }
}

/// Scalar functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// LOWER(s)
    Lower,
    /// UPPER(s)
    Upper,
    /// CONCAT(a, b, ...)
    Concat,
    /// SUBSTRING(s, start[, len])
    Substring,
    /// LENGTH(s)
    Length,
    /// TRIM(s)
    Trim,
    /// LTRIM(s)
    Ltrim,
    /// RTRIM(s)
    Rtrim,
    /// REPLACE(s, from, to)
    Replace,
    /// STRPOS(s, needle)
    Strpos,
    /// LEFT(s, n)
    Left,
    /// RIGHT(s, n)
    Right,
    /// ABS(x)
    Abs,
    /// ROUND(x[, digits])
    Round,
    /// FLOOR(x)
    Floor,
    /// CEIL(x)
    Ceil,
    /// POWER(x, y)
    Power,
    /// SQRT(x)
    Sqrt,
    /// LN(x)
    Ln,
    /// LOG10(x)
    Log10,
    /// EXP(x)
    Exp,
    /// MOD(x, y)
    Mod,
    /// COALESCE(a, b, ...)
    Coalesce,
    /// NULLIF(a, b)
    NullIf,
    /// GREATEST(a, ...)
    Greatest,
    /// LEAST(a, ...)
    Least,
    /// TIME_FORMAT(t[, pattern[, tz]])
    TimeFormat,
    /// TIME_PARSE(s[, pattern[, tz]])
    TimeParse,
    /// MILLIS_TO_TIMESTAMP(ms)
    MillisToTimestamp,
    /// TIMESTAMP_TO_MILLIS(t)
    TimestampToMillis,
    /// TIME_SHIFT(t, period, step[, tz])
    TimeShift,
    /// TIME_EXTRACT(t, unit) / EXTRACT(unit FROM t)
    TimeExtract,
}

/// Aggregate functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    /// COUNT(*)
    CountStar,
    /// COUNT(x): non-null values.
    Count,
    /// SUM(x)
    Sum,
    /// MIN(x)
    Min,
    /// MAX(x)
    Max,
    /// AVG(x)
    Avg,
    /// COUNT(DISTINCT x) exact.
    CountDistinct,
    /// APPROX_COUNT_DISTINCT(x) / COUNT(DISTINCT x) by default: HLL when native.
    ApproxCountDistinct,
    /// EARLIEST(x): the value at the smallest `__time`.
    Earliest,
    /// LATEST(x): the value at the largest `__time`.
    Latest,
}

impl AggFunc {
    /// SQL name.
    pub fn name(self) -> &'static str {
        match self {
            AggFunc::CountStar | AggFunc::Count => "COUNT",
            AggFunc::Sum => "SUM",
            AggFunc::Min => "MIN",
            AggFunc::Max => "MAX",
            AggFunc::Avg => "AVG",
            AggFunc::CountDistinct => "COUNT(DISTINCT)",
            AggFunc::ApproxCountDistinct => "APPROX_COUNT_DISTINCT",
            AggFunc::Earliest => "EARLIEST",
            AggFunc::Latest => "LATEST",
        }
    }
}

/// One aggregate call.
#[derive(Debug, Clone, PartialEq)]
pub struct AggCall {
    /// The function.
    pub func: AggFunc,
    /// Its argument (none for COUNT(*)).
    pub arg: Option<Expr>,
    /// `FILTER (WHERE ...)`.
    pub filter: Option<Expr>,
    /// For EARLIEST/LATEST: the input column holding `__time`.
    pub time_col: Option<usize>,
}

impl AggCall {
    /// Result type given the input column types.
    pub fn ty(&self, input: &[SqlType]) -> SqlType {
        let arg_ty = self
            .arg
            .as_ref()
            .map(|a| a.ty(input))
            .unwrap_or(SqlType::Bigint);
        match self.func {
            AggFunc::CountStar
            | AggFunc::Count
            | AggFunc::CountDistinct
            | AggFunc::ApproxCountDistinct => SqlType::Bigint,
            AggFunc::Avg => SqlType::Double,
            AggFunc::Sum => match arg_ty {
                SqlType::Bigint | SqlType::Boolean | SqlType::Timestamp => SqlType::Bigint,
                _ => SqlType::Double,
            },
            AggFunc::Min | AggFunc::Max | AggFunc::Earliest | AggFunc::Latest => arg_ty,
        }
    }
}

/// A precompiled time floor (TIME_FLOOR / FLOOR(t TO unit) / DATE_TRUNC).
#[derive(Debug, Clone)]
pub struct TimeFloorSpec {
    /// Druid's granularity JSON (`{"type":"period",...}`).
    pub json: Value,
    /// The parsed granularity.
    pub gran: Arc<QueryGranularity>,
}

impl PartialEq for TimeFloorSpec {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json
    }
}

impl TimeFloorSpec {
    /// Build from a period, an optional origin and an optional time zone.
    pub fn new(period: &str, origin: Option<i64>, tz: Option<&str>) -> Result<TimeFloorSpec> {
        let mut json = json!({"type": "period", "period": period});
        if let Some(o) = origin {
            json["origin"] = Value::String(format_iso_millis(o));
        }
        if let Some(tz) = tz {
            json["timeZone"] = Value::String(tz.to_string());
        }
        let gran = QueryGranularity::parse(&json, "TIME_FLOOR")?;
        Ok(TimeFloorSpec {
            json,
            gran: Arc::new(gran),
        })
    }
}

/// A compiled LIKE pattern.
#[derive(Debug, Clone)]
pub struct LikePattern {
    /// The SQL pattern.
    pub pattern: String,
    /// Its escape character.
    pub escape: Option<char>,
    re: Arc<regex::Regex>,
}

impl PartialEq for LikePattern {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern && self.escape == other.escape
    }
}

impl LikePattern {
    /// Compile a LIKE pattern (`%` any run, `_` one character).
    pub fn new(pattern: &str, escape: Option<char>) -> Result<LikePattern> {
        let mut re = String::from("(?s)^");
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            if Some(c) == escape {
                match chars.next() {
                    Some(n) => re.push_str(&regex::escape(&n.to_string())),
                    None => {
                        return Err(Error::invalid(format!(
                            "LIKE pattern `{pattern}` ends with its escape character"
                        )));
                    }
                }
            } else if c == '%' {
                re.push_str(".*");
            } else if c == '_' {
                re.push('.');
            } else {
                re.push_str(&regex::escape(&c.to_string()));
            }
        }
        re.push('$');
        let re = regex::Regex::new(&re)
            .map_err(|e| Error::invalid(format!("LIKE pattern `{pattern}`: {e}")))?;
        Ok(LikePattern {
            pattern: pattern.to_string(),
            escape,
            re: Arc::new(re),
        })
    }

    /// Whether `s` matches.
    pub fn matches(&self, s: &str) -> bool {
        self.re.is_match(s)
    }
}

/// A bound expression: column references are indexes into the input row.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Input column `i`.
    Col(usize),
    /// A constant.
    Lit(Datum),
    /// `-x`
    Neg(Box<Expr>),
    /// `NOT x`
    Not(Box<Expr>),
    /// `a op b`
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// `x IS [NOT] NULL`
    IsNull(Box<Expr>, bool),
    /// `x [NOT] IN (list)`
    InList(Box<Expr>, Vec<Expr>, bool),
    /// `x [NOT] LIKE pattern`
    Like(Box<Expr>, LikePattern, bool),
    /// `CASE WHEN c THEN r ... ELSE e END`
    Case(Vec<(Expr, Expr)>, Option<Box<Expr>>),
    /// `CAST(x AS ty)`
    Cast(Box<Expr>, SqlType),
    /// Time floor of a timestamp.
    TimeFloor(Box<Expr>, TimeFloorSpec),
    /// A scalar function call.
    Call(Func, Vec<Expr>),
    /// An aggregate (replaced by a column reference before evaluation).
    Agg(Box<AggCall>),
}

impl Expr {
    /// The column index when the expression is a plain column reference.
    pub fn as_col(&self) -> Option<usize> {
        match self {
            Expr::Col(c) => Some(*c),
            _ => None,
        }
    }

    /// A literal.
    pub fn lit(d: Datum) -> Expr {
        Expr::Lit(d)
    }

    /// Static result type.
    pub fn ty(&self, input: &[SqlType]) -> SqlType {
        match self {
            Expr::Col(i) => input.get(*i).copied().unwrap_or(SqlType::Varchar),
            Expr::Lit(d) => match d {
                Datum::Null | Datum::Str(_) | Datum::Interval(_) => SqlType::Varchar,
                Datum::Bool(_) => SqlType::Boolean,
                Datum::Long(_) => SqlType::Bigint,
                Datum::Double(_) => SqlType::Double,
                Datum::Ts(_) => SqlType::Timestamp,
            },
            Expr::Neg(e) => e.ty(input),
            Expr::Not(_) | Expr::IsNull(..) | Expr::InList(..) | Expr::Like(..) => SqlType::Boolean,
            Expr::Bin(op, a, b) => {
                if op.is_comparison() || matches!(op, BinOp::And | BinOp::Or) {
                    return SqlType::Boolean;
                }
                if *op == BinOp::Concat {
                    return SqlType::Varchar;
                }
                let (ta, tb) = (a.ty(input), b.ty(input));
                if ta == SqlType::Timestamp || tb == SqlType::Timestamp {
                    if matches!(op, BinOp::Sub)
                        && ta == SqlType::Timestamp
                        && tb == SqlType::Timestamp
                    {
                        return SqlType::Bigint;
                    }
                    return SqlType::Timestamp;
                }
                if ta == SqlType::Double
                    || tb == SqlType::Double
                    || ta == SqlType::Varchar
                    || tb == SqlType::Varchar
                {
                    SqlType::Double
                } else {
                    SqlType::Bigint
                }
            }
            Expr::Case(whens, els) => unify(
                whens
                    .iter()
                    .map(|(_, r)| r)
                    .chain(els.iter().map(|b| b.as_ref())),
                input,
            ),
            Expr::Cast(_, t) => *t,
            Expr::TimeFloor(..) => SqlType::Timestamp,
            Expr::Agg(a) => a.ty(input),
            Expr::Call(f, args) => {
                let arg0 = || {
                    args.first()
                        .map(|a| a.ty(input))
                        .unwrap_or(SqlType::Varchar)
                };
                match f {
                    Func::Lower
                    | Func::Upper
                    | Func::Concat
                    | Func::Substring
                    | Func::Trim
                    | Func::Ltrim
                    | Func::Rtrim
                    | Func::Replace
                    | Func::Left
                    | Func::Right
                    | Func::TimeFormat => SqlType::Varchar,
                    Func::Length | Func::Strpos | Func::TimestampToMillis | Func::TimeExtract => {
                        SqlType::Bigint
                    }
                    Func::Abs | Func::Floor | Func::Ceil | Func::Round => match arg0() {
                        SqlType::Bigint => SqlType::Bigint,
                        _ => SqlType::Double,
                    },
                    Func::Mod => match (arg0(), args.get(1).map(|a| a.ty(input))) {
                        (SqlType::Bigint, Some(SqlType::Bigint)) => SqlType::Bigint,
                        _ => SqlType::Double,
                    },
                    Func::Power | Func::Sqrt | Func::Ln | Func::Log10 | Func::Exp => {
                        SqlType::Double
                    }
                    Func::Coalesce | Func::Greatest | Func::Least => unify(args.iter(), input),
                    Func::NullIf => arg0(),
                    Func::TimeParse | Func::MillisToTimestamp | Func::TimeShift => {
                        SqlType::Timestamp
                    }
                }
            }
        }
    }

    /// Visit every sub-expression (pre-order).
    pub fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Col(_) | Expr::Lit(_) => {}
            Expr::Neg(e) | Expr::Not(e) | Expr::IsNull(e, _) | Expr::Cast(e, _) => e.walk(f),
            Expr::Like(e, ..) | Expr::TimeFloor(e, _) => e.walk(f),
            Expr::Bin(_, a, b) => {
                a.walk(f);
                b.walk(f);
            }
            Expr::InList(e, l, _) => {
                e.walk(f);
                l.iter().for_each(|x| x.walk(f));
            }
            Expr::Case(w, e) => {
                for (c, r) in w {
                    c.walk(f);
                    r.walk(f);
                }
                if let Some(e) = e {
                    e.walk(f);
                }
            }
            Expr::Call(_, args) => args.iter().for_each(|x| x.walk(f)),
            Expr::Agg(a) => {
                if let Some(x) = &a.arg {
                    x.walk(f);
                }
                if let Some(x) = &a.filter {
                    x.walk(f);
                }
            }
        }
    }

    /// Whether the expression contains an aggregate.
    pub fn has_agg(&self) -> bool {
        let mut found = false;
        self.walk(&mut |e| found |= matches!(e, Expr::Agg(_)));
        found
    }

    /// Input columns referenced.
    pub fn columns(&self, out: &mut Vec<usize>) {
        self.walk(&mut |e| {
            if let Expr::Col(i) = e
                && !out.contains(i)
            {
                out.push(*i);
            }
        });
    }

    /// Rewrite bottom-up-first: `f` may replace a node (returning `Some`), else children are
    /// rewritten.
    pub fn rewrite(&self, f: &mut dyn FnMut(&Expr) -> Result<Option<Expr>>) -> Result<Expr> {
        if let Some(r) = f(self)? {
            return Ok(r);
        }
        let b = |e: &Expr, f: &mut dyn FnMut(&Expr) -> Result<Option<Expr>>| -> Result<Box<Expr>> {
            Ok(Box::new(e.rewrite(f)?))
        };
        Ok(match self {
            Expr::Col(_) | Expr::Lit(_) | Expr::Agg(_) => self.clone(),
            Expr::Neg(e) => Expr::Neg(b(e, f)?),
            Expr::Not(e) => Expr::Not(b(e, f)?),
            Expr::IsNull(e, n) => Expr::IsNull(b(e, f)?, *n),
            Expr::Cast(e, t) => Expr::Cast(b(e, f)?, *t),
            Expr::Like(e, p, n) => Expr::Like(b(e, f)?, p.clone(), *n),
            Expr::TimeFloor(e, s) => Expr::TimeFloor(b(e, f)?, s.clone()),
            Expr::Bin(op, x, y) => Expr::Bin(*op, b(x, f)?, b(y, f)?),
            Expr::InList(e, l, n) => Expr::InList(
                b(e, f)?,
                l.iter().map(|x| x.rewrite(f)).collect::<Result<_>>()?,
                *n,
            ),
            Expr::Case(w, e) => Expr::Case(
                w.iter()
                    .map(|(c, r)| Ok((c.rewrite(f)?, r.rewrite(f)?)))
                    .collect::<Result<_>>()?,
                match e {
                    Some(e) => Some(b(e, f)?),
                    None => None,
                },
            ),
            Expr::Call(func, args) => Expr::Call(
                *func,
                args.iter().map(|x| x.rewrite(f)).collect::<Result<_>>()?,
            ),
        })
    }

    /// Evaluate over one row.
    pub fn eval(&self, row: &[Datum]) -> Result<Datum> {
        Ok(match self {
            Expr::Col(i) => row.get(*i).cloned().ok_or_else(|| {
                Error::internal(format!("column #{i} out of range ({} columns)", row.len()))
            })?,
            Expr::Lit(d) => d.clone(),
            Expr::Neg(e) => match e.eval(row)? {
                Datum::Long(v) => Datum::Long(v.wrapping_neg()),
                Datum::Null => Datum::Null,
                other => other
                    .as_f64()
                    .map(|f| Datum::Double(-f))
                    .unwrap_or(Datum::Null),
            },
            Expr::Not(e) => match e.eval(row)?.truth() {
                Some(b) => Datum::Bool(!b),
                None => Datum::Null,
            },
            Expr::Bin(BinOp::And, a, b) => {
                let x = a.eval(row)?.truth();
                if x == Some(false) {
                    return Ok(Datum::Bool(false));
                }
                match (x, b.eval(row)?.truth()) {
                    (_, Some(false)) => Datum::Bool(false),
                    (Some(true), Some(true)) => Datum::Bool(true),
                    _ => Datum::Null,
                }
            }
            Expr::Bin(BinOp::Or, a, b) => {
                let x = a.eval(row)?.truth();
                if x == Some(true) {
                    return Ok(Datum::Bool(true));
                }
                match (x, b.eval(row)?.truth()) {
                    (_, Some(true)) => Datum::Bool(true),
                    (Some(false), Some(false)) => Datum::Bool(false),
                    _ => Datum::Null,
                }
            }
            Expr::Bin(op, a, b) => binary(*op, &a.eval(row)?, &b.eval(row)?)?,
            Expr::IsNull(e, negated) => Datum::Bool(e.eval(row)?.is_null() != *negated),
            Expr::InList(e, list, negated) => {
                let v = e.eval(row)?;
                if v.is_null() {
                    return Ok(Datum::Null);
                }
                let mut saw_null = false;
                for item in list {
                    let x = item.eval(row)?;
                    match compare(&v, &x) {
                        Some(Ordering::Equal) => return Ok(Datum::Bool(!negated)),
                        None => saw_null = true,
                        _ => {}
                    }
                }
                if saw_null {
                    Datum::Null
                } else {
                    Datum::Bool(*negated)
                }
            }
            Expr::Like(e, p, negated) => match e.eval(row)?.as_string() {
                None => Datum::Null,
                Some(s) => Datum::Bool(p.matches(&s) != *negated),
            },
            Expr::Case(whens, els) => {
                for (c, r) in whens {
                    if c.eval(row)?.truth() == Some(true) {
                        return r.eval(row);
                    }
                }
                match els {
                    Some(e) => e.eval(row)?,
                    None => Datum::Null,
                }
            }
            Expr::Cast(e, t) => e.eval(row)?.cast(*t),
            Expr::TimeFloor(e, spec) => match e.eval(row)?.as_ts() {
                None => Datum::Null,
                Some(t) => Datum::Ts(spec.gran.bucket_start(t)),
            },
            Expr::Call(f, args) => {
                let vals = args
                    .iter()
                    .map(|a| a.eval(row))
                    .collect::<Result<Vec<_>>>()?;
                call(*f, &vals)?
            }
            Expr::Agg(a) => {
                return Err(Error::internal(format!(
                    "aggregate {} evaluated as a scalar",
                    a.func.name()
                )));
            }
        })
    }
}

/// The common type of several expressions (NULL literals ignored; BIGINT and DOUBLE → DOUBLE).
fn unify<'a>(exprs: impl Iterator<Item = &'a Expr>, input: &[SqlType]) -> SqlType {
    let mut out: Option<SqlType> = None;
    for e in exprs {
        if matches!(e, Expr::Lit(Datum::Null)) {
            continue;
        }
        let t = e.ty(input);
        out = Some(match out {
            None => t,
            Some(prev) if prev == t => prev,
            Some(SqlType::Bigint) if t == SqlType::Double => SqlType::Double,
            Some(SqlType::Double) if t == SqlType::Bigint => SqlType::Double,
            Some(prev) => prev,
        });
    }
    out.unwrap_or(SqlType::Varchar)
}

fn binary(op: BinOp, a: &Datum, b: &Datum) -> Result<Datum> {
    if a.is_null() || b.is_null() {
        return Ok(Datum::Null);
    }
    if op.is_comparison() {
        let Some(o) = compare(a, b) else {
            return Ok(Datum::Null);
        };
        return Ok(Datum::Bool(match op {
            BinOp::Eq => o == Ordering::Equal,
            BinOp::NotEq => o != Ordering::Equal,
            BinOp::Lt => o == Ordering::Less,
            BinOp::LtEq => o != Ordering::Greater,
            BinOp::Gt => o == Ordering::Greater,
            _ => o != Ordering::Less,
        }));
    }
    if op == BinOp::Concat {
        return Ok(match (a.as_string(), b.as_string()) {
            (Some(x), Some(y)) => Datum::Str(x + &y),
            _ => Datum::Null,
        });
    }
    // Timestamp arithmetic.
    match (op, a, b) {
        (BinOp::Add, Datum::Ts(t), Datum::Interval(p))
        | (BinOp::Add, Datum::Interval(p), Datum::Ts(t)) => return Ok(Datum::Ts(p.add_to(*t)?)),
        (BinOp::Sub, Datum::Ts(t), Datum::Interval(p)) => {
            return Ok(Datum::Ts(p.subtract_from(*t)?));
        }
        (BinOp::Sub, Datum::Ts(x), Datum::Ts(y)) => return Ok(Datum::Long(x.wrapping_sub(*y))),
        (BinOp::Add | BinOp::Sub, Datum::Ts(t), other) => {
            let Some(ms) = other.as_i64() else {
                return Ok(Datum::Null);
            };
            return Ok(Datum::Ts(if op == BinOp::Add {
                t.wrapping_add(ms)
            } else {
                t.wrapping_sub(ms)
            }));
        }
        _ => {}
    }
    let both_long = matches!(
        (a, b),
        (
            Datum::Long(_) | Datum::Bool(_),
            Datum::Long(_) | Datum::Bool(_)
        )
    );
    if both_long {
        let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) else {
            return Ok(Datum::Null);
        };
        return Ok(match op {
            BinOp::Add => Datum::Long(x.wrapping_add(y)),
            BinOp::Sub => Datum::Long(x.wrapping_sub(y)),
            BinOp::Mul => Datum::Long(x.wrapping_mul(y)),
            BinOp::Div => {
                if y == 0 {
                    return Err(Error::invalid("division by zero (BIGINT / 0)".to_string()));
                }
                Datum::Long(x.wrapping_div(y))
            }
            _ => {
                if y == 0 {
                    return Err(Error::invalid("division by zero (BIGINT % 0)".to_string()));
                }
                Datum::Long(x.wrapping_rem(y))
            }
        });
    }
    let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
        return Ok(Datum::Null);
    };
    Ok(Datum::Double(match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => x / y,
        _ => x % y,
    }))
}

fn str_arg(v: &[Datum], i: usize) -> Option<String> {
    v.get(i).and_then(Datum::as_string)
}

fn call(f: Func, v: &[Datum]) -> Result<Datum> {
    let first = v.first().cloned().unwrap_or(Datum::Null);
    // Functions with special NULL handling.
    match f {
        Func::Coalesce => {
            return Ok(v
                .iter()
                .find(|d| !d.is_null())
                .cloned()
                .unwrap_or(Datum::Null));
        }
        Func::NullIf => {
            let second = v.get(1).cloned().unwrap_or(Datum::Null);
            return Ok(if compare(&first, &second) == Some(Ordering::Equal) {
                Datum::Null
            } else {
                first
            });
        }
        Func::Concat => {
            let mut out = String::new();
            for d in v {
                match d.as_string() {
                    Some(s) => out.push_str(&s),
                    None => return Ok(Datum::Null),
                }
            }
            return Ok(Datum::Str(out));
        }
        Func::Greatest | Func::Least => {
            let mut best: Option<Datum> = None;
            for d in v.iter().filter(|d| !d.is_null()) {
                best = Some(match best {
                    None => d.clone(),
                    Some(b) => {
                        let o = compare(d, &b).unwrap_or(Ordering::Equal);
                        let take = if f == Func::Greatest {
                            o == Ordering::Greater
                        } else {
                            o == Ordering::Less
                        };
                        if take { d.clone() } else { b }
                    }
                });
            }
            return Ok(best.unwrap_or(Datum::Null));
        }
        _ => {}
    }
    if v.iter().any(Datum::is_null) {
        return Ok(Datum::Null);
    }
    Ok(match f {
        Func::Lower => Datum::Str(first.as_string().unwrap_or_default().to_lowercase()),
        Func::Upper => Datum::Str(first.as_string().unwrap_or_default().to_uppercase()),
        Func::Length => Datum::Long(first.as_string().unwrap_or_default().chars().count() as i64),
        Func::Trim => Datum::Str(
            first
                .as_string()
                .unwrap_or_default()
                .trim_matches(' ')
                .into(),
        ),
        Func::Ltrim => Datum::Str(
            first
                .as_string()
                .unwrap_or_default()
                .trim_start_matches(' ')
                .into(),
        ),
        Func::Rtrim => Datum::Str(
            first
                .as_string()
                .unwrap_or_default()
                .trim_end_matches(' ')
                .into(),
        ),
        Func::Substring => {
            let s: Vec<char> = first.as_string().unwrap_or_default().chars().collect();
            let start = v.get(1).and_then(Datum::as_i64).unwrap_or(1);
            let len = v.get(2).and_then(Datum::as_i64);
            // SQL: positions are 1-based; a start before 1 shortens the length.
            let from = start.max(1);
            let end = match len {
                Some(l) if l < 0 => {
                    return Err(Error::invalid(format!("SUBSTRING: negative length {l}")));
                }
                Some(l) => start.saturating_add(l).max(from),
                None => i64::MAX,
            };
            let from_i = ((from - 1) as usize).min(s.len());
            let end_i = if end == i64::MAX {
                s.len()
            } else {
                ((end - 1).max(0) as usize).min(s.len())
            };
            Datum::Str(s[from_i..end_i.max(from_i)].iter().collect())
        }
        Func::Left | Func::Right => {
            let s: Vec<char> = first.as_string().unwrap_or_default().chars().collect();
            let n = v.get(1).and_then(Datum::as_i64).unwrap_or(0).max(0) as usize;
            let n = n.min(s.len());
            if f == Func::Left {
                Datum::Str(s[..n].iter().collect())
            } else {
                Datum::Str(s[s.len() - n..].iter().collect())
            }
        }
        Func::Replace => {
            let (Some(s), Some(a), Some(b)) = (str_arg(v, 0), str_arg(v, 1), str_arg(v, 2)) else {
                return Ok(Datum::Null);
            };
            if a.is_empty() {
                Datum::Str(s)
            } else {
                Datum::Str(s.replace(&a, &b))
            }
        }
        Func::Strpos => {
            let (Some(s), Some(n)) = (str_arg(v, 0), str_arg(v, 1)) else {
                return Ok(Datum::Null);
            };
            Datum::Long(match s.find(&n) {
                Some(i) => s[..i].chars().count() as i64 + 1,
                None => 0,
            })
        }
        Func::Abs => match first {
            Datum::Long(x) => Datum::Long(x.wrapping_abs()),
            other => other
                .as_f64()
                .map(|x| Datum::Double(x.abs()))
                .unwrap_or(Datum::Null),
        },
        Func::Floor | Func::Ceil => match first {
            Datum::Long(x) => Datum::Long(x),
            other => match other.as_f64() {
                Some(x) => Datum::Double(if f == Func::Floor {
                    x.floor()
                } else {
                    x.ceil()
                }),
                None => Datum::Null,
            },
        },
        Func::Round => {
            let digits = v.get(1).and_then(Datum::as_i64).unwrap_or(0);
            match first {
                Datum::Long(x) if digits >= 0 => Datum::Long(x),
                Datum::Long(x) => {
                    let p = 10f64.powi((-digits).min(18) as i32);
                    Datum::Long(((x as f64 / p).round() * p) as i64)
                }
                other => match other.as_f64() {
                    Some(x) => {
                        let p = 10f64.powi(digits.clamp(-18, 18) as i32);
                        Datum::Double((x * p).round() / p)
                    }
                    None => Datum::Null,
                },
            }
        }
        Func::Mod => binary(
            BinOp::Mod,
            &first,
            &v.get(1).cloned().unwrap_or(Datum::Null),
        )?,
        Func::Power | Func::Sqrt | Func::Ln | Func::Log10 | Func::Exp => {
            let Some(x) = first.as_f64() else {
                return Ok(Datum::Null);
            };
            let r = match f {
                Func::Power => x.powf(v.get(1).and_then(Datum::as_f64).unwrap_or(f64::NAN)),
                Func::Sqrt => x.sqrt(),
                Func::Ln => x.ln(),
                Func::Log10 => x.log10(),
                _ => x.exp(),
            };
            if r.is_nan() {
                Datum::Null
            } else {
                Datum::Double(r)
            }
        }
        Func::MillisToTimestamp => first.as_i64().map(Datum::Ts).unwrap_or(Datum::Null),
        Func::TimestampToMillis => first.as_ts().map(Datum::Long).unwrap_or(Datum::Null),
        Func::TimeParse => {
            let s = first.as_string().unwrap_or_default();
            match v.get(1).and_then(Datum::as_string) {
                None => crate::sql::datum::parse_sql_timestamp(&s)
                    .map(Datum::Ts)
                    .unwrap_or(Datum::Null),
                Some(pattern) => parse_with_pattern(&s, &pattern)?
                    .map(Datum::Ts)
                    .unwrap_or(Datum::Null),
            }
        }
        Func::TimeFormat => {
            let Some(t) = first.as_ts() else {
                return Ok(Datum::Null);
            };
            match v.get(1).and_then(Datum::as_string) {
                None => Datum::Str(format_iso_millis(t)),
                Some(p) => Datum::Str(format_with_pattern(t, &p)?),
            }
        }
        Func::TimeShift => {
            let Some(t) = first.as_ts() else {
                return Ok(Datum::Null);
            };
            let period = Period::parse(&str_arg(v, 1).unwrap_or_default())?;
            let step = v.get(2).and_then(Datum::as_i64).unwrap_or(0);
            let mut out = t;
            for _ in 0..step.unsigned_abs().min(100_000) {
                out = if step > 0 {
                    period.add_to(out)?
                } else {
                    period.subtract_from(out)?
                };
            }
            Datum::Ts(out)
        }
        Func::TimeExtract => {
            let Some(t) = first.as_ts() else {
                return Ok(Datum::Null);
            };
            let unit = str_arg(v, 1).unwrap_or_default().to_ascii_uppercase();
            Datum::Long(extract(t, &unit)?)
        }
        Func::Coalesce | Func::NullIf | Func::Concat | Func::Greatest | Func::Least => {
            return Err(Error::internal("handled above".to_string()));
        }
    })
}

/// Calendar fields of a UTC timestamp.
struct Fields {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
    millis: i64,
    days: i64,
}

fn fields(t: i64) -> Fields {
    let days = t.div_euclid(86_400_000);
    let ms = t.rem_euclid(86_400_000);
    let (year, month, day) = crate::time::civil_from_days(days);
    Fields {
        year,
        month,
        day,
        hour: ms / 3_600_000,
        minute: ms / 60_000 % 60,
        second: ms / 1000 % 60,
        millis: ms % 1000,
        days,
    }
}

/// `EXTRACT(unit FROM t)` in UTC.
pub fn extract(t: i64, unit: &str) -> Result<i64> {
    let f = fields(t);
    Ok(match unit {
        "EPOCH" => t.div_euclid(1000),
        "MILLISECOND" => f.second * 1000 + f.millis,
        "SECOND" => f.second,
        "MINUTE" => f.minute,
        "HOUR" => f.hour,
        "DAY" => f.day as i64,
        "DOW" => (f.days + 3).rem_euclid(7) + 1,
        "ISODOW" => (f.days + 3).rem_euclid(7) + 1,
        "DOY" => f.days - crate::time::days_from_civil(f.year, 1, 1) + 1,
        "MONTH" => f.month as i64,
        "QUARTER" => (f.month as i64 - 1) / 3 + 1,
        "YEAR" => f.year,
        other => {
            return Err(Error::invalid(format!(
                "EXTRACT/TIME_EXTRACT: unsupported unit `{other}` (supported: EPOCH, MILLISECOND, SECOND, MINUTE, HOUR, DAY, DOW, ISODOW, DOY, MONTH, QUARTER, YEAR)"
            )));
        }
    })
}

/// Joda-style pattern tokens supported by TIME_FORMAT and TIME_PARSE.
fn pattern_tokens(p: &str) -> Result<Vec<(char, usize)>> {
    // ('\0', n) marks literal text stored separately; simple run-length tokens.
    let mut out = Vec::new();
    let cs: Vec<char> = p.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        let mut n = 1;
        while i + n < cs.len() && cs[i + n] == c {
            n += 1;
        }
        if c.is_ascii_alphabetic() && !matches!(c, 'y' | 'M' | 'd' | 'H' | 'm' | 's' | 'S') {
            return Err(Error::invalid(format!(
                "time pattern `{p}`: unsupported field letter `{c}` (supported: y M d H m s S; quote literal text)"
            )));
        }
        out.push((c, n));
        i += n;
    }
    Ok(out)
}

fn format_with_pattern(t: i64, p: &str) -> Result<String> {
    let f = fields(t);
    let mut out = String::new();
    for (c, n) in pattern_tokens(p)? {
        let (v, w) = match c {
            'y' => (f.year, if n == 2 { 2 } else { n.max(4) }),
            'M' => (f.month as i64, n),
            'd' => (f.day as i64, n),
            'H' => (f.hour, n),
            'm' => (f.minute, n),
            's' => (f.second, n),
            'S' => (f.millis, n.max(3)),
            '\'' => continue,
            other => {
                for _ in 0..n {
                    out.push(other);
                }
                continue;
            }
        };
        let v = if c == 'y' && n == 2 { v % 100 } else { v };
        out.push_str(&format!("{v:0w$}"));
    }
    Ok(out)
}

fn parse_with_pattern(s: &str, p: &str) -> Result<Option<i64>> {
    let toks = pattern_tokens(p)?;
    let bytes: Vec<char> = s.chars().collect();
    let mut pos = 0;
    let (mut y, mut mo, mut d, mut h, mut mi, mut se, mut ms) = (1970i64, 1i64, 1i64, 0, 0, 0, 0);
    for (c, n) in toks {
        if c == '\'' {
            continue;
        }
        if !c.is_ascii_alphabetic() {
            for _ in 0..n {
                if bytes.get(pos) != Some(&c) {
                    return Ok(None);
                }
                pos += 1;
            }
            continue;
        }
        let width = if c == 'y' && n != 2 {
            4
        } else {
            n.max(if c == 'S' { 3 } else { 2 })
        };
        let start = pos;
        while pos < bytes.len() && pos - start < width && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        let txt: String = bytes[start..pos].iter().collect();
        let Ok(v) = txt.parse::<i64>() else {
            return Ok(None);
        };
        match c {
            'y' => y = if n == 2 { 2000 + v } else { v },
            'M' => mo = v,
            'd' => d = v,
            'H' => h = v,
            'm' => mi = v,
            's' => se = v,
            _ => ms = v,
        }
    }
    if pos != bytes.len()
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || h > 23
        || mi > 59
        || se > 59
    {
        return Ok(None);
    }
    let days = crate::time::days_from_civil(y, mo as u32, d as u32);
    Ok(Some(
        days * 86_400_000 + h * 3_600_000 + mi * 60_000 + se * 1000 + ms,
    ))
}

/// A literal as SQL text (EXPLAIN).
pub fn literal_text(d: &Datum) -> String {
    match d {
        Datum::Null => "NULL".into(),
        Datum::Str(s) => format!("'{}'", s.replace('\'', "''")),
        Datum::Ts(t) => format!("TIMESTAMP '{}'", format_sql_timestamp(*t)),
        other => other.as_string().unwrap_or_default(),
    }
}
