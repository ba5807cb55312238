//! Building one immutable segment: rows in, a segment file out.
//!
//! Rows are appended column-wise (strings interned into per-column dictionaries as they arrive):
//! Arrow batches a whole column at a time where the column's type allows (see
//! [`SegmentWriter::add_batch`]), other input a row at a time ([`SegmentWriter::push`]).
//! [`SegmentWriter::finish`] then
//! 1. sorts the dictionaries and maps arrival ids to sorted ids,
//! 2. sorts the rows by the schema's sort order: the leading key columns whose order-preserving
//!    codes fit in 96 bits are packed with the row number into one `u128` per row and sorted;
//!    rows whose packed codes tie are ordered by the remaining key columns,
//! 3. merges runs of equal keys when rollup is on (metrics combined in arrival order),
//! 4. encodes every column in blocks of [`BLOCK_ROWS`] rows (columns in parallel), reading
//!    time and dimensions through the sort order a block at a time (no sorted copy of the
//!    columns), builds dictionaries and bitmap indexes (from runs of equal ids), and writes the
//!    file with its directory and footer.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

use arrow_array::RecordBatch;
use arrow_buffer::NullBuffer;
use datasketches::hll::HllSketch;
use roaring::RoaringBitmap;

use crate::aggregate::{
    combine_double, combine_long, combine_pair, deserialize_hll, hll_update_str, merge_hll, new_hll,
};
use crate::bitmap::{encode_bitmap, encode_bitmap_index};
use crate::column::{
    BlockValue, Compression, encode_blobs_with, encode_numbers_with, f64_to_ordered,
};
use crate::dictionary::encode_dictionary;
use crate::error::{Error, Result};
use crate::input::{ArrowRows, ColumnView, InputValue, NULL_KEY, StrView, json_row};
use crate::schema::{DataSchema, DimensionType, MetricKind, MultiValueHandling, TIME_COLUMN};
use crate::segment::format::{
    BLOCK_ROWS, BlockMeta, ByteRange, Codec, ColumnKind, ColumnMeta, ColumnType, Directory,
    PartMeta, PartRole, StreamMeta, StreamRole, encode_footer, encode_header,
};
use crate::segment::reader::Segment;
use crate::time::{Granularity, Interval};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// What one finished segment holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentStats {
    /// Rows appended.
    pub rows_in: u64,
    /// Rows stored after rollup.
    pub rows_out: u64,
    /// File size in bytes.
    pub bytes: u64,
}

/// Estimated peak bytes a [`SegmentWriter`] needs per input row, besides its dictionaries:
/// the held columns, then sorting and encoding in `finish`.
pub fn writer_bytes_per_row(schema: &DataSchema) -> u64 {
    let mut held: u64 = 8;
    for d in &schema.dimensions {
        held += match d.kind {
            DimensionType::String => 6,
            DimensionType::Long | DimensionType::Double => 8,
        };
    }
    for m in &schema.metrics {
        held += match m.kind {
            MetricKind::HllSketch => 256,
            k if k.is_first_last() => 16,
            _ => 8,
        };
    }
    // finish(): sort keys and permutation, output columns, encoded blocks.
    held * 2 + 32
}

/// Fixed part of [`dictionary_entry_bytes`]: held, the value twice (arrival order and hash
/// key) with the hash table's slot and the allocator's per-allocation overhead; in `finish`,
/// the sorted copy's slots, the id remap, the encoded dictionary and the value's bitmap (a
/// roaring bitmap of its rows, then encoded).
pub const DICTIONARY_ENTRY_BYTES: u64 = 320;

/// Estimated peak bytes one dictionary value of `len` bytes costs a writer through `finish`
/// (its bytes are held twice and encoded once).
pub fn dictionary_entry_bytes(len: usize) -> u64 {
    3 * len as u64 + DICTIONARY_ENTRY_BYTES
}

/// How [`SegmentWriter::finish_with`] writes the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FinishOptions {
    /// Block compression.
    pub compression: Compression,
    /// Whether the file is synced to disk before `finish` returns (segments to be published
    /// must be; scratch files rebuilt from the WAL after a crash need not).
    pub sync: bool,
}

impl Default for FinishOptions {
    fn default() -> Self {
        FinishOptions {
            compression: Compression::Full,
            sync: true,
        }
    }
}

impl FinishOptions {
    /// Scratch files: plain blocks, not synced (realtime pieces).
    pub fn scratch() -> FinishOptions {
        FinishOptions {
            compression: Compression::None,
            sync: false,
        }
    }
}

/// The outcome of appending a batch: how many rows were taken, and why the others were not.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchReport {
    /// Rows appended.
    pub accepted: u64,
    /// Rows rejected, with their index in the batch and the reason.
    pub rejected: Vec<(usize, String)>,
}

/// Strings of at most this many bytes are interned by [`short_key`].
const SHORT_KEY_MAX_BYTES: usize = 15;

/// A string of at most [`SHORT_KEY_MAX_BYTES`] bytes as one integer: its bytes in the low 15
/// bytes (little-endian, zero beyond the string) and its length in the top byte, so two strings
/// have the same key exactly when they are equal. Read with overlapping loads, without a
/// byte loop or a call to `memcpy`. `None` for longer strings.
#[inline]
fn short_key(s: &[u8]) -> Option<u128> {
    let n = s.len();
    let (lo, hi) = match n {
        0..=3 => (
            s.iter()
                .enumerate()
                .fold(0u64, |k, (i, &b)| k | (u64::from(b) << (8 * i))),
            0,
        ),
        4..=7 => {
            let first = u64::from(u32::from_le_bytes([s[0], s[1], s[2], s[3]]));
            let last = u64::from(u32::from_le_bytes([s[n - 4], s[n - 3], s[n - 2], s[n - 1]]));
            // `last` ends at byte n; its bytes past the first four are its top n - 4 bytes.
            (first | ((last >> (8 * (8 - n))) << 32), 0)
        }
        8..=SHORT_KEY_MAX_BYTES => {
            let word = |at: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&s[at..at + 8]);
                u64::from_le_bytes(b)
            };
            // The last eight bytes end at byte n; the bytes past the first eight are their top
            // n - 8 bytes (none when n = 8).
            (
                word(0),
                word(n - 8).checked_shr(8 * (16 - n) as u32).unwrap_or(0),
            )
        }
        _ => return None,
    };
    Some(u128::from(lo) | (u128::from(hi) << 64) | ((n as u128) << 120))
}

#[derive(Debug)]
struct StringDim {
    /// Ids of values of at most [`SHORT_KEY_MAX_BYTES`] bytes, by [`short_key`]: found by
    /// comparing integers instead of bytes (most dimension values are that short).
    short: FastMap<u128, u32>,
    /// Ids of longer values.
    dict: FastMap<Box<str>, u32>,
    /// Arrival-ordered values; arrival id `k` (1-based) is `values[k - 1]`.
    values: Vec<Box<str>>,
    /// One id per row (0 = null) while the column is single-valued.
    ids: Vec<u32>,
    /// Set once a row with several values arrives: `offsets[r]..offsets[r + 1]` indexes `multi`.
    offsets: Option<Vec<u32>>,
    multi: Vec<u32>,
    /// [`dictionary_entry_bytes`] summed over the dictionary's values.
    dictionary_bytes: u64,
}

impl StringDim {
    fn new() -> StringDim {
        StringDim {
            short: FastMap::default(),
            dict: FastMap::default(),
            values: Vec::new(),
            ids: Vec::new(),
            offsets: None,
            multi: Vec::new(),
            dictionary_bytes: 0,
        }
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(key) = short_key(s.as_bytes()) {
            if let Some(id) = self.short.get(&key) {
                return *id;
            }
            let id = self.add_value(s);
            self.short.insert(key, id);
            return id;
        }
        if let Some(id) = self.dict.get(s) {
            return *id;
        }
        let id = self.add_value(s);
        self.dict.insert(s.into(), id);
        id
    }

    /// Add a value not in the dictionary yet; returns its id.
    fn add_value(&mut self, s: &str) -> u32 {
        self.dictionary_bytes += dictionary_entry_bytes(s.len());
        self.values.push(s.into());
        self.values.len() as u32
    }

    /// Append one row holding `id` (0 = null).
    #[inline]
    fn push_id(&mut self, id: u32) {
        match &mut self.offsets {
            Some(o) => {
                if id != 0 {
                    self.multi.push(id);
                }
                o.push(self.multi.len() as u32);
            }
            None => self.ids.push(id),
        }
    }

    /// Append rows `range` of a string (or all-null) column; `None` if `view` is neither.
    fn extend(&mut self, view: &ColumnView<'_>, range: Range<usize>) -> Option<()> {
        match view {
            ColumnView::Long { .. } | ColumnView::Double { .. } | ColumnView::Rows => None,
            _ => {
                self.append_cells(view, range);
                Some(())
            }
        }
    }

    /// Append cells `rows` of a string (or all-null) column, as [`StringDim::extend`] does a
    /// range; any other column appends nulls (the caller has checked the column).
    fn gather(&mut self, view: &ColumnView<'_>, rows: &[u32]) {
        self.append_cells(view, rows.iter().map(|&r| r as usize));
    }

    /// Append the cells `rows` of `view`: its strings interned, nulls (and any cell of a
    /// column that is not a string column) as null.
    fn append_cells(&mut self, view: &ColumnView<'_>, rows: impl ExactSizeIterator<Item = usize>) {
        if self.offsets.is_none() {
            self.ids.reserve(rows.len());
        }
        match view {
            // Intern each dictionary value once, on first use (unless the dictionary is much
            // larger than the rows taken from it).
            ColumnView::Str(StrView::Dict { keys, values })
                if values.len() <= 2 * rows.len() + 1024 =>
            {
                const UNSEEN: u32 = u32::MAX;
                let mut ids = vec![UNSEEN; values.len()];
                for r in rows {
                    let k = keys.get(r).copied().unwrap_or(NULL_KEY);
                    let id = match ids.get_mut(k as usize) {
                        None => 0, // NULL_KEY
                        Some(id) => {
                            if *id == UNSEEN {
                                *id = values.get(k as usize).map_or(0, |s| self.intern(s));
                            }
                            *id
                        }
                    };
                    self.push_id(id);
                }
            }
            ColumnView::Str(v) => {
                // A cache of the previous value would save the hash on sorted input but cost a
                // string compare per row otherwise; hashing short strings is as cheap (measured
                // on the TSBS data).
                for r in rows {
                    let id = v.get(r).map_or(0, |s| self.intern(s));
                    self.push_id(id);
                }
            }
            _ => rows.for_each(|_| self.push_id(0)),
        }
    }

    fn go_multi(&mut self) {
        if self.offsets.is_some() {
            return;
        }
        let mut offsets = Vec::with_capacity(self.ids.len() + 1);
        offsets.push(0u32);
        for &id in &self.ids {
            if id != 0 {
                self.multi.push(id);
            }
            offsets.push(self.multi.len() as u32);
        }
        self.offsets = Some(offsets);
        self.ids = Vec::new();
    }

    fn row_ids(&self, r: usize) -> &[u32] {
        match &self.offsets {
            Some(o) => &self.multi[o[r] as usize..o[r + 1] as usize],
            None => {
                if self.ids[r] == 0 {
                    &[]
                } else {
                    std::slice::from_ref(&self.ids[r])
                }
            }
        }
    }
}

/// How an input field converts to its column (the rules of [`SegmentWriter::push`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Conversion {
    Str,
    Long,
    Double,
    Sketch,
    /// `count`: the input is not read.
    Ignored,
}

impl Conversion {
    /// Whether the column-wise path takes a column seen as `view`.
    fn takes(self, view: &ColumnView<'_>) -> bool {
        match view {
            ColumnView::Null => true,
            ColumnView::Str(_) => matches!(
                self,
                Conversion::Str | Conversion::Sketch | Conversion::Ignored
            ),
            ColumnView::Long { .. } | ColumnView::Double { .. } => {
                matches!(
                    self,
                    Conversion::Long | Conversion::Double | Conversion::Ignored
                )
            }
            ColumnView::Rows => self == Conversion::Ignored,
        }
    }
}

/// Add `row`, normally past the bitmap's end (appending is cheaper than inserting).
#[inline]
fn push_row(bitmap: &mut RoaringBitmap, row: u32) {
    if bitmap.try_push(row).is_err() {
        bitmap.insert(row);
    }
}

/// Append rows `range` of `view` to a long column whose next row is `base` (nulls as 0 in
/// `values` and set in `nulls`). Doubles are truncated; the caller has sent the rows where
/// that fails to the row path. `None` if `view` is not numeric.
fn extend_longs(
    values: &mut Vec<i64>,
    nulls: &mut RoaringBitmap,
    base: u32,
    view: &ColumnView<'_>,
    range: Range<usize>,
) -> Option<()> {
    let start = values.len();
    match view {
        ColumnView::Null => {
            values.resize(start + range.len(), 0);
            nulls.insert_range(base..base + range.len() as u32);
        }
        ColumnView::Long {
            values: v,
            nulls: n,
        } => {
            values.extend_from_slice(&v[range.clone()]);
            if let Some(n) = n.filter(|n| n.null_count() > 0) {
                for (o, i) in range.enumerate() {
                    if n.is_null(i) {
                        values[start + o] = 0;
                        push_row(nulls, base + o as u32);
                    }
                }
            }
        }
        ColumnView::Double {
            values: v,
            nulls: n,
        } => {
            values.extend(v[range.clone()].iter().map(|&f| f.trunc() as i64));
            if let Some(n) = n.filter(|n| n.null_count() > 0) {
                for (o, i) in range.enumerate() {
                    if n.is_null(i) {
                        values[start + o] = 0;
                        push_row(nulls, base + o as u32);
                    }
                }
            }
        }
        ColumnView::Str(_) | ColumnView::Rows => return None,
    }
    Some(())
}

/// Append rows `range` of `view` to a double column whose next row is `base`, as
/// [`extend_longs`]; -0.0 is stored as 0.0, and NaN rows have gone to the row path.
fn extend_doubles(
    values: &mut Vec<f64>,
    nulls: &mut RoaringBitmap,
    base: u32,
    view: &ColumnView<'_>,
    range: Range<usize>,
) -> Option<()> {
    let start = values.len();
    let n = match view {
        ColumnView::Null => {
            values.resize(start + range.len(), 0.0);
            nulls.insert_range(base..base + range.len() as u32);
            return Some(());
        }
        ColumnView::Long {
            values: v,
            nulls: n,
        } => {
            values.extend(v[range.clone()].iter().map(|&i| i as f64));
            n
        }
        ColumnView::Double {
            values: v,
            nulls: n,
        } => {
            values.extend(
                v[range.clone()]
                    .iter()
                    .map(|&f| if f == 0.0 { 0.0 } else { f }),
            );
            n
        }
        ColumnView::Str(_) | ColumnView::Rows => return None,
    };
    if let Some(n) = n.filter(|n| n.null_count() > 0) {
        for (o, i) in range.enumerate() {
            if n.is_null(i) {
                values[start + o] = 0.0;
                push_row(nulls, base + o as u32);
            }
        }
    }
    Some(())
}

/// Whether [`SegmentWriter::append_arrow_rows`] takes input columns seen as `views` (one per
/// input field of `schema`: dimensions, then metrics): every cell is already of its column's
/// type, as [`SegmentWriter::push`]'s plain rows are — strings (or nulls) for string
/// dimensions, integers for long columns, integers or doubles that are not NaN for double
/// columns, anything but lists and booleans for `count`, no sketches. Such cells cannot fail
/// to convert, and their input values pass [`crate::realtime::index::validate_values`].
pub(crate) fn takes_arrow_columns(schema: &DataSchema, views: &[ColumnView<'_>]) -> bool {
    let n_dims = schema.dimensions.len();
    if views.len() != n_dims + schema.metrics.len() {
        return false;
    }
    let long = |view: &ColumnView<'_>| matches!(view, ColumnView::Null | ColumnView::Long { .. });
    let double = |view: &ColumnView<'_>| match view {
        ColumnView::Double { values, nulls } => values
            .iter()
            .enumerate()
            .all(|(r, f)| !f.is_nan() || nulls.is_some_and(|n| n.is_null(r))),
        ColumnView::Null | ColumnView::Long { .. } => true,
        ColumnView::Str(_) | ColumnView::Rows => false,
    };
    let dims = schema
        .dimensions
        .iter()
        .zip(views)
        .all(|(d, view)| match d.kind {
            DimensionType::String => matches!(view, ColumnView::Null | ColumnView::Str(_)),
            DimensionType::Long => long(view),
            DimensionType::Double => double(view),
        });
    dims && schema
        .metrics
        .iter()
        .zip(&views[n_dims..])
        .all(|(m, view)| match m.kind {
            MetricKind::Count => !matches!(view, ColumnView::Rows),
            MetricKind::HllSketch => false,
            k if k.is_long() => long(view),
            _ => double(view),
        })
}

/// Number of cells of an input column (`usize::MAX` for an absent one).
fn view_len(view: &ColumnView<'_>) -> usize {
    match view {
        ColumnView::Null | ColumnView::Rows => usize::MAX,
        ColumnView::Long { values, .. } => values.len(),
        ColumnView::Double { values, .. } => values.len(),
        ColumnView::Str(v) => v.len(),
    }
}

/// Append cells `rows` of a column (`get` reads a valid cell, `nulls` says which are null) to
/// a column whose next row is `base`, nulls as `zero` in `values` and set in `null_rows`.
#[inline]
fn gather_cells<T: Copy>(
    values: &mut Vec<T>,
    null_rows: &mut RoaringBitmap,
    base: u32,
    nulls: Option<&NullBuffer>,
    rows: &[u32],
    zero: T,
    get: impl Fn(usize) -> T,
) {
    values.reserve(rows.len());
    match nulls.filter(|n| n.null_count() > 0) {
        None => values.extend(rows.iter().map(|&r| get(r as usize))),
        Some(n) => {
            for (o, &r) in rows.iter().enumerate() {
                let r = r as usize;
                if n.is_valid(r) {
                    values.push(get(r));
                } else {
                    values.push(zero);
                    push_row(null_rows, base + o as u32);
                }
            }
        }
    }
}

/// Append cells `rows` of `view` (null or integers, see
/// [`takes_arrow_columns`]) to a long column whose next row is `base`.
fn gather_longs(
    values: &mut Vec<i64>,
    nulls: &mut RoaringBitmap,
    base: u32,
    view: &ColumnView<'_>,
    rows: &[u32],
) {
    match view {
        ColumnView::Long {
            values: v,
            nulls: n,
        } => gather_cells(values, nulls, base, *n, rows, 0, |r| v[r]),
        _ => {
            values.resize(values.len() + rows.len(), 0);
            nulls.insert_range(base..base + rows.len() as u32);
        }
    }
}

/// Append cells `rows` of `view` (null, integers, or doubles that are not NaN) to a double
/// column whose next row is `base`; -0.0 is stored as 0.0, as [`SegmentWriter::push`] does.
fn gather_doubles(
    values: &mut Vec<f64>,
    nulls: &mut RoaringBitmap,
    base: u32,
    view: &ColumnView<'_>,
    rows: &[u32],
) {
    match view {
        ColumnView::Long {
            values: v,
            nulls: n,
        } => gather_cells(values, nulls, base, *n, rows, 0.0, |r| v[r] as f64),
        ColumnView::Double {
            values: v,
            nulls: n,
        } => gather_cells(values, nulls, base, *n, rows, 0.0, |r| {
            if v[r] == 0.0 { 0.0 } else { v[r] }
        }),
        _ => {
            values.resize(values.len() + rows.len(), 0.0);
            nulls.insert_range(base..base + rows.len() as u32);
        }
    }
}

#[derive(Debug)]
enum DimCol {
    Str(StringDim),
    Long {
        values: Vec<i64>,
        nulls: RoaringBitmap,
    },
    Double {
        values: Vec<f64>,
        nulls: RoaringBitmap,
    },
}

#[derive(Debug)]
enum MetricCol {
    Long {
        values: Vec<i64>,
        nulls: RoaringBitmap,
    },
    Double {
        values: Vec<f64>,
        nulls: RoaringBitmap,
    },
    LongPair {
        times: Vec<i64>,
        values: Vec<i64>,
        nulls: RoaringBitmap,
    },
    DoublePair {
        times: Vec<i64>,
        values: Vec<f64>,
        nulls: RoaringBitmap,
    },
    Hll {
        sketches: Vec<Option<HllSketch>>,
        lg_k: u8,
    },
}

/// The state of one metric in a rolled-up row, for [`SegmentWriter::push_rolled`].
#[derive(Clone)]
pub enum MetricState {
    /// No value (a sum/min/max over nulls only).
    Null,
    /// A long aggregate (`count`, long sum/min/max).
    Long(i64),
    /// A double aggregate (double sum/min/max).
    Double(f64),
    /// A long first/last: (event time, value).
    LongPair(i64, i64),
    /// A double first/last: (event time, value).
    DoublePair(i64, f64),
    /// An HLL sketch.
    Hll(HllSketch),
}

impl std::fmt::Debug for MetricState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetricState::Null => write!(f, "Null"),
            MetricState::Long(v) => write!(f, "Long({v})"),
            MetricState::Double(v) => write!(f, "Double({v})"),
            MetricState::LongPair(t, v) => write!(f, "LongPair({t}, {v})"),
            MetricState::DoublePair(t, v) => write!(f, "DoublePair({t}, {v})"),
            MetricState::Hll(s) => write!(f, "Hll(estimate {})", s.estimate()),
        }
    }
}

/// Builds one segment for one interval of one datasource.
#[derive(Debug)]
pub struct SegmentWriter {
    schema: DataSchema,
    interval: Interval,
    times: Vec<i64>,
    dims: Vec<DimCol>,
    metrics: Vec<MetricCol>,
    /// Rows that arrived already in sort order: appended from segments by
    /// [`SegmentWriter::append_segment_rows`] (a segment's rows are in its sort order, so each
    /// call appends a sorted run). When every row did, `finish` merges the runs instead of
    /// sorting rows that are already sorted. Only the algorithm depends on it, not the result.
    sorted_run_rows: usize,
}

/// Converted value of one dimension of a row, checked before anything is appended.
enum DimValue<'a> {
    Null,
    Str(Cow<'a, str>),
    Multi(Vec<Cow<'a, str>>),
    Long(i64),
    Double(f64),
}

/// Converted value of one metric input of a row.
enum MetricValue<'a> {
    Null,
    Long(i64),
    Double(f64),
    Strs(Vec<Cow<'a, str>>),
}

fn to_string_value<'a>(v: &InputValue<'a>, field: &str) -> Result<Option<Cow<'a, str>>> {
    Ok(match v {
        InputValue::Null => None,
        InputValue::Str(s) => Some(s.clone()),
        InputValue::Long(i) => Some(Cow::Owned(i.to_string())),
        InputValue::Double(f) => Some(Cow::Owned(format_double(*f))),
        InputValue::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        InputValue::List(_) => {
            return Err(Error::invalid(format!(
                "field `{field}`: nested lists are not allowed"
            )));
        }
    })
}

/// Druid-style rendering of a double as a string dimension value.
fn format_double(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.1}")
    } else {
        f.to_string()
    }
}

fn to_long(v: &InputValue<'_>, field: &str) -> Result<Option<i64>> {
    let bad = || {
        Error::invalid(format!(
            "field `{field}`: cannot read {} as a long",
            v.describe()
        ))
    };
    Ok(match v {
        InputValue::Null => None,
        InputValue::Long(i) => Some(*i),
        InputValue::Double(f) => {
            if f.is_finite() && f.abs() < 9.2e18 {
                Some(f.trunc() as i64)
            } else {
                return Err(bad());
            }
        }
        InputValue::Bool(b) => Some(i64::from(*b)),
        InputValue::Str(s) => {
            let t = s.trim();
            if t.is_empty() {
                None
            } else if let Ok(i) = t.parse::<i64>() {
                Some(i)
            } else {
                match t.parse::<f64>() {
                    Ok(f) if f.is_finite() && f.abs() < 9.2e18 => Some(f.trunc() as i64),
                    _ => return Err(bad()),
                }
            }
        }
        InputValue::List(l) if l.len() == 1 => to_long(&l[0], field)?,
        InputValue::List(l) if l.is_empty() => None,
        InputValue::List(_) => return Err(bad()),
    })
}

fn to_double(v: &InputValue<'_>, field: &str) -> Result<Option<f64>> {
    let bad = || {
        Error::invalid(format!(
            "field `{field}`: cannot read {} as a double",
            v.describe()
        ))
    };
    let f = match v {
        InputValue::Null => return Ok(None),
        InputValue::Long(i) => *i as f64,
        InputValue::Double(f) => *f,
        InputValue::Bool(b) => f64::from(u8::from(*b)),
        InputValue::Str(s) => {
            let t = s.trim();
            if t.is_empty() {
                return Ok(None);
            }
            t.parse::<f64>().map_err(|_| bad())?
        }
        InputValue::List(l) if l.len() == 1 => return to_double(&l[0], field),
        InputValue::List(l) if l.is_empty() => return Ok(None),
        InputValue::List(_) => return Err(bad()),
    };
    if f.is_nan() {
        return Err(Error::invalid(format!(
            "field `{field}`: NaN is not a value"
        )));
    }
    // -0.0 and 0.0 are one value (keeps rollup and sorting consistent).
    Ok(Some(if f == 0.0 { 0.0 } else { f }))
}

impl SegmentWriter {
    /// Start a segment of `schema`'s datasource for `interval`.
    pub fn new(schema: &DataSchema, interval: Interval) -> Result<SegmentWriter> {
        if interval.is_empty() {
            return Err(Error::invalid(format!(
                "segment interval {interval} is empty"
            )));
        }
        // Rows are stored with `__time` truncated to the query granularity, so the interval
        // must start and end on its bucket boundaries or a truncated time could fall outside.
        let qg = schema.granularity.query_granularity;
        if qg.truncate(interval.start) != interval.start
            || qg.truncate(interval.end) != interval.end
        {
            return Err(Error::invalid(format!(
                "segment interval {interval} is not aligned to queryGranularity `{}`",
                qg.name()
            )));
        }
        let dims = schema
            .dimensions
            .iter()
            .map(|d| match d.kind {
                DimensionType::String => DimCol::Str(StringDim::new()),
                DimensionType::Long => DimCol::Long {
                    values: Vec::new(),
                    nulls: RoaringBitmap::new(),
                },
                DimensionType::Double => DimCol::Double {
                    values: Vec::new(),
                    nulls: RoaringBitmap::new(),
                },
            })
            .collect();
        let metrics = schema
            .metrics
            .iter()
            .map(|m| match m.kind {
                MetricKind::Count
                | MetricKind::LongSum
                | MetricKind::LongMin
                | MetricKind::LongMax => MetricCol::Long {
                    values: Vec::new(),
                    nulls: RoaringBitmap::new(),
                },
                MetricKind::DoubleSum | MetricKind::DoubleMin | MetricKind::DoubleMax => {
                    MetricCol::Double {
                        values: Vec::new(),
                        nulls: RoaringBitmap::new(),
                    }
                }
                MetricKind::LongFirst | MetricKind::LongLast => MetricCol::LongPair {
                    times: Vec::new(),
                    values: Vec::new(),
                    nulls: RoaringBitmap::new(),
                },
                MetricKind::DoubleFirst | MetricKind::DoubleLast => MetricCol::DoublePair {
                    times: Vec::new(),
                    values: Vec::new(),
                    nulls: RoaringBitmap::new(),
                },
                MetricKind::HllSketch => MetricCol::Hll {
                    sketches: Vec::new(),
                    lg_k: m.lg_k,
                },
            })
            .collect();
        Ok(SegmentWriter {
            schema: schema.clone(),
            interval,
            times: Vec::new(),
            dims,
            metrics,
            sorted_run_rows: 0,
        })
    }

    /// Rows appended so far.
    pub fn num_rows(&self) -> usize {
        self.times.len()
    }

    /// Make room in every column for `rows` more rows, so appending them does not grow the
    /// columns step by step (each step copies what the column holds and faults in new pages).
    /// For a caller that knows how many rows it is about to append (a merge).
    pub fn reserve_rows(&mut self, rows: usize) {
        self.times.reserve_exact(rows);
        for col in &mut self.dims {
            match col {
                DimCol::Str(d) if d.offsets.is_none() => d.ids.reserve_exact(rows),
                DimCol::Str(_) => {}
                DimCol::Long { values, .. } => values.reserve_exact(rows),
                DimCol::Double { values, .. } => values.reserve_exact(rows),
            }
        }
        for col in &mut self.metrics {
            match col {
                MetricCol::Long { values, .. } => values.reserve_exact(rows),
                MetricCol::Double { values, .. } => values.reserve_exact(rows),
                MetricCol::LongPair { times, values, .. } => {
                    times.reserve_exact(rows);
                    values.reserve_exact(rows);
                }
                MetricCol::DoublePair { times, values, .. } => {
                    times.reserve_exact(rows);
                    values.reserve_exact(rows);
                }
                MetricCol::Hll { sketches, .. } => sketches.reserve_exact(rows),
            }
        }
    }

    /// Estimated peak bytes this writer needs through [`SegmentWriter::finish`]: per row
    /// ([`writer_bytes_per_row`]), per dictionary value ([`dictionary_entry_bytes`]) and per
    /// value of multi-value rows. It is what realtime ingestion counts against its memory
    /// budget for pending rows.
    pub fn estimated_bytes(&self) -> u64 {
        let rows = self.times.len() as u64 * writer_bytes_per_row(&self.schema);
        let strings: u64 = self
            .dims
            .iter()
            .map(|d| match d {
                DimCol::Str(s) => s.dictionary_bytes + 12 * s.multi.len() as u64,
                _ => 0,
            })
            .sum();
        rows + strings
    }

    /// The segment's interval.
    pub fn interval(&self) -> Interval {
        self.interval
    }

    /// Append one row given as its event time and one input value per input field (see
    /// [`crate::input`]). On error nothing is appended and the reason names the field.
    pub fn push(&mut self, time: i64, fields: &[InputValue<'_>]) -> Result<()> {
        let n_dims = self.schema.dimensions.len();
        if fields.len() != n_dims + self.schema.metrics.len() {
            return Err(Error::internal(format!(
                "row has {} input values, schema needs {}",
                fields.len(),
                n_dims + self.schema.metrics.len()
            )));
        }
        if !self.interval.contains(time) {
            return Err(Error::invalid(format!(
                "timestamp {} is outside the segment interval {}",
                crate::time::format_iso_millis(time),
                self.interval
            )));
        }
        if self.times.len() >= u32::MAX as usize - 1 {
            return Err(Error::ResourcesExhausted(
                "a segment holds at most 2^32 - 2 rows".into(),
            ));
        }
        if self.is_plain_row(fields) {
            self.push_plain(time, fields);
            return Ok(());
        }
        // Convert everything first so a bad field rejects the row without side effects.
        let mut dim_values: Vec<DimValue<'_>> = Vec::with_capacity(n_dims);
        for (spec, v) in self.schema.dimensions.iter().zip(fields) {
            let name = spec.name.as_str();
            dim_values.push(match spec.kind {
                DimensionType::String => match v {
                    InputValue::List(items) => {
                        let mut strs = Vec::with_capacity(items.len());
                        for it in items {
                            if let Some(s) = to_string_value(it, name)? {
                                strs.push(s);
                            }
                        }
                        match spec.multi_value_handling {
                            MultiValueHandling::SortedArray => strs.sort(),
                            MultiValueHandling::SortedSet => {
                                strs.sort();
                                strs.dedup();
                            }
                            MultiValueHandling::Array => {}
                        }
                        match strs.len() {
                            0 => DimValue::Null,
                            1 => DimValue::Str(strs.swap_remove(0)),
                            _ => DimValue::Multi(strs),
                        }
                    }
                    other => match to_string_value(other, name)? {
                        None => DimValue::Null,
                        Some(s) => DimValue::Str(s),
                    },
                },
                DimensionType::Long => match to_long(v, name)? {
                    None => DimValue::Null,
                    Some(i) => DimValue::Long(i),
                },
                DimensionType::Double => match to_double(v, name)? {
                    None => DimValue::Null,
                    Some(f) => DimValue::Double(f),
                },
            });
        }
        let mut metric_values: Vec<MetricValue<'_>> = Vec::with_capacity(self.metrics.len());
        for (spec, v) in self.schema.metrics.iter().zip(&fields[n_dims..]) {
            let name = spec.field_name.as_deref().unwrap_or(&spec.name);
            metric_values.push(match spec.kind {
                MetricKind::Count => MetricValue::Long(1),
                MetricKind::HllSketch => {
                    let mut strs = Vec::new();
                    match v {
                        InputValue::List(items) => {
                            for it in items {
                                if let Some(s) = to_string_value(it, name)? {
                                    strs.push(s);
                                }
                            }
                        }
                        other => {
                            if let Some(s) = to_string_value(other, name)? {
                                strs.push(s);
                            }
                        }
                    }
                    MetricValue::Strs(strs)
                }
                k if k.is_long() => match to_long(v, name)? {
                    None => MetricValue::Null,
                    Some(i) => MetricValue::Long(i),
                },
                _ => match to_double(v, name)? {
                    None => MetricValue::Null,
                    Some(f) => MetricValue::Double(f),
                },
            });
        }
        let hll_lg: Vec<u8> = self.schema.metrics.iter().map(|m| m.lg_k).collect();
        // Sketches are the one allocation that can fail; make them before appending anything.
        let mut sketches: Vec<Option<HllSketch>> = Vec::new();
        for (i, mv) in metric_values.iter().enumerate() {
            if let MetricValue::Strs(strs) = mv {
                if strs.is_empty() {
                    sketches.push(None);
                } else {
                    let mut s = new_hll(hll_lg[i])?;
                    for v in strs {
                        hll_update_str(&mut s, v);
                    }
                    sketches.push(Some(s));
                }
            }
        }

        // Append.
        let row = self.times.len() as u32;
        let granularity = self.schema.granularity.query_granularity;
        self.times.push(granularity.truncate(time));
        for (col, v) in self.dims.iter_mut().zip(dim_values) {
            match (col, v) {
                (DimCol::Str(d), DimValue::Null | DimValue::Long(_) | DimValue::Double(_)) => {
                    match &mut d.offsets {
                        Some(o) => o.push(d.multi.len() as u32),
                        None => d.ids.push(0),
                    }
                }
                (DimCol::Str(d), DimValue::Str(s)) => {
                    let id = d.intern(&s);
                    match &mut d.offsets {
                        Some(o) => {
                            d.multi.push(id);
                            o.push(d.multi.len() as u32);
                        }
                        None => d.ids.push(id),
                    }
                }
                (DimCol::Str(d), DimValue::Multi(strs)) => {
                    d.go_multi();
                    for s in &strs {
                        let id = d.intern(s);
                        d.multi.push(id);
                    }
                    let len = d.multi.len() as u32;
                    if let Some(o) = &mut d.offsets {
                        o.push(len);
                    }
                }
                (DimCol::Long { values, nulls }, v) => match v {
                    DimValue::Long(i) => values.push(i),
                    _ => {
                        values.push(0);
                        nulls.insert(row);
                    }
                },
                (DimCol::Double { values, nulls }, v) => match v {
                    DimValue::Double(f) => values.push(f),
                    _ => {
                        values.push(0.0);
                        nulls.insert(row);
                    }
                },
            }
        }
        let mut sketches = sketches.into_iter();
        for (col, v) in self.metrics.iter_mut().zip(metric_values) {
            match col {
                MetricCol::Long { values, nulls } => match v {
                    MetricValue::Long(i) => values.push(i),
                    _ => {
                        values.push(0);
                        nulls.insert(row);
                    }
                },
                MetricCol::Double { values, nulls } => match v {
                    MetricValue::Double(f) => values.push(f),
                    _ => {
                        values.push(0.0);
                        nulls.insert(row);
                    }
                },
                MetricCol::LongPair {
                    times,
                    values,
                    nulls,
                } => {
                    times.push(time);
                    match v {
                        MetricValue::Long(i) => values.push(i),
                        _ => {
                            values.push(0);
                            nulls.insert(row);
                        }
                    }
                }
                MetricCol::DoublePair {
                    times,
                    values,
                    nulls,
                } => {
                    times.push(time);
                    match v {
                        MetricValue::Double(f) => values.push(f),
                        _ => {
                            values.push(0.0);
                            nulls.insert(row);
                        }
                    }
                }
                MetricCol::Hll { sketches: s, .. } => s.push(sketches.next().flatten()),
            }
        }
        Ok(())
    }

    /// Whether every value of a row is already of its column's type (a string or null for
    /// a string dimension, a long or null for a long column, a number or null that is not NaN
    /// for a double column; any value for `count`; no sketches): such a row cannot fail to
    /// convert, and [`SegmentWriter::push_plain`] appends it without converting.
    fn is_plain_row(&self, fields: &[InputValue<'_>]) -> bool {
        let n_dims = self.dims.len();
        let dims_plain = self.dims.iter().zip(fields).all(|(col, v)| match col {
            DimCol::Str(_) => matches!(v, InputValue::Str(_) | InputValue::Null),
            DimCol::Long { .. } => matches!(v, InputValue::Long(_) | InputValue::Null),
            DimCol::Double { .. } => match v {
                InputValue::Double(f) => !f.is_nan(),
                InputValue::Long(_) | InputValue::Null => true,
                _ => false,
            },
        });
        dims_plain
            && self
                .schema
                .metrics
                .iter()
                .zip(&self.metrics)
                .zip(&fields[n_dims..])
                .all(|((spec, col), v)| match col {
                    _ if spec.kind == MetricKind::Count => true,
                    MetricCol::Long { .. } | MetricCol::LongPair { .. } => {
                        matches!(v, InputValue::Long(_) | InputValue::Null)
                    }
                    MetricCol::Double { .. } | MetricCol::DoublePair { .. } => match v {
                        InputValue::Double(f) => !f.is_nan(),
                        InputValue::Long(_) | InputValue::Null => true,
                        _ => false,
                    },
                    MetricCol::Hll { .. } => false,
                })
    }

    /// Append a row for which [`SegmentWriter::is_plain_row`] holds, as
    /// [`SegmentWriter::push`] would, without allocating.
    fn push_plain(&mut self, time: i64, fields: &[InputValue<'_>]) {
        let double = |v: &InputValue<'_>| match *v {
            InputValue::Double(f) => Some(if f == 0.0 { 0.0 } else { f }),
            InputValue::Long(i) => Some(i as f64),
            _ => None,
        };
        let long = |v: &InputValue<'_>| match *v {
            InputValue::Long(i) => Some(i),
            _ => None,
        };
        let row = self.times.len() as u32;
        self.times
            .push(self.schema.granularity.query_granularity.truncate(time));
        for (col, v) in self.dims.iter_mut().zip(fields) {
            match col {
                DimCol::Str(d) => {
                    let id = match v {
                        InputValue::Str(s) => d.intern(s),
                        _ => 0,
                    };
                    d.push_id(id);
                }
                DimCol::Long { values, nulls } => match long(v) {
                    Some(i) => values.push(i),
                    None => {
                        values.push(0);
                        push_row(nulls, row);
                    }
                },
                DimCol::Double { values, nulls } => match double(v) {
                    Some(f) => values.push(f),
                    None => {
                        values.push(0.0);
                        push_row(nulls, row);
                    }
                },
            }
        }
        let n_dims = self.dims.len();
        for ((spec, col), v) in self
            .schema
            .metrics
            .iter()
            .zip(self.metrics.iter_mut())
            .zip(&fields[n_dims..])
        {
            let count = spec.kind == MetricKind::Count;
            match col {
                MetricCol::Long { values, nulls } => match long(v) {
                    _ if count => values.push(1),
                    Some(i) => values.push(i),
                    None => {
                        values.push(0);
                        push_row(nulls, row);
                    }
                },
                MetricCol::Double { values, nulls } => match double(v) {
                    Some(f) => values.push(f),
                    None => {
                        values.push(0.0);
                        push_row(nulls, row);
                    }
                },
                MetricCol::LongPair {
                    times,
                    values,
                    nulls,
                } => {
                    times.push(time);
                    match long(v) {
                        Some(i) => values.push(i),
                        None => {
                            values.push(0);
                            push_row(nulls, row);
                        }
                    }
                }
                MetricCol::DoublePair {
                    times,
                    values,
                    nulls,
                } => {
                    times.push(time);
                    match double(v) {
                        Some(f) => values.push(f),
                        None => {
                            values.push(0.0);
                            push_row(nulls, row);
                        }
                    }
                }
                // `is_plain_row` excludes sketches.
                MetricCol::Hll { sketches, .. } => sketches.push(None),
            }
        }
    }

    /// Append one already rolled-up row: its (truncated) time, one input value per dimension,
    /// and one state per metric (a count's count, a sum's sum, a first/last pair, a sketch).
    /// Used to merge segments (realtime persists and handoff); rollup at [`SegmentWriter::finish`]
    /// combines states with the same functions as raw rows. On error nothing is appended.
    pub fn push_rolled(
        &mut self,
        time: i64,
        dims: &[InputValue<'_>],
        states: Vec<MetricState>,
    ) -> Result<()> {
        let n_dims = self.schema.dimensions.len();
        if dims.len() != n_dims || states.len() != self.schema.metrics.len() {
            return Err(Error::internal(format!(
                "rolled-up row has {} dimensions and {} metric states, schema needs {} and {}",
                dims.len(),
                states.len(),
                n_dims,
                self.schema.metrics.len()
            )));
        }
        for (col, st) in self.metrics.iter().zip(&states) {
            let ok = matches!(
                (col, st),
                (_, MetricState::Null)
                    | (MetricCol::Long { .. }, MetricState::Long(_))
                    | (MetricCol::Double { .. }, MetricState::Double(_))
                    | (MetricCol::LongPair { .. }, MetricState::LongPair(..))
                    | (MetricCol::DoublePair { .. }, MetricState::DoublePair(..))
                    | (MetricCol::Hll { .. }, MetricState::Hll(_))
            );
            if !ok {
                return Err(Error::internal(format!(
                    "metric state {st:?} does not fit its column"
                )));
            }
        }
        let mut fields: Vec<InputValue<'_>> = dims.to_vec();
        fields.extend(self.schema.metrics.iter().map(|_| InputValue::Null));
        self.push(time, &fields)?;
        let row = self.times.len() as u32 - 1;
        let r = row as usize;
        for (col, st) in self.metrics.iter_mut().zip(states) {
            match (col, st) {
                (MetricCol::Long { values, nulls }, MetricState::Long(v)) => {
                    values[r] = v;
                    nulls.remove(row);
                }
                (MetricCol::Long { values, nulls }, MetricState::Null) => {
                    // `count` pushes 1 for a row; a null state is no value.
                    values[r] = 0;
                    nulls.insert(row);
                }
                (MetricCol::Double { values, nulls }, MetricState::Double(v)) => {
                    values[r] = v;
                    nulls.remove(row);
                }
                (
                    MetricCol::LongPair {
                        times,
                        values,
                        nulls,
                    },
                    MetricState::LongPair(t, v),
                ) => {
                    times[r] = t;
                    values[r] = v;
                    nulls.remove(row);
                }
                (
                    MetricCol::DoublePair {
                        times,
                        values,
                        nulls,
                    },
                    MetricState::DoublePair(t, v),
                ) => {
                    times[r] = t;
                    values[r] = v;
                    nulls.remove(row);
                }
                (MetricCol::Hll { sketches, .. }, MetricState::Hll(s)) => sketches[r] = Some(s),
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether [`SegmentWriter::append_segment_rows`] takes `seg`: a segment of this writer's
    /// datasource schema (every dimension and metric present with the column type this writer
    /// builds, string dimensions single-valued in `seg` and in this writer) whose rows lie in
    /// this writer's interval. Merge other segments a row at a time with
    /// [`SegmentWriter::push_rolled`].
    pub fn takes_segment(&self, seg: &Segment) -> bool {
        let dir = seg.directory();
        let in_interval = dir.num_rows == 0
            || (self.interval.contains(dir.min_time) && self.interval.contains(dir.max_time));
        let time_ok = seg
            .column(TIME_COLUMN)
            .is_some_and(|c| c.kind == ColumnKind::Time && c.column_type == ColumnType::Long);
        let dims_ok = self
            .schema
            .dimensions
            .iter()
            .zip(&self.dims)
            .all(|(spec, col)| {
                let Some(c) = seg.column(&spec.name) else {
                    return false;
                };
                match col {
                    DimCol::Str(d) => d.offsets.is_none() && c.column_type == ColumnType::String,
                    DimCol::Long { .. } => c.column_type == ColumnType::Long,
                    DimCol::Double { .. } => c.column_type == ColumnType::Double,
                }
            });
        let metrics_ok = self
            .schema
            .metrics
            .iter()
            .zip(&self.metrics)
            .all(|(spec, col)| {
                let Some(c) = seg.column(&spec.name) else {
                    return false;
                };
                let want = match col {
                    MetricCol::Long { .. } => ColumnType::Long,
                    MetricCol::Double { .. } => ColumnType::Double,
                    MetricCol::LongPair { .. } => ColumnType::LongPair,
                    MetricCol::DoublePair { .. } => ColumnType::DoublePair,
                    MetricCol::Hll { .. } => ColumnType::HllSketch,
                };
                c.column_type == want
            });
        in_interval
            && time_ok
            && dims_ok
            && metrics_ok
            && self.times.len() + (dir.num_rows as usize) < u32::MAX as usize - 1
    }

    /// Append rows `rows` of a rolled-up segment that [`SegmentWriter::takes_segment`], column
    /// by column: the same rows, values and metric states as [`SegmentWriter::push_rolled`] of
    /// each row, without reading rows one by one (strings are interned once per dictionary
    /// entry, numbers copied a block at a time). Used to merge realtime pieces. Unlike the
    /// row paths, an error (a corrupt block) may leave some columns appended: the writer must
    /// then be dropped.
    pub fn append_segment_rows(&mut self, seg: &Segment, rows: Range<usize>) -> Result<()> {
        if !self.takes_segment(seg) {
            return Err(Error::internal(format!(
                "segment {} cannot be appended column-wise",
                seg.path().display()
            )));
        }
        let total = seg.num_rows() as usize;
        let rows = rows.start.min(total)..rows.end.min(total);
        if rows.is_empty() {
            return Ok(());
        }
        let missing = |name: &str| {
            Error::internal(format!(
                "segment {} has no column `{name}`",
                seg.path().display()
            ))
        };
        let time_col = seg
            .column(TIME_COLUMN)
            .ok_or_else(|| missing(TIME_COLUMN))?;
        let granularity = self.schema.granularity.query_granularity;
        // Per string dimension: this writer's id of each of the segment's ids (interned on
        // first use; `u32::MAX` = not yet seen).
        const UNSEEN: u32 = u32::MAX;
        let mut id_maps: Vec<Vec<u32>> = Vec::with_capacity(self.dims.len());
        let mut dicts = Vec::with_capacity(self.dims.len());
        let mut dim_nulls = Vec::with_capacity(self.dims.len());
        for spec in &self.schema.dimensions {
            let c = seg.column(&spec.name).ok_or_else(|| missing(&spec.name))?;
            if c.column_type == ColumnType::String {
                let d = seg.dictionary(c)?;
                let mut map = vec![UNSEEN; d.len() + 1];
                map[0] = 0;
                id_maps.push(map);
                dicts.push(Some(d));
                dim_nulls.push(RoaringBitmap::new());
            } else {
                id_maps.push(Vec::new());
                dicts.push(None);
                dim_nulls.push(seg.null_bitmap(c)?);
            }
        }
        let mut metric_nulls = Vec::with_capacity(self.metrics.len());
        for spec in &self.schema.metrics {
            let c = seg.column(&spec.name).ok_or_else(|| missing(&spec.name))?;
            metric_nulls.push(seg.null_bitmap(c)?);
        }
        let first_block = rows.start / BLOCK_ROWS;
        let last_block = (rows.end - 1) / BLOCK_ROWS;
        for b in first_block..=last_block {
            let block_start = b * BLOCK_ROWS;
            // The rows of this block to take, as offsets in the block and as segment rows.
            let lo = rows.start.max(block_start) - block_start;
            let hi = rows.end.min(block_start + seg.block_rows(b)) - block_start;
            let seg_rows = (block_start + lo) as u32..(block_start + hi) as u32;
            let base = self.times.len() as u32;
            // Maps a null bitmap of segment rows to this writer's rows.
            let add_nulls = |nulls: &RoaringBitmap, out: &mut RoaringBitmap| {
                for r in nulls.range(seg_rows.clone()) {
                    push_row(out, base + (r - seg_rows.start));
                }
            };
            let times = seg.read_longs(time_col, StreamRole::Long, b)?;
            let times = &times[lo..hi];
            let n = times.len();
            for ((spec, col), (map, (dict, nulls))) in self
                .schema
                .dimensions
                .iter()
                .zip(self.dims.iter_mut())
                .zip(id_maps.iter_mut().zip(dicts.iter().zip(&dim_nulls)))
            {
                let c = seg.column(&spec.name).ok_or_else(|| missing(&spec.name))?;
                match (col, dict) {
                    (DimCol::Str(d), Some(dict)) => {
                        let ids = seg.read_u32s(c, StreamRole::Ids, b)?;
                        d.ids.reserve(n);
                        for &id in &ids[lo..hi] {
                            let slot = map
                                .get_mut(id as usize)
                                .ok_or_else(|| Error::internal("segment id past its dictionary"))?;
                            if *slot == UNSEEN {
                                let value = dict.get(id as usize - 1).ok_or_else(|| {
                                    Error::internal("segment id past its dictionary")
                                })?;
                                *slot = d.intern(value);
                            }
                            d.push_id(*slot);
                        }
                    }
                    (DimCol::Long { values, nulls: out }, None) => {
                        let v = seg.read_longs(c, StreamRole::Long, b)?;
                        let start = values.len();
                        values.extend_from_slice(&v[lo..hi]);
                        add_nulls(nulls, out);
                        for r in nulls.range(seg_rows.clone()) {
                            values[start + (r - seg_rows.start) as usize] = 0;
                        }
                    }
                    (DimCol::Double { values, nulls: out }, None) => {
                        let v = seg.read_doubles(c, b)?;
                        let start = values.len();
                        values.extend_from_slice(&v[lo..hi]);
                        add_nulls(nulls, out);
                        for r in nulls.range(seg_rows.clone()) {
                            values[start + (r - seg_rows.start) as usize] = 0.0;
                        }
                    }
                    _ => return Err(Error::internal("dimension column kinds differ")),
                }
            }
            for ((spec, col), nulls) in self
                .schema
                .metrics
                .iter()
                .zip(self.metrics.iter_mut())
                .zip(&metric_nulls)
            {
                let c = seg.column(&spec.name).ok_or_else(|| missing(&spec.name))?;
                match col {
                    MetricCol::Long { values, nulls: out } => {
                        let v = seg.read_longs(c, StreamRole::Long, b)?;
                        let start = values.len();
                        values.extend_from_slice(&v[lo..hi]);
                        add_nulls(nulls, out);
                        for r in nulls.range(seg_rows.clone()) {
                            values[start + (r - seg_rows.start) as usize] = 0;
                        }
                    }
                    MetricCol::Double { values, nulls: out } => {
                        let v = seg.read_doubles(c, b)?;
                        let start = values.len();
                        values.extend_from_slice(&v[lo..hi]);
                        add_nulls(nulls, out);
                        for r in nulls.range(seg_rows.clone()) {
                            values[start + (r - seg_rows.start) as usize] = 0.0;
                        }
                    }
                    MetricCol::LongPair {
                        times: pt,
                        values,
                        nulls: out,
                    } => {
                        let t = seg.read_longs(c, StreamRole::PairTime, b)?;
                        let v = seg.read_longs(c, StreamRole::Long, b)?;
                        let start = values.len();
                        pt.extend_from_slice(&t[lo..hi]);
                        values.extend_from_slice(&v[lo..hi]);
                        add_nulls(nulls, out);
                        for r in nulls.range(seg_rows.clone()) {
                            let i = start + (r - seg_rows.start) as usize;
                            (pt[i], values[i]) = (0, 0);
                        }
                    }
                    MetricCol::DoublePair {
                        times: pt,
                        values,
                        nulls: out,
                    } => {
                        let t = seg.read_longs(c, StreamRole::PairTime, b)?;
                        let v = seg.read_doubles(c, b)?;
                        let start = values.len();
                        pt.extend_from_slice(&t[lo..hi]);
                        values.extend_from_slice(&v[lo..hi]);
                        add_nulls(nulls, out);
                        for r in nulls.range(seg_rows.clone()) {
                            let i = start + (r - seg_rows.start) as usize;
                            (pt[i], values[i]) = (0, 0.0);
                        }
                    }
                    MetricCol::Hll { sketches, .. } => {
                        let blobs = seg.read_blobs(c, b)?;
                        for blob in &blobs[lo..hi] {
                            sketches.push(if blob.is_empty() {
                                None
                            } else {
                                Some(deserialize_hll(blob)?)
                            });
                        }
                    }
                }
            }
            if granularity == Granularity::None {
                self.times.extend_from_slice(times);
            } else {
                self.times
                    .extend(times.iter().map(|&t| granularity.truncate(t)));
            }
        }
        self.sorted_run_rows += rows.len();
        Ok(())
    }

    /// Append one JSON object row (timestamp read per the schema's `timestampSpec`).
    pub fn push_json(&mut self, row: &serde_json::Map<String, serde_json::Value>) -> Result<()> {
        let mut values = Vec::new();
        let time = json_row(&self.schema, row, &mut values)?;
        self.push(time, &values)
    }

    /// Append an Arrow record batch; columns are matched to the schema by name. Rows that fail
    /// are reported (with their index and reason) and skipped; the others are appended.
    /// A batch whose columns cannot be used at all is an error and appends nothing.
    ///
    /// Columns of the common types (strings, dictionary-encoded strings, integers, floats,
    /// timestamps) are appended column-wise; rows the column-wise path cannot take (a bad
    /// timestamp, a value that does not convert) go one by one through [`SegmentWriter::push`],
    /// in their place, so the outcome is the same as pushing every row.
    pub fn add_batch(&mut self, batch: &RecordBatch) -> Result<BatchReport> {
        let schema = self.schema.clone();
        let rows = ArrowRows::new(&schema, batch)?;
        let n_inputs = schema.dimensions.len() + schema.metrics.len();
        let views: Vec<ColumnView<'_>> = (0..n_inputs).map(|f| rows.field_view(f)).collect();
        let fits = self.times.len() + rows.len() < u32::MAX as usize - 1;
        let columnar = views
            .iter()
            .enumerate()
            .all(|(f, v)| self.conversion(f).takes(v));
        let mut report = BatchReport::default();
        if fits && columnar {
            self.add_columnar(&rows, &views, &mut report)?;
        } else {
            let mut values = Vec::new();
            for i in 0..rows.len() {
                self.push_arrow_row(&rows, i, &mut values, &mut report);
            }
        }
        Ok(report)
    }

    /// The row-at-a-time path for row `i` of `rows`.
    fn push_arrow_row<'b>(
        &mut self,
        rows: &'b ArrowRows<'_>,
        i: usize,
        values: &mut Vec<InputValue<'b>>,
        report: &mut BatchReport,
    ) {
        match rows.row(i, values).and_then(|t| self.push(t, values)) {
            Ok(()) => report.accepted += 1,
            Err(e) => report.rejected.push((i, e.to_string())),
        }
    }

    /// How input field `field` (dimensions, then metrics) converts to its column.
    fn conversion(&self, field: usize) -> Conversion {
        let n_dims = self.schema.dimensions.len();
        if let Some(d) = self.schema.dimensions.get(field) {
            return match d.kind {
                DimensionType::String => Conversion::Str,
                DimensionType::Long => Conversion::Long,
                DimensionType::Double => Conversion::Double,
            };
        }
        match self.schema.metrics.get(field - n_dims).map(|m| m.kind) {
            Some(MetricKind::Count) | None => Conversion::Ignored,
            Some(MetricKind::HllSketch) => Conversion::Sketch,
            Some(k) if k.is_long() => Conversion::Long,
            Some(_) => Conversion::Double,
        }
    }

    /// The column-wise path: finds the rows it cannot take, appends the runs between them
    /// column by column, and pushes each of those rows through the row path in its place.
    fn add_columnar(
        &mut self,
        rows: &ArrowRows<'_>,
        views: &[ColumnView<'_>],
        report: &mut BatchReport,
    ) -> Result<()> {
        let n = rows.len();
        let (times, mut row_path) = rows.times();
        let interval = self.interval;
        row_path.extend(
            times
                .iter()
                .enumerate()
                .filter(|&(_, &t)| !interval.contains(t))
                .map(|(i, _)| i),
        );
        for (f, view) in views.iter().enumerate() {
            if let ColumnView::Double { values, nulls } = view {
                let fails: fn(f64) -> bool = match self.conversion(f) {
                    Conversion::Long => |v| !(v.is_finite() && v.abs() < 9.2e18),
                    Conversion::Double => f64::is_nan,
                    _ => continue,
                };
                let valid = |i: usize| nulls.is_none_or(|n| n.is_valid(i));
                row_path.extend((0..n).filter(|&i| fails(values[i]) && valid(i)));
            }
        }
        // Sketches are made before anything is appended: making one can fail.
        let n_dims = self.schema.dimensions.len();
        let mut sketches: Vec<Vec<Option<HllSketch>>> = Vec::new();
        for (m, spec) in self.schema.metrics.iter().enumerate() {
            let mut col = Vec::new();
            if spec.kind == MetricKind::HllSketch {
                col.reserve(n);
                for i in 0..n {
                    let value = match &views[n_dims + m] {
                        ColumnView::Str(v) => v.get(i),
                        _ => None,
                    };
                    col.push(match value.map(|v| (v, new_hll(spec.lg_k))) {
                        None => None,
                        Some((v, Ok(mut s))) => {
                            hll_update_str(&mut s, v);
                            Some(s)
                        }
                        Some((_, Err(_))) => {
                            row_path.push(i);
                            None
                        }
                    });
                }
            }
            sketches.push(col);
        }
        row_path.sort_unstable();
        row_path.dedup();

        let mut values = Vec::new();
        let mut start = 0;
        for &r in &row_path {
            if start < r {
                self.append_columnar(views, &times, &mut sketches, start..r)?;
                report.accepted += (r - start) as u64;
            }
            self.push_arrow_row(rows, r, &mut values, report);
            start = r + 1;
        }
        if start < n {
            self.append_columnar(views, &times, &mut sketches, start..n)?;
            report.accepted += (n - start) as u64;
        }
        Ok(())
    }

    /// Append rows `range` of the batch, all of which convert (see [`Self::add_columnar`]).
    fn append_columnar(
        &mut self,
        views: &[ColumnView<'_>],
        times: &[i64],
        sketches: &mut [Vec<Option<HllSketch>>],
        range: Range<usize>,
    ) -> Result<()> {
        let base = self.times.len() as u32;
        let times = &times[range.clone()];
        let granularity = self.schema.granularity.query_granularity;
        if granularity == Granularity::None {
            self.times.extend_from_slice(times);
        } else {
            self.times
                .extend(times.iter().map(|&t| granularity.truncate(t)));
        }
        let unexpected = || Error::internal("column-wise ingest met a column it does not take");
        for (col, view) in self.dims.iter_mut().zip(views) {
            match col {
                DimCol::Str(d) => d.extend(view, range.clone()).ok_or_else(unexpected)?,
                DimCol::Long { values, nulls } => {
                    extend_longs(values, nulls, base, view, range.clone()).ok_or_else(unexpected)?
                }
                DimCol::Double { values, nulls } => {
                    extend_doubles(values, nulls, base, view, range.clone())
                        .ok_or_else(unexpected)?
                }
            }
        }
        let n_dims = self.dims.len();
        for (m, (col, spec)) in self
            .metrics
            .iter_mut()
            .zip(&self.schema.metrics)
            .enumerate()
        {
            let view = &views[n_dims + m];
            match col {
                MetricCol::Long { values, .. } if spec.kind == MetricKind::Count => {
                    values.resize(values.len() + range.len(), 1);
                }
                MetricCol::Long { values, nulls } => {
                    extend_longs(values, nulls, base, view, range.clone()).ok_or_else(unexpected)?
                }
                MetricCol::Double { values, nulls } => {
                    extend_doubles(values, nulls, base, view, range.clone())
                        .ok_or_else(unexpected)?
                }
                MetricCol::LongPair {
                    times: pair_times,
                    values,
                    nulls,
                } => {
                    extend_longs(values, nulls, base, view, range.clone())
                        .ok_or_else(unexpected)?;
                    pair_times.extend_from_slice(times);
                }
                MetricCol::DoublePair {
                    times: pair_times,
                    values,
                    nulls,
                } => {
                    extend_doubles(values, nulls, base, view, range.clone())
                        .ok_or_else(unexpected)?;
                    pair_times.extend_from_slice(times);
                }
                MetricCol::Hll { sketches: col, .. } => {
                    let made = sketches.get_mut(m).ok_or_else(unexpected)?;
                    if made.len() < range.end {
                        return Err(unexpected());
                    }
                    col.extend(made[range.clone()].iter_mut().map(Option::take));
                }
            }
        }
        Ok(())
    }

    /// Append rows `rows` (indexes into the columns, in the order given) of input columns seen
    /// as `views` (see [`takes_arrow_columns`]), with event times `times` (indexed
    /// like the columns), column by column: the same rows, values and dictionary ids as
    /// [`SegmentWriter::push`] of each row's input values in turn. A string column's cells are
    /// interned in one loop; a dictionary-encoded column's values once each.
    ///
    /// Fails without appending anything if the columns are not taken, a time is outside the
    /// interval or a row index is out of range, or the writer would hold too many rows.
    pub(crate) fn append_arrow_rows(
        &mut self,
        views: &[ColumnView<'_>],
        times: &[i64],
        rows: &[u32],
    ) -> Result<()> {
        if self.times.len() + rows.len() >= u32::MAX as usize - 1 {
            return Err(Error::ResourcesExhausted(
                "a segment holds at most 2^32 - 2 rows".into(),
            ));
        }
        if !takes_arrow_columns(&self.schema, views) {
            return Err(Error::internal(
                "column-wise append met a column it does not take",
            ));
        }
        let interval = self.interval;
        let n_cells = views.iter().map(view_len).min().unwrap_or(usize::MAX);
        if let Some(&r) = rows
            .iter()
            .find(|&&r| times.get(r as usize).is_none_or(|&t| !interval.contains(t)))
        {
            return Err(Error::internal(format!(
                "column-wise append of row {r}, whose time is outside the segment interval {interval}"
            )));
        }
        if rows.iter().any(|&r| r as usize >= n_cells) {
            return Err(Error::internal(
                "column-wise append of a row past the columns",
            ));
        }
        let base = self.times.len() as u32;
        let granularity = self.schema.granularity.query_granularity;
        self.times.extend(
            rows.iter()
                .map(|&r| granularity.truncate(times[r as usize])),
        );
        for (col, view) in self.dims.iter_mut().zip(views) {
            match col {
                DimCol::Str(d) => d.gather(view, rows),
                DimCol::Long { values, nulls } => gather_longs(values, nulls, base, view, rows),
                DimCol::Double { values, nulls } => gather_doubles(values, nulls, base, view, rows),
            }
        }
        let n_dims = self.dims.len();
        for (m, (col, spec)) in self
            .metrics
            .iter_mut()
            .zip(&self.schema.metrics)
            .enumerate()
        {
            let view = &views[n_dims + m];
            match col {
                MetricCol::Long { values, .. } if spec.kind == MetricKind::Count => {
                    values.resize(values.len() + rows.len(), 1);
                }
                MetricCol::Long { values, nulls } => gather_longs(values, nulls, base, view, rows),
                MetricCol::Double { values, nulls } => {
                    gather_doubles(values, nulls, base, view, rows)
                }
                MetricCol::LongPair {
                    times: pair_times,
                    values,
                    nulls,
                } => {
                    gather_longs(values, nulls, base, view, rows);
                    pair_times.extend(rows.iter().map(|&r| times[r as usize]));
                }
                MetricCol::DoublePair {
                    times: pair_times,
                    values,
                    nulls,
                } => {
                    gather_doubles(values, nulls, base, view, rows);
                    pair_times.extend(rows.iter().map(|&r| times[r as usize]));
                }
                // `takes_arrow_columns` excludes sketches.
                MetricCol::Hll { sketches, .. } => {
                    sketches.resize(sketches.len() + rows.len(), None)
                }
            }
        }
        Ok(())
    }

    /// Sort, roll up, encode and write the segment to `path` (created or truncated), fully
    /// compressed and synced to disk.
    pub fn finish(self, path: &Path) -> Result<SegmentStats> {
        self.finish_with(path, &FinishOptions::default())
    }

    /// [`SegmentWriter::finish`] with a choice of compression and durability.
    pub fn finish_with(self, path: &Path, opts: &FinishOptions) -> Result<SegmentStats> {
        let rows_in = self.times.len() as u64;
        let built = self.build()?;
        let rows_out = built.num_rows;
        let bytes = write_file(path, built, opts)?;
        Ok(SegmentStats {
            rows_in,
            rows_out,
            bytes,
        })
    }

    fn build(self) -> Result<Built> {
        let n = self.times.len();
        let schema = self.schema;

        // 1. Sorted dictionaries: remap arrival ids to sorted ids.
        let mut sorted_dicts = sorted_dictionaries(&self.dims);

        // 2. Sort rows.
        let sort_keys = schema.sort_order();
        let presorted_runs = self.sorted_run_rows == n;
        let order = sort_rows(
            &sort_keys,
            &self.times,
            &self.dims,
            &sorted_dicts,
            presorted_runs,
        );

        // 3. Group runs of equal keys when rolling up. Without rollup every row is its own
        //    group; metrics still go through the combine loops (as one-row groups), the
        //    other columns are read through the sort order.
        let rollup = schema.granularity.rollup;
        let groups: Vec<(usize, usize)> = if rollup && n > 0 {
            let mut g = Vec::new();
            let mut start = 0usize;
            for i in 1..n {
                let (a, b) = (order.perm[i - 1] as usize, order.perm[i] as usize);
                let equal = order.packed[i - 1] >> ROW_BITS == order.packed[i] >> ROW_BITS
                    && (order.rest.is_empty()
                        || compare_rows(&order.rest, &self.times, &self.dims, &sorted_dicts, a, b)
                            == Ordering::Equal);
                if !equal {
                    g.push((start, i));
                    start = i;
                }
            }
            g.push((start, n));
            g
        } else if !self.metrics.is_empty() {
            (0..n).map(|i| (i, i + 1)).collect()
        } else {
            Vec::new()
        };
        let SortOrder { perm, packed, .. } = order;
        drop(packed);
        // The arrival row of each output row (its group's first row).
        let out_order: Vec<u32> = if rollup {
            groups.iter().map(|&(s, _)| perm[s]).collect()
        } else {
            Vec::new()
        };
        let reps: &[u32] = if rollup { &out_order } else { &perm };
        let out_rows = reps.len();

        // 4. Output columns. Time and dimensions stay in arrival order and are read through
        //    `reps` block by block when encoded; metrics are combined here, in output order.
        let mut columns: Vec<OutColumn> = Vec::new();
        let (min_time, max_time) = match (self.times.iter().min(), self.times.iter().max()) {
            // Rows of a group share their (truncated) time, so these are the output's too.
            (Some(a), Some(b)) => (*a, *b),
            _ => (self.interval.start, self.interval.start),
        };
        columns.push(OutColumn {
            name: TIME_COLUMN.into(),
            kind: ColumnKind::Time,
            data: OutData::Long {
                values: self.times,
                nulls: RoaringBitmap::new(),
                in_arrival_order: true,
            },
        });
        for ((spec, col), sd) in schema
            .dimensions
            .iter()
            .zip(self.dims)
            .zip(sorted_dicts.iter_mut())
        {
            let data = match col {
                DimCol::Str(s) => {
                    let remap = match sd.take() {
                        Some(r) => r,
                        None => return Err(Error::internal("missing dictionary remap")),
                    };
                    let mut sorted: Vec<(u32, Box<str>)> = s
                        .values
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (remap[i + 1], v))
                        .collect();
                    sorted.sort_unstable_by_key(|(r, _)| *r);
                    let dictionary: Vec<Box<str>> = sorted.into_iter().map(|(_, v)| v).collect();
                    match &s.offsets {
                        None => OutData::Str {
                            dictionary,
                            ids: s.ids,
                            remap,
                            index: spec.create_bitmap_index,
                        },
                        Some(o) => {
                            let mut lengths = Vec::with_capacity(out_rows);
                            let mut values = Vec::new();
                            for &r in reps {
                                let (a, b) = (o[r as usize] as usize, o[r as usize + 1] as usize);
                                lengths.push((b - a) as u32);
                                values.extend(s.multi[a..b].iter().map(|&id| remap[id as usize]));
                            }
                            OutData::Multi {
                                dictionary,
                                lengths,
                                values,
                                index: spec.create_bitmap_index,
                            }
                        }
                    }
                }
                DimCol::Long { values, nulls } => OutData::Long {
                    values,
                    nulls: gather_nulls(reps, &nulls),
                    in_arrival_order: true,
                },
                DimCol::Double { values, nulls } => OutData::Double {
                    values,
                    nulls: gather_nulls(reps, &nulls),
                    in_arrival_order: true,
                },
            };
            columns.push(OutColumn {
                name: spec.name.clone(),
                kind: ColumnKind::Dimension,
                data,
            });
        }
        for (spec, col) in schema.metrics.iter().zip(self.metrics) {
            let kind = spec.kind;
            let data = match col {
                MetricCol::Long { values, nulls } => {
                    let mut out = Vec::with_capacity(out_rows);
                    let mut out_nulls = RoaringBitmap::new();
                    for (o, &(s, e)) in groups.iter().enumerate() {
                        let mut acc = None;
                        for &r in &perm[s..e] {
                            let v = (!nulls.contains(r)).then(|| values[r as usize]);
                            acc = combine_long(kind, acc, v);
                        }
                        match acc {
                            Some(v) => out.push(v),
                            None => {
                                out.push(0);
                                out_nulls.insert(o as u32);
                            }
                        }
                    }
                    OutData::Long {
                        values: out,
                        nulls: out_nulls,
                        in_arrival_order: false,
                    }
                }
                MetricCol::Double { values, nulls } => {
                    let mut out = Vec::with_capacity(out_rows);
                    let mut out_nulls = RoaringBitmap::new();
                    for (o, &(s, e)) in groups.iter().enumerate() {
                        let mut acc = None;
                        for &r in &perm[s..e] {
                            let v = (!nulls.contains(r)).then(|| values[r as usize]);
                            acc = combine_double(kind, acc, v);
                        }
                        match acc {
                            Some(v) => out.push(v),
                            None => {
                                out.push(0.0);
                                out_nulls.insert(o as u32);
                            }
                        }
                    }
                    OutData::Double {
                        values: out,
                        nulls: out_nulls,
                        in_arrival_order: false,
                    }
                }
                MetricCol::LongPair {
                    times,
                    values,
                    nulls,
                } => {
                    let (t, v, nl) = combine_pairs(kind, &groups, &perm, &times, &values, &nulls);
                    OutData::LongPair {
                        times: t,
                        values: v,
                        nulls: nl,
                    }
                }
                MetricCol::DoublePair {
                    times,
                    values,
                    nulls,
                } => {
                    let (t, v, nl) = combine_pairs(kind, &groups, &perm, &times, &values, &nulls);
                    OutData::DoublePair {
                        times: t,
                        values: v,
                        nulls: nl,
                    }
                }
                MetricCol::Hll { mut sketches, lg_k } => {
                    let mut out = Vec::with_capacity(out_rows);
                    for &(s, e) in &groups {
                        let members: Vec<&HllSketch> = perm[s..e]
                            .iter()
                            .filter_map(|&r| sketches[r as usize].as_ref())
                            .collect();
                        let bytes = match members.len() {
                            0 => Vec::new(),
                            1 => members[0].serialize(),
                            _ => merge_hll(lg_k, members)?.serialize(),
                        };
                        out.push(bytes);
                    }
                    sketches.clear();
                    OutData::Hll { values: out }
                }
            };
            columns.push(OutColumn {
                name: spec.name.clone(),
                kind: ColumnKind::Metric,
                data,
            });
        }
        let sort_order = schema
            .sort_order()
            .into_iter()
            .map(|k| match k {
                None => TIME_COLUMN.to_string(),
                Some(i) => schema.dimensions[i].name.clone(),
            })
            .collect();
        let order = if rollup { out_order } else { perm };
        Ok(Built {
            order,
            datasource: schema.data_source.clone(),
            interval: self.interval,
            schema_json: schema.to_json().to_string(),
            sort_order,
            rollup: schema.granularity.rollup,
            num_rows: out_rows as u64,
            min_time,
            max_time,
            columns,
        })
    }
}

/// Per dimension, for string dimensions: the sorted id of each arrival id (`remap[arrival id]`,
/// both 1-based, 0 = null).
fn sorted_dictionaries(dims: &[DimCol]) -> Vec<Option<Vec<u32>>> {
    dims.iter()
        .map(|d| {
            let DimCol::Str(s) = d else {
                return None;
            };
            let mut order: Vec<u32> = (0..s.values.len() as u32).collect();
            order.sort_unstable_by(|&a, &b| s.values[a as usize].cmp(&s.values[b as usize]));
            let mut remap = vec![0u32; s.values.len() + 1];
            for (rank, &a) in order.iter().enumerate() {
                remap[a as usize + 1] = rank as u32 + 1;
            }
            Some(remap)
        })
        .collect()
}

/// The rows of `nulls` (arrival rows) as output rows, output row `o` being arrival row
/// `order[o]`.
fn gather_nulls(order: &[u32], nulls: &RoaringBitmap) -> RoaringBitmap {
    let mut out = RoaringBitmap::new();
    if !nulls.is_empty() {
        for (o, &r) in order.iter().enumerate() {
            if nulls.contains(r) {
                push_row(&mut out, o as u32);
            }
        }
    }
    out
}

type PairColumns<T> = (Vec<i64>, Vec<T>, RoaringBitmap);

fn combine_pairs<T: Copy + Default>(
    kind: MetricKind,
    groups: &[(usize, usize)],
    perm: &[u32],
    times: &[i64],
    values: &[T],
    nulls: &RoaringBitmap,
) -> PairColumns<T> {
    let mut ot = Vec::with_capacity(groups.len());
    let mut ov = Vec::with_capacity(groups.len());
    let mut on = RoaringBitmap::new();
    for (o, &(s, e)) in groups.iter().enumerate() {
        let mut acc = None;
        for &r in &perm[s..e] {
            let v = (!nulls.contains(r)).then(|| (times[r as usize], values[r as usize]));
            acc = combine_pair(kind, acc, v);
        }
        match acc {
            Some((t, v)) => {
                ot.push(t);
                ov.push(v);
            }
            None => {
                ot.push(0);
                ov.push(T::default());
                on.insert(o as u32);
            }
        }
    }
    (ot, ov, on)
}

/// The rows in sort order.
struct SortOrder {
    /// Arrival row numbers in sort order.
    perm: Vec<u32>,
    /// In sort order: the packed codes of the leading sort columns, shifted left by
    /// [`ROW_BITS`] (the low bits hold a row number, not part of the key).
    packed: Vec<u128>,
    /// The sort columns after the packed ones, compared value by value (only between rows
    /// whose packed codes are equal).
    rest: Vec<Option<usize>>,
}

/// Bits of a packed sort word that hold the arrival row number (a segment has < 2^32 rows).
const ROW_BITS: u32 = 32;
/// Bits of a packed sort word left for the codes of the leading sort columns.
const KEY_BITS: u32 = 128 - ROW_BITS;

fn bits_for(max_code: u64) -> u32 {
    64 - max_code.leading_zeros()
}

/// A dense null mask, `None` when there are no nulls.
fn dense_nulls(nulls: &RoaringBitmap, n: usize) -> Option<Vec<bool>> {
    if nulls.is_empty() {
        return None;
    }
    let mut mask = vec![false; n];
    for r in nulls {
        if let Some(m) = mask.get_mut(r as usize) {
            *m = true;
        }
    }
    Some(mask)
}

/// Order-preserving integer codes of one sort column (0 = null).
enum KeyCoder<'a> {
    Time {
        times: &'a [i64],
        min: i64,
    },
    Str {
        ids: &'a [u32],
        remap: &'a [u32],
    },
    Long {
        values: &'a [i64],
        nulls: Option<Vec<bool>>,
        min: i64,
    },
    Double {
        values: &'a [f64],
        nulls: Option<Vec<bool>>,
        min: u64,
    },
}

impl<'a> KeyCoder<'a> {
    /// The coder of sort column `key` (`None` = `__time`) and the bits its codes need, or
    /// `None` if the column has no such codes (multi-value strings, a range of 2^64 longs).
    fn new(
        key: Option<usize>,
        times: &'a [i64],
        dims: &'a [DimCol],
        sorted_dicts: &'a [Option<Vec<u32>>],
    ) -> Option<(KeyCoder<'a>, u32)> {
        let Some(i) = key else {
            let min = times.iter().copied().min().unwrap_or(0);
            let max = times.iter().copied().max().unwrap_or(0);
            return Some((
                KeyCoder::Time { times, min },
                bits_for(max.wrapping_sub(min) as u64),
            ));
        };
        match &dims[i] {
            DimCol::Str(s) => {
                if s.offsets.is_some() {
                    return None;
                }
                let remap = sorted_dicts[i].as_deref()?;
                Some((
                    KeyCoder::Str { ids: &s.ids, remap },
                    bits_for(s.values.len() as u64),
                ))
            }
            DimCol::Long { values, nulls } => {
                let nulls = dense_nulls(nulls, values.len());
                let (mut min, mut max) = (i64::MAX, i64::MIN);
                for (r, &v) in values.iter().enumerate() {
                    if nulls.as_ref().is_none_or(|n| !n[r]) {
                        min = min.min(v);
                        max = max.max(v);
                    }
                }
                if min > max {
                    // All null: every code is 0.
                    return Some((
                        KeyCoder::Long {
                            values,
                            nulls,
                            min: 0,
                        },
                        0,
                    ));
                }
                let range = max as i128 - min as i128 + 1;
                let range = u64::try_from(range).ok()?;
                Some((KeyCoder::Long { values, nulls, min }, bits_for(range)))
            }
            DimCol::Double { values, nulls } => {
                let nulls = dense_nulls(nulls, values.len());
                let (mut min, mut max) = (u64::MAX, 0u64);
                for (r, &v) in values.iter().enumerate() {
                    if nulls.as_ref().is_none_or(|n| !n[r]) {
                        let o = f64_to_ordered(v);
                        min = min.min(o);
                        max = max.max(o);
                    }
                }
                if min > max {
                    return Some((
                        KeyCoder::Double {
                            values,
                            nulls,
                            min: 0,
                        },
                        0,
                    ));
                }
                let range = max - min;
                if range == u64::MAX {
                    return None;
                }
                Some((KeyCoder::Double { values, nulls, min }, bits_for(range + 1)))
            }
        }
    }

    /// The code of row `r`.
    fn code(&self, r: usize) -> u64 {
        let null = |nulls: &Option<Vec<bool>>| nulls.as_ref().is_some_and(|n| n[r]);
        match self {
            KeyCoder::Time { times, min } => times[r].wrapping_sub(*min) as u64,
            KeyCoder::Str { ids, remap } => u64::from(remap[ids[r] as usize]),
            KeyCoder::Long { values, nulls, min } => {
                if null(nulls) {
                    0
                } else {
                    (values[r] as i128 - *min as i128 + 1) as u64
                }
            }
            KeyCoder::Double { values, nulls, min } => {
                if null(nulls) {
                    0
                } else {
                    f64_to_ordered(values[r]) - min + 1
                }
            }
        }
    }

    /// `keys[r] = keys[r] << bits | code(r)` for every row.
    fn fold_into(&self, keys: &mut [u128], bits: u32) {
        fn fold<T: Copy>(
            keys: &mut [u128],
            bits: u32,
            values: &[T],
            nulls: Option<&[bool]>,
            code: impl Fn(T) -> u64,
        ) {
            match nulls {
                None => {
                    for (k, &v) in keys.iter_mut().zip(values) {
                        *k = (*k << bits) | u128::from(code(v));
                    }
                }
                Some(nulls) => {
                    for ((k, &v), &null) in keys.iter_mut().zip(values).zip(nulls) {
                        *k = (*k << bits) | if null { 0 } else { u128::from(code(v)) };
                    }
                }
            }
        }
        match self {
            KeyCoder::Time { times, min } => fold(keys, bits, times, None, |t: i64| {
                t.wrapping_sub(*min) as u64
            }),
            KeyCoder::Str { ids, remap } => fold(keys, bits, ids, None, |id: u32| {
                u64::from(remap[id as usize])
            }),
            KeyCoder::Long { values, nulls, min } => {
                fold(keys, bits, values, nulls.as_deref(), |v: i64| {
                    (v as i128 - *min as i128 + 1) as u64
                })
            }
            KeyCoder::Double { values, nulls, min } => {
                fold(keys, bits, values, nulls.as_deref(), |v: f64| {
                    f64_to_ordered(v) - min + 1
                })
            }
        }
    }
}

/// Sort the rows by `order` (sort columns; `None` = `__time`), stably (rows with equal keys keep
/// their arrival order: the first/last tie rule). The leading columns whose codes fit in
/// [`KEY_BITS`] are packed, with the row number, into one `u128` per row, and those words are
/// sorted; rows whose packed codes tie are then ordered by the remaining columns
/// ([`order_ties`]).
///
/// `presorted_runs`: the rows arrived as a few runs each already in sort order (merged
/// segments); the words are then sorted by the standard library's stable sort, which finds
/// runs and merges them (a k-way merge, n·log k), where the unstable sort would sort from
/// scratch. Both give the same order: the words are distinct.
fn sort_rows(
    order: &[Option<usize>],
    times: &[i64],
    dims: &[DimCol],
    sorted_dicts: &[Option<Vec<u32>>],
    presorted_runs: bool,
) -> SortOrder {
    let n = times.len();
    let mut packed = vec![0u128; n];
    let mut used = 0u32;
    let mut packed_cols = 0;
    for &k in order {
        let Some((coder, bits)) = KeyCoder::new(k, times, dims, sorted_dicts) else {
            break;
        };
        if used + bits > KEY_BITS {
            break;
        }
        if bits > 0 {
            coder.fold_into(&mut packed, bits);
        }
        used += bits;
        packed_cols += 1;
    }
    for (r, k) in packed.iter_mut().enumerate() {
        *k = (*k << ROW_BITS) | r as u128;
    }
    // Row numbers are distinct, so an unstable sort of the words is a stable sort of the keys.
    if presorted_runs {
        packed.sort();
    } else {
        packed.sort_unstable();
    }
    let mut perm: Vec<u32> = packed.iter().map(|&k| k as u32).collect();
    let rest = order[packed_cols..].to_vec();
    if !rest.is_empty() {
        let mut runs = Vec::new();
        let mut start = 0;
        while start < n {
            let key = packed[start] >> ROW_BITS;
            let end = start
                + packed[start..]
                    .iter()
                    .position(|&k| k >> ROW_BITS != key)
                    .unwrap_or(n - start);
            if end - start > 1 {
                runs.push(start..end);
            }
            start = end;
        }
        if !runs.is_empty() {
            let ties = TieKeys::new(&rest, times, dims, sorted_dicts);
            order_ties(&ties, &mut perm, runs);
        }
    }
    SortOrder { perm, packed, rest }
}

/// The sort columns after the packed ones, for ordering rows whose packed codes tie.
struct TieKeys<'a> {
    /// Per column: its coder and code bits, `None` for a column without codes (from there on
    /// rows are compared value by value).
    coders: Vec<Option<(KeyCoder<'a>, u32)>>,
    rest: &'a [Option<usize>],
    times: &'a [i64],
    dims: &'a [DimCol],
    sorted_dicts: &'a [Option<Vec<u32>>],
}

impl<'a> TieKeys<'a> {
    fn new(
        rest: &'a [Option<usize>],
        times: &'a [i64],
        dims: &'a [DimCol],
        sorted_dicts: &'a [Option<Vec<u32>>],
    ) -> TieKeys<'a> {
        let mut coders = Vec::with_capacity(rest.len());
        for &k in rest {
            let c = KeyCoder::new(k, times, dims, sorted_dicts);
            let stop = c.is_none();
            coders.push(c);
            if stop {
                break;
            }
        }
        TieKeys {
            coders,
            rest,
            times,
            dims,
            sorted_dicts,
        }
    }
}

/// Order each run `perm[run]` of rows whose packed codes tie (each run in arrival order) stably
/// by the remaining sort columns, a round per group of columns: the codes of as many columns as
/// fit in [`KEY_BITS`] are packed with each row's position in its run into one word and the run
/// is sorted by those words; rows that still tie go on to the next round with the next columns.
/// Each tied row costs a word per round, where comparing rows value by value costs every
/// remaining column per comparison (many rows tie when rows repeat without rollup). When most
/// rows tie, a round's codes are packed for all rows at once, in arrival order, and looked up
/// (one random access per row instead of one per column). A column without codes (multi-value
/// strings) and the ones after it are compared value by value.
fn order_ties(ties: &TieKeys<'_>, perm: &mut [u32], mut runs: Vec<Range<usize>>) {
    let n = perm.len();
    let mut from = 0;
    while !runs.is_empty() && from < ties.rest.len() {
        let mut used = 0u32;
        let mut to = from;
        while let Some(Some((_, bits))) = ties.coders.get(to) {
            if used + bits > KEY_BITS {
                break;
            }
            used += bits;
            to += 1;
        }
        if to == from {
            for run in runs {
                perm[run].sort_by(|&a, &b| {
                    compare_rows(
                        &ties.rest[from..],
                        ties.times,
                        ties.dims,
                        ties.sorted_dicts,
                        a as usize,
                        b as usize,
                    )
                });
            }
            return;
        }
        let columns = &ties.coders[from..to];
        let tied: usize = runs.iter().map(|r| r.len()).sum();
        let dense = (tied.saturating_mul(4) >= n).then(|| {
            let mut codes = vec![0u128; n];
            for (coder, bits) in columns.iter().flatten() {
                if *bits > 0 {
                    coder.fold_into(&mut codes, *bits);
                }
            }
            codes
        });
        let code = |r: u32| -> u128 {
            match &dense {
                Some(codes) => codes[r as usize],
                None => columns.iter().flatten().fold(0u128, |k, (coder, bits)| {
                    if *bits > 0 {
                        (k << bits) | u128::from(coder.code(r as usize))
                    } else {
                        k
                    }
                }),
            }
        };
        let more = to < ties.rest.len();
        let mut next = Vec::new();
        let mut words: Vec<u128> = Vec::new();
        let mut arrival: Vec<u32> = Vec::new();
        for run in runs {
            let rows = &mut perm[run.clone()];
            words.clear();
            words.extend(
                rows.iter()
                    .enumerate()
                    .map(|(i, &r)| (code(r) << ROW_BITS) | i as u128),
            );
            words.sort_unstable();
            arrival.clear();
            arrival.extend_from_slice(rows);
            for (slot, &w) in rows.iter_mut().zip(&words) {
                *slot = arrival[w as u32 as usize];
            }
            if more {
                let mut start = 0;
                while start < words.len() {
                    let key = words[start] >> ROW_BITS;
                    let end = start
                        + words[start..]
                            .iter()
                            .position(|&w| w >> ROW_BITS != key)
                            .unwrap_or(words.len() - start);
                    if end - start > 1 {
                        next.push(run.start + start..run.start + end);
                    }
                    start = end;
                }
            }
        }
        runs = next;
        from = to;
    }
}

/// Compare rows `a` and `b` by the sort columns `keys`.
fn compare_rows(
    keys: &[Option<usize>],
    times: &[i64],
    dims: &[DimCol],
    sorted_dicts: &[Option<Vec<u32>>],
    a: usize,
    b: usize,
) -> Ordering {
    for &k in keys {
        let ord = match k {
            None => times[a].cmp(&times[b]),
            Some(i) => match &dims[i] {
                DimCol::Str(s) => {
                    let remap = match &sorted_dicts[i] {
                        Some(r) => r,
                        None => return Ordering::Equal,
                    };
                    let ra = s.row_ids(a).iter().map(|&id| remap[id as usize]);
                    let rb = s.row_ids(b).iter().map(|&id| remap[id as usize]);
                    ra.cmp(rb)
                }
                DimCol::Long { values, nulls } => {
                    let va = (!nulls.contains(a as u32)).then(|| values[a]);
                    let vb = (!nulls.contains(b as u32)).then(|| values[b]);
                    va.cmp(&vb)
                }
                DimCol::Double { values, nulls } => {
                    let va = (!nulls.contains(a as u32)).then(|| f64_to_ordered(values[a]));
                    let vb = (!nulls.contains(b as u32)).then(|| f64_to_ordered(values[b]));
                    va.cmp(&vb)
                }
            },
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

/// A column ready to encode. `nulls` are always in output order; values are in output order
/// or, where `in_arrival_order` (and always for `Str`), in arrival order, read through
/// [`Built::order`].
#[derive(Debug)]
enum OutData {
    Long {
        values: Vec<i64>,
        nulls: RoaringBitmap,
        in_arrival_order: bool,
    },
    Double {
        values: Vec<f64>,
        nulls: RoaringBitmap,
        in_arrival_order: bool,
    },
    Str {
        dictionary: Vec<Box<str>>,
        /// Arrival ids, one per arrival row; `remap` maps them to sorted dictionary ids.
        ids: Vec<u32>,
        remap: Vec<u32>,
        index: bool,
    },
    Multi {
        dictionary: Vec<Box<str>>,
        lengths: Vec<u32>,
        values: Vec<u32>,
        index: bool,
    },
    LongPair {
        times: Vec<i64>,
        values: Vec<i64>,
        nulls: RoaringBitmap,
    },
    DoublePair {
        times: Vec<i64>,
        values: Vec<f64>,
        nulls: RoaringBitmap,
    },
    Hll {
        values: Vec<Vec<u8>>,
    },
}

#[derive(Debug)]
struct OutColumn {
    name: String,
    kind: ColumnKind,
    data: OutData,
}

#[derive(Debug)]
struct Built {
    /// For each output row, its arrival row: how columns kept in arrival order are read.
    order: Vec<u32>,
    datasource: String,
    interval: Interval,
    schema_json: String,
    sort_order: Vec<String>,
    rollup: bool,
    num_rows: u64,
    min_time: i64,
    max_time: i64,
    columns: Vec<OutColumn>,
}

/// One column encoded in memory, before its bytes get file offsets.
#[derive(Debug)]
struct EncodedColumn {
    name: String,
    kind: ColumnKind,
    column_type: ColumnType,
    null_count: u64,
    cardinality: u32,
    parts: Vec<(PartRole, Vec<u8>)>,
    streams: Vec<(StreamRole, Vec<EncodedBlock>)>,
}

#[derive(Debug)]
struct EncodedBlock {
    codec: Codec,
    bytes: Vec<u8>,
    num_values: u32,
    min: u64,
    max: u64,
}

/// The values of a stream in output order: stored in that order, or in arrival order and read
/// through the output order (a block at a time, into a buffer the encoder reuses).
#[derive(Clone, Copy)]
enum Values<'a, T> {
    Ordered(&'a [T]),
    Gathered { values: &'a [T], order: &'a [u32] },
}

impl<'a, T: Copy> Values<'a, T> {
    fn new(values: &'a [T], in_arrival_order: bool, order: &'a [u32]) -> Values<'a, T> {
        if in_arrival_order {
            Values::Gathered { values, order }
        } else {
            Values::Ordered(values)
        }
    }

    fn len(&self) -> usize {
        match self {
            Values::Ordered(v) => v.len(),
            Values::Gathered { order, .. } => order.len(),
        }
    }

    /// Output rows `range`, gathered into `buf` if need be.
    fn block<'b>(&'b self, range: Range<usize>, buf: &'b mut Vec<T>) -> &'b [T] {
        match self {
            Values::Ordered(v) => &v[range],
            Values::Gathered { values, order } => {
                buf.clear();
                buf.extend(order[range].iter().map(|&r| values[r as usize]));
                buf
            }
        }
    }
}

/// Encode one block whose first row is `base`, with its min and max (of the non-null rows).
fn encode_block<T: BlockValue>(
    chunk: &[T],
    base: u32,
    nulls: Option<&RoaringBitmap>,
    bits: impl Fn(T) -> u64,
    cmp_key: impl Fn(T) -> u64,
    compression: Compression,
) -> EncodedBlock {
    let mut min: Option<T> = None;
    let mut max: Option<T> = None;
    for (i, &v) in chunk.iter().enumerate() {
        if nulls.is_some_and(|n| n.contains(base + i as u32)) {
            continue;
        }
        if min.is_none_or(|m| cmp_key(v) < cmp_key(m)) {
            min = Some(v);
        }
        if max.is_none_or(|m| cmp_key(v) > cmp_key(m)) {
            max = Some(v);
        }
    }
    let (codec, bytes) = encode_numbers_with(chunk, compression);
    EncodedBlock {
        codec,
        bytes,
        num_values: chunk.len() as u32,
        min: min.map(&bits).unwrap_or(0),
        max: max.map(&bits).unwrap_or(0),
    }
}

fn encode_stream<T: BlockValue>(
    values: Values<'_, T>,
    nulls: Option<&RoaringBitmap>,
    bits: impl Fn(T) -> u64 + Copy,
    cmp_key: impl Fn(T) -> u64 + Copy,
    compression: Compression,
) -> Vec<EncodedBlock> {
    let nulls = nulls.filter(|n| !n.is_empty());
    let n = values.len();
    let mut buf = Vec::new();
    (0..n)
        .step_by(BLOCK_ROWS)
        .map(|start| {
            let chunk = values.block(start..(start + BLOCK_ROWS).min(n), &mut buf);
            encode_block(chunk, start as u32, nulls, bits, cmp_key, compression)
        })
        .collect()
}

fn long_stream(
    values: Values<'_, i64>,
    nulls: Option<&RoaringBitmap>,
    c: Compression,
) -> Vec<EncodedBlock> {
    encode_stream(values, nulls, |v| v as u64, |v| (v as u64) ^ (1 << 63), c)
}

fn double_stream(
    values: Values<'_, f64>,
    nulls: Option<&RoaringBitmap>,
    c: Compression,
) -> Vec<EncodedBlock> {
    encode_stream(values, nulls, f64::to_bits, f64_to_ordered, c)
}

fn id_stream(values: &[u32], c: Compression) -> Vec<EncodedBlock> {
    encode_stream(Values::Ordered(values), None, u64::from, u64::from, c)
}

/// Add the rows of `ids` (row `first_row + i` has id `ids[i]`) to the bitmap index `bitmaps`
/// (bitmap `i` holds the rows with id `i`), a run of equal ids at a time: sorted columns make
/// long runs. Rows must come in increasing order across calls.
fn add_id_runs(bitmaps: &mut [RoaringBitmap], first_row: usize, ids: &[u32]) {
    let mut start = 0usize;
    while start < ids.len() {
        let id = ids[start];
        let len = ids[start..]
            .iter()
            .position(|&x| x != id)
            .unwrap_or(ids.len() - start);
        if let Some(b) = bitmaps.get_mut(id as usize) {
            let row = (first_row + start) as u32;
            if len == 1 {
                push_row(b, row);
            } else {
                b.insert_range(row..row + len as u32);
            }
        }
        start += len;
    }
}

/// Encode a single-valued string column: its ids stream (arrival ids `ids`, remapped to sorted
/// ids, read through `order`), its null count and, if `index`, its bitmap index.
fn encode_string_ids(
    ids: &[u32],
    remap: &[u32],
    order: &[u32],
    cardinality: usize,
    index: bool,
    compression: Compression,
) -> (Vec<EncodedBlock>, u64, Option<Vec<RoaringBitmap>>) {
    let n = order.len();
    let mut bitmaps = index.then(|| vec![RoaringBitmap::new(); cardinality + 1]);
    let mut nulls = 0u64;
    let mut buf: Vec<u32> = Vec::with_capacity(BLOCK_ROWS.min(n));
    let mut blocks = Vec::with_capacity(n.div_ceil(BLOCK_ROWS));
    for start in (0..n).step_by(BLOCK_ROWS) {
        let rows = &order[start..(start + BLOCK_ROWS).min(n)];
        buf.clear();
        buf.extend(rows.iter().map(|&r| remap[ids[r as usize] as usize]));
        nulls += buf.iter().filter(|&&id| id == 0).count() as u64;
        if let Some(b) = &mut bitmaps {
            add_id_runs(b, start, &buf);
        }
        blocks.push(encode_block(
            &buf,
            start as u32,
            None,
            u64::from,
            u64::from,
            compression,
        ));
    }
    (blocks, nulls, bitmaps)
}

fn encode_column(col: OutColumn, order: &[u32], c: Compression) -> Result<EncodedColumn> {
    let mut parts = Vec::new();
    let mut streams = Vec::new();
    let null_count: u64;
    let mut cardinality = 0u32;
    let null_part = |nulls: &RoaringBitmap, parts: &mut Vec<(PartRole, Vec<u8>)>| -> Result<u64> {
        if !nulls.is_empty() {
            parts.push((PartRole::NullBitmap, encode_bitmap(nulls)?));
        }
        Ok(nulls.len())
    };
    let column_type = match col.data {
        OutData::Long {
            values,
            nulls,
            in_arrival_order,
        } => {
            null_count = null_part(&nulls, &mut parts)?;
            let values = Values::new(&values, in_arrival_order, order);
            streams.push((StreamRole::Long, long_stream(values, Some(&nulls), c)));
            ColumnType::Long
        }
        OutData::Double {
            values,
            nulls,
            in_arrival_order,
        } => {
            null_count = null_part(&nulls, &mut parts)?;
            let values = Values::new(&values, in_arrival_order, order);
            streams.push((StreamRole::Double, double_stream(values, Some(&nulls), c)));
            ColumnType::Double
        }
        OutData::Str {
            dictionary,
            ids,
            remap,
            index,
        } => {
            cardinality = dictionary.len() as u32;
            parts.push((PartRole::Dictionary, encode_dictionary(&dictionary)?));
            let (blocks, nulls, bitmaps) =
                encode_string_ids(&ids, &remap, order, dictionary.len(), index, c);
            null_count = nulls;
            if let Some(bitmaps) = bitmaps {
                parts.push((PartRole::BitmapIndex, encode_bitmap_index(bitmaps)?));
            }
            streams.push((StreamRole::Ids, blocks));
            ColumnType::String
        }
        OutData::Multi {
            dictionary,
            lengths,
            values,
            index,
        } => {
            cardinality = dictionary.len() as u32;
            null_count = lengths.iter().filter(|&&l| l == 0).count() as u64;
            parts.push((PartRole::Dictionary, encode_dictionary(&dictionary)?));
            if index {
                let mut bitmaps = vec![RoaringBitmap::new(); dictionary.len() + 1];
                let mut pos = 0usize;
                for (r, &l) in lengths.iter().enumerate() {
                    if l == 0 {
                        push_row(&mut bitmaps[0], r as u32);
                    }
                    for &id in &values[pos..pos + l as usize] {
                        if let Some(b) = bitmaps.get_mut(id as usize) {
                            push_row(b, r as u32);
                        }
                    }
                    pos += l as usize;
                }
                parts.push((PartRole::BitmapIndex, encode_bitmap_index(bitmaps)?));
            }
            // The values stream is blocked by rows: block i holds the values of block i's rows.
            let mut value_blocks = Vec::new();
            let mut pos = 0usize;
            for chunk in lengths.chunks(BLOCK_ROWS) {
                let total: usize = chunk.iter().map(|&l| l as usize).sum();
                let mut blocks = id_stream(&values[pos..pos + total], c);
                let block = match blocks.len() {
                    0 => EncodedBlock {
                        codec: Codec::Plain,
                        bytes: Vec::new(),
                        num_values: 0,
                        min: 0,
                        max: 0,
                    },
                    1 => blocks.remove(0),
                    _ => {
                        // More than BLOCK_ROWS values: encode as one block anyway.
                        let slice = &values[pos..pos + total];
                        let (codec, bytes) = encode_numbers_with(slice, c);
                        EncodedBlock {
                            codec,
                            bytes,
                            num_values: total as u32,
                            min: slice.iter().copied().min().map(u64::from).unwrap_or(0),
                            max: slice.iter().copied().max().map(u64::from).unwrap_or(0),
                        }
                    }
                };
                value_blocks.push(block);
                pos += total;
            }
            streams.push((StreamRole::Lengths, id_stream(&lengths, c)));
            streams.push((StreamRole::Ids, value_blocks));
            ColumnType::MultiString
        }
        OutData::LongPair {
            times,
            values,
            nulls,
        } => {
            null_count = null_part(&nulls, &mut parts)?;
            streams.push((
                StreamRole::PairTime,
                long_stream(Values::Ordered(&times), Some(&nulls), c),
            ));
            streams.push((
                StreamRole::Long,
                long_stream(Values::Ordered(&values), Some(&nulls), c),
            ));
            ColumnType::LongPair
        }
        OutData::DoublePair {
            times,
            values,
            nulls,
        } => {
            null_count = null_part(&nulls, &mut parts)?;
            streams.push((
                StreamRole::PairTime,
                long_stream(Values::Ordered(&times), Some(&nulls), c),
            ));
            streams.push((
                StreamRole::Double,
                double_stream(Values::Ordered(&values), Some(&nulls), c),
            ));
            ColumnType::DoublePair
        }
        OutData::Hll { values } => {
            null_count = values.iter().filter(|v| v.is_empty()).count() as u64;
            let mut blocks = Vec::new();
            for chunk in values.chunks(BLOCK_ROWS) {
                let (codec, bytes) = encode_blobs_with(chunk, c)?;
                blocks.push(EncodedBlock {
                    codec,
                    bytes,
                    num_values: chunk.len() as u32,
                    min: 0,
                    max: 0,
                });
            }
            streams.push((StreamRole::Blob, blocks));
            ColumnType::HllSketch
        }
    };
    Ok(EncodedColumn {
        name: col.name,
        kind: col.kind,
        column_type,
        null_count,
        cardinality,
        parts,
        streams,
    })
}

/// Encode columns on all cores.
fn encode_columns(
    columns: Vec<OutColumn>,
    order: &[u32],
    compression: Compression,
) -> Result<Vec<EncodedColumn>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(columns.len().max(1));
    let slots: Vec<parking_lot::Mutex<Option<OutColumn>>> = columns
        .into_iter()
        .map(|c| parking_lot::Mutex::new(Some(c)))
        .collect();
    let results: Vec<parking_lot::Mutex<Option<Result<EncodedColumn>>>> = (0..slots.len())
        .map(|_| parking_lot::Mutex::new(None))
        .collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, AtomicOrdering::Relaxed);
                    if i >= slots.len() {
                        break;
                    }
                    if let Some(col) = slots[i].lock().take() {
                        *results[i].lock() = Some(encode_column(col, order, compression));
                    }
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .unwrap_or_else(|| Err(Error::internal("a column was not encoded")))
        })
        .collect()
}

struct CountingWriter<W: Write> {
    inner: W,
    pos: u64,
}

impl<W: Write> CountingWriter<W> {
    fn put(&mut self, bytes: &[u8], path: &Path) -> Result<ByteRange> {
        let offset = self.pos;
        self.inner
            .write_all(bytes)
            .map_err(|e| Error::io(path, e))?;
        self.pos += bytes.len() as u64;
        Ok(ByteRange {
            offset,
            len: bytes.len() as u64,
            crc: crc32c::crc32c(bytes),
        })
    }
}

fn write_file(path: &Path, built: Built, opts: &FinishOptions) -> Result<u64> {
    let encoded = encode_columns(built.columns, &built.order, opts.compression)?;
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = CountingWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        pos: 0,
    };
    w.put(&encode_header(), path)?;
    let mut metas = Vec::with_capacity(encoded.len());
    for col in encoded {
        let mut parts = Vec::with_capacity(col.parts.len());
        for (role, bytes) in &col.parts {
            parts.push(PartMeta {
                role: *role,
                range: w.put(bytes, path)?,
            });
        }
        let mut streams = Vec::with_capacity(col.streams.len());
        for (role, blocks) in &col.streams {
            let mut metas = Vec::with_capacity(blocks.len());
            for b in blocks {
                metas.push(BlockMeta {
                    range: w.put(&b.bytes, path)?,
                    codec: b.codec,
                    num_values: b.num_values,
                    min: b.min,
                    max: b.max,
                });
            }
            streams.push(StreamMeta {
                role: *role,
                blocks: metas,
            });
        }
        metas.push(ColumnMeta {
            name: col.name,
            kind: col.kind,
            column_type: col.column_type,
            null_count: col.null_count,
            cardinality: col.cardinality,
            streams,
            parts,
        });
    }
    let directory = Directory {
        datasource: built.datasource,
        interval_start: built.interval.start,
        interval_end: built.interval.end,
        num_rows: built.num_rows,
        min_time: built.min_time,
        max_time: built.max_time,
        schema_json: built.schema_json,
        sort_order: built.sort_order,
        rollup: built.rollup,
        columns: metas,
        extensions: Vec::new(),
    };
    let dir_range = w.put(&directory.encode(), path)?;
    w.put(&encode_footer(&dir_range), path)?;
    let total = w.pos;
    let file = w
        .inner
        .into_inner()
        .map_err(|e| Error::io(path, e.into_error()))?;
    if opts.sync {
        file.sync_data().map_err(|e| Error::io(path, e))?;
    }
    Ok(total)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Rows appended column-wise ([`SegmentWriter::append_arrow_rows`], in any order and any
    /// subset) build the same segment, byte for byte, as the same rows pushed one by one,
    /// with the same memory estimate.
    #[test]
    fn arrow_rows_append_like_pushed_rows() {
        use crate::input::test_batches::{HOUR, T0, batch, schema};
        let dir = tempfile::tempdir().unwrap();
        for (k, rollup) in [false, true].into_iter().enumerate() {
            let schema = schema(rollup);
            let b = batch(3000, 1, 11 + k as u64);
            let rows = ArrowRows::new(&schema, &b).unwrap();
            let n_inputs = schema.dimensions.len() + schema.metrics.len();
            let views: Vec<ColumnView<'_>> = (0..n_inputs).map(|f| rows.field_view(f)).collect();
            assert!(takes_arrow_columns(&schema, &views));
            let (times, bad) = rows.times();
            assert!(bad.is_empty());
            // Every row but every 7th, backwards, in two appends.
            let picked: Vec<u32> = (0..rows.len() as u32)
                .rev()
                .filter(|r| r % 7 != 3)
                .collect();
            let interval = Interval::new(T0, T0 + HOUR).unwrap();
            let mut columnar = SegmentWriter::new(&schema, interval).unwrap();
            let (a, c) = picked.split_at(picked.len() / 3);
            columnar.append_arrow_rows(&views, &times, a).unwrap();
            columnar.append_arrow_rows(&views, &times, c).unwrap();
            let mut by_row = SegmentWriter::new(&schema, interval).unwrap();
            let mut values = Vec::new();
            for &r in &picked {
                let t = rows.row(r as usize, &mut values).unwrap();
                by_row.push(t, &values).unwrap();
            }
            assert_eq!(columnar.num_rows(), picked.len());
            assert_eq!(columnar.estimated_bytes(), by_row.estimated_bytes());
            let (pa, pb) = (
                dir.path().join(format!("a{k}")),
                dir.path().join(format!("b{k}")),
            );
            let opts = FinishOptions::scratch();
            let sa = columnar.finish_with(&pa, &opts).unwrap();
            let sb = by_row.finish_with(&pb, &opts).unwrap();
            assert_eq!(sa.rows_in, sb.rows_in);
            assert_eq!(sa.rows_out, sb.rows_out);
            assert_eq!(std::fs::read(&pa).unwrap(), std::fs::read(&pb).unwrap());
        }
    }

    /// Columns that need a conversion, or a check per value, are not taken column-wise, and
    /// an append of them (or of rows outside the interval) fails with nothing appended.
    #[test]
    fn arrow_rows_that_need_the_row_path_are_refused() {
        use std::sync::Arc;

        use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, UInt64Array};

        use crate::input::test_batches::{HOUR, T0, batch, schema};
        let schema = schema(false);
        let n_inputs = schema.dimensions.len() + schema.metrics.len();
        let b = batch(50, 2, 3);
        let swap = |name: &str, a: ArrayRef| {
            let s = b.schema();
            let i = s.index_of(name).unwrap();
            let mut fields: Vec<_> = s.fields().iter().map(|f| f.as_ref().clone()).collect();
            fields[i] = arrow_schema::Field::new(name, a.data_type().clone(), true);
            let mut cols = b.columns().to_vec();
            cols[i] = a;
            RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), cols).unwrap()
        };
        let mut nan = vec![Some(1.0); 50];
        nan[7] = Some(f64::NAN);
        let refused = [
            swap("load", Arc::new(Float64Array::from(nan.clone()))),
            swap("x", Arc::new(Float64Array::from(nan))),
            swap("core", Arc::new(Float64Array::from(vec![1.5; 50]))),
            swap("n", Arc::new(UInt64Array::from(vec![1u64; 50]))),
            swap("host", Arc::new(Int64Array::from(vec![1i64; 50]))),
            swap("tag", Arc::new(BooleanArray::from(vec![true; 50]))),
        ];
        for (k, rb) in refused.iter().enumerate() {
            let rows = ArrowRows::new(&schema, rb).unwrap();
            let views: Vec<ColumnView<'_>> = (0..n_inputs).map(|f| rows.field_view(f)).collect();
            assert!(!takes_arrow_columns(&schema, &views), "batch {k}");
            let (times, _) = rows.times();
            let mut w =
                SegmentWriter::new(&schema, Interval::new(T0, T0 + 2 * HOUR).unwrap()).unwrap();
            assert!(w.append_arrow_rows(&views, &times, &[0, 1]).is_err());
            assert_eq!(w.num_rows(), 0);
        }
        // A NaN under a null slot is a null.
        let mut values = vec![1.0; 50];
        values[7] = f64::NAN;
        let nulls = arrow_buffer::NullBuffer::from((0..50).map(|i| i != 7).collect::<Vec<_>>());
        let values = Float64Array::new(values.into(), Some(nulls));
        let rb = swap("x", Arc::new(values));
        let rows = ArrowRows::new(&schema, &rb).unwrap();
        let views: Vec<ColumnView<'_>> = (0..n_inputs).map(|f| rows.field_view(f)).collect();
        assert!(takes_arrow_columns(&schema, &views));
        // Rows outside the interval: nothing appended.
        let rows = ArrowRows::new(&schema, &b).unwrap();
        let views: Vec<ColumnView<'_>> = (0..n_inputs).map(|f| rows.field_view(f)).collect();
        assert!(takes_arrow_columns(&schema, &views));
        let (times, _) = rows.times();
        let mut w = SegmentWriter::new(&schema, Interval::new(T0, T0 + HOUR).unwrap()).unwrap();
        let all: Vec<u32> = (0..50).collect();
        assert!(w.append_arrow_rows(&views, &times, &all).is_err());
        assert_eq!(w.num_rows(), 0);
        assert!(w.append_arrow_rows(&views, &times, &[50]).is_err());
        assert_eq!(w.num_rows(), 0);
    }

    /// Short keys are the zero-padded bytes and the length: equal exactly for equal strings,
    /// at every length up to the limit, and none for longer strings.
    #[test]
    fn short_keys_are_the_padded_bytes_and_length() {
        use rand::{Rng, SeedableRng};
        let reference = |s: &[u8]| {
            let mut b = [0u8; 16];
            b[..s.len()].copy_from_slice(s);
            b[15] = s.len() as u8;
            u128::from_le_bytes(b)
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for n in 0..=SHORT_KEY_MAX_BYTES {
            for _ in 0..200 {
                // Bytes from a small alphabet (zeros included) so that near-equal strings and
                // zero padding meet often.
                let s: Vec<u8> = (0..n)
                    .map(|_| [0u8, 1, b'a', 0xff][rng.random_range(0..4)])
                    .collect();
                assert_eq!(short_key(&s), Some(reference(&s)), "{s:?}");
            }
        }
        assert_eq!(short_key(&[b'x'; SHORT_KEY_MAX_BYTES + 1]), None);
        assert_ne!(short_key(b"a"), short_key(b"a\0"));
        assert_ne!(short_key(&[b'a'; 8]), short_key(&[b'a'; 15]));
        // Interning short and long values (both maps) gives one id per distinct value.
        let mut d = StringDim::new();
        let values = [
            "",
            "a",
            "a\0",
            "host_1",
            "host_10",
            "Ubuntu16.04LTS",
            "a string of twenty b",
        ];
        let ids: Vec<u32> = values.iter().map(|v| d.intern(v)).collect();
        assert_eq!(ids, (1..=values.len() as u32).collect::<Vec<_>>());
        let again: Vec<u32> = values.iter().map(|v| d.intern(v)).collect();
        assert_eq!(again, ids);
        assert!(
            values
                .iter()
                .zip(&ids)
                .all(|(v, &id)| &*d.values[id as usize - 1] == *v)
        );
    }

    /// `sort_rows` (packed words, ties ordered by packed words of the next columns, a merge
    /// of presorted runs) against a comparison sort of every sort column, on rows with many
    /// ties: repeated rows, columns too wide to pack together, nulls, and a multi-value
    /// column (compared value by value).
    #[test]
    fn sort_order_matches_a_comparison_sort() {
        let spec = serde_json::json!({
            "dataSource": "s",
            "timestampSpec": {"column": "ts", "format": "millis"},
            "dimensionsSpec": {"dimensions": [
                "a",
                {"type": "long", "name": "big1"},
                {"type": "long", "name": "__time"},
                {"type": "double", "name": "d"},
                {"type": "long", "name": "big2"},
                {"type": "long", "name": "small"},
                "m",
                {"type": "long", "name": "after"}
            ], "forceSegmentSortByTime": false},
            "metricsSpec": [],
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none",
                "rollup": false}
        });
        let schema = DataSchema::from_json(&spec.to_string()).unwrap();
        let order = schema.sort_order();
        let interval = Interval {
            start: 0,
            end: 3_600_000,
        };
        // Mostly tied rows (a round's codes packed for all rows), and rows that mostly differ
        // in time (one row in eight ties: codes packed row by row).
        for (multi, few_ties) in [(false, false), (true, false), (false, true)] {
            let mut w = SegmentWriter::new(&schema, interval).unwrap();
            let mut r = 0x9e37_79b9_7f4a_7c15u64;
            let mut prev = 0;
            for i in 0..6000u64 {
                r ^= r << 13;
                r ^= r >> 7;
                r ^= r << 17;
                // A small pool of distinct rows, so most rows repeat another (with few ties,
                // one row in sixteen repeats the one before it, time included).
                let k = if few_ties && i % 16 == 1 {
                    prev
                } else {
                    r % 40
                };
                prev = k;
                let pick = |x: u64, n: u64| (k.wrapping_mul(x) >> 3) % n;
                let big = |x: u64| match pick(x, 4) {
                    0 => InputValue::Null,
                    1 => InputValue::Long(-(1 << 62)),
                    2 => InputValue::Long(0),
                    _ => InputValue::Long(1 << 62),
                };
                let m = if multi && pick(23, 3) == 0 {
                    InputValue::List(vec![
                        InputValue::Str(Cow::Owned(format!("m{}", pick(29, 3)))),
                        InputValue::Str(Cow::Borrowed("z")),
                    ])
                } else {
                    InputValue::Str(Cow::Owned(format!("m{}", pick(31, 3))))
                };
                let fields = [
                    InputValue::Str(Cow::Owned(format!("a{}", pick(3, 3)))),
                    big(5),
                    match pick(7, 4) {
                        0 => InputValue::Null,
                        x => InputValue::Double(x as f64 - 2.5),
                    },
                    big(11),
                    InputValue::Long(pick(13, 3) as i64),
                    m,
                    // Differs between repeats of a row only after every other column.
                    InputValue::Long((i % 3) as i64),
                ];
                let time = if few_ties {
                    (i - u64::from(i % 16 == 1)) as i64
                } else {
                    pick(17, 5) as i64 * 1000
                };
                w.push(time, &fields).unwrap();
            }
            let dicts = sorted_dictionaries(&w.dims);
            let n = w.times.len();
            let mut want: Vec<u32> = (0..n as u32).collect();
            want.sort_by(|&a, &b| {
                compare_rows(&order, &w.times, &w.dims, &dicts, a as usize, b as usize)
            });
            for presorted in [false, true] {
                let got = sort_rows(&order, &w.times, &w.dims, &dicts, presorted);
                assert!(!got.rest.is_empty(), "some columns are left to the ties");
                assert_eq!(
                    got.perm, want,
                    "multi {multi}, few ties {few_ties}, presorted {presorted}"
                );
            }
        }
    }

    #[test]
    fn rows_of_plain_values_are_stored_as_converted_ones() {
        // `push` appends rows whose values already have their columns' types without
        // converting them; the same rows given in other forms (strings for numbers, one-item
        // lists for strings) take the converting path. Both must store the same segment.
        let spec = serde_json::json!({
            "dataSource": "p",
            "timestampSpec": {"column": "ts", "format": "millis"},
            "dimensionsSpec": {"dimensions": ["s", {"type": "long", "name": "l"},
                {"type": "double", "name": "d"}]},
            "metricsSpec": [
                {"type": "count", "name": "count"},
                {"type": "longSum", "name": "ls", "fieldName": "m"},
                {"type": "doubleMin", "name": "dm", "fieldName": "x"},
                {"type": "longLast", "name": "ll", "fieldName": "m"},
                {"type": "doubleFirst", "name": "df", "fieldName": "x"}
            ],
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "second",
                "rollup": true}
        });
        let schema = DataSchema::from_json(&spec.to_string()).unwrap();
        let interval = Interval {
            start: 0,
            end: 3_600_000,
        };
        let mut plain = SegmentWriter::new(&schema, interval).unwrap();
        let mut converted = SegmentWriter::new(&schema, interval).unwrap();
        let mut r = 0x2545_f491_4f6c_dd1du64;
        for i in 0..5000i64 {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            let null = r.is_multiple_of(7);
            let s = format!("s{}", r % 13);
            let l = (r >> 8) as i64 % 50 - 25;
            let d = if r.is_multiple_of(5) {
                -0.0
            } else {
                (r >> 16) as f64 % 9.0 / 4.0
            };
            let m = (r >> 24) as i64 % 1000;
            let x = (r >> 32) as f64 % 100.0 / 8.0;
            let time = (i * 7919) % 3_600_000;
            let opt = |v: InputValue<'static>| if null { InputValue::Null } else { v };
            let a = [
                opt(InputValue::Str(Cow::Owned(s.clone()))),
                opt(InputValue::Long(l)),
                opt(if i % 2 == 0 {
                    InputValue::Double(d)
                } else {
                    InputValue::Long(l)
                }),
                InputValue::Null,
                opt(InputValue::Long(m)),
                opt(InputValue::Double(x)),
                opt(InputValue::Long(m)),
                opt(InputValue::Double(x)),
            ];
            let b = [
                if null {
                    InputValue::List(Vec::new())
                } else {
                    InputValue::List(vec![InputValue::Str(Cow::Owned(s))])
                },
                if null {
                    InputValue::Str(Cow::Borrowed(""))
                } else {
                    InputValue::Str(Cow::Owned(l.to_string()))
                },
                if null {
                    InputValue::Null
                } else if i % 2 == 0 {
                    InputValue::Str(Cow::Owned(d.to_string()))
                } else {
                    InputValue::Str(Cow::Owned(l.to_string()))
                },
                InputValue::Str(Cow::Borrowed("ignored")),
                opt(InputValue::Str(Cow::Owned(m.to_string()))),
                opt(InputValue::Str(Cow::Owned(x.to_string()))),
                opt(InputValue::Double(m as f64)),
                opt(InputValue::Str(Cow::Owned(x.to_string()))),
            ];
            assert!(plain.is_plain_row(&a) && !converted.is_plain_row(&b));
            plain.push(time, &a).unwrap();
            converted.push(time, &b).unwrap();
        }
        // NaN is not plain, and still rejected.
        let nan = [
            InputValue::Null,
            InputValue::Null,
            InputValue::Double(f64::NAN),
            InputValue::Null,
            InputValue::Null,
            InputValue::Null,
            InputValue::Null,
            InputValue::Null,
        ];
        assert!(!plain.is_plain_row(&nan));
        assert!(plain.push(0, &nan).is_err());
        let dir = tempfile::tempdir().unwrap();
        let (pa, pb) = (dir.path().join("a"), dir.path().join("b"));
        plain.finish(&pa).unwrap();
        converted.finish(&pb).unwrap();
        let a = Segment::open(&pa).unwrap().to_record_batches().unwrap();
        let b = Segment::open(&pb).unwrap().to_record_batches().unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn bitmaps_from_runs_hold_every_row_once() {
        let ids = [0u32, 2, 2, 2, 1, 0, 0, 2, 1, 1, 5];
        let mut bitmaps = vec![RoaringBitmap::new(); 3];
        // In two calls, splitting a run.
        add_id_runs(&mut bitmaps, 0, &ids[..2]);
        add_id_runs(&mut bitmaps, 2, &ids[2..]);
        for (id, b) in bitmaps.iter().enumerate() {
            let want: Vec<u32> = (0..ids.len() as u32)
                .filter(|&r| ids[r as usize] as usize == id)
                .collect();
            assert_eq!(b.iter().collect::<Vec<_>>(), want, "id {id}");
        }
    }
}
