//! Druid filters: parsing and evaluation over a segment into row bitmaps.
//!
//! Evaluation uses SQL three-valued logic: each filter yields the rows where it is TRUE and the
//! rows where it is FALSE; the rest (a null compared to a value) are UNKNOWN, so `not` of a
//! filter on a null value matches nothing, as in Druid's SQL-compatible mode.
//!
//! String dimensions are filtered on their dictionary (each distinct value tested once; sorted
//! dictionaries answer equality and lexicographic ranges by binary search) and the matching
//! values' bitmaps are unioned. Numeric columns (and `__time`) skip blocks by their min/max and
//! test rows only in blocks that straddle the predicate.

use std::cmp::Ordering;

use regex::Regex;
use roaring::RoaringBitmap;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::query::json::{Obj, scalar_string};
use crate::schema::{TIME_COLUMN, json_type};
use crate::segment::Segment;
use crate::segment::format::{BLOCK_ROWS, ColumnMeta, ColumnType, StreamRole};
use crate::time::Interval;

/// A number for numeric comparisons: integers stay exact.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    /// An integer.
    I(i64),
    /// A float.
    F(f64),
}

impl Num {
    /// Parse a string as a number (integer first).
    pub fn parse(s: &str) -> Option<Num> {
        let t = s.trim();
        if let Ok(i) = t.parse::<i64>() {
            return Some(Num::I(i));
        }
        t.parse::<f64>().ok().filter(|f| !f.is_nan()).map(Num::F)
    }

    fn as_f64(self) -> f64 {
        match self {
            Num::I(i) => i as f64,
            Num::F(f) => f,
        }
    }

    /// Total order across integers and floats.
    pub fn cmp_num(self, other: Num) -> Ordering {
        match (self, other) {
            (Num::I(a), Num::I(b)) => a.cmp(&b),
            (a, b) => a.as_f64().total_cmp(&b.as_f64()),
        }
    }
}

/// The predicate of a leaf filter.
#[derive(Clone, Debug)]
pub enum Pred {
    /// Equal to one of the strings.
    StrEq(Vec<String>),
    /// Lexicographic range; bounds are (value, strict).
    StrRange {
        /// Lower bound.
        lower: Option<(String, bool)>,
        /// Upper bound.
        upper: Option<(String, bool)>,
    },
    /// Numerically equal to one of the numbers.
    NumEq(Vec<Num>),
    /// Numeric range; bounds are (value, strict).
    NumRange {
        /// Lower bound.
        lower: Option<(Num, bool)>,
        /// Upper bound.
        upper: Option<(Num, bool)>,
    },
    /// Regular expression over the string form (also LIKE, compiled to an anchored regex).
    Regex(Regex),
}

impl Pred {
    fn test_str(&self, s: &str) -> bool {
        match self {
            Pred::StrEq(vals) => vals.iter().any(|v| v == s),
            Pred::StrRange { lower, upper } => {
                lower.as_ref().is_none_or(|(l, strict)| {
                    if *strict {
                        s > l.as_str()
                    } else {
                        s >= l.as_str()
                    }
                }) && upper.as_ref().is_none_or(|(u, strict)| {
                    if *strict {
                        s < u.as_str()
                    } else {
                        s <= u.as_str()
                    }
                })
            }
            Pred::NumEq(_) | Pred::NumRange { .. } => match Num::parse(s) {
                Some(n) => self.test_num(n),
                None => false,
            },
            Pred::Regex(r) => r.is_match(s),
        }
    }

    fn test_num(&self, n: Num) -> bool {
        match self {
            Pred::NumEq(vals) => vals.iter().any(|v| v.cmp_num(n) == Ordering::Equal),
            Pred::NumRange { lower, upper } => {
                lower.is_none_or(|(l, strict)| {
                    let o = n.cmp_num(l);
                    o == Ordering::Greater || (!strict && o == Ordering::Equal)
                }) && upper.is_none_or(|(u, strict)| {
                    let o = n.cmp_num(u);
                    o == Ordering::Less || (!strict && o == Ordering::Equal)
                })
            }
            Pred::StrEq(vals) => vals
                .iter()
                .any(|v| Num::parse(v).is_some_and(|x| x.cmp_num(n) == Ordering::Equal)),
            Pred::StrRange { .. } | Pred::Regex(_) => self.test_str(&num_string(n)),
        }
    }

    /// Whether any value in [min, max] can match; `None` when the predicate cannot say.
    fn block_may_match(&self, min: Num, max: Num) -> bool {
        match self {
            Pred::NumRange { lower, upper } => {
                let above_lower = lower.is_none_or(|(l, strict)| {
                    let o = max.cmp_num(l);
                    o == Ordering::Greater || (!strict && o == Ordering::Equal)
                });
                let below_upper = upper.is_none_or(|(u, strict)| {
                    let o = min.cmp_num(u);
                    o == Ordering::Less || (!strict && o == Ordering::Equal)
                });
                above_lower && below_upper
            }
            Pred::NumEq(vals) => vals
                .iter()
                .any(|v| v.cmp_num(min) != Ordering::Less && v.cmp_num(max) != Ordering::Greater),
            _ => true,
        }
    }

    /// Whether every value in [min, max] matches.
    fn block_all_match(&self, min: Num, max: Num) -> bool {
        match self {
            Pred::NumRange { .. } => self.test_num(min) && self.test_num(max),
            Pred::NumEq(_) => min.cmp_num(max) == Ordering::Equal && self.test_num(min),
            _ => false,
        }
    }
}

fn num_string(n: Num) -> String {
    match n {
        Num::I(i) => i.to_string(),
        Num::F(f) => f.to_string(),
    }
}

/// A parsed filter.
#[derive(Clone, Debug)]
pub enum Filter {
    /// Matches every row.
    True,
    /// Matches no row.
    False,
    /// A predicate on one column; `null_matches` makes null rows match (e.g. `in` with null).
    Leaf {
        /// Column name.
        column: String,
        /// The predicate on non-null values.
        pred: Pred,
        /// Whether null values match.
        null_matches: bool,
    },
    /// The column is null.
    IsNull {
        /// Column name.
        column: String,
    },
    /// All must match.
    And(Vec<Filter>),
    /// Any must match.
    Or(Vec<Filter>),
    /// Negation (three-valued).
    Not(Box<Filter>),
}

fn like_to_regex(pattern: &str, escape: Option<char>) -> std::result::Result<Regex, regex::Error> {
    let mut re = String::with_capacity(pattern.len() + 8);
    re.push_str("(?s)^");
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            if let Some(n) = chars.next() {
                re.push_str(&regex::escape(&n.to_string()));
            }
            continue;
        }
        match c {
            '%' => re.push_str(".*"),
            '_' => re.push('.'),
            other => re.push_str(&regex::escape(&other.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re)
}

fn parse_num(v: &Value, path: &str) -> Result<Num> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(Num::I(i))
            } else {
                n.as_f64()
                    .map(Num::F)
                    .ok_or_else(|| Error::invalid(format!("{path}: number out of range")))
            }
        }
        Value::String(s) => {
            Num::parse(s).ok_or_else(|| Error::invalid(format!("{path}: `{s}` is not a number")))
        }
        other => Err(Error::invalid(format!(
            "{path}: expected a number, found {}",
            json_type(other)
        ))),
    }
}

fn match_value_type(o: &Obj<'_>) -> Result<&'static str> {
    let t = o.req_str("matchValueType")?;
    match t.to_ascii_uppercase().as_str() {
        "STRING" => Ok("STRING"),
        "LONG" => Ok("LONG"),
        "DOUBLE" | "FLOAT" => Ok("DOUBLE"),
        _ => Err(Error::invalid(format!(
            "{}: unsupported matchValueType `{t}` (expected STRING, LONG, DOUBLE or FLOAT)",
            o.child("matchValueType")
        ))),
    }
}

impl Filter {
    /// Parse a Druid filter JSON object; `path` names it in errors.
    pub fn parse(v: &Value, path: &str) -> Result<Filter> {
        let o = Obj::new(v, path)?;
        let t = o.req_str("type")?;
        let col = |key: &str| -> Result<String> { Ok(o.req_str(key)?.to_string()) };
        Ok(match t {
            "true" => Filter::True,
            "false" => Filter::False,
            "selector" => {
                o.check_known(&["type", "dimension", "value", "extractionFn"])?;
                if o.get("extractionFn").is_some() {
                    return Err(Error::invalid(format!(
                        "{}: extraction functions are not supported",
                        o.child("extractionFn")
                    )));
                }
                let column = col("dimension")?;
                match o.map.get("value") {
                    None | Some(Value::Null) => Filter::IsNull { column },
                    Some(v) => {
                        let s = scalar_string(v, &o.child("value"))?.unwrap_or_default();
                        Filter::Leaf {
                            column,
                            pred: Pred::StrEq(vec![s]),
                            null_matches: false,
                        }
                    }
                }
            }
            "equals" => {
                o.check_known(&["type", "column", "matchValueType", "matchValue"])?;
                let column = col("column")?;
                let mvt = match_value_type(&o)?;
                let path_v = o.child("matchValue");
                let value = o.get("matchValue").ok_or_else(|| {
                    Error::invalid(format!("{path_v}: required field is missing"))
                })?;
                let pred = if mvt == "STRING" {
                    Pred::StrEq(vec![scalar_string(value, &path_v)?.unwrap_or_default()])
                } else {
                    Pred::NumEq(vec![parse_num(value, &path_v)?])
                };
                Filter::Leaf {
                    column,
                    pred,
                    null_matches: false,
                }
            }
            "in" => {
                o.check_known(&["type", "dimension", "values", "extractionFn"])?;
                let column = col("dimension")?;
                let values = o.req_array("values")?;
                let mut strs = Vec::with_capacity(values.len());
                let mut null_matches = false;
                for (i, v) in values.iter().enumerate() {
                    match scalar_string(v, &format!("{}[{i}]", o.child("values")))? {
                        Some(s) => strs.push(s),
                        None => null_matches = true,
                    }
                }
                Filter::Leaf {
                    column,
                    pred: Pred::StrEq(strs),
                    null_matches,
                }
            }
            "bound" => {
                o.check_known(&[
                    "type",
                    "dimension",
                    "lower",
                    "upper",
                    "lowerStrict",
                    "upperStrict",
                    "ordering",
                    "alphaNumeric",
                ])?;
                let column = col("dimension")?;
                let ordering = o.opt_str("ordering")?.unwrap_or("lexicographic");
                let lower_strict = o.opt_bool("lowerStrict")?.unwrap_or(false);
                let upper_strict = o.opt_bool("upperStrict")?.unwrap_or(false);
                let pred = match ordering.to_ascii_lowercase().as_str() {
                    "lexicographic" => {
                        let lower = match o.get("lower") {
                            Some(v) => {
                                scalar_string(v, &o.child("lower"))?.map(|s| (s, lower_strict))
                            }
                            None => None,
                        };
                        let upper = match o.get("upper") {
                            Some(v) => {
                                scalar_string(v, &o.child("upper"))?.map(|s| (s, upper_strict))
                            }
                            None => None,
                        };
                        Pred::StrRange { lower, upper }
                    }
                    "numeric" => {
                        let lower = match o.get("lower") {
                            Some(v) => Some((parse_num(v, &o.child("lower"))?, lower_strict)),
                            None => None,
                        };
                        let upper = match o.get("upper") {
                            Some(v) => Some((parse_num(v, &o.child("upper"))?, upper_strict)),
                            None => None,
                        };
                        Pred::NumRange { lower, upper }
                    }
                    other => {
                        return Err(Error::invalid(format!(
                            "{}: unsupported ordering `{other}` (expected lexicographic or numeric)",
                            o.child("ordering")
                        )));
                    }
                };
                Filter::Leaf {
                    column,
                    pred,
                    null_matches: false,
                }
            }
            "range" => {
                o.check_known(&[
                    "type",
                    "column",
                    "matchValueType",
                    "lower",
                    "upper",
                    "lowerOpen",
                    "upperOpen",
                ])?;
                let column = col("column")?;
                let mvt = match_value_type(&o)?;
                let lower_open = o.opt_bool("lowerOpen")?.unwrap_or(false);
                let upper_open = o.opt_bool("upperOpen")?.unwrap_or(false);
                let pred = if mvt == "STRING" {
                    let lower = match o.get("lower") {
                        Some(v) => scalar_string(v, &o.child("lower"))?.map(|s| (s, lower_open)),
                        None => None,
                    };
                    let upper = match o.get("upper") {
                        Some(v) => scalar_string(v, &o.child("upper"))?.map(|s| (s, upper_open)),
                        None => None,
                    };
                    Pred::StrRange { lower, upper }
                } else {
                    let lower = match o.get("lower") {
                        Some(v) => Some((parse_num(v, &o.child("lower"))?, lower_open)),
                        None => None,
                    };
                    let upper = match o.get("upper") {
                        Some(v) => Some((parse_num(v, &o.child("upper"))?, upper_open)),
                        None => None,
                    };
                    Pred::NumRange { lower, upper }
                };
                Filter::Leaf {
                    column,
                    pred,
                    null_matches: false,
                }
            }
            "like" => {
                o.check_known(&["type", "dimension", "pattern", "escape", "extractionFn"])?;
                let column = col("dimension")?;
                let pattern = o.req_str("pattern")?;
                let escape = match o.opt_str("escape")? {
                    None => None,
                    Some(e) => {
                        let mut cs = e.chars();
                        match (cs.next(), cs.next()) {
                            (Some(c), None) => Some(c),
                            _ => {
                                return Err(Error::invalid(format!(
                                    "{}: escape must be a single character",
                                    o.child("escape")
                                )));
                            }
                        }
                    }
                };
                let re = like_to_regex(pattern, escape).map_err(|e| {
                    Error::invalid(format!("{}: invalid pattern: {e}", o.child("pattern")))
                })?;
                Filter::Leaf {
                    column,
                    pred: Pred::Regex(re),
                    null_matches: false,
                }
            }
            "regex" => {
                o.check_known(&["type", "dimension", "pattern", "extractionFn"])?;
                let column = col("dimension")?;
                let pattern = o.req_str("pattern")?;
                let re = regex::RegexBuilder::new(pattern)
                    .size_limit(1 << 22)
                    .build()
                    .map_err(|e| {
                        Error::invalid(format!(
                            "{}: invalid regular expression: {e}",
                            o.child("pattern")
                        ))
                    })?;
                Filter::Leaf {
                    column,
                    pred: Pred::Regex(re),
                    null_matches: false,
                }
            }
            "interval" => {
                o.check_known(&["type", "dimension", "intervals", "extractionFn"])?;
                let column = col("dimension")?;
                let intervals = parse_intervals(o.get("intervals"), &o.child("intervals"))?;
                Filter::Or(
                    intervals
                        .into_iter()
                        .map(|iv| Filter::Leaf {
                            column: column.clone(),
                            pred: Pred::NumRange {
                                lower: Some((Num::I(iv.start), false)),
                                upper: Some((Num::I(iv.end), true)),
                            },
                            null_matches: false,
                        })
                        .collect(),
                )
            }
            "null" | "isnull" => {
                o.check_known(&["type", "column"])?;
                Filter::IsNull {
                    column: col("column")?,
                }
            }
            "and" | "or" => {
                o.check_known(&["type", "fields"])?;
                let fields = o.req_array("fields")?;
                let mut out = Vec::with_capacity(fields.len());
                for (i, f) in fields.iter().enumerate() {
                    out.push(Filter::parse(f, &format!("{}[{i}]", o.child("fields")))?);
                }
                if t == "and" {
                    Filter::And(out)
                } else {
                    Filter::Or(out)
                }
            }
            "not" => {
                o.check_known(&["type", "field"])?;
                let f = o.get("field").ok_or_else(|| {
                    Error::invalid(format!("{}: required field is missing", o.child("field")))
                })?;
                Filter::Not(Box::new(Filter::parse(f, &o.child("field"))?))
            }
            other => {
                return Err(Error::invalid(format!(
                    "{}: unsupported filter type `{other}` (supported: selector, equals, in, bound, range, like, regex, interval, null, and, or, not, true, false)",
                    o.child("type")
                )));
            }
        })
    }

    /// Evaluate on one result row (for `having` filters): `Some(true)`/`Some(false)`, or `None`
    /// for unknown (a null compared to a value).
    pub fn matches_row(&self, row: &serde_json::Map<String, Value>) -> Option<bool> {
        match self {
            Filter::True => Some(true),
            Filter::False => Some(false),
            Filter::IsNull { column } => Some(row.get(column).is_none_or(Value::is_null)),
            Filter::Leaf {
                column,
                pred,
                null_matches,
            } => {
                let vals: Vec<&Value> = match row.get(column) {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(a)) => a.iter().filter(|v| !v.is_null()).collect(),
                    Some(v) => vec![v],
                };
                if vals.is_empty() {
                    return if *null_matches { Some(true) } else { None };
                }
                Some(vals.iter().any(|v| match v {
                    Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                        (Some(i), _) => pred.test_num(Num::I(i)),
                        (None, Some(f)) => pred.test_num(Num::F(f)),
                        _ => false,
                    },
                    Value::String(s) => pred.test_str(s),
                    Value::Bool(b) => pred.test_str(if *b { "true" } else { "false" }),
                    _ => false,
                }))
            }
            Filter::And(fs) => {
                let mut unknown = false;
                for f in fs {
                    match f.matches_row(row) {
                        Some(false) => return Some(false),
                        None => unknown = true,
                        Some(true) => {}
                    }
                }
                if unknown { None } else { Some(true) }
            }
            Filter::Or(fs) => {
                let mut unknown = false;
                for f in fs {
                    match f.matches_row(row) {
                        Some(true) => return Some(true),
                        None => unknown = true,
                        Some(false) => {}
                    }
                }
                if unknown { None } else { Some(false) }
            }
            Filter::Not(f) => f.matches_row(row).map(|b| !b),
        }
    }

    /// Every column the filter reads.
    pub fn columns(&self, out: &mut Vec<String>) {
        match self {
            Filter::True | Filter::False => {}
            Filter::Leaf { column, .. } | Filter::IsNull { column } => out.push(column.clone()),
            Filter::And(fs) | Filter::Or(fs) => fs.iter().for_each(|f| f.columns(out)),
            Filter::Not(f) => f.columns(out),
        }
    }

    /// Short description for EXPLAIN: which leaves use bitmap indexes and which check rows.
    pub fn explain(&self, seg: &Segment) -> String {
        match self {
            Filter::True => "true".into(),
            Filter::False => "false".into(),
            Filter::Leaf { column, pred, .. } => {
                let how = match seg.column(column).map(|c| c.column_type) {
                    Some(ColumnType::String | ColumnType::MultiString) => match pred {
                        Pred::StrEq(_) | Pred::StrRange { .. } => "dictionary lookup + bitmaps",
                        _ => "dictionary scan + bitmaps",
                    },
                    Some(_) => "block min/max skip + row check",
                    None => "column absent: null",
                };
                format!("{column} {} [{how}]", pred_name(pred))
            }
            Filter::IsNull { column } => format!("{column} IS NULL [null bitmap]"),
            Filter::And(fs) => format!(
                "AND({})",
                fs.iter()
                    .map(|f| f.explain(seg))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Filter::Or(fs) => format!(
                "OR({})",
                fs.iter()
                    .map(|f| f.explain(seg))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Filter::Not(f) => format!("NOT({})", f.explain(seg)),
        }
    }

    /// Rows where the filter is TRUE, restricted to `within` when given (`None` = every row).
    ///
    /// Cheaper than [`Filter::evaluate`] when only the TRUE rows are needed: `and` evaluates
    /// its dictionary/bitmap children first and hands the surviving rows to the numeric ones,
    /// which then skip blocks without candidate rows and test only candidate rows.
    pub fn true_rows(
        &self,
        seg: &Segment,
        within: Option<&RoaringBitmap>,
    ) -> Result<RoaringBitmap> {
        let restrict = |mut b: RoaringBitmap| {
            if let Some(w) = within {
                b &= w;
            }
            b
        };
        let all = || match within {
            Some(w) => w.clone(),
            None => {
                let mut b = RoaringBitmap::new();
                b.insert_range(0..seg.num_rows() as u32);
                b
            }
        };
        Ok(match self {
            Filter::True => all(),
            Filter::False => RoaringBitmap::new(),
            Filter::And(fs) => {
                let mut order: Vec<&Filter> = fs.iter().collect();
                order.sort_by_key(|f| f.cost_rank(seg));
                let mut t: Option<RoaringBitmap> = None;
                for f in order {
                    let x = f.true_rows(seg, t.as_ref().or(within))?;
                    let empty = x.is_empty();
                    t = Some(x);
                    if empty {
                        break;
                    }
                }
                match t {
                    Some(t) => t,
                    None => all(),
                }
            }
            Filter::Or(fs) => {
                let mut t = RoaringBitmap::new();
                for f in fs {
                    t |= f.true_rows(seg, within)?;
                }
                t
            }
            Filter::Not(x) => restrict(x.evaluate(seg)?.1),
            Filter::IsNull { column } => restrict(null_rows(seg, column)?),
            Filter::Leaf {
                column,
                pred,
                null_matches,
            } => {
                let Some(c) = seg.column(column) else {
                    // Every row is null.
                    return Ok(if *null_matches {
                        all()
                    } else {
                        RoaringBitmap::new()
                    });
                };
                let mut t = match c.column_type {
                    ColumnType::Long | ColumnType::LongPair => {
                        numeric_rows(seg, c, pred, false, within)?
                    }
                    ColumnType::Double | ColumnType::DoublePair => {
                        numeric_rows(seg, c, pred, true, within)?
                    }
                    _ => restrict(leaf_rows(seg, c, pred)?),
                };
                if *null_matches {
                    t |= restrict(null_rows(seg, column)?);
                }
                t
            }
        })
    }

    /// Evaluation order inside `and`: bitmap and dictionary work first, row checks last.
    fn cost_rank(&self, seg: &Segment) -> u8 {
        match self {
            Filter::True | Filter::False | Filter::IsNull { .. } => 0,
            Filter::Leaf { column, .. } => match seg.column(column).map(|c| c.column_type) {
                None | Some(ColumnType::String | ColumnType::MultiString) => 0,
                Some(_) => 2,
            },
            Filter::And(fs) | Filter::Or(fs) => fs
                .iter()
                .map(|f| f.cost_rank(seg))
                .max()
                .unwrap_or(0)
                .max(1),
            Filter::Not(_) => 2,
        }
    }

    /// Evaluate over a segment: (rows where TRUE, rows where FALSE).
    pub fn evaluate(&self, seg: &Segment) -> Result<(RoaringBitmap, RoaringBitmap)> {
        let n = seg.num_rows() as u32;
        let all = || {
            let mut b = RoaringBitmap::new();
            b.insert_range(0..n);
            b
        };
        Ok(match self {
            Filter::True => (all(), RoaringBitmap::new()),
            Filter::False => (RoaringBitmap::new(), all()),
            Filter::And(fs) => {
                let mut t = all();
                let mut f = RoaringBitmap::new();
                for x in fs {
                    let (xt, xf) = x.evaluate(seg)?;
                    t &= xt;
                    f |= xf;
                }
                (t, f)
            }
            Filter::Or(fs) => {
                let mut t = RoaringBitmap::new();
                let mut f = all();
                for x in fs {
                    let (xt, xf) = x.evaluate(seg)?;
                    t |= xt;
                    f &= xf;
                }
                (t, f)
            }
            Filter::Not(x) => {
                let (t, f) = x.evaluate(seg)?;
                (f, t)
            }
            Filter::IsNull { column } => {
                let nulls = null_rows(seg, column)?;
                let f = all() - &nulls;
                (nulls, f)
            }
            Filter::Leaf {
                column,
                pred,
                null_matches,
            } => {
                let nulls = null_rows(seg, column)?;
                let mut t = match seg.column(column) {
                    None => RoaringBitmap::new(),
                    Some(c) => leaf_rows(seg, c, pred)?,
                };
                if *null_matches {
                    t |= &nulls;
                    let f = all() - &t;
                    (t, f)
                } else {
                    let f = all() - &t - &nulls;
                    (t, f)
                }
            }
        })
    }
}

fn pred_name(p: &Pred) -> String {
    match p {
        Pred::StrEq(v) if v.len() == 1 => format!("= {:?}", v[0]),
        Pred::StrEq(v) => format!("IN ({} values)", v.len()),
        Pred::StrRange { .. } => "in lexicographic range".into(),
        Pred::NumEq(v) => format!("= one of {} numbers", v.len()),
        Pred::NumRange { .. } => "in numeric range".into(),
        Pred::Regex(r) => format!("matches /{}/", r.as_str()),
    }
}

/// Rows whose value in `column` is null (all rows if the segment lacks the column).
pub fn null_rows(seg: &Segment, column: &str) -> Result<RoaringBitmap> {
    let Some(c) = seg.column(column) else {
        let mut b = RoaringBitmap::new();
        b.insert_range(0..seg.num_rows() as u32);
        return Ok(b);
    };
    match c.column_type {
        ColumnType::String | ColumnType::MultiString => {
            if c.null_count == 0 {
                return Ok(RoaringBitmap::new());
            }
            if let Some(index) = seg.bitmap_index(c)? {
                return index.bitmap(0, seg.path(), &c.name);
            }
            let mut b = RoaringBitmap::new();
            let role = if c.column_type == ColumnType::String {
                StreamRole::Ids
            } else {
                StreamRole::Lengths
            };
            for blk in 0..seg.num_blocks() {
                let base = (blk * BLOCK_ROWS) as u32;
                for (i, v) in seg.read_u32s(c, role, blk)?.into_iter().enumerate() {
                    if v == 0 {
                        b.insert(base + i as u32);
                    }
                }
            }
            Ok(b)
        }
        ColumnType::HllSketch => Err(Error::invalid(format!(
            "column `{column}` is an HLL sketch column and cannot be filtered"
        ))),
        _ => seg.null_bitmap(c),
    }
}

fn leaf_rows(seg: &Segment, c: &ColumnMeta, pred: &Pred) -> Result<RoaringBitmap> {
    match c.column_type {
        ColumnType::String | ColumnType::MultiString => string_rows(seg, c, pred),
        ColumnType::Long | ColumnType::LongPair => numeric_rows(seg, c, pred, false, None),
        ColumnType::Double | ColumnType::DoublePair => numeric_rows(seg, c, pred, true, None),
        ColumnType::HllSketch => Err(Error::invalid(format!(
            "column `{}` is an HLL sketch column and cannot be filtered",
            c.name
        ))),
    }
}

/// Dictionary ids (1-based) of the values matching `pred`.
pub fn matching_ids(seg: &Segment, c: &ColumnMeta, pred: &Pred) -> Result<Vec<u32>> {
    let dict = seg.dictionary(c)?;
    let mut ids = Vec::new();
    match pred {
        Pred::StrEq(vals) => {
            for v in vals {
                if let Some(i) = dict.lookup(v) {
                    ids.push(i as u32 + 1);
                }
            }
            ids.sort_unstable();
            ids.dedup();
        }
        Pred::StrRange { lower, upper } => {
            // Binary search the sorted dictionary for the range.
            let n = dict.len();
            let lower_idx = match lower {
                None => 0,
                Some((l, strict)) => partition_point(n, |i| {
                    let v = dict.get_bytes(i).unwrap_or_default();
                    if *strict {
                        v <= l.as_bytes()
                    } else {
                        v < l.as_bytes()
                    }
                }),
            };
            let upper_idx = match upper {
                None => n,
                Some((u, strict)) => partition_point(n, |i| {
                    let v = dict.get_bytes(i).unwrap_or_default();
                    if *strict {
                        v < u.as_bytes()
                    } else {
                        v <= u.as_bytes()
                    }
                }),
            };
            ids.extend((lower_idx..upper_idx.max(lower_idx)).map(|i| i as u32 + 1));
        }
        _ => {
            for i in 0..dict.len() {
                let v = dict.get(i).ok_or_else(|| {
                    Error::corruption(
                        seg.path(),
                        format!("column `{}` dictionary entry {i}", c.name),
                        "UTF-8",
                        "invalid",
                    )
                })?;
                if pred.test_str(v) {
                    ids.push(i as u32 + 1);
                }
            }
        }
    }
    Ok(ids)
}

fn partition_point(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0usize, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

fn string_rows(seg: &Segment, c: &ColumnMeta, pred: &Pred) -> Result<RoaringBitmap> {
    let ids = matching_ids(seg, c, pred)?;
    if ids.is_empty() {
        return Ok(RoaringBitmap::new());
    }
    if let Some(index) = seg.bitmap_index(c)? {
        let mut out = RoaringBitmap::new();
        for id in ids {
            out |= index.bitmap(id as usize, seg.path(), &c.name)?;
        }
        return Ok(out);
    }
    // No index: scan the id blocks.
    let mut wanted = vec![false; c.cardinality as usize + 1];
    for id in ids {
        wanted[id as usize] = true;
    }
    let mut out = RoaringBitmap::new();
    for blk in 0..seg.num_blocks() {
        let base = (blk * BLOCK_ROWS) as u32;
        if c.column_type == ColumnType::String {
            for (i, id) in seg
                .read_u32s(c, StreamRole::Ids, blk)?
                .into_iter()
                .enumerate()
            {
                if wanted[id as usize] {
                    out.insert(base + i as u32);
                }
            }
        } else {
            let lengths = seg.read_u32s(c, StreamRole::Lengths, blk)?;
            let values = seg.read_u32s(c, StreamRole::Ids, blk)?;
            let mut pos = 0usize;
            for (i, l) in lengths.into_iter().enumerate() {
                let end = (pos + l as usize).min(values.len());
                if values[pos..end].iter().any(|&id| wanted[id as usize]) {
                    out.insert(base + i as u32);
                }
                pos = end;
            }
        }
    }
    Ok(out)
}

/// An integer range `[lo, hi]` equivalent to a predicate on integers, when it has one.
fn long_bounds(pred: &Pred) -> Option<(i64, i64)> {
    let Pred::NumRange { lower, upper } = pred else {
        return None;
    };
    let lo: i128 = match lower {
        None => i64::MIN as i128,
        Some((Num::I(l), strict)) => *l as i128 + i128::from(*strict),
        Some((Num::F(_), _)) => return None,
    };
    let hi: i128 = match upper {
        None => i64::MAX as i128,
        Some((Num::I(u), strict)) => *u as i128 - i128::from(*strict),
        Some((Num::F(_), _)) => return None,
    };
    if lo > hi {
        // Matches nothing: an empty range.
        return Some((1, 0));
    }
    Some((lo as i64, hi as i64))
}

/// Rows of a numeric column matching `pred` (never null rows), restricted to `within`: blocks
/// are skipped by min/max and by having no candidate row, taken whole when min/max says every
/// value matches, and otherwise decoded and tested (only the candidate rows when they are few).
fn numeric_rows(
    seg: &Segment,
    c: &ColumnMeta,
    pred: &Pred,
    double: bool,
    within: Option<&RoaringBitmap>,
) -> Result<RoaringBitmap> {
    let role = if double {
        StreamRole::Double
    } else {
        StreamRole::Long
    };
    let nulls = seg.null_bitmap(c)?;
    let mut out = RoaringBitmap::new();
    let Some(stream) = c.stream(role) else {
        return Ok(out);
    };
    let bounds = if double { None } else { long_bounds(pred) };
    let mut hits: Vec<u32> = Vec::new();
    for (blk, meta) in stream.blocks.iter().enumerate() {
        let base = (blk * BLOCK_ROWS) as u32;
        let rows = meta.num_values;
        let candidates = match within {
            Some(w) => w.range_cardinality(base..base + rows),
            None => rows as u64,
        };
        if candidates == 0 {
            continue;
        }
        let (min, max) = if double {
            (
                Num::F(f64::from_bits(meta.min)),
                Num::F(f64::from_bits(meta.max)),
            )
        } else {
            (Num::I(meta.min as i64), Num::I(meta.max as i64))
        };
        let all_null = nulls.range_cardinality(base..base + rows) == rows as u64;
        if all_null || !pred.block_may_match(min, max) {
            continue;
        }
        if pred.block_all_match(min, max) {
            match within {
                Some(w) => out.extend(w.range(base..base + rows)),
                None => {
                    out.insert_range(base..base + rows);
                }
            }
            continue;
        }
        hits.clear();
        // Few candidates: test only them; many: a tight loop over the whole block.
        let sparse = within.filter(|_| candidates * 8 < rows as u64);
        // Candidates: decode only the frames holding them (rows outside `within` are dropped
        // at the end).
        let upto = match within {
            Some(w) => crate::query::exec::block_need(w, base, rows),
            None => crate::column::Need::ALL,
        };
        if double {
            let v = seg.read_doubles_upto(c, blk, upto)?;
            match sparse {
                Some(w) => {
                    for r in w.range(base..base + rows) {
                        if v.get((r - base) as usize)
                            .is_some_and(|&x| pred.test_num(Num::F(x)))
                        {
                            hits.push(r);
                        }
                    }
                }
                None => {
                    for (i, &x) in v.iter().enumerate() {
                        if pred.test_num(Num::F(x)) {
                            hits.push(base + i as u32);
                        }
                    }
                }
            }
        } else {
            let v = seg.read_longs_upto(c, role, blk, upto)?;
            let test = |x: i64| match bounds {
                Some((lo, hi)) => lo <= x && x <= hi,
                None => pred.test_num(Num::I(x)),
            };
            match sparse {
                Some(w) => {
                    for r in w.range(base..base + rows) {
                        if v.get((r - base) as usize).is_some_and(|&x| test(x)) {
                            hits.push(r);
                        }
                    }
                }
                None => match bounds {
                    Some((lo, hi)) => {
                        // Matching rows come in runs (`__time` within rows sorted by a
                        // dimension, sorted columns): inserted a run at a time.
                        crate::query::exec::insert_runs(
                            &mut out,
                            base,
                            base + v.len() as u32,
                            |r| {
                                v.get((r - base) as usize)
                                    .is_some_and(|&x| lo <= x && x <= hi)
                            },
                        );
                    }
                    None => {
                        for (i, &x) in v.iter().enumerate() {
                            if pred.test_num(Num::I(x)) {
                                hits.push(base + i as u32);
                            }
                        }
                    }
                },
            }
        }
        out.append(hits.iter().copied())
            .map_err(|e| Error::internal(format!("numeric filter rows out of order: {e}")))?;
    }
    if !nulls.is_empty() {
        out -= &nulls;
    }
    if let Some(w) = within {
        out &= w;
    }
    Ok(out)
}

/// Rows whose `__time` lies in any of `intervals`, using block min/max to skip and to take
/// whole blocks.
pub fn time_rows(seg: &Segment, intervals: &[Interval]) -> Result<RoaringBitmap> {
    let Some(c) = seg.column(TIME_COLUMN) else {
        return Ok(RoaringBitmap::new());
    };
    let mut out = RoaringBitmap::new();
    for iv in intervals {
        let pred = Pred::NumRange {
            lower: Some((Num::I(iv.start), false)),
            upper: Some((Num::I(iv.end), true)),
        };
        out |= numeric_rows(seg, c, &pred, false, None)?;
    }
    Ok(out)
}

/// Parse Druid `intervals`: a string, an array of strings, or `{"type": "intervals",
/// "intervals": [...]}`. Overlapping intervals are merged; result sorted.
pub fn parse_intervals(v: Option<&Value>, path: &str) -> Result<Vec<Interval>> {
    let v = v.ok_or_else(|| Error::invalid(format!("{path}: required field is missing")))?;
    let list: Vec<(String, &Value)> = match v {
        Value::String(_) => vec![(path.to_string(), v)],
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, x)| (format!("{path}[{i}]"), x))
            .collect(),
        Value::Object(_) => {
            let o = Obj::new(v, path)?;
            o.check_known(&["type", "intervals"])?;
            return parse_intervals(o.get("intervals"), &o.child("intervals"));
        }
        other => {
            return Err(Error::invalid(format!(
                "{path}: expected an interval string or a list of them, found {}",
                json_type(other)
            )));
        }
    };
    let mut out = Vec::with_capacity(list.len());
    for (p, x) in list {
        let s = x.as_str().ok_or_else(|| {
            Error::invalid(format!(
                "{p}: expected an ISO-8601 interval string, found {}",
                json_type(x)
            ))
        })?;
        let iv = Interval::parse(s).map_err(|e| Error::invalid(format!("{p}: {e}")))?;
        out.push(iv);
    }
    out.sort();
    let mut merged: Vec<Interval> = Vec::with_capacity(out.len());
    for iv in out {
        match merged.last_mut() {
            Some(last) if iv.start <= last.end => last.end = last.end.max(iv.end),
            _ => merged.push(iv),
        }
    }
    Ok(merged)
}
