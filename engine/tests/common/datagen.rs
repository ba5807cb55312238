//! Seeded test data: two datasources (one raw, one rolled up) published as real segments, and the
//! rows of every *visible* segment read back through `Segment::to_record_batches`.
//!
//! - `raw`: rollup off, `queryGranularity: none`, `segmentGranularity: day`, three days; day 0 holds
//!   more than 65,536 rows (so it has two blocks); day 1 is published twice and the newer version
//!   overshadows the older one.
//! - `rolled`: rollup on, `queryGranularity: minute`, `segmentGranularity: hour`, five hours on
//!   each of three days (gaps between them), one hour split into two partitions.
//!
//! Both share one column layout: string dims `region` (low cardinality, nulls, LIKE wildcards in
//! values), `host` (medium cardinality, mixed case, a few nulls), `tags` (multi-value), long dim
//! `code`, double dim `ratio`, and the metrics listed in [`METRICS`].

use std::path::PathBuf;

use basalt_engine::schema::DataSchema;
use basalt_engine::segment::{Segment, SegmentId, SegmentWriter};
use basalt_engine::storage::DataDir;
use basalt_engine::time::Interval;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

use super::reference::{Dataset, SegmentInfo, rows_from_segment};

/// One day in milliseconds.
pub const DAY: i64 = 86_400_000;
/// One hour in milliseconds.
pub const HOUR: i64 = 3_600_000;
/// 2024-01-01T00:00:00Z, a Monday.
pub const T0: i64 = 1_704_067_200_000;

/// String dimension `region`: low cardinality; `eu_central` and `eu%west` exercise LIKE escapes.
pub const REGIONS: [&str; 6] = ["us-east", "us-west", "eu_central", "eu%west", "apac", "sa"];
/// Values of the multi-value dimension `tags`.
pub const TAGS: [&str; 8] = ["t0", "t1", "t2", "t3", "t4", "t5", "alpha", "Beta"];
/// Values of the double dimension `ratio`.
pub const RATIOS: [f64; 7] = [0.0, 0.25, 0.5, 1.5, 2.75, -1.0, 10.125];

/// The metrics of both datasources: (name, Druid type, input field).
pub const METRICS: [(&str, &str, Option<&str>); 8] = [
    ("cnt", "count", None),
    ("sum_val", "longSum", Some("val")),
    ("sum_amt", "doubleSum", Some("amt")),
    ("min_amt", "doubleMin", Some("amt")),
    ("max_amt", "doubleMax", Some("amt")),
    ("first_val", "longFirst", Some("val")),
    ("last_amt", "doubleLast", Some("amt")),
    ("users", "HLLSketchBuild", Some("user")),
];

/// How one datasource is generated.
#[derive(Clone, Debug)]
pub struct DatasetSpec {
    /// Datasource name.
    pub name: &'static str,
    /// Ingest-time rollup.
    pub rollup: bool,
    /// `queryGranularity` name.
    pub query_granularity: &'static str,
    /// `segmentGranularity` name.
    pub segment_granularity: &'static str,
    /// Number of distinct hosts.
    pub hosts: usize,
    /// Largest `code` value (codes are `-3..=max_code`).
    pub max_code: i64,
    /// Number of distinct users.
    pub users: usize,
}

/// The value domains a query generator draws from.
#[derive(Clone, Debug)]
pub struct Domains {
    /// Values of `host`.
    pub hosts: Vec<String>,
    /// Values of `code`.
    pub codes: Vec<i64>,
    /// First and last (exclusive) millisecond holding data.
    pub time_range: (i64, i64),
}

impl DatasetSpec {
    /// The raw (no rollup) datasource.
    pub fn raw() -> DatasetSpec {
        DatasetSpec {
            name: "raw",
            rollup: false,
            query_granularity: "none",
            segment_granularity: "day",
            hosts: 200,
            max_code: 50,
            users: 2000,
        }
    }

    /// The rolled-up datasource.
    pub fn rolled() -> DatasetSpec {
        DatasetSpec {
            name: "rolled",
            rollup: true,
            query_granularity: "minute",
            segment_granularity: "hour",
            hosts: 8,
            max_code: 4,
            users: 300,
        }
    }

    /// Druid `dataSchema` JSON.
    pub fn schema_json(&self) -> Value {
        let metrics: Vec<Value> = METRICS
            .iter()
            .map(|(name, ty, field)| match field {
                Some(f) => json!({"type": ty, "name": name, "fieldName": f}),
                None => json!({"type": ty, "name": name}),
            })
            .collect();
        json!({
            "dataSource": self.name,
            "timestampSpec": {"column": "ts", "format": "millis"},
            "dimensionsSpec": {"dimensions": [
                "region",
                "host",
                {"type": "string", "name": "tags", "multiValueHandling": "SORTED_ARRAY"},
                {"type": "long", "name": "code"},
                {"type": "double", "name": "ratio"}
            ]},
            "metricsSpec": metrics,
            "granularitySpec": {
                "segmentGranularity": self.segment_granularity,
                "queryGranularity": self.query_granularity,
                "rollup": self.rollup
            }
        })
    }

    /// The host names.
    pub fn host_names(&self) -> Vec<String> {
        (0..self.hosts)
            .map(|i| match i % 10 {
                // Mixed case for case-insensitive search and LIKE/regex case sensitivity.
                7 => format!("DB-{i:03}"),
                8 => format!("db-{i:03}"),
                _ => format!("host-{i:03}"),
            })
            .collect()
    }

    /// The value domains of this datasource.
    pub fn domains(&self, time_range: (i64, i64)) -> Domains {
        Domains {
            hosts: self.host_names(),
            codes: (-3..=self.max_code).collect(),
            time_range,
        }
    }
}

/// The input rows of one partition.
pub type Partition = Vec<Map<String, Value>>;

/// One random input row (JSON object as ingested) at time `ts`.
pub fn random_row(
    rng: &mut StdRng,
    spec: &DatasetSpec,
    hosts: &[String],
    ts: i64,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("ts".into(), json!(ts));
    if !rng.random_bool(0.1) {
        // Skewed: the first regions are more common.
        let i = (rng.random_range(0.0f64..1.0).powi(2) * REGIONS.len() as f64) as usize;
        m.insert("region".into(), json!(REGIONS[i.min(REGIONS.len() - 1)]));
    }
    if !rng.random_bool(0.03) {
        m.insert(
            "host".into(),
            json!(hosts[rng.random_range(0..hosts.len())]),
        );
    }
    match rng.random_range(0..10) {
        0..=2 => {} // null
        3 => {
            m.insert("tags".into(), json!([]));
        } // empty list: null
        4 => {
            m.insert("tags".into(), json!(TAGS[rng.random_range(0..TAGS.len())]));
        }
        _ => {
            let n = rng.random_range(1..=3);
            let mut picked: Vec<&str> = Vec::new();
            while picked.len() < n {
                let t = TAGS[rng.random_range(0..TAGS.len())];
                if !picked.contains(&t) {
                    picked.push(t);
                }
            }
            m.insert("tags".into(), json!(picked));
        }
    }
    if !rng.random_bool(0.1) {
        m.insert("code".into(), json!(rng.random_range(-3..=spec.max_code)));
    }
    if !rng.random_bool(0.15) {
        m.insert(
            "ratio".into(),
            json!(RATIOS[rng.random_range(0..RATIOS.len())]),
        );
    }
    if !rng.random_bool(0.1) {
        m.insert("val".into(), json!(rng.random_range(-50..1000i64)));
    }
    if !rng.random_bool(0.1) {
        // Two decimals, mostly positive.
        m.insert(
            "amt".into(),
            json!(rng.random_range(-5_000..100_000i64) as f64 / 100.0),
        );
    }
    if !rng.random_bool(0.05) {
        m.insert(
            "user".into(),
            json!(format!("u{}", rng.random_range(0..spec.users))),
        );
    }
    m
}

/// A published segment and whether a newer version hides it.
#[derive(Clone, Debug)]
struct Published {
    info: SegmentInfo,
    path: PathBuf,
}

/// Writes segments of one datasource and tracks which are visible.
struct Builder<'a> {
    dir: &'a DataDir,
    schema: DataSchema,
    spec: DatasetSpec,
    published: Vec<Published>,
}

impl Builder<'_> {
    /// Write `rows` (all inside `interval`) as the given partitions of a new version of
    /// `interval`, publish them together, and hide every older version of that interval.
    fn publish(&mut self, interval: Interval, partitions: Vec<Vec<Map<String, Value>>>) {
        let version = self.dir.allocate_version(self.spec.name).unwrap();
        let mut staged = Vec::new();
        for (p, rows) in partitions.into_iter().enumerate() {
            let mut w = SegmentWriter::new(&self.schema, interval).unwrap();
            for r in &rows {
                w.push_json(r).unwrap();
            }
            let path = self.dir.staging_path().unwrap();
            let stats = w.finish(&path).unwrap();
            let id = SegmentId {
                datasource: self.spec.name.to_string(),
                interval,
                version,
                partition: p as u32,
            };
            staged.push((id, path, stats.rows_out));
        }
        let records = self.dir.publish(staged, None).unwrap();
        // Overshadowing: a newer version of the same interval hides the older ones.
        self.published
            .retain(|p| p.info.id.interval != interval || p.info.id.version >= version);
        for r in records {
            let path = self.dir.segment_path(&r);
            self.published.push(Published {
                info: SegmentInfo {
                    id: r.id.clone(),
                    num_rows: r.num_rows,
                },
                path,
            });
        }
    }

    fn finish(self) -> Dataset {
        let mut rows = Vec::new();
        let mut segments = Vec::new();
        for p in &self.published {
            let seg = Segment::open(&p.path).unwrap();
            assert_eq!(seg.num_rows(), p.info.num_rows, "{}", p.path.display());
            rows.extend(rows_from_segment(&seg, &self.schema));
            segments.push(p.info.clone());
        }
        Dataset::new(self.spec.name, &self.schema, rows, segments)
    }
}

/// Publish hand-made rows: each entry is one publish of one interval (a new version, which
/// overshadows earlier publishes of that interval) with its partitions' rows.
pub fn build_custom(
    dir: &DataDir,
    spec: DatasetSpec,
    publishes: Vec<(Interval, Vec<Partition>)>,
) -> Dataset {
    let schema = DataSchema::from_value(&spec.schema_json()).unwrap();
    let mut b = Builder {
        dir,
        schema,
        spec,
        published: Vec::new(),
    };
    for (interval, parts) in publishes {
        b.publish(interval, parts);
    }
    b.finish()
}

/// Build the `raw` datasource. `big_rows` rows go into day 0 (more than 65,536 makes two blocks).
pub fn build_raw(dir: &DataDir, seed: u64, big_rows: usize) -> (Dataset, Domains) {
    let spec = DatasetSpec::raw();
    let schema = DataSchema::from_value(&spec.schema_json()).unwrap();
    let hosts = spec.host_names();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut b = Builder {
        dir,
        schema,
        spec: spec.clone(),
        published: Vec::new(),
    };
    let day = |d: i64| Interval::new(T0 + d * DAY, T0 + (d + 1) * DAY).unwrap();
    let gen_day = |rng: &mut StdRng, d: i64, n: usize| -> Vec<Map<String, Value>> {
        (0..n)
            .map(|_| {
                // Some rows share a timestamp exactly (ties for first/last).
                let ts = if rng.random_bool(0.05) {
                    T0 + d * DAY + rng.random_range(0..24) * HOUR
                } else {
                    T0 + d * DAY + rng.random_range(0..DAY)
                };
                random_row(rng, &spec, &hosts, ts)
            })
            .collect()
    };
    let d0 = gen_day(&mut rng, 0, big_rows);
    b.publish(day(0), vec![d0]);
    let d1_old = gen_day(&mut rng, 1, 6_000);
    b.publish(day(1), vec![d1_old]);
    let d2 = gen_day(&mut rng, 2, 5_000);
    b.publish(day(2), vec![d2]);
    // A newer version of day 1 overshadows the first one.
    let d1_new = gen_day(&mut rng, 1, 4_000);
    b.publish(day(1), vec![d1_new]);
    let ds = b.finish();
    let domains = spec.domains((T0, T0 + 3 * DAY));
    (ds, domains)
}

/// Build the `rolled` datasource: hours 2, 3, 10, 11 and 23 of three days, about `rows_per_hour`
/// input rows each; day 0 hour 10 in two partitions.
pub fn build_rolled(dir: &DataDir, seed: u64, rows_per_hour: usize) -> (Dataset, Domains) {
    let spec = DatasetSpec::rolled();
    let schema = DataSchema::from_value(&spec.schema_json()).unwrap();
    let hosts = spec.host_names();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut b = Builder {
        dir,
        schema,
        spec: spec.clone(),
        published: Vec::new(),
    };
    for d in 0..3 {
        for h in [2i64, 3, 10, 11, 23] {
            let start = T0 + d * DAY + h * HOUR;
            let interval = Interval::new(start, start + HOUR).unwrap();
            // Rows crowd into a few minutes so rollup merges many of them.
            let n = rng.random_range(rows_per_hour / 2..=rows_per_hour);
            let rows: Vec<_> = (0..n)
                .map(|_| {
                    let minute = rng.random_range(0..20) * 3;
                    let ts = start + minute * 60_000 + rng.random_range(0..60_000);
                    random_row(&mut rng, &spec, &hosts, ts)
                })
                .collect();
            let parts = if d == 0 && h == 10 {
                let (a, b2) = rows.split_at(rows.len() / 3);
                vec![a.to_vec(), b2.to_vec()]
            } else {
                vec![rows]
            };
            b.publish(interval, parts);
        }
    }
    let ds = b.finish();
    let domains = spec.domains((T0, T0 + 3 * DAY));
    (ds, domains)
}
