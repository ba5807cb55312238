//! Building bitmap parts.

use roaring::RoaringBitmap;

use crate::error::{Error, Result};

/// Serialize one bitmap (portable roaring format), run-length encoding the containers where
/// that is smaller.
pub fn encode_bitmap(bitmap: &RoaringBitmap) -> Result<Vec<u8>> {
    let mut bitmap = bitmap.clone();
    bitmap.optimize();
    let mut out = Vec::with_capacity(bitmap.serialized_size());
    bitmap
        .serialize_into(&mut out)
        .map_err(|e| Error::internal(format!("serializing a bitmap into memory failed: {e}")))?;
    Ok(out)
}

/// Encode a bitmap index: one bitmap per dictionary id (run-length encoded where smaller —
/// rows sorted by a dimension make long runs).
pub fn encode_bitmap_index(mut bitmaps: Vec<RoaringBitmap>) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut offsets = Vec::with_capacity(bitmaps.len() + 1);
    offsets.push(0u64);
    for b in &mut bitmaps {
        b.optimize();
        b.serialize_into(&mut body).map_err(|e| {
            Error::internal(format!("serializing a bitmap into memory failed: {e}"))
        })?;
        offsets.push(body.len() as u64);
    }
    let mut out = Vec::with_capacity(4 + 8 * offsets.len() + body.len());
    out.extend_from_slice(&(bitmaps.len() as u32).to_le_bytes());
    for o in offsets {
        out.extend_from_slice(&o.to_le_bytes());
    }
    out.extend_from_slice(&body);
    Ok(out)
}
