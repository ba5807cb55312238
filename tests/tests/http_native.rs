//! End-to-end: native Druid queries over HTTP against the real `basalt serve`.

#![allow(clippy::unwrap_used)]

use basalt_engine::schema::DataSchema;
use basalt_engine::segment::{SegmentId, SegmentWriter};
use basalt_engine::storage::DataDir;
use basalt_engine::time::Interval;
use basalt_tests::TestServer;
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_451_606_400_000;

fn load(dir: &std::path::Path) {
    let data = DataDir::open(dir).unwrap();
    let schema = DataSchema::from_value(&json!({
        "dataSource": "cpu",
        "timestampSpec": {"column": "ts", "format": "millis"},
        "dimensionsSpec": {"dimensions": ["host", "region"]},
        "metricsSpec": [{"type": "count", "name": "count"}, {"type": "doubleSum", "name": "usage", "fieldName": "usage"}],
        "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "minute", "rollup": true}
    }))
    .unwrap();
    data.catalog()
        .create_datasource("cpu", &schema.to_json().to_string())
        .unwrap();
    let version = data.allocate_version("cpu").unwrap();
    let iv = Interval::new(T0, T0 + HOUR).unwrap();
    let mut w = SegmentWriter::new(&schema, iv).unwrap();
    for i in 0..600i64 {
        let row = json!({"ts": T0 + i * 6000, "host": format!("h{}", i % 4), "region": if i % 4 < 2 { "eu" } else { "us" }, "usage": 1.0});
        w.push_json(row.as_object().unwrap()).unwrap();
    }
    let path = data.staging_path().unwrap();
    let stats = w.finish(&path).unwrap();
    let id = SegmentId {
        datasource: "cpu".into(),
        interval: iv,
        version,
        partition: 0,
    };
    data.publish(vec![(id, path, stats.rows_out)], None)
        .unwrap();
}

#[test]
fn native_queries_and_druid_errors_over_http() {
    let dir = tempfile::tempdir().unwrap();
    load(dir.path());
    let server = TestServer::start_in(dir);

    let (status, body) = server.get("/druid/v2/datasources").unwrap();
    assert_eq!((status, body.as_str()), (200, r#"["cpu"]"#));
    let (status, body) = server.get("/druid/v2/datasources/cpu").unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"dimensions": ["host", "region"], "metrics": ["count", "usage"]})
    );

    let q = json!({"queryType": "topN", "dataSource": "cpu", "intervals": ["2016-01-01/2016-01-02"],
        "granularity": "all", "dimension": "region", "metric": "rows", "threshold": 5,
        "aggregations": [{"type": "longSum", "name": "rows", "fieldName": "count"}]});
    let (status, body) = server.post("/druid/v2?pretty", &q.to_string()).unwrap();
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v[0]["result"],
        json!([{"region": "eu", "rows": 300}, {"region": "us", "rows": 300}])
    );

    // Bad requests: each gets a Druid-shaped error with the right status, and the server stays up.
    let (status, body) = server.post("/druid/v2", "{not json").unwrap();
    assert_eq!(status, 400);
    let e: Value = serde_json::from_str(&body).unwrap();
    assert!(
        e["errorMessage"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{e}"
    );
    assert!(e["errorClass"].is_string() && e["error"].is_string());

    let (status, _) = server
        .post(
            "/druid/v2",
            &json!({"queryType": "timeseries", "dataSource": "nope", "intervals": "2016/2017"})
                .to_string(),
        )
        .unwrap();
    assert_eq!(status, 404);
    let (status, body) = server
        .post(
            "/druid/v2",
            &json!({"queryType": "timeseries", "dataSource": "cpu", "intervals": "2016/2017",
        "aggregations": [{"type": "doubleSum", "name": "x", "fieldName": 7}]})
            .to_string(),
        )
        .unwrap();
    assert_eq!(status, 400);
    assert!(body.contains("aggregations[0].fieldName"), "{body}");
    let (status, _) = server
        .post("/druid/v2", &"x".repeat(17 * 1024 * 1024))
        .unwrap_or((413, String::new()));
    assert_eq!(status, 413);

    let (status, body) = server.get("/status/health").unwrap();
    assert_eq!((status, body.as_str()), (200, "true"));
}
