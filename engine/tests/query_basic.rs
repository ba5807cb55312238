//! Hand-checked native queries over a tiny datasource: every query type returns Druid's shape
//! with the numbers worked out by hand.

#![allow(clippy::unwrap_used)]

use basalt_engine::engine::Engine;
use basalt_engine::schema::DataSchema;
use basalt_engine::segment::{SegmentId, SegmentWriter};
use basalt_engine::time::Interval;
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_451_606_400_000; // 2016-01-01T00:00:00Z

fn setup() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let schema = DataSchema::from_value(&json!({
        "dataSource": "wiki",
        "timestampSpec": {"column": "ts", "format": "millis"},
        "dimensionsSpec": {"dimensions": ["page", "lang", {"type": "long", "name": "added"}]},
        "metricsSpec": [
            {"type": "count", "name": "count"},
            {"type": "longSum", "name": "edits", "fieldName": "n"},
            {"type": "doubleMax", "name": "maxDelta", "fieldName": "delta"},
            {"type": "HLLSketchBuild", "name": "users", "fieldName": "user"}
        ],
        "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none", "rollup": false}
    }))
    .unwrap();
    engine
        .data_dir()
        .catalog()
        .create_datasource("wiki", &schema.to_json().to_string())
        .unwrap();
    // Hour 0: pages a,a,b ; hour 1: pages b,c (c has no lang).
    let rows = [
        json!({"ts": T0 + 1000, "page": "a", "lang": "en", "added": 10, "n": 1, "delta": 1.5, "user": "u1"}),
        json!({"ts": T0 + 2000, "page": "a", "lang": "en", "added": 20, "n": 2, "delta": -3.0, "user": "u2"}),
        json!({"ts": T0 + 3000, "page": "b", "lang": "fr", "added": 5, "n": 3, "delta": 7.0, "user": "u1"}),
        json!({"ts": T0 + HOUR + 1000, "page": "b", "lang": "fr", "added": 1, "n": 4, "delta": 2.0, "user": "u3"}),
        json!({"ts": T0 + HOUR + 2000, "page": "c", "added": 2, "n": 5, "delta": 0.5, "user": "u3"}),
    ];
    let version = engine.data_dir().allocate_version("wiki").unwrap();
    let mut staged = Vec::new();
    for h in 0..2 {
        let iv = Interval::new(T0 + h * HOUR, T0 + (h + 1) * HOUR).unwrap();
        let mut w = SegmentWriter::new(&schema, iv).unwrap();
        for r in &rows {
            let t = r["ts"].as_i64().unwrap();
            if iv.contains(t) {
                w.push_json(r.as_object().unwrap()).unwrap();
            }
        }
        let path = engine.data_dir().staging_path().unwrap();
        let stats = w.finish(&path).unwrap();
        let id = SegmentId {
            datasource: "wiki".into(),
            interval: iv,
            version,
            partition: 0,
        };
        staged.push((id, path, stats.rows_out));
    }
    engine.data_dir().publish(staged, None).unwrap();
    (dir, engine)
}

fn q(engine: &Engine, v: Value) -> Value {
    engine
        .query_json(&v.to_string())
        .unwrap_or_else(|e| panic!("{e}\nquery: {v}"))
}

#[test]
fn timeseries_zero_fill_follows_segment_data_intervals() {
    let (_d, e) = setup();
    let query = |extra: Value| {
        let mut v = json!({
            "queryType": "timeseries", "dataSource": "wiki", "granularity": "thirty_minute",
            "intervals": ["2016-01-01T00:00:00Z/2016-01-01T03:00:00Z"],
            "aggregations": [{"type": "count", "name": "rows"}, {"type": "longSum", "name": "edits", "fieldName": "edits"}],
            "postAggregations": [{"type": "arithmetic", "name": "avg", "fn": "/", "fields": [
                {"type": "fieldAccess", "fieldName": "edits"}, {"type": "fieldAccess", "fieldName": "rows"}]}]
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        q(&e, v)
    };
    // As in Druid, empty buckets are filled only inside a segment's data interval (earliest to
    // latest row): 00:30 lies between the two segments' data and gets no row; a filter that
    // empties the first segment still leaves its bucket zero-filled.
    assert_eq!(
        query(json!({})),
        json!([
            {"timestamp": "2016-01-01T00:00:00.000Z", "result": {"rows": 3, "edits": 6, "avg": 2.0}},
            {"timestamp": "2016-01-01T01:00:00.000Z", "result": {"rows": 2, "edits": 9, "avg": 4.5}}
        ])
    );
    assert_eq!(
        query(json!({"filter": {"type": "selector", "dimension": "page", "value": "c"}})),
        json!([
            {"timestamp": "2016-01-01T00:00:00.000Z", "result": {"rows": 0, "edits": null, "avg": null}},
            {"timestamp": "2016-01-01T01:00:00.000Z", "result": {"rows": 1, "edits": 5, "avg": 5.0}}
        ])
    );
    assert_eq!(
        query(
            json!({"context": {"skipEmptyBuckets": true, "grandTotal": true}, "descending": true})
        ),
        json!([
            {"timestamp": "2016-01-01T01:00:00.000Z", "result": {"rows": 2, "edits": 9, "avg": 4.5}},
            {"timestamp": "2016-01-01T00:00:00.000Z", "result": {"rows": 3, "edits": 6, "avg": 2.0}},
            {"timestamp": null, "result": {"rows": 5, "edits": 15, "avg": 3.0}}
        ])
    );
    assert_eq!(query(json!({"limit": 1})).as_array().unwrap().len(), 1);
}

#[test]
fn topn_and_groupby_and_filters() {
    let (_d, e) = setup();
    let r = q(
        &e,
        json!({
            "queryType": "topN", "dataSource": "wiki", "granularity": "all",
            "intervals": "2016-01-01/2016-01-02", "dimension": "page", "threshold": 2, "metric": "edits",
            "aggregations": [{"type": "longSum", "name": "edits", "fieldName": "edits"}]
        }),
    );
    assert_eq!(
        r,
        json!([{"timestamp": "2016-01-01T00:00:00.000Z", "result": [
        {"page": "b", "edits": 7}, {"page": "c", "edits": 5}]}])
    );

    let r = q(
        &e,
        json!({
            "queryType": "groupBy", "dataSource": "wiki", "granularity": "all",
            "intervals": ["2016-01-01/2016-01-02"], "dimensions": ["lang"],
            "filter": {"type": "not", "field": {"type": "selector", "dimension": "page", "value": "a"}},
            "aggregations": [{"type": "count", "name": "c"}, {"type": "doubleMax", "name": "m", "fieldName": "maxDelta"}],
            "having": {"type": "greaterThan", "aggregation": "c", "value": 0}
        }),
    );
    assert_eq!(
        r,
        json!([
            {"version": "v1", "timestamp": "2016-01-01T00:00:00.000Z", "event": {"lang": null, "c": 1, "m": 0.5}},
            {"version": "v1", "timestamp": "2016-01-01T00:00:00.000Z", "event": {"lang": "fr", "c": 2, "m": 7.0}}
        ])
    );

    // SQL null semantics: NOT(lang = 'en') excludes the row whose lang is null.
    let r = q(
        &e,
        json!({
            "queryType": "timeseries", "dataSource": "wiki", "granularity": "all", "intervals": ["2016-01-01/2016-01-02"],
            "filter": {"type": "not", "field": {"type": "selector", "dimension": "lang", "value": "en"}},
            "aggregations": [{"type": "count", "name": "c"}]
        }),
    );
    assert_eq!(r[0]["result"]["c"], 2);

    let r = q(
        &e,
        json!({
            "queryType": "timeseries", "dataSource": "wiki", "granularity": "all", "intervals": ["2016-01-01/2016-01-02"],
            "filter": {"type": "bound", "dimension": "added", "lower": "5", "upper": "20", "upperStrict": true, "ordering": "numeric"},
            "aggregations": [{"type": "count", "name": "c"}, {"type": "HLLSketchMerge", "name": "u", "fieldName": "users"}]
        }),
    );
    assert_eq!(r[0]["result"], json!({"c": 2, "u": 1}));
}

#[test]
fn scan_boundary_metadata_search() {
    let (_d, e) = setup();
    let r = q(
        &e,
        json!({
            "queryType": "scan", "dataSource": "wiki", "intervals": ["2016-01-01/2016-01-02"],
            "columns": ["__time", "page"], "limit": 2, "offset": 2, "resultFormat": "compactedList"
        }),
    );
    let events: Vec<Value> = r
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["events"].as_array().unwrap().clone())
        .collect();
    assert_eq!(
        events,
        vec![json!([T0 + 3000, "b"]), json!([T0 + HOUR + 1000, "b"])]
    );

    let r = q(
        &e,
        json!({"queryType": "timeBoundary", "dataSource": "wiki"}),
    );
    assert_eq!(
        r[0]["result"],
        json!({"minTime": "2016-01-01T00:00:01.000Z", "maxTime": "2016-01-01T01:00:02.000Z"})
    );

    let r = q(
        &e,
        json!({"queryType": "segmentMetadata", "dataSource": "wiki", "merge": true,
        "intervals": ["2016-01-01/2016-01-02"]}),
    );
    assert_eq!(r[0]["numRows"], 5);
    assert_eq!(r[0]["columns"]["page"]["cardinality"], 2);

    let r = q(
        &e,
        json!({"queryType": "search", "dataSource": "wiki", "intervals": ["2016-01-01/2016-01-02"],
        "granularity": "all", "searchDimensions": ["page", "lang"], "query": {"type": "insensitive_contains", "value": "B"}}),
    );
    assert_eq!(
        r[0]["result"],
        json!([{"dimension": "page", "value": "b", "count": 2}])
    );

    let r = q(
        &e,
        json!({"queryType": "dataSourceMetadata", "dataSource": "wiki"}),
    );
    assert_eq!(
        r[0]["result"]["maxIngestedEventTime"],
        "2016-01-01T01:00:02.000Z"
    );
}

#[test]
fn bad_queries_name_the_field() {
    let (_d, e) = setup();
    let err = |v: Value| e.query_json(&v.to_string()).unwrap_err().to_string();
    assert!(err(json!({"queryType": "nope", "dataSource": "wiki"})).contains("queryType"));
    assert!(
        err(json!({"queryType": "timeseries", "dataSource": "wiki", "intervals": ["bad"]}))
            .contains("intervals[0]")
    );
    assert!(
        err(
            json!({"queryType": "timeseries", "dataSource": "wiki", "intervals": "2016/2017",
        "aggregations": [{"type": "longSum", "name": "x", "fieldName": "nosuch"}]})
        )
        .contains("aggregations[0].fieldName")
    );
    assert!(
        err(
            json!({"queryType": "timeseries", "dataSource": "wiki", "intervals": "2016/2017",
        "aggregations": [{"type": "longSum", "name": 5, "fieldName": "edits"}]})
        )
        .contains("aggregations[0].name")
    );
    assert!(
        err(json!({"queryType": "timeseries", "dataSource": "nosuch", "intervals": "2016/2017"}))
            .contains("nosuch")
    );
    assert!(err(json!({"queryType": "groupBy", "dataSource": "wiki", "intervals": "2016/2017", "dimensions": ["zz"]})).contains("dimensions[0]"));
}

#[test]
fn limits_cancellation_and_explain() {
    let (_d, e) = setup();
    let err = |v: Value| e.query_json(&v.to_string()).unwrap_err();
    let too_many = err(
        json!({"queryType": "groupBy", "dataSource": "wiki", "intervals": "2016/2017",
        "granularity": "all", "dimensions": ["page"], "aggregations": [{"type": "count", "name": "c"}],
        "context": {"maxGroupByRows": 2}}),
    );
    assert!(
        matches!(too_many, basalt_engine::Error::ResourcesExhausted(_)),
        "{too_many}"
    );
    let too_long = err(
        json!({"queryType": "scan", "dataSource": "wiki", "intervals": "2016/2017",
        "context": {"maxScanRows": 3}}),
    );
    assert!(
        matches!(too_long, basalt_engine::Error::ResourcesExhausted(_)),
        "{too_long}"
    );
    // The same scan with a limit within the bound works.
    let ok = q(
        &e,
        json!({"queryType": "scan", "dataSource": "wiki", "intervals": "2016/2017",
        "limit": 3, "context": {"maxScanRows": 3}}),
    );
    let n: usize = ok
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["events"].as_array().unwrap().len())
        .sum();
    assert_eq!(n, 3);

    // A cancelled query stops with a clear error.
    let query = basalt_engine::query::Query::from_json(&json!({"queryType": "timeseries", "dataSource": "wiki",
        "intervals": "2016/2017", "aggregations": [{"type": "count", "name": "c"}], "context": {"queryId": "q-42"}}).to_string()).unwrap();
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let cancelled = e.query(&query, Some(flag)).unwrap_err();
    assert!(
        matches!(cancelled, basalt_engine::Error::Cancelled(_))
            && cancelled.to_string().contains("q-42"),
        "{cancelled}"
    );

    // EXPLAIN names the segments chosen, how the filter runs, and the operators.
    let plan = e.explain_json(&json!({"queryType": "timeseries", "dataSource": "wiki",
        "intervals": "2016-01-01T00:00:00Z/2016-01-01T01:00:00Z", "granularity": "all",
        "filter": {"type": "and", "fields": [{"type": "selector", "dimension": "page", "value": "a"},
                                             {"type": "bound", "dimension": "added", "lower": "1", "ordering": "numeric"}]},
        "aggregations": [{"type": "count", "name": "c"}]}).to_string()).unwrap();
    let segs = plan["segments"].as_array().unwrap();
    assert_eq!(
        segs.len(),
        1,
        "interval pruning keeps only the first hour: {plan}"
    );
    let f = segs[0]["filter"].as_str().unwrap();
    assert!(
        f.contains("page")
            && f.contains("bitmaps")
            && f.contains("added")
            && f.contains("row check"),
        "{f}"
    );
    let ops: Vec<&str> = plan["operators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        ops,
        [
            "SegmentScanExec",
            "FilterExec",
            "AggregateExec",
            "TimeseriesExec"
        ]
    );
}

#[test]
fn period_granularity_with_time_zone() {
    let (_d, e) = setup();
    let r = q(
        &e,
        json!({"queryType": "timeseries", "dataSource": "wiki", "intervals": "2016-01-01T00:00:00Z/2016-01-01T02:00:00Z",
        "granularity": {"type": "period", "period": "P1D", "timeZone": "America/Los_Angeles"},
        "context": {"skipEmptyBuckets": true},
        "aggregations": [{"type": "count", "name": "c"}]}),
    );
    // 2016-01-01T00:00Z is still 2015-12-31 in Los Angeles: one local day bucket holds all rows.
    assert_eq!(
        r,
        json!([{"timestamp": "2015-12-31T00:00:00.000-08:00", "result": {"c": 5}}])
    );
}
