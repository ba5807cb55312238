//! SQL through `Engine::sql` as dashboards send it: Superset and Grafana time-series panels
//! (checked against answers computed directly from the generated rows), EXPLAIN showing pruned
//! intervals, typed dynamic parameters, cancellation, and `query_table` flattening.

#![allow(clippy::unwrap_used)]

mod sql_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use basalt_engine::engine::{AggRows, Engine};
use basalt_engine::error::Error;
use basalt_engine::query::spec::Query;
use basalt_engine::sql::{SqlParameter, SqlRequest};
use basalt_engine::table::SqlType;
use serde_json::{Value, json};
use sql_support::{HOUR, T0, sql};

fn setup() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    sql_support::build_events(&engine);
    sql_support::build_cpu(&engine, 11);
    (dir, engine)
}

fn iso(t: i64) -> String {
    basalt_engine::time::format_iso_millis(t)
}

/// Per (minute bucket, host): (sum of usage_user, rows), over rows with `lo <= ts < hi`.
fn minute_host_avgs(lo: i64, hi: i64) -> BTreeMap<(i64, String), (f64, i64)> {
    let mut m: BTreeMap<(i64, String), (f64, i64)> = BTreeMap::new();
    for r in sql_support::cpu_rows(11) {
        let ts = r["ts"].as_i64().unwrap();
        if ts < lo || ts >= hi {
            continue;
        }
        let e = m
            .entry((
                ts - ts % 60_000,
                r["hostname"].as_str().unwrap().to_string(),
            ))
            .or_default();
        e.0 += r["usage_user"].as_f64().unwrap();
        e.1 += 1;
    }
    m
}

/// Update `datasource`'s spec in the catalog with one more string dimension.
fn add_dimension(engine: &Engine, datasource: &str, dimension: &str) {
    let catalog = engine.data_dir().catalog();
    let spec = catalog.get_datasource(datasource).unwrap().unwrap();
    let mut spec: Value = serde_json::from_str(&spec).unwrap();
    spec["dimensionsSpec"]["dimensions"]
        .as_array_mut()
        .unwrap()
        .push(json!(dimension));
    catalog
        .update_datasource_spec(datasource, &spec.to_string())
        .unwrap();
}

fn assert_close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-9 * a.abs().max(1.0),
        "{what}: {a} != {b}"
    );
}

#[test]
fn superset_timeseries_panel_matches_rows_and_orders_by_metric() {
    let (_d, e) = setup();
    let lo = T0 + HOUR;
    let hi = T0 + HOUR + 30 * 60_000;
    let t = sql(
        &e,
        "SELECT TIME_FLOOR(__time, 'PT1M') AS \"__timestamp\", hostname, AVG(usage_user) AS \"AVG(usage_user)\" \
         FROM cpu WHERE __time >= TIMESTAMP '2000-01-01 01:00:00' AND __time < TIMESTAMP '2000-01-01 01:30:00' \
         GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 100",
    );
    assert_eq!(t.columns[0].sql_type, SqlType::Timestamp);
    assert_eq!(t.columns[2].name, "AVG(usage_user)");
    let expected = minute_host_avgs(lo, hi);
    assert_eq!(t.rows.len(), expected.len().min(100));
    let mut prev = f64::INFINITY;
    for r in &t.rows {
        let ts = basalt_engine::time::parse_iso_timestamp(r[0].as_str().unwrap()).unwrap();
        let (s, n) = expected[&(ts, r[1].as_str().unwrap().to_string())];
        let avg = r[2].as_f64().unwrap();
        assert_close(avg, s / n as f64, "avg");
        assert!(avg <= prev, "not ordered by AVG descending");
        prev = avg;
    }
}

#[test]
fn grafana_time_group_forms_agree() {
    let (_d, e) = setup();
    let forms = [
        "SELECT TIME_FLOOR(__time, 'PT1M') AS \"time\", hostname, SUM(usage_user) / COUNT(*) FROM cpu \
         WHERE __time BETWEEN '2000-01-01T01:00:00Z' AND '2000-01-01T01:59:59.999Z' GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT FLOOR(__time TO MINUTE) AS \"time\", hostname, AVG(usage_user) FROM cpu \
         WHERE \"__time\" >= TIMESTAMP '2000-01-01 01:00:00' AND \"__time\" <= TIMESTAMP '2000-01-01 01:59:59.999' \
         GROUP BY FLOOR(__time TO MINUTE), hostname ORDER BY \"time\", hostname",
        "SELECT DATE_TRUNC('minute', __time) AS \"time\", hostname, AVG(usage_user) FROM cpu \
         WHERE __time >= MILLIS_TO_TIMESTAMP(946688400000) AND __time < MILLIS_TO_TIMESTAMP(946692000000) \
         GROUP BY 1, 2 ORDER BY 1 ASC, 2 ASC",
    ];
    let expected = minute_host_avgs(T0 + HOUR, T0 + 2 * HOUR);
    for f in forms {
        let t = sql(&e, f);
        assert_eq!(t.rows.len(), expected.len(), "{f}");
        for (r, ((ts, host), (s, n))) in t.rows.iter().zip(&expected) {
            assert_eq!(r[0], json!(iso(*ts)), "{f}");
            assert_eq!(r[1], json!(host), "{f}");
            assert_close(r[2].as_f64().unwrap(), s / *n as f64, f);
        }
    }
}

fn explain(e: &Engine, q: &str) -> (Value, Value) {
    let t = sql(e, &format!("EXPLAIN PLAN FOR {q}"));
    assert_eq!(t.columns[0].name, "PLAN");
    assert_eq!(t.columns[1].name, "RESOURCES");
    (
        serde_json::from_str(t.rows[0][0].as_str().unwrap()).unwrap(),
        serde_json::from_str(t.rows[0][1].as_str().unwrap()).unwrap(),
    )
}

#[test]
fn explain_shows_pruned_intervals_and_the_native_query_reads_one_segment() {
    let (_d, e) = setup();
    let (plan, resources) = explain(
        &e,
        "SELECT TIME_FLOOR(__time, 'PT5M') AS \"__timestamp\", hostname, MAX(usage_user) FROM cpu \
         WHERE __time >= TIMESTAMP '2000-01-01 01:00:00' AND __time < TIMESTAMP '2000-01-01 02:00:00' \
         AND hostname IN ('host_0', 'host_1') GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 10",
    );
    assert_eq!(resources, json!([{"name": "cpu", "type": "DATASOURCE"}]));
    let q = &plan[0]["query"];
    assert_eq!(q["queryType"], "groupBy");
    assert_eq!(
        q["intervals"],
        json!(["2000-01-01T01:00:00.000Z/2000-01-01T02:00:00.000Z"])
    );
    assert_eq!(q["granularity"]["period"], "PT5M");
    assert_eq!(q["filter"]["type"], "in");
    let steps: Vec<&str> = plan.as_array().unwrap()[1..]
        .iter()
        .filter_map(|s| s["relational"].as_str())
        .collect();
    assert_eq!(steps, ["Project", "Sort", "Limit"]);
    // The native query, run through the native EXPLAIN, touches only the 01:00 segment.
    let native = e.explain_json(&q.to_string()).unwrap();
    let segs = native["segments"].as_array().unwrap();
    assert_eq!(segs.len(), 1, "{native}");
    assert!(
        segs[0]["id"]
            .as_str()
            .unwrap()
            .contains("2000-01-01T01:00:00.000Z")
    );

    // No time filter: all of time, all three segments.
    let (plan, _) = explain(&e, "SELECT COUNT(*) FROM cpu");
    let q = &plan[0]["query"];
    assert_eq!(q["queryType"], "timeseries");
    let native = e.explain_json(&q.to_string()).unwrap();
    assert_eq!(native["segments"].as_array().unwrap().len(), 3);

    // A relative filter on CURRENT_TIMESTAMP becomes an interval too (here: nothing to read).
    let (plan, _) = explain(
        &e,
        "SELECT COUNT(*) FROM cpu WHERE __time >= CURRENT_TIMESTAMP - INTERVAL '1' HOUR",
    );
    let iv = plan[0]["query"]["intervals"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!iv.starts_with("-146136543"), "{iv}");

    // topN when Druid would plan one; scan with the residual shown as a relational filter.
    let (plan, _) = explain(
        &e,
        "SELECT hostname, SUM(requests) FROM cpu GROUP BY hostname ORDER BY 2 DESC LIMIT 2",
    );
    assert_eq!(plan[0]["query"]["queryType"], "topN");
    assert_eq!(plan[0]["query"]["threshold"], 2);
    let (plan, _) = explain(
        &e,
        "SELECT hostname FROM cpu WHERE LOWER(hostname) = 'host_1' LIMIT 5",
    );
    assert_eq!(plan[0]["query"]["queryType"], "scan");
    assert!(
        plan.to_string()
            .contains("Filter (not expressible as a native filter)")
    );
}

#[test]
fn typed_parameters_bind_in_order() {
    let (_d, e) = setup();
    let p = |t: &str, v: Value| SqlParameter {
        type_name: t.into(),
        value: v,
    };
    let req = SqlRequest {
        query:
            "SELECT COUNT(*), SUM(added) FROM events WHERE channel = ? AND added > ? AND __time < ?"
                .into(),
        parameters: vec![
            p("VARCHAR", json!("#en")),
            p("BIGINT", json!(15)),
            p("TIMESTAMP", json!("2000-01-01 02:00:00")),
        ],
        ..SqlRequest::default()
    };
    let t = e.sql(&req, None).unwrap();
    assert_eq!(t.rows, vec![vec![json!(2), json!(45)]]);
    let req = SqlRequest {
        query: "SELECT ? * 2, ?".into(),
        parameters: vec![p("DOUBLE", json!(1.25)), p("BOOLEAN", json!(true))],
        ..SqlRequest::default()
    };
    assert_eq!(
        e.sql(&req, None).unwrap().rows,
        vec![vec![json!(2.5), json!(true)]]
    );
    let req = SqlRequest {
        query: "SELECT ?".into(),
        parameters: vec![p("BIGINT", json!("x"))],
        ..SqlRequest::default()
    };
    assert!(matches!(e.sql(&req, None), Err(Error::InvalidArgument(_))));
}

#[test]
fn error_categories() {
    let (_d, e) = setup();
    let run = |q: &str| {
        e.sql(
            &SqlRequest {
                query: q.into(),
                ..SqlRequest::default()
            },
            None,
        )
    };
    assert!(matches!(
        run("SELECT * FROM nosuch"),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(run("SELEC 1"), Err(Error::InvalidArgument(_))));
    assert!(matches!(
        run("SELECT x FROM events"),
        Err(Error::InvalidArgument(_))
    ));
    match run("SELECT *\nFROM events a\nJOIN cpu b ON TRUE") {
        Err(Error::Unsupported(m)) => assert!(m.contains("JOIN") && m.contains("line 3"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn cancellation_and_context_are_honoured() {
    let (_d, e) = setup();
    let flag = Arc::new(AtomicBool::new(true));
    let req = SqlRequest {
        query: "SELECT COUNT(*) FROM cpu".into(),
        ..SqlRequest::default()
    };
    assert!(matches!(e.sql(&req, Some(flag)), Err(Error::Cancelled(_))));
    let mut ctx = serde_json::Map::new();
    ctx.insert("useApproximateCountDistinct".into(), json!(false));
    ctx.insert("timeout".into(), json!(60_000));
    let req = SqlRequest {
        query: "SELECT COUNT(DISTINCT hostname) FROM cpu".into(),
        context: ctx,
        ..SqlRequest::default()
    };
    assert_eq!(e.sql(&req, None).unwrap().rows, vec![vec![json!(3)]]);
    let mut ctx = serde_json::Map::new();
    ctx.insert("sqlTimeZone".into(), json!("Europe/Paris"));
    let req = SqlRequest {
        query: "SELECT 1".into(),
        context: ctx,
        ..SqlRequest::default()
    };
    assert!(matches!(e.sql(&req, None), Err(Error::Unsupported(_))));
}

#[test]
fn query_table_flattens_every_native_query_type() {
    let (_d, e) = setup();
    let run = |v: Value| {
        e.query_table(&Query::from_value(&v).unwrap(), None)
            .unwrap()
    };
    let iv = json!(["2000-01-01T00:00:00Z/2000-01-01T03:00:00Z"]);
    let t = run(
        json!({"queryType": "timeseries", "dataSource": "events", "intervals": iv, "granularity": "hour",
        "aggregations": [{"type": "count", "name": "n"}, {"type": "doubleSum", "name": "p", "fieldName": "price"}]}),
    );
    let names: Vec<(&str, SqlType)> = t
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.sql_type))
        .collect();
    assert_eq!(
        names,
        [
            ("__time", SqlType::Timestamp),
            ("n", SqlType::Bigint),
            ("p", SqlType::Double)
        ]
    );
    assert_eq!(
        t.rows[0],
        vec![json!("2000-01-01T00:00:00.000Z"), json!(4), json!(8.0)]
    );
    let t = run(
        json!({"queryType": "topN", "dataSource": "events", "intervals": iv, "granularity": "all",
        "dimension": "channel", "metric": "n", "threshold": 2, "aggregations": [{"type": "count", "name": "n"}]}),
    );
    assert_eq!(t.columns[1].name, "channel");
    assert_eq!(t.rows[0][1..], [json!("#en"), json!(5)]);
    assert_eq!(t.rows.len(), 2);
    let t = run(
        json!({"queryType": "groupBy", "dataSource": "events", "intervals": iv, "granularity": "all",
        "dimensions": ["user"], "aggregations": [{"type": "longSum", "name": "s", "fieldName": "added"}]}),
    );
    assert_eq!(
        t.columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["__time", "user", "s"]
    );
    assert_eq!(t.rows.len(), 5);
    let t = run(
        json!({"queryType": "scan", "dataSource": "events", "intervals": iv,
        "columns": ["__time", "page", "added", "price"], "limit": 3}),
    );
    let types: Vec<SqlType> = t.columns.iter().map(|c| c.sql_type).collect();
    assert_eq!(
        types,
        [
            SqlType::Timestamp,
            SqlType::Varchar,
            SqlType::Bigint,
            SqlType::Double
        ]
    );
    assert_eq!(
        t.rows[0],
        vec![
            json!("2000-01-01T00:00:00.000Z"),
            json!("Foo"),
            json!(10),
            json!(1.5)
        ]
    );
    let t = run(json!({"queryType": "timeBoundary", "dataSource": "events"}));
    assert_eq!(t.rows[0][1], json!("2000-01-01T00:00:00.000Z"));
    assert_eq!(t.rows[0][2], json!("2000-01-01T02:59:59.000Z"));
    let t = run(
        json!({"queryType": "search", "dataSource": "events", "intervals": iv, "granularity": "all",
        "query": {"type": "contains", "value": "ar"}}),
    );
    assert!(
        t.rows
            .iter()
            .any(|r| r[1] == json!("user") && r[2] == json!("carol") && r[3] == json!(2)),
        "{t:?}"
    );
    let t = run(json!({"queryType": "dataSourceMetadata", "dataSource": "events"}));
    assert_eq!(t.rows[0][1], json!("2000-01-01T02:59:59.000Z"));
    let t = run(json!({"queryType": "segmentMetadata", "dataSource": "events", "intervals": iv}));
    assert_eq!(t.columns[0].name, "id");
    assert!(!t.rows.is_empty());
    // Arrow export of a SQL answer.
    let batch = sql(
        &e,
        "SELECT __time, channel, added, price FROM events ORDER BY __time",
    )
    .to_record_batch()
    .unwrap();
    assert_eq!(batch.num_rows(), 10);
    assert_eq!(batch.num_columns(), 4);
}

/// The column lists SQL plans with are kept between statements: they must follow a new
/// datasource, a publish that adds a column, a spec update and a drop.
#[test]
fn sql_columns_follow_publishes_spec_updates_and_drops() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let columns = |e: &Engine, ds: &str| -> Vec<String> {
        sql(
            e,
            &format!(
                "SELECT COLUMN_NAME FROM INFORMATION_SCHEMA.COLUMNS \
                 WHERE TABLE_NAME = '{ds}' ORDER BY ORDINAL_POSITION"
            ),
        )
        .rows
        .iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect()
    };
    let count_events = |e: &Engine| {
        e.sql(
            &SqlRequest {
                query: "SELECT COUNT(*) FROM events".into(),
                ..SqlRequest::default()
            },
            None,
        )
    };
    let missing = count_events(&engine).unwrap_err();
    assert!(missing.to_string().contains("events"), "{missing}");

    sql_support::build_events(&engine);
    assert_eq!(sql(&engine, "SELECT COUNT(*) FROM events").rows.len(), 1);
    let before = columns(&engine, "events");
    assert!(before.contains(&"channel".to_string()), "{before:?}");
    assert!(!before.contains(&"country".to_string()), "{before:?}");

    // A spec update that adds a dimension.
    add_dimension(&engine, "events", "country");
    assert!(columns(&engine, "events").contains(&"country".to_string()));
    let t = sql(&engine, "SELECT COUNT(country) FROM events");
    assert_eq!(t.rows[0][0], json!(0));

    // A publish of a new datasource: its columns appear, the other's stay.
    sql_support::build_cpu(&engine, 3);
    assert!(columns(&engine, "cpu").contains(&"usage_user".to_string()));
    assert!(columns(&engine, "events").contains(&"country".to_string()));

    // A drop: the table is gone for SQL.
    engine.data_dir().drop_datasource("events").unwrap();
    assert!(columns(&engine, "events").is_empty());
    let gone = count_events(&engine).unwrap_err();
    assert!(gone.to_string().contains("events"), "{gone}");
}

/// Statements are parsed once per text and kept; a kept statement must still see the
/// datasource as it is now (its columns after a spec update, its rows after a publish, its
/// absence after a drop), its own parameters and the current time.
#[test]
fn kept_statements_follow_schema_parameters_and_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let run = |e: &Engine, text: &str, parameters: Vec<SqlParameter>| {
        e.sql(
            &SqlRequest {
                query: text.into(),
                parameters,
                ..SqlRequest::default()
            },
            None,
        )
    };
    let star = "SELECT * FROM events ORDER BY __time LIMIT 1";
    assert!(run(&engine, star, vec![]).is_err(), "no datasource yet");
    sql_support::build_events(&engine);
    let before = run(&engine, star, vec![]).unwrap();
    assert!(engine.sql_statements_cached() >= 1);
    assert!(!before.columns.iter().any(|c| c.name == "country"));

    // A spec update adding a dimension: the kept `SELECT *` shows it.
    add_dimension(&engine, "events", "country");
    let after = run(&engine, star, vec![]).unwrap();
    assert_eq!(after.columns.len(), before.columns.len() + 1);
    assert!(after.columns.iter().any(|c| c.name == "country"));

    // Parameters are bound on every run of the kept text.
    let by_channel = "SELECT COUNT(*) FROM events WHERE channel = ?";
    let count = |channel: &str| {
        run(
            &engine,
            by_channel,
            vec![SqlParameter {
                type_name: "VARCHAR".into(),
                value: json!(channel),
            }],
        )
        .unwrap()
        .rows[0][0]
            .clone()
    };
    assert_eq!(count("#en"), json!(5));
    assert_eq!(count("#fr"), json!(3));
    assert_eq!(count("#en"), json!(5));

    // A drop, then a publish again: the kept text fails, then answers from the new rows.
    let total = "SELECT COUNT(*) FROM events";
    assert_eq!(run(&engine, total, vec![]).unwrap().rows[0][0], json!(10));
    engine.data_dir().drop_datasource("events").unwrap();
    let gone = run(&engine, total, vec![]).unwrap_err();
    assert!(gone.to_string().contains("events"), "{gone}");
    sql_support::publish(
        &engine,
        json!({"dataSource": "events", "timestampSpec": {"column": "ts", "format": "millis"},
               "dimensionsSpec": {"dimensions": ["channel"]},
               "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none", "rollup": false}}),
        &[json!({"ts": T0, "channel": "#xx"})],
    );
    assert_eq!(run(&engine, total, vec![]).unwrap().rows[0][0], json!(1));

    // CURRENT_TIMESTAMP is read on every run, not frozen with the kept statement.
    let now = "SELECT CURRENT_TIMESTAMP AS t";
    let first = run(&engine, now, vec![]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = run(&engine, now, vec![]).unwrap();
    let ts = |t: &basalt_engine::table::Table| {
        basalt_engine::time::parse_iso_timestamp(t.rows[0][0].as_str().unwrap()).unwrap()
    };
    assert!(ts(&second) >= ts(&first) + 20, "{first:?} {second:?}");
}

/// ORDER BY plain output columns with a LIMIT goes into the native groupBy's limitSpec, nulls
/// placed as SQL wants; the answers equal those of the same ordering computed above the
/// native query (an ORDER BY expression, which is not pushed down).
#[test]
fn order_and_limit_go_into_the_native_group_by() {
    let (_d, e) = setup();
    let cases = [
        // (pushed, computed above: the same order through an expression)
        (
            "SELECT \"user\", MAX(added) AS m FROM events GROUP BY \"user\" ORDER BY m DESC, \"user\" LIMIT 3",
            "SELECT \"user\", MAX(added) AS m FROM events GROUP BY \"user\" ORDER BY MAX(added) + 0 DESC, \"user\" LIMIT 3",
        ),
        (
            "SELECT \"user\", MAX(added) AS m FROM events GROUP BY \"user\" ORDER BY m DESC NULLS LAST, \"user\" LIMIT 2 OFFSET 1",
            "SELECT \"user\", MAX(added) AS m FROM events GROUP BY \"user\" ORDER BY MAX(added) + 0 DESC NULLS LAST, \"user\" LIMIT 2 OFFSET 1",
        ),
        (
            "SELECT \"user\", MIN(price) AS m FROM events GROUP BY \"user\" ORDER BY m, \"user\" DESC LIMIT 4",
            "SELECT \"user\", MIN(price) AS m FROM events GROUP BY \"user\" ORDER BY MIN(price) + 0, \"user\" DESC LIMIT 4",
        ),
        (
            "SELECT \"user\", MIN(price) AS m FROM events GROUP BY \"user\" ORDER BY m NULLS FIRST, \"user\" LIMIT 2",
            "SELECT \"user\", MIN(price) AS m FROM events GROUP BY \"user\" ORDER BY MIN(price) + 0 NULLS FIRST, \"user\" LIMIT 2",
        ),
        (
            "SELECT channel, page, COUNT(*) AS n FROM events GROUP BY 1, 2 ORDER BY page DESC, channel LIMIT 3",
            "SELECT channel, page, COUNT(*) AS n FROM events GROUP BY 1, 2 ORDER BY CONCAT(page, '') DESC, channel LIMIT 3",
        ),
        (
            "SELECT hostname, MAX(usage_user) AS m FROM cpu GROUP BY hostname ORDER BY m DESC, hostname LIMIT 2",
            "SELECT hostname, MAX(usage_user) AS m FROM cpu GROUP BY hostname ORDER BY MAX(usage_user) + 0 DESC, hostname LIMIT 2",
        ),
    ];
    for (pushed, above) in cases {
        let (plan, _) = explain(&e, pushed);
        let q = &plan[0]["query"];
        assert_eq!(q["queryType"], "groupBy", "{pushed}");
        let limit = &q["limitSpec"];
        assert!(limit["limit"].as_u64().is_some(), "{pushed}: {q}");
        assert!(!limit["columns"].as_array().unwrap().is_empty(), "{pushed}");
        let (plan, _) = explain(&e, above);
        assert!(plan[0]["query"].get("limitSpec").is_none(), "{above}");
        let got = sql(&e, pushed);
        let want = sql(&e, above);
        assert_eq!(got.rows, want.rows, "{pushed}");
        assert!(!got.rows.is_empty(), "{pushed}");
    }
    // Nulls first: `dave` has no `added`, so his maximum is NULL and leads.
    let t = sql(&e, cases[0].0);
    assert_eq!(t.rows[0], vec![json!("dave"), Value::Null]);
    // The limitSpec spells the order out: descending, nulls first (SQL's default for DESC).
    let (plan, _) = explain(&e, cases[0].0);
    assert_eq!(
        plan[0]["query"]["limitSpec"],
        json!({"type": "default", "limit": 3, "columns": [
            {"dimension": "a0", "direction": "descending", "nullOrder": "first"},
            {"dimension": "d0", "direction": "ascending", "nullOrder": "last"}]})
    );
}

/// A timeseries' rows for SQL (bucket times and finalized values, no response JSON) are the
/// response's rows: same buckets in the same order, same values, the grand total last.
#[test]
fn timeseries_rows_are_the_response_rows() {
    let (_d, e) = setup();
    let aggs = json!([
        {"type": "count", "name": "n"},
        {"type": "doubleSum", "name": "s", "fieldName": "usage_user"},
        {"type": "longMax", "name": "r", "fieldName": "requests"},
        {"type": "doubleMin", "name": "m", "fieldName": "usage_system"},
        {"type": "cardinality", "name": "h", "fields": ["hostname"], "round": true},
        {"type": "filtered", "filter": {"type": "selector", "dimension": "region", "value": "nowhere"},
         "aggregator": {"type": "longSum", "name": "none", "fieldName": "requests"}},
    ]);
    let q = |extra: Value| {
        let mut q = json!({"queryType": "timeseries", "dataSource": "cpu",
            "intervals": ["2000-01-01T00:30:00Z/2000-01-01T02:10:00Z"],
            "granularity": "five_minute", "aggregations": aggs});
        for (k, v) in extra.as_object().unwrap() {
            q[k] = v.clone();
        }
        q
    };
    let queries = [
        q(json!({})),
        q(json!({"context": {"skipEmptyBuckets": true}})),
        q(
            json!({"granularity": {"type": "period", "period": "PT1H", "timeZone": "America/New_York", "origin": "2000-01-01T00:07:00Z"}}),
        ),
        q(json!({"descending": true, "limit": 4})),
        q(json!({"context": {"grandTotal": true}})),
        q(json!({"granularity": "all"})),
        q(
            json!({"granularity": "all", "intervals": ["-146136543-09-08T08:23:32.096Z/146140482-04-24T15:36:27.903Z"]}),
        ),
        q(json!({"filter": {"type": "selector", "dimension": "hostname", "value": "nobody"}})),
        q(
            json!({"filter": {"type": "selector", "dimension": "hostname", "value": "nobody"}, "context": {"skipEmptyBuckets": true}}),
        ),
    ];
    let mut total = 0;
    for v in queries {
        let parsed = Query::from_value(&v).unwrap();
        let json = e.query(&parsed, None).unwrap();
        let Some(AggRows::Timeseries(rows)) = e.query_rows(&parsed, None).unwrap() else {
            panic!("no timeseries rows: {v}");
        };
        let json = json.as_array().unwrap();
        assert_eq!(rows.len(), json.len(), "{v}");
        total += rows.len();
        for ((time, values), want) in rows.iter().zip(json) {
            match &want["timestamp"] {
                Value::Null => assert_eq!(*time, None, "{v}"),
                t => assert_eq!(
                    *time,
                    Some(basalt_engine::time::parse_iso_timestamp(t.as_str().unwrap()).unwrap()),
                    "{v}"
                ),
            }
            let names = ["n", "s", "r", "m", "h", "none"];
            assert_eq!(values.len(), names.len());
            for (name, got) in names.iter().zip(values) {
                assert_eq!(got, &want["result"][name], "{v}: {name}");
            }
        }
    }
    assert!(total > 60, "{total}");
    // Post-aggregators keep the response path.
    let mut with_post = q(json!({}));
    with_post["postAggregations"] = json!([{"type": "arithmetic", "name": "p", "fn": "+", "fields": [
            {"type": "fieldAccess", "fieldName": "n"}, {"type": "constant", "value": 1}]}]);
    let parsed = Query::from_value(&with_post).unwrap();
    assert!(e.query_rows(&parsed, None).unwrap().is_none());
}

/// A groupBy's rows for SQL (values, no response JSON) are the response's rows: same groups
/// in the same order and limits, same values.
#[test]
fn group_by_rows_are_the_response_rows() {
    let (_d, e) = setup();
    let dims = json!([
        {"type": "default", "dimension": "user", "outputName": "d0", "outputType": "STRING"},
        {"type": "default", "dimension": "page", "outputName": "d1", "outputType": "STRING"},
        {"type": "default", "dimension": "added", "outputName": "d2", "outputType": "LONG"},
    ]);
    let aggs = json!([
        {"type": "count", "name": "a0"},
        {"type": "longMax", "name": "a1", "fieldName": "added"},
        {"type": "doubleMin", "name": "a2", "fieldName": "price"},
    ]);
    let q = |granularity: &str, dims: Value, aggs: Value, limit: Value| {
        let mut q = json!({"queryType": "groupBy", "dataSource": "events",
            "intervals": ["2000-01-01T00:00:00Z/2000-01-02T00:00:00Z"],
            "granularity": granularity, "dimensions": dims, "aggregations": aggs});
        if !limit.is_null() {
            q["limitSpec"] = limit;
        }
        q
    };
    let order = |cols: Value, limit: u64, offset: u64| json!({"type": "default", "limit": limit, "offset": offset, "columns": cols});
    let queries = [
        q("all", dims.clone(), aggs.clone(), Value::Null),
        q("hour", dims.clone(), aggs.clone(), Value::Null),
        q(
            "all",
            json!([dims[0]]),
            aggs.clone(),
            json!({"type": "default", "limit": 2}),
        ),
        q(
            "all",
            dims.clone(),
            aggs.clone(),
            order(
                json!([{"dimension": "a1", "direction": "descending"}, "d0"]),
                4,
                1,
            ),
        ),
        q(
            "hour",
            json!([dims[1], dims[2]]),
            aggs.clone(),
            order(
                json!([{"dimension": "d1", "direction": "descending", "nullOrder": "first"},
                   {"dimension": "d2", "nullOrder": "last"}]),
                5,
                0,
            ),
        ),
        // The cut: the only aggregator ordered first, nulls first and last.
        q(
            "all",
            json!([dims[0]]),
            json!([aggs[1]]),
            order(
                json!([{"dimension": "a1", "direction": "descending", "nullOrder": "first"}, "d0"]),
                2,
                0,
            ),
        ),
        q(
            "all",
            json!([dims[0]]),
            json!([aggs[1]]),
            order(
                json!([{"dimension": "a1", "direction": "descending", "nullOrder": "last"}, "d0"]),
                2,
                1,
            ),
        ),
        q(
            "all",
            json!([dims[0]]),
            json!([aggs[2]]),
            order(
                json!([{"dimension": "a2"}, {"dimension": "d0", "direction": "descending"}]),
                3,
                0,
            ),
        ),
    ];
    let mut total = 0;
    for v in queries {
        let parsed = Query::from_value(&v).unwrap();
        let json = e.query(&parsed, None).unwrap();
        let Some(AggRows::GroupBy(rows)) = e.query_rows(&parsed, None).unwrap() else {
            panic!("no groupBy rows: {v}");
        };
        let json = json.as_array().unwrap();
        assert_eq!(rows.len(), json.len(), "{v}");
        total += rows.len();
        let dims: Vec<&str> = v["dimensions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["outputName"].as_str().unwrap())
            .collect();
        let aggs: Vec<&str> = v["aggregations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        for ((time, dim_values, agg_values), want) in rows.iter().zip(json) {
            let t = basalt_engine::time::parse_iso_timestamp(want["timestamp"].as_str().unwrap());
            assert_eq!(Some(*time), t.ok(), "{v}");
            for (name, got) in dims.iter().zip(dim_values) {
                assert_eq!(got, &want["event"][name], "{v}: {name}");
            }
            for (name, got) in aggs.iter().zip(agg_values) {
                assert_eq!(got, &want["event"][name], "{v}: {name}");
            }
        }
    }
    assert!(total > 20, "{total}");
    // Having, post-aggregators and subtotals keep the response path.
    for (k, extra) in [
        (
            "having",
            json!({"type": "greaterThan", "aggregation": "a0", "value": 0}),
        ),
        (
            "postAggregations",
            json!([{"type": "constant", "name": "p", "value": 1}]),
        ),
        ("subtotalsSpec", json!([["d0"], []])),
    ] {
        let mut v = q("all", dims.clone(), aggs.clone(), Value::Null);
        v[k] = extra;
        let parsed = Query::from_value(&v).unwrap();
        assert!(e.query_rows(&parsed, None).unwrap().is_none(), "{k}");
    }
}

/// SQL reads an empty dimension value as NULL: a limitSpec ordered by that dimension places
/// empty strings with the NULLs, so the rows the native groupBy keeps are the ones SQL's
/// order wants.
#[test]
fn empty_strings_sort_with_nulls_in_the_pushed_order() {
    let (_d, e) = setup();
    e.create_datasource(
        &json!({
            "dataSource": "blanks",
            "timestampSpec": {"column": "ts", "format": "millis"},
            "dimensionsSpec": {"dimensions": ["k", {"type": "long", "name": "v"}]},
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none", "rollup": false}
        })
        .to_string(),
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut body = String::new();
    for (i, k) in [
        json!(""),
        json!("a"),
        Value::Null,
        json!("b"),
        json!(""),
        json!("c"),
    ]
    .iter()
    .enumerate()
    {
        body.push_str(&json!({"ts": now, "k": k, "v": i}).to_string());
        body.push('\n');
    }
    e.push_ndjson("blanks", body.as_bytes()).unwrap();
    for (pushed, above) in [
        (
            "SELECT k, COUNT(*) AS m FROM blanks GROUP BY k ORDER BY k LIMIT 2",
            "SELECT k, COUNT(*) AS m FROM blanks GROUP BY k ORDER BY CONCAT(k, '') LIMIT 2",
        ),
        (
            "SELECT k, COUNT(*) AS m FROM blanks GROUP BY k ORDER BY k DESC LIMIT 2",
            "SELECT k, COUNT(*) AS m FROM blanks GROUP BY k ORDER BY CONCAT(k, '') DESC LIMIT 2",
        ),
        (
            "SELECT k, COUNT(*) AS m FROM blanks GROUP BY k ORDER BY k NULLS FIRST, m LIMIT 3",
            "SELECT k, COUNT(*) AS m FROM blanks GROUP BY k ORDER BY CONCAT(k, '') NULLS FIRST, COUNT(*) + 0 LIMIT 3",
        ),
    ] {
        let (plan, _) = explain(&e, pushed);
        assert!(
            plan[0]["query"].get("limitSpec").is_some(),
            "{pushed}: {plan}"
        );
        let got = sql(&e, pushed);
        let want = sql(&e, above);
        assert_eq!(got.rows, want.rows, "{pushed}");
    }
    // Ascending, NULLs (and empty strings) last: `a`, `b`.
    let t = sql(&e, "SELECT k FROM blanks GROUP BY k ORDER BY k LIMIT 2");
    assert_eq!(t.rows, vec![vec![json!("a")], vec![json!("b")]]);
}
