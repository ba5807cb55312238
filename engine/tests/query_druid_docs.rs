//! Golden tests for the example queries of Apache Druid's native query documentation
//! (`docs/querying/*.md` in apache/druid): timeseries, topN (and its metric specs), groupBy
//! (and the granularity examples), timeBoundary, segmentMetadata, search, scan and
//! dataSourceMetadata.
//!
//! Each test builds a small datasource whose rows make the documented example meaningful (the
//! example's dataSource name, dimensions and metrics), runs the documented query JSON nearly
//! verbatim and checks that the response has the documented shape, with values worked out by
//! hand from the rows (see the comments next to each row set). Where Basalt cannot run a part of
//! an example, or where the documentation's sample output is inconsistent with its own query or
//! with Druid's behaviour, a comment says so.

#![allow(clippy::unwrap_used)]

use basalt_engine::engine::Engine;
use basalt_engine::schema::DataSchema;
use basalt_engine::segment::{SegmentId, SegmentWriter, Version};
use basalt_engine::time::Interval;
use serde_json::{Value, json};

/// A fixed segment version, so segment ids are known in advance: 2013-01-10T08:13:47.830Z
/// (the version in the scan documentation's sample segment id), in microseconds.
const VERSION: Version = Version(1_357_805_627_830_000);
/// How Basalt prints [`VERSION`] in a segment id (microsecond precision).
const VERSION_TEXT: &str = "2013-01-10T08:13:47.830000Z";

/// A data directory with an engine over it (the directory lives as long as the fixture).
struct Fixture {
    _dir: tempfile::TempDir,
    engine: Engine,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        Fixture { _dir: dir, engine }
    }

    /// Create `datasource` with the given dimensions and metrics (rollup off, query
    /// granularity none, ISO `timestamp` column) and publish one segment per
    /// `(interval, rows)`.
    fn datasource(
        self,
        datasource: &str,
        dimensions: Value,
        metrics: Value,
        segments: &[(&str, Vec<Value>)],
    ) -> Fixture {
        let schema = DataSchema::from_value(&json!({
            "dataSource": datasource,
            "timestampSpec": {"column": "timestamp", "format": "iso"},
            "dimensionsSpec": {"dimensions": dimensions},
            "metricsSpec": metrics,
            "granularitySpec": {"segmentGranularity": "day", "queryGranularity": "none", "rollup": false}
        }))
        .unwrap();
        self.engine
            .data_dir()
            .catalog()
            .create_datasource(datasource, &schema.to_json().to_string())
            .unwrap();
        let mut staged = Vec::new();
        for (interval, rows) in segments {
            let interval = Interval::parse(interval).unwrap();
            let mut w = SegmentWriter::new(&schema, interval).unwrap();
            for r in rows {
                w.push_json(r.as_object().unwrap()).unwrap();
            }
            let path = self.engine.data_dir().staging_path().unwrap();
            let stats = w.finish(&path).unwrap();
            assert_eq!(stats.rows_out, rows.len() as u64, "rollup is off");
            let id = SegmentId {
                datasource: datasource.into(),
                interval,
                version: VERSION,
                partition: 0,
            };
            staged.push((id, path, stats.rows_out));
        }
        self.engine.data_dir().publish(staged, None).unwrap();
        self
    }

    fn query(&self, q: Value) -> Value {
        self.engine
            .query_json(&q.to_string())
            .unwrap_or_else(|e| panic!("{e}\nquery: {q}"))
    }
}

// ---------------------------------------------------------------------------------------------
// Timeseries (docs/querying/timeseriesquery.md)
// ---------------------------------------------------------------------------------------------

/// `sample_datasource` for the timeseries examples.
///
/// | time | dim1 | dim2 | dim3 | f1 | f2 | matches the example's filter |
/// |---|---|---|---|---|---|---|
/// | 01-01 00:00 | sample_value1 | sample_value2 | x | 10 | 2.5 | yes (dim2) |
/// | 01-01 06:00 | sample_value1 | y | sample_value3 | 5 | 1.5 | yes (dim3) |
/// | 01-01 12:00 | sample_value1 | y | x | 100 | 100.0 | no (neither dim2 nor dim3) |
/// | 01-01 18:00 | other | sample_value2 | sample_value3 | 1000 | 1000.0 | no (dim1) |
/// | 01-02 03:00 | sample_value1 | sample_value2 | sample_value3 | 7 | 0.5 | yes |
/// | 01-02 09:00 | sample_value1 | (null) | sample_value3 | 2 | 1.5 | yes (dim3) |
/// | 01-02 15:00 | (null) | sample_value2 | x | 50 | 50.0 | no (dim1 null) |
/// | 01-03 00:00 | sample_value1 | sample_value2 | sample_value3 | 999 | 999.0 | outside the interval |
fn timeseries_fixture() -> Fixture {
    let row = |t: &str, d1: Option<&str>, d2: Option<&str>, d3: &str, f1: i64, f2: f64| {
        let mut r = json!({"timestamp": t, "sample_dimension3": d3,
            "sample_fieldName1": f1, "sample_fieldName2": f2});
        if let Some(d1) = d1 {
            r["sample_dimension1"] = json!(d1);
        }
        if let Some(d2) = d2 {
            r["sample_dimension2"] = json!(d2);
        }
        r
    };
    let (v1, v2, v3) = ("sample_value1", "sample_value2", "sample_value3");
    Fixture::new().datasource(
        "sample_datasource",
        json!([
            "sample_dimension1",
            "sample_dimension2",
            "sample_dimension3"
        ]),
        json!([
            {"type": "longSum", "name": "sample_fieldName1", "fieldName": "sample_fieldName1"},
            {"type": "doubleSum", "name": "sample_fieldName2", "fieldName": "sample_fieldName2"}
        ]),
        &[
            (
                "2012-01-01/2012-01-02",
                vec![
                    row("2012-01-01T00:00:00Z", Some(v1), Some(v2), "x", 10, 2.5),
                    row("2012-01-01T06:00:00Z", Some(v1), Some("y"), v3, 5, 1.5),
                    row("2012-01-01T12:00:00Z", Some(v1), Some("y"), "x", 100, 100.0),
                    row(
                        "2012-01-01T18:00:00Z",
                        Some("other"),
                        Some(v2),
                        v3,
                        1000,
                        1000.0,
                    ),
                ],
            ),
            (
                "2012-01-02/2012-01-03",
                vec![
                    row("2012-01-02T03:00:00Z", Some(v1), Some(v2), v3, 7, 0.5),
                    row("2012-01-02T09:00:00Z", Some(v1), None, v3, 2, 1.5),
                    row("2012-01-02T15:00:00Z", None, Some(v2), "x", 50, 50.0),
                ],
            ),
            (
                "2012-01-03/2012-01-04",
                vec![row(
                    "2012-01-03T00:00:00Z",
                    Some(v1),
                    Some(v2),
                    v3,
                    999,
                    999.0,
                )],
            ),
        ],
    )
}

#[test]
fn timeseries_example() {
    let f = timeseries_fixture();
    // The documented query, verbatim (note `"descending": "true"` is a string).
    let r = f.query(json!({
      "queryType": "timeseries",
      "dataSource": "sample_datasource",
      "granularity": "day",
      "descending": "true",
      "filter": {
        "type": "and",
        "fields": [
          { "type": "selector", "dimension": "sample_dimension1", "value": "sample_value1" },
          { "type": "or",
            "fields": [
              { "type": "selector", "dimension": "sample_dimension2", "value": "sample_value2" },
              { "type": "selector", "dimension": "sample_dimension3", "value": "sample_value3" }
            ]
          }
        ]
      },
      "aggregations": [
        { "type": "longSum", "name": "sample_name1", "fieldName": "sample_fieldName1" },
        { "type": "doubleSum", "name": "sample_name2", "fieldName": "sample_fieldName2" }
      ],
      "postAggregations": [
        { "type": "arithmetic",
          "name": "sample_divide",
          "fn": "/",
          "fields": [
            { "type": "fieldAccess", "name": "postAgg__sample_name1", "fieldName": "sample_name1" },
            { "type": "fieldAccess", "name": "postAgg__sample_name2", "fieldName": "sample_name2" }
          ]
        }
      ],
      "intervals": [ "2012-01-01T00:00:00.000/2012-01-03T00:00:00.000" ]
    }));
    // Two data points, one per day. The documentation lists them oldest first, but the query
    // asks for `descending`, which Druid honours: newest first.
    // 01-01: rows 1, 2 -> 10 + 5 = 15, 2.5 + 1.5 = 4.0, 15 / 4.0 = 3.75.
    // 01-02: rows 5, 6 -> 7 + 2 = 9, 0.5 + 1.5 = 2.0, 9 / 2.0 = 4.5.
    assert_eq!(
        r,
        json!([
          {
            "timestamp": "2012-01-02T00:00:00.000Z",
            "result": { "sample_name1": 9, "sample_name2": 2.0, "sample_divide": 4.5 }
          },
          {
            "timestamp": "2012-01-01T00:00:00.000Z",
            "result": { "sample_name1": 15, "sample_name2": 4.0, "sample_divide": 3.75 }
          }
        ])
    );

    // The same query ascending gives the documented order.
    let mut q = json!({
      "queryType": "timeseries", "dataSource": "sample_datasource", "granularity": "day",
      "filter": {"type": "and", "fields": [
          {"type": "selector", "dimension": "sample_dimension1", "value": "sample_value1"},
          {"type": "or", "fields": [
              {"type": "selector", "dimension": "sample_dimension2", "value": "sample_value2"},
              {"type": "selector", "dimension": "sample_dimension3", "value": "sample_value3"}]}]},
      "aggregations": [{"type": "longSum", "name": "sample_name1", "fieldName": "sample_fieldName1"}],
      "intervals": ["2012-01-01T00:00:00.000/2012-01-03T00:00:00.000"]
    });
    let asc = json!([
        {"timestamp": "2012-01-01T00:00:00.000Z", "result": {"sample_name1": 15}},
        {"timestamp": "2012-01-02T00:00:00.000Z", "result": {"sample_name1": 9}}
    ]);
    assert_eq!(f.query(q.clone()), asc);
    q["descending"] = json!(false);
    assert_eq!(f.query(q), asc);
}

/// The "Grand totals" example: `"grandTotal": true` in the context adds a last row without a
/// timestamp holding the totals over all buckets.
#[test]
fn timeseries_grand_total_example() {
    let f = timeseries_fixture();
    let r = f.query(json!({
      "queryType": "timeseries",
      "dataSource": "sample_datasource",
      "intervals": [ "2012-01-01T00:00:00.000/2012-01-03T00:00:00.000" ],
      "granularity": "day",
      "aggregations": [
        { "type": "longSum", "name": "sample_name1", "fieldName": "sample_fieldName1" },
        { "type": "doubleSum", "name": "sample_name2", "fieldName": "sample_fieldName2" }
      ],
      "context": {
        "grandTotal": true
      }
    }));
    // No filter: 01-01 sums rows 1-4, 01-02 rows 5-7.
    // sample_name1: 10 + 5 + 100 + 1000 = 1115; 7 + 2 + 50 = 59; total 1174.
    // sample_name2: 2.5 + 1.5 + 100 + 1000 = 1104.0; 0.5 + 1.5 + 50 = 52.0; total 1156.0.
    let rows = r.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{r}");
    assert_eq!(
        rows[..2],
        [
            json!({"timestamp": "2012-01-01T00:00:00.000Z", "result": {"sample_name1": 1115, "sample_name2": 1104.0}}),
            json!({"timestamp": "2012-01-02T00:00:00.000Z", "result": {"sample_name1": 59, "sample_name2": 52.0}}),
        ]
    );
    // The totals row carries no timestamp (Druid serializes it as null).
    let total = rows[2].as_object().unwrap();
    assert!(total.get("timestamp").is_none_or(Value::is_null), "{r}");
    assert_eq!(
        total["result"],
        json!({"sample_name1": 1174, "sample_name2": 1156.0})
    );
}

/// The timeseries `limit` property caps the number of result rows.
#[test]
fn timeseries_limit() {
    let f = timeseries_fixture();
    let r = f.query(json!({
      "queryType": "timeseries", "dataSource": "sample_datasource", "granularity": "day",
      "intervals": ["2012-01-01/2012-01-04"], "limit": 2,
      "aggregations": [{"type": "longSum", "name": "sample_name1", "fieldName": "sample_fieldName1"}]
    }));
    assert_eq!(
        r,
        json!([
            {"timestamp": "2012-01-01T00:00:00.000Z", "result": {"sample_name1": 1115}},
            {"timestamp": "2012-01-02T00:00:00.000Z", "result": {"sample_name1": 59}}
        ])
    );
}

/// `sample_datasource` for the "Empty bucket values" examples: data on 2012-01-01 and
/// 2012-01-03 only, both in one segment (a month chunk), so 2012-01-02 is an empty bucket
/// inside the data interval.
fn empty_bucket_fixture() -> Fixture {
    Fixture::new().datasource(
        "sample_datasource",
        json!(["sample_dimension1"]),
        json!([{"type": "longSum", "name": "sample_fieldName1", "fieldName": "sample_fieldName1"}]),
        &[(
            "2012-01-01/2012-02-01",
            vec![
                json!({"timestamp": "2012-01-01T00:00:00Z", "sample_dimension1": "a", "sample_fieldName1": 3}),
                json!({"timestamp": "2012-01-01T05:00:00Z", "sample_dimension1": "b", "sample_fieldName1": 4}),
                json!({"timestamp": "2012-01-03T23:00:00Z", "sample_dimension1": "a", "sample_fieldName1": 6}),
            ],
        )],
    )
}

#[test]
fn timeseries_empty_bucket_examples() {
    let f = empty_bucket_fixture();
    // The documented day/SUM query over 2012-01-01/2012-01-04 (the documentation describes it
    // but does not spell it out; it is the skipEmptyBuckets example without the context).
    let r = f.query(json!({
      "queryType": "timeseries",
      "dataSource": "sample_datasource",
      "granularity": "day",
      "aggregations": [
        { "type": "longSum", "name": "sample_name1", "fieldName": "sample_fieldName1" }
      ],
      "intervals": [ "2012-01-01T00:00:00.000/2012-01-04T00:00:00.000" ]
    }));
    // 01-01: 3 + 4 = 7; 01-02 empty: null (SQL-compatible null handling; Druid's docs print
    // it as NULL); 01-03: 6.
    assert_eq!(
        r,
        json!([
          { "timestamp": "2012-01-01T00:00:00.000Z", "result": { "sample_name1": 7 } },
          { "timestamp": "2012-01-02T00:00:00.000Z", "result": { "sample_name1": null } },
          { "timestamp": "2012-01-03T00:00:00.000Z", "result": { "sample_name1": 6 } }
        ])
    );

    // The skipEmptyBuckets example, verbatim (the flag is the string "true").
    let r = f.query(json!({
      "queryType": "timeseries",
      "dataSource": "sample_datasource",
      "granularity": "day",
      "aggregations": [
        { "type": "longSum", "name": "sample_name1", "fieldName": "sample_fieldName1" }
      ],
      "intervals": [ "2012-01-01T00:00:00.000/2012-01-04T00:00:00.000" ],
      "context" : {
        "skipEmptyBuckets": "true"
      }
    }));
    assert_eq!(
        r,
        json!([
          { "timestamp": "2012-01-01T00:00:00.000Z", "result": { "sample_name1": 7 } },
          { "timestamp": "2012-01-03T00:00:00.000Z", "result": { "sample_name1": 6 } }
        ])
    );
}

/// Empty buckets are filled only inside the data's time range, not in the parts of the query
/// interval wholly outside it (timeseriesquery.md, "Empty bucket values"). The data spans 2012-01-01T00:00 to 2012-01-03T23:00; a query over 2011-12-31/2012-01-05
/// has empty buckets 2011-12-31 and 2012-01-04 outside it (not filled) and 2012-01-02 inside
/// it (filled).
#[test]
fn timeseries_does_not_fill_buckets_outside_the_data_interval() {
    let f = empty_bucket_fixture();
    let r = f.query(json!({
      "queryType": "timeseries", "dataSource": "sample_datasource", "granularity": "day",
      "aggregations": [{"type": "longSum", "name": "sample_name1", "fieldName": "sample_fieldName1"}],
      "intervals": ["2011-12-31/2012-01-05"]
    }));
    assert_eq!(
        r,
        json!([
          { "timestamp": "2012-01-01T00:00:00.000Z", "result": { "sample_name1": 7 } },
          { "timestamp": "2012-01-02T00:00:00.000Z", "result": { "sample_name1": null } },
          { "timestamp": "2012-01-03T00:00:00.000Z", "result": { "sample_name1": 6 } }
        ])
    );
}

// ---------------------------------------------------------------------------------------------
// TopN (docs/querying/topnquery.md, docs/querying/topnmetricspec.md)
// ---------------------------------------------------------------------------------------------

/// `sample_data`, built so that the documented topN query returns exactly the documented
/// numbers. Rows matching the filter (dim1 = some_value and dim2 = some_other_val), by
/// `sample_dim` value: (rows, sum of some_metric)
///
/// - dim1_val: 111 rows, 110 x 96 + 109 = 10669
/// - another_dim1_val: 88 rows, 87 x 322 + 330 = 28344
/// - dim1_val3: 70 rows, 69 x 12 + 43 = 871
/// - dim1_val4: 62 rows, 61 x 13 + 22 = 815
/// - dim1_val5: 60 rows, 59 x 46 + 73 = 2787
/// - dim1_val6: 59 rows, 59 x 1 = 59 (sixth: cut by the threshold of 5)
///
/// Rows not matching: 200 rows `filtered_dim1` (dim1 = other), 10 rows `dim1_val5` with
/// dim2 = other (would make it 70 rows), and 300 rows `late_val` on 2013-09-03 (outside the
/// interval). Matching rows cycle over the three days 2013-08-31 .. 2013-09-02; the first is at
/// 2013-08-31T00:00:00Z.
fn topn_fixture() -> Fixture {
    let groups: [(&str, &str, &str, usize, f64, f64); 9] = [
        // (sample_dim, dim1, dim2, rows, metric of all but the last row, metric of the last)
        ("dim1_val", "some_value", "some_other_val", 111, 96.0, 109.0),
        (
            "another_dim1_val",
            "some_value",
            "some_other_val",
            88,
            322.0,
            330.0,
        ),
        ("dim1_val3", "some_value", "some_other_val", 70, 12.0, 43.0),
        ("dim1_val4", "some_value", "some_other_val", 62, 13.0, 22.0),
        ("dim1_val5", "some_value", "some_other_val", 60, 46.0, 73.0),
        ("dim1_val6", "some_value", "some_other_val", 59, 1.0, 1.0),
        (
            "filtered_dim1",
            "other",
            "some_other_val",
            200,
            1000.0,
            1000.0,
        ),
        ("dim1_val5", "some_value", "other", 10, 1000.0, 1000.0),
        (
            "late_val",
            "some_value",
            "some_other_val",
            300,
            1000.0,
            1000.0,
        ),
    ];
    let mut days: Vec<Vec<Value>> = vec![Vec::new(); 4];
    let mut n = 0usize;
    for (dim, d1, d2, rows, metric, last) in groups {
        for i in 0..rows {
            let day = if dim == "late_val" { 3 } else { n % 3 };
            let secs = n % 86_400;
            let date = ["2013-08-31", "2013-09-01", "2013-09-02", "2013-09-03"][day];
            let t = format!(
                "{date}T{:02}:{:02}:{:02}Z",
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            );
            let m = if i + 1 == rows { last } else { metric };
            days[day].push(json!({"timestamp": t, "sample_dim": dim, "dim1": d1, "dim2": d2, "some_metric": m}));
            n += 1;
        }
    }
    let ivs = [
        "2013-08-31/2013-09-01",
        "2013-09-01/2013-09-02",
        "2013-09-02/2013-09-03",
        "2013-09-03/2013-09-04",
    ];
    let segments: Vec<(&str, Vec<Value>)> = ivs.into_iter().zip(days).collect();
    Fixture::new().datasource(
        "sample_data",
        json!(["sample_dim", "dim1", "dim2"]),
        json!([
            {"type": "count", "name": "count"},
            {"type": "doubleSum", "name": "some_metric", "fieldName": "some_metric"}
        ]),
        &segments,
    )
}

#[test]
fn topn_example() {
    let f = topn_fixture();
    let r = f.query(json!({
      "queryType": "topN",
      "dataSource": "sample_data",
      "dimension": "sample_dim",
      "threshold": 5,
      "metric": "count",
      "granularity": "all",
      "filter": {
        "type": "and",
        "fields": [
          {
            "type": "selector",
            "dimension": "dim1",
            "value": "some_value"
          },
          {
            "type": "selector",
            "dimension": "dim2",
            "value": "some_other_val"
          }
        ]
      },
      "aggregations": [
        {
          "type": "longSum",
          "name": "count",
          "fieldName": "count"
        },
        {
          "type": "doubleSum",
          "name": "some_metric",
          "fieldName": "some_metric"
        }
      ],
      "postAggregations": [
        {
          "type": "arithmetic",
          "name": "average",
          "fn": "/",
          "fields": [
            {
              "type": "fieldAccess",
              "name": "some_metric",
              "fieldName": "some_metric"
            },
            {
              "type": "fieldAccess",
              "name": "count",
              "fieldName": "count"
            }
          ]
        }
      ],
      "intervals": [
        "2013-08-31T00:00:00.000/2013-09-03T00:00:00.000"
      ]
    }));
    // The documented result, number for number. Two slips in the documentation's sample are
    // corrected: the value key is the query's dimension (`sample_dim`, not `dim1`), and the
    // metric key is the aggregator's name (`some_metric`, not `some_metrics`); some_metric is a
    // doubleSum, so its sums are doubles. The averages are the doubles the documentation shows
    // (e.g. 10669.0 / 111 = 96.11711711711712).
    assert_eq!(
        r,
        json!([
          {
            "timestamp": "2013-08-31T00:00:00.000Z",
            "result": [
              {
                "sample_dim": "dim1_val",
                "count": 111,
                "some_metric": 10669.0,
                "average": 96.11711711711712
              },
              {
                "sample_dim": "another_dim1_val",
                "count": 88,
                "some_metric": 28344.0,
                "average": 322.09090909090907
              },
              {
                "sample_dim": "dim1_val3",
                "count": 70,
                "some_metric": 871.0,
                "average": 12.442857142857143
              },
              {
                "sample_dim": "dim1_val4",
                "count": 62,
                "some_metric": 815.0,
                "average": 13.14516129032258
              },
              {
                "sample_dim": "dim1_val5",
                "count": 60,
                "some_metric": 2787.0,
                "average": 46.45
              }
            ]
          }
        ])
    );
}

/// `tpch_year` for the two "Aliasing" example queries (exact aggregates in two passes).
///
/// | l_orderkey | rows | L_QUANTITY_longSum | L_TAX_doubleSum | L_DISCOUNT_doubleSum | L_EXTENDEDPRICE_doubleSum |
/// |---|---|---|---|---|---|
/// | 103136 | 2 | 30 + 20 = 50 | 0.25 + 0.5 | 0.5 + 0.25 | 1000.5 + 2000.25 |
/// | 1648672 | 1 | 45 | 0.125 | 0.0 | 4500.0 |
/// | 7 | 1 | 40 | 1.0 | 1.0 | 1.0 |
/// | 42 | 2 | 10 + 5 = 15 | 1.0 | 1.0 | 1.0 |
fn tpch_fixture() -> Fixture {
    let row = |t: &str, key: &str, q: i64, tax: f64, disc: f64, price: f64| {
        json!({"timestamp": t, "l_orderkey": key, "L_QUANTITY_longSum": q, "L_TAX_doubleSum": tax,
            "L_DISCOUNT_doubleSum": disc, "L_EXTENDEDPRICE_doubleSum": price})
    };
    Fixture::new().datasource(
        "tpch_year",
        json!(["l_orderkey"]),
        json!([
            {"type": "longSum", "name": "L_QUANTITY_longSum", "fieldName": "L_QUANTITY_longSum"},
            {"type": "doubleSum", "name": "L_TAX_doubleSum", "fieldName": "L_TAX_doubleSum"},
            {"type": "doubleSum", "name": "L_DISCOUNT_doubleSum", "fieldName": "L_DISCOUNT_doubleSum"},
            {"type": "doubleSum", "name": "L_EXTENDEDPRICE_doubleSum", "fieldName": "L_EXTENDEDPRICE_doubleSum"}
        ]),
        &[
            (
                "1992-01-01/1992-01-02",
                vec![
                    row("1992-01-01T00:00:00Z", "103136", 30, 0.25, 0.5, 1000.5),
                    row("1992-01-01T01:00:00Z", "7", 40, 1.0, 1.0, 1.0),
                    row("1992-01-01T02:00:00Z", "42", 10, 1.0, 1.0, 1.0),
                ],
            ),
            (
                "1997-06-01/1997-06-02",
                vec![
                    row("1997-06-01T00:00:00Z", "103136", 20, 0.5, 0.25, 2000.25),
                    row("1997-06-01T01:00:00Z", "1648672", 45, 0.125, 0.0, 4500.0),
                    row("1997-06-01T02:00:00Z", "42", 5, 0.0, 0.0, 0.0),
                ],
            ),
        ],
    )
}

#[test]
fn topn_aliasing_examples() {
    let f = tpch_fixture();
    // "Example First query": approximate top 2 order keys by quantity.
    let r = f.query(json!({
        "aggregations": [
             {
                 "fieldName": "L_QUANTITY_longSum",
                 "name": "L_QUANTITY_",
                 "type": "longSum"
             }
        ],
        "dataSource": "tpch_year",
        "dimension":"l_orderkey",
        "granularity": "all",
        "intervals": [
            "1900-01-09T00:00:00.000Z/2992-01-10T00:00:00.000Z"
        ],
        "metric": "L_QUANTITY_",
        "queryType": "topN",
        "threshold": 2
    }));
    // Quantities: 103136 -> 50, 1648672 -> 45, 7 -> 40, 42 -> 15.
    let results = r.as_array().unwrap();
    assert_eq!(results.len(), 1, "{r}");
    assert_eq!(
        results[0]["result"],
        json!([
            {"l_orderkey": "103136", "L_QUANTITY_": 50},
            {"l_orderkey": "1648672", "L_QUANTITY_": 45}
        ])
    );
    // The bucket timestamp of granularity `all` is not pinned down by the topN documentation
    // (the data starts long after the interval does), so only its presence is checked.
    assert!(results[0]["timestamp"].is_string(), "{r}");

    // "Example second query": exact aggregates for the keys found by the first.
    let r = f.query(json!({
        "aggregations": [
             {
                 "fieldName": "L_TAX_doubleSum",
                 "name": "L_TAX_",
                 "type": "doubleSum"
             },
             {
                 "fieldName": "L_DISCOUNT_doubleSum",
                 "name": "L_DISCOUNT_",
                 "type": "doubleSum"
             },
             {
                 "fieldName": "L_EXTENDEDPRICE_doubleSum",
                 "name": "L_EXTENDEDPRICE_",
                 "type": "doubleSum"
             },
             {
                 "fieldName": "L_QUANTITY_longSum",
                 "name": "L_QUANTITY_",
                 "type": "longSum"
             },
             {
                 "name": "count",
                 "type": "count"
             }
        ],
        "dataSource": "tpch_year",
        "dimension":"l_orderkey",
        "filter": {
            "fields": [
                {
                    "dimension": "l_orderkey",
                    "type": "selector",
                    "value": "103136"
                },
                {
                    "dimension": "l_orderkey",
                    "type": "selector",
                    "value": "1648672"
                }
            ],
            "type": "or"
        },
        "granularity": "all",
        "intervals": [
            "1900-01-09T00:00:00.000Z/2992-01-10T00:00:00.000Z"
        ],
        "metric": "L_QUANTITY_",
        "queryType": "topN",
        "threshold": 2
    }));
    let results = r.as_array().unwrap();
    assert_eq!(results.len(), 1, "{r}");
    assert_eq!(
        results[0]["result"],
        json!([
            {"l_orderkey": "103136", "L_TAX_": 0.75, "L_DISCOUNT_": 0.75,
             "L_EXTENDEDPRICE_": 3000.75, "L_QUANTITY_": 50, "count": 2},
            {"l_orderkey": "1648672", "L_TAX_": 0.125, "L_DISCOUNT_": 0.0,
             "L_EXTENDEDPRICE_": 4500.0, "L_QUANTITY_": 45, "count": 1}
        ])
    );
}

/// `sample_data` for the TopNMetricSpec examples: one dimension `sample_dim`, a `count`.
///
/// | sample_dim | rows |
/// |---|---|
/// | a10 | 1 |
/// | a2 | 2 |
/// | ba | 3 |
/// | c | 4 |
/// | aaa | 5 |
fn metric_spec_fixture() -> Fixture {
    let mut rows = Vec::new();
    for (v, n) in [("a10", 1), ("a2", 2), ("ba", 3), ("c", 4), ("aaa", 5)] {
        for i in 0..n {
            rows.push(json!({"timestamp": format!("2013-08-31T00:00:0{i}Z"), "sample_dim": v}));
        }
    }
    Fixture::new().datasource(
        "sample_data",
        json!(["sample_dim"]),
        json!([{"type": "count", "name": "count"}]),
        &[("2013-08-31/2013-09-01", rows)],
    )
}

fn topn_with_metric(f: &Fixture, metric: Value, threshold: u64) -> Value {
    let r = f.query(json!({
        "queryType": "topN", "dataSource": "sample_data", "dimension": "sample_dim",
        "threshold": threshold, "metric": metric, "granularity": "all",
        "aggregations": [{"type": "longSum", "name": "count", "fieldName": "count"}],
        "intervals": ["2013-08-31T00:00:00.000/2013-09-01T00:00:00.000"]
    }));
    let results = r.as_array().unwrap();
    assert_eq!(results.len(), 1, "{r}");
    assert_eq!(results[0]["timestamp"], "2013-08-31T00:00:00.000Z");
    results[0]["result"].clone()
}

fn row(v: &str, n: i64) -> Value {
    json!({"sample_dim": v, "count": n})
}

#[test]
fn topn_metric_spec_examples() {
    let f = metric_spec_fixture();
    // `"metric": "<metric_name>"` and `{"type": "numeric", "metric": "<metric_name>"}`:
    // highest count first.
    let by_count = json!([row("aaa", 5), row("c", 4), row("ba", 3)]);
    assert_eq!(topn_with_metric(&f, json!("count"), 3), by_count);
    assert_eq!(
        topn_with_metric(&f, json!({"type": "numeric", "metric": "count"}), 3),
        by_count
    );
    // Inverted numeric: lowest count first.
    assert_eq!(
        topn_with_metric(
            &f,
            json!({"type": "inverted", "metric": {"type": "numeric", "metric": "count"}}),
            3
        ),
        json!([row("a10", 1), row("a2", 2), row("ba", 3)])
    );
    // Dimension ordering, lexicographic (without previousStop; see the next test).
    assert_eq!(
        topn_with_metric(
            &f,
            json!({"type": "dimension", "ordering": "lexicographic"}),
            3
        ),
        json!([row("a10", 1), row("a2", 2), row("aaa", 5)])
    );
    // Inverted dimension ordering: lexicographically last values first.
    assert_eq!(
        topn_with_metric(
            &f,
            json!({"type": "inverted", "metric": {"type": "dimension", "ordering": "lexicographic"}}),
            2
        ),
        json!([row("c", 4), row("ba", 3)])
    );
}

/// The documented lexicographic metricSpec with `previousStop`: values sorting before the
/// previousStop value are skipped (pagination through dimension values).
#[test]
fn topn_dimension_metric_spec_previous_stop() {
    let f = metric_spec_fixture();
    assert_eq!(
        topn_with_metric(
            &f,
            json!({"type": "dimension", "ordering": "lexicographic", "previousStop": "b"}),
            3
        ),
        json!([row("ba", 3), row("c", 4)])
    );
}

/// The dimension metricSpec's other documented orderings (docs/querying/sorting-orders.md).
#[test]
fn topn_dimension_metric_spec_orderings() {
    let f = metric_spec_fixture();
    // alphanumeric: runs of digits compare as numbers, so a2 < a10; and "a" + digits sorts
    // before "aaa" as it does lexicographically.
    assert_eq!(
        topn_with_metric(
            &f,
            json!({"type": "dimension", "ordering": "alphanumeric"}),
            3
        ),
        json!([row("a2", 2), row("a10", 1), row("aaa", 5)])
    );
    // strlen: shorter first, ties lexicographic: c, a2, ba, a10, aaa.
    assert_eq!(
        topn_with_metric(&f, json!({"type": "dimension", "ordering": "strlen"}), 4),
        json!([row("c", 4), row("a2", 2), row("ba", 3), row("a10", 1)])
    );
}

// ---------------------------------------------------------------------------------------------
// GroupBy (docs/querying/groupbyquery.md)
// ---------------------------------------------------------------------------------------------

/// `sample_datasource` for the groupBy example.
///
/// | day | country | device | carrier | make | user_count | data_transfer | note |
/// |---|---|---|---|---|---|---|---|
/// | 01-01 | US | iphone | AT&T | Apple | 80 | 10.0 | |
/// | 01-01 | US | iphone | AT&T | Apple | 70 | 10.0 | (US, iphone): 150, 20.0 |
/// | 01-01 | US | galaxy | AT&T | Samsung | 120 | 30.0 | (US, galaxy): 120, 30.0 |
/// | 01-01 | CA | iphone | AT&T | Apple | 100 | 5.0 | 100 is not > 100: dropped by having |
/// | 01-01 | CA | galaxy | AT&T | Samsung | 300 | 75.0 | (CA, galaxy): 300, 75.0 |
/// | 01-01 | US | pixel | AT&T | Google | 1000 | 1.0 | make: filtered out |
/// | 01-01 | US | iphone | Verizon | Apple | 1000 | 1.0 | carrier: filtered out |
/// | 01-02 | US | iphone | AT&T | Apple | 100 | 20.0 | |
/// | 01-02 | US | iphone | AT&T | Apple | 50 | 15.0 | (US, iphone): 150, 35.0 |
/// | 01-02 | US | galaxy | AT&T | Samsung | 101 | 40.0 | (US, galaxy): 101, 40.0 |
/// | 01-03 | US | iphone | AT&T | Apple | 500 | 500.0 | outside the interval |
fn groupby_fixture() -> Fixture {
    let row =
        |t: &str, country: &str, device: &str, carrier: &str, make: &str, uc: i64, dt: f64| {
            json!({"timestamp": t, "country": country, "device": device, "carrier": carrier,
            "make": make, "user_count": uc, "data_transfer": dt})
        };
    Fixture::new().datasource(
        "sample_datasource",
        json!(["country", "device", "carrier", "make"]),
        json!([
            {"type": "longSum", "name": "user_count", "fieldName": "user_count"},
            {"type": "doubleSum", "name": "data_transfer", "fieldName": "data_transfer"}
        ]),
        &[
            (
                "2012-01-01/2012-01-02",
                vec![
                    row(
                        "2012-01-01T01:00:00Z",
                        "US",
                        "iphone",
                        "AT&T",
                        "Apple",
                        80,
                        10.0,
                    ),
                    row(
                        "2012-01-01T02:00:00Z",
                        "US",
                        "iphone",
                        "AT&T",
                        "Apple",
                        70,
                        10.0,
                    ),
                    row(
                        "2012-01-01T03:00:00Z",
                        "US",
                        "galaxy",
                        "AT&T",
                        "Samsung",
                        120,
                        30.0,
                    ),
                    row(
                        "2012-01-01T04:00:00Z",
                        "CA",
                        "iphone",
                        "AT&T",
                        "Apple",
                        100,
                        5.0,
                    ),
                    row(
                        "2012-01-01T05:00:00Z",
                        "CA",
                        "galaxy",
                        "AT&T",
                        "Samsung",
                        300,
                        75.0,
                    ),
                    row(
                        "2012-01-01T06:00:00Z",
                        "US",
                        "pixel",
                        "AT&T",
                        "Google",
                        1000,
                        1.0,
                    ),
                    row(
                        "2012-01-01T07:00:00Z",
                        "US",
                        "iphone",
                        "Verizon",
                        "Apple",
                        1000,
                        1.0,
                    ),
                ],
            ),
            (
                "2012-01-02/2012-01-03",
                vec![
                    row(
                        "2012-01-02T01:00:00Z",
                        "US",
                        "iphone",
                        "AT&T",
                        "Apple",
                        100,
                        20.0,
                    ),
                    row(
                        "2012-01-02T02:00:00Z",
                        "US",
                        "iphone",
                        "AT&T",
                        "Apple",
                        50,
                        15.0,
                    ),
                    row(
                        "2012-01-02T03:00:00Z",
                        "US",
                        "galaxy",
                        "AT&T",
                        "Samsung",
                        101,
                        40.0,
                    ),
                ],
            ),
            (
                "2012-01-03/2012-01-04",
                vec![row(
                    "2012-01-03T01:00:00Z",
                    "US",
                    "iphone",
                    "AT&T",
                    "Apple",
                    500,
                    500.0,
                )],
            ),
        ],
    )
}

fn gb_row(day: &str, country: &str, device: &str, usage: i64, transfer: f64) -> Value {
    json!({
        "version" : "v1",
        "timestamp" : format!("{day}T00:00:00.000Z"),
        "event" : {
          "country" : country,
          "device" : device,
          "total_usage" : usage,
          "data_transfer" : transfer,
          "avg_usage" : transfer / usage as f64
        }
    })
}

#[test]
fn groupby_example() {
    let f = groupby_fixture();
    let r = f.query(json!({
      "queryType": "groupBy",
      "dataSource": "sample_datasource",
      "granularity": "day",
      "dimensions": ["country", "device"],
      "limitSpec": { "type": "default", "limit": 5000, "columns": ["country", "data_transfer"] },
      "filter": {
        "type": "and",
        "fields": [
          { "type": "selector", "dimension": "carrier", "value": "AT&T" },
          { "type": "or",
            "fields": [
              { "type": "selector", "dimension": "make", "value": "Apple" },
              { "type": "selector", "dimension": "make", "value": "Samsung" }
            ]
          }
        ]
      },
      "aggregations": [
        { "type": "longSum", "name": "total_usage", "fieldName": "user_count" },
        { "type": "doubleSum", "name": "data_transfer", "fieldName": "data_transfer" }
      ],
      "postAggregations": [
        { "type": "arithmetic",
          "name": "avg_usage",
          "fn": "/",
          "fields": [
            { "type": "fieldAccess", "fieldName": "data_transfer" },
            { "type": "fieldAccess", "fieldName": "total_usage" }
          ]
        }
      ],
      "intervals": [ "2012-01-01T00:00:00.000/2012-01-03T00:00:00.000" ],
      "having": {
        "type": "greaterThan",
        "aggregation": "total_usage",
        "value": 100
      }
    }));
    // With a non-`all` granularity Druid orders by time first, then by the limitSpec columns:
    // country ascending, then data_transfer ascending (which puts (US, iphone) with 20.0 before
    // (US, galaxy) with 30.0 on 01-01, unlike the natural dimension order). avg_usage is
    // data_transfer / total_usage, e.g. 75.0 / 300 = 0.25.
    assert_eq!(
        r,
        json!([
            gb_row("2012-01-01", "CA", "galaxy", 300, 75.0),
            gb_row("2012-01-01", "US", "iphone", 150, 20.0),
            gb_row("2012-01-01", "US", "galaxy", 120, 30.0),
            gb_row("2012-01-02", "US", "iphone", 150, 35.0),
            gb_row("2012-01-02", "US", "galaxy", 101, 40.0),
        ])
    );
    assert_eq!(r[0]["event"]["avg_usage"], json!(0.25));
    assert_eq!(r[1]["event"]["avg_usage"], json!(20.0 / 150.0));
}

/// Druid's groupBy sorts by timestamp before the limitSpec columns unless the context sets
/// `sortByDimsFirst` (groupbyquery.md context table: dimension values first, then time;
/// default false).
#[test]
fn groupby_limit_spec_orders_by_time_first() {
    let f = groupby_fixture();
    let q = |context: Value| {
        json!({
          "queryType": "groupBy", "dataSource": "sample_datasource", "granularity": "day",
          "dimensions": ["country", "device"],
          "limitSpec": {"type": "default", "columns": ["data_transfer"]},
          "filter": {"type": "and", "fields": [
              {"type": "selector", "dimension": "carrier", "value": "AT&T"},
              {"type": "or", "fields": [
                  {"type": "selector", "dimension": "make", "value": "Apple"},
                  {"type": "selector", "dimension": "make", "value": "Samsung"}]}]},
          "aggregations": [
              {"type": "longSum", "name": "total_usage", "fieldName": "user_count"},
              {"type": "doubleSum", "name": "data_transfer", "fieldName": "data_transfer"}],
          "postAggregations": [{"type": "arithmetic", "name": "avg_usage", "fn": "/", "fields": [
              {"type": "fieldAccess", "fieldName": "data_transfer"},
              {"type": "fieldAccess", "fieldName": "total_usage"}]}],
          "intervals": ["2012-01-01T00:00:00.000/2012-01-03T00:00:00.000"],
          "having": {"type": "greaterThan", "aggregation": "total_usage", "value": 100},
          "context": context
        })
    };
    // Time first: 01-01 by data_transfer (20, 30, 75), then 01-02 (35, 40).
    assert_eq!(
        f.query(q(json!({}))),
        json!([
            gb_row("2012-01-01", "US", "iphone", 150, 20.0),
            gb_row("2012-01-01", "US", "galaxy", 120, 30.0),
            gb_row("2012-01-01", "CA", "galaxy", 300, 75.0),
            gb_row("2012-01-02", "US", "iphone", 150, 35.0),
            gb_row("2012-01-02", "US", "galaxy", 101, 40.0),
        ])
    );
    // sortByDimsFirst: by data_transfer across days, then time.
    assert_eq!(
        f.query(q(json!({"sortByDimsFirst": true}))),
        json!([
            gb_row("2012-01-01", "US", "iphone", 150, 20.0),
            gb_row("2012-01-01", "US", "galaxy", 120, 30.0),
            gb_row("2012-01-02", "US", "iphone", 150, 35.0),
            gb_row("2012-01-02", "US", "galaxy", 101, 40.0),
            gb_row("2012-01-01", "CA", "galaxy", 300, 75.0),
        ])
    );
}

/// The "More on subtotalsSpec" example. Its second and third dimensions use an extraction
/// function and a lookup, which Basalt does not support; they are plain `default` dimension
/// specs here. The documentation elides the rest of the query; a `count` aggregator and a day
/// granularity over two days (its `t1`, `t2`) fill it in.
///
/// | day | d1col | d2col | d3col |
/// |---|---|---|---|
/// | 01-01 | a | x | p |
/// | 01-01 | a | y | p |
/// | 01-01 | b | x | q |
/// | 01-02 | a | x | p |
/// | 01-02 | b | y | q |
#[test]
fn groupby_subtotals_example() {
    let row = |t: &str, d1: &str, d2: &str, d3: &str| json!({"timestamp": t, "d1col": d1, "d2col": d2, "d3col": d3});
    let f = Fixture::new().datasource(
        "sample_datasource",
        json!(["d1col", "d2col", "d3col"]),
        json!([{"type": "count", "name": "count"}]),
        &[
            (
                "2012-01-01/2012-01-02",
                vec![
                    row("2012-01-01T01:00:00Z", "a", "x", "p"),
                    row("2012-01-01T02:00:00Z", "a", "y", "p"),
                    row("2012-01-01T03:00:00Z", "b", "x", "q"),
                ],
            ),
            (
                "2012-01-02/2012-01-03",
                vec![
                    row("2012-01-02T01:00:00Z", "a", "x", "p"),
                    row("2012-01-02T02:00:00Z", "b", "y", "q"),
                ],
            ),
        ],
    );
    let r = f.query(json!({
      "queryType": "groupBy",
      "dataSource": "sample_datasource",
      "granularity": "day",
      "intervals": ["2012-01-01/2012-01-03"],
      "aggregations": [{"type": "count", "name": "count"}],
      "dimensions": [
        {
        "type" : "default",
        "dimension" : "d1col",
        "outputName": "D1"
        },
        {
        "type" : "default",
        "dimension" : "d2col",
        "outputName" :  "D2"
        },
        {
        "type":"default",
        "dimension":"d3col",
        "outputName":"D3"
        }
      ],
      "subtotalsSpec":[ ["D1", "D2", "D3"], ["D1", "D3"], ["D3"]]
    }));
    // The result is the three groupings concatenated in subtotalsSpec order, each ordered by
    // time then dimensions. The documentation shows the events of a subtotal without the
    // dimensions it leaves out; Druid's map-based rows carry them as null. Either is accepted:
    // the check below drops null-valued dimensions that are outside the subtotal.
    let t1 = "2012-01-01T00:00:00.000Z";
    let t2 = "2012-01-02T00:00:00.000Z";
    let expected = json!([
        {"version": "v1", "timestamp": t1, "event": {"D1": "a", "D2": "x", "D3": "p", "count": 1}},
        {"version": "v1", "timestamp": t1, "event": {"D1": "a", "D2": "y", "D3": "p", "count": 1}},
        {"version": "v1", "timestamp": t1, "event": {"D1": "b", "D2": "x", "D3": "q", "count": 1}},
        {"version": "v1", "timestamp": t2, "event": {"D1": "a", "D2": "x", "D3": "p", "count": 1}},
        {"version": "v1", "timestamp": t2, "event": {"D1": "b", "D2": "y", "D3": "q", "count": 1}},
        {"version": "v1", "timestamp": t1, "event": {"D1": "a", "D3": "p", "count": 2}},
        {"version": "v1", "timestamp": t1, "event": {"D1": "b", "D3": "q", "count": 1}},
        {"version": "v1", "timestamp": t2, "event": {"D1": "a", "D3": "p", "count": 1}},
        {"version": "v1", "timestamp": t2, "event": {"D1": "b", "D3": "q", "count": 1}},
        {"version": "v1", "timestamp": t1, "event": {"D3": "p", "count": 2}},
        {"version": "v1", "timestamp": t1, "event": {"D3": "q", "count": 1}},
        {"version": "v1", "timestamp": t2, "event": {"D3": "p", "count": 1}},
        {"version": "v1", "timestamp": t2, "event": {"D3": "q", "count": 1}}
    ]);
    let mut got = r.clone();
    for (g, e) in got
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .zip(expected.as_array().unwrap())
    {
        let event = g["event"].as_object_mut().unwrap();
        for d in ["D1", "D2", "D3"] {
            if e["event"].get(d).is_none() && event.get(d) == Some(&Value::Null) {
                event.remove(d);
            }
        }
    }
    assert_eq!(got, expected, "raw response: {r}");
}

// ---------------------------------------------------------------------------------------------
// Granularities (docs/querying/granularities.md): groupBy examples with documented results
// ---------------------------------------------------------------------------------------------

/// The documentation's four rows of `my_dataSource` (millisecond ingestion granularity).
fn granularity_fixture() -> Fixture {
    let row = |t: &str, page: &str| json!({"timestamp": t, "page": page, "language": "en"});
    Fixture::new().datasource(
        "my_dataSource",
        json!(["page", "language"]),
        json!([{"type": "count", "name": "count"}]),
        &[
            (
                "2013-08-31/2013-09-01",
                vec![row("2013-08-31T01:02:33Z", "AAA")],
            ),
            (
                "2013-09-01/2013-09-02",
                vec![row("2013-09-01T01:02:33Z", "BBB")],
            ),
            (
                "2013-09-02/2013-09-03",
                vec![row("2013-09-02T23:32:45Z", "CCC")],
            ),
            (
                "2013-09-03/2013-09-04",
                vec![row("2013-09-03T03:32:45Z", "DDD")],
            ),
        ],
    )
}

fn granularity_query(granularity: Value, intervals: &str) -> Value {
    json!({
       "queryType":"groupBy",
       "dataSource":"my_dataSource",
       "granularity": granularity,
       "dimensions":[
          "language"
       ],
       "aggregations":[
          {
             "type":"count",
             "name":"count"
          }
       ],
       "intervals":[
          intervals
       ]
    })
}

/// groupBy rows `{"count": n, "language": "en"}` at the given timestamps.
fn en_counts(rows: &[(&str, i64)]) -> Value {
    Value::Array(
        rows.iter()
            .map(|(t, n)| {
                json!({"version": "v1", "timestamp": t, "event": {"count": n, "language": "en"}})
            })
            .collect(),
    )
}

#[test]
fn granularity_simple_examples() {
    let f = granularity_fixture();
    let iv = "2000-01-01T00:00Z/3000-01-01T00:00Z";
    // `hour`: the empty buckets are discarded.
    assert_eq!(
        f.query(granularity_query(json!("hour"), iv)),
        en_counts(&[
            ("2013-08-31T01:00:00.000Z", 1),
            ("2013-09-01T01:00:00.000Z", 1),
            ("2013-09-02T23:00:00.000Z", 1),
            ("2013-09-03T03:00:00.000Z", 1)
        ])
    );
    assert_eq!(
        f.query(granularity_query(json!("day"), iv)),
        en_counts(&[
            ("2013-08-31T00:00:00.000Z", 1),
            ("2013-09-01T00:00:00.000Z", 1),
            ("2013-09-02T00:00:00.000Z", 1),
            ("2013-09-03T00:00:00.000Z", 1)
        ])
    );
    assert_eq!(
        f.query(granularity_query(json!("none"), iv)),
        en_counts(&[
            ("2013-08-31T01:02:33.000Z", 1),
            ("2013-09-01T01:02:33.000Z", 1),
            ("2013-09-02T23:32:45.000Z", 1),
            ("2013-09-03T03:32:45.000Z", 1)
        ])
    );
    // `all`: one bucket, stamped with the start of the query interval.
    assert_eq!(
        f.query(granularity_query(json!("all"), iv)),
        en_counts(&[("2000-01-01T00:00:00.000Z", 4)])
    );
}

#[test]
fn granularity_duration_examples() {
    let f = granularity_fixture();
    let iv = "2000-01-01T00:00Z/3000-01-01T00:00Z";
    // The documented query gives the duration as a string.
    assert_eq!(
        f.query(granularity_query(
            json!({"type": "duration", "duration": "86400000"}),
            iv
        )),
        en_counts(&[
            ("2013-08-31T00:00:00.000Z", 1),
            ("2013-09-01T00:00:00.000Z", 1),
            ("2013-09-02T00:00:00.000Z", 1),
            ("2013-09-03T00:00:00.000Z", 1)
        ])
    );
    assert_eq!(
        f.query(granularity_query(
            json!({"type": "duration", "duration": "86400000", "origin":"2012-01-01T00:30:00Z"}),
            iv
        )),
        en_counts(&[
            ("2013-08-31T00:30:00.000Z", 1),
            ("2013-09-01T00:30:00.000Z", 1),
            ("2013-09-02T00:30:00.000Z", 1),
            ("2013-09-03T00:30:00.000Z", 1)
        ])
    );
}

#[test]
fn granularity_period_examples() {
    let f = granularity_fixture();
    let iv = "1999-12-31T16:00:00.000-08:00/2999-12-31T16:00:00.000-08:00";
    // Days in Pacific time (PDT, -07:00 in these months); the last two rows share 2013-09-02.
    assert_eq!(
        f.query(granularity_query(
            json!({"type": "period", "period": "P1D", "timeZone": "America/Los_Angeles"}),
            iv
        )),
        en_counts(&[
            ("2013-08-30T00:00:00.000-07:00", 1),
            ("2013-08-31T00:00:00.000-07:00", 1),
            ("2013-09-02T00:00:00.000-07:00", 2)
        ])
    );
    // With the origin 20:30 local, days start at 20:30 and the last two rows part.
    assert_eq!(
        f.query(granularity_query(
            json!({"type": "period", "period": "P1D", "timeZone": "America/Los_Angeles", "origin": "1970-01-01T20:30:00-08:00"}),
            iv
        )),
        en_counts(&[
            ("2013-08-29T20:30:00.000-07:00", 1),
            ("2013-08-30T20:30:00.000-07:00", 1),
            ("2013-09-01T20:30:00.000-07:00", 1),
            ("2013-09-02T20:30:00.000-07:00", 1)
        ])
    );
}

// ---------------------------------------------------------------------------------------------
// TimeBoundary (docs/querying/timeboundaryquery.md)
// ---------------------------------------------------------------------------------------------

/// Rows at 18:24, 18:30 and 18:37 on 2013-05-09: the documented result's minTime and maxTime.
fn time_boundary_fixture() -> Fixture {
    Fixture::new().datasource(
        "sample_datasource",
        json!(["dim1"]),
        json!([{"type": "count", "name": "count"}]),
        &[(
            "2013-05-09/2013-05-10",
            vec![
                json!({"timestamp": "2013-05-09T18:24:00Z", "dim1": "a"}),
                json!({"timestamp": "2013-05-09T18:30:00Z", "dim1": "b"}),
                json!({"timestamp": "2013-05-09T18:37:00Z", "dim1": "a"}),
            ],
        )],
    )
}

#[test]
fn time_boundary_example() {
    let f = time_boundary_fixture();
    // The grammar with the optional parts left out.
    let r = f.query(json!({
        "queryType" : "timeBoundary",
        "dataSource": "sample_datasource"
    }));
    assert_eq!(
        r,
        json!([ {
          "timestamp" : "2013-05-09T18:24:00.000Z",
          "result" : {
            "minTime" : "2013-05-09T18:24:00.000Z",
            "maxTime" : "2013-05-09T18:37:00.000Z"
          }
        } ])
    );

    // `bound`: only the requested timestamp, which is also the row timestamp.
    let r = f.query(json!({
        "queryType" : "timeBoundary",
        "dataSource": "sample_datasource",
        "bound"     : "maxTime"
    }));
    assert_eq!(
        r,
        json!([{"timestamp": "2013-05-09T18:37:00.000Z", "result": {"maxTime": "2013-05-09T18:37:00.000Z"}}])
    );
    let r = f.query(json!({
        "queryType" : "timeBoundary",
        "dataSource": "sample_datasource",
        "bound"     : "minTime"
    }));
    assert_eq!(
        r,
        json!([{"timestamp": "2013-05-09T18:24:00.000Z", "result": {"minTime": "2013-05-09T18:24:00.000Z"}}])
    );

    // `filter` (an `and` of filters, as in the grammar): only the 18:30 row has dim1 = b.
    let r = f.query(json!({
        "queryType" : "timeBoundary",
        "dataSource": "sample_datasource",
        "filter"    : { "type": "and", "fields": [
            {"type": "selector", "dimension": "dim1", "value": "b"},
            {"type": "not", "field": {"type": "selector", "dimension": "dim1", "value": "a"}}
        ] }
    }));
    assert_eq!(
        r,
        json!([{"timestamp": "2013-05-09T18:30:00.000Z", "result": {
            "minTime": "2013-05-09T18:30:00.000Z", "maxTime": "2013-05-09T18:30:00.000Z"}}])
    );
}

// ---------------------------------------------------------------------------------------------
// DataSourceMetadata (docs/querying/datasourcemetadataquery.md)
// ---------------------------------------------------------------------------------------------

#[test]
fn data_source_metadata_example() {
    let f = Fixture::new().datasource(
        "sample_datasource",
        json!(["dim1"]),
        json!([{"type": "count", "name": "count"}]),
        &[
            (
                "2013-05-08/2013-05-09",
                vec![json!({"timestamp": "2013-05-08T10:00:00Z", "dim1": "a"})],
            ),
            (
                "2013-05-09/2013-05-10",
                vec![
                    json!({"timestamp": "2013-05-09T18:24:00Z", "dim1": "a"}),
                    json!({"timestamp": "2013-05-09T18:24:09.007Z", "dim1": "b"}),
                ],
            ),
        ],
    );
    let r = f.query(json!({
        "queryType" : "dataSourceMetadata",
        "dataSource": "sample_datasource"
    }));
    // The latest event time is the 18:24:09.007 row. The documentation's sample shows a row
    // timestamp different from maxIngestedEventTime; a Broker's merge of the per-segment results
    // (DataSourceMetadataQuery.mergeResults) stamps the row with the maximum itself.
    assert_eq!(
        r,
        json!([ {
          "timestamp" : "2013-05-09T18:24:09.007Z",
          "result" : {
            "maxIngestedEventTime" : "2013-05-09T18:24:09.007Z"
          }
        } ])
    );
}

// ---------------------------------------------------------------------------------------------
// SegmentMetadata (docs/querying/segmentmetadataquery.md)
// ---------------------------------------------------------------------------------------------

/// `sample_datasource` for the segmentMetadata example: one segment 2013-05-13/2013-05-14 (the
/// documented interval) of four rows, and one 2013-05-20/2013-05-21 of two rows.
///
/// | segment | dim1 | dim2 (multi-value) | metric1 |
/// |---|---|---|---|
/// | 05-13 | b | [x, y] | 1 |
/// | 05-13 | a | (null) | 2 |
/// | 05-13 | c | z | 3 |
/// | 05-13 | a | [y, z] | 4 |
/// | 05-20 | d | x | 5 |
/// | 05-20 | a | x | 6 |
fn segment_metadata_fixture() -> Fixture {
    Fixture::new().datasource(
        "sample_datasource",
        json!(["dim1", "dim2"]),
        json!([{"type": "longSum", "name": "metric1", "fieldName": "metric1"}]),
        &[
            (
                "2013-05-13/2013-05-14",
                vec![
                    json!({"timestamp": "2013-05-13T01:00:00Z", "dim1": "b", "dim2": ["x", "y"], "metric1": 1}),
                    json!({"timestamp": "2013-05-13T02:00:00Z", "dim1": "a", "metric1": 2}),
                    json!({"timestamp": "2013-05-13T03:00:00Z", "dim1": "c", "dim2": "z", "metric1": 3}),
                    json!({"timestamp": "2013-05-13T04:00:00Z", "dim1": "a", "dim2": ["y", "z"], "metric1": 4}),
                ],
            ),
            (
                "2013-05-20/2013-05-21",
                vec![
                    json!({"timestamp": "2013-05-20T01:00:00Z", "dim1": "d", "dim2": "x", "metric1": 5}),
                    json!({"timestamp": "2013-05-20T02:00:00Z", "dim1": "a", "dim2": "x", "metric1": 6}),
                ],
            ),
        ],
    )
}

/// Check one column analysis: the documented keys, with `size` only checked to be a number
/// (Druid estimates a text size, and only when `analysisTypes` asks for `size`; Basalt reports
/// stored bytes), and `cardinality`, `minValue`, `maxValue` checked when given.
fn check_column(
    col: &Value,
    ty: &str,
    multi: bool,
    nulls: bool,
    stats: Option<(Value, Value, Value)>,
) {
    let o = col.as_object().unwrap();
    for k in [
        "type",
        "hasMultipleValues",
        "hasNulls",
        "size",
        "cardinality",
        "minValue",
        "maxValue",
        "errorMessage",
    ] {
        assert!(o.contains_key(k), "missing `{k}` in {col}");
    }
    assert_eq!(o["type"], ty, "{col}");
    assert_eq!(o["hasMultipleValues"], multi, "{col}");
    assert_eq!(o["hasNulls"], nulls, "{col}");
    assert!(o["size"].is_u64(), "{col}");
    assert_eq!(o["errorMessage"], Value::Null, "{col}");
    if let Some((card, min, max)) = stats {
        assert_eq!(o["cardinality"], card, "{col}");
        assert_eq!(o["minValue"], min, "{col}");
        assert_eq!(o["maxValue"], max, "{col}");
    }
}

#[test]
fn segment_metadata_example() {
    let f = segment_metadata_fixture();
    let r = f.query(json!({
      "queryType":"segmentMetadata",
      "dataSource":"sample_datasource",
      "intervals":["2013-01-01/2014-01-01"]
    }));
    // One result per segment (merge is off), oldest first.
    let results = r.as_array().unwrap();
    assert_eq!(results.len(), 2, "{r}");
    let first = results[0].as_object().unwrap();
    for k in [
        "id",
        "intervals",
        "columns",
        "aggregators",
        "queryGranularity",
        "size",
        "numRows",
    ] {
        assert!(first.contains_key(k), "missing `{k}` in {}", results[0]);
    }
    assert_eq!(
        first["id"],
        format!(
            "sample_datasource_2013-05-13T00:00:00.000Z_2013-05-14T00:00:00.000Z_{VERSION_TEXT}"
        )
    );
    assert_eq!(
        first["intervals"],
        json!(["2013-05-13T00:00:00.000Z/2013-05-14T00:00:00.000Z"])
    );
    assert_eq!(first["numRows"], 4);
    assert!(first["size"].is_u64());
    // The default analysisTypes (cardinality, interval, minmax) do not include aggregators or
    // queryGranularity: Druid reports them as null. (The documentation's sample shows them
    // filled, as when they are requested.)
    assert_eq!(first["aggregators"], Value::Null);
    assert_eq!(first["queryGranularity"], Value::Null);

    let cols = first["columns"].as_object().unwrap();
    let mut names: Vec<&str> = cols.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["__time", "dim1", "dim2", "metric1"]);
    // Only string columns have a cardinality and min/max: dim1 has a, b, c in this segment.
    let none = || Some((Value::Null, Value::Null, Value::Null));
    check_column(&cols["__time"], "LONG", false, false, none());
    check_column(
        &cols["dim1"],
        "STRING",
        false,
        false,
        Some((json!(3), json!("a"), json!("c"))),
    );
    // dim2 is multi-valued and has a null row. Its cardinality and min are left unchecked:
    // Druid's dictionary of a column with nulls holds null as its first value, so Druid may
    // count it (4, min null) where Basalt counts x, y, z (3, min "x").
    check_column(&cols["dim2"], "STRING", true, true, None);
    assert_eq!(cols["dim2"]["maxValue"], "z");
    // The documentation's sample shows a FLOAT metric1 with a longSum aggregator; here metric1
    // is a longSum column, so LONG.
    check_column(&cols["metric1"], "LONG", false, false, none());

    let second = &results[1];
    assert_eq!(
        second["id"],
        format!(
            "sample_datasource_2013-05-20T00:00:00.000Z_2013-05-21T00:00:00.000Z_{VERSION_TEXT}"
        )
    );
    assert_eq!(second["numRows"], 2);
    check_column(
        &second["columns"]["dim1"],
        "STRING",
        false,
        false,
        Some((json!(2), json!("a"), json!("d"))),
    );
    check_column(
        &second["columns"]["dim2"],
        "STRING",
        false,
        false,
        Some((json!(1), json!("x"), json!("x"))),
    );

    // `merge`: one result for both segments, id "merged", intervals of both, rows summed,
    // cardinality the highest per segment, min/max over both.
    let r = f.query(json!({
      "queryType":"segmentMetadata",
      "dataSource":"sample_datasource",
      "intervals":["2013-01-01/2014-01-01"],
      "merge": true
    }));
    let results = r.as_array().unwrap();
    assert_eq!(results.len(), 1, "{r}");
    let m = &results[0];
    assert_eq!(m["id"], "merged");
    assert_eq!(
        m["intervals"],
        json!([
            "2013-05-13T00:00:00.000Z/2013-05-14T00:00:00.000Z",
            "2013-05-20T00:00:00.000Z/2013-05-21T00:00:00.000Z"
        ])
    );
    assert_eq!(m["numRows"], 6);
    check_column(
        &m["columns"]["dim1"],
        "STRING",
        false,
        false,
        Some((json!(3), json!("a"), json!("d"))),
    );
    check_column(&m["columns"]["dim2"], "STRING", true, true, None);
    check_column(&m["columns"]["metric1"], "LONG", false, false, none());
}

/// Per the documentation every column analysis has a `typeSignature` (STRING, FLOAT, DOUBLE,
/// LONG or COMPLEX<typeName>) next to the legacy `type`.
#[test]
fn segment_metadata_columns_have_a_type_signature() {
    let f = segment_metadata_fixture();
    let r = f.query(json!({
      "queryType":"segmentMetadata",
      "dataSource":"sample_datasource",
      "intervals":["2013-01-01/2014-01-01"]
    }));
    let cols = &r[0]["columns"];
    assert_eq!(cols["__time"]["typeSignature"], "LONG", "{r}");
    assert_eq!(cols["dim1"]["typeSignature"], "STRING", "{r}");
    assert_eq!(cols["dim2"]["typeSignature"], "STRING", "{r}");
    assert_eq!(cols["metric1"]["typeSignature"], "LONG", "{r}");
}

/// `analysisTypes` lists what is computed: left out, `interval` leaves `intervals` null,
/// `minmax` leaves minValue/maxValue null, and `rollup` (not a default) leaves `rollup` null.
#[test]
fn segment_metadata_analysis_types() {
    let f = segment_metadata_fixture();
    let r = f.query(json!({
      "queryType":"segmentMetadata",
      "dataSource":"sample_datasource",
      "intervals":["2013-01-01/2014-01-01"]
    }));
    assert_eq!(r[0]["rollup"], Value::Null, "default analysisTypes: {r}");
    let r = f.query(json!({
      "queryType":"segmentMetadata",
      "dataSource":"sample_datasource",
      "intervals":["2013-01-01/2014-01-01"],
      "analysisTypes": ["cardinality"]
    }));
    assert_eq!(r[0]["intervals"], Value::Null, "{r}");
    assert_eq!(r[0]["columns"]["dim1"]["cardinality"], 3, "{r}");
    assert_eq!(r[0]["columns"]["dim1"]["minValue"], Value::Null, "{r}");
    assert_eq!(r[0]["columns"]["dim1"]["maxValue"], Value::Null, "{r}");
    let r = f.query(json!({
      "queryType":"segmentMetadata",
      "dataSource":"sample_datasource",
      "intervals":["2013-01-01/2014-01-01"],
      "analysisTypes": ["rollup"]
    }));
    assert_eq!(r[0]["rollup"], false, "{r}");
}

// ---------------------------------------------------------------------------------------------
// Search (docs/querying/searchquery.md)
// ---------------------------------------------------------------------------------------------

/// `sample_datasource` for the search example: the documented hits, on the days of the query's
/// interval (the documentation's sample result is dated 2012 while its query asks for 2013).
///
/// | day | dim1 | dim2 | dim3 |
/// |---|---|---|---|
/// | 01-01 | Ke$ha | Ke$haForPresident | Kettle |
/// | 01-01 | Ke$ha | other | kettle |
/// | 01-01 | Ke$ha | (null) | |
/// | 01-01 | nothing | nope | |
/// | 01-02 | SomethingThatContainsKe | SomethingElseThatContainsKe | |
/// | 01-02 | else | SomethingElseThatContainsKe | |
/// | 01-03 | Ke$ha | | outside the interval |
///
/// dim3 also contains "ke" but is not searched.
fn search_fixture() -> Fixture {
    Fixture::new().datasource(
        "sample_datasource",
        json!(["dim1", "dim2", "dim3"]),
        json!([{"type": "count", "name": "count"}]),
        &[
            (
                "2013-01-01/2013-01-02",
                vec![
                    json!({"timestamp": "2013-01-01T01:00:00Z", "dim1": "Ke$ha", "dim2": "Ke$haForPresident", "dim3": "Kettle"}),
                    json!({"timestamp": "2013-01-01T02:00:00Z", "dim1": "Ke$ha", "dim2": "other", "dim3": "kettle"}),
                    json!({"timestamp": "2013-01-01T03:00:00Z", "dim1": "Ke$ha"}),
                    json!({"timestamp": "2013-01-01T04:00:00Z", "dim1": "nothing", "dim2": "nope"}),
                ],
            ),
            (
                "2013-01-02/2013-01-03",
                vec![
                    json!({"timestamp": "2013-01-02T01:00:00Z", "dim1": "SomethingThatContainsKe", "dim2": "SomethingElseThatContainsKe"}),
                    json!({"timestamp": "2013-01-02T02:00:00Z", "dim1": "else", "dim2": "SomethingElseThatContainsKe"}),
                ],
            ),
            (
                "2013-01-03/2013-01-04",
                vec![json!({"timestamp": "2013-01-03T01:00:00Z", "dim1": "Ke$ha"})],
            ),
        ],
    )
}

fn search_example_query() -> Value {
    json!({
      "queryType": "search",
      "dataSource": "sample_datasource",
      "granularity": "day",
      "searchDimensions": [
        "dim1",
        "dim2"
      ],
      "query": {
        "type": "insensitive_contains",
        "value": "Ke"
      },
      "sort" : {
        "type": "lexicographic"
      },
      "intervals": [
        "2013-01-01T00:00:00.000/2013-01-03T00:00:00.000"
      ]
    })
}

#[test]
fn search_example() {
    let f = search_fixture();
    let r = f.query(search_example_query());
    // The documented hits and counts. Within a day Druid sorts hits by value (then dimension),
    // so on 01-02 "SomethingElseThatContainsKe" (dim2) precedes "SomethingThatContainsKe"
    // (dim1), unlike the documentation's sample listing; the order within a day is checked
    // separately (search_sorts_hits_by_value), so here each day's hits are compared sorted.
    let mut got = r.clone();
    for day in got.as_array_mut().unwrap() {
        let hits = day["result"].as_array_mut().unwrap();
        hits.sort_by_key(|h| h.to_string());
    }
    let mut expected = json!([
      {
        "timestamp": "2013-01-01T00:00:00.000Z",
        "result": [
          {
            "dimension": "dim1",
            "value": "Ke$ha",
            "count": 3
          },
          {
            "dimension": "dim2",
            "value": "Ke$haForPresident",
            "count": 1
          }
        ]
      },
      {
        "timestamp": "2013-01-02T00:00:00.000Z",
        "result": [
          {
            "dimension": "dim1",
            "value": "SomethingThatContainsKe",
            "count": 1
          },
          {
            "dimension": "dim2",
            "value": "SomethingElseThatContainsKe",
            "count": 2
          }
        ]
      }
    ]);
    for day in expected.as_array_mut().unwrap() {
        let hits = day["result"].as_array_mut().unwrap();
        hits.sort_by_key(|h| h.to_string());
    }
    assert_eq!(got, expected, "raw response: {r}");
}

/// Search hits are ordered by the `sort` ordering of their values (SearchSortSpec compares
/// values, then dimension names); "lexicographic" is the default, "strlen" orders by length.
#[test]
fn search_sorts_hits_by_value() {
    let f = search_fixture();
    let r = f.query(search_example_query());
    assert_eq!(
        r[1],
        json!({
          "timestamp": "2013-01-02T00:00:00.000Z",
          "result": [
            {"dimension": "dim2", "value": "SomethingElseThatContainsKe", "count": 2},
            {"dimension": "dim1", "value": "SomethingThatContainsKe", "count": 1}
          ]
        })
    );
    let mut q = search_example_query();
    q["sort"] = json!({"type": "strlen"});
    q["granularity"] = json!("all");
    q["searchDimensions"] = json!(["dim1", "dim2", "dim3"]);
    // Lengths: Ke$ha 5, Kettle 6, kettle 6, Ke$haForPresident 17, SomethingThatContainsKe 23,
    // SomethingElseThatContainsKe 27. Ties by lexicographic value: "Kettle" < "kettle".
    let r = f.query(q);
    assert_eq!(
        r,
        json!([{
          "timestamp": "2013-01-01T00:00:00.000Z",
          "result": [
            {"dimension": "dim1", "value": "Ke$ha", "count": 3},
            {"dimension": "dim3", "value": "Kettle", "count": 1},
            {"dimension": "dim3", "value": "kettle", "count": 1},
            {"dimension": "dim2", "value": "Ke$haForPresident", "count": 1},
            {"dimension": "dim1", "value": "SomethingThatContainsKe", "count": 1},
            {"dimension": "dim2", "value": "SomethingElseThatContainsKe", "count": 2}
          ]
        }])
    );
}

// ---------------------------------------------------------------------------------------------
// Scan (docs/querying/scan-query.md)
// ---------------------------------------------------------------------------------------------

/// `wikipedia` with the documentation's three sample rows (plus later ones) in one segment
/// 2012-12-29T00:00:00.000Z/2013-01-10T08:00:00.000Z, the interval of the documented segment id.
/// The three rows are a millisecond apart (the documentation's share one timestamp) so that
/// their order does not depend on how ties are broken.
fn scan_fixture() -> Fixture {
    let row = |t: &str, robot: &str, newpage: &str, page: &str, lang: &str, user: &str, n: f64| {
        json!({"timestamp": t, "robot": robot, "namespace": "article", "anonymous": "0",
            "unpatrolled": "0", "page": page, "language": lang, "newpage": newpage, "user": user,
            "added": n, "delta": n, "variation": n, "deleted": 0.0})
    };
    Fixture::new().datasource(
        "wikipedia",
        json!([
            "robot",
            "namespace",
            "anonymous",
            "unpatrolled",
            "page",
            "language",
            "newpage",
            "user"
        ]),
        json!([
            {"type": "count", "name": "count"},
            {"type": "doubleSum", "name": "added", "fieldName": "added"},
            {"type": "doubleSum", "name": "delta", "fieldName": "delta"},
            {"type": "doubleSum", "name": "variation", "fieldName": "variation"},
            {"type": "doubleSum", "name": "deleted", "fieldName": "deleted"}
        ]),
        &[(
            "2012-12-29T00:00:00.000Z/2013-01-10T08:00:00.000Z",
            vec![
                row(
                    "2012-12-31T23:59:59Z",
                    "0",
                    "0",
                    "Before",
                    "en",
                    "Early",
                    1.0,
                ),
                row(
                    "2013-01-01T00:00:00.000Z",
                    "1",
                    "0",
                    "11._korpus_(NOVJ)",
                    "sl",
                    "EmausBot",
                    39.0,
                ),
                row(
                    "2013-01-01T00:00:00.001Z",
                    "0",
                    "1",
                    "112_U.S._580",
                    "en",
                    "MZMcBride",
                    70.0,
                ),
                row(
                    "2013-01-01T00:00:00.002Z",
                    "0",
                    "1",
                    "113_U.S._243",
                    "en",
                    "MZMcBride",
                    77.0,
                ),
                row(
                    "2013-01-01T00:00:00.003Z",
                    "0",
                    "1",
                    "114_U.S._1",
                    "en",
                    "MZMcBride",
                    5.0,
                ),
                row("2013-01-01T12:00:00Z", "0", "0", "Later", "en", "Late", 2.0),
                row("2013-01-02T00:00:00Z", "0", "0", "After", "en", "Late", 3.0),
            ],
        )],
    )
}

/// 2013-01-01T00:00:00.000Z in milliseconds.
const JAN1_2013: i64 = 1_356_998_400_000;

#[test]
fn scan_example_list() {
    let f = scan_fixture();
    let r = f.query(json!({
       "queryType": "scan",
       "dataSource": "wikipedia",
       "resultFormat": "list",
       "columns":[],
       "intervals": [
         "2013-01-01/2013-01-02"
       ],
       "batchSize":20480,
       "limit":3
    }));
    // The documentation's sample is in legacy mode (a "timestamp" column of ISO strings).
    // Without `legacy`, Druid names the time column `__time`, returns it as milliseconds and
    // lists it first, then the dimensions, then the metrics. The documentation's metrics are
    // floats (1.0, 39.0); here `count` is a count (long) and the others doubleSums.
    let columns = json!([
        "__time",
        "robot",
        "namespace",
        "anonymous",
        "unpatrolled",
        "page",
        "language",
        "newpage",
        "user",
        "count",
        "added",
        "delta",
        "variation",
        "deleted"
    ]);
    assert_eq!(
        r,
        json!([{
          "segmentId" : format!("wikipedia_2012-12-29T00:00:00.000Z_2013-01-10T08:00:00.000Z_{VERSION_TEXT}"),
          "columns" : columns,
          "events" : [ {
              "__time" : JAN1_2013,
              "robot" : "1",
              "namespace" : "article",
              "anonymous" : "0",
              "unpatrolled" : "0",
              "page" : "11._korpus_(NOVJ)",
              "language" : "sl",
              "newpage" : "0",
              "user" : "EmausBot",
              "count" : 1,
              "added" : 39.0,
              "delta" : 39.0,
              "variation" : 39.0,
              "deleted" : 0.0
          }, {
              "__time" : JAN1_2013 + 1,
              "robot" : "0",
              "namespace" : "article",
              "anonymous" : "0",
              "unpatrolled" : "0",
              "page" : "112_U.S._580",
              "language" : "en",
              "newpage" : "1",
              "user" : "MZMcBride",
              "count" : 1,
              "added" : 70.0,
              "delta" : 70.0,
              "variation" : 70.0,
              "deleted" : 0.0
          }, {
              "__time" : JAN1_2013 + 2,
              "robot" : "0",
              "namespace" : "article",
              "anonymous" : "0",
              "unpatrolled" : "0",
              "page" : "113_U.S._243",
              "language" : "en",
              "newpage" : "1",
              "user" : "MZMcBride",
              "count" : 1,
              "added" : 77.0,
              "delta" : 77.0,
              "variation" : 77.0,
              "deleted" : 0.0
          } ]
        }])
    );
}

#[test]
fn scan_example_compacted_list() {
    let f = scan_fixture();
    let r = f.query(json!({
       "queryType": "scan",
       "dataSource": "wikipedia",
       "resultFormat": "compactedList",
       "columns":[],
       "intervals": [
         "2013-01-01/2013-01-02"
       ],
       "batchSize":20480,
       "limit":3
    }));
    let t = JAN1_2013;
    assert_eq!(
        r,
        json!([{
          "segmentId" : format!("wikipedia_2012-12-29T00:00:00.000Z_2013-01-10T08:00:00.000Z_{VERSION_TEXT}"),
          "columns" : [
            "__time", "robot", "namespace", "anonymous", "unpatrolled", "page", "language", "newpage", "user", "count", "added", "delta", "variation", "deleted"
          ],
          "events" : [
           [t, "1", "article", "0", "0", "11._korpus_(NOVJ)", "sl", "0", "EmausBot", 1, 39.0, 39.0, 39.0, 0.0],
           [t + 1, "0", "article", "0", "0", "112_U.S._580", "en", "1", "MZMcBride", 1, 70.0, 70.0, 70.0, 0.0],
           [t + 2, "0", "article", "0", "0", "113_U.S._243", "en", "1", "MZMcBride", 1, 77.0, 77.0, 77.0, 0.0]
          ]
        }])
    );

    // Named columns come back in the order asked for; `order` by time (which needs `__time`
    // among the columns) sorts across the interval: the last two rows of 2013-01-01.
    let r = f.query(json!({
       "queryType": "scan", "dataSource": "wikipedia", "resultFormat": "compactedList",
       "columns": ["page", "__time", "added"], "intervals": ["2013-01-01/2013-01-02"],
       "order": "descending", "limit": 2
    }));
    let events: Vec<Value> = r
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| {
            assert_eq!(b["columns"], json!(["page", "__time", "added"]));
            b["events"].as_array().unwrap().clone()
        })
        .collect();
    assert_eq!(
        events,
        vec![
            json!(["Later", t + 12 * 3_600_000, 2.0]),
            json!(["114_U.S._1", t + 3, 5.0])
        ]
    );
}
