//! Planning and running one SQL query: FROM sources, WHERE split into native intervals, native
//! filter and a relational residual, aggregation pushed into a native timeseries/topN/groupBy
//! when every part is expressible (else a native scan plus relational aggregation), then the
//! relational steps on top (HAVING, projection, ORDER BY, DISTINCT, LIMIT/OFFSET).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde_json::{Map, Value, json};
use sqlparser::ast::{self, SetExpr, SetOperator, SetQuantifier, Spanned, TableFactor};

use crate::engine::{AggRows, Engine, QueryOutput};
use crate::error::{Error, Result};
use crate::query::exec::groupby_exec::GroupRow;
use crate::query::exec::timeseries_exec::TimedValues;
use crate::query::scan_output::ScanOutput;
use crate::query::spec::Query;
use crate::schema::TIME_COLUMN;
use crate::sql::bind::{Binder, Scope, position, unsupported};
use crate::sql::datum::{Datum, sort_compare};
use crate::sql::expr::{AggCall, AggFunc, BinOp, Expr};
use crate::sql::metadata;
use crate::table::{ScanTable, SqlType, TableColumn};
use crate::time::Interval;

/// A materialized relation: named, typed columns and rows.
#[derive(Debug, Clone, Default)]
pub struct Relation {
    /// Column names.
    pub names: Vec<String>,
    /// Column types.
    pub types: Vec<SqlType>,
    /// Rows.
    pub rows: Vec<Vec<Datum>>,
}

impl Relation {
    fn scope(&self) -> Scope {
        Scope {
            names: self.names.clone(),
            types: self.types.clone(),
        }
    }
}

/// Where a SELECT reads from.
enum Source {
    /// A datasource, read through native queries.
    Datasource { name: String, scope: Scope },
    /// Rows already materialized (subquery, CTE, metadata table).
    Rows(Relation),
}

/// One ORDER BY item, bound.
struct SortKey {
    /// Index into the output row (select list plus hidden sort expressions).
    index: usize,
    desc: bool,
    nulls_first: bool,
}

/// Plans and runs the queries of one statement.
#[derive(Debug)]
pub struct Planner<'a> {
    /// The engine.
    pub engine: &'a Engine,
    /// Expression binder (parameters, CURRENT_TIMESTAMP).
    pub binder: Binder<'a>,
    /// Native query context passed to every native query.
    pub native_context: Map<String, Value>,
    /// Cancellation flag passed to native queries.
    pub cancelled: Option<Arc<AtomicBool>>,
    /// Common table expressions in scope.
    pub ctes: Vec<(String, Relation)>,
    /// When explaining: native queries and relational steps recorded, nothing run.
    pub explain: Option<Vec<Value>>,
    /// The next SELECT is the whole statement, so it may answer as a projected scan.
    pub columnar_ok: bool,
    /// The statement's answer as a projected scan (then the returned relation has no rows).
    pub columnar_out: Option<ScanTable>,
}

fn conjuncts(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::Bin(BinOp::And, a, b) => {
            conjuncts(*a, out);
            conjuncts(*b, out);
        }
        other => out.push(other),
    }
}

fn is_const(e: &Expr) -> bool {
    let mut c = true;
    e.walk(&mut |x| c &= !matches!(x, Expr::Col(_) | Expr::Agg(_)));
    c
}

fn const_value(e: &Expr) -> Option<Datum> {
    if is_const(e) { e.eval(&[]).ok() } else { None }
}

type Ranges = Vec<(i64, i64)>;

fn intersect_ranges(a: &Ranges, b: &Ranges) -> Ranges {
    let mut out = Vec::new();
    for &(s1, e1) in a {
        for &(s2, e2) in b {
            let (s, e) = (s1.max(s2), e1.min(e2));
            if s < e {
                out.push((s, e));
            }
        }
    }
    normalize(out)
}

fn normalize(mut r: Ranges) -> Ranges {
    r.sort();
    let mut out: Ranges = Vec::new();
    for (s, e) in r {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// The set of `__time` values satisfying `e`, when `e` only constrains `__time` by constants.
fn time_ranges(e: &Expr, time_col: usize) -> Option<Ranges> {
    let (lo, hi) = (Interval::ETERNITY.start, Interval::ETERNITY.end);
    match e {
        Expr::Bin(BinOp::And, a, b) => Some(intersect_ranges(
            &time_ranges(a, time_col)?,
            &time_ranges(b, time_col)?,
        )),
        Expr::Bin(BinOp::Or, a, b) => {
            let mut r = time_ranges(a, time_col)?;
            r.extend(time_ranges(b, time_col)?);
            Some(normalize(r))
        }
        Expr::Bin(op, a, b) if op.is_comparison() && *op != BinOp::NotEq => {
            let (op, c) = match (a.as_ref(), b.as_ref()) {
                (Expr::Col(i), other) if *i == time_col => (*op, const_value(other)?),
                (other, Expr::Col(i)) if *i == time_col => (op.flip(), const_value(other)?),
                _ => return None,
            };
            let t = match c {
                Datum::Null => return Some(Vec::new()),
                Datum::Ts(t) => t,
                Datum::Str(ref s) => crate::sql::datum::parse_sql_timestamp(s)?,
                Datum::Long(t) => t,
                _ => return None,
            };
            let r = match op {
                BinOp::Eq => (t, t.saturating_add(1)),
                BinOp::Lt => (lo, t),
                BinOp::LtEq => (lo, t.saturating_add(1)),
                BinOp::Gt => (t.saturating_add(1), hi),
                _ => (t, hi),
            };
            Some(normalize(if r.0 < r.1 { vec![r] } else { vec![] }))
        }
        Expr::InList(x, list, false) if matches!(x.as_ref(), Expr::Col(i) if *i == time_col) => {
            let mut r = Vec::new();
            for item in list {
                match const_value(item)? {
                    Datum::Null => {}
                    d => {
                        let t = d.as_ts()?;
                        r.push((t, t.saturating_add(1)));
                    }
                }
            }
            Some(normalize(r))
        }
        _ => None,
    }
}

fn native_type(t: SqlType) -> &'static str {
    match t {
        SqlType::Bigint | SqlType::Timestamp | SqlType::Boolean => "LONG",
        SqlType::Double => "DOUBLE",
        _ => "STRING",
    }
}

fn not_null(col: &str) -> Value {
    json!({"type": "not", "field": {"type": "null", "column": col}})
}

/// A native filter equivalent to "`e` is TRUE" (or, with `negated`, "`e` is FALSE").
fn native_filter(e: &Expr, negated: bool, scope: &Scope) -> Option<Value> {
    let col_name = |e: &Expr| -> Option<(String, SqlType)> {
        match e {
            Expr::Col(i) if scope.names[*i] != TIME_COLUMN => {
                let t = scope.types[*i];
                matches!(t, SqlType::Varchar | SqlType::Bigint | SqlType::Double)
                    .then(|| (scope.names[*i].clone(), t))
            }
            _ => None,
        }
    };
    let match_value = |t: SqlType, d: &Datum| -> Option<Value> {
        match (t, d) {
            (SqlType::Varchar, Datum::Str(s)) => Some(Value::String(s.clone())),
            (SqlType::Bigint, Datum::Long(v)) => Some(Value::from(*v)),
            (SqlType::Double, Datum::Long(v)) => Some(json!(*v as f64)),
            (SqlType::Bigint | SqlType::Double, Datum::Double(v)) => {
                serde_json::Number::from_f64(*v).map(Value::Number)
            }
            _ => None,
        }
    };
    match e {
        Expr::Not(x) => native_filter(x, !negated, scope),
        Expr::Bin(op @ (BinOp::And | BinOp::Or), a, b) => {
            let is_and = (*op == BinOp::And) != negated;
            let fa = native_filter(a, negated, scope)?;
            let fb = native_filter(b, negated, scope)?;
            Some(json!({"type": if is_and { "and" } else { "or" }, "fields": [fa, fb]}))
        }
        Expr::Lit(d) => {
            let t = d.truth();
            let keep = if negated {
                t == Some(false)
            } else {
                t == Some(true)
            };
            Some(json!({"type": if keep { "true" } else { "false" }}))
        }
        Expr::IsNull(x, neg) => {
            let (c, _) = col_name(x)?;
            let f = json!({"type": "null", "column": c});
            if *neg != negated {
                Some(json!({"type": "not", "field": f}))
            } else {
                Some(f)
            }
        }
        Expr::Bin(op, a, b) if op.is_comparison() => {
            let (op, (c, t), d) = match (col_name(a), col_name(b)) {
                (Some(ct), None) => (*op, ct, const_value(b)?),
                (None, Some(ct)) => (op.flip(), ct, const_value(a)?),
                _ => return None,
            };
            if d.is_null() {
                return Some(json!({"type": "false"}));
            }
            let v = match_value(t, &d)?;
            let op = if negated {
                match op {
                    BinOp::Eq => BinOp::NotEq,
                    BinOp::NotEq => BinOp::Eq,
                    BinOp::Lt => BinOp::GtEq,
                    BinOp::LtEq => BinOp::Gt,
                    BinOp::Gt => BinOp::LtEq,
                    _ => BinOp::Lt,
                }
            } else {
                op
            };
            let mvt = if t == SqlType::Varchar {
                "STRING"
            } else if matches!(d, Datum::Double(_)) || t == SqlType::Double {
                "DOUBLE"
            } else {
                "LONG"
            };
            let eq = json!({"type": "equals", "column": c, "matchValueType": mvt, "matchValue": v});
            Some(match op {
                BinOp::Eq => eq,
                BinOp::NotEq => {
                    json!({"type": "and", "fields": [{"type": "not", "field": eq}, not_null(&c)]})
                }
                _ => {
                    let mut r = json!({"type": "range", "column": c, "matchValueType": mvt});
                    match op {
                        BinOp::Lt | BinOp::LtEq => {
                            r["upper"] = v;
                            r["upperOpen"] = Value::Bool(op == BinOp::Lt);
                        }
                        _ => {
                            r["lower"] = v;
                            r["lowerOpen"] = Value::Bool(op == BinOp::Gt);
                        }
                    }
                    r
                }
            })
        }
        Expr::InList(x, list, neg) => {
            let (c, t) = col_name(x)?;
            let mut values = Vec::new();
            let mut has_null = false;
            for item in list {
                let d = const_value(item)?;
                if d.is_null() {
                    has_null = true;
                    continue;
                }
                values.push(match_value(t, &d)?);
            }
            let negate = *neg != negated;
            if negate && has_null {
                // `x NOT IN (..., NULL)` is never TRUE.
                return Some(json!({"type": "false"}));
            }
            let f = if t == SqlType::Varchar {
                json!({"type": "in", "dimension": c, "values": values})
            } else {
                let mvt = if t == SqlType::Double {
                    "DOUBLE"
                } else {
                    "LONG"
                };
                let fields: Vec<Value> = values
                    .into_iter()
                    .map(|v| json!({"type": "equals", "column": c, "matchValueType": mvt, "matchValue": v}))
                    .collect();
                json!({"type": "or", "fields": fields})
            };
            Some(if negate {
                json!({"type": "and", "fields": [{"type": "not", "field": f}, not_null(&c)]})
            } else {
                f
            })
        }
        Expr::Like(x, p, neg) => {
            let (c, t) = col_name(x)?;
            if t != SqlType::Varchar {
                return None;
            }
            let mut f = json!({"type": "like", "dimension": c, "pattern": p.pattern});
            if let Some(esc) = p.escape {
                f["escape"] = Value::String(esc.to_string());
            }
            Some(if *neg != negated {
                json!({"type": "and", "fields": [{"type": "not", "field": f}, not_null(&c)]})
            } else {
                f
            })
        }
        _ => None,
    }
}

fn and_filters(mut fs: Vec<Value>) -> Option<Value> {
    match fs.len() {
        0 => None,
        1 => fs.pop(),
        _ => Some(json!({"type": "and", "fields": fs})),
    }
}

/// WHERE split for a datasource.
struct WherePlan {
    /// Time ranges (`None`: all of time).
    ranges: Option<Ranges>,
    /// Native filter.
    filter: Option<Value>,
    /// What remains for the relational layer.
    residual: Vec<Expr>,
}

fn split_where(w: Option<Expr>, scope: &Scope) -> WherePlan {
    let mut plan = WherePlan {
        ranges: None,
        filter: None,
        residual: Vec::new(),
    };
    let Some(w) = w else {
        return plan;
    };
    let mut cs = Vec::new();
    conjuncts(w, &mut cs);
    let mut filters = Vec::new();
    let time_col = scope.time_col();
    for c in cs {
        if let Some(tc) = time_col
            && let Some(r) = time_ranges(&c, tc)
        {
            plan.ranges = Some(match &plan.ranges {
                None => r,
                Some(prev) => intersect_ranges(prev, &r),
            });
            continue;
        }
        match native_filter(&c, false, scope) {
            Some(f) => filters.push(f),
            None => plan.residual.push(c),
        }
    }
    plan.filter = and_filters(filters);
    plan
}

fn intervals_json(ranges: &Option<Ranges>) -> Value {
    match ranges {
        None => json!([Interval::ETERNITY.to_string()]),
        Some(r) => Value::Array(
            r.iter()
                .filter_map(|&(s, e)| Interval::new(s, e).ok())
                .map(|i| Value::String(i.to_string()))
                .collect(),
        ),
    }
}

/// ORDER BY … LIMIT handed to the native aggregation query.
struct OrderPushdown {
    /// A topN: (threshold, (output column ranked by, descending)).
    topn: Option<(usize, (usize, bool))>,
    /// A timeseries ordered by its bucket alone: (rows, descending).
    time_limit: Option<(usize, bool)>,
    /// A groupBy's limitSpec: the rows wanted (limit plus offset) and the ORDER BY keys,
    /// all plain output columns.
    group_limit: Option<(usize, Vec<OutputOrder>)>,
}

/// One ORDER BY key over a plain output column: (column, descending, nulls first).
type OutputOrder = (usize, bool, bool);

/// How one SQL aggregate is computed from native aggregator outputs.
struct NativeAgg {
    /// Expression over the native output row giving the SQL value.
    expr: Expr,
    /// For AVG, the native row's sum and non-NULL count columns: `expr` is
    /// `CASE WHEN count > 0 THEN CAST(sum AS DOUBLE) / count END`, computed directly.
    avg: Option<(usize, usize)>,
}

impl NativeAgg {
    /// The SQL value over a native output row.
    fn eval(&self, row: &[Datum]) -> Result<Datum> {
        if let Some((sum, count)) = self.avg
            && let (Some(s), Some(Datum::Long(n))) = (row.get(sum), row.get(count))
        {
            let s = match s {
                Datum::Long(v) => Some(*v as f64),
                Datum::Double(v) => Some(*v),
                Datum::Null => None,
                _ => return self.expr.eval(row),
            };
            return Ok(match s {
                Some(s) if *n > 0 => Datum::Double(s / *n as f64),
                _ => Datum::Null,
            });
        }
        self.expr.eval(row)
    }
}

impl Planner<'_> {
    /// Run a query expression.
    pub fn run_query(&mut self, q: &ast::Query) -> Result<Relation> {
        if q.fetch.is_some() {
            return Err(unsupported("FETCH", q));
        }
        let top = std::mem::take(&mut self.columnar_ok);
        let saved = self.ctes.len();
        if let Some(with) = &q.with {
            if with.recursive {
                return Err(unsupported("WITH RECURSIVE", q));
            }
            for cte in &with.cte_tables {
                let mut rel = self.run_query(&cte.query)?;
                if !cte.alias.columns.is_empty() {
                    if cte.alias.columns.len() != rel.names.len() {
                        return Err(Error::invalid(format!(
                            "WITH {}: {} column names for {} columns",
                            cte.alias.name.value,
                            cte.alias.columns.len(),
                            rel.names.len()
                        )));
                    }
                    rel.names = cte
                        .alias
                        .columns
                        .iter()
                        .map(|c| c.name.value.clone())
                        .collect();
                }
                self.ctes.push((cte.alias.name.value.clone(), rel));
            }
        }
        let (limit, offset) = self.limit_offset(q)?;
        let order: Vec<ast::OrderByExpr> = match &q.order_by {
            None => Vec::new(),
            Some(ob) => match &ob.kind {
                ast::OrderByKind::Expressions(v) => v.clone(),
                ast::OrderByKind::All(_) => return Err(unsupported("ORDER BY ALL", q)),
            },
        };
        let result = match q.body.as_ref() {
            SetExpr::Select(s) => {
                self.columnar_ok = top && q.with.is_none();
                self.run_select(s, &order, limit, offset)
            }
            other => {
                let rel = self.run_set_expr(other)?;
                self.order_limit_output(rel, &order, limit, offset)
            }
        };
        self.ctes.truncate(saved);
        result
    }

    fn limit_offset(&self, q: &ast::Query) -> Result<(Option<usize>, usize)> {
        let num = |e: &ast::Expr, what: &str| -> Result<usize> {
            let b = self.binder.bind(e, &Scope::default(), false)?;
            match const_value(&b) {
                Some(Datum::Long(n)) if n >= 0 => Ok(n as usize),
                _ => Err(Error::invalid(format!(
                    "{what} must be a non-negative integer{}",
                    position(e.span())
                ))),
            }
        };
        Ok(match &q.limit_clause {
            None => (None, 0),
            Some(ast::LimitClause::LimitOffset {
                limit,
                offset,
                limit_by,
            }) => {
                if !limit_by.is_empty() {
                    return Err(unsupported("LIMIT BY", q));
                }
                (
                    limit.as_ref().map(|l| num(l, "LIMIT")).transpose()?,
                    offset
                        .as_ref()
                        .map(|o| num(&o.value, "OFFSET"))
                        .transpose()?
                        .unwrap_or(0),
                )
            }
            Some(ast::LimitClause::OffsetCommaLimit { offset, limit }) => {
                (Some(num(limit, "LIMIT")?), num(offset, "OFFSET")?)
            }
        })
    }

    fn run_set_expr(&mut self, s: &SetExpr) -> Result<Relation> {
        match s {
            SetExpr::Select(sel) => self.run_select(sel, &[], None, 0),
            SetExpr::Query(q) => self.run_query(q),
            SetExpr::SetOperation {
                left,
                op,
                set_quantifier,
                right,
            } => {
                if *op != SetOperator::Union {
                    return Err(unsupported(&format!("{op}"), s));
                }
                let l = self.run_set_expr(left)?;
                let r = self.run_set_expr(right)?;
                if l.names.len() != r.names.len() {
                    return Err(Error::invalid(format!(
                        "UNION branches have different column counts ({} and {}){}",
                        l.names.len(),
                        r.names.len(),
                        position(s.span())
                    )));
                }
                let mut out = l;
                for (i, t) in r.types.iter().enumerate() {
                    if out.types[i] != *t
                        && out.types[i] == SqlType::Bigint
                        && *t == SqlType::Double
                    {
                        out.types[i] = SqlType::Double;
                    }
                }
                out.rows.extend(r.rows);
                match set_quantifier {
                    SetQuantifier::All => {}
                    SetQuantifier::Distinct | SetQuantifier::None => {
                        self.step("Union(DISTINCT)");
                        dedupe(&mut out.rows);
                    }
                    other => return Err(unsupported(&format!("UNION {other}"), s)),
                }
                self.step("UnionAll");
                Ok(out)
            }
            SetExpr::Values(v) => {
                let mut rel = Relation::default();
                for (ri, row) in v.rows.iter().enumerate() {
                    let vals = row
                        .iter()
                        .map(|e| {
                            let b = self.binder.bind(e, &Scope::default(), false)?;
                            b.eval(&[])
                        })
                        .collect::<Result<Vec<_>>>()?;
                    if ri == 0 {
                        rel.names = (0..vals.len()).map(|i| format!("EXPR${i}")).collect();
                        rel.types = row
                            .iter()
                            .zip(&vals)
                            .map(|(_, d)| Expr::Lit(d.clone()).ty(&[]))
                            .collect();
                    }
                    rel.rows.push(vals);
                }
                Ok(rel)
            }
            other => Err(unsupported("this kind of query body", other)),
        }
    }

    fn order_limit_output(
        &mut self,
        mut rel: Relation,
        order: &[ast::OrderByExpr],
        limit: Option<usize>,
        offset: usize,
    ) -> Result<Relation> {
        if !order.is_empty() {
            let scope = rel.scope();
            let mut keys = Vec::new();
            for o in order {
                let b = self.binder.bind(&o.expr, &scope, false)?;
                let idx = match b {
                    Expr::Col(i) => i,
                    Expr::Lit(Datum::Long(n)) if n >= 1 && (n as usize) <= rel.names.len() => {
                        n as usize - 1
                    }
                    _ => {
                        return Err(Error::invalid(format!(
                            "ORDER BY over a UNION must name an output column{}",
                            position(o.expr.span())
                        )));
                    }
                };
                let desc = matches!(o.options.sort, Some(ast::OrderBySort::Desc));
                keys.push(SortKey {
                    index: idx,
                    desc,
                    nulls_first: o.options.nulls_first.unwrap_or(desc),
                });
            }
            sort_rows(&mut rel.rows, &keys);
        }
        apply_limit(&mut rel.rows, limit, offset);
        Ok(rel)
    }

    fn step(&mut self, s: &str) {
        if let Some(e) = self.explain.as_mut() {
            e.push(json!({"relational": s}));
        }
    }

    fn source(&mut self, sel: &ast::Select) -> Result<Option<Source>> {
        if sel.from.is_empty() {
            return Ok(None);
        }
        if sel.from.len() > 1 {
            return Err(unsupported(
                "a comma join (several tables in FROM)",
                &sel.from[1].relation,
            ));
        }
        let twj = &sel.from[0];
        if let Some(j) = twj.joins.first() {
            return Err(unsupported("JOIN", &j.relation));
        }
        match &twj.relation {
            TableFactor::Table { name, args, .. } => {
                if args.is_some() {
                    return Err(unsupported("table functions", &twj.relation));
                }
                let parts: Vec<String> = name
                    .0
                    .iter()
                    .map(|p| match p {
                        ast::ObjectNamePart::Identifier(i) => i.value.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                let (schema, table) = match parts.as_slice() {
                    [t] => (None, t.clone()),
                    [s, t] => (Some(s.clone()), t.clone()),
                    [_, s, t] => (Some(s.clone()), t.clone()),
                    _ => return Err(Error::invalid(format!("invalid table name {name}"))),
                };
                if schema.is_none()
                    && let Some((_, rel)) = self.ctes.iter().rev().find(|(n, _)| *n == table)
                {
                    return Ok(Some(Source::Rows(rel.clone())));
                }
                match schema.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    None | Some("druid") => {}
                    Some("information_schema") => {
                        return Ok(Some(Source::Rows(metadata::information_schema(
                            self.engine,
                            &table,
                        )?)));
                    }
                    Some("sys") => {
                        return Ok(Some(Source::Rows(metadata::sys_table(
                            self.engine,
                            &table,
                        )?)));
                    }
                    Some(other) => {
                        return Err(Error::NotFound(format!(
                            "schema '{other}' not found{} (schemas: druid, INFORMATION_SCHEMA, sys)",
                            position(twj.relation.span())
                        )));
                    }
                }
                match metadata::datasource_columns(self.engine, &table)? {
                    Some(cols) => Ok(Some(Source::Datasource {
                        name: table,
                        scope: Scope {
                            names: cols.iter().map(|c| c.0.clone()).collect(),
                            types: cols.iter().map(|c| c.1).collect(),
                        },
                    })),
                    None => Err(Error::NotFound(format!(
                        "Object '{table}' not found{}",
                        position(twj.relation.span())
                    ))),
                }
            }
            TableFactor::Derived {
                subquery, alias, ..
            } => {
                let mut rel = self.run_query(subquery)?;
                if let Some(a) = alias
                    && !a.columns.is_empty()
                {
                    if a.columns.len() != rel.names.len() {
                        return Err(Error::invalid(format!(
                            "subquery alias {} names {} columns, the subquery has {}",
                            a.name.value,
                            a.columns.len(),
                            rel.names.len()
                        )));
                    }
                    rel.names = a.columns.iter().map(|c| c.name.value.clone()).collect();
                }
                Ok(Some(Source::Rows(rel)))
            }
            other => Err(unsupported("this kind of FROM item", other)),
        }
    }

    fn run_select(
        &mut self,
        sel: &ast::Select,
        order: &[ast::OrderByExpr],
        limit: Option<usize>,
        offset: usize,
    ) -> Result<Relation> {
        if sel.top.is_some() {
            return Err(unsupported("TOP", sel));
        }
        if sel.qualify.is_some() || !sel.named_window.is_empty() {
            return Err(unsupported("QUALIFY / WINDOW", sel));
        }
        let columnar = std::mem::take(&mut self.columnar_ok);
        let source = self.source(sel)?;
        let scope = match &source {
            None => Scope::default(),
            Some(Source::Datasource { scope, .. }) => scope.clone(),
            Some(Source::Rows(r)) => r.scope(),
        };
        // Projection.
        let mut items: Vec<(String, Expr)> = Vec::new();
        for (i, item) in sel.projection.iter().enumerate() {
            match item {
                ast::SelectItem::UnnamedExpr(e) => {
                    let b = self.binder.bind(e, &scope, true)?;
                    let name = match e {
                        ast::Expr::Identifier(id) => id.value.clone(),
                        ast::Expr::CompoundIdentifier(p) => {
                            p.last().map(|x| x.value.clone()).unwrap_or_default()
                        }
                        _ => format!("EXPR${i}"),
                    };
                    items.push((name, b));
                }
                ast::SelectItem::ExprWithAlias { expr, alias } => {
                    items.push((alias.value.clone(), self.binder.bind(expr, &scope, true)?));
                }
                ast::SelectItem::Wildcard(_) | ast::SelectItem::QualifiedWildcard(..) => {
                    for (ci, n) in scope.names.iter().enumerate() {
                        items.push((n.clone(), Expr::Col(ci)));
                    }
                }
                other => return Err(unsupported("this select item", other)),
            }
        }
        if items.is_empty() {
            return Err(Error::invalid("SELECT has no columns".to_string()));
        }
        let where_expr = sel
            .selection
            .as_ref()
            .map(|w| self.binder.bind(w, &scope, false))
            .transpose()?;
        // GROUP BY.
        let mut keys: Vec<Expr> = Vec::new();
        match &sel.group_by {
            ast::GroupByExpr::All(_) => return Err(unsupported("GROUP BY ALL", sel)),
            ast::GroupByExpr::Expressions(exprs, mods) => {
                if !mods.is_empty() {
                    return Err(unsupported("GROUP BY modifiers", sel));
                }
                for g in exprs {
                    if matches!(
                        g,
                        ast::Expr::GroupingSets(_) | ast::Expr::Cube(_) | ast::Expr::Rollup(_)
                    ) {
                        return Err(unsupported("GROUPING SETS / CUBE / ROLLUP", g));
                    }
                    let k = self.bind_item_ref(g, &scope, &items, false)?;
                    if k.has_agg() {
                        return Err(Error::invalid(format!(
                            "aggregate functions are not allowed in GROUP BY{}",
                            position(g.span())
                        )));
                    }
                    if !keys.contains(&k) {
                        keys.push(k);
                    }
                }
            }
        }
        let having = sel
            .having
            .as_ref()
            .map(|h| self.binder.bind(h, &scope, true))
            .transpose()?;
        // ORDER BY: output index, or an extra expression.
        let mut sort_exprs: Vec<(Expr, bool, bool, Option<usize>)> = Vec::new();
        for o in order {
            let desc = matches!(o.options.sort, Some(ast::OrderBySort::Desc));
            let nulls_first = o.options.nulls_first.unwrap_or(desc);
            let out_idx = match &o.expr {
                ast::Expr::Value(v) if matches!(v.value, ast::Value::Number(..)) => {
                    let n: usize = v.value.to_string().parse().unwrap_or(0);
                    if n == 0 || n > items.len() {
                        return Err(Error::invalid(format!(
                            "ORDER BY ordinal {n} is out of range (1..{}){}",
                            items.len(),
                            position(o.expr.span())
                        )));
                    }
                    Some(n - 1)
                }
                // Select-list aliases win over input columns (as in Calcite).
                ast::Expr::Identifier(id) => items.iter().position(|(n, _)| *n == id.value),
                _ => None,
            };
            let e = match out_idx {
                Some(i) => items[i].1.clone(),
                None => self.binder.bind(&o.expr, &scope, true)?,
            };
            let idx = out_idx.or_else(|| items.iter().position(|(_, x)| *x == e));
            sort_exprs.push((e, desc, nulls_first, idx));
        }
        let mut distinct = match &sel.distinct {
            None => false,
            Some(ast::Distinct::Distinct) => true,
            Some(ast::Distinct::All) => false,
            Some(other) => return Err(unsupported(&format!("{other}"), sel)),
        };
        let has_agg = items.iter().any(|(_, e)| e.has_agg())
            || having.as_ref().is_some_and(Expr::has_agg)
            || sort_exprs.iter().any(|s| s.0.has_agg());
        let aggregate = has_agg || !keys.is_empty();
        if having.is_some() && !aggregate {
            return Err(Error::invalid(
                "HAVING needs GROUP BY or aggregates".to_string(),
            ));
        }
        if distinct && !aggregate {
            // SELECT DISTINCT a, b ≡ GROUP BY a, b.
            keys = Vec::new();
            for (_, e) in &items {
                if !keys.contains(e) {
                    keys.push(e.clone());
                }
            }
            distinct = false;
            for s in &sort_exprs {
                if s.3.is_none() {
                    return Err(Error::invalid(
                        "with SELECT DISTINCT, ORDER BY expressions must appear in the select list"
                            .to_string(),
                    ));
                }
            }
        }
        let aggregate = aggregate || !keys.is_empty();

        // Rewrite the post-aggregation expressions over [keys..., aggs...].
        let mut calls: Vec<AggCall> = Vec::new();
        let post = |e: &Expr, calls: &mut Vec<AggCall>| -> Result<Expr> {
            if !aggregate {
                return Ok(e.clone());
            }
            e.rewrite(&mut |x| {
                if let Some(k) = keys.iter().position(|k| k == x) {
                    return Ok(Some(Expr::Col(k)));
                }
                match x {
                    Expr::Agg(a) => {
                        if a.arg.as_ref().is_some_and(Expr::has_agg) {
                            return Err(Error::invalid(format!(
                                "aggregate {} cannot contain an aggregate",
                                a.func.name()
                            )));
                        }
                        let j = match calls.iter().position(|c| c == a.as_ref()) {
                            Some(j) => j,
                            None => {
                                calls.push(a.as_ref().clone());
                                calls.len() - 1
                            }
                        };
                        Ok(Some(Expr::Col(keys.len() + j)))
                    }
                    Expr::Col(i) => Err(Error::invalid(format!(
                        "column '{}' must appear in GROUP BY or be used in an aggregate",
                        scope.names.get(*i).cloned().unwrap_or_default()
                    ))),
                    _ => Ok(None),
                }
            })
        };
        let post_items: Vec<Expr> = items
            .iter()
            .map(|(_, e)| post(e, &mut calls))
            .collect::<Result<_>>()?;
        let post_having = having.as_ref().map(|h| post(h, &mut calls)).transpose()?;
        let post_sorts: Vec<Expr> = sort_exprs
            .iter()
            .map(|s| post(&s.0, &mut calls))
            .collect::<Result<_>>()?;

        // Produce the (aggregated) input rows.
        let (rows, row_types): (Vec<Vec<Datum>>, Vec<SqlType>) = match source {
            None => (vec![Vec::new()], Vec::new()),
            Some(Source::Rows(rel)) => {
                let mut rows = rel.rows;
                if let Some(w) = &where_expr {
                    self.step("Filter");
                    rows = filter_rows(rows, w)?;
                }
                (rows, rel.types)
            }
            Some(Source::Datasource {
                name,
                scope: ds_scope,
            }) => {
                let wp = split_where(where_expr.clone(), &ds_scope);
                if aggregate && wp.residual.is_empty() {
                    let pushdown_order: Vec<(usize, bool)> = sort_exprs
                        .iter()
                        .zip(&post_sorts)
                        .filter_map(|(s, p)| match p {
                            Expr::Col(c) => Some((*c, s.1)),
                            _ => None,
                        })
                        .collect();
                    let topn_ok = post_having.is_none()
                        && offset == 0
                        && limit.is_some()
                        && pushdown_order.len() == 1
                        && sort_exprs.len() == 1;
                    // ORDER BY the time bucket alone, with a LIMIT: a timeseries returns
                    // just those buckets (the bucket is never NULL, so the order is exact).
                    let time_limit = match (limit, post_sorts.as_slice(), &post_having) {
                        (Some(l), [Expr::Col(0)], None) if keys.len() == 1 && !distinct => {
                            Some((l + offset, sort_exprs[0].1))
                        }
                        _ => None,
                    };
                    // ORDER BY plain output columns with a LIMIT: the native groupBy sorts and
                    // limits (in the same order, nulls placed as SQL wants), so it can cut
                    // each segment's groups.
                    let group_limit = match limit {
                        Some(l) if post_having.is_none() && !distinct => sort_exprs
                            .iter()
                            .zip(&post_sorts)
                            .map(|(s, p)| p.as_col().map(|c| (c, s.1, s.2)))
                            .collect::<Option<Vec<_>>>()
                            .map(|cols| (l.saturating_add(offset), cols)),
                        _ => None,
                    };
                    if let Some(rows) = self.native_aggregate(
                        &name,
                        &ds_scope,
                        &wp,
                        &keys,
                        &calls,
                        OrderPushdown {
                            topn: if topn_ok {
                                limit.map(|l| (l, pushdown_order[0]))
                            } else {
                                None
                            },
                            time_limit,
                            group_limit,
                        },
                    )? {
                        let types = keys
                            .iter()
                            .map(|k| k.ty(&ds_scope.types))
                            .chain(calls.iter().map(|c| c.ty(&ds_scope.types)))
                            .collect();
                        return self.finish(
                            rows,
                            types,
                            &items,
                            &post_items,
                            post_having,
                            &post_sorts,
                            &sort_exprs,
                            distinct,
                            limit,
                            offset,
                            true,
                        );
                    }
                }
                // Plain columns of the datasource with a native filter: the scan's rows are
                // the answer, kept as typed columns.
                let plain: Option<Vec<usize>> = post_items.iter().map(Expr::as_col).collect();
                if columnar
                    && !aggregate
                    && wp.residual.is_empty()
                    && post_having.is_none()
                    && sort_exprs.is_empty()
                    && !distinct
                    && let Some(plain) = plain
                    && !plain.is_empty()
                {
                    let mut needed = plain.clone();
                    needed.sort_unstable();
                    needed.dedup();
                    let projection: Vec<usize> = plain
                        .iter()
                        .map(|c| needed.binary_search(c).unwrap_or(0))
                        .collect();
                    let names: Vec<String> = items.iter().map(|(n, _)| n.clone()).collect();
                    let types: Vec<SqlType> =
                        post_items.iter().map(|e| e.ty(&ds_scope.types)).collect();
                    let scan = if limit == Some(0) {
                        None
                    } else {
                        self.native_scan_output(&name, &ds_scope, &wp, &needed, limit, offset)?
                    };
                    if self.explain.is_none() {
                        self.columnar_out = Some(ScanTable {
                            columns: names
                                .iter()
                                .zip(&types)
                                .map(|(n, t)| TableColumn {
                                    name: n.clone(),
                                    sql_type: *t,
                                })
                                .collect(),
                            projection,
                            scan: scan.unwrap_or_default(),
                        });
                    }
                    return Ok(Relation {
                        names,
                        types,
                        rows: Vec::new(),
                    });
                }
                // Scan plus relational steps.
                let mut needed: Vec<usize> = Vec::new();
                for (_, e) in &items {
                    e.columns(&mut needed);
                }
                for e in wp.residual.iter().chain(keys.iter()) {
                    e.columns(&mut needed);
                }
                if let Some(h) = &having {
                    h.columns(&mut needed);
                }
                for s in &sort_exprs {
                    s.0.columns(&mut needed);
                }
                for c in &calls {
                    if let Some(t) = c.time_col {
                        needed.push(t);
                    }
                }
                needed.sort_unstable();
                needed.dedup();
                let scan_limit =
                    if !aggregate && wp.residual.is_empty() && sort_exprs.is_empty() && !distinct {
                        limit.map(|l| l + offset)
                    } else {
                        None
                    };
                let rows = self.native_scan(&name, &ds_scope, &wp, &needed, scan_limit)?;
                let mut rows = rows;
                if !wp.residual.is_empty() {
                    self.step("Filter (not expressible as a native filter)");
                    let mut cond = wp.residual[0].clone();
                    for r in &wp.residual[1..] {
                        cond = Expr::Bin(BinOp::And, Box::new(cond), Box::new(r.clone()));
                    }
                    rows = filter_rows(rows, &cond)?;
                }
                (rows, ds_scope.types.clone())
            }
        };
        let (rows, types) = if aggregate {
            self.step("Aggregate");
            let rows = aggregate_rows(&rows, &keys, &calls)?;
            let types = keys
                .iter()
                .map(|k| k.ty(&row_types))
                .chain(calls.iter().map(|c| c.ty(&row_types)))
                .collect();
            (rows, types)
        } else {
            (rows, row_types)
        };
        self.finish(
            rows,
            types,
            &items,
            &post_items,
            post_having,
            &post_sorts,
            &sort_exprs,
            distinct,
            limit,
            offset,
            false,
        )
    }

    /// Bind a GROUP BY item: an ordinal or a select alias refers to the select list.
    fn bind_item_ref(
        &self,
        e: &ast::Expr,
        scope: &Scope,
        items: &[(String, Expr)],
        aggs: bool,
    ) -> Result<Expr> {
        if let ast::Expr::Value(v) = e
            && let ast::Value::Number(n, _) = &v.value
        {
            let n: usize = n.parse().unwrap_or(0);
            if n == 0 || n > items.len() {
                return Err(Error::invalid(format!(
                    "GROUP BY ordinal {n} is out of range (1..{}){}",
                    items.len(),
                    position(e.span())
                )));
            }
            return Ok(items[n - 1].1.clone());
        }
        if let ast::Expr::Identifier(id) = e
            && scope.resolve(&id.value).is_none()
            && let Some((_, x)) = items.iter().find(|(n, _)| *n == id.value)
        {
            return Ok(x.clone());
        }
        self.binder.bind(e, scope, aggs)
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        rows: Vec<Vec<Datum>>,
        types: Vec<SqlType>,
        items: &[(String, Expr)],
        post_items: &[Expr],
        having: Option<Expr>,
        post_sorts: &[Expr],
        sort_exprs: &[(Expr, bool, bool, Option<usize>)],
        distinct: bool,
        limit: Option<usize>,
        offset: usize,
        _native: bool,
    ) -> Result<Relation> {
        let mut rows = rows;
        if let Some(h) = &having {
            self.step("Having");
            rows = filter_rows(rows, h)?;
        }
        let n = items.len();
        let mut keys = Vec::new();
        let mut extra: Vec<&Expr> = Vec::new();
        for (s, p) in sort_exprs.iter().zip(post_sorts) {
            let index = match s.3 {
                Some(i) => i,
                None => {
                    extra.push(p);
                    n + extra.len() - 1
                }
            };
            keys.push(SortKey {
                index,
                desc: s.1,
                nulls_first: s.2,
            });
        }
        self.step("Project");
        // Plain column references move their cell out of the input row (copied only when the
        // column is output twice); computed values are evaluated first, over the whole row.
        let exprs: Vec<&Expr> = post_items.iter().chain(extra.iter().copied()).collect();
        let plain: Vec<Option<usize>> = exprs.iter().map(|e| e.as_col()).collect();
        let mut uses: HashMap<usize, usize> = HashMap::new();
        for i in plain.iter().flatten() {
            *uses.entry(*i).or_default() += 1;
        }
        // `SELECT *` and the like: the rows are already the output.
        let identity = plain.iter().enumerate().all(|(k, p)| *p == Some(k))
            && rows.iter().all(|r| r.len() == plain.len());
        let mut out = Vec::with_capacity(if identity { 0 } else { rows.len() });
        if identity {
            out = rows;
        } else {
            for mut r in rows {
                let mut o = Vec::with_capacity(exprs.len());
                for (e, p) in exprs.iter().zip(&plain) {
                    o.push(match p {
                        Some(_) => Datum::Null,
                        None => e.eval(&r)?,
                    });
                }
                for (k, p) in plain.iter().enumerate() {
                    if let Some(i) = *p
                        && let Some(cell) = r.get_mut(i)
                    {
                        o[k] = if uses.get(&i).copied().unwrap_or(0) > 1 {
                            cell.clone()
                        } else {
                            std::mem::replace(cell, Datum::Null)
                        };
                    }
                }
                out.push(o);
            }
        }
        if distinct {
            self.step("Distinct");
            dedupe(&mut out);
        }
        if !keys.is_empty() {
            self.step("Sort");
            sort_rows(&mut out, &keys);
        }
        if limit.is_some() || offset > 0 {
            self.step("Limit");
        }
        apply_limit(&mut out, limit, offset);
        for r in &mut out {
            r.truncate(n);
        }
        Ok(Relation {
            names: items.iter().map(|(nm, _)| nm.clone()).collect(),
            types: post_items.iter().map(|e| e.ty(&types)).collect(),
            rows: out,
        })
    }

    fn context_json(&self) -> Value {
        Value::Object(self.native_context.clone())
    }

    fn run_native(&mut self, q: Value) -> Result<Option<Query>> {
        let parsed = Query::from_value(&q).map_err(|e| {
            Error::internal(format!("SQL planned an invalid native query: {e}: {q}"))
        })?;
        if let Some(ex) = self.explain.as_mut() {
            ex.push(json!({"query": q}));
            return Ok(None);
        }
        Ok(Some(parsed))
    }

    /// Run the native scan of `cols` (scope indices; the time column when empty) under the
    /// WHERE plan; `None` when explaining or when the time filter matches nothing.
    fn native_scan_output(
        &mut self,
        ds: &str,
        scope: &Scope,
        wp: &WherePlan,
        cols: &[usize],
        limit: Option<usize>,
        offset: usize,
    ) -> Result<Option<ScanOutput>> {
        if matches!(&wp.ranges, Some(r) if r.is_empty()) {
            self.step("Empty (time filter matches nothing)");
            return Ok(None);
        }
        let mut q = json!({
            "queryType": "scan",
            "dataSource": ds,
            "intervals": intervals_json(&wp.ranges),
            "columns": cols.iter().map(|&c| scope.names[c].clone()).collect::<Vec<_>>(),
            "resultFormat": "compactedList",
            "context": self.context_json(),
        });
        if let Some(f) = &wp.filter {
            q["filter"] = f.clone();
        }
        if let Some(l) = limit {
            q["limit"] = json!(l);
        }
        if offset > 0 {
            q["offset"] = json!(offset);
        }
        let Some(parsed) = self.run_native(q)? else {
            return Ok(None);
        };
        match self.engine.query_output(&parsed, self.cancelled.clone())? {
            QueryOutput::Scan(s) => Ok(Some(s)),
            QueryOutput::Json(_) => Err(Error::internal("a scan answered without rows")),
        }
    }

    fn native_scan(
        &mut self,
        ds: &str,
        scope: &Scope,
        wp: &WherePlan,
        cols: &[usize],
        limit: Option<usize>,
    ) -> Result<Vec<Vec<Datum>>> {
        let cols: Vec<usize> = if cols.is_empty() {
            scope.time_col().into_iter().collect()
        } else {
            cols.to_vec()
        };
        let Some(out) = self.native_scan_output(ds, scope, wp, &cols, limit, 0)? else {
            return Ok(Vec::new());
        };
        let width = scope.names.len();
        let mut rows = Vec::with_capacity(out.num_rows());
        // Each batch is freed once converted, so a large scan is not held twice.
        for batch in out.batches {
            let map: Vec<Option<usize>> = batch.columns.iter().map(|n| scope.resolve(n)).collect();
            for r in 0..batch.rows {
                let mut row = vec![Datum::Null; width];
                for (col, m) in batch.data.iter().zip(&map) {
                    if let Some(i) = *m {
                        row[i] = Datum::from_scan(col, r, scope.types[i]);
                    }
                }
                rows.push(row);
            }
        }
        Ok(rows)
    }

    /// Plan the aggregation as one native query; `None` when some part is not expressible.
    fn native_aggregate(
        &mut self,
        ds: &str,
        scope: &Scope,
        wp: &WherePlan,
        keys: &[Expr],
        calls: &[AggCall],
        order: OrderPushdown,
    ) -> Result<Option<Vec<Vec<Datum>>>> {
        let OrderPushdown {
            topn,
            time_limit,
            group_limit,
        } = order;
        let time_col = scope.time_col();
        let mut granularity: Option<Value> = None;
        let mut dims: Vec<(usize, Value)> = Vec::new(); // key index → dimension spec
        let mut time_key: Option<usize> = None;
        for (ki, k) in keys.iter().enumerate() {
            match k {
                Expr::TimeFloor(x, spec)
                    if matches!(x.as_ref(), Expr::Col(c) if Some(*c) == time_col)
                        && time_key.is_none() =>
                {
                    granularity = Some(spec.json.clone());
                    time_key = Some(ki);
                }
                Expr::Col(c) if Some(*c) == time_col && time_key.is_none() => {
                    granularity = Some(json!("none"));
                    time_key = Some(ki);
                }
                Expr::Col(c)
                    if matches!(
                        scope.types[*c],
                        SqlType::Varchar | SqlType::Bigint | SqlType::Double
                    ) =>
                {
                    let t = scope.types[*c];
                    dims.push((
                        ki,
                        json!({"type": "default", "dimension": scope.names[*c], "outputName": format!("d{ki}"), "outputType": native_type(t)}),
                    ));
                }
                _ => return Ok(None),
            }
        }
        // Aggregators.
        let mut aggs: Vec<Value> = Vec::new();
        let add = |spec: Value, aggs: &mut Vec<Value>| -> usize {
            let mut probe = spec.clone();
            if let Some(o) = probe.as_object_mut() {
                o.remove("name");
            }
            for (i, a) in aggs.iter().enumerate() {
                let mut b = a.clone();
                if let Some(o) = b.as_object_mut() {
                    o.remove("name");
                }
                if b == probe {
                    return i;
                }
            }
            let mut s = spec;
            set_name(&mut s, &format!("a{}", aggs.len()));
            aggs.push(s);
            aggs.len() - 1
        };
        let mut native: Vec<NativeAgg> = Vec::new();
        let mut single: Vec<Option<usize>> = Vec::new();
        // Native output layout: [__time, d*, a*]; column index of aggregator j is 1 + dims + j.
        let base = 1 + dims.len();
        for c in calls {
            let filter = match &c.filter {
                None => None,
                Some(f) => match native_filter(f, false, scope) {
                    Some(nf) => Some(nf),
                    None => return Ok(None),
                },
            };
            let wrap = |inner: Value| -> Value {
                match &filter {
                    None => inner,
                    Some(f) => json!({"type": "filtered", "filter": f, "aggregator": inner}),
                }
            };
            let arg_col = match &c.arg {
                None => None,
                Some(Expr::Col(i)) => Some(*i),
                Some(_) => return Ok(None),
            };
            let count_star = wrap(json!({"type": "count"}));
            let nonnull = |col: usize| -> Value {
                if Some(col) == time_col {
                    wrap(json!({"type": "count"}))
                } else {
                    let mut f = json!({"type": "filtered", "filter": not_null(&scope.names[col]), "aggregator": {"type": "count"}});
                    if let Some(outer) = &filter {
                        f = json!({"type": "filtered", "filter": outer, "aggregator": f});
                    }
                    f
                }
            };
            let col_of = |j: usize| Expr::Col(base + j);
            let null_unless = |value: Expr, count: Expr| -> Expr {
                Expr::Case(
                    vec![(
                        Expr::Bin(
                            BinOp::Gt,
                            Box::new(count),
                            Box::new(Expr::Lit(Datum::Long(0))),
                        ),
                        value,
                    )],
                    None,
                )
            };
            let mut avg = None;
            let (expr, one) = match (c.func, arg_col) {
                (AggFunc::CountStar, _) => {
                    let j = add(count_star, &mut aggs);
                    (col_of(j), Some(j))
                }
                (AggFunc::Count, Some(col)) => {
                    let j = add(nonnull(col), &mut aggs);
                    (col_of(j), Some(j))
                }
                (
                    AggFunc::Sum
                    | AggFunc::Min
                    | AggFunc::Max
                    | AggFunc::Avg
                    | AggFunc::Earliest
                    | AggFunc::Latest,
                    Some(col),
                ) => {
                    if Some(col) == time_col {
                        // MIN/MAX(__time): the time column is a long column natively.
                        let ty = match c.func {
                            AggFunc::Min => "longMin",
                            AggFunc::Max => "longMax",
                            _ => return Ok(None),
                        };
                        let j = add(
                            wrap(json!({"type": ty, "fieldName": TIME_COLUMN})),
                            &mut aggs,
                        );
                        native.push(NativeAgg {
                            expr: Expr::Cast(Box::new(col_of(j)), SqlType::Timestamp),
                            avg: None,
                        });
                        single.push(Some(j));
                        continue;
                    }
                    let t = scope.types[col];
                    let long = match t {
                        SqlType::Bigint => true,
                        SqlType::Double => false,
                        _ => return Ok(None),
                    };
                    let ty = match (c.func, long) {
                        (AggFunc::Sum | AggFunc::Avg, true) => "longSum",
                        (AggFunc::Sum | AggFunc::Avg, false) => "doubleSum",
                        (AggFunc::Min, true) => "longMin",
                        (AggFunc::Min, false) => "doubleMin",
                        (AggFunc::Max, true) => "longMax",
                        (AggFunc::Max, false) => "doubleMax",
                        (AggFunc::Earliest, true) => "longFirst",
                        (AggFunc::Earliest, false) => "doubleFirst",
                        (AggFunc::Latest, true) => "longLast",
                        _ => "doubleLast",
                    };
                    let j = add(
                        wrap(json!({"type": ty, "fieldName": scope.names[col]})),
                        &mut aggs,
                    );
                    if c.func == AggFunc::Avg {
                        // AVG needs the non-NULL count (a plain count on segments where the
                        // column has no NULLs: the engine drops a filter true on every row).
                        let n = add(nonnull(col), &mut aggs);
                        avg = Some((base + j, base + n));
                        (
                            null_unless(
                                Expr::Bin(
                                    BinOp::Div,
                                    Box::new(Expr::Cast(Box::new(col_of(j)), SqlType::Double)),
                                    Box::new(col_of(n)),
                                ),
                                col_of(n),
                            ),
                            None,
                        )
                    } else {
                        // The native sum/min/max/first/last skip NULLs and are null over no
                        // non-NULL value, as SQL wants.
                        (col_of(j), Some(j))
                    }
                }
                (AggFunc::ApproxCountDistinct, Some(col)) => {
                    let spec = match scope.types[col] {
                        SqlType::Varchar => {
                            json!({"type": "cardinality", "fields": [scope.names[col]], "round": true})
                        }
                        SqlType::Other => {
                            json!({"type": "hyperUnique", "fieldName": scope.names[col], "round": true})
                        }
                        _ => return Ok(None),
                    };
                    let j = add(wrap(spec), &mut aggs);
                    (col_of(j), Some(j))
                }
                _ => return Ok(None),
            };
            native.push(NativeAgg { expr, avg });
            single.push(one);
        }
        if matches!(&wp.ranges, Some(r) if r.is_empty()) {
            self.step("Empty (time filter matches nothing)");
            return Ok(Some(self.empty_aggregate(keys, &native, &aggs, base)?));
        }
        let intervals = intervals_json(&wp.ranges);
        let mut ctx = self.native_context.clone();
        let gran = granularity.clone().unwrap_or(json!("all"));
        let mut q = if dims.is_empty() {
            ctx.insert("skipEmptyBuckets".into(), Value::Bool(true));
            let mut q = json!({"queryType": "timeseries", "dataSource": ds, "intervals": intervals,
                   "granularity": gran, "aggregations": aggs, "context": ctx});
            if let (Some((n, desc)), Some(0)) = (time_limit, time_key) {
                q["descending"] = Value::Bool(desc);
                q["limit"] = json!(n);
            }
            q
        } else if let (1, None, Some((limit, (col, desc)))) = (dims.len(), &granularity, topn)
            && col >= keys.len()
            && let Some(j) = single[col - keys.len()]
        {
            let metric = if desc {
                json!({"type": "numeric", "metric": format!("a{j}")})
            } else {
                json!({"type": "inverted", "metric": {"type": "numeric", "metric": format!("a{j}")}})
            };
            json!({"queryType": "topN", "dataSource": ds, "intervals": intervals,
                   "granularity": "all", "dimension": dims[0].1, "threshold": limit, "metric": metric,
                   "aggregations": aggs, "context": ctx})
        } else {
            let mut q = json!({"queryType": "groupBy", "dataSource": ds, "intervals": intervals,
                   "granularity": gran, "dimensions": dims.iter().map(|d| d.1.clone()).collect::<Vec<_>>(),
                   "aggregations": aggs, "context": ctx});
            if time_key.is_none()
                && let Some((n, cols)) = group_limit
            {
                // Output column of each ORDER BY key: a dimension `d{key}` or a single native
                // aggregator `a{j}` (AVG and other computed values do not sort natively).
                let columns: Option<Vec<Value>> = cols
                    .iter()
                    .map(|&(c, desc, nulls_first)| {
                        let name = if c < keys.len() {
                            format!("d{c}")
                        } else {
                            format!("a{}", single.get(c - keys.len()).copied().flatten()?)
                        };
                        Some(json!({"dimension": name,
                            "direction": if desc { "descending" } else { "ascending" },
                            "nullOrder": if nulls_first { "first" } else { "last" }}))
                    })
                    .collect();
                if let Some(columns) = columns {
                    q["limitSpec"] = json!({"type": "default", "limit": n, "columns": columns});
                }
            }
            q
        };
        if let Some(f) = &wp.filter {
            q["filter"] = f.clone();
        }
        let Some(parsed) = self.run_native(q)? else {
            return Ok(Some(Vec::new()));
        };
        let dim_keys: Vec<usize> = dims.iter().map(|(ki, _)| *ki).collect();
        let out = match self.engine.query_rows(&parsed, self.cancelled.clone())? {
            // Buckets and groups come as values, without the response's JSON objects.
            Some(AggRows::Timeseries(timed)) => timeseries_rows(&parsed, timed, aggs.len())?,
            Some(AggRows::GroupBy(groups)) => group_rows(&parsed, groups, &dim_keys, aggs.len())?,
            None => {
                let result = self.engine.query(&parsed, self.cancelled.clone())?;
                native_rows(&parsed, result, &dim_keys, aggs.len())?
            }
        };
        if keys.is_empty() && out.is_empty() {
            return Ok(Some(self.empty_aggregate(keys, &native, &aggs, base)?));
        }
        let mut rows = Vec::with_capacity(out.len());
        // The native row `[__time, d0.., a0..]` becomes the SQL row in place: the aggregates
        // are computed first, then the keys are put in GROUP BY order (the time bucket moves to
        // its key position, or is dropped when it is no key) and the aggregates appended.
        let mut values = Vec::with_capacity(native.len());
        for mut row in out {
            values.clear();
            for n in &native {
                values.push(n.eval(&row)?);
            }
            match time_key {
                Some(t) if t < row.len() => row[..=t].rotate_left(1),
                Some(_) => {}
                None => {
                    row.remove(0);
                }
            }
            row.truncate(keys.len());
            row.resize(keys.len(), Datum::Null);
            row.append(&mut values);
            rows.push(row);
        }
        Ok(Some(rows))
    }

    /// The one row of an aggregate without GROUP BY over no input rows.
    fn empty_aggregate(
        &self,
        keys: &[Expr],
        native: &[NativeAgg],
        aggs: &[Value],
        base: usize,
    ) -> Result<Vec<Vec<Datum>>> {
        if !keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut nrow = vec![Datum::Null; base + aggs.len()];
        for (j, a) in aggs.iter().enumerate() {
            let is_count = a["type"] == "count"
                || (a["type"] == "filtered" && is_count_spec(&a["aggregator"]))
                || a["type"] == "cardinality"
                || a["type"] == "hyperUnique";
            if is_count {
                nrow[base + j] = Datum::Long(0);
            }
        }
        Ok(vec![
            native
                .iter()
                .map(|n| n.expr.eval(&nrow))
                .collect::<Result<Vec<_>>>()?,
        ])
    }
}

/// A native timeseries, topN or groupBy result as rows `[__time, dimensions.., a0..]`: the
/// dimensions are the planner's outputs `d{k}` for each GROUP BY key position `k` in
/// `dim_keys`, the aggregators `a{j}`. The datums are those `Table::from_native` then
/// `Datum::from_json` give, read straight from the result with its strings moved, not copied.
/// A missing string dimension (rendered `""` by some native paths) is NULL.
/// The SQL types of a native query's columns `d{k}` (for `dim_keys`) then `a0..a{aggs}`, as
/// the table of the query has them.
fn native_types(q: &Query, dim_keys: &[usize], aggs: usize) -> Result<Vec<Option<SqlType>>> {
    let columns = crate::table::Table::from_native(q, &Value::Array(Vec::new()))?.columns;
    Ok(dim_keys
        .iter()
        .map(|k| format!("d{k}"))
        .chain((0..aggs).map(|j| format!("a{j}")))
        .map(|n| columns.iter().find(|c| c.name == n).map(|c| c.sql_type))
        .collect())
}

/// A timeseries' rows `[__time, a0..]` from its buckets' times and values.
fn timeseries_rows(q: &Query, timed: Vec<TimedValues>, aggs: usize) -> Result<Vec<Vec<Datum>>> {
    let types = native_types(q, &[], aggs)?;
    let mut rows = Vec::with_capacity(timed.len());
    for (time, values) in timed {
        let mut row = Vec::with_capacity(1 + aggs);
        row.push(time.map_or(Datum::Null, Datum::Ts));
        row.extend(
            values
                .into_iter()
                .zip(&types)
                .map(|(v, t)| t.map_or(Datum::Null, |t| native_cell(v, t))),
        );
        row.resize(1 + aggs, Datum::Null);
        rows.push(row);
    }
    Ok(rows)
}

/// A groupBy's rows `[__time, d.., a..]` (dimensions in `dim_keys` order) from its groups'
/// values.
fn group_rows(
    q: &Query,
    groups: Vec<GroupRow>,
    dim_keys: &[usize],
    aggs: usize,
) -> Result<Vec<Vec<Datum>>> {
    let types = native_types(q, dim_keys, aggs)?;
    let dims = dim_keys.len();
    let width = 1 + dims + aggs;
    let mut rows = Vec::with_capacity(groups.len());
    for (time, dim_values, agg_values) in groups {
        let mut row = Vec::with_capacity(width);
        row.push(Datum::Ts(time));
        for (k, v) in dim_values.into_iter().chain(agg_values).enumerate() {
            if row.len() == width {
                break;
            }
            row.push(match types.get(k).copied().flatten() {
                None => Datum::Null,
                Some(t) => match native_cell(v, t) {
                    Datum::Str(s) if k < dims && s.is_empty() => Datum::Null,
                    d => d,
                },
            });
        }
        row.resize(width, Datum::Null);
        rows.push(row);
    }
    Ok(rows)
}

fn native_rows(
    q: &Query,
    result: Value,
    dim_keys: &[usize],
    aggs: usize,
) -> Result<Vec<Vec<Datum>>> {
    let kind = match q {
        Query::Timeseries { .. } => "result",
        Query::GroupBy { .. } => "event",
        Query::TopN { .. } => "entries",
        _ => {
            return Err(Error::internal(
                "SQL aggregation planned a native query that is not timeseries, topN or groupBy",
            ));
        }
    };
    let dims = dim_keys.len();
    let types = native_types(q, dim_keys, aggs)?;
    // Key position `k` → the row slot of its dimension `d{k}`.
    let mut dim_slot: Vec<Option<usize>> = Vec::new();
    for (i, &k) in dim_keys.iter().enumerate() {
        if dim_slot.len() <= k {
            dim_slot.resize(k + 1, None);
        }
        dim_slot[k] = Some(1 + i);
    }
    // `d{k}` / `a{j}` → row slot (the maps are walked once, not searched).
    let slot = |key: &str| -> Option<usize> {
        let (dim, n) = match key.as_bytes() {
            [b'd', rest @ ..] => (true, rest),
            [b'a', rest @ ..] => (false, rest),
            _ => return None,
        };
        let canonical = matches!(n, [b'0'] | [b'1'..=b'9', ..]) && n.iter().all(u8::is_ascii_digit);
        let i: usize = std::str::from_utf8(n)
            .ok()
            .filter(|_| canonical)?
            .parse()
            .ok()?;
        if dim {
            dim_slot.get(i).copied().flatten()
        } else {
            (i < aggs).then_some(1 + dims + i)
        }
    };
    let Value::Array(items) = result else {
        return Ok(Vec::new());
    };
    let mut rows = Vec::with_capacity(items.len());
    let mut push = |time: &Datum, obj: Map<String, Value>| {
        let mut row = vec![Datum::Null; 1 + types.len()];
        row[0] = time.clone();
        for (k, v) in obj {
            let Some(at) = slot(&k) else { continue };
            let Some(t) = types[at - 1] else { continue };
            row[at] = match native_cell(v, t) {
                Datum::Str(s) if at <= dims && s.is_empty() => Datum::Null,
                d => d,
            };
        }
        rows.push(row);
    };
    // Bucket times repeat row after row: each distinct text is read once.
    let mut last_time: Option<(String, Datum)> = None;
    for item in items {
        // (Native results are objects; anything else reads as an empty one, as in the table.)
        let item = match item {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let mut time = Datum::Null;
        let mut body: Option<Value> = None;
        for (k, v) in item {
            match k.as_str() {
                "timestamp" => {
                    time = match v {
                        Value::String(s) => match &last_time {
                            Some((text, d)) if *text == s => d.clone(),
                            _ => {
                                let d = native_cell(Value::String(s.clone()), SqlType::Timestamp);
                                last_time = Some((s, d.clone()));
                                d
                            }
                        },
                        v => native_cell(v, SqlType::Timestamp),
                    }
                }
                "result" | "event" if kind != "entries" && k == kind => body = Some(v),
                "result" if kind == "entries" => body = Some(v),
                _ => {}
            }
        }
        match (kind, body) {
            ("entries", Some(Value::Array(entries))) => {
                for e in entries {
                    match e {
                        Value::Object(r) => push(&time, r),
                        _ => push(&time, Map::new()),
                    }
                }
            }
            ("entries", _) => {}
            (_, Some(Value::Object(r))) => push(&time, r),
            (_, _) => push(&time, Map::new()),
        }
    }
    Ok(rows)
}

/// One native result cell of a column of type `t`, as `Datum::from_json` reads the table cell
/// `Table::from_native` makes of it (a string is moved).
fn native_cell(v: Value, t: SqlType) -> Datum {
    match (v, t) {
        (Value::Null, _) => Datum::Null,
        // Epoch milliseconds: the table's ISO text reads back to the same instant.
        (Value::Number(n), SqlType::Timestamp) => n.as_i64().map_or(Datum::Null, Datum::Ts),
        (Value::String(s), SqlType::Timestamp) if s.ends_with('Z') => {
            Datum::Str(s).cast(SqlType::Timestamp)
        }
        (Value::String(s), SqlType::Other) => Datum::Str(s),
        (v @ (Value::String(_) | Value::Number(_) | Value::Bool(_)), t)
            if !matches!(t, SqlType::Timestamp | SqlType::Other) =>
        {
            Datum::from_json_owned(v, t)
        }
        (v, t) => Datum::from_json(&crate::table::cell(Some(&v), t), t),
    }
}

/// Name an aggregator and the aggregators nested in `filtered` wrappers.
fn set_name(spec: &mut Value, name: &str) {
    if let Some(inner) = spec.get_mut("aggregator") {
        set_name(inner, name);
    }
    spec["name"] = Value::String(name.to_string());
}

fn is_count_spec(a: &Value) -> bool {
    a["type"] == "count" || (a["type"] == "filtered" && is_count_spec(&a["aggregator"]))
}

fn filter_rows(rows: Vec<Vec<Datum>>, cond: &Expr) -> Result<Vec<Vec<Datum>>> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        if cond.eval(&r)?.truth() == Some(true) {
            out.push(r);
        }
    }
    Ok(out)
}

fn dedupe(rows: &mut Vec<Vec<Datum>>) {
    let mut seen = std::collections::HashSet::new();
    rows.retain(|r| seen.insert(r.clone()));
}

fn sort_rows(rows: &mut [Vec<Datum>], keys: &[SortKey]) {
    rows.sort_by(|a, b| {
        for k in keys {
            let (x, y) = (&a[k.index], &b[k.index]);
            let o = match (x.is_null(), y.is_null()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => {
                    if k.nulls_first {
                        std::cmp::Ordering::Less
                    } else {
                        std::cmp::Ordering::Greater
                    }
                }
                (false, true) => {
                    if k.nulls_first {
                        std::cmp::Ordering::Greater
                    } else {
                        std::cmp::Ordering::Less
                    }
                }
                _ => {
                    let o = sort_compare(x, y);
                    if k.desc { o.reverse() } else { o }
                }
            };
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
}

fn apply_limit(rows: &mut Vec<Vec<Datum>>, limit: Option<usize>, offset: usize) {
    if offset > 0 {
        let n = offset.min(rows.len());
        rows.drain(..n);
    }
    if let Some(l) = limit {
        rows.truncate(l);
    }
}

/// Accumulator of one aggregate over one group.
enum Acc {
    Count(i64),
    SumLong(Option<i64>),
    SumDouble(Option<f64>),
    MinMax(Option<Datum>, bool),
    Avg(f64, i64),
    Distinct(std::collections::HashSet<Datum>),
    TimeBest(Option<(i64, Datum)>, bool),
}

fn new_acc(c: &AggCall, input: &[SqlType]) -> Acc {
    match c.func {
        AggFunc::CountStar | AggFunc::Count => Acc::Count(0),
        AggFunc::Sum => {
            if c.ty(input) == SqlType::Bigint {
                Acc::SumLong(None)
            } else {
                Acc::SumDouble(None)
            }
        }
        AggFunc::Min => Acc::MinMax(None, false),
        AggFunc::Max => Acc::MinMax(None, true),
        AggFunc::Avg => Acc::Avg(0.0, 0),
        AggFunc::CountDistinct | AggFunc::ApproxCountDistinct => {
            Acc::Distinct(std::collections::HashSet::new())
        }
        AggFunc::Earliest => Acc::TimeBest(None, false),
        AggFunc::Latest => Acc::TimeBest(None, true),
    }
}

fn aggregate_rows(
    rows: &[Vec<Datum>],
    keys: &[Expr],
    calls: &[AggCall],
) -> Result<Vec<Vec<Datum>>> {
    let input: Vec<SqlType> = Vec::new();
    let mut groups: HashMap<Vec<Datum>, usize> = HashMap::new();
    let mut order: Vec<(Vec<Datum>, Vec<Acc>)> = Vec::new();
    // Types only matter for SUM's long/double choice: decide from values instead.
    for r in rows {
        let key = keys.iter().map(|k| k.eval(r)).collect::<Result<Vec<_>>>()?;
        let gi = match groups.get(&key) {
            Some(&g) => g,
            None => {
                let accs = calls.iter().map(|c| new_acc(c, &input)).collect();
                order.push((key.clone(), accs));
                groups.insert(key, order.len() - 1);
                order.len() - 1
            }
        };
        let accs = &mut order[gi].1;
        for (c, acc) in calls.iter().zip(accs.iter_mut()) {
            if let Some(f) = &c.filter
                && f.eval(r)?.truth() != Some(true)
            {
                continue;
            }
            let v = match &c.arg {
                Some(a) => a.eval(r)?,
                None => Datum::Long(1),
            };
            if v.is_null() {
                continue;
            }
            match acc {
                Acc::Count(n) => *n += 1,
                Acc::SumLong(s) => match v {
                    // A double input turns a long sum into a double sum.
                    Datum::Double(d) => {
                        let prev = s.unwrap_or(0) as f64;
                        *acc = Acc::SumDouble(Some(prev + d));
                    }
                    other => *s = Some(s.unwrap_or(0).wrapping_add(other.as_i64().unwrap_or(0))),
                },
                Acc::SumDouble(s) => *s = Some(s.unwrap_or(0.0) + v.as_f64().unwrap_or(0.0)),
                Acc::MinMax(best, is_max) => {
                    let replace = match best {
                        None => true,
                        Some(b) => {
                            let o = sort_compare(&v, b);
                            if *is_max {
                                o == std::cmp::Ordering::Greater
                            } else {
                                o == std::cmp::Ordering::Less
                            }
                        }
                    };
                    if replace {
                        *best = Some(v);
                    }
                }
                Acc::Avg(s, n) => {
                    if let Some(x) = v.as_f64() {
                        *s += x;
                        *n += 1;
                    }
                }
                Acc::Distinct(set) => {
                    set.insert(v);
                }
                Acc::TimeBest(best, latest) => {
                    let t = c
                        .time_col
                        .and_then(|tc| r.get(tc))
                        .and_then(Datum::as_ts)
                        .unwrap_or(0);
                    let replace = match best {
                        None => true,
                        Some((bt, _)) => {
                            if *latest {
                                t > *bt
                            } else {
                                t < *bt
                            }
                        }
                    };
                    if replace {
                        *best = Some((t, v));
                    }
                }
            }
        }
    }
    if order.is_empty() && keys.is_empty() {
        let accs = calls.iter().map(|c| new_acc(c, &input)).collect();
        order.push((Vec::new(), accs));
    }
    Ok(order
        .into_iter()
        .map(|(mut key, accs)| {
            for a in accs {
                key.push(match a {
                    Acc::Count(n) => Datum::Long(n),
                    Acc::SumLong(s) => s.map(Datum::Long).unwrap_or(Datum::Null),
                    Acc::SumDouble(s) => s.map(Datum::Double).unwrap_or(Datum::Null),
                    Acc::MinMax(b, _) => b.unwrap_or(Datum::Null),
                    Acc::Avg(s, n) => {
                        if n == 0 {
                            Datum::Null
                        } else {
                            Datum::Double(s / n as f64)
                        }
                    }
                    Acc::Distinct(set) => Datum::Long(set.len() as i64),
                    Acc::TimeBest(b, _) => b.map(|x| x.1).unwrap_or(Datum::Null),
                });
            }
            key
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The rows as the planner read them before: the flattened table, then each cell's datum.
    fn through_the_table(
        q: &Query,
        result: &Value,
        dim_keys: &[usize],
        aggs: usize,
    ) -> Vec<Vec<Datum>> {
        let dims = dim_keys.len();
        let table = crate::table::Table::from_native(q, result).unwrap_or_default();
        let pos = |name: &str| table.columns.iter().position(|c| c.name == name);
        let time_pos = pos(TIME_COLUMN);
        let names: Vec<Option<usize>> = dim_keys
            .iter()
            .map(|k| pos(&format!("d{k}")))
            .chain((0..aggs).map(|j| pos(&format!("a{j}"))))
            .collect();
        table
            .rows
            .iter()
            .map(|r| {
                let mut row = vec![
                    time_pos.map_or(Datum::Null, |p| Datum::from_json(&r[p], SqlType::Timestamp)),
                ];
                for (k, p) in names.iter().enumerate() {
                    row.push(match p {
                        None => Datum::Null,
                        Some(p) => match Datum::from_json(&r[*p], table.columns[*p].sql_type) {
                            Datum::Str(s) if k < dims && s.is_empty() => Datum::Null,
                            d => d,
                        },
                    });
                }
                row
            })
            .collect()
    }

    #[test]
    fn avg_computed_directly_is_its_expression() {
        let col = |i: usize| Box::new(Expr::Col(i));
        let expr = Expr::Case(
            vec![(
                Expr::Bin(BinOp::Gt, col(1), Box::new(Expr::Lit(Datum::Long(0)))),
                Expr::Bin(
                    BinOp::Div,
                    Box::new(Expr::Cast(col(0), SqlType::Double)),
                    col(1),
                ),
            )],
            None,
        );
        let avg = NativeAgg {
            expr: expr.clone(),
            avg: Some((0, 1)),
        };
        let sums = [
            Datum::Long(7),
            Datum::Long(i64::MIN),
            Datum::Double(2.5),
            Datum::Double(f64::NAN),
            Datum::Double(-0.0),
            Datum::Null,
            Datum::Str("3".into()),
        ];
        let counts = [
            Datum::Long(3),
            Datum::Long(0),
            Datum::Long(-2),
            Datum::Null,
            Datum::Double(2.0),
        ];
        for s in &sums {
            for c in &counts {
                let row = [s.clone(), c.clone()];
                let want = expr.eval(&row).map(|d| format!("{d:?}"));
                let got = avg.eval(&row).map(|d| format!("{d:?}"));
                assert_eq!(got.ok(), want.ok(), "{row:?}");
            }
        }
    }

    #[test]
    fn native_rows_are_the_table_cells() {
        let aggs = json!([
            {"type": "count", "name": "a0"},
            {"type": "doubleSum", "name": "a1", "fieldName": "x"},
            {"type": "longMax", "name": "a2", "fieldName": "__time"},
            {"type": "cardinality", "name": "a3", "fields": ["h"], "round": true},
        ]);
        let base = |t: &str| {
            json!({"queryType": t, "dataSource": "d", "intervals": ["2016-01-01/2016-01-02"],
                   "granularity": "hour", "aggregations": aggs})
        };
        let mut group_by = base("groupBy");
        group_by["dimensions"] = json!([
            {"type": "default", "dimension": "h", "outputName": "d1", "outputType": "STRING"},
            {"type": "default", "dimension": "n", "outputName": "d2", "outputType": "LONG"},
        ]);
        let mut top_n = base("topN");
        top_n["dimension"] = json!({"type": "default", "dimension": "h", "outputName": "d1", "outputType": "STRING"});
        top_n["threshold"] = json!(3);
        top_n["metric"] = json!("a0");
        let event = |d0: Value, d1: Value, a1: Value, a2: Value| {
            // (`d0` is the time key's position; `d01`, `a7`, `a+1` and `x` are no column.)
            json!({"d1": d0, "d2": d1, "a0": 3, "a1": a1, "a2": a2, "a3": 2, "d0": "time key",
                   "d01": "no", "a7": 1, "a+1": 2, "x": 3})
        };
        let cells = [
            event(
                json!("h1"),
                json!(7),
                json!(1.5),
                json!(1_451_606_400_000_i64),
            ),
            event(json!(""), Value::Null, Value::Null, Value::Null),
            event(json!("é,\"x\""), json!(-1), json!(1e300), json!(-5)),
            json!({"a0": 0}),
            json!("not an object"),
        ];
        let times = [
            json!("2016-01-01T00:00:00.000Z"),
            json!("2016-01-01T01:00:00.000+01:00"),
            json!(1_451_610_000_000_i64),
            Value::Null,
            json!("not a time"),
        ];
        let group_by_result = Value::Array(
            cells
                .iter()
                .zip(&times)
                .map(|(e, t)| json!({"version": "v1", "timestamp": t, "event": e}))
                .chain([json!(17)])
                .collect(),
        );
        let timeseries_result = Value::Array(
            cells
                .iter()
                .zip(&times)
                .map(|(e, t)| json!({"timestamp": t, "result": e}))
                .chain([json!({"timestamp": times[0]})])
                .collect(),
        );
        let top_n_result = json!([
            {"timestamp": times[0], "result": cells.to_vec()},
            {"timestamp": times[1], "result": []},
            {"timestamp": times[2], "result": "nothing"},
        ]);
        for (spec, result, dims) in [
            (group_by, group_by_result, vec![1, 2]),
            (base("timeseries"), timeseries_result, vec![]),
            (top_n, top_n_result, vec![1]),
        ] {
            let q = Query::from_value(&spec).unwrap_or_else(|e| panic!("{e}: {spec}"));
            let want = through_the_table(&q, &result, &dims, 4);
            assert!(want.len() >= 3, "{want:?}");
            let got = native_rows(&q, result, &dims, 4).unwrap_or_default();
            assert_eq!(format!("{got:?}"), format!("{want:?}"), "{spec}");
        }
    }
}
