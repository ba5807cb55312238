//! Datasource schemas in Druid's `dataSchema` JSON shape.
//!
//! A Druid user can paste their `dataSchema`: `dataSource`, `timestampSpec`, `dimensionsSpec`,
//! `metricsSpec` and `granularitySpec` keep Druid's field names and meanings. Validation errors
//! name the offending field by its JSON path (e.g. `metricsSpec[2].fieldName`).
//!
//! Sort order follows Druid: rows are sorted by `__time` then the dimensions in declared order,
//! unless `dimensionsSpec.forceSegmentSortByTime` is `false`, in which case `__time` may be listed
//! among the dimensions and the declared order is the sort order.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::time::{Granularity, TimestampFormat};

/// The name of the time column in every datasource.
pub const TIME_COLUMN: &str = "__time";

/// Default `lgK` of HLL sketch metrics (Druid's default).
pub const DEFAULT_HLL_LG_K: u8 = 12;

/// The longest name accepted for a datasource, dimension or metric, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// A complete datasource schema (Druid's `dataSchema`).
#[derive(Clone, Debug, PartialEq)]
pub struct DataSchema {
    /// Name of the datasource.
    pub data_source: String,
    /// Where the event time comes from.
    pub timestamp_spec: TimestampSpec,
    /// Dimensions, in declared order.
    pub dimensions: Vec<DimensionSpec>,
    /// Whether rows are sorted by `__time` first (Druid's default) or by the declared order.
    pub force_segment_sort_by_time: bool,
    /// Position of `__time` in the declared dimension order when `force_segment_sort_by_time` is
    /// false and `__time` was listed; `None` means "after all dimensions".
    pub time_sort_position: Option<usize>,
    /// Metrics aggregated at ingest.
    pub metrics: Vec<MetricSpec>,
    /// Segment and query granularity, rollup.
    pub granularity: GranularitySpec,
}

/// Druid's `timestampSpec`.
#[derive(Clone, Debug, PartialEq)]
pub struct TimestampSpec {
    /// Input field holding the timestamp.
    pub column: String,
    /// How to read it.
    pub format: TimestampFormat,
    /// Timestamp used when the field is missing; `None` rejects such rows.
    pub missing_value: Option<i64>,
}

/// The value type of a dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DimensionType {
    /// UTF-8 string, single or multi-value, dictionary-encoded with bitmap indexes.
    String,
    /// 64-bit signed integer.
    Long,
    /// 64-bit float (Druid's `float` is stored as double).
    Double,
}

impl DimensionType {
    /// Druid's name for the type.
    pub fn name(&self) -> &'static str {
        match self {
            DimensionType::String => "string",
            DimensionType::Long => "long",
            DimensionType::Double => "double",
        }
    }
}

/// How multi-value string dimensions are stored (Druid's `multiValueHandling`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum MultiValueHandling {
    /// Sort values within the row, keep duplicates (Druid's default).
    #[default]
    SortedArray,
    /// Sort and de-duplicate values within the row.
    SortedSet,
    /// Keep values as given.
    Array,
}

impl MultiValueHandling {
    fn parse(s: &str, path: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "SORTED_ARRAY" => Ok(MultiValueHandling::SortedArray),
            "SORTED_SET" => Ok(MultiValueHandling::SortedSet),
            "ARRAY" => Ok(MultiValueHandling::Array),
            _ => Err(Error::invalid(format!(
                "{path}: unknown multiValueHandling `{s}` (expected SORTED_ARRAY, SORTED_SET or ARRAY)"
            ))),
        }
    }

    /// Druid's name.
    pub fn name(&self) -> &'static str {
        match self {
            MultiValueHandling::SortedArray => "SORTED_ARRAY",
            MultiValueHandling::SortedSet => "SORTED_SET",
            MultiValueHandling::Array => "ARRAY",
        }
    }
}

/// One dimension of `dimensionsSpec.dimensions`.
#[derive(Clone, Debug, PartialEq)]
pub struct DimensionSpec {
    /// Output column name; also the input field it is read from.
    pub name: String,
    /// Value type.
    pub kind: DimensionType,
    /// Multi-value handling for string dimensions.
    pub multi_value_handling: MultiValueHandling,
    /// Whether to build a bitmap index (string dimensions only).
    pub create_bitmap_index: bool,
}

/// The kind of a metric aggregator used at ingest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// Number of input rows rolled into the row.
    Count,
    /// Sum of a long field.
    LongSum,
    /// Sum of a double field.
    DoubleSum,
    /// Minimum of a long field.
    LongMin,
    /// Maximum of a long field.
    LongMax,
    /// Minimum of a double field.
    DoubleMin,
    /// Maximum of a double field.
    DoubleMax,
    /// Long value with the earliest timestamp.
    LongFirst,
    /// Long value with the latest timestamp.
    LongLast,
    /// Double value with the earliest timestamp.
    DoubleFirst,
    /// Double value with the latest timestamp.
    DoubleLast,
    /// HyperLogLog distinct-count sketch of a field (`HLLSketchBuild`, also accepted as
    /// `hyperUnique`).
    HllSketch,
}

impl MetricKind {
    /// All kinds with their Druid type names.
    pub const ALL: [(MetricKind, &'static str); 12] = [
        (MetricKind::Count, "count"),
        (MetricKind::LongSum, "longSum"),
        (MetricKind::DoubleSum, "doubleSum"),
        (MetricKind::LongMin, "longMin"),
        (MetricKind::LongMax, "longMax"),
        (MetricKind::DoubleMin, "doubleMin"),
        (MetricKind::DoubleMax, "doubleMax"),
        (MetricKind::LongFirst, "longFirst"),
        (MetricKind::LongLast, "longLast"),
        (MetricKind::DoubleFirst, "doubleFirst"),
        (MetricKind::DoubleLast, "doubleLast"),
        (MetricKind::HllSketch, "HLLSketchBuild"),
    ];

    /// Druid's type name.
    pub fn name(&self) -> &'static str {
        MetricKind::ALL
            .iter()
            .find(|(k, _)| k == self)
            .map(|(_, n)| *n)
            .unwrap_or("unknown")
    }

    /// Parse a Druid aggregator type name (case-sensitive as in Druid, with a few aliases).
    pub fn parse(s: &str) -> Option<MetricKind> {
        if s == "hyperUnique" || s == "HLLSketch" {
            return Some(MetricKind::HllSketch);
        }
        MetricKind::ALL
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(k, _)| *k)
    }

    /// Whether the aggregator reads an input field.
    pub fn needs_field(&self) -> bool {
        !matches!(self, MetricKind::Count)
    }

    /// Whether the stored value is a long (as opposed to a double or a sketch).
    pub fn is_long(&self) -> bool {
        matches!(
            self,
            MetricKind::Count
                | MetricKind::LongSum
                | MetricKind::LongMin
                | MetricKind::LongMax
                | MetricKind::LongFirst
                | MetricKind::LongLast
        )
    }

    /// Whether the aggregator keeps the timestamp of its value (first/last).
    pub fn is_first_last(&self) -> bool {
        matches!(
            self,
            MetricKind::LongFirst
                | MetricKind::LongLast
                | MetricKind::DoubleFirst
                | MetricKind::DoubleLast
        )
    }
}

/// One metric of `metricsSpec`.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricSpec {
    /// Output column name.
    pub name: String,
    /// Aggregator.
    pub kind: MetricKind,
    /// Input field (absent for `count`).
    pub field_name: Option<String>,
    /// `lgK` for HLL sketches (4..=21).
    pub lg_k: u8,
}

/// Druid's `granularitySpec`.
#[derive(Clone, Debug, PartialEq)]
pub struct GranularitySpec {
    /// Time chunk of one segment.
    pub segment_granularity: Granularity,
    /// Truncation of `__time` before rollup.
    pub query_granularity: Granularity,
    /// Whether rows with equal truncated time and dimensions merge.
    pub rollup: bool,
}

/// Where a column lives in a datasource.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ColumnRef<'a> {
    /// `__time`.
    Time,
    /// A dimension.
    Dimension(&'a DimensionSpec),
    /// A metric.
    Metric(&'a MetricSpec),
}

impl DataSchema {
    /// Parse and validate a Druid `dataSchema` JSON document.
    ///
    /// Also accepts a full ingestion spec (`{"spec": {"dataSchema": …}}`) or `{"dataSchema": …}`.
    pub fn from_json(text: &str) -> Result<DataSchema> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Error::invalid(format!("dataSchema is not valid JSON: {e}")))?;
        DataSchema::from_value(&value)
    }

    /// Parse and validate a `dataSchema` from an already-parsed JSON value.
    pub fn from_value(value: &Value) -> Result<DataSchema> {
        let mut v = value;
        if let Some(spec) = v.get("spec") {
            v = spec;
        }
        if let Some(ds) = v.get("dataSchema") {
            v = ds;
        }
        let obj = v
            .as_object()
            .ok_or_else(|| Error::invalid("dataSchema: expected a JSON object"))?;
        check_known_fields(
            obj,
            "dataSchema",
            &[
                "dataSource",
                "timestampSpec",
                "dimensionsSpec",
                "metricsSpec",
                "granularitySpec",
                "transformSpec",
                "parser",
            ],
        )?;
        if obj.contains_key("transformSpec") || obj.contains_key("parser") {
            let which = if obj.contains_key("parser") {
                "parser"
            } else {
                "transformSpec"
            };
            if !obj.get(which).is_some_and(is_empty_json) {
                return Err(Error::invalid(format!(
                    "dataSchema.{which}: not supported yet; remove it (use timestampSpec and dimensionsSpec)"
                )));
            }
        }

        let data_source = req_str(obj, "dataSource", "dataSchema")?.to_string();
        validate_name(&data_source, "dataSchema.dataSource")?;

        let timestamp_spec = parse_timestamp_spec(obj.get("timestampSpec"))?;
        let (dimensions, force_sort, time_pos) = parse_dimensions_spec(obj.get("dimensionsSpec"))?;
        let metrics = parse_metrics_spec(obj.get("metricsSpec"))?;
        let granularity = parse_granularity_spec(obj.get("granularitySpec"))?;

        let schema = DataSchema {
            data_source,
            timestamp_spec,
            dimensions,
            force_segment_sort_by_time: force_sort,
            time_sort_position: time_pos,
            metrics,
            granularity,
        };
        schema.validate()?;
        Ok(schema)
    }

    fn validate(&self) -> Result<()> {
        let mut names: HashSet<&str> = HashSet::new();
        names.insert(TIME_COLUMN);
        for (i, d) in self.dimensions.iter().enumerate() {
            if !names.insert(&d.name) {
                return Err(Error::invalid(format!(
                    "dimensionsSpec.dimensions[{i}].name: duplicate column name `{}`",
                    d.name
                )));
            }
        }
        for (i, m) in self.metrics.iter().enumerate() {
            if !names.insert(&m.name) {
                return Err(Error::invalid(format!(
                    "metricsSpec[{i}].name: column name `{}` is already used by a dimension or metric",
                    m.name
                )));
            }
        }
        if !self.granularity.rollup && !self.metrics.is_empty() {
            // Druid allows metrics without rollup: each row keeps its own aggregated value.
        }
        if !self
            .granularity
            .query_granularity
            .is_finer_or_equal(&self.granularity.segment_granularity)
        {
            return Err(Error::invalid(format!(
                "granularitySpec.queryGranularity: `{}` is coarser than segmentGranularity `{}`",
                self.granularity.query_granularity.name(),
                self.granularity.segment_granularity.name()
            )));
        }
        Ok(())
    }

    /// Find a column by name.
    pub fn column(&self, name: &str) -> Option<ColumnRef<'_>> {
        if name == TIME_COLUMN {
            return Some(ColumnRef::Time);
        }
        if let Some(d) = self.dimensions.iter().find(|d| d.name == name) {
            return Some(ColumnRef::Dimension(d));
        }
        self.metrics
            .iter()
            .find(|m| m.name == name)
            .map(ColumnRef::Metric)
    }

    /// The row sort order as a list of keys: `None` stands for `__time`, `Some(i)` for
    /// dimension `i`. Every dimension appears exactly once, and `__time` once.
    pub fn sort_order(&self) -> Vec<Option<usize>> {
        let n = self.dimensions.len();
        let mut order: Vec<Option<usize>> = (0..n).map(Some).collect();
        let time_pos = if self.force_segment_sort_by_time {
            0
        } else {
            self.time_sort_position.unwrap_or(n).min(n)
        };
        order.insert(time_pos, None);
        order
    }

    /// Serialize back to Druid `dataSchema` JSON (canonical form; round-trips through
    /// [`DataSchema::from_value`]).
    pub fn to_json(&self) -> Value {
        let mut dims: Vec<Value> = Vec::with_capacity(self.dimensions.len() + 1);
        for d in &self.dimensions {
            let mut o = Map::new();
            o.insert("type".into(), Value::from(d.kind.name()));
            o.insert("name".into(), Value::from(d.name.clone()));
            if d.kind == DimensionType::String {
                o.insert(
                    "multiValueHandling".into(),
                    Value::from(d.multi_value_handling.name()),
                );
                o.insert(
                    "createBitmapIndex".into(),
                    Value::from(d.create_bitmap_index),
                );
            }
            dims.push(Value::Object(o));
        }
        if !self.force_segment_sort_by_time {
            let pos = self
                .time_sort_position
                .unwrap_or(dims.len())
                .min(dims.len());
            dims.insert(
                pos,
                serde_json::json!({"type": "long", "name": TIME_COLUMN}),
            );
        }
        let metrics: Vec<Value> = self
            .metrics
            .iter()
            .map(|m| {
                let mut o = Map::new();
                o.insert("type".into(), Value::from(m.kind.name()));
                o.insert("name".into(), Value::from(m.name.clone()));
                if let Some(f) = &m.field_name {
                    o.insert("fieldName".into(), Value::from(f.clone()));
                }
                if m.kind == MetricKind::HllSketch {
                    o.insert("lgK".into(), Value::from(m.lg_k));
                }
                Value::Object(o)
            })
            .collect();
        let mut ts = Map::new();
        ts.insert(
            "column".into(),
            Value::from(self.timestamp_spec.column.clone()),
        );
        ts.insert(
            "format".into(),
            Value::from(self.timestamp_spec.format.name()),
        );
        if let Some(mv) = self.timestamp_spec.missing_value {
            ts.insert("missingValue".into(), Value::from(mv));
        }
        serde_json::json!({
            "dataSource": self.data_source,
            "timestampSpec": Value::Object(ts),
            "dimensionsSpec": {
                "dimensions": dims,
                "forceSegmentSortByTime": self.force_segment_sort_by_time,
            },
            "metricsSpec": metrics,
            "granularitySpec": {
                "type": "uniform",
                "segmentGranularity": self.granularity.segment_granularity.name(),
                "queryGranularity": self.granularity.query_granularity.name(),
                "rollup": self.granularity.rollup,
            }
        })
    }
}

/// Check a datasource, dimension or metric name.
pub fn validate_name(name: &str, path: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid(format!("{path}: must not be empty")));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Error::invalid(format!(
            "{path}: name is {} bytes long; at most {MAX_NAME_LEN} are allowed",
            name.len()
        )));
    }
    if let Some(c) = name.chars().find(|c| c.is_control() || *c == '/') {
        return Err(Error::invalid(format!(
            "{path}: name `{}` contains the forbidden character {c:?}",
            name.escape_debug()
        )));
    }
    if name == "." || name == ".." {
        return Err(Error::invalid(format!(
            "{path}: `{name}` is not a valid name"
        )));
    }
    Ok(())
}

fn is_empty_json(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(o) => o.values().all(is_empty_json),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn check_known_fields(obj: &Map<String, Value>, path: &str, known: &[&str]) -> Result<()> {
    for key in obj.keys() {
        if !known.contains(&key.as_str()) {
            return Err(Error::invalid(format!(
                "{path}.{key}: unknown field (known fields: {})",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

fn req_str<'a>(obj: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a str> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(Error::invalid(format!(
            "{path}.{key}: expected a string, found {}",
            json_type(other)
        ))),
        None => Err(Error::invalid(format!(
            "{path}.{key}: required field is missing"
        ))),
    }
}

fn opt_str<'a>(obj: &'a Map<String, Value>, key: &str, path: &str) -> Result<Option<&'a str>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(Error::invalid(format!(
            "{path}.{key}: expected a string, found {}",
            json_type(other)
        ))),
    }
}

fn opt_bool(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<bool>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(Error::invalid(format!(
            "{path}.{key}: expected true or false, found {}",
            json_type(other)
        ))),
    }
}

/// A short name for a JSON value's type, for error messages.
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn parse_timestamp_spec(v: Option<&Value>) -> Result<TimestampSpec> {
    const PATH: &str = "dataSchema.timestampSpec";
    let obj = match v {
        None | Some(Value::Null) => {
            return Err(Error::invalid(format!("{PATH}: required field is missing")));
        }
        Some(Value::Object(o)) => o,
        Some(other) => {
            return Err(Error::invalid(format!(
                "{PATH}: expected an object, found {}",
                json_type(other)
            )));
        }
    };
    check_known_fields(obj, PATH, &["column", "format", "missingValue"])?;
    let column = opt_str(obj, "column", PATH)?
        .unwrap_or("timestamp")
        .to_string();
    if column.is_empty() {
        return Err(Error::invalid(format!("{PATH}.column: must not be empty")));
    }
    let format = match opt_str(obj, "format", PATH)? {
        None => TimestampFormat::Auto,
        Some(f) => {
            TimestampFormat::parse(f).map_err(|e| Error::invalid(format!("{PATH}.format: {e}")))?
        }
    };
    let missing_value = match obj.get("missingValue") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            TimestampFormat::Auto
                .parse_json(v)
                .map_err(|e| Error::invalid(format!("{PATH}.missingValue: {e}")))?,
        ),
    };
    Ok(TimestampSpec {
        column,
        format,
        missing_value,
    })
}

type DimensionsParse = (Vec<DimensionSpec>, bool, Option<usize>);

fn parse_dimensions_spec(v: Option<&Value>) -> Result<DimensionsParse> {
    const PATH: &str = "dataSchema.dimensionsSpec";
    let obj = match v {
        None | Some(Value::Null) => {
            return Err(Error::invalid(format!(
                "{PATH}: required field is missing (list the dimensions; schema discovery is not supported yet)"
            )));
        }
        Some(Value::Object(o)) => o,
        Some(other) => {
            return Err(Error::invalid(format!(
                "{PATH}: expected an object, found {}",
                json_type(other)
            )));
        }
    };
    check_known_fields(
        obj,
        PATH,
        &[
            "dimensions",
            "dimensionExclusions",
            "spatialDimensions",
            "forceSegmentSortByTime",
            "includeAllDimensions",
            "useSchemaDiscovery",
        ],
    )?;
    if opt_bool(obj, "useSchemaDiscovery", PATH)? == Some(true) {
        return Err(Error::invalid(format!(
            "{PATH}.useSchemaDiscovery: schema discovery is not supported yet; list the dimensions"
        )));
    }
    if let Some(sp) = obj.get("spatialDimensions")
        && !is_empty_json(sp)
    {
        return Err(Error::invalid(format!(
            "{PATH}.spatialDimensions: spatial dimensions are not supported"
        )));
    }
    let force_sort = opt_bool(obj, "forceSegmentSortByTime", PATH)?.unwrap_or(true);
    let list = match obj.get("dimensions") {
        Some(Value::Array(a)) => a,
        None | Some(Value::Null) => {
            return Err(Error::invalid(format!(
                "{PATH}.dimensions: required field is missing (schema discovery is not supported yet)"
            )));
        }
        Some(other) => {
            return Err(Error::invalid(format!(
                "{PATH}.dimensions: expected an array, found {}",
                json_type(other)
            )));
        }
    };
    let mut dims = Vec::with_capacity(list.len());
    let mut time_pos = None;
    for (i, item) in list.iter().enumerate() {
        let path = format!("{PATH}.dimensions[{i}]");
        let (name, kind, mvh, bitmap) = match item {
            Value::String(s) => (s.clone(), "string".to_string(), None, None),
            Value::Object(o) => {
                check_known_fields(
                    o,
                    &path,
                    &[
                        "name",
                        "type",
                        "multiValueHandling",
                        "createBitmapIndex",
                        "castToType",
                    ],
                )?;
                let name = req_str(o, "name", &path)?.to_string();
                let kind = opt_str(o, "type", &path)?.unwrap_or("string").to_string();
                let mvh = opt_str(o, "multiValueHandling", &path)?.map(str::to_string);
                let bitmap = opt_bool(o, "createBitmapIndex", &path)?;
                (name, kind, mvh, bitmap)
            }
            other => {
                return Err(Error::invalid(format!(
                    "{path}: expected a dimension name or object, found {}",
                    json_type(other)
                )));
            }
        };
        if name == TIME_COLUMN {
            if force_sort {
                if dims.is_empty() && kind == "long" {
                    // Druid allows `__time` first even when sorting by time.
                    continue;
                }
                return Err(Error::invalid(format!(
                    "{path}: `__time` may be listed as a dimension only with forceSegmentSortByTime: false"
                )));
            }
            if kind != "long" {
                return Err(Error::invalid(format!(
                    "{path}.type: `__time` must have type long, found `{kind}`"
                )));
            }
            if time_pos.is_some() {
                return Err(Error::invalid(format!("{path}: `__time` is listed twice")));
            }
            time_pos = Some(dims.len());
            continue;
        }
        validate_name(&name, &format!("{path}.name"))?;
        let kind = match kind.to_ascii_lowercase().as_str() {
            "string" => DimensionType::String,
            "long" => DimensionType::Long,
            "double" | "float" => DimensionType::Double,
            other => {
                return Err(Error::invalid(format!(
                    "{path}.type: unknown dimension type `{other}` (expected string, long, float or double)"
                )));
            }
        };
        let multi_value_handling = match mvh {
            Some(s) => MultiValueHandling::parse(&s, &format!("{path}.multiValueHandling"))?,
            None => MultiValueHandling::default(),
        };
        dims.push(DimensionSpec {
            name,
            kind,
            multi_value_handling,
            create_bitmap_index: bitmap.unwrap_or(true),
        });
    }
    Ok((dims, force_sort, time_pos))
}

fn parse_metrics_spec(v: Option<&Value>) -> Result<Vec<MetricSpec>> {
    const PATH: &str = "dataSchema.metricsSpec";
    let list = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(Error::invalid(format!(
                "{PATH}: expected an array, found {}",
                json_type(other)
            )));
        }
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let path = format!("{PATH}[{i}]");
        let obj = item.as_object().ok_or_else(|| {
            Error::invalid(format!(
                "{path}: expected an object, found {}",
                json_type(item)
            ))
        })?;
        check_known_fields(
            obj,
            &path,
            &[
                "type",
                "name",
                "fieldName",
                "lgK",
                "tgtHllType",
                "round",
                "isInputHyperUnique",
                "shouldFinalize",
            ],
        )?;
        let type_name = req_str(obj, "type", &path)?;
        let kind = MetricKind::parse(type_name).ok_or_else(|| {
            let names: Vec<&str> = MetricKind::ALL.iter().map(|(_, n)| *n).collect();
            Error::invalid(format!(
                "{path}.type: unknown aggregator `{type_name}` (supported: {}, hyperUnique)",
                names.join(", ")
            ))
        })?;
        let name = req_str(obj, "name", &path)?.to_string();
        validate_name(&name, &format!("{path}.name"))?;
        let field_name = opt_str(obj, "fieldName", &path)?.map(str::to_string);
        if kind.needs_field() && field_name.is_none() {
            return Err(Error::invalid(format!(
                "{path}.fieldName: required for aggregator `{type_name}`"
            )));
        }
        if !kind.needs_field() && field_name.is_some() {
            return Err(Error::invalid(format!(
                "{path}.fieldName: aggregator `{type_name}` takes no field"
            )));
        }
        let lg_k = match obj.get("lgK") {
            None | Some(Value::Null) => DEFAULT_HLL_LG_K,
            Some(Value::Number(n)) => match n.as_u64() {
                Some(k @ 4..=21) => k as u8,
                _ => {
                    return Err(Error::invalid(format!(
                        "{path}.lgK: must be an integer from 4 to 21, found {n}"
                    )));
                }
            },
            Some(other) => {
                return Err(Error::invalid(format!(
                    "{path}.lgK: expected a number, found {}",
                    json_type(other)
                )));
            }
        };
        if obj.contains_key("lgK") && kind != MetricKind::HllSketch {
            return Err(Error::invalid(format!(
                "{path}.lgK: only HLL sketch aggregators take lgK"
            )));
        }
        out.push(MetricSpec {
            name,
            kind,
            field_name,
            lg_k,
        });
    }
    Ok(out)
}

fn parse_granularity_spec(v: Option<&Value>) -> Result<GranularitySpec> {
    const PATH: &str = "dataSchema.granularitySpec";
    let empty = Map::new();
    let obj = match v {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(o)) => o,
        Some(other) => {
            return Err(Error::invalid(format!(
                "{PATH}: expected an object, found {}",
                json_type(other)
            )));
        }
    };
    check_known_fields(
        obj,
        PATH,
        &[
            "type",
            "segmentGranularity",
            "queryGranularity",
            "rollup",
            "intervals",
        ],
    )?;
    if let Some(t) = opt_str(obj, "type", PATH)?
        && t != "uniform"
    {
        return Err(Error::invalid(format!(
            "{PATH}.type: only `uniform` is supported, found `{t}`"
        )));
    }
    let gran = |key: &str, default: Granularity| -> Result<Granularity> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => serde_json::from_value::<Granularity>(v.clone())
                .map_err(|e| Error::invalid(format!("{PATH}.{key}: {e}"))),
        }
    };
    let segment_granularity = gran("segmentGranularity", Granularity::Day)?;
    let query_granularity = gran("queryGranularity", Granularity::None)?;
    if segment_granularity == Granularity::None {
        return Err(Error::invalid(format!(
            "{PATH}.segmentGranularity: `none` would make one segment per millisecond; use hour, day, …"
        )));
    }
    let rollup = opt_bool(obj, "rollup", PATH)?.unwrap_or(true);
    Ok(GranularitySpec {
        segment_granularity,
        query_granularity,
        rollup,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const WIKI: &str = r#"{
      "dataSource": "wikipedia",
      "timestampSpec": {"column": "timestamp", "format": "iso"},
      "dimensionsSpec": {"dimensions": ["page", "language", {"type": "long", "name": "added"},
          {"type": "string", "name": "tags", "multiValueHandling": "SORTED_SET"}]},
      "metricsSpec": [
        {"type": "count", "name": "count"},
        {"type": "longSum", "name": "sum_deleted", "fieldName": "deleted"},
        {"type": "doubleMax", "name": "max_delta", "fieldName": "delta"},
        {"type": "hyperUnique", "name": "users", "fieldName": "user"}
      ],
      "granularitySpec": {"segmentGranularity": "day", "queryGranularity": "hour", "rollup": true}
    }"#;

    #[test]
    fn parses_druid_data_schema() {
        let s = DataSchema::from_json(WIKI).unwrap();
        assert_eq!(s.data_source, "wikipedia");
        assert_eq!(s.timestamp_spec.format, TimestampFormat::Iso);
        assert_eq!(s.dimensions.len(), 4);
        assert_eq!(s.dimensions[2].kind, DimensionType::Long);
        assert_eq!(
            s.dimensions[3].multi_value_handling,
            MultiValueHandling::SortedSet
        );
        assert_eq!(s.metrics[3].kind, MetricKind::HllSketch);
        assert_eq!(s.granularity.query_granularity, Granularity::Hour);
        assert_eq!(
            s.sort_order(),
            vec![None, Some(0), Some(1), Some(2), Some(3)]
        );
        let again = DataSchema::from_value(&s.to_json()).unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn accepts_full_ingestion_spec_wrapper() {
        let wrapped = format!(r#"{{"spec": {{"dataSchema": {WIKI}}}}}"#);
        assert_eq!(
            DataSchema::from_json(&wrapped).unwrap().data_source,
            "wikipedia"
        );
    }

    #[test]
    fn custom_sort_order() {
        let s = DataSchema::from_json(
            r#"{"dataSource":"cpu","timestampSpec":{"column":"ts"},
            "dimensionsSpec":{"forceSegmentSortByTime":false,
              "dimensions":["host",{"type":"long","name":"__time"},"region"]},
            "granularitySpec":{"rollup":false}}"#,
        )
        .unwrap();
        assert_eq!(s.sort_order(), vec![Some(0), None, Some(1)]);
        assert_eq!(DataSchema::from_value(&s.to_json()).unwrap(), s);
    }

    fn err(text: &str) -> String {
        DataSchema::from_json(text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_field() {
        let base = |metrics: &str| {
            format!(
                r#"{{"dataSource":"x","timestampSpec":{{"column":"t"}},"dimensionsSpec":{{"dimensions":["a"]}},"metricsSpec":{metrics}}}"#
            )
        };
        assert!(
            err(&base(r#"[{"type":"longSum","name":"s"}]"#)).contains("metricsSpec[0].fieldName")
        );
        assert!(err(&base(r#"[{"type":"bogus","name":"s"}]"#)).contains("metricsSpec[0].type"));
        assert!(err(&base(r#"[{"type":"count","name":"a"}]"#)).contains("metricsSpec[0].name"));
        assert!(err(&base(r#"{"x":1}"#)).contains("dataSchema.metricsSpec"));
        assert!(err(r#"{"timestampSpec":{}}"#).contains("dataSource"));
        assert!(
            err(r#"{"dataSource":"x","dimensionsSpec":{"dimensions":[]}}"#)
                .contains("timestampSpec")
        );
        assert!(err(
            r#"{"dataSource":"x","timestampSpec":{"format":"weird"},"dimensionsSpec":{"dimensions":[]}}"#
        )
        .contains("timestampSpec.format"));
        assert!(err(
            r#"{"dataSource":"x","timestampSpec":{},"dimensionsSpec":{"dimensions":[{"name":"a","type":"blob"}]}}"#
        )
        .contains("dimensions[0].type"));
        assert!(err(
            r#"{"dataSource":"x","timestampSpec":{},"dimensionsSpec":{"dimensions":[]},"granularitySpec":{"segmentGranularity":"hour","queryGranularity":"day"}}"#
        )
        .contains("queryGranularity"));
        assert!(
            err(
                r#"{"dataSource":"x","timestampSpec":{},"dimensionsSpec":{"dimensions":["a","a"]}}"#
            )
            .contains("duplicate")
        );
        assert!(
            err(r#"{"dataSource":"a/b","timestampSpec":{},"dimensionsSpec":{"dimensions":[]}}"#)
                .contains("dataSource")
        );
        assert!(err("[1,2").contains("not valid JSON"));
        assert!(err(
            r#"{"dataSource":"x","timestampSpec":{},"dimensionsSpec":{"dimensions":[]},"extra":1}"#
        )
        .contains("dataSchema.extra"));
    }
}
