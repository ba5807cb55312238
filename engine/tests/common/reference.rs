//! A naive reference evaluator of Druid native queries, for differential testing.
//!
//! It works row at a time over plain vectors of typed values read back from published segments,
//! with the simplest code that gives Druid's answer; speed and generality do not matter, and it
//! shares no query code with the engine (only the segment reader used to load the rows and the
//! HLL sketch library used to merge stored sketches). It accepts the queries the random
//! generator and the hand-written tests produce and panics on anything else.
//!
//! The result is the Druid response JSON, except where an exact answer does not exist; there it
//! holds a marker object that [`super::compare`] understands:
//! - `{"$float": x, "scale": s}`: a double computed by summing (order-dependent rounding);
//! - `{"$approx": x, "round": b}`: an HLL estimate (or the exact distinct count it estimates);
//! - `{"$oneOf": [...]}`: first/last with several values at the winning timestamp;
//! - `{"$any": true}`: a value not checked (scan of sketch and first/last pair columns);
//! - `{"$multiset": [...]}`, `{"$ranked": {...}}`, `{"$subset": {...}}`, `{"$scan": {...}}`,
//!   `{"$search": [...]}`, `{"$segmentMetadata": {...}}`: result lists whose order or exact
//!   membership is not determined by the query (ties, no ordering, limits without ordering).
//!
//! Semantics chosen where Druid leaves a choice (see the report of the differential test):
//! - `granularity: all` results carry the start of the first query interval as timestamp;
//! - first/last aggregators ignore null inputs (as `basalt_engine::aggregate` does at ingest);
//! - a sum/min/max over no non-null value is null, `count` 0, sketches and `cardinality` 0;
//! - grouping on a long dimension yields the value as a string (Druid's default outputType).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use basalt_engine::schema::{DataSchema, DimensionType, MetricKind};
use basalt_engine::segment::{Segment, SegmentId};
use datasketches::hll::{HllSketch, HllType, HllUnion};
use serde_json::{Map, Value, json};

/// When set, timeseries zero-fills only the buckets between the first and the last bucket with
/// (filtered) data, instead of every bucket of the query intervals as docs/QUERIES.md says.
pub static ZERO_FILL_BETWEEN_DATA: AtomicBool = AtomicBool::new(false);

// =============================================================================================
// Data
// =============================================================================================

/// One stored value.
#[derive(Clone, Debug)]
pub enum Val {
    /// Null (also an empty multi-value row).
    Null,
    /// A single string.
    Str(String),
    /// Several strings (a multi-value row with at least two values), in stored order.
    Multi(Vec<String>),
    /// A long.
    Long(i64),
    /// A double.
    Double(f64),
    /// A stored longFirst/longLast pair (time, value).
    LongPair(i64, i64),
    /// A stored doubleFirst/doubleLast pair (time, value).
    DoublePair(i64, f64),
    /// A stored HLL sketch.
    Hll(Arc<HllSketch>),
}

/// The kind of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColKind {
    /// `__time`.
    Time,
    /// String dimension (single or multi-value).
    Str,
    /// Long dimension or long metric.
    Long,
    /// Double dimension or double metric.
    Double,
    /// longFirst/longLast metric.
    LongPair,
    /// doubleFirst/doubleLast metric.
    DoublePair,
    /// HLL sketch metric.
    Hll,
}

/// A column of a dataset.
#[derive(Clone, Debug)]
pub struct Column {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ColKind,
    /// Dimension (or `__time`) as opposed to metric.
    pub is_dim: bool,
}

/// One row: `vals[0]` is `__time` as `Val::Long`, then dimensions, then metrics.
#[derive(Clone, Debug)]
pub struct Row {
    /// `__time`.
    pub time: i64,
    /// Values in column order.
    pub vals: Vec<Val>,
}

/// A visible segment.
#[derive(Clone, Debug)]
pub struct SegmentInfo {
    /// Identity.
    pub id: SegmentId,
    /// Stored rows.
    pub num_rows: u64,
}

/// All visible rows and segments of one datasource.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Datasource name.
    pub name: String,
    /// Columns, `__time` first.
    pub columns: Vec<Column>,
    /// Visible rows.
    pub rows: Vec<Row>,
    /// Visible segments.
    pub segments: Vec<SegmentInfo>,
}

/// The columns of a schema: `__time`, dimensions, metrics.
pub fn columns_of(schema: &DataSchema) -> Vec<Column> {
    let mut cols = vec![Column {
        name: "__time".into(),
        kind: ColKind::Time,
        is_dim: true,
    }];
    for d in &schema.dimensions {
        cols.push(Column {
            name: d.name.clone(),
            kind: match d.kind {
                DimensionType::String => ColKind::Str,
                DimensionType::Long => ColKind::Long,
                DimensionType::Double => ColKind::Double,
            },
            is_dim: true,
        });
    }
    for m in &schema.metrics {
        let kind = match m.kind {
            MetricKind::LongFirst | MetricKind::LongLast => ColKind::LongPair,
            MetricKind::DoubleFirst | MetricKind::DoubleLast => ColKind::DoublePair,
            MetricKind::HllSketch => ColKind::Hll,
            k if k.is_long() => ColKind::Long,
            _ => ColKind::Double,
        };
        cols.push(Column {
            name: m.name.clone(),
            kind,
            is_dim: false,
        });
    }
    cols
}

impl Dataset {
    /// A dataset from its rows and visible segments.
    pub fn new(
        name: &str,
        schema: &DataSchema,
        rows: Vec<Row>,
        segments: Vec<SegmentInfo>,
    ) -> Self {
        Dataset {
            name: name.to_string(),
            columns: columns_of(schema),
            rows,
            segments,
        }
    }

    /// Index of a column, `None` if there is no such column.
    pub fn col(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

fn arrow_val(a: &ArrayRef, i: usize) -> Val {
    if a.is_null(i) {
        return Val::Null;
    }
    match a.data_type() {
        DataType::Timestamp(..) => Val::Long(a.as_primitive::<TimestampMillisecondType>().value(i)),
        DataType::Int64 => Val::Long(a.as_primitive::<Int64Type>().value(i)),
        DataType::Float64 => Val::Double(a.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 => Val::Str(a.as_string::<i32>().value(i).to_string()),
        DataType::List(_) => {
            let inner = a.as_list::<i32>().value(i);
            let s = inner.as_string::<i32>();
            let mut v: Vec<String> = (0..s.len())
                .filter(|&j| !s.is_null(j))
                .map(|j| s.value(j).to_string())
                .collect();
            match v.len() {
                0 => Val::Null,
                1 => Val::Str(v.swap_remove(0)),
                _ => Val::Multi(v),
            }
        }
        DataType::Binary => {
            let bytes = a.as_binary::<i32>().value(i);
            Val::Hll(Arc::new(
                basalt_engine::aggregate::deserialize_hll(bytes).unwrap(),
            ))
        }
        DataType::Struct(_) => {
            let s = a.as_struct();
            let t = s.column(0).as_primitive::<Int64Type>().value(i);
            match s.column(1).data_type() {
                DataType::Int64 => {
                    Val::LongPair(t, s.column(1).as_primitive::<Int64Type>().value(i))
                }
                _ => Val::DoublePair(t, s.column(1).as_primitive::<Float64Type>().value(i)),
            }
        }
        other => panic!("unexpected arrow type {other:?}"),
    }
}

/// Read every row of a segment through its Arrow export.
pub fn rows_from_segment(seg: &Segment, schema: &DataSchema) -> Vec<Row> {
    let cols = columns_of(schema);
    let mut out = Vec::new();
    for batch in seg.to_record_batches().unwrap() {
        let arrays: Vec<ArrayRef> = cols
            .iter()
            .map(|c| {
                batch
                    .column_by_name(&c.name)
                    .unwrap_or_else(|| panic!("no column {}", c.name))
                    .clone()
            })
            .collect();
        for i in 0..batch.num_rows() {
            let vals: Vec<Val> = arrays.iter().map(|a| arrow_val(a, i)).collect();
            let Val::Long(time) = vals[0] else {
                panic!("__time is null")
            };
            out.push(Row { time, vals });
        }
    }
    out
}

// =============================================================================================
// Time
// =============================================================================================

const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// ISO-8601 text of `t` shown at a fixed UTC offset (`Z` for 0), as Druid prints timestamps.
pub fn fmt_ts(t: i64, offset_ms: i64) -> String {
    let local = t + offset_ms;
    let (y, mo, d) = civil_from_days(local.div_euclid(DAY));
    let tod = local.rem_euclid(DAY);
    let zone = if offset_ms == 0 {
        "Z".to_string()
    } else {
        let sign = if offset_ms < 0 { '-' } else { '+' };
        let m = offset_ms.abs() / MINUTE;
        format!("{sign}{:02}:{:02}", m / 60, m % 60)
    };
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}{zone}",
        tod / HOUR,
        tod / MINUTE % 60,
        tod / 1000 % 60,
        tod % 1000
    )
}

/// UTC ISO-8601 text.
pub fn iso(t: i64) -> String {
    fmt_ts(t, 0)
}

fn num(s: &str) -> i64 {
    s.parse().unwrap_or_else(|_| panic!("bad number `{s}`"))
}

/// Parse the ISO-8601 forms the tests write: `YYYY-MM-DD[THH[:MM[:SS[.sss]]]][Z|±hh:mm]`.
pub fn parse_ts(s: &str) -> i64 {
    let (date, rest) = s.split_at(10.min(s.len()));
    let parts: Vec<&str> = date.split('-').collect();
    let days = days_from_civil(num(parts[0]), num(parts[1]), num(parts[2]));
    let rest = rest.strip_prefix('T').unwrap_or(rest);
    let (time, offset) = if let Some(t) = rest.strip_suffix('Z') {
        (t, 0)
    } else if let Some(p) = rest.rfind(['+', '-']) {
        let (t, z) = rest.split_at(p);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let hm: Vec<&str> = z[1..].split(':').collect();
        (
            t,
            sign * (num(hm[0]) * HOUR + hm.get(1).map_or(0, |m| num(m)) * MINUTE),
        )
    } else {
        (rest, 0)
    };
    let mut ms = 0;
    if !time.is_empty() {
        let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
        let f: Vec<&str> = hms.split(':').collect();
        ms += num(f[0]) * HOUR;
        ms += f.get(1).map_or(0, |m| num(m)) * MINUTE;
        ms += f.get(2).map_or(0, |m| num(m)) * 1000;
        let frac3 = format!("{frac:0<3}");
        ms += num(&frac3[..3]);
    }
    days * DAY + ms - offset
}

/// A period the tests use: `PnW`, `PnD`, `PTnH`, `PTnM`, `PTnS`, `PnM` (calendar months).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    /// A fixed length in milliseconds.
    Fixed(i64),
    /// Calendar months.
    Months(i64),
}

/// Parse a period of the forms in [`Period`].
pub fn parse_period(s: &str) -> Period {
    let body = s
        .strip_prefix('P')
        .unwrap_or_else(|| panic!("bad period {s}"));
    if let Some(t) = body.strip_prefix('T') {
        let (n, unit) = t.split_at(t.len() - 1);
        let n = num(n);
        return Period::Fixed(match unit {
            "H" => n * HOUR,
            "M" => n * MINUTE,
            "S" => n * 1000,
            _ => panic!("bad period {s}"),
        });
    }
    let (n, unit) = body.split_at(body.len() - 1);
    let n = num(n);
    match unit {
        "W" => Period::Fixed(n * 7 * DAY),
        "D" => Period::Fixed(n * DAY),
        "M" => Period::Months(n),
        "Y" => Period::Months(12 * n),
        _ => panic!("bad period {s}"),
    }
}

fn add_months(t: i64, n: i64) -> i64 {
    let (y, m, d) = civil_from_days(t.div_euclid(DAY));
    let tod = t.rem_euclid(DAY);
    let total = y * 12 + (m - 1) + n;
    let (ny, nm) = (total.div_euclid(12), total.rem_euclid(12) + 1);
    let dim = days_from_civil(ny + (nm / 12), nm % 12 + 1, 1) - days_from_civil(ny, nm, 1);
    days_from_civil(ny, nm, d.min(dim)) * DAY + tod
}

fn add_period(t: i64, p: Period, sign: i64) -> i64 {
    match p {
        Period::Fixed(ms) => t + sign * ms,
        Period::Months(n) => add_months(t, sign * n),
    }
}

/// Parse `start/end`, `start/PERIOD` or `PERIOD/end`.
pub fn parse_interval(s: &str) -> (i64, i64) {
    let (a, b) = s
        .split_once('/')
        .unwrap_or_else(|| panic!("bad interval {s}"));
    if a.starts_with('P') {
        let end = parse_ts(b);
        (add_period(end, parse_period(a), -1), end)
    } else if b.starts_with('P') {
        let start = parse_ts(a);
        (start, add_period(start, parse_period(b), 1))
    } else {
        (parse_ts(a), parse_ts(b))
    }
}

/// The query's intervals, in the order given.
pub fn query_intervals(q: &Value) -> Vec<(i64, i64)> {
    let v = match q.get("intervals") {
        None | Some(Value::Null) => return vec![(i64::MIN / 2, i64::MAX / 2)],
        Some(Value::Object(o)) => o.get("intervals").unwrap().clone(),
        Some(v) => v.clone(),
    };
    match v {
        Value::String(s) => vec![parse_interval(&s)],
        Value::Array(a) => a
            .iter()
            .map(|s| parse_interval(s.as_str().unwrap()))
            .collect(),
        other => panic!("bad intervals {other}"),
    }
}

fn in_intervals(t: i64, ivs: &[(i64, i64)]) -> bool {
    ivs.iter().any(|&(s, e)| s <= t && t < e)
}

/// A fixed UTC offset for the time zones the tests use.
pub fn tz_offset(tz: &str) -> i64 {
    match tz {
        "UTC" | "Etc/UTC" | "Z" => 0,
        _ => {
            if let Some(rest) = tz.strip_prefix("Etc/GMT") {
                // POSIX-style: Etc/GMT-2 is two hours *ahead* of UTC.
                -num(rest.trim_start_matches('+')) * HOUR
            } else {
                panic!("reference supports fixed-offset zones only, not {tz}")
            }
        }
    }
}

// =============================================================================================
// Granularity
// =============================================================================================

/// A bucketing of time.
#[derive(Clone, Debug)]
pub struct Gran {
    kind: GranKind,
    /// Offset used to print bucket timestamps (time zone of a period granularity).
    display_offset: i64,
}

#[derive(Clone, Debug)]
enum GranKind {
    All,
    /// Buckets of `step` ms aligned to `origin`.
    Fixed {
        step: i64,
        origin: i64,
    },
    /// ISO weeks in local time at `offset`.
    Week {
        offset: i64,
    },
    /// Calendar months (1, 3, 12) in local time at `offset`.
    Months {
        n: i64,
        offset: i64,
    },
}

impl Gran {
    /// Parse a query's `granularity` (absent = `all`).
    pub fn parse(v: Option<&Value>) -> Gran {
        let fixed = |step: i64| GranKind::Fixed { step, origin: 0 };
        let simple = |name: &str| match name.to_ascii_lowercase().as_str() {
            "all" => GranKind::All,
            "none" => fixed(1),
            "second" => fixed(1000),
            "minute" => fixed(MINUTE),
            "five_minute" => fixed(5 * MINUTE),
            "ten_minute" => fixed(10 * MINUTE),
            "fifteen_minute" => fixed(15 * MINUTE),
            "thirty_minute" => fixed(30 * MINUTE),
            "hour" => fixed(HOUR),
            "six_hour" => fixed(6 * HOUR),
            "eight_hour" => fixed(8 * HOUR),
            "day" => fixed(DAY),
            "week" => GranKind::Week { offset: 0 },
            "month" => GranKind::Months { n: 1, offset: 0 },
            "quarter" => GranKind::Months { n: 3, offset: 0 },
            "year" => GranKind::Months { n: 12, offset: 0 },
            other => panic!("unknown granularity {other}"),
        };
        match v {
            None | Some(Value::Null) => Gran {
                kind: GranKind::All,
                display_offset: 0,
            },
            Some(Value::String(s)) => Gran {
                kind: simple(s),
                display_offset: 0,
            },
            Some(Value::Object(o)) => match o["type"].as_str().unwrap() {
                "period" => {
                    let offset = o
                        .get("timeZone")
                        .and_then(Value::as_str)
                        .map_or(0, tz_offset);
                    let origin = o.get("origin").and_then(Value::as_str).map(parse_ts);
                    let kind = match parse_period(o["period"].as_str().unwrap()) {
                        Period::Fixed(w) if w == 7 * DAY && origin.is_none() => {
                            GranKind::Week { offset }
                        }
                        Period::Fixed(step) => {
                            assert!(
                                origin.is_some() || DAY % step == 0,
                                "period must divide a day"
                            );
                            GranKind::Fixed {
                                step,
                                origin: origin.unwrap_or(-offset),
                            }
                        }
                        Period::Months(n) => GranKind::Months { n, offset },
                    };
                    Gran {
                        kind,
                        display_offset: offset,
                    }
                }
                "duration" => Gran {
                    kind: GranKind::Fixed {
                        step: o["duration"].as_i64().unwrap(),
                        origin: o.get("origin").and_then(Value::as_str).map_or(0, parse_ts),
                    },
                    display_offset: 0,
                },
                other => Gran {
                    kind: simple(other),
                    display_offset: 0,
                },
            },
            Some(other) => panic!("bad granularity {other}"),
        }
    }

    /// Whether this is `all`.
    pub fn is_all(&self) -> bool {
        matches!(self.kind, GranKind::All)
    }

    /// Start of the bucket holding `t` (`i64::MIN` for `all`).
    pub fn truncate(&self, t: i64) -> i64 {
        match self.kind {
            GranKind::All => i64::MIN,
            GranKind::Fixed { step, origin } => origin + (t - origin).div_euclid(step) * step,
            GranKind::Week { offset } => {
                let days = (t + offset).div_euclid(DAY);
                let weekday = (days + 3).rem_euclid(7); // Monday = 0; 1970-01-01 was a Thursday
                (days - weekday) * DAY - offset
            }
            GranKind::Months { n, offset } => {
                let (y, m, _) = civil_from_days((t + offset).div_euclid(DAY));
                let m0 = (m - 1) / n * n + 1;
                days_from_civil(y, m0, 1) * DAY - offset
            }
        }
    }

    /// Start of the next bucket after the one starting at `start`.
    pub fn next(&self, start: i64) -> i64 {
        match self.kind {
            GranKind::All => i64::MAX,
            GranKind::Fixed { step, .. } => start + step,
            GranKind::Week { .. } => start + 7 * DAY,
            GranKind::Months { n, offset } => add_months(start + offset, n) - offset,
        }
    }

    /// Every bucket start overlapping the intervals, ascending.
    pub fn buckets(&self, ivs: &[(i64, i64)]) -> Vec<i64> {
        let mut set = BTreeSet::new();
        for &(s, e) in ivs {
            let mut b = self.truncate(s);
            while b < e {
                set.insert(b);
                b = self.next(b);
            }
        }
        set.into_iter().collect()
    }

    /// The printed timestamp of a bucket; `all` prints the first interval's start.
    pub fn stamp(&self, bucket: i64, ivs: &[(i64, i64)]) -> String {
        if self.is_all() {
            iso(ivs[0].0)
        } else {
            fmt_ts(bucket, self.display_offset)
        }
    }
}

// =============================================================================================
// Filters
// =============================================================================================

/// A scalar of a row: one value of a (possibly multi-value) column.
#[derive(Clone, Copy, Debug)]
enum Sc<'a> {
    S(&'a str),
    L(i64),
    D(f64),
}

impl Sc<'_> {
    fn string(&self) -> String {
        match self {
            Sc::S(s) => s.to_string(),
            Sc::L(i) => i.to_string(),
            Sc::D(d) => druid_double_string(*d),
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Sc::S(s) => s.trim().parse::<f64>().ok(),
            Sc::L(i) => Some(*i as f64),
            Sc::D(d) => Some(*d),
        }
    }
}

/// Java's `Double.toString` for the plain values the tests use.
pub fn druid_double_string(d: f64) -> String {
    if d.fract() == 0.0 && d.abs() < 1e7 {
        format!("{d:.1}")
    } else {
        format!("{d}")
    }
}

/// `Some(any scalar satisfies p)`, or `None` when the value is null.
fn any_scalar(v: &Val, mut p: impl FnMut(Sc<'_>) -> bool) -> Option<bool> {
    match v {
        Val::Null | Val::LongPair(..) | Val::DoublePair(..) | Val::Hll(_) => None,
        Val::Str(s) => Some(p(Sc::S(s))),
        Val::Multi(v) => Some(v.iter().any(|s| p(Sc::S(s)))),
        Val::Long(i) => Some(p(Sc::L(*i))),
        Val::Double(d) => Some(p(Sc::D(*d))),
    }
}

/// A compiled filter; columns are indexes into `Row::vals` (`None`: missing column, all null).
#[derive(Clone, Debug)]
pub enum Filter {
    /// `true`.
    True,
    /// `false`.
    False,
    /// `selector`.
    Selector(Option<usize>, Option<String>),
    /// `in`.
    In(Option<usize>, Vec<Option<String>>),
    /// `equals`: column, type, value.
    Equals(Option<usize>, String, Value),
    /// `bound`: column, lower, upper, lowerStrict, upperStrict, numeric.
    Bound(
        Option<usize>,
        Option<String>,
        Option<String>,
        bool,
        bool,
        bool,
    ),
    /// `range`: column, type, lower, upper, lowerOpen, upperOpen.
    Range(
        Option<usize>,
        String,
        Option<Value>,
        Option<Value>,
        bool,
        bool,
    ),
    /// `like`.
    Like(Option<usize>, Vec<LikeTok>),
    /// `regex`.
    Regex(Option<usize>, MiniRegex),
    /// `interval` on `__time`.
    Interval(Vec<(i64, i64)>),
    /// `null`.
    IsNull(Option<usize>),
    /// `and`.
    And(Vec<Filter>),
    /// `or`.
    Or(Vec<Filter>),
    /// `not`.
    Not(Box<Filter>),
}

fn json_str(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

impl Filter {
    /// Compile filter JSON; `col` resolves a column name to its index.
    pub fn compile(v: &Value, col: &dyn Fn(&str) -> Option<usize>) -> Filter {
        let Some(o) = v.as_object() else {
            return Filter::True;
        };
        let dim = |k: &str| col(o[k].as_str().unwrap());
        let b = |k: &str| o.get(k).and_then(Value::as_bool).unwrap_or(false);
        let opt = |k: &str| o.get(k).filter(|v| !v.is_null());
        match o["type"].as_str().unwrap() {
            "true" => Filter::True,
            "false" => Filter::False,
            "selector" => Filter::Selector(dim("dimension"), o.get("value").and_then(json_str)),
            "in" => Filter::In(
                dim("dimension"),
                o["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(json_str)
                    .collect(),
            ),
            "equals" => Filter::Equals(
                dim("column"),
                o["matchValueType"].as_str().unwrap().to_ascii_uppercase(),
                o["matchValue"].clone(),
            ),
            "bound" => Filter::Bound(
                dim("dimension"),
                opt("lower").and_then(json_str),
                opt("upper").and_then(json_str),
                b("lowerStrict"),
                b("upperStrict"),
                o.get("ordering")
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.eq_ignore_ascii_case("numeric")),
            ),
            "range" => Filter::Range(
                dim("column"),
                o["matchValueType"].as_str().unwrap().to_ascii_uppercase(),
                opt("lower").cloned(),
                opt("upper").cloned(),
                b("lowerOpen"),
                b("upperOpen"),
            ),
            "like" => Filter::Like(
                dim("dimension"),
                like_tokens(
                    o["pattern"].as_str().unwrap(),
                    o.get("escape")
                        .and_then(Value::as_str)
                        .and_then(|e| e.chars().next()),
                ),
            ),
            "regex" => Filter::Regex(
                dim("dimension"),
                MiniRegex::parse(o["pattern"].as_str().unwrap()),
            ),
            "interval" => {
                let ivs = o["intervals"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| parse_interval(s.as_str().unwrap()))
                    .collect();
                Filter::Interval(ivs)
            }
            "null" => Filter::IsNull(dim("column")),
            "and" => Filter::And(
                o["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| Filter::compile(f, col))
                    .collect(),
            ),
            "or" => Filter::Or(
                o["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| Filter::compile(f, col))
                    .collect(),
            ),
            "not" => Filter::Not(Box::new(Filter::compile(&o["field"], col))),
            other => panic!("reference: unknown filter type {other}"),
        }
    }

    /// Three-valued result: `Some(true)` matches, `Some(false)` does not, `None` unknown (null).
    pub fn eval(&self, vals: &[Val]) -> Option<bool> {
        let get = |c: &Option<usize>| c.map_or(&Val::Null, |i| &vals[i]);
        match self {
            Filter::True => Some(true),
            Filter::False => Some(false),
            Filter::Selector(c, value) => match (
                any_scalar(get(c), |s| {
                    value.as_deref().is_some_and(|v| sel_match(s, v))
                }),
                value,
            ) {
                (None, None) => Some(true),
                (None, Some(_)) => None,
                (Some(m), _) => Some(m),
            },
            Filter::In(c, values) => {
                match any_scalar(get(c), |s| values.iter().flatten().any(|v| sel_match(s, v))) {
                    None if values.iter().any(Option::is_none) => Some(true),
                    r => r,
                }
            }
            Filter::Equals(c, ty, value) => {
                any_scalar(get(c), |s| typed_cmp(s, ty, value) == Some(Ordering::Equal))
            }
            Filter::Bound(c, lo, hi, lo_strict, hi_strict, numeric) => any_scalar(get(c), |s| {
                let cmp = |bound: &str| -> Option<Ordering> {
                    if *numeric {
                        s.number()?.partial_cmp(&bound.trim().parse::<f64>().ok()?)
                    } else {
                        Some(s.string().as_str().cmp(bound))
                    }
                };
                let lo_ok = lo.as_deref().is_none_or(|l| match cmp(l) {
                    Some(Ordering::Greater) => true,
                    Some(Ordering::Equal) => !lo_strict,
                    _ => false,
                });
                let hi_ok = hi.as_deref().is_none_or(|h| match cmp(h) {
                    Some(Ordering::Less) => true,
                    Some(Ordering::Equal) => !hi_strict,
                    _ => false,
                });
                lo_ok && hi_ok
            }),
            Filter::Range(c, ty, lo, hi, lo_open, hi_open) => any_scalar(get(c), |s| {
                let lo_ok = lo.as_ref().is_none_or(|l| match typed_cmp(s, ty, l) {
                    Some(Ordering::Greater) => true,
                    Some(Ordering::Equal) => !lo_open,
                    _ => false,
                });
                let hi_ok = hi.as_ref().is_none_or(|h| match typed_cmp(s, ty, h) {
                    Some(Ordering::Less) => true,
                    Some(Ordering::Equal) => !hi_open,
                    _ => false,
                });
                lo_ok && hi_ok
            }),
            Filter::Like(c, toks) => any_scalar(get(c), |s| {
                let chars: Vec<char> = s.string().chars().collect();
                like_match(toks, &chars)
            }),
            Filter::Regex(c, re) => any_scalar(get(c), |s| re.find(&s.string())),
            Filter::Interval(ivs) => match vals[0] {
                Val::Long(t) => Some(in_intervals(t, ivs)),
                _ => None,
            },
            Filter::IsNull(c) => Some(any_scalar(get(c), |_| true).is_none()),
            Filter::And(fs) => {
                let rs: Vec<Option<bool>> = fs.iter().map(|f| f.eval(vals)).collect();
                if rs.contains(&Some(false)) {
                    Some(false)
                } else if rs.iter().all(|r| *r == Some(true)) {
                    Some(true)
                } else {
                    None
                }
            }
            Filter::Or(fs) => {
                let rs: Vec<Option<bool>> = fs.iter().map(|f| f.eval(vals)).collect();
                if rs.contains(&Some(true)) {
                    Some(true)
                } else if rs.iter().all(|r| *r == Some(false)) {
                    Some(false)
                } else {
                    None
                }
            }
            Filter::Not(f) => f.eval(vals).map(|b| !b),
        }
    }

    /// Whether the row matches.
    pub fn matches(&self, vals: &[Val]) -> bool {
        self.eval(vals) == Some(true)
    }
}

fn sel_match(s: Sc<'_>, v: &str) -> bool {
    match s {
        Sc::S(x) => x == v,
        Sc::L(i) => match v.parse::<i64>() {
            Ok(p) => p == i,
            Err(_) => v.parse::<f64>().is_ok_and(|f| f == i as f64),
        },
        Sc::D(d) => v.parse::<f64>().is_ok_and(|f| f == d),
    }
}

/// Compare a scalar with a typed match value (`equals`, `range`).
fn typed_cmp(s: Sc<'_>, ty: &str, v: &Value) -> Option<Ordering> {
    match ty {
        "STRING" => Some(s.string().as_str().cmp(json_str(v)?.as_str())),
        "LONG" => match s {
            Sc::L(i) => Some(i.cmp(&v.as_i64()?)),
            _ => s.number()?.partial_cmp(&v.as_f64()?),
        },
        _ => s.number()?.partial_cmp(&v.as_f64()?),
    }
}

/// A token of a LIKE pattern.
#[derive(Clone, Debug, PartialEq)]
pub enum LikeTok {
    /// A literal character.
    Lit(char),
    /// `_`.
    One,
    /// `%`.
    Any,
}

fn like_tokens(p: &str, escape: Option<char>) -> Vec<LikeTok> {
    let mut out = Vec::new();
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            if let Some(n) = chars.next() {
                out.push(LikeTok::Lit(n));
            }
        } else if c == '%' {
            out.push(LikeTok::Any);
        } else if c == '_' {
            out.push(LikeTok::One);
        } else {
            out.push(LikeTok::Lit(c));
        }
    }
    out
}

fn like_match(toks: &[LikeTok], s: &[char]) -> bool {
    match toks.split_first() {
        None => s.is_empty(),
        Some((LikeTok::Any, rest)) => (0..=s.len()).any(|i| like_match(rest, &s[i..])),
        Some((LikeTok::One, rest)) => !s.is_empty() && like_match(rest, &s[1..]),
        Some((LikeTok::Lit(c), rest)) => s.first() == Some(c) && like_match(rest, &s[1..]),
    }
}

/// A tiny backtracking regular expression matcher for the patterns the tests write: literals,
/// `.`, classes `[a-z0-9_]` / `[^...]`, `\d`, `\w`, escaped literals, quantifiers `* + ?` and
/// anchors `^ $`. Matching is a search (unanchored), like Java's `Matcher.find`.
#[derive(Clone, Debug)]
pub struct MiniRegex {
    anchored_start: bool,
    nodes: Vec<(Atom, usize, usize)>,
}

#[derive(Clone, Debug)]
enum Atom {
    Any,
    Char(char),
    Class(bool, Vec<(char, char)>),
    End,
}

impl Atom {
    fn accepts(&self, c: char) -> bool {
        match self {
            Atom::Any => c != '\n',
            Atom::Char(x) => *x == c,
            Atom::Class(neg, ranges) => ranges.iter().any(|(a, b)| *a <= c && c <= *b) != *neg,
            Atom::End => false,
        }
    }
}

impl MiniRegex {
    /// Parse a pattern (panics on syntax outside the subset).
    pub fn parse(p: &str) -> MiniRegex {
        let chars: Vec<char> = p.chars().collect();
        let mut i = 0;
        let anchored_start = chars.first() == Some(&'^');
        if anchored_start {
            i = 1;
        }
        let mut nodes: Vec<(Atom, usize, usize)> = Vec::new();
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            let atom = match c {
                '.' => Atom::Any,
                '$' => Atom::End,
                '\\' => {
                    let e = chars[i];
                    i += 1;
                    match e {
                        'd' => Atom::Class(false, vec![('0', '9')]),
                        'w' => {
                            Atom::Class(false, vec![('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')])
                        }
                        other => Atom::Char(other),
                    }
                }
                '[' => {
                    let neg = chars.get(i) == Some(&'^');
                    if neg {
                        i += 1;
                    }
                    let mut ranges = Vec::new();
                    while chars[i] != ']' {
                        let a = chars[i];
                        if chars.get(i + 1) == Some(&'-')
                            && chars.get(i + 2).is_some_and(|c| *c != ']')
                        {
                            ranges.push((a, chars[i + 2]));
                            i += 3;
                        } else {
                            ranges.push((a, a));
                            i += 1;
                        }
                    }
                    i += 1;
                    Atom::Class(neg, ranges)
                }
                '(' | ')' | '|' | '{' | '}' | '*' | '+' | '?' => {
                    panic!("MiniRegex: unsupported `{c}` in {p}")
                }
                other => Atom::Char(other),
            };
            let (min, max) = match chars.get(i) {
                Some('*') => (0, usize::MAX),
                Some('+') => (1, usize::MAX),
                Some('?') => (0, 1),
                _ => (1, 1),
            };
            if (min, max) != (1, 1) {
                i += 1;
            }
            nodes.push((atom, min, max));
        }
        MiniRegex {
            anchored_start,
            nodes,
        }
    }

    fn match_here(&self, n: usize, s: &[char], i: usize) -> bool {
        let Some((atom, min, max)) = self.nodes.get(n) else {
            return true;
        };
        if let Atom::End = atom {
            return i == s.len() && self.match_here(n + 1, s, i);
        }
        let mut count = 0;
        while count < *max && i + count < s.len() && atom.accepts(s[i + count]) {
            count += 1;
        }
        loop {
            if count >= *min && self.match_here(n + 1, s, i + count) {
                return true;
            }
            if count == 0 {
                return false;
            }
            count -= 1;
        }
    }

    /// Whether the pattern occurs in `s`.
    pub fn find(&self, s: &str) -> bool {
        let chars: Vec<char> = s.chars().collect();
        if self.anchored_start {
            self.match_here(0, &chars, 0)
        } else {
            (0..=chars.len()).any(|i| self.match_here(0, &chars, i))
        }
    }
}

// =============================================================================================
// Aggregators and post-aggregators
// =============================================================================================

/// A computed aggregate or post-aggregate.
#[derive(Clone, Debug)]
pub enum Out {
    /// A long (`None`: null).
    Int(Option<i64>),
    /// A double and the magnitude of what was summed to get it (`None`: null).
    Float(Option<f64>, f64),
    /// An estimate (or the exact count it estimates), and whether it is rounded.
    Approx(f64, bool),
    /// One of several values (first/last ties).
    OneOf(Vec<Out>),
}

impl Out {
    /// The response JSON (with markers).
    pub fn to_json(&self) -> Value {
        match self {
            Out::Int(v) => json!(v),
            Out::Float(None, _) => Value::Null,
            Out::Float(Some(f), scale) => json!({"$float": f, "scale": scale}),
            Out::Approx(e, round) => json!({"$approx": e, "round": round}),
            Out::OneOf(v) if v.len() == 1 => v[0].to_json(),
            Out::OneOf(v) => json!({"$oneOf": v.iter().map(Out::to_json).collect::<Vec<_>>()}),
        }
    }

    /// Numeric value for ordering, having and arithmetic.
    pub fn num(&self) -> Option<f64> {
        match self {
            Out::Int(v) => v.map(|i| i as f64),
            Out::Float(v, _) => *v,
            Out::Approx(e, round) => Some(if *round { e.round() } else { *e }),
            Out::OneOf(v) => v.first().and_then(Out::num),
        }
    }

    fn scale(&self) -> f64 {
        match self {
            Out::Float(_, s) => *s,
            other => other.num().unwrap_or(0.0).abs(),
        }
    }
}

/// Named aggregate and post-aggregate values, in output order.
pub type Named = Vec<(String, Out)>;

/// A compiled aggregator.
#[derive(Clone, Debug)]
pub enum AggKind {
    /// `count`.
    Count,
    /// `longSum` (true) / `doubleSum`.
    Sum(Option<usize>, bool),
    /// `longMin`/`doubleMin`: column, long.
    Min(Option<usize>, bool),
    /// `longMax`/`doubleMax`.
    Max(Option<usize>, bool),
    /// `*First` (true) / `*Last` (false): column, long, first.
    FirstLast(Option<usize>, bool, bool),
    /// `cardinality`: fields, byRow, round.
    Cardinality(Vec<Option<usize>>, bool, bool),
    /// `hyperUnique`/`HLLSketchMerge` over a sketch column: column, round.
    SketchMerge(Option<usize>, bool),
    /// `HLLSketchBuild` over a dimension: column, round.
    SketchBuild(Option<usize>, bool),
    /// `filtered`.
    Filtered(Filter, Box<AggKind>),
}

/// A named aggregator.
#[derive(Clone, Debug)]
pub struct Agg {
    /// Output name.
    pub name: String,
    /// What it computes.
    pub kind: AggKind,
}

fn compile_agg_kind(o: &Map<String, Value>, col: &dyn Fn(&str) -> Option<usize>) -> AggKind {
    let field = || col(o["fieldName"].as_str().unwrap());
    let round = o.get("round").and_then(Value::as_bool).unwrap_or(false);
    match o["type"].as_str().unwrap() {
        "count" => AggKind::Count,
        "longSum" => AggKind::Sum(field(), true),
        "doubleSum" | "floatSum" => AggKind::Sum(field(), false),
        "longMin" => AggKind::Min(field(), true),
        "doubleMin" | "floatMin" => AggKind::Min(field(), false),
        "longMax" => AggKind::Max(field(), true),
        "doubleMax" | "floatMax" => AggKind::Max(field(), false),
        "longFirst" => AggKind::FirstLast(field(), true, true),
        "longLast" => AggKind::FirstLast(field(), true, false),
        "doubleFirst" => AggKind::FirstLast(field(), false, true),
        "doubleLast" => AggKind::FirstLast(field(), false, false),
        "cardinality" => AggKind::Cardinality(
            o["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    col(f
                        .as_str()
                        .or_else(|| f.get("dimension").and_then(Value::as_str))
                        .unwrap())
                })
                .collect(),
            o.get("byRow").and_then(Value::as_bool).unwrap_or(false),
            round,
        ),
        "hyperUnique" | "HLLSketchMerge" => AggKind::SketchMerge(field(), round),
        "HLLSketchBuild" => AggKind::SketchBuild(field(), round),
        "filtered" => AggKind::Filtered(
            Filter::compile(&o["filter"], col),
            Box::new(compile_agg_kind(o["aggregator"].as_object().unwrap(), col)),
        ),
        other => panic!("reference: unknown aggregator {other}"),
    }
}

/// Compile the query's `aggregations`.
pub fn compile_aggs(q: &Value, col: &dyn Fn(&str) -> Option<usize>) -> Vec<Agg> {
    q.get("aggregations")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| {
                    let o = v.as_object().unwrap();
                    let name = o
                        .get("name")
                        .and_then(Value::as_str)
                        .or_else(|| o.get("aggregator").and_then(|i| i["name"].as_str()))
                        .unwrap()
                        .to_string();
                    Agg {
                        name,
                        kind: compile_agg_kind(o, col),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

fn numeric(v: &Val) -> Option<f64> {
    match v {
        Val::Long(i) => Some(*i as f64),
        Val::Double(d) => Some(*d),
        _ => None,
    }
}

/// Distinct elements of one row for `cardinality` with `byRow: true` (multi-values sorted).
fn row_element(v: &Val) -> Option<String> {
    match v {
        Val::Null => None,
        Val::Str(s) => Some(s.clone()),
        Val::Multi(m) => {
            let mut m = m.clone();
            m.sort();
            Some(m.join("\u{1}"))
        }
        Val::Long(i) => Some(i.to_string()),
        Val::Double(d) => Some(druid_double_string(*d)),
        _ => None,
    }
}

/// Compute an aggregator over rows.
pub fn compute(kind: &AggKind, rows: &[&Row]) -> Out {
    let get = |r: &'_ Row, c: &Option<usize>| -> Val { c.map_or(Val::Null, |i| r.vals[i].clone()) };
    match kind {
        AggKind::Count => Out::Int(Some(rows.len() as i64)),
        AggKind::Sum(c, long) => {
            let vals: Vec<Val> = rows
                .iter()
                .map(|r| get(r, c))
                .filter(|v| numeric(v).is_some())
                .collect();
            if vals.is_empty() {
                return if *long {
                    Out::Int(None)
                } else {
                    Out::Float(None, 0.0)
                };
            }
            if *long {
                Out::Int(Some(
                    vals.iter()
                        .map(|v| match v {
                            Val::Long(i) => *i,
                            other => numeric(other).unwrap() as i64,
                        })
                        .fold(0i64, i64::wrapping_add),
                ))
            } else {
                let xs: Vec<f64> = vals.iter().filter_map(numeric).collect();
                Out::Float(Some(xs.iter().sum()), xs.iter().map(|x| x.abs()).sum())
            }
        }
        AggKind::Min(c, long) | AggKind::Max(c, long) => {
            let is_min = matches!(kind, AggKind::Min(..));
            let xs: Vec<f64> = rows.iter().filter_map(|r| numeric(&get(r, c))).collect();
            let best = xs
                .iter()
                .copied()
                .reduce(|a, b| if (b < a) == is_min { b } else { a });
            if *long {
                Out::Int(best.map(|f| f as i64))
            } else {
                Out::Float(best, 0.0)
            }
        }
        AggKind::FirstLast(c, long, first) => {
            let mut pairs: Vec<(i64, Val)> = Vec::new();
            for r in rows {
                match get(r, c) {
                    Val::LongPair(t, v) => pairs.push((t, Val::Long(v))),
                    Val::DoublePair(t, v) => pairs.push((t, Val::Double(v))),
                    v @ (Val::Long(_) | Val::Double(_)) => pairs.push((r.time, v)),
                    _ => {}
                }
            }
            let best = if *first {
                pairs.iter().map(|p| p.0).min()
            } else {
                pairs.iter().map(|p| p.0).max()
            };
            let Some(best) = best else {
                return if *long {
                    Out::Int(None)
                } else {
                    Out::Float(None, 0.0)
                };
            };
            let mut seen: Vec<Out> = Vec::new();
            let mut keys = BTreeSet::new();
            for (t, v) in &pairs {
                if *t != best {
                    continue;
                }
                let x = numeric(v).unwrap();
                if keys.insert(x.to_bits()) {
                    seen.push(if *long {
                        Out::Int(Some(x as i64))
                    } else {
                        Out::Float(Some(x), 0.0)
                    });
                }
            }
            Out::OneOf(seen)
        }
        AggKind::Cardinality(cols, by_row, round) => {
            let n = if *by_row {
                let set: HashSet<Vec<Option<String>>> = rows
                    .iter()
                    .map(|r| cols.iter().map(|c| row_element(&get(r, c))).collect())
                    .collect();
                set.len()
            } else {
                let mut set: HashSet<String> = HashSet::new();
                for r in rows {
                    for c in cols {
                        any_scalar(&get(r, c), |s| {
                            set.insert(s.string());
                            false
                        });
                    }
                }
                set.len()
            };
            Out::Approx(n as f64, *round)
        }
        AggKind::SketchBuild(c, round) => {
            let mut set: HashSet<String> = HashSet::new();
            for r in rows {
                any_scalar(&get(r, c), |s| {
                    set.insert(s.string());
                    false
                });
            }
            Out::Approx(set.len() as f64, *round)
        }
        AggKind::SketchMerge(c, round) => {
            let mut union = HllUnion::new(12).unwrap();
            for r in rows {
                if let Val::Hll(s) = get(r, c) {
                    union.update(&s);
                }
            }
            Out::Approx(union.to_sketch(HllType::Hll4).estimate(), *round)
        }
        AggKind::Filtered(f, inner) => {
            let kept: Vec<&Row> = rows
                .iter()
                .copied()
                .filter(|r| f.matches(&r.vals))
                .collect();
            compute(inner, &kept)
        }
    }
}

/// Evaluate the query's `postAggregations` in order, adding each to `values`.
pub fn apply_post_aggs(q: &Value, values: &mut Vec<(String, Out)>) {
    let Some(posts) = q.get("postAggregations").and_then(Value::as_array) else {
        return;
    };
    for p in posts {
        let name = p["name"].as_str().unwrap().to_string();
        let out = post_eval(p, values);
        values.push((name, out));
    }
}

fn lookup<'a>(values: &'a [(String, Out)], name: &str) -> &'a Out {
    &values
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no field {name}"))
        .1
}

fn post_eval(p: &Value, values: &[(String, Out)]) -> Out {
    let fields = || -> Vec<Out> {
        p["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| post_eval(f, values))
            .collect()
    };
    match p["type"].as_str().unwrap() {
        "fieldAccess" | "finalizingFieldAccess" => {
            lookup(values, p["fieldName"].as_str().unwrap()).clone()
        }
        "hyperUniqueCardinality" => match lookup(values, p["fieldName"].as_str().unwrap()) {
            Out::Approx(e, _) => Out::Approx(*e, false),
            other => panic!("hyperUniqueCardinality of {other:?}"),
        },
        "constant" => {
            let v = &p["value"];
            if let Some(i) = v.as_i64() {
                Out::Int(Some(i))
            } else {
                Out::Float(v.as_f64(), 0.0)
            }
        }
        "arithmetic" => {
            let f = fields();
            let op = p["fn"].as_str().unwrap();
            let mut acc: Option<f64> = None;
            let mut scale = 0.0;
            for x in &f {
                let Some(v) = x.num() else {
                    return Out::Float(None, 0.0);
                };
                acc = Some(match acc {
                    None => {
                        scale = x.scale();
                        v
                    }
                    Some(a) => {
                        let r = match op {
                            "+" => a + v,
                            "-" => a - v,
                            "*" => a * v,
                            "/" => {
                                if v == 0.0 {
                                    0.0
                                } else {
                                    a / v
                                }
                            }
                            "quotient" => a / v,
                            other => panic!("fn {other}"),
                        };
                        scale = match op {
                            "+" | "-" => scale + x.scale(),
                            _ => (scale.max(a.abs()) * x.scale().max(v.abs())).max(r.abs()),
                        };
                        r
                    }
                });
            }
            Out::Float(acc, scale)
        }
        t @ ("doubleGreatest" | "longGreatest" | "doubleLeast" | "longLeast") => {
            let xs: Vec<(f64, f64)> = fields()
                .iter()
                .filter_map(|o| {
                    o.num().map(|x| {
                        (
                            x,
                            if matches!(o, Out::Float(..)) {
                                o.scale()
                            } else {
                                0.0
                            },
                        )
                    })
                })
                .collect();
            let greatest = t.ends_with("Greatest");
            let best = xs
                .iter()
                .copied()
                .reduce(|a, b| if (b.0 > a.0) == greatest { b } else { a });
            match best {
                None if t.starts_with("long") => Out::Int(None),
                None => Out::Float(None, 0.0),
                Some((x, scale)) if t.starts_with("long") => {
                    // A summed double may land on either side of an integer: both casts are right.
                    let tol = 1e-9 * scale;
                    let (lo, hi) = ((x - tol) as i64, (x + tol) as i64);
                    let mut v = vec![Out::Int(Some(x as i64))];
                    for c in [lo, hi] {
                        if c != x as i64 {
                            v.push(Out::Int(Some(c)));
                        }
                    }
                    Out::OneOf(v)
                }
                Some((x, scale)) => Out::Float(Some(x), scale),
            }
        }
        other => panic!("reference: unknown post-aggregator {other}"),
    }
}

fn outs_to_map(values: &[(String, Out)]) -> Map<String, Value> {
    values
        .iter()
        .map(|(n, o)| (n.clone(), o.to_json()))
        .collect()
}

// =============================================================================================
// Queries
// =============================================================================================

fn datasource_name(q: &Value) -> String {
    match &q["dataSource"] {
        Value::String(s) => s.clone(),
        Value::Object(o) => o["name"].as_str().unwrap().to_string(),
        other => panic!("bad dataSource {other}"),
    }
}

/// Evaluate a native query over the datasets; returns the expected response (with markers).
pub fn evaluate(datasets: &[Dataset], q: &Value) -> Value {
    let name = datasource_name(q);
    let ds = datasets
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("no dataset {name}"));
    let col = |n: &str| ds.col(n);
    let filter = q
        .get("filter")
        .map_or(Filter::True, |f| Filter::compile(f, &col));
    let ivs = query_intervals(q);
    let rows: Vec<&Row> = ds
        .rows
        .iter()
        .filter(|r| in_intervals(r.time, &ivs) && filter.matches(&r.vals))
        .collect();
    match q["queryType"].as_str().unwrap() {
        "timeseries" => timeseries(ds, q, &ivs, &rows),
        "topN" => top_n(ds, q, &ivs, &rows),
        "groupBy" => group_by(ds, q, &ivs, &rows),
        "scan" => scan(ds, q, &rows),
        "timeBoundary" => time_boundary(q, &rows),
        "search" => search(ds, q, &ivs, &rows),
        "dataSourceMetadata" => match ds.rows.iter().map(|r| r.time).max() {
            None => json!([]),
            Some(t) => json!([{"timestamp": iso(t), "result": {"maxIngestedEventTime": iso(t)}}]),
        },
        "segmentMetadata" => segment_metadata(ds, q, &ivs),
        other => panic!("reference: unknown queryType {other}"),
    }
}

/// Rows grouped by granularity bucket, ascending.
fn by_bucket<'a>(gran: &Gran, rows: &[&'a Row]) -> BTreeMap<i64, Vec<&'a Row>> {
    let mut m: BTreeMap<i64, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        m.entry(gran.truncate(r.time)).or_default().push(r);
    }
    m
}

fn aggregate_row(aggs: &[Agg], q: &Value, rows: &[&Row]) -> Vec<(String, Out)> {
    let mut values: Vec<(String, Out)> = aggs
        .iter()
        .map(|a| (a.name.clone(), compute(&a.kind, rows)))
        .collect();
    apply_post_aggs(q, &mut values);
    values
}

fn context_bool(q: &Value, key: &str) -> bool {
    match q.get("context").and_then(|c| c.get(key)) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

fn timeseries(ds: &Dataset, q: &Value, ivs: &[(i64, i64)], rows: &[&Row]) -> Value {
    let gran = Gran::parse(q.get("granularity"));
    let aggs = compile_aggs(q, &|n| ds.col(n));
    let skip_empty = context_bool(q, "skipEmptyBuckets");
    let groups = by_bucket(&gran, rows);
    let buckets: Vec<i64> = if gran.is_all() {
        vec![i64::MIN]
    } else if ZERO_FILL_BETWEEN_DATA.load(AtomicOrdering::Relaxed) {
        // Alternative semantics: fill only between the first and last bucket with data.
        match (groups.keys().next(), groups.keys().next_back()) {
            (Some(&lo), Some(&hi)) => {
                let end = gran.next(hi);
                let clipped: Vec<(i64, i64)> = ivs
                    .iter()
                    .map(|&(s, e)| (s.max(lo), e.min(end)))
                    .filter(|(s, e)| s < e)
                    .collect();
                gran.buckets(&clipped)
            }
            _ => Vec::new(),
        }
    } else {
        gran.buckets(ivs)
    };
    let mut out = Vec::new();
    for b in buckets {
        let empty = Vec::new();
        let group = groups.get(&b).unwrap_or(&empty);
        if group.is_empty() && skip_empty {
            continue;
        }
        let values = aggregate_row(&aggs, q, group);
        out.push(json!({"timestamp": gran.stamp(b, ivs), "result": outs_to_map(&values)}));
    }
    if q.get("descending")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        out.reverse();
    }
    Value::Array(out)
}

/// A dimension spec: (input column, output name).
fn dim_spec(v: &Value) -> (String, String) {
    match v {
        Value::String(s) => (s.clone(), s.clone()),
        Value::Object(o) => {
            let d = o["dimension"].as_str().unwrap().to_string();
            let out = o
                .get("outputName")
                .and_then(Value::as_str)
                .map_or(d.clone(), str::to_string);
            (d, out)
        }
        other => panic!("bad dimension {other}"),
    }
}

/// The grouping values of a row's column (string form; a null row is one null value).
fn group_values(v: &Val) -> Vec<Option<String>> {
    match v {
        Val::Null => vec![None],
        Val::Str(s) => vec![Some(s.clone())],
        Val::Multi(m) => m.iter().map(|s| Some(s.clone())).collect(),
        Val::Long(i) => vec![Some(i.to_string())],
        Val::Double(d) => vec![Some(druid_double_string(*d))],
        _ => vec![None],
    }
}

/// Group rows by the values of `cols` (multi-values explode into every combination).
fn group_rows<'a>(
    rows: &[&'a Row],
    cols: &[Option<usize>],
) -> BTreeMap<Vec<Option<String>>, Vec<&'a Row>> {
    let mut m: BTreeMap<Vec<Option<String>>, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        let mut keys: Vec<Vec<Option<String>>> = vec![Vec::new()];
        for c in cols {
            let vs = c.map_or(vec![None], |i| group_values(&r.vals[i]));
            let mut next = Vec::new();
            for k in &keys {
                for v in &vs {
                    let mut k2 = k.clone();
                    k2.push(v.clone());
                    next.push(k2);
                }
            }
            // A row with [a, a] counts once per distinct key in Druid's per-row iteration only if
            // values differ; the generator writes distinct values, so no dedup is needed.
            keys = next;
        }
        for k in keys {
            m.entry(k).or_default().push(r);
        }
    }
    m
}

fn cmp_opt_f64(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
    }
}

fn cmp_opt_str(a: &Option<String>, b: &Option<String>, numeric: bool) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) if numeric => {
            cmp_opt_f64(x.parse().ok(), y.parse().ok()).then_with(|| x.cmp(y))
        }
        (Some(x), Some(y)) => x.cmp(y),
    }
}

fn top_n(ds: &Dataset, q: &Value, ivs: &[(i64, i64)], rows: &[&Row]) -> Value {
    let gran = Gran::parse(q.get("granularity"));
    let aggs = compile_aggs(q, &|n| ds.col(n));
    let (dim, out_name) = dim_spec(&q["dimension"]);
    let threshold = q["threshold"].as_u64().unwrap() as usize;
    // Metric spec: (sort by dimension?, metric name, descending?).
    fn metric_spec(m: &Value, inverted: bool) -> (bool, Option<String>, bool) {
        match m {
            Value::String(s) => (false, Some(s.clone()), !inverted),
            Value::Object(o) => match o["type"].as_str().unwrap() {
                "numeric" => metric_spec(&o["metric"], inverted),
                "inverted" => metric_spec(&o["metric"], !inverted),
                "dimension" | "lexicographic" | "alphaNumeric" => (true, None, inverted),
                other => panic!("topN metric {other}"),
            },
            other => panic!("topN metric {other}"),
        }
    }
    let (by_dim, metric, desc) = metric_spec(&q["metric"], false);
    let mut out = Vec::new();
    for (b, bucket_rows) in by_bucket(&gran, rows) {
        let groups = group_rows(&bucket_rows, &[ds.col(&dim)]);
        let mut results: Vec<(Option<String>, Named)> = groups
            .into_iter()
            .map(|(k, g)| (k[0].clone(), aggregate_row(&aggs, q, &g)))
            .collect();
        results.sort_by(|a, b| {
            let o = if by_dim {
                cmp_opt_str(&a.0, &b.0, false)
            } else {
                let m = metric.as_deref().unwrap();
                cmp_opt_f64(lookup(&a.1, m).num(), lookup(&b.1, m).num())
            };
            if desc { o.reverse() } else { o }
        });
        let rows_json: Vec<Value> = results
            .iter()
            .map(|(k, values)| {
                let mut m = outs_to_map(values);
                m.insert(out_name.clone(), json!(k));
                Value::Object(m)
            })
            .collect();
        let key = if by_dim {
            format!("/{out_name}")
        } else {
            format!("/{}", metric.clone().unwrap())
        };
        out.push(json!({
            "timestamp": gran.stamp(b, ivs),
            "result": {"$ranked": {
                "rows": rows_json,
                "keys": [key],
                "ids": [format!("/{out_name}")],
                "offset": 0,
                "limit": threshold,
            }}
        }));
    }
    Value::Array(out)
}

/// Evaluate a `having` spec on an output event.
fn having_matches(
    h: &Value,
    event: &Map<String, Value>,
    values: &[(String, Out)],
    dims: &[String],
) -> bool {
    let num_of = |name: &str| -> Option<f64> {
        values
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, o)| o.num())
    };
    let target = || h["value"].as_f64().unwrap();
    match h["type"].as_str().unwrap() {
        "greaterThan" => num_of(h["aggregation"].as_str().unwrap()).is_some_and(|v| v > target()),
        "lessThan" => num_of(h["aggregation"].as_str().unwrap()).is_some_and(|v| v < target()),
        "equalTo" => num_of(h["aggregation"].as_str().unwrap()).is_some_and(|v| v == target()),
        "and" => h["havingSpecs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| having_matches(s, event, values, dims)),
        "or" => h["havingSpecs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| having_matches(s, event, values, dims)),
        "not" => !having_matches(&h["havingSpec"], event, values, dims),
        "filter" => {
            let names: Vec<&String> = dims.iter().collect();
            let vals: Vec<Val> = std::iter::once(Val::Null)
                .chain(names.iter().map(|d| match &event[d.as_str()] {
                    Value::String(s) => Val::Str(s.clone()),
                    _ => Val::Null,
                }))
                .collect();
            let f = Filter::compile(&h["filter"], &|n| {
                names.iter().position(|d| *d == n).map(|i| i + 1)
            });
            f.matches(&vals)
        }
        other => panic!("having {other}"),
    }
}

fn group_by(ds: &Dataset, q: &Value, ivs: &[(i64, i64)], rows: &[&Row]) -> Value {
    let gran = Gran::parse(q.get("granularity"));
    let aggs = compile_aggs(q, &|n| ds.col(n));
    let specs: Vec<(String, String)> = q["dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(dim_spec)
        .collect();
    let out_names: Vec<String> = specs.iter().map(|s| s.1.clone()).collect();
    let subtotals: Vec<Vec<String>> = match q.get("subtotalsSpec").and_then(Value::as_array) {
        Some(s) => s
            .iter()
            .map(|set| {
                set.as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_str().unwrap().to_string())
                    .collect()
            })
            .collect(),
        None => vec![out_names.clone()],
    };
    let mut events: Vec<(i64, Map<String, Value>, Named)> = Vec::new();
    for subset in &subtotals {
        let active: Vec<&(String, String)> =
            specs.iter().filter(|s| subset.contains(&s.1)).collect();
        let cols: Vec<Option<usize>> = active.iter().map(|s| ds.col(&s.0)).collect();
        for (b, bucket_rows) in by_bucket(&gran, rows) {
            for (key, g) in group_rows(&bucket_rows, &cols) {
                let values = aggregate_row(&aggs, q, &g);
                let mut event = outs_to_map(&values);
                for name in &out_names {
                    event.insert(name.clone(), Value::Null);
                }
                for (s, k) in active.iter().zip(&key) {
                    event.insert(s.1.clone(), json!(k));
                }
                if let Some(h) = q.get("having").filter(|h| !h.is_null())
                    && !having_matches(h, &event, &values, &out_names)
                {
                    continue;
                }
                events.push((b, event, values));
            }
        }
    }
    let to_json = |(b, e, _): &(i64, Map<String, Value>, Vec<(String, Out)>)| json!({"version": "v1", "timestamp": gran.stamp(*b, ivs), "event": e});
    let ids: Vec<String> = std::iter::once("/timestamp".to_string())
        .chain(out_names.iter().map(|n| format!("/event/{n}")))
        .collect();
    let Some(limit_spec) = q.get("limitSpec").filter(|l| !l.is_null()) else {
        return json!({"$multiset": {"rows": events.iter().map(to_json).collect::<Vec<_>>(), "ids": ids}});
    };
    let columns: Vec<(String, bool, bool)> = limit_spec
        .get("columns")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| match c {
                    Value::String(s) => (s.clone(), false, false),
                    o => (
                        o["dimension"].as_str().unwrap().to_string(),
                        o.get("direction")
                            .and_then(Value::as_str)
                            .is_some_and(|d| d.starts_with("desc")),
                        o.get("dimensionOrder")
                            .and_then(Value::as_str)
                            .is_some_and(|d| d == "numeric"),
                    ),
                })
                .collect()
        })
        .unwrap_or_default();
    let is_agg = |name: &str, values: &[(String, Out)]| values.iter().any(|(n, _)| n == name);
    events.sort_by(|a, b| {
        let mut o = if gran.is_all() {
            Ordering::Equal
        } else {
            a.0.cmp(&b.0)
        };
        for (name, desc, numeric) in &columns {
            if o != Ordering::Equal {
                break;
            }
            let c = if is_agg(name, &a.2) {
                cmp_opt_f64(lookup(&a.2, name).num(), lookup(&b.2, name).num())
            } else {
                let s = |e: &Map<String, Value>| {
                    e.get(name).and_then(Value::as_str).map(str::to_string)
                };
                cmp_opt_str(&s(&a.1), &s(&b.1), *numeric)
            };
            o = if *desc { c.reverse() } else { c };
        }
        o
    });
    let mut keys: Vec<String> = Vec::new();
    if !gran.is_all() {
        keys.push("/timestamp".into());
    }
    keys.extend(columns.iter().map(|c| format!("/event/{}", c.0)));
    json!({"$ranked": {
        "rows": events.iter().map(to_json).collect::<Vec<_>>(),
        "keys": keys,
        "ids": ids,
        "offset": limit_spec.get("offset").and_then(Value::as_u64).unwrap_or(0),
        "limit": limit_spec.get("limit").and_then(Value::as_u64).unwrap_or(u64::MAX),
    }})
}

fn scan_value(v: &Val) -> Value {
    match v {
        Val::Null => Value::Null,
        Val::Str(s) => json!(s),
        Val::Multi(m) => json!(m),
        Val::Long(i) => json!(i),
        Val::Double(d) => json!(d),
        _ => json!({"$any": true}),
    }
}

fn scan(ds: &Dataset, q: &Value, rows: &[&Row]) -> Value {
    let requested: Option<Vec<String>> = q
        .get("columns")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .map(|a| a.iter().map(|c| c.as_str().unwrap().to_string()).collect());
    let columns: Vec<String> = requested
        .clone()
        .unwrap_or_else(|| ds.columns.iter().map(|c| c.name.clone()).collect());
    let order = q
        .get("order")
        .and_then(Value::as_str)
        .unwrap_or("none")
        .to_ascii_lowercase();
    let mut rows: Vec<&Row> = rows.to_vec();
    match order.as_str() {
        "ascending" => rows.sort_by_key(|r| r.time),
        "descending" => rows.sort_by_key(|r| std::cmp::Reverse(r.time)),
        _ => {}
    }
    let offset_in = q.get("offset").and_then(Value::as_u64).unwrap_or(0);
    let offset = offset_in;
    let limit = q
        .get("limit")
        .and_then(Value::as_u64)
        .filter(|l| *l > 0)
        .unwrap_or(u64::MAX);
    let n = rows.len() as u64;
    // With an order, only the rows of the offset/limit window and their time ties can appear:
    // keep that range and shift the offset (saves building JSON for every row).
    let (range, offset) = if order != "none" && offset < n {
        let first = offset as usize;
        let last = (offset.saturating_add(limit).min(n) - 1) as usize;
        let (t_first, t_last) = (rows[first].time, rows[last].time);
        let a = rows.iter().position(|r| r.time == t_first).unwrap();
        let b = rows.iter().rposition(|r| r.time == t_last).unwrap() + 1;
        (a..b, offset - a as u64)
    } else {
        (0..rows.len(), offset)
    };
    let kinds: Vec<Option<usize>> = columns.iter().map(|c| ds.col(c)).collect();
    let events: Vec<Value> = rows[range]
        .iter()
        .map(|r| {
            let m: Map<String, Value> = columns
                .iter()
                .zip(&kinds)
                .map(|(c, i)| {
                    let v = match *i {
                        None => Value::Null,
                        Some(i)
                            if matches!(
                                ds.columns[i].kind,
                                ColKind::LongPair | ColKind::DoublePair | ColKind::Hll
                            ) =>
                        {
                            json!({"$any": true})
                        }
                        Some(i) => scan_value(&r.vals[i]),
                    };
                    (c.clone(), v)
                })
                .collect();
            Value::Object(m)
        })
        .collect();
    let count = n.saturating_sub(offset_in).min(limit);
    let events = if order == "none" || !columns.iter().any(|c| c == "__time") {
        // Without `__time` in the output an order cannot be seen: any rows of the window.
        json!({"$subset": {"rows": events, "ids": [""], "count": count}})
    } else {
        json!({"$ranked": {"rows": events, "keys": ["/__time"], "ids": [""], "offset": offset, "limit": limit}})
    };
    json!({"$scan": {
        "columns": columns,
        "columnsExact": requested.is_some(),
        "compacted": q.get("resultFormat").and_then(Value::as_str) == Some("compactedList"),
        "events": events,
    }})
}

fn time_boundary(q: &Value, rows: &[&Row]) -> Value {
    let (Some(min), Some(max)) = (
        rows.iter().map(|r| r.time).min(),
        rows.iter().map(|r| r.time).max(),
    ) else {
        return json!([]);
    };
    match q.get("bound").and_then(Value::as_str) {
        Some("minTime") => json!([{"timestamp": iso(min), "result": {"minTime": iso(min)}}]),
        Some("maxTime") => json!([{"timestamp": iso(max), "result": {"maxTime": iso(max)}}]),
        _ => json!([{"timestamp": iso(min), "result": {"minTime": iso(min), "maxTime": iso(max)}}]),
    }
}

fn search(ds: &Dataset, q: &Value, ivs: &[(i64, i64)], rows: &[&Row]) -> Value {
    let gran = Gran::parse(q.get("granularity"));
    let dims: Vec<String> = match q.get("searchDimensions").and_then(Value::as_array) {
        Some(a) => a.iter().map(|d| dim_spec(d).0).collect(),
        None => ds
            .columns
            .iter()
            .filter(|c| c.is_dim && c.kind != ColKind::Time)
            .map(|c| c.name.clone())
            .collect(),
    };
    let spec = &q["query"];
    let case_sensitive = spec
        .get("caseSensitive")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let fold = |s: &str| {
        if case_sensitive {
            s.to_string()
        } else {
            s.to_lowercase()
        }
    };
    let needles: Vec<String> = match spec["type"].as_str().unwrap() {
        "contains" => vec![fold(spec["value"].as_str().unwrap())],
        "insensitive_contains" => vec![spec["value"].as_str().unwrap().to_lowercase()],
        "fragment" => spec["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| fold(v.as_str().unwrap()))
            .collect(),
        other => panic!("search query {other}"),
    };
    let insensitive = spec["type"] == "insensitive_contains" || !case_sensitive;
    let hit = |v: &str| {
        let v = if insensitive {
            v.to_lowercase()
        } else {
            v.to_string()
        };
        needles.iter().all(|n| v.contains(n.as_str()))
    };
    let sort = q
        .get("sort")
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("lexicographic");
    let limit = q.get("limit").and_then(Value::as_u64).unwrap_or(1000) as usize;
    let mut out = Vec::new();
    for (b, bucket_rows) in by_bucket(&gran, rows) {
        let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
        for d in &dims {
            let c = ds.col(d);
            for r in &bucket_rows {
                for v in c
                    .map_or(vec![None], |i| group_values(&r.vals[i]))
                    .into_iter()
                    .flatten()
                {
                    if hit(&v) {
                        *counts.entry((d.clone(), v)).or_default() += 1;
                    }
                }
            }
        }
        let mut hits: Vec<((String, String), i64)> = counts.into_iter().collect();
        hits.sort_by(|((d1, v1), _), ((d2, v2), _)| {
            let o = if sort == "strlen" {
                v1.len().cmp(&v2.len()).then_with(|| v1.cmp(v2))
            } else {
                v1.cmp(v2)
            };
            o.then_with(|| d1.cmp(d2))
        });
        hits.truncate(limit);
        if hits.is_empty() {
            continue;
        }
        let result: Vec<Value> = hits
            .into_iter()
            .map(|((d, v), n)| json!({"dimension": d, "value": v, "count": n}))
            .collect();
        out.push(json!({"timestamp": gran.stamp(b, ivs), "result": result}));
    }
    json!({"$search": out})
}

fn segment_metadata(ds: &Dataset, q: &Value, ivs: &[(i64, i64)]) -> Value {
    let segs: Vec<&SegmentInfo> = ds
        .segments
        .iter()
        .filter(|s| {
            ivs.iter()
                .any(|&(a, b)| s.id.interval.start < b && a < s.id.interval.end)
        })
        .collect();
    let merge = q.get("merge").and_then(Value::as_bool).unwrap_or(false);
    let expected: Vec<Value> = if merge {
        if segs.is_empty() {
            vec![]
        } else {
            vec![json!({"numRows": segs.iter().map(|s| s.num_rows).sum::<u64>()})]
        }
    } else {
        segs.iter()
            .map(|s| json!({"id": s.id.to_string(), "numRows": s.num_rows}))
            .collect()
    };
    json!({"$segmentMetadata": {"merge": merge, "segments": expected}})
}
