//! Roaring bitmaps: the inverted index of string dimensions and the null bitmaps of numeric
//! columns.
//!
//! ```text
//! BITMAP_INDEX := count:u32 offsets:u64[count + 1] roaring_bytes
//! ```
//! Bitmap `i` (the rows whose value has dictionary id `i`; id 0 = null) is the portable roaring
//! serialization in `roaring_bytes[offsets[i]..offsets[i + 1]]`.

pub mod reader;
pub mod writer;

pub use reader::{BitmapIndexReader, decode_bitmap};
pub use writer::{encode_bitmap, encode_bitmap_index};
