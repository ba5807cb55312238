//! Reading bitmap parts.

use std::path::Path;

use roaring::RoaringBitmap;

use crate::error::{Error, Result};

/// Decode one serialized bitmap.
pub fn decode_bitmap(bytes: &[u8], path: &Path, what: &str) -> Result<RoaringBitmap> {
    let b = RoaringBitmap::deserialize_from(bytes).map_err(|e| {
        Error::corruption(path, format!("{what} bitmap"), "a valid roaring bitmap", e)
    })?;
    if b.serialized_size() != bytes.len() {
        return Err(Error::corruption(
            path,
            format!("{what} bitmap size"),
            b.serialized_size(),
            bytes.len(),
        ));
    }
    Ok(b)
}

/// A bitmap index over the segment's mapped bytes; bitmaps are decoded on demand.
#[derive(Debug, Clone, Copy)]
pub struct BitmapIndexReader<'a> {
    count: usize,
    offsets: &'a [u8],
    data: &'a [u8],
}

impl<'a> BitmapIndexReader<'a> {
    /// Open a bitmap index part; checks its size against its bitmap count.
    pub fn open(bytes: &'a [u8], path: &Path, column: &str) -> Result<Self> {
        if bytes.len() < 12 {
            return Err(Error::corruption(
                path,
                format!("column `{column}` bitmap index size"),
                "at least 12 bytes",
                bytes.len(),
            ));
        }
        let mut c = [0u8; 4];
        c.copy_from_slice(&bytes[..4]);
        let count = u32::from_le_bytes(c) as usize;
        let table = 8usize.saturating_mul(count.saturating_add(1));
        if bytes.len() - 4 < table {
            return Err(Error::corruption(
                path,
                format!("column `{column}` bitmap index offset table"),
                format!("{table} bytes"),
                bytes.len() - 4,
            ));
        }
        let r = BitmapIndexReader {
            count,
            offsets: &bytes[4..4 + table],
            data: &bytes[4 + table..],
        };
        if r.offset(count) != r.data.len() as u64 {
            return Err(Error::corruption(
                path,
                format!("column `{column}` bitmap index data size"),
                r.offset(count),
                r.data.len(),
            ));
        }
        Ok(r)
    }

    fn offset(&self, i: usize) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&self.offsets[8 * i..8 * i + 8]);
        u64::from_le_bytes(a)
    }

    /// Number of bitmaps (dictionary size + 1 for null).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are no bitmaps.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Decode bitmap `id`.
    pub fn bitmap(&self, id: usize, path: &Path, column: &str) -> Result<RoaringBitmap> {
        if id >= self.count {
            return Err(Error::invalid(format!(
                "column `{column}` has no bitmap {id} (it has {})",
                self.count
            )));
        }
        let (a, b) = (self.offset(id), self.offset(id + 1));
        let bytes = usize::try_from(a)
            .ok()
            .zip(usize::try_from(b).ok())
            .and_then(|(a, b)| self.data.get(a..b))
            .ok_or_else(|| {
                Error::corruption(
                    path,
                    format!("column `{column}` bitmap {id} offsets"),
                    format!("a range within {} bytes", self.data.len()),
                    format!("{a}..{b}"),
                )
            })?;
        decode_bitmap(bytes, path, &format!("column `{column}` value {id}"))
    }
}
