//! The TSBS devops "cpu-only" dataset, generated columnar straight into Arrow arrays.
//!
//! Shape (as TSBS emits it): one row per host every `interval` (10 s), rows ordered by time then
//! host; 10 tag columns fixed per host and 10 `usage_*` fields, each a per-host random walk with
//! N(0, 1) steps clamped to [0, 100] and stored as integers (TSBS truncates the float state).
//!
//! Determinism: every random stream is derived from the seed with SplitMix64 and drawn from a
//! xoshiro256++ generator implemented here (normals by ziggurat), so the same [`TsbsConfig`]
//! yields identical batches on every run, independently of any RNG crate's version; across
//! platforms only the last-ulp behaviour of the system `exp`/`ln` could matter. Each
//! (field, host) walk has its own stream, so the output does not depend on batch size or on how
//! the work is split.

use std::sync::Arc;

use anyhow::{bail, ensure};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Serialize;

/// Name of the time column.
pub const TIME_COLUMN: &str = "timestamp";

/// The 10 tag columns, in schema order.
pub const TAG_NAMES: [&str; 10] = [
    "hostname",
    "region",
    "datacenter",
    "rack",
    "os",
    "arch",
    "team",
    "service",
    "service_version",
    "service_environment",
];

/// The 10 cpu field columns, in schema order.
pub const FIELD_NAMES: [&str; 10] = [
    "usage_user",
    "usage_system",
    "usage_idle",
    "usage_nice",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
];

/// TSBS's regions and the datacenters of each.
const REGIONS: [(&str, &[&str]); 9] = [
    (
        "us-east-1",
        &["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1e"],
    ),
    ("us-west-1", &["us-west-1a", "us-west-1b"]),
    ("us-west-2", &["us-west-2a", "us-west-2b", "us-west-2c"]),
    ("eu-west-1", &["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
    ("eu-central-1", &["eu-central-1a", "eu-central-1b"]),
    ("ap-southeast-1", &["ap-southeast-1a", "ap-southeast-1b"]),
    ("ap-southeast-2", &["ap-southeast-2a", "ap-southeast-2b"]),
    ("ap-northeast-1", &["ap-northeast-1a", "ap-northeast-1c"]),
    ("sa-east-1", &["sa-east-1a", "sa-east-1b", "sa-east-1c"]),
];
const RACKS: u64 = 100;
const OSES: [&str; 3] = ["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"];
const ARCHES: [&str; 2] = ["x64", "x86"];
const TEAMS: [&str; 4] = ["SF", "NYC", "LON", "CHI"];
const SERVICES: u64 = 20;
const SERVICE_VERSIONS: u64 = 2;
const SERVICE_ENVIRONMENTS: [&str; 3] = ["production", "staging", "test"];

/// Lower and upper clamp of every cpu field.
const FIELD_MIN: f64 = 0.0;
const FIELD_MAX: f64 = 100.0;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TsbsConfig {
    /// Number of hosts (`host_0` .. `host_{hosts-1}`).
    pub hosts: u32,
    /// First timestamp, epoch milliseconds UTC.
    pub start_ms: i64,
    /// End of the time range (exclusive), epoch milliseconds UTC.
    pub end_ms: i64,
    /// Time between two readings of one host, milliseconds (TSBS: 10 s).
    pub interval_ms: i64,
    /// Seed of every random stream.
    pub seed: u64,
    /// Target rows per batch; batches always hold whole epochs (all hosts of one timestamp).
    pub batch_rows: usize,
}

impl TsbsConfig {
    /// Default target batch size (and Parquet row-group size).
    pub const DEFAULT_BATCH_ROWS: usize = 1_000_000;

    /// `hosts` hosts reporting every 10 s for `hours` hours from `start_ms`.
    pub fn new(hosts: u32, hours: u32, start_ms: i64, seed: u64) -> Self {
        Self {
            hosts,
            start_ms,
            end_ms: start_ms + i64::from(hours) * 3_600_000,
            interval_ms: 10_000,
            seed,
            batch_rows: Self::DEFAULT_BATCH_ROWS,
        }
    }

    /// Checks the configuration is usable.
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure!(self.hosts > 0, "hosts must be > 0");
        ensure!(self.interval_ms > 0, "interval must be > 0");
        ensure!(self.batch_rows > 0, "batch rows must be > 0");
        if self.end_ms <= self.start_ms {
            bail!("empty time range: end must be after start");
        }
        Ok(())
    }

    /// Number of distinct timestamps.
    pub fn epochs(&self) -> u64 {
        let span = (self.end_ms - self.start_ms).max(0) as u64;
        span.div_ceil(self.interval_ms as u64)
    }

    /// Total number of rows.
    pub fn rows(&self) -> u64 {
        self.epochs() * u64::from(self.hosts)
    }

    /// Whole epochs per batch: `batch_rows / hosts`, at least one.
    pub fn epochs_per_batch(&self) -> usize {
        (self.batch_rows / self.hosts as usize).max(1)
    }

    /// Rows in a full batch.
    pub fn rows_per_batch(&self) -> usize {
        self.epochs_per_batch() * self.hosts as usize
    }
}

/// The Arrow schema of the generated batches: `timestamp`, the 10 tags, the 10 fields.
pub fn tsbs_schema() -> SchemaRef {
    let mut fields = Vec::with_capacity(21);
    fields.push(Field::new(
        TIME_COLUMN,
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        false,
    ));
    fields.extend(
        TAG_NAMES
            .iter()
            .map(|name| Field::new(*name, DataType::Utf8, false)),
    );
    fields.extend(
        FIELD_NAMES
            .iter()
            .map(|name| Field::new(*name, DataType::Int64, false)),
    );
    Arc::new(Schema::new(fields))
}

/// Streams the dataset as batches of whole epochs (about `cfg.batch_rows` rows each).
///
/// Panics if `cfg` does not [validate](TsbsConfig::validate).
pub fn tsbs_batches(cfg: &TsbsConfig) -> impl Iterator<Item = RecordBatch> + Send + use<> {
    TsbsBatches::new(cfg)
}

/// Iterator behind [`tsbs_batches`]; also exposes the per-host tags.
#[derive(Debug)]
pub struct TsbsBatches {
    cfg: TsbsConfig,
    schema: SchemaRef,
    /// `tags[t][h]`: value of tag `t` for host `h`.
    tags: Vec<Vec<String>>,
    /// Tag columns of a full batch; shorter batches slice them (zero-copy).
    tag_columns: Vec<ArrayRef>,
    /// `walks[f * hosts + h]`: the random walk of field `f` of host `h`.
    walks: Vec<Walk>,
    next_epoch: u64,
}

impl TsbsBatches {
    /// Panics if `cfg` does not [validate](TsbsConfig::validate).
    pub fn new(cfg: &TsbsConfig) -> Self {
        if let Err(e) = cfg.validate() {
            panic!("invalid TSBS config: {e:#}");
        }
        let hosts = cfg.hosts as usize;
        let tags = host_tags(cfg.hosts, cfg.seed);
        // Tag columns for the longest batch this run will produce.
        let epb = (cfg.epochs_per_batch() as u64).min(cfg.epochs()) as usize;
        let tag_columns = tags
            .iter()
            .map(|values| {
                let col = StringArray::from_iter_values(
                    (0..epb).flat_map(|_| values.iter().map(String::as_str)),
                );
                Arc::new(col) as ArrayRef
            })
            .collect();
        let walks = (0..FIELD_NAMES.len() as u64)
            .flat_map(|f| (0..hosts as u64).map(move |h| (f, h)))
            .map(|(f, h)| Walk::new(Rng::for_stream(cfg.seed, (h << 8) | f)))
            .collect();
        Self {
            cfg: cfg.clone(),
            schema: tsbs_schema(),
            tags,
            tag_columns,
            walks,
            next_epoch: 0,
        }
    }

    /// The configuration being generated.
    pub fn config(&self) -> &TsbsConfig {
        &self.cfg
    }

    /// The schema of every batch.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Value of tag `TAG_NAMES[tag]` for host `host`.
    pub fn host_tag(&self, host: usize, tag: usize) -> &str {
        &self.tags[tag][host]
    }
}

impl Iterator for TsbsBatches {
    type Item = RecordBatch;

    fn next(&mut self) -> Option<RecordBatch> {
        let total = self.cfg.epochs();
        if self.next_epoch >= total {
            return None;
        }
        let epochs = (total - self.next_epoch).min(self.cfg.epochs_per_batch() as u64) as usize;
        let hosts = self.cfg.hosts as usize;
        let rows = epochs * hosts;

        let first_ts = self.cfg.start_ms + self.next_epoch as i64 * self.cfg.interval_ms;
        let mut ts = Vec::with_capacity(rows);
        for e in 0..epochs as i64 {
            ts.extend(std::iter::repeat_n(
                first_ts + e * self.cfg.interval_ms,
                hosts,
            ));
        }
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(21);
        columns.push(Arc::new(
            TimestampMillisecondArray::from(ts).with_timezone("UTC"),
        ));
        for col in &self.tag_columns {
            columns.push(if col.len() == rows {
                col.clone()
            } else {
                col.slice(0, rows)
            });
        }
        for walks in self.walks.chunks_mut(hosts) {
            columns.push(Arc::new(Int64Array::from(walk_column(walks, epochs))));
        }
        self.next_epoch += epochs as u64;
        Some(
            RecordBatch::try_new(self.schema.clone(), columns)
                .expect("generated columns match tsbs_schema()"),
        )
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.cfg.epochs().saturating_sub(self.next_epoch);
        let n = left.div_ceil(self.cfg.epochs_per_batch() as u64) as usize;
        (n, Some(n))
    }
}

impl ExactSizeIterator for TsbsBatches {}

/// Advances every walk of one field `epochs` times, emitting epoch-major (time, then host).
fn walk_column(walks: &mut [Walk], epochs: usize) -> Vec<i64> {
    let mut out = Vec::with_capacity(epochs * walks.len());
    for _ in 0..epochs {
        out.extend(walks.iter_mut().map(Walk::next_value));
    }
    out
}

/// Draws the fixed tags of every host, column-major: `tags[t][h]`.
fn host_tags(hosts: u32, seed: u64) -> Vec<Vec<String>> {
    let mut rng = Rng::for_stream(seed, u64::MAX);
    let n = hosts as usize;
    let mut tags: Vec<Vec<String>> = (0..TAG_NAMES.len())
        .map(|_| Vec::with_capacity(n))
        .collect();
    for h in 0..n {
        let (region, datacenters) = REGIONS[rng.below(REGIONS.len() as u64) as usize];
        let row = [
            format!("host_{h}"),
            region.to_owned(),
            datacenters[rng.below(datacenters.len() as u64) as usize].to_owned(),
            rng.below(RACKS).to_string(),
            OSES[rng.below(OSES.len() as u64) as usize].to_owned(),
            ARCHES[rng.below(ARCHES.len() as u64) as usize].to_owned(),
            TEAMS[rng.below(TEAMS.len() as u64) as usize].to_owned(),
            rng.below(SERVICES).to_string(),
            rng.below(SERVICE_VERSIONS).to_string(),
            SERVICE_ENVIRONMENTS[rng.below(SERVICE_ENVIRONMENTS.len() as u64) as usize].to_owned(),
        ];
        for (col, value) in tags.iter_mut().zip(row) {
            col.push(value);
        }
    }
    tags
}

/// A clamped random walk with N(0, 1) steps, as TSBS's `ClampedRandomWalkDistribution`.
#[derive(Debug, Clone)]
struct Walk {
    rng: Rng,
    value: f64,
}

impl Walk {
    fn new(mut rng: Rng) -> Self {
        let value = rng.unit() * FIELD_MAX;
        Self { rng, value }
    }

    /// Returns the current value as TSBS stores it (truncated), then takes one step.
    #[inline]
    fn next_value(&mut self) -> i64 {
        let out = self.value as i64;
        self.value = (self.value + normal(&mut self.rng)).clamp(FIELD_MIN, FIELD_MAX);
        out
    }
}

/// Layers of the ziggurat.
const ZIG_LAYERS: usize = 128;
/// Start of the tail (right edge of the base layer).
const ZIG_R: f64 = 3.442_619_855_899;
/// Area of each layer.
const ZIG_V: f64 = 9.912_563_035_262_17e-3;

/// Ziggurat tables: layer edges `x[i]` and the ratios `x[i + 1] / x[i]`.
struct Ziggurat {
    x: [f64; ZIG_LAYERS + 1],
    ratio: [f64; ZIG_LAYERS],
}

fn ziggurat() -> &'static Ziggurat {
    static TABLES: std::sync::OnceLock<Ziggurat> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        let mut x = [0.0; ZIG_LAYERS + 1];
        let mut f = (-0.5 * ZIG_R * ZIG_R).exp();
        x[0] = ZIG_V / f;
        x[1] = ZIG_R;
        for i in 2..ZIG_LAYERS {
            x[i] = (-2.0 * (ZIG_V / x[i - 1] + f).ln()).sqrt();
            f = (-0.5 * x[i] * x[i]).exp();
        }
        let ratio = std::array::from_fn(|i| x[i + 1] / x[i]);
        Ziggurat { x, ratio }
    })
}

/// A standard normal variate: Marsaglia & Tsang's ziggurat in Doornik's formulation (ZIGNOR);
/// one random draw and no transcendental function in ~99% of calls.
#[inline]
fn normal(rng: &mut Rng) -> f64 {
    let z = ziggurat();
    loop {
        let bits = rng.next_u64();
        let i = (bits & 0x7F) as usize;
        let u = 2.0 * ((bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)) - 1.0; // [-1, 1)
        if u.abs() < z.ratio[i] {
            return u * z.x[i];
        }
        if i == 0 {
            // Base layer beyond R: Marsaglia's tail method.
            loop {
                let x = (1.0 - rng.unit()).ln() / ZIG_R;
                let y = (1.0 - rng.unit()).ln();
                if -2.0 * y >= x * x {
                    return if u < 0.0 { x - ZIG_R } else { ZIG_R - x };
                }
            }
        }
        let x = u * z.x[i];
        let f0 = (-0.5 * (z.x[i] * z.x[i] - x * x)).exp();
        let f1 = (-0.5 * (z.x[i + 1] * z.x[i + 1] - x * x)).exp();
        if f1 + rng.unit() * (f0 - f1) < 1.0 {
            return x;
        }
    }
}

/// xoshiro256++ (Blackman & Vigna), seeded through SplitMix64.
#[derive(Debug, Clone)]
struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// An independent stream for `(seed, stream)`.
    fn for_stream(seed: u64, stream: u64) -> Self {
        let mut sm = seed ^ splitmix64(&mut stream.wrapping_add(0x5851_F42D_4C95_7F2D));
        Self {
            s: std::array::from_fn(|_| splitmix64(&mut sm)),
        }
    }

    #[inline]
    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let out = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    /// Uniform in [0, 1) with 53 random bits.
    #[inline]
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n` (multiply-shift; the bias is below 2^-50 for the small `n` used here).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, TimestampMillisecondType};

    use super::*;

    fn small() -> TsbsConfig {
        let mut cfg = TsbsConfig::new(7, 1, 1_451_606_400_000, 42);
        cfg.batch_rows = 100; // 14 epochs of 7 hosts per batch
        cfg
    }

    #[test]
    fn shape_order_and_ranges() {
        let cfg = small();
        let batches: Vec<_> = tsbs_batches(&cfg).collect();
        assert_eq!(cfg.epochs(), 360);
        assert_eq!(batches.len(), 360usize.div_ceil(14));
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows as u64, cfg.rows());

        let mut prev = (i64::MIN, 0usize);
        let mut row = 0usize;
        for b in &batches {
            assert_eq!(b.schema(), tsbs_schema());
            let ts = b.column(0).as_primitive::<TimestampMillisecondType>();
            let host = b.column(1).as_string::<i32>();
            for i in 0..b.num_rows() {
                let h: usize = host.value(i)["host_".len()..].parse().expect("host_N");
                assert_eq!(h, row % 7, "rows are host-ordered within a timestamp");
                assert!((ts.value(i), h) > prev, "rows ordered by (time, host)");
                assert_eq!(ts.value(i), cfg.start_ms + (row / 7) as i64 * 10_000);
                prev = (ts.value(i), h);
                row += 1;
            }
            for f in 0..FIELD_NAMES.len() {
                let col = b.column(11 + f).as_primitive::<Int64Type>();
                assert_eq!(col.null_count(), 0);
                assert!(col.values().iter().all(|v| (0..=100).contains(v)));
            }
        }
    }

    #[test]
    fn tags_fixed_per_host_and_valid() {
        let cfg = small();
        let gen_ = TsbsBatches::new(&cfg);
        for h in 0..7 {
            let region = gen_.host_tag(h, 1);
            let (_, dcs) = REGIONS
                .iter()
                .find(|(r, _)| *r == region)
                .expect("known region");
            assert!(dcs.contains(&gen_.host_tag(h, 2)));
            assert!(gen_.host_tag(h, 3).parse::<u64>().expect("rack") < RACKS);
            assert!(OSES.contains(&gen_.host_tag(h, 4)));
            assert!(SERVICE_ENVIRONMENTS.contains(&gen_.host_tag(h, 9)));
        }
        let reference = TsbsBatches::new(&cfg);
        for b in gen_ {
            for t in 0..TAG_NAMES.len() {
                let col = b.column(1 + t).as_string::<i32>();
                for i in 0..b.num_rows() {
                    let h = i % 7; // batches start on an epoch boundary
                    assert_eq!(col.value(i), reference.host_tag(h, t));
                }
            }
        }
    }

    #[test]
    fn deterministic_and_independent_of_batch_size() {
        let a: Vec<_> = tsbs_batches(&small()).collect();
        let b: Vec<_> = tsbs_batches(&small()).collect();
        assert_eq!(a, b);

        let mut big = small();
        big.batch_rows = 1_000_000;
        let one: Vec<_> = tsbs_batches(&big).collect();
        assert_eq!(one.len(), 1);
        let concat = concat(&a);
        assert_eq!(concat, one[0]);

        let mut other_seed = small();
        other_seed.seed = 43;
        assert_ne!(tsbs_batches(&other_seed).next(), a.first().cloned());
    }

    /// Concatenates batches column by column.
    fn concat(batches: &[RecordBatch]) -> RecordBatch {
        let schema = tsbs_schema();
        let mut columns: Vec<ArrayRef> = Vec::new();
        let ts: Vec<i64> = batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_primitive::<TimestampMillisecondType>()
                    .values()
                    .to_vec()
            })
            .collect();
        columns.push(Arc::new(
            TimestampMillisecondArray::from(ts).with_timezone("UTC"),
        ));
        for t in 0..TAG_NAMES.len() {
            let col = StringArray::from_iter_values(batches.iter().flat_map(|b| {
                let c = b.column(1 + t).as_string::<i32>();
                (0..c.len())
                    .map(|i| c.value(i).to_owned())
                    .collect::<Vec<_>>()
            }));
            columns.push(Arc::new(col));
        }
        for f in 0..FIELD_NAMES.len() {
            let v: Vec<i64> = batches
                .iter()
                .flat_map(|b| {
                    b.column(11 + f)
                        .as_primitive::<Int64Type>()
                        .values()
                        .to_vec()
                })
                .collect();
            columns.push(Arc::new(Int64Array::from(v)));
        }
        RecordBatch::try_new(schema, columns).expect("valid")
    }

    #[test]
    fn walk_moves_and_stays_clamped() {
        let mut w = Walk::new(Rng::for_stream(1, 1));
        let values: Vec<i64> = (0..100_000).map(|_| w.next_value()).collect();
        assert!(values.iter().all(|v| (0..=100).contains(v)));
        let distinct: std::collections::HashSet<_> = values.iter().collect();
        assert!(distinct.len() > 50, "walk explores the range");
        let steps: Vec<i64> = values.windows(2).map(|p| (p[1] - p[0]).abs()).collect();
        assert!(steps.iter().all(|s| *s <= 7), "unit-variance steps");
    }

    #[test]
    fn ziggurat_is_standard_normal() {
        let mut rng = Rng::for_stream(3, 9);
        let n = 2_000_000;
        let xs: Vec<f64> = (0..n).map(|_| normal(&mut rng)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.005, "mean {mean}");
        assert!((var - 1.0).abs() < 0.01, "variance {var}");
        // P(|X| > 1) = 0.3173, P(|X| > 2) = 0.0455, P(|X| > 3.5) = 4.65e-4 (into the tail).
        for (k, p) in [(1.0, 0.3173), (2.0, 0.0455), (3.5, 4.65e-4)] {
            let frac = xs.iter().filter(|x| x.abs() > k).count() as f64 / n as f64;
            assert!(
                (frac - p).abs() < p * 0.05 + 2e-4,
                "P(|X| > {k}) = {frac}, want {p}"
            );
        }
    }

    #[test]
    fn rows_and_epochs() {
        let cfg = TsbsConfig::new(4000, 24, 0, 1);
        assert_eq!(cfg.rows(), 34_560_000);
        assert_eq!(cfg.rows_per_batch(), 1_000_000);
        assert!(TsbsConfig::new(0, 1, 0, 1).validate().is_err());
        assert!(TsbsConfig::new(1, 0, 0, 1).validate().is_err());
    }
}
