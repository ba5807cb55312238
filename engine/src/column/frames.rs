//! The frames codec (codec 3): integers bit-packed in frames of 128 values, each frame either
//! frame-of-reference (`value = base + packed`) or delta (`value = previous + dmin + packed`),
//! with a few exceptions patched in per frame.
//!
//! It exists for decoding speed: pco reaches ~190 M values/s per core, while unpacking a frame
//! is a few instructions per value, and a reader that needs only some rows of a block decodes only
//! the frames holding them (every frame starts from its own base). It suits what segments hold
//! most: dictionary ids and `__time` sorted in runs (delta width 0 with one exception where a run
//! ends) and slowly moving gauges (narrow deltas). The writer keeps it only when it is not much
//! larger than pco (see [`crate::column::FRAMES_MAX_SIZE_RATIO`]).
//!
//! Layout (normative text in `docs/FORMAT.md` §10.5):
//!
//! ```text
//! FRAMES_BLOCK := mode:u8 FRAME_HEAD[frames] PACKED[frames] pad:u8[8]
//! FRAME_HEAD   := 0x80 | width                                  -- as guessed, no exceptions
//!               | width:u8 exceptions:u8 base:zvarint [dmin:zvarint if mode = 1]
//!                 ( pos:u8 value:zvarint )[exceptions]          -- positions ascending
//! PACKED       := 16 × width bytes: 128 values of `width` bits, LSB first
//! ```
//!
//! `frames = ceil(n / 128)`; the last frame packs `n mod 128` values and zero bits after them.
//! `base` and `dmin` are stored as differences from what the heads before guess (see `Guess`;
//! a one-byte head takes the guess as it is, which covers runs and steady steps). In mode 0
//! (FOR) value `i` is `base + p[i]` and an exception sets value `pos` to `base + value`; in mode 1
//! (delta) value 0 is `base`, value `i > 0` is value `i - 1` plus `dmin + p[i]`, and an exception
//! replaces the step into value `pos` (> 0) by `value`. All arithmetic wraps in 64 bits.

use std::path::Path;

use crate::error::{Error, Result};

/// Values per frame.
pub const FRAME: usize = 128;
/// Widest packed field: every field then fits one unaligned 8-byte read.
pub const MAX_WIDTH: u8 = 56;
/// Most exceptions a frame may carry.
pub const MAX_EXCEPTIONS: usize = 16;
/// Zero bytes after the packed data, so that every 8-byte read stays inside the block.
const PAD: usize = 8;

const MODE_FOR: u8 = 0;
const MODE_DELTA: u8 = 1;

/// An integer type a frames block decodes to.
pub trait FrameValue: Copy {
    /// From the decoded 64-bit value (the writer only stores values of this type).
    fn from_i64(v: i64) -> Self;
}

impl FrameValue for i64 {
    #[inline(always)]
    fn from_i64(v: i64) -> Self {
        v
    }
}

impl FrameValue for u32 {
    #[inline(always)]
    fn from_i64(v: i64) -> Self {
        // Checksummed blocks written by this codec only hold u32 values here; a forged block
        // yields ids that the readers' dictionary bound check rejects.
        v as u32
    }
}

/// Number of frames of a block of `n` values.
pub fn frame_count(n: usize) -> usize {
    n.div_ceil(FRAME)
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut u: u64) {
    while u >= 0x80 {
        out.push((u as u8) | 0x80);
        u >>= 7;
    }
    out.push(u as u8);
}

fn varint_len(mut u: u64) -> usize {
    let mut n = 1;
    while u >= 0x80 {
        u >>= 7;
        n += 1;
    }
    n
}

fn bits(range: u64) -> u8 {
    (64 - range.leading_zeros()) as u8
}

/// Head byte flag: the frame has no exceptions and the base and `dmin` that [`Guess`] expects.
const GUESSED: u8 = 0x80;

/// What the next frame's base and `dmin` are expected to be, from the heads before it: in FOR
/// mode the same base; in delta mode the value after the previous frame's last one, one `dmin`
/// on (known without unpacking when that frame packs nothing), else `base + len × dmin`.
#[derive(Clone, Copy, Debug, Default)]
struct Guess {
    base: i64,
    dmin: i64,
}

impl Guess {
    fn next(
        self,
        mode: u8,
        width: u8,
        base: i64,
        dmin: i64,
        len: usize,
        exceptions: &[(u8, i64)],
    ) -> Guess {
        if mode == MODE_FOR {
            return Guess { base, dmin: 0 };
        }
        let base = if width == 0 {
            let regular = (len - exceptions.len()) as i64; // steps 1..len plus the one after
            exceptions.iter().fold(
                base.wrapping_add(dmin.wrapping_mul(regular)),
                |acc, &(_, v)| acc.wrapping_add(v),
            )
        } else {
            base.wrapping_add(dmin.wrapping_mul(len as i64))
        };
        Guess { base, dmin }
    }
}

/// One frame's plan: what is packed and what is patched.
struct FramePlan {
    width: u8,
    /// FOR: the frame's base; delta: the step every packed field is added to.
    offset: i64,
    /// (position, exact value) pairs: FOR offsets from the base, delta steps.
    exceptions: Vec<(u8, i64)>,
}

/// Choose width and exceptions for the fields `vals` (values or delta steps, by position): the
/// cheapest packing, trying up to [`MAX_EXCEPTIONS`] outliers taken from either end. The plan's
/// `offset` is the smallest packed field. `None` when no plan fits [`MAX_WIDTH`].
fn plan_fields(vals: &[(u8, i64)]) -> Option<FramePlan> {
    if let Some(&(_, first)) = vals.first()
        && vals.iter().all(|&(_, v)| v == first)
    {
        return Some(FramePlan {
            width: 0,
            offset: first,
            exceptions: Vec::new(),
        });
    }
    let mut sorted: Vec<i64> = vals.iter().map(|&(_, v)| v).collect();
    sorted.sort_unstable();
    let len = sorted.len();
    if len == 0 {
        return Some(FramePlan {
            width: 0,
            offset: 0,
            exceptions: Vec::new(),
        });
    }
    // Cost of making value i an exception: its position byte and its varint (measured from the
    // middle value, an estimate of the base it will be stored against). Prefix sums make every
    // split O(1).
    let mid = sorted[len / 2];
    let max_e = MAX_EXCEPTIONS.min(len - 1);
    let exc = |v: i64| 8 * (1 + varint_len(zigzag(v.wrapping_sub(mid))));
    let mut low_cost = [0usize; MAX_EXCEPTIONS + 1];
    let mut high_cost = [0usize; MAX_EXCEPTIONS + 1];
    for k in 0..max_e {
        low_cost[k + 1] = low_cost[k] + exc(sorted[k]);
        high_cost[k + 1] = high_cost[k] + exc(sorted[len - 1 - k]);
    }
    let mut best: Option<(usize, usize, usize)> = None; // (cost in bits, low drops, high drops)
    for e in 0..=max_e {
        for lo in 0..=e {
            let hi = e - lo;
            let range = sorted[len - 1 - hi].wrapping_sub(sorted[lo]) as u64;
            let w = bits(range);
            if w > MAX_WIDTH {
                continue;
            }
            let cost = FRAME * w as usize + low_cost[lo] + high_cost[hi];
            if best.is_none_or(|(c, _, _)| cost < c) {
                best = Some((cost, lo, hi));
            }
        }
    }
    let (_, lo, hi) = best?;
    let (lo_v, hi_v) = (sorted[lo], sorted[len - 1 - hi]);
    // Values outside [lo_v, hi_v] are exceptions; ties with the ends stay packed, so there are
    // at most as many as planned.
    let exceptions = vals
        .iter()
        .filter(|&&(_, v)| v < lo_v || v > hi_v)
        .copied()
        .collect();
    Some(FramePlan {
        width: bits(hi_v.wrapping_sub(lo_v) as u64),
        offset: lo_v,
        exceptions,
    })
}

/// Encode `values` (any length) with the frames codec, in the cheaper of the two modes. `None`
/// if some frame needs a field wider than [`MAX_WIDTH`] bits.
pub fn encode(values: &[i64]) -> Option<Vec<u8>> {
    // Choose the mode on a sample of the first frames (a block is usually alike throughout),
    // then encode the whole block once; the other mode is the fallback if a frame does not fit.
    let sample = &values[..values.len().min(SAMPLE_FRAMES * FRAME)];
    let for_len = encode_mode(sample, MODE_FOR).map(|b| b.len());
    let delta_len = encode_mode(sample, MODE_DELTA).map(|b| b.len());
    let (first, second) = match (for_len, delta_len) {
        (Some(a), Some(b)) if b <= a => (MODE_DELTA, MODE_FOR),
        (None, Some(_)) => (MODE_DELTA, MODE_FOR),
        _ => (MODE_FOR, MODE_DELTA),
    };
    encode_mode(values, first).or_else(|| encode_mode(values, second))
}

/// Frames of a block the encoder tries both modes on.
const SAMPLE_FRAMES: usize = 16;

fn encode_mode(values: &[i64], mode: u8) -> Option<Vec<u8>> {
    let frames = frame_count(values.len());
    let mut head = vec![mode];
    let mut packed: Vec<u8> = Vec::new();
    let mut guess = Guess::default();
    let mut fields: Vec<(u8, i64)> = Vec::with_capacity(FRAME);
    for f in 0..frames {
        let vals = &values[f * FRAME..((f + 1) * FRAME).min(values.len())];
        fields.clear();
        let (base, plan) = if mode == MODE_FOR {
            fields.extend(vals.iter().enumerate().map(|(i, &v)| (i as u8, v)));
            let mut plan = plan_fields(&fields)?;
            // Exceptions are stored as offsets from the base, the smallest packed value.
            for e in &mut plan.exceptions {
                e.1 = e.1.wrapping_sub(plan.offset);
            }
            (plan.offset, plan)
        } else {
            fields.extend(
                vals.windows(2)
                    .enumerate()
                    .map(|(i, w)| (i as u8 + 1, w[1].wrapping_sub(w[0]))),
            );
            (vals[0], plan_fields(&fields)?)
        };
        let dmin = if mode == MODE_DELTA { plan.offset } else { 0 };
        if plan.exceptions.is_empty() && base == guess.base && dmin == guess.dmin {
            head.push(GUESSED | plan.width);
        } else {
            head.push(plan.width);
            head.push(plan.exceptions.len() as u8);
            put_varint(&mut head, zigzag(base.wrapping_sub(guess.base)));
            if mode == MODE_DELTA {
                put_varint(&mut head, zigzag(dmin.wrapping_sub(guess.dmin)));
            }
            for &(pos, v) in &plan.exceptions {
                head.push(pos);
                put_varint(&mut head, zigzag(v));
            }
        }
        guess = guess.next(mode, plan.width, base, dmin, vals.len(), &plan.exceptions);
        // Pack the fields: FOR packs every value's offset from the base; delta packs the
        // steps of positions 1.. (position 0 packs 0). Exceptions pack 0.
        let w = plan.width as usize;
        let start = packed.len();
        // 8 bytes of slack for `put_bits`, cut again below.
        packed.resize(start + 16 * w + PAD, 0);
        if w > 0 {
            let out = &mut packed[start..];
            let mut exc = plan.exceptions.iter().peekable();
            for i in 0..vals.len() {
                let field = if mode == MODE_FOR {
                    vals[i].wrapping_sub(base)
                } else if i == 0 {
                    continue;
                } else {
                    vals[i].wrapping_sub(vals[i - 1]).wrapping_sub(plan.offset)
                };
                if exc.peek().is_some_and(|&&(p, _)| p as usize == i) {
                    exc.next();
                    continue;
                }
                put_bits(out, i * w, field as u64, w);
            }
        }
        packed.truncate(start + 16 * w);
    }
    head.extend_from_slice(&packed);
    head.extend_from_slice(&[0u8; PAD]);
    Some(head)
}

/// OR `w` bits of `v` into `out` at bit `bit`; `out` has 8 bytes of slack past the field.
fn put_bits(out: &mut [u8], bit: usize, v: u64, w: usize) {
    let at = bit / 8;
    let mut word = [0u8; 8];
    word.copy_from_slice(&out[at..at + 8]);
    let x = u64::from_le_bytes(word) | ((v & mask(w)) << (bit % 8));
    out[at..at + 8].copy_from_slice(&x.to_le_bytes());
}

#[inline(always)]
fn mask(w: usize) -> u64 {
    if w >= 64 { u64::MAX } else { (1u64 << w) - 1 }
}

/// A parsed frame head.
#[derive(Clone, Copy, Debug, Default)]
struct Head {
    width: u8,
    base: i64,
    dmin: i64,
    /// Byte offset of the frame's packed data in the block.
    data: usize,
    /// Range of this frame's exceptions in the exception list.
    exc_start: u32,
    exc_end: u32,
}

/// Parsed block: heads and exceptions.
struct Parsed {
    mode: u8,
    heads: Vec<Head>,
    exceptions: Vec<(u8, i64)>,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn u8(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut u = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            u |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(u);
            }
        }
        None
    }
}

fn parse(bytes: &[u8], n: usize) -> std::result::Result<Parsed, String> {
    let frames = frame_count(n);
    let mut c = Cursor { bytes, pos: 0 };
    let mode = c.u8().ok_or("no mode byte")?;
    if mode != MODE_FOR && mode != MODE_DELTA {
        return Err(format!("mode {mode}"));
    }
    let mut heads = Vec::with_capacity(frames);
    let mut exceptions = Vec::new();
    let mut guess = Guess::default();
    let mut data = 0usize;
    for f in 0..frames {
        let short = || format!("frame {f} head cut short");
        let first = c.u8().ok_or_else(short)?;
        let width = first & !GUESSED;
        if width > MAX_WIDTH {
            return Err(format!("frame {f} width {width} (at most {MAX_WIDTH})"));
        }
        let len = FRAME.min(n - f * FRAME);
        let exc_start = exceptions.len() as u32;
        let (base, dmin) = if first & GUESSED != 0 {
            (guess.base, guess.dmin)
        } else {
            let count = c.u8().ok_or_else(short)? as usize;
            if count > MAX_EXCEPTIONS {
                return Err(format!(
                    "frame {f} has {count} exceptions (at most {MAX_EXCEPTIONS})"
                ));
            }
            let base = guess
                .base
                .wrapping_add(unzigzag(c.varint().ok_or_else(short)?));
            let dmin = if mode == MODE_DELTA {
                guess
                    .dmin
                    .wrapping_add(unzigzag(c.varint().ok_or_else(short)?))
            } else {
                0
            };
            let mut prev = 0u8;
            for _ in 0..count {
                let pos = c.u8().ok_or_else(short)?;
                if pos as usize >= len || (mode == MODE_DELTA && pos == 0) || (pos < prev) {
                    return Err(format!("frame {f} exception at position {pos}"));
                }
                prev = pos + 1;
                exceptions.push((pos, unzigzag(c.varint().ok_or_else(short)?)));
            }
            (base, dmin)
        };
        let exc = &exceptions[exc_start as usize..];
        guess = guess.next(mode, width, base, dmin, len, exc);
        heads.push(Head {
            width,
            base,
            dmin,
            data,
            exc_start,
            exc_end: exceptions.len() as u32,
        });
        data += 16 * width as usize;
    }
    let packed_start = c.pos;
    let expected = packed_start + data + PAD;
    if bytes.len() != expected {
        return Err(format!(
            "{} bytes where the frame heads promise {expected}",
            bytes.len()
        ));
    }
    for h in &mut heads {
        h.data += packed_start;
    }
    Ok(Parsed {
        mode,
        heads,
        exceptions,
    })
}

/// Field `i` of a frame's fields of `W` bits (`data` is the frame's `16 W` bytes and the
/// padding after them: the read of field 127 starts at byte `127 W / 8 < 16 W`).
#[inline(always)]
fn field<const W: usize>(data: &[u8], i: usize) -> u64 {
    let bit = i * W;
    let at = bit >> 3;
    let mut word = [0u8; 8];
    word.copy_from_slice(&data[at..at + 8]);
    (u64::from_le_bytes(word) >> (bit & 7)) & mask(W)
}

/// Decode all 128 values of one frame of `W`-bit fields into `dst` (values past the frame's
/// length come from its zero padding bits and mean nothing). Fixed sizes let the compiler drop
/// the bounds checks and unroll. Not inlined: one function per width keeps each stack frame
/// small (inlined into the dispatch, the 57 widths' step arrays made one frame of ~58 KiB,
/// probed page by page on every call).
#[inline(never)]
fn decode_packed<const W: usize, T: FrameValue>(
    data: &[u8],
    mode: u8,
    h: &Head,
    exceptions: &[(u8, i64)],
    dst: &mut [T; FRAME],
) {
    let data = &data[..16 * W + PAD];
    if mode == MODE_FOR {
        for (i, d) in dst.iter_mut().enumerate() {
            *d = T::from_i64(h.base.wrapping_add(field::<W>(data, i) as i64));
        }
        for &(pos, v) in exceptions {
            dst[pos as usize % FRAME] = T::from_i64(h.base.wrapping_add(v));
        }
        return;
    }
    let mut acc = h.base;
    if exceptions.is_empty() {
        dst[0] = T::from_i64(acc);
        for (i, d) in dst.iter_mut().enumerate().skip(1) {
            acc = acc.wrapping_add(h.dmin.wrapping_add(field::<W>(data, i) as i64));
            *d = T::from_i64(acc);
        }
        return;
    }
    let mut steps: [i64; FRAME] =
        std::array::from_fn(|i| h.dmin.wrapping_add(field::<W>(data, i) as i64));
    for &(pos, v) in exceptions {
        steps[pos as usize % FRAME] = v;
    }
    dst[0] = T::from_i64(acc);
    for (d, &step) in dst.iter_mut().zip(&steps).skip(1) {
        acc = acc.wrapping_add(step);
        *d = T::from_i64(acc);
    }
}

macro_rules! decode_dispatch {
    ($w:expr, $args:tt, $($n:literal)*) => {
        match $w {
            $($n => decode_packed::<$n, T> $args,)*
            _ => {}
        }
    };
}

/// Decode one frame whose head is `h` (checked by `parse`: `width <= MAX_WIDTH`, its bytes and
/// the padding inside `bytes`).
#[inline]
fn decode_one<T: FrameValue>(
    bytes: &[u8],
    mode: u8,
    h: &Head,
    exceptions: &[(u8, i64)],
    dst: &mut [T; FRAME],
) {
    let data = &bytes[h.data..];
    decode_dispatch!(h.width, (data, mode, h, exceptions, dst),
        0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28
        29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56);
}

/// Check, before a reader allocates room for `n` values, that a block of `len` bytes can hold
/// them: every frame has a head of at least one byte.
pub fn plausible(len: usize, n: usize, path: &Path, what: &str) -> Result<()> {
    if len < 1 + frame_count(n) + PAD {
        return Err(Error::corruption(
            path,
            format!("{what} frames block size"),
            format!("at least {} bytes for {n} values", 1 + frame_count(n) + PAD),
            len,
        ));
    }
    Ok(())
}

/// A parsed frames block, decoded a frame at a time: readers that fold values as they go keep
/// one frame (1 KiB) in L1 instead of a whole block's 256-512 KiB buffer.
pub struct FrameBlock<'a> {
    bytes: &'a [u8],
    n: usize,
    parsed: Parsed,
}

/// How the values of one frame are laid out, when that is known without unpacking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameShape<'a> {
    /// Every value is `base` except at the exceptions' positions, which hold `base + value`.
    Constant {
        /// The common value.
        base: i64,
        /// (position, offset from `base`), positions ascending.
        exceptions: &'a [(u8, i64)],
    },
    /// Value 0 is `base`; at each exception's position the value steps by its `value` and
    /// stays there (runs of equal values, as a sorted dimension's ids are).
    Steps {
        /// The first value.
        base: i64,
        /// (position, step), positions ascending and above 0.
        exceptions: &'a [(u8, i64)],
    },
    /// Anything else: unpack it.
    Packed,
}

impl std::fmt::Debug for FrameBlock<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameBlock")
            .field("values", &self.n)
            .field("mode", &self.parsed.mode)
            .field("frames", &self.parsed.heads.len())
            .finish()
    }
}

impl<'a> FrameBlock<'a> {
    /// Parse a block of `n` values (its heads; the packed data is read frame by frame).
    pub fn parse(bytes: &'a [u8], n: usize, path: &Path, what: &str) -> Result<FrameBlock<'a>> {
        plausible(bytes.len(), n, path, what)?;
        let parsed = parse(bytes, n).map_err(|e| {
            Error::corruption(
                path,
                format!("{what} frames block"),
                "a valid frames block",
                e,
            )
        })?;
        Ok(FrameBlock { bytes, n, parsed })
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the block holds no values.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Values in frame `f` (128, fewer in the last).
    pub fn frame_len(&self, f: usize) -> usize {
        FRAME.min(self.n.saturating_sub(f * FRAME))
    }

    /// The layout of frame `f`, if it is known without unpacking.
    pub fn shape(&self, f: usize) -> FrameShape<'_> {
        let Some(h) = self.parsed.heads.get(f) else {
            return FrameShape::Packed;
        };
        if h.width != 0 {
            return FrameShape::Packed;
        }
        let exceptions = &self.parsed.exceptions[h.exc_start as usize..h.exc_end as usize];
        match self.parsed.mode {
            MODE_FOR => FrameShape::Constant {
                base: h.base,
                exceptions,
            },
            _ if h.dmin == 0 => FrameShape::Steps {
                base: h.base,
                exceptions,
            },
            _ => FrameShape::Packed,
        }
    }

    /// Decode frame `f` into `out`; returns its first [`FrameBlock::frame_len`] values, the
    /// frame's (empty past the last frame).
    #[inline]
    pub fn decode_frame<'o, T: FrameValue>(&self, f: usize, out: &'o mut [T; FRAME]) -> &'o [T] {
        let Some(h) = self.parsed.heads.get(f) else {
            return &out[..0];
        };
        let exceptions = &self.parsed.exceptions[h.exc_start as usize..h.exc_end as usize];
        decode_one(self.bytes, self.parsed.mode, h, exceptions, out);
        &out[..self.frame_len(f)]
    }
}

/// Decode a frames block of `n` values into `out` (`out.len() == n`). With `frames`, only the
/// frames whose bit is set (frame `f` is bit `f % 64` of word `f / 64`) are decoded; the other
/// values are left as they were.
pub fn decode_into<T: FrameValue>(
    bytes: &[u8],
    out: &mut [T],
    frames: Option<&[u64]>,
    path: &Path,
    what: &str,
) -> Result<()> {
    let n = out.len();
    let block = FrameBlock::parse(bytes, n, path, what)?;
    let mut last = [T::from_i64(0); FRAME];
    for (f, chunk) in out.chunks_mut(FRAME).enumerate() {
        if let Some(mask) = frames
            && mask.get(f / 64).is_none_or(|w| w & (1 << (f % 64)) == 0)
        {
            continue;
        }
        match <&mut [T; FRAME]>::try_from(&mut *chunk) {
            Ok(whole) => {
                block.decode_frame(f, whole);
            }
            Err(_) => {
                let len = chunk.len();
                chunk.copy_from_slice(&block.decode_frame(f, &mut last)[..len]);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn roundtrip(values: &[i64]) {
        for mode in [MODE_FOR, MODE_DELTA] {
            let Some(bytes) = encode_mode(values, mode) else {
                continue;
            };
            let mut out = vec![0i64; values.len()];
            decode_into(&bytes, &mut out, None, Path::new("t"), "t").expect("decodes");
            assert_eq!(out, values, "mode {mode}");
            frame_at_a_time(&bytes, values);
        }
        // Values spread wider than MAX_WIDTH bits (beyond the exceptions) do not fit.
        if let Some(bytes) = encode(values) {
            let mut out = vec![0i64; values.len()];
            decode_into(&bytes, &mut out, None, Path::new("t"), "t").expect("decodes");
            assert_eq!(out, values);
        }
    }

    /// Frame by frame, the values are those of the whole block, and every frame whose shape is
    /// known without unpacking holds the values that shape describes.
    fn frame_at_a_time(bytes: &[u8], values: &[i64]) {
        let block = FrameBlock::parse(bytes, values.len(), Path::new("t"), "t").expect("parses");
        let mut buf = [0i64; FRAME];
        for (f, want) in values.chunks(FRAME).enumerate() {
            assert_eq!(block.decode_frame(f, &mut buf), want, "frame {f}");
            let mut shaped = vec![0i64; want.len()];
            match block.shape(f) {
                FrameShape::Constant { base, exceptions } => {
                    shaped.fill(base);
                    for &(pos, v) in exceptions {
                        shaped[pos as usize] = base.wrapping_add(v);
                    }
                }
                FrameShape::Steps { base, exceptions } => {
                    let mut at = 0;
                    let mut x = base;
                    for &(pos, v) in exceptions.iter().chain([&(want.len() as u8, 0)]) {
                        shaped[at..pos as usize].fill(x);
                        x = x.wrapping_add(v);
                        at = pos as usize;
                    }
                }
                FrameShape::Packed => shaped.copy_from_slice(want),
            }
            assert_eq!(shaped, want, "frame {f} shape {:?}", block.shape(f));
        }
        let past = values.len().div_ceil(FRAME);
        assert!(block.decode_frame(past, &mut buf).is_empty());
    }

    #[test]
    fn sorted_ids_are_steps() {
        let runs: Vec<i64> = (0..1000).map(|i| i / 360).collect();
        let bytes = encode(&runs).expect("fits");
        let block = FrameBlock::parse(&bytes, runs.len(), Path::new("t"), "t").expect("parses");
        for f in 0..frame_count(runs.len()) {
            assert!(
                matches!(block.shape(f), FrameShape::Steps { .. }),
                "frame {f}: {:?}",
                block.shape(f)
            );
        }
    }

    #[test]
    fn runs_gauges_and_extremes_roundtrip() {
        roundtrip(&[]);
        roundtrip(&[7]);
        roundtrip(&[i64::MIN, i64::MAX, 0, -1, 1]);
        let runs: Vec<i64> = (0..1000).map(|i| i / 360).collect();
        roundtrip(&runs);
        let times: Vec<i64> = (0..5000)
            .map(|i| 1_451_635_200_000 + (i % 360) * 10_000)
            .collect();
        roundtrip(&times);
        let mut x = 50i64;
        let walk: Vec<i64> = (0..70_000)
            .map(|i| {
                x = (x + (i * 7919 % 7) - 3).clamp(0, 100);
                x
            })
            .collect();
        roundtrip(&walk);
        for v in [&runs, &times, &walk] {
            assert!(encode(v).is_some());
        }
    }

    #[test]
    fn sorted_runs_pack_to_almost_nothing() {
        let runs: Vec<i64> = (0..65_536).map(|i| i / 360).collect();
        let bytes = encode(&runs).expect("fits");
        // One head of ~4 bytes per frame, one exception where a run ends.
        assert!(
            bytes.len() < 4 * 512 + 3 * 183 + 16,
            "{} bytes",
            bytes.len()
        );
    }

    #[test]
    fn selected_frames_only_are_written() {
        let values: Vec<i64> = (0..1000).map(|i| i * 3 + (i % 5)).collect();
        let bytes = encode(&values).expect("fits");
        let mut out = vec![-1i64; values.len()];
        let mask = [0b101u64];
        decode_into(&bytes, &mut out, Some(&mask), Path::new("t"), "t").expect("decodes");
        for (i, (&o, &v)) in out.iter().zip(&values).enumerate() {
            let f = i / FRAME;
            if f == 0 || f == 2 {
                assert_eq!(o, v, "row {i}");
            } else {
                assert_eq!(o, -1, "row {i}");
            }
        }
    }

    #[test]
    fn damaged_blocks_are_errors() {
        let values: Vec<i64> = (0..300).map(|i| i * i).collect();
        let bytes = encode(&values).expect("fits");
        let mut out = vec![0i64; values.len()];
        for cut in 0..bytes.len() {
            assert!(
                decode_into(&bytes[..cut], &mut out, None, Path::new("t"), "t").is_err(),
                "cut at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_into(&longer, &mut out, None, Path::new("t"), "t").is_err());
        let mut wrong_n = vec![0i64; 200];
        assert!(decode_into(&bytes, &mut wrong_n, None, Path::new("t"), "t").is_err());
    }

    proptest! {
        #[test]
        fn any_values_roundtrip(values in prop::collection::vec(any::<i64>(), 0..600)) {
            roundtrip(&values);
        }

        #[test]
        fn small_steps_roundtrip(
            start in any::<i64>(),
            steps in prop::collection::vec(-40i64..40, 0..1200),
            spikes in prop::collection::vec((0usize..1200, any::<i64>()), 0..30),
        ) {
            let mut v = start;
            let mut values: Vec<i64> = steps.iter().map(|s| { v = v.wrapping_add(*s); v }).collect();
            for (at, x) in spikes {
                if let Some(slot) = values.get_mut(at) {
                    *slot = x;
                }
            }
            roundtrip(&values);
        }

        #[test]
        fn random_bytes_never_panic(
            bytes in prop::collection::vec(any::<u8>(), 0..400),
            n in 0usize..400,
        ) {
            let mut out = vec![0i64; n];
            let _ = decode_into(&bytes, &mut out, None, Path::new("t"), "t");
        }
    }
}
