//! End-to-end: the HTTP API of the real `basalt serve` — Druid-shaped errors for bad requests
//! (and the server stays up after each), the SQL endpoint's request handling, `/metrics`,
//! datasource management, NDJSON ingest request handling, and native queries over data loaded
//! with `basalt load`.

#![allow(clippy::unwrap_used)]

use std::io::Write;

use basalt_tests::{HttpResponse, TestServer, load_rows, metric_value};
use serde_json::{Value, json};

const MINUTE: i64 = 60_000;
const T0: i64 = 1_451_606_400_000; // 2016-01-01T00:00:00Z
const HOSTS: i64 = 4;
const MINUTES: i64 = 120;

fn spec(name: &str) -> Value {
    json!({
        "dataSource": name,
        "timestampSpec": {"column": "ts", "format": "millis"},
        "dimensionsSpec": {"dimensions": ["host", "region"]},
        "metricsSpec": [
            {"type": "count", "name": "count"},
            {"type": "doubleSum", "name": "usage", "fieldName": "usage"}
        ],
        "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "minute", "rollup": true}
    })
}

/// One row per host and minute over two hours (no two rows roll up together).
fn rows() -> Vec<Value> {
    let mut out = Vec::new();
    for m in 0..MINUTES {
        for h in 0..HOSTS {
            out.push(json!({
                "ts": T0 + m * MINUTE,
                "host": format!("h{h}"),
                "region": if h < 2 { "eu" } else { "us" },
                "usage": usage(m, h),
            }));
        }
    }
    out
}

fn usage(m: i64, h: i64) -> f64 {
    ((m * 7 + h * 3) % 100) as f64 / 4.0
}

fn start_loaded() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    load_rows(dir.path(), &spec("cpu"), &rows());
    TestServer::start_in(dir)
}

/// Assert a Druid-shaped error with `status` whose message contains `needle`.
#[track_caller]
fn assert_druid_error(r: &HttpResponse, status: u16, needle: &str) {
    assert_eq!(r.status, status, "status of {}", r.text());
    let body = r.json();
    for key in ["error", "errorMessage", "errorClass", "host"] {
        assert!(body.get(key).is_some(), "`{key}` missing from {body}");
    }
    let msg = body["errorMessage"].as_str().unwrap_or("");
    assert!(msg.contains(needle), "{msg:?} does not contain {needle:?}");
}

fn post_json(s: &TestServer, path: &str, body: &str) -> HttpResponse {
    s.request("POST", path, &[], body.as_bytes()).unwrap()
}

fn timeseries(ds: &str) -> String {
    json!({
        "queryType": "timeseries", "dataSource": ds, "granularity": "all",
        "intervals": ["2016-01-01/2016-01-02"],
        "aggregations": [
            {"type": "longSum", "name": "rows", "fieldName": "count"},
            {"type": "doubleSum", "name": "usage", "fieldName": "usage"}
        ]
    })
    .to_string()
}

/// (method, path, headers, body, expected status, expected message fragment).
type Case<'a> = (
    &'a str,
    &'a str,
    Vec<(&'a str, &'a str)>,
    Vec<u8>,
    u16,
    &'a str,
);

#[test]
fn bad_requests_get_druid_errors_and_the_server_stays_up() {
    let mut s = start_loaded();
    let big = vec![b' '; 17 * 1024 * 1024];
    let cases: Vec<Case<'_>> = vec![
        // Malformed JSON.
        ("POST", "/druid/v2", vec![], b"{\"queryType\": ".to_vec(), 400, ""),
        ("POST", "/druid/v2/sql", vec![], b"{\"query\": ".to_vec(), 400, "malformed JSON"),
        ("POST", "/v1/datasources", vec![], b"[1, 2".to_vec(), 400, "malformed JSON"),
        // Unknown datasource.
        ("POST", "/druid/v2", vec![], timeseries("nope").into_bytes(), 404, "nope"),
        ("GET", "/druid/v2/datasources/nope", vec![], vec![], 404, "nope"),
        ("GET", "/v1/datasources/nope", vec![], vec![], 404, "nope"),
        ("DELETE", "/v1/datasources/nope", vec![], vec![], 404, "nope"),
        ("POST", "/v1/ingest/nope", vec![], b"{}\n".to_vec(), 404, "nope"),
        // Wrong types.
        (
            "POST",
            "/druid/v2",
            vec![],
            json!({"queryType": "topN", "dataSource": "cpu", "intervals": ["2016-01-01/2016-01-02"],
                   "granularity": "all", "dimension": "host", "metric": "n", "threshold": "ten",
                   "aggregations": [{"type": "count", "name": "n"}]})
            .to_string()
            .into_bytes(),
            400,
            "threshold",
        ),
        ("POST", "/druid/v2/sql", vec![], br#"{"query": 5}"#.to_vec(), 400, "field `query`"),
        (
            "POST",
            "/druid/v2/sql",
            vec![],
            br#"{"query": "SELECT 1", "header": "yes"}"#.to_vec(),
            400,
            "field `header`",
        ),
        // Unknown column.
        (
            "POST",
            "/druid/v2",
            vec![],
            json!({"queryType": "timeseries", "dataSource": "cpu", "granularity": "all",
                   "intervals": ["2016-01-01/2016-01-02"],
                   "aggregations": [{"type": "longSum", "name": "x", "fieldName": "missing"}]})
            .to_string()
            .into_bytes(),
            400,
            "unknown column `missing`",
        ),
        // Unsupported resultFormat, header flags without header.
        (
            "POST",
            "/druid/v2/sql",
            vec![],
            br#"{"query": "SELECT 1", "resultFormat": "xml"}"#.to_vec(),
            400,
            "unsupported result format \"xml\"",
        ),
        (
            "POST",
            "/druid/v2/sql",
            vec![],
            br#"{"query": "SELECT 1", "typesHeader": true}"#.to_vec(),
            400,
            "only be set when header is true",
        ),
        // Oversized body.
        ("POST", "/druid/v2", vec![], big, 413, "larger than the limit of 16777216 bytes"),
        // Unsupported body encoding for ingest.
        (
            "POST",
            "/v1/ingest/cpu",
            vec![("Content-Encoding", "br")],
            b"{}".to_vec(),
            415,
            "Content-Encoding",
        ),
        // Unknown route and method.
        ("GET", "/druid/v3", vec![], vec![], 404, "/druid/v3"),
        ("PUT", "/druid/v2", vec![], vec![], 405, "PUT"),
        // Bad interval in a path.
        ("DELETE", "/v1/datasources/cpu/intervals/yesterday", vec![], vec![], 400, "invalid interval"),
    ];
    for (method, path, headers, body, status, needle) in cases {
        let r = s.request(method, path, &headers, &body).unwrap();
        assert_druid_error(&r, status, needle);
        assert!(s.is_healthy(), "server down after {method} {path}");
    }

    // A gzip bomb: 300 MiB of zeros in well under a megabyte is refused after decompression
    // passes the 256 MiB bound.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![b'\n'; 1024 * 1024];
    for _ in 0..300 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 2 * 1024 * 1024);
    let r = s
        .request(
            "POST",
            "/v1/ingest/cpu",
            &[("Content-Encoding", "gzip")],
            &bomb,
        )
        .unwrap();
    assert_druid_error(
        &r,
        413,
        "decompressed request body is larger than the limit",
    );
    let r = s
        .request(
            "POST",
            "/v1/ingest/cpu",
            &[("Content-Encoding", "zstd")],
            b"not zstd",
        )
        .unwrap();
    assert_druid_error(&r, 400, "zstd");
    assert!(s.is_healthy());

    // And the data is still answered correctly.
    let r = post_json(&s, "/druid/v2", &timeseries("cpu"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()[0]["result"]["rows"], json!(HOSTS * MINUTES));
}

#[test]
fn native_queries_over_loaded_data() {
    let s = start_loaded();
    let expected: f64 = (0..MINUTES)
        .flat_map(|m| (0..HOSTS).map(move |h| usage(m, h)))
        .sum();
    let r = post_json(&s, "/druid/v2", &timeseries("cpu"));
    assert_eq!(r.status, 200, "{}", r.text());
    let result = &r.json()[0]["result"];
    assert_eq!(result["rows"], json!(HOSTS * MINUTES));
    assert!((result["usage"].as_f64().unwrap() - expected).abs() < 1e-6);

    // Per-region groupBy equals the sums computed here; `?pretty` keeps the same answer.
    let q = json!({
        "queryType": "groupBy", "dataSource": "cpu", "granularity": "all",
        "intervals": ["2016-01-01/2016-01-02"], "dimensions": ["region"],
        "aggregations": [{"type": "doubleSum", "name": "usage", "fieldName": "usage"}]
    })
    .to_string();
    let r = post_json(&s, "/druid/v2?pretty", &q);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("\n  "), "not pretty: {}", r.text());
    for row in r.json().as_array().unwrap() {
        let region = row["event"]["region"].as_str().unwrap();
        let want: f64 = (0..MINUTES)
            .flat_map(|m| (0..HOSTS).map(move |h| (m, h)))
            .filter(|&(_, h)| (h < 2) == (region == "eu"))
            .map(|(m, h)| usage(m, h))
            .sum();
        assert!((row["event"]["usage"].as_f64().unwrap() - want).abs() < 1e-6);
    }
}

/// SQL request handling that does not depend on the planner: validation, the query id header,
/// cancellation of unknown ids, and the error shape of a query the engine refuses.
#[test]
fn sql_endpoint_request_handling() {
    let s = start_loaded();
    let r = post_json(
        &s,
        "/druid/v2/sql",
        r#"{"query": "SELECT COUNT(*) AS n FROM cpu", "context": {"sqlQueryId": "my-query-1"}}"#,
    );
    assert_eq!(r.header("x-druid-sql-query-id"), Some("my-query-1"));
    if r.status != 200 {
        // The SQL planner is not in this build: the engine says so with a 400, Druid-shaped.
        assert_druid_error(&r, 400, "SQL");
        assert_eq!(
            r.json()["errorClass"],
            "org.apache.druid.query.QueryUnsupportedException"
        );
    }
    // A generated id when the context has none.
    let r = post_json(&s, "/druid/v2/sql", r#"{"query": "SELECT 1"}"#);
    let id = r.header("x-druid-sql-query-id").unwrap_or("");
    assert_eq!(id.len(), 36, "{:?}", r.headers);
    let r2 = post_json(&s, "/druid/v2/sql", r#"{"query": "SELECT 1"}"#);
    assert_ne!(r2.header("x-druid-sql-query-id"), Some(id));
    let r = post_json(
        &s,
        "/druid/v2/sql",
        r#"{"query": "SELECT 1", "context": {"sqlQueryId": 7}}"#,
    );
    assert_druid_error(&r, 400, "context.sqlQueryId");
    let r = post_json(&s, "/druid/v2/sql", r#"{"query": "  "}"#);
    assert_druid_error(&r, 400, "empty");
    let r = s
        .request("DELETE", "/druid/v2/sql/not-running", &[], b"")
        .unwrap();
    assert_druid_error(&r, 404, "not-running");
}

/// SQL answers in every result format.
#[test]
fn sql_result_formats() {
    let s = start_loaded();
    let probe = post_json(
        &s,
        "/druid/v2/sql",
        r#"{"query": "SELECT COUNT(*) AS n FROM cpu"}"#,
    );
    assert_eq!(probe.status, 200, "{}", probe.text());
    assert_eq!(probe.json(), json!([{"n": HOSTS * MINUTES}]));
    let query = "SELECT region, SUM(\"count\") AS n FROM cpu GROUP BY region ORDER BY region";
    let per_region = HOSTS / 2 * MINUTES;
    let ask = |extra: Value| {
        let mut body = json!({"query": query});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = post_json(&s, "/druid/v2/sql", &body.to_string());
        assert_eq!(r.status, 200, "{body}: {}", r.text());
        r
    };
    let r = ask(json!({}));
    assert_eq!(
        r.json(),
        json!([{"region": "eu", "n": per_region}, {"region": "us", "n": per_region}])
    );
    let r = ask(
        json!({"resultFormat": "array", "header": true, "typesHeader": true, "sqlTypesHeader": true}),
    );
    assert_eq!(
        r.json(),
        json!([
            ["region", "n"],
            ["STRING", "LONG"],
            ["VARCHAR", "BIGINT"],
            ["eu", per_region],
            ["us", per_region]
        ])
    );
    assert_eq!(r.header("x-druid-sql-header-included"), Some("yes"));
    let r = ask(json!({"resultFormat": "object", "header": true, "typesHeader": true}));
    assert_eq!(
        r.json()[0],
        json!({"region": {"type": "STRING"}, "n": {"type": "LONG"}})
    );
    let r = ask(json!({"resultFormat": "objectLines"}));
    assert_eq!(
        r.text(),
        format!(
            "{{\"region\":\"eu\",\"n\":{per_region}}}\n{{\"region\":\"us\",\"n\":{per_region}}}\n\n"
        )
    );
    let r = ask(json!({"resultFormat": "arrayLines"}));
    assert_eq!(
        r.text(),
        format!("[\"eu\",{per_region}]\n[\"us\",{per_region}]\n\n")
    );
    let r = ask(json!({"resultFormat": "csv", "header": true}));
    assert_eq!(
        r.text(),
        format!("region,n\neu,{per_region}\nus,{per_region}\n\n")
    );
    assert_eq!(r.header("content-type"), Some("text/csv"));
    // Parameters.
    let r = post_json(
        &s,
        "/druid/v2/sql",
        &json!({"query": "SELECT SUM(\"count\") AS n FROM cpu WHERE host = ?",
                "parameters": [{"type": "VARCHAR", "value": "h1"}]})
        .to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!([{"n": MINUTES}]));
}

#[test]
fn datasource_management_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    load_rows(dir.path(), &spec("cpu"), &rows());
    let s = TestServer::start_in(dir);

    // Create from a bare dataSchema and from {"dataSchema": …}.
    let r = post_json(&s, "/v1/datasources", &spec("events").to_string());
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["dataSource"], "events");
    let wrapped = json!({"dataSchema": spec("wrapped")}).to_string();
    let r = post_json(&s, "/v1/datasources", &wrapped);
    assert_eq!(r.status, 201, "{}", r.text());
    // Again: conflict.
    let r = post_json(&s, "/v1/datasources", &spec("events").to_string());
    assert_druid_error(&r, 409, "events");
    // Bad specs name the field.
    let mut no_name = spec("x");
    no_name.as_object_mut().unwrap().remove("dataSource");
    let r = post_json(&s, "/v1/datasources", &no_name.to_string());
    assert_druid_error(&r, 400, "dataSource");
    let mut bad_metric = spec("x");
    bad_metric["metricsSpec"] = json!([{"type": "longSum", "name": "m", "fieldName": 3}]);
    let r = post_json(&s, "/v1/datasources", &bad_metric.to_string());
    assert_druid_error(&r, 400, "metricsSpec");
    let r = post_json(&s, "/v1/datasources", &json!({"dataSchema": 5}).to_string());
    assert_druid_error(&r, 400, "dataSchema");
    let r = post_json(&s, "/v1/datasources", &spec("a/b").to_string());
    assert_druid_error(&r, 400, "a/b");

    // List: loaded and created ones, with counts.
    let list = s
        .request("GET", "/v1/datasources", &[], b"")
        .unwrap()
        .json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cpu", "events", "wrapped"]);
    assert_eq!(list[0]["rows"], json!(HOSTS * MINUTES));
    assert_eq!(list[0]["segments"], json!(2), "two hour segments: {list}");
    assert_eq!(list[1]["rows"], json!(0));

    // Describe: the spec and the segments.
    let cpu = s.request("GET", "/v1/datasources/cpu", &[], b"").unwrap();
    assert_eq!(cpu.status, 200, "{}", cpu.text());
    let cpu = cpu.json();
    assert_eq!(cpu["spec"]["dataSource"], "cpu");
    assert_eq!(cpu["totalRows"], json!(HOSTS * MINUTES));
    let segments = cpu["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 2);
    assert_eq!(
        segments[0]["interval"],
        "2016-01-01T00:00:00.000Z/2016-01-01T01:00:00.000Z"
    );
    assert_eq!(segments[0]["rows"], json!(HOSTS * 60));
    assert!(segments[0]["sizeBytes"].as_u64().unwrap() > 0);
    let events = s
        .request("GET", "/v1/datasources/events", &[], b"")
        .unwrap()
        .json();
    assert_eq!(events["spec"]["metricsSpec"][1]["name"], "usage");
    // The Druid endpoint sees the created datasource's columns.
    let (status, body) = s.get("/druid/v2/datasources/events").unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"dimensions": ["host", "region"], "metrics": ["count", "usage"]})
    );

    // Drop the first hour (`_` form), then the second (URL-encoded `/`): data goes with it.
    let r = s
        .request(
            "DELETE",
            "/v1/datasources/cpu/intervals/2016-01-01T00:00:00Z_2016-01-01T01:00:00Z",
            &[],
            b"",
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["droppedSegments"], json!(1));
    let r = post_json(&s, "/druid/v2", &timeseries("cpu"));
    assert_eq!(
        r.json()[0]["result"]["rows"],
        json!(HOSTS * 60),
        "{}",
        r.text()
    );
    let r = s
        .request(
            "DELETE",
            "/v1/datasources/cpu/intervals/2016-01-01T01:00:00Z%2F2016-01-01T02:00:00Z",
            &[],
            b"",
        )
        .unwrap();
    assert_eq!(r.json()["droppedSegments"], json!(1), "{}", r.text());

    // Drop whole datasources; they are gone afterwards.
    for name in ["cpu", "events"] {
        let r = s
            .request("DELETE", &format!("/v1/datasources/{name}"), &[], b"")
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let r = s
            .request("GET", &format!("/v1/datasources/{name}"), &[], b"")
            .unwrap();
        assert_druid_error(&r, 404, name);
    }
    let r = post_json(&s, "/druid/v2", &timeseries("cpu"));
    assert_druid_error(&r, 404, "cpu");
    let list = s
        .request("GET", "/v1/datasources", &[], b"")
        .unwrap()
        .json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

/// Push ingestion: the request is validated here; the push itself arrives with realtime
/// ingestion. Until then the endpoint answers 501; afterwards rows must be accepted and
/// queryable.
#[test]
fn ingest_endpoint() {
    let s = TestServer::start();
    let r = post_json(&s, "/v1/datasources", &spec("live").to_string());
    assert_eq!(r.status, 201, "{}", r.text());
    let body: String = rows()
        .iter()
        .take(40)
        .map(|r| format!("{r}\n"))
        .collect::<String>()
        + "{\"ts\": \"not a time\", \"host\": \"x\"}\n";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(body.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let zs = zstd::encode_all(body.as_bytes(), 3).unwrap();
    for (enc, bytes) in [
        ("identity", body.as_bytes()),
        ("gzip", &gz[..]),
        ("zstd", &zs[..]),
    ] {
        let r = s
            .request(
                "POST",
                "/v1/ingest/live",
                &[
                    ("Content-Encoding", enc),
                    ("Content-Type", "application/x-ndjson"),
                ],
                bytes,
            )
            .unwrap();
        assert_eq!(r.status, 200, "{enc}: {}", r.text());
        let report = r.json();
        assert_eq!(report["accepted"], json!(40), "{report}");
        assert_eq!(report["rejected"], json!(1), "{report}");
        // Rows are numbered from 0 (the 41st line).
        assert_eq!(report["errors"][0]["row"], json!(40), "{report}");
    }
}

#[test]
fn metrics_exposition_after_requests() {
    let s = start_loaded();
    for _ in 0..3 {
        assert_eq!(post_json(&s, "/druid/v2", &timeseries("cpu")).status, 200);
    }
    assert_eq!(post_json(&s, "/druid/v2", &timeseries("nope")).status, 404);
    let r = s.request("GET", "/metrics", &[], b"").unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("text/plain"),
        "{:?}",
        r.headers
    );
    let text = r.text();
    let value = |series: &str| metric_value(&text, series);
    assert_eq!(
        value(r#"basalt_http_requests_total{endpoint="/druid/v2",method="POST",status="200"}"#),
        3.0
    );
    assert_eq!(
        value(r#"basalt_http_requests_total{endpoint="/druid/v2",method="POST",status="404"}"#),
        1.0
    );
    assert_eq!(
        value(r#"basalt_http_request_duration_seconds_count{endpoint="/druid/v2",method="POST"}"#),
        4.0
    );
    assert!(text.contains("basalt_http_request_duration_seconds_bucket{endpoint=\"/druid/v2\""));
    // Three timeseries with granularity all: one result row each.
    assert_eq!(value(r#"basalt_query_rows_total{kind="native"}"#), 3.0);
    assert_eq!(
        value(r#"basalt_query_errors_total{kind="native",status="404"}"#),
        1.0
    );
    assert_eq!(value(r#"basalt_segments{datasource="cpu"}"#), 2.0);
    assert_eq!(
        value(r#"basalt_segment_rows{datasource="cpu"}"#),
        (HOSTS * MINUTES) as f64
    );
    let listed = s
        .request("GET", "/v1/datasources", &[], b"")
        .unwrap()
        .json();
    assert_eq!(
        value(r#"basalt_segment_bytes{datasource="cpu"}"#),
        listed[0]["sizeBytes"].as_f64().unwrap()
    );
    assert!(text.contains("# TYPE basalt_http_requests_total counter"));
}
