//! Byte layout of a segment file: header, footer, directory (see `docs/FORMAT.md`, normative).
//!
//! ```text
//! SEGMENT   := HEADER DATA* DIRECTORY FOOTER
//! HEADER    := SEGMENT_MAGIC(8) format_version:u32 flags:u32                    (HEADER_SIZE = 16)
//! FOOTER    := directory_offset:u64 directory_len:u64 directory_crc32c:u32
//!              format_version:u32 SEGMENT_MAGIC(8)                              (FOOTER_SIZE = 32)
//! ```
//! All integers are little-endian. The directory is decoded with [`ByteReader`], which checks
//! every length against the bytes that remain, so a damaged directory is an error, never a panic.

use std::path::Path;

use crate::error::{Error, Result};

/// Magic bytes at the head and the tail of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"BSLTSEG\x01";
/// Current format version written by this build.
///
/// - 1: first format (dictionary-encoded strings with roaring indexes, pco/zstd blocks).
/// - 2: codec 3, frames (bit-packed integer frames), for long, id, length and pair-time blocks.
pub const FORMAT_VERSION: u32 = 2;
/// Oldest format version this build can read.
pub const OLDEST_SUPPORTED_FORMAT_VERSION: u32 = 1;
/// Version of the directory structure written by this build.
///
/// - 1: first directory layout.
pub const DIRECTORY_VERSION: u32 = 1;

/// Size of the header: magic, format version, flags.
pub const HEADER_SIZE: usize = SEGMENT_MAGIC.len() + 4 + 4;
/// Offset of the format version in the header.
pub const HEADER_VERSION_OFFSET: usize = SEGMENT_MAGIC.len();
/// Offset of the flags in the header (version 1 defines none: readers reject non-zero flags).
pub const HEADER_FLAGS_OFFSET: usize = HEADER_VERSION_OFFSET + 4;
/// Size of the footer: directory offset and length, directory checksum, version, magic.
pub const FOOTER_SIZE: usize = 8 + 8 + 4 + 4 + SEGMENT_MAGIC.len();
/// Offset of the format version inside the footer.
pub const FOOTER_VERSION_OFFSET: usize = 8 + 8 + 4;
/// Offset of the magic inside the footer.
pub const FOOTER_MAGIC_OFFSET: usize = FOOTER_VERSION_OFFSET + 4;

/// Rows per block in every row-aligned stream.
pub const BLOCK_ROWS: usize = 65_536;

/// Codec of one block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Codec {
    /// Values stored as plain little-endian bytes.
    Plain = 0,
    /// Pcodec (numeric) standalone chunk.
    Pco = 1,
    /// Zstandard frame of the plain bytes.
    Zstd = 2,
    /// Integers bit-packed in frames of 128 (format version 2; `crate::column::frames`).
    Frames = 3,
}

impl Codec {
    /// Decode a codec byte.
    pub fn from_u8(b: u8) -> Option<Codec> {
        match b {
            0 => Some(Codec::Plain),
            1 => Some(Codec::Pco),
            2 => Some(Codec::Zstd),
            3 => Some(Codec::Frames),
            _ => None,
        }
    }

    /// Human name (inspect output).
    pub fn name(&self) -> &'static str {
        match self {
            Codec::Plain => "plain",
            Codec::Pco => "pco",
            Codec::Zstd => "zstd",
            Codec::Frames => "frames",
        }
    }
}

/// Physical type of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ColumnType {
    /// One i64 per row.
    Long = 1,
    /// One f64 per row.
    Double = 2,
    /// One dictionary id per row (0 = null).
    String = 3,
    /// A list of dictionary ids per row (empty = null).
    MultiString = 4,
    /// A serialized HLL sketch per row.
    HllSketch = 5,
    /// An (i64 time, i64 value) pair per row: long first/last.
    LongPair = 6,
    /// An (i64 time, f64 value) pair per row: double first/last.
    DoublePair = 7,
}

impl ColumnType {
    /// Decode a type byte.
    pub fn from_u8(b: u8) -> Option<ColumnType> {
        Some(match b {
            1 => ColumnType::Long,
            2 => ColumnType::Double,
            3 => ColumnType::String,
            4 => ColumnType::MultiString,
            5 => ColumnType::HllSketch,
            6 => ColumnType::LongPair,
            7 => ColumnType::DoublePair,
            _ => return None,
        })
    }

    /// Human name.
    pub fn name(&self) -> &'static str {
        match self {
            ColumnType::Long => "long",
            ColumnType::Double => "double",
            ColumnType::String => "string",
            ColumnType::MultiString => "string (multi-value)",
            ColumnType::HllSketch => "HLL sketch",
            ColumnType::LongPair => "long first/last",
            ColumnType::DoublePair => "double first/last",
        }
    }

    /// The streams this type has, in directory order.
    pub fn streams(&self) -> &'static [StreamRole] {
        match self {
            ColumnType::Long => &[StreamRole::Long],
            ColumnType::Double => &[StreamRole::Double],
            ColumnType::String => &[StreamRole::Ids],
            ColumnType::MultiString => &[StreamRole::Lengths, StreamRole::Ids],
            ColumnType::HllSketch => &[StreamRole::Blob],
            ColumnType::LongPair => &[StreamRole::PairTime, StreamRole::Long],
            ColumnType::DoublePair => &[StreamRole::PairTime, StreamRole::Double],
        }
    }
}

/// What a column is in the datasource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ColumnKind {
    /// `__time`.
    Time = 0,
    /// A dimension.
    Dimension = 1,
    /// A metric.
    Metric = 2,
}

impl ColumnKind {
    /// Decode a kind byte.
    pub fn from_u8(b: u8) -> Option<ColumnKind> {
        match b {
            0 => Some(ColumnKind::Time),
            1 => Some(ColumnKind::Dimension),
            2 => Some(ColumnKind::Metric),
            _ => None,
        }
    }

    /// Human name.
    pub fn name(&self) -> &'static str {
        match self {
            ColumnKind::Time => "time",
            ColumnKind::Dimension => "dimension",
            ColumnKind::Metric => "metric",
        }
    }
}

/// The role of a block stream within a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum StreamRole {
    /// i64 values, one per row.
    Long = 1,
    /// f64 values, one per row.
    Double = 2,
    /// u32 dictionary ids (one per row, or one per value for multi-value columns).
    Ids = 3,
    /// u32 number of values per row (multi-value columns).
    Lengths = 4,
    /// Length-prefixed byte strings, one per row.
    Blob = 5,
    /// i64 timestamps of first/last pairs.
    PairTime = 6,
}

impl StreamRole {
    /// Decode a role byte.
    pub fn from_u8(b: u8) -> Option<StreamRole> {
        Some(match b {
            1 => StreamRole::Long,
            2 => StreamRole::Double,
            3 => StreamRole::Ids,
            4 => StreamRole::Lengths,
            5 => StreamRole::Blob,
            6 => StreamRole::PairTime,
            _ => return None,
        })
    }
}

/// The role of a non-block part of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PartRole {
    /// Sorted string dictionary.
    Dictionary = 1,
    /// One roaring bitmap per dictionary id (the inverted index).
    BitmapIndex = 2,
    /// Roaring bitmap of the rows whose value is null (numeric columns).
    NullBitmap = 3,
}

impl PartRole {
    /// Decode a role byte.
    pub fn from_u8(b: u8) -> Option<PartRole> {
        Some(match b {
            1 => PartRole::Dictionary,
            2 => PartRole::BitmapIndex,
            3 => PartRole::NullBitmap,
            _ => return None,
        })
    }

    /// Human name.
    pub fn name(&self) -> &'static str {
        match self {
            PartRole::Dictionary => "dictionary",
            PartRole::BitmapIndex => "bitmap index",
            PartRole::NullBitmap => "null bitmap",
        }
    }
}

/// A checksummed byte range of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// Offset from the start of the file.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// CRC-32C of the bytes.
    pub crc: u32,
}

/// Metadata of one compressed block of a stream.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockMeta {
    /// Where the block's bytes are.
    pub range: ByteRange,
    /// Codec of the bytes.
    pub codec: Codec,
    /// Number of values in the block.
    pub num_values: u32,
    /// Minimum of the non-null values, as raw bits (i64, f64 bits or u32 id); 0 if none.
    pub min: u64,
    /// Maximum of the non-null values, as raw bits; 0 if none.
    pub max: u64,
}

/// A stream of blocks (row-aligned: block `i` holds the values of rows
/// `[i * BLOCK_ROWS, (i + 1) * BLOCK_ROWS)`).
#[derive(Clone, Debug, PartialEq)]
pub struct StreamMeta {
    /// What the stream holds.
    pub role: StreamRole,
    /// Its blocks in row order.
    pub blocks: Vec<BlockMeta>,
}

/// A non-block part of a column (dictionary, bitmaps).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PartMeta {
    /// What the part holds.
    pub role: PartRole,
    /// Where it is.
    pub range: ByteRange,
}

/// Directory entry of one column.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnMeta {
    /// Column name.
    pub name: String,
    /// Time, dimension or metric.
    pub kind: ColumnKind,
    /// Physical type.
    pub column_type: ColumnType,
    /// Number of rows whose value is null.
    pub null_count: u64,
    /// Dictionary cardinality (string columns; 0 otherwise), not counting null.
    pub cardinality: u32,
    /// Block streams.
    pub streams: Vec<StreamMeta>,
    /// Other parts.
    pub parts: Vec<PartMeta>,
}

impl ColumnMeta {
    /// The stream with a role, if present.
    pub fn stream(&self, role: StreamRole) -> Option<&StreamMeta> {
        self.streams.iter().find(|s| s.role == role)
    }

    /// The part with a role, if present.
    pub fn part(&self, role: PartRole) -> Option<&PartMeta> {
        self.parts.iter().find(|p| p.role == role)
    }

    /// Total stored bytes of the column.
    pub fn stored_bytes(&self) -> u64 {
        let s: u64 = self
            .streams
            .iter()
            .flat_map(|s| s.blocks.iter())
            .map(|b| b.range.len)
            .sum();
        s + self.parts.iter().map(|p| p.range.len).sum::<u64>()
    }
}

/// An extension section of the directory: tagged bytes that readers which do not know the tag
/// skip. Reserved for what comes after version 1 (projections, new sketch kinds) so it can be
/// added without a format break.
#[derive(Clone, Debug, PartialEq)]
pub struct Extension {
    /// Tag identifying the extension.
    pub tag: u16,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// The decoded directory of a segment.
#[derive(Clone, Debug, PartialEq)]
pub struct Directory {
    /// Datasource name.
    pub datasource: String,
    /// Interval the segment covers.
    pub interval_start: i64,
    /// End of that interval (exclusive).
    pub interval_end: i64,
    /// Number of rows.
    pub num_rows: u64,
    /// Minimum `__time` of the rows (interval start if empty).
    pub min_time: i64,
    /// Maximum `__time` of the rows (interval start if empty).
    pub max_time: i64,
    /// The `dataSchema` JSON the segment was built with.
    pub schema_json: String,
    /// Sort order as column names (`__time` included).
    pub sort_order: Vec<String>,
    /// Whether rows were rolled up.
    pub rollup: bool,
    /// Columns: `__time` first, then dimensions, then metrics.
    pub columns: Vec<ColumnMeta>,
    /// Extension sections.
    pub extensions: Vec<Extension>,
}

/// Append-only little-endian encoder.
#[derive(Debug, Default)]
pub struct ByteWriter {
    /// The bytes written so far.
    pub buf: Vec<u8>,
}

impl ByteWriter {
    /// Write a u8.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    /// Write a u16.
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Write a u32.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Write a u64.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Write an i64.
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Write a u32 length then the bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.buf.extend_from_slice(b);
    }
    /// Write a string as length-prefixed UTF-8.
    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    /// Write a byte range.
    pub fn range(&mut self, r: &ByteRange) {
        self.u64(r.offset);
        self.u64(r.len);
        self.u32(r.crc);
    }
}

/// Bounds-checked little-endian decoder over a byte slice; every failure is a corruption error
/// naming the file and what was being read.
#[derive(Debug)]
pub struct ByteReader<'a> {
    buf: &'a [u8],
    pos: usize,
    path: &'a Path,
    what: &'static str,
}

impl<'a> ByteReader<'a> {
    /// Start reading `buf` (from `path`, for errors), describing it as `what`.
    pub fn new(buf: &'a [u8], path: &'a Path, what: &'static str) -> Self {
        ByteReader {
            buf,
            pos: 0,
            path,
            what,
        }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8]> {
        if self.remaining() < n {
            return Err(Error::corruption(
                self.path,
                format!("{} length while reading {field}", self.what),
                format!("{n} more bytes"),
                format!("{} bytes", self.remaining()),
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N]> {
        let s = self.take(N, field)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Read a u8.
    pub fn u8(&mut self, field: &str) -> Result<u8> {
        Ok(self.array::<1>(field)?[0])
    }
    /// Read a u16.
    pub fn u16(&mut self, field: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }
    /// Read a u32.
    pub fn u32(&mut self, field: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }
    /// Read a u64.
    pub fn u64(&mut self, field: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }
    /// Read an i64.
    pub fn i64(&mut self, field: &str) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array(field)?))
    }
    /// Read length-prefixed bytes.
    pub fn bytes(&mut self, field: &str) -> Result<&'a [u8]> {
        let n = self.u32(field)? as usize;
        self.take(n, field)
    }
    /// Read a length-prefixed UTF-8 string.
    pub fn str(&mut self, field: &str) -> Result<&'a str> {
        let b = self.bytes(field)?;
        std::str::from_utf8(b).map_err(|e| {
            Error::corruption(
                self.path,
                format!("{} UTF-8 of {field}", self.what),
                "valid UTF-8",
                e,
            )
        })
    }
    /// Read a byte range.
    pub fn range(&mut self, field: &str) -> Result<ByteRange> {
        Ok(ByteRange {
            offset: self.u64(field)?,
            len: self.u64(field)?,
            crc: self.u32(field)?,
        })
    }
    /// Read a count of items that each take at least `min_item_size` bytes, rejecting counts
    /// the remaining bytes cannot hold (so a corrupt count cannot cause a huge allocation).
    pub fn count(&mut self, field: &str, min_item_size: usize) -> Result<usize> {
        let n = self.u32(field)? as usize;
        if n.saturating_mul(min_item_size.max(1)) > self.remaining() {
            return Err(Error::corruption(
                self.path,
                format!("{} count of {field}", self.what),
                format!("at most {}", self.remaining() / min_item_size.max(1)),
                n,
            ));
        }
        Ok(n)
    }
}

impl Directory {
    /// Encode the directory.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = ByteWriter::default();
        w.u32(DIRECTORY_VERSION);
        w.str(&self.datasource);
        w.i64(self.interval_start);
        w.i64(self.interval_end);
        w.u64(self.num_rows);
        w.i64(self.min_time);
        w.i64(self.max_time);
        w.u8(u8::from(self.rollup));
        w.str(&self.schema_json);
        w.u32(self.sort_order.len() as u32);
        for s in &self.sort_order {
            w.str(s);
        }
        w.u32(self.columns.len() as u32);
        for c in &self.columns {
            w.str(&c.name);
            w.u8(c.kind as u8);
            w.u8(c.column_type as u8);
            w.u64(c.null_count);
            w.u32(c.cardinality);
            w.u32(c.parts.len() as u32);
            for p in &c.parts {
                w.u8(p.role as u8);
                w.range(&p.range);
            }
            w.u32(c.streams.len() as u32);
            for s in &c.streams {
                w.u8(s.role as u8);
                w.u32(s.blocks.len() as u32);
                for b in &s.blocks {
                    w.range(&b.range);
                    w.u8(b.codec as u8);
                    w.u32(b.num_values);
                    w.u64(b.min);
                    w.u64(b.max);
                }
            }
        }
        w.u32(self.extensions.len() as u32);
        for e in &self.extensions {
            w.u16(e.tag);
            w.bytes(&e.bytes);
        }
        w.buf
    }

    /// Decode a directory; `path` names the file in errors.
    pub fn decode(buf: &[u8], path: &Path) -> Result<Directory> {
        let mut r = ByteReader::new(buf, path, "directory");
        let version = r.u32("directory version")?;
        if version > DIRECTORY_VERSION || version == 0 {
            return Err(Error::Incompatible {
                path: path.to_path_buf(),
                reason: format!(
                    "directory version {version} is not supported (this build reads 1..={DIRECTORY_VERSION})"
                ),
            });
        }
        let datasource = r.str("datasource")?.to_string();
        let interval_start = r.i64("interval start")?;
        let interval_end = r.i64("interval end")?;
        let num_rows = r.u64("row count")?;
        let min_time = r.i64("min time")?;
        let max_time = r.i64("max time")?;
        let rollup = r.u8("rollup flag")? != 0;
        let schema_json = r.str("schema")?.to_string();
        let n = r.count("sort order", 4)?;
        let mut sort_order = Vec::with_capacity(n);
        for _ in 0..n {
            sort_order.push(r.str("sort order entry")?.to_string());
        }
        let n = r.count("columns", 30)?;
        let mut columns = Vec::with_capacity(n);
        for _ in 0..n {
            let name = r.str("column name")?.to_string();
            let kind_b = r.u8("column kind")?;
            let kind = ColumnKind::from_u8(kind_b).ok_or_else(|| {
                Error::corruption(path, format!("kind of column `{name}`"), "0..=2", kind_b)
            })?;
            let type_b = r.u8("column type")?;
            let column_type = ColumnType::from_u8(type_b).ok_or_else(|| {
                Error::corruption(path, format!("type of column `{name}`"), "1..=7", type_b)
            })?;
            let null_count = r.u64("null count")?;
            let cardinality = r.u32("cardinality")?;
            let np = r.count("parts", 21)?;
            let mut parts = Vec::with_capacity(np);
            for _ in 0..np {
                let rb = r.u8("part role")?;
                let role = PartRole::from_u8(rb).ok_or_else(|| {
                    Error::corruption(path, format!("part role in column `{name}`"), "1..=3", rb)
                })?;
                parts.push(PartMeta {
                    role,
                    range: r.range("part range")?,
                });
            }
            let ns = r.count("streams", 5)?;
            let mut streams = Vec::with_capacity(ns);
            for _ in 0..ns {
                let rb = r.u8("stream role")?;
                let role = StreamRole::from_u8(rb).ok_or_else(|| {
                    Error::corruption(path, format!("stream role in column `{name}`"), "1..=6", rb)
                })?;
                let nb = r.count("blocks", 41)?;
                let mut blocks = Vec::with_capacity(nb);
                for _ in 0..nb {
                    let range = r.range("block range")?;
                    let cb = r.u8("block codec")?;
                    let codec = Codec::from_u8(cb).ok_or_else(|| {
                        Error::corruption(
                            path,
                            format!("block codec in column `{name}`"),
                            "0..=3",
                            cb,
                        )
                    })?;
                    blocks.push(BlockMeta {
                        range,
                        codec,
                        num_values: r.u32("block value count")?,
                        min: r.u64("block min")?,
                        max: r.u64("block max")?,
                    });
                }
                streams.push(StreamMeta { role, blocks });
            }
            columns.push(ColumnMeta {
                name,
                kind,
                column_type,
                null_count,
                cardinality,
                streams,
                parts,
            });
        }
        let ne = r.count("extensions", 6)?;
        let mut extensions = Vec::with_capacity(ne);
        for _ in 0..ne {
            let tag = r.u16("extension tag")?;
            extensions.push(Extension {
                tag,
                bytes: r.bytes("extension bytes")?.to_vec(),
            });
        }
        if r.remaining() != 0 {
            return Err(Error::corruption(
                path,
                "directory trailing bytes",
                0,
                r.remaining(),
            ));
        }
        Ok(Directory {
            datasource,
            interval_start,
            interval_end,
            num_rows,
            min_time,
            max_time,
            schema_json,
            sort_order,
            rollup,
            columns,
            extensions,
        })
    }
}

/// Encode the fixed-size header.
pub fn encode_header() -> [u8; HEADER_SIZE] {
    let mut h = [0u8; HEADER_SIZE];
    h[..SEGMENT_MAGIC.len()].copy_from_slice(&SEGMENT_MAGIC);
    h[HEADER_VERSION_OFFSET..HEADER_VERSION_OFFSET + 4]
        .copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h
}

/// Encode the fixed-size footer.
pub fn encode_footer(directory: &ByteRange) -> [u8; FOOTER_SIZE] {
    let mut f = [0u8; FOOTER_SIZE];
    f[0..8].copy_from_slice(&directory.offset.to_le_bytes());
    f[8..16].copy_from_slice(&directory.len.to_le_bytes());
    f[16..20].copy_from_slice(&directory.crc.to_le_bytes());
    f[FOOTER_VERSION_OFFSET..FOOTER_VERSION_OFFSET + 4]
        .copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    f[FOOTER_MAGIC_OFFSET..].copy_from_slice(&SEGMENT_MAGIC);
    f
}
