//! Differential tests: each SQL query's answer equals the answer of the equivalent hand-written
//! native query run through `Engine::query_table`, over the generated `cpu` dataset for several
//! seeds. SQL output columns are matched to native columns by name; rows compare as multisets
//! with a float tolerance.

#![allow(clippy::unwrap_used)]

mod sql_support;

use basalt_engine::engine::Engine;
use basalt_engine::query::spec::Query;
use basalt_engine::sql::SqlRequest;
use basalt_engine::table::Table;
use serde_json::{Value, json};

const IV: &str = "2000-01-01T00:00:00Z/2000-01-01T03:00:00Z";
const IV_H1: &str = "2000-01-01T01:00:00Z/2000-01-01T02:00:00Z";

fn pairs() -> Vec<(&'static str, Value)> {
    let count = json!({"type": "count", "name": "n"});
    vec![
        (
            "SELECT COUNT(*) AS n FROM cpu",
            json!({"queryType": "timeseries", "dataSource": "cpu", "intervals": [IV], "granularity": "all", "aggregations": [count]}),
        ),
        (
            "SELECT SUM(requests) AS s, MIN(usage_user) AS lo, MAX(usage_user) AS hi FROM cpu",
            json!({"queryType": "timeseries", "dataSource": "cpu", "intervals": [IV], "granularity": "all", "aggregations": [
             {"type": "longSum", "name": "s", "fieldName": "requests"},
             {"type": "doubleMin", "name": "lo", "fieldName": "usage_user"},
             {"type": "doubleMax", "name": "hi", "fieldName": "usage_user"}]}),
        ),
        (
            "SELECT TIME_FLOOR(__time, 'PT1H') AS __time, COUNT(*) AS n FROM cpu GROUP BY 1",
            json!({"queryType": "timeseries", "dataSource": "cpu", "intervals": [IV], "granularity": "hour", "aggregations": [count]}),
        ),
        (
            "SELECT FLOOR(__time TO MINUTE) AS __time, SUM(usage_user) AS u FROM cpu WHERE __time >= TIMESTAMP '2000-01-01 01:00:00' AND __time < TIMESTAMP '2000-01-01 02:00:00' GROUP BY 1",
            json!({"queryType": "timeseries", "dataSource": "cpu", "intervals": [IV_H1], "granularity": "minute",
                "aggregations": [{"type": "doubleSum", "name": "u", "fieldName": "usage_user"}]}),
        ),
        (
            "SELECT DATE_TRUNC('hour', __time) AS __time, MAX(requests) AS m FROM cpu WHERE hostname = 'host_1' GROUP BY 1",
            json!({"queryType": "timeseries", "dataSource": "cpu", "intervals": [IV], "granularity": "hour",
                "filter": {"type": "selector", "dimension": "hostname", "value": "host_1"},
                "aggregations": [{"type": "longMax", "name": "m", "fieldName": "requests"}]}),
        ),
        (
            "SELECT TIME_FLOOR(__time, 'PT15M') AS __time, AVG(usage_user) AS a FROM cpu GROUP BY 1",
            json!({"queryType": "timeseries", "dataSource": "cpu", "intervals": [IV], "granularity": "fifteen_minute",
                "aggregations": [{"type": "doubleSum", "name": "s", "fieldName": "usage_user"}, count],
                "postAggregations": [{"type": "arithmetic", "name": "a", "fn": "/", "fields": [
                    {"type": "fieldAccess", "fieldName": "s"}, {"type": "fieldAccess", "fieldName": "n"}]}]}),
        ),
        (
            "SELECT hostname, COUNT(*) AS n FROM cpu GROUP BY hostname",
            json!({"queryType": "groupBy", "dataSource": "cpu", "intervals": [IV], "granularity": "all", "dimensions": ["hostname"], "aggregations": [count]}),
        ),
        (
            "SELECT hostname, region, SUM(requests) AS s FROM cpu GROUP BY 1, 2",
            json!({"queryType": "groupBy", "dataSource": "cpu", "intervals": [IV], "granularity": "all", "dimensions": ["hostname", "region"],
                "aggregations": [{"type": "longSum", "name": "s", "fieldName": "requests"}]}),
        ),
        (
            "SELECT TIME_FLOOR(__time, 'PT1H') AS __time, hostname, MAX(usage_user) AS m FROM cpu GROUP BY 1, 2",
            json!({"queryType": "groupBy", "dataSource": "cpu", "intervals": [IV], "granularity": "hour", "dimensions": ["hostname"],
                "aggregations": [{"type": "doubleMax", "name": "m", "fieldName": "usage_user"}]}),
        ),
        (
            "SELECT TIME_FLOOR(__time, 'PT1M') AS __time, hostname, AVG(usage_user) AS a FROM cpu WHERE __time >= TIMESTAMP '2000-01-01 01:00:00' AND __time < TIMESTAMP '2000-01-01 02:00:00' GROUP BY 1, 2",
            json!({"queryType": "groupBy", "dataSource": "cpu", "intervals": [IV_H1], "granularity": "minute", "dimensions": ["hostname"],
                "aggregations": [{"type": "doubleSum", "name": "s", "fieldName": "usage_user"}, count],
                "postAggregations": [{"type": "arithmetic", "name": "a", "fn": "/", "fields": [
                    {"type": "fieldAccess", "fieldName": "s"}, {"type": "fieldAccess", "fieldName": "n"}]}]}),
        ),
        (
            "SELECT hostname, SUM(requests) AS s FROM cpu GROUP BY hostname ORDER BY s DESC LIMIT 2",
            json!({"queryType": "topN", "dataSource": "cpu", "intervals": [IV], "granularity": "all", "dimension": "hostname",
                "metric": "s", "threshold": 2, "aggregations": [{"type": "longSum", "name": "s", "fieldName": "requests"}]}),
        ),
        (
            "SELECT region, COUNT(*) AS n FROM cpu GROUP BY region ORDER BY n ASC LIMIT 1",
            json!({"queryType": "topN", "dataSource": "cpu", "intervals": [IV], "granularity": "all", "dimension": "region",
                "metric": {"type": "inverted", "metric": "n"}, "threshold": 1, "aggregations": [count]}),
        ),
        (
            "SELECT COUNT(*) AS n FROM cpu WHERE usage_user > 50",
            json!({"queryType": "timeseries", "dataSource": "cpu", "intervals": [IV], "granularity": "all",
                "filter": {"type": "bound", "dimension": "usage_user", "lower": "50", "lowerStrict": true, "ordering": "numeric"},
                "aggregations": [count]}),
        ),
        (
            "SELECT COUNT(*) AS n FROM cpu WHERE usage_user >= 10 AND usage_user < 20",
            json!({"queryType": "timeseries", "dataSource": "cpu", "intervals": [IV], "granularity": "all",
                "filter": {"type": "bound", "dimension": "usage_user", "lower": "10", "upper": "20", "upperStrict": true, "ordering": "numeric"},
                "aggregations": [count]}),
        ),
        (
            "SELECT COUNT(*) AS n FROM cpu WHERE hostname IN ('host_0', 'host_2')",
            json!({"queryType": "timeseries", "dataSource": "cpu", "intervals": [IV], "granularity": "all",
                "filter": {"type": "in", "dimension": "hostname", "values": ["host_0", "host_2"]}, "aggregations": [count]}),
        ),
        (
            "SELECT COUNT(*) AS n FROM cpu WHERE hostname <> 'host_0'",
            json!({"queryType": "timeseries", "dataSource": "cpu", "intervals": [IV], "granularity": "all",
                "filter": {"type": "not", "field": {"type": "selector", "dimension": "hostname", "value": "host_0"}}, "aggregations": [count]}),
        ),
        (
            "SELECT COUNT(*) AS n FROM cpu WHERE hostname LIKE '%_1'",
            json!({"queryType": "timeseries", "dataSource": "cpu", "intervals": [IV], "granularity": "all",
                "filter": {"type": "like", "dimension": "hostname", "pattern": "%_1"}, "aggregations": [count]}),
        ),
        (
            "SELECT COUNT(*) AS n FROM cpu WHERE region = 'eu-west-1' OR requests < 100",
            json!({"queryType": "timeseries", "dataSource": "cpu", "intervals": [IV], "granularity": "all",
                "filter": {"type": "or", "fields": [{"type": "selector", "dimension": "region", "value": "eu-west-1"},
                    {"type": "bound", "dimension": "requests", "upper": "100", "upperStrict": true, "ordering": "numeric"}]},
                "aggregations": [count]}),
        ),
        (
            "SELECT COUNT(*) AS n FROM cpu WHERE usage_system IS NULL",
            json!({"queryType": "timeseries", "dataSource": "cpu", "intervals": [IV], "granularity": "all",
                "filter": {"type": "null", "column": "usage_system"}, "aggregations": [count]}),
        ),
        (
            "SELECT COUNT(usage_system) AS n FROM cpu",
            json!({"queryType": "timeseries", "dataSource": "cpu", "intervals": [IV], "granularity": "all",
                "aggregations": [{"type": "filtered", "filter": {"type": "not", "field": {"type": "null", "column": "usage_system"}}, "aggregator": {"type": "count", "name": "n"}}]}),
        ),
        (
            "SELECT SUM(usage_system) AS s FROM cpu",
            json!({"queryType": "timeseries", "dataSource": "cpu", "intervals": [IV], "granularity": "all",
                "aggregations": [{"type": "doubleSum", "name": "s", "fieldName": "usage_system"}]}),
        ),
        (
            "SELECT hostname, COUNT(*) FILTER (WHERE usage_user > 90) AS hot FROM cpu GROUP BY hostname",
            json!({"queryType": "groupBy", "dataSource": "cpu", "intervals": [IV], "granularity": "all", "dimensions": ["hostname"],
                "aggregations": [{"type": "filtered", "filter": {"type": "range", "column": "usage_user", "matchValueType": "DOUBLE", "lower": 90, "lowerOpen": true},
                                  "aggregator": {"type": "count", "name": "hot"}}]}),
        ),
        (
            "SELECT APPROX_COUNT_DISTINCT(hostname) AS d FROM cpu",
            json!({"queryType": "timeseries", "dataSource": "cpu", "intervals": [IV], "granularity": "all",
                "aggregations": [{"type": "cardinality", "name": "d", "fields": ["hostname"], "round": true}]}),
        ),
        (
            "SELECT region, COUNT(DISTINCT hostname) AS d FROM cpu GROUP BY region",
            json!({"queryType": "groupBy", "dataSource": "cpu", "intervals": [IV], "granularity": "all", "dimensions": ["region"],
                "aggregations": [{"type": "cardinality", "name": "d", "fields": ["hostname"], "round": true}]}),
        ),
        (
            "SELECT hostname, EARLIEST(requests) AS f, LATEST(usage_user) AS l FROM cpu GROUP BY hostname",
            json!({"queryType": "groupBy", "dataSource": "cpu", "intervals": [IV], "granularity": "all", "dimensions": ["hostname"],
                "aggregations": [{"type": "longFirst", "name": "f", "fieldName": "requests"}, {"type": "doubleLast", "name": "l", "fieldName": "usage_user"}]}),
        ),
        (
            "SELECT __time, hostname, usage_user FROM cpu WHERE __time >= TIMESTAMP '2000-01-01 01:00:00' AND __time < TIMESTAMP '2000-01-01 01:10:00' AND hostname = 'host_2'",
            json!({"queryType": "scan", "dataSource": "cpu", "intervals": ["2000-01-01T01:00:00Z/2000-01-01T01:10:00Z"],
                "filter": {"type": "selector", "dimension": "hostname", "value": "host_2"}, "columns": ["__time", "hostname", "usage_user"]}),
        ),
        (
            "SELECT __time, requests FROM cpu WHERE requests > 990",
            json!({"queryType": "scan", "dataSource": "cpu", "intervals": [IV],
                "filter": {"type": "bound", "dimension": "requests", "lower": "990", "lowerStrict": true, "ordering": "numeric"}, "columns": ["__time", "requests"]}),
        ),
        (
            "SELECT hostname, requests FROM cpu WHERE region = 'us-east-1' AND requests BETWEEN 100 AND 120",
            json!({"queryType": "scan", "dataSource": "cpu", "intervals": [IV],
                "filter": {"type": "and", "fields": [{"type": "selector", "dimension": "region", "value": "us-east-1"},
                    {"type": "bound", "dimension": "requests", "lower": "100", "upper": "120", "ordering": "numeric"}]},
                "columns": ["hostname", "requests"]}),
        ),
        (
            "SELECT DISTINCT region FROM cpu",
            json!({"queryType": "groupBy", "dataSource": "cpu", "intervals": [IV], "granularity": "all", "dimensions": ["region"], "aggregations": []}),
        ),
        (
            "SELECT TIME_FLOOR(__time, 'P1D', NULL, 'America/Los_Angeles') AS __time, COUNT(*) AS n FROM cpu GROUP BY 1",
            json!({"queryType": "timeseries", "dataSource": "cpu", "intervals": [IV], "granularity": {"type": "period", "period": "P1D", "timeZone": "America/Los_Angeles"},
                "aggregations": [count]}),
        ),
        (
            "SELECT TIME_FLOOR(__time, 'PT1H') AS __time, COUNT(*) AS n FROM cpu WHERE __time < TIMESTAMP '2000-01-01 01:00:00' OR __time >= TIMESTAMP '2000-01-01 02:30:00' GROUP BY 1",
            json!({"queryType": "timeseries", "dataSource": "cpu", "intervals": ["2000-01-01T00:00:00Z/2000-01-01T01:00:00Z", "2000-01-01T02:30:00Z/2000-01-01T03:00:00Z"],
                "granularity": "hour", "aggregations": [count]}),
        ),
        (
            "SELECT hostname, SUM(requests) AS s FROM cpu WHERE NOT (hostname = 'host_0' OR usage_user < 30) GROUP BY 1",
            json!({"queryType": "groupBy", "dataSource": "cpu", "intervals": [IV], "granularity": "all", "dimensions": ["hostname"],
                "filter": {"type": "and", "fields": [{"type": "not", "field": {"type": "selector", "dimension": "hostname", "value": "host_0"}},
                    {"type": "bound", "dimension": "usage_user", "lower": "30", "ordering": "numeric"}]},
                "aggregations": [{"type": "longSum", "name": "s", "fieldName": "requests"}]}),
        ),
    ]
}

fn project(t: &Table, names: &[String]) -> Vec<Vec<Value>> {
    let idx: Vec<usize> = names
        .iter()
        .map(|n| {
            t.columns
                .iter()
                .position(|c| &c.name == n)
                .unwrap_or_else(|| panic!("native result has no column {n}: {:?}", t.columns))
        })
        .collect();
    let mut rows: Vec<Vec<Value>> = t
        .rows
        .iter()
        .map(|r| idx.iter().map(|&i| r[i].clone()).collect())
        .collect();
    rows.sort_by_key(|r| {
        r.iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join("|")
    });
    rows
}

fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        _ => a == b,
    }
}

#[test]
fn sql_equals_native() {
    let mut checked = 0;
    for seed in [1u64, 2, 3] {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        sql_support::build_cpu(&engine, seed);
        for (sql, native) in pairs() {
            let s = engine
                .sql(
                    &SqlRequest {
                        query: sql.into(),
                        ..SqlRequest::default()
                    },
                    None,
                )
                .unwrap_or_else(|e| panic!("{e}\nSQL: {sql}"));
            let n = engine
                .query_table(&Query::from_value(&native).unwrap(), None)
                .unwrap_or_else(|e| panic!("{e}\nnative: {native}"));
            let names: Vec<String> = s.columns.iter().map(|c| c.name.clone()).collect();
            let (a, b) = (project(&s, &names), project(&n, &names));
            assert!(
                !a.is_empty() || sql.contains("990"),
                "empty answer (weak test): {sql}"
            );
            assert_eq!(
                a.len(),
                b.len(),
                "row counts differ\nSQL: {sql}\nsql: {a:?}\nnative: {b:?}"
            );
            for (x, y) in a.iter().zip(&b) {
                assert!(
                    x.iter().zip(y).all(|(u, v)| same(u, v)),
                    "rows differ\nSQL: {sql}\nsql row: {x:?}\nnative row: {y:?}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 3 * pairs().len());
}

/// Queries the planner pushes into one native aggregation (with NULL-skipping native
/// aggregators, `MAX(__time)`, ORDER BY the bucket with LIMIT) against the same SQL over a
/// subquery, which the relational layer aggregates row by row: same rows, same order where the
/// query orders them. NULLs come from `usage_system` (cpu) and `added`/`price`/`page` (events).
#[test]
fn pushed_down_plans_equal_relational_plans() {
    let queries = [
        "SELECT hostname, MAX(__time) AS t, MIN(__time) AS t0, LATEST(usage_system) AS ls, \
         EARLIEST(usage_system) AS es FROM cpu GROUP BY hostname ORDER BY hostname",
        "SELECT MAX(__time) AS t, SUM(usage_system) AS s, MIN(usage_system) AS lo, \
         MAX(usage_system) AS hi, AVG(usage_system) AS a, COUNT(usage_system) AS n FROM cpu",
        "SELECT TIME_FLOOR(__time, 'PT1M') AS b, SUM(usage_system) AS s, MIN(usage_system) AS lo, \
         AVG(usage_system) AS a FROM cpu WHERE hostname = 'host_1' GROUP BY 1 ORDER BY 1",
        "SELECT TIME_FLOOR(__time, 'PT1M') AS b, MAX(usage_user) AS m FROM cpu \
         WHERE __time < TIMESTAMP '2000-01-01 02:30:00' GROUP BY 1 ORDER BY 1 DESC LIMIT 5",
        "SELECT TIME_FLOOR(__time, 'PT5M') AS b, COUNT(*) AS n, AVG(usage_user) AS a FROM cpu \
         GROUP BY 1 ORDER BY 1 LIMIT 7 OFFSET 3",
        "SELECT FLOOR(__time TO HOUR) AS b, MAX(usage_system) AS m FROM cpu \
         WHERE usage_system > 48 GROUP BY 1 ORDER BY b DESC LIMIT 2",
        "SELECT channel, SUM(added) AS s, MAX(price) AS p, LATEST(price) AS lp, EARLIEST(added) AS ea, \
         MIN(__time) AS t0 FROM events GROUP BY channel ORDER BY channel",
        "SELECT page, SUM(price) AS s, AVG(added) AS a, COUNT(added) AS n FROM events \
         GROUP BY page ORDER BY page",
        "SELECT TIME_FLOOR(__time, 'PT1H') AS b, SUM(added) FILTER (WHERE channel = '#de') AS s, \
         MAX(price) FILTER (WHERE channel = '#fr') AS p FROM events GROUP BY 1 ORDER BY 1 DESC LIMIT 2",
    ];
    let run = sql_support::sql;
    let first_query_type = |engine: &Engine, q: &str| -> String {
        let t = run(engine, &format!("EXPLAIN PLAN FOR {q}"));
        let plan: Value = serde_json::from_str(t.rows[0][0].as_str().unwrap()).unwrap();
        plan[0]["query"]["queryType"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let mut checked = 0;
    for seed in [1u64, 2, 3] {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        sql_support::build_cpu(&engine, seed);
        sql_support::build_events(&engine);
        for q in queries {
            let relational = q
                .replace("FROM cpu", "FROM (SELECT * FROM cpu) AS c")
                .replace("FROM events", "FROM (SELECT * FROM events) AS e");
            assert_ne!(first_query_type(&engine, q), "scan", "not pushed down: {q}");
            assert_eq!(first_query_type(&engine, &relational), "scan");
            let (a, b) = (run(&engine, q), run(&engine, &relational));
            assert!(!a.rows.is_empty(), "empty answer (weak test): {q}");
            assert_eq!(
                a.rows.len(),
                b.rows.len(),
                "row counts differ\nSQL: {q}\npushed: {:?}\nrelational: {:?}",
                a.rows,
                b.rows
            );
            for (x, y) in a.rows.iter().zip(&b.rows) {
                assert!(
                    x.iter().zip(y).all(|(u, v)| same(u, v)),
                    "rows differ\nSQL: {q}\npushed row: {x:?}\nrelational row: {y:?}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 3 * queries.len());
}

/// A plain top-level `SELECT columns FROM datasource WHERE … LIMIT/OFFSET` answers as a
/// projected scan (typed columns); the same statement wrapped in a subquery takes the row path.
/// Both must give the same rows, in the same order.
#[test]
fn projected_scans_equal_row_scans() {
    use basalt_engine::table::SqlOutput;
    let queries = [
        "SELECT * FROM cpu WHERE usage_user > 50",
        "SELECT hostname, __time, usage_user, hostname AS h2, requests FROM cpu \
         WHERE hostname IN ('host_1', 'host_2') LIMIT 17 OFFSET 5",
        "SELECT __time, usage_system AS s FROM cpu WHERE __time >= TIMESTAMP '2000-01-01 01:00:00' \
         AND region = 'eu-west-1' LIMIT 40",
        "SELECT region FROM cpu LIMIT 3 OFFSET 200",
        "SELECT * FROM events",
        "SELECT page, price, added, \"user\", channel FROM events WHERE channel <> '#de' OFFSET 2",
        "SELECT \"user\", __time FROM events WHERE price IS NULL OR added > 3",
    ];
    let request = |q: &str| SqlRequest {
        query: q.to_string(),
        parameters: Vec::new(),
        context: Default::default(),
    };
    let mut checked = 0;
    for seed in [1u64, 2] {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        sql_support::build_cpu(&engine, seed);
        sql_support::build_events(&engine);
        for q in queries {
            let wrapped = format!("SELECT * FROM ({q}) AS x");
            let a = engine.sql_output(&request(q), None).unwrap();
            let b = engine.sql_output(&request(&wrapped), None).unwrap();
            assert!(matches!(a, SqlOutput::Scan(_)), "not a projected scan: {q}");
            assert!(
                matches!(b, SqlOutput::Rows(_)),
                "not the row path: {wrapped}"
            );
            assert_eq!(a.columns(), b.columns(), "{q}");
            let (a, b) = (a.into_table(), b.into_table());
            assert!(!a.rows.is_empty(), "empty answer (weak test): {q}");
            assert_eq!(a.rows, b.rows, "rows differ\nSQL: {q}");
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * queries.len());
}
