//! Column blocks: encoding and decoding of the values of one block of a stream.
//!
//! Numbers (`__time`, long and double columns, dictionary ids, multi-value lengths) are stored
//! with pcodec, which finds deltas, common multiples and narrow ranges on its own and beats zstd
//! on numeric data at a fraction of its cost; it falls back to plain bytes if pco declines.
//! Byte strings (sketches) are length-prefixed and zstd-compressed.
//!
//! Decoders are only handed bytes whose checksum has already been checked, and still check that
//! they produce exactly the number of values the directory promised.

pub mod frames;

use std::path::Path;

use crate::error::{Error, Result};
use crate::segment::format::Codec;

/// The writer keeps a block in the frames codec (fast to decode, decodable frame by frame)
/// instead of pco when it is at most this many times pco's size. Measured on the TSBS cpu data
/// (hourly segments sorted by host, 64Ki-value blocks): gauges random-walking by a few units per
/// row take ~1.6x pco's bytes, sorted dictionary ids and `__time` well under 2x of a tiny size;
/// see docs/benchmarks.md "Frames codec".
pub const FRAMES_MAX_SIZE_RATIO: f64 = 2.0;
/// ... or when it is larger by at most one byte per this many values (a quarter bit per value:
/// sorted `__time` and dictionary ids, which pco squeezes to almost nothing and frames to ~1 byte
/// per 128 values, still decode fast).
pub const FRAMES_EXTRA_BYTE_PER_VALUES: usize = 32;

/// pco compression level: pco's default, 8. Measured on the TSBS cpu data (one hour, 64Ki-value
/// blocks, as the writer encodes them), level 8 against level 4: the `usage_*` fields 0.276 vs
/// 0.340 bytes/value, dictionary ids 0.0046 vs 0.0100, `__time` 0.0046 vs 0.0068, for 3-7%
/// more encoding time and the same decoding time. Levels below 4 lose much more ratio (level 2:
/// 0.57 bytes/value on the fields) than they save time (10-20%).
pub const PCO_LEVEL: usize = 8;

/// zstd level for byte blocks.
pub const ZSTD_LEVEL: i32 = 3;

/// A value type that a numeric block can hold.
pub trait BlockValue: pco::data_types::Number + Copy + Default {
    /// Size of one value in plain encoding.
    const SIZE: usize;
    /// Append the plain little-endian encoding.
    fn put_le(&self, out: &mut Vec<u8>);
    /// Read from plain little-endian bytes (`b.len() == SIZE`).
    fn get_le(b: &[u8]) -> Self;
    /// Encode with the frames codec; `None` if the type or the values do not suit it.
    fn frames_encode(values: &[Self]) -> Option<Vec<u8>>;
    /// Decode a frames block into `out` (only the frames set in `mask`, if given; the others
    /// are left as they were).
    fn frames_decode(
        bytes: &[u8],
        out: &mut [Self],
        mask: Option<&[u64]>,
        path: &Path,
        what: &str,
    ) -> Result<()>;
    /// Run `f` on this thread's pool of spare buffers (`None` while the thread is exiting or the
    /// pool is in use).
    fn with_pool<R>(f: impl FnOnce(&mut Vec<Vec<Self>>) -> R) -> Option<R>;
}

/// Spare buffers kept per thread and value type: enough for the columns one block of a wide
/// scan decodes at once.
const POOL_BUFFERS: usize = 24;
/// Buffers smaller than this are not worth keeping.
const POOL_MIN_CAPACITY: usize = 4096;

/// Decoded values of one block. Dereferences to a slice; when dropped, the buffer goes back to
/// a small per-thread pool that the next decode of the same type reuses. (A block's 64 Ki values
/// are 256-512 KiB: allocated fresh for every block, they faulted in and zeroed new pages, some
/// 15 % of a grouping query's time.)
pub struct Values<T: BlockValue> {
    v: Vec<T>,
}

impl<T: BlockValue> Values<T> {
    /// A buffer of `n` values from the pool (or new). Its contents are unspecified: the caller
    /// overwrites every value.
    fn buffer(n: usize) -> Values<T> {
        let mut v = T::with_pool(|p| p.pop()).flatten().unwrap_or_default();
        if v.len() != n {
            v.clear();
            v.resize(n, T::default());
        }
        Values { v }
    }

    /// The values as an owned vector (taken out of the pool's reach).
    pub fn into_vec(mut self) -> Vec<T> {
        std::mem::take(&mut self.v)
    }
}

impl<T: BlockValue> From<Vec<T>> for Values<T> {
    fn from(v: Vec<T>) -> Values<T> {
        Values { v }
    }
}

impl<T: BlockValue> std::ops::Deref for Values<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.v
    }
}

impl<T: BlockValue> std::ops::DerefMut for Values<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.v
    }
}

impl<T: BlockValue + std::fmt::Debug> std::fmt::Debug for Values<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.v.iter()).finish()
    }
}

impl<T: BlockValue> Drop for Values<T> {
    fn drop(&mut self) {
        if self.v.capacity() < POOL_MIN_CAPACITY {
            return;
        }
        let v = std::mem::take(&mut self.v);
        T::with_pool(|p| {
            if p.len() < POOL_BUFFERS {
                p.push(v);
            }
        });
    }
}

macro_rules! block_value {
    ($t:ty, $n:expr, $enc:expr, $dec:expr) => {
        impl BlockValue for $t {
            const SIZE: usize = $n;
            fn put_le(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn get_le(b: &[u8]) -> Self {
                let mut a = [0u8; $n];
                a.copy_from_slice(b);
                <$t>::from_le_bytes(a)
            }
            fn frames_encode(values: &[Self]) -> Option<Vec<u8>> {
                $enc(values)
            }
            fn frames_decode(
                bytes: &[u8],
                out: &mut [Self],
                mask: Option<&[u64]>,
                path: &Path,
                what: &str,
            ) -> Result<()> {
                $dec(bytes, out, mask, path, what)
            }
            fn with_pool<R>(f: impl FnOnce(&mut Vec<Vec<Self>>) -> R) -> Option<R> {
                thread_local! {
                    static POOL: std::cell::RefCell<Vec<Vec<$t>>> =
                        const { std::cell::RefCell::new(Vec::new()) };
                }
                POOL.try_with(|p| p.try_borrow_mut().ok().map(|mut p| f(&mut p)))
                    .ok()
                    .flatten()
            }
        }
    };
}
block_value!(i64, 8, frames::encode, frames::decode_into);
block_value!(
    u32,
    4,
    |v: &[u32]| frames::encode(&v.iter().map(|&x| i64::from(x)).collect::<Vec<_>>()),
    frames::decode_into
);
block_value!(
    f64,
    8,
    |_: &[f64]| None,
    |_: &[u8], _: &mut [f64], _: Option<&[u64]>, path: &Path, what: &str| Err(Error::corruption(
        path,
        format!("{what} codec"),
        "pco, plain or zstd for a double stream",
        "frames"
    ))
);

/// How blocks are compressed when a segment is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// pco for numbers, zstd for byte strings: segments that are kept.
    #[default]
    Full,
    /// Plain little-endian bytes: short-lived files (realtime pieces), where encoding and
    /// decoding time matter and size does not.
    None,
}

/// Encode a block of numbers; returns the codec used and the bytes.
pub fn encode_numbers<T: BlockValue>(values: &[T]) -> (Codec, Vec<u8>) {
    encode_numbers_with(values, Compression::Full)
}

/// Encode a block of numbers as `compression` says; returns the codec used and the bytes.
pub fn encode_numbers_with<T: BlockValue>(
    values: &[T],
    compression: Compression,
) -> (Codec, Vec<u8>) {
    if values.is_empty() {
        return (Codec::Plain, Vec::new());
    }
    if compression == Compression::None {
        return (Codec::Plain, plain_numbers(values));
    }
    let config = pco::ChunkConfig::default().with_compression_level(PCO_LEVEL);
    let pco = pco::standalone::simple_compress(values, &config)
        .ok()
        .filter(|b| b.len() < values.len() * T::SIZE);
    let frames = T::frames_encode(values).filter(|f| f.len() < values.len() * T::SIZE);
    match (pco, frames) {
        (Some(p), Some(f))
            if (f.len() as f64) <= FRAMES_MAX_SIZE_RATIO * p.len() as f64
                || f.len() <= p.len() + 64 + values.len() / FRAMES_EXTRA_BYTE_PER_VALUES =>
        {
            (Codec::Frames, f)
        }
        (Some(p), _) => (Codec::Pco, p),
        (None, Some(f)) => (Codec::Frames, f),
        (None, None) => (Codec::Plain, plain_numbers(values)),
    }
}

fn plain_numbers<T: BlockValue>(values: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * T::SIZE);
    for v in values {
        v.put_le(&mut out);
    }
    out
}

/// Which values of a block a reader needs: those before `upto`, and if a frame mask is given,
/// only those in the frames it sets (frame `f` = values `128 f .. 128 (f + 1)`, bit `f % 64` of
/// word `f / 64`). Values not needed are unspecified (zero, or left from an earlier block in a
/// reused buffer) and must not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Need {
    /// One past the last needed value.
    pub upto: usize,
    mask: Option<[u64; NEED_WORDS]>,
}

/// Words of a [`Need`] mask: enough frames for a whole block.
const NEED_WORDS: usize = crate::segment::format::BLOCK_ROWS / frames::FRAME / 64;

impl Need {
    /// Every value.
    pub const ALL: Need = Need {
        upto: usize::MAX,
        mask: None,
    };

    /// The values `0..upto`.
    pub fn prefix(upto: usize) -> Need {
        Need { upto, mask: None }
    }

    /// The values at the given block-relative positions (ascending).
    pub fn positions(positions: impl IntoIterator<Item = usize>) -> Need {
        let mut mask = [0u64; NEED_WORDS];
        let mut upto = 0usize;
        let mut last_frame = usize::MAX;
        for p in positions {
            let f = p / frames::FRAME;
            if f != last_frame {
                last_frame = f;
                if let Some(w) = mask.get_mut(f / 64) {
                    *w |= 1 << (f % 64);
                } else {
                    // Past a whole block: only a prefix can describe it.
                    return Need::prefix(usize::MAX);
                }
            }
            upto = p + 1;
        }
        Need {
            upto,
            mask: Some(mask),
        }
    }

    /// The frame mask, if only some frames are needed.
    pub fn mask(&self) -> Option<&[u64]> {
        self.mask.as_ref().map(|m| &m[..])
    }

    /// The values in the given block-relative half-open ranges (ascending, disjoint).
    pub fn ranges(ranges: &[(u32, u32)]) -> Need {
        let mut mask = [0u64; NEED_WORDS];
        let mut upto = 0usize;
        for &(start, end) in ranges {
            if end <= start {
                continue;
            }
            let (first, last) = (
                start as usize / frames::FRAME,
                (end as usize - 1) / frames::FRAME,
            );
            if last / 64 >= NEED_WORDS {
                // Past a whole block: only a prefix can describe it.
                return Need::prefix(usize::MAX);
            }
            for f in first..=last {
                mask[f / 64] |= 1 << (f % 64);
            }
            upto = end as usize;
        }
        Need {
            upto,
            mask: Some(mask),
        }
    }

    /// Whether value `i` is needed.
    pub fn contains(&self, i: usize) -> bool {
        i < self.upto
            && self.mask.is_none_or(|m| {
                let f = i / frames::FRAME;
                m.get(f / 64).is_some_and(|w| w & (1 << (f % 64)) != 0)
            })
    }
}

impl From<usize> for Need {
    fn from(upto: usize) -> Need {
        Need::prefix(upto)
    }
}

/// Decode the values of a block of `n` numbers that `need` asks for (see [`Need`]): frames
/// blocks decode only the needed frames, pco blocks the prefix up to `need.upto`, others all.
pub fn decode_numbers_need<T: BlockValue>(
    codec: Codec,
    bytes: &[u8],
    n: usize,
    need: Need,
    path: &Path,
    what: &str,
) -> Result<Values<T>> {
    if codec == Codec::Frames {
        frames::plausible(bytes.len(), n, path, what)?;
        let mut out = Values::buffer(n);
        let mask = need.mask();
        if need.upto >= n && mask.is_none() {
            T::frames_decode(bytes, &mut out, None, path, what)?;
        } else {
            let mut prefix = [0u64; NEED_WORDS];
            let mask = match mask {
                Some(m) => m,
                None => {
                    let frames = need.upto.min(n).div_ceil(frames::FRAME);
                    if frames > NEED_WORDS * 64 {
                        T::frames_decode(bytes, &mut out, None, path, what)?;
                        return Ok(out);
                    }
                    for f in 0..frames {
                        prefix[f / 64] |= 1 << (f % 64);
                    }
                    &prefix[..]
                }
            };
            T::frames_decode(bytes, &mut out, Some(mask), path, what)?;
        }
        return Ok(out);
    }
    decode_numbers_prefix(codec, bytes, n, need.upto, path, what).map(Values::from)
}

/// Decode only the first `upto` values of a block of `n` numbers (pco decodes in order, so a
/// prefix costs less than the whole block). The result still has `n` values: the ones past the
/// decoded prefix (at least `upto`, rounded up to pco's batches of 256) are zero and must not
/// be read. Other codecs decode the whole block.
pub fn decode_numbers_prefix<T: BlockValue>(
    codec: Codec,
    bytes: &[u8],
    n: usize,
    upto: usize,
    path: &Path,
    what: &str,
) -> Result<Vec<T>> {
    if codec != Codec::Pco || upto.saturating_add(PCO_BATCH) >= n {
        return decode_numbers(codec, bytes, n, path, what);
    }
    let corrupt = |e: pco::errors::PcoError| {
        Error::corruption(path, format!("{what} pco block"), "a valid pco chunk", e)
    };
    let (fd, rest) = pco::standalone::FileDecompressor::new(bytes).map_err(corrupt)?;
    let mut cd = match fd.chunk_decompressor::<T, &[u8]>(rest).map_err(corrupt)? {
        pco::standalone::DecompressorItem::Chunk(cd) => cd,
        pco::standalone::DecompressorItem::EndOfData(_) => {
            return Err(Error::corruption(
                path,
                format!("{what} pco block"),
                "a chunk",
                "end of data",
            ));
        }
    };
    if cd.n() != n {
        return Err(Error::corruption(
            path,
            format!("{what} block value count"),
            n,
            cd.n(),
        ));
    }
    let want = upto.div_ceil(PCO_BATCH).saturating_mul(PCO_BATCH).min(n);
    let mut out = vec![T::default(); n];
    let mut done = 0usize;
    while done < want {
        let p = cd.read(&mut out[done..want]).map_err(corrupt)?;
        if p.n_processed == 0 {
            break;
        }
        done += p.n_processed;
        if p.finished {
            break;
        }
    }
    if done < upto {
        return Err(Error::corruption(
            path,
            format!("{what} block value count"),
            upto,
            done,
        ));
    }
    Ok(out)
}

/// pco decodes in batches of this many values.
const PCO_BATCH: usize = 256;

/// Decode a block of numbers, checking that exactly `n` values come out.
pub fn decode_numbers<T: BlockValue>(
    codec: Codec,
    bytes: &[u8],
    n: usize,
    path: &Path,
    what: &str,
) -> Result<Vec<T>> {
    let values: Vec<T> = match codec {
        Codec::Plain => {
            if bytes.len() != n * T::SIZE {
                return Err(Error::corruption(
                    path,
                    format!("{what} plain block size"),
                    n * T::SIZE,
                    bytes.len(),
                ));
            }
            bytes.chunks_exact(T::SIZE).map(T::get_le).collect()
        }
        Codec::Pco => {
            if n == 0 {
                Vec::new()
            } else {
                // pco preallocates from the chunk's own (untrusted) count hint, up to 4 GiB;
                // cap it at what the directory promised.
                let corrupt = |e: pco::errors::PcoError| {
                    Error::corruption(path, format!("{what} pco block"), "a valid pco chunk", e)
                };
                let (fd, rest) = pco::standalone::FileDecompressor::new(bytes).map_err(corrupt)?;
                fd.with_max_prealloc(n.saturating_mul(T::SIZE))
                    .simple_decompress(rest)
                    .map_err(corrupt)?
            }
        }
        Codec::Zstd => {
            let plain = zstd_decode(bytes, n * T::SIZE, path, what)?;
            return decode_numbers(Codec::Plain, &plain, n, path, what);
        }
        Codec::Frames => {
            frames::plausible(bytes.len(), n, path, what)?;
            let mut out = vec![T::default(); n];
            T::frames_decode(bytes, &mut out, None, path, what)?;
            out
        }
    };
    if values.len() != n {
        return Err(Error::corruption(
            path,
            format!("{what} block value count"),
            n,
            values.len(),
        ));
    }
    Ok(values)
}

/// Encode a block of byte strings (length-prefixed, zstd).
pub fn encode_blobs<B: AsRef<[u8]>>(items: &[B]) -> Result<(Codec, Vec<u8>)> {
    encode_blobs_with(items, Compression::Full)
}

/// Encode a block of byte strings as `compression` says (plain: the length-prefixed bytes).
pub fn encode_blobs_with<B: AsRef<[u8]>>(
    items: &[B],
    compression: Compression,
) -> Result<(Codec, Vec<u8>)> {
    let total: usize = items.iter().map(|b| b.as_ref().len() + 4).sum();
    let mut plain = Vec::with_capacity(total);
    for b in items {
        let b = b.as_ref();
        let len = u32::try_from(b.len())
            .map_err(|_| Error::invalid(format!("value of {} bytes is too large", b.len())))?;
        plain.extend_from_slice(&len.to_le_bytes());
        plain.extend_from_slice(b);
    }
    if compression == Compression::None {
        return Ok((Codec::Plain, plain));
    }
    let bytes = zstd::bulk::compress(&plain, ZSTD_LEVEL)
        .map_err(|e| Error::internal(format!("zstd compression failed: {e}")))?;
    let mut out = Vec::with_capacity(bytes.len() + 8);
    out.extend_from_slice(&(plain.len() as u64).to_le_bytes());
    out.extend_from_slice(&bytes);
    Ok((Codec::Zstd, out))
}

/// Decode a block of byte strings, checking that exactly `n` come out.
pub fn decode_blobs(
    codec: Codec,
    bytes: &[u8],
    n: usize,
    path: &Path,
    what: &str,
) -> Result<Vec<Vec<u8>>> {
    let plain = match codec {
        Codec::Zstd => {
            if bytes.len() < 8 {
                return Err(Error::corruption(
                    path,
                    format!("{what} blob block header"),
                    "8 bytes",
                    bytes.len(),
                ));
            }
            let mut len = [0u8; 8];
            len.copy_from_slice(&bytes[..8]);
            let len = u64::from_le_bytes(len);
            // A block never holds more than BLOCK_ROWS sketches of a few KiB each.
            const MAX_BLOB_BLOCK: u64 = 1 << 32;
            if len > MAX_BLOB_BLOCK {
                return Err(Error::corruption(
                    path,
                    format!("{what} blob block size"),
                    format!("at most {MAX_BLOB_BLOCK}"),
                    len,
                ));
            }
            zstd_decode(&bytes[8..], len as usize, path, what)?
        }
        Codec::Plain => bytes.to_vec(),
        Codec::Pco | Codec::Frames => {
            return Err(Error::corruption(
                path,
                format!("{what} blob block codec"),
                "zstd or plain",
                codec.name(),
            ));
        }
    };
    let mut out = Vec::with_capacity(n);
    let mut pos = 0usize;
    while pos < plain.len() {
        if plain.len() - pos < 4 {
            return Err(Error::corruption(
                path,
                format!("{what} blob length"),
                "4 bytes",
                plain.len() - pos,
            ));
        }
        let mut l = [0u8; 4];
        l.copy_from_slice(&plain[pos..pos + 4]);
        let l = u32::from_le_bytes(l) as usize;
        pos += 4;
        if plain.len() - pos < l {
            return Err(Error::corruption(
                path,
                format!("{what} blob bytes"),
                l,
                plain.len() - pos,
            ));
        }
        out.push(plain[pos..pos + l].to_vec());
        pos += l;
    }
    if out.len() != n {
        return Err(Error::corruption(
            path,
            format!("{what} blob count"),
            n,
            out.len(),
        ));
    }
    Ok(out)
}

fn zstd_decode(bytes: &[u8], expected_len: usize, path: &Path, what: &str) -> Result<Vec<u8>> {
    let out = zstd::bulk::decompress(bytes, expected_len).map_err(|e| {
        Error::corruption(path, format!("{what} zstd block"), "a valid zstd frame", e)
    })?;
    if out.len() != expected_len {
        return Err(Error::corruption(
            path,
            format!("{what} zstd block size"),
            expected_len,
            out.len(),
        ));
    }
    Ok(out)
}

/// Order-preserving map of an f64 to u64 (total order, -0.0 < 0.0, NaN last); used for block
/// min/max of double columns so they compare as integers.
pub fn f64_to_ordered(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 { !b } else { b | (1 << 63) }
}

/// Inverse of [`f64_to_ordered`].
pub fn ordered_to_f64(o: u64) -> f64 {
    let b = if o >> 63 == 1 { o & !(1 << 63) } else { !o };
    f64::from_bits(b)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn prefix_decoding_matches_full_decoding() {
        let p = Path::new("t");
        // A random walk over one block, as the writer encodes it.
        let mut x = 50i64;
        let v: Vec<i64> = (0..65_536u64)
            .map(|i| {
                x += (i.wrapping_mul(2_654_435_761) % 7) as i64 - 3;
                x
            })
            .collect();
        let config = pco::ChunkConfig::default().with_compression_level(PCO_LEVEL);
        let (c, b) = (
            Codec::Pco,
            pco::standalone::simple_compress(&v, &config).unwrap(),
        );
        for upto in [0, 1, 255, 256, 257, 1000, 30_000, 65_000, 65_536, 70_000] {
            let got = decode_numbers_prefix::<i64>(c, &b, v.len(), upto, p, "x").unwrap();
            assert_eq!(got.len(), v.len(), "upto {upto}");
            let k = upto.min(v.len());
            assert_eq!(got[..k], v[..k], "upto {upto}");
        }
        // A wrong value count is corruption, not a short or long answer.
        assert!(decode_numbers_prefix::<i64>(c, &b, v.len() + 1, 10, p, "x").is_err());
        assert!(
            decode_numbers_prefix::<i64>(c, &b[..b.len() / 2], v.len(), 60_000, p, "x").is_err()
        );
        let ids: Vec<u32> = (0..65_536u32).map(|i| i / 360).collect();
        let b = pco::standalone::simple_compress(&ids, &config).unwrap();
        let got = decode_numbers_prefix::<u32>(Codec::Pco, &b, ids.len(), 4_000, p, "x").unwrap();
        assert_eq!(got[..4_000], ids[..4_000]);
    }

    /// Every codec gives the needed values, whatever the need: all, a prefix or some rows.
    #[test]
    fn needed_values_decode_for_every_codec() {
        let p = Path::new("t");
        let mut x = 50i64;
        let walk: Vec<i64> = (0..65_536u64)
            .map(|i| {
                x = (x + (i.wrapping_mul(2_654_435_761) % 7) as i64 - 3).clamp(0, 100);
                x
            })
            .collect();
        let ids: Vec<u32> = (0..65_536u32).map(|i| i / 360).collect();
        let config = pco::ChunkConfig::default().with_compression_level(PCO_LEVEL);
        let needs = [
            Need::ALL,
            Need::prefix(0),
            Need::prefix(1),
            Need::prefix(129),
            Need::prefix(40_000),
            Need::positions([3, 500, 501, 9_000, 65_535]),
            Need::positions((20_000..20_300).step_by(7)),
            Need::positions(std::iter::empty()),
        ];
        fn wanted(need: &Need, n: usize) -> Vec<usize> {
            match need.mask() {
                None => (0..need.upto.min(n)).collect(),
                Some(m) => (0..need.upto.min(n))
                    .filter(|i| m[i / 8192] & (1 << ((i / 128) % 64)) != 0)
                    .collect(),
            }
        }
        let (fc, fb) = encode_numbers(&walk);
        assert_eq!(fc, Codec::Frames, "a narrow random walk packs in frames");
        let longs = [
            (fc, fb),
            (
                Codec::Pco,
                pco::standalone::simple_compress(&walk, &config).unwrap(),
            ),
            (Codec::Plain, plain_numbers(&walk)),
        ];
        for (c, b) in &longs {
            for need in &needs {
                let got = decode_numbers_need::<i64>(*c, b, walk.len(), *need, p, "x").unwrap();
                assert_eq!(got.len(), walk.len());
                for i in wanted(need, walk.len()) {
                    assert_eq!(got[i], walk[i], "{c:?} {need:?} row {i}");
                }
            }
        }
        let (ic, ib) = encode_numbers(&ids);
        assert_eq!(ic, Codec::Frames, "sorted ids pack in frames");
        assert!(ib.len() < 4_000, "{} bytes", ib.len());
        for need in &needs {
            let got = decode_numbers_need::<u32>(ic, &ib, ids.len(), *need, p, "x").unwrap();
            for i in wanted(need, ids.len()) {
                assert_eq!(got[i], ids[i], "{need:?} row {i}");
            }
        }
        // Doubles never take the frames codec, and a frames block is no double block.
        let f: Vec<f64> = walk.iter().map(|&v| v as f64).collect();
        assert_ne!(encode_numbers(&f).0, Codec::Frames);
        assert!(decode_numbers::<f64>(Codec::Frames, &longs[0].1, f.len(), p, "x").is_err());
    }

    #[test]
    fn numbers_round_trip() {
        let p = Path::new("t");
        let v: Vec<i64> = (0..10_000).map(|i| i * 10_000 + (i % 7)).collect();
        let (c, b) = encode_numbers(&v);
        assert_ne!(c, Codec::Plain);
        assert!(b.len() < v.len() * 2);
        assert_eq!(decode_numbers::<i64>(c, &b, v.len(), p, "x").unwrap(), v);
        let f: Vec<f64> = (0..1000).map(|i| i as f64 * 0.25 - 3.0).collect();
        let (c, b) = encode_numbers(&f);
        assert_eq!(decode_numbers::<f64>(c, &b, f.len(), p, "x").unwrap(), f);
        let e: Vec<u32> = vec![];
        let (c, b) = encode_numbers(&e);
        assert!(decode_numbers::<u32>(c, &b, 0, p, "x").unwrap().is_empty());
        assert!(decode_numbers::<u32>(c, &b, 1, p, "x").is_err());
    }

    #[test]
    fn blobs_round_trip() {
        let p = Path::new("t");
        let items = vec![b"abc".to_vec(), vec![], vec![7u8; 1000]];
        let (c, b) = encode_blobs(&items).unwrap();
        assert_eq!(decode_blobs(c, &b, 3, p, "x").unwrap(), items);
        assert!(decode_blobs(c, &b, 2, p, "x").is_err());
    }

    #[test]
    fn ordered_floats() {
        let xs = [
            f64::NEG_INFINITY,
            -2.5,
            -0.0,
            0.0,
            1e-300,
            3.0,
            f64::INFINITY,
        ];
        for w in xs.windows(2) {
            assert!(f64_to_ordered(w[0]) < f64_to_ordered(w[1]), "{w:?}");
        }
        for x in xs {
            assert_eq!(ordered_to_f64(f64_to_ordered(x)).to_bits(), x.to_bits());
        }
    }
}
