//! Query-time aggregators: parsing, per-row accumulation over decoded blocks, merging of
//! partial states across segments, and finalization into JSON.
//!
//! Combination rules are the ones rollup uses ([`crate::aggregate`]), so a query over rolled-up
//! rows equals the query over the raw rows.

use std::sync::Arc;

use datasketches::hll::{HllSketch, HllType, HllUnion};
use roaring::RoaringBitmap;
use serde_json::Value;

use crate::aggregate::{combine_double, combine_long, combine_pair};
use crate::column::Values;
use crate::column::frames::{FRAME, FrameBlock};
use crate::error::{Error, Result};
use crate::query::filter::{Filter, Num};
use crate::query::json::Obj;
use crate::schema::{DEFAULT_HLL_LG_K, MetricKind};
use crate::segment::Segment;
use crate::segment::format::{ColumnMeta, ColumnType, StreamRole};

/// What an aggregator computes.
#[derive(Clone, Debug, PartialEq)]
pub enum AggKind {
    /// Rows counted.
    Count,
    /// A long-valued aggregate (sum, min, max).
    Long(MetricKind),
    /// A double-valued aggregate (sum, min, max).
    Double(MetricKind),
    /// Long first/last.
    LongPair(MetricKind),
    /// Double first/last.
    DoublePair(MetricKind),
    /// Distinct count by HLL: over a sketch column (`hyperUnique`, `HLLSketchMerge`) or over
    /// dimension values (`HLLSketchBuild`, `cardinality`).
    Hll {
        /// Round the estimate to a long.
        round: bool,
        /// For `cardinality`: the dimensions whose values are counted.
        fields: Vec<String>,
        /// For `cardinality` with `byRow`: count distinct combinations.
        by_row: bool,
        /// `lgK` of the union.
        lg_k: u8,
    },
}

/// One aggregator of a query.
#[derive(Clone, Debug)]
pub struct AggregatorSpec {
    /// Output name.
    pub name: String,
    /// What it computes.
    pub kind: AggKind,
    /// Input column (absent for count and cardinality).
    pub field: Option<String>,
    /// Only rows matching this filter are aggregated (`filtered` aggregator).
    pub filter: Option<Arc<Filter>>,
}

impl AggregatorSpec {
    /// Parse one Druid aggregator object.
    pub fn parse(v: &Value, path: &str) -> Result<AggregatorSpec> {
        let o = Obj::new(v, path)?;
        let t = o.req_str("type")?;
        if t == "filtered" {
            o.check_known(&["type", "filter", "aggregator", "name"])?;
            let filter = Filter::parse(
                o.get("filter").ok_or_else(|| {
                    Error::invalid(format!("{}: required field is missing", o.child("filter")))
                })?,
                &o.child("filter"),
            )?;
            let inner = AggregatorSpec::parse(
                o.get("aggregator").ok_or_else(|| {
                    Error::invalid(format!(
                        "{}: required field is missing",
                        o.child("aggregator")
                    ))
                })?,
                &o.child("aggregator"),
            )?;
            let filter = match inner.filter {
                Some(f) => Filter::And(vec![filter, (*f).clone()]),
                None => filter,
            };
            return Ok(AggregatorSpec {
                name: o.opt_str("name")?.map(str::to_string).unwrap_or(inner.name),
                kind: inner.kind,
                field: inner.field,
                filter: Some(Arc::new(filter)),
            });
        }
        let name = o.req_str("name")?.to_string();
        let round = o.opt_bool("round")?.unwrap_or(false);
        let lg_k = match o.opt_u64("lgK")? {
            None => DEFAULT_HLL_LG_K,
            Some(k @ 4..=21) => k as u8,
            Some(k) => {
                return Err(Error::invalid(format!(
                    "{}: must be from 4 to 21, found {k}",
                    o.child("lgK")
                )));
            }
        };
        let metric = |k: MetricKind| -> AggKind {
            if k.is_first_last() {
                if k.is_long() {
                    AggKind::LongPair(k)
                } else {
                    AggKind::DoublePair(k)
                }
            } else if k.is_long() {
                AggKind::Long(k)
            } else {
                AggKind::Double(k)
            }
        };
        let (kind, needs_field) = match t {
            "count" => (AggKind::Count, false),
            "longSum" => (metric(MetricKind::LongSum), true),
            "doubleSum" | "floatSum" => (metric(MetricKind::DoubleSum), true),
            "longMin" => (metric(MetricKind::LongMin), true),
            "longMax" => (metric(MetricKind::LongMax), true),
            "doubleMin" | "floatMin" => (metric(MetricKind::DoubleMin), true),
            "doubleMax" | "floatMax" => (metric(MetricKind::DoubleMax), true),
            "longFirst" => (metric(MetricKind::LongFirst), true),
            "longLast" => (metric(MetricKind::LongLast), true),
            "doubleFirst" | "floatFirst" => (metric(MetricKind::DoubleFirst), true),
            "doubleLast" | "floatLast" => (metric(MetricKind::DoubleLast), true),
            "hyperUnique" | "HLLSketchMerge" | "HLLSketchBuild" | "HLLSketch" => (
                AggKind::Hll {
                    round: round || t != "hyperUnique",
                    fields: Vec::new(),
                    by_row: false,
                    lg_k,
                },
                true,
            ),
            "cardinality" => {
                let fields = match o.opt_array("fields")? {
                    None => {
                        return Err(Error::invalid(format!(
                            "{}: required field is missing",
                            o.child("fields")
                        )));
                    }
                    Some(a) => {
                        let mut out = Vec::new();
                        for (i, f) in a.iter().enumerate() {
                            match f {
                                Value::String(s) => out.push(s.clone()),
                                Value::Object(_) => {
                                    let fo = Obj::new(f, path)?;
                                    out.push(fo.req_str("dimension")?.to_string());
                                }
                                _ => {
                                    return Err(Error::invalid(format!(
                                        "{}[{i}]: expected a dimension name",
                                        o.child("fields")
                                    )));
                                }
                            }
                        }
                        out
                    }
                };
                (
                    AggKind::Hll {
                        round,
                        fields,
                        by_row: o.opt_bool("byRow")?.unwrap_or(false),
                        lg_k,
                    },
                    false,
                )
            }
            other => {
                return Err(Error::invalid(format!(
                    "{}: unsupported aggregator type `{other}`",
                    o.child("type")
                )));
            }
        };
        let field = if needs_field {
            Some(o.req_str("fieldName")?.to_string())
        } else {
            None
        };
        Ok(AggregatorSpec {
            name,
            kind,
            field,
            filter: None,
        })
    }

    /// Parse a list of aggregators; names must be unique.
    pub fn parse_list(v: Option<&Value>, path: &str) -> Result<Vec<AggregatorSpec>> {
        let Some(v) = v else {
            return Ok(Vec::new());
        };
        let arr = v
            .as_array()
            .ok_or_else(|| Error::invalid(format!("{path}: expected an array of aggregators")))?;
        let mut out: Vec<AggregatorSpec> = Vec::with_capacity(arr.len());
        for (i, a) in arr.iter().enumerate() {
            let spec = AggregatorSpec::parse(a, &format!("{path}[{i}]"))?;
            if out.iter().any(|x| x.name == spec.name) {
                return Err(Error::invalid(format!(
                    "{path}[{i}].name: duplicate output name `{}`",
                    spec.name
                )));
            }
            out.push(spec);
        }
        Ok(out)
    }

    /// Every column it reads.
    pub fn columns(&self, out: &mut Vec<String>) {
        if let Some(f) = &self.field {
            out.push(f.clone());
        }
        if let AggKind::Hll { fields, .. } = &self.kind {
            out.extend(fields.iter().cloned());
        }
        if let Some(f) = &self.filter {
            f.columns(out);
        }
    }

    /// The initial (empty) state.
    pub fn init(&self) -> AggState {
        match &self.kind {
            AggKind::Count => AggState::Long(Some(0)),
            AggKind::Long(_) => AggState::Long(None),
            AggKind::Double(_) => AggState::Double(None),
            AggKind::LongPair(_) => AggState::LongPair(None),
            AggKind::DoublePair(_) => AggState::DoublePair(None),
            AggKind::Hll { .. } => AggState::Hll(None),
        }
    }

    /// Merge partial state `b` into `a`.
    pub fn merge(&self, a: &mut AggState, b: AggState) -> Result<()> {
        match (&self.kind, a, b) {
            (AggKind::Count, AggState::Long(x), AggState::Long(y)) => {
                *x = combine_long(MetricKind::LongSum, *x, y)
            }
            (AggKind::Long(k), AggState::Long(x), AggState::Long(y)) => {
                *x = combine_long(*k, *x, y)
            }
            (AggKind::Double(k), AggState::Double(x), AggState::Double(y)) => {
                *x = combine_double(*k, *x, y)
            }
            (AggKind::LongPair(k), AggState::LongPair(x), AggState::LongPair(y)) => {
                *x = combine_pair(*k, *x, y)
            }
            (AggKind::DoublePair(k), AggState::DoublePair(x), AggState::DoublePair(y)) => {
                *x = combine_pair(*k, *x, y)
            }
            (AggKind::Hll { lg_k, .. }, AggState::Hll(x), AggState::Hll(y)) => {
                match (x.as_mut(), y) {
                    (_, None) => {}
                    (None, Some(u)) => *x = Some(u),
                    (Some(a), Some(b)) => {
                        let s = b.to_sketch(HllType::Hll8);
                        a.update(&s);
                        let _ = lg_k;
                    }
                }
            }
            _ => return Err(Error::internal("aggregator state kinds do not match")),
        }
        Ok(())
    }

    /// Final value as JSON.
    pub fn finalize(&self, s: &AggState) -> Value {
        match s {
            AggState::Long(v) => v.map(Value::from).unwrap_or(Value::Null),
            AggState::Double(v) => v.map(json_f64).unwrap_or(Value::Null),
            AggState::LongPair(v) => v.map(|(_, x)| Value::from(x)).unwrap_or(Value::Null),
            AggState::DoublePair(v) => v.map(|(_, x)| json_f64(x)).unwrap_or(Value::Null),
            AggState::Hll(u) => {
                let est = u.as_ref().map(|u| u.estimate()).unwrap_or(0.0);
                match &self.kind {
                    AggKind::Hll { round: true, .. } => Value::from(est.round() as i64),
                    _ => json_f64(est),
                }
            }
        }
    }

    /// Final value as a number for ordering and post-aggregation (`None` for null).
    pub fn finalize_num(&self, s: &AggState) -> Option<f64> {
        match s {
            AggState::Long(v) => v.map(|x| x as f64),
            AggState::Double(v) => *v,
            AggState::LongPair(v) => v.map(|(_, x)| x as f64),
            AggState::DoublePair(v) => v.map(|(_, x)| x),
            AggState::Hll(u) => {
                let est = u.as_ref().map(|u| u.estimate()).unwrap_or(0.0);
                Some(match &self.kind {
                    AggKind::Hll { round: true, .. } => est.round(),
                    _ => est,
                })
            }
        }
    }
}

/// A JSON number for an f64 (non-finite values become null).
pub fn json_f64(x: f64) -> Value {
    serde_json::Number::from_f64(x)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// The running state of one aggregator for one group.
#[derive(Debug)]
pub enum AggState {
    /// Count and long aggregates.
    Long(Option<i64>),
    /// Double aggregates.
    Double(Option<f64>),
    /// Long first/last: (time, value).
    LongPair(Option<(i64, i64)>),
    /// Double first/last: (time, value).
    DoublePair(Option<(i64, f64)>),
    /// HLL union.
    Hll(Option<Box<HllUnion>>),
}

/// A segment's dictionary of one string column by id (index 0 = null, empty).
pub type DictStrings = Arc<Vec<Box<str>>>;

/// The decoded input of one aggregator for one block.
#[derive(Debug)]
pub enum AggInput {
    /// Count: no input.
    Count,
    /// Every row null (absent column).
    Null,
    /// Long values with their null flags.
    Long(Values<i64>, Option<Vec<bool>>),
    /// Double values with their null flags.
    Double(Values<f64>, Option<Vec<bool>>),
    /// Numbers parsed from a string column's values: per row its dictionary id, per id its number.
    StrNum(Values<u32>, Arc<Vec<Option<Num>>>),
    /// (time, value) pairs: times, long or double values, null flags.
    PairLong(Values<i64>, Values<i64>, Option<Vec<bool>>),
    /// (time, double value) pairs.
    PairDouble(Values<i64>, Values<f64>, Option<Vec<bool>>),
    /// Serialized HLL sketches per row.
    Sketches(Vec<Vec<u8>>),
    /// Values of dimensions to count distinct (cardinality / HLL build): per row the strings of
    /// each field.
    Dims(Vec<Vec<Vec<Arc<str>>>>),
    /// Single-value string dimensions to count distinct: per field (`None` = absent, all null)
    /// the block's dictionary ids and the segment's dictionary by id (index 0 = null).
    DimIds(Vec<Option<(Values<u32>, DictStrings)>>),
}

/// Null flags of rows `base..base + n` from a segment-wide null bitmap.
pub fn block_nulls(nulls: &RoaringBitmap, base: u32, n: usize) -> Option<Vec<bool>> {
    if nulls.range_cardinality(base..base + n as u32) == 0 {
        return None;
    }
    Some((0..n).map(|i| nulls.contains(base + i as u32)).collect())
}

/// Per-segment, per-aggregator information that does not change between blocks.
#[derive(Debug)]
pub struct SegmentAggContext {
    /// Rows where the aggregator's filter is true (None = no filter).
    pub filter_rows: Option<RoaringBitmap>,
    /// Parsed numbers of a string column's dictionary (when summing a string column).
    pub str_nums: Option<Arc<Vec<Option<Num>>>>,
    /// For distinct counts over single-value string dimensions: per field its dictionary by id
    /// (index 0 = null; `None` = column absent), so a block's distinct ids are hashed once each.
    pub dim_dicts: Option<Vec<Option<DictStrings>>>,
}

impl AggregatorSpec {
    /// Prepare the per-segment context.
    pub fn segment_context(&self, seg: &Segment) -> Result<SegmentAggContext> {
        // A filter true on every row of the segment (say `not null(x)` where `x` has no
        // nulls) costs nothing: the aggregator runs unfiltered there.
        let filter_rows = match &self.filter {
            Some(f) => Some(f.true_rows(seg, None)?).filter(|r| r.len() < seg.num_rows()),
            None => None,
        };
        let mut str_nums = None;
        if let Some(field) = &self.field
            && let Some(c) = seg.column(field)
            && matches!(c.column_type, ColumnType::String | ColumnType::MultiString)
            && !matches!(self.kind, AggKind::Hll { .. })
        {
            let dict = seg.dictionary(c)?;
            let mut nums = vec![None];
            for i in 0..dict.len() {
                nums.push(dict.get(i).and_then(Num::parse));
            }
            str_nums = Some(Arc::new(nums));
        }
        Ok(SegmentAggContext {
            filter_rows,
            str_nums,
            dim_dicts: self.dim_dicts(seg)?,
        })
    }

    /// The dictionaries of the counted dimensions, when every one is a single-value string
    /// column (or absent) and the count is per value (or per row of a single field).
    fn dim_dicts(&self, seg: &Segment) -> Result<Option<Vec<Option<DictStrings>>>> {
        let AggKind::Hll { fields, by_row, .. } = &self.kind else {
            return Ok(None);
        };
        let names: Vec<&str> = if fields.is_empty() {
            match &self.field {
                Some(f) => vec![f.as_str()],
                None => return Ok(None),
            }
        } else {
            fields.iter().map(String::as_str).collect()
        };
        if *by_row && names.len() > 1 {
            return Ok(None);
        }
        if fields.is_empty() && !names.iter().any(|n| seg.column(n).is_some()) {
            // HLL over an absent column: keep the general path.
            return Ok(None);
        }
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            match seg.column(n) {
                None => out.push(None),
                Some(c) if c.column_type == ColumnType::String => {
                    let dict = seg.dictionary(c)?;
                    let mut v: Vec<Box<str>> = Vec::with_capacity(dict.len() + 1);
                    v.push("".into());
                    for i in 0..dict.len() {
                        v.push(
                            dict.get(i)
                                .ok_or_else(|| {
                                    Error::corruption(
                                        seg.path(),
                                        format!("column `{}` dictionary entry {i}", c.name),
                                        "UTF-8",
                                        "invalid",
                                    )
                                })?
                                .into(),
                        );
                    }
                    out.push(Some(Arc::new(v)));
                }
                Some(_) => return Ok(None),
            }
        }
        Ok(Some(out))
    }

    /// Decode this aggregator's input for block `b` of `seg`; only the rows `upto` names are
    /// meant to be read (numeric streams decode only those).
    pub fn block_input(
        &self,
        seg: &Segment,
        b: usize,
        times: &[i64],
        ctx: &SegmentAggContext,
        upto: crate::column::Need,
    ) -> Result<AggInput> {
        let base = (b * crate::segment::format::BLOCK_ROWS) as u32;
        let n = seg.block_rows(b);
        if let AggKind::Count = self.kind {
            return Ok(AggInput::Count);
        }
        if let Some(dicts) = &ctx.dim_dicts {
            let names: Vec<&String> = match &self.kind {
                AggKind::Hll { fields, .. } if !fields.is_empty() => fields.iter().collect(),
                _ => self.field.iter().collect(),
            };
            let mut out = Vec::with_capacity(names.len());
            for (name, dict) in names.into_iter().zip(dicts) {
                match (seg.column(name), dict) {
                    (Some(c), Some(d)) => out.push(Some((
                        seg.read_u32s_upto(c, StreamRole::Ids, b, upto)?,
                        d.clone(),
                    ))),
                    _ => out.push(None),
                }
            }
            return Ok(AggInput::DimIds(out));
        }
        if let AggKind::Hll { fields, .. } = &self.kind
            && !fields.is_empty()
        {
            return dims_input(seg, fields, b);
        }
        let Some(field) = &self.field else {
            return Ok(AggInput::Null);
        };
        let Some(c) = seg.column(field) else {
            return Ok(AggInput::Null);
        };
        let pair = matches!(self.kind, AggKind::LongPair(_) | AggKind::DoublePair(_));
        Ok(match c.column_type {
            ColumnType::HllSketch => match self.kind {
                AggKind::Hll { .. } => AggInput::Sketches(seg.read_blobs(c, b)?),
                _ => {
                    return Err(Error::invalid(format!(
                        "aggregator `{}`: column `{field}` is an HLL sketch; use hyperUnique or HLLSketchMerge",
                        self.name
                    )));
                }
            },
            ColumnType::String | ColumnType::MultiString => {
                if let AggKind::Hll { .. } = self.kind {
                    return dims_input(seg, std::slice::from_ref(field), b);
                }
                if c.column_type == ColumnType::MultiString {
                    return Err(Error::invalid(format!(
                        "aggregator `{}`: column `{field}` is multi-valued and cannot be aggregated numerically",
                        self.name
                    )));
                }
                let ids = seg.read_u32s_upto(c, StreamRole::Ids, b, upto)?;
                let nums = ctx
                    .str_nums
                    .clone()
                    .ok_or_else(|| Error::internal("string column numbers not prepared"))?;
                if pair {
                    let mut vals = Vec::with_capacity(n);
                    let mut nulls = Vec::with_capacity(n);
                    for &id in ids.iter() {
                        match nums.get(id as usize).copied().flatten() {
                            Some(Num::I(i)) => {
                                vals.push(i as f64);
                                nulls.push(false);
                            }
                            Some(Num::F(f)) => {
                                vals.push(f);
                                nulls.push(false);
                            }
                            None => {
                                vals.push(0.0);
                                nulls.push(true);
                            }
                        }
                    }
                    return Ok(match self.kind {
                        AggKind::LongPair(_) => AggInput::PairLong(
                            Values::from(times.to_vec()),
                            Values::from(vals.iter().map(|&x| x as i64).collect::<Vec<_>>()),
                            Some(nulls),
                        ),
                        _ => AggInput::PairDouble(
                            Values::from(times.to_vec()),
                            Values::from(vals),
                            Some(nulls),
                        ),
                    });
                }
                AggInput::StrNum(ids, nums)
            }
            ColumnType::Long | ColumnType::Double => {
                let nulls = block_nulls(&seg.null_bitmap(c)?, base, n);
                let double = c.column_type == ColumnType::Double;
                if pair {
                    let time_vals = Values::from(times.to_vec());
                    if double {
                        AggInput::PairDouble(time_vals, seg.read_doubles_upto(c, b, upto)?, nulls)
                    } else {
                        AggInput::PairLong(
                            time_vals,
                            seg.read_longs_upto(c, StreamRole::Long, b, upto)?,
                            nulls,
                        )
                    }
                } else if double {
                    AggInput::Double(seg.read_doubles_upto(c, b, upto)?, nulls)
                } else {
                    AggInput::Long(seg.read_longs_upto(c, StreamRole::Long, b, upto)?, nulls)
                }
            }
            ColumnType::LongPair | ColumnType::DoublePair => {
                let nulls = block_nulls(&seg.null_bitmap(c)?, base, n);
                let t = seg.read_longs_upto(c, StreamRole::PairTime, b, upto)?;
                let t = if pair { t } else { Values::from(Vec::new()) };
                if c.column_type == ColumnType::LongPair {
                    let v = seg.read_longs_upto(c, StreamRole::Long, b, upto)?;
                    if pair {
                        AggInput::PairLong(t, v, nulls)
                    } else {
                        AggInput::Long(v, nulls)
                    }
                } else {
                    let v = seg.read_doubles_upto(c, b, upto)?;
                    if pair {
                        AggInput::PairDouble(t, v, nulls)
                    } else {
                        AggInput::Double(v, nulls)
                    }
                }
            }
        })
    }

    /// Add row `i` of a block's input to a state.
    #[inline]
    pub fn update(&self, state: &mut AggState, input: &AggInput, i: usize) -> Result<()> {
        let is_null = |nulls: &Option<Vec<bool>>| nulls.as_ref().is_some_and(|n| n[i]);
        match (&self.kind, state) {
            (AggKind::Count, AggState::Long(x)) => *x = Some(x.unwrap_or(0) + 1),
            (AggKind::Long(k), AggState::Long(x)) => {
                let v = match input {
                    AggInput::Long(v, nulls) => (!is_null(nulls)).then(|| v[i]),
                    AggInput::Double(v, nulls) => (!is_null(nulls)).then(|| v[i] as i64),
                    AggInput::StrNum(ids, nums) => {
                        match nums.get(ids[i] as usize).copied().flatten() {
                            Some(Num::I(n)) => Some(n),
                            Some(Num::F(f)) => Some(f as i64),
                            None => None,
                        }
                    }
                    _ => None,
                };
                if v.is_some() {
                    *x = combine_long(*k, *x, v);
                }
            }
            (AggKind::Double(k), AggState::Double(x)) => {
                let v = match input {
                    AggInput::Long(v, nulls) => (!is_null(nulls)).then(|| v[i] as f64),
                    AggInput::Double(v, nulls) => (!is_null(nulls)).then(|| v[i]),
                    AggInput::StrNum(ids, nums) => {
                        match nums.get(ids[i] as usize).copied().flatten() {
                            Some(Num::I(n)) => Some(n as f64),
                            Some(Num::F(f)) => Some(f),
                            None => None,
                        }
                    }
                    _ => None,
                };
                if v.is_some() {
                    *x = combine_double(*k, *x, v);
                }
            }
            (AggKind::LongPair(k), AggState::LongPair(x)) => {
                let v = match input {
                    AggInput::PairLong(t, v, nulls) => (!is_null(nulls)).then(|| (t[i], v[i])),
                    AggInput::PairDouble(t, v, nulls) => {
                        (!is_null(nulls)).then(|| (t[i], v[i] as i64))
                    }
                    _ => None,
                };
                if v.is_some() {
                    *x = combine_pair(*k, *x, v);
                }
            }
            (AggKind::DoublePair(k), AggState::DoublePair(x)) => {
                let v = match input {
                    AggInput::PairLong(t, v, nulls) => {
                        (!is_null(nulls)).then(|| (t[i], v[i] as f64))
                    }
                    AggInput::PairDouble(t, v, nulls) => (!is_null(nulls)).then(|| (t[i], v[i])),
                    _ => None,
                };
                if v.is_some() {
                    *x = combine_pair(*k, *x, v);
                }
            }
            (AggKind::Hll { lg_k, by_row, .. }, AggState::Hll(x)) => match input {
                AggInput::Sketches(blobs) => {
                    let blob = &blobs[i];
                    if !blob.is_empty() {
                        let s = HllSketch::deserialize(blob).map_err(|e| {
                            Error::invalid(format!("aggregator `{}`: bad sketch: {e}", self.name))
                        })?;
                        union_of(x, *lg_k)?.update(&s);
                    }
                }
                AggInput::Dims(rows) => {
                    let row = &rows[i];
                    if *by_row {
                        let mut key = String::new();
                        for (fi, vals) in row.iter().enumerate() {
                            if fi > 0 {
                                key.push('\u{1}');
                            }
                            for (vi, v) in vals.iter().enumerate() {
                                if vi > 0 {
                                    key.push('\u{2}');
                                }
                                key.push_str(v);
                            }
                        }
                        if row.iter().any(|v| !v.is_empty()) {
                            crate::aggregate::hll_union_update_str(union_of(x, *lg_k)?, &key);
                        }
                    } else {
                        for vals in row {
                            for v in vals {
                                crate::aggregate::hll_union_update_str(union_of(x, *lg_k)?, v);
                            }
                        }
                    }
                }
                _ => {}
            },
            _ => return Err(Error::internal("aggregator state does not match its kind")),
        }
        Ok(())
    }
}

fn union_of(x: &mut Option<Box<HllUnion>>, lg_k: u8) -> Result<&mut HllUnion> {
    if x.is_none() {
        *x = Some(Box::new(HllUnion::new(lg_k).map_err(|e| {
            Error::invalid(format!("cannot create an HLL union with lgK {lg_k}: {e}"))
        })?));
    }
    x.as_deref_mut()
        .ok_or_else(|| Error::internal("HLL union missing"))
}

fn dims_input(seg: &Segment, fields: &[String], b: usize) -> Result<AggInput> {
    let n = seg.block_rows(b);
    let mut rows: Vec<Vec<Vec<Arc<str>>>> = vec![Vec::with_capacity(fields.len()); n];
    for f in fields {
        let vals = crate::query::exec::column_strings(seg, seg.column(f), b)?;
        for (i, v) in vals.into_iter().enumerate() {
            rows[i].push(v);
        }
    }
    Ok(AggInput::Dims(rows))
}

/// The column metadata an aggregator reads, if any (for EXPLAIN).
pub fn input_column<'a>(seg: &'a Segment, spec: &AggregatorSpec) -> Option<&'a ColumnMeta> {
    spec.field.as_deref().and_then(|f| seg.column(f))
}

/// The states of one aggregator for every group of a segment, stored column-wise so a block
/// is aggregated in one tight loop per aggregator.
#[derive(Debug)]
pub enum StateColumn {
    /// Count and long aggregates.
    Long(Vec<Option<i64>>),
    /// Double aggregates.
    Double(Vec<Option<f64>>),
    /// Long first/last.
    LongPair(Vec<Option<(i64, i64)>>),
    /// Double first/last.
    DoublePair(Vec<Option<(i64, f64)>>),
    /// HLL unions.
    Hll(Vec<Option<Box<HllUnion>>>),
}

/// Fold block values `v[sel[j]]` (converted by `conv`) into states `c[groups[j]]` with `op`;
/// generic so each aggregator kind gets its own loop with the operation inlined. Consecutive
/// rows of one group (segments sorted by a grouped dimension give runs of hundreds) fold in a
/// register and touch the state once per run.
#[inline]
fn fold_rows<T: Copy, U: Copy>(
    c: &mut [Option<T>],
    v: &[U],
    sel: &[u32],
    groups: &[u32],
    conv: impl Fn(U) -> T,
    op: impl Fn(T, T) -> T,
) {
    let n = sel.len().min(groups.len());
    let mut j = 0;
    while j < n {
        let g = groups[j];
        let mut acc = conv(v[sel[j] as usize]);
        j += 1;
        while j < n && groups[j] == g {
            acc = op(acc, conv(v[sel[j] as usize]));
            j += 1;
        }
        let s = &mut c[g as usize];
        *s = Some(match *s {
            Some(a) => op(a, acc),
            None => acc,
        });
    }
}

/// Rows `start..end` of a block, all in group `group`: a full block of a segment sorted by the
/// grouped dimension is a few hundred such runs, folded a slice at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// First row of the run (block-relative).
    pub start: u32,
    /// One past the last row.
    pub end: u32,
    /// The run's group.
    pub group: u32,
}

/// Fold `xs` (converted by `conv`) into `acc` with `op`, left to right; with `any_order` (for
/// operations whose result does not depend on the order: integer min, max and wrapping sums)
/// in four accumulators side by side, which breaks the chain of dependent operations.
#[inline(always)]
fn fold_slice<T: Copy, U: Copy>(
    acc: T,
    xs: &[U],
    conv: &impl Fn(U) -> T,
    op: &impl Fn(T, T) -> T,
    any_order: bool,
) -> T {
    let mut chunks = xs.chunks_exact(4);
    let first = match chunks.next() {
        Some(first) if any_order && xs.len() >= 16 => first,
        _ => return xs.iter().fold(acc, |acc, &x| op(acc, conv(x))),
    };
    let mut lanes = [
        op(acc, conv(first[0])),
        conv(first[1]),
        conv(first[2]),
        conv(first[3]),
    ];
    for chunk in chunks.by_ref() {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = op(*lane, conv(x));
        }
    }
    let acc = op(op(lanes[0], lanes[1]), op(lanes[2], lanes[3]));
    chunks
        .remainder()
        .iter()
        .fold(acc, |acc, &x| op(acc, conv(x)))
}

/// Fold each run's values `v[start..end]` (converted by `conv`) into `c[group]` with `op`, in
/// row order and with consecutive runs of one group folded in one register before touching
/// the state, so the result is the same as [`fold_rows`]'s on the same rows, bit for bit.
#[inline]
fn fold_runs<T: Copy, U: Copy>(
    c: &mut [Option<T>],
    v: &[U],
    runs: &[Run],
    conv: impl Fn(U) -> T,
    op: impl Fn(T, T) -> T,
    any_order: bool,
) {
    let mut pending: Option<(u32, T)> = None;
    for r in runs {
        let Some((first, rest)) = v
            .get(r.start as usize..r.end as usize)
            .and_then(|s| s.split_first())
        else {
            continue;
        };
        let acc = match pending {
            Some((g, acc)) if g == r.group => op(acc, conv(*first)),
            _ => {
                if let Some((g, acc)) = pending {
                    fold_state(&mut c[g as usize], acc, &op);
                }
                conv(*first)
            }
        };
        let acc = fold_slice(acc, rest, &conv, &op, any_order);
        pending = Some((r.group, acc));
    }
    if let Some((g, acc)) = pending {
        fold_state(&mut c[g as usize], acc, &op);
    }
}

/// [`fold_runs`] over a long column's frames block, decoding one frame at a time into a
/// buffer that stays in L1: the same left fold in row order, so the same results bit for bit.
fn fold_runs_frames<T: Copy>(
    c: &mut [Option<T>],
    frames: &FrameBlock<'_>,
    runs: &[Run],
    conv: impl Fn(i64) -> T,
    op: impl Fn(T, T) -> T,
    any_order: bool,
) {
    let mut buf = [0i64; FRAME];
    let mut decoded = usize::MAX;
    let mut pending: Option<(u32, T)> = None;
    for r in runs {
        let (mut s, end) = (r.start as usize, (r.end as usize).min(frames.len()));
        while s < end {
            let f = s / FRAME;
            if f != decoded {
                frames.decode_frame(f, &mut buf);
                decoded = f;
            }
            let at = f * FRAME;
            let e = end.min(at + FRAME);
            let Some((first, rest)) = buf[s - at..e - at].split_first() else {
                break;
            };
            let acc = match pending {
                Some((g, acc)) if g == r.group => op(acc, conv(*first)),
                _ => {
                    if let Some((g, acc)) = pending {
                        fold_state(&mut c[g as usize], acc, &op);
                    }
                    conv(*first)
                }
            };
            let acc = fold_slice(acc, rest, &conv, &op, any_order);
            pending = Some((r.group, acc));
            s = e;
        }
    }
    if let Some((g, acc)) = pending {
        fold_state(&mut c[g as usize], acc, &op);
    }
}

#[inline]
fn fold_state<T: Copy>(s: &mut Option<T>, acc: T, op: impl Fn(T, T) -> T) {
    *s = Some(match *s {
        Some(a) => op(a, acc),
        None => acc,
    });
}

impl AggregatorSpec {
    /// An empty state column.
    pub fn new_column(&self) -> StateColumn {
        match self.init() {
            AggState::Long(_) => StateColumn::Long(Vec::new()),
            AggState::Double(_) => StateColumn::Double(Vec::new()),
            AggState::LongPair(_) => StateColumn::LongPair(Vec::new()),
            AggState::DoublePair(_) => StateColumn::DoublePair(Vec::new()),
            AggState::Hll(_) => StateColumn::Hll(Vec::new()),
        }
    }

    /// Add a new group with the initial state.
    pub fn push_group(&self, col: &mut StateColumn) {
        match (col, self.init()) {
            (StateColumn::Long(c), AggState::Long(v)) => c.push(v),
            (StateColumn::Double(c), AggState::Double(v)) => c.push(v),
            (StateColumn::LongPair(c), AggState::LongPair(v)) => c.push(v),
            (StateColumn::DoublePair(c), AggState::DoublePair(v)) => c.push(v),
            (StateColumn::Hll(c), AggState::Hll(v)) => c.push(v),
            _ => {}
        }
    }

    /// Per group, the value [`AggregatorSpec::finalize_num`] gives for its state, straight
    /// from the column; `None` for sketch columns (estimating them all costs too much).
    pub fn column_nums(&self, col: &StateColumn) -> Option<Vec<Option<f64>>> {
        Some(match col {
            StateColumn::Long(c) => c.iter().map(|v| v.map(|x| x as f64)).collect(),
            StateColumn::Double(c) => c.clone(),
            StateColumn::LongPair(c) => c.iter().map(|v| v.map(|(_, x)| x as f64)).collect(),
            StateColumn::DoublePair(c) => c.iter().map(|v| v.map(|(_, x)| x)).collect(),
            StateColumn::Hll(_) => return None,
        })
    }

    /// The states of groups `kept` (ascending), in that order.
    pub fn column_select(&self, col: StateColumn, kept: &[usize]) -> StateColumn {
        use crate::query::exec::take_at as pick;
        match col {
            StateColumn::Long(c) => StateColumn::Long(pick(c, kept)),
            StateColumn::Double(c) => StateColumn::Double(pick(c, kept)),
            StateColumn::LongPair(c) => StateColumn::LongPair(pick(c, kept)),
            StateColumn::DoublePair(c) => StateColumn::DoublePair(pick(c, kept)),
            StateColumn::Hll(c) => StateColumn::Hll(pick(c, kept)),
        }
    }

    /// The per-group states, in group order.
    pub fn into_states(&self, col: StateColumn) -> Vec<AggState> {
        match col {
            StateColumn::Long(c) => c.into_iter().map(AggState::Long).collect(),
            StateColumn::Double(c) => c.into_iter().map(AggState::Double).collect(),
            StateColumn::LongPair(c) => c.into_iter().map(AggState::LongPair).collect(),
            StateColumn::DoublePair(c) => c.into_iter().map(AggState::DoublePair).collect(),
            StateColumn::Hll(c) => c.into_iter().map(AggState::Hll).collect(),
        }
    }

    /// Update the states of whole runs of rows (no aggregator filter). Returns `false`, having
    /// changed nothing, for the kinds and inputs without a run path (nullable inputs, pairs,
    /// sketches): the caller then updates row by row.
    pub fn update_runs(&self, col: &mut StateColumn, input: &AggInput, runs: &[Run]) -> bool {
        match (&self.kind, col, input) {
            (AggKind::Count, StateColumn::Long(c), _) => {
                for r in runs {
                    let s = &mut c[r.group as usize];
                    *s = Some(s.unwrap_or(0) + i64::from(r.end - r.start));
                }
            }
            (AggKind::Long(k), StateColumn::Long(c), AggInput::Long(v, None)) => {
                let id = |x: i64| x;
                match k {
                    MetricKind::LongMin => fold_runs(c, v, runs, id, i64::min, true),
                    MetricKind::LongMax => fold_runs(c, v, runs, id, i64::max, true),
                    _ => fold_runs(c, v, runs, id, i64::wrapping_add, true),
                }
            }
            (AggKind::Double(k), StateColumn::Double(c), AggInput::Double(v, None)) => {
                let id = |x: f64| x;
                match k {
                    MetricKind::DoubleMin => fold_runs(c, v, runs, id, f64::min, false),
                    MetricKind::DoubleMax => fold_runs(c, v, runs, id, f64::max, false),
                    _ => fold_runs(c, v, runs, id, |a, b| a + b, false),
                }
            }
            (AggKind::Double(k), StateColumn::Double(c), AggInput::Long(v, None)) => {
                let conv = |x: i64| x as f64;
                match k {
                    MetricKind::DoubleMin => fold_runs(c, v, runs, conv, f64::min, false),
                    MetricKind::DoubleMax => fold_runs(c, v, runs, conv, f64::max, false),
                    _ => fold_runs(c, v, runs, conv, |a, b| a + b, false),
                }
            }
            _ => return false,
        }
        true
    }

    /// The long column whose frames [`AggregatorSpec::update_runs_frames`] can fold: the field
    /// of a long or double sum/min/max over a long column without nulls in `seg`.
    pub fn frames_field<'s>(&self, seg: &'s Segment) -> Result<Option<&'s ColumnMeta>> {
        if !matches!(self.kind, AggKind::Long(_) | AggKind::Double(_)) || self.filter.is_some() {
            return Ok(None);
        }
        let Some(c) = self.field.as_ref().and_then(|f| seg.column(f)) else {
            return Ok(None);
        };
        if !matches!(c.column_type, ColumnType::Long | ColumnType::LongPair)
            || !seg.null_bitmap(c)?.is_empty()
        {
            return Ok(None);
        }
        Ok(Some(c))
    }

    /// Like [`AggregatorSpec::update_runs`], reading the values of the column
    /// [`AggregatorSpec::frames_field`] gave from its frames block a frame at a time. Returns
    /// `false`, having changed nothing, for kinds without this path.
    pub fn update_runs_frames(
        &self,
        col: &mut StateColumn,
        frames: &FrameBlock<'_>,
        runs: &[Run],
    ) -> bool {
        match (&self.kind, col) {
            (AggKind::Long(k), StateColumn::Long(c)) => {
                let id = |x: i64| x;
                match k {
                    MetricKind::LongMin => fold_runs_frames(c, frames, runs, id, i64::min, true),
                    MetricKind::LongMax => fold_runs_frames(c, frames, runs, id, i64::max, true),
                    _ => fold_runs_frames(c, frames, runs, id, i64::wrapping_add, true),
                }
            }
            (AggKind::Double(k), StateColumn::Double(c)) => {
                let conv = |x: i64| x as f64;
                match k {
                    MetricKind::DoubleMin => {
                        fold_runs_frames(c, frames, runs, conv, f64::min, false)
                    }
                    MetricKind::DoubleMax => {
                        fold_runs_frames(c, frames, runs, conv, f64::max, false)
                    }
                    _ => fold_runs_frames(c, frames, runs, conv, |a, b| a + b, false),
                }
            }
            _ => return false,
        }
        true
    }

    /// Aggregate block rows `sel[j]` into groups `groups[j]`. `filter` is the aggregator's
    /// filter bitmap with the block's first row number.
    pub fn update_batch(
        &self,
        col: &mut StateColumn,
        input: &AggInput,
        sel: &[u32],
        groups: &[u32],
        filter: Option<(&RoaringBitmap, u32)>,
    ) -> Result<()> {
        if let (AggKind::Hll { lg_k, .. }, StateColumn::Hll(c), AggInput::DimIds(fields)) =
            (&self.kind, &mut *col, input)
        {
            // Distinct counts: each (group, dictionary id) of the block is added once; rows
            // sorted by a dimension repeat it, so most rows cost one comparison.
            let mut keys: Vec<u64> = Vec::new();
            for (ids, dict) in fields.iter().flatten() {
                keys.clear();
                let mut last = u64::MAX;
                for (&r, &g) in sel.iter().zip(groups) {
                    if let Some((f, base)) = filter
                        && !f.contains(base + r)
                    {
                        continue;
                    }
                    let id = ids[r as usize];
                    if id == 0 {
                        continue;
                    }
                    let k = (u64::from(g) << 32) | u64::from(id);
                    if k != last {
                        keys.push(k);
                        last = k;
                    }
                }
                keys.sort_unstable();
                keys.dedup();
                for &k in &keys {
                    let g = (k >> 32) as usize;
                    let v = dict
                        .get((k & 0xffff_ffff) as usize)
                        .ok_or_else(|| Error::internal("dictionary id outside the dictionary"))?;
                    if !v.is_empty() {
                        crate::aggregate::hll_union_update_str(union_of(&mut c[g], *lg_k)?, v);
                    }
                }
            }
            return Ok(());
        }
        if filter.is_none() {
            // Fast paths: the common numeric kinds, with the dispatch hoisted out of the loop.
            match (&self.kind, &mut *col, input) {
                (AggKind::Count, StateColumn::Long(c), _) => {
                    for &g in groups {
                        let s = &mut c[g as usize];
                        *s = Some(s.unwrap_or(0) + 1);
                    }
                    return Ok(());
                }
                (AggKind::Long(k), StateColumn::Long(c), AggInput::Long(v, None)) => {
                    let id = |x: i64| x;
                    match k {
                        MetricKind::LongMin => fold_rows(c, v, sel, groups, id, i64::min),
                        MetricKind::LongMax => fold_rows(c, v, sel, groups, id, i64::max),
                        _ => fold_rows(c, v, sel, groups, id, i64::wrapping_add),
                    }
                    return Ok(());
                }
                (AggKind::Double(k), StateColumn::Double(c), AggInput::Double(v, None)) => {
                    let id = |x: f64| x;
                    match k {
                        MetricKind::DoubleMin => fold_rows(c, v, sel, groups, id, f64::min),
                        MetricKind::DoubleMax => fold_rows(c, v, sel, groups, id, f64::max),
                        _ => fold_rows(c, v, sel, groups, id, |a, b| a + b),
                    }
                    return Ok(());
                }
                (
                    AggKind::LongPair(k),
                    StateColumn::LongPair(c),
                    AggInput::PairLong(t, v, None),
                ) => {
                    let first = matches!(k, MetricKind::LongFirst | MetricKind::DoubleFirst);
                    for (&r, &g) in sel.iter().zip(groups) {
                        let s = &mut c[g as usize];
                        let x = (t[r as usize], v[r as usize]);
                        match *s {
                            Some(a) if (first && x.0 >= a.0) || (!first && x.0 < a.0) => {}
                            _ => *s = Some(x),
                        }
                    }
                    return Ok(());
                }
                (
                    AggKind::DoublePair(k),
                    StateColumn::DoublePair(c),
                    AggInput::PairDouble(t, v, None),
                ) => {
                    let first = matches!(k, MetricKind::LongFirst | MetricKind::DoubleFirst);
                    for (&r, &g) in sel.iter().zip(groups) {
                        let s = &mut c[g as usize];
                        let x = (t[r as usize], v[r as usize]);
                        match *s {
                            Some(a) if (first && x.0 >= a.0) || (!first && x.0 < a.0) => {}
                            _ => *s = Some(x),
                        }
                    }
                    return Ok(());
                }
                (AggKind::Double(k), StateColumn::Double(c), AggInput::Long(v, None)) => {
                    let conv = |x: i64| x as f64;
                    match k {
                        MetricKind::DoubleMin => fold_rows(c, v, sel, groups, conv, f64::min),
                        MetricKind::DoubleMax => fold_rows(c, v, sel, groups, conv, f64::max),
                        _ => fold_rows(c, v, sel, groups, conv, |a, b| a + b),
                    }
                    return Ok(());
                }
                _ => {}
            }
        }
        // General path: one row at a time through the shared update rules.
        for (&r, &g) in sel.iter().zip(groups) {
            if let Some((f, base)) = filter
                && !f.contains(base + r)
            {
                continue;
            }
            let g = g as usize;
            let mut st = match col {
                StateColumn::Long(c) => AggState::Long(c[g]),
                StateColumn::Double(c) => AggState::Double(c[g]),
                StateColumn::LongPair(c) => AggState::LongPair(c[g]),
                StateColumn::DoublePair(c) => AggState::DoublePair(c[g]),
                StateColumn::Hll(c) => AggState::Hll(c[g].take()),
            };
            self.update(&mut st, input, r as usize)?;
            match (&mut *col, st) {
                (StateColumn::Long(c), AggState::Long(v)) => c[g] = v,
                (StateColumn::Double(c), AggState::Double(v)) => c[g] = v,
                (StateColumn::LongPair(c), AggState::LongPair(v)) => c[g] = v,
                (StateColumn::DoublePair(c), AggState::DoublePair(v)) => c[g] = v,
                (StateColumn::Hll(c), AggState::Hll(v)) => c[g] = v,
                _ => return Err(Error::internal("aggregator state column kind mismatch")),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn spec(kind: &str) -> AggregatorSpec {
        let v = if kind == "count" {
            json!({"type": "count", "name": "a"})
        } else {
            json!({"type": kind, "name": "a", "fieldName": "x"})
        };
        AggregatorSpec::parse(&v, "aggregations[0]").expect("valid aggregator")
    }

    /// States after folding `runs` with the run path and row by row (the run path must apply).
    fn both(
        a: &AggregatorSpec,
        input: &AggInput,
        runs: &[Run],
        groups: usize,
    ) -> (Vec<AggState>, Vec<AggState>) {
        let mut by_runs = a.new_column();
        let mut by_rows = a.new_column();
        for _ in 0..groups {
            a.push_group(&mut by_runs);
            a.push_group(&mut by_rows);
        }
        assert!(a.update_runs(&mut by_runs, input, runs), "{a:?}");
        let sel: Vec<u32> = runs.iter().flat_map(|r| r.start..r.end).collect();
        let gidx: Vec<u32> = runs
            .iter()
            .flat_map(|r| std::iter::repeat_n(r.group, (r.end - r.start) as usize))
            .collect();
        a.update_batch(&mut by_rows, input, &sel, &gidx, None)
            .expect("row path");
        (a.into_states(by_runs), a.into_states(by_rows))
    }

    proptest! {
        /// Folding whole runs gives exactly the states of folding their rows one by one (the
        /// same order of operations, so doubles agree bit for bit).
        #[test]
        fn runs_fold_like_rows(
            values in proptest::collection::vec(-1_000_000i64..1_000_000, 1..400),
            cuts in proptest::collection::vec((0usize..400, 0u32..5), 0..40),
        ) {
            let n = values.len();
            // Runs: split 0..n at the cut points, skipping some gaps as unselected rows.
            let mut bounds: Vec<usize> = cuts.iter().map(|c| c.0 % n).chain([0, n]).collect();
            bounds.sort_unstable();
            bounds.dedup();
            let runs: Vec<Run> = bounds
                .windows(2)
                .zip(cuts.iter().map(|c| c.1).chain(std::iter::repeat(0)))
                .enumerate()
                .filter(|(i, _)| i % 3 != 2)
                .map(|(_, (w, g))| Run { start: w[0] as u32, end: w[1] as u32, group: g })
                .collect();
            let longs = || AggInput::Long(Values::from(values.clone()), None);
            let doubles = || {
                let v: Vec<f64> = values.iter().map(|&v| v as f64 / 7.0).collect();
                AggInput::Double(Values::from(v), None)
            };
            for kind in ["count", "longSum", "longMin", "longMax"] {
                let (r, w) = both(&spec(kind), &longs(), &runs, 5);
                prop_assert_eq!(format!("{r:?}"), format!("{w:?}"), "{}", kind);
            }
            for kind in ["doubleSum", "doubleMin", "doubleMax"] {
                let (r, w) = both(&spec(kind), &doubles(), &runs, 5);
                prop_assert_eq!(format!("{r:?}"), format!("{w:?}"), "{}", kind);
                let (r, w) = both(&spec(kind), &longs(), &runs, 5);
                prop_assert_eq!(format!("{r:?}"), format!("{w:?}"), "{} of longs", kind);
            }
            // Straight from the frames, a frame at a time: the same states again.
            let bytes = crate::column::frames::encode(&values).expect("narrow values fit frames");
            let frames = FrameBlock::parse(&bytes, n, std::path::Path::new("t"), "t").expect("parses");
            for kind in ["longSum", "longMin", "longMax", "doubleSum", "doubleMin", "doubleMax"] {
                let a = spec(kind);
                let mut by_frames = a.new_column();
                for _ in 0..5 {
                    a.push_group(&mut by_frames);
                }
                prop_assert!(a.update_runs_frames(&mut by_frames, &frames, &runs), "{}", kind);
                let (_, w) = both(&a, &longs(), &runs, 5);
                prop_assert_eq!(format!("{:?}", a.into_states(by_frames)), format!("{w:?}"), "{} from frames", kind);
            }
        }
    }

    #[test]
    fn runs_leave_nullable_and_pair_inputs_to_the_row_path() {
        let a = spec("longSum");
        let mut col = a.new_column();
        a.push_group(&mut col);
        let runs = [Run {
            start: 0,
            end: 2,
            group: 0,
        }];
        let nullable = AggInput::Long(Values::from(vec![1i64, 2]), Some(vec![false, true]));
        assert!(!a.update_runs(&mut col, &nullable, &runs));
        assert_eq!(format!("{:?}", a.into_states(col)), "[Long(None)]");
        let last = spec("longLast");
        let mut col = last.new_column();
        last.push_group(&mut col);
        let pairs = AggInput::PairLong(
            Values::from(vec![1i64, 2]),
            Values::from(vec![5i64, 6]),
            None,
        );
        assert!(!last.update_runs(&mut col, &pairs, &runs));
    }
}
