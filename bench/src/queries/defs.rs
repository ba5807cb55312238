//! The queries of the `tsbs-queries` workload: TSBS's devops queries (as TSBS's query
//! generator defines them for ClickHouse and TimescaleDB) plus Druid-style topN, filtered
//! timeseries and count-distinct queries, each as a Basalt native JSON query and as SQL for
//! DuckDB and ClickHouse, with seeded random parameters (hosts, time windows).
//!
//! TSBS semantics kept here: "max" is `max(usage_*)` (Basalt `longMax`), "mean" is `avg`
//! (Basalt `longSum` / `count` post-aggregation), "high cpu" is `usage_user > 90`, the first
//! `n` of the 10 cpu fields are the "n metrics", per-minute or per-hour buckets, hosts chosen
//! at random without repetition, and windows of 1 h, 8 h, 12 h or 24 h placed at random in the
//! data (whole seconds, like TSBS's ClickHouse time literals).

use serde::Serialize;
use serde_json::{Value, json};

use crate::queries::setup::DATASOURCE;
use crate::timefmt::format_rfc3339_ms;
use crate::tsbs::{FIELD_NAMES, TAG_NAMES};

const HOUR_MS: i64 = 3_600_000;

/// Start of Druid's `ETERNITY` interval, as Druid SQL writes an open lower time bound.
const ETERNITY_START: &str = "-146136543-09-08T08:23:32.096Z";
/// End of Druid's `ETERNITY` interval.
const ETERNITY_END: &str = "146140482-04-24T15:36:27.903Z";

/// TSBS's regions (the `region` tag).
const REGIONS: [&str; 9] = [
    "us-east-1",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "sa-east-1",
];

/// The data the queries run on: what their random parameters are drawn from.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Dataset {
    pub hosts: u32,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// How a query's results are compared across systems.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Check {
    /// Row counts only (results too large to ship back from the peers).
    Rows,
    /// Every compared column, row by row in the order the query defines.
    Ordered { rel_tol: f64 },
    /// Every compared column, after sorting the rows (the query leaves their order open).
    Unordered { rel_tol: f64 },
    /// The values of one column, in order: e.g. a topN's metric, whose ties leave the order of
    /// the dimension values open.
    Column { column: String },
}

/// One query of the workload.
#[derive(Debug, Clone, Serialize)]
pub struct QueryDef {
    pub name: String,
    pub description: String,
    /// Basalt's native JSON query.
    pub basalt: Value,
    pub duckdb: String,
    pub clickhouse: String,
    /// Druid SQL for Basalt's `POST /druid/v2/sql`.
    pub druid: String,
    /// Columns compared across systems (Basalt's output names; the SQL aliases match, and the
    /// peers' `timestamp` column is Basalt's `__time`).
    pub columns: Vec<String>,
    /// Columns holding times (compared as epoch milliseconds).
    pub time_columns: Vec<String>,
    pub check: Check,
}

/// A seeded splitmix64 stream: deterministic parameters, independent per query.
#[derive(Debug, Clone)]
pub struct ParamRng(u64);

impl ParamRng {
    /// The stream of query `name` under `seed`: adding a query does not move the others.
    pub fn new(seed: u64, name: &str) -> Self {
        // FNV-1a of the name, mixed with the seed.
        let h = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        Self(h ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "empty range");
        // Multiply-shift: the bias is below 2^-32 for the ranges used here.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// `n` distinct host names `host_<i>`, `i < hosts`, in draw order (TSBS `GetRandomHosts`).
    pub fn hosts(&mut self, hosts: u32, n: usize) -> Vec<String> {
        assert!(n as u64 <= u64::from(hosts), "more hosts asked than exist");
        let mut picked: Vec<u64> = Vec::with_capacity(n);
        while picked.len() < n {
            let h = self.below(u64::from(hosts));
            if !picked.contains(&h) {
                picked.push(h);
            }
        }
        picked.into_iter().map(|h| format!("host_{h}")).collect()
    }

    /// A window of `len_ms` at a random whole second inside the data (TSBS `MustRandWindow`).
    pub fn window(&mut self, data: &Dataset, len_ms: i64) -> (i64, i64) {
        let slack_s = (data.end_ms - data.start_ms - len_ms).max(0) / 1000;
        let start = data.start_ms + self.below(slack_s as u64 + 1) as i64 * 1000;
        (start, start + len_ms)
    }
}

/// SQL spellings that differ between the peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    DuckDb,
    ClickHouse,
    /// Druid SQL as Basalt's `POST /druid/v2/sql` takes it (`__time`, `TIME_FLOOR`).
    Druid,
}

impl Dialect {
    /// The start of the minute or hour of `timestamp`.
    fn bucket(self, unit: Unit) -> &'static str {
        match (self, unit) {
            (Dialect::DuckDb, Unit::Minute) => "date_trunc('minute', timestamp)",
            (Dialect::DuckDb, Unit::Hour) => "date_trunc('hour', timestamp)",
            (Dialect::ClickHouse, Unit::Minute) => "toStartOfMinute(timestamp)",
            (Dialect::ClickHouse, Unit::Hour) => "toStartOfHour(timestamp)",
            (Dialect::Druid, Unit::Minute) => "TIME_FLOOR(__time, 'PT1M')",
            (Dialect::Druid, Unit::Hour) => "TIME_FLOOR(__time, 'PT1H')",
        }
    }

    /// A UTC time literal comparable with `timestamp`.
    fn time(self, ms: i64) -> String {
        let text = format_rfc3339_ms(ms).replace('T', " ").replace('Z', "");
        match self {
            Dialect::DuckDb => format!("TIMESTAMPTZ '{text}+00'"),
            Dialect::ClickHouse => format!("toDateTime64('{text}', 3, 'UTC')"),
            Dialect::Druid => format!("TIMESTAMP '{text}'"),
        }
    }

    /// The time column.
    fn ts(self) -> &'static str {
        match self {
            Dialect::Druid => "__time",
            _ => "timestamp",
        }
    }

    /// `GROUP BY` / `ORDER BY` text naming the time bucket aliased `__time` (Druid SQL would
    /// read `__time` there as the column, not the alias: use the first select item).
    fn by_time(self) -> &'static str {
        match self {
            Dialect::Druid => "1",
            _ => "__time",
        }
    }

    /// `timestamp` in `[start, end)`.
    fn window(self, (start, end): (i64, i64)) -> String {
        format!(
            "{ts} >= {} AND {ts} < {}",
            self.time(start),
            self.time(end),
            ts = self.ts()
        )
    }

    fn approx_count_distinct(self, col: &str) -> String {
        match self {
            Dialect::DuckDb => format!("approx_count_distinct({col})"),
            Dialect::ClickHouse => format!("uniq({col})"),
            Dialect::Druid => format!("APPROX_COUNT_DISTINCT({col})"),
        }
    }

    fn arg_max(self, value: &str, by: &str) -> String {
        match self {
            Dialect::DuckDb => format!("arg_max({value}, {by})"),
            Dialect::ClickHouse => format!("argMax({value}, {by})"),
            Dialect::Druid => format!("LATEST({value})"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Unit {
    Minute,
    Hour,
}

impl Unit {
    fn granularity(self) -> &'static str {
        match self {
            Unit::Minute => "minute",
            Unit::Hour => "hour",
        }
    }
}

fn interval((start, end): (i64, i64)) -> String {
    format!("{}/{}", format_rfc3339_ms(start), format_rfc3339_ms(end))
}

fn sql_list(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("'{}'", v.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `hostname` is one of `hosts`: a selector for one host, an `in` filter for more.
fn host_filter(hosts: &[String]) -> Value {
    match hosts {
        [one] => json!({"type": "selector", "dimension": "hostname", "value": one}),
        _ => json!({"type": "in", "dimension": "hostname", "values": hosts}),
    }
}

fn host_sql(hosts: &[String]) -> String {
    match hosts {
        [one] => format!("hostname = {}", sql_list(std::slice::from_ref(one))),
        _ => format!("hostname IN ({})", sql_list(hosts)),
    }
}

fn agg(kind: &str, name: &str, field: &str) -> Value {
    json!({"type": kind, "name": name, "fieldName": field})
}

fn long_max_aggs(fields: &[&str]) -> Vec<Value> {
    fields
        .iter()
        .map(|f| agg("longMax", &format!("max_{f}"), f))
        .collect()
}

fn max_select(fields: &[&str]) -> String {
    fields
        .iter()
        .map(|f| format!("max({f}) AS max_{f}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn names(prefix: &str, fields: &[&str]) -> Vec<String> {
    fields.iter().map(|f| format!("{prefix}{f}")).collect()
}

fn with_time(columns: Vec<String>) -> Vec<String> {
    let mut out = vec!["__time".to_owned()];
    out.extend(columns);
    out
}

/// All the workload's queries for `data`, parameters drawn from `seed`.
pub fn tsbs_queries(data: &Dataset, seed: u64) -> Vec<QueryDef> {
    let mut out = Vec::new();
    for (metrics, hosts, hours) in [
        (1, 1, 1),
        (1, 1, 12),
        (1, 8, 1),
        (5, 1, 1),
        (5, 1, 12),
        (5, 8, 1),
    ] {
        out.push(single_groupby(data, seed, metrics, hosts, hours));
    }
    out.push(cpu_max_all(data, seed, 1));
    out.push(cpu_max_all(data, seed, 8));
    for metrics in [1, 5, 10] {
        out.push(double_groupby(data, seed, metrics));
    }
    out.push(high_cpu(data, seed, 1));
    out.push(high_cpu(data, seed, 0));
    out.push(lastpoint());
    out.push(groupby_orderby_limit(data, seed));
    out.push(topn_max_user(data, seed));
    out.push(timeseries_region(data, seed));
    out.push(distinct_hosts(data));
    out
}

/// `single-groupby-M-H-T`: max of M metrics per minute for H random hosts over T random hours.
fn single_groupby(
    data: &Dataset,
    seed: u64,
    metrics: usize,
    nhosts: usize,
    hours: i64,
) -> QueryDef {
    let name = format!("single-groupby-{metrics}-{nhosts}-{hours}");
    let mut rng = ParamRng::new(seed, &name);
    let hosts = rng.hosts(data.hosts, nhosts);
    let window = rng.window(data, hours * HOUR_MS);
    let fields = &FIELD_NAMES[..metrics];
    let sql = |d: Dialect| {
        let bt = d.by_time();
        format!(
            "SELECT {} AS __time, {} FROM cpu WHERE {} AND {} GROUP BY {bt} ORDER BY {bt}",
            d.bucket(Unit::Minute),
            max_select(fields),
            host_sql(&hosts),
            d.window(window)
        )
    };
    QueryDef {
        description: format!(
            "max of {metrics} metric(s) per minute, {nhosts} random host(s), random {hours} h"
        ),
        basalt: json!({
            "queryType": "timeseries",
            "dataSource": DATASOURCE,
            "intervals": [interval(window)],
            "granularity": Unit::Minute.granularity(),
            "filter": host_filter(&hosts),
            "aggregations": long_max_aggs(fields),
            "context": {"skipEmptyBuckets": true},
        }),
        duckdb: sql(Dialect::DuckDb),
        clickhouse: sql(Dialect::ClickHouse),
        druid: sql(Dialect::Druid),
        columns: with_time(names("max_", fields)),
        time_columns: vec!["__time".to_owned()],
        check: Check::Ordered { rel_tol: 0.0 },
        name,
    }
}

/// `cpu-max-all-H`: max of all 10 metrics per hour for H random hosts over a random 8 h.
fn cpu_max_all(data: &Dataset, seed: u64, nhosts: usize) -> QueryDef {
    let name = format!("cpu-max-all-{nhosts}");
    let mut rng = ParamRng::new(seed, &name);
    let hosts = rng.hosts(data.hosts, nhosts);
    let window = rng.window(data, 8 * HOUR_MS);
    let fields = &FIELD_NAMES[..];
    let sql = |d: Dialect| {
        let bt = d.by_time();
        format!(
            "SELECT {} AS __time, {} FROM cpu WHERE {} AND {} GROUP BY {bt} ORDER BY {bt}",
            d.bucket(Unit::Hour),
            max_select(fields),
            host_sql(&hosts),
            d.window(window)
        )
    };
    QueryDef {
        description: format!("max of all 10 metrics per hour, {nhosts} random host(s), random 8 h"),
        basalt: json!({
            "queryType": "timeseries",
            "dataSource": DATASOURCE,
            "intervals": [interval(window)],
            "granularity": Unit::Hour.granularity(),
            "filter": host_filter(&hosts),
            "aggregations": long_max_aggs(fields),
            "context": {"skipEmptyBuckets": true},
        }),
        duckdb: sql(Dialect::DuckDb),
        clickhouse: sql(Dialect::ClickHouse),
        druid: sql(Dialect::Druid),
        columns: with_time(names("max_", fields)),
        time_columns: vec!["__time".to_owned()],
        check: Check::Ordered { rel_tol: 0.0 },
        name,
    }
}

/// `double-groupby-M`: mean of M metrics per hour and host, all hosts, a random 24 h.
fn double_groupby(data: &Dataset, seed: u64, metrics: usize) -> QueryDef {
    let name = if metrics == FIELD_NAMES.len() {
        "double-groupby-all".to_owned()
    } else {
        format!("double-groupby-{metrics}")
    };
    let mut rng = ParamRng::new(seed, &name);
    let window = rng.window(data, 24 * HOUR_MS);
    let fields = &FIELD_NAMES[..metrics];
    let mut aggs = vec![json!({"type": "count", "name": "count"})];
    aggs.extend(
        fields
            .iter()
            .map(|f| agg("longSum", &format!("sum_{f}"), f)),
    );
    let post: Vec<Value> = fields
        .iter()
        .map(|f| {
            json!({
                "type": "arithmetic",
                "name": format!("mean_{f}"),
                "fn": "/",
                "fields": [
                    {"type": "fieldAccess", "fieldName": format!("sum_{f}")},
                    {"type": "fieldAccess", "fieldName": "count"},
                ],
            })
        })
        .collect();
    let sql = |d: Dialect| {
        let bt = d.by_time();
        let means = fields
            .iter()
            .map(|f| format!("avg({f}) AS mean_{f}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "SELECT {} AS __time, hostname, {means} FROM cpu WHERE {} \
             GROUP BY {bt}, hostname ORDER BY {bt}, hostname",
            d.bucket(Unit::Hour),
            d.window(window)
        )
    };
    let mut columns = vec!["__time".to_owned(), "hostname".to_owned()];
    columns.extend(names("mean_", fields));
    QueryDef {
        description: format!("mean of {metrics} metric(s) per hour and host, all hosts, 24 h"),
        basalt: json!({
            "queryType": "groupBy",
            "dataSource": DATASOURCE,
            "intervals": [interval(window)],
            "granularity": Unit::Hour.granularity(),
            "dimensions": ["hostname"],
            "aggregations": aggs,
            "postAggregations": post,
        }),
        duckdb: sql(Dialect::DuckDb),
        clickhouse: sql(Dialect::ClickHouse),
        druid: sql(Dialect::Druid),
        columns,
        time_columns: vec!["__time".to_owned()],
        check: Check::Ordered { rel_tol: 1e-9 },
        name,
    }
}

/// `high-cpu-H`: every reading with `usage_user > 90` over a random 24 h, for one random host
/// (`nhosts` 1) or all hosts (`nhosts` 0).
fn high_cpu(data: &Dataset, seed: u64, nhosts: usize) -> QueryDef {
    let name = if nhosts == 0 {
        "high-cpu-all".to_owned()
    } else {
        format!("high-cpu-{nhosts}")
    };
    let mut rng = ParamRng::new(seed, &name);
    let hosts = rng.hosts(data.hosts, nhosts);
    let window = rng.window(data, 24 * HOUR_MS);
    let high = json!({
        "type": "range", "column": "usage_user", "matchValueType": "LONG",
        "lower": 90, "lowerOpen": true,
    });
    let filter = if hosts.is_empty() {
        high
    } else {
        json!({"type": "and", "fields": [high, host_filter(&hosts)]})
    };
    let sql = |d: Dialect| {
        let host = if hosts.is_empty() {
            String::new()
        } else {
            format!(" AND {}", host_sql(&hosts))
        };
        format!(
            "SELECT * FROM cpu WHERE usage_user > 90 AND {}{host}",
            d.window(window)
        )
    };
    let mut columns = vec!["__time".to_owned()];
    columns.extend(TAG_NAMES.iter().map(|t| (*t).to_owned()));
    columns.extend(FIELD_NAMES.iter().map(|f| (*f).to_owned()));
    QueryDef {
        description: if hosts.is_empty() {
            "all readings with usage_user > 90, all hosts, 24 h".to_owned()
        } else {
            format!("all readings with usage_user > 90, {nhosts} random host(s), 24 h")
        },
        basalt: json!({
            "queryType": "scan",
            "dataSource": DATASOURCE,
            "intervals": [interval(window)],
            "filter": filter,
            "columns": [],
            "resultFormat": "compactedList",
            "context": {"maxScanRows": 100_000_000},
        }),
        duckdb: sql(Dialect::DuckDb),
        clickhouse: sql(Dialect::ClickHouse),
        druid: sql(Dialect::Druid),
        columns,
        time_columns: vec!["__time".to_owned()],
        check: if hosts.is_empty() {
            Check::Rows
        } else {
            Check::Unordered { rel_tol: 0.0 }
        },
        name,
    }
}

/// `lastpoint`: the last reading of every host (all time): the time and the 10 metrics.
fn lastpoint() -> QueryDef {
    let fields = &FIELD_NAMES[..];
    let mut aggs = vec![agg("longMax", "last_time", "__time")];
    aggs.extend(fields.iter().map(|f| agg("longLast", f, f)));
    let sql = |d: Dialect| {
        let lasts = fields
            .iter()
            .map(|f| format!("{} AS {f}", d.arg_max(f, d.ts())))
            .collect::<Vec<_>>()
            .join(", ");
        let ts = d.ts();
        format!(
            "SELECT hostname, max({ts}) AS last_time, {lasts} FROM cpu \
             GROUP BY hostname ORDER BY hostname"
        )
    };
    let mut columns = vec!["hostname".to_owned(), "last_time".to_owned()];
    columns.extend(fields.iter().map(|f| (*f).to_owned()));
    QueryDef {
        name: "lastpoint".to_owned(),
        description: "last reading (time and 10 metrics) of every host".to_owned(),
        basalt: json!({
            "queryType": "groupBy",
            "dataSource": DATASOURCE,
            "intervals": [format!("{ETERNITY_START}/{ETERNITY_END}")],
            "granularity": "all",
            "dimensions": ["hostname"],
            "aggregations": aggs,
        }),
        duckdb: sql(Dialect::DuckDb),
        clickhouse: sql(Dialect::ClickHouse),
        druid: sql(Dialect::Druid),
        columns,
        time_columns: vec!["last_time".to_owned()],
        check: Check::Ordered { rel_tol: 0.0 },
    }
}

/// `groupby-orderby-limit`: max usage_user of the last 5 minutes before a random end
/// (no lower time bound).
fn groupby_orderby_limit(data: &Dataset, seed: u64) -> QueryDef {
    let name = "groupby-orderby-limit".to_owned();
    let mut rng = ParamRng::new(seed, &name);
    let (_, end) = rng.window(data, HOUR_MS);
    let sql = |d: Dialect| {
        let (bt, ts) = (d.by_time(), d.ts());
        format!(
            "SELECT {} AS __time, max(usage_user) AS max_usage_user FROM cpu \
             WHERE {ts} < {} GROUP BY {bt} ORDER BY {bt} DESC LIMIT 5",
            d.bucket(Unit::Minute),
            d.time(end)
        )
    };
    QueryDef {
        description: "max usage_user per minute, last 5 minutes before a random end".to_owned(),
        // Druid SQL's plan: a descending timeseries with a limit, from the start of time.
        basalt: json!({
            "queryType": "timeseries",
            "dataSource": DATASOURCE,
            "intervals": [format!("{ETERNITY_START}/{}", format_rfc3339_ms(end))],
            "granularity": Unit::Minute.granularity(),
            "descending": true,
            "limit": 5,
            "aggregations": [agg("longMax", "max_usage_user", "usage_user")],
            "context": {"skipEmptyBuckets": true},
        }),
        duckdb: sql(Dialect::DuckDb),
        clickhouse: sql(Dialect::ClickHouse),
        druid: sql(Dialect::Druid),
        columns: vec!["__time".to_owned(), "max_usage_user".to_owned()],
        time_columns: vec!["__time".to_owned()],
        check: Check::Ordered { rel_tol: 0.0 },
        name,
    }
}

/// Druid-style topN: the 10 hosts with the highest max usage_user over a random 12 h.
fn topn_max_user(data: &Dataset, seed: u64) -> QueryDef {
    let name = "topn-max-usage-user-12h".to_owned();
    let mut rng = ParamRng::new(seed, &name);
    let window = rng.window(data, 12 * HOUR_MS);
    let sql = |d: Dialect| {
        format!(
            "SELECT hostname, max(usage_user) AS max_usage_user FROM cpu WHERE {} \
             GROUP BY hostname ORDER BY max_usage_user DESC, hostname LIMIT 10",
            d.window(window)
        )
    };
    QueryDef {
        description: "top 10 hosts by max usage_user, random 12 h".to_owned(),
        basalt: json!({
            "queryType": "topN",
            "dataSource": DATASOURCE,
            "intervals": [interval(window)],
            "granularity": "all",
            "dimension": "hostname",
            "metric": "max_usage_user",
            "threshold": 10,
            "aggregations": [agg("longMax", "max_usage_user", "usage_user")],
        }),
        duckdb: sql(Dialect::DuckDb),
        clickhouse: sql(Dialect::ClickHouse),
        druid: sql(Dialect::Druid),
        columns: vec!["max_usage_user".to_owned()],
        time_columns: vec![],
        // Many hosts reach the clamp (100): only the metric's values are determined.
        check: Check::Column {
            column: "max_usage_user".to_owned(),
        },
        name,
    }
}

/// Druid-style filtered timeseries: one random region, a random 1 h, per minute: rows, max and
/// mean usage_user.
fn timeseries_region(data: &Dataset, seed: u64) -> QueryDef {
    let name = "timeseries-region-1h-by-1m".to_owned();
    let mut rng = ParamRng::new(seed, &name);
    let region = REGIONS[rng.below(REGIONS.len() as u64) as usize];
    let window = rng.window(data, HOUR_MS);
    let sql = |d: Dialect| {
        let bt = d.by_time();
        format!(
            "SELECT {} AS __time, count(*) AS num_rows, max(usage_user) AS max_usage_user, \
             avg(usage_user) AS mean_usage_user FROM cpu WHERE region = '{region}' AND {} \
             GROUP BY {bt} ORDER BY {bt}",
            d.bucket(Unit::Minute),
            d.window(window)
        )
    };
    QueryDef {
        description: format!("rows, max and mean usage_user per minute, region {region}, 1 h"),
        basalt: json!({
            "queryType": "timeseries",
            "dataSource": DATASOURCE,
            "intervals": [interval(window)],
            "granularity": Unit::Minute.granularity(),
            "filter": {"type": "selector", "dimension": "region", "value": region},
            "aggregations": [
                {"type": "count", "name": "num_rows"},
                agg("longMax", "max_usage_user", "usage_user"),
                agg("longSum", "sum_usage_user", "usage_user"),
            ],
            "postAggregations": [{
                "type": "arithmetic", "name": "mean_usage_user", "fn": "/",
                "fields": [
                    {"type": "fieldAccess", "fieldName": "sum_usage_user"},
                    {"type": "fieldAccess", "fieldName": "num_rows"},
                ],
            }],
            "context": {"skipEmptyBuckets": true},
        }),
        duckdb: sql(Dialect::DuckDb),
        clickhouse: sql(Dialect::ClickHouse),
        druid: sql(Dialect::Druid),
        columns: vec![
            "__time".to_owned(),
            "num_rows".to_owned(),
            "max_usage_user".to_owned(),
            "mean_usage_user".to_owned(),
        ],
        time_columns: vec!["__time".to_owned()],
        check: Check::Ordered { rel_tol: 1e-9 },
        name,
    }
}

/// Druid-style count distinct: approximate distinct hosts per hour over the whole 24 h.
fn distinct_hosts(data: &Dataset) -> QueryDef {
    let window = (data.start_ms, data.end_ms);
    let sql = |d: Dialect| {
        let bt = d.by_time();
        format!(
            "SELECT {} AS __time, {} AS hosts FROM cpu WHERE {} GROUP BY {bt} ORDER BY {bt}",
            d.bucket(Unit::Hour),
            d.approx_count_distinct("hostname"),
            d.window(window)
        )
    };
    QueryDef {
        name: "distinct-hosts-per-hour".to_owned(),
        description: "approximate distinct hosts per hour, 24 h (HLL; exact: every host)"
            .to_owned(),
        basalt: json!({
            "queryType": "timeseries",
            "dataSource": DATASOURCE,
            "intervals": [interval(window)],
            "granularity": Unit::Hour.granularity(),
            "aggregations": [
                {"type": "cardinality", "name": "hosts", "fields": ["hostname"], "round": true},
            ],
            "context": {"skipEmptyBuckets": true},
        }),
        duckdb: sql(Dialect::DuckDb),
        clickhouse: sql(Dialect::ClickHouse),
        druid: sql(Dialect::Druid),
        columns: vec!["__time".to_owned(), "hosts".to_owned()],
        time_columns: vec!["__time".to_owned()],
        // Three different sketches: agreement within their error.
        check: Check::Ordered { rel_tol: 0.05 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Dataset {
        Dataset {
            hosts: 4000,
            start_ms: 1_451_606_400_000,
            end_ms: 1_451_606_400_000 + 24 * HOUR_MS,
        }
    }

    #[test]
    fn the_workload_has_every_tsbs_query() {
        let qs = tsbs_queries(&data(), 1);
        let names: Vec<&str> = qs.iter().map(|q| q.name.as_str()).collect();
        for want in [
            "single-groupby-1-1-1",
            "single-groupby-1-1-12",
            "single-groupby-1-8-1",
            "single-groupby-5-1-1",
            "single-groupby-5-1-12",
            "single-groupby-5-8-1",
            "cpu-max-all-1",
            "cpu-max-all-8",
            "double-groupby-1",
            "double-groupby-5",
            "double-groupby-all",
            "high-cpu-1",
            "high-cpu-all",
            "lastpoint",
            "groupby-orderby-limit",
        ] {
            assert!(names.contains(&want), "{want} missing");
        }
        assert_eq!(qs.len(), 18);
        for q in &qs {
            basalt_engine::query::spec::Query::from_value(&q.basalt)
                .unwrap_or_else(|e| panic!("{}: {e}", q.name));
        }
    }

    #[test]
    fn parameters_are_seeded_and_inside_the_data() {
        let d = data();
        assert_eq!(
            tsbs_queries(&d, 7)[0].basalt,
            tsbs_queries(&d, 7)[0].basalt,
            "same seed, same query"
        );
        assert_ne!(tsbs_queries(&d, 7)[0].basalt, tsbs_queries(&d, 8)[0].basalt);
        let mut rng = ParamRng::new(3, "x");
        for len in [HOUR_MS, 8 * HOUR_MS, 24 * HOUR_MS] {
            for _ in 0..100 {
                let (s, e) = rng.window(&d, len);
                assert!(s >= d.start_ms && e <= d.end_ms && e - s == len && s % 1000 == 0);
            }
        }
        let hosts = rng.hosts(10, 10);
        let mut sorted = hosts.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 10, "distinct hosts: {hosts:?}");
    }

    #[test]
    fn sql_dialects() {
        let q = single_groupby(&data(), 1, 5, 8, 1);
        assert!(q.duckdb.contains("date_trunc('minute', timestamp)"));
        assert!(q.duckdb.contains("TIMESTAMPTZ '2016-01-01 "));
        assert!(q.clickhouse.contains("toStartOfMinute(timestamp)"));
        assert!(q.clickhouse.contains("hostname IN ('host_"));
        assert!(!q.clickhouse.contains("max(usage_guest) AS max_usage_guest"));
        assert!(
            q.clickhouse
                .contains("max(usage_iowait) AS max_usage_iowait")
        );
        assert_eq!(
            q.basalt["filter"]["values"].as_array().map(Vec::len),
            Some(8)
        );
        assert!(q.druid.contains("TIME_FLOOR(__time, 'PT1M') AS __time"));
        assert!(q.druid.contains("__time >= TIMESTAMP '2016-01-01 "));
        assert!(q.druid.ends_with("GROUP BY 1 ORDER BY 1"));
        let last = lastpoint();
        assert!(
            last.druid
                .contains("max(__time) AS last_time, LATEST(usage_user) AS usage_user")
        );
    }
}
