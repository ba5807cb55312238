//! End-to-end: the gRPC API (`basalt.v1`) of the real `basalt serve`, driven by a tonic client:
//! admin calls, native and SQL queries as Arrow IPC, standard health checking and reflection,
//! error statuses, and the `basalt sql` / `basalt query` CLI clients.

#![allow(clippy::unwrap_used)]

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use basalt_engine::schema::DataSchema;
use basalt_engine::segment::{SegmentId, SegmentWriter};
use basalt_engine::storage::DataDir;
use basalt_engine::time::Interval;
use basalt_proto::v1::admin_service_client::AdminServiceClient;
use basalt_proto::v1::query_service_client::QueryServiceClient;
use basalt_proto::v1::{
    CreateDatasourceRequest, DropDatasourceRequest, DropIntervalRequest, GetDatasourceRequest,
    HealthRequest, ListDatasourcesRequest, ListSegmentsRequest, NativeQueryRequest,
    SqlQueryRequest,
};
use basalt_tests::{TestServer, run_basalt};
use serde_json::json;
use tonic::Code;
use tonic::transport::Channel;

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_451_606_400_000; // 2016-01-01T00:00:00Z

/// Two hourly segments of `cpu`: 600 rows each, hosts h0..h3, usage = 1.0 per row.
fn load(dir: &std::path::Path) {
    let data = DataDir::open(dir).unwrap();
    let schema = DataSchema::from_value(&json!({
        "dataSource": "cpu",
        "timestampSpec": {"column": "ts", "format": "millis"},
        "dimensionsSpec": {"dimensions": ["host"]},
        "metricsSpec": [{"type": "count", "name": "count"}, {"type": "doubleSum", "name": "usage", "fieldName": "usage"}],
        "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none", "rollup": false}
    }))
    .unwrap();
    data.catalog()
        .create_datasource("cpu", &schema.to_json().to_string())
        .unwrap();
    let version = data.allocate_version("cpu").unwrap();
    for h in 0..2 {
        let iv = Interval::new(T0 + h * HOUR, T0 + (h + 1) * HOUR).unwrap();
        let mut w = SegmentWriter::new(&schema, iv).unwrap();
        for i in 0..600i64 {
            let row =
                json!({"ts": iv.start + i * 6000, "host": format!("h{}", i % 4), "usage": 1.0});
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
}

async fn channel(server: &TestServer) -> Channel {
    tonic::transport::Endpoint::from_shared(server.grpc_url())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// Collect a query stream into record batches.
async fn collect(
    mut stream: tonic::Streaming<basalt_proto::v1::QueryResponse>,
) -> (String, Vec<RecordBatch>) {
    let mut bytes = Vec::new();
    let mut id = String::new();
    while let Some(m) = stream.message().await.unwrap() {
        if id.is_empty() {
            id = m.query_id.clone();
        }
        bytes.extend_from_slice(&m.arrow_ipc);
    }
    let reader =
        arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
    (id, reader.collect::<Result<Vec<_>, _>>().unwrap())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn admin_service_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    load(dir.path());
    let server = TestServer::start_in(dir);
    runtime().block_on(async {
        let mut admin = AdminServiceClient::new(channel(&server).await);

        let health = admin.health(HealthRequest {}).await.unwrap().into_inner();
        assert!(health.healthy);

        let list = admin
            .list_datasources(ListDatasourcesRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(list.datasources.len(), 1);
        assert_eq!(list.datasources[0].name, "cpu");
        assert_eq!(list.datasources[0].segments, 2);
        assert_eq!(list.datasources[0].rows, 1200);

        // Create a datasource (wrapped form) and read it back.
        let spec = json!({"dataSchema": {"dataSource": "events",
            "timestampSpec": {"column": "t", "format": "auto"},
            "dimensionsSpec": {"dimensions": ["kind"]},
            "metricsSpec": [{"type": "count", "name": "n"}]}});
        let created = admin
            .create_datasource(CreateDatasourceRequest {
                spec_json: spec.to_string(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(created.name, "events");
        assert_eq!(created.segments, 0);
        let got = admin
            .get_datasource(GetDatasourceRequest {
                name: "events".into(),
            })
            .await
            .unwrap()
            .into_inner();
        let got_spec: serde_json::Value = serde_json::from_str(&got.spec_json).unwrap();
        assert_eq!(got_spec["dataSource"], "events");

        // Errors: duplicate, bad spec naming the field, unknown datasource.
        let e = admin
            .create_datasource(CreateDatasourceRequest {
                spec_json: spec.to_string(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
        let e = admin
            .create_datasource(CreateDatasourceRequest {
                spec_json: json!({"dataSource": "x", "timestampSpec": {"column": "t"},
                    "dimensionsSpec": {"dimensions": []},
                    "metricsSpec": [{"type": "longSum", "name": "m"}]})
                .to_string(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(e.message().contains("fieldName"), "{}", e.message());
        let e = admin
            .create_datasource(CreateDatasourceRequest {
                spec_json: "{oops".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        let e = admin
            .get_datasource(GetDatasourceRequest {
                name: "nope".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound);

        // Segments, dropping an interval, dropping a datasource.
        let segs = admin
            .list_segments(ListSegmentsRequest {
                datasource: "cpu".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(segs.segments.len(), 2);
        assert_eq!(segs.segments[0].id.as_ref().unwrap().start_ms, T0);
        assert_eq!(segs.segments[0].num_rows, 600);
        let dropped = admin
            .drop_interval(DropIntervalRequest {
                datasource: "cpu".into(),
                interval: "2016-01-01T01:00:00Z/2016-01-01T02:00:00Z".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(dropped.segments_dropped, 1);
        let e = admin
            .drop_interval(DropIntervalRequest {
                datasource: "cpu".into(),
                interval: "yesterday".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        let cpu = admin
            .get_datasource(GetDatasourceRequest { name: "cpu".into() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!((cpu.segments, cpu.rows), (1, 600));
        admin
            .drop_datasource(DropDatasourceRequest {
                name: "events".into(),
            })
            .await
            .unwrap();
        let e = admin
            .drop_datasource(DropDatasourceRequest {
                name: "events".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
    });
    let status = server.stop();
    assert!(status.success(), "{status:?}");
}

#[test]
fn health_checking_and_reflection() {
    let server = TestServer::start();
    runtime().block_on(async {
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::health_client::HealthClient;
        let mut health = HealthClient::new(channel(&server).await);
        for service in ["", "basalt.v1.QueryService", "basalt.v1.AdminService"] {
            let r = health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(r.status(), ServingStatus::Serving, "{service}");
        }

        use tokio_stream::StreamExt;
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
        let mut reflection = ServerReflectionClient::new(channel(&server).await);
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses = reflection
            .server_reflection_info(tokio_stream::iter(vec![req]))
            .await
            .unwrap()
            .into_inner();
        let first = responses.next().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
            panic!("unexpected reflection answer {first:?}");
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        for expected in [
            "basalt.v1.QueryService",
            "basalt.v1.AdminService",
            "grpc.health.v1.Health",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} not in {names:?}"
            );
        }
    });
}

#[test]
fn native_queries_stream_arrow() {
    let dir = tempfile::tempdir().unwrap();
    load(dir.path());
    let server = TestServer::start_in(dir);
    runtime().block_on(async {
        let mut query = QueryServiceClient::new(channel(&server).await);
        let q = json!({"queryType": "topN", "dataSource": "cpu",
            "intervals": ["2016-01-01/2016-01-02"], "granularity": "all",
            "dimension": "host", "metric": "rows", "threshold": 3,
            "aggregations": [{"type": "longSum", "name": "rows", "fieldName": "count"}],
            "context": {"queryId": "my-topn"}});
        let stream = query
            .native(NativeQueryRequest {
                query_json: q.to_string(),
            })
            .await
            .unwrap()
            .into_inner();
        let (id, batches) = collect(stream).await;
        assert_eq!(id, "my-topn");
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 3);
        let b = &batches[0];
        let schema = b.schema();
        let rows_col = schema.index_of("rows").unwrap();
        let values = b.column(rows_col).as_primitive::<Int64Type>();
        assert_eq!(values.value(0), 300);
        assert!(schema.index_of("host").is_ok());

        // A bigger result spans several batches and arrives whole.
        let scan = json!({"queryType": "scan", "dataSource": "cpu",
            "intervals": ["2016-01-01/2016-01-02"], "columns": ["__time", "host", "usage"]});
        let stream = query
            .native(NativeQueryRequest {
                query_json: scan.to_string(),
            })
            .await
            .unwrap()
            .into_inner();
        let (id, batches) = collect(stream).await;
        assert!(!id.is_empty(), "a query id is generated");
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1200);

        // A deadline that has passed before the query can run: the call ends with
        // DEADLINE_EXCEEDED (or CANCELLED, as the transport reports an expired timer), and the
        // server goes on answering.
        let mut req = tonic::Request::new(NativeQueryRequest {
            query_json: scan.to_string(),
        });
        req.set_timeout(std::time::Duration::from_nanos(1));
        let e = query.native(req).await.unwrap_err();
        assert!(
            matches!(e.code(), Code::DeadlineExceeded | Code::Cancelled),
            "{e:?}"
        );
        // A query whose own context timeout is tiny fails with DEADLINE_EXCEEDED from the
        // engine.
        let mut slow = scan.clone();
        slow["context"] = json!({"timeout": 1});
        let mut ok_or_timeout = 0;
        for _ in 0..3 {
            match query
                .native(NativeQueryRequest {
                    query_json: slow.to_string(),
                })
                .await
            {
                Ok(_) => ok_or_timeout += 1,
                Err(e) => {
                    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
                    ok_or_timeout += 1;
                }
            }
        }
        assert_eq!(ok_or_timeout, 3);

        // Errors map to statuses that name the problem.
        for (text, code, needle) in [
            ("{nope", Code::InvalidArgument, "JSON"),
            (r#"{"queryType":"bogus","dataSource":"cpu"}"#, Code::InvalidArgument, "bogus"),
            (
                r#"{"queryType":"timeseries","dataSource":"nope","intervals":["2016/2017"],"granularity":"all"}"#,
                Code::NotFound,
                "nope",
            ),
        ] {
            let e = query
                .native(NativeQueryRequest {
                    query_json: text.into(),
                })
                .await
                .unwrap_err();
            assert_eq!(e.code(), code, "{text}: {e:?}");
            assert!(e.message().contains(needle), "{text}: {}", e.message());
        }
    });

    // The CLI client over gRPC.
    let file = server.data_dir.path().join("q.json");
    std::fs::write(
        &file,
        json!({"queryType": "timeseries", "dataSource": "cpu", "intervals": ["2016-01-01/2016-01-02"],
            "granularity": "hour", "aggregations": [{"type": "longSum", "name": "rows", "fieldName": "count"}]})
        .to_string(),
    )
    .unwrap();
    let url = server.grpc_url();
    let (code, out, err) = run_basalt(&[
        "query",
        file.to_str().unwrap(),
        "--server",
        &url,
        "--format",
        "csv",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "__time,rows\n2016-01-01T00:00:00.000Z,600\n2016-01-01T01:00:00.000Z,600\n"
    );
    let (code, out, err) = run_basalt(&["query", file.to_str().unwrap(), "--server", &url]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("(2 rows)"), "{out}");
    let (code, _, err) = run_basalt(&["query", "/no/such/file.json", "--server", &url]);
    assert_ne!(code, 0);
    assert!(err.contains("/no/such/file.json"), "{err}");
    let (code, _, err) = run_basalt(&[
        "query",
        file.to_str().unwrap(),
        "--server",
        "http://127.0.0.1:1",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("cannot connect"), "{err}");
}

#[test]
fn sql_over_grpc_and_cli() {
    let dir = tempfile::tempdir().unwrap();
    load(dir.path());
    let server = TestServer::start_in(dir);
    runtime().block_on(async {
        let mut query = QueryServiceClient::new(channel(&server).await);
        let stream = query
            .sql(SqlQueryRequest {
                query: "SELECT host, COUNT(*) AS n, SUM(usage) AS u FROM cpu WHERE host <> ? GROUP BY host ORDER BY host".into(),
                parameters: vec![basalt_proto::v1::SqlParameter {
                    r#type: "VARCHAR".into(),
                    value_json: "\"h3\"".into(),
                }],
                context_json: r#"{"sqlQueryId":"q-1"}"#.into(),
            })
            .await
            .unwrap()
            .into_inner();
        let (id, batches) = collect(stream).await;
        assert_eq!(id, "q-1");
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
        let n = batches[0].column(1).as_primitive::<Int64Type>();
        assert_eq!((n.value(0), n.value(2)), (300, 300));

        let e = query
            .sql(SqlQueryRequest {
                query: "SELECT * FROM cpu a JOIN cpu b ON a.host = b.host".into(),
                parameters: vec![],
                context_json: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unimplemented, "{e:?}");
        assert!(e.message().to_lowercase().contains("join"), "{}", e.message());
    });
    let url = server.grpc_url();
    let (code, out, err) = run_basalt(&[
        "sql",
        "SELECT COUNT(*) AS n FROM cpu WHERE host = ?",
        "--param",
        "VARCHAR:h1",
        "--server",
        &url,
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v, json!([{"n": 300}]));
}
