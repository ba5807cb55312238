//! Reading a segment over memory-mapped bytes.
//!
//! [`Segment::open`] reads only the footer and the directory, checks the directory's checksum and
//! every structural promise it makes (ranges inside the file, block counts, stream layout), so
//! that later reads cannot go out of bounds. Dictionaries, bitmaps and blocks are decoded on
//! demand, each after its own checksum is checked: damaged bytes give a
//! [`Error::Corruption`] naming the file and the part, never a panic or a wrong answer.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StructArray, TimestampMillisecondArray};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use memmap2::Mmap;
use parking_lot::Mutex;
use roaring::RoaringBitmap;

use crate::bitmap::{BitmapIndexReader, decode_bitmap};
use crate::column::{BlockValue, Need, Values, decode_blobs, decode_numbers_need};
use crate::dictionary::DictionaryReader;
use crate::error::{Error, Result};
use crate::schema::{DataSchema, TIME_COLUMN};
use crate::segment::format::{
    BLOCK_ROWS, ByteRange, Codec, ColumnKind, ColumnMeta, ColumnType, Directory,
    FOOTER_MAGIC_OFFSET, FOOTER_SIZE, FOOTER_VERSION_OFFSET, FORMAT_VERSION, HEADER_FLAGS_OFFSET,
    HEADER_SIZE, HEADER_VERSION_OFFSET, OLDEST_SUPPORTED_FORMAT_VERSION, PartRole, SEGMENT_MAGIC,
    StreamRole,
};
use crate::time::Interval;

/// Shared handle to an open segment.
pub type SegmentRef = Arc<Segment>;

#[derive(Debug)]
enum Backing {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mapped(m) => m,
            Backing::Owned(v) => v,
        }
    }
}

/// An open, immutable segment.
#[derive(Debug)]
pub struct Segment {
    path: PathBuf,
    backing: Backing,
    directory: Directory,
    schema: DataSchema,
    data_end: u64,
    /// Offsets of the byte ranges whose checksum held when first read: the file never
    /// changes, so a range read again (every dashboard refresh) is not summed again.
    verified: Mutex<HashSet<u64, foldhash::fast::RandomState>>,
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

impl Segment {
    /// Open a segment file (memory-mapped). Reads and checks only metadata.
    pub fn open(path: &Path) -> Result<Segment> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: segment files are immutable once published: Basalt never writes to a file
        // after `SegmentWriter::finish` returns, and removes files only after their segment is
        // dropped from the timeline. Every read from the map is bounds-checked against its length.
        #[allow(unsafe_code)]
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let seg = Segment::from_backing(path.to_path_buf(), Backing::Mapped(map))?;
        // The metadata is decoded: let go of the pages read for it (the kernel maps whole large
        // folios around the footer, hundreds of KiB of a freshly written file), so an open
        // segment costs no resident memory until a query reads it.
        seg.release_pages();
        Ok(seg)
    }

    /// Let go of the pages of the file this process has read (they count in its resident
    /// set while mapped): the next read of them comes from the page cache or the disk again.
    /// For a merge that reads a segment through once. No effect on in-memory segments.
    pub fn release_pages(&self) {
        if let Backing::Mapped(map) = &self.backing {
            // SAFETY: the map is a read-only, private mapping of a file that is never written
            // again (see `Segment::open`). MADV_DONTNEED only drops this process's copies of
            // its pages: no page was ever modified, so a later read (also by another thread
            // holding a slice into the map) faults the same bytes back in from the file.
            #[allow(unsafe_code)]
            let res = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
            if let Err(e) = res {
                tracing::debug!(path = %self.path.display(), error = %e, "madvise(DONTNEED) failed");
            }
        }
    }

    /// Open a segment held in memory; `name` stands for the path in errors.
    pub fn from_bytes(bytes: Vec<u8>, name: &str) -> Result<Segment> {
        Segment::from_backing(PathBuf::from(name), Backing::Owned(bytes))
    }

    fn from_backing(path: PathBuf, backing: Backing) -> Result<Segment> {
        let bytes = backing.bytes();
        let len = bytes.len();
        if len < HEADER_SIZE + FOOTER_SIZE {
            return Err(Error::corruption(
                &path,
                "file size",
                format!("at least {} bytes", HEADER_SIZE + FOOTER_SIZE),
                format!("{len} bytes"),
            ));
        }
        if bytes[..SEGMENT_MAGIC.len()] != SEGMENT_MAGIC {
            return Err(Error::corruption(
                &path,
                "header magic",
                format!("{SEGMENT_MAGIC:?}"),
                format!("{:?}", &bytes[..SEGMENT_MAGIC.len()]),
            ));
        }
        let head_version = le_u32(&bytes[HEADER_VERSION_OFFSET..]);
        check_version(&path, head_version, "header")?;
        let flags = le_u32(&bytes[HEADER_FLAGS_OFFSET..]);
        if flags != 0 {
            return Err(Error::Incompatible {
                path: path.clone(),
                reason: format!(
                    "header flags {flags:#x} are not understood by this build (format version {FORMAT_VERSION} defines none)"
                ),
            });
        }
        let footer = &bytes[len - FOOTER_SIZE..];
        if footer[FOOTER_MAGIC_OFFSET..] != SEGMENT_MAGIC {
            return Err(Error::corruption(
                &path,
                "footer magic (file truncated or not a segment)",
                format!("{SEGMENT_MAGIC:?}"),
                format!("{:?}", &footer[FOOTER_MAGIC_OFFSET..]),
            ));
        }
        let foot_version = le_u32(&footer[FOOTER_VERSION_OFFSET..]);
        check_version(&path, foot_version, "footer")?;
        if foot_version != head_version {
            return Err(Error::corruption(
                &path,
                "footer format version",
                head_version,
                foot_version,
            ));
        }
        let dir = ByteRange {
            offset: le_u64(&footer[0..]),
            len: le_u64(&footer[8..]),
            crc: le_u32(&footer[16..]),
        };
        let dir_end = dir.offset.checked_add(dir.len);
        if dir.offset < HEADER_SIZE as u64 || dir_end != Some((len - FOOTER_SIZE) as u64) {
            return Err(Error::corruption(
                &path,
                "directory range",
                format!("a range ending at byte {}", len - FOOTER_SIZE),
                format!("offset {} length {}", dir.offset, dir.len),
            ));
        }
        let dir_bytes = &bytes[dir.offset as usize..len - FOOTER_SIZE];
        let crc = crc32c::crc32c(dir_bytes);
        if crc != dir.crc {
            return Err(Error::corruption(
                &path,
                "directory checksum",
                format!("{:#010x}", dir.crc),
                format!("{crc:#010x}"),
            ));
        }
        let directory = Directory::decode(dir_bytes, &path)?;
        if head_version < 2 {
            // The frames codec arrived with format version 2.
            for c in &directory.columns {
                for st in &c.streams {
                    if st.blocks.iter().any(|b| b.codec == Codec::Frames) {
                        return Err(Error::corruption(
                            &path,
                            format!("block codec in column `{}`", c.name),
                            "0..=2 in a format version 1 file",
                            Codec::Frames as u8,
                        ));
                    }
                }
            }
        }
        let schema = DataSchema::from_json(&directory.schema_json).map_err(|e| {
            Error::corruption(&path, "embedded dataSchema", "a valid dataSchema", e)
        })?;
        let seg = Segment {
            path,
            backing,
            directory,
            schema,
            data_end: dir.offset,
            verified: Mutex::default(),
        };
        seg.check_structure()?;
        Ok(seg)
    }

    fn corrupt(
        &self,
        check: impl Into<String>,
        expected: impl ToString,
        found: impl ToString,
    ) -> Error {
        Error::corruption(&self.path, check, expected, found)
    }

    /// Structural checks of the directory against itself and the file size.
    fn check_structure(&self) -> Result<()> {
        let d = &self.directory;
        if d.interval_start >= d.interval_end {
            return Err(self.corrupt(
                "segment interval",
                "start < end",
                format!("{}..{}", d.interval_start, d.interval_end),
            ));
        }
        if d.num_rows > u32::MAX as u64 {
            return Err(self.corrupt("row count", "at most 2^32 - 1", d.num_rows));
        }
        let expected_blocks = (d.num_rows as usize).div_ceil(BLOCK_ROWS);
        // Columns must be __time, then the schema's dimensions, then its metrics.
        let mut expected_names = vec![TIME_COLUMN.to_string()];
        expected_names.extend(self.schema.dimensions.iter().map(|x| x.name.clone()));
        expected_names.extend(self.schema.metrics.iter().map(|x| x.name.clone()));
        let names: Vec<&str> = d.columns.iter().map(|c| c.name.as_str()).collect();
        if names != expected_names {
            return Err(self.corrupt("column list", expected_names.join(","), names.join(",")));
        }
        for (i, c) in d.columns.iter().enumerate() {
            let want_kind = if i == 0 {
                ColumnKind::Time
            } else if i <= self.schema.dimensions.len() {
                ColumnKind::Dimension
            } else {
                ColumnKind::Metric
            };
            if c.kind != want_kind {
                return Err(self.corrupt(
                    format!("column `{}` kind", c.name),
                    want_kind.name(),
                    c.kind.name(),
                ));
            }
            if i == 0 && c.column_type != ColumnType::Long {
                return Err(self.corrupt("`__time` type", "long", c.column_type.name()));
            }
            let roles: Vec<StreamRole> = c.streams.iter().map(|s| s.role).collect();
            if roles != c.column_type.streams() {
                return Err(self.corrupt(
                    format!("column `{}` streams", c.name),
                    format!("{:?}", c.column_type.streams()),
                    format!("{roles:?}"),
                ));
            }
            for s in &c.streams {
                if s.blocks.len() != expected_blocks {
                    return Err(self.corrupt(
                        format!("column `{}` {:?} block count", c.name, s.role),
                        expected_blocks,
                        s.blocks.len(),
                    ));
                }
                let row_aligned =
                    !(c.column_type == ColumnType::MultiString && s.role == StreamRole::Ids);
                for (b, block) in s.blocks.iter().enumerate() {
                    self.check_range(&block.range, &format!("column `{}` block {b}", c.name))?;
                    if row_aligned {
                        let want = (d.num_rows as usize - b * BLOCK_ROWS).min(BLOCK_ROWS) as u32;
                        if block.num_values != want {
                            return Err(self.corrupt(
                                format!("column `{}` block {b} row count", c.name),
                                want,
                                block.num_values,
                            ));
                        }
                    }
                }
            }
            for p in &c.parts {
                self.check_range(&p.range, &format!("column `{}` {}", c.name, p.role.name()))?;
            }
            let mut seen_roles: Vec<PartRole> = Vec::with_capacity(c.parts.len());
            for p in &c.parts {
                let allowed = match p.role {
                    PartRole::Dictionary | PartRole::BitmapIndex => {
                        matches!(c.column_type, ColumnType::String | ColumnType::MultiString)
                    }
                    PartRole::NullBitmap => matches!(
                        c.column_type,
                        ColumnType::Long
                            | ColumnType::Double
                            | ColumnType::LongPair
                            | ColumnType::DoublePair
                    ),
                };
                if !allowed || seen_roles.contains(&p.role) {
                    return Err(self.corrupt(
                        format!("column `{}` parts", c.name),
                        format!(
                            "at most one {} for a {} column",
                            p.role.name(),
                            c.column_type.name()
                        ),
                        "a duplicate or misplaced part",
                    ));
                }
                seen_roles.push(p.role);
            }
            let numeric = matches!(
                c.column_type,
                ColumnType::Long
                    | ColumnType::Double
                    | ColumnType::LongPair
                    | ColumnType::DoublePair
            );
            if numeric && (c.null_count > 0) != c.part(PartRole::NullBitmap).is_some() {
                return Err(self.corrupt(
                    format!("column `{}` null bitmap presence", c.name),
                    format!(
                        "present exactly when the null count ({}) is non-zero",
                        c.null_count
                    ),
                    if c.part(PartRole::NullBitmap).is_some() {
                        "present"
                    } else {
                        "absent"
                    },
                ));
            }
            let is_string = matches!(c.column_type, ColumnType::String | ColumnType::MultiString);
            if is_string != c.part(PartRole::Dictionary).is_some() {
                return Err(self.corrupt(
                    format!("column `{}` dictionary presence", c.name),
                    is_string,
                    !is_string,
                ));
            }
            if c.null_count > d.num_rows {
                return Err(self.corrupt(
                    format!("column `{}` null count", c.name),
                    format!("at most {}", d.num_rows),
                    c.null_count,
                ));
            }
        }
        for s in &d.sort_order {
            if !names.contains(&s.as_str()) {
                return Err(self.corrupt("sort order column", "a column of the segment", s));
            }
        }
        Ok(())
    }

    fn check_range(&self, r: &ByteRange, what: &str) -> Result<()> {
        let end = r.offset.checked_add(r.len);
        if r.offset < HEADER_SIZE as u64 || end.is_none_or(|e| e > self.data_end) {
            return Err(self.corrupt(
                format!("{what} byte range"),
                format!("within bytes {HEADER_SIZE}..{}", self.data_end),
                format!("offset {} length {}", r.offset, r.len),
            ));
        }
        Ok(())
    }

    /// The bytes of a range after checking their checksum (ranges were bounds-checked at open;
    /// each range is summed the first time it is read from this handle).
    pub fn checked_bytes(&self, r: &ByteRange, what: &str) -> Result<&[u8]> {
        let bytes = self
            .backing
            .bytes()
            .get(r.offset as usize..(r.offset + r.len) as usize)
            .ok_or_else(|| self.corrupt(format!("{what} byte range"), "in file", "outside"))?;
        if self.verified.lock().contains(&r.offset) {
            return Ok(bytes);
        }
        let crc = crc32c::crc32c(bytes);
        if crc != r.crc {
            return Err(self.corrupt(
                format!("{what} checksum"),
                format!("{:#010x}", r.crc),
                format!("{crc:#010x}"),
            ));
        }
        self.verified.lock().insert(r.offset);
        Ok(bytes)
    }

    /// Path of the file (or the name given to [`Segment::from_bytes`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The decoded directory.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The schema the segment was built with.
    pub fn schema(&self) -> &DataSchema {
        &self.schema
    }

    /// Number of rows.
    pub fn num_rows(&self) -> u64 {
        self.directory.num_rows
    }

    /// File size in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.backing.bytes().len() as u64
    }

    /// The interval the segment covers.
    pub fn interval(&self) -> Interval {
        Interval {
            start: self.directory.interval_start,
            end: self.directory.interval_end,
        }
    }

    /// Number of row blocks.
    pub fn num_blocks(&self) -> usize {
        (self.directory.num_rows as usize).div_ceil(BLOCK_ROWS)
    }

    /// Rows in block `b`.
    pub fn block_rows(&self, b: usize) -> usize {
        (self.directory.num_rows as usize)
            .saturating_sub(b * BLOCK_ROWS)
            .min(BLOCK_ROWS)
    }

    /// A column's metadata by name.
    pub fn column(&self, name: &str) -> Option<&ColumnMeta> {
        self.directory.columns.iter().find(|c| c.name == name)
    }

    /// All columns.
    pub fn columns(&self) -> &[ColumnMeta] {
        &self.directory.columns
    }

    fn block_values<T: BlockValue>(
        &self,
        col: &ColumnMeta,
        role: StreamRole,
        b: usize,
    ) -> Result<Vec<T>> {
        // Asking for every row makes the decoder decode the whole block.
        self.block_values_upto(col, role, b, Need::ALL)
            .map(Values::into_vec)
    }

    /// The directory entry of block `b` of a column's `role` stream.
    fn block_meta<'c>(
        &self,
        col: &'c ColumnMeta,
        role: StreamRole,
        b: usize,
    ) -> Result<&'c crate::segment::format::BlockMeta> {
        col.stream(role)
            .ok_or_else(|| Error::invalid(format!("column `{}` has no {role:?} stream", col.name)))?
            .blocks
            .get(b)
            .ok_or_else(|| Error::invalid(format!("column `{}` has no block {b}", col.name)))
    }

    fn block_values_upto<T: BlockValue>(
        &self,
        col: &ColumnMeta,
        role: StreamRole,
        b: usize,
        need: Need,
    ) -> Result<Values<T>> {
        let block = self.block_meta(col, role, b)?;
        let what = format!("column `{}` block {b}", col.name);
        let bytes = self.checked_bytes(&block.range, &what)?;
        decode_numbers_need::<T>(
            block.codec,
            bytes,
            block.num_values as usize,
            need,
            &self.path,
            &what,
        )
    }

    /// Block `b` of a stream as a parsed frames block, to decode a frame at a time; `None` when
    /// the block has another codec (decode it with the `read_*` functions then).
    pub fn frame_block(
        &self,
        col: &ColumnMeta,
        role: StreamRole,
        b: usize,
    ) -> Result<Option<crate::column::frames::FrameBlock<'_>>> {
        let block = self.block_meta(col, role, b)?;
        if block.codec != crate::segment::format::Codec::Frames {
            return Ok(None);
        }
        let what = format!("column `{}` block {b}", col.name);
        let bytes = self.checked_bytes(&block.range, &what)?;
        crate::column::frames::FrameBlock::parse(
            bytes,
            block.num_values as usize,
            &self.path,
            &what,
        )
        .map(Some)
    }

    /// Like [`Segment::read_longs`], but only the rows `need` names are meant to be read (a
    /// prefix `0..upto`, or some frames of it): the rest may be left zero (decoding skips them).
    pub fn read_longs_upto(
        &self,
        col: &ColumnMeta,
        role: StreamRole,
        b: usize,
        need: impl Into<Need>,
    ) -> Result<Values<i64>> {
        self.block_values_upto(col, role, b, need.into())
    }

    /// Like [`Segment::read_doubles`], but only the rows `need` names are meant to be read.
    pub fn read_doubles_upto(
        &self,
        col: &ColumnMeta,
        b: usize,
        need: impl Into<Need>,
    ) -> Result<Values<f64>> {
        self.block_values_upto(col, StreamRole::Double, b, need.into())
    }

    /// Like [`Segment::read_u32s`], but only the rows `need` names are meant to be read (ids
    /// of other rows may be left zero, the null id).
    pub fn read_u32s_upto(
        &self,
        col: &ColumnMeta,
        role: StreamRole,
        b: usize,
        need: impl Into<Need>,
    ) -> Result<Values<u32>> {
        let need = need.into();
        let v: Values<u32> = self.block_values_upto(col, role, b, need)?;
        // Only the needed ids are defined (the rest may be left from another block): a quick
        // maximum over all (it vectorizes), then, if that is too large, the needed ones.
        if role == StreamRole::Ids
            && v.iter().fold(0u32, |m, &id| m.max(id)) > col.cardinality
            && let Some(bad) = v
                .iter()
                .enumerate()
                .find(|&(i, &id)| id > col.cardinality && need.contains(i))
                .map(|(_, id)| id)
        {
            return Err(self.corrupt(
                format!("column `{}` block {b} dictionary id", col.name),
                format!("at most {}", col.cardinality),
                bad,
            ));
        }
        Ok(v)
    }

    /// Decode block `b` of a long stream (`__time`, long columns, pair times with
    /// [`StreamRole::PairTime`]).
    pub fn read_longs(&self, col: &ColumnMeta, role: StreamRole, b: usize) -> Result<Vec<i64>> {
        self.block_values(col, role, b)
    }

    /// Decode block `b` of a double stream.
    pub fn read_doubles(&self, col: &ColumnMeta, b: usize) -> Result<Vec<f64>> {
        self.block_values(col, StreamRole::Double, b)
    }

    /// Decode block `b` of a u32 stream (dictionary ids or multi-value lengths), checking that
    /// ids do not exceed the dictionary.
    pub fn read_u32s(&self, col: &ColumnMeta, role: StreamRole, b: usize) -> Result<Vec<u32>> {
        let v: Vec<u32> = self.block_values(col, role, b)?;
        if role == StreamRole::Ids
            && let Some(bad) = v.iter().find(|&&id| id > col.cardinality)
        {
            return Err(self.corrupt(
                format!("column `{}` block {b} dictionary id", col.name),
                format!("at most {}", col.cardinality),
                bad,
            ));
        }
        Ok(v)
    }

    /// Decode block `b` of a blob stream (sketch columns).
    pub fn read_blobs(&self, col: &ColumnMeta, b: usize) -> Result<Vec<Vec<u8>>> {
        let stream = col
            .stream(StreamRole::Blob)
            .ok_or_else(|| Error::invalid(format!("column `{}` has no blob stream", col.name)))?;
        let block = stream
            .blocks
            .get(b)
            .ok_or_else(|| Error::invalid(format!("column `{}` has no block {b}", col.name)))?;
        let what = format!("column `{}` block {b}", col.name);
        let bytes = self.checked_bytes(&block.range, &what)?;
        decode_blobs(
            block.codec,
            bytes,
            block.num_values as usize,
            &self.path,
            &what,
        )
    }

    /// The dictionary of a string column.
    pub fn dictionary(&self, col: &ColumnMeta) -> Result<DictionaryReader<'_>> {
        let part = col.part(PartRole::Dictionary).ok_or_else(|| {
            Error::invalid(format!("column `{}` is not a string column", col.name))
        })?;
        let bytes =
            self.checked_bytes(&part.range, &format!("column `{}` dictionary", col.name))?;
        let d = DictionaryReader::open(bytes, &self.path, &col.name)?;
        if d.len() != col.cardinality as usize {
            return Err(self.corrupt(
                format!("column `{}` dictionary size", col.name),
                col.cardinality,
                d.len(),
            ));
        }
        Ok(d)
    }

    /// The bitmap index of a string column (`None` if built without one).
    pub fn bitmap_index(&self, col: &ColumnMeta) -> Result<Option<BitmapIndexReader<'_>>> {
        let Some(part) = col.part(PartRole::BitmapIndex) else {
            return Ok(None);
        };
        let bytes =
            self.checked_bytes(&part.range, &format!("column `{}` bitmap index", col.name))?;
        let r = BitmapIndexReader::open(bytes, &self.path, &col.name)?;
        if r.len() != col.cardinality as usize + 1 {
            return Err(self.corrupt(
                format!("column `{}` bitmap count", col.name),
                col.cardinality as usize + 1,
                r.len(),
            ));
        }
        Ok(Some(r))
    }

    /// Rows whose value is null, for numeric and pair columns (empty if none).
    pub fn null_bitmap(&self, col: &ColumnMeta) -> Result<RoaringBitmap> {
        match col.part(PartRole::NullBitmap) {
            None => Ok(RoaringBitmap::new()),
            Some(p) => {
                let what = format!("column `{}` null bitmap", col.name);
                let bytes = self.checked_bytes(&p.range, &what)?;
                decode_bitmap(bytes, &self.path, &what)
            }
        }
    }

    /// The Arrow schema of [`Segment::to_record_batches`]: `__time` as a UTC millisecond
    /// timestamp, strings as Utf8 (multi-value as List<Utf8>), longs as Int64, doubles as
    /// Float64, sketches as Binary, first/last pairs as Struct{time: Int64, value}.
    pub fn arrow_schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .directory
            .columns
            .iter()
            .map(|c| {
                let dt = match c.column_type {
                    ColumnType::Long if c.kind == ColumnKind::Time => {
                        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
                    }
                    ColumnType::Long => DataType::Int64,
                    ColumnType::Double => DataType::Float64,
                    ColumnType::String => DataType::Utf8,
                    ColumnType::MultiString => {
                        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
                    }
                    ColumnType::HllSketch => DataType::Binary,
                    ColumnType::LongPair => DataType::Struct(pair_fields(DataType::Int64)),
                    ColumnType::DoublePair => DataType::Struct(pair_fields(DataType::Float64)),
                };
                Field::new(&c.name, dt, c.kind != ColumnKind::Time)
            })
            .collect();
        Arc::new(Schema::new(fields))
    }

    /// Export block `b` as an Arrow record batch.
    pub fn record_batch(&self, b: usize) -> Result<RecordBatch> {
        let schema = self.arrow_schema();
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.directory.columns.len());
        for c in &self.directory.columns {
            arrays.push(self.column_array(c, b)?);
        }
        RecordBatch::try_new(schema, arrays)
            .map_err(|e| Error::internal(format!("building a record batch: {e}")))
    }

    /// Export block `b` of one column as an Arrow array (typed as in
    /// [`Segment::arrow_schema`]), decoding only that column.
    pub fn column_array(&self, c: &ColumnMeta, b: usize) -> Result<ArrayRef> {
        let rows = self.block_rows(b);
        let base = (b * BLOCK_ROWS) as u32;
        {
            let array: ArrayRef = match c.column_type {
                ColumnType::Long if c.kind == ColumnKind::Time => {
                    let v = self.read_longs(c, StreamRole::Long, b)?;
                    Arc::new(TimestampMillisecondArray::from(v).with_timezone("UTC"))
                }
                ColumnType::Long => {
                    let v = self.read_longs(c, StreamRole::Long, b)?;
                    let nulls = self.null_bitmap(c)?;
                    let mut builder = Int64Builder::with_capacity(rows);
                    for (i, x) in v.into_iter().enumerate() {
                        builder.append_option((!nulls.contains(base + i as u32)).then_some(x));
                    }
                    Arc::new(builder.finish())
                }
                ColumnType::Double => {
                    let v = self.read_doubles(c, b)?;
                    let nulls = self.null_bitmap(c)?;
                    let mut builder = Float64Builder::with_capacity(rows);
                    for (i, x) in v.into_iter().enumerate() {
                        builder.append_option((!nulls.contains(base + i as u32)).then_some(x));
                    }
                    Arc::new(builder.finish())
                }
                ColumnType::String => {
                    let ids = self.read_u32s(c, StreamRole::Ids, b)?;
                    let dict = self.dictionary(c)?;
                    let mut builder = StringBuilder::with_capacity(rows, rows * 8);
                    for id in ids {
                        if id == 0 {
                            builder.append_null();
                        } else {
                            builder.append_value(self.dict_value(&dict, c, id)?);
                        }
                    }
                    Arc::new(builder.finish())
                }
                ColumnType::MultiString => {
                    let lengths = self.read_u32s(c, StreamRole::Lengths, b)?;
                    let ids = self.read_u32s(c, StreamRole::Ids, b)?;
                    let total: u64 = lengths.iter().map(|&l| l as u64).sum();
                    if total != ids.len() as u64 {
                        return Err(self.corrupt(
                            format!("column `{}` block {b} value count", c.name),
                            total,
                            ids.len(),
                        ));
                    }
                    let dict = self.dictionary(c)?;
                    let mut builder = ListBuilder::new(StringBuilder::new());
                    let mut pos = 0usize;
                    for l in lengths {
                        if l == 0 {
                            builder.append_null();
                            continue;
                        }
                        for &id in &ids[pos..pos + l as usize] {
                            builder
                                .values()
                                .append_value(self.dict_value(&dict, c, id)?);
                        }
                        pos += l as usize;
                        builder.append(true);
                    }
                    Arc::new(builder.finish())
                }
                ColumnType::HllSketch => {
                    let blobs = self.read_blobs(c, b)?;
                    let mut builder = BinaryBuilder::new();
                    for blob in blobs {
                        if blob.is_empty() {
                            builder.append_null();
                        } else {
                            builder.append_value(&blob);
                        }
                    }
                    Arc::new(builder.finish())
                }
                ColumnType::LongPair | ColumnType::DoublePair => {
                    let times = self.read_longs(c, StreamRole::PairTime, b)?;
                    let nulls = self.null_bitmap(c)?;
                    let validity: Vec<bool> = (0..rows)
                        .map(|i| !nulls.contains(base + i as u32))
                        .collect();
                    let (value_type, values): (DataType, ArrayRef) =
                        if c.column_type == ColumnType::LongPair {
                            let v = self.read_longs(c, StreamRole::Long, b)?;
                            (DataType::Int64, Arc::new(Int64Array::from(v)))
                        } else {
                            let v = self.read_doubles(c, b)?;
                            (
                                DataType::Float64,
                                Arc::new(arrow_array::Float64Array::from(v)),
                            )
                        };
                    let time_array: ArrayRef = Arc::new(Int64Array::from(times));
                    Arc::new(
                        StructArray::try_new(
                            pair_fields(value_type),
                            vec![time_array, values],
                            Some(validity.into()),
                        )
                        .map_err(|e| Error::internal(format!("building a pair column: {e}")))?,
                    )
                }
            };
            Ok(array)
        }
    }

    /// Export every row as Arrow record batches (one per block).
    pub fn to_record_batches(&self) -> Result<Vec<RecordBatch>> {
        (0..self.num_blocks())
            .map(|b| self.record_batch(b))
            .collect()
    }

    fn dict_value<'a>(
        &self,
        dict: &DictionaryReader<'a>,
        c: &ColumnMeta,
        id: u32,
    ) -> Result<&'a str> {
        (id as usize)
            .checked_sub(1)
            .and_then(|i| dict.get(i))
            .ok_or_else(|| {
                self.corrupt(
                    format!("column `{}` dictionary id {id}", c.name),
                    "the id of a UTF-8 entry",
                    "none",
                )
            })
    }
}

fn pair_fields(value: DataType) -> Fields {
    Fields::from(vec![
        Field::new("time", DataType::Int64, false),
        Field::new("value", value, false),
    ])
}

fn check_version(path: &Path, version: u32, where_: &str) -> Result<()> {
    if version > FORMAT_VERSION {
        return Err(Error::Incompatible {
            path: path.to_path_buf(),
            reason: format!(
                "{where_} says format version {version}, newer than this build reads ({OLDEST_SUPPORTED_FORMAT_VERSION}..={FORMAT_VERSION}); upgrade Basalt"
            ),
        });
    }
    if version < OLDEST_SUPPORTED_FORMAT_VERSION {
        return Err(Error::Incompatible {
            path: path.to_path_buf(),
            reason: format!(
                "{where_} says format version {version}, older than this build reads ({OLDEST_SUPPORTED_FORMAT_VERSION}..={FORMAT_VERSION})"
            ),
        });
    }
    Ok(())
}
