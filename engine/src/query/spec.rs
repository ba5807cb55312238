//! Druid native query specs: the typed form of a query's JSON.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::query::aggregator::AggregatorSpec;
use crate::query::filter::{Filter, parse_intervals};
use crate::query::granularity::QueryGranularity;
use crate::query::json::Obj;
use crate::query::post_aggregator::PostAggregator;
use crate::time::Interval;

/// Default limit on the rows a groupBy may hold (context `maxGroupByRows`).
pub const DEFAULT_MAX_GROUP_BY_ROWS: u64 = 1_000_000;
/// Default limit on the rows a scan may return (context `maxScanRows`).
pub const DEFAULT_MAX_SCAN_ROWS: u64 = 1_000_000;

/// Query context (Druid's `context`).
#[derive(Clone, Debug, Default)]
pub struct QueryContext {
    /// Timeout in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Query id.
    pub query_id: Option<String>,
    /// Priority (informational for now).
    pub priority: i64,
    /// Max groups of a groupBy.
    pub max_group_by_rows: u64,
    /// Max rows of a scan.
    pub max_scan_rows: u64,
    /// Timeseries: omit empty buckets.
    pub skip_empty_buckets: bool,
    /// Timeseries: add a grand-total row.
    pub grand_total: bool,
    /// groupBy: order by dimensions before time.
    pub sort_by_dims_first: bool,
}

impl QueryContext {
    fn parse(v: Option<&Value>) -> Result<QueryContext> {
        let mut c = QueryContext {
            max_group_by_rows: DEFAULT_MAX_GROUP_BY_ROWS,
            max_scan_rows: DEFAULT_MAX_SCAN_ROWS,
            ..QueryContext::default()
        };
        let Some(v) = v else {
            return Ok(c);
        };
        let o = Obj::new(v, "context")?;
        c.timeout_ms = o.opt_u64("timeout")?;
        c.query_id = match o.get("queryId") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        c.priority = o.opt_i64("priority")?.unwrap_or(0);
        if let Some(n) = o.opt_u64("maxGroupByRows")? {
            c.max_group_by_rows = n;
        }
        if let Some(n) = o.opt_u64("maxScanRows")? {
            c.max_scan_rows = n;
        }
        c.skip_empty_buckets = o.opt_bool("skipEmptyBuckets")?.unwrap_or(false);
        c.grand_total = o.opt_bool("grandTotal")?.unwrap_or(false);
        c.sort_by_dims_first = o.opt_bool("sortByDimsFirst")?.unwrap_or(false);
        Ok(c)
    }
}

/// Fields every query has.
#[derive(Clone, Debug)]
pub struct QueryBase {
    /// Datasource name.
    pub data_source: String,
    /// Intervals (sorted, merged).
    pub intervals: Vec<Interval>,
    /// Row filter.
    pub filter: Option<Filter>,
    /// Context.
    pub context: QueryContext,
}

/// A dimension of topN/groupBy (`default` dimension spec).
#[derive(Clone, Debug, PartialEq)]
pub struct DimensionSpec {
    /// Column read.
    pub dimension: String,
    /// Name in the output.
    pub output_name: String,
    /// Type of the output values (`outputType`; Druid's default is STRING).
    pub output_type: OutputType,
}

/// `outputType` of a dimension spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputType {
    /// Values as strings (numbers rendered as text).
    String,
    /// Values as longs.
    Long,
    /// Values as doubles.
    Double,
}

impl DimensionSpec {
    fn parse(v: &Value, path: &str) -> Result<DimensionSpec> {
        match v {
            Value::String(s) => Ok(DimensionSpec {
                dimension: s.clone(),
                output_name: s.clone(),
                output_type: OutputType::String,
            }),
            Value::Object(_) => {
                let o = Obj::new(v, path)?;
                o.check_known(&["type", "dimension", "outputName", "outputType"])?;
                if let Some(t) = o.opt_str("type")?
                    && t != "default"
                {
                    return Err(Error::invalid(format!(
                        "{}: unsupported dimension spec type `{t}` (only `default`)",
                        o.child("type")
                    )));
                }
                let dimension = o.req_str("dimension")?.to_string();
                let output_name = o
                    .opt_str("outputName")?
                    .map(str::to_string)
                    .unwrap_or_else(|| dimension.clone());
                let output_type = match o.opt_str("outputType")? {
                    None => OutputType::String,
                    Some(t) => match t.to_ascii_uppercase().as_str() {
                        "STRING" => OutputType::String,
                        "LONG" => OutputType::Long,
                        "DOUBLE" | "FLOAT" => OutputType::Double,
                        other => {
                            return Err(Error::invalid(format!(
                                "{}: unsupported outputType `{other}` (expected STRING, LONG, DOUBLE or FLOAT)",
                                o.child("outputType")
                            )));
                        }
                    },
                };
                Ok(DimensionSpec {
                    dimension,
                    output_name,
                    output_type,
                })
            }
            _ => Err(Error::invalid(format!(
                "{path}: expected a dimension name or a dimension spec object"
            ))),
        }
    }
}

/// How topN orders its values.
#[derive(Clone, Debug, PartialEq)]
pub enum TopNMetric {
    /// By an aggregate or post-aggregate, descending (inverted: ascending).
    Numeric {
        /// Output name ordered by.
        metric: String,
        /// Ascending instead.
        inverted: bool,
    },
    /// By the dimension value.
    Dimension {
        /// `lexicographic`, `alphanumeric`, `numeric` or `strlen`.
        ordering: StringOrdering,
        /// Descending instead.
        inverted: bool,
        /// Only values after this one (paging).
        previous_stop: Option<String>,
    },
}

/// Druid's string comparators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StringOrdering {
    /// Byte order.
    Lexicographic,
    /// Digit runs compared as numbers ("a2" < "a10").
    Alphanumeric,
    /// As numbers; non-numbers after numbers.
    Numeric,
    /// By length, then byte order.
    Strlen,
}

impl StringOrdering {
    /// Parse a Druid ordering name (or `{"type": name}`).
    pub fn parse(v: Option<&Value>, path: &str) -> Result<StringOrdering> {
        let name = match v {
            None => return Ok(StringOrdering::Lexicographic),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Object(m)) => m
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("lexicographic")
                .to_string(),
            Some(_) => {
                return Err(Error::invalid(format!("{path}: expected an ordering name")));
            }
        };
        Ok(match name.to_ascii_lowercase().as_str() {
            "lexicographic" => StringOrdering::Lexicographic,
            "alphanumeric" => StringOrdering::Alphanumeric,
            "numeric" => StringOrdering::Numeric,
            "strlen" => StringOrdering::Strlen,
            other => {
                return Err(Error::invalid(format!(
                    "{path}: unknown ordering `{other}` (expected lexicographic, alphanumeric, numeric or strlen)"
                )));
            }
        })
    }

    /// Compare two strings.
    pub fn compare(&self, a: &str, b: &str) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match self {
            StringOrdering::Lexicographic => a.as_bytes().cmp(b.as_bytes()),
            StringOrdering::Strlen => a
                .chars()
                .count()
                .cmp(&b.chars().count())
                .then_with(|| a.as_bytes().cmp(b.as_bytes())),
            StringOrdering::Numeric => {
                match (
                    crate::query::filter::Num::parse(a),
                    crate::query::filter::Num::parse(b),
                ) {
                    (Some(x), Some(y)) => x.cmp_num(y),
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (None, None) => a.as_bytes().cmp(b.as_bytes()),
                }
            }
            StringOrdering::Alphanumeric => {
                let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
                loop {
                    match (x.first(), y.first()) {
                        (None, None) => return Ordering::Equal,
                        (None, Some(_)) => return Ordering::Less,
                        (Some(_), None) => return Ordering::Greater,
                        (Some(cx), Some(cy)) if cx.is_ascii_digit() && cy.is_ascii_digit() => {
                            let nx = x.iter().take_while(|c| c.is_ascii_digit()).count();
                            let ny = y.iter().take_while(|c| c.is_ascii_digit()).count();
                            let (dx, dy) = (&x[..nx], &y[..ny]);
                            let tx = dx.iter().skip_while(|&&c| c == b'0').count();
                            let ty = dy.iter().skip_while(|&&c| c == b'0').count();
                            let o = tx
                                .cmp(&ty)
                                .then_with(|| dx[nx - tx..].cmp(&dy[ny - ty..]))
                                .then_with(|| nx.cmp(&ny));
                            if o != Ordering::Equal {
                                return o;
                            }
                            x = &x[nx..];
                            y = &y[ny..];
                        }
                        (Some(cx), Some(cy)) => {
                            if cx != cy {
                                return cx.cmp(cy);
                            }
                            x = &x[1..];
                            y = &y[1..];
                        }
                    }
                }
            }
        }
    }
}

impl TopNMetric {
    fn parse(v: &Value, path: &str) -> Result<TopNMetric> {
        match v {
            Value::String(s) => Ok(TopNMetric::Numeric {
                metric: s.clone(),
                inverted: false,
            }),
            Value::Object(_) => {
                let o = Obj::new(v, path)?;
                match o.req_str("type")? {
                    "numeric" => Ok(TopNMetric::Numeric {
                        metric: o.req_str("metric")?.to_string(),
                        inverted: false,
                    }),
                    "inverted" => {
                        let inner = o.get("metric").ok_or_else(|| {
                            Error::invalid(format!(
                                "{}: required field is missing",
                                o.child("metric")
                            ))
                        })?;
                        Ok(match TopNMetric::parse(inner, &o.child("metric"))? {
                            TopNMetric::Numeric { metric, inverted } => TopNMetric::Numeric {
                                metric,
                                inverted: !inverted,
                            },
                            TopNMetric::Dimension {
                                ordering,
                                inverted,
                                previous_stop,
                            } => TopNMetric::Dimension {
                                ordering,
                                inverted: !inverted,
                                previous_stop,
                            },
                        })
                    }
                    t @ ("dimension" | "lexicographic" | "alphaNumeric" | "alphanumeric"
                    | "strlen") => {
                        let ordering = if t == "dimension" {
                            StringOrdering::parse(o.get("ordering"), &o.child("ordering"))?
                        } else {
                            StringOrdering::parse(Some(&Value::from(t)), &o.child("type"))?
                        };
                        Ok(TopNMetric::Dimension {
                            ordering,
                            inverted: false,
                            previous_stop: o.opt_str("previousStop")?.map(str::to_string),
                        })
                    }
                    other => Err(Error::invalid(format!(
                        "{}: unsupported topN metric type `{other}`",
                        o.child("type")
                    ))),
                }
            }
            _ => Err(Error::invalid(format!(
                "{path}: expected a metric name or a metric spec object"
            ))),
        }
    }
}

/// A groupBy `having` clause.
#[derive(Clone, Debug)]
pub enum Having {
    /// Aggregate > value.
    GreaterThan(String, f64),
    /// Aggregate < value.
    LessThan(String, f64),
    /// Aggregate == value.
    EqualTo(String, f64),
    /// All.
    And(Vec<Having>),
    /// Any.
    Or(Vec<Having>),
    /// Negation.
    Not(Box<Having>),
    /// A dimension equals a value.
    DimSelector(String, Option<String>),
    /// A Druid filter over the result row's columns.
    Filter(Filter),
}

impl Having {
    fn parse(v: &Value, path: &str) -> Result<Having> {
        let o = Obj::new(v, path)?;
        let t = o.req_str("type")?;
        let num = |key: &str| -> Result<f64> {
            o.get(key)
                .and_then(Value::as_f64)
                .ok_or_else(|| Error::invalid(format!("{}: expected a number", o.child(key))))
        };
        let list = |key: &str| -> Result<Vec<Having>> {
            o.req_array(key)?
                .iter()
                .enumerate()
                .map(|(i, h)| Having::parse(h, &format!("{}[{i}]", o.child(key))))
                .collect()
        };
        Ok(match t {
            "greaterThan" | "gt" => {
                Having::GreaterThan(o.req_str("aggregation")?.into(), num("value")?)
            }
            "lessThan" | "lt" => Having::LessThan(o.req_str("aggregation")?.into(), num("value")?),
            "equalTo" | "eq" => Having::EqualTo(o.req_str("aggregation")?.into(), num("value")?),
            "and" => Having::And(list("havingSpecs")?),
            "or" => Having::Or(list("havingSpecs")?),
            "not" => Having::Not(Box::new(Having::parse(
                o.get("havingSpec").ok_or_else(|| {
                    Error::invalid(format!(
                        "{}: required field is missing",
                        o.child("havingSpec")
                    ))
                })?,
                &o.child("havingSpec"),
            )?)),
            "filter" => Having::Filter(Filter::parse(
                o.get("filter").ok_or_else(|| {
                    Error::invalid(format!("{}: required field is missing", o.child("filter")))
                })?,
                &o.child("filter"),
            )?),
            "dimSelector" => Having::DimSelector(
                o.req_str("dimension")?.into(),
                o.opt_str("value")?.map(str::to_string),
            ),
            other => {
                return Err(Error::invalid(format!(
                    "{}: unsupported having type `{other}`",
                    o.child("type")
                )));
            }
        })
    }

    /// Evaluate on a result row.
    pub fn matches(&self, row: &serde_json::Map<String, Value>) -> bool {
        let num = |name: &str| row.get(name).and_then(Value::as_f64);
        match self {
            Having::GreaterThan(a, v) => num(a).is_some_and(|x| x > *v),
            Having::LessThan(a, v) => num(a).is_some_and(|x| x < *v),
            Having::EqualTo(a, v) => num(a).is_some_and(|x| x == *v),
            Having::And(hs) => hs.iter().all(|h| h.matches(row)),
            Having::Or(hs) => hs.iter().any(|h| h.matches(row)),
            Having::Not(h) => !h.matches(row),
            Having::Filter(f) => f.matches_row(row) == Some(true),
            Having::DimSelector(d, v) => match (row.get(d), v) {
                (Some(Value::String(s)), Some(v)) => s == v,
                (None | Some(Value::Null), None) => true,
                _ => false,
            },
        }
    }
}

/// One ordering column of a limitSpec.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderByColumn {
    /// Output column.
    pub dimension: String,
    /// Descending instead of ascending.
    pub descending: bool,
    /// Compare numerically.
    pub numeric: bool,
    /// Where nulls go (`nullOrder`, a Basalt extension used by SQL's `NULLS FIRST/LAST`; an
    /// empty string then counts as a null, as SQL reads it); unset, a null is the smallest
    /// value (first ascending, last descending), as in Druid.
    pub nulls_first: Option<bool>,
}

impl OrderByColumn {
    /// Whether nulls come before every value in this column's order.
    pub fn nulls_come_first(&self) -> bool {
        self.nulls_first.unwrap_or(!self.descending)
    }
}

/// groupBy `limitSpec`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LimitSpec {
    /// Row limit.
    pub limit: Option<u64>,
    /// Rows skipped first.
    pub offset: u64,
    /// Ordering.
    pub columns: Vec<OrderByColumn>,
}

/// The query types.
#[derive(Clone, Debug)]
pub enum Query {
    /// Aggregates per time bucket.
    Timeseries {
        /// Common fields.
        base: QueryBase,
        /// Bucketing.
        granularity: QueryGranularity,
        /// Aggregators.
        aggregations: Vec<AggregatorSpec>,
        /// Post-aggregators.
        post_aggregations: Vec<PostAggregator>,
        /// Newest bucket first.
        descending: bool,
        /// Most rows returned.
        limit: Option<u64>,
    },
    /// Top values of one dimension per bucket.
    TopN {
        /// Common fields.
        base: QueryBase,
        /// Bucketing.
        granularity: QueryGranularity,
        /// The dimension.
        dimension: DimensionSpec,
        /// How many values.
        threshold: usize,
        /// Ordering.
        metric: TopNMetric,
        /// Aggregators.
        aggregations: Vec<AggregatorSpec>,
        /// Post-aggregators.
        post_aggregations: Vec<PostAggregator>,
    },
    /// Aggregates per combination of dimension values.
    GroupBy {
        /// Common fields.
        base: QueryBase,
        /// Bucketing.
        granularity: QueryGranularity,
        /// Grouping dimensions.
        dimensions: Vec<DimensionSpec>,
        /// Aggregators.
        aggregations: Vec<AggregatorSpec>,
        /// Post-aggregators.
        post_aggregations: Vec<PostAggregator>,
        /// Filter on result rows.
        having: Option<Having>,
        /// Ordering and limit.
        limit_spec: LimitSpec,
        /// Subtotal dimension sets.
        subtotals: Option<Vec<Vec<String>>>,
    },
    /// Raw rows.
    Scan {
        /// Common fields.
        base: QueryBase,
        /// Columns (empty = all).
        columns: Vec<String>,
        /// Row limit.
        limit: Option<u64>,
        /// Rows skipped.
        offset: u64,
        /// `none`, `ascending` or `descending` by `__time`.
        order: ScanOrder,
        /// `compactedList` instead of `list`.
        compacted: bool,
    },
    /// Earliest and latest `__time`.
    TimeBoundary {
        /// Common fields.
        base: QueryBase,
        /// Only one bound.
        bound: Option<String>,
    },
    /// Column metadata.
    SegmentMetadata {
        /// Common fields.
        base: QueryBase,
        /// Merge into one result.
        merge: bool,
        /// Requested analyses (`cardinality`, `interval`, `minmax`, `size`, `rollup`, ...).
        analysis_types: Vec<String>,
    },
    /// Dimension values containing a string.
    Search {
        /// Common fields.
        base: QueryBase,
        /// Bucketing.
        granularity: QueryGranularity,
        /// Dimensions searched (None = all string dimensions).
        dimensions: Option<Vec<String>>,
        /// Substrings searched for (all must be contained).
        needles: Vec<String>,
        /// Case-sensitive matching.
        case_sensitive: bool,
        /// Max results per bucket.
        limit: usize,
        /// Ordering of the values.
        sort: StringOrdering,
    },
    /// Latest ingested event time.
    DataSourceMetadata {
        /// Common fields.
        base: QueryBase,
    },
}

/// Scan ordering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanOrder {
    /// Segment order.
    None,
    /// By `__time` ascending.
    Ascending,
    /// By `__time` descending.
    Descending,
}

fn parse_data_source(o: &Obj<'_>) -> Result<String> {
    match o.get("dataSource") {
        None => Err(Error::invalid("dataSource: required field is missing")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v @ Value::Object(_)) => {
            let d = Obj::new(v, "dataSource")?;
            match d.opt_str("type")? {
                None | Some("table") => Ok(d.req_str("name")?.to_string()),
                Some(t) => Err(Error::invalid(format!(
                    "dataSource.type: unsupported datasource type `{t}` (only `table`)"
                ))),
            }
        }
        Some(_) => Err(Error::invalid(
            "dataSource: expected a datasource name or {\"type\": \"table\", \"name\": …}",
        )),
    }
}

impl Query {
    /// Parse a native query from JSON text.
    pub fn from_json(text: &str) -> Result<Query> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| Error::invalid(format!("query is not valid JSON: {e}")))?;
        Query::from_value(&v)
    }

    /// Parse a native query.
    pub fn from_value(v: &Value) -> Result<Query> {
        let o = Obj::new(v, "").map_err(|_| Error::invalid("query: expected a JSON object"))?;
        let query_type = o.req_str("queryType")?;
        const TYPES: [&str; 8] = [
            "timeseries",
            "topN",
            "groupBy",
            "scan",
            "timeBoundary",
            "segmentMetadata",
            "search",
            "dataSourceMetadata",
        ];
        if !TYPES.contains(&query_type) {
            return Err(Error::invalid(format!(
                "queryType: unsupported query type `{query_type}` (supported: {})",
                TYPES.join(", ")
            )));
        }
        let data_source = parse_data_source(&o)?;
        let context = QueryContext::parse(o.get("context"))?;
        let filter = match o.get("filter") {
            None => None,
            Some(f) => Some(Filter::parse(f, "filter")?),
        };
        let intervals = match (o.get("intervals"), query_type) {
            (None, "timeBoundary" | "dataSourceMetadata" | "segmentMetadata") => {
                vec![Interval::ETERNITY]
            }
            (v, _) => parse_intervals(v, "intervals")?,
        };
        let base = QueryBase {
            data_source,
            intervals,
            filter,
            context,
        };
        let granularity = || -> Result<QueryGranularity> {
            match o.get("granularity") {
                None => Ok(QueryGranularity::All),
                Some(g) => QueryGranularity::parse(g, "granularity"),
            }
        };
        let common = [
            "queryType",
            "dataSource",
            "intervals",
            "filter",
            "context",
            "granularity",
        ];
        let known = |extra: &[&str]| -> Result<()> {
            let mut k: Vec<&str> = common.to_vec();
            k.extend_from_slice(extra);
            o.check_known(&k)
        };
        Ok(match query_type {
            "timeseries" => {
                known(&[
                    "aggregations",
                    "postAggregations",
                    "descending",
                    "virtualColumns",
                    "limit",
                ])?;
                reject_virtual(&o)?;
                Query::Timeseries {
                    base,
                    granularity: granularity()?,
                    aggregations: AggregatorSpec::parse_list(
                        o.get("aggregations"),
                        "aggregations",
                    )?,
                    post_aggregations: PostAggregator::parse_list(
                        o.get("postAggregations"),
                        "postAggregations",
                    )?,
                    descending: o.opt_bool("descending")?.unwrap_or(false),
                    limit: o.opt_u64("limit")?,
                }
            }
            "topN" => {
                known(&[
                    "dimension",
                    "threshold",
                    "metric",
                    "aggregations",
                    "postAggregations",
                    "virtualColumns",
                ])?;
                reject_virtual(&o)?;
                let dimension = DimensionSpec::parse(
                    o.get("dimension")
                        .ok_or_else(|| Error::invalid("dimension: required field is missing"))?,
                    "dimension",
                )?;
                let threshold = o
                    .opt_u64("threshold")?
                    .ok_or_else(|| Error::invalid("threshold: required field is missing"))?;
                let metric = TopNMetric::parse(
                    o.get("metric")
                        .ok_or_else(|| Error::invalid("metric: required field is missing"))?,
                    "metric",
                )?;
                Query::TopN {
                    base,
                    granularity: granularity()?,
                    dimension,
                    threshold: threshold.min(1 << 24) as usize,
                    metric,
                    aggregations: AggregatorSpec::parse_list(
                        o.get("aggregations"),
                        "aggregations",
                    )?,
                    post_aggregations: PostAggregator::parse_list(
                        o.get("postAggregations"),
                        "postAggregations",
                    )?,
                }
            }
            "groupBy" => {
                known(&[
                    "dimensions",
                    "aggregations",
                    "postAggregations",
                    "having",
                    "limitSpec",
                    "subtotalsSpec",
                    "virtualColumns",
                ])?;
                reject_virtual(&o)?;
                let dims = o.opt_array("dimensions")?.cloned().unwrap_or_default();
                let mut dimensions = Vec::with_capacity(dims.len());
                for (i, d) in dims.iter().enumerate() {
                    dimensions.push(DimensionSpec::parse(d, &format!("dimensions[{i}]"))?);
                }
                let having = match o.get("having") {
                    None => None,
                    Some(h) => Some(Having::parse(h, "having")?),
                };
                let limit_spec = match o.get("limitSpec") {
                    None => LimitSpec::default(),
                    Some(l) => parse_limit_spec(l)?,
                };
                let subtotals = match o.opt_array("subtotalsSpec")? {
                    None => None,
                    Some(a) => {
                        let mut sets = Vec::new();
                        for (i, s) in a.iter().enumerate() {
                            let p = format!("subtotalsSpec[{i}]");
                            let arr = s.as_array().ok_or_else(|| {
                                Error::invalid(format!(
                                    "{p}: expected an array of dimension output names"
                                ))
                            })?;
                            let mut set = Vec::new();
                            for (j, d) in arr.iter().enumerate() {
                                let name = d.as_str().ok_or_else(|| {
                                    Error::invalid(format!("{p}[{j}]: expected a string"))
                                })?;
                                if !dimensions.iter().any(|x| x.output_name == name) {
                                    return Err(Error::invalid(format!(
                                        "{p}[{j}]: `{name}` is not one of the query's dimensions"
                                    )));
                                }
                                set.push(name.to_string());
                            }
                            sets.push(set);
                        }
                        Some(sets)
                    }
                };
                Query::GroupBy {
                    base,
                    granularity: granularity()?,
                    dimensions,
                    aggregations: AggregatorSpec::parse_list(
                        o.get("aggregations"),
                        "aggregations",
                    )?,
                    post_aggregations: PostAggregator::parse_list(
                        o.get("postAggregations"),
                        "postAggregations",
                    )?,
                    having,
                    limit_spec,
                    subtotals,
                }
            }
            "scan" => {
                known(&[
                    "columns",
                    "limit",
                    "offset",
                    "order",
                    "resultFormat",
                    "batchSize",
                    "legacy",
                    "virtualColumns",
                ])?;
                reject_virtual(&o)?;
                let compacted = match o.opt_str("resultFormat")?.unwrap_or("list") {
                    "list" => false,
                    "compactedList" => true,
                    other => {
                        return Err(Error::invalid(format!(
                            "resultFormat: unsupported `{other}` (expected list or compactedList)"
                        )));
                    }
                };
                let order = match o.opt_str("order")?.unwrap_or("none") {
                    "none" => ScanOrder::None,
                    "ascending" => ScanOrder::Ascending,
                    "descending" => ScanOrder::Descending,
                    other => {
                        return Err(Error::invalid(format!(
                            "order: unsupported `{other}` (expected none, ascending or descending)"
                        )));
                    }
                };
                Query::Scan {
                    base,
                    columns: o.opt_str_array("columns")?.unwrap_or_default(),
                    limit: o.opt_u64("limit")?,
                    offset: o.opt_u64("offset")?.unwrap_or(0),
                    order,
                    compacted,
                }
            }
            "timeBoundary" => {
                known(&["bound"])?;
                let bound = o.opt_str("bound")?.map(str::to_string);
                if let Some(b) = &bound
                    && b != "minTime"
                    && b != "maxTime"
                {
                    return Err(Error::invalid(format!(
                        "bound: expected minTime or maxTime, found `{b}`"
                    )));
                }
                Query::TimeBoundary { base, bound }
            }
            "segmentMetadata" => {
                known(&[
                    "merge",
                    "analysisTypes",
                    "toInclude",
                    "lenientAggregatorMerge",
                    "aggregatorMergeStrategy",
                ])?;
                Query::SegmentMetadata {
                    base,
                    merge: o.opt_bool("merge")?.unwrap_or(false),
                    analysis_types: o.opt_str_array("analysisTypes")?.unwrap_or_else(|| {
                        vec!["cardinality".into(), "interval".into(), "minmax".into()]
                    }),
                }
            }
            "search" => {
                known(&[
                    "searchDimensions",
                    "query",
                    "sort",
                    "limit",
                    "virtualColumns",
                ])?;
                reject_virtual(&o)?;
                let q = o
                    .get("query")
                    .ok_or_else(|| Error::invalid("query: required field is missing"))?;
                let qo = Obj::new(q, "query")?;
                let (needles, case_sensitive) = match qo.req_str("type")? {
                    "contains" => (
                        vec![qo.req_str("value")?.to_string()],
                        qo.opt_bool("caseSensitive")?.unwrap_or(false),
                    ),
                    "insensitive_contains" => (vec![qo.req_str("value")?.to_string()], false),
                    "fragment" => (
                        qo.opt_str_array("values")?.unwrap_or_default(),
                        qo.opt_bool("caseSensitive")?.unwrap_or(false),
                    ),
                    other => {
                        return Err(Error::invalid(format!(
                            "query.type: unsupported search query `{other}` (expected contains, insensitive_contains, fragment)"
                        )));
                    }
                };
                Query::Search {
                    base,
                    granularity: granularity()?,
                    dimensions: o.opt_str_array("searchDimensions")?,
                    needles,
                    case_sensitive,
                    limit: o.opt_u64("limit")?.unwrap_or(1000).min(1 << 24) as usize,
                    sort: StringOrdering::parse(o.get("sort"), "sort")?,
                }
            }
            "dataSourceMetadata" => {
                known(&[])?;
                Query::DataSourceMetadata { base }
            }
            other => {
                return Err(Error::invalid(format!(
                    "queryType: unsupported query type `{other}` (supported: timeseries, topN, groupBy, scan, timeBoundary, segmentMetadata, search, dataSourceMetadata)"
                )));
            }
        })
    }

    /// Common fields.
    pub fn base(&self) -> &QueryBase {
        match self {
            Query::Timeseries { base, .. }
            | Query::TopN { base, .. }
            | Query::GroupBy { base, .. }
            | Query::Scan { base, .. }
            | Query::TimeBoundary { base, .. }
            | Query::SegmentMetadata { base, .. }
            | Query::Search { base, .. }
            | Query::DataSourceMetadata { base } => base,
        }
    }

    /// Druid's name of the query type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Query::Timeseries { .. } => "timeseries",
            Query::TopN { .. } => "topN",
            Query::GroupBy { .. } => "groupBy",
            Query::Scan { .. } => "scan",
            Query::TimeBoundary { .. } => "timeBoundary",
            Query::SegmentMetadata { .. } => "segmentMetadata",
            Query::Search { .. } => "search",
            Query::DataSourceMetadata { .. } => "dataSourceMetadata",
        }
    }
}

fn reject_virtual(o: &Obj<'_>) -> Result<()> {
    match o.get("virtualColumns") {
        Some(Value::Array(a)) if !a.is_empty() => Err(Error::invalid(
            "virtualColumns: virtual columns are not supported yet",
        )),
        _ => Ok(()),
    }
}

fn parse_limit_spec(v: &Value) -> Result<LimitSpec> {
    let o = Obj::new(v, "limitSpec")?;
    o.check_known(&["type", "limit", "offset", "columns"])?;
    if let Some(t) = o.opt_str("type")?
        && t != "default"
    {
        return Err(Error::invalid(format!(
            "limitSpec.type: unsupported `{t}` (only `default`)"
        )));
    }
    let mut columns = Vec::new();
    if let Some(cols) = o.opt_array("columns")? {
        for (i, c) in cols.iter().enumerate() {
            let p = format!("limitSpec.columns[{i}]");
            columns.push(match c {
                Value::String(s) => OrderByColumn {
                    dimension: s.clone(),
                    descending: false,
                    numeric: false,
                    nulls_first: None,
                },
                Value::Object(_) => {
                    let co = Obj::new(c, &p)?;
                    let direction = co.opt_str("direction")?.unwrap_or("ascending");
                    let descending = match direction.to_ascii_lowercase().as_str() {
                        "ascending" | "asc" => false,
                        "descending" | "desc" => true,
                        other => {
                            return Err(Error::invalid(format!(
                                "{p}.direction: expected ascending or descending, found `{other}`"
                            )));
                        }
                    };
                    let numeric = match co.get("dimensionOrder") {
                        None => false,
                        Some(Value::String(s)) => s == "numeric",
                        Some(Value::Object(m)) => {
                            m.get("type").and_then(Value::as_str) == Some("numeric")
                        }
                        Some(_) => false,
                    };
                    let nulls_first = match co.opt_str("nullOrder")? {
                        None => None,
                        Some(n) => match n.to_ascii_lowercase().as_str() {
                            "first" => Some(true),
                            "last" => Some(false),
                            other => {
                                return Err(Error::invalid(format!(
                                    "{p}.nullOrder: expected first or last, found `{other}`"
                                )));
                            }
                        },
                    };
                    OrderByColumn {
                        dimension: co.req_str("dimension")?.to_string(),
                        descending,
                        numeric,
                        nulls_first,
                    }
                }
                _ => {
                    return Err(Error::invalid(format!(
                        "{p}: expected a column name or an order-by object"
                    )));
                }
            });
        }
    }
    Ok(LimitSpec {
        limit: o.opt_u64("limit")?,
        offset: o.opt_u64("offset")?.unwrap_or(0),
        columns,
    })
}
