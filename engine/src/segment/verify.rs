//! Full verification of a segment: every checksum and every invariant.
//!
//! [`verify_segment`] decodes every part and block and checks what the directory promises:
//! value counts, block min/max, dictionary order, ids within the dictionary, bitmap indexes that
//! match the rows exactly, null counts, sketches that deserialize, timestamps inside the
//! interval and rows in sort order. It is what `basalt segment verify` runs.

use std::path::Path;

use roaring::RoaringBitmap;

use crate::aggregate::deserialize_hll;
use crate::column::f64_to_ordered;
use crate::error::{Error, Result};
use crate::schema::TIME_COLUMN;
use crate::segment::format::{BLOCK_ROWS, ColumnMeta, ColumnType, StreamRole};
use crate::segment::reader::Segment;

/// What verification looked at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Rows checked.
    pub rows: u64,
    /// Columns checked.
    pub columns: usize,
    /// Blocks decoded.
    pub blocks: usize,
    /// Bytes whose checksum was checked.
    pub bytes_checked: u64,
}

/// Open and fully verify the segment file at `path`.
pub fn verify_file(path: &Path) -> Result<VerifyReport> {
    let seg = Segment::open(path)?;
    verify_segment(&seg)
}

/// Fully verify an open segment.
pub fn verify_segment(seg: &Segment) -> Result<VerifyReport> {
    let mut report = VerifyReport {
        rows: seg.num_rows(),
        columns: seg.columns().len(),
        ..VerifyReport::default()
    };
    for c in seg.columns() {
        verify_column(seg, c, &mut report)?;
    }
    verify_time(seg)?;
    Ok(report)
}

fn corrupt(seg: &Segment, check: String, expected: impl ToString, found: impl ToString) -> Error {
    Error::corruption(seg.path(), check, expected, found)
}

fn check_min_max(
    seg: &Segment,
    c: &ColumnMeta,
    role: StreamRole,
    b: usize,
    keys: impl Iterator<Item = (u64, u64)>,
) -> Result<()> {
    // keys: (order key, stored bits)
    let mut min: Option<(u64, u64)> = None;
    let mut max: Option<(u64, u64)> = None;
    for (k, bits) in keys {
        if min.is_none_or(|(m, _)| k < m) {
            min = Some((k, bits));
        }
        if max.is_none_or(|(m, _)| k > m) {
            max = Some((k, bits));
        }
    }
    let Some(stream) = c.stream(role) else {
        return Ok(());
    };
    let Some(block) = stream.blocks.get(b) else {
        return Ok(());
    };
    let want = (min.map(|m| m.1).unwrap_or(0), max.map(|m| m.1).unwrap_or(0));
    if (block.min, block.max) != want {
        return Err(corrupt(
            seg,
            format!("column `{}` block {b} min/max", c.name),
            format!("{want:?}"),
            format!("{:?}", (block.min, block.max)),
        ));
    }
    Ok(())
}

fn verify_column(seg: &Segment, c: &ColumnMeta, report: &mut VerifyReport) -> Result<()> {
    for p in &c.parts {
        seg.checked_bytes(&p.range, &format!("column `{}` {}", c.name, p.role.name()))?;
        report.bytes_checked += p.range.len;
    }
    let rows = seg.num_rows() as usize;
    let nulls = seg.null_bitmap(c)?;
    if let Some(max) = nulls.max()
        && max as usize >= rows
    {
        return Err(corrupt(
            seg,
            format!("column `{}` null bitmap", c.name),
            format!("rows below {rows}"),
            max,
        ));
    }
    let mut null_rows = 0u64;
    let mut bitmaps: Vec<RoaringBitmap> = Vec::new();
    if matches!(c.column_type, ColumnType::String | ColumnType::MultiString) {
        let dict = seg.dictionary(c)?;
        dict.verify(seg.path(), &c.name)?;
        bitmaps = vec![RoaringBitmap::new(); c.cardinality as usize + 1];
    }
    for b in 0..seg.num_blocks() {
        let base = (b * BLOCK_ROWS) as u32;
        report.blocks += 1;
        for s in &c.streams {
            if let Some(block) = s.blocks.get(b) {
                report.bytes_checked += block.range.len;
            }
        }
        let is_null = |i: usize| nulls.contains(base + i as u32);
        match c.column_type {
            ColumnType::Long | ColumnType::LongPair => {
                let v = seg.read_longs(c, StreamRole::Long, b)?;
                check_min_max(
                    seg,
                    c,
                    StreamRole::Long,
                    b,
                    v.iter()
                        .enumerate()
                        .filter(|(i, _)| !is_null(*i))
                        .map(|(_, &x)| ((x as u64) ^ (1 << 63), x as u64)),
                )?;
                if c.column_type == ColumnType::LongPair {
                    seg.read_longs(c, StreamRole::PairTime, b)?;
                }
            }
            ColumnType::Double | ColumnType::DoublePair => {
                let v = seg.read_doubles(c, b)?;
                check_min_max(
                    seg,
                    c,
                    StreamRole::Double,
                    b,
                    v.iter()
                        .enumerate()
                        .filter(|(i, _)| !is_null(*i))
                        .map(|(_, &x)| (f64_to_ordered(x), x.to_bits())),
                )?;
                if c.column_type == ColumnType::DoublePair {
                    seg.read_longs(c, StreamRole::PairTime, b)?;
                }
            }
            ColumnType::String => {
                let ids = seg.read_u32s(c, StreamRole::Ids, b)?;
                check_min_max(
                    seg,
                    c,
                    StreamRole::Ids,
                    b,
                    ids.iter().map(|&x| (x as u64, x as u64)),
                )?;
                for (i, &id) in ids.iter().enumerate() {
                    if id == 0 {
                        null_rows += 1;
                    }
                    bitmaps[id as usize].insert(base + i as u32);
                }
            }
            ColumnType::MultiString => {
                let lengths = seg.read_u32s(c, StreamRole::Lengths, b)?;
                let ids = seg.read_u32s(c, StreamRole::Ids, b)?;
                let total: u64 = lengths.iter().map(|&l| l as u64).sum();
                if total != ids.len() as u64 {
                    return Err(corrupt(
                        seg,
                        format!("column `{}` block {b} value count", c.name),
                        total,
                        ids.len(),
                    ));
                }
                let mut pos = 0usize;
                for (i, &l) in lengths.iter().enumerate() {
                    if l == 0 {
                        null_rows += 1;
                        bitmaps[0].insert(base + i as u32);
                    }
                    for &id in &ids[pos..pos + l as usize] {
                        if id == 0 {
                            return Err(corrupt(
                                seg,
                                format!("column `{}` row {} value id", c.name, base as usize + i),
                                "a non-null id",
                                0,
                            ));
                        }
                        bitmaps[id as usize].insert(base + i as u32);
                    }
                    pos += l as usize;
                }
            }
            ColumnType::HllSketch => {
                for (i, blob) in seg.read_blobs(c, b)?.iter().enumerate() {
                    if blob.is_empty() {
                        null_rows += 1;
                    } else if let Err(e) = deserialize_hll(blob) {
                        return Err(corrupt(
                            seg,
                            format!("column `{}` row {} sketch", c.name, base as usize + i),
                            "a valid HLL sketch",
                            e,
                        ));
                    }
                }
            }
        }
    }
    if matches!(
        c.column_type,
        ColumnType::Long | ColumnType::Double | ColumnType::LongPair | ColumnType::DoublePair
    ) {
        null_rows = nulls.len();
    }
    if null_rows != c.null_count {
        return Err(corrupt(
            seg,
            format!("column `{}` null count", c.name),
            null_rows,
            c.null_count,
        ));
    }
    if let Some(index) = seg.bitmap_index(c)? {
        for (id, want) in bitmaps.iter().enumerate() {
            let got = index.bitmap(id, seg.path(), &c.name)?;
            if got.len() != want.len() || !(&got ^ want).is_empty() {
                return Err(corrupt(
                    seg,
                    format!("column `{}` bitmap of value id {id}", c.name),
                    format!("{} rows", want.len()),
                    format!("{} rows (different)", got.len()),
                ));
            }
        }
    }
    Ok(())
}

fn verify_time(seg: &Segment) -> Result<()> {
    let Some(c) = seg.column(TIME_COLUMN) else {
        return Err(corrupt(seg, "`__time` column".into(), "present", "missing"));
    };
    let interval = seg.interval();
    let time_first = seg
        .directory()
        .sort_order
        .first()
        .is_some_and(|s| s == TIME_COLUMN);
    let (mut min, mut max) = (i64::MAX, i64::MIN);
    let mut prev = i64::MIN;
    for b in 0..seg.num_blocks() {
        for t in seg.read_longs(c, StreamRole::Long, b)? {
            if !interval.contains(t) {
                return Err(corrupt(
                    seg,
                    "row timestamp inside the segment interval".into(),
                    interval,
                    crate::time::format_iso_millis(t),
                ));
            }
            if time_first && t < prev {
                return Err(corrupt(
                    seg,
                    "row order by __time".into(),
                    "non-decreasing",
                    t,
                ));
            }
            prev = t;
            min = min.min(t);
            max = max.max(t);
        }
    }
    let d = seg.directory();
    if seg.num_rows() > 0 && (min, max) != (d.min_time, d.max_time) {
        return Err(corrupt(
            seg,
            "min/max __time".into(),
            format!("{min}..{max}"),
            format!("{}..{}", d.min_time, d.max_time),
        ));
    }
    Ok(())
}
